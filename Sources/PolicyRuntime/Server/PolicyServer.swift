import FlowPolicy
import Foundation

/// `flowpolicy serve`: the inference service. One ROUTER socket; requests `MetadataRequest`, `Infer` and `Ping`,
/// answered with `Metadata`, `ActionChunk`, `Pong` or `Error`, each reply carrying the sequence number of its request.
///
/// Metadata: the policy's spec, solver and K, and its deployment contract (rate, bounds, limits; the JSON in
/// `contract_json`), so a client needs nothing else. A checkpoint without a contract is refused.
///
/// Batching: the server never waits to fill a batch. It serves on one thread; the requests that arrived while it
/// was sampling are taken together, and those that can share a call (no noise seed, the same number of committed
/// steps) are sampled in one batched `Policy` call of up to `maxBatch` windows. A batched call costs much less than
/// the same calls one after another, so this lowers every waiting client's latency and adds nothing for a lone client.
///
/// Windows: a request may carry full windows (`To` observations) or only the newest observation, which the server
/// appends to the window it keeps for (client routing id, episode id); `reset` starts the episode's window again.
/// Requests with a `noise_seed` are sampled alone, on a noise stream kept for (client, episode), so they are exactly
/// reproducible (see the .proto). A request may ask for fewer solver steps than the server's K (deadline-aware
/// sampling); requests batch together only with the same K.
///
/// Camera frames: a policy with cameras takes each window's frames in `Infer.frames` (raw uint8, checked against the
/// cameras Metadata lists, and copied into a batch buffer made at start-up); with only the newest observation, the
/// newest frames, kept in a frame window beside the observation window.
///
/// Bad input — a frame that is not an envelope, another protocol version, wrong sizes, NaN observations, a message
/// the server does not take — gets an `Error` reply naming the problem; the server goes on serving everyone.
///
/// Fairness and memory: each turn reads at most `messagesPerTurn` messages (ZeroMQ's ROUTER takes them from its
/// peers in turn), samples its Infer requests first and only then answers the rest (errors, Metadata, Pong), and
/// samples at most `maxRequestsPerClient` Infer requests of one client; of the requests refused before sampling (bad
/// input, or over the client's share: `RESOURCE_EXHAUSTED`), one per client per turn is answered and the others are
/// counted, so a flooding client delays only itself. Messages
/// larger than the largest valid one are refused by libzmq (`ZMQ_MAXMSGSIZE`, the peer is disconnected), queues per
/// peer are short, and the state kept is bounded: at most `maxClients` clients (the longest idle one, if idle for
/// `clientIdleSeconds`, makes room; else the newcomer gets `RESOURCE_EXHAUSTED`), windows and seeded noise streams in
/// least-recently-used caches.
///
/// What it sends: a chunk with a non-finite number is an `Error{NON_FINITE}`, never a reply; a chunk outside the
/// contract's action bounds is clipped to them or refused (`OUT_OF_BOUNDS`), as configured, and counted.
///
/// `run()` uses the socket and the policies from one thread; `stop()` and `statistics` may be called from any.
public final class PolicyServer: @unchecked Sendable {
    public struct Options: Sendable {
        public var endpoint: String
        public var method = SolverMethod.euler
        public var steps = 10
        /// The number format of the network's matrix products (`Precision`).
        public var precision = Precision.fp32
        /// Most windows in one call (a request may not carry more).
        public var maxBatch = 256
        /// Threads one batched call is split over.
        public var workers = 1
        /// Merge concurrent requests into one call (off: one call per request, for comparison).
        public var batching = true
        /// Seed of the shared noise stream (requests without `noise_seed`).
        public var seed: UInt64 = 0
        /// Shown in Metadata.
        public var checkpointName = ""
        /// Server-side windows and seeded noise streams kept (least recently used ones are forgotten).
        public var maxEpisodes = 4096
        public var maxSeededStreams = 16
        /// Who may connect: CURVE keys and allow-list, or plain ZeroMQ on loopback.
        public var credentials = Credentials.none
        /// Fairness: messages read per turn, and Infer requests of one client sampled per turn. A short turn keeps
        /// a flood's share of each turn small (the storm figures: 16 kept a good client's p99 within 3x, 64 did not).
        public var messagesPerTurn = 16
        public var maxRequestsPerClient = 4
        /// Clients whose state is kept, and how long one must be idle to make room for a new one.
        public var maxClients = 64
        public var clientIdleSeconds = 5.0
        /// A chunk outside the contract's action bounds: clipped to them (counted), or refused.
        public var clipsOutOfBounds = true

