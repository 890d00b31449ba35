import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge

/// What `report scores` and `report checkpoints` read from an evaluation report (`eval --json`, `merge --json`):
/// its settings, its success, and each episode's largest progress. It decodes every report `eval` has written, the
/// older ones too (which lack fields added since, such as `diffusionPolicyScore`), so the field's figures can be
/// computed from the reports already committed, without running anything again.
public struct EvaluationDigest: Codable, Sendable {
    /// An episode as the digest needs it; `maxProgress` is nil in a report that did not record it.
    public struct Episode: Codable, Sendable {
        public var seed: UInt64
        public var success: Bool
        public var maxProgress: Double?
    }

    public var task: String
    public var policy: String
    public var checkpoint: String?
    public var solver: String?
    public var solverSteps: Int?
    public var handOver: String?
    public var actionSteps: Int?
    public var replanEvery: Int?
    public var observationNoise: Float?
    public var observationNoiseSeed: UInt64?
    public var disturbance: EvaluationSession.DisturbanceSummary?
    /// fp32, bf16 or int8; nil in reports written before precisions existed (fp32).
    public var precision: String?
    public var policySeed: UInt64?
    public var episodes: Int
    public var seeds: [UInt64]
    public var success: ProportionEstimate
    public var meanMaxProgress: MeanEstimate?
    public var progressName: String?
    public var diffusionPolicyScore: MeanEstimate?
    public var results: [Episode]?

    /// Reads an evaluation report; a file that is not one is refused, naming it and what is missing.
    public static func read(_ path: String) throws -> EvaluationDigest {
        try readJSONReport(EvaluationDigest.self, from: path)
    }

    /// Reads evaluation reports that must have been run alike (task, solver, K, hand-over, episodes, seeds,
    /// observation noise and its seed, disturbance, precision; the checkpoint and the policy seed may differ), refusing
    /// the first that was not, naming the setting (the task first) and what is `compared` (`checkpoints`).
    public static func readAlike(_ paths: [String], ignoring ignored: Set<String> = [], compared: String) throws
        -> [(path: String, digest: EvaluationDigest)] {
        let digests = try paths.map { (path: $0, digest: try read($0)) }
        guard let (firstPath, first) = digests.first else { return [] }
        let ours = first.settings.filter { !ignored.contains($0.key) }
        let names = ["task"] + ours.keys.sorted().filter { $0 != "task" }
        for (path, digest) in digests.dropFirst() {
            let theirs = digest.settings
            // Reports written before the hand-over was recorded name none: they agree with any.
            let differs = { (name: String) in
                ours[name] != theirs[name] && !(name == "hand-over" && [ours[name], theirs[name]].contains("none"))
            }
            if let name = names.first(where: differs) {
                throw FlowPolicyError.incompatible(
                    path: path, message: "its \(name) is \(theirs[name]!), \(firstPath)'s is \(ours[name]!); "
                        + "compare \(compared) evaluated alike")
            }
        }
        return digests
    }

    /// What must agree between evaluations compared with each other, by name.
    var settings: [String: String] {
        func text<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "none" }
        return [
            "task": task, "solver": text(solver), "K": text(solverSteps), "hand-over": text(handOver),
            "actions per chunk": text(actionSteps), "replanning interval": text(replanEvery),
            "episodes": "\(episodes)", "seed range": "\(seeds)", "observation noise": text(observationNoise),
            "observation noise seed": text(observationNoiseSeed), "disturbance step": text(disturbance?.step),
            "precision": precision ?? "fp32",
        ]
    }

    /// Diffusion Policy's Push-T score (`DiffusionPolicyScore`) of this report's episodes, with the reason when it
    /// cannot be had: nil and nil for a task other than Push-T; nil and a reason for a Push-T report that lacks its
    /// episodes' largest coverage.
    public func diffusionPolicyScore(successCoverage: Double?) -> (score: MeanEstimate?, missing: String?) {
        guard let successCoverage else { return (nil, nil) }
        guard let results, results.count == episodes else {
            return (nil, "the report lists no episodes, so no per-episode max coverage")
        }
        let coverages = results.compactMap(\.maxProgress)
        guard coverages.count == results.count else {
            return (nil, "the report does not record each episode's max coverage")
        }
        return (DiffusionPolicyScore.estimate(maxCoverages: coverages, successCoverage: successCoverage), nil)
    }

    /// K, hand-over and noise in a few words: `K=10`, `K=4, noise σ=2`.
    public var settingsText: String {
        var parts = [solverSteps.map { "K=\($0)" } ?? policy]
        if let actionSteps { parts.append("Ta=\(actionSteps)") }
        if let replanEvery { parts.append("ensemble every \(replanEvery)") }
        if let noise = observationNoise, noise > 0 { parts.append("noise σ=\(noise)") }
        if let disturbance { parts.append("push at \(disturbance.step)") }
        return parts.joined(separator: ", ")
    }
}

/// `flowpolicy report scores`: per evaluation report, success beside Diffusion Policy's Push-T score, computed from
/// the episodes the report lists.
public struct EvaluationScores: Codable, Sendable {
    public struct Row: Codable, Sendable {
        public var report: String
        public var task: String
        public var checkpoint: String?
        public var settings: String
        public var episodes: Int
        public var success: ProportionEstimate
        /// Mean over episodes of the largest progress (Push-T: max coverage).
        public var meanMaxProgress: MeanEstimate?
        public var progressName: String?
        /// Push-T: mean of `min(max coverage / 0.95, 1)`; nil for other tasks or when `missing` says why.
        public var diffusionPolicyScore: MeanEstimate?
        public var missing: String?
    }

    public var rows: [Row]

    /// The rows of `reports` (paths), in their order.
    public init(reports: [String]) throws {
        var coverages: [String: Double?] = [:]
        rows = try reports.map { path in
            let digest = try EvaluationDigest.read(path)
            if coverages[digest.task] == nil {
                coverages[digest.task] = try TaskDescription.named(digest.task).diffusionPolicyScoreCoverage()
            }
            let (score, missing) = digest.diffusionPolicyScore(successCoverage: coverages[digest.task]!)
            return Row(report: path, task: digest.task, checkpoint: digest.checkpoint, settings: digest.settingsText,
                       episodes: digest.episodes, success: digest.success, meanMaxProgress: digest.meanMaxProgress,
                       progressName: digest.progressName, diffusionPolicyScore: score, missing: missing)
        }
    }
}
