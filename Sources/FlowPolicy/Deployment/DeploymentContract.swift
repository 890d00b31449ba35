import Foundation

/// What a robot computer needs to know to run a policy, carried by the checkpoint so that serving and running it need
/// nothing else: no task folder, no simulator, no assets.
///
/// `train`, `finetune` and `distill` write it from the task; `serve` reports it in `Metadata`; `run` checks the robot
/// against it and takes its rate, its hand-over and its limits. Stored in the checkpoint's metadata as the JSON object
/// `deployment` (keys below), so other tools can read it with any safetensors reader.
public struct DeploymentContract: Codable, Equatable, Sendable {
    /// A named run of consecutive dimensions of an observation or an action (`robot0_eef_pos`, 3, `m`).
    public struct SignalGroup: Codable, Equatable, Sendable {
        public var name: String
        public var size: Int
        public var unit: String

        public init(name: String, size: Int, unit: String) {
            self.name = name
            self.size = size
            self.unit = unit
        }
    }

    /// What an action component commands, which decides how it may be interpolated between the policy's actions.
    public enum ActionKind: String, Codable, Sendable {
        /// An absolute target (a position): interpolating between two targets is a path between them.
        case position
        /// A rate (a joint velocity): interpolating is a smooth change of rate.
        case velocity
        /// A change applied once per control period (robosuite's OSC delta): it cannot be split into servo commands.
        case delta
    }

    /// Control steps per second the policy was trained at (one action per step).
    public var controlRateHz: Double
    /// The observation's and the action's layout, in order; empty where the task names none.
    public var observations: [SignalGroup]
    public var actions: [SignalGroup]
    public var actionKind: ActionKind
    /// Bounds a commanded action must lie in, `[Da]` each.
    public var actionLow: [Float]
    public var actionHigh: [Float]
    /// The largest change of each component between consecutive control steps, `[Da]`.
    public var maximumStepChange: [Float]
    /// Limits on the commanded signal's first, second and third time derivatives at the servo rate (units per s,
    /// s², s³), `[Da]` each, where the task defines them.
    public var maximumVelocity: [Float]?
    public var maximumAcceleration: [Float]?
    public var maximumJerk: [Float]?
    /// How consecutive chunks hand over by default.
    public var handOver: ChunkHandOver

    enum CodingKeys: String, CodingKey {
        case controlRateHz = "control_rate_hz", observations, actions, actionKind = "action_kind"
        case actionLow = "action_low", actionHigh = "action_high", maximumStepChange = "max_step_change"
        case maximumVelocity = "max_velocity", maximumAcceleration = "max_acceleration", maximumJerk = "max_jerk"
        case handOver = "hand_over"
    }

    public init(controlRateHz: Double, observations: [SignalGroup] = [], actions: [SignalGroup] = [],
                actionKind: ActionKind, actionLow: [Float], actionHigh: [Float], maximumStepChange: [Float],
                maximumVelocity: [Float]? = nil, maximumAcceleration: [Float]? = nil, maximumJerk: [Float]? = nil,
                handOver: ChunkHandOver = .receding) {
        self.controlRateHz = controlRateHz
        self.observations = observations
        self.actions = actions
        self.actionKind = actionKind
        self.actionLow = actionLow
        self.actionHigh = actionHigh
        self.maximumStepChange = maximumStepChange
        self.maximumVelocity = maximumVelocity
        self.maximumAcceleration = maximumAcceleration
        self.maximumJerk = maximumJerk
        self.handOver = handOver
    }

    /// Checks the contract against a policy's dimensions: a positive finite rate, layouts that add up, bounds that are
    /// intervals, limits that are positive and finite. Messages name the field, the dimension and the value.
    public func validate(observationDimensions Do: Int, actionDimensions Da: Int) throws(FlowPolicyError) {
        func fail(_ message: String) -> FlowPolicyError { .invalidConfiguration("deployment contract: \(message)") }
        guard controlRateHz.isFinite, controlRateHz > 0 else {
            throw fail("control_rate_hz must be a positive number of Hz, got \(controlRateHz)")
        }
        for (name, groups, dimensions) in [("observations", observations, Do), ("actions", actions, Da)]
        where !groups.isEmpty {
            let total = groups.reduce(0) { $0 + $1.size }
            guard groups.allSatisfy({ $0.size >= 1 }), total == dimensions else {
                throw fail("the \(name) layout adds up to \(total) numbers; the policy has \(dimensions)")
            }
        }
        for (name, values) in [("action_low", actionLow), ("action_high", actionHigh)] {
            guard values.count == Da else {
                throw fail("\(name) has \(values.count) numbers; the policy has Da = \(Da)")
            }
        }
        for d in 0..<Da {
            guard actionLow[d].isFinite, actionHigh[d].isFinite, actionLow[d] <= actionHigh[d] else {
                throw fail(
                    "the action bounds of dimension \(d) are not an interval: [\(actionLow[d]), \(actionHigh[d])]")
            }
        }
        let limits = [("max_step_change", maximumStepChange), ("max_velocity", maximumVelocity),
                      ("max_acceleration", maximumAcceleration), ("max_jerk", maximumJerk)]
        for case let (name, values?) in limits {
            guard values.count == Da else {
                throw fail("\(name) has \(values.count) numbers; the policy has Da = \(Da)")
            }
            if let d = values.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
                throw fail("\(name)[\(d)] must be a positive finite number, got \(values[d])")
            }
        }
    }

    /// The contract as the JSON text stored in checkpoints and sent in `Metadata` (keys sorted).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Every number is finite once validated; encoding a value built in memory cannot fail otherwise.
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Parses and validates a contract's JSON text; `source` names where it came from in messages.
    public init(json text: String, source: String, observationDimensions: Int, actionDimensions: Int)
        throws(FlowPolicyError)
    {
        let decoder = JSONDecoder()
        // Other writers may spell non-finite numbers as strings; they are read, and refused by `validate` by name.
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            self = try decoder.decode(DeploymentContract.self, from: Data(text.utf8))
        } catch {
            throw .incompatible(path: source, message: "the deployment contract is not readable: \(error)")
        }
        do {
            try validate(observationDimensions: observationDimensions, actionDimensions: actionDimensions)
        } catch {
            throw .incompatible(path: source, message: "\(error)")
        }
    }
}
