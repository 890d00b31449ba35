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
///
/// On a dataset with cameras the image encoders train with the network (Diffusion Policy trains its encoder end to
/// end): each window step's frames are cropped at random (the crop offsets drawn from the same generator), encoded,
/// and their features join the condition; the condition's gradient flows back into the encoders. The parameters
/// are one buffer, the network's first and the encoders' after it, so the optimizer, clipping and EMA see one model.
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
    /// The image encoders of a dataset with cameras, and the frames they see (per camera `[N, H, W, C]`).
    public let imageEncoder: ImageObservationEncoder?
    private let frames: [[UInt8]]
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
    private let condition: FloatBuffer  // [B, To*(Do+Fs)]: the window with image features
    private let windowRows: UnsafeMutableBufferPointer<Int32>  // [B, To]: the dataset row of each window step
    private let crops: UnsafeMutableBufferPointer<Int32>  // [B, To, cameras, 2]: top and left of each frame's crop
    private let frameBatch: UnsafeMutableBufferPointer<UInt8>  // [B, To, frame bytes per step]

    /// Flow matching on a dataset of demonstrations, with normalizers fitted to it. A dataset with cameras needs
    /// `imageEncoder` (its sizes; the network's condition must include its features, see
    /// `PolicySpec.networkConfiguration`).
    public convenience init(
        spec: PolicySpec, network networkConfiguration: ResMLPFiLMConfiguration, dataset: EpisodeDataset,
        configuration: TrainingConfiguration, imageEncoder: ImageEncoderConfiguration? = nil
    ) throws(FlowPolicyError) {
        try spec.validate()
        let observationNormalizer = MinMaxNormalizer(
            fitting: dataset.observations, dimensions: spec.observationDimensions)
        let actionNormalizer = MinMaxNormalizer(fitting: dataset.actions, dimensions: spec.actionDimensions)
        let source = try DemonstrationPairs(
            dataset: dataset, spec: spec, observationNormalizer: observationNormalizer,
            actionNormalizer: actionNormalizer, sigmaMin: configuration.sigmaMin)
        guard spec.cameras == dataset.cameras else {
            throw .invalidConfiguration("the policy's cameras differ from the dataset's")
        }
        var encoder: ImageObservationEncoder?
        if !dataset.cameras.isEmpty {
            guard let imageEncoder else {
                throw .invalidConfiguration("the dataset has cameras: give the image encoder's sizes")
            }
            encoder = try ImageObservationEncoder(cameras: dataset.cameras, configuration: imageEncoder)
        }
        try self.init(spec: spec, network: networkConfiguration, source: source,
                      observationNormalizer: observationNormalizer, actionNormalizer: actionNormalizer,
                      datasetHash: dataset.contentHash, configuration: configuration, imageEncoder: encoder,
                      frames: dataset.frames)
    }

    /// Flow matching on the pairs of `source`; `initialParameters` warm-starts the network (else PyTorch's
    /// initialization from the seed).
    public init(
        spec: PolicySpec, network networkConfiguration: ResMLPFiLMConfiguration, source: FlowPairSource,
        observationNormalizer: MinMaxNormalizer, actionNormalizer: MinMaxNormalizer, datasetHash: String,
        configuration: TrainingConfiguration, initialParameters: FloatBuffer? = nil,
        imageEncoder: ImageObservationEncoder? = nil, frames: [[UInt8]] = []
    ) throws(FlowPolicyError) {
        try spec.validate()
        try configuration.validate()
        guard imageEncoder == nil || source is DemonstrationPairs else {
            throw .invalidConfiguration("image encoders train on demonstrations only")
        }
        self.imageEncoder = imageEncoder
        self.frames = frames
        self.spec = spec
        self.configuration = configuration
        self.source = source
        self.observationNormalizer = observationNormalizer
        self.actionNormalizer = actionNormalizer
        self.datasetHash = datasetHash
        network = try ResMLPFiLM(networkConfiguration)
        BLAS.threads = 1

        generator = RandomSource(seed: configuration.seed)
        let networkCount = network.layout.count
        let count = networkCount + (imageEncoder?.layout.count ?? 0)
        parameters = FloatBuffer(count: count)
        let networkParameters = FloatBuffer(count: networkCount)
        network.layout.initialize(networkParameters, using: &generator)
        if let initialParameters {
            guard initialParameters.count == networkCount else {
                throw .invalidConfiguration("the warm-start weights do not fit this network")
            }
            networkParameters.copy(from: initialParameters)
        }
        parameters.pointer.update(from: networkParameters.pointer, count: networkCount)
        if let imageEncoder {
            let encoderParameters = FloatBuffer(count: imageEncoder.layout.count)
            imageEncoder.layout.initialize(encoderParameters, using: &generator)
            (parameters.pointer + networkCount).update(from: encoderParameters.pointer, count: encoderParameters.count)
        }
        gradients = FloatBuffer(count: count)
        optimizer = AdamW(
            count: count, beta1: configuration.beta1, beta2: configuration.beta2,
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
        let To = spec.observationSteps
        workers = (0..<workerCount).map { index in
            let rows = partition(B, into: workerCount, index: index)
            return Worker(
                rows: rows, cache: ResMLPFiLMCache(network: network, capacity: rows.count),
                gradients: FloatBuffer(count: count),
                image: imageEncoder.map {
                    ImageWork(encoder: $0, rows: rows.count, observationSteps: To, network: network)
                })
        }
        window = FloatBuffer(count: B * networkConfiguration.observationDimensions)
        chunk = FloatBuffer(count: B * Dx)
        noise = FloatBuffer(count: B * Dx)
        state = FloatBuffer(count: B * Dx)
        target = FloatBuffer(count: B * Dx)
        times = FloatBuffer(count: B)
        velocity = FloatBuffer(count: B * Dx)
        dVelocity = FloatBuffer(count: B * Dx)
        condition = FloatBuffer(count: imageEncoder == nil ? 0 : B * networkConfiguration.observationDimensions)
        let cameraCount = imageEncoder?.cameras.count ?? 0
        windowRows = .allocate(capacity: B * To)
        crops = .allocate(capacity: B * To * cameraCount * 2)
        frameBatch = .allocate(capacity: B * To * (imageEncoder?.frameBytesPerStep ?? 0))
    }

    deinit {
        windowRows.deallocate()
        crops.deallocate()
        frameBatch.deallocate()
    }

    /// One optimization step; returns the batch loss (before the update).
    @discardableResult
    public func trainStep() throws(FlowPolicyError) -> Float {
        let B = configuration.batchSize
        let Dx = network.configuration.chunkDimensions
        let windowSize = network.configuration.observationDimensions
        if imageEncoder != nil, let demonstrations = source as? DemonstrationPairs {
            demonstrations.fill(batch: B, condition: window.pointer, start: noise.pointer, end: chunk.pointer,
                                windowRows: windowRows.baseAddress, using: &generator)
            gatherFrames()
        } else {
            source.fill(batch: B, condition: window.pointer, start: noise.pointer, end: chunk.pointer,
                        using: &generator)
        }
        for row in 0..<B { times[row] = source.fixedTime ?? generator.nextUniform() }
        FlowMatchingLoss.interpolate(
            noise: noise.pointer, data: chunk.pointer, times: times.pointer, batch: B, dimensions: Dx,
            sigmaMin: 0, state: state.pointer, target: target.pointer)
        let windowPointer = UnsafePointer(imageEncoder == nil ? window.pointer : condition.pointer)
        let (network, parameters) = (self.network, UnsafePointer(self.parameters.pointer))
        let (imageEncoder, networkCount, To, Do) = (
            self.imageEncoder, network.layout.count, spec.observationSteps, spec.observationDimensions
        )
        let (lowDimensional, conditionPointer) = (UnsafePointer(window.pointer), condition.pointer)
        let cameraCount = imageEncoder?.cameras.count ?? 0
        let (frameBatch, crops) = (UnsafePointer(self.frameBatch.baseAddress!), UnsafePointer(self.crops.baseAddress!))
        let (state, times, target, velocity, dVelocity) = (
            self.state.pointer, self.times.pointer, self.target.pointer, self.velocity.pointer, self.dVelocity.pointer
        )
        let gradientScale = 2 / Float(B * Dx)
        parallelFor(workers.count) { index in
            let worker = workers[index]
            let (first, rows) = (worker.rows.lowerBound, worker.rows.count)
            if let imageEncoder, let image = worker.image {
                // The window's frames become features, which join the normalized observations in the condition.
                let (steps, Fs) = (rows * To, imageEncoder.featuresPerStep)
                imageEncoder.encode(
                    frames: frameBatch + first * To * imageEncoder.frameBytesPerStep, steps: steps,
                    crops: crops + first * To * cameraCount * 2, parameters: parameters + networkCount,
                    cache: image.cache, features: image.features.pointer)
                for step in 0..<steps {
                    let target = conditionPointer + (first * To + step) * (Do + Fs)
                    target.update(from: lowDimensional + (first * To + step) * Do, count: Do)
                    (target + Do).update(from: image.features.pointer + step * Fs, count: Fs)
                }
            }
            network.forward(
                x: state + first * Dx, t: times + first, observation: windowPointer + first * windowSize, batch: rows,
                parameters: parameters, cache: worker.cache, output: velocity + first * Dx)
            worker.lossSum = FlowMatchingLoss.sumOfSquaredErrors(
                prediction: velocity + first * Dx, target: target + first * Dx, count: rows * Dx,
                gradientScale: gradientScale, gradient: dVelocity + first * Dx)
            worker.gradients.fill(0)
            network.backward(
                dOutput: dVelocity + first * Dx, x: state + first * Dx, batch: rows, parameters: parameters,
                gradients: worker.gradients.pointer, cache: worker.cache,
                dObservation: worker.image.map { $0.dCondition.fill(0); return $0.dCondition.pointer })
            if let imageEncoder, let image = worker.image {
                let (steps, Fs) = (rows * To, imageEncoder.featuresPerStep)
                for step in 0..<steps {
                    (image.dFeatures.pointer + step * Fs).update(
                        from: image.dCondition.pointer + step * (Do + Fs) + Do, count: Fs)
                }
                imageEncoder.backward(
                    dFeatures: image.dFeatures.pointer, steps: steps, parameters: parameters + networkCount,
                    gradients: worker.gradients.pointer + networkCount, cache: image.cache)
            }
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

    /// Copies the frames of every window step into `frameBatch` and draws each frame's crop.
    private func gatherFrames() {
        guard let imageEncoder else { return }
        let bytesPerStep = imageEncoder.frameBytesPerStep
        for (index, row) in windowRows.enumerated() {
            var offset = index * bytesPerStep
            for (camera, spec) in imageEncoder.cameras.enumerated() {
                let source = Int(row) * spec.byteCount
                frames[camera].withUnsafeBufferPointer { cameraFrames in
                    (frameBatch.baseAddress! + offset).update(from: cameraFrames.baseAddress! + source,
                                                              count: spec.byteCount)
                }
                offset += spec.byteCount
                let range = imageEncoder.cropRange(camera: camera)
                let crop = (index * imageEncoder.cameras.count + camera) * 2
                crops[crop] = Int32(generator.nextIndex(below: range.top + 1))
                crops[crop + 1] = Int32(generator.nextIndex(below: range.left + 1))
            }
        }
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
        let image: ImageWork?
        var lossSum: Double = 0

        init(rows: Range<Int>, cache: ResMLPFiLMCache, gradients: FloatBuffer, image: ImageWork?) {
            self.rows = rows
            self.cache = cache
            self.gradients = gradients
            self.image = image
        }
    }

    /// A worker's image-encoder activations and its slice's features and their gradients.
    final class ImageWork: @unchecked Sendable {
        let cache: ImageObservationEncoderCache
        let features: FloatBuffer  // [steps, Fs]
        let dFeatures: FloatBuffer  // [steps, Fs]
        let dCondition: FloatBuffer  // [rows, To*(Do+Fs)]

        init(encoder: ImageObservationEncoder, rows: Int, observationSteps: Int, network: ResMLPFiLM) {
            let steps = rows * observationSteps
            cache = ImageObservationEncoderCache(encoder: encoder, capacity: steps)
            features = FloatBuffer(count: steps * encoder.featuresPerStep)
            dFeatures = FloatBuffer(count: steps * encoder.featuresPerStep)
            dCondition = FloatBuffer(count: rows * network.configuration.observationDimensions)
        }
    }

    /// The EMA weights as a checkpoint.
    public func checkpoint(provenance extra: [String: String] = [:]) -> Checkpoint {
        let networkCount = network.layout.count
        let weights = FloatBuffer(count: networkCount)
        weights.pointer.update(from: ema.average.pointer, count: networkCount)
        let imageWeights = imageEncoder.map { encoder in
            let weights = FloatBuffer(count: encoder.layout.count)
            weights.pointer.update(from: ema.average.pointer + networkCount, count: encoder.layout.count)
            return weights
        }
        var provenance: [String: String] = [
            "dataset_hash": datasetHash, "steps": String(step), "seed": String(configuration.seed),
            "batch_size": String(configuration.batchSize), "learning_rate": String(configuration.learningRate),
        ]
        provenance.merge(extra) { _, new in new }
        return Checkpoint(
            spec: spec, network: network, parameters: weights, observationNormalizer: observationNormalizer,
            actionNormalizer: actionNormalizer, method: "fm", provenance: provenance, imageEncoder: imageEncoder,
            imageEncoderParameters: imageWeights)
    }
}
