import FlowPolicy
import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

/// A policy server of Push-T's contract on a free loopback port that answers `MetadataRequest` and, for the first
/// `answers` Infer requests, a chunk of `chunkSteps` steps (16 is right); later requests get no reply.
private final class ScriptedServer: @unchecked Sendable {
    // `@unchecked`: the socket is used by the serving thread only; `stopping` is guarded by `lock`.
    let endpoint: String
    private let socket: ZMQSocket
    private let lock = NSLock()
    private var stopping = false
    private var thread: Peer<Void>?

    init(context: ZMQContext, chunkSteps: Int = 16, answers: Int = .max) throws {
        socket = try makeSocket(.router, context)
        try socket.bind("tcp://127.0.0.1:*")
        endpoint = try #require(try socket.lastEndpoint)
        var metadata = Wire.Metadata()
        metadata.protocolVersion = Wire.version
        metadata.task = "pusht"
        (metadata.observationSteps, metadata.actionSteps, metadata.predictionSteps) = (2, 8, 16)
        (metadata.observationDimensions, metadata.actionDimensions) = (20, 2)
        (metadata.solver, metadata.solverSteps, metadata.maxBatch) = ("euler", 4, 8)
        metadata.contractJson = pushTContract.json
        let served = Handed(self)
        let reply = metadata
        thread = Peer {
            var infers = 0
            let poller = ZMQPoller(capacity: 1)
            _ = try poller.register(served.value.socket)
            while !served.value.lock.withLock({ served.value.stopping }) {
                guard try poller.poll(timeout: .milliseconds(10)) > 0,
                      let frames = try served.value.socket.receiveMultipart(flags: .dontWait)
                else { continue }
                let request = try Wire.decode(frames[frames.count - 1])
                let body: Wire.Envelope.OneOf_Body
                switch request.body {
                case .metadataRequest: body = .metadata(reply)
                default:
                    infers += 1
                    guard infers <= answers else { continue }
                    var chunk = Wire.ActionChunk()
                    (chunk.batch, chunk.predictionSteps, chunk.actionDimensions) = (1, UInt32(chunkSteps), 2)
                    chunk.actions = [Float](repeating: 256, count: chunkSteps * 2)
                    body = .actionChunk(chunk)
                }
                try served.value.socket.sendMultipart(
                    Array(frames.dropLast()) + [Wire.encode(Wire.envelope(sequence: request.sequence, body))])
            }
        }
    }

    func stop() throws {
        lock.withLock { stopping = true }
        try thread?.join()
    }
}

private let period: UInt64 = 100_000_000

/// The loop of the runtime tests' shape: Push-T's spec and limits, a scripted robot, lead 1.
private func loop(inference: any ChunkInference, robot: ScriptedRobot, clock: ControlClock) throws -> ControlLoop {
    var configuration = ControlLoop.Configuration(periodNanoseconds: period)
    configuration.lead = 1
    return try ControlLoop(spec: inference.spec, robot: robot, inference: inference, safety: pushTLimits(),
                           clock: clock, configuration: configuration)
}

