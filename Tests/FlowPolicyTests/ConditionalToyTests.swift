import Testing
import FlowPolicy

@Suite struct ConditionalToyTests {
    /// A policy trained on the conditional mixture samples every mode of the given condition in the right
    /// proportions (within ±0.1) and puts no mass on the other condition's modes.
    @Test func learnsBothConditionalMixtures() throws {
        let dataset = ConditionalMixture.dataset(count: 4000, seed: 1)
        var configuration = TrainingConfiguration()
        configuration.steps = 3000
        configuration.batchSize = 256
        configuration.learningRate = 1e-3
        configuration.warmupSteps = 100
        configuration.seed = 3
        let spec = ConditionalMixture.spec
        let trainer = try FlowMatchingTrainer(
            spec: spec, network: spec.networkConfiguration(hidden: 128, blocks: 3, timeEmbedding: 32),
            dataset: dataset, configuration: configuration)
        for _ in 0..<configuration.steps { try trainer.trainStep() }

        let samplesPerCondition = 2000
        let policy = Policy(checkpoint: trainer.checkpoint(), capacity: samplesPerCondition, method: .rk4, steps: 10,
                            seed: 5)
        for condition in 0...1 {
            let observations = [Float](repeating: Float(condition), count: samplesPerCondition)
            let (actions, _) = policy.predictAction(observations: observations, batch: samplesPerCondition)
            let report = ConditionalMixture.modeReport(points: actions, condition: condition)
            let truth = ConditionalMixture.modes[condition]
            for mode in 0..<4 {
                #expect(abs(report.weights[mode] - truth[mode].weight) <= 0.1,
                        "c=\(condition) mode \(mode): weight \(report.weights[mode])")
                // A mode's sample mean within one mode standard deviation (0.1) of the true mean: the modes are at
                // least 1.41 apart, so this places each learned mode at the right spot.
                let mean = SIMD2(report.means[mode][0], report.means[mode][1])
                let distance = ((mean - truth[mode].mean) * (mean - truth[mode].mean)).sum().squareRoot()
                #expect(distance <= ConditionalMixture.standardDeviation, "c=\(condition) mode \(mode): mean \(mean)")
            }
            // No mass on the other condition's modes (allow 1% of samples for stragglers between modes).
            #expect(report.otherCondition <= 0.01, "c=\(condition): \(report.otherCondition) on the other's modes")
            #expect(report.unassigned <= 0.05, "c=\(condition): \(report.unassigned) far from every mode")
        }
    }
}
