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
                                pair: pair, observations: o.baseAddress!, observationDimensions: spec.observationDimensions,
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

/// Encodes action chunks into the latents a flow maps onto them: `z = Ψ⁻¹(a; o)`, integrating the field backwards
/// from t = 1 to t = 0 with `steps` RK4 steps (METHODS.md section 2: the reconstruction coupling). Batched and split
/// over `workers` threads.
public func encodeLatents(
    pairs: PairSet, field: VelocityField, parameters: VelocityFieldParameters, steps: Int = 64, workers: Int = 1,
    batch: Int = 256, progress: ((Int) -> Void)? = nil
) -> [Float] {
    var latents = pairs.chunks
    let (Dx, Do) = (pairs.chunkSize, pairs.windowSize)
    let workerCount = max(1, workers)
    let solvers = (0..<workerCount).map { _ in ODESolver(capacity: batch * Dx) }
    let caches = (0..<workerCount).map { _ in VelocityFieldCache(field: field, capacity: batch) }
    let times = (0..<workerCount).map { _ in FloatBuffer(count: batch) }
    var done = 0
    pairs.windows.withUnsafeBufferPointer { windows in
        latents.withUnsafeMutableBufferPointer { latents in
            var start = 0
            while start < pairs.count {
                let chunkEnd = min(start + batch * workerCount, pairs.count)
                let (windowBase, latentBase) = (windows.baseAddress!, latents.baseAddress!)
                parallelFor(workerCount) { worker in
                    let rows = partition(chunkEnd - start, into: workerCount, index: worker)
                    guard !rows.isEmpty else { return }
                    let first = start + rows.lowerBound
                    let observation = windowBase + first * Do
                    let timeBuffer = times[worker].pointer
                    solvers[worker].integrate(
                        latentBase + first * Dx, count: rows.count * Dx, from: 1, to: 0, steps: steps, method: .rk4
                    ) { t, x, v in
                        timeBuffer.update(repeating: t, count: rows.count)
                        field.forward(x: x, t: timeBuffer, observation: observation, batch: rows.count,
                                      parameters: parameters, cache: caches[worker], output: v)
                    }
                }
                done += chunkEnd - start
                start = chunkEnd
                progress?(done)
            }
        }
    }
    return latents
}
