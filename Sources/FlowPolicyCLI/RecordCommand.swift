import ArgumentParser
import Foundation
import PolicyRuntime

public struct RecordCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record demonstrations from a robot (its states and the actions it applies) into a dataset.",
        discussion: """
            Subscribes to the robot's RobotState stream and keeps, for every step, the observation and the action \
            the robot then applied: whatever drives the robot (a teleoperation device, flowpolicy teleop, a \
            policy) is recorded. Episodes start and end with Control START_EPISODE / END_EPISODE (outcome) / \
            DISCARD_EPISODE / QUIT on the control socket, with keys on a terminal (space or s: start, or end and \
            keep; d: discard; q: quit), or with --follow-robot by the robot's own episodes. Every finished episode \
            is on disk at once (the file is rewritten to a temporary file, flushed and renamed), so a crash loses \
            at most the episode in progress.
            """)

    @Option(help: "The robot's RobotState endpoint, e.g. tcp://robot:5556.")
    var robot: String

    @Option(help: "Dataset file to write (with --append, episodes are added to it).")
    var out: String

    @Option(help: "Task name written into the dataset (a simulated task's lets train take its horizons and contract).")
    var task: String?

    @Option(help: "Free-text notes kept in the dataset's metadata.")
    var notes: String = ""

    @Flag(help: "Add episodes to an existing dataset of the same task and sizes.")
    var append = false

    @Flag(name: .customLong("follow-robot"),
          help: "Episodes are the robot's own: its first state starts one, its final state ends it.")
    var followRobot = false

    @Option(parsing: .unconditional, help: "Stop after this many kept episodes.")
    var episodes: Int?

    @Option(help: "Control socket to bind (ROUTER), or \"none\".")
    var control: String = "tcp://127.0.0.1:*"

    @Option(name: .customLong("startup-timeout"), parsing: .unconditional,
            help: "Seconds to wait for the robot's first state.")
    var startupTimeout: Double = 10

    @OptionGroup var security: SecurityOptions

    @Option(name: .customLong("robot-key"), help: "The robot's public key (its NAME.key file): connect with CURVE.")
    var robotKey: String?

    @OptionGroup var report: ReportOptions

    public init() {}

    public func validate() throws {
        try Check.integer("--episodes", episodes, in: 1...1_000_000)
        try Check.real("--startup-timeout", startupTimeout, in: .above(0, upTo: 3600), unit: "s")
        try Check.output("--out", out)
        try Check.inputFile("--robot-key", robotKey)
    }

    public func run() throws {
        try reportingErrors {
            var options = RecordSession.Options(robot: robot, outputPath: out)
            options.task = task
            options.notes = notes
            options.append = append
            options.followRobot = followRobot
            options.episodes = episodes
            options.control = control == "none" ? nil : control
            options.startupSeconds = startupTimeout
            options.credentials = try security.credentials()
            options.robotPublicKey = try serverPublicKey(robotKey)
            options.command = commandLine
            let session = try RecordSession(options: options)
            security.warnIfInsecure(session.controlEndpoint.map { [$0] } ?? [])
            printNow("recording \(robot) into \(out)"
                + (session.controlEndpoint.map { "; control socket \($0)" } ?? "")
                + (isatty(STDIN_FILENO) == 1 ? "; keys: space/s start or keep, d discard, q quit" : ""))
            Interrupt.install()
            let summary = try session.run(readKeys: true, shouldStop: { Interrupt.requested }) { event in
                switch event {
                case .connected(let robot, let dimensions): printNow("robot: \(robot), \(dimensions)-D observations")
                case .started(let index): printNow("episode \(index) started")
                case .kept(let index, let steps, let outcome):
                    printNow("episode \(index) kept: \(steps) steps, \(outcome)")
                case .discarded(let steps): printNow("episode discarded (\(steps) steps)")
                }
            }
            print("recorded \(summary.episodesKept) episodes (\(summary.steps) steps), discarded "
                + "\(summary.episodesDiscarded), \(summary.gaps) broken pairings; \(out) holds "
                + "\(summary.datasetEpisodes) episodes")
            if let json = report.json { try writeJSONReport(summary, to: json) }
        }
    }
}
