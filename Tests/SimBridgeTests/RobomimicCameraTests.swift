import Foundation
import SimBridge
import Testing

/// Robomimic Lift with camera observations (`robomimic_lift_image`: robosuite's agentview at 84 × 84 plus the robot's
/// 9-D proprioception). Needs robosuite's rendering assets in the cache (`scripts/fetch_assets.py robomimic --render`,
/// which scripts/test.sh runs); without them these tests fail, as RenderingTests do.
@Suite struct RobomimicCameraTests {
    func liftImage() throws -> Robomimic { try Robomimic(task: .named("robomimic_lift_image")) }

    func frames(_ env: Robomimic) throws -> [UInt8] {
        var frames = [UInt8](repeating: 0, count: env.frameBytes)
        try frames.withUnsafeMutableBufferPointer { try env.renderCameras(into: $0.baseAddress!) }
        return frames
    }

    /// The pixel (row from the top, column from the left) where `point` appears in `renderer`'s camera, from the
    /// visual data's camera pose and field of view (MuJoCo's cameras look along their -z axis, y up).
    func projection(of point: SIMD3<Double>, renderer: OffscreenRenderer, camera: String) throws -> (Int, Int) {
        let id = try renderer.model.requireId(of: .camera, named: camera)
        let data = renderer.data.pointer.pointee
        let position = SIMD3(data.cam_xpos[3 * id], data.cam_xpos[3 * id + 1], data.cam_xpos[3 * id + 2])
        // The camera's axes in world coordinates: the columns of cam_xmat (row-major).
        let axis = (0..<3).map { column in
            let matrix = data.cam_xmat + 9 * id
            return SIMD3(matrix[column], matrix[3 + column], matrix[6 + column])
        }
        let offset = point - position
        let (x, y, depth) = ((offset * axis[0]).sum(), (offset * axis[1]).sum(), -(offset * axis[2]).sum())
        let fovy = renderer.model.pointer.pointee.cam_fovy[id] * Double.pi / 180
        let focal = Double(renderer.height) / 2 / tan(fovy / 2)
        let column = Double(renderer.width) / 2 + focal * x / depth
        let row = Double(renderer.height) / 2 - focal * y / depth
        return (Int(row), Int(column))
    }

    func isRed(_ frame: [UInt8], width: Int, row: Int, column: Int) -> Bool {
        let pixel = frame[(3 * (row * width + column))..<(3 * (row * width + column) + 3)].map(Int.init)
        return pixel[0] > pixel[1] + 30 && pixel[0] > pixel[2] + 30
    }

    @Test func liftImageResetsAndStepsWithTheRobotsNineValues() throws {
        let env = try liftImage()
        #expect(env.specification.observationMode == "proprio")
        #expect(env.specification.observationDimensions == 9)
        #expect(env.cameraNames == ["agentview"] && env.frameHeight == 84 && env.frameWidth == 84)
        #expect(env.frameChannels == 3 && env.frameBytes == 84 * 84 * 3)
        #expect(try TaskDescription.named("robomimic_lift_image").observationGroups()?.map(\.size) == [3, 4, 2])

        // The same values, bit for bit, as the last 9 of low_dim (robot0_eef_pos, robot0_eef_quat, gripper_qpos),
        // through an episode of the scripted expert.
        let reference = try Robomimic(task: .named("robomimic_lift"))
        var o = try env.reset(seed: 5)
        var full = try reference.reset(seed: 5)
        #expect(o.count == 9)
        #expect(o.map(\.bitPattern) == full[10..<19].map(\.bitPattern))
        let expert = try RobomimicExpert(environment: env)
        try expert.begin(episodeSeed: 5)
        var action = [Float](repeating: 0, count: 7)
        var success = false
        for _ in 0..<150 where !success {
            try action.withUnsafeMutableBufferPointer { try expert.act(action: $0.baseAddress!) }
            let step = try env.step(action)
            full = try reference.step(action).observation
            o = step.observation
            #expect(o.map(\.bitPattern) == full[10..<19].map(\.bitPattern))
            success = step.result.success
        }
        #expect(success, "the expert lifts the cube in the image task too")
    }

