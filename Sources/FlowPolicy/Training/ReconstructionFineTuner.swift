/// Settings of seed-000 fine-tuning (METHODS.md sections 2 and 3).
public struct FineTuningConfiguration: Sendable {
    public enum Mode: String, CaseIterable, Sendable {
        /// All of θ trains ("straightforward" fine-tuning).
        case mle
        /// The pre-trained network is frozen; a contracting residual head trains.
        case residual
    }

    public enum Coupling: String, CaseIterable, Sendable {
        /// z = the latent the frozen pre-trained flow maps onto the demonstrated chunk.
        case reconstruction
        /// z ~ N(0, I), drawn fresh (the ablation).
        case independent
    }

    public var mode = Mode.mle
    public var coupling = Coupling.reconstruction
    /// The deployed sampler the loss is measured through.
    public var method = SolverMethod.euler
    public var steps = 2
    /// σ of the Gaussian likelihood `a = Φ(z; o) + ε` (normalized action units).
    public var sigma: Float = 0.1
    /// Weight of the flow-matching loss kept beside the likelihood.
    public var lambdaFM: Float = 1
    /// Weight of the proximal term `|θ - θ_start|²` (θ_start: the pre-trained weights, or the head's initial ones).
    public var lambdaProx: Float = 0
    /// Optimizer, schedule, batch, seed, threads. Defaults differ from pre-training: fewer steps, shorter warm-up.
    public var training: TrainingConfiguration
    /// The residual head's sizes (residual mode).
    public var headHidden = 128
    public var headRank = 4
    public var headSkewRank = 2
    public var headEpsilon: Float = 0.1

    public init() {
        training = TrainingConfiguration()
        training.steps = 3000
        training.warmupSteps = 100
        training.learningRate = 3e-5
    }
}

/// Fine-tunes a pre-trained flow-matching policy by maximum likelihood of its deployed sampler's reconstructions:
/// minimizes `mean |Φ^K(z; o) - a|² / (2σ²) + λ_FM L_FM + λ_prox |θ - θ_start|²` over training pairs (o, a),
/// with z from the reconstruction coupling (encoded once, before training) or drawn fresh (independent coupling).
/// Gradients flow through the K unrolled solver steps (`UnrolledSampler`). The batch is split over worker threads as
/// in `FlowMatchingTrainer`; results are bit-identical for the same seed and thread count.
///
/// `mean` is over all elements (batch and chunk dimensions), as the flow-matching loss is, so σ and λ_FM weigh the
/// two terms directly.
public final class ReconstructionFineTuner {
    public let base: Checkpoint
    public let configuration: FineTuningConfiguration
    public let field: VelocityField
    /// The parameters that train (the network's in `mle` mode, the head's in `residual` mode) and their start.
    public let trainable: FloatBuffer
    let start: FloatBuffer
    let gradients: FloatBuffer
    let optimizer: AdamW
    let ema: ExponentialMovingAverage
    let schedule: CosineSchedule
    public private(set) var step = 0
    private var generator: RandomSource

    let pairs: PairSet
    let latents: [Float]?
    let workers: [Worker]
    // Batch buffers (each worker touches its rows).
    let windows: FloatBuffer, chunks: FloatBuffer, noise: FloatBuffer, flowState: FloatBuffer, flowTarget: FloatBuffer
    let times: FloatBuffer

