import ArgumentParser
import FlowPolicy
import Foundation

/// `--solver` and `--steps`: how a chunk is sampled (every command that samples one).
public struct SolverOptions: ParsableArguments {
    @Option(help: "Fixed-step solver: euler, midpoint or rk4.")
    public var solver: SolverMethod = .euler

    @Option(parsing: .unconditional, help: "Solver steps K per chunk.")
    public var steps: Int = 10

    public init() {}

    public func validate() throws {
        try Check.integer("--steps", steps, in: 1...10_000)
    }
}

/// `--precision`: the number format of the policy network's matrix products at inference.
public struct PrecisionOptions: ParsableArguments {
    @Option(help: """
        Inference precision of the network's matrix products: fp32, bf16 (AVX512-BF16) or int8 (AVX512-VNNI, \
        per-channel weight scales); converted when the checkpoint loads. Training is always fp32.
        """)
    public var precision: Precision = .fp32

    public init() {}

    /// The line commands print at start-up: the precision and the kernel this CPU runs for it.
    public var description: String { "precision \(precision.rawValue) (\(precision.kernel) kernel)" }
}

/// `--json PATH`: the machine-readable report.
public struct ReportOptions: ParsableArguments {
    @Option(help: "Also write the report as JSON to this path.")
    public var json: String?

    public init() {}

    public func validate() throws {
        try Check.output("--json", json)
    }
}

/// `--threads N`: worker threads.
public struct ThreadOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Worker threads (default: every core, at most 256).")
    public var threads: Int = min(ProcessInfo.processInfo.activeProcessorCount, 256)

    public init() {}

    public func validate() throws {
        try Check.integer("--threads", threads, in: 1...256)
    }
}
