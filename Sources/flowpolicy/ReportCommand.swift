import ArgumentParser
import FlowPolicyCLI
import Foundation
import PolicyLab

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "One self-contained HTML page from eval, merge, campaign, train and bench JSON reports.",
        discussion: """
            The page has a summary table (task, policy, K, success with its 95% interval, episodes), success \
            against K (one checkpoint at several K, or a merged campaign's rows) and against training steps \
            (intermediate checkpoints NAME.stepN.safetensors, and the final one with its train report), the outcome \
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
