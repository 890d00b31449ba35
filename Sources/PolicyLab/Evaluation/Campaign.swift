import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge
import Yams

/// An evaluation campaign: checkpoints × K × hand-overs on one task's seeds, each configuration split into shards,
/// run by a cluster's own scheduler. `plan` writes one `flowpolicy eval --shard` command per line of `jobs.txt`,
/// a Slurm batch script that runs them as a job array (`sbatch --wait DIR/campaign.sbatch`; a Kubernetes Indexed
/// Job runs the same lines, README), and `plan.json`; `merge` puts each configuration's shards together into one row
/// of `campaign.json`.
///
/// ```yaml
/// task: pusht
/// checkpoints: [tasks/pusht/policy.safetensors]
/// steps: [2, 10]             # K
/// hand_overs: [receding]     # optional: the task's default
/// episodes: 200
/// first_seed: 100000         # optional: the task's evaluation seeds
/// shards: 4
/// threads: 1                 # per job (Slurm's --cpus-per-task)
/// policy_seed: 0
/// ```
public struct Campaign: Codable, Sendable, Equatable {
    public var task: String
    public var checkpoints: [String]
    public var steps: [Int]
    public var handOvers: [String]?
    public var episodes: Int
    public var firstSeed: UInt64?
    public var shards: Int
    public var threads: Int?
    public var policySeed: UInt64?

    enum CodingKeys: String, CodingKey {
        case task, checkpoints, steps, handOvers = "hand_overs", episodes, firstSeed = "first_seed", shards, threads,
             policySeed = "policy_seed"
    }

    /// One evaluation of the campaign, and the reports of its shards.
    public struct Configuration: Codable, Sendable, Equatable {
        public var checkpoint: String
        public var steps: Int
        public var handOver: String?
        public var shardReports: [String]
    }

    /// What `plan` wrote: the campaign, its configurations and the working folder the jobs run in.
    public struct Plan: Codable, Sendable {
        public var campaign: Campaign
        public var workingDirectory: String
        public var configurations: [Configuration]
        public var jobs: Int
    }

    /// One row per configuration: its merged report.
    public struct Report: Codable, Sendable {
        public struct Row: Codable, Sendable {
            public var checkpoint: String
            public var steps: Int
            public var handOver: String?
            public var report: EvaluationSession.Report
        }
        public var campaign: Campaign
        public var rows: [Row]
    }

