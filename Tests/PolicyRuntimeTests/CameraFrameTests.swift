import CAllocationCounter
import FlowPolicy
import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

/// Raw frames of `cameras` for `steps` steps of `bytes` (`[steps, Σ H*W*C]`), as the wire carries them.
private func wireFrames(_ bytes: [UInt8], cameras: [CameraSpec], steps: Int) -> [Wire.CameraFrame] {
    bytes.withUnsafeBufferPointer { CameraFrames.make($0.baseAddress!, cameras: cameras, steps: steps) }
}

private func frame(_ camera: String, height: Int, width: Int, channels: Int = 3, bytes: Int? = nil,
                   encoding: Wire.CameraFrame.Encoding = .rawUint8) -> Wire.CameraFrame {
    var frame = Wire.CameraFrame()
    frame.camera = camera
    frame.height = UInt32(height)
    frame.width = UInt32(width)
    frame.channels = UInt32(channels)
    frame.encoding = encoding
    frame.data = Data(count: bytes ?? height * width * channels)
    return frame
}

/// The message of the WireError `body` throws (nil if it throws none).
private func refusal(_ body: () throws -> Void) -> WireError? {
    do {
        try body()
        return nil
    } catch {
        return error as? WireError
    }
}

/// A DEALER that sends envelopes and reads replies.
private final class Requester {
    let socket: ZMQSocket
    private var sequence: UInt64 = 0

    init(_ context: ZMQContext, _ endpoint: String) throws {
        socket = try makeSocket(.dealer, context)
        try socket.connect(endpoint)
    }

    @discardableResult
    func send(_ infer: Wire.Infer) throws -> UInt64 {
        sequence += 1
        try socket.send(Wire.encode(Wire.envelope(sequence: sequence, .infer(infer))))
        return sequence
    }

    func reply() throws -> Wire.Envelope { try Wire.decode(try #require(try socket.receive())) }

    /// The reply to `infer`: its chunk, or the error it got.
    func ask(_ infer: Wire.Infer) throws -> Result<Wire.ActionChunk, WireError> {
        let sequence = try send(infer)
        let envelope = try reply()
        #expect(envelope.sequence == sequence)
        switch envelope.body {
        case .actionChunk(let chunk): return .success(chunk)
        case .error(let error): return .failure(WireError(error))
        default: throw WireError(.unexpectedMessage, "got \(Wire.name(of: envelope.body))")
        }
    }
}

private func infer(observations: [Float], steps: Int, batch: Int = 1, frames: [Wire.CameraFrame],
                   episode: UInt64 = 0, reset: Bool = false) -> Wire.Infer {
    var infer = Wire.Infer()
    infer.observations = observations
    infer.observationSteps = UInt32(steps)
    infer.batch = UInt32(batch)
    infer.frames = frames
    infer.episodeID = episode
    infer.reset = reset
    return infer
}

/// A robot with a camera: each state's observation is `[Do]` of the state's index, its frame the pattern of that
/// index; episodes of `episodeLength` states.
final class CameraRobot: RobotLink {
    let observationDimensions = 20
    let actionDimensions = 2
    let cameras: [CameraSpec]
    let clock: ControlClock
    var episodeLength = Int.max
    private(set) var published = 0
    /// `[Σ H*W*C]`, rewritten for each state (made once).
    private var frame: [UInt8]

    init(cameras: [CameraSpec], clock: ControlClock) {
        self.cameras = cameras
        self.clock = clock
        frame = patternFrames(cameras, steps: 1, seed: 0)
    }

    func awaitDescription(timeoutSeconds: Double) throws -> RobotDescription {
        RobotDescription(name: "camera robot", observationDimensions: 20, actionDimensions: 2, controlRateHz: 10,
                         cameras: cameras)
    }

    func receiveLatest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>) throws
        -> RobotStateInfo?
    {
        try receiveLatest(observation: observation, appliedAction: appliedAction, frames: nil)
    }

    func receiveLatest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>,
                       frames: UnsafeMutablePointer<UInt8>?) throws -> RobotStateInfo? {
        let index = published
        published += 1
        observation.update(repeating: Float(index % 200), count: observationDimensions)
        if let frames {
            // The first byte of each state's frame is its index (mod 251), the rest a pattern.
            frame.withUnsafeMutableBufferPointer { bytes in
                bytes[0] = UInt8(index % 251)
                frames.update(from: bytes.baseAddress!, count: bytes.count)
            }
        }
        let step = index % episodeLength
        return RobotStateInfo(episode: UInt64(index / episodeLength), step: UInt64(step), episodeStart: step == 0,
                              done: false, success: false, progress: 0, timestampNanoseconds: clock.now(),
                              sequence: UInt64(index + 1))
    }

