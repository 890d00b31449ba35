/// What an environment consumes and produces, and its timing.
public struct EnvironmentSpecification: Codable, Equatable, Sendable {
    public var task: String
    /// Name of the observation layout (e.g. `keypoints`, `state`).
    public var observationMode: String
    public var observationDimensions: Int
    public var actionDimensions: Int
    /// Actions are clipped to [actionLow, actionHigh] per dimension (and the clip is reported).
    public var actionLow: [Float]
    public var actionHigh: [Float]
    /// Control steps per second (one `step` call).
    public var controlRate: Double
    /// Seconds per physics step.
    public var physicsTimestep: Double
    /// Physics steps per control step.
    public var substeps: Int
    /// `step` reports `truncated` at this many control steps.
    public var maximumSteps: Int
    /// What `StepResult.progress` measures (e.g. `coverage`, `subtasks completed`).
    public var progressName: String
    /// Progress levels whose attainment evaluations report as proportions, with their names (the kitchen's
    /// p1..p4 are `[1, 2, 3, 4]` subtasks). Empty for tasks measured by success alone.
    public var progressLevels: [Double]
    public var progressLevelNames: [String]

    public init(task: String, observationMode: String, observationDimensions: Int, actionDimensions: Int,
                actionLow: [Float], actionHigh: [Float], controlRate: Double, physicsTimestep: Double,
                substeps: Int, maximumSteps: Int, progressName: String, progressLevels: [Double] = [],
                progressLevelNames: [String] = []) {
        self.task = task
        self.observationMode = observationMode
        self.observationDimensions = observationDimensions
        self.actionDimensions = actionDimensions
        self.actionLow = actionLow
        self.actionHigh = actionHigh
        self.controlRate = controlRate
        self.physicsTimestep = physicsTimestep
        self.substeps = substeps
        self.maximumSteps = maximumSteps
        self.progressName = progressName
        self.progressLevels = progressLevels
        self.progressLevelNames = progressLevelNames
    }
}

/// The outcome of one control step.
public struct StepResult: Equatable, Sendable {
    public var reward: Double
    /// The episode ended on its own (success, or a task-defined failure).
    public var terminated: Bool
    /// The episode hit `maximumSteps`.
    public var truncated: Bool
    public var success: Bool
    /// The task's progress measure: coverage for Push-T, subtasks completed for the kitchen.
    public var progress: Double
    /// Some action component was outside the bounds and was clipped.
    public var actionClipped: Bool

    public init(reward: Double, terminated: Bool, truncated: Bool, success: Bool, progress: Double,
                actionClipped: Bool) {
        self.reward = reward
        self.terminated = terminated
        self.truncated = truncated
        self.success = success
        self.progress = progress
        self.actionClipped = actionClipped
    }

    public var done: Bool { terminated || truncated }
}

/// A simulated task with a seeded reset and a fixed control rate.
///
/// `reset(seed:)` and `step(action:)` write the observation into a caller buffer of `observationDimensions` floats
/// and allocate nothing, so a control loop can run them every period. The same seed gives the same episode, bit
/// for bit, and `saveState()` / `restoreState(_:)` replay a rollout exactly. Not `Sendable`: one thread at a time.
public protocol Environment: AnyObject {
    var specification: EnvironmentSpecification { get }
    /// Control steps taken since the last reset.
    var stepCount: Int { get }
    /// Starts the episode of `seed` and writes its first observation.
    func reset(seed: UInt64, observation: UnsafeMutablePointer<Float>) throws
    /// Applies `action` (`actionDimensions` floats) for one control period and writes the next observation. Throws
    /// `EnvironmentError.nonFiniteAction` for NaN or infinite actions (nothing is applied) and `MuJoCoError` when the
    /// simulation fails.
    func step(action: UnsafePointer<Float>, observation: UnsafeMutablePointer<Float>) throws -> StepResult
    /// Everything needed to continue the episode exactly from here.
    func saveState() -> EnvironmentState
    func restoreState(_ state: EnvironmentState) throws
}

/// A snapshot of an environment: the MuJoCo state plus the task's own (controller state, step count).
public struct EnvironmentState: Equatable, Sendable {
    public var simulation: SimulationState
    public var task: [Double]
    public var stepCount: Int

    public init(simulation: SimulationState, task: [Double], stepCount: Int) {
        self.simulation = simulation
        self.task = task
        self.stepCount = stepCount
    }
}

extension Environment {
    /// Allocating convenience: the first observation of the episode of `seed`.
    public func reset(seed: UInt64) throws -> [Float] {
        var observation = [Float](repeating: 0, count: specification.observationDimensions)
        try observation.withUnsafeMutableBufferPointer { try reset(seed: seed, observation: $0.baseAddress!) }
        return observation
    }

    /// Allocating convenience: one control step.
    public func step(_ action: [Float]) throws -> (observation: [Float], result: StepResult) {
        precondition(
            action.count == specification.actionDimensions,
            "\(specification.task) expects \(specification.actionDimensions) action numbers, got \(action.count)")
        var observation = [Float](repeating: 0, count: specification.observationDimensions)
        let result = try action.withUnsafeBufferPointer { a in
            try observation.withUnsafeMutableBufferPointer {
                try step(action: a.baseAddress!, observation: $0.baseAddress!)
            }
        }
        return (observation, result)
    }
}

/// Errors of environments and task files. Messages say what was expected and what to do.
public enum EnvironmentError: Error, CustomStringConvertible, Equatable {
    case unknownTask(String, known: [String])
    case missingTaskFile(task: String, path: String)
    case invalidTaskFile(path: String, message: String)
    case nonFiniteAction(index: Int, value: Float)
    case invalidState(String)

    public var description: String {
        switch self {
        case .unknownTask(let name, let known):
            return "unknown task \"\(name)\"; known tasks: \(known.joined(separator: ", "))"
        case .missingTaskFile(let task, let path):
            return "the \(task) task file \(path) is missing; run flowpolicy from the repository (or set "
                + "FLOWPOLICY_TASKS to the folder that holds tasks/\(task)/)"
        case .invalidTaskFile(let path, let message):
            return "\(path): \(message)"
        case .nonFiniteAction(let index, let value):
            return "action component \(index) is \(value); the episode ends as a failure (the policy produced a "
                + "non-finite action)"
        case .invalidState(let message):
            return message
        }
    }
}
