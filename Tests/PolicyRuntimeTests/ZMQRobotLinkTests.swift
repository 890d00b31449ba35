import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

/// The control loop's ZeroMQ robot: newest state only, malformed states dropped, commands published, and what the
/// robot says about itself read from its first state.
@Suite struct ZMQRobotLinkTests {
    @Test func theZeroMQRobotLinkKeepsOnlyTheNewestStateAndPublishesCommands() throws {
        let context = try ZMQContext()
        let statePublisher = try makeSocket(.publish, context)
        try statePublisher.bind("tcp://127.0.0.1:*")
        let commandSubscriber = try makeSocket(.subscribe, context)
        try commandSubscriber.subscribe()
        try commandSubscriber.bind("tcp://127.0.0.1:*")
        let link = try ZMQRobotLink(context: context, stateEndpoint: try #require(try statePublisher.lastEndpoint),
                                    commandEndpoint: try #require(try commandSubscriber.lastEndpoint),
                                    observationDimensions: 3, actionDimensions: 2)
        var observation = [Float](repeating: 0, count: 3)
        var applied = [Float](repeating: 0, count: 2)
        func publish(_ values: [Float], sequence: UInt64, applied: [Float] = []) throws {
            var state = Wire.RobotState()
            state.observation = values
            state.appliedAction = applied
            state.episodeID = 4
            state.step = sequence
            try statePublisher.send(Wire.encode(Wire.envelope(sequence: sequence, .robotState(state))))
        }
        // Subscriptions reach the publisher asynchronously: publish until the link sees a state.
        var first: RobotStateInfo?
        for attempt in 0..<1000 where first == nil {
            try publish([1, 2, 3], sequence: UInt64(attempt + 1))
            usleep(1000)
            first = try link.receiveLatest(observation: &observation, appliedAction: &applied)
        }
        let seen = try #require(first)
        #expect(observation == [1, 2, 3] && seen.episode == 4 && !seen.hasAppliedAction)
        // Several states in a row: only the newest is read; malformed and mis-sized ones are dropped and counted.
        try statePublisher.send([0xFF, 0xFF])
        try publish([9, 9], sequence: 5000)
        try publish([4, 5, 6], sequence: 5001)
        try publish([7, 8, 9], sequence: 5002, applied: [0.5, 0.25])
        var newest: RobotStateInfo?
        for _ in 0..<1000 where newest?.sequence != 5002 {
            if let info = try link.receiveLatest(observation: &observation, appliedAction: &applied) { newest = info }
            usleep(1000)
        }
        #expect(newest?.sequence == 5002 && observation == [7, 8, 9])
        #expect(newest?.hasAppliedAction == true && applied == [0.5, 0.25])
        #expect(try link.receiveLatest(observation: &observation, appliedAction: &applied) == nil)

        // Commands: the subscriber is bound, so the link's publisher connects to it; send until one arrives.
        var received: Wire.Envelope?
        for step in 0..<1000 where received == nil {
            try link.send(.act, action: [10, 20], answering: newest, step: step)
            usleep(1000)
            received = try commandSubscriber.receive(flags: .dontWait).map { try Wire.decode($0) }
        }
        let envelope = try #require(received)
        guard case .actionCommand(let command) = envelope.body else {
            Issue.record("expected ActionCommand")
            return
        }
        #expect(command.mode == .act && command.values == [10, 20] && command.stateSequence == 5002)
    }

    @Test func theFirstStateDescribesTheRobotAndSilenceIsAnError() throws {
        let context = try ZMQContext()
        let statePublisher = try makeSocket(.publish, context)
        try statePublisher.bind("tcp://127.0.0.1:*")
        let endpoint = try #require(try statePublisher.lastEndpoint)
        let link = try ZMQRobotLink(context: context, stateEndpoint: endpoint, commandEndpoint: "tcp://127.0.0.1:9",
                                    observationDimensions: 20, actionDimensions: 2)
        // Nobody publishes: an error naming the endpoint, after the limit.
        #expect { try link.awaitDescription(timeoutSeconds: 0.05) } throws: {
            ($0 as? RuntimeError) == .robotSilent(endpoint: endpoint, seconds: 0.05)
        }
        var state = Wire.RobotState()
        state.observation = [Float](repeating: 1, count: 5)
        state.controlRateHz = 20
        state.actionDimensions = 7
        state.robot = "arm"
        let frame = Wire.encode(Wire.envelope(sequence: 1, .robotState(state)))
        let handed = Handed(statePublisher)
        let publisher = Peer {
            for _ in 0..<2000 {
                try handed.value.send(frame)
                usleep(1000)
            }
        }
        var description = try link.awaitDescription(timeoutSeconds: generousTimeoutSeconds)
        #expect(description.stateArrival != nil)
        description.stateArrival = nil
        #expect(description == RobotDescription(name: "arm", observationDimensions: 5, actionDimensions: 7,
                                                controlRateHz: 20, cameras: []))
        _ = try? publisher.join()
    }
}
