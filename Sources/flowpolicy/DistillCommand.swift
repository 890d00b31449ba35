import ArgumentParser
import Foundation
import FlowPolicyCLI
import PolicyLab
import PolicyRuntime

struct DistillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill",
        abstract: "Distil a Local Flow Matching chain into one-step students (one network evaluation per block).",
        discussion: """
            Teacher trajectories start from N(0, I) for observation windows of the dataset and run through the chain \
            with an accurate adaptive solver; each block's student starts from the block's weights and regresses its \
            endpoint map.
            """)

    @Option(help: "LFM checkpoint (from `flowpolicy train --method lfm`).")
    var checkpoint: String

    @Option(help: "Dataset providing observation windows (the one the chain was trained on).")
    var dataset: String

    @Option(help: "Distilled checkpoint to write.")
    var out: String

    @Option(parsing: .unconditional, help: "Teacher trajectories.")
    var samples: Int = 20_000

    @Option(name: .customLong("steps"), parsing: .unconditional, help: "Training steps per block.")
    var steps: Int = 2000

    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Peak learning rate.")
    var learningRate: Float = 3e-4

    @Option(parsing: .unconditional, help: "Random seed. (default: 0)", transform: seedArgument)
    var seed: UInt64 = 0

    @OptionGroup var threading: ThreadOptions

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.integer("--samples", samples, in: 1...1_000_000)
        try Check.integer("--steps", steps, in: 1...100_000_000)
        try Check.real("--lr", learningRate, in: .above(0, upTo: 1))
        try Check.inputFile("--checkpoint", checkpoint)
        try Check.inputFile("--dataset", dataset)
        try Check.output("--out", out)
    }

    func run() throws {
        try reportingErrors {
            var options = DistillSession.Options(checkpointPath: checkpoint, datasetPath: dataset, outputPath: out)
            options.samples = samples
            options.training.steps = steps
            options.training.learningRate = learningRate
            options.training.seed = seed
            options.training.threads = threading.threads
            let s = try DistillSession.run(options)
            print("""
                distilled \(s.stages) blocks into one-step students (\(s.samples) teacher trajectories, \
                \(s.stepsPerStage) steps each): \(s.evaluationsPerChunk) network evaluations per chunk, \
                \(formatDuration(s.seconds))
                wrote \(s.output)
                """)
            if let json = report.json { try writeJSONReport(s, to: json) }
        }
    }
}
