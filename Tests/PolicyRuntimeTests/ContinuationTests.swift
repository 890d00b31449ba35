import FlowPolicy
import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

/// Chunk hand-over on a policy trained on sinusoids of random phase: the observation says nothing about the phase,
/// so two chunks sampled independently disagree (a jump at every boundary under receding horizon), while a chunk
/// sampled with the committed actions held on their flow path continues them. Receding horizon, continuation and
/// temporal ensembling run on the same episode, with the same noise seed.
@Suite struct ContinuationTests {
    static let spec = PolicySpec(task: "sinusoid", observationSteps: 2, actionSteps: 8, predictionSteps: 16,
                                 observationDimensions: 1, actionDimensions: 1)

    static func trainedPolicyCheckpoint() throws -> Checkpoint {
        var dataset = EpisodeDataset(observationDimensions: 1, actionDimensions: 1)
        var generator = RandomSource(seed: 11)
        for _ in 0..<200 {
            let phase = 2 * Float.pi * generator.nextUniform()
            let actions = (0..<64).map { sinf(2 * Float.pi * Float($0) / 32 + phase) }
            try dataset.appendEpisode(observations: [Float](repeating: 0, count: 64), actions: actions)
        }
        var configuration = TrainingConfiguration()
        configuration.steps = 1500
        configuration.batchSize = 128
        configuration.learningRate = 2e-3
        configuration.warmupSteps = 100
        configuration.seed = 4
        let trainer = try FlowMatchingTrainer(
            spec: spec, network: spec.networkConfiguration(hidden: 64, blocks: 2, timeEmbedding: 16), dataset: dataset,
            configuration: configuration)
        for _ in 0..<configuration.steps { try trainer.trainStep() }
        return trainer.checkpoint()
    }

    @Test func continuationLowersTheBoundaryJumpAgainstRecedingHorizon() throws {
        let checkpoint = try Self.trainedPolicyCheckpoint()
        let limits = try SafetyLimits(low: [-3], high: [3], maximumStepChange: [10])
        var reports: [ChunkHandOver: ControlLoopReport] = [:]
        for handOver in ChunkHandOver.allCases {
            let clock = ManualClock()
            let robot = ScriptedRobot(observationDimensions: 1, actionDimensions: 1, clock: clock)
            let policy = Policy(checkpoint: checkpoint, capacity: 1, method: .midpoint, steps: 8, seed: 5)
            var configuration = ControlLoop.Configuration(periodNanoseconds: 10_000_000)
            configuration.handOver = handOver
            configuration.lead = 1
            let loop = try ControlLoop(
                spec: Self.spec, robot: robot, inference: InlineInference(sampler: policy, revealAfterCollects: 1),
                safety: limits, clock: clock, configuration: configuration)
            loop.run(maximumTicks: 8 * 40 + 2)
            reports[handOver] = loop.report
            #expect(loop.report.rejectedActions == 0, "\(handOver)")
            if handOver != .ensemble { #expect(loop.report.boundaries == 40, "\(handOver)") }
        }
        let receding = try #require(reports[.receding]), continuation = try #require(reports[.continuation])
        let ensemble = try #require(reports[.ensemble])
        // The sinusoid moves at most 2π/32 ≈ 0.2 per step; independent phases jump by up to 2.
        #expect(receding.meanBoundaryJump > 0.4, "receding: \(receding.meanBoundaryJump)")
        // Measured here: mean jump 0.83 (receding) and 0.37 (continuation); interior steps change by 0.12.
        #expect(continuation.meanBoundaryJump < 0.75 * receding.meanBoundaryJump,
                "continuation \(continuation.meanBoundaryJump) vs receding \(receding.meanBoundaryJump)")
        #expect(continuation.largestBoundaryJump < receding.largestBoundaryJump)
        // Ensembling (a new chunk every step, so every step is a boundary) is smooth too: it averages the phases
        // (measured: mean change 0.07 per step, largest 0.21), which also flattens the motion.
        #expect(ensemble.boundaries > 300 && ensemble.largestBoundaryJump < receding.largestBoundaryJump)
    }
}
