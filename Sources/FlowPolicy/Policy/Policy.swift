/// A flow-matching policy ready to act: normalizers, velocity network, ODE solver and seeded noise.
///
/// `predictAction` takes a batch of observation windows (`[B, To, Do]`, raw units), draws `x0 ~ N(0, I)`,
/// integrates `dx/dt = v_θ(t, x, o)` from t = 0 to 1 with `steps` steps of `method`, and returns the whole chunk
/// (`actionPrediction [B, Tp, Da]`) and the part to execute (`action [B, Ta, Da]`, steps `To - 1 ..< To - 1 + Ta`):
/// ```
/// time        : t-1   t    t+1  ...  t+Ta-1  ...  t+Tp-2
/// observation : o     o                                     To = 2 (the window ends at the current step t)
/// prediction  : a     a    a    ...  a       ...  a         Tp
/// action      :       a    a    ...  a                      Ta, executed from step t
/// ```
/// A policy with cameras encodes each window's frames (`ImageObservationEncoder`, centre crops) once per chunk; the
/// features join the normalized observations in the condition of every solver step.
///
/// All buffers are allocated at construction for up to `capacity` windows; with one worker, `predictAction` into
/// caller buffers allocates nothing. With `workers > 1` a batch is split into contiguous slices integrated on that
/// many threads (each with its own activations and solver stages). The noise is drawn before the split, so the result
/// does not depend on the worker count. Not thread-safe: one policy per thread.
///
/// `precision` chooses the number format of the network's matrix products (`Precision`): the weights are packed once
/// here; fp32 keeps the checkpoint's numbers, bf16 and int8 round them. `openBLAS` runs fp32 on OpenBLAS instead
/// of the packed kernel (`bench infer` compares the two).
public final class Policy {
    public let checkpoint: Checkpoint
    public let capacity: Int
    public let workers: Int
    /// Solver and number of steps K, chosen at run time.
    public var method: SolverMethod
    public var steps: Int
    private var generator: RandomSource

    /// The number format of the network's matrix products; fixed at construction.
    public let precision: Precision
    private let stageParameters: [VelocityFieldParameters]  // the checkpoint's, packed at `precision`
    private let solvers: [ODESolver]
    private let caches: [[VelocityFieldCache]]  // [worker][stage]
    private let window: FloatBuffer  // [B, To*(Do+Fs)]: normalized observations and image features
    private let normalized: FloatBuffer  // [B, To*Do]
    private let imageFeatures: FloatBuffer  // [B, To*Fs]
    private let imageCache: ImageObservationEncoderCache?
    private let state: FloatBuffer  // [B, Dx]
    private let times: FloatBuffer  // [B]
    private let committedNoise: FloatBuffer  // [B, P*Da]: x0 of the committed prefix
    private let committedTarget: FloatBuffer  // [B, P*Da]: the committed actions, normalized
    private var committedSteps = 0

    public var spec: PolicySpec { checkpoint.spec }
    /// Velocity evaluations per chunk (over every stage of a chain).
    public var evaluationsPerChunk: Int { checkpoint.evaluations(steps: steps, method: method) }

