import CAllocationCounter
import FlowPolicy
import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

/// A robot that publishes one state per tick (observation `[Do]` filled with `value`) until `silentAfter` states, and
/// records every command.
final class ScriptedRobot: RobotLink {
    let observationDimensions: Int
    let actionDimensions: Int
    var silentAfter = Int.max
    var value: Float = 0
    /// Keep each ACT command's values (off: record only the modes, allocating nothing).
    var recordsValues = true
    private(set) var published = 0
    private(set) var commands: [(mode: CommandMode, values: [Float])] = []
    let clock: ControlClock

    init(observationDimensions: Int, actionDimensions: Int, clock: ControlClock) {
        self.observationDimensions = observationDimensions
        self.actionDimensions = actionDimensions
        self.clock = clock
        commands.reserveCapacity(10_000)
        steps.reserveCapacity(10_000)
    }

    func awaitDescription(timeoutSeconds: Double) throws -> RobotDescription {
        RobotDescription(name: "scripted robot", observationDimensions: observationDimensions,
                         actionDimensions: actionDimensions, controlRateHz: nil)
    }

    func receiveLatest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>) throws
        -> RobotStateInfo?
    {
        guard published < silentAfter else { return nil }
        published += 1
        observation.update(repeating: value, count: observationDimensions)
        return RobotStateInfo(episode: 1, step: UInt64(published), episodeStart: published == 1, done: false,
                              success: false, progress: 0, timestampNanoseconds: clock.now(),
                              sequence: UInt64(published))
    }

    /// Command `stall.command` takes `stall.nanoseconds` (of a manual clock) to send.
    var stall: (command: Int, nanoseconds: UInt64)?
    private(set) var steps: [Int] = []

    func send(_ mode: CommandMode, action: UnsafePointer<Float>, answering: RobotStateInfo?, step: Int) throws {
        if let stall, stall.command == commands.count, let clock = clock as? ManualClock {
            clock.advance(by: stall.nanoseconds)
        }
        let values = mode == .act && recordsValues ? Array(UnsafeBufferPointer(start: action, count: actionDimensions)) : []
        commands.append((mode, values))
        steps.append(step)
    }

    var modes: [CommandMode] { commands.map(\.mode) }
}

/// Answers every request at once with the same chunk (`value` everywhere, or what `make` gives).
final class FixedInference: ChunkInference {
    let spec: PolicySpec
    var make: (Int) -> [Float]
    var answers = true
    private var pending: (tag: Int, generation: Int)?
    private(set) var requests = 0

    init(spec: PolicySpec, value: Float) {
        self.spec = spec
        make = { _ in [Float](repeating: value, count: spec.predictionSteps * spec.actionDimensions) }
    }

    var solverSteps: Int { 1 }

    func submit(window: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, committed: UnsafePointer<Float>?,
                committedSteps: Int, tag: Int, generation: Int) -> Bool {
        guard pending == nil else { return false }
        pending = (tag, generation)
        requests += 1
        return true
    }

    func collect(into chunk: UnsafeMutablePointer<Float>) -> InferenceResult? {
        guard answers, let request = pending else { return nil }
        pending = nil
        let values = make(request.tag)
        chunk.update(from: values, count: values.count)
        return InferenceResult(tag: request.tag, generation: request.generation, latencyNanoseconds: 1000,
                               solverSteps: 1)
    }

    func resetNoise(seed: UInt64) {}

    var lastFailure: String? { nil }
}

private let period: UInt64 = 10_000_000

private func loop(robot: any RobotLink, inference: any ChunkInference, clock: ControlClock,
                  handOver: ChunkHandOver = .receding, lead: Int = 1, limits: SafetyLimits? = nil,
                  servo: ControlLoop.Servo? = nil) throws -> ControlLoop
{
    var configuration = ControlLoop.Configuration(periodNanoseconds: period)
    configuration.handOver = handOver
    configuration.lead = lead
    configuration.servo = servo
    return try ControlLoop(spec: inference.spec, robot: robot, inference: inference,
                           safety: limits ?? pushTLimits(), clock: clock, configuration: configuration)
}

