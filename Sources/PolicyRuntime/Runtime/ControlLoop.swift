import FlowPolicy
import Foundation

/// The real-time control loop: every period it reads the robot's newest state, starts inference early enough,
/// picks the action for this step from the chunks that have arrived, filters it, and commands it.
///
/// Timing: tick `k` wakes at the absolute deadline `start + k * period` of the injected clock (never
/// `sleep(period - elapsed)`), so lateness does not accumulate. Inference runs elsewhere (`ChunkInference`): a chunk
/// is requested `lead` ticks before it is needed, and the loop only copies buffers, so it never waits for it.
///
/// Watchdog: no new state for `watchdogPeriods` periods (counted from when the robot took the last one, on this
/// machine's clock, and at most from the deadline of the tick that read it, so a frozen robot is caught at the first
/// tick at the limit; lock-step runs count from the deadline), a chunk not there by its deadline, a failed
/// policy, or a loop that overran a period (paused or descheduled) commands HOLD and stops the loop before it acts
/// again. It goes on commanding HOLD until the operator's `control.resume(overrideWatchdog: true)`. Every action passes
/// the `SafetyFilter`; a rejected one is commanded as HOLD and counted. Each tick allocates nothing.
///
/// A tick that overruns the next deadline counts as a missed deadline; periods that are over by then are skipped.
///
/// Servo-rate output (`Configuration.servo`): a tick commands N times, at `deadline + i * period / N`, the
/// interpolation from the previous action to this one (`ServoInterpolator`: linear or minimum jerk, with velocity,
/// acceleration and jerk limits). Each servo command passes a second safety filter (bounds, and the largest change
/// one servo period allows), and the watchdog also looks at the state's age at every servo wake-up.
///
/// Camera frames: for a policy with cameras, each state's frames (from the robot link, which refuses a state
/// without them: the watchdog path, naming why) join a frame window beside the observation window, and each chunk is
/// conditioned on both.
///
/// Per tick: wake → take stop/resume requests → newest state (windows; a new episode resets the windows, the
/// scheduler and the noise) → watchdog → collect a finished chunk → request one if due → deadline check →
/// action → safety filter → command (or N servo commands) → histograms.
public final class ControlLoop {
    public struct Configuration: Sendable {
        public var periodNanoseconds: UInt64
        public var handOver: ChunkHandOver = .receding
        /// Ticks between requesting a chunk and needing it.
        public var lead = 1
        /// Ensembling: ticks between requests (at least `lead`).
        public var replanInterval = 1
        /// Ensembling: the ACT weight decay k in `exp(-k i)`.
        public var ensembleDecay: Float = 0.01
        /// A state older than this many periods stops the loop.
        public var watchdogPeriods = 3.0
        /// Seed of the policy's noise; episode e samples with `noiseSeed(policySeed, e)`.
        public var policySeed: UInt64 = 0
        /// Servo-rate output between the policy's actions (nil: one command per period).
        public var servo: Servo?
        /// Date states by the tick that read them rather than by their own timestamps (lock-step, where the loop's
        /// clock only counts periods).
        public var statesTimedOnArrival = false

        public init(periodNanoseconds: UInt64) {
            self.periodNanoseconds = periodNanoseconds
        }
    }

    /// Servo-rate output: commands per control period, how they are interpolated, and their limits.
    public struct Servo: Sendable {
        public var ticksPerPeriod: Int
        public var interpolation: ServoInterpolation
        public var limits: ServoLimits

        public init(ticksPerPeriod: Int, interpolation: ServoInterpolation, limits: ServoLimits) {
            self.ticksPerPeriod = ticksPerPeriod
            self.interpolation = interpolation
            self.limits = limits
        }

        /// The contract's velocity, acceleration and jerk limits.
        public init(ticksPerPeriod: Int, interpolation: ServoInterpolation, contract: DeploymentContract)
            throws(RuntimeError)
        {
            limits = try ServoLimits(maximumVelocity: contract.maximumVelocity,
                                     maximumAcceleration: contract.maximumAcceleration,
                                     maximumJerk: contract.maximumJerk)
            self.ticksPerPeriod = ticksPerPeriod
            self.interpolation = interpolation
        }
    }

    public let configuration: Configuration
    public let spec: PolicySpec
    public let robot: any RobotLink
    public let inference: any ChunkInference
    public let clock: any ControlClock
    public let control = LoopControl()
    public let scheduler: ActionChunkScheduler
    public private(set) var safety: SafetyFilter

