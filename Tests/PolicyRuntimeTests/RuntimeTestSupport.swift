import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge

/// A policy of Push-T's dimensions (20-D keypoints, 2-D actions, To/Ta/Tp = 2/8/16) with random weights: enough to
/// exercise the runtime, the server and the evaluation paths with any checkpoint.
func randomPushTCheckpoint(seed: UInt64 = 1, hidden: Int = 32) throws -> Checkpoint {
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
        actionNormalizer: MinMaxNormalizer(minimum: [0, 0], maximum: [512, 512]))
}

/// Push-T's safety limits (from tasks/pusht/task.yaml).
func pushTLimits() throws -> SafetyLimits { try SafetyLimits.forTask("pusht") }

/// Runs `body` on a thread of its own; `join` waits (at most the generous timeout) and rethrows.
final class Background: @unchecked Sendable {
    // `@unchecked`: `outcome` is written before `done.signal()` and read after `done.wait()`.
    private var outcome: Result<Void, any Error> = .success(())
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws -> Void) {
        Thread { [self] in
            outcome = Result { try body() }
            done.signal()
        }.start()
    }

    func join() throws {
        guard done.wait(timeout: .now() + generousTimeoutSeconds) == .success else { throw PeerTimedOut() }
        try outcome.get()
    }
}

/// A policy server on a free loopback port, serving on a thread until `stop()`.
final class RunningServer {
    let server: PolicyServer
    let thread: Background
    var endpoint: String { server.endpoint }

    init(checkpoint: Checkpoint, context: ZMQContext, configure: (inout PolicyServer.Options) -> Void = { _ in })
        throws
    {
        var options = PolicyServer.Options(endpoint: "tcp://127.0.0.1:*")
        options.maxBatch = 64
        configure(&options)
        let server = try PolicyServer(checkpoint: checkpoint, options: options, context: context)
        self.server = server
        thread = Background { try server.run() }
    }

    func stop() throws {
        server.stop()
        try thread.join()
    }
}

/// A full observation window of Push-T size with values in the field.
func pushTWindow(seed: UInt64) -> [Float] {
    var generator = RandomSource(seed: seed)
    return (0..<40).map { _ in 50 + 400 * generator.nextUniform() }
}
