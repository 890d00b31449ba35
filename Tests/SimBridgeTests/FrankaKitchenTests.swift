import CAllocationCounter
import Foundation
import SimBridge
import Testing

/// Franka Kitchen against the rules of Gymnasium-Robotics 1.4.2 (`kitchen_env.py`, `franka_env.py`). Needs the
/// scene in the asset cache (`scripts/fetch_assets.py franka_kitchen`, which `scripts/test.sh` runs through set-up).
@Suite struct FrankaKitchenTests {
    struct TaskFile: Decodable { var environment: FrankaKitchenSettings }

    /// The repository's settings, changed by `edit`.
    func settings(_ edit: (inout FrankaKitchenSettings) -> Void = { _ in }) throws -> FrankaKitchenSettings {
        var settings = try TaskDescription.named("franka_kitchen").settings(TaskFile.self).environment
        edit(&settings)
        return settings
    }

    // MARK: Subtasks

    @Test func subtasksMatchTheReference() {
        // OBS_ELEMENT_INDICES and OBS_ELEMENT_GOALS of kitchen_env.py.
        let reference: [String: ([Int], [Double])] = [
            "bottom burner": ([11, 12], [-0.88, -0.01]), "top burner": ([15, 16], [-0.92, -0.01]),
            "light switch": ([17, 18], [-0.69, -0.05]), "slide cabinet": ([19], [0.37]),
            "hinge cabinet": ([20, 21], [0, 1.45]), "microwave": ([22], [-0.75]),
            "kettle": ([23, 24, 25, 26, 27, 28, 29], [-0.23, 0.75, 1.62, 0.99, 0, 0, -0.06]),
        ]
        #expect(KitchenSubtask.allCases.count == 7)
        for subtask in KitchenSubtask.allCases {
            #expect(subtask.qposIndices == reference[subtask.rawValue]?.0, "\(subtask)")
            #expect(subtask.goal == reference[subtask.rawValue]?.1, "\(subtask)")
        }
        #expect(KitchenSubtask.referenceThreshold == 0.3)
    }

    @Test func completionIsTheDistanceToTheGoalBelowTheThreshold() {
        for subtask in KitchenSubtask.allCases {
            var qpos = FrankaKitchen.initialQpos
            #expect(!qpos.withUnsafeBufferPointer { subtask.isComplete(qpos: $0) }, "\(subtask) is done at the start")
            for (index, goal) in zip(subtask.qposIndices, subtask.goal) { qpos[index] = goal }
            #expect(qpos.withUnsafeBufferPointer { subtask.distance(qpos: $0) } == 0)
            // L2 over the subtask's entries: 0.2 on two of them is 0.283 (done), 0.22 is 0.311 (not done).
            let first = subtask.qposIndices[0]
            let last = subtask.qposIndices.count > 1 ? subtask.qposIndices[1] : first
            for (offset, done) in [(0.2, true), (0.22, false)] {
                var moved = qpos
                moved[first] += offset
                if last != first { moved[last] -= offset } else { moved[first] += offset * (2.squareRoot() - 1) }
                #expect(moved.withUnsafeBufferPointer { subtask.isComplete(qpos: $0) } == done, "\(subtask) \(offset)")
            }
        }
    }