    /// Reads and checks a campaign file.
    public init(contentsOf path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw FlowPolicyError.invalidConfiguration("\(path): cannot be read (check the path)")
        }
        do {
            self = try YAMLDecoder().decode(Campaign.self, from: text)
        } catch {
            let reason = (error as? DecodingError).map(describe) ?? "\(error)"
            throw FlowPolicyError.invalidConfiguration("\(path): not a campaign file (\(reason)); see flowpolicy "
                + "campaign --help for its keys")
        }
        func invalid(_ message: String) -> FlowPolicyError { .invalidConfiguration("\(path): \(message)") }
        guard TaskDescription.knownTasks.contains(task) else {
            throw invalid("task \(task) is not one of \(TaskDescription.knownTasks.joined(separator: ", "))")
        }
        guard !checkpoints.isEmpty, !steps.isEmpty, handOvers.map({ !$0.isEmpty }) ?? true else {
            throw invalid("checkpoints, steps and hand_overs (when given) each need at least one value")
        }
        guard steps.allSatisfy({ (1...1000).contains($0) }) else { throw invalid("steps (K) must be in 1...1000") }
        for handOver in handOvers ?? [] where !["receding", "ensemble"].contains(handOver) {
            throw invalid("hand_overs must be receding or ensemble, got \(handOver)")
        }
        guard episodes >= 1, (1...episodes).contains(shards) else {
            throw invalid("episodes must be at least 1 and shards between 1 and the episodes")
        }
        guard (1...256).contains(threads ?? 1) else { throw invalid("threads must be in 1...256") }
    }

    /// Writes `folder/jobs.txt`, `folder/campaign.sbatch` and `folder/plan.json` (creating `folder`, its `shards`
    /// and `logs`), the jobs running `executable` in the current folder. Checkpoints must exist.
    public func plan(into folder: String, executable: String) throws -> Plan {
        let manager = FileManager.default
        let workingDirectory = manager.currentDirectoryPath
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : workingDirectory + "/" + path
        }
        for checkpoint in checkpoints where !manager.fileExists(atPath: absolute(checkpoint)) {
            throw FlowPolicyError.invalidConfiguration("checkpoint \(checkpoint) does not exist")
        }
        let folder = absolute(folder)
        for sub in ["shards", "logs"] {
            try manager.createDirectory(atPath: folder + "/" + sub, withIntermediateDirectories: true)
        }
        var configurations: [Configuration] = []
        var jobs: [String] = []
        for (c, checkpoint) in checkpoints.enumerated() {
            for k in steps {
                for handOver in handOvers.map({ $0.map(Optional.some) }) ?? [nil] {
                    let name = "c\(c)-k\(k)" + (handOver.map { "-\($0)" } ?? "")
                    var reports: [String] = []
                    for shard in 0..<shards {
                        let report = "\(folder)/shards/\(name)-\(shard)of\(shards).json"
                        reports.append(report)
                        var arguments = [
                            absolute(executable), "eval", "--task", task, "--checkpoint", absolute(checkpoint),
                            "--steps", "\(k)", "--episodes", "\(episodes)", "--shard", "\(shard)/\(shards)",
                            "--threads", "\(threads ?? 1)", "--policy-seed", "\(policySeed ?? 0)", "--json", report,
                        ]
                        if let handOver { arguments += ["--hand-over", handOver] }
                        if let firstSeed { arguments += ["--seed", "\(firstSeed)"] }
                        jobs.append("cd \(shellQuoted(workingDirectory)) && "
                            + arguments.map(shellQuoted).joined(separator: " "))
                    }
                    configurations.append(Configuration(checkpoint: absolute(checkpoint), steps: k,
                                                        handOver: handOver, shardReports: reports))
                }
            }
        }
        let script = """
            #!/bin/bash
            # flowpolicy campaign: one array task per line of jobs.txt
            # submit with: sbatch --wait \(folder)/campaign.sbatch
            #SBATCH --job-name=flowpolicy-campaign
            #SBATCH --array=0-\(jobs.count - 1)
            #SBATCH --cpus-per-task=\(threads ?? 1)
            #SBATCH --output=\(folder)/logs/%A_%a.out
            set -euo pipefail
            line="$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" \(shellQuoted(folder + "/jobs.txt")))"
            exec bash -c "$line"

            """
        let plan = Plan(campaign: self, workingDirectory: workingDirectory, configurations: configurations,
                        jobs: jobs.count)
        try AtomicFile.write(Array((jobs.joined(separator: "\n") + "\n").utf8), to: folder + "/jobs.txt")
        try AtomicFile.write(Array(script.utf8), to: folder + "/campaign.sbatch")
        try writeJSONReport(plan, to: folder + "/plan.json")
        return plan
    }

    /// Merges every configuration's shard reports of the campaign planned in `folder` into `folder/campaign.json`.
    public static func merge(folder: String) throws -> Report {
        guard FileManager.default.fileExists(atPath: folder + "/plan.json") else {
            throw FlowPolicyError.invalidConfiguration(
                "\(folder) holds no plan.json: give the folder `flowpolicy campaign plan --out` wrote")
        }
        let plan = try readJSONReport(Plan.self, from: folder + "/plan.json")
        var rows: [Report.Row] = []
        for configuration in plan.configurations {
            let shards = try configuration.shardReports.map { path in
                guard FileManager.default.fileExists(atPath: path) else {
                    throw FlowPolicyError.invalidConfiguration(
                        "\(path) is missing: its job has not finished or failed (see \(folder)/logs)")
                }
                return (path: path, report: try readJSONReport(EvaluationSession.Report.self, from: path))
            }
            rows.append(Report.Row(checkpoint: configuration.checkpoint, steps: configuration.steps,
                                   handOver: configuration.handOver, report: try EvaluationMerge.merge(shards)))
        }
        let report = Report(campaign: plan.campaign, rows: rows)
        try writeJSONReport(report, to: folder + "/campaign.json")
        return report
    }
}

/// `text` in single quotes for bash.
func shellQuoted(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
