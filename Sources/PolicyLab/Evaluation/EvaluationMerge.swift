import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge

/// `flowpolicy merge`: the reports of an evaluation's shards (`eval --shard I/N`) put back together into the report
/// the unsharded run gives: the episodes in seed order, success and its Wilson interval, mean max progress and the
/// progress levels recomputed from them, the chunk-latency histograms added, the wall time summed (with the longest
/// shard's). Shards must be of the same evaluation: the same task, checkpoint (its content hash), solver, K,
/// hand-over, observation noise (and its seed), disturbance and policy seed, of the same seed range, with no seed
/// twice. Diffusion Policy's Push-T score is recomputed from the episodes too.
public enum EvaluationMerge {
    /// Merges `reports` (each with the path it was read from, for error messages).
    public static func merge(_ reports: [(path: String, report: EvaluationSession.Report)]) throws
        -> EvaluationSession.Report
    {
        guard let (firstPath, first) = reports.first else {
            throw FlowPolicyError.invalidConfiguration("give the shard reports to merge")
        }
        let expected = settings(of: first)
        for (path, report) in reports.dropFirst() {
            let differences = settings(of: report).filter { expected[$0.key] != $0.value }
            if let (name, value) = differences.sorted(by: { $0.key < $1.key }).first {
                throw FlowPolicyError.incompatible(
                    path: path, message: "its \(name) is \(value), \(firstPath)'s is \(expected[name]!); "
                        + "merge only the shards of one evaluation")
            }
        }
        var seen: [UInt64: String] = [:]
        for (path, report) in reports {
            for result in report.results {
                if let other = seen[result.seed] {
                    throw FlowPolicyError.incompatible(
                        path: path, message: "seed \(result.seed) is also in \(other); shards must not overlap")
                }
                seen[result.seed] = path
            }
        }
        let results = reports.flatMap(\.report.results).sorted { $0.seed < $1.seed }
        if let whole = first.shardOf {
            let expected = Int(whole[1] - whole[0] + 1)
            guard results.count == expected else {
                throw FlowPolicyError.invalidConfiguration(
                    "the shards hold \(results.count) of the \(expected) episodes of seeds \(whole[0])-\(whole[1]); "
                        + "merge every shard of the run (a missing one may still be running or have failed)")
            }
        }

        var options = EvaluationSession.Options(task: try TaskDescription.named(first.task))
        options.observationNoise = first.observationNoise
        options.observationNoiseSeed = first.observationNoiseSeed
        options.disturbance = first.disturbance.map { Disturbance(step: $0.step) }
        if let solver = first.solver.flatMap(SolverMethod.init(rawValue:)), let steps = first.solverSteps {
            options.method = solver
            options.steps = steps
        }
        let environment = try options.task.makeEnvironment()
        let busySeconds = reports.reduce(0) { sum, shard in
            let steps = shard.report.results.reduce(0) { $0 + $1.steps }
            let perCore = shard.report.environmentStepsPerSecondPerCore
            return sum + (perCore > 0 ? Double(steps) / perCore : 0)
        }
        var merged = try EvaluationSession.makeReport(
            options: options, environment: environment, results: results, policy: first.policy, latencies: [],
            batches: [], busySeconds: busySeconds, threads: first.threads,
            evaluationsPerChunk: first.evaluationsPerChunk)
        merged.checkpoint = first.checkpoint
        merged.checkpointHash = first.checkpointHash
        merged.policySeed = first.policySeed
        merged.precision = first.precision
        merged.observationNoiseNormalized = first.observationNoiseNormalized
        merged.handOver = first.handOver
        merged.replanEvery = first.replanEvery
        merged.actionSteps = first.actionSteps
        merged.clampedChunkValues = first.clampedChunkValues.map { _ in
            reports.reduce(0) { $0 + ($1.report.clampedChunkValues ?? 0) }
        }
        merged.chunkLatency = first.chunkLatency.map { _ in
            reports.reduce(into: LatencyHistogram()) { sum, shard in
                shard.report.chunkLatency.map { sum.add($0) }
            }
        }
        let calls = reports.compactMap { $0.report.inferenceLatencyMilliseconds?.count }.reduce(0, +)
        if calls > 0, let chunks = merged.chunkLatency?.count {
            merged.meanBatch = Double(chunks) / Double(calls)
        }
        merged.wallSeconds = reports.reduce(0) { $0 + $1.report.wallSeconds }
        merged.longestShardSeconds = reports.map(\.report.wallSeconds).max()
        merged.environmentStepsPerSecondOverall = Double(results.reduce(0) { $0 + $1.steps }) / merged.wallSeconds
        return merged
    }

    /// What must agree between the shards of one evaluation, by name.
    static func settings(of report: EvaluationSession.Report) -> [String: String] {
        func text<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "none" }
        return [
            "task": report.task,
            "policy": report.checkpointHash == nil ? report.policy : "a checkpoint",
            "checkpoint hash": text(report.checkpointHash),
            "solver": text(report.solver), "K": text(report.solverSteps), "precision": text(report.precision),
            "hand-over": text(report.handOver),
            "actions per chunk": text(report.actionSteps), "replanning interval": text(report.replanEvery),
            "observation noise": "\(report.observationNoise)", "policy seed": text(report.policySeed),
            "observation noise seed": text(report.observationNoiseSeed),
            "disturbance step": text(report.disturbance?.step),
            "seed range": report.shardOf.map { "\($0[0])-\($0[1])" } ?? "unsharded",
        ]
    }
}
