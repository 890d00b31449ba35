import SimBridge

/// Diffusion Policy's Push-T score, the figure Diffusion Policy and every paper comparing with it report for Push-T:
/// the mean over episodes of the episode's largest reward, `min(max coverage / 0.95, 1)` (Push-T's reward is
/// `clip(coverage / 0.95, 0, 1)`). It credits near misses that the success rate (coverage > 0.95 reached) does not:
/// an episode that peaks at coverage 0.90 scores 0.947 here and 0 in the success rate.
public enum DiffusionPolicyScore {
    /// One episode's score: its largest coverage over the success coverage (0.95), at most 1.
    public static func episodeScore(maxCoverage: Double, successCoverage: Double) -> Double {
        min(max(maxCoverage / successCoverage, 0), 1)
    }

    /// The mean over episodes with its 95% interval, from each episode's largest coverage.
    public static func estimate(maxCoverages: [Double], successCoverage: Double) -> MeanEstimate {
        MeanEstimate(maxCoverages.map { episodeScore(maxCoverage: $0, successCoverage: successCoverage) },
                     bounds: 0...1)
    }

    /// The score of `results` for `task`, nil for a task other than Push-T.
    public static func estimate(_ results: [EpisodeOutcome], task: TaskDescription) throws -> MeanEstimate? {
        guard let coverage = try task.diffusionPolicyScoreCoverage() else { return nil }
        return estimate(maxCoverages: results.map(\.maxProgress), successCoverage: coverage)
    }
}