    public init(checkpoint: Checkpoint, capacity: Int = 1, method: SolverMethod = .euler, steps: Int = 10,
                seed: UInt64 = 0, workers: Int = 1, precision: Precision = .fp32, openBLAS: Bool = false) {
        precondition(capacity >= 1 && steps >= 1 && workers >= 1)
        precondition(!openBLAS || precision == .fp32, "OpenBLAS runs fp32 only")
        self.checkpoint = checkpoint
        self.precision = precision
        stageParameters = checkpoint.stages.map {
            openBLAS ? $0.parameters : $0.parameters.packed(for: $0.field, precision: precision)
        }
        self.capacity = capacity
        self.workers = min(workers, capacity)
        self.method = method
        self.steps = steps
        generator = RandomSource(seed: seed)
        let configuration = checkpoint.network.configuration
        // Any batch up to `capacity` splits into slices of at most ceil(capacity / workers) rows.
        let sliceCapacity = (capacity + self.workers - 1) / self.workers
        solvers = (0..<self.workers).map { _ in ODESolver(capacity: sliceCapacity * configuration.chunkDimensions) }
        caches = (0..<self.workers).map { _ in
            checkpoint.stages.map { VelocityFieldCache(field: $0.field, capacity: sliceCapacity) }
        }
        window = FloatBuffer(count: capacity * configuration.observationDimensions)
        // Only a policy with cameras assembles its window from parts (the low-dimensional one normalizes in place).
        let imageSteps = checkpoint.imageEncoder == nil ? 0 : capacity * checkpoint.spec.observationSteps
        normalized = FloatBuffer(count: imageSteps * checkpoint.spec.observationDimensions)
        imageFeatures = FloatBuffer(count: imageSteps * (checkpoint.imageEncoder?.featuresPerStep ?? 0))
        // Images are encoded a few at a time: a ResNet's activations for a whole batch would take gigabytes.
        imageCache = checkpoint.imageEncoder.map {
            ImageObservationEncoderCache(encoder: $0, capacity: min(imageSteps, 16))
        }
        state = FloatBuffer(count: capacity * configuration.chunkDimensions)
        times = FloatBuffer(count: capacity)
        committedNoise = FloatBuffer(count: capacity * configuration.chunkDimensions)
        committedTarget = FloatBuffer(count: capacity * configuration.chunkDimensions)
        _ = BLAS.coreType
    }

    /// Restarts the noise stream (for reproducible episodes).
    public func reset(seed: UInt64) {
        generator = RandomSource(seed: seed)
    }

    /// Samples one chunk per window. `observations [B, To, Do]` raw, and for a policy with cameras `frames [B, To,
    /// spec.frameBytesPerStep]` (each step's cameras in `spec.cameras` order, `uint8 [H, W, C]` each); writes, where
    /// given, `action [B, Ta, Da]` and `actionPrediction [B, Tp, Da]`, both raw (denormalized).
    ///
    /// Continuation (inpainting): with `committed [B, P, Da]` (raw actions, P = `committedSteps` <= Tp), the first P
    /// steps of each chunk are held on their flow path `x_t = (1 - t) x0 + t a_committed` while the rest is sampled,
    /// so the new chunk continues the actions already committed without a jump. The path is followed exactly by
    /// giving those coordinates the constant velocity `a_committed - x0`, which every fixed-step method integrates
    /// without error; the network sees them at their path values at every stage. For a chain this applies to its last
    /// flow, from the state it starts from. The returned chunk starts with the committed actions.
    ///
    /// With `noiseSeeds [B]`, row r's noise is drawn from a generator seeded with `noiseSeeds[r]` instead of the
    /// policy's stream, and each row is integrated alone (BLAS rounds a product differently for different batch
    /// sizes): the chunk then depends on that seed and the row's window alone, bit for bit, not on the other rows,
    /// the worker count or earlier calls (sharded evaluation gives the unsharded chunks).
    public func predictAction(
        observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>? = nil, batch B: Int,
        action: UnsafeMutablePointer<Float>?,
        actionPrediction: UnsafeMutablePointer<Float>? = nil, committed: UnsafePointer<Float>? = nil,
        committedSteps: Int = 0, noiseSeeds: UnsafePointer<UInt64>? = nil
    ) {
        precondition(B >= 1 && B <= capacity, "batch \(B) outside 1...\(capacity)")
        precondition(committedSteps >= 0 && committedSteps <= spec.predictionSteps)
        precondition((frames != nil) == !spec.cameras.isEmpty, "frames go with a policy with cameras, and only there")
        let Dx = checkpoint.network.configuration.chunkDimensions
        if let noiseSeeds {
            for row in 0..<B {
                var rowGenerator = RandomSource(seed: noiseSeeds[row])
                rowGenerator.fillGaussian(state.pointer + row * Dx, count: Dx)
            }
        } else {
            generator.fillGaussian(state.pointer, count: B * Dx)
        }
        self.committedSteps = committed == nil ? 0 : committedSteps
        if let committed, committedSteps > 0 {
            let P = committedSteps * spec.actionDimensions
            for row in 0..<B { (committedTarget.pointer + row * P).update(from: committed + row * P, count: P) }
            checkpoint.actionNormalizer.normalize(committedTarget.pointer, rows: B * committedSteps)
        }
        prepareWindow(observations: observations, frames: frames, batch: B)
        sampleChunks(batch: B, rowByRow: noiseSeeds != nil)
        let (To, Ta, Tp, Da) = (spec.observationSteps, spec.actionSteps, spec.predictionSteps, spec.actionDimensions)
        checkpoint.actionNormalizer.denormalize(state.pointer, rows: B * Tp)
        for row in 0..<B {
            let chunk = state.pointer + row * Dx
            action.map { ($0 + row * Ta * Da).update(from: chunk + (To - 1) * Da, count: Ta * Da) }
            actionPrediction.map { ($0 + row * Dx).update(from: chunk, count: Dx) }
        }
    }

