import FlowPolicy
import Foundation
import PolicyLab
import PolicyRuntime
import SimBridge
import RuntimeTestSupport
import Testing

/// The robot side of a test: subscribes to a simulated robot's states and publishes commands answering them.
private final class RobotDriver {
    let states: ZMQSocket
    let commands: ZMQSocket
    private var sequence: UInt64 = 0
    private var lastCommand: [UInt8]?

    init(_ context: ZMQContext, state: String, command: String) throws {
        states = try makeSocket(.subscribe, context)
        try states.subscribe()
        try states.connect(state)
        commands = try makeSocket(.publish, context)
        try commands.connect(command)
    }

    /// The next state whose sequence is newer than `after`. A lock-step robot re-publishes the state that waits for
    /// its command; seeing the answered state again means the answer was lost (a connection still being made), so it
    /// is sent again.
    func state(after: UInt64) throws -> (state: Wire.RobotState, sequence: UInt64) {
        while true {
            let envelope = try Wire.decode(try #require(try states.receive()))
            guard case .robotState(let state) = envelope.body else { throw WireError(.unexpectedMessage, "") }
            if envelope.sequence > after { return (state, envelope.sequence) }
            if envelope.sequence == after, let lastCommand { try commands.send(lastCommand) }
        }
    }

    /// Sends a command answering the state `answering`; `remember: false` keeps it from being re-sent.
    func command(_ mode: Wire.ActionCommand.Mode, _ values: [Float], answering: UInt64, remember: Bool = true)
        throws
    {
        var command = Wire.ActionCommand()
        command.mode = mode
        command.values = values
        command.stateSequence = answering
        sequence += 1
        let frame = Wire.encode(Wire.envelope(sequence: sequence, .actionCommand(command)))
        if remember { lastCommand = frame }
        try commands.send(frame)
    }
}

@Suite struct SimulatedRobotTests {
    /// A scripted target circling the field.
    static func action(_ step: Int) -> [Float] {
        let angle = Float(step) * 0.15
        return [256 + 150 * cosf(angle), 256 + 150 * sinf(angle)]
    }

    @Test func lockStepRobotAppliesExactlyOneControlStepPerCommand() throws {
        let context = try ZMQContext()
        var options = SimulatedRobot.Options(task: try .named("pusht"), stateEndpoint: "tcp://127.0.0.1:*")
        options.lockStep = true
        options.firstSeed = 100_007
        options.episodes = 1
        let robot = Handed(try SimulatedRobot(options: options, context: context))
        let driver = try RobotDriver(context, state: robot.value.stateEndpoint, command: robot.value.commandEndpoint)
        let running = Peer { try robot.value.run() }

        // The same episode in process, with the same commands.
        let reference = try TaskDescription.named("pusht").makeEnvironment()
        var expected = try reference.reset(seed: 100_007)
        var (state, sequence) = try driver.state(after: 0)
        #expect(state.episodeStart && state.episodeID == 100_007 && state.observation == expected && state.lockStep)
        var step = 0
        var last = Self.action(0)
        while !state.done {
            // Mostly ACT; every 7th step HOLD (repeats the last action); step 22 sends a NaN (refused: holds).
            let mode: Wire.ActionCommand.Mode = step % 7 == 6 ? .hold : .act
            var values = Self.action(step)
            if step == 22 { values[1] = .nan }
            if mode == .act && step != 22 { last = values }
            // A command answering an older state is ignored.
            if step == 5 { try driver.command(.act, [0, 0], answering: sequence - 1, remember: false) }
            try driver.command(mode, values, answering: sequence)
            let result: StepResult
            (expected, result) = try reference.step(last)
            (state, sequence) = try driver.state(after: sequence)
            step += 1
            #expect(state.observation == expected && state.step == UInt64(step), "step \(step)")
            #expect(state.appliedAction == last && state.done == result.done && state.progress == result.progress)
            if state.observation != expected { break }
        }
        #expect(step == 300 && state.refusedCommands == 1, "\(step) \(state.refusedCommands)")
        // Answering the final state ends the episode; the robot was asked for one.
        try driver.command(.hold, [], answering: sequence)
        let summary = try running.join()
        #expect(summary.episodes.count == 1 && summary.episodes[0].steps == 300 && summary.episodes[0].seed == 100_007)
        // One stale command sent on purpose (re-sent answers that crossed a re-publication may add more).
        #expect(summary.appliedCommands == 300 && summary.refusedCommands == 1 && summary.staleCommands >= 1,
                "\(summary)")
    }

