import FlowPolicy
import PolicyRuntime
import Foundation
import SimBridge

/// `flowpolicy robot`: a MuJoCo task behind the same ZeroMQ interface as a physical arm. It binds a PUB socket for
/// `RobotState` and a SUB socket for `ActionCommand`, and runs seeded episodes one after another.
///
/// - Real time: every control period (absolute deadlines) it applies the newest command and publishes the state.
/// - Lock-step: it publishes a state and waits for the command that answers it (`state_sequence` equal to the
///   state's sequence), re-publishing the state meanwhile; each answer applies exactly one control step. Commands
///   answering other states are ignored. A run is then reproducible whatever the timing.
///
/// The robot guards itself, as a real arm's bridge must (README, "The arm's bridge"): ACT applies `values` only if they
/// are `Da` finite numbers within the robot's own limits (its task's bounds and largest step change from the last
/// applied action); otherwise the command is refused, counted, and the robot holds. HOLD keeps a position-commanded
/// robot at its last target and brings a velocity-commanded one (the kitchen's joint velocities) to zero; before any
/// action, it leaves the simulation where it is. In real time, when no command has come for `holdAfterPeriods`
/// periods (a dead or frozen controller) the robot holds by itself. When an episode ends, the final state says
/// `done`; the command answering it (lock-step) or the next period (real time) starts the next episode.
///
/// A task with cameras (a `CameraEnvironment` naming some) publishes each camera's current frame, rendered from the
/// state the observation describes, in `RobotState.frames` (raw uint8, `[H, W, C]`, in the task's camera order).
public final class SimulatedRobot {
    public struct Options: Sendable {
        public var task: TaskDescription
        /// Where to publish states, e.g. `tcp://*:5556` or `tcp://127.0.0.1:*`.
        public var stateEndpoint: String
        /// Where to take commands; nil means the state port + 1 (or any free port with a wildcard state endpoint).
        public var commandEndpoint: String?
        public var lockStep = false
        /// First episode seed; nil means the task's evaluation seeds.
        public var firstSeed: UInt64?
        /// Episodes to run; nil runs until stopped.
        public var episodes: Int?
        /// Lock-step: re-publish the waiting state this often (late subscribers, lost messages).
        public var republishMilliseconds = 20
        /// Real time: periods per second; nil means the task's control rate.
        public var rate: Double?
        /// Real time: when (`CLOCK_MONOTONIC` ns) the first period begins; nil means at once.
        public var start: UInt64?
        /// Who may subscribe and command: CURVE keys and allow-list, or plain ZeroMQ on loopback.
        public var credentials = Credentials.none
        /// Real time: hold when no command has come for this many periods.
        public var holdAfterPeriods = 3

        public init(task: TaskDescription, stateEndpoint: String) {
            self.task = task
            self.stateEndpoint = stateEndpoint
        }
    }

    public struct Summary: Codable, Sendable {
        public var task: String
        public var lockStep: Bool
        public var episodes: [EpisodeOutcome]
        public var appliedCommands: Int
        public var refusedCommands: Int
        /// Lock-step: commands that answered another state than the one waiting.
        public var staleCommands: Int
        /// Real time: times the robot held by itself because commands had stopped.
        public var commandTimeouts: Int
        public var statesPublished: Int
    }

    public let options: Options
    public let rollout: Rollout
    public let stateSocket: ZMQSocket
    public let commandSocket: ZMQSocket
    /// The endpoints as bound (wildcards resolved).
    public let stateEndpoint: String
    public let commandEndpoint: String
    /// The context's authentication (CURVE), when the robot has keys.
    public let authentication: ZAPHandler?

    private let specification: EnvironmentSpecification
    /// The task's cameras (none without); the rollout draws their frames with each state.
    public let cameras: [CameraSpec]
    /// The action applied each step, `[Da]`: the last command accepted, or zero for a held velocity-commanded robot.
    private let action: UnsafeMutablePointer<Float>
    private var hasAction = false
    /// Velocity-commanded: HOLD means zero, not "keep going".
    private let holdsWithZero: Bool
    /// The robot's own limits (its task's bounds and largest step change), checked on every command.
    private var filter: SafetyFilter
    private var periodsWithoutCommand = 0
    private var state = Wire.RobotState()
    private var sequence: UInt64 = 0
    private var seed: UInt64
    private var summary: Summary
    private let poller = ZMQPoller(capacity: 1)