    @Test func subtasksCountOnceAndAllOfThemEndTheEpisode() throws {
        let env = try FrankaKitchen(settings: settings())
        _ = try env.reset(seed: 1)
        let hold = [Float](repeating: 0, count: 9)
        // Open the microwave by hand: one subtask of four, rewarded once.
        env.data.withQpos { $0[22] = -0.8 }
        var result = try env.step(hold).result
        #expect(result.progress == 1 && result.reward == 1 && !result.done && !result.success)
        result = try env.step(hold).result
        #expect(result.progress == 1 && result.reward == 0)
        // Closing it again does not undo the subtask.
        env.data.withQpos { $0[22] = 0 }
        #expect(try env.step(hold).result.progress == 1)
        // The other three at their goals: success and termination, reward 3.
        env.data.withQpos { qpos in
            qpos[17] = -0.69  // light switch (its light joint follows through the scene's equality)
            qpos[18] = -0.69 / 14
            qpos[19] = 0.37  // slide cabinet
            for (index, value) in zip(KitchenSubtask.kettle.qposIndices, KitchenSubtask.kettle.goal) {
                qpos[index] = value
            }
        }
        result = try env.step(hold).result
        #expect(result.progress == 4 && result.reward == 3 && result.success && result.terminated && !result.truncated)
        #expect(env.specification.progressLevels == [1, 2, 3, 4])
        #expect(env.specification.progressLevelNames == ["p1", "p2", "p3", "p4"])
    }

    @Test func episodesAreTruncatedAtTheStepLimit() throws {
        let env = try FrankaKitchen(settings: settings { $0.maxSteps = 3 })
        _ = try env.reset(seed: 2)
        let hold = [Float](repeating: 0, count: 9)
        #expect(try !env.step(hold).result.done)
        #expect(try !env.step(hold).result.done)
        let last = try env.step(hold).result
        #expect(last.truncated && !last.terminated && !last.success)
    }

    // MARK: Actions

    @Test func actionsAreScaledIntegratedFromTheLastObservationAndClipped() throws {
        let env = try FrankaKitchen(settings: settings())
        let dt = 0.002 * 40
        #expect(env.controlPeriod == dt && env.specification.controlRate == 12.5)
        #expect(env.specification.substeps == 40 && env.specification.maximumSteps == 280)
        var observation = try env.reset(seed: 3)
        // Joint velocities = 2 x action (clipped to [-1, 1] first), integrated over 0.08 s from the observed
        // (noisy) joint positions, clipped to franka_config's position bounds.
        let action: [Float] = [0.5, -0.25, 3, -1, 0.1, 0, -7, 1, -1]
        let (next, result) = try env.step(action)
        #expect(result.actionClipped)
        let ctrl = env.data.ctrl
        for i in 0..<9 {
            let a = min(max(Double(action[i]), -1), 1)
            let integrated = Double(observation[i]) + 2 * a * dt
            let expected = min(max(integrated, env.robot.positionLow[i]), env.robot.positionHigh[i])
            #expect(abs(ctrl[i] - expected) < 1e-6, "joint \(i): \(ctrl[i]) vs \(expected)")
        }
        // The fingers start at 0.048 and 0.037: opening clips to the bound 0.04, closing to 0.
        #expect(ctrl[7] == 0.04 && ctrl[8] == 0)
        // The next action integrates from the new observation, not from the previous targets.
        observation = next
        _ = try env.step([0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0, 0])
        for i in 0..<7 {
            #expect(abs(env.data.ctrl[i] - (Double(observation[i]) + 2 * 0.2 * dt)) < 1e-6, "joint \(i)")
        }
        #expect(try !env.step([Float](repeating: 0.3, count: 9)).result.actionClipped)
        #expect { try env.step([0, 0, .nan, 0, 0, 0, 0, 0, 0]) } throws: { "\($0)".contains("non-finite") }
    }

    @Test func robotBoundsComeFromFrankaConfig() throws {
        let env = try FrankaKitchen(settings: settings())
        #expect(env.robot.positionLow.prefix(9) == [-2.9, -1.8, -2.9, -3.1, -2.9, 0, -2.9, 0, 0])
        #expect(env.robot.positionHigh.prefix(9) == [2.9, 1.8, 2.9, 0, 2.9, 3.8, 2.9, 0.04, 0.04])
        #expect(env.robot.velocityLow.prefix(9).allSatisfy { $0 == -10 } && env.robot.velocityHigh[20] == 0.5)
        #expect(env.robot.positionNoiseAmplitude[8] == 0.1 && env.robot.positionNoiseAmplitude[11] == 0.0005)
        let text = "<config name='Franka'>\n  <qpos0 name='q0' pos_bound='-1 2' vel_bound=\"-3 3\" pos_noise_amp='0.1' "
            + "vel_noise_amp='0.2' />\n</config>"
        let parsed = try FrankaRobotConfig(text: text, count: 1)
        #expect(parsed.positionLow == [-1] && parsed.positionHigh == [2] && parsed.velocityHigh == [3])
        #expect(parsed.velocityNoiseAmplitude == [0.2])
        #expect(throws: EnvironmentError.self) { try FrankaRobotConfig(text: text, count: 2) }
    }

