import FlowPolicy
import Foundation

/// `run`: a policy in the real-time control loop, driving a robot. The policy is a checkpoint sampled in this process
/// or a policy server on another machine (`RemotePolicy`); the robot is a ZeroMQ robot (a physical arm's bridge, or
/// `flowpolicy robot`) or any `RobotLink` the caller gives (the simulation's in-process robot).
///
/// Everything comes from the policy's deployment contract (rate, bounds, limits, hand-over): nothing here reads a
/// task file or builds an environment. Before acting, the robot's first state is checked against the contract
/// (observation and action dimensions, control rate, and the cameras of a policy that has them); a mismatch is
/// refused with both values named. A policy with cameras takes each state's frames (`RobotState.frames`).
///
/// Lock-step (`Options.lockStep`, for reproducible runs against a lock-step robot): no clock and no thread. Each
/// period waits for the robot's next state, samples the chunk it needs at once (no lead) and commands; so the
/// outcomes depend on the policy, the seeds and the robot only, not on timing, and a remote policy gives exactly the
/// outcomes of the same checkpoint in process.
public enum RunSession {
    public struct Options: Sendable {
        /// The checkpoint to sample in this process, or
        public var checkpointPath: String?
        /// the policy server to ask (`tcp://host:5555`).
        public var policyEndpoint: String?
        /// The robot's state endpoint (unless the caller gives a robot link).
        public var robot: String?
        /// The robot's command endpoint; nil means the state port + 1.
        public var robotCommands: String?
        /// Where the control socket binds (nil: none).
        public var control: String? = "tcp://127.0.0.1:*"
        /// Nil: the contract's hand-over.
        public var handOver: ChunkHandOver?
        /// Local policies: the solver and K (a remote policy uses the server's solver, and K up to the server's).
        public var method = SolverMethod.euler
        public var steps = 10
        /// A local policy's number format for the network's matrix products (`Precision`).
        public var precision = Precision.fp32
        /// Deadline-aware sampling: the latency budget of one chunk (a round trip, for a remote policy).
        public var deadlineMilliseconds: Double?
        /// The policy's control rate; nil means the contract's.
        public var rate: Double?
        /// Servo-rate output: commands per second, an integer multiple of the control rate (nil: one per step).
        public var servoRate: Double?
        public var interpolation = ServoInterpolation.minimumJerk
        /// Stop after this long (nil: until interrupted or `shouldEnd`).
        public var durationSeconds: Double?
        /// Stop when this many episodes have ended (nil: no limit).
        public var episodes: Int?
        /// One control step per robot state, chunks sampled when needed: reproducible, not real time.
        public var lockStep = false
        public var policySeed: UInt64 = 0
        public var watchdogPeriods = 3.0
        public var ensembleDecay: Float = 0.01
        public var replanInterval = 1
        /// How long to wait for the robot's first state.
        public var startupSeconds = 10.0
        /// This process's keys (its control socket's allow-list among them), and the public keys of the robot and
        /// of the policy server it connects to (nil: plain ZeroMQ).
        public var credentials = Credentials.none
        public var robotPublicKey: String?
        public var policyPublicKey: String?
        /// A remote policy's request timeout.
        public var policyTimeoutMilliseconds = 5_000
        /// Ask for SCHED_FIFO and locked memory.
        public var realTimeScheduling = false
        /// Spin this long before each deadline instead of sleeping.
        public var spinMicroseconds = 0

        public init(checkpointPath: String? = nil, policyEndpoint: String? = nil) {
            self.checkpointPath = checkpointPath
            self.policyEndpoint = policyEndpoint
        }
    }

    public struct Report: Codable, Sendable {
        public var task: String
        public var policy: String
        public var robot: String
        public var controlRateHz: Double
        public var solver: String
        public var loop: ControlLoopReport
        public var controlEndpoint: String?
    }

    /// The policy to run: the checkpoint's (a one-worker `Policy`) or the server's.
    public static func makeSampler(_ options: Options, context: ZMQContext) throws -> any ChunkSampler {
        switch (options.checkpointPath, options.policyEndpoint) {
        case (let path?, nil):
            let checkpoint = try Checkpoint(contentsOf: path)
            return Policy(checkpoint: checkpoint, capacity: 1, method: options.method, steps: options.steps,
                          seed: options.policySeed, precision: options.precision)
        case (nil, let endpoint?):
            let remote = try RemotePolicy(
                context: context, endpoint: endpoint, timeoutMilliseconds: options.policyTimeoutMilliseconds,
                security: options.credentials.clientSecurity(serverPublicKey: options.policyPublicKey))
            remote.solverSteps = min(options.steps, remote.solverSteps)
            return remote
        default:
            throw RuntimeError.invalidConfiguration("give a checkpoint or a policy server, not both and not neither")
        }
    }

