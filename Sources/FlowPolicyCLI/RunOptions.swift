import ArgumentParser
import FlowPolicy
import Foundation
import PolicyRuntime

/// The options of `run` that both executables share: the policy (a checkpoint or a server), the robot, the loop.
public struct RunOptions: ParsableArguments {
    @Option(help: "Policy checkpoint to sample in this process.")
    public var checkpoint: String?

    @Option(help: "A policy server to ask instead (flowpolicy serve), e.g. tcp://gpu-host:5555.")
    public var policy: String?

    @Option(help: "The robot's RobotState endpoint, e.g. tcp://robot:5556.")
    public var robot: String?

    @Option(name: .customLong("robot-commands"), help: "The robot's ActionCommand endpoint (default: the next port).")
    public var robotCommands: String?

    @Option(help: "Control socket to bind (ROUTER), or \"none\".")
    public var control: String = "tcp://127.0.0.1:*"

    @OptionGroup public var security: SecurityOptions

    @Option(name: .customLong("robot-key"), help: "The robot's public key (its NAME.key file): connect with CURVE.")
    public var robotKey: String?

    @Option(name: .customLong("policy-key"),
            help: "The policy server's public key (its NAME.key file): connect with CURVE.")
    public var policyKey: String?

    @Option(name: .customLong("hand-over"),
            help: "Chunk hand-over: receding, ensemble or continuation (default: the checkpoint's).")
    public var handOver: ChunkHandOver?

    @OptionGroup public var sampling: SolverOptions

    @OptionGroup public var precision: PrecisionOptions

    @Option(name: .customLong("deadline-ms"), parsing: .unconditional,
            help: "Latency budget per chunk (a round trip with --policy): use the largest K whose p99 fits.")
    public var deadlineMilliseconds: Double?

    @Option(parsing: .unconditional, help: "The policy's control rate in Hz (default: the checkpoint's).")
    public var rate: Double?

    @Option(name: .customLong("servo-rate"), parsing: .unconditional, help: ArgumentHelp(
        "Command the robot at this rate (Hz), interpolating between the policy's actions.",
        discussion: "A whole multiple of the control rate, e.g. 1000 for a 10 Hz policy. Every command respects the "
            + "checkpoint's velocity, acceleration and jerk limits and passes the safety filter."))
    public var servoRate: Double?

    @Option(help: "Servo-rate interpolation: linear or min-jerk.")
    public var interpolation: ServoInterpolation = .minimumJerk

    @Option(parsing: .unconditional, help: "Stop after this many seconds.")
    public var duration: Double?

    @Option(parsing: .unconditional,
            help: "Stop when this many episodes have ended (in process: run this many; default 10).")
    public var episodes: Int?

    @Flag(name: .customLong("lock-step"), help: ArgumentHelp(
        "One control step per robot state, each chunk sampled when needed: reproducible, not real time.",
        discussion: "For a lock-step robot (flowpolicy robot --lock-step) or the task in process; with the same "
            + "seeds, a policy served with --policy gives exactly the outcomes of the checkpoint in process."))
    public var lockStep = false

    @Option(name: .customLong("policy-seed"), parsing: .unconditional,
            help: "Seed of the policy's sampling noise. (default: 0)", transform: seedArgument)
    public var policySeed: UInt64 = 0

    @Option(name: .customLong("ensemble-decay"), parsing: .unconditional,
            help: "Temporal ensembling: k in the weights exp(-k i).")
    public var ensembleDecay: Float = 0.01

    @Option(name: .customLong("replan-every"), parsing: .unconditional,
            help: "Temporal ensembling: periods between chunk requests.")
    public var replanEvery: Int = 1

    @Option(name: .customLong("startup-timeout"), parsing: .unconditional,
            help: "Seconds to wait for the robot's first state.")
    public var startupTimeout: Double = 10

    @Flag(help: "Ask for SCHED_FIFO scheduling and locked memory (needs CAP_SYS_NICE).")
    public var realtime = false

