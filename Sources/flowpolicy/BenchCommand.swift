import ArgumentParser
import FlowPolicy
import Foundation
import PolicyRuntime

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure speed; prints figures, asserts nothing.",
        subcommands: [BenchInferCommand.self])
}

struct BenchInferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Inference latency and throughput of a policy network, and training throughput.",
        discussion: """
            Without --checkpoint, benchmarks the reference network: ResMLP-FiLM H=512, 4 blocks, Te=64, To=2, Do=5, \
            Tp=16, Da=2 (2.45 M parameters). Batch-1 latency runs on one thread and is compared with the floor \
            weight bytes x K / (single-core read bandwidth measured for a buffer of that size).
            """)

    @Option(help: "Checkpoint to benchmark (default: the reference network with random weights).")
    var checkpoint: String?

    @Option(help: "Solver.")
    var solver: SolverMethod = .euler

    @Option(help: "Solver steps K.")
    var steps: Int = 10

    @Option(help: "Batch-1 calls to time.")
    var iterations: Int = 500

    @Option(help: "Batch size for the throughput figure.")
    var batch: Int = 64

    @Option(help: "Also write the figures as JSON to this path.")
    var json: String?

    func run() throws {
        try reportingErrors {
            var settings = InferenceBenchmark.Settings()
            settings.method = solver
            settings.steps = steps
            settings.iterations = iterations
            settings.batch = batch
            let model = try checkpoint.map { try Checkpoint(contentsOf: $0) } ?? InferenceBenchmark.referenceCheckpoint()
            let r = try InferenceBenchmark.run(checkpoint: model, settings: settings) {
                FileHandle.standardError.write(Data("bench: \($0)\n".utf8))
            }
            print("""
                network      \(r.network), \(r.parameters) parameters (\(r.weightBytes / 1000) kB)
                solver       \(r.solver) K=\(r.steps); OpenBLAS core \(r.openBLASCore)
                batch 1, 1 thread
                  latency    p50 \(ms(r.latencyMilliseconds.p50))  p99 \(ms(r.latencyMilliseconds.p99))  \
                max \(ms(r.latencyMilliseconds.max))  (\(r.latencyMilliseconds.count) chunks)
                  allocations per call  \(String(format: "%.2f", r.allocationsPerCall))
                  floor      \(ms(r.floorMilliseconds)) = \(r.weightBytes / 1000) kB x \(r.steps) / \
                \(String(format: "%.1f", r.readBandwidthGBPerSecond)) GB/s;  p50 / floor = \(String(format: "%.2f", r.p50OverFloor))
                batch \(r.batch)
                  1 thread   \(Int(r.chunksPerSecondOneThread)) chunks/s, \(String(format: "%.1f", r.gflopsOneThread)) GFLOP/s
                  \(settings.threads) threads  \(Int(r.chunksPerSecondAllThreads)) chunks/s, \
                \(String(format: "%.1f", r.gflopsAllThreads)) GFLOP/s
                  sgemm \(r.sgemmShape.map(String.init).joined(separator: "x")) on 1 thread: \
                \(String(format: "%.1f", r.sgemmGflopsOneThread)) GFLOP/s
                training     batch \(r.trainingBatch) on \(r.trainingThreads) threads: \
                \(Int(r.trainingSamplesPerSecond)) samples/s
                """)
            if let json { try writeJSONReport(r, to: json) }
        }
    }

    private func ms(_ value: Double) -> String { String(format: "%.3f ms", value) }
}
