import FlowPolicy
import Foundation
import PolicyLab
import PolicyRuntime
import SimBridge
import RuntimeTestSupport
import Testing

/// `checkpoint` evaluated with `options`.
private func evaluate(_ options: EvaluationSession.Options, _ checkpoint: Checkpoint) throws -> EvaluationSession.Report {
    try EvaluationSession.run(options, checkpoint: checkpoint, path: "the checkpoint")
}

/// An untrained Push-T policy (random weights) of the task's dimensions: enough to exercise the harness.
private func untrainedPushTCheckpoint(observationDimensions: Int = 20, provenance: [String: String] = [:],
                                      poison: Bool = false) throws -> Checkpoint {
    let spec = PolicySpec(task: "pusht", observationSteps: 2, actionSteps: 8, predictionSteps: 16,
                          observationDimensions: observationDimensions, actionDimensions: 2)
    let network = try ResMLPFiLM(spec.networkConfiguration(hidden: 32, blocks: 2, timeEmbedding: 16))
    var generator = RandomSource(seed: 1)
    let parameters = FloatBuffer(count: network.layout.count)
    network.layout.initialize(parameters, using: &generator)
    if poison, let bias = network.layout.spec(named: "out.bias") { parameters[bias.offset] = .nan }
    return Checkpoint(
        spec: spec, network: network, parameters: parameters,
        observationNormalizer: MinMaxNormalizer(minimum: [Float](repeating: 0, count: observationDimensions),
                                                maximum: [Float](repeating: 512, count: observationDimensions)),
        actionNormalizer: MinMaxNormalizer(minimum: [0, 0], maximum: [512, 512]), provenance: provenance)
}

@Suite struct EvaluationTests {
    @Test func wilsonIntervalsMatchTheFormula() {
        let estimate = ProportionEstimate(successes: 183, trials: 200)
        #expect(abs(estimate.rate - 0.915) < 1e-12)
        #expect(abs(estimate.low - 0.868104) < 1e-5 && abs(estimate.high - 0.946256) < 1e-5, "\(estimate)")
        let none = ProportionEstimate(successes: 0, trials: 10)
        #expect(none.low == 0 && abs(none.high - 0.277533) < 1e-5)
        let all = ProportionEstimate(successes: 10, trials: 10)
        #expect(abs(all.high - 1) < 1e-12 && abs(all.low - 0.722467) < 1e-5)
        let mean = MeanEstimate([1, 2, 3, 4])
        #expect(mean.mean == 2.5 && abs(mean.high - mean.low - 2 * 1.959964 * (1.6666667 / 4).squareRoot()) < 1e-5)
        let coverages = MeanEstimate([1, 1, 1, 0.9], bounds: 0...1)
        #expect(coverages.high == 1 && coverages.low < 0.975, "a mean of values in [0, 1] keeps its interval there")
    }

    @Test func observationWindowRepeatsTheFirstObservationThenSlides() {
        var window = ObservationWindow(steps: 3, dimensions: 2)
        let first: [Float] = [1, 2], second: [Float] = [3, 4], third: [Float] = [5, 6], fourth: [Float] = [7, 8]
        window.reset(to: first)
        #expect(window.values == [1, 2, 1, 2, 1, 2])
        window.push(second)
        window.push(third)
        #expect(window.values == [1, 2, 3, 4, 5, 6])
        window.push(fourth)
        #expect(window.values == [3, 4, 5, 6, 7, 8])
    }

    @Test func resultsDoNotDependOnTheThreadCount() throws {
        let checkpoint = try untrainedPushTCheckpoint()
        var options = EvaluationSession.Options(task: try .named("pusht"))
        options.episodes = 5
        options.firstSeed = 500
        options.showProgress = false
        options.threads = 1
        let one = try evaluate(options, checkpoint)
        options.threads = 2
        let two = try evaluate(options, checkpoint)
        #expect(one.results.map(\.seed) == [500, 501, 502, 503, 504] && one.seeds == [500, 504])
        #expect(one.results.map(\.maxProgress) == two.results.map(\.maxProgress))
        #expect(one.results.map(\.steps) == two.results.map(\.steps))
        // An untrained policy does not solve Push-T: every episode runs to the 300-step limit.
        #expect(one.results.allSatisfy { $0.steps == 300 && !$0.success && $0.failure == nil })
        #expect(one.success.successes == 0 && one.success.trials == 5)
        #expect(one.inferenceLatencyMilliseconds != nil && one.meanBatch == 5)
    }

