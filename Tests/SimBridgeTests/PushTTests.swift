import CAllocationCounter
import Foundation
import SimBridge
import Testing

@Suite struct PushTTests {
    let goal = Pose2D(x: 256, y: 256, angle: Double.pi / 4)

    /// The goal moved by `d` along its own x or y axis.
    func shifted(_ d: Double, alongLocalY: Bool) -> Pose2D {
        let (c, s) = (cos(goal.angle), sin(goal.angle))
        let direction = alongLocalY ? SIMD2(-s, c) : SIMD2(c, s)
        return Pose2D(x: goal.x + d * direction.x, y: goal.y + d * direction.y, angle: goal.angle)
    }

    @Test func coverageMatchesHandComputedAreas() throws {
        let env = try PushT(task: .named("pusht"))
        #expect(abs(env.coverage(of: goal) - 1) < 1e-12)
        // Shifting by d < 30 along the bar (local x) loses 30 d of the bar and 90 d of the stem: 1 - 120 d / 6300.
        // Along the stem (local y) the bar loses 120 d but gains 30 d inside the stem, and the stem loses 30 d:
        // again 1 - 120 d / 6300.
        for d in [1.0, 5, 10, 25] {
            #expect(abs(env.coverage(of: shifted(d, alongLocalY: false)) - (1 - 120 * d / 6300)) < 1e-9)
            #expect(abs(env.coverage(of: shifted(-d, alongLocalY: false)) - (1 - 120 * d / 6300)) < 1e-9)
            #expect(abs(env.coverage(of: shifted(d, alongLocalY: true)) - (1 - 120 * d / 6300)) < 1e-9)
        }
        // Turned over (π) about the origin, the T points the other way: the bars overlap on 120 x 0, nothing else.
        #expect(env.coverage(of: Pose2D(x: 256, y: 256, angle: goal.angle + Double.pi)) < 1e-9)
        // Rotated by 90° about the origin, the stems cross on a 30 x 30 square... and the bar of one crosses the
        // stem of the other on [15, 30] x [-15, 15] rotated: 15 x 30 = 450; the stems meet on 30 x 30 beyond 30: none
        // (one runs along +y, the other along -x from the origin). Total: bar∩bar 30x30 = 900, bar∩stem 2 x 15x30.
        let quarter = env.coverage(of: Pose2D(x: 256, y: 256, angle: goal.angle + Double.pi / 2))
        #expect(abs(quarter - (900 + 450 + 450) / 6300) < 1e-9, "\(quarter)")
        #expect(env.coverage(of: Pose2D(x: 100, y: 100, angle: 0)) == 0)
    }

    @Test func pushingTheBarMovesTheBlockThatWay() throws {
        let env = try PushT(task: .named("pusht"))
        // Block upright at (256, 200); the agent below the middle of the bar pushes straight up through the centre
        // of mass: the block moves up, not sideways, and does not turn.
        try env.place(agent: SIMD2(256, 150), block: Pose2D(x: 256, y: 200, angle: 0), settle: true)
        for _ in 0..<5 { _ = try env.step([256, 240]) }
        var pose = env.blockPose
        #expect(pose.y > 215, "\(pose)")
        #expect(abs(pose.x - 256) < 0.5 && abs(pose.angle) < 1e-3, "\(pose)")
        // From the left at the bar's height (below the centre of mass) to the right: moves right, turns
        // counter-clockwise.
        try env.place(agent: SIMD2(170, 215), block: Pose2D(x: 256, y: 200, angle: 0), settle: true)
        for _ in 0..<5 { _ = try env.step([230, 215]) }
        pose = env.blockPose
        #expect(pose.x > 265 && pose.angle > 0.02, "\(pose)")
        // Pushing left from the right does the mirror image.
        try env.place(agent: SIMD2(342, 215), block: Pose2D(x: 256, y: 200, angle: 0), settle: true)
        for _ in 0..<5 { _ = try env.step([282, 215]) }
        pose = env.blockPose
        #expect(pose.x < 247 && pose.angle < -0.02, "\(pose)")
    }

    @Test func blockStaysStillWhenUntouched() throws {
        let env = try PushT(task: .named("pusht"))
        let start = Pose2D(x: 300, y: 300, angle: 0.7)
        try env.place(agent: SIMD2(60, 60), block: start, settle: true)
        // Along the edges of the field, more than 100 units from every point of the block.
        for target in [[60, 60], [450, 60], [60, 60], [60, 450], [30, 480]] as [[Float]] {
            for _ in 0..<10 { _ = try env.step(target) }
        }
        #expect(env.blockPose == start)
        #expect(env.agentPosition.y > 400)  // the agent did move
    }

