import CAllocationCounter
import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

@Suite struct ZMQPollerTests {
    @Test func pollReturnsNothingWhenIdleAndTheSocketWhenAMessageArrives() throws {
        let context = try ZMQContext()
        let quiet = try makeSocket(.pull, context)
        try quiet.bind("inproc://quiet")
        let busy = try makeSocket(.pull, context)
        try busy.bind("tcp://127.0.0.1:*")
        let sender = try makeSocket(.push, context)
        try sender.connect(try #require(try busy.lastEndpoint))

        let poller = ZMQPoller(capacity: 1)  // Registering a second socket grows the items.
        let quietIndex = try poller.register(quiet)
        let busyIndex = try poller.register(busy)
        #expect(poller.count == 2)
        #expect(poller.socket(at: busyIndex) === busy)

        #expect(try poller.poll(timeout: .milliseconds(20)) == 0)
        #expect(Array(poller.ready.map(\.index)).isEmpty)
        #expect(poller.events(at: busyIndex).isEmpty)

        try sender.send("observation")
        #expect(try poller.poll(timeout: generousTimeout) == 1)
        #expect(poller.ready.map(\.index) == [busyIndex])
        #expect(poller.events(at: busyIndex) == .readable)
        #expect(poller.events(at: quietIndex).isEmpty)
        #expect(try busy.receiveString(flags: .dontWait) == "observation")

        // Interest can change without re-registering: a socket polled for nothing is never ready.
        try sender.send("ignored for now")
        poller.setEvents([], at: busyIndex)
        #expect(try poller.poll(timeout: .milliseconds(20)) == 0)
        poller.setEvents(.readable, at: busyIndex)
        #expect(try poller.poll(timeout: generousTimeout) == 1)
    }

    @Test func pollReportsWritableAndRefusesClosedSockets() throws {
        let context = try ZMQContext()
        let pull = try makeSocket(.pull, context)
        try pull.bind("inproc://writable")
        let push = try makeSocket(.push, context)
        let poller = ZMQPoller()
        let index = try poller.register(push, for: [.readable, .writable])
        #expect(try poller.poll(timeout: .zero) == 0)  // No peer yet: nothing can be queued.
        try push.connect("inproc://writable")
        #expect(try poller.poll(timeout: generousTimeout) == 1)
        #expect(poller.events(at: index) == .writable)

        push.close()
        let error = try #require(throws: ZMQError.self) { try poller.poll(timeout: .zero) }
        #expect(error.code == ENOTSOCK)
        #expect(throws: ZMQError.self) { try poller.register(push) }
    }

    @Test func pollSendAndReceiveIntoBufferDoNotAllocateInTheLoop() throws {
        let context = try ZMQContext()
        let pull = try makeSocket(.pull, context)
        try pull.bind("inproc://hot-path")
        let push = try makeSocket(.push, context)
        try push.connect("inproc://hot-path")
        let poller = ZMQPoller()
        let index = try poller.register(pull)
        let sample: [UInt8] = Array(repeating: 42, count: 24)  // Small enough for libzmq's in-struct storage.
        let receiveBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { receiveBuffer.deallocate() }

        func step() throws -> Bool {
            try sample.withUnsafeBytes { _ = try push.send($0) }
            guard try poller.poll(timeout: generousTimeout) == 1, poller.events(at: index).contains(.readable),
                let received = try pull.receive(into: receiveBuffer, flags: .dontWait)
            else { return false }
            return received.byteCount == sample.count && !received.isTruncated
        }

        for _ in 0..<1000 { try #require(try step()) }  // Warm up the pipes' chunk caches.
        let before = fp_thread_allocation_count()
        var succeeded = 0
        for _ in 0..<1000 where try step() { succeeded += 1 }
        let allocations = fp_thread_allocation_count() - before
        #expect(succeeded == 1000)
        #expect(allocations == 0)
    }
}
