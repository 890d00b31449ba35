import FlowPolicy
import PolicyRuntime
import SimBridge

/// What happened in one episode: the figures every report draws from.
public struct EpisodeOutcome: Codable, Sendable, Equatable {
    public var seed: UInt64
    public var success: Bool
    public var steps: Int
    /// Largest progress in the episode (Push-T: coverage; the kitchen: subtasks done).
    public var maxProgress: Double
    public var finalProgress: Double
    public var totalReward: Double
    public var clippedActions: Int
    /// The step at which each of the task's progress levels was first reached (nil: never), in the order of its
    /// `progressLevels` (Franka Kitchen: when the first, second, ... subtask was done).
    public var stepsToProgressLevels: [Int?]
    /// Why the episode stopped early (a non-finite action, a diverged simulation), if it did.
    public var failure: String?

    public init(seed: UInt64, progressLevelCount: Int) {
        self.seed = seed
        success = false
        steps = 0
        maxProgress = 0
        finalProgress = 0
        totalReward = 0
        clippedActions = 0
        stepsToProgressLevels = Array(repeating: nil, count: progressLevelCount)
    }
}

/// A task environment's episodes, one at a time. Every episode loop (evaluation, expert runs, collection, replay,
/// certification, the simulated robots, the environment benchmark) steps through one, so episodes start, are
/// scored and end one way.
///
/// `step` applies an action, writes the next observation into `observation` and records the step in `outcome`; it
/// allocates nothing, so a real-time loop can call it every period. An environment error (a non-finite action, a
/// diverged simulation) ends the episode as a failure, with the reason, and is not thrown: the episode is over,
/// the run goes on. Not `Sendable`: one thread at a time.
public final class Rollout {
    public let environment: any Environment
    public let specification: EnvironmentSpecification
    /// The newest observation, `[Do]`.
    public let observation: UnsafeMutablePointer<Float>
    /// The last action applied, `[Da]` (valid once `hasAction`).
    public let lastAction: UnsafeMutablePointer<Float>
    public private(set) var hasAction = false
    public private(set) var outcome: EpisodeOutcome
    /// The episode has ended: the environment said so, or it failed.
    public private(set) var isDone = false
    /// A task with cameras: its frames of the newest observation, `[Σ H*W*C]` (cameras in order), drawn after
    /// every reset and step; nil for a task without cameras.
    public let frames: UnsafeMutablePointer<UInt8>?
    public var frameBytes: Int { cameraEnvironment?.frameBytes ?? 0 }
    private let cameraEnvironment: (any CameraEnvironment)?
    /// The mid-episode push of every episode (`setDisturbance`), nil for none.
    public private(set) var disturbance: Disturbance?
    private let disturbableEnvironment: (any DisturbableEnvironment)?

    public init(environment: any Environment) {
        self.environment = environment
        specification = environment.specification
        observation = .allocate(capacity: specification.observationDimensions)
        observation.initialize(repeating: 0, count: specification.observationDimensions)
        lastAction = .allocate(capacity: specification.actionDimensions)
        lastAction.initialize(repeating: 0, count: specification.actionDimensions)
        outcome = EpisodeOutcome(seed: 0, progressLevelCount: specification.progressLevels.count)
        let cameras = (environment as? any CameraEnvironment).flatMap { $0.cameraNames.isEmpty ? nil : $0 }
        cameraEnvironment = cameras
        frames = cameras.map { UnsafeMutablePointer<UInt8>.allocate(capacity: $0.frameBytes) }
        if let cameras { frames?.initialize(repeating: 0, count: cameras.frameBytes) }
        disturbableEnvironment = environment as? any DisturbableEnvironment
    }

    /// A rollout of a new environment of `task`.
    public convenience init(task: TaskDescription) throws {
        self.init(environment: try task.makeEnvironment())
    }

    deinit {
        observation.deallocate()
        lastAction.deallocate()
        frames?.deallocate()
    }

    /// Pushes every episode once, after `disturbance.step` control steps, before that step's action (the push of the
    /// environment's `DisturbableEnvironment` conformance, its directions drawn from the episode's seed); nil: no push.
    /// Throws if the environment has no push or the step lies beyond its episodes.
    public func setDisturbance(_ disturbance: Disturbance?) throws {
        if let disturbance {
            guard disturbableEnvironment != nil else {
                throw EnvironmentError.invalidState("task \(specification.task) has no disturbance")
            }
            try disturbance.validate(maximumSteps: specification.maximumSteps)
        }
        self.disturbance = disturbance
    }