    @Option(name: .customLong("spin-us"), parsing: .unconditional,
            help: "Spin this many microseconds before each deadline instead of sleeping.")
    public var spinMicroseconds: Int = 0

    @OptionGroup public var report: ReportOptions

    public init() {}

    public func validate() throws {
        if checkpoint != nil && policy != nil { throw ValidationError("give --checkpoint or --policy, not both") }
        try Check.real("--deadline-ms", deadlineMilliseconds, in: .above(0, upTo: 60_000), unit: "ms")
        try Check.real("--rate", rate, in: .from(0.1, through: 10_000), unit: "Hz")
        try Check.real("--servo-rate", servoRate, in: .from(0.1, through: 100_000), unit: "Hz")
        try Check.real("--duration", duration, in: .above(0, upTo: 1e7), unit: "seconds")
        try Check.integer("--episodes", episodes, in: 1...1_000_000)
        try Check.real("--ensemble-decay", ensembleDecay, in: .from(0))
        try Check.integer("--replan-every", replanEvery, in: 1...1000)
        try Check.real("--startup-timeout", startupTimeout, in: .above(0, upTo: 3600), unit: "seconds")
        try Check.integer("--spin-us", spinMicroseconds, in: 0...100_000)
        try Check.inputFile("--checkpoint", checkpoint)
        try Check.inputFile("--robot-key", robotKey)
        try Check.inputFile("--policy-key", policyKey)
    }

    /// The session's options (the policy defaults to `defaultCheckpoint` when neither is given).
    public func sessionOptions(defaultCheckpoint: String? = nil) throws -> RunSession.Options {
        guard checkpoint != nil || policy != nil || defaultCheckpoint != nil else {
            throw ValidationError("give --checkpoint PATH or --policy tcp://HOST:PORT")
        }
        var options = RunSession.Options(checkpointPath: policy == nil ? checkpoint ?? defaultCheckpoint : nil,
                                         policyEndpoint: policy)
        options.robot = robot
        options.robotCommands = robotCommands
        options.control = control == "none" ? nil : control
        options.handOver = handOver
        options.method = sampling.solver
        options.steps = sampling.steps
        options.precision = precision.precision
        options.deadlineMilliseconds = deadlineMilliseconds
        options.rate = rate
        options.servoRate = servoRate
        options.interpolation = interpolation
        options.durationSeconds = duration
        options.episodes = episodes
        options.lockStep = lockStep
        options.policySeed = policySeed
        options.ensembleDecay = ensembleDecay
        options.replanInterval = replanEvery
        options.startupSeconds = startupTimeout
        options.credentials = try security.credentials()
        options.robotPublicKey = try serverPublicKey(robotKey)
        options.policyPublicKey = try serverPublicKey(policyKey)
        options.realTimeScheduling = realtime
        options.spinMicroseconds = spinMicroseconds
        return options
    }
}

/// `run` on a robot over ZeroMQ (the robot computer's binary; `flowpolicy run` adds the simulation in process).
public struct RobotRunCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a policy in the real-time control loop against a robot over ZeroMQ.",
        discussion: runDiscussion)

    @OptionGroup var options: RunOptions

    public init() {}

    public func validate() throws {
        guard options.robot != nil else {
            throw ValidationError("give --robot tcp://HOST:PORT (the robot's state endpoint)")
        }
    }

    public func run() throws {
        try reportingErrors {
            options.security.warnIfInsecure(options.control == "none" ? [] : [options.control])
            let report = try RunSession.run(try options.sessionOptions(), log: printNow)
            print(loopSummary(report.loop))
            if let json = options.report.json { try writeJSONReport(report, to: json) }
        }
    }
}