    func send(_ mode: CommandMode, action: UnsafePointer<Float>, answering: RobotStateInfo?, step: Int) throws {}
}

@Suite struct CameraFrameTests {
    let wrist = CameraSpec(name: "wrist", height: 84, width: 84, channels: 3)

    @Test func frameErrorsNameTheFrameAndTheExpectedShape() throws {
        let cameras = [wrist, topCamera]
        let good = wireFrames(patternFrames(cameras, steps: 2, seed: 3), cameras: cameras, steps: 2)
        var destination = [UInt8](repeating: 0, count: 2 * (wrist.byteCount + topCamera.byteCount))
        func copy(_ frames: [Wire.CameraFrame]) -> WireError? {
            refusal {
                try destination.withUnsafeMutableBufferPointer { buffer in
                    try CameraFrames.copy(frames, cameras: cameras, windows: 1, steps: 2, into: buffer.baseAddress)
                }
            }
        }
        #expect(copy(good) == nil)
        #expect(destination == patternFrames(cameras, steps: 2, seed: 3))

        // Wrong size: frame 3 is step 1's image.
        var wrongSize = good
        wrongSize[3] = frame("image", height: 84, width: 84)
        destination = [UInt8](repeating: 0, count: destination.count)
        let size = try #require(copy(wrongSize))
        #expect(size.code == .invalidArgument)
        #expect(size.message == "frame 3 (camera image, step 1): expected image 96 x 96 x 3 uint8 raw (27648 bytes), "
            + "got 84 x 84 x 3 (21168 bytes)")
        #expect(destination.allSatisfy { $0 == 0 }, "nothing is copied from a refused message")
        // The header right but the bytes short.
        var short = good
        short[1] = frame("image", height: 96, width: 96, bytes: 100)
        #expect(copy(short)?.message == "frame 1 (camera image, step 0): expected image 96 x 96 x 3 uint8 raw (27648 "
            + "bytes), got 96 x 96 x 3 (100 bytes)")

        // Wrong camera (the order swapped).
        let swapped = [good[1], good[0], good[2], good[3]]
        #expect(copy(swapped)?.message == "frame 0 (step 0): expected camera \"wrist\" (the policy's cameras, in "
            + "order: wrist, image), got \"image\"")

        // Missing frames, and too few.
        let missing = try #require(copy([]))
        #expect(missing.message.hasPrefix("expected 4 camera frames (1 window x 2 steps x cameras [wrist 84 x 84 x 3 "
            + "uint8, image 96 x 96 x 3 uint8]"))
        #expect(missing.message.hasSuffix("got 0"))
        #expect(copy(Array(good.prefix(2)))?.message.contains("got 2 (wrist, image)") == true)

        // JPEG: the protocol allows it, this build has no decoder.
        var jpeg = good
        jpeg[2] = frame("wrist", height: 84, width: 84, bytes: 900, encoding: .jpeg)
        #expect(copy(jpeg)?.message == "frame 2 (camera wrist, step 1) is JPEG; this server takes raw uint8 frames "
            + "only (encoding RAW_UINT8: wrist 84 x 84 x 3 uint8 raw (21168 bytes))")
        var unspecified = good
        unspecified[0].encoding = .unspecified
        #expect(copy(unspecified)?.message.contains("encoding ENCODING_UNSPECIFIED is not RAW_UINT8") == true)

        // Several windows: the window is named too.
        let batch = wireFrames(patternFrames(cameras, steps: 4, seed: 0), cameras: cameras, steps: 4)
        var wrongInBatch = batch
        wrongInBatch[5] = frame("image", height: 96, width: 96, channels: 1)
        let batched = refusal {
            try CameraFrames.copy(wrongInBatch, cameras: cameras, windows: 2, steps: 2, into: nil)
        }
        #expect(batched?.message.hasPrefix("frame 5 (window 1, camera image, step 0): expected image 96 x 96 x 3")
            == true)
    }

    @Test func aRobotStatesFramesArePickedByCameraName() throws {
        let frames = [frame("wrist", height: 84, width: 84), frame("image", height: 96, width: 96)]
        var destination = [UInt8](repeating: 1, count: topCamera.byteCount)
        try destination.withUnsafeMutableBufferPointer { buffer in
            try CameraFrames.copyCurrent(frames, cameras: [topCamera], into: buffer.baseAddress)
        }
        #expect(destination.allSatisfy { $0 == 0 })
        let missing = refusal {
            try CameraFrames.copyCurrent([frames[0]], cameras: [topCamera], into: nil)
        }
        #expect(missing?.message == "the state has no frame of camera \"image\" (it has wrist); the policy takes "
            + "image 96 x 96 x 3 uint8")
    }

    @Test func framesSurviveARoundTripThroughTheServerToTheSampler() throws {
        let context = try ZMQContext()
        let checkpoint = try randomPushTCheckpoint(cameras: [topCamera])
        let recorder = Handed(FrameRecordingSampler(checkpoint: checkpoint, capacity: 64))
        let server = try RunningServer(checkpoint: checkpoint, context: context,
                                       makeSampler: { _, _, _ in recorder.value })
        defer { try? server.stop() }
        let remote = try RemotePolicy(context: context, endpoint: server.endpoint)
        #expect(remote.spec.cameras == [topCamera] && remote.spec == checkpoint.spec)
        #expect(remote.metadata.cameras.map { [$0.name, "\($0.height)", "\($0.width)", "\($0.channels)"] }
            == [["image", "96", "96", "3"]])

        // Two windows at once, each with its two steps of frames.
        let observations = [Float](repeating: 3, count: 40) + [Float](repeating: 5, count: 40)
        let frames = patternFrames([topCamera], steps: 4, seed: 20)
        var chunks = [Float](repeating: -1, count: 2 * 32)
        try observations.withUnsafeBufferPointer { o in
            try frames.withUnsafeBufferPointer { f in
                try chunks.withUnsafeMutableBufferPointer { c in
                    try remote.sampleChunks(observations: o.baseAddress!, frames: f.baseAddress, batch: 2,
                                            into: c.baseAddress!)
                }
            }
        }
        // Row r's chunk is the first byte of its newest frames (step 1 of window r: seed + 7 (2r + 1)) plus its
        // first observation.
        #expect(chunks[0..<32].allSatisfy { $0 == Float(20 + 7) + 3 })
        #expect(chunks[32..<64].allSatisfy { $0 == Float(20 + 21) + 5 })
        #expect(Array(recorder.value.lastFrames.prefix(frames.count)) == frames && recorder.value.lastBatch == 2)

        // A policy with cameras needs its frames.
        #expect(throws: RuntimeError.self) {
            try observations.withUnsafeBufferPointer { o in
                try chunks.withUnsafeMutableBufferPointer { c in
                    try remote.sampleChunks(observations: o.baseAddress!, batch: 1, into: c.baseAddress!)
                }
            }
        }
    }

    @Test func wrongFramesGetAnErrorNamingTheExpectedShapeAndTheServerKeepsServing() throws {
        let context = try ZMQContext()
        let checkpoint = try randomPushTCheckpoint(cameras: [topCamera])
        let recorder = Handed(FrameRecordingSampler(checkpoint: checkpoint, capacity: 64))
        let server = try RunningServer(checkpoint: checkpoint, context: context,
                                       makeSampler: { _, _, _ in recorder.value })
        defer { try? server.stop() }
        let client = try Requester(context, server.endpoint)
        let window = [Float](repeating: 1, count: 40)
        let good = wireFrames(patternFrames([topCamera], steps: 2, seed: 9), cameras: [topCamera], steps: 2)

        var wrongSize = good
        wrongSize[1] = frame("image", height: 84, width: 84)
        guard case .failure(let size) = try client.ask(infer(observations: window, steps: 2, frames: wrongSize)) else {
            Issue.record("a wrong-sized frame was sampled")
            return
        }
        #expect(size.code == .invalidArgument && size.message == "frame 1 (camera image, step 1): expected image 96 "
            + "x 96 x 3 uint8 raw (27648 bytes), got 84 x 84 x 3 (21168 bytes)")
        var wrongCamera = good
        wrongCamera[0].camera = "wrist"
        guard case .failure(let camera) = try client.ask(infer(observations: window, steps: 2, frames: wrongCamera))
        else {
            Issue.record("a frame of another camera was sampled")
            return
        }
        #expect(camera.message.contains("expected camera \"image\"") && camera.message.contains("got \"wrist\""))
        guard case .failure(let missing) = try client.ask(infer(observations: window, steps: 2, frames: [])) else {
            Issue.record("a request without frames was sampled")
            return
        }
        #expect(missing.message.hasPrefix("expected 2 camera frames (1 window x 2 steps x cameras [image 96 x 96 x "
            + "3 uint8]"))
        var jpeg = good
        jpeg[0].encoding = .jpeg
        guard case .failure(let jpegError) = try client.ask(infer(observations: window, steps: 2, frames: jpeg)) else {
            Issue.record("a JPEG frame was sampled")
            return
        }
        #expect(jpegError.message.contains("is JPEG; this server takes raw uint8 frames only"))
        #expect(recorder.value.calls == 0)

        // The server goes on serving, with the frames it was given.
        guard case .success(let chunk) = try client.ask(infer(observations: window, steps: 2, frames: good)) else {
            Issue.record("a good request was refused")
            return
        }
        #expect(chunk.actions.allSatisfy { $0 == Float(9 + 7) + 1 })
        #expect(Array(recorder.value.lastFrames.prefix(2 * topCamera.byteCount))
            == patternFrames([topCamera], steps: 2, seed: 9))

        // Only the newest step: the server keeps the episode's frame window, filled with the first frames on reset.
        let steps = (0..<3).map { patternFrames([topCamera], steps: 1, seed: 100 + 10 * $0) }
        for (index, step) in steps.enumerated() {
            let reply = try client.ask(infer(observations: [Float](repeating: 2, count: 20), steps: 1,
                                             frames: wireFrames(step, cameras: [topCamera], steps: 1), episode: 7,
                                             reset: index == 0))
            guard case .success(let chunk) = reply else {
                Issue.record("step \(index) refused: \(reply)")
                return
            }
            #expect(chunk.actions.first == Float(100 + 10 * index) + 2)
            let window = Array(recorder.value.lastFrames.prefix(2 * topCamera.byteCount))
            #expect(window == (index == 0 ? steps[0] + steps[0] : steps[index - 1] + steps[index]))
        }
    }

    @Test func aPolicyWithoutCamerasRefusesFramesAndReportsNoCameras() throws {
        let context = try ZMQContext()
        let server = try RunningServer(checkpoint: randomPushTCheckpoint(), context: context)
        defer { try? server.stop() }
        let client = try Requester(context, server.endpoint)
        let frames = wireFrames(patternFrames([topCamera], steps: 2, seed: 0), cameras: [topCamera], steps: 2)
        guard case .failure(let error) = try client.ask(infer(observations: pushTWindow(seed: 1), steps: 2,
                                                              frames: frames))
        else {
            Issue.record("frames were taken by a policy without cameras")
            return
        }
        #expect(error.message == "this policy takes no camera frames; got 2")
        #expect(try PolicyClient(context: context, endpoint: server.endpoint).metadata().cameras.isEmpty)
    }

    @Test func batchedRequestsOfManyClientsKeepTheirFrames() throws {
        let context = try ZMQContext()
        let checkpoint = try randomPushTCheckpoint(cameras: [topCamera])
        let recorder = FrameRecordingSampler(checkpoint: checkpoint, capacity: 16)
        var options = PolicyServer.Options(endpoint: "inproc://camera-batch")
        options.maxBatch = 16
        let server = try PolicyServer(checkpoint: checkpoint, options: options, context: context,
                                      makeSampler: { _, _, _ in recorder })
        let clients = try (0..<5).map { _ in try Requester(context, "inproc://camera-batch") }
        for (index, client) in clients.enumerated() {
            // Client 2 sends two windows; the others one.
            let batch = index == 2 ? 2 : 1
            let frames = patternFrames([topCamera], steps: 2 * batch, seed: 30 * index)
            try client.send(infer(observations: [Float](repeating: Float(index), count: 40 * batch), steps: 2,
                                  batch: batch, frames: wireFrames(frames, cameras: [topCamera], steps: 2 * batch)))
        }
        try server.serve(timeout: .milliseconds(10_000))
        #expect(server.statistics.calls == 1 && recorder.largestBatch == 6)
        for (index, client) in clients.enumerated() {
            guard case .actionChunk(let chunk) = try client.reply().body else {
                Issue.record("client \(index) got no chunk")
                continue
            }
            #expect(chunk.timing.batch == 6)
            let rows = index == 2 ? 2 : 1
            for row in 0..<rows {
                let marker = Float((30 * index + 7 * (2 * row + 1)) % 251) + Float(index)
                #expect(chunk.actions[(row * 32)..<(row * 32 + 32)].allSatisfy { $0 == marker }, "client \(index)")
            }
        }
    }

    @Test func theControlLoopConditionsChunksOnTheRobotsFramesAndAllocatesNothing() throws {
        let clock = ManualClock()
        let camera = CameraSpec(name: "image", height: 8, width: 8, channels: 3)
        let checkpoint = try randomPushTCheckpoint(cameras: [camera])
        let recorder = FrameRecordingSampler(checkpoint: checkpoint, capacity: 1)
        let robot = CameraRobot(cameras: [camera], clock: clock)
        robot.episodeLength = 30
        var configuration = ControlLoop.Configuration(periodNanoseconds: 100_000_000)
        configuration.lead = 0
        configuration.statesTimedOnArrival = true
        let limits = try SafetyLimits(low: [-1e6, -1e6], high: [1e6, 1e6], maximumStepChange: [1e6, 1e6])
        let loop = try ControlLoop(spec: checkpoint.spec, robot: robot, inference: InlineInference(sampler: recorder),
                                   safety: limits, clock: clock, configuration: configuration)
        // The first chunk of an episode: its first frame fills the window.
        loop.tick()
        #expect(recorder.calls == 1 && recorder.lastHadFrames)
        let F = camera.byteCount
        #expect(recorder.lastFrames[0] == 0 && recorder.lastFrames[F] == 0)
        for _ in 0..<39 { loop.tick() }
        // Each chunk: the frames of the states before and at its request, oldest first (an episode's first chunk:
        // its first frame twice).
        #expect(recorder.calls > 5)
        let newest = Int(recorder.lastFrames[F])
        let oldest = Int(recorder.lastFrames[0])
        #expect(newest == oldest + 1 || (newest % 30 == 0 && oldest == newest), "frames \(oldest), \(newest)")
        #expect(Array(recorder.lastFrames[1..<F]) == Array(patternFrames([camera], steps: 1, seed: 0)[1..<F]))
        // The chunk answers those frames: marker + observation.
        #expect(loop.actCommands > 30 && loop.status.state == .running)

        let before = fp_thread_allocation_count()
        for _ in 0..<200 { loop.tick() }
        let allocations = fp_thread_allocation_count() - before
        #expect(allocations == 0, "\(allocations) allocations in 200 periods with camera frames")
        #expect(loop.status.state == .running)
    }

    @Test func aLoopRefusesARobotLinkWithoutThePolicysCameras() throws {
        let clock = ManualClock()
        let checkpoint = try randomPushTCheckpoint(cameras: [topCamera])
        let robot = ScriptedRobot(observationDimensions: 20, actionDimensions: 2, clock: clock)
        #expect {
            try ControlLoop(spec: checkpoint.spec, robot: robot,
                            inference: InlineInference(sampler: FrameRecordingSampler(checkpoint: checkpoint,
                                                                                        capacity: 1)),
                            safety: pushTLimits(), clock: clock,
                            configuration: ControlLoop.Configuration(periodNanoseconds: 100_000_000))
        } throws: { error in
            "\(error)".contains(
                "the policy takes camera frames of image 96 x 96 x 3 uint8; the robot link delivers none")
        }
        // And `run` refuses a robot that sends other cameras, naming both.
        let description = RobotDescription(name: "arm", observationDimensions: 20, actionDimensions: 2,
                                           controlRateHz: 10, cameras: [wrist])
        #expect {
            try RunSession.check(description, spec: checkpoint.spec, controlRate: 10)
        } throws: { error in
            "\(error)".contains("arm sends camera frames of wrist 84 x 84 x 3 uint8; the policy takes image 96 x 96 x "
                + "3 uint8")
        }
    }

    @Test func aLockStepRunPassesTheRobotsFramesToThePolicy() throws {
        let camera = CameraSpec(name: "image", height: 8, width: 8, channels: 3)
        let checkpoint = try randomPushTCheckpoint(cameras: [camera])
        let recorder = FrameRecordingSampler(checkpoint: checkpoint, capacity: 1)
        let robot = CameraRobot(cameras: [camera], clock: ManualClock())
        var options = RunSession.Options()
        options.lockStep = true
        options.control = nil
        options.durationSeconds = 2  // 20 periods at 10 Hz
        options.handOver = .receding
        let report = try RunSession.run(options, sampler: recorder, robot: robot)
        #expect(report.loop.ticks == 20 && report.loop.actCommands == 20)
        // Receding horizon, Ta = 8: the third chunk was requested at step 16, on the frames of states 15 and 16.
        #expect(recorder.calls == 3 && recorder.lastFrames[0] == 15 && recorder.lastFrames[camera.byteCount] == 16)
    }

    @Test func theZeroMQLinkRefusesStatesWithoutThePolicysFramesAndTheWatchdogSaysWhy() throws {
        let context = try ZMQContext()
        let statePublisher = try makeSocket(.publish, context)
        try statePublisher.bind("tcp://127.0.0.1:*")
        let link = try ZMQRobotLink(context: context, stateEndpoint: try #require(try statePublisher.lastEndpoint),
                                    commandEndpoint: "tcp://127.0.0.1:1", observationDimensions: 3,
                                    actionDimensions: 2, cameras: [topCamera])
        var observation = [Float](repeating: 0, count: 3)
        var applied = [Float](repeating: 0, count: 2)
        var frames = [UInt8](repeating: 0, count: topCamera.byteCount)
        let image = patternFrames([topCamera], steps: 1, seed: 4)
        func publish(sequence: UInt64, withFrames: Bool) throws {
            var state = Wire.RobotState()
            state.observation = [1, 2, 3]
            if withFrames { state.frames = wireFrames(image, cameras: [topCamera], steps: 1) }
            try statePublisher.send(Wire.encode(Wire.envelope(sequence: sequence, .robotState(state))))
        }
        func receive() throws -> RobotStateInfo? {
            try link.receiveLatest(observation: &observation, appliedAction: &applied, frames: &frames)
        }
        // Subscriptions reach the publisher asynchronously: publish until the link has refused a state.
        for attempt in 0..<1000 where link.droppedStates == 0 {
            try publish(sequence: UInt64(attempt + 1), withFrames: false)
            usleep(1000)
            #expect(try receive() == nil)
        }
        #expect(link.lastRefusal?.contains("the state has no frame of camera \"image\" (it has no frames)") == true)
        var taken: RobotStateInfo?
        for attempt in 0..<1000 where taken == nil {
            try publish(sequence: UInt64(5000 + attempt), withFrames: true)
            usleep(1000)
            taken = try receive()
        }
        #expect(taken != nil && frames == image && link.lastRefusal == nil)
    }

    @Test func theWatchdogNamesWhyTheRobotsStatesWereRefused() throws {
        final class RefusingRobot: RobotLink {
            let observationDimensions = 20
            let actionDimensions = 2
            var cameras: [CameraSpec] { [] }
            var states = 0
            var lastRefusal: String? { states >= 5 ? "INVALID_ARGUMENT: the state has no frame of camera" : nil }
            let clock: ControlClock
            init(clock: ControlClock) { self.clock = clock }
            func awaitDescription(timeoutSeconds: Double) throws -> RobotDescription {
                RobotDescription(name: "r", observationDimensions: 20, actionDimensions: 2, controlRateHz: nil)
            }
            func receiveLatest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>)
                throws -> RobotStateInfo?
            {
                guard states < 5 else { return nil }
                states += 1
                observation.update(repeating: 100, count: 20)
                return RobotStateInfo(episode: 0, step: UInt64(states), episodeStart: states == 1, done: false,
                                      success: false, progress: 0, timestampNanoseconds: clock.now(),
                                      sequence: UInt64(states))
            }
            func send(_ mode: CommandMode, action: UnsafePointer<Float>, answering: RobotStateInfo?, step: Int) {}
        }
        let clock = ManualClock()
        let robot = RefusingRobot(clock: clock)
        let spec = try randomPushTCheckpoint().spec
        let loop = try ControlLoop(spec: spec, robot: robot, inference: FixedInference(spec: spec, value: 256),
                                   safety: pushTLimits(), clock: clock,
                                   configuration: ControlLoop.Configuration(periodNanoseconds: 10_000_000))
        for _ in 0..<12 { loop.tick() }
        #expect(loop.report.stops == ["robot state older than the watchdog limit (the states since were refused: "
            + "INVALID_ARGUMENT: the state has no frame of camera)"])
    }

    @Test func aServedCameraPolicyGivesTheInProcessChunksBitForBit() throws {
        let context = try ZMQContext()
        let camera = CameraSpec(name: "image", height: 16, width: 16, channels: 3)
        let checkpoint = try randomPushTCheckpoint(cameras: [camera])
        let server = try RunningServer(checkpoint: checkpoint, context: context) { $0.steps = 3 }
        defer { try? server.stop() }
        let remote = try RemotePolicy(context: context, endpoint: server.endpoint)
        let local = Policy(checkpoint: checkpoint, capacity: 1, steps: 3, seed: 0)
        let window = pushTWindow(seed: 4)
        func chunk(_ sampler: any ChunkSampler, frames: [UInt8]) throws -> [Float] {
            sampler.resetNoise(seed: 21)
            var chunk = [Float](repeating: 0, count: 32)
            try window.withUnsafeBufferPointer { o in
                try frames.withUnsafeBufferPointer { f in
                    try chunk.withUnsafeMutableBufferPointer {
                        try sampler.sampleChunks(observations: o.baseAddress!, frames: f.baseAddress, batch: 1,
                                                 into: $0.baseAddress!)
                    }
                }
            }
            // The server clamps chunks to the contract's bounds ([0, 512] for Push-T); the random policy strays.
            return sampler is RemotePolicy ? chunk : chunk.map { min(max($0, 0), 512) }
        }
        let frames = patternFrames([camera], steps: 2, seed: 5)
        let served = try chunk(remote, frames: frames)
        #expect(served == (try chunk(local, frames: frames)))
        // The frames matter: other frames, another chunk.
        let other = patternFrames([camera], steps: 2, seed: 77)
        #expect(try chunk(remote, frames: other) == (try chunk(local, frames: other)))
        #expect(try chunk(remote, frames: other) != served)
    }

    @Test func aControlPeriodOfARealCameraPolicyAllocatesNothing() throws {
        let clock = ManualClock()
        let camera = CameraSpec(name: "image", height: 16, width: 16, channels: 3)
        let checkpoint = try randomPushTCheckpoint(cameras: [camera])
        let policy = Policy(checkpoint: checkpoint, capacity: 1, steps: 2, seed: 2)
        let robot = CameraRobot(cameras: [camera], clock: clock)
        var configuration = ControlLoop.Configuration(periodNanoseconds: 100_000_000)
        configuration.lead = 1
        let limits = try SafetyLimits(low: [-1e6, -1e6], high: [1e6, 1e6], maximumStepChange: [1e6, 1e6])
        let loop = try ControlLoop(spec: checkpoint.spec, robot: robot,
                                   inference: InlineInference(sampler: policy, revealAfterCollects: 1),
                                   safety: limits, clock: clock, configuration: configuration)
        for _ in 0..<40 { loop.tick() }  // warm-up: first chunks, every buffer touched
        let before = fp_thread_allocation_count()
        for _ in 0..<200 { loop.tick() }
        let allocations = fp_thread_allocation_count() - before
        #expect(allocations == 0, "\(allocations) allocations in 200 periods of a camera policy")
        #expect(loop.actCommands > 150 && loop.status.chunks > 20, "\(loop.report)")
    }
}
