import CMuJoCo
import Foundation

/// The Robomimic tasks on robosuite 1.5's models (see TASKS.md and `tasks/robomimic_<task>/README.md`): a Panda with
/// the Panda gripper, driven by robosuite's OSC_POSE controller at 20 Hz over 25 physics steps of 2 ms.
///
/// The scene is composed from robosuite's own MJCF files by `RobosuiteScene`. Each physics step is split as robosuite
/// splits it (`lite_physics`): `mj_step1`, the controller's torques and the gripper's position targets, `mj_step2`.
/// Like robosuite, the observation is read after the last physics step without another `mj_forward`, so positions
/// from `xpos` (end-effector, object) are those of the start of that step, and joint positions are current.
///
/// Action (7-D, clipped to [-1, 1]): delta position and delta axis-angle of the end-effector in the robot base frame
/// (scaled by 0.05 m and 0.5 rad), and the gripper: robosuite's Panda gripper moves its normalised command by
/// ±0.2 per step towards closed (> 0) or open (< 0); 0 holds it.
///
/// Observation (Diffusion Policy's low-dim keys, in this order): `object` (Lift: cube position, cube quaternion
/// x y z w, cube position minus end-effector position: 10. Can and Square: the object's position, its quaternion
/// x y z w, its position and quaternion in the end-effector frame (`Can_to_robot0_eef_pos`, `Can_to_robot0_eef_quat`,
/// `SquareNut_to_robot0_eef_pos`, `SquareNut_to_robot0_eef_quat`: the frame at `robot0_eef_pos` turned by
/// `robot0_eef_quat`, quaternion with w ≥ 0 as robosuite's `mat2quat` gives it): 14), `robot0_eef_pos` (the
/// `grip_site`, 3), `robot0_eef_quat` (the `right_hand` body, x y z w, as robosuite ≤ 1.5 reports it, 4),
/// `robot0_gripper_qpos` (2). Lift 19-D, Can and Square 23-D.
///
/// Observation `proprio` (robomimic's and Diffusion Policy's image tasks: the robot's keys only, 9-D):
/// `robot0_eef_pos`, `robot0_eef_quat` (x y z w), `robot0_gripper_qpos`, the same values as the last 9 of `low_dim`,
/// beside the frames of the task's cameras (task.yaml `cameras`, each a camera of robosuite's scene: `agentview`,
/// `robot0_eye_in_hand`, ...). Frames come from MuJoCo's renderer through the visual scene
/// (`makeRenderer(camera:width:height:)`), one renderer per camera made at init, and are stored rows top first, as the
/// camera sees the scene (the same convention as `eval --video`). robosuite's raw images (and robomimic's datasets,
/// recorded with robosuite's default `IMAGE_CONVENTION = "opengl"`) are OpenGL's bottom-up rows, i.e. upside down: a
/// robomimic `agentview_image` is a flowpolicy frame with its rows reversed (`image[::-1]`). A task without cameras
/// makes no renderer.
///
/// The Can and Square `object` vectors are in robomimic's dataset order (position, quaternion, relative position,
/// relative quaternion), which Diffusion Policy reads; robosuite 1.5's `object-state` concatenates the same four parts
/// with the relative ones first, and at reset it reports them as zeros (its sensors read the object's pose from a cache
/// not yet filled). flowpolicy reports the actual relative pose at reset too.
public final class Robomimic: CameraEnvironment {
    public let specification: EnvironmentSpecification
    public let settings: RobomimicSettings
    public let model: Model
    public let data: Data
    public let controller: OperationalSpaceController
    public private(set) var stepCount = 0
    /// The composed MJCF, for inspection.
    public let sceneXML: String

