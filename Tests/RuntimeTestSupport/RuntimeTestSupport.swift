import FlowPolicy
import Foundation
import PolicyRuntime

/// Push-T's deployment contract (tasks/pusht/task.yaml), written out so that the runtime's tests need no task files.
public let pushTContract = DeploymentContract(
    controlRateHz: 10,
    observations: [.init(name: "block_keypoints", size: 18, unit: "world units"),
                   .init(name: "agent_pos", size: 2, unit: "world units")],
    actions: [.init(name: "agent_target", size: 2, unit: "world units")], actionKind: .position,
    actionLow: [0, 0], actionHigh: [512, 512], maximumStepChange: [150, 150], maximumVelocity: [3000, 3000],
    maximumAcceleration: [90000, 90000], maximumJerk: [10_000_000, 10_000_000])

/// A policy of Push-T's dimensions (20-D keypoints, 2-D actions, To/Ta/Tp = 2/8/16) and contract, with random
/// weights: enough to exercise the runtime, the server and the evaluation paths with any checkpoint. With `cameras`
/// (at least 8 x 8 pixels), it also sees their frames, through a small random CNN per camera (cropped to the smallest
/// camera's size).
public func randomPushTCheckpoint(seed: UInt64 = 1, hidden: Int = 32, cameras: [CameraSpec] = []) throws
    -> Checkpoint
{
    let spec = PolicySpec(task: "pusht", observationSteps: 2, actionSteps: 8, predictionSteps: 16,
                          observationDimensions: 20, actionDimensions: 2, cameras: cameras)
    var generator = RandomSource(seed: seed)
    var encoder: ImageObservationEncoder?
    var encoderParameters: FloatBuffer?
    if !cameras.isEmpty {
        let configuration = ImageEncoderConfiguration(
            backbone: .smallCNN, channels: 3, height: cameras.map(\.height).min()!,
            width: cameras.map(\.width).min()!, keypoints: 4, features: 8)
        let made = try ImageObservationEncoder(cameras: cameras, configuration: configuration)
        let parameters = FloatBuffer(count: made.layout.count)
        made.layout.initialize(parameters, using: &generator)
        (encoder, encoderParameters) = (made, parameters)
    }
    let network = try ResMLPFiLM(spec.networkConfiguration(
        hidden: hidden, blocks: 2, timeEmbedding: 16, imageFeatures: encoder?.featuresPerStep ?? 0))
    let parameters = FloatBuffer(count: network.layout.count)
    network.layout.initialize(parameters, using: &generator)
    return Checkpoint(
        spec: spec, network: network, parameters: parameters,
        observationNormalizer: MinMaxNormalizer(minimum: [Float](repeating: 0, count: 20),
                                                maximum: [Float](repeating: 512, count: 20)),
        actionNormalizer: MinMaxNormalizer(minimum: [0, 0], maximum: [512, 512]), contract: pushTContract,
        imageEncoder: encoder, imageEncoderParameters: encoderParameters)
}

/// Push-T's safety limits.
public func pushTLimits() throws -> SafetyLimits { try SafetyLimits(contract: pushTContract) }

/// Runs `body` on a thread of its own; `join` waits (at most the generous timeout) and rethrows.
public final class Background: @unchecked Sendable {
    // `@unchecked`: `outcome` is written before `done.signal()` and read after `done.wait()`.
    private var outcome: Result<Void, any Error> = .success(())
    private let done = DispatchSemaphore(value: 0)

    public init(_ body: @escaping @Sendable () throws -> Void) {
        Thread { [self] in
            outcome = Result { try body() }
            done.signal()
        }.start()
    }

    public func join() throws {
        guard done.wait(timeout: .now() + generousTimeoutSeconds) == .success else { throw PeerTimedOut() }
        try outcome.get()
    }
}

/// A policy server on a free loopback port, serving on a thread until `stop()`.
public final class RunningServer {
    public let server: PolicyServer
    public let thread: Background
    public var endpoint: String { server.endpoint }

