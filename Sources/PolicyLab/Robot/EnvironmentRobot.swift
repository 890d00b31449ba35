import FlowPolicy
import PolicyRuntime
import SimBridge

/// A task's environment driven directly by the control loop, in real time: each command applies one control step
/// (HOLD repeats the last applied action, or commands zero for a velocity-commanded task; HOLD before any action
/// leaves the simulation where it is), and the resulting state is there at the next `receiveLatest`. Episodes follow
/// each other with consecutive seeds; outcomes are kept. A task with cameras delivers the rollout's frames with
/// each state. Allocates nothing per period.
public final class EnvironmentRobot: RobotLink {
    public let rollout: Rollout
    public let name: String
    public let clock: ControlClock
    public var observationDimensions: Int { rollout.specification.observationDimensions }
    public var actionDimensions: Int { rollout.specification.actionDimensions }
    public let cameras: [CameraSpec]
    /// Seeds of the episodes to run, in order; the robot stops producing states after the last one ends.
    public let seeds: [UInt64]
    public private(set) var episodeIndex = 0
    public private(set) var outcomes: [EpisodeOutcome] = []
    /// Whether every episode has ended.
    public var isFinished: Bool { episodeIndex >= seeds.count }

    private var fresh = true
    private var info: RobotStateInfo
    private var sequence: UInt64 = 0
    /// Velocity-commanded: HOLD means zero, not "keep going".
    private let holdsWithZero: Bool

    /// A new environment of `task`, running the episodes of `seeds`.
    public init(task: TaskDescription, seeds: [UInt64], clock: ControlClock) throws {
        precondition(!seeds.isEmpty)
        rollout = try Rollout(task: task)
        cameras = task.cameraSpecs
        name = "\(task.name) in process (seeds \(seeds[0])-\(seeds[seeds.count - 1]))"
        holdsWithZero = task.interface.actionKind == "velocity"
        self.seeds = seeds
        self.clock = clock
        outcomes.reserveCapacity(seeds.count)
        info = RobotStateInfo(episode: seeds[0], step: 0, episodeStart: true, done: false, success: false,
                              progress: 0, timestampNanoseconds: 0, sequence: 0)
        try startEpisode()
    }

    private func startEpisode() throws {
        try rollout.reset(seed: seeds[episodeIndex])
        sequence += 1
        info = RobotStateInfo(episode: seeds[episodeIndex], step: 0, episodeStart: true, done: false, success: false,
                              progress: 0, timestampNanoseconds: clock.now(), sequence: sequence)
        fresh = true
    }

    /// Records the episode's outcome and starts the next one, if any.
    private func endEpisode() throws {
        outcomes.append(rollout.outcome)
        episodeIndex += 1
        if !isFinished { try startEpisode() }
    }

    public func awaitDescription(timeoutSeconds: Double) throws -> RobotDescription {
        RobotDescription(name: name, observationDimensions: observationDimensions, actionDimensions: actionDimensions,
                         controlRateHz: rollout.specification.controlRate, cameras: cameras)
    }

    public func receiveLatest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>)
        throws -> RobotStateInfo?
    {
        try receiveLatest(observation: observation, appliedAction: appliedAction, frames: nil)
    }

    public func receiveLatest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>,
                              frames: UnsafeMutablePointer<UInt8>?) throws -> RobotStateInfo?
    {
        guard fresh, !isFinished else { return nil }
        if let frames, let rendered = rollout.frames { frames.update(from: rendered, count: rollout.frameBytes) }
        fresh = false
        observation.update(from: rollout.observation, count: observationDimensions)
        info.hasAppliedAction = rollout.hasAction
        if rollout.hasAction { appliedAction.update(from: rollout.lastAction, count: actionDimensions) }
        // The state is read now, as a sensor would be.
        info.timestampNanoseconds = clock.now()
        return info
    }

    public func send(_ mode: CommandMode, action: UnsafePointer<Float>, answering: RobotStateInfo?, step: Int) throws {
        guard !isFinished else { return }
        if info.done {
            // The final state was seen; the next episode starts.
            try endEpisode()
            return
        }
        guard mode == .act || rollout.hasAction else { return }
        if mode == .hold && holdsWithZero { rollout.lastAction.update(repeating: 0, count: actionDimensions) }
        let applied = mode == .act ? action : UnsafePointer(rollout.lastAction)
        guard let result = rollout.step(applied) else {
            try endEpisode()  // the simulation failed: the episode ends as a failure
            return
        }
        sequence += 1
        info = RobotStateInfo(episode: info.episode, step: info.step + 1, episodeStart: false, done: result.done,
                              success: rollout.outcome.success, progress: result.progress,
                              timestampNanoseconds: clock.now(), sequence: sequence)
        fresh = true
    }
}