    let substeps: Int
    let armQpos: [Int]
    let armDofs: [Int]
    let gripperQpos: [Int]
    let gripperDofs: [Int]
    let gripperActuators: [Int]
    let gripperLow: [Double]
    let gripperHigh: [Double]
    let gripSite: Int
    let handBody: Int
    let objectBody: Int
    let objectQpos: Int
    let objectDof: Int
    /// Lift: the cube's geom, resized per episode.
    let objectGeom: Int
    /// Square: the nut's handle site and the square peg's body (`peg1`), -1 for the other tasks.
    let handleSite: Int
    let pegBody: Int
    /// Can and Square: the object's bottom below its body origin and its horizontal radius (robosuite's
    /// `bottom_offset` and `horizontal_radius`, from the object file's `bottom_site` and `horizontal_radius_site`).
    let objectBottom: Double
    let objectRadius: Double
    /// robosuite's gripper command state (`PandaGripper.current_action`), each in [-1, 1].
    public private(set) var gripperCommand = SIMD2<Double>(0, 0)
    /// Lift: the cube's half sizes this episode.
    public private(set) var cubeHalfSize = SIMD3<Double>(0.021, 0.021, 0.021)
    /// The table top's height (Lift, Square), or the bins' centre height (Can).
    let tableTop: Double
    private var resetJoints = [Double](repeating: 0, count: 7)
    /// robomimic's image tasks observe the robot only (`proprio`), beside the camera frames.
    let observesObjects: Bool

    public let cameraNames: [String]
    public let frameHeight: Int
    public let frameWidth: Int
    public var frameChannels: Int { 3 }
    /// One renderer per camera, in `cameraNames` order, made at init when the task has cameras.
    private var cameraRenderers: [OffscreenRenderer] = []

    /// The robomimic task that `task.yaml` describes.
    public convenience init(task: TaskDescription) throws {
        let settings = try task.settings(RobomimicTaskFile.self).environment
        try self.init(
            settings: settings, taskName: task.name, path: task.folder.path("task.yaml"), cameras: task.cameras)
    }