    // MARK: Observations and episodes

    @Test func observationsFollowTheLayoutAndNoise() throws {
        let full = try FrankaKitchen(settings: settings { $0.observation = "full" })
        let dp = try FrankaKitchen(settings: settings { $0.observation = "dp" })
        let quiet = try FrankaKitchen(settings: settings { $0.observation = "full"; $0.robotNoiseRatio = 0; $0.objectNoiseRatio = 0 })
        #expect(full.specification.observationDimensions == 59 && dp.specification.observationDimensions == 60)
        let a = try full.reset(seed: 4), b = try dp.reset(seed: 4), exact = try quiet.reset(seed: 4)
        // dp: robot qpos (9), object qpos (21), 30 zeros; the same noise as full.
        #expect(Array(b[0..<9]) == Array(a[0..<9]) && Array(b[9..<30]) == Array(a[18..<39]))
        #expect(b[30...].allSatisfy { $0 == 0 })
        // Without noise: qpos then qvel (zero at the start). With it, within the amplitudes.
        for i in 0..<30 { #expect(exact[i < 9 ? i : i + 9] == Float(FrankaKitchen.initialQpos[i])) }
        for i in 0..<9 {
            #expect(abs(Double(a[i]) - FrankaKitchen.initialQpos[i]) <= 0.01 * 0.1 + 1e-6)
            #expect(abs(a[9 + i]) <= Float(0.01 * 0.1 + 1e-6))
        }
        #expect(a != exact)
    }

    @Test func sameSeedSameEpisodeBitForBit() throws {
        let first = try FrankaKitchen(settings: settings()), second = try FrankaKitchen(settings: settings())
        var a = try first.reset(seed: 42)
        var b = try second.reset(seed: 42)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        for step in 0..<6 {
            let action = (0..<9).map { Float(0.4 * sin(Double(step) / 3 + Double($0))) }
            a = try first.step(action).observation
            b = try second.step(action).observation
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        }
        #expect(try first.reset(seed: 43) != (try second.reset(seed: 42)))
    }

    @Test func saveAndRestoreReplayExactly() throws {
        let env = try FrankaKitchen(settings: settings())
        _ = try env.reset(seed: 5)
        for _ in 0..<2 { _ = try env.step([Float](repeating: 0.2, count: 9)) }
        let saved = env.saveState()
        let actions = (0..<3).map { k in (0..<9).map { Float(0.3 * cos(Double(k + $0))) } }
        let firstRun = try actions.map { try env.step($0).observation }
        try env.restoreState(saved)
        #expect(try actions.map { try env.step($0).observation } == firstRun)
    }

    @Test func stepAllocatesNothing() throws {
        let env = try FrankaKitchen(settings: settings())
        let observation = UnsafeMutablePointer<Float>.allocate(capacity: env.specification.observationDimensions)
        defer { observation.deallocate() }
        try env.reset(seed: 6, observation: observation)
        var action = [Float](repeating: 0.1, count: 9)
        _ = try env.step(action: &action, observation: observation)
        let before = fp_thread_allocation_count()
        for i in 0..<10 {
            action[0] = 0.1 * Float(i % 3)
            _ = try env.step(action: &action, observation: observation)
        }
        #expect(fp_thread_allocation_count() - before == 0)
    }

    // MARK: Assets and speed settings

    @Test func missingAssetsNameTheFetchCommand() throws {
        let missing = try settings { $0.assets = "no-such-folder/kitchen_franka" }
        #expect { try FrankaKitchen(settings: missing) } throws: { error in
            let description = "\(error)"
            return error is MissingAssetError && description.contains("scripts/fetch_assets.py franka_kitchen")
                && description.contains("no-such-folder")
        }
    }