    @Test func resetsFollowTheDistribution() throws {
        let env = try PushT(task: .named("pusht"))
        var angles: [Double] = []
        for seed in UInt64(0)..<1000 {
            let (agent, block) = env.initialState(seed: seed)
            #expect(agent.x == agent.x.rounded() && (50..<450).contains(agent.x) && (50..<450).contains(agent.y))
            // Undo the reference's placement (rotation about the centre of mass) to recover the sampled position.
            let x = block.x - 45 * sin(block.angle)
            let y = block.y - 45 + 45 * cos(block.angle)
            #expect(abs(x - x.rounded()) < 1e-9 && abs(y - y.rounded()) < 1e-9, "seed \(seed)")
            #expect((100..<400).contains(x.rounded()) && (100..<400).contains(y.rounded()), "seed \(seed): \(x), \(y)")
            #expect(block.angle >= -Double.pi && block.angle < Double.pi)
            angles.append(block.angle)
        }
        // Uniform angle: each quarter of [-π, π) holds 25% ± 5% of 1000 draws (±3.7 standard deviations).
        for quarter in 0..<4 {
            let low = -Double.pi + Double(quarter) * Double.pi / 2
            let share = Double(angles.filter { $0 >= low && $0 < low + Double.pi / 2 }.count) / 1000
            #expect(abs(share - 0.25) < 0.05, "quarter \(quarter): \(share)")
        }
        // reset(seed:) is that start plus one settling physics step.
        let other = try PushT(task: .named("pusht"))
        for seed in UInt64(0)..<20 {
            let observation = try env.reset(seed: seed)
            let (agent, block) = other.initialState(seed: seed)
            try other.place(agent: agent, block: block, settle: true)
            #expect(env.blockPose == other.blockPose && observation[18] == Float(agent.x))
        }
    }

    @Test func episodesEndAtSuccessOrTheStepLimit() throws {
        let env = try PushT(task: .named("pusht"))
        _ = try env.reset(seed: 3)
        let parked: [Float] = [Float(env.agentPosition.x), Float(env.agentPosition.y)]
        var steps = 0
        var last: StepResult?
        repeat {
            last = try env.step(parked).result
            steps += 1
        } while !last!.done && steps < 400
        #expect(steps == 300 && last!.truncated && !last!.terminated && !last!.success)

        try env.place(agent: SIMD2(60, 60), block: goal, settle: true)
        let result = try env.step([60, 60]).result
        #expect(result.success && result.terminated && !result.truncated && result.reward == 1)
        #expect(abs(result.progress - 1) < 1e-12)
    }

    @Test func sameSeedSameEpisodeBitForBit() throws {
        let first = try PushT(task: .named("pusht")), second = try PushT(task: .named("pusht"))
        var a = try first.reset(seed: 42)
        var b = try second.reset(seed: 42)
        #expect(a == b)
        for step in 0..<60 {
            let target: [Float] = [256 + 150 * Float(sin(Double(step) / 7)), 256 + 150 * Float(cos(Double(step) / 9))]
            a = try first.step(target).observation
            b = try second.step(target).observation
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        }
        #expect(try first.reset(seed: 43) != (try second.reset(seed: 42)))
    }

    @Test func saveAndRestoreReplayExactly() throws {
        let env = try PushT(task: .named("pusht"))
        _ = try env.reset(seed: 5)
        for _ in 0..<10 { _ = try env.step([256, 256]) }
        let saved = env.saveState()
        let targets: [[Float]] = (0..<30).map { [200 + Float($0) * 5, 300 - Float($0) * 3] }
        let firstRun = try targets.map { try env.step($0).observation }
        try env.restoreState(saved)
        let secondRun = try targets.map { try env.step($0).observation }
        #expect(firstRun == secondRun)
    }

    @Test func badActionsAreClippedOrRefused() throws {
        let env = try PushT(task: .named("pusht"))
        _ = try env.reset(seed: 1)
        let clipped = try env.step([600, -20]).result
        #expect(clipped.actionClipped)
        #expect(try !env.step([100, 100]).result.actionClipped)
        #expect(throws: EnvironmentError.nonFiniteAction(index: 1, value: .infinity)) { try env.step([1, .infinity]) }
        #expect { try env.step([.nan, 1]) } throws: { "\($0)".contains("non-finite") }
    }

    @Test func stepAllocatesNothing() throws {
        let env = try PushT(task: .named("pusht"))
        let observation = UnsafeMutablePointer<Float>.allocate(capacity: 20)
        defer { observation.deallocate() }
        try env.reset(seed: 9, observation: observation)
        // (Not an array literal: optimized builds keep those in static storage, and the first write copies them.)
        var action = [Float](repeating: 256, count: 2)
        for _ in 0..<3 { _ = try env.step(action: &action, observation: observation) }
        let before = fp_thread_allocation_count()
        for i in 0..<500 {
            action[0] = 200 + Float(i)
            _ = try env.step(action: &action, observation: observation)
        }
        #expect(fp_thread_allocation_count() - before == 0)
    }

    @Test func unknownTaskListsTheKnownOnes() {
        #expect { try TaskDescription.named("nosuch") } throws: { "\($0)".contains("known tasks: pusht") }
    }
}