    /// `cameras`: cameras of robosuite's scene (by MuJoCo name) and their frame size, for image observations (they
    /// need robosuite's rendering assets, `scripts/fetch_assets.py robomimic --render`).
    public init(
        settings: RobomimicSettings, taskName: String, path: String = "task.yaml",
        cameras: [TaskDescription.Camera] = []
    ) throws {
        try settings.validate(path: path)
        guard Set(cameras.map(\.height)).count <= 1, Set(cameras.map(\.width)).count <= 1 else {
            throw EnvironmentError.invalidTaskFile(path: path, message: "cameras need one frame size for all")
        }
        self.settings = settings
        let composed = try Self.composeScene(settings: settings, taskName: taskName, visual: false)
        let scene = composed.scene
        let objectName = composed.objectName
        tableTop = composed.tableTop
        sceneXML = scene.xml
        let model = try scene.compile()
        self.model = model
        data = try Data(model: model)
        substeps = Int((1 / (settings.controlHz * model.timestep)).rounded())

        let prefix = RobosuiteScene.robotPrefix
        let joints = try (1...7).map { try model.requireId(of: .joint, named: "\(prefix)joint\($0)") }
        armQpos = joints.map { model.jointQposAddress($0) }
        armDofs = joints.map { model.jointDofAddress($0) }
        let armActuators = try (1...7).map { try model.requireId(of: .actuator, named: "\(prefix)torq_j\($0)") }
        let gripperPrefix = RobosuiteScene.gripperPrefix
        let fingers = try (1...2).map { try model.requireId(of: .joint, named: "\(gripperPrefix)finger_joint\($0)") }
        gripperQpos = fingers.map { model.jointQposAddress($0) }
        gripperDofs = fingers.map { model.jointDofAddress($0) }
        gripperActuators = try (1...2).map {
            try model.requireId(of: .actuator, named: "\(gripperPrefix)gripper_finger_joint\($0)")
        }
        gripperLow = gripperActuators.map { model.actuatorControlRange($0)!.lowerBound }
        gripperHigh = gripperActuators.map { model.actuatorControlRange($0)!.upperBound }
        gripSite = try model.requireId(of: .site, named: "\(gripperPrefix)grip_site")
        handBody = try model.requireId(of: .body, named: "\(prefix)right_hand")
        objectBody = try model.requireId(of: .body, named: "\(objectName)_main")
        let objectJoint = try model.requireId(of: .joint, named: "\(objectName)_joint0")
        objectQpos = model.jointQposAddress(objectJoint)
        objectDof = model.jointDofAddress(objectJoint)
        if settings.task == "square" {
            handleSite = try model.requireId(of: .site, named: "\(objectName)_handle_site")
            pegBody = try model.requireId(of: .body, named: "peg1")
        } else {
            handleSite = -1
            pegBody = -1
        }
        if settings.task == "lift" {
            objectGeom = try model.requireId(of: .geom, named: "cube_g0")
            objectBottom = 0  // the cube's half height, per episode
            objectRadius = 0
        } else {
            objectGeom = -1
            let sites = model.pointer.pointee.site_pos!
            let bottomSite = try model.requireId(of: .site, named: "\(objectName)_bottom_site")
            let radiusSite = try model.requireId(of: .site, named: "\(objectName)_horizontal_radius_site")
            objectBottom = -sites[3 * bottomSite + 2]
            objectRadius = sites[3 * radiusSite]
        }
        let c = settings.controller
        controller = OperationalSpaceController(
            data: data, site: gripSite, baseSite: try model.requireId(of: .site, named: "\(prefix)right_center"),
            joints: joints, actuators: armActuators, kp: c.kp, dampingRatio: c.dampingRatio,
            nullSpaceKp: c.nullSpaceKp, maximumTranslation: c.maximumTranslation, maximumRotation: c.maximumRotation)
        observesObjects = settings.observationMode == "low_dim"
        cameraNames = cameras.map(\.name)
        frameHeight = cameras.first?.height ?? 0
        frameWidth = cameras.first?.width ?? 0
        specification = EnvironmentSpecification(
            task: taskName, observationMode: settings.observationMode,
            observationDimensions: !observesObjects ? 9 : settings.task == "lift" ? 19 : 23,
            actionDimensions: 7,
            actionLow: settings.actionLow, actionHigh: settings.actionHigh, controlRate: settings.controlHz,
            physicsTimestep: model.timestep, substeps: substeps, maximumSteps: settings.maxSteps,
            progressName: "success")
        // The renderers hold this environment unowned (it owns them): no cycle.
        cameraRenderers = try cameras.map { camera in
            try makeOffscreenRenderer(
                camera: .named(camera.name), width: camera.width, height: camera.height,
                cubeHalfSize: { [unowned self] in self.cubeHalfSize })
        }
    }

    /// Writes the current frame of every camera (`cameraNames` order), `uint8 [H, W, 3]` each, rows top first.
    public func renderCameras(into frames: UnsafeMutablePointer<UInt8>) throws {
        let bytes = frameHeight * frameWidth * frameChannels
        for index in cameraRenderers.indices { try cameraRenderers[index].render(into: frames + index * bytes) }
    }

    // MARK: Episodes

