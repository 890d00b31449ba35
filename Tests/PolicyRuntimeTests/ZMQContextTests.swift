import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

@Suite struct ZMQContextTests {
    @Test func libraryVersionIsTheOneBuiltAgainst() {
        let version = ZMQContext.libraryVersion
        #expect(version.major == 4)
        #expect(version.minor >= 3)
    }

    @Test func releasingAContextWithUnsentMessagesDoesNotHang() throws {
        // A port that was free a moment ago, so the PUSH below connects to nobody and keeps its messages.
        let probeContext = try ZMQContext()
        let probe = try ZMQSocket(.pull, context: probeContext)
        try probe.bind("tcp://127.0.0.1:*")
        let endpoint = try #require(try probe.lastEndpoint)
        probe.close()

        // The whole lifetime runs on a peer thread, so that a hang fails the join instead of the test process.
        let lifetime = Peer { () throws -> (linger: ZMQTimeout, queued: Int) in
            let context = try ZMQContext()
            let push = try ZMQSocket(.push, context: context)
            try push.connect(endpoint)
            var queued = 0
            for index in 0..<10 where try push.send("unsent \(index)", flags: .dontWait) { queued += 1 }
            let linger = try push.option(.linger)
            return (linger, queued)
            // `push` and `context` are released here: zmq_close, then zmq_ctx_term.
        }
        let (linger, queued) = try lifetime.join()
        #expect(linger == .zero)
        #expect(queued == 10)  // The messages really were pending when the context went away.
    }

    @Test func shutdownUnblocksAReceiveOnAnotherThread() throws {
        let context = try ZMQContext()
        let ready = DispatchSemaphore(value: 0)
        let receiver = Peer { () throws -> ZMQError? in
            let pull = try makeSocket(.pull, context)  // Bounded wait, so a failed shutdown cannot hang.
            try pull.bind("inproc://never")
            ready.signal()
            do {
                _ = try pull.receive()
                return nil
            } catch let error as ZMQError {
                return error
            }
        }
        try #require(ready.wait(timeout: .now() + generousTimeoutSeconds) == .success)
        context.shutdown()
        let error = try #require(try receiver.join())
        #expect(error.isContextTerminated)
        #expect(!error.isTimeout)
        #expect(error.codeName == "ETERM")
    }
}