    /// Sets up, prints what it does through `log`, runs until done, interrupted or `shouldEnd()`, and reports.
    /// `sampler` replaces the policy the options name; `robot` replaces the ZeroMQ robot (the caller keeps its
    /// episodes).
    public static func run(_ options: Options, sampler givenSampler: (any ChunkSampler)? = nil,
                           robot givenRobot: (any RobotLink)? = nil, shouldEnd: () -> Bool = { false },
                           log: (String) -> Void = { _ in }) throws -> Report
    {
        let context = try ZMQContext()
        let sampler = try givenSampler ?? makeSampler(options, context: context)
        let spec = sampler.spec
        let source = options.checkpointPath ?? options.policyEndpoint.map { "the policy served at \($0)" }
        let contract = try sampler.requireContract(source: source ?? "the policy")
        let rate = options.rate ?? contract.controlRateHz
        guard rate.isFinite, rate >= 0.1, rate <= 10_000 else {
            throw RuntimeError.invalidConfiguration("the control rate must be in [0.1, 10000] Hz, got \(rate)")
        }
        let period = UInt64((1e9 / rate).rounded())
        let servoTicks = try servoTicksPerPeriod(servoRate: options.servoRate, controlRate: rate, contract: contract)

        let robot: any RobotLink
        if let givenRobot {
            robot = givenRobot
        } else {
            let link: ZMQRobotLink
            guard let endpoint = options.robot else {
                throw RuntimeError.invalidConfiguration("give the robot's state endpoint")
            }
            guard let commands = options.robotCommands ?? RobotEndpoints.defaultCommandEndpoint(forState: endpoint)
            else {
                throw RuntimeError.invalidConfiguration(
                    "cannot derive the command endpoint from \(endpoint); give the robot's command endpoint")
            }
            link = try ZMQRobotLink(
                context: context, stateEndpoint: endpoint, commandEndpoint: commands,
                observationDimensions: spec.observationDimensions, actionDimensions: spec.actionDimensions,
                cameras: spec.cameras,
                security: options.credentials.clientSecurity(serverPublicKey: options.robotPublicKey))
            if options.lockStep { link.lockStepWaitSeconds = options.startupSeconds }
            robot = link
        }
        let description = try robot.awaitDescription(timeoutSeconds: options.startupSeconds)
        try check(description, spec: spec, controlRate: rate)
        log("robot: \(description.name): \(description.observationDimensions)-D observations"
            + (description.controlRateHz.map { String(format: ", %g Hz", $0) } ?? ""))

        if options.lockStep {
            guard servoTicks == 1, options.deadlineMilliseconds == nil else {
                throw RuntimeError.invalidConfiguration(
                    "lock-step runs take one command per robot state: no servo rate and no deadline")
            }
            return try runLockStep(options, sampler: sampler, contract: contract, robot: robot,
                                   robotName: description.name, period: period, shouldEnd: shouldEnd, log: log)
        }
        let calibration = try InferenceCalibration.measure(
            sampler: sampler, deadlineMilliseconds: options.deadlineMilliseconds)
        sampler.solverSteps = calibration.steps
        let lead = max(1, Int((calibration.budgetNanoseconds / Double(period)).rounded(.up)))
        log("policy: \(policyName(options)); \(sampler.solver.rawValue) K=\(calibration.steps), p99 "
            + String(format: "%.2f ms", calibration.p99Nanoseconds / 1e6)
            + " (\(calibration.samples) warm-up chunks\(options.policyEndpoint == nil ? "" : ", round trips")); "
            + "requested \(lead) period\(lead == 1 ? "" : "s") (\(String(format: "%.1f", Double(period) / 1e6)) ms) "
            + "ahead")

        var configuration = loopConfiguration(options, contract: contract, period: period)
        configuration.lead = lead
        if servoTicks > 1 {
            configuration.servo = try ControlLoop.Servo(
                ticksPerPeriod: servoTicks, interpolation: options.interpolation, contract: contract)
        }
        // The planner starts from the warm-up's measurement, so the first chunk already uses the picked K.
        let planner = options.deadlineMilliseconds.map { deadline in
            var planner = SolverStepPlanner(deadlineNanoseconds: UInt64(deadline * 1e6), maximumSteps: options.steps)
            planner.record(latencyNanoseconds: UInt64(calibration.p99Nanoseconds), solverSteps: calibration.steps)
            return planner
        }
        let clock = MonotonicClock(spinNanoseconds: UInt64(max(0, options.spinMicroseconds)) * 1000)
        let inference = ThreadedInference(sampler: sampler, planner: planner)
        defer { inference.stop() }
        let loop = try ControlLoop(spec: spec, robot: robot, inference: inference,
                                   safety: SafetyLimits(contract: contract), clock: clock,
                                   configuration: configuration)
        let controlServer = try options.control.map { endpoint in
            let authentication = try options.credentials.startAuthentication(context)
            return try ControlServer(context: context, endpoint: endpoint, control: loop.control,
                                     security: options.credentials.serverSecurity(binding: endpoint,
                                                                                  authentication: authentication)) {
                FileHandle.standardError.write(Data(($0 + "\n").utf8))
            }
        }
        defer { controlServer?.stop() }
        if let controlServer { log("control socket: \(controlServer.endpoint) (Control STOP / RESUME / STATUS)") }
        log(String(format: "loop: %.1f Hz", rate) + (servoTicks > 1
                ? String(format: ", servo %.0f Hz (%@ interpolation)", rate * Double(servoTicks),
                         options.interpolation.rawValue) : "")
            + ", hand-over \(configuration.handOver.rawValue)")
        let slack = minimizeTimerSlack() ? "timer slack 1 ns" : "default timer slack"
        let scheduling = options.realTimeScheduling ? "\(requestRealTimeScheduling()), \(slack)" : slack
        log("scheduling: \(scheduling)")

        Interrupt.install()
        let maximumTicks = options.durationSeconds.map { Int(($0 * rate).rounded()) }
        loop.run(maximumTicks: maximumTicks, start: phaseLockedStart(description, period: period)) {
            Interrupt.requested || shouldEnd() || options.episodes.map { loop.episodesEnded >= $0 } ?? false
        }

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
        return Report(task: spec.task, policy: policyName(options), robot: description.name, controlRateHz: rate,
                      solver: sampler.solver.rawValue, loop: report, controlEndpoint: controlServer?.endpoint)
    }