    /// robosuite's reset: the arm at its initial joints plus Gaussian noise, the fingers at their initial positions,
    /// the gripper command at 0, the object placed by the task's distribution, then `mj_forward`.
    public func reset(seed: UInt64, observation: UnsafeMutablePointer<Float>) throws {
        var random = SeededRandom(seed: seed)
        for i in 0..<7 { resetJoints[i] = settings.initialJoints[i] + settings.jointNoise * random.gaussian() }
        var bottom = objectBottom
        if settings.task == "lift" {
            let low = settings.cubeHalfSize![0]
            let high = settings.cubeHalfSize![1]
            let half = SIMD3(
                low + (high - low) * random.uniform(), low + (high - low) * random.uniform(),
                low + (high - low) * random.uniform())
            try setCube(halfSize: half)
            bottom = half.z
        }
        let p = settings.placement
        // UniformRandomSampler with ensure_object_boundary_in_range: the range shrinks by the horizontal radius.
        let inset = p.keepInside == true ? objectRadius : 0
        let x = p.reference[0] + p.x[0] + inset + (p.x[1] - p.x[0] - 2 * inset) * random.uniform()
        let y = p.reference[1] + p.y[0] + inset + (p.y[1] - p.y[0] - 2 * inset) * random.uniform()
        let yaw = p.yaw[0] + (p.yaw[1] - p.yaw[0]) * random.uniform()
        // UniformRandomSampler: z = reference + z_offset - bottom offset (the object's bottom is `bottom` below it).
        let z = p.reference[2] + p.zOffset + bottom
        try place(joints: resetJoints, objectPosition: SIMD3(x, y, z), objectYaw: yaw)
        writeObservation(observation)
    }

    /// Resizes the cube (robosuite builds a new cube each reset): geom size and bounding radius, body mass and
    /// inertia at density 1000, then the model constants that depend on them.
    public func setCube(halfSize: SIMD3<Double>) throws {
        guard settings.task == "lift" else { throw EnvironmentError.invalidState("only Lift has a cube to resize") }
        cubeHalfSize = halfSize
        let m = model.pointer
        m.pointee.geom_size[3 * objectGeom] = halfSize.x
        m.pointee.geom_size[3 * objectGeom + 1] = halfSize.y
        m.pointee.geom_size[3 * objectGeom + 2] = halfSize.z
        m.pointee.geom_rbound[objectGeom] = (halfSize * halfSize).sum().squareRoot()
        let mass = 1000 * 8 * halfSize.x * halfSize.y * halfSize.z
        let s = halfSize * halfSize
        m.pointee.body_mass[objectBody] = mass
        m.pointee.body_inertia[3 * objectBody] = mass / 3 * (s.y + s.z)
        m.pointee.body_inertia[3 * objectBody + 1] = mass / 3 * (s.x + s.z)
        m.pointee.body_inertia[3 * objectBody + 2] = mass / 3 * (s.x + s.y)
        data.reset()
        try data.recomputeModelConstants()
    }

    /// Puts the arm at `joints` (at rest), the fingers at their initial positions and the object at the pose, and
    /// restarts the episode (controller goal = current pose).
    public func place(joints: [Double], objectPosition: SIMD3<Double>, objectYaw: Double) throws {
        data.reset()
        data.withQpos { qpos in
            for i in 0..<7 { qpos[armQpos[i]] = joints[i] }
            for i in 0..<2 { qpos[gripperQpos[i]] = settings.initialGripper[i] }
            qpos[objectQpos] = objectPosition.x
            qpos[objectQpos + 1] = objectPosition.y
            qpos[objectQpos + 2] = objectPosition.z
            qpos[objectQpos + 3] = cos(objectYaw / 2)
            qpos[objectQpos + 4] = 0
            qpos[objectQpos + 5] = 0
            qpos[objectQpos + 6] = sin(objectYaw / 2)
        }
        try data.forward()
        gripperCommand = .zero
        controller.reset()
        stepCount = 0
    }

