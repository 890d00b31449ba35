import FlowPolicy
import PolicyRuntime
import Foundation
import SimBridge

/// `flowpolicy bench serve`: observation-to-chunk round trips through `flowpolicy serve` on TCP loopback, against the
/// same policy's in-process inference latency.
///
/// The server runs in this process on a thread of its own (one worker); each client is a thread with its own
/// DEALER socket sending full windows back to back (closed loop), so with several clients the server batches what
/// arrives while it samples. Each reply's own timing (the server's sampling time for that request) is set against its
/// round trip, so the overhead figures do not depend on the load changing between measurements.
public enum ServeBenchmark {
    public struct Settings: Sendable {
        public var method = SolverMethod.euler
        public var steps = 10
        public var clientCounts = [1, 8]
        /// Requests per client.
        public var requests = 500
        public var batching = true
        public var workers = 1

        public init() {}
    }

    public struct ClientFigures: Codable, Sendable {
        public var clients: Int
        public var roundTripMilliseconds: LatencySummary
        /// The server's own sampling time for the same requests (`Timing.inference_ms` of each reply).
        public var serverInferenceMilliseconds: LatencySummary
        /// Per request: round trip minus the server's sampling and queueing time (transport, encoding, waking up).
        public var transportMilliseconds: LatencySummary
        public var requestsPerSecond: Double
        /// Windows per batched call on the server.
        public var meanServerBatch: Double
        /// Round-trip p99 minus the p99 of the server's sampling time for the same requests.
        public var p99OverheadMilliseconds: Double
    }

    public struct Report: Codable, Sendable {
        public var checkpoint: String
        public var solver: String
        public var steps: Int
        public var endpoint: String
        public var inferenceMilliseconds: LatencySummary
        public var results: [ClientFigures]
        public var batching: Bool
        public var loadAverage: String
    }

    public static func run(checkpointPath: String, settings: Settings, log: (String) -> Void = { _ in }) throws
        -> Report
    {
        let checkpoint = try Checkpoint(contentsOf: checkpointPath)
        let spec = checkpoint.spec
        let window = sampleWindow(checkpoint)

        // In-process inference, batch 1, one thread: the floor the round trip is compared with.
        let policy = Policy(checkpoint: checkpoint, method: settings.method, steps: settings.steps, seed: 1)
        for _ in 0..<20 { _ = policy.predictAction(observations: window) }
        var inference: [Double] = []
        for _ in 0..<settings.requests {
            let begin = monotonicNanoseconds()
            _ = policy.predictAction(observations: window)
            inference.append(Double(monotonicNanoseconds() - begin) / 1e6)
        }
        let inferenceSummary = LatencySummary(inference)
        log(String(format: "in-process inference p50 %.3f ms, p99 %.3f ms", inferenceSummary.p50, inferenceSummary.p99))

        let context = try ZMQContext()
        var options = PolicyServer.Options(endpoint: "tcp://127.0.0.1:*")
        options.method = settings.method
        options.steps = settings.steps
        options.batching = settings.batching
        options.workers = settings.workers
        options.maxBatch = max(64, settings.clientCounts.max() ?? 1)
        let server = try PolicyServer(checkpoint: checkpoint, options: options, context: context)
        let endpoint = server.endpoint
        let serverThread = BackgroundThread(name: "bench server") { try server.run() }
        defer {
            server.stop()
            _ = try? serverThread.join()
        }

        var results: [ClientFigures] = []
        for clients in settings.clientCounts {
            let before = server.statistics
            let collected = ResultBox<[(roundTrip: Double, inference: Double, queue: Double)]>(count: clients)
            let start = monotonicNanoseconds()
            let threads = (0..<clients).map { index in
                BackgroundThread(name: "bench client \(index)") {
                    let client = try PolicyClient(context: context, endpoint: endpoint)
                    var infer = Wire.Infer()
                    infer.observations = window
                    infer.observationSteps = UInt32(spec.observationSteps)
                    infer.episodeID = UInt64(index)
                    _ = try client.infer(infer)  // connection set up and first-use costs outside the figures
                    var times: [(roundTrip: Double, inference: Double, queue: Double)] = []
                    times.reserveCapacity(settings.requests)
                    for _ in 0..<settings.requests {
                        let begin = monotonicNanoseconds()
                        let chunk = try client.infer(infer)
                        times.append((Double(monotonicNanoseconds() - begin) / 1e6, chunk.timing.inferenceMs,
                                      chunk.timing.queueMs))
                    }
                    collected.set(index, times)
                }
            }
            for thread in threads { try thread.join() }
            let seconds = Double(monotonicNanoseconds() - start) / 1e9
            let all = collected.values.flatMap { $0 ?? [] }
            let after = server.statistics
            let summary = LatencySummary(all.map(\.roundTrip))
            let server = LatencySummary(all.map(\.inference))
            let figures = ClientFigures(
                clients: clients, roundTripMilliseconds: summary, serverInferenceMilliseconds: server,
                transportMilliseconds: LatencySummary(all.map { $0.roundTrip - $0.inference - $0.queue }),
                requestsPerSecond: Double(all.count) / seconds,
                meanServerBatch: Double(after.windows - before.windows) / Double(max(after.calls - before.calls, 1)),
                p99OverheadMilliseconds: summary.p99 - server.p99)
            log(String(format: "%d client%@: round trip p50 %.3f ms, p99 %.3f ms, %.0f requests/s, mean batch %.2f",
                       clients, clients == 1 ? "" : "s", summary.p50, summary.p99, figures.requestsPerSecond,
                       figures.meanServerBatch))
            results.append(figures)
        }
        return Report(checkpoint: checkpointPath, solver: settings.method.rawValue, steps: settings.steps,
                      endpoint: endpoint, inferenceMilliseconds: inferenceSummary, results: results,
                      batching: settings.batching, loadAverage: loadAverage())
    }

    /// A window of mid-range observations (the normalizer's centre, with a little spread).
    static func sampleWindow(_ checkpoint: Checkpoint) -> [Float] {
        let spec = checkpoint.spec
        let normalizer = checkpoint.observationNormalizer
        var generator = RandomSource(seed: 7)
        return (0..<(spec.observationSteps * spec.observationDimensions)).map { i in
            let d = i % spec.observationDimensions
            let low = normalizer.minimum[d], high = normalizer.maximum[d]
            return low + (high - low) * (0.25 + 0.5 * generator.nextUniform())
        }
    }
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), to label benchmark figures.
public func loadAverage() -> String {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "unknown" }
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}

/// A thread running `body` once; `join` waits for it and rethrows what it threw.
final class BackgroundThread: @unchecked Sendable {
    // `@unchecked`: `outcome` is written by the thread before `done.signal()` and read after `done.wait()`.
    private var outcome: Result<Void, any Error> = .success(())
    private let done = DispatchSemaphore(value: 0)

    init(name: String, _ body: @escaping @Sendable () throws -> Void) {
        let thread = Thread { [self] in
            outcome = Result { try body() }
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    func join() throws {
        done.wait()
        try outcome.get()
    }
}

/// One slot per thread for results, under a lock.
final class ResultBox<Value>: @unchecked Sendable {
    // `@unchecked`: `slots` is guarded by `lock`.
    private let lock = NSLock()
    private var slots: [Value?]

    init(count: Int) { slots = [Value?](repeating: nil, count: count) }

    func set(_ index: Int, _ value: Value) { lock.withLock { slots[index] = value } }
    var values: [Value?] { lock.withLock { slots } }
}