public let runDiscussion = """
    The policy is a checkpoint sampled here (--checkpoint) or a policy server on another machine (--policy). With \
    --robot tcp://HOST:PORT the loop subscribes to the robot's RobotState (newest only), checks the robot against \
    the policy's deployment contract (dimensions, rate), and publishes ActionCommand at the control rate (to \
    --robot-commands, default the next port), or at --servo-rate with interpolated commands. Inference runs on its \
    own thread and is started early enough that the loop never waits. Every action passes the safety filter; a \
    rejected action is sent as HOLD. The watchdog sends HOLD and stops when the state is older than 3 periods or a \
    chunk misses its deadline (a silent policy server included); Control STOP / RESUME / STATUS on the control \
    socket stop and resume. Prints latency and jitter histograms (p50 / p99 / p99.9 / max) on exit.
    """

/// The one-screen summary of a control loop run.
public func loopSummary(_ r: ControlLoopReport) -> String {
    var lines = [
        String(format: "control loop: %d periods of %.2f ms, hand-over %@, lead %d; ended %@", r.ticks,
               r.periodMilliseconds, r.handOver, r.lead, r.finalState),
        "  wake-up jitter        \(r.wakeJitter.text())",
        "  inference             \(r.inferenceLatency.text(milliseconds: true))",
        "  observation → action  \(r.observationToAction.text())",
        "  missed deadlines      \(r.missedLoopDeadlines) loop, \(r.missedInferenceDeadlines) inference",
        "  commands              \(r.actCommands) ACT, \(r.holdCommands) HOLD; rejected \(r.rejectedActions) "
            + "(non-finite \(r.rejectedNonFinite), out of bounds \(r.rejectedOutOfBounds), step change "
            + "\(r.rejectedStepChange)); \(r.clampedActions) chunk numbers clamped to the bounds",
        String(format: "  chunk boundaries      %d, largest jump %.2f, mean %.2f "
                   + "(within chunks: largest %.2f, mean %.2f)",
               r.boundaries, r.largestBoundaryJump, r.meanBoundaryJump, r.largestInteriorChange,
               r.meanInteriorChange),
    ]
    if let servo = r.servo {
        let format = { (values: [Double], limits: [Float]?) in
            zip(values.indices, values).map { d, value in
                String(format: "%.4g", value) + (limits.map { String(format: "/%.4g", $0[d]) } ?? "")
            }.joined(separator: ", ")
        }
        lines.append(String(format: "  servo                 %.0f Hz, %@, %d commands (%d late); limiter changed "
                                + "%d, filter refused %d", servo.rateHz, servo.interpolation, servo.commands,
                            servo.missedDeadlines, servo.limitedCommands, servo.rejectedCommands))
        lines.append("    largest / limit     velocity \(format(servo.largestVelocity, servo.maximumVelocity))")
        lines.append(
            "                        acceleration \(format(servo.largestAcceleration, servo.maximumAcceleration))")
        lines.append("                        jerk \(format(servo.largestJerk, servo.maximumJerk))")
    }
    if let steps = r.solverSteps {
        lines.append("  solver steps          K=\(steps.initial)"
            + (steps.deadlineMilliseconds.map { String(format: " for a %.2f ms deadline", $0) } ?? "")
            + (steps.changes > 0 ? ", re-picked \(steps.changes) times (\(steps.smallest)...\(steps.largest))" : ""))
    }
    if r.inferenceFailures > 0 {
        lines.append("  policy failures       \(r.inferenceFailures); last: \(r.lastInferenceFailure ?? "?")")
    }
    if !r.stops.isEmpty {
        // Reasons in order of first occurrence, with how often each stopped the loop.
        var reasons: [String] = []
        for reason in r.stops where !reasons.contains(reason) { reasons.append(reason) }
        let counted = reasons.map { reason in
            let count = r.stops.filter { $0 == reason }.count
            return count == 1 ? reason : "\(reason) (\(count)x)"
        }
        lines.append("  stops                 \(counted.joined(separator: "; "))")
    }
    if let scheduling = r.scheduling { lines.append("  scheduling            \(scheduling)") }
    return lines.joined(separator: "\n")
}
