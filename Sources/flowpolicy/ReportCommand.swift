import ArgumentParser
import FlowPolicyCLI
import Foundation
import PolicyLab
import PolicyRuntime

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Read JSON reports: one HTML page (the default), the field's scores, a run's checkpoints, seeds.",
        discussion: """
            `flowpolicy report REPORT.json... --out PAGE.html` is `flowpolicy report page`. `report scores` prints \
            success beside Diffusion Policy's Push-T score for eval reports, `report checkpoints` the best and the \
            mean of the last checkpoints of a training run, as Diffusion Policy reports them, `report seeds` the \
            mean and spread of one evaluation across seeds; they read the reports already written (older ones \
            too) and run nothing.
            """,
        subcommands: [ReportPageCommand.self, ReportScoresCommand.self, ReportCheckpointsCommand.self,
                      ReportSeedsCommand.self],
        defaultSubcommand: ReportPageCommand.self)
}

struct ReportPageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "page",
        abstract: "One self-contained HTML page from eval, merge, campaign, train and bench JSON reports.",
        discussion: """
            The page has a summary table (task, policy, K, success with its 95% interval, episodes; on Push-T \
            Diffusion Policy's score, the mean of min(max coverage / 0.95, 1); the conditions when a report has \
            any: observation noise, a push, a precision other than fp32), success against K (one checkpoint at \
            several K, or a merged campaign's rows) and against training steps (intermediate checkpoints \
            NAME.stepN.safetensors, and the final one with its train report), each series one condition, the outcome \
            of every seed (green success, red failure, the shade the episode's progress), chunk latency histograms, \
            the training loss curve, benchmark latencies and the episode videos an eval report lists (failures \
            first). Plots are drawn by matplotlib and inlined as SVG, videos as data URLs: the file opens anywhere, \
            offline.

            Reports: `eval --json`, `merge --json`, DIR/campaign.json of `campaign merge`, `train --json`, \
            `bench infer|env|loop|serve --json`; anything else is refused, naming the file.

            Needs the project's Python environment (scripts/setup.sh: matplotlib), or FLOWPOLICY_PYTHON. Without \
            Swift, the same page is `PYTHONPATH=clients/python python -m flowpolicy_report REPORT.json... --out PAGE`.
            """)

    @Argument(help: "The JSON reports to show, in the summary table's order.")
    var reports: [String]

    @Option(help: "The HTML file to write (replaced atomically).")
    var out: String

    @Option(help: "The page's title.")
    var title: String = "flowpolicy report"

    @Option(parsing: .unconditional, help: "Embed at most this many episode videos, failures first.")
    var maxVideos: Int = 12

    func validate() throws {
        try Check.integer("--max-videos", maxVideos, in: 1...10_000)
        try Check.output("--out", out)
        for report in reports { try Check.inputFile("<reports>", report) }
    }

    func run() throws {
        var status: Int32 = 0
        try reportingErrors {
            status = try ReportPage.run(reports: reports, out: out, title: title, maxVideos: maxVideos)
        }
        // The package printed its own `error: ...` line.
        if status != 0 { throw ExitCode(status) }
    }
}

/// Runs `python -m flowpolicy_report` (clients/python/flowpolicy_report) with the project's Python environment, the
/// way `import` and `export` run flowpolicy_data: `$FLOWPOLICY_PYTHON`, else
/// `${FLOWPOLICY_CACHE:-~/.cache/flowpolicy}/venv/bin/python`. Its output is the command's own.
enum ReportPage {
    /// The package's exit status (0: the page was written).
    static func run(reports: [String], out: String, title: String, maxVideos: Int) throws -> Int32 {
        let python = try ProjectPython.interpreter(libraries: "matplotlib")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-m", "flowpolicy_report"] + reports
            + ["--out", out, "--title", title, "--max-videos", String(maxVideos)]
        process.environment = ProjectPython.environment(
            clients: try ProjectPython.folders(package: "flowpolicy_report").clients)
        do { try process.run() } catch {
            throw ProjectPython.Failure(description: "cannot run \(python): \(error)")
        }
        process.waitUntilExit()
        if process.terminationReason == .uncaughtSignal {
            throw ProjectPython.Failure(description: "the report builder (\(python) -m flowpolicy_report) was "
                + "killed by signal \(process.terminationStatus)")
        }
        return process.terminationStatus
    }
}

