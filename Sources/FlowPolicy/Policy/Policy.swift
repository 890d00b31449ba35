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
/// All buffers are allocated at construction for up to `capacity` windows; `predictAction` into caller buffers
/// allocates nothing. Not thread-safe: one policy per thread.
public final class Policy {
    public let checkpoint: Checkpoint
    public let capacity: Int
    /// Solver and number of steps K, chosen at run time.
    public var method: SolverMethod
    public var steps: Int
    private var generator: RandomSource

    private let solver: ODESolver
    private let cache: ResMLPFiLMCache
    private let window: FloatBuffer  // [B, To*Do] normalized
    private let state: FloatBuffer  // [B, Dx]
    private let times: FloatBuffer  // [B]

    public var spec: PolicySpec { checkpoint.spec }
    /// Velocity evaluations per chunk.
    public var evaluationsPerChunk: Int { steps * method.evaluationsPerStep }

    public init(checkpoint: Checkpoint, capacity: Int = 1, method: SolverMethod = .euler, steps: Int = 10,
                seed: UInt64 = 0) {
        precondition(capacity >= 1 && steps >= 1)
        self.checkpoint = checkpoint
        self.capacity = capacity
        self.method = method
        self.steps = steps
        generator = RandomSource(seed: seed)
        let configuration = checkpoint.network.configuration
        solver = ODESolver(capacity: capacity * configuration.chunkDimensions)
        cache = ResMLPFiLMCache(network: checkpoint.network, capacity: capacity)
        window = FloatBuffer(count: capacity * configuration.observationDimensions)
        state = FloatBuffer(count: capacity * configuration.chunkDimensions)
        times = FloatBuffer(count: capacity)
        _ = BLAS.coreType
    }

    /// Restarts the noise stream (for reproducible episodes).
    public func reset(seed: UInt64) {
        generator = RandomSource(seed: seed)
    }

    /// Samples one chunk per window. `observations [B, To, Do]` raw; writes `action [B, Ta, Da]` and, if given,
    /// `actionPrediction [B, Tp, Da]`, both raw (denormalized).
    public func predictAction(
        observations: UnsafePointer<Float>, batch B: Int, action: UnsafeMutablePointer<Float>,
        actionPrediction: UnsafeMutablePointer<Float>? = nil
    ) {
        precondition(B >= 1 && B <= capacity, "batch \(B) outside 1...\(capacity)")
        let Dx = checkpoint.network.configuration.chunkDimensions
        generator.fillGaussian(state.pointer, count: B * Dx)
        sampleChunks(observations: observations, batch: B)
        let (To, Ta, Tp, Da) = (spec.observationSteps, spec.actionSteps, spec.predictionSteps, spec.actionDimensions)
        checkpoint.actionNormalizer.denormalize(state.pointer, rows: B * Tp)
        for row in 0..<B {
            let chunk = state.pointer + row * Dx
            (action + row * Ta * Da).update(from: chunk + (To - 1) * Da, count: Ta * Da)
            actionPrediction.map { ($0 + row * Dx).update(from: chunk, count: Dx) }
        }
    }

    /// Allocating convenience: `observations [B, To, Do]` → `(action [B, Ta, Da], actionPrediction [B, Tp, Da])`.
    public func predictAction(observations: [Float], batch B: Int = 1) -> (action: [Float], actionPrediction: [Float]) {
        precondition(observations.count == B * spec.observationSteps * spec.observationDimensions,
                     "expected \(B) x \(spec.observationSteps) x \(spec.observationDimensions) observations")
        var action = [Float](repeating: 0, count: B * spec.actionSteps * spec.actionDimensions)
        var prediction = [Float](repeating: 0, count: B * spec.predictionSteps * spec.actionDimensions)
        observations.withUnsafeBufferPointer { o in
            action.withUnsafeMutableBufferPointer { a in
                prediction.withUnsafeMutableBufferPointer { p in
                    predictAction(observations: o.baseAddress!, batch: B, action: a.baseAddress!,
                                  actionPrediction: p.baseAddress!)
                }
            }
        }
        return (action, prediction)
    }

    /// Integrates the normalized chunks in `state` from t = 0 to 1, conditioned on the raw `observations`.
    private func sampleChunks(observations: UnsafePointer<Float>, batch B: Int) {
        let configuration = checkpoint.network.configuration
        let windowSize = configuration.observationDimensions
        window.pointer.update(from: observations, count: B * windowSize)
        checkpoint.observationNormalizer.normalize(window.pointer, rows: B * spec.observationSteps)
        let network = checkpoint.network
        let parameters = UnsafePointer(checkpoint.parameters.pointer)
        let (window, times, cache) = (self.window.pointer, self.times.pointer, self.cache)
        solver.integrate(
            state.pointer, count: B * configuration.chunkDimensions, from: 0, to: 1, steps: steps, method: method
        ) { t, x, v in
            times.update(repeating: t, count: B)
            network.forward(
                x: x, t: times, observation: window, batch: B, parameters: parameters, cache: cache, output: v)
        }
    }
}
