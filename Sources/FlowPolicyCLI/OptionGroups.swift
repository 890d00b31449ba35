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