struct ReportScoresCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scores",
        abstract: "Success beside Diffusion Policy's Push-T score, for eval and merge JSON reports.",
        discussion: """
            Diffusion Policy (and every paper comparing with it) scores Push-T by the mean over episodes of \
            min(max coverage / 0.95, 1), the episode's largest reward; flowpolicy's success counts episodes whose \
            coverage passed 0.95. The score is computed from the episodes each report lists, so it works on reports \
            written before eval printed it; a report without each episode's max coverage says so. Other tasks show \
            their success and mean max progress.
            """)

    @Argument(help: "The eval or merge JSON reports, in the table's order.")
    var reports: [String]

    @OptionGroup var report: ReportOptions

    func validate() throws {
        guard !reports.isEmpty else { throw ValidationError("give one or more eval --json reports") }
        for path in reports { try Check.inputFile("<reports>", path) }
    }

    func run() throws {
        try reportingErrors {
            let scores = try EvaluationScores(reports: reports)
            let width = min(max(scores.rows.map(\.report.count).max() ?? 0, 6), 60)
            let settingsWidth = max(scores.rows.map(\.settings.count).max() ?? 0, 8)
            print("report".padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + "settings".padding(toLength: settingsWidth, withPad: " ", startingAt: 0)
                + "  success                        mean max progress      DP score (Push-T)")
            for row in scores.rows {
                let name = String(row.report.suffix(width))
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                    + row.settings.padding(toLength: settingsWidth, withPad: " ", startingAt: 0) + "  "
                    + row.success.text.padding(toLength: 31, withPad: " ", startingAt: 0)
                    + (row.meanMaxProgress?.text ?? "-").padding(toLength: 23, withPad: " ", startingAt: 0)
                    + (row.diffusionPolicyScore?.text ?? (row.missing.map { "n/a: \($0)" } ?? "-")))
            }
            if let json = report.json { try writeJSONReport(scores, to: json) }
        }
    }
}

struct ReportCheckpointsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoints",
        abstract: "The best and the mean of the last N checkpoints of a training run, as Diffusion Policy reports.",
        discussion: """
            Give the eval reports of one run's checkpoints (NAME.stepN.safetensors from train --save-every, and the \
            final NAME.safetensors), all evaluated alike (task, K, hand-over, episodes, seeds, noise). They are put \
            in training order by the step in the checkpoint's name, the final one last. Printed: each checkpoint's \
            success (and, on Push-T, Diffusion Policy's score), the best checkpoint's, and the mean over the last N \
            checkpoints: Diffusion Policy reports the max and the average of its last 10 checkpoints.
            """)

    @Argument(help: "The eval or merge JSON reports of the run's checkpoints (any order).")
    var reports: [String]

    @Option(parsing: .unconditional,
            help: "Average the last N checkpoints (clipped to those given; Diffusion Policy's 10 by default).")
    var last: Int = CheckpointSeries.diffusionPolicyLast

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.integer("--last", last, in: 1...10_000)
        for path in reports { try Check.inputFile("<reports>", path) }
        guard reports.count >= 2 else { throw ValidationError("give the eval reports of two or more checkpoints") }
    }

    func run() throws {
        try reportingErrors {
            let series = try CheckpointSeries(reports: reports, last: last)
            let scored = series.bestDiffusionPolicyScore != nil
            print("\(series.task), \(series.settings), \(series.episodes) episodes (seeds \(series.seeds[0])-"
                + "\(series.seeds[series.seeds.count - 1])), \(series.entries.count) checkpoints")
            print("step      success                        " + (scored ? "DP score (Push-T)      " : "")
                + "checkpoint")
            func stepText(_ step: Int?) -> String { step.map(String.init) ?? "final" }
            func atStep(_ step: Int?) -> String { step.map { "at step \($0)" } ?? "at the final checkpoint" }
            for entry in series.entries {
                print(stepText(entry.step).padding(toLength: 10, withPad: " ", startingAt: 0)
                    + entry.success.text.padding(toLength: 31, withPad: " ", startingAt: 0)
                    + (scored
                        ? entry.diffusionPolicyScore!.text.padding(toLength: 23, withPad: " ", startingAt: 0) : "")
                    + entry.checkpoint)
            }
            let clipped = series.lastUsed < series.lastRequested
                ? " (\(series.lastRequested) asked, \(series.lastUsed) evaluated)" : ""
            func figure(_ value: Double) -> String { String(format: "%.3f", value) }
            print("best      success \(figure(series.bestSuccess.value)) \(atStep(series.bestSuccess.step))"
                + (series.bestDiffusionPolicyScore.map { "; DP score \(figure($0.value)) \(atStep($0.step))" } ?? ""))
            print("mean of the last \(series.lastUsed)\(clipped): success \(figure(series.meanSuccessOfLast))"
                + (series.meanDiffusionPolicyScoreOfLast.map { "; DP score \(figure($0))" } ?? ""))
            if let missing = series.missingScore { print("no DP score: \(missing)") }
            if let json = report.json { try writeJSONReport(series, to: json) }
        }
    }
}

