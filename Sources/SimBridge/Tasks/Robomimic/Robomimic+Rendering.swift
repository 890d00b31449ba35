import CMuJoCo
import Foundation

extension Robomimic: RenderableEnvironment {
    /// robosuite's default camera for these tasks (`camera_names="agentview"` in Lift, PickPlace and NutAssembly),
    /// defined in each arena file: (0.5, 0, 1.35) over the table, (1.0, 0, 1.75) over the bins, looking back at the
    /// robot.
    public static let renderCamera = RenderCamera.named("agentview")

    /// robosuite's offscreen view draws group 1 (visual geoms) and hides group 0 (collision geoms):
    /// `render_collision_mesh=False`, `render_visual_mesh=True`. Group 2 keeps MuJoCo's default (shown).
    public static let renderedGeomGroups: Set<Int> = [1, 2]

    /// No sites are drawn: robosuite's `reset` turns its visualisation sites off (`visualize` with every setting
    /// false makes the gripper's and objects' sites transparent), and the others are transparent in their files.
    public static let renderedSiteGroups: Set<Int> = []

    /// A renderer of this environment from robosuite's `agentview`. It composes the task's scene again with
    /// robosuite's visual geometry (its meshes and textures must have been fetched: `scripts/fetch_assets.py robomimic
    /// --render`) and draws this environment's current state; the simulated model is not touched.
    public func makeRenderer(width: Int, height: Int) throws -> any FrameRenderer {
        try makeOffscreenRenderer(
            camera: Self.renderCamera, width: width, height: height, cubeHalfSize: { self.cubeHalfSize })
    }

    /// A renderer of this environment from `camera`, a camera of robosuite's scene by its MuJoCo name: the arena's
    /// (`agentview`, `frontview`, `birdview`, `sideview`) or the robot's (`robot0_eye_in_hand`, `robot0_robotview`).
    /// Frames are rows top first. The renderer keeps this environment alive.
    public func makeRenderer(camera: String, width: Int, height: Int) throws -> OffscreenRenderer {
        try makeOffscreenRenderer(
            camera: .named(camera), width: width, height: height, cubeHalfSize: { self.cubeHalfSize })
    }

    /// `cubeHalfSize` gives Lift's cube size this episode (the environment's own renderers read it unowned).
    func makeOffscreenRenderer(
        camera: RenderCamera, width: Int, height: Int, cubeHalfSize: @escaping () -> SIMD3<Double>
    ) throws -> OffscreenRenderer {
        let composed = try Self.composeScene(settings: settings, taskName: specification.task, visual: true)
        let visual = try composed.scene.compile()
        // Lift's cube changes size every episode: the visual model's cube geoms (collision and visual) follow it.
        let cubeGeoms = settings.task == "lift"
            ? [try visual.requireId(of: .geom, named: "cube_g0"), try visual.requireId(of: .geom, named: "cube_g0_vis")]
            : []
        let simulation = data
        let renderer = try OffscreenRenderer(
            model: visual, width: width, height: height, camera: camera,
            visibleGroups: Self.renderedGeomGroups, visibleSiteGroups: Self.renderedSiteGroups
        ) { target in
            target.copyState(from: simulation)
            let sizes = target.model.pointer.pointee.geom_size!
            let half = cubeHalfSize()
            for geom in cubeGeoms {
                sizes[3 * geom] = half.x
                sizes[3 * geom + 1] = half.y
                sizes[3 * geom + 2] = half.z
            }
        }
        try renderer.data.requireSameState(as: simulation)
        guard visual.nbody == model.nbody else {
            throw RenderingError.modelMismatch("\(visual.nbody) bodies in the visual scene, \(model.nbody) simulated")
        }
        return renderer
    }
}
