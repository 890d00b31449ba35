import Foundation
import Yams

/// A task as a value: its `task.yaml`, read once, with the settings every task has (rate, horizons, hand-over, seeds,
/// bounds, safety limits, the observation and action layout), and the means to make its environment and its expert.
///
/// Commands turn a task name into a description once (`TaskDescription.named`); sessions take the description and
/// never look the task up again. Only simulation paths call `makeEnvironment`.
public struct TaskDescription: Sendable {
    /// The tasks flowpolicy simulates.
    public static let knownTasks = [
        "pusht", "pusht_image", "franka_kitchen", "robomimic_lift", "robomimic_lift_image", "robomimic_can",
        "robomimic_square",
    ]

    public let name: String
    public let summary: String
    public let folder: TaskFolder
    /// Control steps per second (one `Environment.step`).
    public let controlRate: Double
    public let maximumSteps: Int
    /// The environment's observation layout (`keypoints`, `state`, `dp`, `full`), for tasks that have several.
    public let observationMode: String?
    /// To, Ta, Tp.
    public let observationSteps: Int
    public let actionSteps: Int
    public let predictionSteps: Int
    /// How `eval` and `run` hand over between chunks unless told otherwise: `receding`, `ensemble` or `continuation`.
    public let handOver: String
    /// Demonstrations use seeds from `collectionSeed` up, evaluations from `evaluationSeed` up.
    public let collectionSeed: UInt64
    public let evaluationSeed: UInt64
    /// The environment's action bounds (it clips actions to them).
    public let actionLow: [Float]
    public let actionHigh: [Float]
    public let safety: Safety
    public let interface: Interface
    /// The cameras whose frames join the observation (task.yaml `cameras`; none for a low-dimensional task).
    public let cameras: [Camera]
    /// The text of `task.yaml`, for the task's own settings (`settings(_:)`).
    let text: String

    /// What every commanded action must respect (task.yaml `safety`).
    public struct Safety: Codable, Sendable, Equatable {
        /// Bounds of a commanded action when they differ from the environment's (a task whose environment clips,
        /// as Franka Kitchen's does, may accept a margin beyond them).
        public var actionLow: [Float]?
        public var actionHigh: [Float]?
        /// The largest change of any component between consecutive control steps (task units).
        public var maximumStepChange: [Float]
        /// Limits on the commanded signal's first, second and third time derivatives at the servo rate.
        public var maximumVelocity: [Float]?
        public var maximumAcceleration: [Float]?
        public var maximumJerk: [Float]?

        enum CodingKeys: String, CodingKey {
            case actionLow = "action_low", actionHigh = "action_high", maximumStepChange = "max_step_change"
            case maximumVelocity = "max_velocity", maximumAcceleration = "max_acceleration", maximumJerk = "max_jerk"
        }
    }

    /// A camera of a task with image observations: its name and frame size (RGB, `uint8 [H, W, 3]`).
    public struct Camera: Codable, Sendable, Equatable {
        public var name: String
        public var height: Int
        public var width: Int

        public init(name: String, height: Int, width: Int) {
            self.name = name
            self.height = height
            self.width = width
        }
    }

    /// The layout of observations and actions (task.yaml `interface`): named groups of dimensions with units.
    public struct Interface: Codable, Sendable, Equatable {
        public struct Group: Codable, Sendable, Equatable {
            public var name: String
            public var size: Int
            public var unit: String
        }

        /// `position`, `velocity` or `delta`: what an action component commands.
        public var actionKind: String
        public var actions: [Group]
        /// Per observation mode (`keypoints`, `dp`, ...), or under `default` for a task with one layout.
        public var observations: [String: [Group]]

        enum CodingKeys: String, CodingKey {
            case actionKind = "action_kind", actions, observations
        }
    }

    /// Reads `tasks/<name>/task.yaml` (see `TaskFolder` for where it is looked for).
    public static func named(_ name: String) throws -> TaskDescription {
        guard knownTasks.contains(name) else { throw EnvironmentError.unknownTask(name, known: knownTasks) }
        return try TaskDescription(folder: TaskFolder(task: name))
    }