        public init(endpoint: String) {
            self.endpoint = endpoint
        }
    }

    /// What the server did, for reports and tests.
    public struct Statistics: Codable, Sendable, Equatable {
        public var requests = 0
        public var inferRequests = 0
        public var errors = 0
        /// Batched policy calls and the windows they sampled.
        public var calls = 0
        public var windows = 0
        public var largestCall = 0
        /// Chunks answered with an error because a number was not finite; chunks clipped to, or refused for leaving,
        /// the contract's bounds; requests turned away for want of room (a client over its share, too many clients).
        public var nonFiniteChunks = 0
        public var clippedChunks = 0
        public var refusedChunks = 0
        public var exhausted = 0
        /// Refused requests not answered because their client had had its error for the turn.
        public var unansweredErrors = 0
    }

    /// Makes a sampler of the checkpoint's policy: the shared one (`capacity` = max batch, the options' seed and
    /// workers) and one per seeded noise stream.
    public typealias SamplerFactory = (_ capacity: Int, _ seed: UInt64, _ workers: Int) -> any ChunkSampler

    public let checkpoint: Checkpoint
    public let options: Options
    private let makeSampler: SamplerFactory
    public let metadata: Wire.Metadata
    public let socket: ZMQSocket
    /// The bound endpoint, wildcards resolved.
    public let endpoint: String
    /// The context's authentication (CURVE), when the server has keys.
    public let authentication: ZAPHandler?

    private let policy: any ChunkSampler
    private let poller = ZMQPoller(capacity: 1)
    private let lock = NSLock()
    private var stopRequested = false
    private var statisticsStore = Statistics()
    private var windows: [EpisodeKey: (window: ObservationWindow, frames: FrameWindow, lastUse: UInt64)] = [:]
    private var seededStreams: [EpisodeKey: (policy: any ChunkSampler, lastUse: UInt64)] = [:]
    private var useCounter: UInt64 = 0
    /// Replies that wait until the turn's requests are sampled, and the clients told of an error this turn.
    private var outbox: [(routing: [[UInt8]], envelope: Wire.Envelope)] = []
    private var errorsThisTurn: Set<[UInt8]> = []
    private var deferringReplies = false
    /// When each client was last heard from (monotonic ns).
    private var clients: [[UInt8]: UInt64] = [:]
    private let contract: DeploymentContract
    /// The contract's action bounds, which every chunk sent keeps to.
    private let bounds: SafetyLimits
    private let (To, Ta, Tp, Do, Da): (Int, Int, Int, Int, Int)
    /// The policy's cameras and the bytes of one observation step's frames (0 without cameras).
    private let cameras: [CameraSpec]
    private let frameBytes: Int
    // Batch buffers, [maxBatch, ...].
    private let observations: FloatBuffer
    private let committed: FloatBuffer
    private let predictions: FloatBuffer
    /// `[maxBatch, To, frameBytes]`, and one step's frames `[frameBytes]` (a request with only the newest step).
    private let frames: UnsafeMutablePointer<UInt8>
    private let stepFrames: UnsafeMutablePointer<UInt8>

    struct EpisodeKey: Hashable {
        var client: [UInt8]
        var episode: UInt64
    }

    struct PendingInfer {
        var routing: [[UInt8]]
        var sequence: UInt64
        var episode: UInt64
        var key: EpisodeKey
        var batch: Int
        /// `[batch, To, Do]`.
        var windows: [Float]
        /// The camera frames: `Infer.frames` of full windows (checked), or the episode's frame window `[To,
        /// frameBytes]` for a request with only the newest step.
        var cameraFrames: [Wire.CameraFrame]
        var frameWindow: [UInt8]?
        var committed: [Float]
        var committedSteps: Int
        var noiseSeed: UInt64?
        var reset: Bool
        var workers: Int
        var solverSteps: Int
        var received: UInt64
        var observationTimestamp: UInt64
    }

