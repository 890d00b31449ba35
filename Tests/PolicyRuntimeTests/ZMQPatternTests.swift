import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

/// The messaging patterns over real sockets: each test fails if a message is lost, reordered, altered or misrouted.
@Suite struct ZMQPatternTests {
    @Test func pushPullRoundTripOverInproc() throws {
        let context = try ZMQContext()
        let pull = try makeSocket(.pull, context)
        try pull.bind("inproc://pipeline")
        let push = try makeSocket(.push, context)
        try push.connect("inproc://pipeline")

        let payload: [UInt8] = [0, 1, 2, 255, 128]
        #expect(try push.send(payload))
        #expect(try push.send("gripper open"))
        #expect(try push.send([]))
        let large = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let sentLarge = try large.withUnsafeBytes { try push.send($0) }
        #expect(sentLarge)

        #expect(try pull.receive() == payload)
        #expect(try pull.receiveString() == "gripper open")
        #expect(try pull.receive() == [])
        #expect(try pull.receive() == large)
        #expect(try pull.receive(flags: .dontWait) == nil)
    }

    @Test func requestReplyOverTCPLoopbackWithEphemeralPort() throws {
        let context = try ZMQContext()
        let reply = try makeSocket(.reply, context)
        try reply.bind("tcp://127.0.0.1:*")
        let endpoint = try #require(try reply.lastEndpoint)
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        #expect((port(of: endpoint) ?? 0) > 0)

        let client = Peer { () throws -> [String] in
            let request = try makeSocket(.request, context)
            try request.connect(endpoint)
            var replies: [String] = []
            for index in 0..<3 {
                try request.send("ping \(index)")
                replies.append(try request.receiveString() ?? "")
            }
            return replies
        }
        for _ in 0..<3 {
            let request = try #require(try reply.receiveString())
            try reply.send("pong for \(request)")
        }
        #expect(try client.join() == ["pong for ping 0", "pong for ping 1", "pong for ping 2"])
    }

    @Test func requestSocketRefusesASecondSendBeforeTheReplyWithEFSM() throws {
        let context = try ZMQContext()
        let reply = try makeSocket(.reply, context)
        try reply.bind("inproc://strict")
        let request = try makeSocket(.request, context)
        try request.connect("inproc://strict")
        try request.send("first")
        let error = #expect(throws: ZMQError.self) { try request.send("second") }
        #expect(error?.codeName == "EFSM")
        #expect(error?.operation == "zmq_send")
    }

    @Test func routerRepliesToEachOfSeveralDealersByRoutingID() throws {
        let context = try ZMQContext()
        let router = try makeSocket(.router, context)
        try router.setOption(.routerMandatory, true)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try #require(try router.lastEndpoint)

        let dealerCount = 4
        let dealers = (0..<dealerCount).map { index in
            // Expectations belong to the test's own task, so peers return what they saw instead.
            Peer { () throws -> (routingID: [UInt8], reply: [[UInt8]]) in
                let dealer = try makeSocket(.dealer, context)
                try dealer.setOption(.routingID, bytes("dealer-\(index)"))
                try dealer.connect(endpoint)
                try dealer.sendMultipart([bytes("request"), bytes("\(index)")])
                return (try dealer.option(.routingID), try dealer.receiveMultipart() ?? [])
            }
        }

        var seen: Set<[UInt8]> = []
        for _ in 0..<dealerCount {
            let frames = try #require(try router.receiveMultipart())
            try #require(frames.count == 3)
            let (routingID, verb, index) = (frames[0], frames[1], frames[2])
            #expect(verb == bytes("request"))
            // The router sees each dealer under the routing id the dealer chose.
            #expect(routingID == bytes("dealer-") + index)
            seen.insert(routingID)
            try router.sendMultipart([routingID, bytes("reply"), index])
        }
        #expect(seen.count == dealerCount)

        for (index, dealer) in dealers.enumerated() {
            let (routingID, reply) = try dealer.join()
            #expect(routingID == bytes("dealer-\(index)"))
            #expect(reply == [bytes("reply"), bytes("\(index)")])
        }

        // With `routerMandatory`, a routing id nobody has is an error, not a silent drop.
        let error = #expect(throws: ZMQError.self) { try router.sendMultipart([bytes("nobody"), bytes("reply")]) }
        #expect(error?.code == EHOSTUNREACH)
    }

    @Test func subscriberReceivesOnlyItsPrefix() throws {
        let context = try ZMQContext()
        let publisher = try makeSocket(.publish, context)
        try publisher.bind("tcp://127.0.0.1:*")
        let subscriber = try makeSocket(.subscribe, context)
        try subscriber.subscribe("arm/")
        try subscriber.connect(try #require(try publisher.lastEndpoint))

        // Publish until the subscription has reached the publisher.
        let poller = ZMQPoller()
        let index = try poller.register(subscriber)
        var subscribed = false
        for _ in 0..<1000 where !subscribed {
            try publisher.send("arm/warm-up")
            subscribed = try poller.poll(timeout: .milliseconds(10)) == 1
        }
        try #require(subscribed)
        #expect(poller.events(at: index) == .readable)
        while try subscriber.receive(flags: .dontWait) != nil {}

        try publisher.send("base/velocity 0.2")
        try publisher.send("arm/joints 0.1 0.2")
        try publisher.sendMultipart([bytes("gripper/open"), bytes("arm/not a topic: only the first frame is matched")])
        try publisher.send("arm/done")
        #expect(try subscriber.receiveString() == "arm/joints 0.1 0.2")
        #expect(try subscriber.receiveString() == "arm/done")
    }

    @Test func conflatingSubscriberKeepsOnlyTheLatestMessage() throws {
        let context = try ZMQContext()
        let publisher = try makeSocket(.publish, context)
        try publisher.bind("inproc://state")
        // Over `inproc://` the connecting side's options shape the pipe, so the subscribers connect.
        let latestOnly = try makeSocket(.subscribe, context)
        try latestOnly.setOption(.conflate, true)
        try latestOnly.subscribe()
        try latestOnly.connect("inproc://state")
        let everything = try makeSocket(.subscribe, context)  // A control without conflate.
        try everything.subscribe()
        try everything.connect("inproc://state")

        // Subscriptions reach the publisher asynchronously; publish until both subscribers hear it.
        let poller = ZMQPoller()
        let latestIndex = try poller.register(latestOnly)
        let everythingIndex = try poller.register(everything)
        var bothSubscribed = false
        for _ in 0..<1000 where !bothSubscribed {
            try publisher.send("warm-up")
            try poller.poll(timeout: .milliseconds(10))
            bothSubscribed =
                poller.events(at: latestIndex).contains(.readable)
                && poller.events(at: everythingIndex).contains(.readable)
        }
        try #require(bothSubscribed)
        while try latestOnly.receive(flags: .dontWait) != nil {}
        while try everything.receive(flags: .dontWait) != nil {}

        for sample in 0..<100 {
            try publisher.send("state \(sample)")
        }
        #expect(try latestOnly.receiveString() == "state 99")
        #expect(try latestOnly.receiveString(flags: .dontWait) == nil)
        #expect(try everything.receiveString() == "state 0")
        #expect(try everything.receiveString() == "state 1")
    }
}