    /// Allocating convenience: `observations [B, To, Do]` → `(action [B, Ta, Da], actionPrediction [B, Tp, Da])`.
    /// With cameras, `frames [B, To, frameBytesPerStep]` too.
    public func predictAction(observations: [Float], frames: [UInt8] = [], batch B: Int = 1)
        -> (action: [Float], actionPrediction: [Float])
    {
        precondition(observations.count == B * spec.observationSteps * spec.observationDimensions,
                     "expected \(B) x \(spec.observationSteps) x \(spec.observationDimensions) observations")
        precondition(frames.count == B * spec.observationSteps * spec.frameBytesPerStep,
                     "expected \(B) x \(spec.observationSteps) x \(spec.frameBytesPerStep) frame bytes")
        var action = [Float](repeating: 0, count: B * spec.actionSteps * spec.actionDimensions)
        var prediction = [Float](repeating: 0, count: B * spec.predictionSteps * spec.actionDimensions)
        observations.withUnsafeBufferPointer { o in
            frames.withUnsafeBufferPointer { f in
                action.withUnsafeMutableBufferPointer { a in
                    prediction.withUnsafeMutableBufferPointer { p in
                        predictAction(observations: o.baseAddress!, frames: f.isEmpty ? nil : f.baseAddress,
                                      batch: B, action: a.baseAddress!, actionPrediction: p.baseAddress!)
                    }
                }
            }
        }
        return (action, prediction)
    }

    /// Reference sampling with adaptive Dormand–Prince 5(4) (for checking fixed-step solvers, not for control):
    /// `observations [B, To, Do]` → `(action, actionPrediction, velocity evaluations)`. Single-threaded; allocates.
    /// Distilled one-step stages keep their single step.
    public func predictActionAdaptive(
        observations: [Float], frames: [UInt8] = [], batch B: Int = 1, relativeTolerance: Float = 1e-5,
        absoluteTolerance: Float = 1e-5
    ) throws(FlowPolicyError) -> (action: [Float], actionPrediction: [Float], evaluations: Int) {
        precondition(
            B >= 1 && B <= capacity && observations.count == B * spec.observationSteps * spec.observationDimensions
                && frames.count == B * spec.observationSteps * spec.frameBytesPerStep)
        let configuration = checkpoint.network.configuration
        let (Do, Dx) = (configuration.observationDimensions, configuration.chunkDimensions)
        generator.fillGaussian(state.pointer, count: B * Dx)
        frames.withUnsafeBufferPointer { frames in
            prepareWindow(observations: observations, frames: frames.isEmpty ? nil : frames.baseAddress, batch: B)
        }
        let (window, times) = (self.window.pointer, self.times.pointer)
        let solver = ODESolver(capacity: B * Dx)
        var evaluations = 0
        for (index, stage) in checkpoint.stages.enumerated() {
            let cache = caches[0][index]
            let field = { (t: Float, x: UnsafePointer<Float>, v: UnsafeMutablePointer<Float>) in
                var offset = 0
                while offset < B {
                    let rows = min(cache.capacity, B - offset)
                    times.update(repeating: t, count: rows)
                    stage.field.forward(x: x + offset * Dx, t: times, observation: window + offset * Do, batch: rows,
                                        parameters: stage.parameters, cache: cache, output: v + offset * Dx)
                    offset += rows
                }
            }
            if let fixed = stage.fixedSteps {
                solver.integrate(state.pointer, count: B * Dx, from: stage.start, to: stage.end, steps: fixed,
                                 method: .euler, field: field)
                evaluations += fixed
            } else {
                evaluations += try solver.integrateAdaptive(
                    state.pointer, count: B * Dx, from: stage.start, to: stage.end,
                    relativeTolerance: relativeTolerance, absoluteTolerance: absoluteTolerance, field: field
                ).evaluations
            }
        }
        let (To, Ta, Tp, Da) = (spec.observationSteps, spec.actionSteps, spec.predictionSteps, spec.actionDimensions)
        checkpoint.actionNormalizer.denormalize(state.pointer, rows: B * Tp)
        let prediction = Array(state.buffer[0..<(B * Dx)])
        var action: [Float] = []
        for row in 0..<B {
            let first: Int = row * Dx + (To - 1) * Da
            action.append(contentsOf: prediction[first..<(first + Ta * Da)])
        }
        return (action, prediction, evaluations)
    }

