import ArgumentParser
import FlowPolicyCLI
import Foundation
import PolicyLab
import PolicyRuntime

struct TeleopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "teleop",
        abstract: "Drive a robot as its operator would: a task's scripted expert sending commands over ZeroMQ.",
        discussion: """
            With --expert, the task's scripted expert drives `flowpolicy robot --task T --lock-step` through its \
            ZeroMQ interface, so that `flowpolicy record` can record demonstrations the way it would from an \
            operator on a physical arm. The expert plans in a mirror of the simulation (reset with each episode's \
            seed, stepped with each command) that is checked against every state the robot sends.
            """)

    @OptionGroup var taskOptions: TaskOptions

    @Flag(help: "The task's scripted expert is the operator (the only operator there is so far).")
    var expert = false

    @Option(help: "The robot's RobotState endpoint, e.g. tcp://127.0.0.1:5556.")
    var robot: String

    @Option(name: .customLong("robot-commands"), help: "The robot's ActionCommand endpoint (default: the next port).")
    var robotCommands: String?

    @Option(parsing: .unconditional, help: "Stop after this many episodes (default: until interrupted).")
    var episodes: Int?

    @Option(parsing: .unconditional, help: "Seconds to wait for each of the robot's states.")
    var wait: Double = 10

    @OptionGroup var security: SecurityOptions

    @Option(name: .customLong("robot-key"), help: "The robot's public key (its NAME.key file): connect with CURVE.")
    var robotKey: String?

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.integer("--episodes", episodes, in: 1...1_000_000)
        try Check.real("--wait", wait, in: .above(0, upTo: 3600), unit: "s")
        try Check.inputFile("--robot-key", robotKey)
        if security.allow != nil || security.insecure {
            throw ValidationError("teleop binds no socket: --allow and --insecure are for the processes that do")
        }
        guard expert else { throw ValidationError("give --expert: the scripted expert is the only operator so far") }
    }

    func run() throws {
        try reportingErrors {
            var options = TeleopSession.Options(task: try taskOptions.description(), robot: robot)
            options.robotCommands = robotCommands
            options.episodes = episodes
            options.waitSeconds = wait
            options.credentials = try security.credentials()
            options.robotPublicKey = try robotKey.map { try CurveKeyPair.readPublicKey(file: $0) }
            printNow("teleop: \(taskOptions.task)'s expert driving \(robot)")
            Interrupt.install()
            let summary = try TeleopSession.run(options, shouldStop: { Interrupt.requested }) { outcome in
                printNow("episode \(outcome.seed): \(outcome.success ? "success" : "failure") "
                    + "in \(outcome.steps) steps")
            }
            print("teleop: \(summary.episodes) episodes, \(summary.successes) successful, \(summary.steps) steps")
            if let json = report.json { try writeJSONReport(summary, to: json) }
        }
    }
}
