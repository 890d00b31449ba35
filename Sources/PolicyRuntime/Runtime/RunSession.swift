import FlowPolicy
import Foundation
import SimBridge

/// `flowpolicy run`: a policy checkpoint in the real-time control loop, driving a robot over ZeroMQ
/// (`--robot tcp://HOST:PORT`) or the task's MuJoCo environment in process, in real time.
public enum RunSession {
    public struct Options: Sendable {
        public var checkpointPath: String
        /// The task (rates, safety limits; and the environment when there is no robot); nil means the checkpoint's.
        public var task: String?
        /// The robot's state endpoint; nil runs the task's environment in process.
        public var robot: String?
        /// The robot's command endpoint; nil means the state port + 1.
        public var robotCommands: String?
        /// Where the control socket binds (nil: none).
        public var control: String? = "tcp://127.0.0.1:*"
        /// Nil: the task's default (task.yaml `policy.hand_over`).
        public var handOver: ChunkHandOver?
        public var method = SolverMethod.euler
        public var steps = 10
        /// Deadline-aware sampling: the latency budget of one chunk; K is the largest that fits.
        public var deadlineMilliseconds: Double?
        /// Control rate override (Hz); nil means the task's.
        public var rate: Double?
        /// Stop after this long (nil: until interrupted, or until `episodes` end in process).
        public var durationSeconds: Double?
        /// In process: episodes to run (from `firstSeed`, default the task's evaluation seeds).
        public var episodes = 10
        public var firstSeed: UInt64?
        public var policySeed: UInt64 = 0
        public var watchdogPeriods = 3.0
        public var ensembleDecay: Float = 0.01
        public var replanInterval = 1
        /// Ask for SCHED_FIFO and locked memory.
        public var realTimeScheduling = false
        /// Spin this long before each deadline instead of sleeping.
        public var spinMicroseconds = 0

        public init(checkpointPath: String) {
            self.checkpointPath = checkpointPath
        }
    }

    public struct Report: Codable, Sendable {
        public var task: String
        public var checkpoint: String
        public var robot: String
        public var controlRateHz: Double
        public var solver: String
        public var loop: ControlLoopReport
        /// In process: every episode's outcome.
        public var episodes: [EnvironmentRobot.EpisodeOutcome]?
        public var controlEndpoint: String?
    }

