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
/// weights: enough to exercise the runtime, the server and the evaluation paths with any checkpoint.
public func randomPushTCheckpoint(seed: UInt64 = 1, hidden: Int = 32) throws -> Checkpoint {
    let spec = PolicySpec(task: "pusht", observationSteps: 2, actionSteps: 8, predictionSteps: 16,
                          observationDimensions: 20, actionDimensions: 2)
    let network = try ResMLPFiLM(spec.networkConfiguration(hidden: hidden, blocks: 2, timeEmbedding: 16))
    var generator = RandomSource(seed: seed)
    let parameters = FloatBuffer(count: network.layout.count)
    network.layout.initialize(parameters, using: &generator)
    return Checkpoint(
        spec: spec, network: network, parameters: parameters,
        observationNormalizer: MinMaxNormalizer(minimum: [Float](repeating: 0, count: 20),
                                                maximum: [Float](repeating: 512, count: 20)),
        actionNormalizer: MinMaxNormalizer(minimum: [0, 0], maximum: [512, 512]), contract: pushTContract)
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

    public init(checkpoint: Checkpoint, context: ZMQContext, configure: (inout PolicyServer.Options) -> Void = { _ in })
        throws
    {
        var options = PolicyServer.Options(endpoint: "tcp://127.0.0.1:*")
        options.maxBatch = 64
        configure(&options)
        let server = try PolicyServer(checkpoint: checkpoint, options: options, context: context)
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
