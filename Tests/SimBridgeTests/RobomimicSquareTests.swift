import Foundation
import SimBridge
import Testing

/// Robomimic Square (robosuite's NutAssemblySquare): scene, placement, the `on_peg` success rule, the expert.
extension RobomimicTests {
    func square() throws -> Robomimic { try Robomimic(task: .named("robomimic_square")) }

    @Test func composedSquareSceneHasRobosuitesStructure() throws {
        let env = try square()
        let model = env.model
        // NutAssemblySquare without the round nut it parks at (10, 10, 10): 7 arm + 2 fingers + the nut's free joint.
        #expect(model.nq == 16 && model.nv == 15 && model.nu == 9)
        try env.data.forward()
        // Robot root at Panda.base_xpos_offset["table"](0.8) minus the bottom offset, as robosuite reports it:
        // (-0.56, 0, 0.912); the table's body at 0.82 - 0.025 (robosuite: 0.795), its top at 0.82.
        let base = env.data.bodyPosition(try model.requireId(of: .body, named: "robot0_base"))
        #expect(abs(base.x + 0.56) < 1e-12 && abs(base.y) < 1e-12 && abs(base.z - 0.912) < 1e-12)
        let table = env.data.bodyPosition(try model.requireId(of: .body, named: "table"))
        #expect(abs(table.z - 0.795) < 1e-12)
        // Both pegs of the arena, where its file puts them: the square one 0.032 m wide and 0.2 m tall.
        let peg = try model.requireId(of: .body, named: "peg1")
        #expect(env.pegPosition == SIMD3(0.23, 0.1, 0.85))
        #expect(env.data.bodyPosition(try model.requireId(of: .body, named: "peg2")) == SIMD3(0.23, -0.1, 0.85))
        let m = model.pointer.pointee
        let pegGeoms = (0..<model.ngeom).filter { m.geom_bodyid[$0] == peg }
        #expect(pegGeoms.count == 1)
        if let g = pegGeoms.first {
            #expect(m.geom_type[g] == 6)  // mjGEOM_BOX
            let size = SIMD3(m.geom_size[3 * g], m.geom_size[3 * g + 1], m.geom_size[3 * g + 2])
            #expect(size == SIMD3(0.016, 0.016, 0.1))
        }
        // The success box is centred on the square peg, ±3 cm, below the table top + 5 cm.
        let target = try #require(env.settings.target)
        #expect(abs((target.x[0] + target.x[1]) / 2 - 0.23) < 1e-12 && abs(target.x[1] - target.x[0] - 0.06) < 1e-12)
        #expect(abs((target.y[0] + target.y[1]) / 2 - 0.1) < 1e-12 && abs(target.y[1] - target.y[0] - 0.06) < 1e-12)
        #expect(abs(target.z[1] - 0.87) < 1e-12)
        // The nut: five boxes at density 100 give robosuite's mass exactly (0.01580675 kg); free-joint damping 0.0005.
        let nut = try model.requireId(of: .body, named: "SquareNut_main")
        #expect(abs(m.body_subtreemass[nut] - 0.01580675) < 1e-9, "nut mass \(m.body_subtreemass[nut]) kg")
        let joint = try model.requireId(of: .joint, named: "SquareNut_joint0")
        #expect(m.dof_damping[model.jointDofAddress(joint)] == 0.0005)
        // The handle is 5.4 cm from the nut's centre along its x axis.
        let handle = try #require(env.handlePosition)
        let centre = env.objectPosition
        #expect(abs(((handle - centre) * (handle - centre)).sum().squareRoot() - 0.054) < 1e-9)
    }

    @Test func squareResetFollowsRobosuitesPlacementAndObservation() throws {
        let env = try square()
        var yaws: [Double] = []
        for seed: UInt64 in 0..<20 {
            let o = try env.reset(seed: seed)
            #expect(o.count == 23)
            // x in [-0.115, -0.11], y in [0.11, 0.225]; the bottom site 2 cm above the table top (centre at 0.89).
            #expect(o[0] >= -0.115 - 1e-6 && o[0] <= -0.11 + 1e-6, "x \(o[0])")
            #expect(o[1] >= 0.11 - 1e-6 && o[1] <= 0.225 + 1e-6, "y \(o[1])")
            #expect(abs(Double(o[2]) - 0.89) < 1e-6)
            // A turn about z only (x y z w).
            #expect(o[3] == 0 && o[4] == 0)
            yaws.append(2 * atan2(Double(o[5]), Double(o[6])))
            try expectObjectPoseInEndEffectorFrame(o, env)
            #expect(o[21] == Float(0.020833) && o[22] == Float(-0.020833))
        }
        // Yaw uniform over the whole turn: 20 draws span more than half of it.
        let sorted = yaws.map { $0 < 0 ? $0 + 2 * Double.pi : $0 }.sorted()
        #expect(sorted.last! - sorted.first! > Double.pi)
        #expect(try env.reset(seed: 3) == (try env.reset(seed: 3)))
        #expect(try env.reset(seed: 3) != (try env.reset(seed: 4)))
    }