    public private(set) var wakeJitter = LatencyHistogram()
    public private(set) var inferenceLatency = LatencyHistogram()
    public private(set) var observationToAction = LatencyHistogram()
    public private(set) var status = LoopStatus()
    public private(set) var missedLoopDeadlines = 0
    public private(set) var missedInferenceDeadlines = 0
    public private(set) var staleStateStops = 0
    public private(set) var actCommands = 0
    public private(set) var episodesEnded = 0
    public private(set) var inferenceFailures = 0
    /// Chunk numbers clamped to the action bounds on arrival.
    public private(set) var clampedActions = 0
    /// Resume requests after a watchdog stop without the operator's override (refused), and with it (obeyed).
    public private(set) var refusedResumes = 0
    public private(set) var watchdogOverrides = 0
    /// The watchdog's and the stop requests' reasons, in order (at most 100 kept).
    public private(set) var stops: [String] = []

    private let Do: Int, Da: Int
    private var window: ObservationWindow
    private let observation: UnsafeMutablePointer<Float>
    /// A policy with cameras: the newest state's frames `[frameBytesPerStep]` and the last To steps' frames.
    private let hasCameras: Bool
    private let stateFrames: UnsafeMutablePointer<UInt8>
    private var frameWindow: FrameWindow
    private let chunk: UnsafeMutablePointer<Float>
    private let committed: UnsafeMutablePointer<Float>
    private let planned: UnsafeMutablePointer<Float>
    private let lastCommanded: UnsafeMutablePointer<Float>
    private var hasCommanded = false
    /// The action the robot reports applying (`[Da]`), where its state says.
    private let applied: UnsafeMutablePointer<Float>
    private var hasApplied = false
    // Servo-rate output: the interpolator, the filter of each servo command, the last servo command `[Da]`.
    private let interpolator: ServoInterpolator?
    public private(set) var servoSafety: SafetyFilter?
    private let servoCommand: UnsafeMutablePointer<Float>
    private let lastServoCommand: UnsafeMutablePointer<Float>
    private var hasServoCommand = false
    public private(set) var servoCommands = 0
    /// Servo commands that left after the next one's slot had begun.
    public private(set) var missedServoDeadlines = 0
    private var lastState: RobotStateInfo?
    /// When the newest state was taken (its timestamp, on this clock; at most the deadline of the tick that read it).
    private var lastStateTime: UInt64 = 0
    private var generation = 0
    private var startTime: UInt64 = 0
    public private(set) var tickCount = 0

