import ArgumentParser
import FlowPolicy
import Foundation

/// `--solver` and `--steps`: how a chunk is sampled (every command that samples one).
public struct SolverOptions: ParsableArguments {
    @Option(help: "Fixed-step solver: euler, midpoint or rk4.")
    public var solver: SolverMethod = .euler

    @Option(help: "Solver steps K per chunk.")
    public var steps: Int = 10

    public init() {}

    public func validate() throws {
        guard steps >= 1, steps <= 10_000 else { throw ValidationError("--steps must be in 1...10000, got \(steps)") }
    }
}

/// `--json PATH`: the machine-readable report.
public struct ReportOptions: ParsableArguments {
    @Option(help: "Also write the report as JSON to this path.")
    public var json: String?

    public init() {}
}

/// `--threads N`: worker threads.
public struct ThreadOptions: ParsableArguments {
    @Option(help: "Worker threads (default: every core).")
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    public init() {}

    public func validate() throws {
        guard threads >= 1, threads <= 256 else { throw ValidationError("--threads must be in 1...256, got \(threads)") }
    }
}
