import ArgumentParser
import FlowPolicy
import FlowPolicyCLI
import Foundation
import PolicyLab
import PolicyRuntime
import SimBridge

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a policy in the real-time control loop, on a robot over ZeroMQ or on the task in process.",
        discussion: runDiscussion + " Without --robot, the task's MuJoCo environment runs in process, in real time.")

    @OptionGroup var options: RunOptions

    @Option(help: "In process (no --robot): the task (default: the checkpoint's).")
    var task: String?

    @Option(parsing: .unconditional, help: "In process: first episode seed (default: the task's evaluation seeds).",
            transform: seedArgument)
    var seed: UInt64?

    func validate() throws {
        if options.robot != nil && (task != nil || seed != nil) {
            throw ValidationError("--task and --seed are for the task in process; with --robot, the robot runs them")
        }
        if let task { try checkTaskName(task) }
    }

    func run() throws {
        try reportingErrors {
            guard options.robot == nil else {
                options.security.warnIfInsecure(options.control == "none" ? [] : [options.control])
                let report = try RunSession.run(try options.sessionOptions(), log: printNow)
                print(loopSummary(report.loop))
                if let json = options.report.json { try writeJSONReport(report, to: json) }
                return
            }
            options.security.warnIfInsecure(options.control == "none" ? [] : [options.control])
            let description = try TaskDescription.named(task ?? taskOfPolicy())
            let defaultCheckpoint = options.checkpoint == nil && options.policy == nil
                ? try shippedPolicy(task: description) : nil
            let session = try options.sessionOptions(defaultCheckpoint: defaultCheckpoint)
            let run = try InProcessRun.run(session, task: description, episodes: options.episodes ?? 10,
                                           firstSeed: seed, log: printNow)
            print(loopSummary(run.report.loop))
            let successes = run.episodes.filter(\.success).count
            print("  episodes              \(run.episodes.count), \(successes) successful")
            if let json = options.report.json { try writeJSONReport(run, to: json) }
        }
    }

    /// The task of the checkpoint given (pusht when neither a checkpoint nor a policy server is).
    private func taskOfPolicy() throws -> String {
        if options.policy != nil {
            throw ValidationError("give --task with --policy: the task runs in this process, the policy elsewhere")
        }
        guard let path = options.checkpoint else { return "pusht" }
        return try Checkpoint(contentsOf: path).spec.task
    }
}
