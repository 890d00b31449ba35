import Testing

import SimBridge

@Suite struct SimulationStateTests {
    /// Steps `data` with the given controls, returning qpos after every step.
    private func rollout(_ data: Data, controls: [[Double]], afterEachStep: (Data) -> Void = { _ in }) throws
        -> [[Double]]
    {
        try controls.map { control in
            data.ctrl = control
            try data.step()
            afterEachStep(data)
            return data.qpos
        }
    }

    private func randomControls(count: Int, seed: UInt64) -> [[Double]] {
        var generator = SplitMix64(state: seed)
        return (0..<count).map { _ in
            // A mostly positive shoulder torque swings the arm into the box.
            [Double.random(in: -0.5...2, using: &generator), Double.random(in: -1...1, using: &generator)]
        }
    }

    private func bits(_ trajectory: [[Double]]) -> [[UInt64]] {
        trajectory.map { $0.map(\.bitPattern) }
    }

    @Test func restoringReplaysBitForBit() throws {
        let model = try Model(xml: Fixtures.armAndBox)
        let data = try Data(model: model)
        try _ = rollout(data, controls: randomControls(count: 300, seed: 1))
        data.withMocapPos { $0[0] = 0.4 }
        data.withXfrcApplied { $0[6 * model.nbody - 1] = 0.01 }  // a small torque on the box
        data.userdata = [7, 8, 9]
        let saved = data.saveState()

        // The replay has to get contacts right: the arm hits the box, which slides on the floor.
        let controls = randomControls(count: 400, seed: 2)
        let lower = try model.requireId(of: .geom, named: "lower")
        let box = try model.requireId(of: .geom, named: "box")
        var armTouchedBox = false
        let first = try rollout(data, controls: controls) {
            armTouchedBox = armTouchedBox || $0.hasContact(between: lower, and: box)
        }
        let boxQpos = model.jointQposAddress(try model.requireId(of: .joint, named: "box"))
        #expect(armTouchedBox)
        #expect(abs(first.last![boxQpos] - first.first![boxQpos]) > 0.01, "the arm should push the box")

        try data.restoreState(saved)
        #expect(data.saveState() == saved)
        #expect(bits(try rollout(data, controls: controls)) == bits(first))

        // A fresh Data holds none of the first one's leftovers: the saved state alone determines the future.
        let fresh = try Data(model: model)
        try fresh.restoreState(saved)
        #expect(bits(try rollout(fresh, controls: controls)) == bits(first))
    }

    @Test func warmstartIsPartOfTheState() throws {
        // Without qacc_warmstart the constraint solver starts elsewhere and the contact forces differ in the last
        // bits; this is why SimulationState carries it.
        let model = try Model(xml: Fixtures.armAndBox)
        let data = try Data(model: model)
        try _ = rollout(data, controls: randomControls(count: 300, seed: 1))
        var saved = data.saveState()
        let controls = randomControls(count: 400, seed: 2)
        let first = try rollout(data, controls: controls)

        saved.qaccWarmstart = [Double](repeating: 0, count: model.nv)
        try data.restoreState(saved)
        #expect(bits(try rollout(data, controls: controls)) != bits(first))
    }

    @Test func savingIntoAnExistingStateReusesIt() throws {
        let model = try Model(xml: Fixtures.armAndBox)
        let data = try Data(model: model)
        var state = SimulationState(model: model)
        try data.reset(keyframe: "bent")
        data.saveState(into: &state)
        #expect(state == data.saveState())
        #expect(state.time == 1.5 && state.qpos[1] == -1.2 && state.ctrl == [0.5, -0.5])
        #expect(state.mocapQuat == [1, 0, 0, 0] && state.xfrcApplied.count == 6 * model.nbody)
    }

    @Test func aStateOfAnotherModelIsRefused() throws {
        let arm = try Data(model: Model(xml: Fixtures.armAndBox))
        let ball = try Data(model: Model(xml: Fixtures.fallingBall))
        try ball.step(count: 5)
        let before = ball.saveState()
        #expect(
            error { try ball.restoreState(arm.saveState()) } == .stateMismatch(field: "qpos", expected: 7, actual: 9))
        #expect(ball.saveState() == before)
    }

    @Test func restoringMakesDivergedDataUsable() throws {
        let model = try Model(xml: Fixtures.fallingBall)
        let data = try Data(model: model)
        try data.step(count: 10)
        let saved = data.saveState()
        data.withQvel { $0[0] = .nan }
        #expect(error { try data.step() } != nil)
        #expect(data.needsReset)
        try data.restoreState(saved)
        #expect(!data.needsReset)
        try data.step()
        #expect(data.time == saved.time + model.timestep)
    }
}
