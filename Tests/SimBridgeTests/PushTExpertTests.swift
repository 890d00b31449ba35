import Foundation
import SimBridge
import Testing

/// The Push-T expert through its public face. Seeded episodes use seeds 1000..1009 (away from the collection seeds
/// 0, 1, 2, ... and the evaluation seeds 100000, ...); the other starts are placed by hand.
@Suite struct PushTExpertTests {
    struct Episode {
        var actions: [SIMD2<Float>] = []
        var success = false
        /// The agent's position before the first action.
        var start = SIMD2<Double>.zero
    }

    /// Runs the expert from the environment's current state (after a reset or `place`) until the episode ends.
    static func run(_ expert: PushTExpert, episodeSeed: UInt64) throws -> Episode {
        let env = expert.environment
        try expert.begin(episodeSeed: episodeSeed)
        var episode = Episode(start: env.agentPosition)
        var action = [Float](repeating: 0, count: 2)
        while true {
            try expert.act(action: &action)
            episode.actions.append(SIMD2(action[0], action[1]))
            let result = try env.step(action).result
            if result.done {
                episode.success = result.success
                return episode
            }
        }
    }

    static func runSeeded(_ expert: PushTExpert, seed: UInt64) throws -> Episode {
        _ = try expert.environment.reset(seed: seed)
        return try run(expert, episodeSeed: seed)
    }

    @Test func succeedsWithSmoothTargetsInsideTheField() throws {
        let expert = try PushTExpert(environment: try PushT(task: .named("pusht")))
        // The plans move the target by at most the cruise speed per step (the expert's hard limit,
        // `maximumTargetStep`, is 40; the runtime's safety filter allows 150).
        let bound = Float(expert.tuning.cruiseSpeed) + 1e-3
        #expect(expert.tuning.cruiseSpeed <= expert.tuning.maximumTargetStep)
        var successes = 0
        for seed in UInt64(1000)..<1010 {
            let episode = try Self.runSeeded(expert, seed: seed)
            if episode.success { successes += 1 }
            let first = episode.actions[0]
            #expect(length(first - SIMD2<Float>(episode.start)) <= bound, "seed \(seed): the first target jumps")
            for (step, pair) in zip(episode.actions, episode.actions.dropFirst()).enumerated() {
                #expect(length(pair.1 - pair.0) <= bound, "seed \(seed), step \(step + 1): \(pair.0) -> \(pair.1)")
            }
            for action in episode.actions {
                #expect(action.min() >= 0 && action.max() <= 512, "seed \(seed): \(action) is outside the field")
            }
        }
        #expect(successes >= 8, "\(successes) of 10 episodes succeeded")
    }

    @Test func sameSeedSameActionsBitForBit() throws {
        let first = try PushTExpert(environment: try PushT(task: .named("pusht")))
        let second = try PushTExpert(environment: try PushT(task: .named("pusht")))
        let seed: UInt64 = 1004
        let a = try Self.runSeeded(first, seed: seed).actions
        // Another episode in between: `begin` must forget it.
        _ = try Self.runSeeded(second, seed: 1005)
        let b = try Self.runSeeded(second, seed: seed).actions
        #expect(a.count == b.count)
        #expect(a.map { [$0.x.bitPattern, $0.y.bitPattern] } == b.map { [$0.x.bitPattern, $0.y.bitPattern] })
    }

    /// Starts the reset distribution can produce but rarely does: the agent inside the block, the block against
    /// a wall, the block turned over in the goal position.
    @Test(arguments: [
        (SIMD2<Double>(256, 300), Pose2D(x: 256, y: 240, angle: 0.3)),
        (SIMD2<Double>(400, 400), Pose2D(x: 200, y: 131, angle: Double.pi)),
        (SIMD2<Double>(100, 400), Pose2D(x: 490, y: 300, angle: Double.pi / 2)),
        (SIMD2<Double>(60, 60), Pose2D(x: 256, y: 256, angle: Double.pi / 4 + Double.pi)),
    ])
    func succeedsFromAwkwardStarts(agent: SIMD2<Double>, block: Pose2D) throws {
        let env = try PushT(task: .named("pusht"))
        let expert = try PushTExpert(environment: env)
        try env.place(agent: agent, block: block, settle: true)
        let episode = try Self.run(expert, episodeSeed: 0)
        #expect(episode.success, "agent \(agent), block \(block): \(episode.actions.count) steps")
    }

    @Test func theRegistryMakesIt() throws {
        let env = try TaskDescription.named("pusht").makeEnvironment()
        #expect(try TaskDescription.named("pusht").makeExpert(environment: env) is PushTExpert)
    }
}

private func length(_ vector: SIMD2<Float>) -> Float { (vector * vector).sum().squareRoot() }