    /// `makeSampler`: the samplers to serve with (default: a `Policy` of `checkpoint` with the options' solver and K;
    /// tests give a double that records what it is asked).
    public init(checkpoint: Checkpoint, options: Options, context: ZMQContext, makeSampler: SamplerFactory? = nil)
        throws
    {
        guard options.maxBatch >= 1, options.steps >= 1, options.workers >= 1 else {
            throw RuntimeError.invalidConfiguration("max batch, solver steps and workers must be at least 1")
        }
        self.checkpoint = checkpoint
        self.options = options
        let spec = checkpoint.spec
        (To, Ta, Tp, Do, Da) = (spec.observationSteps, spec.actionSteps, spec.predictionSteps,
                                spec.observationDimensions, spec.actionDimensions)
        cameras = spec.cameras
        frameBytes = spec.frameBytesPerStep
        metadata = try Self.makeMetadata(checkpoint: checkpoint, options: options)
        contract = checkpoint.contract!  // makeMetadata refused a checkpoint without one
        bounds = try SafetyLimits(contract: contract)
        // Each worker samples with single-threaded OpenBLAS (OpenBLAS's own threads would spin beside them).
        BLAS.threads = 1
        self.makeSampler = makeSampler ?? { capacity, seed, workers in
            Policy(checkpoint: checkpoint, capacity: capacity, method: options.method, steps: options.steps,
                   seed: seed, workers: workers, precision: options.precision)
        }
        policy = self.makeSampler(options.maxBatch, options.seed, options.workers)
        observations = FloatBuffer(count: options.maxBatch * To * Do)
        committed = FloatBuffer(count: options.maxBatch * Tp * Da)
        predictions = FloatBuffer(count: options.maxBatch * Tp * Da)
        frames = .allocate(capacity: max(options.maxBatch * To * frameBytes, 1))
        frames.initialize(repeating: 0, count: max(options.maxBatch * To * frameBytes, 1))
        stepFrames = .allocate(capacity: max(frameBytes, 1))
        stepFrames.initialize(repeating: 0, count: max(frameBytes, 1))
        authentication = try options.credentials.startAuthentication(context)
        socket = try ZMQSocket(.router, context: context)
        try options.credentials.serverSecurity(binding: options.endpoint, authentication: authentication)
            .apply(to: socket)
        // The largest valid message: a full batch of windows, their frames and committed actions, with room for the
        // rest (each frame's header among it).
        let frameHeaders = options.maxBatch * To * spec.cameras.reduce(0) { $0 + 32 + $1.name.utf8.count }
        let largest = 4 * options.maxBatch * (To * Do + Tp * Da) + options.maxBatch * To * frameBytes + frameHeaders
            + 64 * 1024
        try socket.setOption(.maxMessageSize, Int64(largest))
        try socket.setOption(.sendHighWaterMark, 100)
        try socket.setOption(.receiveHighWaterMark, 100)
        try socket.bind(options.endpoint)
        endpoint = try socket.lastEndpoint ?? options.endpoint
        _ = try poller.register(socket)
    }

    deinit {
        frames.deallocate()
        stepFrames.deallocate()
    }

    static func makeMetadata(checkpoint: Checkpoint, options: Options) throws -> Wire.Metadata {
        let spec = checkpoint.spec
        var metadata = Wire.Metadata()
        metadata.protocolVersion = Wire.version
        metadata.task = spec.task
        metadata.observationSteps = UInt32(spec.observationSteps)
        metadata.actionSteps = UInt32(spec.actionSteps)
        metadata.predictionSteps = UInt32(spec.predictionSteps)
        metadata.observationDimensions = UInt32(spec.observationDimensions)
        metadata.actionDimensions = UInt32(spec.actionDimensions)
        metadata.solver = options.method.rawValue
        metadata.solverSteps = UInt32(options.steps)
        metadata.maxBatch = UInt32(options.maxBatch)
        metadata.checkpoint = options.checkpointName
        metadata.method = checkpoint.method
        metadata.datasetSeeds = checkpoint.provenance["dataset_seeds"] ?? ""
        guard let contract = checkpoint.contract else {
            throw RuntimeError.missingContract(
                path: options.checkpointName.isEmpty ? "the checkpoint" : options.checkpointName)
        }
        metadata.controlRateHz = contract.controlRateHz
        metadata.actionLow = contract.actionLow
        metadata.actionHigh = contract.actionHigh
        metadata.maxStepChange = contract.maximumStepChange
        metadata.contractJson = contract.json
        metadata.cameras = CameraFrames.info(spec.cameras)
        return metadata
    }

    public var statistics: Statistics { lock.withLock { statisticsStore } }

    /// Ends `run` within one poll interval; callable from any thread.
    public func stop() { lock.withLock { stopRequested = true } }

