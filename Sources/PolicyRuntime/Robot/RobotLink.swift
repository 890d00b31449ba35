import FlowPolicy
import SimBridge

/// What the control loop learns from one robot state besides the observation.
public struct RobotStateInfo: Equatable, Sendable {
    /// The robot's episode counter (the simulated robot uses the episode's seed).
    public var episode: UInt64
    /// Control steps the robot applied in this episode.
    public var step: UInt64
    public var episodeStart: Bool
    public var done: Bool
    public var success: Bool
    public var progress: Double
    /// When the robot took the state (its monotonic clock, ns) and its sequence number (answered by commands).
    public var timestampNanoseconds: UInt64
    public var sequence: UInt64

    public init(episode: UInt64, step: UInt64, episodeStart: Bool, done: Bool, success: Bool, progress: Double,
                timestampNanoseconds: UInt64, sequence: UInt64) {
        self.episode = episode
        self.step = step
        self.episodeStart = episodeStart
        self.done = done
        self.success = success
        self.progress = progress
        self.timestampNanoseconds = timestampNanoseconds
        self.sequence = sequence
    }
}

/// Whether a command moves the robot or keeps its last applied action.
public enum CommandMode: Sendable, Equatable {
    case act
    case hold
}

/// The robot as the control loop sees it: the newest state, and commands. ZeroMQ (`ZMQRobotLink`) and the
/// in-process environment (`EnvironmentRobot`) are adapters; the loop knows nothing of either.
public protocol RobotLink: AnyObject {
    var observationDimensions: Int { get }
    var actionDimensions: Int { get }
    /// The newest state that arrived since the last call, if any (older unread ones are dropped): writes its
    /// observation (`[Do]`) and returns the rest. Never blocks.
    func receiveLatest(observation: UnsafeMutablePointer<Float>) throws -> RobotStateInfo?
    /// Commands `action` (`[Da]`, ignored for HOLD), answering the state `answering` (nil if none was seen).
    func send(_ mode: CommandMode, action: UnsafePointer<Float>, answering: RobotStateInfo?, step: Int) throws
}

/// An `Environment` driven directly by the loop, in real time: each command applies one control step (HOLD repeats
/// the last applied action; HOLD before any action leaves the simulation where it is), and the resulting state is
/// there at the next `receiveLatest`. Episodes follow each other with consecutive seeds; outcomes are kept.
public final class EnvironmentRobot: RobotLink {
    public let environment: any Environment
    public let clock: ControlClock
    public var observationDimensions: Int { environment.specification.observationDimensions }
    public var actionDimensions: Int { environment.specification.actionDimensions }
    /// Seeds of the episodes to run, in order; the robot stops producing states after the last one ends.
    public let seeds: [UInt64]
    public private(set) var episodeIndex = 0
    public private(set) var outcomes: [EpisodeOutcome] = []
    /// Whether every episode has ended.
    public var isFinished: Bool { episodeIndex >= seeds.count }

    private let observation: UnsafeMutablePointer<Float>
    private let lastAction: UnsafeMutablePointer<Float>
    private var hasAction = false
    private var fresh = true
    private var info: RobotStateInfo
    private var sequence: UInt64 = 0
    private var maxProgress = 0.0

    public struct EpisodeOutcome: Codable, Sendable, Equatable {
        public var seed: UInt64
        public var success: Bool
        public var steps: Int
        public var maxProgress: Double
        public var failure: String?
    }

    public init(environment: any Environment, seeds: [UInt64], clock: ControlClock) throws {
        precondition(!seeds.isEmpty)
        self.environment = environment
        self.seeds = seeds
        self.clock = clock
        let specification = environment.specification
        observation = .allocate(capacity: specification.observationDimensions)
        observation.initialize(repeating: 0, count: specification.observationDimensions)
        lastAction = .allocate(capacity: specification.actionDimensions)
        lastAction.initialize(repeating: 0, count: specification.actionDimensions)
        info = RobotStateInfo(episode: seeds[0], step: 0, episodeStart: true, done: false, success: false,
                              progress: 0, timestampNanoseconds: 0, sequence: 0)
        try startEpisode()
    }

    deinit {
        observation.deallocate()
        lastAction.deallocate()
    }

    private func startEpisode() throws {
        try environment.reset(seed: seeds[episodeIndex], observation: observation)
        hasAction = false
        maxProgress = 0
        sequence += 1
        info = RobotStateInfo(episode: seeds[episodeIndex], step: 0, episodeStart: true, done: false, success: false,
                              progress: 0, timestampNanoseconds: clock.now(), sequence: sequence)
        fresh = true
    }

    public func receiveLatest(observation destination: UnsafeMutablePointer<Float>) throws -> RobotStateInfo? {
        guard fresh, !isFinished else { return nil }
        fresh = false
        destination.update(from: observation, count: observationDimensions)
        // The state is read now, as a sensor would be.
        info.timestampNanoseconds = clock.now()
        return info
    }

    public func send(_ mode: CommandMode, action: UnsafePointer<Float>, answering: RobotStateInfo?, step: Int) throws {
        guard !isFinished else { return }
        if info.done {
            // The final state was seen; the next episode starts.
            outcomes.append(EpisodeOutcome(seed: info.episode, success: info.success, steps: Int(info.step),
                                           maxProgress: maxProgress, failure: nil))
            episodeIndex += 1
            if !isFinished { try startEpisode() }
            return
        }
        if mode == .act {
            lastAction.update(from: action, count: actionDimensions)
            hasAction = true
        }
        guard hasAction else { return }
        let result: StepResult
        do {
            result = try environment.step(action: lastAction, observation: observation)
        } catch {
            outcomes.append(EpisodeOutcome(seed: info.episode, success: false, steps: Int(info.step),
                                           maxProgress: maxProgress, failure: "\(error)"))
            episodeIndex += 1
            if !isFinished { try startEpisode() }
            return
        }
        maxProgress = max(maxProgress, result.progress)
        sequence += 1
        info = RobotStateInfo(episode: info.episode, step: info.step + 1, episodeStart: false, done: result.done,
                              success: info.success || result.success, progress: result.progress,
                              timestampNanoseconds: clock.now(), sequence: sequence)
        fresh = true
    }
}
