import ArgumentParser
import FlowPolicyCLI
import Foundation
import PolicyLab
import PolicyRuntime

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge the reports of an evaluation's shards (eval --shard I/N --json) into the whole run's report.",
        discussion: "The merged report is the unsharded run's: its episodes seed by seed, success and interval, "
            + "progress, the chunk-latency histograms added; wall time is the sum (and the longest shard). Shards of "
            + "different checkpoints, solvers, K, hand-overs or seed ranges, or with a seed twice, are refused.")

    @Argument(help: "The shard reports.")
    var reports: [String]

    @OptionGroup var report: ReportOptions

    func validate() throws {
        guard !reports.isEmpty else { throw ValidationError("give the shard reports to merge") }
        for path in reports { try Check.inputFile("<reports>", path) }
    }

    func run() throws {
        try reportingErrors {
            let shards = try reports.map { ($0, try readJSONReport(EvaluationSession.Report.self, from: $0)) }
            let merged = try EvaluationMerge.merge(shards)
            print("merged \(shards.count) shard\(shards.count == 1 ? "" : "s")")
            print(evaluationSummary(merged))
            if let json = report.json { try writeJSONReport(merged, to: json) }
        }
    }
}

struct CampaignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign",
        abstract: "Evaluation campaigns on a cluster: plan them as a job array, merge their shards.",
        discussion: """
            A campaign file (YAML) names a task, checkpoints, K values, hand-overs, episodes and shards:
              task: pusht
              checkpoints: [tasks/pusht/policy.safetensors]
              steps: [2, 10]
              hand_overs: [receding]     # optional (the task's default)
              episodes: 200
              first_seed: 100000         # optional (the task's evaluation seeds)
              shards: 4
              threads: 1                 # per job
              policy_seed: 0             # optional
            `plan` writes DIR/jobs.txt (one eval command per line), DIR/campaign.sbatch (a Slurm job array over those \
            lines: sbatch --wait DIR/campaign.sbatch) and DIR/plan.json; `merge DIR` writes DIR/campaign.json, one \
            merged report per configuration.
            """,
        subcommands: [Plan.self, Merge.self])

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a campaign's jobs (one eval --shard per line) and its Slurm array script.")

        @Argument(help: "The campaign file (YAML).")
        var campaign: String

        @Option(help: "Folder for the jobs, the batch script, the shard reports and the logs.")
        var out: String

        func validate() throws {
            try Check.inputFile("<campaign>", campaign)
        }

        func run() throws {
            try reportingErrors {
                let plan = try Campaign(contentsOf: campaign).plan(into: out, executable: executablePath())
                print("planned \(plan.configurations.count) configuration\(plan.configurations.count == 1 ? "" : "s"), "
                    + "\(plan.jobs) jobs in \(out)/jobs.txt")
                print("submit:  sbatch --wait \(out)/campaign.sbatch")
                print("then:    flowpolicy campaign merge \(out)")
            }
        }
    }

    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge a planned campaign's shard reports into DIR/campaign.json, one row per configuration.")

        @Argument(help: "The campaign's folder (campaign plan --out).")
        var folder: String

        func run() throws {
            try reportingErrors {
                let report = try Campaign.merge(folder: folder)
                // Push-T campaigns add Diffusion Policy's score, min(max coverage / 0.95, 1) averaged.
                let scored = report.rows.contains { $0.report.diffusionPolicyScore != nil }
                print("checkpoint".padding(toLength: 44, withPad: " ", startingAt: 0)
                    + "    K  hand-over  episodes  success                    max progress"
                    + (scored ? "           DP score" : ""))
                for row in report.rows {
                    let r = row.report
                    let name = String(row.checkpoint.suffix(44))
                    print(name.padding(toLength: 44, withPad: " ", startingAt: 0)
                        + String(format: " %4d  %-9@  %8d  ", row.steps, (r.handOver ?? "-") as NSString, r.episodes)
                        + r.success.text.padding(toLength: 27, withPad: " ", startingAt: 0)
                        + r.meanMaxProgress.text
                        + (scored ? "  " + (r.diffusionPolicyScore?.text ?? "-") : ""))
                }
                print("wrote \(folder)/campaign.json")
            }
        }
    }
}

/// This executable's absolute path (for commands written to run later, elsewhere).
func executablePath() -> String {
    let path = CommandLine.arguments[0]
    if path.contains("/") { return URL(fileURLWithPath: path).standardizedFileURL.path }
    return (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? path
}
