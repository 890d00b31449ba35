import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

/// Sending, receiving, options and errors of a single socket pair.
@Suite struct ZMQSocketTests {
    @Test func nonBlockingReceiveAndReceiveTimeoutReportEAGAIN() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(.pull, context: context)
        try pull.bind("inproc://empty")

        // Non-blocking: would-block is an answer, not a failure.
        #expect(try pull.receive(flags: .dontWait) == nil)
        #expect(try pull.receiveMultipart(flags: .dontWait) == nil)
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(try buffer.withUnsafeMutableBytes { try pull.receive(into: $0, flags: .dontWait) } == nil)

        // Blocking with a timeout: a timeout error that keeps EAGAIN.
        try pull.setOption(.receiveTimeout, .milliseconds(20))
        let error = try #require(throws: ZMQError.self) { try pull.receive() }
        #expect(error.isTimeout)
        #expect(error.isWouldBlock)
        #expect(error.code == EAGAIN)
        #expect(error.operation == "zmq_msg_recv")
        #expect(error.description.contains("timed out"))
        #expect(error.description.contains("EAGAIN"))

        let intoError = try #require(throws: ZMQError.self) {
            try buffer.withUnsafeMutableBytes { try pull.receive(into: $0) }
        }
        #expect(intoError.isTimeout && intoError.code == EAGAIN && intoError.operation == "zmq_recv")
    }

    @Test func sendWithoutPeerWouldBlockOrTimesOut() throws {
        let context = try ZMQContext()
        let push = try ZMQSocket(.push, context: context)
        try push.bind("inproc://nobody-connects")  // A PUSH with no peer cannot queue anything.

        #expect(try push.send("sample", flags: .dontWait) == false)
        #expect(try push.sendMultipart([bytes("a"), bytes("b")], flags: .dontWait) == false)

        try push.setOption(.sendTimeout, .milliseconds(20))
        let error = try #require(throws: ZMQError.self) { try push.send("sample") }
        #expect(error.isTimeout && error.code == EAGAIN)
    }

    @Test func malformedEndpointsThrowWithErrnoAndEndpoint() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(.push, context: context)

        let connectError = try #require(throws: ZMQError.self) { try socket.connect("tcp://nonsense") }
        #expect(connectError.code == EINVAL)
        #expect(connectError.operation == "zmq_connect")
        #expect(connectError.subject == "tcp://nonsense")
        #expect(connectError.description.contains("tcp://nonsense"))
        #expect(connectError.description.contains("errno \(EINVAL)"))
        #expect(connectError.message == String(cString: strerror(EINVAL)))

        let bindError = try #require(throws: ZMQError.self) { try socket.bind("bogus://anywhere") }
        #expect(bindError.code == EPROTONOSUPPORT)
        #expect(bindError.description.contains("bogus://anywhere"))

        // libzmq 4.3.4 would silently bind port 99999 - 65536 = 34463; the wrapper refuses.
        let portError = try #require(throws: ZMQError.self) { try socket.bind("tcp://127.0.0.1:99999") }
        #expect(portError.code == EINVAL)
        #expect(portError.description.contains("tcp://127.0.0.1:99999"))

        let unbindError = try #require(throws: ZMQError.self) { try socket.unbind("tcp://127.0.0.1:5999") }
        #expect(unbindError.code == ENOENT)
    }

    @Test func unbindAndDisconnectTakeTheResolvedEndpoint() throws {
        let context = try ZMQContext()
        let pull = try makeSocket(.pull, context)
        #expect(try pull.lastEndpoint == nil)
        try pull.bind("tcp://127.0.0.1:*")
        let endpoint = try #require(try pull.lastEndpoint)
        let push = try makeSocket(.push, context)
        try push.connect(endpoint)
        try push.send("before")
        #expect(try pull.receiveString() == "before")

        try push.disconnect(endpoint)
        #expect(try push.send("after disconnect", flags: .dontWait) == false)
        try pull.unbind(endpoint)
        #expect(throws: ZMQError.self) { try pull.unbind(endpoint) }
    }

    @Test func receiveIntoTooSmallBufferReportsTruncationAndTrueSize() throws {
        let context = try ZMQContext()
        let pull = try makeSocket(.pull, context)
        try pull.bind("inproc://frames")
        let push = try makeSocket(.push, context)
        try push.connect("inproc://frames")

        let frame = (0..<100).map { UInt8($0) }
        try push.send(frame)
        try push.sendMultipart([[1, 2, 3], [4]])

        var buffer = [UInt8](repeating: 0xEE, count: 16)
        let truncated = try #require(try buffer.withUnsafeMutableBytes { try pull.receive(into: $0) })
        #expect(truncated.isTruncated)
        #expect(truncated.frameSize == 100)
        #expect(truncated.byteCount == 16)
        #expect(!truncated.hasMore)
        #expect(buffer == Array(frame.prefix(16)))

        let first = try #require(try buffer.withUnsafeMutableBytes { try pull.receive(into: $0) })
        #expect(first == ZMQReceiveResult(frameSize: 3, byteCount: 3, hasMore: true))
        #expect(!first.isTruncated)
        #expect(buffer.prefix(3) == [1, 2, 3])
        let second = try #require(try buffer.withUnsafeMutableBytes { try pull.receive(into: $0) })
        #expect(second == ZMQReceiveResult(frameSize: 1, byteCount: 1, hasMore: false))
    }

    @Test(arguments: [0, 1, 33, 34, 4096])
    func receivedFrameIsReadInPlace(size: Int) throws {
        // libzmq keeps frames of up to 33 bytes inside the message struct and larger ones on the heap.
        let context = try ZMQContext()
        let pair = try makeSocket(.pair, context)
        try pair.bind("inproc://in-place")
        let peer = try makeSocket(.pair, context)
        try peer.connect("inproc://in-place")

        let frame = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try peer.sendMultipart([frame, bytes("tail")])
        let (copy, hasMore) = try #require(try pair.withReceivedFrame { bytes, more in ([UInt8](bytes), more) })
        #expect(copy == frame)
        #expect(hasMore)
        #expect(try pair.hasMoreFrames)
        #expect(try pair.receiveString() == "tail")
        #expect(try !pair.hasMoreFrames)
    }

    @Test func multipartMessagesKeepEmptyFramesAndOrder() throws {
        let context = try ZMQContext()
        let pair = try makeSocket(.pair, context)
        try pair.bind("inproc://multipart")
        let peer = try makeSocket(.pair, context)
        try peer.connect("inproc://multipart")

        let message: [[UInt8]] = [bytes("header"), [], (0..<300).map { UInt8(truncatingIfNeeded: $0) }, []]
        try peer.sendMultipart(message)
        try peer.sendMultipart([bytes("continued")], flags: .sendMore)
        try peer.send("end")
        #expect(try pair.receiveMultipart() == message)
        #expect(try pair.receiveMultipart() == [bytes("continued"), bytes("end")])
    }

    @Test func optionsRoundTripAndLingerStartsAtZero() throws {
        let context = try ZMQContext(ioThreads: 2)
        #expect(context.ioThreads == 2)
        // libzmq's own default linger is infinite (except for SUB sockets, which start at zero).
        for type in ZMQSocketType.allCases {
            #expect(try ZMQSocket(type, context: context).option(.linger) == .zero, "\(type.name)")
        }
        let socket = try ZMQSocket(.subscribe, context: context)
        #expect(try socket.option(.receiveTimeout) == .infinite)

        try socket.setOption(.linger, .milliseconds(250))
        try socket.setOption(.receiveTimeout, .seconds(3))
        try socket.setOption(.receiveHighWaterMark, 7)
        try socket.setOption(.maxMessageSize, 1 << 20)
        try socket.setOption(.conflate, true)
        try socket.setOption(.routingID, bytes("arm-1"))
        #expect(try socket.option(.linger) == .milliseconds(250))
        #expect(try socket.option(.receiveTimeout) == .milliseconds(3000))
        #expect(try socket.option(.receiveHighWaterMark) == 7)
        #expect(try socket.option(.maxMessageSize) == 1 << 20)
        #expect(try socket.option(.conflate))
        #expect(try socket.option(.routingID) == bytes("arm-1"))

        // An option the socket type does not have is refused, naming it.
        let error = try #require(throws: ZMQError.self) { try socket.setOption(.routerMandatory, true) }
        #expect(error.code == EINVAL)
        #expect(error.description.contains("ZMQ_ROUTER_MANDATORY"))
    }

    @Test func closedSocketThrowsENOTSOCKAndCloseIsIdempotent() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(.dealer, context: context)
        socket.close()
        socket.close()
        #expect(socket.isClosed)
        let error = try #require(throws: ZMQError.self) { try socket.send("late") }
        #expect(error.code == ENOTSOCK)
        #expect(throws: ZMQError.self) { try socket.connect("inproc://anything") }
    }
}
