import ArgumentParser
import FlowPolicyCLI
import Foundation
import PolicyLab
import SimBridge

@main
struct FlowPolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowpolicy",
        abstract: "Flow-matching robot policies: collect demonstrations, train, evaluate, serve and run them.",
        discussion: "The robot computer's binary, flowpolicy-runtime, offers serve, run, record, inspect and keys "
            + "alone.",
        subcommands: [
            CollectCommand.self, RecordCommand.self, TeleopCommand.self, ImportCommand.self, ExportCommand.self,
            TrainCommand.self, FineTuneCommand.self, DistillCommand.self,
            EvalCommand.self, MergeCommand.self, CampaignCommand.self, ReportCommand.self, CertifyCommand.self,
            SampleCommand.self,
            ReplayCommand.self,
            ServeCommand.self, RobotCommand.self, RunCommand.self,
            InspectCommand.self, UpgradeCommand.self, KeysCommand.self, BenchCommand.self,
        ])
}

/// `--task NAME`: a simulated task, read once from its task.yaml.
struct TaskOptions: ParsableArguments {
    @Option(help: "Task (\(TaskDescription.knownTasks.joined(separator: ", "))).")
    var task: String

    func validate() throws { try checkTaskName(task) }

    func description() throws -> TaskDescription { try TaskDescription.named(task) }
}

/// Refuses a task name no task.yaml answers to, listing the known ones.
func checkTaskName(_ task: String) throws {
    guard TaskDescription.knownTasks.contains(task) else {
        throw ValidationError(
            "unknown task \"\(task)\"; known tasks: " + TaskDescription.knownTasks.joined(separator: ", "))
    }
}

/// `--episodes N --seed S`: how many seeded episodes, and the first seed.
struct EpisodeOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Number of episodes.")
    var episodes: Int = 200

    @Option(parsing: .unconditional, help: "First episode seed (default: the task's evaluation seeds).",
            transform: seedArgument)
    var seed: UInt64?

    func validate() throws {
        try Check.integer("--episodes", episodes, in: 1...1_000_000)
    }
}

/// The task's shipped policy, or an error saying it is missing and what to give instead.
func shippedPolicy(task: TaskDescription) throws -> String {
    let path = task.folder.path("policy.safetensors")
    guard FileManager.default.fileExists(atPath: path) else {
        throw ValidationError("the shipped \(task.name) policy (\(path)) is missing; give --checkpoint PATH")
    }
    return path
}
