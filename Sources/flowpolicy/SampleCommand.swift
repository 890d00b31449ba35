import ArgumentParser
import FlowPolicy
import Foundation
import FlowPolicyCLI
import PolicyLab
import PolicyRuntime

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Sample action chunks from a checkpoint for one observation window.")

    @Option(help: "Checkpoint file.")
    var checkpoint: String

    @Option(parsing: .unconditional,
            help: "Observation: Do numbers (repeated over the window) or To*Do numbers, comma-separated.")
    var observation: String

    @Option(name: .customLong("frames-from"),
            help: "A policy with cameras: DATASET:ROW, the frames of that dataset row (repeated over the window).")
    var framesFrom: String?

    @Option(parsing: .unconditional, help: "Number of chunks to sample.")
    var count: Int = 1000

    @OptionGroup var sampling: SolverOptions

    @Option(parsing: .unconditional,
            help: "Use adaptive Dormand-Prince 5(4) with this relative and absolute tolerance instead.")
    var adaptive: Float?

    @Option(parsing: .unconditional, help: "Noise seed. (default: 0)", transform: seedArgument)
    var seed: UInt64 = 0

    @OptionGroup var report: ReportOptions

    func validate() throws {
        _ = try parseNumbers(observation, name: "--observation")
        try Check.integer("--count", count, in: 1...100_000)
        try Check.real("--adaptive", adaptive, in: .from(1e-10, through: 1))
        try Check.inputFile("--checkpoint", checkpoint)
        if let source = try frameSource() { try Check.inputFile("--frames-from", source.path) }
    }

    /// `--frames-from DATASET:ROW` as (path, row).
    private func frameSource() throws -> (path: String, row: Int)? {
        guard let framesFrom else { return nil }
        guard let colon = framesFrom.lastIndex(of: ":"), let row = Int(framesFrom[framesFrom.index(after: colon)...]),
              row >= 0
        else { throw ValidationError("--frames-from takes DATASET:ROW (a row number >= 0), got \"\(framesFrom)\"") }
        return (String(framesFrom[..<colon]), row)
    }

    func run() throws {
        try reportingErrors {
            var options = SampleSession.Options(
                checkpointPath: checkpoint, observation: try parseNumbers(observation, name: "--observation"))
            options.count = count
            options.seed = seed
            options.framesFrom = try frameSource()
            options.solver = adaptive.map { .adaptive(tolerance: $0) } ?? .fixed(sampling.solver, steps: sampling.steps)
            let s = try SampleSession.run(options)
            let format = { (values: [Float]) in values.map { String(format: "%.3f", $0) }.joined(separator: ", ") }
            print("""
                sampled \(s.count) chunks of \(s.task) in \(formatDuration(s.seconds)) (\(s.solver), \
                \(s.evaluationsPerChunk) network evaluations per chunk, seed \(s.seed))
                  first executed action: mean [\(format(s.actionMean))], std [\(format(s.actionStandardDeviation))]
                """)
            if let report = s.modeReport, let truth = s.trueModeWeights {
                print("  toy-mixture modes for condition \(Int(s.observationWindow[0])):")
                for mode in 0..<4 {
                    print(String(format: "    mode %d  weight %.3f (true %.2f)  mean (%.3f, %.3f)", mode,
                                 report.weights[mode], truth[mode], report.means[mode][0], report.means[mode][1]))
                }
                print(String(format: "    on the other condition's modes %.3f, far from every mode %.3f",
                             report.otherCondition, report.unassigned))
            }
            if let json = report.json { try writeJSONReport(s, to: json) }
        }
    }
}
