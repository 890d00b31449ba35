import FlowPolicy

/// A policy served by `flowpolicy serve` on another machine, behind the same `ChunkSampler` calls as a local `Policy`
/// (the way openpi's websocket client policy stands in for a local one). Its spec, contract, solver and K come from
/// the server's `Metadata`.
///
/// Reproducibility: after `resetNoise(seed:)`, every request carries `noise_seed` (the first with `reset`), so the
/// server samples it alone on a noise stream of its own for this client, split over `workers` threads: the chunks are
/// then bit-identical to a local `Policy` with that seed and worker count. Before any `resetNoise`, requests share the
/// server's stream and may be batched with other clients'. With a noise seed per row (evaluation), each row is a
/// request of its own. Each call sends full windows and the K asked for.
///
/// Camera frames (a policy with cameras: Metadata lists them) travel raw in `Infer.frames`, every window's To steps.
///
/// A reply of the wrong shape, or with non-finite numbers, is an error naming both shapes; nothing is copied.
public final class RemotePolicy: ChunkSampler {
    public let endpoint: String
    public let metadata: Wire.Metadata
    public let spec: PolicySpec
    public let contract: DeploymentContract?
    public let solver: SolverMethod
    public var solverSteps: Int
    public let capacity: Int
    /// Threads the server splits a seeded request over (it changes rounding, so match the local run's).
    public var workers = 1
    private let client: PolicyClient
    private var noiseSeed: UInt64?
    private var resetPending = false
    private var episode: UInt64 = 0

    /// Connects (with `security`) and asks for the server's `Metadata`; fails after `timeoutMilliseconds` if nothing
    /// answers.
    public init(context: ZMQContext, endpoint: String, timeoutMilliseconds: Int = 5_000,
                security: SocketSecurity = .none) throws {
        self.endpoint = endpoint
        client = try PolicyClient(context: context, endpoint: endpoint, timeoutMilliseconds: timeoutMilliseconds,
                                  security: security)
        let metadata = try client.metadata()
        self.metadata = metadata
        guard let solver = SolverMethod(rawValue: metadata.solver) else {
            throw RuntimeError.unexpectedReply("Metadata names an unknown solver \"\(metadata.solver)\"")
        }
        self.solver = solver
        spec = PolicySpec(
            task: metadata.task, observationSteps: Int(metadata.observationSteps),
            actionSteps: Int(metadata.actionSteps), predictionSteps: Int(metadata.predictionSteps),
            observationDimensions: Int(metadata.observationDimensions),
            actionDimensions: Int(metadata.actionDimensions), cameras: CameraFrames.cameras(metadata.cameras))
        do { try spec.validate() } catch { throw RuntimeError.unexpectedReply("Metadata: \(error)") }
        contract = metadata.contractJson.isEmpty ? nil : try DeploymentContract(
            json: metadata.contractJson, source: "the Metadata of \(endpoint)",
            observationDimensions: spec.observationDimensions, actionDimensions: spec.actionDimensions)
        solverSteps = Int(max(metadata.solverSteps, 1))
        capacity = Int(max(metadata.maxBatch, 1))
    }

    public var evaluationsPerChunk: Int { solverSteps * solver.evaluationsPerStep }

    public func sampleChunks(observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, batch B: Int,
                             into chunks: UnsafeMutablePointer<Float>, committed: UnsafePointer<Float>?,
                             committedSteps: Int) throws {
        precondition(B >= 1 && B <= capacity, "batch \(B) outside 1...\(capacity)")
        var infer = Wire.Infer()
        infer.episodeID = episode
        infer.reset = resetPending
        if let committed, committedSteps > 0 {
            let count = B * committedSteps * spec.actionDimensions
            infer.committed = Array(UnsafeBufferPointer(start: committed, count: count))
            infer.committedSteps = UInt32(committedSteps)
        }
        if let noiseSeed {
            infer.noiseSeed = noiseSeed
            infer.workers = UInt32(workers)
        }
        try request(infer, observations: observations, frames: frames, batch: B, into: chunks)
        resetPending = false
    }

    /// One request per row, each sampled alone on a stream started from its seed (`reset`, one worker): bit-identical
    /// to a local `Policy` given the same seeds.
    public func sampleChunks(observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, batch B: Int,
                             into chunks: UnsafeMutablePointer<Float>, noiseSeeds: UnsafePointer<UInt64>) throws {
        precondition(B >= 1 && B <= capacity, "batch \(B) outside 1...\(capacity)")
        let (window, chunk) = (spec.observationSteps * spec.observationDimensions,
                               spec.predictionSteps * spec.actionDimensions)
        for row in 0..<B {
            var infer = Wire.Infer()
            infer.episodeID = noiseSeeds[row]
            infer.reset = true
            infer.noiseSeed = noiseSeeds[row]
            infer.workers = 1
            try request(infer, observations: observations + row * window,
                        frames: frames.map { $0 + row * spec.observationSteps * spec.frameBytesPerStep }, batch: 1,
                        into: chunks + row * chunk)
        }
    }

    /// Sends `infer` with the windows (and their frames) and K, and copies the reply's chunks after checking their
    /// shape and numbers.
    private func request(_ infer: Wire.Infer, observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?,
                         batch B: Int, into chunks: UnsafeMutablePointer<Float>) throws {
        let (To, Tp, Do, Da) = (spec.observationSteps, spec.predictionSteps, spec.observationDimensions,
                                spec.actionDimensions)
        var infer = infer
        infer.observations = Array(UnsafeBufferPointer(start: observations, count: B * To * Do))
        infer.observationSteps = UInt32(To)
        infer.batch = UInt32(B)
        infer.solverSteps = UInt32(solverSteps)
        if !spec.cameras.isEmpty {
            guard let frames else {
                throw RuntimeError.invalidConfiguration("the policy served at \(endpoint) takes camera frames ("
                    + "\(CameraFrames.describe(spec.cameras))); none were given")
            }
            infer.frames = CameraFrames.make(frames, cameras: spec.cameras, steps: B * To)
        }
        let chunk = try client.infer(infer)
        func shape() -> String {
            "[\(chunk.batch), \(chunk.predictionSteps), \(chunk.actionDimensions)] (\(chunk.actions.count) numbers)"
        }
        guard chunk.batch == B, chunk.predictionSteps == Tp, chunk.actionDimensions == Da,
              chunk.actions.count == B * Tp * Da
        else {
            throw RuntimeError.unexpectedReply("the ActionChunk is \(shape()); the policy's is [\(B), \(Tp), \(Da)]")
        }
        guard chunk.actions.allSatisfy(\.isFinite) else {
            throw RuntimeError.unexpectedReply("the ActionChunk \(shape()) holds a non-finite number")
        }
        chunk.actions.withUnsafeBufferPointer { chunks.update(from: $0.baseAddress!, count: B * Tp * Da) }
    }

    public func resetNoise(seed: UInt64) {
        noiseSeed = seed
        resetPending = true
        episode &+= 1
    }
}