    public func step(action: UnsafePointer<Float>, observation: UnsafeMutablePointer<Float>) throws -> StepResult {
        for i in 0..<7 where !action[i].isFinite { throw EnvironmentError.nonFiniteAction(index: i, value: action[i]) }
        var clipped = false
        for i in 0..<7 where action[i] < specification.actionLow[i] || action[i] > specification.actionHigh[i] {
            clipped = true
        }
        // PandaGripper.format_action: command += [-1, 1] * speed * sign(action), clipped to [-1, 1].
        let sign: Double = action[6] > 0 ? 1 : (action[6] < 0 ? -1 : 0)
        let speed = settings.controller.gripperSpeed
        gripperCommand.x = min(max(gripperCommand.x - speed * sign, -1), 1)
        gripperCommand.y = min(max(gripperCommand.y + speed * sign, -1), 1)
        for substep in 0..<substeps {
            try data.step1()
            if substep == 0 { controller.setGoal(delta: action) }
            try controller.computeTorques()
            data.withCtrl { ctrl in
                // Gripper controller (GRIP): the command mapped linearly onto each actuator's control range.
                for i in 0..<2 {
                    let command = i == 0 ? gripperCommand.x : gripperCommand.y
                    let middle = (gripperLow[i] + gripperHigh[i]) / 2
                    let halfRange = (gripperHigh[i] - gripperLow[i]) / 2
                    ctrl[gripperActuators[i]] = middle + halfRange * command
                }
            }
            try data.step2()
        }
        stepCount += 1
        let success = isSuccess
        writeObservation(observation)
        return StepResult(
            reward: success ? 1 : 0, terminated: success, truncated: !success && stepCount >= settings.maxSteps,
            success: success, progress: success ? 1 : 0, actionClipped: clipped)
    }

    // MARK: Measurements

    /// The object's position (body frame origin), as robosuite reads it.
    public var objectPosition: SIMD3<Double> { data.bodyPosition(objectBody) }
    /// The object's orientation (w, x, y, z).
    public var objectQuaternion: SIMD4<Double> { data.bodyQuaternion(objectBody) }
    /// Square: the centre of the nut's handle (its `handle_site`, 5.4 cm from the nut's centre along the nut's x axis).
    public var handlePosition: SIMD3<Double>? { handleSite < 0 ? nil : data.sitePosition(handleSite) }
    /// Square: the square peg's position (the body `peg1` of the pegs arena: the centre of its 0.2 m height).
    public var pegPosition: SIMD3<Double>? { pegBody < 0 ? nil : data.bodyPosition(pegBody) }
    /// The end-effector site's position (`robot0_eef_pos`).
    public var endEffectorPosition: SIMD3<Double> { data.sitePosition(gripSite) }
    /// The end-effector site's rotation matrix rows.
    public var endEffectorRotation: (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>) {
        controller.siteRotation(gripSite)
    }
    /// The finger joint positions (`robot0_gripper_qpos`).
    public var gripperPositions: SIMD2<Double> {
        data.withQpos { SIMD2($0[gripperQpos[0]], $0[gripperQpos[1]]) }
    }

    /// Lift: the cube's centre is more than `lift_height` above the table top. Can (robosuite's `_check_success`
    /// with `not_in_bin`): the can's position inside the target region (open intervals: its quadrant of bin 2, up to
    /// 10 cm above the bin's centre height) and the end-effector more than `release_distance` from it (robosuite:
    /// `1 - tanh(10 d) < 0.6`, i.e. d > atanh(0.4) / 10 = 0.0424 m). Square (robosuite's `on_peg` for the square nut
    /// and the same `r_reach < 0.6`): the nut's centre within 3 cm of the peg in x and y and less than 5 cm above the
    /// table top, expressed as the same target box, and the end-effector more than 0.0424 m from the nut's centre.
    public var isSuccess: Bool {
        let object = objectPosition
        guard let target = settings.target else { return object.z > tableTop + settings.liftHeight! }
        guard target.x[0] < object.x, object.x < target.x[1], target.y[0] < object.y, object.y < target.y[1],
              target.z[0] < object.z, object.z < target.z[1]
        else { return false }
        let gap = endEffectorPosition - object
        return (gap * gap).sum().squareRoot() > target.releaseDistance
    }

    /// Allocating convenience: the observation of the current state.
    public func observation() -> [Float] {
        var values = [Float](repeating: 0, count: specification.observationDimensions)
        values.withUnsafeMutableBufferPointer { writeObservation($0.baseAddress!) }
        return values
    }

