import CMuJoCo
import Foundation

/// Franka Kitchen in MuJoCo: Gymnasium-Robotics 1.4.2's `FrankaKitchen-v1` on its own scene (the package's
/// `kitchen_franka` assets, fetched into the asset cache; see TASKS.md and `tasks/franka_kitchen/README.md`).
///
/// Control at 12.5 Hz: each step applies one action for `frameSkip` (40) physics steps of 0.002 s. The action is 9
/// joint velocities in [-1, 1] (7 arm joints, then the two finger joints, each finger on its own), handled as the
/// reference's `FrankaRobot.step` does: clipped to [-1, 1], scaled by 2, clipped to the velocity bounds of
/// `franka_config.xml`, integrated over one control period from the robot joint positions of the *last observation*
/// (`last_qpos + vel * dt`, noise included, as the reference's `_last_robot_qpos`), clipped to the position bounds,
/// and sent as targets to the position actuators (MuJoCo then clamps them to the actuators' control ranges).
///
/// Observation noise: every observation adds uniform noise in [-1, 1) scaled by `robotNoiseRatio` times the
/// configuration's amplitudes to the robot's joint positions and velocities, and by `objectNoiseRatio` to the
/// objects'. As in the reference, the object positions take amplitudes `pos_noise_amp[8...]` (shifted by one) and
/// the object velocities `vel_noise_amp[9...]`; the noise is drawn in the reference's order (robot positions,
/// robot velocities, object positions, object velocities) from a stream seeded by the episode seed.
///
/// Observations: `full` (59-D) robot qpos 9, robot qvel 9, object qpos 21, object qvel 20; `dp` (60-D, Diffusion
/// Policy's) robot qpos 9, object qpos 21, 30 zeros (its masked goal). Both draw the same noise, so an episode does
/// not depend on the observation mode.
///
/// Subtasks (`KitchenSubtask`) complete when the true `qpos` comes within the threshold of their goal; completed
/// subtasks stay completed. `progress` is the number of requested subtasks completed so far, `reward` the number
/// completed in this step; success and termination when all are done; truncation at `maxSteps` (280).
///
/// Speed: MuJoCo 2.2.2 spends most of a step on this scene in collision detection: its broadphase, the geom-pair loops
/// of body pairs (visual geoms included, see `Model.removeVisualGeomsFromCollisionLoops()`) and narrow-phase tests
/// against large boxes that only a bounding-sphere test guards. The settings' `collision` section takes visual geoms
/// out of those loops, excludes body pairs that can never touch (derived by `tools/kitchen_contact_exclusions.py`),
/// puts an oriented-box prefilter in front of the convex-box tests, and steps with a geom-pair table
/// (`GeomPairTable`) in place of MuJoCo's collision driver; none changes a contact, which `tools/compare_kitchen.py`
/// checks against the scene as loaded (the same trajectories, bit for bit in its float32 observations).
public final class FrankaKitchen: Environment {
    /// `KitchenEnv.init_qpos` of the reference: the start of every episode (velocities zero).
    public static let initialQpos: [Double] = [
        1.48388023e-01, -1.76848573e00, 1.84390296e00, -2.47685760e00, 2.60252026e-01, 7.12533105e-01,
        1.59515394e00, 4.79267505e-02, 3.71350919e-02, -2.66279850e-04, -5.18043486e-05, 3.12877220e-05,
        -4.51199853e-05, -3.90842156e-06, -4.22629655e-05, 6.28065475e-05, 4.04984708e-05, 4.62730939e-04,
        -2.26906415e-04, -4.65501369e-04, -6.44129196e-03, -1.77048263e-03, 1.08009684e-03, -2.69397440e-01,
        3.50383255e-01, 1.61944683e00, 1.00618764e00, 4.06395120e-03, -6.62095997e-03, -2.68278933e-04,
    ]
    /// Robot joints (7 arm + 2 fingers): the first 9 entries of qpos, qvel and ctrl.
    public static let robotDimensions = 9
    public static let actionScale = 2.0

