import CMuJoCo
import Foundation

/// Push-T in MuJoCo: push a T-shaped block into a goal pose with a circular agent (Diffusion Policy's Push-T, and
/// LeRobot's `gym-pusht`, both 2-D pymunk simulations; see TASKS.md and `tasks/pusht/README.md`).
///
/// The scene (`tasks/pusht/scene.xml`) is a top-down plane without gravity: the block has planar joints (x, y at
/// the T's origin, the middle of the bar's outer edge, and the angle about that origin; its centre of mass is at
/// (0, 45) in its frame, mass 1, rotational inertia 3000 as the reference computes it), frictionless contacts, and
/// four walls. The agent is a mocap sphere of radius 15 moved by the reference's kinematic PD law every physics
/// step; it passes through walls, as a kinematic body does in pymunk. After every physics step the block's velocity
/// is zeroed (pymunk's `damping = 0`): it moves only while pushed.
///
/// Observation `keypoints` (20-D): the 9 block keypoints of Diffusion Policy's low-dim Push-T in world coordinates,
/// then the agent's x, y. Observation `state` (5-D): agent x, y, block x, y, block angle mod 2π. Observation `agent`
/// (2-D): the agent's x, y, beside the frames of the task's cameras (Push-T image, as Diffusion Policy's
/// `pusht_image`: a 96 × 96 top view and the agent's position). Action: the agent's
/// absolute target position, clipped to [0, 512]². Coverage is the exact area of block ∩ goal over the goal's area.
public final class PushT: CameraEnvironment {
    public let specification: EnvironmentSpecification
    public let settings: PushTSettings
    public let model: Model
    public let data: Data
    public private(set) var stepCount = 0

    /// The agent's position and velocity (the PD controller's state; the mocap body follows the position).
    public private(set) var agentPosition = SIMD2<Double>(256, 400)
    public private(set) var agentVelocity = SIMD2<Double>(0, 0)
    public let goal: Pose2D

    let blockQpos: (x: Int, y: Int, angle: Int)
    let blockDof: (x: Int, y: Int, angle: Int)
    let agentMocap: Int
    let agentGeom: Int
    let blockGeoms: [Int]
    /// The T's two rectangles in the block frame, counter-clockwise.
    let localRectangles: [ConvexPolygon]
    let goalRectangles: [ConvexPolygon]
    let goalArea: Double
    let keypoints: [SIMD2<Double>]
    let substeps: Int
    let timestep: Double
    public let cameraNames: [String]
    public let frameHeight: Int
    public let frameWidth: Int
    public var frameChannels: Int { 3 }
    /// Draws the camera frames (the one top view), made when the task has cameras.
    private var cameraRenderer: PushTRenderer?

    /// Push-T as `task.yaml` describes it, with the scene from the task's folder.
    public convenience init(task: TaskDescription) throws {
        let settings = try task.settings(PushTTaskFile.self).environment
        guard task.cameras.count <= 1 else {
            throw EnvironmentError.invalidTaskFile(
                path: task.folder.path("task.yaml"), message: "Push-T has one camera (the top view)")
        }
        try self.init(settings: settings, scenePath: task.folder.requireFile(settings.scene), task: task.name,
                      camera: task.cameras.first)
    }