    private var shouldStop: Bool { lock.withLock { stopRequested } }

    /// Serves until `stop()`.
    public func run() throws {
        while !shouldStop { try serve(timeout: .milliseconds(20)) }
    }

    /// Waits up to `timeout` for requests, then takes every request waiting on the socket, answers the quick ones
    /// and samples the rest (batched). `run()` calls it in a loop; tests call it directly.
    public func serve(timeout: ZMQTimeout) throws {
        guard try poller.poll(timeout: timeout) > 0 else { return }
        deferringReplies = true
        defer {
            deferringReplies = false
            for (routing, envelope) in outbox { reply(routing, envelope) }
            outbox.removeAll(keepingCapacity: true)
            errorsThisTurn.removeAll(keepingCapacity: true)
        }
        var pending: [PendingInfer] = []
        var perClient: [[UInt8]: Int] = [:]
        for _ in 0..<options.messagesPerTurn {
            guard let frames = try socket.receiveMultipart(flags: .dontWait) else { break }
            count { $0.requests += 1 }
            if let infer = handle(frames, perClient: &perClient) { pending.append(infer) }
        }
        guard !pending.isEmpty else { return }
        // Reproducible requests alone, on their own noise streams; the others batched where they can share a call
        // (the same committed steps and K).
        for request in pending where request.noiseSeed != nil { sampleSeeded(request) }
        let shared = pending.filter { $0.noiseSeed == nil }
        if options.batching {
            let kinds = Set(shared.map { [$0.committedSteps, $0.solverSteps] })
                .sorted { $0.lexicographicallyPrecedes($1) }
            for kind in kinds {
                var group: [PendingInfer] = []
                var rows = 0
                for request in shared where [request.committedSteps, request.solverSteps] == kind {
                    if rows + request.batch > options.maxBatch {
                        sampleShared(group)
                        group = []
                        rows = 0
                    }
                    group.append(request)
                    rows += request.batch
                }
                if !group.isEmpty { sampleShared(group) }
            }
        } else {
            for request in shared { sampleShared([request]) }
        }
    }

    private func count(_ update: (inout Statistics) -> Void) {
        lock.withLock { update(&statisticsStore) }
    }

    // MARK: Requests

    /// Answers a request at once, or returns the Infer to sample (counted in `perClient`, the client's Infer requests
    /// taken this turn).
    private func handle(_ frames: [[UInt8]], perClient: inout [[UInt8]: Int]) -> PendingInfer? {
        // ROUTER: the routing id, then (REQ clients) an empty delimiter, then the envelope.
        let delimited = frames.count >= 3 && frames[1].isEmpty
        let routing = Array(frames.prefix(delimited ? 2 : 1))
        let payload = frames.dropFirst(routing.count)
        var sequence: UInt64 = 0
        do {
            guard payload.count == 1, let frame = payload.first else {
                throw WireError(.malformed, "expected one frame holding an Envelope after the routing frames, got "
                    + "\(payload.count)")
            }
            let envelope = try Wire.decode(frame)
            sequence = envelope.sequence
            switch envelope.body {
            case .metadataRequest:
                reply(routing, Wire.envelope(sequence: sequence, .metadata(metadata)))
            case .ping(let ping):
                var pong = Wire.Pong()
                pong.payload = ping.payload
                reply(routing, Wire.envelope(sequence: sequence, .pong(pong)))
            case .infer(let infer):
                count { $0.inferRequests += 1 }
                guard admit(routing[0]) else {
                    throw WireError(.resourceExhausted, "this server serves \(options.maxClients) clients already; "
                        + "try again when one has been idle for \(options.clientIdleSeconds) s")
                }
                let share = perClient[routing[0], default: 0]
                guard share < options.maxRequestsPerClient else {
                    throw WireError(.resourceExhausted, "more than \(options.maxRequestsPerClient) requests from "
                        + "this client in one turn; wait for the replies")
                }
                let pending = try validate(infer, envelope: envelope, routing: routing)
                perClient[routing[0]] = share + 1
                return pending
            default:
                throw WireError(.unexpectedMessage, "the policy server takes MetadataRequest, Infer and Ping, not "
                    + "\(Wire.name(of: envelope.body))")
            }
        } catch let error as WireError {
            replyError(routing, sequence: error.sequence != 0 ? error.sequence : sequence, error, oncePerTurn: true)
        } catch {
            replyError(routing, sequence: sequence, WireError(.internal, "\(error)"), oncePerTurn: true)
        }
        return nil
    }

