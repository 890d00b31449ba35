import Testing

import SimBridge

@Suite struct DataTests {
    @Test func freeFallFollowsGravity() throws {
        let model = try Model(xml: Fixtures.fallingBall)
        let data = try Data(model: model)
        let g = 9.81
        let h = model.timestep
        let n = 500
        try data.step(count: n)

        // MuJoCo's default integrator is semi-implicit Euler: v[k+1] = v[k] - g h, z[k+1] = z[k] + h v[k+1]. So
        // after n steps v = -g n h exactly and z = z0 - g h² n (n + 1) / 2 = z0 - g t²/2 - g h t / 2, with t = n h:
        // the drop exceeds g t²/2 by exactly g h t / 2 (9.81 mm here), which bounds the error of the comparison.
        let t = Double(n) * h
        #expect(abs(data.time - t) < 1e-12)
        let z = data.qpos[2]
        let exactDrop = g * t * t / 2
        let integratorError = g * h * t / 2
        #expect(abs((10 - z) - exactDrop) <= integratorError + 1e-9)
        #expect(abs((10 - z) - (exactDrop + integratorError)) < 1e-9)
        #expect(abs(data.qvel[2] - -g * t) < 1e-9)
        #expect(data.qpos[0] == 0 && data.qpos[1] == 0)

        // Position-dependent results lag one step behind qpos until forward().
        try data.forward()
        let ball = try model.requireId(of: .body, named: "ball")
        #expect(data.bodyPosition(ball) == SIMD3(0, 0, z))
        #expect(data.geomPosition(0) == SIMD3(0, 0, z))
        #expect(data.bodyQuaternion(ball) == SIMD4(1, 0, 0, 0))
    }

    @Test func dataKeepsItsModelAlive() throws {
        weak var weakModel: Model?
        var data: Data? = try {
            let model = try Model(xml: Fixtures.fallingBall)
            weakModel = model
            return try Data(model: model)
        }()
        #expect(weakModel != nil)
        try data!.step(count: 10)
        #expect(data!.model.nq == 7)
        data = nil
        #expect(weakModel == nil)
    }

    @Test func closuresAndArraysShareMuJoCosMemory() throws {
        let model = try Model(xml: Fixtures.armAndBox)
        let data = try Data(model: model)
        data.withCtrl { ctrl in
            ctrl[0] = 0.25
            ctrl[1] = -0.75
        }
        #expect(data.ctrl == [0.25, -0.75])
        data.qfrcApplied = [Double](repeating: 0.5, count: model.nv)
        data.withQfrcApplied { #expect(Array($0) == [Double](repeating: 0.5, count: model.nv)) }
        data.userdata = [1, 2, 3]
        data.withUserdata { #expect($0.count == 3 && $0[2] == 3) }
        data.withMocapPos { #expect(Array($0) == [0.5, 0, 0.5]) }
        data.withMocapQuat { #expect(Array($0) == [1, 0, 0, 0]) }
        data.withXfrcApplied { #expect($0.count == 6 * model.nbody) }
        data.withAct { #expect($0.isEmpty) }

        try data.forward()
        let tip = try model.requireId(of: .site, named: "tip")
        #expect(data.sitePosition(tip) == SIMD3(0.6, 0, 0.1))
        data.withSiteXpos { #expect(Array($0) == [0.6, 0, 0.1]) }
        data.withSiteXmat { #expect($0.count == 9) }
        data.withSensorData { sensors in
            #expect(sensors[0] == 0)  // shoulder angle
            #expect(Array(sensors[1..<4]) == [0.6, 0, 0.1])  // tip position
        }
        #expect(data.xpos.count == 3 * model.nbody)
        #expect(data.xquat.count == 4 * model.nbody)
        data.withXmat { #expect($0.count == 9 * model.nbody && $0[0] == 1) }
        data.withGeomXpos { #expect($0.count == 3 * model.ngeom) }
        #expect(data.geomXmat.count == 9 * model.ngeom)
        data.withQacc { #expect($0.count == model.nv) }
    }

    @Test func resetToKeyframe() throws {
        let model = try Model(xml: Fixtures.armAndBox)
        let data = try Data(model: model)
        try data.reset(keyframe: "bent")
        #expect(data.time == 1.5)
        #expect(data.qpos[0] == 0.3 && data.qpos[1] == -1.2)
        #expect(data.ctrl == [0.5, -0.5])
        #expect(error { try data.reset(keyframe: 1) } == .indexOutOfRange(kind: .keyframe, index: 1, count: 1))
        #expect(error { try data.reset(keyframe: "straight") } == .unknownName(kind: .keyframe, name: "straight"))
        data.reset()
        #expect(data.time == 0 && data.qpos[1] == 0 && data.ctrl == [0, 0])
    }

    @Test func contactsOfABoxOnTheFloor() throws {
        let model = try Model(xml: Fixtures.boxOnFloor())
        let data = try Data(model: model)
        let floor = try model.requireId(of: .geom, named: "floor")
        let box = try model.requireId(of: .geom, named: "box")
        try data.forward()
        #expect(data.contactCount == 0)
        #expect(!data.hasContact(between: floor, and: box))

        try data.step(count: 1000)  // falls 0.2 m in 0.2 s, then settles
        try data.forward()
        #expect(data.contactCount == 4)  // the four corners of the bottom face
        #expect(data.hasContact(between: box, and: floor))
        for contact in data.contacts {
            #expect(contact.involves(floor, box))
            #expect(contact.distance <= 0 && contact.distance > -1e-3)
            #expect(abs(contact.position.z) < 1e-3)
            #expect(abs(abs(contact.normal.z) - 1) < 1e-9)
        }
        #expect(abs(data.qpos[2] - 0.1) < 1e-3)
    }

    @Test func siteJacobianOfAHinge() throws {
        let model = try Model(xml: Fixtures.armAndBox)
        let data = try Data(model: model)
        try data.forward()
        let tip = try model.requireId(of: .site, named: "tip")
        let (translation, rotation) = try data.siteJacobian(tip)
        // Tip at (0.6, 0, 0.1), hinges about z through x = 0 and x = 0.3:
        // d(tip)/d(shoulder) = z × (0.6, 0, 0) = (0, 0.6, 0) and d(tip)/d(elbow) = z × (0.3, 0, 0) = (0, 0.3, 0).
        let nv = model.nv
        #expect(abs(translation[1 * nv + 0] - 0.6) < 1e-12)
        #expect(abs(translation[1 * nv + 1] - 0.3) < 1e-12)
        #expect(translation[0 * nv + 0] == 0 && translation[2 * nv + 0] == 0)
        #expect(rotation[2 * nv + 0] == 1 && rotation[2 * nv + 1] == 1)
        #expect(translation[1 * nv + 2] == 0)  // the box's dofs do not move the tip
    }

    @Test func copiesAreIndependent() throws {
        let model = try Model(xml: Fixtures.boxOnFloor())
        let data = try Data(model: model)
        try data.step(count: 20)
        let copy = try Data(copying: data)
        #expect(copy.qpos == data.qpos && copy.time == data.time)
        try copy.step(count: 20)
        #expect(copy.time > data.time)
        try data.copy(from: copy)
        #expect(data.qpos == copy.qpos && data.time == copy.time)
    }
}
