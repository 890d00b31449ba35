import Foundation
import Testing
import FlowPolicy

/// A small chain on the conditional toy, trained once (global initialization is thread-safe) and only read by the
/// tests below, which may run in parallel.
nonisolated(unsafe) private let toyChain: (trainer: LocalFlowMatchingTrainer, chain: Checkpoint, dataset: EpisodeDataset) = {
    let dataset = ConditionalMixture.dataset(count: 2000, seed: 21)
    var configuration = LocalFlowConfiguration()
    configuration.pushTolerance = 1e-5
    configuration.blocks = 3
    configuration.hidden = 64
    configuration.depth = 2
    configuration.timeEmbedding = 16
    configuration.stepScale = 0.3
    configuration.stepGrowth = 2
    configuration.training.steps = 3600
    configuration.training.learningRate = 1e-3
    configuration.training.warmupSteps = 100
    configuration.training.seed = 5
    let trainer = try! LocalFlowMatchingTrainer(spec: ConditionalMixture.spec, dataset: dataset,
                                                configuration: configuration)
    for _ in 0..<configuration.blocks { try! trainer.trainNextBlock() }
    return (trainer, trainer.checkpoint(), dataset)
}()

/// One Euler step of a stage from s = 1 to 0, for every state (`windows`: one condition per state).
private func oneEulerStep(of stage: FlowStage, from states: [Float], windows: [Float]) -> [Float] {
    let count = windows.count
    let Dx = states.count / count
    var x = states
    let solver = ODESolver(capacity: states.count)
    let cache = VelocityFieldCache(field: stage.field, capacity: count)
    let times = FloatBuffer(count: count)
    x.withUnsafeMutableBufferPointer { x in
        windows.withUnsafeBufferPointer { o in
            solver.integrate(x.baseAddress!, count: count * Dx, from: 1, to: 0, steps: 1, method: .euler) { t, state, v in
                times.pointer.update(repeating: t, count: count)
                stage.field.forward(x: state, t: times.pointer, observation: o.baseAddress!, batch: count,
                                    parameters: stage.parameters, cache: cache, output: v)
            }
        }
    }
    return x
}

@Suite struct LocalFlowMatchingTests {
    /// `x1 = e^{-γ} x0 + sqrt(1 - e^{-2γ}) z`: mean e^{-γ} x0, variance 1 - e^{-2γ} per coordinate.
    @Test func ornsteinUhlenbeckStepHasTheRightMoments() {
        let dataset = ConditionalMixture.dataset(count: 10, seed: 1)
        let spec = ConditionalMixture.spec
        let pairs = PairSet(dataset: dataset, spec: spec,
                            observationNormalizer: MinMaxNormalizer(minimum: [0], maximum: [1]),
                            actionNormalizer: MinMaxNormalizer(minimum: [-2, -2], maximum: [2, 2]))
        let pool = LocalFlowPool(pairs: pairs)
        for i in 0..<pool.states.count { pool.states[i] = i % 2 == 0 ? 0.8 : -0.5 }
        let gamma: Float = 0.3
        let source = OrnsteinUhlenbeckPairs(pool: pool, step: gamma)
        let B = 50_000
        let condition = FloatBuffer(count: B), start = FloatBuffer(count: 2 * B), end = FloatBuffer(count: 2 * B)
        var generator = RandomSource(seed: 3)
        source.fill(batch: B, condition: condition.pointer, start: start.pointer, end: end.pointer, using: &generator)
        let decay = Double(exp(-gamma)), variance = 1 - exp(-2 * Double(gamma))
        for d in 0..<2 {
            let x0 = d == 0 ? 0.8 : -0.5
            let values = (0..<B).map { Double(end[2 * $0 + d]) }
            let mean = values.reduce(0, +) / Double(B)
            let sampleVariance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(B - 1)
            // Standard errors: sqrt(var / B) ≈ 0.0023 for the mean, var sqrt(2 / B) ≈ 0.0029 for the variance.
            #expect(abs(mean - decay * x0) < 0.012, "mean \(mean) vs \(decay * x0)")
            #expect(abs(sampleVariance - variance) < 0.015, "variance \(sampleVariance) vs \(variance)")
        }
    }

