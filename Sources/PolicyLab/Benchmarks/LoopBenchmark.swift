import CAllocationCounter
import FlowPolicy
import PolicyRuntime
import Foundation
import SimBridge

/// `flowpolicy bench loop`: the control loop streaming for a fixed time, with the policy's inference on its own
/// thread, against the simulated robot over ZeroMQ on loopback (the deployment path: a `flowpolicy robot` on a thread
/// of this process, stepping at the policy's rate) or the environment in process. The loop commands at `rate`; when
/// that is above the policy's rate it interpolates between the policy's actions (servo-rate output) within the
/// checkpoint's velocity, acceleration and jerk limits. Reports wake-up jitter, inference and observation-to-action
/// latency, missed deadlines, the servo's largest commanded derivatives beside their limits, and the heap
/// allocations per period on the loop thread. A watchdog stop (a missed inference deadline) is counted and the loop
/// resumed, so the figures cover the whole run.
public enum LoopBenchmark {
    public struct Settings: Sendable {
        /// Commands per second.
        public var rate = 100.0
        /// The policy's control rate; nil means the checkpoint's (or `rate`, if that is lower).
        public var policyRate: Double?
        public var seconds = 60.0
        public var method = SolverMethod.euler
        public var steps = 10
        public var handOver = ChunkHandOver.receding
        public var interpolation = ServoInterpolation.minimumJerk
        /// Through ZeroMQ to a simulated robot (true), or the environment in process.
        public var zeroMQ = true
        public var spinMicroseconds = 0
        public var realTimeScheduling = false

        public init() {}
    }

    public struct Report: Codable, Sendable {
        public var checkpoint: String
        public var task: String
        public var robot: String
        public var rateHz: Double
        public var policyRateHz: Double
        public var seconds: Double
        public var solver: String
        public var steps: Int
        public var loop: ControlLoopReport
        /// Heap allocations on the loop thread per period (libzmq's own message buffers included with ZeroMQ).
        public var allocationsPerPeriod: Double
        public var loadAverageBefore: String
        public var loadAverageAfter: String
    }

    public static func run(checkpointPath: String, settings: Settings, log: (String) -> Void = { _ in }) throws
        -> Report
    {
        let checkpoint = try CheckpointReader.read(checkpointPath)
        let spec = checkpoint.spec
        let task = try TaskDescription.named(spec.task)
        guard let contract = checkpoint.contract else { throw RuntimeError.missingContract(path: checkpointPath) }
        // In process the environment steps once per command, so the policy acts at the loop's rate there.
        let policyRate = settings.policyRate ?? (settings.zeroMQ ? min(contract.controlRateHz, settings.rate)
                                                                  : settings.rate)
        guard policyRate.isFinite, policyRate >= 0.1, settings.rate <= 100_000 else {
            throw RuntimeError.invalidConfiguration("the rates must be in [0.1, 100000] Hz")
        }
        let ticks = Int((settings.rate / policyRate).rounded())
        guard ticks >= 1, abs(Double(ticks) * policyRate - settings.rate) < 1e-6 * settings.rate else {
            throw RuntimeError.invalidConfiguration(
                "the command rate (\(settings.rate) Hz) must be a whole multiple of the policy's (\(policyRate) Hz)")
        }
        guard ticks == 1 || settings.zeroMQ else {
            throw RuntimeError.invalidConfiguration(
                "servo-rate output needs the robot over ZeroMQ; in process the simulation steps once per command")
        }
        let period = UInt64((1e9 / policyRate).rounded())
        let policy = Policy(checkpoint: checkpoint, capacity: 1, method: settings.method, steps: settings.steps)
        let calibration = try InferenceCalibration.measure(sampler: policy, deadlineMilliseconds: nil)
        let lead = max(1, Int((calibration.budgetNanoseconds / Double(period)).rounded(.up)))
        log(String(format: "inference p99 %.2f ms at K=%d: chunks requested %d period(s) ahead",
                   calibration.p99Nanoseconds / 1e6, settings.steps, lead))
        let clock = MonotonicClock(spinNanoseconds: UInt64(max(0, settings.spinMicroseconds)) * 1000)
        let context = try ZMQContext()
        let robot: any RobotLink
        let robotName: String
        var robotThread: BackgroundThread?
        let stopRobot = StopFlag()
        // The robot publishes half a millisecond before each of the loop's periods, as a robot whose state stream is
        // in phase with its controller would, so that observation-to-action measures the path rather than the phase.
        let start = monotonicNanoseconds() + 500_000_000
        if settings.zeroMQ {
            var options = SimulatedRobot.Options(task: task, stateEndpoint: "tcp://127.0.0.1:*")
            options.rate = policyRate
            options.start = start - 500_000
            let simulated = Unchecked(try SimulatedRobot(options: options, context: context))
            robotName = "simulated \(task.name) robot over ZeroMQ (\(simulated.value.stateEndpoint))"
            robot = try ZMQRobotLink(context: context, stateEndpoint: simulated.value.stateEndpoint,
                                     commandEndpoint: simulated.value.commandEndpoint,
                                     observationDimensions: spec.observationDimensions,
                                     actionDimensions: spec.actionDimensions)
            robotThread = BackgroundThread(name: "bench robot") {
                _ = try simulated.value.run { stopRobot.isSet }
            }
        } else {
            robot = try EnvironmentRobot(task: task, seeds: (0..<10_000).map { task.evaluationSeed + $0 }, clock: clock)
            robotName = "\(task.name) in process"
        }
        defer {
            stopRobot.set()
            _ = try? robotThread?.join()
        }
        var configuration = ControlLoop.Configuration(periodNanoseconds: period)
        configuration.handOver = settings.handOver
        configuration.lead = lead
        if ticks > 1 {
            configuration.servo = try ControlLoop.Servo(ticksPerPeriod: ticks, interpolation: settings.interpolation,
                                                        contract: contract)
        }
        let inference = ThreadedInference(sampler: policy)
        defer { inference.stop() }
        let loop = try ControlLoop(spec: spec, robot: robot, inference: inference,
                                   safety: SafetyLimits(contract: contract), clock: clock, configuration: configuration)
        let slack = minimizeTimerSlack() ? "timer slack 1 ns" : "default timer slack"
        let scheduling = settings.realTimeScheduling ? "\(requestRealTimeScheduling()), \(slack)" : slack
        let before = loadAverage()
        Interrupt.install()
        let periods = Int((settings.seconds * policyRate).rounded())
        let allocationsBefore = fp_thread_allocation_count()
        // The benchmark covers the whole time: after a watchdog stop (counted in the report) it resumes.
        loop.run(maximumTicks: periods, start: start) {
            if loop.status.state == LoopState.stopped { loop.control.resume(overrideWatchdog: true) }
            return Interrupt.requested
        }
        let allocations = fp_thread_allocation_count() - allocationsBefore
        var report = loop.report
        report.scheduling = scheduling
        return Report(
            checkpoint: checkpointPath, task: task.name, robot: robotName, rateHz: settings.rate,
            policyRateHz: policyRate, seconds: Double(loop.tickCount) / policyRate, solver: settings.method.rawValue,
            steps: settings.steps, loop: report,
            allocationsPerPeriod: Double(allocations) / Double(max(loop.tickCount, 1)),
            loadAverageBefore: before, loadAverageAfter: loadAverage())
    }
}

/// A flag set by one thread and read by others.
final class StopFlag: @unchecked Sendable {
    // `@unchecked`: `value` is guarded by `lock`.
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// Hands a non-`Sendable` object to exactly one other thread (which then owns it).
final class Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