    /// `camera`: the top view's name and frame size, for image observations.
    public init(settings: PushTSettings, scenePath: String, task: String = "pusht",
                camera: TaskDescription.Camera? = nil) throws {
        guard ["keypoints", "state", "agent"].contains(settings.observation) else {
            throw EnvironmentError.invalidTaskFile(
                path: "task.yaml",
                message: "observation must be keypoints, state or agent, got \(settings.observation)")
        }
        guard settings.keypoints.count == 9, settings.keypoints.allSatisfy({ $0.count == 2 }),
              settings.goal.count == 3, settings.actionLow.count == 2, settings.actionHigh.count == 2
        else {
            throw EnvironmentError.invalidTaskFile(
                path: "task.yaml",
                message: "Push-T needs 9 keypoints of 2 numbers, a goal [x, y, angle] and 2-D action bounds")
        }
        self.settings = settings
        let model = try Model(path: scenePath)
        self.model = model
        data = try Data(model: model)
        timestep = model.timestep
        let substeps = Int((1 / (settings.controlHz * timestep)).rounded())
        self.substeps = substeps
        let joints = try ["block_x", "block_y", "block_angle"].map { name in
            try model.requireId(of: .joint, named: name)
        }
        blockQpos = (
            model.jointQposAddress(joints[0]), model.jointQposAddress(joints[1]), model.jointQposAddress(joints[2]))
        blockDof = (
            model.jointDofAddress(joints[0]), model.jointDofAddress(joints[1]), model.jointDofAddress(joints[2]))
        guard let mocap = model.bodyMocapIndex(try model.requireId(of: .body, named: "agent")) else {
            throw EnvironmentError.invalidTaskFile(path: scenePath, message: "the body \"agent\" must be a mocap body")
        }
        agentMocap = mocap
        agentGeom = try model.requireId(of: .geom, named: "agent")
        blockGeoms = try ["bar", "stem"].map { try model.requireId(of: .geom, named: $0) }
        // The coverage polygons come from the scene's own boxes, so geometry has one source.
        let m = model.pointer.pointee
        localRectangles = blockGeoms.map { geom in
            let center = SIMD2(m.geom_pos[3 * geom], m.geom_pos[3 * geom + 1])
            let half = SIMD2(m.geom_size[3 * geom], m.geom_size[3 * geom + 1])
            return ConvexPolygon([
                center + SIMD2(-half.x, -half.y), center + SIMD2(half.x, -half.y),
                center + SIMD2(half.x, half.y), center + SIMD2(-half.x, half.y),
            ])
        }
        let goal = Pose2D(x: settings.goal[0], y: settings.goal[1], angle: settings.goal[2])
        self.goal = goal
        goalRectangles = localRectangles.map { Self.transform($0, by: goal) }
        goalArea = goalRectangles.reduce(0) { $0 + $1.area }
        keypoints = settings.keypoints.map { SIMD2($0[0], $0[1]) }
        let observationDimensions = ["keypoints": 20, "state": 5, "agent": 2][settings.observation]!
        cameraNames = camera.map { [$0.name] } ?? []
        frameHeight = camera?.height ?? 0
        frameWidth = camera?.width ?? 0
        specification = EnvironmentSpecification(
            task: task, observationMode: settings.observation, observationDimensions: observationDimensions,
            actionDimensions: 2, actionLow: settings.actionLow, actionHigh: settings.actionHigh,
            controlRate: settings.controlHz, physicsTimestep: timestep, substeps: substeps,
            maximumSteps: settings.maxSteps, progressName: "coverage")
        if let camera { cameraRenderer = try PushTRenderer(environment: self, width: camera.width, height: camera.height) }
    }

    public func renderCameras(into frames: UnsafeMutablePointer<UInt8>) throws {
        try cameraRenderer?.render(into: frames)
    }

    // MARK: Episodes

    /// The reference's reset distribution: agent and block positions uniform integers, block angle uniform in
    /// [-π, π). The block is placed as the references place it (position set at angle 0, then the angle set, which
    /// pymunk applies about the centre of mass, (0, 45) in the block frame), then one physics step is taken.
    public func reset(seed: UInt64, observation: UnsafeMutablePointer<Float>) throws {
        let start = initialState(seed: seed)
        try place(agent: start.agent, block: start.block, settle: true)
        writeObservation(observation)
    }

    /// The start of the episode of `seed`, before the settling step: the sampled agent position, and the block pose
    /// after the reference's placement rule.
    public func initialState(seed: UInt64) -> (agent: SIMD2<Double>, block: Pose2D) {
        var random = SeededRandom(seed: seed)
        let agentRange = settings.reset.agent[0]..<settings.reset.agent[1]
        let blockRange = settings.reset.block[0]..<settings.reset.block[1]
        let agent = SIMD2(Double(random.integer(in: agentRange)), Double(random.integer(in: agentRange)))
        let x = Double(random.integer(in: blockRange))
        let y = Double(random.integer(in: blockRange))
        let angle = -Double.pi + 2 * Double.pi * random.uniform()
        return (agent, Pose2D(x: x + 45 * sin(angle), y: y + 45 - 45 * cos(angle), angle: angle))
    }

    /// Puts the agent and the block exactly at the given poses, at rest, and restarts the step count. With `settle`,
    /// takes one physics step as the references do after setting a state.
    public func place(agent: SIMD2<Double>, block: Pose2D, settle: Bool) throws {
        data.reset()
        agentPosition = agent
        agentVelocity = .zero
        setAgentMocap()
        data.withQpos { qpos in
            qpos[blockQpos.x] = block.x
            qpos[blockQpos.y] = block.y
            qpos[blockQpos.angle] = block.angle
        }
        try data.forward()
        if settle { try physicsStep(target: agent) }
        stepCount = 0
    }

