import ArgumentParser
import FlowPolicy
import Foundation
import FlowPolicyCLI
import PolicyLab
import PolicyRuntime
import SimBridge

struct BenchServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Observation-to-chunk round trips through the policy server on TCP loopback.",
        discussion: """
            Starts `flowpolicy serve` in this process (one worker) and measures closed-loop round trips from 1 and \
            8 client threads against the same policy's in-process inference latency (batch 1, one thread).
            """)

    @Option(help: "Checkpoint (default: the shipped Push-T policy).")
    var checkpoint: String?

    @OptionGroup var sampling: SolverOptions

    @Option(parsing: .unconditional, help: "Requests per client.")
    var requests: Int = 500

    @Option(parsing: .unconditional, help: "Client counts to measure, comma-separated.")
    var clients: String = "1,8"

    @Flag(name: .customLong("no-batching"), help: "Serve every request on its own.")
    var noBatching = false

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.integer("--requests", requests, in: 1...1_000_000)
        _ = try clientCounts()
        try Check.inputFile("--checkpoint", checkpoint)
    }

    /// `--clients` as whole numbers of client threads.
    private func clientCounts() throws -> [Int] {
        let counts = try parseNumbers(clients, name: "--clients")
        guard counts.allSatisfy({ $0 == $0.rounded() && $0 >= 1 && $0 <= 256 }) else {
            throw ValidationError("--clients takes whole numbers in 1...256, comma-separated, got \"\(clients)\"")
        }
        return counts.map { Int($0) }
    }

    func run() throws {
        try reportingErrors {
            var settings = ServeBenchmark.Settings()
            settings.method = sampling.solver
            settings.steps = sampling.steps
            settings.requests = requests
            settings.batching = !noBatching
            settings.clientCounts = try clientCounts()
            let path = try checkpoint ?? shippedPolicy(task: TaskDescription.named("pusht"))
            let r = try ServeBenchmark.run(checkpointPath: path, settings: settings) {
                FileHandle.standardError.write(Data("bench: \($0)\n".utf8))
            }
            var lines = [
                "policy server on \(r.endpoint): \(r.checkpoint), \(r.solver) K=\(r.steps), "
                    + "batching \(r.batching ? "on" : "off")",
                String(format: "  in-process inference    p50 %.3f ms  p99 %.3f ms", r.inferenceMilliseconds.p50,
                       r.inferenceMilliseconds.p99),
            ]
            for c in r.results {
                lines.append(String(
                    format: "  %d client%@ round trip  p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  %.0f requests/s  "
                        + "(mean server batch %.2f)", c.clients, c.clients == 1 ? " " : "s",
                    c.roundTripMilliseconds.p50, c.roundTripMilliseconds.p99, c.roundTripMilliseconds.p999,
                    c.requestsPerSecond, c.meanServerBatch))
                lines.append(String(
                    format: "            server sampling p50 %.3f ms  p99 %.3f ms; "
                        + "round-trip p99 - sampling p99 = %+.3f ms; transport per request p50 %.3f ms  p99 %.3f ms",
                    c.serverInferenceMilliseconds.p50, c.serverInferenceMilliseconds.p99, c.p99OverheadMilliseconds,
                    c.transportMilliseconds.p50, c.transportMilliseconds.p99))
            }
            lines.append("  load average (1, 5, 15 min) after: \(r.loadAverage)")
            print(lines.joined(separator: "\n"))
            if let json = report.json { try writeJSONReport(r, to: json) }
        }
    }
}

struct BenchLoopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loop",
        abstract: "Streaming control: wake-up jitter, latency and missed deadlines at a fixed rate.",
        discussion: """
            Runs the control loop (inference on its own thread) at --rate for --seconds against the simulated robot \
            over ZeroMQ on loopback (or --in-process), and prints the HDR histograms and the load average.
            """)

    @Option(help: "Checkpoint (default: the shipped Push-T policy).")
    var checkpoint: String?

    @Option(parsing: .unconditional, help: "Control rate in Hz.")
    var rate: Double = 100

    @Option(parsing: .unconditional, help: "Duration in seconds.")
    var seconds: Double = 60

    @OptionGroup var sampling: SolverOptions

    @Option(name: .customLong("hand-over"), help: "Chunk hand-over: receding, ensemble or continuation.")
    var handOver: ChunkHandOver = .receding

    @Flag(name: .customLong("in-process"), help: "Drive the environment in process instead of over ZeroMQ.")
    var inProcess = false

    @Flag(help: "Ask for SCHED_FIFO scheduling and locked memory.")
    var realtime = false

    @Option(name: .customLong("spin-us"), parsing: .unconditional,
            help: "Spin this many microseconds before each deadline.")
    var spinMicroseconds: Int = 0

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.real("--rate", rate, in: .from(0.1, through: 100_000), unit: "Hz")
        try Check.real("--seconds", seconds, in: .above(0, upTo: 1e7))
        try Check.integer("--spin-us", spinMicroseconds, in: 0...100_000)
        try Check.inputFile("--checkpoint", checkpoint)
    }

    func run() throws {
        try reportingErrors {
            var settings = LoopBenchmark.Settings()
            settings.rate = rate
            settings.seconds = seconds
            settings.method = sampling.solver
            settings.steps = sampling.steps
            settings.handOver = handOver
            settings.zeroMQ = !inProcess
            settings.realTimeScheduling = realtime
            settings.spinMicroseconds = spinMicroseconds
            let path = try checkpoint ?? shippedPolicy(task: TaskDescription.named("pusht"))
            let r = try LoopBenchmark.run(checkpointPath: path, settings: settings) {
                FileHandle.standardError.write(Data("bench: \($0)\n".utf8))
            }
            print("\(r.robot), \(r.checkpoint) (\(r.solver) K=\(r.steps)), \(String(format: "%.0f", r.rateHz)) Hz for "
                  + String(format: "%.1f s", r.seconds))
            print(loopSummary(r.loop))
            print(String(format: "  allocations           %.2f per period on the loop thread", r.allocationsPerPeriod))
            print("  load average          before \(r.loadAverageBefore), after \(r.loadAverageAfter) (1, 5, 15 min)")
            if let json = report.json { try writeJSONReport(r, to: json) }
        }
    }
}
