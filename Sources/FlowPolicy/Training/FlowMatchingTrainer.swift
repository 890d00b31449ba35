/// Trains a `ResMLPFiLM` velocity network by conditional flow matching on the pairs of a `FlowPairSource`
/// (demonstrations for a policy; pool and Ornstein–Uhlenbeck pairs for a Local Flow Matching block).
///
/// Each step draws `B` pairs from the source and times `s ~ U[0, 1)`, all from one seeded generator, regresses the
/// field at `x_s = (1 - s) start + s end` onto `end - start`; then backward, global-norm clipping, AdamW under the
/// cosine schedule, and an EMA update. The same seed, data and thread count give bit-identical weights.
///
/// Both cores: the batch is split into one contiguous slice per worker thread; each worker runs the forward and
/// backward pass of its slice with its own activation cache and gradient buffer (OpenBLAS single-threaded), and the
/// gradients are summed in worker order. This beats OpenBLAS's own threading at these sizes, because the
/// elementwise layers are split too and the BLAS threads never spin waiting for each other.
public final class FlowMatchingTrainer {
    public let spec: PolicySpec
    public let network: ResMLPFiLM
    public let configuration: TrainingConfiguration
    public let parameters: FloatBuffer
    public let gradients: FloatBuffer
    public let optimizer: AdamW
    public let ema: ExponentialMovingAverage
    public let schedule: CosineSchedule
    public let observationNormalizer: MinMaxNormalizer
    public let actionNormalizer: MinMaxNormalizer
    public let source: FlowPairSource
    public let datasetHash: String
    public private(set) var step = 0
    private var generator: RandomSource

    // Batch buffers, shared by the workers (each touches only its rows).
    private let workers: [Worker]
    private let window: FloatBuffer  // [B, To*Do]
    private let chunk: FloatBuffer  // [B, Dx] the pairs' ends
    private let noise: FloatBuffer  // [B, Dx] the pairs' starts
    private let state: FloatBuffer  // [B, Dx]
    private let target: FloatBuffer  // [B, Dx]
    private let times: FloatBuffer  // [B]
    private let velocity: FloatBuffer  // [B, Dx]
    private let dVelocity: FloatBuffer  // [B, Dx]

    /// Flow matching on a dataset of demonstrations, with normalizers fitted to it.
    public convenience init(
        spec: PolicySpec, network networkConfiguration: ResMLPFiLMConfiguration, dataset: EpisodeDataset,
        configuration: TrainingConfiguration
    ) throws(FlowPolicyError) {
        try spec.validate()
        let observationNormalizer = MinMaxNormalizer(
            fitting: dataset.observations, dimensions: spec.observationDimensions)
        let actionNormalizer = MinMaxNormalizer(fitting: dataset.actions, dimensions: spec.actionDimensions)
        let source = try DemonstrationPairs(
            dataset: dataset, spec: spec, observationNormalizer: observationNormalizer,
            actionNormalizer: actionNormalizer, sigmaMin: configuration.sigmaMin)
        try self.init(spec: spec, network: networkConfiguration, source: source,
                      observationNormalizer: observationNormalizer, actionNormalizer: actionNormalizer,
                      datasetHash: dataset.contentHash, configuration: configuration)
    }

    /// Flow matching on the pairs of `source`; `initialParameters` warm-starts the network (else PyTorch's
    /// initialization from the seed).
    public init(
        spec: PolicySpec, network networkConfiguration: ResMLPFiLMConfiguration, source: FlowPairSource,
        observationNormalizer: MinMaxNormalizer, actionNormalizer: MinMaxNormalizer, datasetHash: String,
        configuration: TrainingConfiguration, initialParameters: FloatBuffer? = nil
    ) throws(FlowPolicyError) {
        try spec.validate()
        try configuration.validate()
        self.spec = spec
        self.configuration = configuration
        self.source = source
        self.observationNormalizer = observationNormalizer
        self.actionNormalizer = actionNormalizer
        self.datasetHash = datasetHash
        network = try ResMLPFiLM(networkConfiguration)
        BLAS.threads = 1

        generator = RandomSource(seed: configuration.seed)
        parameters = FloatBuffer(count: network.layout.count)
        network.layout.initialize(parameters, using: &generator)
        if let initialParameters {
            guard initialParameters.count == parameters.count else {
                throw .invalidConfiguration("the warm-start weights do not fit this network")
            }
            parameters.copy(from: initialParameters)
        }
        gradients = FloatBuffer(count: network.layout.count)
        optimizer = AdamW(
            count: network.layout.count, beta1: configuration.beta1, beta2: configuration.beta2,
            weightDecay: configuration.weightDecay)
        ema = ExponentialMovingAverage(
            initial: parameters, power: configuration.emaPower, maximumDecay: configuration.emaMaximumDecay)
        schedule = CosineSchedule(
            baseRate: configuration.learningRate, warmupSteps: configuration.warmupSteps,
            totalSteps: configuration.steps)

        let B = configuration.batchSize
        let Dx = networkConfiguration.chunkDimensions
        let workerCount = min(configuration.threads, B)
        let network = self.network
        workers = (0..<workerCount).map { index in
            let rows = partition(B, into: workerCount, index: index)
            return Worker(
                rows: rows, cache: ResMLPFiLMCache(network: network, capacity: rows.count),
                gradients: FloatBuffer(count: network.layout.count))
        }
        window = FloatBuffer(count: B * networkConfiguration.observationDimensions)
        chunk = FloatBuffer(count: B * Dx)
        noise = FloatBuffer(count: B * Dx)
        state = FloatBuffer(count: B * Dx)
        target = FloatBuffer(count: B * Dx)
        times = FloatBuffer(count: B)
        velocity = FloatBuffer(count: B * Dx)
        dVelocity = FloatBuffer(count: B * Dx)
    }

