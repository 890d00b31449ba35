import Foundation
import SimBridge
import Testing

/// The mid-episode pushes of `DisturbableEnvironment`, on the real tasks: each moves what it says by the amount it
/// says, leaves the episode untouched before it, and is a function of the episode seed.
@Suite struct DisturbanceTests {
    /// Two environments of `make`, reset to `seed`, stepped alike with `action(step)`; the second is pushed after
    /// `pushStep` steps. Returns every step's observation of both, and the states right after the push.
    func pairedRollouts(
        _ make: () throws -> any DisturbableEnvironment, seed: UInt64, steps: Int, pushStep: Int,
        action: (Int, any Environment) -> [Float]
    ) throws -> (clean: [[Float]], pushed: [[Float]], statesBeforePush: (EnvironmentState, EnvironmentState)?) {
        let clean = try make(), pushed = try make()
        var cleanObservations = [try clean.reset(seed: seed)]
        var pushedObservations = [try pushed.reset(seed: seed)]
        var states: (EnvironmentState, EnvironmentState)?
        for step in 0..<steps {
            if step == pushStep {
                states = (clean.saveState(), pushed.saveState())
                var random = Disturbance.random(episodeSeed: seed)
                try pushed.disturb(using: &random)
            }
            cleanObservations.append(try clean.step(action(step, clean)).observation)
            pushedObservations.append(try pushed.step(action(step, pushed)).observation)
        }
        return (cleanObservations, pushedObservations, states)
    }

    /// The first step whose observations differ, nil if none does.
    func firstDifference(_ a: [[Float]], _ b: [[Float]]) -> Int? {
        zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset
    }

    // MARK: Push-T

    @Test func pushTShovesTheBlock30UnitsAndTurnsIt15Degrees() throws {
        for seed: UInt64 in [3, 100_000, 100_001, 100_017] {
            let env = try PushT(task: .named("pusht"))
            _ = try env.reset(seed: seed)
            let before = env.blockPose
            let centreBefore = before.apply(SIMD2(0, 45))
            var random = Disturbance.random(episodeSeed: seed)
            try env.disturb(using: &random)
            let after = env.blockPose
            let moved = after.apply(SIMD2(0, 45)) - centreBefore
            #expect(abs((moved * moved).sum().squareRoot() - PushT.disturbanceDistance) < 1e-9, "seed \(seed)")
            #expect(abs(abs(after.angle - before.angle) - PushT.disturbanceTurn) < 1e-12, "seed \(seed)")
            // Inside the walls and clear of the agent: holding the agent still, the quasi-static block stays put.
            let hold = [Float(env.agentPosition.x), Float(env.agentPosition.y)]
            _ = try env.step(hold)
            #expect(abs(env.blockPose.x - after.x) < 1e-9 && abs(env.blockPose.y - after.y) < 1e-9, "seed \(seed)")
        }
    }

