import FlowPolicy
import Foundation
import PolicyLab
import PolicyRuntime
import SimBridge
import Testing

private func temporaryFolder() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("flowpolicy-\(UUID())").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Writes an evaluation report with the keys the oldest committed reports have (no `diffusionPolicyScore`, no
/// `stepsToProgressLevels`), `successes` of the episodes successful and the given largest coverages.
private func writeOldReport(to path: String, checkpoint: String?, task: String = "pusht", K: Int = 10,
                            policySeed: Int? = nil, precision: String? = nil, maxCoverages: [Double?]) throws {
    let successes = maxCoverages.filter { ($0 ?? 0) > 0.95 }.count
    let results: [[String: Any]] = maxCoverages.enumerated().map { index, coverage in
        var episode: [String: Any] = [
            "seed": 100_000 + index, "success": (coverage ?? 0) > 0.95, "steps": 300, "finalProgress": 0,
            "totalReward": 0, "clippedActions": 0,
        ]
        if let coverage { episode["maxProgress"] = coverage }
        return episode
    }
    let estimate = ProportionEstimate(successes: successes, trials: maxCoverages.count)
    var report: [String: Any] = [
        "task": task, "policy": "checkpoint (fm)", "solver": "euler", "solverSteps": K, "observationNoise": 0,
        "episodes": maxCoverages.count, "seeds": [100_000, 100_000 + maxCoverages.count - 1],
        "success": ["successes": successes, "trials": maxCoverages.count, "rate": estimate.rate, "low": estimate.low,
                    "high": estimate.high],
        "progressName": "max coverage", "results": results,
    ]
    if let checkpoint { report["checkpoint"] = checkpoint }
    if let policySeed { report["policySeed"] = policySeed }
    if let precision { report["precision"] = precision }
    try JSONSerialization.data(withJSONObject: report).write(to: URL(fileURLWithPath: path))
}

/// Diffusion Policy's Push-T score, the best and mean-of-last checkpoints of a run, and the spread across seeds, from
/// reports on disk.
@Suite struct FieldMetricsTests {
    @Test func diffusionPolicyScoreIsTheMeanOfTheClippedLargestReward() throws {
        let score = DiffusionPolicyScore.estimate(maxCoverages: [0.95, 0.5, 1.0, 0.0, 0.9], successCoverage: 0.95)
        #expect(abs(score.mean - (1 + 0.5 / 0.95 + 1 + 0 + 0.9 / 0.95) / 5) < 1e-12)
        #expect(score.high <= 1 && score.count == 5)
        #expect(try TaskDescription.named("pusht").diffusionPolicyScoreCoverage() == 0.95)
        #expect(try TaskDescription.named("pusht_image").diffusionPolicyScoreCoverage() == 0.95)
        #expect(try TaskDescription.named("robomimic_lift").diffusionPolicyScoreCoverage() == nil)
    }

    @Test func evaluationReportsCarryTheScoreOnPushTOnly() throws {
        var options = EvaluationSession.Options(task: try .named("pusht"))
        options.episodes = 3
        options.showProgress = false
        let expert = try EvaluationSession.runExpert(options)
        let expected = DiffusionPolicyScore.estimate(maxCoverages: expert.results.map(\.maxProgress),
                                                     successCoverage: 0.95)
        #expect(expert.diffusionPolicyScore == expected)
        #expect(expert.diffusionPolicyScore?.mean == 1, "the expert succeeds, so every episode scores 1")
        options = EvaluationSession.Options(task: try .named("robomimic_lift"))
        options.episodes = 1
        options.showProgress = false
        #expect(try EvaluationSession.runExpert(options).diffusionPolicyScore == nil)
    }

    @Test func scoresAreComputedFromOldReportsOrTheirAbsenceExplained() throws {
        let folder = try temporaryFolder()
        try writeOldReport(to: "\(folder)/a.json", checkpoint: "fm.safetensors", maxCoverages: [0.97, 0.76, 0.38])
        try writeOldReport(to: "\(folder)/b.json", checkpoint: "fm.safetensors", maxCoverages: [0.97, nil, 0.38])
        let scores = try EvaluationScores(reports: ["\(folder)/a.json", "\(folder)/b.json"])
        #expect(abs(scores.rows[0].diffusionPolicyScore!.mean - (1 + 0.8 + 0.4) / 3) < 1e-12)
        #expect(scores.rows[0].success.successes == 1)
        #expect(scores.rows[1].diffusionPolicyScore == nil && scores.rows[1].missing?.contains("max coverage") == true)
    }

    @Test func checkpointsAreOrderedByStepWithTheBestAndTheMeanOfTheLast() throws {
        let folder = try temporaryFolder()
        // Success rates 1/4, 3/4, 2/4 at steps 10k, 20k, 30k, and 4/4 for the final checkpoint; given out of order.
        let runs: [(String, [Double])] = [
            ("run.step20000.safetensors", [0.99, 0.98, 0.97, 0.5]),
            ("/cache/run.safetensors", [0.99, 0.98, 0.97, 0.96]),
            ("run.step10000.safetensors", [0.99, 0.5, 0.5, 0.5]),
            ("run.step30000.safetensors", [0.99, 0.98, 0.5, 0.5]),
        ]
        var paths: [String] = []
        for (index, (checkpoint, coverages)) in runs.enumerated() {
            paths.append("\(folder)/\(index).json")
            try writeOldReport(to: paths.last!, checkpoint: checkpoint, maxCoverages: coverages)
        }
        let series = try CheckpointSeries(reports: paths, last: 2)
        #expect(series.entries.map(\.step) == [10_000, 20_000, 30_000, nil])
        #expect(series.bestSuccess.value == 1 && series.bestSuccess.step == nil)
        #expect(series.lastUsed == 2 && abs(series.meanSuccessOfLast - (0.5 + 1) / 2) < 1e-12)
        let scoreOf = { (coverages: [Double]) in coverages.map { min($0 / 0.95, 1) }.reduce(0, +) / 4 }
        #expect(abs(series.meanDiffusionPolicyScoreOfLast! - (scoreOf(runs[3].1) + scoreOf(runs[1].1)) / 2) < 1e-12)
        let all = try CheckpointSeries(reports: paths)
        #expect(all.lastRequested == 10 && all.lastUsed == 4, "N is clipped to the checkpoints there are")
        #expect(abs(all.meanSuccessOfLast - (0.25 + 0.75 + 0.5 + 1) / 4) < 1e-12)

        // Refused: evaluations at another K, two checkpoints without a step, two runs.
        try writeOldReport(to: "\(folder)/k2.json", checkpoint: "run.step40000.safetensors", K: 2,
                           maxCoverages: [0.5, 0.5, 0.5, 0.5])
        #expect(throws: FlowPolicyError.self) { try CheckpointSeries(reports: paths + ["\(folder)/k2.json"]) }
        try writeOldReport(to: "\(folder)/final2.json", checkpoint: "other.safetensors",
                           maxCoverages: [0.5, 0.5, 0.5, 0.5])
        #expect(throws: FlowPolicyError.self) { try CheckpointSeries(reports: paths + ["\(folder)/final2.json"]) }
        try writeOldReport(to: "\(folder)/other.json", checkpoint: "other.step40000.safetensors",
                           maxCoverages: [0.5, 0.5, 0.5, 0.5])
        #expect(throws: FlowPolicyError.self) { try CheckpointSeries(reports: paths + ["\(folder)/other.json"]) }
    }

    @Test func seedsAreReportedAsMeanSpreadAndPooledEpisodes() throws {
        let folder = try temporaryFolder()
        // Success 1/4, 3/4, 2/4: three fine-tuning seeds, and the base with a second policy seed.
        let runs: [(String, Int?, [Double])] = [
            ("mle-seed0.safetensors", nil, [0.99, 0.5, 0.5, 0.5]),
            ("mle-seed1.safetensors", nil, [0.99, 0.98, 0.97, 0.5]),
            ("mle-seed2.safetensors", nil, [0.99, 0.98, 0.5, 0.2]),
            ("mle-seed2.safetensors", 1, [0.99, 0.5, 0.5, 0.2]),
        ]
        var paths: [String] = []
        for (index, (checkpoint, policySeed, coverages)) in runs.enumerated() {
            paths.append("\(folder)/\(index).json")
            try writeOldReport(to: paths.last!, checkpoint: checkpoint, policySeed: policySeed, maxCoverages: coverages)
        }
        let spread = try SeedSpread(reports: Array(paths.prefix(3)))
        #expect(abs(spread.meanSuccess - 0.5) < 1e-12)
        #expect(abs(spread.successStandardDeviation - 0.25) < 1e-12, "sample standard deviation, n - 1")
        #expect(spread.pooledSuccess == ProportionEstimate(successes: 6, trials: 12))
        let scores = runs.prefix(3).map { $0.2.map { min($0 / 0.95, 1) }.reduce(0, +) / 4 }
        #expect(abs(spread.meanDiffusionPolicyScore! - scores.reduce(0, +) / 3) < 1e-12)
        #expect(try SeedSpread(reports: [paths[2], paths[3]]).entries.map(\.policySeed) == [nil, 1])

        // Refused: one report, a report given twice, an evaluation at another K or precision (older reports: fp32).
        #expect(throws: FlowPolicyError.self) { try SeedSpread(reports: [paths[0]]) }
        #expect(throws: FlowPolicyError.self) { try SeedSpread(reports: [paths[0], paths[1], paths[0]]) }
        try writeOldReport(to: "\(folder)/k2.json", checkpoint: "mle-seed3.safetensors", K: 2,
                           maxCoverages: [0.5, 0.5, 0.5, 0.5])
        #expect(throws: FlowPolicyError.self) { try SeedSpread(reports: paths + ["\(folder)/k2.json"]) }
        try writeOldReport(to: "\(folder)/int8.json", checkpoint: "mle-seed3.safetensors", precision: "int8",
                           maxCoverages: [0.5, 0.5, 0.5, 0.5])
        #expect(throws: FlowPolicyError.self) { try SeedSpread(reports: paths + ["\(folder)/int8.json"]) }
        try writeOldReport(to: "\(folder)/fp32.json", checkpoint: "mle-seed3.safetensors", precision: "fp32",
                           maxCoverages: [0.5, 0.5, 0.5, 0.5])
        #expect(try SeedSpread(reports: paths + ["\(folder)/fp32.json"]).entries.count == 5)
    }

    @Test func trainingStepsAreReadFromCheckpointNames() {
        #expect(CheckpointSeries.trainingStep(of: "/a/fm-150k.step25000.safetensors") == 25_000)
        #expect(CheckpointSeries.trainingStep(of: "/a/policy.step5000.safetensors") == 5000)
        #expect(CheckpointSeries.trainingStep(of: "/a/fm-150k.safetensors") == nil)
        #expect(CheckpointSeries.trainingStep(of: "/a/stepper.safetensors") == nil)
    }
}
