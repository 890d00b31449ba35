import FlowPolicy

/// A policy served by `flowpolicy serve` on another machine, behind the same `ChunkSampler` calls as a local `Policy`
/// (the way openpi's websocket client policy stands in for a local one). Its spec, contract, solver and K come from
/// the server's `Metadata`.
///
/// Reproducibility: after `resetNoise(seed:)`, every request carries `noise_seed` (the first with `reset`), so the
/// server samples it alone on a noise stream of its own for this client, split over `workers` threads: the chunks are
/// then bit-identical to a local `Policy` with that seed and worker count. Before any `resetNoise`, requests share the
/// server's stream and may be batched with other clients'. Each call sends full windows and the K asked for.
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
            actionDimensions: Int(metadata.actionDimensions))
        do { try spec.validate() } catch { throw RuntimeError.unexpectedReply("Metadata: \(error)") }
        contract = metadata.contractJson.isEmpty ? nil : try DeploymentContract(
            json: metadata.contractJson, source: "the Metadata of \(endpoint)",
            observationDimensions: spec.observationDimensions, actionDimensions: spec.actionDimensions)
        solverSteps = Int(max(metadata.solverSteps, 1))
        capacity = Int(max(metadata.maxBatch, 1))
    }

    public var evaluationsPerChunk: Int { solverSteps * solver.evaluationsPerStep }

    public func sampleChunks(observations: UnsafePointer<Float>, batch B: Int, into chunks: UnsafeMutablePointer<Float>,
                             committed: UnsafePointer<Float>?, committedSteps: Int) throws {
        precondition(B >= 1 && B <= capacity, "batch \(B) outside 1...\(capacity)")
        let (To, Tp, Do, Da) = (spec.observationSteps, spec.predictionSteps, spec.observationDimensions,
                                spec.actionDimensions)
        var infer = Wire.Infer()
        infer.episodeID = episode
        infer.reset = resetPending
        infer.observations = Array(UnsafeBufferPointer(start: observations, count: B * To * Do))
        infer.observationSteps = UInt32(To)
        infer.batch = UInt32(B)
        if let committed, committedSteps > 0 {
            infer.committed = Array(UnsafeBufferPointer(start: committed, count: B * committedSteps * Da))
            infer.committedSteps = UInt32(committedSteps)
        }
        if let noiseSeed {
            infer.noiseSeed = noiseSeed
            infer.workers = UInt32(workers)
        }
        infer.solverSteps = UInt32(solverSteps)
        let chunk = try client.infer(infer)
        resetPending = false
        let shape = "[\(chunk.batch), \(chunk.predictionSteps), \(chunk.actionDimensions)] "
            + "(\(chunk.actions.count) numbers)"
        guard chunk.batch == B, chunk.predictionSteps == Tp, chunk.actionDimensions == Da,
              chunk.actions.count == B * Tp * Da
        else {
            throw RuntimeError.unexpectedReply("the ActionChunk is \(shape); the policy's is [\(B), \(Tp), \(Da)]")
        }
        guard chunk.actions.allSatisfy(\.isFinite) else {
            throw RuntimeError.unexpectedReply("the ActionChunk \(shape) holds a non-finite number")
        }
        chunk.actions.withUnsafeBufferPointer { chunks.update(from: $0.baseAddress!, count: B * Tp * Da) }
    }

    public func resetNoise(seed: UInt64) {
        noiseSeed = seed
        resetPending = true
        episode &+= 1
    }
}