    /// Sets up, prints the endpoints through `log`, runs until done or interrupted, and reports.
    public static func run(_ options: Options, log: (String) -> Void = { _ in }) throws -> Report {
        let checkpoint = try Checkpoint(contentsOf: options.checkpointPath)
        let spec = checkpoint.spec
        let task = options.task ?? spec.task
        guard TaskRegistry.names.contains(task) else {
            throw FlowPolicyError.invalidConfiguration(
                "the checkpoint's task \"\(spec.task)\" is not a known task; give --task (one of "
                    + "\(TaskRegistry.names.joined(separator: ", "))) for its rate and safety limits")
        }
        let environment = try TaskRegistry.makeEnvironment(task)
        let rate = options.rate ?? environment.specification.controlRate
        guard rate > 0, rate <= 10_000 else {
            throw FlowPolicyError.invalidConfiguration("--rate must be in (0, 10000] Hz")
        }
        let period = UInt64((1e9 / rate).rounded())
        let limits = try SafetyLimits.forTask(task)
        let policy = Policy(checkpoint: checkpoint, capacity: 1, method: options.method, steps: options.steps,
                            seed: options.policySeed)
        let calibration = try InferenceCalibration.measure(
            policy: policy, deadlineMilliseconds: options.deadlineMilliseconds)
        policy.steps = calibration.steps
        let lead = max(1, Int((calibration.budgetNanoseconds / Double(period)).rounded(.up)))
        log("inference: \(options.method.rawValue) K=\(calibration.steps), p99 "
            + String(format: "%.2f ms", calibration.p99Nanoseconds / 1e6) + " (\(calibration.samples) warm-up chunks); "
            + "requested \(lead) period\(lead == 1 ? "" : "s") (\(String(format: "%.1f", Double(period) / 1e6)) ms) "
            + "ahead")

        let clock = MonotonicClock(spinNanoseconds: UInt64(max(0, options.spinMicroseconds)) * 1000)
        let context = try ZMQContext()
        let robot: any RobotLink
        let robotName: String
        var inProcess: EnvironmentRobot?
        if let endpoint = options.robot {
            guard let commands = options.robotCommands ?? RobotEndpoints.defaultCommandEndpoint(forState: endpoint)
            else {
                throw FlowPolicyError.invalidConfiguration("give --robot-commands for \(endpoint)")
            }
            robot = try ZMQRobotLink(context: context, stateEndpoint: endpoint, commandEndpoint: commands,
                                     observationDimensions: spec.observationDimensions,
                                     actionDimensions: spec.actionDimensions)
            robotName = "\(endpoint) (commands \(commands))"
        } else {
            let firstSeed = try options.firstSeed ?? TaskRegistry.commonSettings(task).seeds.evaluation
            let seeds = (0..<UInt64(max(1, options.episodes))).map { firstSeed + $0 }
            let environmentRobot = try EnvironmentRobot(environment: environment, seeds: seeds, clock: clock)
            inProcess = environmentRobot
            robot = environmentRobot
            robotName = "\(task) in process (seeds \(seeds[0])-\(seeds[seeds.count - 1]))"
        }
        let handOver = try options.handOver ?? ChunkHandOver.taskDefault(task)
        var configuration = ControlLoop.Configuration(periodNanoseconds: period)
        configuration.handOver = handOver
        configuration.lead = lead
        configuration.replanInterval = options.replanInterval
        configuration.ensembleDecay = options.ensembleDecay
        configuration.watchdogPeriods = options.watchdogPeriods
        configuration.policySeed = options.policySeed
        // The planner starts from the warm-up's measurement, so the first chunk already uses the picked K.
        let planner = options.deadlineMilliseconds.map { deadline in
            var planner = SolverStepPlanner(deadlineNanoseconds: UInt64(deadline * 1e6), maximumSteps: options.steps)
            planner.record(latencyNanoseconds: UInt64(calibration.p99Nanoseconds), solverSteps: calibration.steps)
            return planner
        }
        let inference = ThreadedInference(policy: policy, planner: planner)
        defer { inference.stop() }
        let loop = try ControlLoop(spec: spec, robot: robot, inference: inference, safety: limits, clock: clock,
                                   configuration: configuration)
        let controlServer = try options.control.map {
            try ControlServer(context: context, endpoint: $0, control: loop.control)
        }
        defer { controlServer?.stop() }
        if let controlServer { log("control socket: \(controlServer.endpoint) (Control STOP / RESUME / STATUS)") }
        log("robot: \(robotName); \(String(format: "%.1f", rate)) Hz, hand-over \(handOver.rawValue)")
        let slack = minimizeTimerSlack() ? "timer slack 1 ns" : "default timer slack"
        let scheduling = options.realTimeScheduling ? "\(requestRealTimeScheduling()), \(slack)" : slack
        log("scheduling: \(scheduling)")

        Interrupt.install()
        let maximumTicks = options.durationSeconds.map { Int(($0 * rate).rounded()) }
        loop.run(maximumTicks: maximumTicks) { Interrupt.requested || (inProcess?.isFinished ?? false) }

        var report = loop.report
        report.scheduling = scheduling
        if let planner = inference.plannerState {
            report.solverSteps = SolverStepsReport(
                deadlineMilliseconds: options.deadlineMilliseconds, initial: calibration.steps,
                smallest: min(planner.smallestSteps, calibration.steps),
                largest: max(planner.largestSteps, calibration.steps),
                changes: planner.changes)
        } else {
            report.solverSteps = SolverStepsReport(deadlineMilliseconds: nil, initial: calibration.steps,
                                                   smallest: calibration.steps, largest: calibration.steps, changes: 0)
        }
        return Report(task: task, checkpoint: options.checkpointPath, robot: robotName, controlRateHz: rate,
                      solver: options.method.rawValue, loop: report, episodes: inProcess?.outcomes,
                      controlEndpoint: controlServer?.endpoint)
    }
}

/// Warm-up before the loop starts: times chunks on a mid-range window, and with a deadline picks the solver steps.
public struct InferenceCalibration: Sendable {
    public var steps: Int
    public var p99Nanoseconds: Double
    /// The time a chunk is given: the deadline, or 1.5 x the measured p99 + 0.5 ms.
    public var budgetNanoseconds: Double
    public var samples: Int

    public static func measure(policy: Policy, deadlineMilliseconds: Double?, samples: Int = 40) throws
        -> InferenceCalibration
    {
        let spec = policy.spec
        let normalizer = policy.checkpoint.observationNormalizer
        let middle = (0..<spec.observationDimensions).map { (normalizer.minimum[$0] + normalizer.maximum[$0]) / 2 }
        let window = Array([[Float]](repeating: middle, count: spec.observationSteps).joined())
        func p99(steps: Int) -> Double {
            policy.steps = steps
            var latencies: [Double] = []
            for _ in 0..<samples {
                let begin = monotonicNanoseconds()
                _ = policy.predictAction(observations: window)
                latencies.append(Double(monotonicNanoseconds() - begin))
            }
            return LatencySummary(latencies).p99
        }
        let configured = policy.steps
        let measured = p99(steps: configured)
        guard let deadline = deadlineMilliseconds else {
            return InferenceCalibration(steps: configured, p99Nanoseconds: measured,
                                        budgetNanoseconds: measured * 1.5 + 500_000, samples: samples)
        }
        guard deadline > 0 else { throw FlowPolicyError.invalidConfiguration("--deadline-ms must be positive") }
        var planner = SolverStepPlanner(deadlineNanoseconds: UInt64(deadline * 1e6), maximumSteps: configured)
        planner.record(latencyNanoseconds: UInt64(measured), solverSteps: configured)
        let steps = planner.steps
        return InferenceCalibration(steps: steps, p99Nanoseconds: p99(steps: steps), budgetNanoseconds: deadline * 1e6,
                                    samples: samples)
    }
}