@Suite struct ControlLoopTests {
    @Test(arguments: ChunkHandOver.allCases, [1, 10])
    func aControlPeriodAllocatesNothing(handOver: ChunkHandOver, servoTicks: Int) throws {
        let clock = ManualClock()
        let checkpoint = try randomPushTCheckpoint()
        let policy = Policy(checkpoint: checkpoint, capacity: 1, steps: 3, seed: 2)
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        robot.value = 256
        robot.recordsValues = false
        // Wide limits so that the random policy's actions are commanded (the filter runs either way).
        let limits = try SafetyLimits(low: [-1e6, -1e6], high: [1e6, 1e6], maximumStepChange: [1e6, 1e6])
        let servo = servoTicks == 1 ? nil : try ControlLoop.Servo(
            ticksPerPeriod: servoTicks, interpolation: .minimumJerk, contract: pushTContract)
        let control = try loop(robot: robot, inference: InlineInference(sampler: policy, revealAfterCollects: 1),
                               clock: clock, handOver: handOver, limits: limits, servo: servo)
        for _ in 0..<40 { control.tick() }  // warm-up: first chunks, every buffer touched
        let before = fp_thread_allocation_count()
        for _ in 0..<200 { control.tick() }
        let allocations = fp_thread_allocation_count() - before
        #expect(allocations == 0, "\(handOver): \(allocations) allocations in 200 periods")
        #expect(control.actCommands > 150 && control.status.chunks > 20, "\(control.report)")
    }

    @Test func watchdogCommandsHoldWithinThreePeriodsOfTheLastStateAndStops() throws {
        let clock = ManualClock()
        let spec = try randomPushTCheckpoint().spec
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        robot.silentAfter = 20  // states at ticks 0 ..< 20, none from tick 20 on
        let control = try loop(robot: robot, inference: FixedInference(spec: spec, value: 256), clock: clock)
        control.run(maximumTicks: 40)
        let modes = robot.modes
        #expect(modes.count == 40)
        // Acting from the first chunk (tick 1) while states come; HOLD at the latest 3 periods after the first
        // missing state (tick 20), and from then on.
        #expect(modes[1..<20].allSatisfy { $0 == .act })
        let firstHold = try #require(modes.indices.first { $0 >= 20 && modes[$0] == .hold })
        #expect(firstHold <= 23, "first HOLD at tick \(firstHold)")
        #expect(modes[firstHold...].allSatisfy { $0 == .hold })
        #expect(control.report.stops == ["robot state older than the watchdog limit"])
        #expect(control.status.state == .finished && control.staleStateStops == 1)
    }

    @Test func nonFiniteActionsAreCommandedAsHoldAndCounted() throws {
        let clock = ManualClock()
        let spec = try randomPushTCheckpoint().spec
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        let inference = FixedInference(spec: spec, value: 256)
        // Every chunk has NaN at chunk index 3 (the third action executed, with lead 1).
        inference.make = { _ in
            var chunk = [Float](repeating: 256, count: 32)
            chunk[6] = .nan
            return chunk
        }
        let control = try loop(robot: robot, inference: inference, clock: clock)
        control.run(maximumTicks: 18)
        let report = control.report
        // The first chunk (requested at tick 0, back at once) runs from tick 0 at index To - 1 = 1; the one requested
        // at tick 8 takes over at 8 + lead = 9 at index 2. Index 3 falls on ticks 2 and 10.
        #expect(robot.modes[2] == .hold && robot.modes[10] == .hold)
        #expect(report.rejectedNonFinite == 2 && report.rejectedActions == 2)
        #expect(robot.commands.filter { $0.mode == .act }.allSatisfy { $0.values == [256, 256] })
        #expect(report.actCommands == 16 && report.finalState == "finished" && report.stops.isEmpty)
    }