    @Test func pushTEpisodeIsUntouchedBeforeThePushAndDiffersRightAfter() throws {
        let pushStep = 12
        // The agent sweeps towards the field's centre and back: it reaches the block in most episodes.
        let run = try pairedRollouts({ try PushT(task: .named("pusht")) }, seed: 100_003, steps: 30,
                                     pushStep: pushStep) { step, _ in step < 15 ? [256, 256] : [120, 380] }
        #expect(firstDifference(run.clean, run.pushed) == pushStep + 1,
                "observations 0...\(pushStep) equal, the one after the pushed step not")
        #expect(run.statesBeforePush?.0 == run.statesBeforePush?.1)
        // The push moves every keypoint of the block (observation 0..<18); the agent (18, 19) is not pushed.
        let after = pushStep + 1
        #expect((0..<18).contains { run.clean[after][$0] != run.pushed[after][$0] })
        #expect(run.clean[after][18] == run.pushed[after][18] && run.clean[after][19] == run.pushed[after][19])
    }

    @Test func thePushIsAFunctionOfTheEpisodeSeed() throws {
        func pushedPose(episodeSeed: UInt64) throws -> Pose2D {
            let env = try PushT(task: .named("pusht"))
            _ = try env.reset(seed: 100_000)
            var random = Disturbance.random(episodeSeed: episodeSeed)
            try env.disturb(using: &random)
            return env.blockPose
        }
        #expect(try pushedPose(episodeSeed: 100_000) == pushedPose(episodeSeed: 100_000))
        #expect(try pushedPose(episodeSeed: 100_000) != pushedPose(episodeSeed: 100_001))
    }

    @Test func disturbanceStepsMustLieInsideTheEpisode() throws {
        try Disturbance(step: 0).validate(maximumSteps: 300)
        try Disturbance(step: 299).validate(maximumSteps: 300)
        #expect(throws: EnvironmentError.self) { try Disturbance(step: 300).validate(maximumSteps: 300) }
        #expect(throws: EnvironmentError.self) { try Disturbance(step: -1).validate(maximumSteps: 300) }
    }

    // MARK: Arms

    @Test func robomimicArmBumpChangesOnlyTheArmJointVelocities() throws {
        let env = try Robomimic(task: .named("robomimic_lift"))
        _ = try env.reset(seed: 100_000)
        for _ in 0..<5 { _ = try env.step([0, 0, 0, 0, 0, 0, -1]) }
        let velocities = env.data.qvel, positions = env.data.qpos
        var random = Disturbance.random(episodeSeed: 100_000)
        try env.disturb(using: &random)
        let change = zip(env.data.qvel, velocities).map { $0 - $1 }
        // The arm's 7 joints come first in qvel (then the fingers and the cube): only they change, by 3 rad/s.
        let armChange = change.prefix(7).reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(armChange - Robomimic.disturbanceJointSpeed) < 1e-12)
        #expect(change.dropFirst(7).allSatisfy { $0 == 0 })
        #expect(env.data.qpos == positions, "a bump changes velocities, not positions")
    }

    @Test func robomimicEpisodeIsUntouchedBeforeTheBumpAndDiffersRightAfter() throws {
        let pushStep = 8
        let run = try pairedRollouts({ try Robomimic(task: .named("robomimic_lift")) }, seed: 100_002, steps: 13,
                                     pushStep: pushStep) { _, _ in [0.2, 0, -0.3, 0, 0, 0, -1] }
        #expect(firstDifference(run.clean, run.pushed) == pushStep + 1)
        #expect(run.statesBeforePush?.0 == run.statesBeforePush?.1)
        // robot0_eef_pos (observation 10..<13 of Lift) is off the undisturbed path by millimetres after the bumped
        // step, by centimetres three steps later.
        func offset(_ step: Int) -> Double {
            (10..<13).map { Double(run.pushed[step][$0] - run.clean[step][$0]) }.reduce(0) { $0 + $1 * $1 }
                .squareRoot()
        }
        #expect(offset(pushStep + 1) > 0.003 && offset(pushStep + 4) > 0.02, "\(offset(pushStep + 1))")
    }

    @Test func kitchenArmBumpChangesOnlyTheArmAndDiffersRightAfter() throws {
        let make = { try FrankaKitchen(task: .named("franka_kitchen")) }
        let env = try make()
        _ = try env.reset(seed: 100_000)
        let velocities = env.data.qvel
        var random = Disturbance.random(episodeSeed: 100_000)
        try env.disturb(using: &random)
        let change = zip(env.data.qvel, velocities).map { $0 - $1 }
        #expect(abs(change.prefix(7).reduce(0) { $0 + $1 * $1 }.squareRoot() - FrankaKitchen.disturbanceJointSpeed)
                    < 1e-12)
        #expect(change.dropFirst(7).allSatisfy { $0 == 0 }, "the fingers and the kitchen's objects are not bumped")

        let pushStep = 3
        let run = try pairedRollouts(make, seed: 100_001, steps: 5, pushStep: pushStep) { _, _ in
            [Float](repeating: 0, count: 9)
        }
        #expect(firstDifference(run.clean, run.pushed) == pushStep + 1)
        #expect(run.statesBeforePush?.0 == run.statesBeforePush?.1)
        // The arm's joint positions (observation 0..<7) are off the undisturbed ones after the bumped step.
        let after = pushStep + 1
        let offset = (0..<7).map { Double(run.pushed[after][$0] - run.clean[after][$0]) }
        #expect(offset.reduce(0) { $0 + $1 * $1 }.squareRoot() > 0.02, "\(offset)")
    }
}
