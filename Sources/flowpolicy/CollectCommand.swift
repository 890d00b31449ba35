import ArgumentParser
import Foundation
import FlowPolicy
import FlowPolicyCLI
import PolicyLab
import PolicyRuntime
import SimBridge

struct CollectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collect",
        abstract: "Record demonstrations of a task into a dataset file (safetensors, Diffusion Policy layout).")

    @Option(help: "Task to collect (a simulated task with a scripted expert, or toy-mixture).")
    var task: String

    @Option(parsing: .unconditional, help: "Number of episodes.")
    var episodes: Int

    @Option(help: "Dataset file to write (replaced atomically).")
    var out: String

    @Option(parsing: .unconditional,
            help: "First episode seed (default: the task's collection seeds, or after the file's when appending).",
            transform: seedArgument)
    var seed: UInt64?

    @Flag(help: "Add the new episodes to the existing file (its episodes are kept unchanged).")
    var append = false

    @OptionGroup var threading: ThreadOptions

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.integer("--episodes", episodes, in: 1...1_000_000)
        try Check.output("--out", out)
    }

    func run() throws {
        try reportingErrors {
            let source: CollectSession.Source = task == ConditionalMixture.spec.task
                ? .toyMixture : .expert(try TaskDescription.named(task))
            var options = CollectSession.Options(source: source, episodes: episodes, outputPath: out)
            options.firstSeed = seed
            options.append = append
            options.threads = threading.threads
            options.command = commandLine
            let s = try CollectSession.run(options)
            print("""
                collected \(s.episodesKept) of \(s.episodesRequested) episodes of \(s.task) (seeds \(s.seeds)): \
                \(s.episodesDropped) dropped, \(s.steps) steps in \(formatDuration(s.seconds))
                """)
            if let success = s.expertSuccess { print("  expert success  \(success.text)") }
            if !s.droppedSeeds.isEmpty {
                print("  dropped seeds   \(s.droppedSeeds.prefix(20).map(String.init).joined(separator: ", "))"
                    + (s.droppedSeeds.count > 20 ? ", ..." : ""))
            }
            print("wrote \(s.output): \(s.datasetEpisodes) episodes, seeds \(s.datasetSeeds)")
            if let json = report.json { try writeJSONReport(s, to: json) }
        }
    }
}