    public init(checkpoint: Checkpoint, pairs: PairSet, latents: [Float]?, configuration: FineTuningConfiguration)
        throws(FlowPolicyError)
    {
        try configuration.training.validate()
        guard configuration.sigma > 0, configuration.lambdaFM >= 0, configuration.lambdaProx >= 0 else {
            throw .invalidConfiguration("σ must be positive and the λ weights non-negative")
        }
        guard pairs.count > 0, pairs.chunkSize == checkpoint.network.configuration.chunkDimensions,
              pairs.windowSize == checkpoint.network.configuration.observationDimensions
        else { throw .invalidConfiguration("the training pairs do not match the checkpoint's dimensions") }
        if configuration.coupling == .reconstruction {
            guard let latents, latents.count == pairs.count * pairs.chunkSize else {
                throw .invalidConfiguration("the reconstruction coupling needs one latent per training pair")
            }
        }
        guard checkpoint.head == nil else {
            throw .invalidConfiguration(
                "fine-tune a flow-matching checkpoint, not one that already has a residual head")
        }
        base = checkpoint
        self.configuration = configuration
        self.pairs = pairs
        self.latents = configuration.coupling == .reconstruction ? latents : nil
        generator = RandomSource(seed: configuration.training.seed)
        BLAS.threads = 1

        let network = checkpoint.network
        switch configuration.mode {
        case .mle:
            field = VelocityField(network: network, head: nil)
            trainable = FloatBuffer(count: network.layout.count)
            trainable.copy(from: checkpoint.parameters)
        case .residual:
            let head = try ContractiveResidualHead(ResidualHeadConfiguration(
                chunkDimensions: network.configuration.chunkDimensions,
                observationDimensions: network.configuration.observationDimensions, hidden: configuration.headHidden,
                rank: configuration.headRank, skewRank: configuration.headSkewRank,
                epsilon: configuration.headEpsilon))
            field = VelocityField(network: network, head: head)
            trainable = FloatBuffer(count: head.layout.count)
            head.initialize(trainable, using: &generator)
        }
        start = FloatBuffer(count: trainable.count)
        start.copy(from: trainable)
        gradients = FloatBuffer(count: trainable.count)
        let training = configuration.training
        optimizer = AdamW(count: trainable.count, beta1: training.beta1, beta2: training.beta2,
                          weightDecay: training.weightDecay)
        ema = ExponentialMovingAverage(initial: trainable, power: training.emaPower,
                                       maximumDecay: training.emaMaximumDecay)
        schedule = CosineSchedule(baseRate: training.learningRate, warmupSteps: training.warmupSteps,
                                  totalSteps: training.steps)
        let B = training.batchSize
        let (Dx, Do) = (pairs.chunkSize, pairs.windowSize)
        let workerCount = min(training.threads, B)
        var workers: [Worker] = []
        for index in 0..<workerCount {
            let rows = partition(B, into: workerCount, index: index)
            workers.append(Worker(
                rows: rows,
                sampler: try UnrolledSampler(field: field, method: configuration.method, steps: configuration.steps,
                                             capacity: rows.count),
                flowCache: VelocityFieldCache(field: field, capacity: rows.count),
                gradients: FloatBuffer(count: trainable.count), output: FloatBuffer(count: rows.count * Dx),
                dOutput: FloatBuffer(count: rows.count * Dx)))
        }
        self.workers = workers
        windows = FloatBuffer(count: B * Do)
        chunks = FloatBuffer(count: B * Dx)
        noise = FloatBuffer(count: B * Dx)
        flowState = FloatBuffer(count: B * Dx)
        flowTarget = FloatBuffer(count: B * Dx)
        times = FloatBuffer(count: B)
    }

    /// The field's parameters with `trainable` in place.
    func parameters(_ trained: FloatBuffer) -> VelocityFieldParameters {
        configuration.mode == .mle
            ? VelocityFieldParameters(network: trained, head: nil)
            : VelocityFieldParameters(network: base.parameters, head: trained)
    }

    public struct StepLosses: Sendable {
        public var total: Float
        /// mean |Φ(z) - a|² (without the 1/(2σ²)).
        public var reconstruction: Float
        public var flowMatching: Float
    }

