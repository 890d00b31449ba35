import ArgumentParser
import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge

extension ChunkHandOver: ExpressibleByArgument {}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a policy in the real-time control loop, on a robot over ZeroMQ or on the task in process.",
        discussion: """
            With --robot tcp://HOST:PORT: subscribes to the robot's RobotState (newest only) and publishes \
            ActionCommand at the task's control rate (to --robot-commands, default the next port). Without it: runs \
            the task's MuJoCo environment in process, in real time. Inference runs on its own thread and is started \
            early enough that the loop never waits. Every action passes the safety filter (finite, within the \
            action bounds, change per step within task.yaml safety.max_step_change); a rejected action is sent as \
            HOLD. The watchdog sends HOLD and stops when the state is older than 3 periods or a chunk misses its \
            deadline; Control STOP / RESUME / STATUS on the control socket stop and resume. Prints latency and \
            jitter histograms (p50 / p99 / p99.9 / max) on exit.
            """)

    @Option(help: "Policy checkpoint (default: the task's shipped policy).")
    var checkpoint: String?

    @Option(help: "Task (rates, safety limits; the in-process environment). Default: the checkpoint's.")
    var task: String?

    @Option(help: "The robot's RobotState endpoint, e.g. tcp://robot:5556 (default: the task in process).")
    var robot: String?

    @Option(name: .customLong("robot-commands"), help: "The robot's ActionCommand endpoint (default: the next port).")
    var robotCommands: String?

    @Option(help: "Control socket to bind (ROUTER), or \"none\".")
    var control: String = "tcp://127.0.0.1:*"

    @Option(name: .customLong("hand-over"), help: "Chunk hand-over: receding, ensemble or continuation (default: the task's, task.yaml policy.hand_over, else receding).")
    var handOver: ChunkHandOver?

    @Option(help: "Fixed-step solver: euler, midpoint or rk4.")
    var solver: SolverMethod = .euler

    @Option(help: "Solver steps K per chunk (the most, with --deadline-ms).")
    var steps: Int = 10

    @Option(name: .customLong("deadline-ms"), help: "Latency budget per chunk: use the largest K whose p99 fits.")
    var deadlineMilliseconds: Double?

    @Option(help: "Control rate in Hz (default: the task's).")
    var rate: Double?

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    @Option(help: "In process: episodes to run.")
    var episodes: Int = 10

    @Option(help: "In process: first episode seed (default: the task's evaluation seeds).")
    var seed: UInt64?

    @Option(name: .customLong("policy-seed"), help: "Seed of the policy's sampling noise.")
    var policySeed: UInt64 = 0

    @Option(name: .customLong("ensemble-decay"), help: "Temporal ensembling: k in the weights exp(-k i).")
    var ensembleDecay: Float = 0.01

    @Option(name: .customLong("replan-every"), help: "Temporal ensembling: periods between chunk requests.")
    var replanEvery: Int = 1

    @Flag(help: "Ask for SCHED_FIFO scheduling and locked memory (needs CAP_SYS_NICE).")
    var realtime = false

    @Option(name: .customLong("spin-us"), help: "Spin this many microseconds before each deadline instead of sleeping.")
    var spinMicroseconds: Int = 0

    @Option(help: "Write the report as JSON to this path.")
    var json: String?

    func run() throws {
        try reportingErrors {
            var options = RunSession.Options(checkpointPath: try checkpoint ?? shippedPolicy(task: task ?? "pusht"))
            options.task = task
            options.robot = robot
            options.robotCommands = robotCommands
            options.control = control == "none" ? nil : control
            options.handOver = handOver
            options.method = solver
            options.steps = steps
            options.deadlineMilliseconds = deadlineMilliseconds
            options.rate = rate
            options.durationSeconds = duration
            options.episodes = episodes
            options.firstSeed = seed
            options.policySeed = policySeed
            options.ensembleDecay = ensembleDecay
            options.replanInterval = replanEvery
            options.realTimeScheduling = realtime
            options.spinMicroseconds = spinMicroseconds
            let report = try RunSession.run(options) { line in
                print(line)
                fflush(nil)
            }
            print(loopSummary(report.loop))
            if let episodes = report.episodes, !episodes.isEmpty {
                let successes = episodes.filter(\.success).count
                print("  episodes        \(episodes.count), \(successes) successful")
            }
            if let json { try writeJSONReport(report, to: json) }
        }
    }
}

/// The one-screen summary of a control loop run.
func loopSummary(_ r: ControlLoopReport) -> String {
    var lines = [
        String(format: "control loop: %d periods of %.2f ms, hand-over %@, lead %d; ended %@", r.ticks,
               r.periodMilliseconds, r.handOver, r.lead, r.finalState),
        "  wake-up jitter        \(r.wakeJitter.text())",
        "  inference             \(r.inferenceLatency.text(milliseconds: true))",
        "  observation → action  \(r.observationToAction.text())",
        "  missed deadlines      \(r.missedLoopDeadlines) loop, \(r.missedInferenceDeadlines) inference",
        "  commands              \(r.actCommands) ACT, \(r.holdCommands) HOLD; rejected \(r.rejectedActions) "
            + "(non-finite \(r.rejectedNonFinite), out of bounds \(r.rejectedOutOfBounds), step change "
            + "\(r.rejectedStepChange))",
        String(format: "  chunk boundaries      %d, largest jump %.2f, mean %.2f "
                   + "(within chunks: largest %.2f, mean %.2f)",
               r.boundaries, r.largestBoundaryJump, r.meanBoundaryJump, r.largestInteriorChange,
               r.meanInteriorChange),
    ]
    if let steps = r.solverSteps {
        lines.append("  solver steps          K=\(steps.initial)"
            + (steps.deadlineMilliseconds.map { String(format: " for a %.2f ms deadline", $0) } ?? "")
            + (steps.changes > 0 ? ", re-picked \(steps.changes) times (\(steps.smallest)...\(steps.largest))" : ""))
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
