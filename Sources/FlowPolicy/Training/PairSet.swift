/// Every (observation window, action chunk) training pair of a dataset, cut by a `SequenceSampler` and normalized
/// with a checkpoint's normalizers, in one contiguous array each (for fine-tuning, which needs a latent per pair).
public struct PairSet: Sendable {
    public let count: Int
    /// `[P, To*Do]`, normalized.
    public let windows: [Float]
    /// `[P, Tp*Da]`, normalized.
    public let chunks: [Float]
    public let windowSize: Int
    public let chunkSize: Int

    public init(dataset: EpisodeDataset, spec: PolicySpec, observationNormalizer: MinMaxNormalizer,
                actionNormalizer: MinMaxNormalizer) {
        let sampler = SequenceSampler(
            dataset: dataset, observationSteps: spec.observationSteps, predictionSteps: spec.predictionSteps,
            actionSteps: spec.actionSteps)
        let windowSize = spec.observationSteps * spec.observationDimensions
        let chunkSize = spec.predictionSteps * spec.actionDimensions
        self.windowSize = windowSize
        self.chunkSize = chunkSize
        count = sampler.count
        let observations = observationNormalizer.normalized(dataset.observations)
        let actions = actionNormalizer.normalized(dataset.actions)
        var windows = [Float](repeating: 0, count: sampler.count * windowSize)
        var chunks = [Float](repeating: 0, count: sampler.count * chunkSize)
        observations.withUnsafeBufferPointer { o in
            actions.withUnsafeBufferPointer { a in
                windows.withUnsafeMutableBufferPointer { w in
                    chunks.withUnsafeMutableBufferPointer { c in
                        for pair in 0..<sampler.count {
                            sampler.fill(
                                pair: pair, observations: o.baseAddress!,
                                observationDimensions: spec.observationDimensions,
                                actions: a.baseAddress!, actionDimensions: spec.actionDimensions,
                                window: w.baseAddress! + pair * windowSize, chunk: c.baseAddress! + pair * chunkSize)
                        }
                    }
                }
            }
        }
        self.windows = windows
        self.chunks = chunks
    }
}

/// How `integrateBatch` solves: fixed RK4 steps, or adaptive Dormand–Prince 5(4) to a tolerance.
public enum BatchSolver: Sendable {
    case rk4(steps: Int)
    case adaptive(tolerance: Float)
}

/// Integrates `states [P, Dx]` in place through `field` from `start` to `end`, each conditioned on its window in
/// `windows [P, To*Do]`; batched and split over `workers` threads. `progress` gets the number of states done.
public func integrateBatch(
    states: inout [Float], windows: [Float], field: VelocityField, parameters: VelocityFieldParameters,
    from start: Float, to end: Float, solver method: BatchSolver, workers: Int = 1, batch: Int = 256,
    progress: ((Int) -> Void)? = nil
) throws(FlowPolicyError) {
    let Dx = field.network.configuration.chunkDimensions
    let Do = field.network.configuration.observationDimensions
    let count = states.count / Dx
    let workerCount = max(1, workers)
    let solvers = (0..<workerCount).map { _ in ODESolver(capacity: batch * Dx) }
    let caches = (0..<workerCount).map { _ in VelocityFieldCache(field: field, capacity: batch) }
    let times = (0..<workerCount).map { _ in FloatBuffer(count: batch) }
    var failure: FlowPolicyError?
    let failures = UnsafeMutableBufferPointer<FlowPolicyError?>.allocate(capacity: workerCount)
    failures.initialize(repeating: nil)
    defer { failures.deallocate() }
    windows.withUnsafeBufferPointer { windows in
        states.withUnsafeMutableBufferPointer { states in
            var first = 0
            while first < count && failure == nil {
                let last = min(first + batch * workerCount, count)
                let (windowBase, stateBase) = (windows.baseAddress!, states.baseAddress!)
                parallelFor(workerCount) { worker in
                    let rows = partition(last - first, into: workerCount, index: worker)
                    guard !rows.isEmpty else { return }
                    let row = first + rows.lowerBound
                    let observation = windowBase + row * Do
                    let timeBuffer = times[worker].pointer
                    let velocity = { (t: Float, x: UnsafePointer<Float>, v: UnsafeMutablePointer<Float>) in
                        timeBuffer.update(repeating: t, count: rows.count)
                        field.forward(x: x, t: timeBuffer, observation: observation, batch: rows.count,
                                      parameters: parameters, cache: caches[worker], output: v)
                    }
                    switch method {
                    case .rk4(let steps):
                        solvers[worker].integrate(stateBase + row * Dx, count: rows.count * Dx, from: start, to: end,
                                                  steps: steps, method: .rk4, field: velocity)
                    case .adaptive(let tolerance):
                        do throws(FlowPolicyError) {
                            try solvers[worker].integrateAdaptive(
                                stateBase + row * Dx, count: rows.count * Dx, from: start, to: end,
                                relativeTolerance: tolerance, absoluteTolerance: tolerance, field: velocity)
                        } catch { failures[worker] = error }
                    }
                }
                failure = failures.compactMap { $0 }.first
                first = last
                progress?(first)
            }
        }
    }
    if let failure { throw failure }
}

/// Encodes action chunks into the latents a flow maps onto them: `z = Ψ⁻¹(a; o)`, integrating the field backwards
/// from t = 1 to t = 0 with `steps` RK4 steps (METHODS.md section 2: the reconstruction coupling).
public func encodeLatents(
    pairs: PairSet, field: VelocityField, parameters: VelocityFieldParameters, steps: Int = 64, workers: Int = 1,
    progress: ((Int) -> Void)? = nil
) -> [Float] {
    var latents = pairs.chunks
    try! integrateBatch(states: &latents, windows: pairs.windows, field: field, parameters: parameters, from: 1, to: 0,
                        solver: .rk4(steps: steps), workers: workers, progress: progress)
    return latents
}