    @discardableResult
    public func trainStep() throws(FlowPolicyError) -> StepLosses {
        let B = configuration.training.batchSize
        let (Dx, Do) = (pairs.chunkSize, pairs.windowSize)
        let latentSource = UnsafeMutablePointer<Float>.allocate(capacity: B * Dx)
        defer { latentSource.deallocate() }
        for row in 0..<B {
            let pair = generator.nextIndex(below: pairs.count)
            for j in 0..<Do { windows[row * Do + j] = pairs.windows[pair * Do + j] }
            for j in 0..<Dx { chunks[row * Dx + j] = pairs.chunks[pair * Dx + j] }
            if let latents {
                for j in 0..<Dx { latentSource[row * Dx + j] = latents[pair * Dx + j] }
            }
            times[row] = generator.nextUniform()
        }
        if latents == nil { generator.fillGaussian(latentSource, count: B * Dx) }
        generator.fillGaussian(noise.pointer, count: B * Dx)
        FlowMatchingLoss.interpolate(
            noise: noise.pointer, data: chunks.pointer, times: times.pointer, batch: B, dimensions: Dx,
            sigmaMin: configuration.training.sigmaMin, state: flowState.pointer, target: flowTarget.pointer)

        let parameters = self.parameters(trainable)
        let mode = configuration.mode
        let (sigma, lambdaFM) = (configuration.sigma, configuration.lambdaFM)
        let count = Float(B * Dx)
        let (windows, chunks, flowState, flowTarget, times) = (
            self.windows.pointer, self.chunks.pointer, self.flowState.pointer, self.flowTarget.pointer,
            self.times.pointer
        )
        let field = self.field
        let latentPointer = UnsafePointer(latentSource)
        parallelFor(workers.count) { index in
            let worker = workers[index]
            let (first, rows) = (worker.rows.lowerBound, worker.rows.count)
            let n = rows * Dx
            worker.gradients.fill(0)
            let networkGradients = mode == .mle ? worker.gradients.pointer : nil
            let headGradients = mode == .residual ? worker.gradients.pointer : nil
            // Likelihood of the reconstructions through the unrolled sampler.
            worker.sampler.forward(z: latentPointer + first * Dx, observation: windows + first * Do, batch: rows,
                                   parameters: parameters, output: worker.output.pointer)
            worker.reconstructionSum = FlowMatchingLoss.sumOfSquaredErrors(
                prediction: worker.output.pointer, target: chunks + first * Dx, count: n,
                gradientScale: 1 / (sigma * sigma * count), gradient: worker.dOutput.pointer)
            worker.sampler.backward(dOutput: worker.dOutput.pointer, parameters: parameters,
                                    networkGradients: networkGradients, headGradients: headGradients)
            // Flow matching on the same pairs keeps the field near a valid flow.
            worker.flowSum = 0
            if lambdaFM > 0 {
                field.forward(x: flowState + first * Dx, t: times + first, observation: windows + first * Do,
                              batch: rows, parameters: parameters, cache: worker.flowCache,
                              output: worker.output.pointer)
                worker.flowSum = FlowMatchingLoss.sumOfSquaredErrors(
                    prediction: worker.output.pointer, target: flowTarget + first * Dx, count: n,
                    gradientScale: 2 * lambdaFM / count, gradient: worker.dOutput.pointer)
                field.backward(dOutput: worker.dOutput.pointer, x: flowState + first * Dx, batch: rows,
                               parameters: parameters, networkGradients: networkGradients,
                               headGradients: headGradients, cache: worker.flowCache, dX: nil)
            }
        }
        let reconstruction = Float(workers.reduce(0) { $0 + $1.reconstructionSum } / Double(count))
        let flowMatching = Float(workers.reduce(0) { $0 + $1.flowSum } / Double(count))
        var total = reconstruction / (2 * sigma * sigma) + lambdaFM * flowMatching
        guard total.isFinite else {
            throw .nonFinite(
                "the fine-tuning loss became \(total) at step \(step); lower the learning rate or raise σ")
        }
        gradients.copy(from: workers[0].gradients)
        for worker in workers.dropFirst() {
            axpy(gradients.count, alpha: 1, x: worker.gradients.pointer, y: gradients.pointer)
        }
        if configuration.lambdaProx > 0 {
            var proximal: Float = 0
            for i in 0..<trainable.count {
                let difference = trainable[i] - start[i]
                proximal += difference * difference
                gradients[i] += 2 * configuration.lambdaProx * difference
            }
            total += configuration.lambdaProx * proximal
        }
        clipGradientNorm(gradients, maximumNorm: configuration.training.gradientClipNorm)
        optimizer.update(parameters: trainable, gradients: gradients, learningRate: schedule.learningRate(atStep: step),
                         workers: workers.count)
        ema.update(from: trainable, step: step, workers: workers.count)
        step += 1
        return StepLosses(total: total, reconstruction: reconstruction, flowMatching: flowMatching)
    }