    public let specification: EnvironmentSpecification
    public let settings: FrankaKitchenSettings
    public let robot: FrankaRobotConfig
    public let model: Model
    public let data: Data
    /// The geom-pair table that finds the contacts (`collision.pair_table`), or nil for MuJoCo's `mj_collision`.
    public let pairTable: GeomPairTable?
    public private(set) var stepCount = 0
    /// Seconds per control step (`frameSkip` physics steps).
    public let controlPeriod: Double

    let nq: Int
    let nv: Int
    let requestedIndices: [[Int]]
    let requestedGoals: [[Double]]
    /// Whether each requested subtask has been completed in this episode.
    public private(set) var completed: [Bool]
    var noise = NoiseStream(seed: 0)
    /// The last observation's robot joint positions, noise included (the reference's `_last_robot_qpos`): the next
    /// action is integrated from these.
    let lastRobotQpos: UnsafeMutablePointer<Double>
    /// The last observation in the `full` layout, before conversion to Float.
    let noisyState: UnsafeMutablePointer<Double>

    /// The kitchen as `task.yaml` describes it; its `control_hz` must be 1 / (the scene's timestep × `frame_skip`).
    public convenience init(task: TaskDescription) throws {
        try self.init(settings: task.settings(FrankaKitchenTaskFile.self).environment)
        guard abs(specification.controlRate - task.controlRate) < 1e-9 else {
            throw EnvironmentError.invalidTaskFile(
                path: task.folder.path("task.yaml"), message: "environment.control_hz is \(task.controlRate) Hz; the "
                    + "scene's timestep and frame_skip give \(specification.controlRate) Hz")
        }
    }