    @Test func outOfBoundsChunksAreClampedAndLargeStepsAreRejected() throws {
        let clock = ManualClock()
        let spec = try randomPushTCheckpoint().spec
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        let inference = FixedInference(spec: spec, value: 256)
        // Index 4 leaves the field (clamped to its edge, 512, on arrival); index 6 jumps 200 (limit 150) from 256.
        inference.make = { _ in
            var chunk = [Float](repeating: 256, count: 32)
            chunk[8] = 600
            chunk[12] = 456
            return chunk
        }
        let control = try loop(robot: robot, inference: inference, clock: clock)
        control.run(maximumTicks: 9)
        #expect(control.report.clampedActions == 2 && control.report.rejectedOutOfBounds == 0)  // one per chunk
        // Both the clamped 512 and the jump are more than 150 from 256: held.
        #expect(control.report.rejectedStepChange == 2)
        #expect(robot.modes[3] == .hold && robot.modes[5] == .hold && robot.modes[4] == .act)
    }

    @Test func aMissedInferenceDeadlineCommandsHoldAndStops() throws {
        let clock = ManualClock()
        let spec = try randomPushTCheckpoint().spec
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        let inference = FixedInference(spec: spec, value: 256)
        let control = try loop(robot: robot, inference: inference, clock: clock, lead: 2)
        for _ in 0..<9 { control.tick() }  // chunks requested at 0 and 8 have come back
        inference.answers = false  // the next one (requested at 16) never comes
        for _ in 9..<24 { control.tick() }
        let modes = robot.modes
        #expect(modes[1..<18].allSatisfy { $0 == .act })
        #expect(modes[18...].allSatisfy { $0 == .hold })  // due at 16 + lead
        #expect(control.missedInferenceDeadlines == 1 && control.status.state == .stopped)
        #expect(control.status.reason == "missed inference deadline")
    }

