import FlowPolicy

/// Where action chunks come from, for evaluation, the control loop and the server alike: a `Policy` in this process,
/// or a `RemotePolicy` served by `flowpolicy serve` on another machine (openpi's `BasePolicy` and
/// `WebsocketClientPolicy` share `infer` the same way). None of the callers cares which one it holds.
///
/// Shapes: `observations [B, To, Do]` in task units, oldest first; for a policy with cameras (`spec.cameras`),
/// `frames [B, To, spec.frameBytesPerStep]` (each step's cameras in `spec.cameras` order, `uint8 [H, W, C]` each,
/// channels last), nil for a policy without; `chunks [B, Tp, Da]` in task units, index To - 1 being the action for the
/// step of the newest observation. Not thread-safe: one caller at a time.
public protocol ChunkSampler: AnyObject {
    var spec: PolicySpec { get }
    /// What a robot needs to run the policy; nil for checkpoints that predate it (evaluation in simulation only).
    var contract: DeploymentContract? { get }
    /// Most windows one call takes.
    var capacity: Int { get }
    var solver: SolverMethod { get }
    /// Solver steps K of the next call (the deadline-aware planner changes it between calls).
    var solverSteps: Int { get set }
    /// Network evaluations one chunk costs at the current K.
    var evaluationsPerChunk: Int { get }
    /// Samples one chunk per window into `chunks`. With `committed [B, P, Da]` (P = `committedSteps`), the first P
    /// steps of each chunk are held on their flow path (continuation).
    func sampleChunks(observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, batch: Int,
                      into chunks: UnsafeMutablePointer<Float>, committed: UnsafePointer<Float>?, committedSteps: Int)
        throws
    /// Restarts the sampling noise from `seed`, so that what follows is reproducible (an episode's start).
    func resetNoise(seed: UInt64)
    /// Samples one chunk per window, row r's noise drawn from a generator seeded with `noiseSeeds[r]` alone: each
    /// chunk depends on its seed and window only, whatever else is sampled with it (evaluation, sharded or not).
    func sampleChunks(observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, batch: Int,
                      into chunks: UnsafeMutablePointer<Float>, noiseSeeds: UnsafePointer<UInt64>) throws
}

extension ChunkSampler {
    /// Samples without committed actions.
    public func sampleChunks(observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>? = nil, batch: Int,
                             into chunks: UnsafeMutablePointer<Float>) throws
    {
        try sampleChunks(observations: observations, frames: frames, batch: batch, into: chunks, committed: nil,
                         committedSteps: 0)
    }

    /// Samples a policy without cameras (no frames).
    public func sampleChunks(observations: UnsafePointer<Float>, batch: Int, into chunks: UnsafeMutablePointer<Float>,
                             committed: UnsafePointer<Float>?, committedSteps: Int) throws
    {
        try sampleChunks(observations: observations, frames: nil, batch: batch, into: chunks, committed: committed,
                         committedSteps: committedSteps)
    }

    /// Samples a policy without cameras (no frames), a noise seed per row.
    public func sampleChunks(observations: UnsafePointer<Float>, batch: Int, into chunks: UnsafeMutablePointer<Float>,
                             noiseSeeds: UnsafePointer<UInt64>) throws
    {
        try sampleChunks(observations: observations, frames: nil, batch: batch, into: chunks, noiseSeeds: noiseSeeds)
    }

    /// The contract, or an error naming `source` when there is none.
    public func requireContract(source: String) throws(RuntimeError) -> DeploymentContract {
        guard let contract else { throw .missingContract(path: source) }
        return contract
    }
}

/// The local sampler: the policy itself. Allocates nothing per call.
extension Policy: ChunkSampler {
    public var contract: DeploymentContract? { checkpoint.contract }
    public var solver: SolverMethod { method }
    public var solverSteps: Int {
        get { steps }
        set { steps = newValue }
    }

    public func sampleChunks(observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, batch: Int,
                             into chunks: UnsafeMutablePointer<Float>, committed: UnsafePointer<Float>?,
                             committedSteps: Int) {
        predictAction(observations: observations, frames: frames, batch: batch, action: nil, actionPrediction: chunks,
                      committed: committed, committedSteps: committedSteps)
    }

    public func resetNoise(seed: UInt64) { reset(seed: seed) }

    public func sampleChunks(observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, batch: Int,
                             into chunks: UnsafeMutablePointer<Float>, noiseSeeds: UnsafePointer<UInt64>) {
        predictAction(observations: observations, frames: frames, batch: batch, action: nil, actionPrediction: chunks,
                      noiseSeeds: noiseSeeds)
    }
}