    public init(spec: PolicySpec, robot: any RobotLink, inference: any ChunkInference, safety: SafetyLimits,
                clock: any ControlClock, configuration: Configuration) throws(RuntimeError) {
        guard robot.observationDimensions == spec.observationDimensions,
              robot.actionDimensions == spec.actionDimensions, safety.dimensions == spec.actionDimensions
        else {
            throw .invalidConfiguration(
                "the policy takes \(spec.observationDimensions)-D observations and gives \(spec.actionDimensions)-D "
                    + "actions; the robot has \(robot.observationDimensions)-D observations and "
                    + "\(robot.actionDimensions)-D actions (safety limits: \(safety.dimensions)-D)")
        }
        guard robot.cameras == spec.cameras else {
            throw .invalidConfiguration(
                "the policy takes camera frames of \(CameraFrames.describe(spec.cameras)); the robot link delivers "
                    + CameraFrames.describe(robot.cameras))
        }
        guard configuration.periodNanoseconds > 0, configuration.watchdogPeriods > 0 else {
            throw .invalidConfiguration("the control period and the watchdog must be positive")
        }
        if let servo = configuration.servo {
            let servoSeconds = Double(configuration.periodNanoseconds) / 1e9 / Double(servo.ticksPerPeriod)
            interpolator = try ServoInterpolator(
                dimensions: spec.actionDimensions, ticksPerControlPeriod: servo.ticksPerPeriod,
                servoPeriodSeconds: servoSeconds, interpolation: servo.interpolation, limits: servo.limits)
            // One servo period may move a component by at most its velocity limit (with a margin for the rounding of
            // the float32 commands) or, without one, by the largest change of a whole control period.
            let step = (0..<spec.actionDimensions).map { d in
                let rounding = 2 * max(abs(safety.low[d]), abs(safety.high[d])).ulp
                return servo.limits.maximumVelocity.map { $0[d] * Float(servoSeconds) * 1.001 + rounding }
                    ?? safety.maximumStepChange[d]
            }
            servoSafety = SafetyFilter(limits: try SafetyLimits(low: safety.low, high: safety.high,
                                                                 maximumStepChange: step))
        } else {
            interpolator = nil
            servoSafety = nil
        }
        self.configuration = configuration
        self.spec = spec
        self.robot = robot
        self.inference = inference
        self.clock = clock
        self.safety = SafetyFilter(limits: safety)
        scheduler = try ActionChunkScheduler(
            spec: spec, mode: configuration.handOver, lead: configuration.lead,
            replanInterval: configuration.replanInterval, ensembleDecay: configuration.ensembleDecay)
        (Do, Da) = (spec.observationDimensions, spec.actionDimensions)
        window = ObservationWindow(steps: spec.observationSteps, dimensions: Do)
        hasCameras = !spec.cameras.isEmpty
        frameWindow = FrameWindow(steps: spec.observationSteps, bytesPerStep: spec.frameBytesPerStep)
        stateFrames = .allocate(capacity: max(spec.frameBytesPerStep, 1))
        stateFrames.initialize(repeating: 0, count: max(spec.frameBytesPerStep, 1))
        func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: count)
            pointer.initialize(repeating: 0, count: count)
            return pointer
        }
        observation = buffer(Do)
        chunk = buffer(spec.predictionSteps * Da)
        committed = buffer(spec.predictionSteps * Da)
        planned = buffer(Da)
        lastCommanded = buffer(Da)
        applied = buffer(Da)
        servoCommand = buffer(Da)
        lastServoCommand = buffer(Da)
        stops.reserveCapacity(100)
    }

    deinit {
        for pointer in [observation, chunk, committed, planned, lastCommanded, applied, servoCommand,
                        lastServoCommand] {
            pointer.deallocate()
        }
        stateFrames.deallocate()
    }

    /// The noise seed of episode `episode` under `policySeed`.
    public static func noiseSeed(policySeed: UInt64, episode: UInt64) -> UInt64 {
        policySeed ^ (episode &* 0x9E37_79B9_7F4A_7C15)
    }

    /// Runs ticks until `maximumTicks`, `control.end()` or `shouldEnd()` (checked every tick). The first tick is at
    /// `start` (default: now).
    public func run(maximumTicks: Int? = nil, start: UInt64? = nil, shouldEnd: () -> Bool = { false }) {
        startTime = start ?? clock.now()
        while maximumTicks.map({ tickCount < $0 }) ?? true {
            if tick() || shouldEnd() { break }
        }
        status.state = .finished
        _ = control.exchange(status)
    }

    /// One control period; returns true when an end was requested. `run` calls it; tests may drive it directly
    /// (the first call fixes the start time).
    @discardableResult
    public func tick() -> Bool {
        let period = configuration.periodNanoseconds
        if tickCount == 0 && startTime == 0 { startTime = clock.now() }
        let k = tickCount
        let deadline = startTime + UInt64(k) * period
        clock.sleep(until: deadline)
        let wake = clock.now()
        wakeJitter.record(nanoseconds: wake > deadline ? wake - deadline : 0)
        tickCount += 1
        status.step = k

        // Woken more than a period late (the process was paused or descheduled): the robot went a period without a
        // command, so the loop stops before it acts again.
        if wake > deadline + period { stop("the loop overran a period (paused or descheduled)") }

        // Requests from other threads.
        let requests = control.exchange(status)
        if requests.end { return true }
        if let reason = requests.stop { stop(reason, byWatchdog: false) }
        if requests.resume && status.state == .stopped {
            if status.stoppedByWatchdog && !requests.overrideWatchdog {
                refusedResumes += 1
            } else {
                if status.stoppedByWatchdog { watchdogOverrides += 1 }
                restart(at: k)
            }
        }

        // The newest state.
        var fresh: RobotStateInfo?
        do {
            fresh = try robot.receiveLatest(observation: observation, appliedAction: applied,
                                            frames: hasCameras ? stateFrames : nil)
        } catch {
            stop("the robot link failed")
        }
        if let info = fresh {
            lastStateTime = configuration.statesTimedOnArrival ? deadline : min(info.timestampNanoseconds, deadline)
            hasApplied = info.hasAppliedAction
            if info.episodeStart || lastState == nil || info.episode != lastState!.episode {
                window.reset(to: observation)
                if hasCameras { frameWindow.reset(to: stateFrames) }
                inference.resetNoise(
                    seed: Self.noiseSeed(policySeed: configuration.policySeed, episode: info.episode))
                if status.state != .stopped { restart(at: k) }
            } else {
                window.push(observation)
                if hasCameras { frameWindow.push(stateFrames) }
            }
            lastState = info
            if info.done { episodesEnded += 1 }
        }
        if lastState != nil, status.state != .stopped,
           Double(deadline - lastStateTime) >= configuration.watchdogPeriods * Double(period) {
            staleStateStops += 1
            stopForStaleState()
        }

        // Inference: hand over a finished chunk, start the next one if due, check the deadline.
        collectChunk()
        if let state = lastState, !state.done, status.state != .stopped, scheduler.requestDue(at: k) {
            let committedSteps = scheduler.committedPrefix(forRequestAt: k, into: committed)
            let accepted = window.values.withUnsafeBufferPointer { values in
                frameWindow.bytes.withUnsafeBufferPointer { frames in
                    inference.submit(window: values.baseAddress!, frames: hasCameras ? frames.baseAddress : nil,
                                     committed: committedSteps > 0 ? committed : nil, committedSteps: committedSteps,
                                     tag: k, generation: generation)
                }
            }
            if accepted {
                scheduler.requested(at: k)
                collectChunk()
            }
        }
        if status.state != .stopped && scheduler.deadlineMissed(at: k) {
            missedInferenceDeadlines += 1
            stop("missed inference deadline")
        }

        // The action.
        var mode = CommandMode.hold
        if let state = lastState, !state.done, status.state == .starting || status.state == .running {
            if scheduler.action(at: k, into: planned) {
                if safety.check(planned, previous: hasCommanded ? lastCommanded : nil) == nil {
                    mode = .act
                    status.state = .running
                }
            } else if status.state == .running {
                missedInferenceDeadlines += 1
                stop("no chunk covers the step")
            }
        }
        // When the period's (first) command left: observation-to-action and the deadline are measured on it.
        let sent: UInt64
        if let interpolator {
            (sent, mode) = commandServoTicks(mode, interpolator: interpolator, step: k, deadline: deadline)
        } else {
            do {
                try robot.send(mode, action: planned, answering: lastState, step: k)
            } catch {
                stop("the robot link failed")
            }
            sent = clock.now()
        }
        if mode == .act {
            lastCommanded.update(from: planned, count: Da)
            hasCommanded = true
            actCommands += 1
        } else {
            status.holdCommands += 1
        }
        scheduler.recordCommanded(hasCommanded ? lastCommanded : nil, at: k)
        if let info = fresh, sent > info.timestampNanoseconds {
            observationToAction.record(nanoseconds: sent - info.timestampNanoseconds)
        }
        // A command is late when it leaves after its successor's slot (the next period, or the next servo tick).
        let slot = period / UInt64(interpolator?.ticksPerControlPeriod ?? 1)
        if sent > deadline + slot { missedLoopDeadlines += 1 }
        // After a stall, periods that are already over are skipped (their commands would be stale), not run back to
        // back; the step counter keeps real time, so the chunks stay aligned. (With servo output, a period whose
        // first slot is still running is not over.)
        let now = interpolator == nil ? sent : clock.now()
        var skipped = 0
        while startTime + UInt64(tickCount + 1) * period + (slot < period ? slot : 0) <= now {
            tickCount += 1
            missedLoopDeadlines += 1
            skipped += 1
        }
        // The robot went a whole period without a command: whatever held it up (a pause, a descheduled process),
        // the loop does not go back to acting by itself.
        if skipped > 0 { stop("the loop overran a period (paused or descheduled)") }
        status.rejectedActions = safety.rejected
        status.missedDeadlines = missedInferenceDeadlines + missedLoopDeadlines
        status.solverSteps = inference.solverSteps
        return false
    }

    /// The N servo commands of tick `k`: the interpolation towards this period's action (or HOLD), each filtered.
    /// Returns when the first one left, and the mode the period ended in (HOLD if a command was refused or the loop
    /// stopped on the way).
    private func commandServoTicks(_ periodMode: CommandMode, interpolator: ServoInterpolator, step k: Int,
                                   deadline: UInt64) -> (sent: UInt64, mode: CommandMode) {
        let period = configuration.periodNanoseconds
        let ticks = UInt64(interpolator.ticksPerControlPeriod)
        var mode = periodMode
        if mode == .act {
            if !hasServoCommand { interpolator.reset(start: hasApplied ? UnsafePointer(applied) : nil) }
            if !interpolator.setTarget(planned) { mode = .hold }
        } else {
            interpolator.hold()
        }
        var firstSent: UInt64 = 0
        for i in 0..<ticks {
            if i > 0 {
                let servoDeadline = deadline + i * period / ticks
                clock.sleep(until: servoDeadline)
                let wake = clock.now()
                wakeJitter.record(nanoseconds: wake > servoDeadline ? wake - servoDeadline : 0)
                if wake > servoDeadline + period / ticks { missedServoDeadlines += 1 }
                // The watchdog between the loop's own ticks: a stale state, or a whole period lost in this one.
                if mode == .act {
                    if Double(servoDeadline - lastStateTime) >= configuration.watchdogPeriods * Double(period) {
                        staleStateStops += 1
                        stopForStaleState()
                    } else if wake > servoDeadline + period {
                        stop("the loop overran a period (paused or descheduled)")
                    }
                    if status.state == .stopped {
                        mode = .hold
                        interpolator.hold()
                    }
                }
            }
            if mode == .act {
                if !interpolator.command(tick: Int(i), into: servoCommand)
                    || servoSafety!.check(servoCommand, previous: hasServoCommand ? lastServoCommand : nil) != nil
                {
                    mode = .hold
                    interpolator.hold()
                }
            }
            do {
                try robot.send(mode, action: servoCommand, answering: lastState, step: k)
            } catch {
                stop("the robot link failed")
            }
            if mode == .act {
                lastServoCommand.update(from: servoCommand, count: Da)
                hasServoCommand = true
            }
            if i == 0 { firstSent = clock.now() }
            servoCommands += 1
        }
        return (firstSent, mode)
    }

    private func collectChunk() {
        guard let result = inference.collect(into: chunk) else { return }
        inferenceLatency.record(nanoseconds: result.latencyNanoseconds)
        guard result.generation == generation else { return }  // a chunk of an earlier episode or run
        if result.failed {
            inferenceFailures += 1
            stop("the policy failed to sample a chunk")
            return
        }
        clampedActions += safety.limits.clamp(chunk, rows: spec.predictionSteps)
        scheduler.accept(chunk: chunk, requestStep: result.tag)
        status.chunks += 1
    }

    /// Forgets the chunks and starts over at tick `k` (new episode, resume).
    private func restart(at k: Int) {
        generation += 1
        scheduler.reset(firstRequestAt: k)
        hasCommanded = false
        hasServoCommand = false
        status.state = .starting
        status.reason = ""
        status.stoppedByWatchdog = false
    }

    /// The watchdog's stop for want of a fresh state, naming why the robot's latest states were refused, if they were.
    private func stopForStaleState() {
        guard status.state != .stopped else { return }
        if let refusal = robot.lastRefusal {
            stop("robot state older than the watchdog limit (the states since were refused: \(refusal))")
        } else {
            stop("robot state older than the watchdog limit")
        }
    }

    /// Stops the loop: by the watchdog (the default; resuming then needs the operator's override) or on request.
    private func stop(_ reason: String, byWatchdog: Bool = true) {
        guard status.state != .stopped else { return }
        status.state = .stopped
        status.reason = reason
        status.stoppedByWatchdog = byWatchdog
        if stops.count < 100 { stops.append(reason) }
    }

    /// The figures of the run so far.
    public var report: ControlLoopReport {
        var report = ControlLoopReport(
            handOver: configuration.handOver.rawValue,
            periodMilliseconds: Double(configuration.periodNanoseconds) / 1e6, lead: configuration.lead,
            ticks: tickCount, wakeJitter: wakeJitter.summary, inferenceLatency: inferenceLatency.summary,
            observationToAction: observationToAction.summary, missedLoopDeadlines: missedLoopDeadlines,
            missedInferenceDeadlines: missedInferenceDeadlines, actCommands: actCommands,
            holdCommands: status.holdCommands,
            rejectedNonFinite: safety.rejectedNonFinite, rejectedOutOfBounds: safety.rejectedOutOfBounds,
            rejectedStepChange: safety.rejectedStepChange, chunks: status.chunks,
            boundaries: scheduler.boundaries, largestBoundaryJump: scheduler.largestBoundaryJump,
            meanBoundaryJump: scheduler.boundaries == 0 ? 0 : scheduler.boundaryJumpSum / Double(scheduler.boundaries),
            largestInteriorChange: scheduler.largestInteriorChange,
            meanInteriorChange: scheduler.interiorSteps == 0
                ? 0 : scheduler.interiorChangeSum / Double(scheduler.interiorSteps),
            stops: stops, finalState: status.state.rawValue, episodesEnded: episodesEnded,
            inferenceFailures: inferenceFailures, clampedActions: clampedActions, refusedResumes: refusedResumes,
            watchdogOverrides: watchdogOverrides,
            servo: servoReport)
        report.lastInferenceFailure = inference.lastFailure
        return report
    }

    private var servoReport: ServoReport? {
        guard let servo = configuration.servo, let interpolator, let servoSafety else { return nil }
        return ServoReport(
            rateHz: 1e9 / Double(configuration.periodNanoseconds) * Double(servo.ticksPerPeriod),
            interpolation: servo.interpolation.rawValue, commands: servoCommands,
            missedDeadlines: missedServoDeadlines,
            largestVelocity: interpolator.largestVelocity, largestAcceleration: interpolator.largestAcceleration,
            largestJerk: interpolator.largestJerk, maximumVelocity: servo.limits.maximumVelocity,
            maximumAcceleration: servo.limits.maximumAcceleration, maximumJerk: servo.limits.maximumJerk,
            limitedCommands: interpolator.limitedCommands, rejectedCommands: servoSafety.rejected)
    }
}