    func writeObservation(_ o: UnsafeMutablePointer<Float>) {
        let eef = endEffectorPosition
        let hand = data.bodyQuaternion(handBody)
        let fingers = gripperPositions
        guard observesObjects else {
            writeRobotObservation(o, eef: eef, hand: hand, fingers: fingers)
            return
        }
        let object = objectPosition
        let q = objectQuaternion
        for i in 0..<3 { o[i] = Float(object[i]) }
        o[3] = Float(q[1])
        o[4] = Float(q[2])
        o[5] = Float(q[3])
        o[6] = Float(q[0])
        var k = 7
        if settings.task == "lift" {
            // gripper_to_cube_pos: the world-frame difference.
            for i in 0..<3 { o[k + i] = Float(object[i] - eef[i]) }
            k += 3
        } else {
            // Can_to_robot0_eef_pos / _quat (SquareNut_...): the object's pose in the frame (eef_pos, hand quaternion).
            let inverse = SIMD4(hand[0], -hand[1], -hand[2], -hand[3])
            let position = Self.rotate(object - eef, by: inverse)
            var relative = Self.multiply(inverse, q)
            if relative[0] < 0 { relative = -relative }
            for i in 0..<3 { o[k + i] = Float(position[i]) }
            o[k + 3] = Float(relative[1])
            o[k + 4] = Float(relative[2])
            o[k + 5] = Float(relative[3])
            o[k + 6] = Float(relative[0])
            k += 7
        }
        writeRobotObservation(o + k, eef: eef, hand: hand, fingers: fingers)
    }

    /// The robot's 9 values: `robot0_eef_pos`, `robot0_eef_quat` (x y z w), `robot0_gripper_qpos`.
    @inline(__always)
    private func writeRobotObservation(
        _ o: UnsafeMutablePointer<Float>, eef: SIMD3<Double>, hand: SIMD4<Double>, fingers: SIMD2<Double>
    ) {
        for i in 0..<3 { o[i] = Float(eef[i]) }
        o[3] = Float(hand[1])
        o[4] = Float(hand[2])
        o[5] = Float(hand[3])
        o[6] = Float(hand[0])
        o[7] = Float(fingers.x)
        o[8] = Float(fingers.y)
    }

    /// Hamilton product of quaternions (w, x, y, z).
    static func multiply(_ a: SIMD4<Double>, _ b: SIMD4<Double>) -> SIMD4<Double> {
        SIMD4(
            a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3],
            a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2],
            a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1],
            a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0])
    }

    /// `v` turned by the unit quaternion `q` (w, x, y, z).
    static func rotate(_ v: SIMD3<Double>, by q: SIMD4<Double>) -> SIMD3<Double> {
        let u = SIMD3(q[1], q[2], q[3])
        let t = 2 * OperationalSpaceController.cross(u, v)
        return v + q[0] * t + OperationalSpaceController.cross(u, t)
    }

    // MARK: State

    public func saveState() -> EnvironmentState {
        var task = Array(controller.goalOrientation)
        task += [controller.goalPosition.x, controller.goalPosition.y, controller.goalPosition.z]
        task += controller.initialJoints
        task += [gripperCommand.x, gripperCommand.y, cubeHalfSize.x, cubeHalfSize.y, cubeHalfSize.z]
        return EnvironmentState(simulation: data.saveState(), task: task, stepCount: stepCount)
    }

    public func restoreState(_ state: EnvironmentState) throws {
        guard state.task.count == 24 else {
            throw EnvironmentError.invalidState("not a Robomimic \(settings.task) state")
        }
        let half = SIMD3(state.task[21], state.task[22], state.task[23])
        if settings.task == "lift" && half != cubeHalfSize { try setCube(halfSize: half) }
        try data.restoreState(state.simulation)
        controller.restore(
            goalOrientation: Array(state.task[0..<9]),
            goalPosition: SIMD3(state.task[9], state.task[10], state.task[11]),
            initialJoints: Array(state.task[12..<19]))
        gripperCommand = SIMD2(state.task[19], state.task[20])
        stepCount = state.stepCount
    }
}