    /// Fills `window` with the condition of each row: the normalized `observations [B, To, Do]`, and for a policy
    /// with cameras each step's image features from `frames [B, To, frameBytesPerStep]`.
    private func prepareWindow(observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, batch B: Int) {
        let (steps, Do) = (B * spec.observationSteps, spec.observationDimensions)
        guard let encoder = checkpoint.imageEncoder, let parameters = checkpoint.imageEncoderParameters,
              let imageCache, let frames
        else {
            window.pointer.update(from: observations, count: steps * Do)
            checkpoint.observationNormalizer.normalize(window.pointer, rows: steps)
            return
        }
        normalized.pointer.update(from: observations, count: steps * Do)
        checkpoint.observationNormalizer.normalize(normalized.pointer, rows: steps)
        encoder.encode(frames: frames, steps: steps, parameters: parameters.pointer, cache: imageCache,
                       features: imageFeatures.pointer)
        let Fs = encoder.featuresPerStep
        for step in 0..<steps {
            let row = window.pointer + step * (Do + Fs)
            row.update(from: normalized.pointer + step * Do, count: Do)
            (row + Do).update(from: imageFeatures.pointer + step * Fs, count: Fs)
        }
    }

    /// Integrates the normalized chunks in `state` through every stage, conditioned on `window`. With `rowByRow`,
    /// every row is integrated as a batch of one.
    private func sampleChunks(batch B: Int, rowByRow: Bool) {
        let workerCount = min(workers, B)
        func integrate(worker: Int, rows: Range<Int>) {
            if rowByRow {
                for row in rows { integrateSlice(worker: worker, rows: row..<(row + 1)) }
            } else {
                integrateSlice(worker: worker, rows: rows)
            }
        }
        if workerCount == 1 {
            integrate(worker: 0, rows: 0..<B)
        } else {
            parallelFor(workerCount) { integrate(worker: $0, rows: partition(B, into: workerCount, index: $0)) }
        }
    }

    /// Integrates rows `rows` of `state` through every stage with worker `worker`'s solver stages and activations.
    private func integrateSlice(worker: Int, rows: Range<Int>) {
        let configuration = checkpoint.network.configuration
        let (Do, Dx) = (configuration.observationDimensions, configuration.chunkDimensions)
        let (first, count) = (rows.lowerBound, rows.count)
        let times = self.times.pointer + first
        let window = UnsafePointer(self.window.pointer + first * Do)
        let x = state.pointer + first * Dx
        let stages = checkpoint.stages
        let P = committedSteps * spec.actionDimensions
        let entry = committedNoise.pointer + first * P
        let target = UnsafePointer(committedTarget.pointer + first * P)
        for (index, stage) in stages.enumerated() {
            let cache = caches[worker][index]
            let isLast = index == stages.count - 1
            // The committed prefix moves straight from where the last stage starts to the committed actions.
            let prefix = isLast ? P : 0
            if prefix > 0 {
                for row in 0..<count { (entry + row * P).update(from: x + row * Dx, count: P) }
            }
            let span = stage.end - stage.start
            let (field, parameters) = (stage.field, stageParameters[index])
            solvers[worker].integrate(
                x, count: count * Dx, from: stage.start, to: stage.end, steps: stage.steps(requested: steps),
                method: stage.fixedSteps == nil ? method : .euler
            ) { t, state, v in
                times.update(repeating: t, count: count)
                field.forward(
                    x: state, t: times, observation: window, batch: count, parameters: parameters, cache: cache,
                    output: v)
                for row in 0..<count {
                    for j in 0..<prefix { v[row * Dx + j] = (target[row * P + j] - entry[row * P + j]) / span }
                }
            }
        }
    }
}