    @Test func stopAndResumeThroughTheControlSocket() throws {
        let clock = ManualClock()
        let spec = try randomPushTCheckpoint().spec
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        let control = try loop(robot: robot, inference: FixedInference(spec: spec, value: 256), clock: clock)
        let context = try ZMQContext()
        let server = try ControlServer(context: context, endpoint: "tcp://127.0.0.1:*", control: control.control)
        defer { server.stop() }
        let client = try makeSocket(.dealer, context)
        try client.connect(server.endpoint)
        func send(_ command: Wire.Control.Command, sequence: UInt64) throws -> Wire.Status {
            var message = Wire.Control()
            message.command = command
            try client.send(Wire.encode(Wire.envelope(sequence: sequence, .control(message))))
            let reply = try Wire.decode(try #require(try client.receive()))
            #expect(reply.sequence == sequence)
            guard case .status(let status) = reply.body else { throw WireError(.unexpectedMessage, "\(reply)") }
            return status
        }
        for _ in 0..<10 { control.tick() }
        #expect(try send(.status, sequence: 1).state == .running)
        #expect(try send(.stop, sequence: 2).state == .stopped)
        for _ in 0..<10 { control.tick() }
        let status = try send(.status, sequence: 3)
        #expect(status.state == .stopped && status.reason == "Control STOP" && status.step == 19)
        _ = try send(.resume, sequence: 4)
        for _ in 0..<10 { control.tick() }
        let modes = robot.modes
        #expect(modes[1..<10].allSatisfy { $0 == .act })
        #expect(modes[10..<20].allSatisfy { $0 == .hold })
        // Resumed at tick 20: a new chunk is requested then (and answered at once here).
        #expect(modes[20..<30].allSatisfy { $0 == .act })
        #expect(try send(.status, sequence: 5).state == .running)
        // A malformed request gets an Error reply, and the socket keeps working.
        try client.send([0xFF, 0x00])
        let error = try Wire.decode(try #require(try client.receive()))
        guard case .error(let message) = error.body else {
            Issue.record("expected Error, got \(Wire.name(of: error.body))")
            return
        }
        #expect(message.code == .malformed)
        #expect(try send(.status, sequence: 6).state == .running)
    }

    @Test func aStalledPeriodIsAMissedDeadlineAndTheLoopStopsBeforeActingAgain() throws {
        let clock = ManualClock()
        let spec = try randomPushTCheckpoint().spec
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        robot.stall = (command: 5, nanoseconds: period * 5 / 2)  // the command of tick 5 is sent 2.5 periods late
        let control = try loop(robot: robot, inference: FixedInference(spec: spec, value: 256), clock: clock)
        while control.tickCount < 20 { control.tick() }
        // Tick 5 overran tick 6's deadline and tick 7's: tick 6 is skipped, tick 7 runs half a period late, and the
        // loop, having left the robot a period without a command, holds from then on instead of acting again.
        #expect(robot.steps == Array(0...5) + Array(7..<20))
        #expect(control.missedLoopDeadlines == 2)
        #expect(control.wakeJitter.histogram.maxRecorded >= period / 2 - 1000)
        #expect(robot.modes[6...].allSatisfy { $0 == .hold } && control.report.actCommands == 6)
        #expect(control.report.stops == ["the loop overran a period (paused or descheduled)"])
        // The operator's RESUME without the override is refused; with it, the loop acts again.
        control.control.resume()
        for _ in 0..<3 { control.tick() }
        #expect(robot.modes.suffix(3).allSatisfy { $0 == .hold } && control.refusedResumes == 1)
        control.control.resume(overrideWatchdog: true)
        for _ in 0..<3 { control.tick() }
        #expect(robot.modes.last == .act && control.watchdogOverrides == 1)
    }

    @Test func threadedInferenceGivesTheSameChunksAsInlineSampling() throws {
        let checkpoint = try randomPushTCheckpoint()
        let threaded = ThreadedInference(sampler: Policy(checkpoint: checkpoint, capacity: 1, steps: 4, seed: 9))
        defer { threaded.stop() }
        let inline = InlineInference(sampler: Policy(checkpoint: checkpoint, capacity: 1, steps: 4, seed: 9))
        let window = pushTWindow(seed: 3)
        let committed: [Float] = [100, 200, 110, 210]
        var fromThread = [Float](repeating: 0, count: 32), fromInline = fromThread
        func submit(_ inference: any ChunkInference, prefix: Int, tag: Int) -> Bool {
            prefix > 0
                ? inference.submit(window: window, committed: committed, committedSteps: prefix, tag: tag,
                                   generation: 0)
                : inference.submit(window: window, committed: nil, committedSteps: 0, tag: tag, generation: 0)
        }
        for (round, prefix) in [0, 2, 0].enumerated() {
            #expect(submit(threaded, prefix: prefix, tag: round))
            #expect(!threaded.submit(window: window, committed: nil, committedSteps: 0, tag: 99, generation: 0))
            var result: InferenceResult?
            let deadline = Date().addingTimeInterval(generousTimeoutSeconds)
            while result == nil && Date() < deadline {
                result = threaded.collect(into: &fromThread)
                if result == nil { usleep(100) }
            }
            #expect(result?.tag == round && result?.solverSteps == 4)
            #expect(submit(inline, prefix: prefix, tag: round))
            #expect(inline.collect(into: &fromInline)?.tag == round)
            #expect(fromThread == fromInline, "round \(round)")
            if prefix > 0 {
                #expect(zip(fromThread[0..<4], committed).allSatisfy { abs($0 - $1) < 1e-3 })
            }
        }
    }

    @Test func deadlineAwareSamplingPicksTheLargestStepCountThatFitsAndFollowsDrift() {
        var planner = SolverStepPlanner(deadlineNanoseconds: 5_500_000, maximumSteps: 10, window: 16)
        // 1 ms per solver step: 5 steps fit 5.5 ms.
        for _ in 0..<16 { planner.record(latencyNanoseconds: 10_000_000, solverSteps: 10) }
        #expect(planner.steps == 5)
        // Latency drifts up to 2 ms per step: 2 steps fit.
        for _ in 0..<16 { planner.record(latencyNanoseconds: 10_000_000, solverSteps: 5) }
        #expect(planner.steps == 2 && planner.changes == 1)
        // And back down to 0.5 ms per step: up to the maximum of 10.
        for _ in 0..<16 { planner.record(latencyNanoseconds: 1_000_000, solverSteps: 2) }
        #expect(planner.steps == 10 && planner.changes == 2 && planner.smallestSteps == 2 && planner.largestSteps == 10)
        // A single slow chunk among 16 is the window's p99 and counts.
        planner.record(latencyNanoseconds: 50_000_000, solverSteps: 10)
        #expect(planner.steps == 1)
    }
}