    public init(checkpoint: Checkpoint, context: ZMQContext, configure: (inout PolicyServer.Options) -> Void = { _ in },
                makeSampler: PolicyServer.SamplerFactory? = nil) throws
    {
        var options = PolicyServer.Options(endpoint: "tcp://127.0.0.1:*")
        options.maxBatch = 64
        configure(&options)
        let server = try PolicyServer(checkpoint: checkpoint, options: options, context: context,
                                      makeSampler: makeSampler)
        self.server = server
        thread = Background { try server.run() }
    }

    public func stop() throws {
        server.stop()
        try thread.join()
    }
}

/// A full observation window of Push-T size with values in the field.
public func pushTWindow(seed: UInt64) -> [Float] {
    var generator = RandomSource(seed: seed)
    return (0..<40).map { _ in 50 + 400 * generator.nextUniform() }
}

/// A camera of Push-T image's size.
public let topCamera = CameraSpec(name: "image", height: 96, width: 96, channels: 3)

/// A sampler double for the frame paths: it records the frames of every call (`[B, To, frameBytesPerStep]`, into a
/// buffer made at construction: nothing allocated per call) and answers each window row with a chunk whose every
/// number is the first byte of the row's newest frames plus the row's first observation (so a test can tell which
/// frames reached which window). Spec and contract from `checkpoint`.
public final class FrameRecordingSampler: ChunkSampler, @unchecked Sendable {
    // `@unchecked`: used by one thread at a time (the server's, or the loop's), read by the test after that thread
    // has finished or between calls.
    public let spec: PolicySpec
    public let contract: DeploymentContract?
    public let capacity: Int
    public let solver = SolverMethod.euler
    public var solverSteps = 1
    public var evaluationsPerChunk: Int { solverSteps }
    public private(set) var calls = 0
    public private(set) var largestBatch = 0
    /// Frames of the last call, `[B, To, frameBytesPerStep]`, and whether it had any.
    public private(set) var lastFrames: [UInt8]
    public private(set) var lastBatch = 0
    public private(set) var lastHadFrames = false

    public init(checkpoint: Checkpoint, capacity: Int) {
        spec = checkpoint.spec
        contract = checkpoint.contract
        self.capacity = capacity
        lastFrames = [UInt8](repeating: 0, count: max(capacity * spec.observationSteps * spec.frameBytesPerStep, 1))
    }

    public func sampleChunks(observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, batch: Int,
                             into chunks: UnsafeMutablePointer<Float>, committed: UnsafePointer<Float>?,
                             committedSteps: Int) throws {
        record(observations: observations, frames: frames, batch: batch, into: chunks)
    }

    public func resetNoise(seed: UInt64) {}

    public func sampleChunks(observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, batch: Int,
                             into chunks: UnsafeMutablePointer<Float>, noiseSeeds: UnsafePointer<UInt64>) throws {
        record(observations: observations, frames: frames, batch: batch, into: chunks)
    }

    private func record(observations: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, batch B: Int,
                        into chunks: UnsafeMutablePointer<Float>) {
        precondition(B <= capacity)
        let (To, Do, F, chunk) = (spec.observationSteps, spec.observationDimensions, spec.frameBytesPerStep,
                                  spec.predictionSteps * spec.actionDimensions)
        calls += 1
        largestBatch = max(largestBatch, B)
        lastBatch = B
        lastHadFrames = frames != nil
        if let frames {
            lastFrames.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: frames, count: B * To * F) }
        }
        for row in 0..<B {
            let marker = frames.map { Float($0[(row * To + To - 1) * F]) } ?? 0
            (chunks + row * chunk).update(repeating: marker + observations[row * To * Do], count: chunk)
        }
    }
}

/// Frames of `steps` steps of `cameras` (`[steps, Σ H*W*C]`) whose bytes are `(seed + step * 7 + i) mod 251`, so
/// that every step and camera differs; the first byte of step t is `(seed + 7 t) mod 251`.
public func patternFrames(_ cameras: [CameraSpec], steps: Int, seed: Int) -> [UInt8] {
    let perStep = cameras.frameBytes
    var bytes = [UInt8](repeating: 0, count: steps * perStep)
    for t in 0..<steps {
        for i in 0..<perStep { bytes[t * perStep + i] = UInt8((seed + t * 7 + i) % 251) }
    }
    return bytes
}
