import FlowPolicy
import Foundation
import SimBridge

/// `flowpolicy report seeds`: one evaluation repeated across seeds (training, fine-tuning or policy seeds), reported
/// as the spread across them: each seed's success, the mean and sample standard deviation over the seeds, and the
/// pooled episodes' success with its 95% interval; on Push-T also Diffusion Policy's score, mean and standard deviation
/// over the seeds.
///
/// The evaluations must be alike (task, solver, K, hand-over, episodes, seeds, observation noise, disturbance,
/// precision); the checkpoint, the policy seed and the observation-noise seed may differ, but no checkpoint may be
/// evaluated twice with the same policy seed.
public struct SeedSpread: Codable, Sendable {
    /// One seed's evaluation.
    public struct Entry: Codable, Sendable {
        public var report: String
        public var checkpoint: String?
        public var policySeed: UInt64?
        public var success: ProportionEstimate
        /// Push-T: mean of `min(max coverage / 0.95, 1)`.
        public var diffusionPolicyScore: MeanEstimate?
    }

    public var task: String
    /// The evaluations' common settings (`K=2, push at 100`), episodes per evaluation and their seeds.
    public var settings: String
    public var episodes: Int
    public var seeds: [UInt64]
    /// In the order given.
    public var entries: [Entry]
    /// Mean and sample standard deviation (n - 1) of the entries' success rates.
    public var meanSuccess: Double
    public var successStandardDeviation: Double
    /// Every entry's episodes together.
    public var pooledSuccess: ProportionEstimate
    public var meanDiffusionPolicyScore: Double?
    public var diffusionPolicyScoreStandardDeviation: Double?
    /// Why the Push-T score is missing, when it is.
    public var missingScore: String?

    /// The spread of the evaluation reports at `reports` (two or more).
    public init(reports: [String]) throws {
        guard reports.count >= 2 else {
            throw FlowPolicyError.invalidConfiguration("give the reports of two or more seeds")
        }
        let digests = try EvaluationDigest.readAlike(reports, ignoring: ["observation noise seed"],
                                                     compared: "seeds")
        let first = digests[0].digest
        var evaluated: [String: String] = [:]
        for (path, digest) in digests {
            let run = "\(digest.checkpoint ?? digest.policy) with policy seed \(digest.policySeed ?? 0)"
            if let earlier = evaluated.updateValue(path, forKey: run) {
                throw FlowPolicyError.incompatible(
                    path: path, message: "it evaluates \(run), as \(earlier) does: give each seed once")
            }
        }
        let coverage = try TaskDescription.named(first.task).diffusionPolicyScoreCoverage()
        var missing: String?
        entries = digests.map { path, digest in
            let (score, reason) = digest.diffusionPolicyScore(successCoverage: coverage)
            if let reason { missing = missing ?? "\(path): \(reason)" }
            return Entry(report: path, checkpoint: digest.checkpoint, policySeed: digest.policySeed,
                         success: digest.success, diffusionPolicyScore: score)
        }
        task = first.task
        settings = first.settingsText
        episodes = first.episodes
        seeds = first.seeds
        (meanSuccess, successStandardDeviation) = Self.meanAndStandardDeviation(entries.map(\.success.rate))
        pooledSuccess = ProportionEstimate(successes: entries.reduce(0) { $0 + $1.success.successes },
                                           trials: entries.reduce(0) { $0 + $1.success.trials })
        if missing == nil, coverage != nil {
            let (mean, deviation) = Self.meanAndStandardDeviation(entries.map { $0.diffusionPolicyScore!.mean })
            meanDiffusionPolicyScore = mean
            diffusionPolicyScoreStandardDeviation = deviation
        }
        missingScore = missing
    }

    /// The mean and the sample standard deviation (n - 1) of two or more values.
    static func meanAndStandardDeviation(_ values: [Double]) -> (Double, Double) {
        let mean = values.reduce(0, +) / Double(values.count)
        let squares = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        return (mean, (squares / Double(values.count - 1)).squareRoot())
    }
}
