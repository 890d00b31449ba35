import ArgumentParser
import FlowPolicy
import Foundation
import FlowPolicyCLI
import PolicyLab
import PolicyRuntime
import SimBridge

struct RobotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "robot",
        abstract: "A simulated task behind the ZeroMQ interface of a physical arm (RobotState out, ActionCommand in).",
        discussion: """
            Publishes RobotState on --bind and takes ActionCommand on --command-bind (default: the next port). In real \
            time it steps the task at its control rate, applying the newest command (HOLD repeats the last action); \
            with --lock-step it applies exactly one control step per command answering the state it published, so \
            runs are reproducible. Episodes use consecutive seeds. Prints both endpoints, then runs until the \
            episodes are done or it is interrupted.
            """)

    @Option(help: "Task (\(TaskDescription.knownTasks.joined(separator: ", "))).")
    var task: String = "pusht"

    @Option(help: ArgumentHelp(
        "State endpoint to bind (PUB), e.g. tcp://127.0.0.1:* (any free port) or tcp://*:5556.",
        discussion: "Beyond loopback it needs --secret-key and --allow (CURVE), or --insecure."))
    var bind: String = "tcp://127.0.0.1:5556"

    @OptionGroup var security: SecurityOptions

    @Option(name: .customLong("hold-after"), parsing: .unconditional,
            help: "Real time: hold by itself when no command has come for this many periods.")
    var holdAfter: Int = 3

    @Option(name: .customLong("command-bind"), help: "Command endpoint to bind (SUB); default: the state port + 1.")
    var commandBind: String?

    @Flag(name: .customLong("lock-step"), help: "One control step per command (no clock).")
    var lockStep = false

    @Option(parsing: .unconditional, help: "Episodes to run (default: until interrupted).")
    var episodes: Int?

    @Option(parsing: .unconditional, help: "First episode seed (default: the task's evaluation seeds).",
            transform: seedArgument)
    var seed: UInt64?

    @Option(parsing: .unconditional, help: "Real time: control rate in Hz (default: the task's).")
    var rate: Double?

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.integer("--episodes", episodes, in: 1...1_000_000)
        try Check.real("--rate", rate, in: .from(0.1, through: 10_000), unit: "Hz")
        try Check.integer("--hold-after", holdAfter, in: 1...1_000_000, unit: "periods")
        try checkTaskName(task)
    }

    func run() throws {
        try reportingErrors {
            let description = try TaskDescription.named(task)
            var options = SimulatedRobot.Options(task: description, stateEndpoint: bind)
            options.commandEndpoint = commandBind
            options.credentials = try security.credentials()
            options.holdAfterPeriods = holdAfter
            options.lockStep = lockStep
            options.episodes = episodes
            options.firstSeed = seed
            options.rate = rate
            let context = try ZMQContext()
            let robot = try SimulatedRobot(options: options, context: context)
            printNow("robot \(task) (\(lockStep ? "lock-step" : "real time")): state \(robot.stateEndpoint) "
                + "commands \(robot.commandEndpoint)" + (robot.authentication == nil ? "" : " (CURVE)"))
            security.warnIfInsecure([robot.stateEndpoint, robot.commandEndpoint])
            Interrupt.install()
            let summary = try robot.run { Interrupt.requested }
            let successes = summary.episodes.filter(\.success).count
            print("\(summary.episodes.count) episodes, \(successes) successful; \(summary.appliedCommands) commands "
                  + "applied, \(summary.refusedCommands) refused, \(summary.staleCommands) stale; held "
                  + "\(summary.commandTimeouts) times when commands stopped")
            if let json = report.json { try writeJSONReport(summary, to: json) }
        }
    }
}