    private func validate(_ infer: Wire.Infer, envelope: Wire.Envelope, routing: [[UInt8]]) throws -> PendingInfer {
        let batch = max(Int(infer.batch), 1)
        guard batch <= options.maxBatch else {
            throw WireError(.invalidArgument, "batch \(batch) exceeds this server's max batch \(options.maxBatch)")
        }
        let steps = Int(infer.observationSteps)
        guard steps == To || (steps == 1 && batch == 1) else {
            throw WireError(.invalidArgument, "observation_steps must be \(To) (full windows) or 1 (the newest "
                + "observation, batch 1); got \(steps) with batch \(batch)")
        }
        guard infer.observations.count == batch * steps * Do else {
            throw WireError(.invalidArgument, "expected \(batch) x \(steps) x \(Do) = \(batch * steps * Do) "
                + "observation numbers (batch x observation_steps x Do), got \(infer.observations.count)")
        }
        if let bad = infer.observations.firstIndex(where: { !$0.isFinite }) {
            throw WireError(.nonFinite, "observation number \(bad) is \(infer.observations[bad]); observations must "
                + "be finite")
        }
        let committedSteps = Int(infer.committedSteps)
        guard committedSteps <= Tp, infer.committed.count == batch * committedSteps * Da else {
            throw WireError(.invalidArgument, "committed must hold batch x committed_steps x Da = \(batch) x "
                + "\(committedSteps) x \(Da) numbers with committed_steps <= Tp = \(Tp); got \(infer.committed.count)")
        }
        if let bad = infer.committed.firstIndex(where: { !$0.isFinite }) {
            throw WireError(.nonFinite, "committed number \(bad) is \(infer.committed[bad])")
        }
        let workers = max(Int(infer.workers), 1)
        guard workers <= 64 else { throw WireError(.invalidArgument, "workers \(workers) is more than 64") }
        let solverSteps = infer.solverSteps == 0 ? options.steps : Int(infer.solverSteps)
        guard solverSteps <= options.steps else {
            throw WireError(.invalidArgument, "solver_steps \(solverSteps) is more than this server's K = "
                + "\(options.steps)")
        }
        if cameras.isEmpty {
            guard infer.frames.isEmpty else {
                throw WireError(.invalidArgument, "this policy takes no camera frames; got \(infer.frames.count)")
            }
        } else {
            // Checked now (the reply names the request); copied into the batch buffer when sampled.
            try CameraFrames.copy(infer.frames, cameras: cameras, windows: batch, steps: steps,
                                  into: steps == 1 ? stepFrames : nil)
        }
        let key = EpisodeKey(client: routing[0], episode: infer.episodeID)
        var full = infer.observations
        var frameWindow: [UInt8]?
        if steps == 1 {
            let windowed = episodeWindow(key, observation: infer.observations, reset: infer.reset)
            full = windowed.observations
            frameWindow = windowed.frames
        }
        return PendingInfer(
            routing: routing, sequence: envelope.sequence, episode: infer.episodeID, key: key, batch: batch,
            windows: full, cameraFrames: steps == 1 ? [] : infer.frames,
            frameWindow: cameras.isEmpty ? nil : frameWindow, committed: infer.committed,
            committedSteps: committedSteps,
            noiseSeed: infer.hasNoiseSeed ? infer.noiseSeed : nil, reset: infer.reset, workers: workers,
            solverSteps: solverSteps, received: monotonicNanoseconds(),
            observationTimestamp: infer.observationTimestampNs != 0
                ? infer.observationTimestampNs : envelope.timestampNs)
    }

    /// Whether a request of `client` is served: a known client, or a new one while there is room (the longest idle
    /// client, idle long enough, gives up its place and its state).
    private func admit(_ client: [UInt8]) -> Bool {
        let now = monotonicNanoseconds()
        if clients[client] == nil, clients.count >= options.maxClients {
            guard let idle = clients.min(by: { $0.value < $1.value }),
                  Double(now - idle.value) >= options.clientIdleSeconds * 1e9
            else { return false }
            clients.removeValue(forKey: idle.key)
            windows = windows.filter { $0.key.client != idle.key }
            seededStreams = seededStreams.filter { $0.key.client != idle.key }
        }
        clients[client] = now
        return true
    }