    /// The first tick's time: half a millisecond after a state of a robot streaming at the loop's rate is expected
    /// (its phase read from the first state's arrival), so that each period acts on a fresh state; now otherwise.
    static func phaseLockedStart(_ robot: RobotDescription, period: UInt64) -> UInt64? {
        guard let arrival = robot.stateArrival, let rate = robot.controlRateHz,
              abs(1e9 / rate - Double(period)) < 1000 else { return nil }
        let now = monotonicNanoseconds() + 1_000_000
        let periods = (now - arrival + period - 1) / period
        return arrival + periods * period + 500_000
    }

    /// The lock-step run: the loop on a clock that only counts periods, inference inline and used at once (lead 0).
    static func runLockStep(_ options: Options, sampler: any ChunkSampler, contract: DeploymentContract,
                            robot: any RobotLink, robotName: String, period: UInt64, shouldEnd: () -> Bool,
                            log: (String) -> Void) throws -> Report {
        var configuration = loopConfiguration(options, contract: contract, period: period)
        configuration.lead = 0
        configuration.statesTimedOnArrival = true
        let loop = try ControlLoop(spec: sampler.spec, robot: robot, inference: InlineInference(sampler: sampler),
                                   safety: SafetyLimits(contract: contract), clock: ManualClock(),
                                   configuration: configuration)
        log("lock-step: one control step per robot state, \(sampler.solver.rawValue) K=\(sampler.solverSteps), "
            + "hand-over \(configuration.handOver.rawValue)")
        Interrupt.install()
        let maximumTicks = options.durationSeconds.map { Int(($0 * 1e9 / Double(period)).rounded()) }
        loop.run(maximumTicks: maximumTicks) {
            Interrupt.requested || shouldEnd() || options.episodes.map { loop.episodesEnded >= $0 } ?? false
                || loop.status.state == .stopped
        }
        return Report(task: sampler.spec.task, policy: policyName(options), robot: robotName,
                      controlRateHz: 1e9 / Double(period), solver: sampler.solver.rawValue, loop: loop.report,
                      controlEndpoint: nil)
    }

    /// The loop's settings that both kinds of run take from the options and the contract.
    static func loopConfiguration(_ options: Options, contract: DeploymentContract, period: UInt64)
        -> ControlLoop.Configuration
    {
        var configuration = ControlLoop.Configuration(periodNanoseconds: period)
        configuration.handOver = options.handOver ?? contract.handOver
        configuration.replanInterval = options.replanInterval
        configuration.ensembleDecay = options.ensembleDecay
        configuration.watchdogPeriods = options.watchdogPeriods
        configuration.policySeed = options.policySeed
        return configuration
    }

    static func policyName(_ options: Options) -> String {
        options.checkpointPath.map { "\($0) at \(options.precision.rawValue) (\(options.precision.kernel) kernel)" }
            ?? "served by \(options.policyEndpoint ?? "")"
    }