    /// Builds the environment from settings, with the scene and robot configuration from the asset cache.
    public init(settings: FrankaKitchenSettings) throws {
        guard ["full", "dp"].contains(settings.observation) else {
            throw EnvironmentError.invalidTaskFile(
                path: "task.yaml", message: "observation must be full or dp, got \(settings.observation)")
        }
        guard !settings.tasks.isEmpty, Set(settings.tasks).count == settings.tasks.count else {
            throw EnvironmentError.invalidTaskFile(
                path: "task.yaml", message: "tasks must list one or more different subtasks: "
                    + KitchenSubtask.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard settings.frameSkip >= 1, settings.maxSteps >= 1 else {
            throw EnvironmentError.invalidTaskFile(
                path: "task.yaml", message: "frame_skip and max_steps must be positive")
        }
        self.settings = settings
        let scenePath = try AssetCache.path(settings.assets + "/" + settings.scene, task: "franka_kitchen")
        let configPath = try AssetCache.path(settings.assets + "/" + settings.robotConfig, task: "franka_kitchen")
        if settings.collision.boxPrefilter { _ = Self.boxPrefilter }
        let (model, pairTable) = try Self.scenes.model(path: scenePath, collision: settings.collision)
        guard model.nq == 30, model.nv == 29, model.nu == Self.robotDimensions else {
            throw EnvironmentError.invalidTaskFile(
                path: scenePath, message: "expected the kitchen scene (nq 30, nv 29, nu 9), got nq \(model.nq), "
                    + "nv \(model.nv), nu \(model.nu)")
        }
        for joint in 0..<Self.robotDimensions {
            guard model.name(of: .joint, id: joint)?.hasPrefix("robot") == true, model.jointQposAddress(joint) == joint,
                  model.jointDofAddress(joint) == joint
            else {
                throw EnvironmentError.invalidTaskFile(
                    path: scenePath, message: "expected the robot's 9 joints first in qpos and qvel")
            }
        }
        self.model = model
        self.pairTable = pairTable
        data = try Data(model: model)
        nq = model.nq
        nv = model.nv
        robot = try FrankaRobotConfig(path: configPath, count: model.nv)
        controlPeriod = model.timestep * Double(settings.frameSkip)
        requestedIndices = settings.tasks.map(\.qposIndices)
        requestedGoals = settings.tasks.map(\.goal)
        completed = Array(repeating: false, count: settings.tasks.count)
        lastRobotQpos = .allocate(capacity: Self.robotDimensions)
        lastRobotQpos.initialize(repeating: 0, count: Self.robotDimensions)
        noisyState = .allocate(capacity: 59)
        noisyState.initialize(repeating: 0, count: 59)
        let levels = (1...settings.tasks.count).map(Double.init)
        specification = EnvironmentSpecification(
            task: "franka_kitchen", observationMode: settings.observation,
            observationDimensions: settings.observation == "full" ? 59 : 60, actionDimensions: Self.robotDimensions,
            actionLow: Array(repeating: -1, count: Self.robotDimensions),
            actionHigh: Array(repeating: 1, count: Self.robotDimensions), controlRate: 1 / controlPeriod,
            physicsTimestep: model.timestep, substeps: settings.frameSkip, maximumSteps: settings.maxSteps,
            progressName: "subtasks completed", progressLevels: levels,
            progressLevelNames: levels.map { "p\(Int($0))" })
    }

    deinit {
        lastRobotQpos.deallocate()
        noisyState.deallocate()
    }

    /// Installs the box prefilter in MuJoCo's collision table once per process (a global `let` initialises once,
    /// even with threads racing). This file is the only caller, so the shim's table of wrapped functions is this
    /// file's copy.
    static let boxPrefilter: Void = fp_install_box_prefilter()

    /// Compiled scenes, shared by the environments of the process: compiling the kitchen takes seconds (most of it
    /// decoding its textures) and 35 MB, and MuJoCo only reads a model while stepping.
    static let scenes = SceneCache()

    final class SceneCache: @unchecked Sendable {
        private let lock = NSLock()
        private var models: [String: (Model, GeomPairTable?)] = [:]

        /// The scene's model and, with `collision.pair_table`, its geom-pair table.
        func model(path: String, collision: FrankaKitchenSettings.Collision) throws -> (Model, GeomPairTable?) {
            let key = "\(path)|\(collision.skipVisualGeoms)|\(String(describing: collision.maxConstraintRows))|"
                + "\(String(describing: collision.maxContacts))|\(collision.pairTable == true)|"
                + collision.exclude.map { $0.joined(separator: ",") }.joined(separator: ";")
            return try lock.withLock {
                if let entry = models[key] { return entry }
                let model = try FrankaKitchen.loadScene(path: path, collision: collision)
                let entry = (model, collision.pairTable == true ? try GeomPairTable(model: model) : nil)
                models[key] = entry
                return entry
            }
        }
    }

    /// Loads the scene file as it is, with `<contact><exclude/>` elements for `collision.exclude` added around it
    /// (through an in-memory wrapper beside the scene that includes it, so that its relative paths resolve as
    /// usual), then applies the rest of the collision settings to the compiled model.
    static func loadScene(path: String, collision: FrankaKitchenSettings.Collision) throws -> Model {
        let model: Model
        if collision.exclude.isEmpty {
            model = try Model(path: path)
        } else {
            for pair in collision.exclude where pair.count != 2 {
                throw EnvironmentError.invalidTaskFile(
                    path: "task.yaml", message: "collision.exclude entries are pairs of body names, got \(pair)")
            }
            let scene = URL(fileURLWithPath: path)
            let wrapper = scene.deletingLastPathComponent().appendingPathComponent("flowpolicy_franka_kitchen.xml").path
            let exclusions = collision.exclude.map { "    <exclude body1=\"\($0[0])\" body2=\"\($0[1])\"/>" }
                .joined(separator: "\n")
            let xml = """
                <mujoco model="franka_kitchen">
                  <include file="\(scene.lastPathComponent)"/>
                  <contact>
                \(exclusions)
                  </contact>
                </mujoco>
                """
            model = try Model(xml: xml, asIfAt: wrapper)
        }
        if collision.skipVisualGeoms {
            guard model.removeVisualGeomsFromCollisionLoops() else {
                throw EnvironmentError.invalidTaskFile(path: path, message: "the scene's geoms are not grouped by body")
            }
        }
        // The scene reserves room for 1000 constraint rows and 1000 contacts, which MuJoCo 2.2.2 turns into 56 MB per
        // simulation state (the stack grows with the square of njmax). The buffers only bound what a step may use;
        // `step` throws if a step ever needs more, so smaller ones change nothing but memory. The stack size follows
        // MuJoCo's own rule (user_model.cc) for the new njmax.
        let m = model.pointer
        if let rows = collision.maxConstraintRows {
            m.pointee.njmax = Int32(rows)
            let side = Int(m.pointee.njmax) + Int(m.pointee.neq) + Int(m.pointee.nv)
            let sizes: [Int32] = [m.pointee.nq, m.pointee.nv, m.pointee.nu, m.pointee.na, m.pointee.nbody,
                                  m.pointee.njnt, m.pointee.ngeom, m.pointee.nsite, m.pointee.neq, m.pointee.ntendon,
                                  m.pointee.nwrap]
            let objects = sizes.reduce(0) { $0 + Int($1) }
            m.pointee.nstack = Int32(max(1000, 5 * side * side + 20 * objects))
        }
        if let contacts = collision.maxContacts { m.pointee.nconmax = Int32(contacts) }
        return model
    }

    // MARK: Episodes

    /// The reference's reset: `mj_resetData`, `init_qpos` with zero velocities, `mj_forward`, then the first
    /// (noisy) observation. The seed chooses the observation noise, which also moves the first action's targets.
    public func reset(seed: UInt64, observation: UnsafeMutablePointer<Float>) throws {
        data.reset()
        data.withQpos { qpos in
            for i in 0..<nq { qpos[i] = Self.initialQpos[i] }
        }
        try data.forward()
        // MuJoCo 2.2.2's forward pass normalizes the free joint's quaternion in qpos (the kettle's, |q| = 1.0062 in
        // init_qpos); MuJoCo 3, under the reference, leaves qpos as set. Put it back so that the first observation is
        // the reference's; every later step normalizes it in both.
        data.withQpos { qpos in
            for i in 0..<nq { qpos[i] = Self.initialQpos[i] }
        }
        noise = NoiseStream(seed: seed)
        for i in completed.indices { completed[i] = false }
        stepCount = 0
        observe(observation)
    }

    public func step(action: UnsafePointer<Float>, observation: UnsafeMutablePointer<Float>) throws -> StepResult {
        let D = Self.robotDimensions
        for i in 0..<D where !action[i].isFinite { throw EnvironmentError.nonFiniteAction(index: i, value: action[i]) }
        var clipped = false
        let dt = controlPeriod
        data.withCtrl { ctrl in
            for i in 0..<D {
                let a = min(max(Double(action[i]), -1), 1)
                if a != Double(action[i]) { clipped = true }
                let velocity = min(max(a * Self.actionScale, robot.velocityLow[i]), robot.velocityHigh[i])
                ctrl[i] = min(max(lastRobotQpos[i] + velocity * dt, robot.positionLow[i]), robot.positionHigh[i])
            }
        }
        if let pairTable {
            for _ in 0..<settings.frameSkip { try data.step(with: pairTable) }
        } else {
            for _ in 0..<settings.frameSkip { try data.step() }
        }
        if data.warningCount(.constraintFull) > 0 || data.warningCount(.contactFull) > 0 {
            throw EnvironmentError.invalidState(
                "the step needed more than the \(model.pointer.pointee.njmax) constraint rows or "
                    + "\(model.pointer.pointee.nconmax) contacts reserved (task.yaml collision.max_constraint_rows, "
                    + "max_contacts); raise them")
        }
        stepCount += 1
        observe(observation)

        var newlyCompleted = 0
        var count = 0
        data.withQpos { qpos in
            let readOnly = UnsafeBufferPointer(qpos)
            for i in completed.indices {
                if !completed[i],
                   KitchenSubtask.distance(qpos: readOnly, indices: requestedIndices[i], goal: requestedGoals[i])
                    < settings.completionThreshold
                {
                    completed[i] = true
                    newlyCompleted += 1
                }
                if completed[i] { count += 1 }
            }
        }
        let success = count == completed.count
        let terminated = success && settings.terminateOnTasksCompleted
        return StepResult(
            reward: Double(newlyCompleted), terminated: terminated,
            truncated: !terminated && stepCount >= settings.maxSteps, success: success, progress: Double(count),
            actionClipped: clipped)
    }

    /// Number of requested subtasks completed so far.
    public var completedCount: Int { completed.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// Draws the observation noise, updates `lastRobotQpos` and writes the observation.
    func observe(_ observation: UnsafeMutablePointer<Float>) {
        let D = Self.robotDimensions
        let robotRatio = settings.robotNoiseRatio
        let objectRatio = settings.objectNoiseRatio
        let state = noisyState
        data.withQpos { qpos in
            for i in 0..<D {
                state[i] = qpos[i] + robotRatio * robot.positionNoiseAmplitude[i] * noise.symmetric()
                lastRobotQpos[i] = state[i]
            }
        }
        data.withQvel { qvel in
            for i in 0..<D { state[D + i] = qvel[i] + robotRatio * robot.velocityNoiseAmplitude[i] * noise.symmetric() }
        }
        let objectPositions = nq - D  // 21
        let objectVelocities = nv - D  // 20
        data.withQpos { qpos in
            for j in 0..<objectPositions {
                // The reference scales object position noise with pos_noise_amp[8 + j] (one entry early).
                state[2 * D + j] =
                    qpos[D + j] + objectRatio * robot.positionNoiseAmplitude[D - 1 + j] * noise.symmetric()
            }
        }
        data.withQvel { qvel in
            for j in 0..<objectVelocities {
                state[2 * D + objectPositions + j] =
                    qvel[D + j] + objectRatio * robot.velocityNoiseAmplitude[D + j] * noise.symmetric()
            }
        }
        if settings.observation == "full" {
            for i in 0..<59 { observation[i] = Float(state[i]) }
        } else {
            for i in 0..<D { observation[i] = Float(state[i]) }
            for j in 0..<objectPositions { observation[D + j] = Float(state[2 * D + j]) }
            for i in (D + objectPositions)..<60 { observation[i] = 0 }
        }
    }

    // MARK: State

    /// Task state: the last observed robot positions (9), the noise stream (two 32-bit halves) and the completed
    /// flags.
    public func saveState() -> EnvironmentState {
        var task = (0..<Self.robotDimensions).map { lastRobotQpos[$0] }
        task += [Double(noise.state >> 32), Double(noise.state & 0xFFFF_FFFF)]
        task += completed.map { $0 ? 1 : 0 }
        return EnvironmentState(simulation: data.saveState(), task: task, stepCount: stepCount)
    }

    public func restoreState(_ state: EnvironmentState) throws {
        guard state.task.count == Self.robotDimensions + 2 + completed.count else {
            throw EnvironmentError.invalidState("not a Franka Kitchen state with \(completed.count) subtasks")
        }
        try data.restoreState(state.simulation)
        for i in 0..<Self.robotDimensions { lastRobotQpos[i] = state.task[i] }
        let high = UInt64(state.task[Self.robotDimensions])
        let low = UInt64(state.task[Self.robotDimensions + 1])
        noise.state = high << 32 | low
        for i in completed.indices { completed[i] = state.task[Self.robotDimensions + 2 + i] != 0 }
        stepCount = state.stepCount
    }
}

/// The observation noise: SplitMix64 (as `SeededRandom`, with its state readable for `saveState`).
struct NoiseStream {
    var state: UInt64

    init(seed: UInt64) { state = seed ^ 0x6B69_7463_6865_6E21 }  // "kitchen!": another stream than the reset's

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    mutating func symmetric() -> Double { Double(next() >> 11) * 0x1p-52 - 1 }
}
