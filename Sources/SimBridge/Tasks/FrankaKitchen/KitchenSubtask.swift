/// The seven subtasks of Franka Kitchen, as Gymnasium-Robotics 1.4.2 defines them (`OBS_ELEMENT_INDICES`,
/// `OBS_ELEMENT_GOALS` and `BONUS_THRESH` in `kitchen_env.py`, unchanged from D4RL and Diffusion Policy).
///
/// A subtask is complete when the L2 distance between its entries of the true (noise-free) `qpos` and its goal is
/// below the threshold, 0.3. Raw values are the reference's names, as `task.yaml` lists them.
public enum KitchenSubtask: String, CaseIterable, Codable, Sendable {
    case bottomBurner = "bottom burner"
    case topBurner = "top burner"
    case lightSwitch = "light switch"
    case slideCabinet = "slide cabinet"
    case hingeCabinet = "hinge cabinet"
    case microwave = "microwave"
    case kettle = "kettle"

    /// The reference's completion threshold (`BONUS_THRESH`).
    public static let referenceThreshold = 0.3

    /// The `qpos` entries the subtask is judged on.
    public var qposIndices: [Int] {
        switch self {
        case .bottomBurner: [11, 12]  // knob_Joint_2, bottom_left_burner
        case .topBurner: [15, 16]  // knob_Joint_4, top_left_burner
        case .lightSwitch: [17, 18]  // light_switch, light_joint
        case .slideCabinet: [19]  // slide_cabinet
        case .hingeCabinet: [20, 21]  // left_hinge_cabinet, right_hinge_cabinet
        case .microwave: [22]  // microwave
        case .kettle: [23, 24, 25, 26, 27, 28, 29]  // kettle free joint: position, quaternion (w, x, y, z)
        }
    }

    /// The goal of those entries.
    public var goal: [Double] {
        switch self {
        case .bottomBurner: [-0.88, -0.01]
        case .topBurner: [-0.92, -0.01]
        case .lightSwitch: [-0.69, -0.05]
        case .slideCabinet: [0.37]
        case .hingeCabinet: [0, 1.45]
        case .microwave: [-0.75]
        case .kettle: [-0.23, 0.75, 1.62, 0.99, 0, 0, -0.06]
        }
    }

    /// The distance of `qpos` (the full `[nq]` vector) to the goal. Allocates (the tables are built per call); the
    /// environment keeps its own copies for the step loop.
    public func distance(qpos: UnsafeBufferPointer<Double>) -> Double {
        Self.distance(qpos: qpos, indices: qposIndices, goal: goal)
    }

    /// Whether the subtask counts as done in `qpos`.
    public func isComplete(qpos: UnsafeBufferPointer<Double>, threshold: Double = referenceThreshold) -> Bool {
        distance(qpos: qpos) < threshold
    }

    static func distance(qpos: UnsafeBufferPointer<Double>, indices: [Int], goal: [Double]) -> Double {
        var sum = 0.0
        for i in indices.indices {
            let difference = qpos[indices[i]] - goal[i]
            sum += difference * difference
        }
        return sum.squareRoot()
    }
}