    /// Refuses a robot whose observations, actions or control rate differ from the policy's, naming both values.
    public static func check(_ robot: RobotDescription, spec: PolicySpec, controlRate: Double) throws(RuntimeError) {
        guard robot.observationDimensions == spec.observationDimensions else {
            throw .contractMismatch("\(robot.name) sends \(robot.observationDimensions)-D observations; the policy "
                + "takes \(spec.observationDimensions)-D")
        }
        if let actions = robot.actionDimensions, actions != spec.actionDimensions {
            throw .contractMismatch("\(robot.name) takes \(actions)-D actions; the policy gives "
                + "\(spec.actionDimensions)-D")
        }
        if let robotRate = robot.controlRateHz, abs(robotRate - controlRate) > 1e-6 * controlRate {
            throw .contractMismatch("\(robot.name) steps at \(robotRate) Hz; the policy acts at \(controlRate) Hz")
        }
        if let cameras = robot.cameras {
            for camera in spec.cameras where !cameras.contains(camera) {
                throw .contractMismatch("\(robot.name) sends camera frames of \(CameraFrames.describe(cameras)); the "
                    + "policy takes \(CameraFrames.describe(spec.cameras)) (no \(camera.shapeDescription))")
            }
        }
    }

    /// Servo ticks per control period for `servoRate` (1 without one): an integer multiple of the control rate, and
    /// only for actions that can be interpolated (positions and velocities, not per-step deltas).
    public static func servoTicksPerPeriod(servoRate: Double?, controlRate: Double, contract: DeploymentContract)
        throws(RuntimeError) -> Int
    {
        guard let servoRate else { return 1 }
        let ticks = (servoRate / controlRate).rounded()
        guard servoRate.isFinite, ticks >= 1, ticks <= 1000, abs(ticks * controlRate - servoRate) < 1e-6 * servoRate
        else {
            throw .invalidConfiguration("the servo rate (\(servoRate) Hz) must be a whole multiple of the control "
                + "rate (\(controlRate) Hz), at most 1000 times it")
        }
        guard ticks == 1 || contract.actionKind != .delta else {
            throw .invalidConfiguration("this policy's actions are per-step deltas (applied once per control period); "
                + "they cannot be interpolated at a servo rate")
        }
        return Int(ticks)
    }
}

/// Warm-up before the loop starts: times chunks (round trips, for a remote policy) on a window of zeros (and black
/// frames), and with a deadline picks the solver steps.
public struct InferenceCalibration: Sendable {
    public var steps: Int
    public var p99Nanoseconds: Double
    /// The time a chunk is given: the deadline, or 1.5 x the measured p99 + 0.5 ms.
    public var budgetNanoseconds: Double
    public var samples: Int

    public static func measure(sampler: any ChunkSampler, deadlineMilliseconds: Double?, samples: Int = 40) throws
        -> InferenceCalibration
    {
        let spec = sampler.spec
        let window = [Float](repeating: 0, count: spec.observationSteps * spec.observationDimensions)
        let frames = [UInt8](repeating: 0, count: max(spec.observationSteps * spec.frameBytesPerStep, 1))
        var chunk = [Float](repeating: 0, count: spec.predictionSteps * spec.actionDimensions)
        func p99(steps: Int) throws -> Double {
            sampler.solverSteps = steps
            var latencies: [Double] = []
            for _ in 0..<samples {
                let begin = monotonicNanoseconds()
                try window.withUnsafeBufferPointer { w in
                    try frames.withUnsafeBufferPointer { f in
                        try chunk.withUnsafeMutableBufferPointer {
                            try sampler.sampleChunks(observations: w.baseAddress!,
                                                     frames: spec.cameras.isEmpty ? nil : f.baseAddress,
                                                     batch: 1, into: $0.baseAddress!)
                        }
                    }
                }
                latencies.append(Double(monotonicNanoseconds() - begin))
            }
            return LatencySummary(latencies).p99
        }
        let configured = sampler.solverSteps
        let measured = try p99(steps: configured)
        guard let deadline = deadlineMilliseconds else {
            return InferenceCalibration(steps: configured, p99Nanoseconds: measured,
                                        budgetNanoseconds: measured * 1.5 + 500_000, samples: samples)
        }
        guard deadline > 0 else { throw RuntimeError.invalidConfiguration("the deadline must be positive") }
        var planner = SolverStepPlanner(deadlineNanoseconds: UInt64(deadline * 1e6), maximumSteps: configured)
        planner.record(latencyNanoseconds: UInt64(measured), solverSteps: configured)
        let steps = planner.steps
        return InferenceCalibration(steps: steps, p99Nanoseconds: try p99(steps: steps),
                                    budgetNanoseconds: deadline * 1e6, samples: samples)
    }
}