    /// One optimization step; returns the batch loss (before the update).
    @discardableResult
    public func trainStep() throws(FlowPolicyError) -> Float {
        let B = configuration.batchSize
        let Dx = network.configuration.chunkDimensions
        let windowSize = network.configuration.observationDimensions
        source.fill(batch: B, condition: window.pointer, start: noise.pointer, end: chunk.pointer, using: &generator)
        for row in 0..<B { times[row] = source.fixedTime ?? generator.nextUniform() }
        FlowMatchingLoss.interpolate(
            noise: noise.pointer, data: chunk.pointer, times: times.pointer, batch: B, dimensions: Dx,
            sigmaMin: 0, state: state.pointer, target: target.pointer)
        let windowPointer = UnsafePointer(window.pointer)
        let (network, parameters) = (self.network, UnsafePointer(self.parameters.pointer))
        let (state, times, target, velocity, dVelocity) = (
            self.state.pointer, self.times.pointer, self.target.pointer, self.velocity.pointer, self.dVelocity.pointer
        )
        let gradientScale = 2 / Float(B * Dx)
        parallelFor(workers.count) { index in
            let worker = workers[index]
            let (first, rows) = (worker.rows.lowerBound, worker.rows.count)
            network.forward(
                x: state + first * Dx, t: times + first, observation: windowPointer + first * windowSize, batch: rows,
                parameters: parameters, cache: worker.cache, output: velocity + first * Dx)
            worker.lossSum = FlowMatchingLoss.sumOfSquaredErrors(
                prediction: velocity + first * Dx, target: target + first * Dx, count: rows * Dx,
                gradientScale: gradientScale, gradient: dVelocity + first * Dx)
            worker.gradients.fill(0)
            network.backward(
                dOutput: dVelocity + first * Dx, x: state + first * Dx, batch: rows, parameters: parameters,
                gradients: worker.gradients.pointer, cache: worker.cache)
        }
        let loss = Float(workers.reduce(0) { $0 + $1.lossSum } / Double(B * Dx))
        guard loss.isFinite else {
            throw .nonFinite(
                "the training loss became \(loss) at step \(step); lower the learning rate or check the dataset for "
                    + "extreme values")
        }
        sumWorkerGradients()
        clipGradientNorm(gradients, maximumNorm: configuration.gradientClipNorm)
        optimizer.update(
            parameters: self.parameters, gradients: gradients, learningRate: schedule.learningRate(atStep: step),
            workers: workers.count)
        ema.update(from: self.parameters, step: step, workers: workers.count)
        step += 1
        return loss
    }

    /// `gradients = Σ_w worker_w.gradients`, in worker order (deterministic), split over the workers by range.
    private func sumWorkerGradients() {
        let count = gradients.count
        let total = gradients.pointer
        let sources = workers.map { UnsafePointer($0.gradients.pointer) }
        parallelFor(workers.count) { index in
            let range = partition(count, into: sources.count, index: index)
            let target = total + range.lowerBound
            target.update(from: sources[0] + range.lowerBound, count: range.count)
            for source in sources.dropFirst() {
                axpy(range.count, alpha: 1, x: source + range.lowerBound, y: target)
            }
        }
    }

    /// A worker's slice of the batch and its private buffers.
    final class Worker: @unchecked Sendable {
        let rows: Range<Int>
        let cache: ResMLPFiLMCache
        let gradients: FloatBuffer
        var lossSum: Double = 0

        init(rows: Range<Int>, cache: ResMLPFiLMCache, gradients: FloatBuffer) {
            self.rows = rows
            self.cache = cache
            self.gradients = gradients
        }
    }

    /// The EMA weights as a checkpoint.
    public func checkpoint(provenance extra: [String: String] = [:]) -> Checkpoint {
        let weights = FloatBuffer(count: ema.average.count)
        weights.copy(from: ema.average)
        var provenance: [String: String] = [
            "dataset_hash": datasetHash, "steps": String(step), "seed": String(configuration.seed),
            "batch_size": String(configuration.batchSize), "learning_rate": String(configuration.learningRate),
        ]
        provenance.merge(extra) { _, new in new }
        return Checkpoint(
            spec: spec, network: network, parameters: weights, observationNormalizer: observationNormalizer,
            actionNormalizer: actionNormalizer, method: "fm", provenance: provenance)
    }
}