    /// The agentview frame shows the scene (many colours), is robosuite's agentview of the current state (the same
    /// bytes as a renderer made for that camera), is the right way up (the cube's red where the camera projects it,
    /// not where a flipped frame would have it), and changes when the arm moves.
    @Test func renderCamerasDrawsTheAgentviewRightWayUp() throws {
        let env = try liftImage()
        _ = try env.reset(seed: 3)
        // The cube near the table's front right corner (seen from the camera): far from the frame's centre lines.
        let cube = SIMD3(0.2, 0.15, 0.8 + env.cubeHalfSize.z)
        try env.place(joints: env.settings.initialJoints, objectPosition: cube, objectYaw: 0)
        let first = try frames(env)
        #expect(first.count == 84 * 84 * 3)
        var colours = Set<Int>()
        for pixel in stride(from: 0, to: first.count, by: 3) {
            let (red, green, blue) = (Int(first[pixel]), Int(first[pixel + 1]), Int(first[pixel + 2]))
            colours.insert(red << 16 | green << 8 | blue)
        }
        #expect(colours.count > 200, "only \(colours.count) distinct colours")
        let mean = first.reduce(0.0) { $0 + Double($1) } / Double(first.count)
        let variance = first.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(first.count)
        #expect(variance > 200, "variance \(variance)")

        let renderer = try env.makeRenderer(camera: "agentview", width: 84, height: 84)
        var drawn = [UInt8](repeating: 0, count: first.count)
        try drawn.withUnsafeMutableBufferPointer { try renderer.render(into: $0.baseAddress!) }
        #expect(drawn == first)
        let (row, column) = try projection(of: cube, renderer: renderer, camera: "agentview")
        #expect((60..<80).contains(row) && (56..<80).contains(column), "the cube projects to (\(row), \(column))")
        #expect(isRed(first, width: 84, row: row, column: column), "no red cube at (\(row), \(column))")
        #expect(!isRed(first, width: 84, row: 83 - row, column: column), "red where an upside-down frame has the cube")
        #expect(!isRed(first, width: 84, row: row, column: 83 - column), "red where a mirrored frame has the cube")

        // Move the arm (up and to the side, closing the gripper) for a few steps.
        for _ in 0..<6 { _ = try env.step([0, 0.8, 0.8, 0, 0, 0, 1]) }
        let moved = try frames(env)
        let changed = zip(first, moved).filter { $0 != $1 }.count
        #expect(changed > first.count / 50, "only \(changed) of \(first.count) values changed")
    }

    /// Any camera of the composed scene can be named: the wrist camera (`robot0_eye_in_hand`, Diffusion Policy's
    /// second view) draws a different picture from the agentview, both written one after the other.
    @Test func camerasAreWrittenInOrder() throws {
        let image = try liftImage()
        let cameras = [
            TaskDescription.Camera(name: "agentview", height: 48, width: 64),
            TaskDescription.Camera(name: "robot0_eye_in_hand", height: 48, width: 64),
        ]
        let env = try Robomimic(settings: image.settings, taskName: "robomimic_lift_image", cameras: cameras)
        _ = try env.reset(seed: 1)
        let both = try frames(env)
        #expect(both.count == 2 * 48 * 64 * 3)
        let agentview = Array(both[0..<(48 * 64 * 3)])
        let wrist = Array(both[(48 * 64 * 3)...])
        var alone = [UInt8](repeating: 0, count: agentview.count)
        let renderer = try env.makeRenderer(camera: "agentview", width: 64, height: 48)
        try alone.withUnsafeMutableBufferPointer { try renderer.render(into: $0.baseAddress!) }
        #expect(alone == agentview)
        #expect(wrist != agentview)
        #expect(Set(wrist).count > 20, "the wrist frame is blank")
        #expect(throws: RenderingError.unknownCamera("no_such_camera")) {
            _ = try Robomimic(
                settings: image.settings, taskName: "robomimic_lift_image",
                cameras: [TaskDescription.Camera(name: "no_such_camera", height: 8, width: 8)])
        }
    }

    /// Without cameras nothing changes: no camera, no frame bytes, the low_dim observation.
    @Test func liftWithoutCamerasHasNoCameras() throws {
        let env = try Robomimic(task: .named("robomimic_lift"))
        #expect(env.cameraNames.isEmpty)
        #expect(env.frameBytes == 0)
        #expect(env.specification.observationMode == "low_dim" && env.specification.observationDimensions == 19)
        var settings = env.settings
        settings.observation = "rgb"
        #expect(throws: EnvironmentError.self) { _ = try Robomimic(settings: settings, taskName: "robomimic_lift") }
    }
}
