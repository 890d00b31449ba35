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
            var counts = [Int](repeating: 0, count: 4)
            var sums = [SIMD2<Float>](repeating: .zero, count: 4)
            var wrongCondition = 0
            var unassigned = 0
            for i in 0..<samplesPerCondition {
                let point = SIMD2(actions[2 * i], actions[2 * i + 1])
                // 5 standard deviations of a mode; the nearest modes of the two conditions are 0.77 apart.
                guard let (c, mode) = ConditionalMixture.nearestMode(point, radius: 0.38) else {
                    unassigned += 1
                    continue
                }
                if c != condition {
                    wrongCondition += 1
                    continue
                }
                counts[mode] += 1
                sums[mode] += point
            }
            let truth = ConditionalMixture.modes[condition]
            for mode in 0..<4 {
                let weight = Float(counts[mode]) / Float(samplesPerCondition)
                #expect(abs(weight - truth[mode].weight) <= 0.1, "c=\(condition) mode \(mode): weight \(weight)")
                // A mode's sample mean within one mode standard deviation (0.1) of the true mean: the modes are at
                // least 1.41 apart, so this places each learned mode at the right spot.
                let mean = sums[mode] / Float(max(counts[mode], 1))
                let distance = ((mean - truth[mode].mean) * (mean - truth[mode].mean)).sum().squareRoot()
                #expect(distance <= ConditionalMixture.standardDeviation, "c=\(condition) mode \(mode): mean \(mean)")
            }
            // No mass on the other condition's modes (allow 1% of samples for stragglers between modes).
            #expect(wrongCondition <= samplesPerCondition / 100, "c=\(condition): \(wrongCondition) on the other's modes")
            #expect(unassigned <= samplesPerCondition / 20, "c=\(condition): \(unassigned) samples far from every mode")
        }
    }
}
