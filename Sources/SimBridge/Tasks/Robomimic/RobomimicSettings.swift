/// The `environment` section of `tasks/robomimic_<task>/task.yaml`.
public struct RobomimicSettings: Codable, Sendable {
    public struct Controller: Codable, Sendable {
        public var kp: Double
        public var dampingRatio: Double
        public var nullSpaceKp: Double
        /// Output limits: an action component of ±1 moves the goal this far (m) / turns it this much (rad).
        public var maximumTranslation: Double
        public var maximumRotation: Double
        /// Change of the gripper's normalised command per step (robosuite's PandaGripper speed).
        public var gripperSpeed: Double
        enum CodingKeys: String, CodingKey {
            case kp
            case dampingRatio = "damping_ratio", nullSpaceKp = "null_space_kp"
            case maximumTranslation = "max_translation", maximumRotation = "max_rotation"
            case gripperSpeed = "gripper_speed"
        }
    }

    /// Lift and Square: robosuite's `TableArena` (Square's `PegsArena` is one, with the two pegs of its file).
    public struct Table: Codable, Sendable {
        /// Full size (x, y, z) and the position of the table top's centre.
        public var size: [Double]
        public var offset: [Double]
    }

    public struct Placement: Codable, Sendable {
        /// Ranges of the object's x and y about the reference position, uniform.
        public var x: [Double]
        public var y: [Double]
        /// Yaw range (rad), uniform; robosuite's `rotation=None` is [0, 2π).
        public var yaw: [Double]
        /// Height above the reference of the object's bottom.
        public var zOffset: Double
        /// Reference position of the ranges.
        public var reference: [Double]
        /// robosuite's `ensure_object_boundary_in_range`: the ranges shrink by the object's horizontal radius, so the
        /// whole object lies inside them (Can: true; Lift and Square: false).
        public var keepInside: Bool?
        enum CodingKeys: String, CodingKey {
            case x, y, yaw, reference
            case zOffset = "z_offset", keepInside = "keep_inside"
        }
    }

    /// Can: robosuite's bins arena (`arenas/bins_arena.xml`, used as it is) and PickPlace's goal.
    public struct Bins: Codable, Sendable {
        /// Centres of the bins' floors (the arena file's positions, which PickPlace also sets at every reset).
        public var bin1: [Double]
        public var bin2: [Double]
        /// PickPlace's `table_full_size`: the bins' size (x, y) from which the goal quadrants are computed.
        public var size: [Double]
    }

    /// Can and Square: success when the object's position is inside this box (open intervals, as robosuite's
    /// `not_in_bin` for the can and `on_peg` for the nut) and the end-effector is more than `release_distance` from it.
    public struct TargetRegion: Codable, Sendable {
        public var x: [Double]
        public var y: [Double]
        public var z: [Double]
        public var releaseDistance: Double
        enum CodingKeys: String, CodingKey {
            case x, y, z
            case releaseDistance = "release_distance"
        }
    }

    /// `lift`, `can` or `square`.
    public var task: String
    /// `low_dim` (robomimic's low-dimensional keys: the object's, then the robot's; the default) or `proprio` (the
    /// robot's keys only, beside camera frames: robomimic's image tasks).
    public var observation: String?
    public var controlHz: Double
    public var maxSteps: Int
    public var actionLow: [Float]
    public var actionHigh: [Float]
    /// The Panda's initial joints (robosuite's `Panda.init_qpos`) and the Gaussian noise added at reset.
    public var initialJoints: [Double]
    public var jointNoise: Double
    public var initialGripper: [Double]
    public var controller: Controller
    /// Where the robot's base stands (robosuite's `Panda.base_xpos_offset` of the arena); Lift and Square derive it
    /// from the table (-0.16 - table length / 2, 0, 0) when it is absent.
    public var robotBase: [Double]?
    public var table: Table?
    public var bins: Bins?
    public var target: TargetRegion?
    /// Lift: the cube's half-size range (each axis uniform on its own).
    public var cubeHalfSize: [Double]?
    public var placement: Placement
    /// Lift: success when the cube's centre is this far above the table top.
    public var liftHeight: Double?

    /// The observation mode, `low_dim` unless the task file names another.
    public var observationMode: String { observation ?? "low_dim" }

    enum CodingKeys: String, CodingKey {
        case task, controller, table, placement, bins, target, observation
        case robotBase = "robot_base"
        case controlHz = "control_hz", maxSteps = "max_steps", actionLow = "action_low", actionHigh = "action_high"
        case initialJoints = "initial_joints", jointNoise = "joint_noise", initialGripper = "initial_gripper"
        case cubeHalfSize = "cube_half_size", liftHeight = "lift_height"
    }

    /// Checks sizes and ranges; the message names the field.
    func validate(path: String) throws {
        func fail(_ message: String) -> EnvironmentError { .invalidTaskFile(path: path, message: message) }
        guard ["lift", "can", "square"].contains(task) else {
            throw fail("environment.task must be lift, can or square")
        }
        guard ["low_dim", "proprio"].contains(observationMode) else {
            throw fail("environment.observation must be low_dim or proprio, got \(observationMode)")
        }
        guard controlHz > 0 else { throw fail("environment.control_hz must be positive") }
        guard maxSteps > 0 else { throw fail("environment.max_steps must be positive") }
        guard actionLow.count == 7, actionHigh.count == 7 else {
            throw fail("environment.action_low and action_high need 7 numbers (dx dy dz, axis-angle, gripper)")
        }
        guard initialJoints.count == 7 else { throw fail("environment.initial_joints needs the 7 Panda joints") }
        guard initialGripper.count == 2 else { throw fail("environment.initial_gripper needs 2 finger positions") }
        guard jointNoise >= 0 else { throw fail("environment.joint_noise must not be negative") }
        guard placement.x.count == 2, placement.y.count == 2, placement.yaw.count == 2, placement.reference.count == 3
        else { throw fail("environment.placement needs x, y, yaw as [low, high] and reference as [x, y, z]") }
        if task == "lift" || task == "square" {
            guard let table, table.size.count == 3, table.offset.count == 3 else {
                throw fail("\(task) needs environment.table with size [x, y, z] and offset [x, y, z]")
            }
        }
        if task == "lift" {
            guard let cube = cubeHalfSize, cube.count == 2, cube[0] > 0, cube[0] <= cube[1] else {
                throw fail("lift needs environment.cube_half_size [low, high] with 0 < low <= high")
            }
            guard liftHeight != nil else { throw fail("lift needs environment.lift_height") }
        }
        if let robotBase, robotBase.count != 3 { throw fail("environment.robot_base needs [x, y, z]") }
        if task == "can" {
            guard robotBase != nil else { throw fail("can needs environment.robot_base [x, y, z]") }
            guard let bins, bins.bin1.count == 3, bins.bin2.count == 3, bins.size.count == 2 else {
                throw fail("can needs environment.bins with bin1 [x, y, z], bin2 [x, y, z] and size [x, y]")
            }
        }
        if task == "can" || task == "square" {
            guard let target, target.x.count == 2, target.y.count == 2, target.z.count == 2,
                  target.x[0] < target.x[1], target.y[0] < target.y[1], target.z[0] < target.z[1],
                  target.releaseDistance >= 0
            else {
                throw fail(
                    "\(task) needs environment.target with x, y, z as [low, high] (low < high) and "
                        + "release_distance >= 0")
            }
        }
    }
}

struct RobomimicTaskFile: Codable {
    var environment: RobomimicSettings
}