    @Test func holdBeforeAnyActionLeavesTheSimulationWhereItIsAndEpisodesFollowEachOther() throws {
        let context = try ZMQContext()
        var options = SimulatedRobot.Options(task: try .named("pusht"), stateEndpoint: "tcp://127.0.0.1:*")
        options.lockStep = true
        options.firstSeed = 5
        options.episodes = 2
        options.republishMilliseconds = 1
        let robot = Handed(try SimulatedRobot(options: options, context: context))
        let driver = try RobotDriver(context, state: robot.value.stateEndpoint, command: robot.value.commandEndpoint)
        let running = Peer { try robot.value.run() }
        var (state, sequence) = try driver.state(after: 0)
        let first = state.observation
        // The waiting state is re-published meanwhile, under the same sequence number: the answer still counts.
        usleep(20_000)
        try driver.command(.hold, [], answering: sequence)
        (state, sequence) = try driver.state(after: sequence)
        #expect(state.observation == first && state.step == 0 && !state.episodeStart)
        for (seed, target) in [(UInt64(5), Float(300)), (6, 200)] {
            if seed == 6 {
                #expect(state.episodeStart && state.episodeID == 6 && state.step == 0)
                #expect(state.observation == (try TaskDescription.named("pusht").makeEnvironment().reset(seed: 6)))
            }
            while !state.done {
                try driver.command(.act, [target, target], answering: sequence)
                (state, sequence) = try driver.state(after: sequence)
            }
            #expect(state.episodeID == seed && state.step == 300)
            try driver.command(.hold, [], answering: sequence)  // answering the final state starts the next episode
            if seed == 5 { (state, sequence) = try driver.state(after: sequence) }
        }
        let summary = try running.join()
        #expect(summary.episodes.map(\.seed) == [5, 6] && summary.episodes.allSatisfy { $0.steps == 300 })
    }

    @Test func aTaskWithCamerasPublishesTheRenderedFrameOfEachState() throws {
        let context = try ZMQContext()
        let task = try TaskDescription.named("pusht_image")
        var options = SimulatedRobot.Options(task: task, stateEndpoint: "tcp://127.0.0.1:*")
        options.lockStep = true
        options.firstSeed = 11
        options.episodes = 1
        let robot = Handed(try SimulatedRobot(options: options, context: context))
        #expect(robot.value.cameras == [CameraSpec(name: "image", height: 96, width: 96, channels: 3)])
        let driver = try RobotDriver(context, state: robot.value.stateEndpoint, command: robot.value.commandEndpoint)
        let running = Peer { try robot.value.run(shouldStop: { false }) }

        // The same states in process, rendered by the task's own camera.
        let reference = try #require(try task.makeEnvironment() as? any CameraEnvironment)
        _ = try reference.reset(seed: 11)
        var expected = [UInt8](repeating: 0, count: 96 * 96 * 3)
        var (state, sequence) = try driver.state(after: 0)
        for step in 0..<3 {
            try expected.withUnsafeMutableBufferPointer { try reference.renderCameras(into: $0.baseAddress!) }
            #expect(state.frames.count == 1, "step \(step)")
            let frame = try #require(state.frames.first)
            #expect(frame.camera == "image" && frame.height == 96 && frame.width == 96 && frame.channels == 3)
            #expect(frame.encoding == .rawUint8 && Array(frame.data) == expected, "step \(step)")
            // The frame is checked as `run` checks it.
            var copied = [UInt8](repeating: 0, count: expected.count)
            try copied.withUnsafeMutableBufferPointer {
                try CameraFrames.copyCurrent(state.frames, cameras: robot.value.cameras, into: $0.baseAddress)
            }
            #expect(copied == expected)
            let target = Self.action(step)
            try driver.command(.act, target, answering: sequence)
            _ = try reference.step(target)
            (state, sequence) = try driver.state(after: sequence)
        }
        #expect(expected.contains { $0 != expected[0] }, "the frame shows something")
        while !state.done {
            try driver.command(.act, [256, 256], answering: sequence)
            (state, sequence) = try driver.state(after: sequence)
        }
        try driver.command(.hold, [], answering: sequence)
        _ = try running.join()
    }
}