    /// Appends `observation` (and the step's frames, in `stepFrames`) to the windows kept for `key` (starting them,
    /// filled, on reset or first use) and returns the windows.
    private func episodeWindow(_ key: EpisodeKey, observation: [Float], reset: Bool)
        -> (observations: [Float], frames: [UInt8])
    {
        useCounter += 1
        var entry = windows[key]
            ?? (ObservationWindow(steps: To, dimensions: Do), FrameWindow(steps: To, bytesPerStep: frameBytes), 0)
        observation.withUnsafeBufferPointer { pointer in
            if reset || entry.lastUse == 0 {
                entry.window.reset(to: pointer.baseAddress!)
                entry.frames.reset(to: stepFrames)
            } else {
                entry.window.push(pointer.baseAddress!)
                entry.frames.push(stepFrames)
            }
        }
        entry.lastUse = useCounter
        windows[key] = entry
        if windows.count > options.maxEpisodes, let oldest = windows.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            windows.removeValue(forKey: oldest.key)
        }
        return (entry.window.values, entry.frames.bytes)
    }

    /// Copies the frames of `request` into the batch frame buffer from window row `row` on.
    private func copyFrames(_ request: PendingInfer, row: Int) throws(WireError) {
        guard !cameras.isEmpty else { return }
        let destination = frames + row * To * frameBytes
        if let window = request.frameWindow {
            window.withUnsafeBufferPointer { destination.update(from: $0.baseAddress!, count: To * frameBytes) }
        } else {
            try CameraFrames.copy(request.cameraFrames, cameras: cameras, windows: request.batch, steps: To,
                                  into: destination)
        }
    }

    // MARK: Sampling

    private func sampleShared(_ group: [PendingInfer]) {
        let started = monotonicNanoseconds()
        var row = 0
        let committedSteps = group[0].committedSteps
        for request in group {
            do {
                try copyFrames(request, row: row)
            } catch {
                // Checked when it arrived, so this does not happen; the others in the group are still sampled.
                replyError(request.routing, sequence: request.sequence, error)
                let others = group.filter { $0.sequence != request.sequence || $0.routing != request.routing }
                if !others.isEmpty { sampleShared(others) }
                return
            }
            request.windows.withUnsafeBufferPointer {
                (observations.pointer + row * To * Do).update(from: $0.baseAddress!, count: request.batch * To * Do)
            }
            if committedSteps > 0 {
                request.committed.withUnsafeBufferPointer {
                    (committed.pointer + row * committedSteps * Da).update(
                        from: $0.baseAddress!, count: request.batch * committedSteps * Da)
                }
            }
            row += request.batch
        }
        policy.solverSteps = group[0].solverSteps
        do {
            try policy.sampleChunks(observations: observations.pointer, frames: cameras.isEmpty ? nil : frames,
                                    batch: row, into: predictions.pointer,
                                    committed: committedSteps > 0 ? committed.pointer : nil,
                                    committedSteps: committedSteps)
        } catch {
            for request in group {
                replyError(request.routing, sequence: request.sequence, WireError(.internal, "\(error)"))
            }
            return
        }
        let finished = monotonicNanoseconds()
        count {
            $0.calls += 1
            $0.windows += row
            $0.largestCall = max($0.largestCall, row)
        }
        let callBatch = row
        row = 0
        for request in group {
            replyChunk(request, rows: row, started: started, finished: finished, callBatch: callBatch,
                       steps: group[0].solverSteps)
            row += request.batch
        }
    }

    private func sampleSeeded(_ request: PendingInfer) {
        useCounter += 1
        let stream: any ChunkSampler
        if !request.reset, let existing = seededStreams[request.key] {
            stream = existing.policy
        } else {
            // Sized for this request's batch (an episode's later requests are never larger: a wave only shrinks).
            stream = makeSampler(request.batch, request.noiseSeed!, request.workers)
        }
        guard request.batch <= stream.capacity else {
            replyError(request.routing, sequence: request.sequence, WireError(
                .invalidArgument, "batch \(request.batch) exceeds the batch of this episode's first seeded request "
                    + "(\(stream.capacity)); start a new episode (reset) for a larger batch"))
            return
        }
        seededStreams[request.key] = (stream, useCounter)
        if seededStreams.count > options.maxSeededStreams,
           let oldest = seededStreams.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            seededStreams.removeValue(forKey: oldest.key)
        }
        let started = monotonicNanoseconds()
        stream.solverSteps = request.solverSteps
        do {
            try copyFrames(request, row: 0)
            try request.windows.withUnsafeBufferPointer { windows in
                try request.committed.withUnsafeBufferPointer { committedActions in
                    try stream.sampleChunks(
                        observations: windows.baseAddress!, frames: cameras.isEmpty ? nil : frames,
                        batch: request.batch, into: predictions.pointer,
                        committed: request.committedSteps > 0 ? committedActions.baseAddress : nil,
                        committedSteps: request.committedSteps)
                }
            }
        } catch let error as WireError {
            replyError(request.routing, sequence: request.sequence, error)
            return
        } catch {
            replyError(request.routing, sequence: request.sequence, WireError(.internal, "\(error)"))
            return
        }
        let finished = monotonicNanoseconds()
        count {
            $0.calls += 1
            $0.windows += request.batch
            $0.largestCall = max($0.largestCall, request.batch)
        }
        replyChunk(request, rows: 0, started: started, finished: finished, callBatch: request.batch,
                   steps: request.solverSteps)
    }

    private func replyChunk(_ request: PendingInfer, rows first: Int, started: UInt64, finished: UInt64,
                            callBatch: Int, steps: Int) {
        // What leaves the server is finite and within the contract's bounds (clipped, or refused).
        let rows = predictions.pointer + first * Tp * Da
        if let bad = (0..<(request.batch * Tp * Da)).first(where: { !rows[$0].isFinite }) {
            count { $0.nonFiniteChunks += 1 }
            replyError(request.routing, sequence: request.sequence, WireError(
                .nonFinite, "the policy produced a non-finite action (\(rows[bad])); the checkpoint or the observation "
                    + "is broken"))
            return
        }
        if bounds.clamp(rows, rows: request.batch * Tp) > 0 {
            guard options.clipsOutOfBounds else {
                count { $0.refusedChunks += 1 }
                replyError(request.routing, sequence: request.sequence, WireError(
                    .outOfBounds, "the policy's chunk leaves the action bounds [\(contract.actionLow), "
                        + "\(contract.actionHigh)] of its deployment contract"))
                return
            }
            count { $0.clippedChunks += 1 }
        }
        var chunk = Wire.ActionChunk()
        chunk.episodeID = request.episode
        chunk.batch = UInt32(request.batch)
        chunk.predictionSteps = UInt32(Tp)
        chunk.actionDimensions = UInt32(Da)
        chunk.actions = Array(UnsafeBufferPointer(start: predictions.pointer + first * Tp * Da,
                                                  count: request.batch * Tp * Da))
        chunk.firstActionIndex = UInt32(To - 1)
        chunk.actionSteps = UInt32(Ta)
        chunk.dt = metadata.controlRateHz > 0 ? 1 / metadata.controlRateHz : 0
        chunk.startTimestampNs = request.observationTimestamp
        var timing = Wire.Timing()
        timing.inferenceMs = Double(finished - started) / 1e6
        timing.queueMs = Double(started > request.received ? started - request.received : 0) / 1e6
        timing.solver = options.method.rawValue
        timing.solverSteps = UInt32(steps)
        timing.batch = UInt32(callBatch)
        chunk.timing = timing
        reply(request.routing, Wire.envelope(sequence: request.sequence, .actionChunk(chunk)))
    }

    /// `oncePerTurn`: a refused request; a client sending them in bulk hears about it once a turn, and the server
    /// does not spend the turn answering it.
    private func replyError(_ routing: [[UInt8]], sequence: UInt64, _ error: WireError, oncePerTurn: Bool = false) {
        if error.code == .resourceExhausted { count { $0.exhausted += 1 } }
        if oncePerTurn, !errorsThisTurn.insert(routing[0]).inserted {
            count { $0.unansweredErrors += 1 }
            return
        }
        count { $0.errors += 1 }
        reply(routing, Wire.errorEnvelope(sequence: sequence, error))
    }

    /// Sends without waiting: a client that does not read its replies loses them instead of stalling the others.
    private func reply(_ routing: [[UInt8]], _ envelope: Wire.Envelope) {
        if deferringReplies && !envelope.isActionChunk {
            outbox.append((routing, envelope))
            return
        }
        _ = try? socket.sendMultipart(routing + [Wire.encode(envelope)], flags: .dontWait)
    }
}

extension Wire.Envelope {
    var isActionChunk: Bool {
        if case .actionChunk = body { return true }
        return false
    }
}
