import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge
import Testing

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
        var options = EvaluationSession.Options(task: "pusht", checkpointPath: nil)
        options.episodes = 5
        options.firstSeed = 500
        options.showProgress = false
        options.threads = 1
        let one = try EvaluationSession.run(options, checkpoint: checkpoint)
        options.threads = 2
        let two = try EvaluationSession.run(options, checkpoint: checkpoint)
        #expect(one.results.map(\.seed) == [500, 501, 502, 503, 504] && one.seeds == [500, 504])
        #expect(one.results.map(\.maxProgress) == two.results.map(\.maxProgress))
        #expect(one.results.map(\.steps) == two.results.map(\.steps))
        // An untrained policy does not solve Push-T: every episode runs to the 300-step limit.
        #expect(one.results.allSatisfy { $0.steps == 300 && !$0.success && $0.failure == nil })
        #expect(one.success.successes == 0 && one.success.trials == 5)
        #expect(one.inferenceLatencyMilliseconds != nil && one.meanBatch == 5)
    }

    @Test func nonFiniteActionsEndTheEpisodeAsAFailure() throws {
        var options = EvaluationSession.Options(task: "pusht", checkpointPath: nil)
        options.episodes = 2
        options.showProgress = false
        let report = try EvaluationSession.run(options, checkpoint: untrainedPushTCheckpoint(poison: true))
        #expect(report.failedEpisodes == 2 && report.success.successes == 0)
        #expect(report.results.allSatisfy { $0.failure?.contains("non-finite") == true && $0.steps == 0 })
    }

    @Test func mismatchedCheckpointsAndOverlappingSeedsAreRefused() throws {
        var options = EvaluationSession.Options(task: "pusht", checkpointPath: "five.safetensors")
        options.episodes = 1
        options.showProgress = false
        #expect { try EvaluationSession.run(options, checkpoint: untrainedPushTCheckpoint(observationDimensions: 5)) }
            throws: { "\($0)".contains("5-D observations") && "\($0)".contains("20-D") }
        options.firstSeed = 150
        #expect {
            try EvaluationSession.run(options, checkpoint: untrainedPushTCheckpoint(provenance: ["dataset_seeds": "0-199"]))
        } throws: { "\($0)".contains("seed 150") && "\($0)".contains("0-199") }
    }

    @Test func seedRangesParseAndMerge() {
        let ranges = SeedRanges("0-99,200-299")!
        #expect(ranges.contains(50) && !ranges.contains(150) && ranges.contains(299) && ranges.last == 299)
        #expect(ranges.adding(300...399).text == "0-99,200-399")
        #expect(SeedRanges("12") == nil && SeedRanges("5-3") == nil)
    }
}