    @Test func collisionSettingsChangeNoContact() throws {
        // The expert opening the microwave (contacts with the handle and door) in the scene as loaded, then the
        // same actions with visual geoms out of the collision loops and the never-touching pairs excluded.
        let asLoaded = try FrankaKitchen(settings: settings {
            $0.tasks = [.microwave]
            $0.collision = .init(skipVisualGeoms: false, boxPrefilter: $0.collision.boxPrefilter, exclude: [])
        })
        let fast = try FrankaKitchen(settings: settings { $0.tasks = [.microwave] })
        #expect(fast.model.nsensor == 0)
        let expert = try FrankaKitchenExpert(environment: asLoaded)
        var a = try asLoaded.reset(seed: 7)
        var b = try fast.reset(seed: 7)
        try expert.begin(episodeSeed: 7)
        var action = [Float](repeating: 0, count: 9)
        // Until the door is well open (the expert needs about 50 steps from the start), at most 80 steps.
        for _ in 0..<80 where asLoaded.data.qpos[22] > -0.4 {
            try action.withUnsafeMutableBufferPointer { try expert.act(action: $0.baseAddress!) }
            a = try asLoaded.step(action).observation
            b = try fast.step(action).observation
        }
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        #expect(asLoaded.data.qpos == fast.data.qpos)
        #expect(asLoaded.data.qpos[22] < -0.3)  // the door did move
    }

    @Test func pairTableFindsMuJoCosContactsInItsOrder() throws {
        // The expert carrying the kettle (grasp, lift, set down: finger, kettle, burner and counter contacts), with
        // MuJoCo's mj_collision and with the geom-pair table: every physics step the same contacts, field for field.
        let mujoco = try FrankaKitchen(settings: settings {
            $0.tasks = [.kettle]
            $0.collision.pairTable = false
        })
        let table = try FrankaKitchen(settings: settings { $0.tasks = [.kettle] })
        #expect(table.pairTable != nil && mujoco.pairTable == nil)
        let pairs = try GeomPairTable(model: table.model)
        #expect(pairs.bodyPairCount > 0 && pairs.geomPairCount >= pairs.bodyPairCount)
        let expert = try FrankaKitchenExpert(environment: mujoco)
        _ = try mujoco.reset(seed: 3)
        _ = try table.reset(seed: 3)
        try expert.begin(episodeSeed: 3)
        var action = [Float](repeating: 0, count: 9)
        var contacts = 0
        var differences = 0
        for _ in 0..<100 {
            try action.withUnsafeMutableBufferPointer { try expert.act(action: $0.baseAddress!) }
            for i in 0..<9 {
                let a = min(max(Double(action[i]), -1), 1) * FrankaKitchen.actionScale
                let target = mujoco.data.qpos[i] + a * mujoco.controlPeriod
                mujoco.data.pointer.pointee.ctrl[i] = target
                table.data.pointer.pointee.ctrl[i] = target
            }
            for _ in 0..<mujoco.settings.frameSkip {
                try mujoco.data.step()
                try table.data.step(with: pairs)
                let m = mujoco.data.pointer, t = table.data.pointer
                contacts += Int(m.pointee.ncon)
                if m.pointee.ncon != t.pointee.ncon {
                    differences += 1
                    continue
                }
                for c in 0..<Int(m.pointee.ncon) {
                    let x = m.pointee.contact[c], y = t.pointee.contact[c]
                    let same = x.geom1 == y.geom1 && x.geom2 == y.geom2 && x.dim == y.dim && x.dist == y.dist
                        && x.exclude == y.exclude && x.includemargin == y.includemargin
                        && withUnsafeBytes(of: x.frame, { Array($0) }) == withUnsafeBytes(of: y.frame, { Array($0) })
                        && withUnsafeBytes(of: x.pos, { Array($0) }) == withUnsafeBytes(of: y.pos, { Array($0) })
                        && withUnsafeBytes(of: x.friction, { Array($0) })
                            == withUnsafeBytes(of: y.friction, { Array($0) })
                        && withUnsafeBytes(of: x.solref, { Array($0) }) == withUnsafeBytes(of: y.solref, { Array($0) })
                        && withUnsafeBytes(of: x.solimp, { Array($0) }) == withUnsafeBytes(of: y.solimp, { Array($0) })
                    if !same { differences += 1 }
                }
            }
        }
        #expect(differences == 0)
        #expect(contacts > 100 * 40 * 2)  // contacts in most steps, not an empty comparison
        #expect(mujoco.data.qpos.map(\.bitPattern) == table.data.qpos.map(\.bitPattern))
        #expect(mujoco.data.qpos[23] != FrankaKitchen.initialQpos[23])  // the kettle did move
    }

