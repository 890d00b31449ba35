/// The `environment` section of `tasks/pusht/task.yaml`.
public struct PushTSettings: Codable, Sendable {
    public struct Agent: Codable, Sendable {
        /// PD gains of the kinematic agent: `vel += (kp (target - pos) + kv (0 - vel)) dt`.
        public var kp: Double
        public var kv: Double
    }

    public struct Reset: Codable, Sendable {
        /// Agent x and y: uniform integers in [low, high).
        public var agent: [Int]
        /// Block x and y: uniform integers in [low, high); the angle is uniform in [-π, π).
        public var block: [Int]
    }

    public var scene: String
    public var controlHz: Double
    public var maxSteps: Int
    /// `keypoints` (20-D, Diffusion Policy's low-dim) or `state` (5-D).
    public var observation: String
    public var actionLow: [Float]
    public var actionHigh: [Float]
    public var agent: Agent
    /// Goal pose of the block: x, y, angle.
    public var goal: [Double]
    /// Success and termination when coverage exceeds this.
    public var successCoverage: Double
    public var reset: Reset
    /// Block keypoints in the block frame, [9][2].
    public var keypoints: [[Double]]

    enum CodingKeys: String, CodingKey {
        case scene, observation, agent, goal, reset, keypoints
        case controlHz = "control_hz", maxSteps = "max_steps", actionLow = "action_low", actionHigh = "action_high"
        case successCoverage = "success_coverage"
    }
}

struct PushTTaskFile: Codable {
    var environment: PushTSettings
}