@Suite struct DeploymentTests {
    @Test func aRobotThatDoesNotFitThePolicyIsRefusedNamingBothValues() throws {
        let spec = try randomPushTCheckpoint().spec
        func refusal(_ robot: RobotDescription) -> String? {
            do {
                try RunSession.check(robot, spec: spec, controlRate: 10)
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal(RobotDescription(name: "arm", observationDimensions: 20, actionDimensions: 2,
                                         controlRateHz: 10)) == nil)
        #expect(refusal(RobotDescription(name: "arm", observationDimensions: 20, actionDimensions: nil,
                                         controlRateHz: nil)) == nil)
        let observations = refusal(RobotDescription(name: "arm", observationDimensions: 5, actionDimensions: 2,
                                                    controlRateHz: 10))
        #expect(observations?.contains("arm sends 5-D observations; the policy takes 20-D") == true)
        let actions = refusal(RobotDescription(name: "arm", observationDimensions: 20, actionDimensions: 7,
                                               controlRateHz: 10))
        #expect(actions?.contains("7-D actions; the policy gives 2-D") == true)
        let rate = refusal(RobotDescription(name: "arm", observationDimensions: 20, actionDimensions: 2,
                                            controlRateHz: 20))
        #expect(rate?.contains("20.0 Hz; the policy acts at 10.0 Hz") == true)
    }

    @Test func servoRatesAreWholeMultiplesOfTheControlRateForActionsThatInterpolate() throws {
        #expect(try RunSession.servoTicksPerPeriod(servoRate: nil, controlRate: 10, contract: pushTContract) == 1)
        #expect(try RunSession.servoTicksPerPeriod(servoRate: 1000, controlRate: 10, contract: pushTContract) == 100)
        #expect(throws: RuntimeError.self) {
            try RunSession.servoTicksPerPeriod(servoRate: 1005, controlRate: 10, contract: pushTContract)
        }
        var deltas = pushTContract
        deltas.actionKind = .delta
        #expect { try RunSession.servoTicksPerPeriod(servoRate: 500, controlRate: 20, contract: deltas) } throws: {
            "\($0)".contains("per-step deltas")
        }
    }

    @Test func aRemotePolicyOfTheWrongShapeIsAnErrorNamingBothShapesAndTheLoopHolds() throws {
        let context = try ZMQContext()
        let server = try ScriptedServer(context: context, chunkSteps: 8)
        defer { try? server.stop() }
        let remote = try RemotePolicy(context: context, endpoint: server.endpoint,
                                      timeoutMilliseconds: Int(generousTimeoutSeconds * 1000))
        #expect(remote.contract == pushTContract && remote.spec.predictionSteps == 16 && remote.solverSteps == 4)
        let window = pushTWindow(seed: 1)
        var chunk = [Float](repeating: 0, count: 32)
        #expect { try remote.sampleChunks(observations: window, batch: 1, into: &chunk) } throws: {
            "\($0)".contains("[1, 8, 2]") && "\($0)".contains("[1, 16, 2]")
        }
        // In the loop: the failure stops it, and nothing but HOLD is commanded.
        let clock = ManualClock()
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        let control = try loop(inference: InlineInference(sampler: remote), robot: robot, clock: clock)
        control.run(maximumTicks: 5)
        #expect(robot.modes == Array(repeating: .hold, count: 5))
        #expect(control.report.inferenceFailures == 1 && control.report.stops == ["the policy failed to sample a chunk"])
        #expect(control.report.lastInferenceFailure?.contains("[1, 8, 2]") == true)
    }

    @Test func aServerThatFallsSilentIsAFailureAndTheLoopHolds() throws {
        let context = try ZMQContext()
        let server = try ScriptedServer(context: context, answers: 2)
        defer { try? server.stop() }
        let remote = try RemotePolicy(context: context, endpoint: server.endpoint, timeoutMilliseconds: 200)
        let clock = ManualClock()
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        robot.value = 256
        let inference = InlineInference(sampler: remote)
        let control = try loop(inference: inference, robot: robot, clock: clock)
        control.run(maximumTicks: 30)
        // Two chunks answered at once (requested at ticks 0 and 8, covering ticks 0 to 15); the third request (tick 16)
        // times out, and from that very period on the robot is held.
        let modes = robot.modes
        #expect(modes[0..<16].allSatisfy { $0 == .act }, "\(modes)")
        #expect(modes[16...].allSatisfy { $0 == .hold }, "\(modes)")
        #expect(control.report.stops.first == "the policy failed to sample a chunk")
        #expect(inference.lastFailure?.contains("no reply from the policy server") == true)
    }

    @Test func threadedInferenceAgainstASilentServerMissesTheDeadlineAndHoldsWithinTheLead() throws {
        let context = try ZMQContext()
        let server = try ScriptedServer(context: context, answers: 0)
        defer { try? server.stop() }
        let remote = try RemotePolicy(context: context, endpoint: server.endpoint, timeoutMilliseconds: 200)
        let clock = ManualClock()
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        let inference = ThreadedInference(sampler: remote)
        defer { inference.stop() }
        let control = try loop(inference: inference, robot: robot, clock: clock)
        control.run(maximumTicks: 4)
        // Requested at tick 0 with a lead of one period: the deadline passes at tick 1, and the loop stops there.
        #expect(control.report.stops.first == "missed inference deadline")
        #expect(control.report.missedInferenceDeadlines == 1 && robot.modes.allSatisfy { $0 == .hold })
    }

    @Test func servoCommandsInterpolateBetweenThePolicysActionsWithinTheLimits() throws {
        let clock = ManualClock()
        let spec = try randomPushTCheckpoint().spec
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        robot.value = 256
        // Chunk requested at step r: the action for step r + j is (100 + 5 (r + j), 300 - 3 (r + j)).
        let inference = FixedInference(spec: spec, value: 0)
        inference.make = { r in
            (0..<16).flatMap { (i: Int) -> [Float] in
                let step = Float(r + i - 1)
                return [100 + 5 * step, 300 - 3 * step]
            }
        }
        var configuration = ControlLoop.Configuration(periodNanoseconds: period)
        configuration.servo = try ControlLoop.Servo(ticksPerPeriod: 10, interpolation: .minimumJerk,
                                                    contract: pushTContract)
        let control = try ControlLoop(spec: spec, robot: robot, inference: inference, safety: pushTLimits(),
                                      clock: clock, configuration: configuration)
        control.run(maximumTicks: 30)
        #expect(robot.commands.count == 300)
        let acting = robot.commands.enumerated().filter { $0.element.mode == .act }
        #expect(acting.count >= 280)
        // The last command of each acting period is the policy's action for that step; between them, minimum jerk.
        for period in 2..<30 {
            let last = robot.commands[period * 10 + 9]
            #expect(last.mode == .act && last.values == [Float(100 + 5 * period), Float(300 - 3 * period)],
                    "period \(period): \(last.values)")
        }
        // As the robot measures them: velocity, acceleration and jerk within the contract's limits.
        let x = acting.map { Double($0.element.values[0]) }
        let dt = 0.01
        let velocity = zip(x.dropFirst(), x).map { ($0 - $1) / dt }
        let acceleration = zip(velocity.dropFirst(), velocity).map { ($0 - $1) / dt }
        #expect(velocity.allSatisfy { abs($0) <= 3000 } && acceleration.allSatisfy { abs($0) <= 90_000 })
        let report = try #require(control.report.servo)
        #expect(report.rateHz == 100 && report.commands == 300 && report.rejectedCommands == 0)
        #expect(report.largestVelocity[0] <= 3000 && report.largestVelocity[0] > 50)
    }
}
