import FlowPolicy
import Foundation
import SimBridge

/// `flowpolicy report checkpoints`: several checkpoints of one training run, evaluated alike, reported as Diffusion
/// Policy reports a run: the best checkpoint's figure and the mean over the last N checkpoints (Diffusion Policy: the
/// last 10, saved every 50 epochs), for success and, on Push-T, for Diffusion Policy's score.
///
/// The checkpoints are put in training order by the step in their names (`NAME.stepN.safetensors`, as
/// `train --save-every` writes them); the one checkpoint without a step is the run's final one and comes last. The
/// evaluations must be alike (task, solver, K, hand-over, episodes, seeds, observation noise, disturbance,
/// precision; the policy seed may differ); the checkpoints with a step must share their name, so that they are one
/// run's.
public struct CheckpointSeries: Codable, Sendable {
    /// One checkpoint's evaluation.
    public struct Entry: Codable, Sendable {
        public var report: String
        public var checkpoint: String
        /// The training step in its name; nil for the final checkpoint.
        public var step: Int?
        public var success: ProportionEstimate
        /// Push-T: mean of `min(max coverage / 0.95, 1)`.
        public var diffusionPolicyScore: MeanEstimate?
    }

    /// The best checkpoint by a figure, and the figure.
    public struct Best: Codable, Sendable {
        public var value: Double
        public var checkpoint: String
        public var step: Int?
    }

    public var task: String
    /// The evaluations' common settings (`K=10`), episodes and first and last seed.
    public var settings: String
    public var episodes: Int
    public var seeds: [UInt64]
    /// In training order.
    public var entries: [Entry]
    /// The N asked for, and the N used (clipped to the checkpoints there are).
    public var lastRequested: Int
    public var lastUsed: Int
    public var bestSuccess: Best
    public var meanSuccessOfLast: Double
    public var bestDiffusionPolicyScore: Best?
    public var meanDiffusionPolicyScoreOfLast: Double?
    /// Why the Push-T score is missing, when it is.
    public var missingScore: String?

    /// Diffusion Policy's N: the mean of the last 10 checkpoints.
    public static let diffusionPolicyLast = 10

    /// The series of the evaluation reports at `reports` (any order), with the mean over the last `last`.
    public init(reports: [String], last: Int = CheckpointSeries.diffusionPolicyLast) throws {
        guard last >= 1 else {
            throw FlowPolicyError.invalidConfiguration("the mean of the last N checkpoints needs N of 1 or more")
        }
        guard reports.count >= 2 else {
            throw FlowPolicyError.invalidConfiguration("give the reports of two or more checkpoints of one run")
        }
        let digests = try EvaluationDigest.readAlike(reports, compared: "checkpoints")
        let first = digests[0].digest
        let coverage = try TaskDescription.named(first.task).diffusionPolicyScoreCoverage()
        var entries: [Entry] = []
        var missing: String?
        for (path, digest) in digests {
            guard let checkpoint = digest.checkpoint else {
                throw FlowPolicyError.incompatible(path: path, message: "it evaluates no checkpoint (\(digest.policy))")
            }
            let (score, reason) = digest.diffusionPolicyScore(successCoverage: coverage)
            if let reason { missing = missing ?? "\(path): \(reason)" }
            entries.append(Entry(report: path, checkpoint: checkpoint, step: Self.trainingStep(of: checkpoint),
                                 success: digest.success, diffusionPolicyScore: score))
        }
        let finals = entries.filter { $0.step == nil }
        guard finals.count <= 1 else {
            throw FlowPolicyError.invalidConfiguration(
                finals.map(\.checkpoint).joined(separator: " and ")
                    + " name no training step (NAME.stepN.safetensors): "
                    + "only a run's final checkpoint may, so these cannot be put in training order")
        }
        let runNames = Set(entries.filter { $0.step != nil }.map { Self.runName(of: $0.checkpoint) })
        guard runNames.count <= 1 else {
            throw FlowPolicyError.invalidConfiguration(
                "the checkpoints come from different runs (\(runNames.sorted().joined(separator: ", "))); "
                    + "give one run's")
        }
        var steps = Set<Int>()
        for entry in entries {
            if let step = entry.step, !steps.insert(step).inserted {
                throw FlowPolicyError.invalidConfiguration(
                    "two reports evaluate step \(step): give each checkpoint once")
            }
        }
        entries.sort { ($0.step ?? .max) < ($1.step ?? .max) }
        let lastEntries = entries.suffix(last)
        task = first.task
        settings = first.settingsText
        episodes = first.episodes
        seeds = first.seeds
        self.entries = entries
        lastRequested = last
        lastUsed = lastEntries.count
        let bestBySuccess = entries.max { $0.success.rate < $1.success.rate }!
        bestSuccess = Best(value: bestBySuccess.success.rate, checkpoint: bestBySuccess.checkpoint,
                           step: bestBySuccess.step)
        meanSuccessOfLast = lastEntries.reduce(0) { $0 + $1.success.rate } / Double(lastEntries.count)
        if missing == nil, coverage != nil {
            let bestByScore = entries.max { $0.diffusionPolicyScore!.mean < $1.diffusionPolicyScore!.mean }!
            bestDiffusionPolicyScore = Best(value: bestByScore.diffusionPolicyScore!.mean,
                                            checkpoint: bestByScore.checkpoint, step: bestByScore.step)
            meanDiffusionPolicyScoreOfLast =
                lastEntries.reduce(0) { $0 + $1.diffusionPolicyScore!.mean } / Double(lastEntries.count)
        }
        missingScore = missing
    }

    /// The step in a checkpoint's name, `NAME.stepN.safetensors` → N; nil for another name.
    public static func trainingStep(of checkpoint: String) -> Int? {
        let parts = URL(fileURLWithPath: checkpoint).lastPathComponent.split(separator: ".")
        guard let part = parts.dropFirst().last(where: { $0.hasPrefix("step") }) else { return nil }
        return Int(part.dropFirst(4))
    }

    /// A checkpoint's name without its folder, step and extension: the run it comes from.
    static func runName(of checkpoint: String) -> String {
        URL(fileURLWithPath: checkpoint).lastPathComponent.split(separator: ".")
            .filter { !($0.hasPrefix("step") && Int($0.dropFirst(4)) != nil) && $0 != "safetensors" }
            .joined(separator: ".")
    }
}