    @Test func tooLittleRoomForContactsIsAnErrorNotATruncation() throws {
        // The kettle rests on its burner from the start: a step has contacts. One contact slot is too few.
        let tight = try FrankaKitchen(settings: settings { $0.collision.maxContacts = 1 })
        _ = try tight.reset(seed: 9)
        #expect { try tight.step([Float](repeating: 0, count: 9)) } throws: { "\($0)".contains("max_contacts") }
        // The repository's room is enough for the same step.
        let env = try FrankaKitchen(settings: settings())
        _ = try env.reset(seed: 9)
        _ = try env.step([Float](repeating: 0, count: 9))
        #expect(env.data.contactCount > 1)
    }

    // MARK: Expert

    @Test func expertDoesSubtasksInTheRequestedOrder() throws {
        let env = try FrankaKitchen(settings: settings { $0.tasks = [.lightSwitch, .slideCabinet] })
        let expert = try TaskDescription.named("franka_kitchen").makeExpert(environment: env)
        _ = try env.reset(seed: 8)
        try expert.begin(episodeSeed: 8)
        var action = [Float](repeating: 0, count: 9)
        var completedAt: [Int] = []
        var last: StepResult?
        repeat {
            try action.withUnsafeMutableBufferPointer { try expert.act(action: $0.baseAddress!) }
            #expect(action.allSatisfy { abs($0) <= 1 })
            last = try env.step(action).result
            if last!.reward > 0 { completedAt.append(env.stepCount) }
        } while !last!.done
        #expect(last!.success && completedAt.count == 2, "completed at \(completedAt)")
        #expect(env.data.qpos[17] < -0.39 && env.data.qpos[19] > 0.07)
    }

    @Test func expertTurnsTheBottomBurnerAfterTheKettleWithSmoothActions() throws {
        // The bottom knob after the kettle: the reach used to drift sideways onto the knob's bar (the wrist at its
        // limit) and the episode ran out of steps. Smooth: no arm action changes by more than 0.5 of the [-1, 1]
        // range between steps (the acceleration limit allows about 0.4, chattering actions alternate by up to 2).
        let env = try FrankaKitchen(settings: settings { $0.tasks = [.kettle, .bottomBurner] })
        let expert = try FrankaKitchenExpert(environment: env)
        _ = try env.reset(seed: 11)
        try expert.begin(episodeSeed: 11)
        var action = [Float](repeating: 0, count: 9)
        var last: StepResult?
        repeat {
            try action.withUnsafeMutableBufferPointer { try expert.act(action: $0.baseAddress!) }
            last = try env.step(action).result
        } while !last!.done
        #expect(last!.success, "\(expert.log)")
        #expect(env.data.qpos[11] < -0.58)
        #expect(expert.largestActionChange > 0 && expert.largestActionChange < 0.5, "\(expert.largestActionChange)")
    }
}