    public init(folder: TaskFolder) throws(EnvironmentError) {
        let path = folder.path("task.yaml")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .missingTaskFile(task: folder.name, path: path)
        }
        let file: TaskFile
        do {
            file = try YAMLDecoder().decode(TaskFile.self, from: text)
        } catch {
            throw .invalidTaskFile(path: path, message: "\(error)")
        }
        func invalid(_ message: String) -> EnvironmentError { .invalidTaskFile(path: path, message: message) }
        guard file.task == folder.name else { throw invalid("task is \"\(file.task)\"; the folder is \(folder.name)") }
        let environment = file.environment
        guard environment.controlHz.isFinite, environment.controlHz > 0, environment.maxSteps >= 1 else {
            throw invalid("environment.control_hz and environment.max_steps must be positive")
        }
        let Da = environment.actionLow.count
        guard Da >= 1, environment.actionHigh.count == Da, file.safety.maximumStepChange.count == Da else {
            throw invalid("environment.action_low, environment.action_high and safety.max_step_change need one "
                + "number per action dimension")
        }
        let handOver = file.policy.handOver ?? "receding"
        guard ["receding", "ensemble", "continuation"].contains(handOver) else {
            throw invalid("policy.hand_over must be receding, ensemble or continuation, got \(handOver)")
        }
        guard file.interface.actions.reduce(0, { $0 + $1.size }) == Da else {
            throw invalid("interface.actions must add up to the \(Da) action dimensions")
        }
        guard ["position", "velocity", "delta"].contains(file.interface.actionKind) else {
            throw invalid("interface.action_kind must be position, velocity or delta, got \(file.interface.actionKind)")
        }
        let cameras = file.cameras ?? []
        guard cameras.allSatisfy({ (8...1024).contains($0.height) && (8...1024).contains($0.width) }),
              Set(cameras.map(\.height)).count <= 1, Set(cameras.map(\.width)).count <= 1
        else { throw invalid("cameras need a name and one frame size for all, 8 to 1024 pixels a side") }
        self.cameras = cameras
        self.folder = folder
        self.text = text
        name = file.task
        summary = file.description
        controlRate = environment.controlHz
        maximumSteps = environment.maxSteps
        observationMode = environment.observation
        observationSteps = file.policy.observationSteps
        actionSteps = file.policy.actionSteps
        predictionSteps = file.policy.predictionSteps
        self.handOver = handOver
        collectionSeed = file.seeds.collection
        evaluationSeed = file.seeds.evaluation
        actionLow = environment.actionLow
        actionHigh = environment.actionHigh
        safety = file.safety
        interface = file.interface
    }

    /// Decodes `task.yaml`, or the part of it that `T` describes (other keys are ignored).
    public func settings<T: Decodable>(_ type: T.Type) throws(EnvironmentError) -> T {
        do {
            return try YAMLDecoder().decode(T.self, from: text)
        } catch {
            throw .invalidTaskFile(path: folder.path("task.yaml"), message: "\(error)")
        }
    }

    /// The observation layout of `mode` (nil: the task's own mode), or nil if the task names none.
    public func observationGroups(mode: String? = nil) -> [Interface.Group]? {
        interface.observations[mode ?? observationMode ?? "default"] ?? interface.observations["default"]
    }

    /// A new environment of this task.
    public func makeEnvironment() throws -> any Environment {
        switch name {
        case "pusht", "pusht_image": return try PushT(task: self)
        case "franka_kitchen": return try FrankaKitchen(task: self)
        default: return try Robomimic(task: self)
        }
    }

    /// The task's scripted expert, acting in `environment` (which must be this task's environment).
    public func makeExpert(environment: any Environment) throws -> any Expert {
        switch environment {
        case let kitchen as FrankaKitchen: return try FrankaKitchenExpert(environment: kitchen)
        case let pushT as PushT: return try PushTExpert(environment: pushT)
        case let robomimic as Robomimic: return try RobomimicExpert(environment: robomimic)
        default: throw EnvironmentError.unknownTask("\(name) (no scripted expert)", known: [])
        }
    }

    /// The keys of `task.yaml` every task has.
    private struct TaskFile: Decodable {
        struct Environment: Decodable {
            var controlHz: Double
            var maxSteps: Int
            var observation: String?
            var actionLow: [Float]
            var actionHigh: [Float]
            enum CodingKeys: String, CodingKey {
                case controlHz = "control_hz", maxSteps = "max_steps", observation
                case actionLow = "action_low", actionHigh = "action_high"
            }
        }

        struct Policy: Decodable {
            var observationSteps: Int
            var actionSteps: Int
            var predictionSteps: Int
            var handOver: String?
            enum CodingKeys: String, CodingKey {
                case observationSteps = "observation_steps", actionSteps = "action_steps"
                case predictionSteps = "prediction_steps", handOver = "hand_over"
            }
        }

        struct Seeds: Decodable {
            var collection: UInt64
            var evaluation: UInt64
        }

        var task: String
        var description: String
        var environment: Environment
        var interface: Interface
        var policy: Policy
        var seeds: Seeds
        var safety: Safety
        var cameras: [Camera]?
    }
}
