import FlowPolicy
import Foundation
import SimBridge

extension EvaluationSession {
    /// `flowpolicy eval --remote ENDPOINT`: the same lock-step evaluation, with every chunk sampled by a policy
    /// server over ZeroMQ.
    ///
    /// The rule that makes it give exactly the in-process outcomes: the client makes the same batched calls as the
    /// in-process evaluation (all unfinished episodes of a wave, in seed order, full windows), and each is one
    /// `Infer` with `noise_seed = --policy-seed` and `workers = --threads`. The server samples such requests alone on a
    /// noise stream it keeps for this client, created from the seed by the first request (`reset`) and continued by
    /// the next, with the batch split over the same number of threads: the same noise, the same arithmetic, so the
    /// same chunks bit for bit as the in-process `Policy` with that seed. The server's solver and step count are used
    /// (Metadata reports them).
    static func runRemote(_ options: Options, endpoint: String) throws -> Report {
        guard options.episodes >= 1 else { throw FlowPolicyError.invalidConfiguration("--episodes must be at least 1") }
        let common = try TaskRegistry.commonSettings(options.task)
        let firstSeed = options.firstSeed ?? common.seeds.evaluation
        let seeds = (0..<UInt64(options.episodes)).map { firstSeed + $0 }
        let start = monotonicSeconds()
        let context = try ZMQContext()
        let client = try PolicyClient(context: context, endpoint: endpoint, timeoutMilliseconds: 120_000)
        let metadata = try client.metadata()
        guard let method = SolverMethod(rawValue: metadata.solver) else {
            throw PolicyClientError.unexpectedReply("unknown solver \"\(metadata.solver)\" in Metadata")
        }
        let spec = PolicySpec(
            task: metadata.task, observationSteps: Int(metadata.observationSteps),
            actionSteps: Int(metadata.actionSteps), predictionSteps: Int(metadata.predictionSteps),
            observationDimensions: Int(metadata.observationDimensions),
            actionDimensions: Int(metadata.actionDimensions))
        try spec.validate()
        if let trained = SeedRanges(metadata.datasetSeeds), let overlap = seeds.first(where: { trained.contains($0) }) {
            throw FlowPolicyError.invalidConfiguration(
                "evaluation seed \(overlap) is one the served policy's training data was collected with "
                    + "(\(metadata.datasetSeeds)); evaluate on other seeds")
        }
        var options = options
        options.method = method
        options.steps = Int(metadata.solverSteps)
        let (To, Tp, Do, Da) = (spec.observationSteps, spec.predictionSteps,
                                    spec.observationDimensions, spec.actionDimensions)
        let workers = UInt32(max(1, options.threads))
        var first = true
        var report = try runLockStep(
            spec: spec, seeds: seeds, options: options, policy: "served by \(endpoint) (\(metadata.method))",
            evaluationsPerChunk: options.steps * method.evaluationsPerStep
        ) { observations, batch, chunks in
            var infer = Wire.Infer()
            infer.reset = first
            infer.observations = Array(UnsafeBufferPointer(start: observations, count: batch * To * Do))
            infer.observationSteps = UInt32(To)
            infer.batch = UInt32(batch)
            infer.noiseSeed = options.policySeed
            infer.workers = workers
            let chunk = try client.infer(infer)
            first = false
            guard chunk.actions.count == batch * Tp * Da else {
                throw PolicyClientError.unexpectedReply(
                    "ActionChunk holds \(chunk.actions.count) numbers; expected \(batch) x \(Tp) x \(Da)")
            }
            for i in 0..<(batch * Tp * Da) { chunks[i] = chunk.actions[i] }
        }
        report.checkpoint = metadata.checkpoint.isEmpty ? nil : metadata.checkpoint
        report.wallSeconds = monotonicSeconds() - start
        let steps = report.results.reduce(0) { $0 + $1.steps }
        report.environmentStepsPerSecondOverall = Double(steps) / report.wallSeconds
        return report
    }
}