    /// The fine-tuned policy (EMA weights): the network, or the frozen network plus the head.
    public func checkpoint(provenance extra: [String: String] = [:]) -> Checkpoint {
        let weights = FloatBuffer(count: ema.average.count)
        weights.copy(from: ema.average)
        var provenance = base.provenance
        provenance.merge([
            "finetune_mode": configuration.mode.rawValue, "finetune_coupling": configuration.coupling.rawValue,
            "finetune_solver": "\(configuration.method.rawValue) K=\(configuration.steps)",
            "finetune_steps": String(step), "finetune_sigma": String(configuration.sigma),
            "finetune_lambda_fm": String(configuration.lambdaFM),
            "finetune_lambda_prox": String(configuration.lambdaProx),
            "finetune_seed": String(configuration.training.seed),
        ]) { _, new in new }
        provenance.merge(extra) { _, new in new }
        switch configuration.mode {
        case .mle:
            return Checkpoint(
                spec: base.spec, network: base.network, parameters: weights,
                observationNormalizer: base.observationNormalizer, actionNormalizer: base.actionNormalizer,
                method: "mle", provenance: provenance, contract: base.contract)
        case .residual:
            return Checkpoint(
                spec: base.spec, network: base.network, parameters: base.parameters,
                observationNormalizer: base.observationNormalizer, actionNormalizer: base.actionNormalizer,
                head: field.head, headParameters: weights, method: "residual", provenance: provenance,
                contract: base.contract)
        }
    }

    final class Worker: @unchecked Sendable {
        let rows: Range<Int>
        let sampler: UnrolledSampler
        let flowCache: VelocityFieldCache
        let gradients: FloatBuffer
        let output: FloatBuffer
        let dOutput: FloatBuffer
        var reconstructionSum: Double = 0
        var flowSum: Double = 0

        init(rows: Range<Int>, sampler: UnrolledSampler, flowCache: VelocityFieldCache, gradients: FloatBuffer,
             output: FloatBuffer, dOutput: FloatBuffer) {
            self.rows = rows
            self.sampler = sampler
            self.flowCache = flowCache
            self.gradients = gradients
            self.output = output
            self.dOutput = dOutput
        }
    }
}

/// Mean squared error, over all elements in normalized units, of the K-step sampler `Φ^K(z; o)` against the chunks
/// of `pairs`, from `latents` (one per pair).
public func reconstructionError(
    checkpoint: Checkpoint, pairs: PairSet, latents: [Float], method: SolverMethod, steps: Int, batch: Int = 256
) -> Float {
    let (Dx, Do) = (pairs.chunkSize, pairs.windowSize)
    let field = checkpoint.field
    let parameters = checkpoint.fieldParameters
    let solver = ODESolver(capacity: batch * Dx)
    let cache = VelocityFieldCache(field: field, capacity: batch)
    let times = FloatBuffer(count: batch)
    let state = FloatBuffer(count: batch * Dx)
    var total = 0.0
    pairs.windows.withUnsafeBufferPointer { windows in
        var start = 0
        while start < pairs.count {
            let rows = min(batch, pairs.count - start)
            for i in 0..<(rows * Dx) { state[i] = latents[start * Dx + i] }
            let observation = windows.baseAddress! + start * Do
            solver.integrate(state.pointer, count: rows * Dx, from: 0, to: 1, steps: steps, method: method) { t, x, v in
                times.pointer.update(repeating: t, count: rows)
                field.forward(x: x, t: times.pointer, observation: observation, batch: rows, parameters: parameters,
                              cache: cache, output: v)
            }
            for i in 0..<(rows * Dx) {
                let difference = Double(state[i] - pairs.chunks[start * Dx + i])
                total += difference * difference
            }
            start += rows
        }
    }
    return Float(total / Double(pairs.count * Dx))
}