    public init(options: Options, context: ZMQContext) throws {
        self.options = options
        rollout = try Rollout(task: options.task)
        specification = rollout.specification
        cameras = options.task.cameraSpecs
        seed = options.firstSeed ?? options.task.evaluationSeed
        authentication = try options.credentials.startAuthentication(context)
        stateSocket = try ZMQSocket(.publish, context: context)
        try options.credentials.serverSecurity(binding: options.stateEndpoint, authentication: authentication)
            .apply(to: stateSocket)
        try stateSocket.setOption(.sendHighWaterMark, 16)
        try stateSocket.bind(options.stateEndpoint)
        stateEndpoint = try stateSocket.lastEndpoint ?? options.stateEndpoint
        commandSocket = try ZMQSocket(.subscribe, context: context)
        let commandEndpoint = options.commandEndpoint
            ?? (options.stateEndpoint.hasSuffix(":*") ? String(options.stateEndpoint.dropLast()) + "*" : nil)
            ?? RobotEndpoints.defaultCommandEndpoint(forState: options.stateEndpoint)
        guard let commandEndpoint else {
            throw RuntimeError.invalidConfiguration(
                "cannot derive the command endpoint from \(options.stateEndpoint); give it explicitly")
        }
        try options.credentials.serverSecurity(binding: commandEndpoint, authentication: authentication)
            .apply(to: commandSocket)
        try commandSocket.subscribe()
        try commandSocket.bind(commandEndpoint)
        self.commandEndpoint = try commandSocket.lastEndpoint ?? commandEndpoint
        _ = try poller.register(commandSocket)
        action = .allocate(capacity: specification.actionDimensions)
        action.initialize(repeating: 0, count: specification.actionDimensions)
        summary = Summary(task: options.task.name, lockStep: options.lockStep, episodes: [], appliedCommands: 0,
                          refusedCommands: 0, staleCommands: 0, commandTimeouts: 0, statesPublished: 0)
        holdsWithZero = options.task.interface.actionKind == "velocity"
        filter = SafetyFilter(limits: try SafetyLimits(task: options.task))
    }

    deinit {
        action.deallocate()
    }

    /// Runs episodes until `options.episodes` have ended or `shouldStop()` (checked at least every period).
    public func run(shouldStop: () -> Bool = { false }) throws -> Summary {
        try startEpisode()
        if options.lockStep {
            try runLockStep(shouldStop: shouldStop)
        } else {
            try runRealTime(shouldStop: shouldStop)
        }
        return summary
    }

    private var finished: Bool { options.episodes.map { summary.episodes.count >= $0 } ?? false }

    private func startEpisode() throws {
        try rollout.reset(seed: seed)
        hasAction = false
        state = Wire.RobotState()
        state.episodeID = seed
        state.episodeStart = true
        state.lockStep = options.lockStep
        state.refusedCommands = UInt64(summary.refusedCommands)
        state.observation = Array(UnsafeBufferPointer(start: rollout.observation,
                                                      count: specification.observationDimensions))
        state.controlRateHz = options.rate ?? specification.controlRate
        state.actionDimensions = UInt32(specification.actionDimensions)
        state.robot = "simulated \(options.task.name)"
    }

    /// Ends the episode after its final state was answered, and starts the next one unless done.
    private func endEpisode() throws {
        summary.episodes.append(rollout.outcome)
        seed += 1
        if !finished { try startEpisode() }
    }

    /// Publishes the current state; `again` re-sends the state that waits for its command, under the same sequence
    /// number (so a command answering the first copy still answers it).
    private func publishState(again: Bool = false) throws {
        if !again {
            sequence += 1
            if let frames = rollout.frames { state.frames = CameraFrames.make(frames, cameras: cameras, steps: 1) }
        }
        try stateSocket.send(Wire.encode(Wire.envelope(sequence: sequence, .robotState(state))), flags: .dontWait)
        summary.statesPublished += 1
    }