/// What `flowpolicy run` prints and writes with `--json`. Durations in microseconds (histograms) or milliseconds;
/// action changes in task units (largest component).
public struct ControlLoopReport: Codable, Sendable {
    public var handOver: String
    public var periodMilliseconds: Double
    public var lead: Int
    public var ticks: Int
    public var wakeJitter: HistogramSummary
    public var inferenceLatency: HistogramSummary
    public var observationToAction: HistogramSummary
    public var missedLoopDeadlines: Int
    public var missedInferenceDeadlines: Int
    public var actCommands: Int
    public var holdCommands: Int
    public var rejectedNonFinite: Int
    public var rejectedOutOfBounds: Int
    public var rejectedStepChange: Int
    public var chunks: Int
    /// Chunk boundaries (the first step of a new chunk) and the action change there.
    public var boundaries: Int
    public var largestBoundaryJump: Float
    public var meanBoundaryJump: Double
    /// The action change between consecutive steps of one chunk, for comparison.
    public var largestInteriorChange: Float
    public var meanInteriorChange: Double
    public var stops: [String]
    public var finalState: String
    public var episodesEnded: Int
    /// Chunks the policy failed to sample (a remote policy's errors and timeouts), and the last reason.
    public var inferenceFailures: Int
    public var lastInferenceFailure: String?
    /// Chunk numbers clamped to the action bounds when they arrived.
    public var clampedActions: Int
    /// RESUME requests after a watchdog stop: refused for want of the operator's override, and obeyed with it.
    public var refusedResumes: Int
    public var watchdogOverrides: Int
    /// Servo-rate output, when on.
    public var servo: ServoReport?
    /// Deadline-aware sampling: the solver steps picked (filled by the session).
    public var solverSteps: SolverStepsReport?
    /// Real-time scheduling obtained (filled by the session).
    public var scheduling: String?

    public var rejectedActions: Int { rejectedNonFinite + rejectedOutOfBounds + rejectedStepChange }
}

public struct SolverStepsReport: Codable, Sendable {
    public var deadlineMilliseconds: Double?
    public var initial: Int
    public var smallest: Int
    public var largest: Int
    public var changes: Int
}

/// Servo-rate output in a report: the largest velocity, acceleration and jerk commanded per action dimension (finite
/// differences of consecutive commands, as the robot sees them) beside their limits.
public struct ServoReport: Codable, Sendable {
    public var rateHz: Double
    public var interpolation: String
    public var commands: Int
    /// Servo commands that left after the next one's slot had begun.
    public var missedDeadlines: Int
    public var largestVelocity: [Double]
    public var largestAcceleration: [Double]
    public var largestJerk: [Double]
    public var maximumVelocity: [Float]?
    public var maximumAcceleration: [Float]?
    public var maximumJerk: [Float]?
    /// Commands the limiter changed, and commands the safety filter turned into HOLD.
    public var limitedCommands: Int
    public var rejectedCommands: Int
}
