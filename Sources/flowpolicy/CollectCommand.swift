import ArgumentParser
import Foundation
import PolicyRuntime

struct CollectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collect",
        abstract: "Record demonstrations of a task into a dataset file (safetensors, Diffusion Policy layout).")

    @Option(help: "Task to collect (toy-mixture).")
    var task: String

    @Option(help: "Number of episodes.")
    var episodes: Int

    @Option(help: "Dataset file to write (replaced atomically).")
    var out: String

    @Option(help: "Seed of the first episode.")
    var seed: UInt64 = 0

    @Option(help: "Also write the summary as JSON to this path.")
    var json: String?

    func run() throws {
        try reportingErrors {
            var options = CollectSession.Options(task: task, episodes: episodes, outputPath: out)
            options.seed = seed
            options.command = commandLine
            let summary = try CollectSession.run(options)
            print("""
                collected \(summary.episodesKept) of \(summary.episodesRequested) episodes of \(summary.task) \
                (\(summary.episodesDropped) dropped), \(summary.steps) steps in \(formatDuration(summary.seconds))
                wrote \(summary.output)
                """)
            if let json { try writeJSONReport(summary, to: json) }
        }
    }
}