    public func step(action: UnsafePointer<Float>, observation: UnsafeMutablePointer<Float>) throws -> StepResult {
        for i in 0..<2 where !action[i].isFinite { throw EnvironmentError.nonFiniteAction(index: i, value: action[i]) }
        let low = specification.actionLow
        let high = specification.actionHigh
        let clippedX = min(max(action[0], low[0]), high[0])
        let clippedY = min(max(action[1], low[1]), high[1])
        let target = SIMD2(Double(clippedX), Double(clippedY))
        for _ in 0..<substeps { try physicsStep(target: target) }
        stepCount += 1
        let coverage = self.coverage
        let success = coverage > settings.successCoverage
        writeObservation(observation)
        return StepResult(
            reward: min(max(coverage / settings.successCoverage, 0), 1), terminated: success,
            truncated: !success && stepCount >= settings.maxSteps, success: success, progress: coverage,
            actionClipped: clippedX != action[0] || clippedY != action[1])
    }

    /// One physics step: the reference's PD law moves the kinematic agent, MuJoCo resolves the contacts, and the
    /// block's velocity is zeroed (quasi-static block).
    @inline(__always)
    func physicsStep(target: SIMD2<Double>) throws {
        let acceleration = settings.agent.kp * (target - agentPosition) - settings.agent.kv * agentVelocity
        agentVelocity += acceleration * timestep
        agentPosition += agentVelocity * timestep
        setAgentMocap()
        try data.step()
        data.withQvel { qvel in
            qvel[blockDof.x] = 0
            qvel[blockDof.y] = 0
            qvel[blockDof.angle] = 0
        }
    }

    @inline(__always)
    func setAgentMocap() {
        let index = 3 * agentMocap
        data.withMocapPos { mocap in
            mocap[index] = agentPosition.x
            mocap[index + 1] = agentPosition.y
        }
    }

    // MARK: Measurements

    /// The block's pose: the T's origin (middle of the bar's outer edge) and angle, unwrapped.
    public var blockPose: Pose2D {
        data.withQpos { Pose2D(x: $0[blockQpos.x], y: $0[blockQpos.y], angle: $0[blockQpos.angle]) }
    }

    /// area(block ∩ goal) / area(goal), exactly (each T is two disjoint rectangles, so the intersection is the sum of
    /// four convex intersections).
    public var coverage: Double { coverage(of: blockPose) }

    public func coverage(of pose: Pose2D) -> Double {
        var overlap = 0.0
        for rectangle in localRectangles {
            let placed = Self.transform(rectangle, by: pose)
            for goalRectangle in goalRectangles { overlap += placed.intersection(goalRectangle).area }
        }
        return overlap / goalArea
    }

    /// The block's keypoints in world coordinates.
    public func keypointPositions(of pose: Pose2D) -> [SIMD2<Double>] { keypoints.map { pose.apply($0) } }

    func writeObservation(_ observation: UnsafeMutablePointer<Float>) {
        let pose = blockPose
        if settings.observation == "keypoints" {
            for (i, keypoint) in keypoints.enumerated() {
                let world = pose.apply(keypoint)
                observation[2 * i] = Float(world.x)
                observation[2 * i + 1] = Float(world.y)
            }
            observation[18] = Float(agentPosition.x)
            observation[19] = Float(agentPosition.y)
        } else if settings.observation == "agent" {
            observation[0] = Float(agentPosition.x)
            observation[1] = Float(agentPosition.y)
        } else {
            observation[0] = Float(agentPosition.x)
            observation[1] = Float(agentPosition.y)
            observation[2] = Float(pose.x)
            observation[3] = Float(pose.y)
            let wrapped = pose.angle.truncatingRemainder(dividingBy: 2 * Double.pi)
            observation[4] = Float(wrapped < 0 ? wrapped + 2 * Double.pi : wrapped)
        }
    }

    static func transform(_ polygon: ConvexPolygon, by pose: Pose2D) -> ConvexPolygon {
        var placed = ConvexPolygon()
        for i in 0..<polygon.count { placed.append(pose.apply(polygon[i])) }
        return placed
    }

    // MARK: State

    public func saveState() -> EnvironmentState {
        EnvironmentState(
            simulation: data.saveState(),
            task: [agentPosition.x, agentPosition.y, agentVelocity.x, agentVelocity.y], stepCount: stepCount)
    }

    public func restoreState(_ state: EnvironmentState) throws {
        guard state.task.count == 4 else { throw EnvironmentError.invalidState("not a Push-T state") }
        try data.restoreState(state.simulation)
        agentPosition = SIMD2(state.task[0], state.task[1])
        agentVelocity = SIMD2(state.task[2], state.task[3])
        stepCount = state.stepCount
        setAgentMocap()
    }
}