    @Test func squareSuccessIsRobosuitesOnPegRule() throws {
        let env = try square()
        _ = try env.reset(seed: 0)
        let joints = env.settings.initialJoints
        // Around the peg, resting on the table (centre 1 cm above the top), the gripper far away: success.
        for yaw in [0, 0.3, Double.pi / 2] {
            try env.place(joints: joints, objectPosition: SIMD3(0.23, 0.1, 0.83), objectYaw: yaw)
            #expect(env.isSuccess, "yaw \(yaw)")
        }
        try env.place(joints: joints, objectPosition: SIMD3(0.25, 0.08, 0.86), objectYaw: 0)
        #expect(env.isSuccess)
        // 3.5 cm off in x or y, at or above the table top + 5 cm, or at its start: not.
        for position in [SIMD3(0.265, 0.1, 0.83), SIMD3(0.23, 0.065, 0.83), SIMD3(0.23, 0.1, 0.87),
                         SIMD3(0.23, 0.1, 0.96), SIMD3(-0.11, 0.15, 0.83)] {
            try env.place(joints: joints, objectPosition: position, objectYaw: 0)
            #expect(!env.isSuccess, "\(position)")
        }
    }

    /// The peg passes through the nut's hole: a nut let go 3 cm above the table around the peg falls to the table and
    /// stays on the peg; let go beside the peg it lands on the table and is no success.
    @Test func aNutAroundThePegFallsOntoTheTable() throws {
        let env = try square()
        _ = try env.reset(seed: 0)
        let joints = env.settings.initialJoints
        try env.place(joints: joints, objectPosition: SIMD3(0.232, 0.098, 0.86), objectYaw: 0.1)
        for _ in 0..<10 { _ = try env.step([0, 0, 0, 0, 0, 0, 0]) }
        #expect(abs(env.objectPosition.z - 0.83) < 0.002, "nut at \(env.objectPosition)")
        #expect(env.isSuccess)
        try env.place(joints: joints, objectPosition: SIMD3(0.1, 0.1, 0.86), objectYaw: 0)
        for _ in 0..<10 { _ = try env.step([0, 0, 0, 0, 0, 0, 0]) }
        #expect(abs(env.objectPosition.z - 0.83) < 0.002)
        #expect(!env.isSuccess)
    }

    @Test func squareExpertFitsTheNutOnThePegWithSmoothActions() throws {
        let env = try square()
        let expert = try RobomimicExpert(environment: env)
        for seed: UInt64 in [1, 2, 3] {
            #expect(try runSmoothExpertEpisode(env, expert, seed: seed, maximumSteps: 400), "seed \(seed)")
            // Let go and rise: the nut drops down the peg onto the table and stays there, flat.
            for _ in 0..<10 { _ = try env.step([0, 0, 0, 0, 0, 0, -1]) }
            for _ in 0..<20 { _ = try env.step([0, 0, 0.5, 0, 0, 0, -1]) }
            let position = env.objectPosition
            #expect(env.isSuccess, "seed \(seed): nut at \(position)")
            #expect(abs(position.z - 0.83) < 0.003, "seed \(seed): nut at \(position)")
            let q = env.objectQuaternion
            #expect(q[0] * q[0] + q[3] * q[3] > 0.999, "seed \(seed): nut tilted, quaternion \(q)")
        }
    }

    @Test func squareSteppingDoesNotAllocateAndStatesReplay() throws {
        let env = try square()
        _ = try env.reset(seed: 4)
        for _ in 0..<5 { _ = try env.step([0, 0.3, -0.5, 0, 0, 0, -1]) }
        try expectExactReplayWithoutAllocations(
            env, actions: (0..<5).map { k in [0.3, 0.2, -0.4, 0.1, 0, 0.2, k < 2 ? -1 : 1] })
    }

    @Test func squareTaskFilesAreChecked() throws {
        let env = try square()
        var settings = env.settings
        settings.table = nil
        #expect(throws: EnvironmentError.self) { _ = try Robomimic(settings: settings, taskName: "robomimic_square") }
        settings = env.settings
        settings.target = nil
        #expect(throws: EnvironmentError.self) { _ = try Robomimic(settings: settings, taskName: "robomimic_square") }
    }
}