struct ReportSeedsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seeds",
        abstract: "One evaluation across seeds: each seed's success, the mean and spread, the pooled episodes.",
        discussion: """
            Give the eval reports of one evaluation repeated with different seeds: checkpoints trained or \
            fine-tuned with different seeds, or one checkpoint with different `--policy-seed`s, all evaluated \
            alike (task, K, hand-over, episodes, seeds, noise, push). Printed: each report's success (and, on \
            Push-T, Diffusion Policy's score), their mean ± sample standard deviation over the seeds, and the \
            pooled episodes' success with its 95% Wilson interval. The standard deviation is the spread the seed \
            causes; the pooled interval counts the episodes only.
            """)

    @Argument(help: "The eval or merge JSON reports, one per seed.")
    var reports: [String]

    @OptionGroup var report: ReportOptions

    func validate() throws {
        for path in reports { try Check.inputFile("<reports>", path) }
        guard reports.count >= 2 else { throw ValidationError("give the eval reports of two or more seeds") }
    }

    func run() throws {
        try reportingErrors {
            let spread = try SeedSpread(reports: reports)
            let scored = spread.meanDiffusionPolicyScore != nil
            let width = min(max(spread.entries.map(\.report.count).max() ?? 0, 6), 60)
            print("\(spread.task), \(spread.settings), \(spread.episodes) episodes each (seeds \(spread.seeds[0])-"
                + "\(spread.seeds[spread.seeds.count - 1])), \(spread.entries.count) reports")
            print("report".padding(toLength: width, withPad: " ", startingAt: 0) + "  policy seed  "
                + "success                        " + (scored ? "DP score (Push-T)" : ""))
            for entry in spread.entries {
                print(String(entry.report.suffix(width)).padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                    + "\(entry.policySeed ?? 0)".padding(toLength: 11, withPad: " ", startingAt: 0) + "  "
                    + entry.success.text.padding(toLength: 31, withPad: " ", startingAt: 0)
                    + (scored ? entry.diffusionPolicyScore!.text : ""))
            }
            func figure(_ value: Double) -> String { String(format: "%.3f", value) }
            print("mean ± sd over \(spread.entries.count) seeds: success \(figure(spread.meanSuccess)) ± "
                + figure(spread.successStandardDeviation)
                + (spread.meanDiffusionPolicyScore.map {
                    "; DP score \(figure($0)) ± \(figure(spread.diffusionPolicyScoreStandardDeviation!))"
                } ?? ""))
            print("pooled: success \(spread.pooledSuccess.text)")
            if let missing = spread.missingScore { print("no DP score: \(missing)") }
            if let json = report.json { try writeJSONReport(spread, to: json) }
        }
    }
}