    @Test func kitchenEpisodesRecordTheStepOfEachSubtask() throws {
        var options = EvaluationSession.Options(task: try .named("franka_kitchen"))
        options.episodes = 2
        options.showProgress = false
        let report = try EvaluationSession.runExpert(options)
        for result in report.results {
            let steps = result.stepsToProgressLevels.compactMap { $0 }
            // The expert does all four subtasks, one after the other; the episode ends with the fourth.
            #expect(result.success && steps.count == 4 && steps == steps.sorted() && Set(steps).count == 4)
            #expect(steps.last == result.steps)
        }
        let first = report.results.map { Double($0.stepsToProgressLevels[0]!) }
        #expect(report.meanStepToProgressLevels["p1"] == first.reduce(0, +) / 2)
        #expect(report.meanStepToProgressLevels.keys.sorted() == ["p1", "p2", "p3", "p4"])
    }

    @Test func ensemblingChunksThatDoNotOverlapIsTheRecedingHorizon() throws {
        let checkpoint = try untrainedPushTCheckpoint()
        var options = EvaluationSession.Options(task: try .named("pusht"))
        options.episodes = 3
        options.showProgress = false
        options.actionSteps = 15
        let receding = try evaluate(options, checkpoint)
        // A chunk every Tp - To + 1 = 15 steps: each step is covered by one chunk, its action To - 1 + j.
        options.actionSteps = nil
        options.handOver = .ensemble
        options.replanEvery = 15
        let sparse = try evaluate(options, checkpoint)
        #expect(sparse.results.map(\.maxProgress) == receding.results.map(\.maxProgress))
        #expect(sparse.handOver == "ensemble" && sparse.replanEvery == 15 && sparse.actionSteps == nil)
        #expect(receding.handOver == "receding" && receding.actionSteps == 15)
        // A chunk every step, averaged with the earlier chunks covering it: a chunk per episode per step.
        options.replanEvery = 1
        let dense = try evaluate(options, checkpoint)
        #expect(dense.meanBatch == 3 && dense.inferenceLatencyMilliseconds!.count == 300)
        #expect(dense.chunkLatency?.count == 900 && receding.chunkLatency?.count == 3 * 20)
        options.actionSteps = 4
        #expect(throws: FlowPolicyError.self) { try evaluate(options, checkpoint) }
    }

    @Test func theTaskFileChoosesTheDefaultHandOver() throws {
        #expect(try TaskDescription.named("franka_kitchen").handOver == "ensemble")
        #expect(try TaskDescription.named("pusht").handOver == "receding")
    }

    @Test func nonFiniteActionsEndTheEpisodeAsAFailure() throws {
        var options = EvaluationSession.Options(task: try .named("pusht"))
        options.episodes = 2
        options.showProgress = false
        let report = try evaluate(options, untrainedPushTCheckpoint(poison: true))
        #expect(report.failedEpisodes == 2 && report.success.successes == 0)
        #expect(report.results.allSatisfy { $0.failure?.contains("non-finite") == true && $0.steps == 0 })
    }

    @Test func mismatchedCheckpointsAndOverlappingSeedsAreRefused() throws {
        var options = EvaluationSession.Options(task: try .named("pusht"))
        options.episodes = 1
        options.showProgress = false
        #expect { try evaluate(options, untrainedPushTCheckpoint(observationDimensions: 5)) }
            throws: { "\($0)".contains("5-D observations") && "\($0)".contains("20-D") }
        options.firstSeed = 150
        #expect {
            try evaluate(options, untrainedPushTCheckpoint(provenance: ["dataset_seeds": "0-199"]))
        } throws: { "\($0)".contains("seed 150") && "\($0)".contains("0-199") }
    }

    @Test func seedRangesParseAndMerge() {
        let ranges = SeedRanges("0-99,200-299")!
        #expect(ranges.contains(50) && !ranges.contains(150) && ranges.contains(299) && ranges.last == 299)
        #expect(ranges.adding(300...399).text == "0-99,200-399")
        #expect(SeedRanges("12") == nil && SeedRanges("5-3") == nil)
    }
}
