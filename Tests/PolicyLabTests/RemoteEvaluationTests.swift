import FlowPolicy
import Foundation
import PolicyLab
import PolicyRuntime
import SimBridge
import RuntimeTestSupport
import Testing

/// The shipped Push-T policy, when it is in the repository.
private let shippedPushTPolicy: String? = {
    guard let task = try? TaskDescription.named("pusht") else { return nil }
    let path = task.folder.path("policy.safetensors")
    return FileManager.default.fileExists(atPath: path) ? path : nil
}()

/// `flowpolicy eval --remote`: the lock-step evaluation through a policy server over TCP loopback gives exactly the
/// per-episode outcomes of the in-process evaluation with the same seeds, for any checkpoint (here a random one of
/// Push-T's dimensions; the shipped policy takes the same path).
@Suite struct RemoteEvaluationTests {
    @Test(arguments: [1, 2])
    func remoteLockStepEvaluationReproducesInProcessOutcomes(threads: Int) throws {
        try expectRemoteEqualsInProcess(checkpoint: randomPushTCheckpoint(seed: 3), threads: threads)
    }

    @Test(.enabled(if: shippedPushTPolicy != nil, "the shipped Push-T policy is not in tasks/pusht yet"))
    func remoteEvaluationOfTheShippedPushTPolicyReproducesInProcessOutcomes() throws {
        try expectRemoteEqualsInProcess(checkpoint: Checkpoint(contentsOf: #require(shippedPushTPolicy)), threads: 2)
    }

    private func expectRemoteEqualsInProcess(checkpoint: Checkpoint, threads: Int) throws {
        let context = try ZMQContext()
        let server = try RunningServer(checkpoint: checkpoint, context: context) { $0.steps = 3 }
        defer { try? server.stop() }

        var options = EvaluationSession.Options(task: try .named("pusht"))
        options.episodes = 5
        options.firstSeed = 100_020
        options.steps = 3
        options.policySeed = 12
        options.threads = threads
        options.showProgress = false
        let local = try EvaluationSession.run(options, checkpoint: checkpoint, path: "the checkpoint")
        let remote = try EvaluationSession.run(options, remote: server.endpoint)

        #expect(remote.results.map(\.seed) == (100_020...100_024).map { $0 })
        for (a, b) in zip(local.results, remote.results) {
            #expect(a.steps == b.steps && a.success == b.success && a.maxProgress == b.maxProgress
                    && a.finalProgress == b.finalProgress && a.totalReward == b.totalReward
                    && a.clippedActions == b.clippedActions && a.failure == b.failure, "seed \(a.seed)")
        }
        #expect(remote.policy.contains("served by") && remote.solverSteps == 3 && remote.meanBatch == local.meanBatch)

        // The outcomes do depend on the noise: another policy seed changes them (so the equality above means
        // something).
        options.policySeed = 13
        let other = try EvaluationSession.run(options, remote: server.endpoint)
        #expect(other.results.map(\.totalReward) != remote.results.map(\.totalReward))
    }
}
