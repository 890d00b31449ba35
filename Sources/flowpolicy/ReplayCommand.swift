import ArgumentParser
import Foundation
import FlowPolicyCLI
import PolicyLab
import PolicyRuntime

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run recorded action sequences in a task and report every step.",
        discussion: """
            The input is JSON: a list of episodes, each {"seed": S}, or for pusht {"agent": [x, y], "block": [x, y, \
            angle]}, or for the robomimic tasks {"joints": [7 arm joints], "object": [x, y, z, yaw], \
            "cube_half_size": [3] (lift)}, plus "actions": [[...], ...]. The output (--json) lists, per episode, the \
            initial observation and every step's observation, progress (coverage for pusht), reward and done flag, \
            and for pusht the block pose.
            """)

    @OptionGroup var taskOptions: TaskOptions

    @Option(help: "JSON file with the episodes to replay.")
    var episodes: String

    @Option(help: "Write the step records as JSON to this path.")
    var json: String

    func validate() throws {
        try Check.inputFile("--episodes", episodes)
        try Check.output("--json", json)
    }

    func run() throws {
        try reportingErrors {
            guard let data = FileManager.default.contents(atPath: episodes) else {
                throw ValidationError("cannot read \(episodes)")
            }
            let input = try JSONDecoder().decode([ReplaySession.Episode].self, from: data)
            let records = try ReplaySession.run(task: taskOptions.description(), episodes: input)
            try writeJSONReport(records, to: json)
            let failed = records.filter { $0.error != nil }.count
            print("replayed \(records.count) episodes (\(records.reduce(0) { $0 + $1.steps.count }) steps) "
                + "in \(taskOptions.task); \(failed) stopped early; wrote \(json)")
        }
    }
}