    /// Applies one command: one control step (or none for HOLD before any action). A failed simulation step ends
    /// the episode.
    private func apply(_ command: Wire.ActionCommand, sequence commandSequence: UInt64) {
        var holding = command.mode != .act
        if command.mode == .act {
            let acceptable = command.values.count == specification.actionDimensions
                && command.values.allSatisfy(\.isFinite)
                && command.values.withUnsafeBufferPointer {
                    filter.check($0.baseAddress!, previous: hasAction ? UnsafePointer(action) : nil) == nil
                }
            if acceptable {
                command.values.withUnsafeBufferPointer {
                    action.update(from: $0.baseAddress!, count: specification.actionDimensions)
                }
                hasAction = true
            } else {
                summary.refusedCommands += 1
                holding = true
            }
        }
        if holding && holdsWithZero && hasAction {
            action.update(repeating: 0, count: specification.actionDimensions)
        }
        summary.appliedCommands += 1
        state.appliedCommandSequence = commandSequence
        state.refusedCommands = UInt64(summary.refusedCommands)
        state.episodeStart = false
        guard hasAction else { return }
        guard let result = rollout.step(action) else {
            state.done = true
            return
        }
        state.step += 1
        state.observation = Array(UnsafeBufferPointer(start: rollout.observation,
                                                      count: specification.observationDimensions))
        state.appliedAction = Array(UnsafeBufferPointer(start: action, count: specification.actionDimensions))
        state.done = result.done
        state.success = state.success || result.success
        state.progress = result.progress
        state.reward = result.reward
    }

    /// The next command on the socket, waiting at most `timeout`.
    private func receiveCommand(timeout: ZMQTimeout) throws -> (command: Wire.ActionCommand, sequence: UInt64)? {
        while true {
            if let frame = try commandSocket.receive(flags: .dontWait) {
                guard let envelope = try? Wire.decode(frame), case .actionCommand(let command) = envelope.body else {
                    summary.refusedCommands += 1
                    continue
                }
                return (command, envelope.sequence)
            }
            if try poller.poll(timeout: timeout) == 0 { return nil }
        }
    }

    private func runLockStep(shouldStop: () -> Bool) throws {
        try publishState()
        while !finished && !shouldStop() {
            guard let (command, commandSequence) = try receiveCommand(
                timeout: .milliseconds(options.republishMilliseconds))
            else {
                try publishState(again: true)  // nobody answered yet: say it again
                continue
            }
            guard command.stateSequence == sequence else {
                summary.staleCommands += 1
                continue
            }
            if state.done {
                try endEpisode()
            } else {
                apply(command, sequence: commandSequence)
            }
            if !finished { try publishState() }
        }
    }

    private func runRealTime(shouldStop: () -> Bool) throws {
        let clock = MonotonicClock()
        let rate = options.rate ?? specification.controlRate
        guard rate.isFinite, rate >= 0.1, rate <= 10_000 else {
            throw RuntimeError.invalidConfiguration("the robot's rate must be in [0.1, 10000] Hz, got \(rate)")
        }
        let period = UInt64((1e9 / rate).rounded())
        let start = options.start ?? clock.now()
        var k: UInt64 = 0
        clock.sleep(until: start)
        try publishState()
        while !finished && !shouldStop() {
            k += 1
            clock.sleep(until: start + k * period)
            if state.done {
                try endEpisode()
                if !finished { try publishState() }
                continue
            }
            // The newest command of the period wins. Without one, the last is applied again, until commands have
            // stopped for `holdAfterPeriods` periods: then the robot holds by itself.
            var newest: (command: Wire.ActionCommand, sequence: UInt64)?
            while let next = try receiveCommand(timeout: .zero) { newest = next }
            if let (command, commandSequence) = newest {
                periodsWithoutCommand = 0
                apply(command, sequence: commandSequence)
            } else if hasAction {
                periodsWithoutCommand += 1
                if periodsWithoutCommand == options.holdAfterPeriods { summary.commandTimeouts += 1 }
                var own = Wire.ActionCommand()
                own.mode = periodsWithoutCommand >= options.holdAfterPeriods ? .hold : .act
                own.values = Array(UnsafeBufferPointer(start: action, count: specification.actionDimensions))
                apply(own, sequence: state.appliedCommandSequence)
                summary.appliedCommands -= 1  // the robot's own command is not a command
            }
            try publishState()
        }
    }
}