    /// Pushing the pool through a trained block matches solving that block's ODE accurately: the data pool is pushed
    /// through the first block as training does (batched, adaptive to the chain's tolerance, 1e-5 here), and each
    /// state is compared with its own solve to 1e-7. The block is stiff where it starts, at the sharp toy modes, and
    /// stretches local errors several hundredfold (measured on this toy: 1e-4 leaves 0.05 against a 1024-step RK4
    /// solve, 1e-6 leaves 1.5e-3), so 2e-2 is what 1e-5 allows; a push that skipped or mis-timed the block would be
    /// off by the block's displacement (> 0.1).
    @Test func poolPushMatchesSolvingTheBlockODE() throws {
        let (trainer, chain, dataset) = toyChain
        let pairs = PairSet(dataset: dataset, spec: chain.spec, observationNormalizer: chain.observationNormalizer,
                            actionNormalizer: chain.actionNormalizer)
        let pool = LocalFlowPool(pairs: pairs)
        let firstBlock = trainer.trainedBlocks[0]
        try trainer.push(pool, through: firstBlock)
        let field = VelocityField(network: trainer.network, head: nil)
        let parameters = VelocityFieldParameters(network: firstBlock, head: nil)
        let solver = ODESolver(capacity: 2)
        let cache = VelocityFieldCache(field: field, capacity: 1)
        var worst: Float = 0
        var moved: Float = 0
        for pair in stride(from: 0, to: pairs.count, by: 41) {
            var x = [pairs.chunks[2 * pair], pairs.chunks[2 * pair + 1]]
            let o = [pairs.windows[pair]]
            _ = try x.withUnsafeMutableBufferPointer { x in
                try solver.integrateAdaptive(x.baseAddress!, count: 2, from: 0, to: 1, relativeTolerance: 1e-7,
                                             absoluteTolerance: 1e-7) { t, state, v in
                    var time = t
                    o.withUnsafeBufferPointer {
                        field.forward(x: state, t: &time, observation: $0.baseAddress!, batch: 1, parameters: parameters,
                                      cache: cache, output: v)
                    }
                }
            }
            worst = max(worst, abs(x[0] - pool.states[2 * pair]), abs(x[1] - pool.states[2 * pair + 1]))
            moved = max(moved, abs(x[0] - pairs.chunks[2 * pair]))
        }
        #expect(worst < 2e-2, "largest difference \(worst)")
        #expect(moved > 0.1, "the block moves the states (largest move \(moved))")
    }

    /// LFM samples of the toy put mass on every mode of the given condition (weights within ±0.1) and none on the
    /// other condition's: at most 2% of samples land there, stragglers between modes (a policy ignoring the condition
    /// would put half its samples there).
    @Test func chainSamplesCoverTheRightModes() {
        let (_, chain, _) = toyChain
        #expect(chain.isChain && chain.stages.count == 3 && chain.method == "lfm")
        let policy = Policy(checkpoint: chain, capacity: 2000, method: .rk4, steps: 5, seed: 8, workers: 2)
        #expect(policy.evaluationsPerChunk == 3 * 5 * 4)
        for condition in 0...1 {
            let (actions, _) = policy.predictAction(
                observations: [Float](repeating: Float(condition), count: 2000), batch: 2000)
            let report = ConditionalMixture.modeReport(points: actions, condition: condition)
            for mode in 0..<4 {
                let truth = ConditionalMixture.modes[condition][mode].weight
                #expect(abs(report.weights[mode] - truth) <= 0.1, "c=\(condition) mode \(mode): \(report.weights[mode])")
            }
            #expect(report.otherCondition <= 0.02 && report.unassigned <= 0.1, "c=\(condition): \(report)")
        }
    }

    /// Each distilled one-step student lands near its teacher's endpoint. On fresh inputs, the RMS distance between the
    /// student's one-step endpoint and the teacher's accurate endpoint must be under half the distance the teacher
    /// moves the state (a student that copied its input would be at 100%) and under 30% of the error of one Euler step
    /// of the teacher, the alternative at the same cost (measured: students at 8-36% of the displacement, one Euler
    /// step at 60-1000%, the flows being curved). The distilled chain is saved and reloaded as one step per stage.
    @Test func distilledStagesMatchTheirTeachers() throws {
        let (_, chain, dataset) = toyChain
        let pairs = PairSet(dataset: dataset, spec: chain.spec, observationNormalizer: chain.observationNormalizer,
                            actionNormalizer: chain.actionNormalizer)
        var training = TrainingConfiguration()
        training.steps = 1000
        training.learningRate = 1e-3
        training.warmupSteps = 50
        training.seed = 9
        let distilled = try distillChain(chain, pairs: pairs, samples: 2000, teacherTolerance: 1e-5, training: training)
        #expect(distilled.method == "lfm-distilled" && distilled.stages.allSatisfy { $0.fixedSteps == 1 })
        let path = temporaryPath("distilled.safetensors")
        try distilled.write(to: path)
        let loaded = try Checkpoint(contentsOf: path)
        #expect(loaded.stages.count == 3 && loaded.stages.allSatisfy { $0.fixedSteps == 1 })
        #expect(Policy(checkpoint: loaded, steps: 10).evaluationsPerChunk == 3)

        var generator = RandomSource(seed: 77)
        let samples = 300
        let windows = (0..<samples).map { _ in Float(generator.nextIndex(below: 2)) }
        var states = (0..<(2 * samples)).map { _ in generator.nextGaussian() }
        for (teacher, student) in zip(chain.stages, loaded.stages) {
            let starts = states
            try integrateBatch(states: &states, windows: windows, field: teacher.field, parameters: teacher.parameters,
                               from: 1, to: 0, solver: .adaptive(tolerance: 1e-5))
            let oneStep = oneEulerStep(of: student, from: starts, windows: windows)
            let euler = oneEulerStep(of: teacher, from: starts, windows: windows)
            let distance = { (a: [Float], b: [Float]) in zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() }
            let (error, moved, eulerError) = (distance(oneStep, states), distance(starts, states), distance(euler, states))
            #expect(error < 0.5 * moved && error < 0.3 * eulerError,
                    "student error \(error), teacher displacement \(moved), one Euler step's error \(eulerError)")
        }
    }
}