    /// What the push does, for reports (nil for an environment without one).
    public var disturbanceDescription: String? { disturbableEnvironment?.disturbanceDescription }

    /// Starts the episode of `seed` and writes its first observation. (Allocates nothing after the first episode.)
    public func reset(seed: UInt64) throws {
        try begin(seed: seed) { try $0.reset(seed: seed, observation: observation) }
    }

    /// Starts an episode some other way (an exact start for a replay): `start` puts the environment in its first
    /// state and writes the observation.
    public func begin(seed: UInt64, start: (any Environment) throws -> Void) throws {
        outcome.seed = seed
        outcome.success = false
        outcome.steps = 0
        outcome.maxProgress = 0
        outcome.finalProgress = 0
        outcome.totalReward = 0
        outcome.clippedActions = 0
        for i in outcome.stepsToProgressLevels.indices { outcome.stepsToProgressLevels[i] = nil }
        outcome.failure = nil
        hasAction = false
        isDone = false
        try start(environment)
        if let frames { try cameraEnvironment?.renderCameras(into: frames) }
    }

    /// Applies `action` (`[Da]`) for one control step and records it; returns the step's result, or nil if the
    /// environment failed (the episode then ends as a failure). Stepping on after the episode's end is allowed (a
    /// replay of a reference's actions does); the environment decides what that means. With a disturbance, the push
    /// comes first at its step (that step allocates).
    @discardableResult
    public func step(_ action: UnsafePointer<Float>) -> StepResult? {
        lastAction.update(from: action, count: specification.actionDimensions)
        hasAction = true
        let result: StepResult
        do {
            if let disturbance, outcome.steps == disturbance.step, let disturbableEnvironment {
                var random = Disturbance.random(episodeSeed: outcome.seed)
                try disturbableEnvironment.disturb(using: &random)
            }
            result = try environment.step(action: action, observation: observation)
            if let frames { try cameraEnvironment?.renderCameras(into: frames) }
        } catch {
            fail("\(error)")
            return nil
        }
        outcome.steps += 1
        outcome.totalReward += result.reward
        outcome.maxProgress = max(outcome.maxProgress, result.progress)
        outcome.finalProgress = result.progress
        for (i, level) in specification.progressLevels.enumerated()
        where outcome.stepsToProgressLevels[i] == nil && result.progress >= level {
            outcome.stepsToProgressLevels[i] = outcome.steps
        }
        outcome.success = outcome.success || result.success
        if result.actionClipped { outcome.clippedActions += 1 }
        if result.done { isDone = true }
        return result
    }

    /// Ends the episode as a failure.
    public func fail(_ reason: String) {
        outcome.failure = reason
        outcome.success = false
        isDone = true
    }

    /// A whole episode from `seed`: `begin` runs once the first observation is there, `act(observation, action)`
    /// writes each action (`[Do]` → `[Da]`), `observe` sees each step after it is taken. An error from `begin` or
    /// `act` ends the episode as a failure.
    public func run(seed: UInt64, begin: () throws -> Void = {},
                    act: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) throws -> Void,
                    observe: (StepResult) -> Void = { _ in }) -> EpisodeOutcome {
        let action = UnsafeMutablePointer<Float>.allocate(capacity: specification.actionDimensions)
        action.initialize(repeating: 0, count: specification.actionDimensions)
        defer { action.deallocate() }
        do {
            try reset(seed: seed)
            try begin()
        } catch {
            fail("\(error)")
            return outcome
        }
        while !isDone {
            do {
                try act(observation, action)
            } catch {
                fail("\(error)")
                break
            }
            if let result = step(action) { observe(result) }
        }
        return outcome
    }
}

/// A task's scripted expert acting in a rollout, one whole episode per call.
public final class ExpertRunner {
    public let rollout: Rollout
    public let expert: any Expert

    public init(task: TaskDescription) throws {
        rollout = try Rollout(task: task)
        expert = try task.makeExpert(environment: rollout.environment)
    }

    /// The episode of `seed`; `record(observation, action)` sees each action with the observation it answers.
    public func run(seed: UInt64, record: (UnsafePointer<Float>, UnsafePointer<Float>) -> Void = { _, _ in })
        -> EpisodeOutcome
    {
        rollout.run(seed: seed, begin: { try expert.begin(episodeSeed: seed) }) { observation, action in
            try expert.act(action: action)
            record(observation, action)
        }
    }
}
