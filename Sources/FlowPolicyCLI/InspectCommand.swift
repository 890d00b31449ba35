import ArgumentParser
import FlowPolicy
import Foundation
import PolicyRuntime

public struct InspectCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a checkpoint or dataset file holds: shapes, metadata, sizes, the deployment contract.")

    @Argument(help: "Checkpoint or dataset file.")
    var path: String

    @OptionGroup var report: ReportOptions

    public init() {}

    public func validate() throws {
        try Check.inputFile("<path>", path)
    }

    public func run() throws {
        try reportingErrors {
            let s = try InspectSession.run(path: path)
            print("\(s.path): \(s.kind), \(s.bytes) bytes")
            if let count = s.parameterCount {
                print("  parameters  \(count)\(s.metadata["method"].map { ", method \($0)" } ?? "")"
                    + ((s.stages ?? 1) > 1 ? ", a chain of \(s.stages!) flows" : ""))
            }
            if let episodes = s.episodes, let steps = s.steps, let lengths = s.episodeLength {
                print("  episodes    \(episodes), \(steps) steps, length min/mean/max "
                    + "\(lengths[0])/\(lengths[1])/\(lengths[2])")
            }
            let format = { (values: [Float]) in values.map { String(format: "%.4g", $0) }.joined(separator: ", ") }
            if let range = s.observationRange { print("  obs range   [\(format(range[0]))] .. [\(format(range[1]))]") }
            if let range = s.actionRange { print("  action range [\(format(range[0]))] .. [\(format(range[1]))]") }
            if s.kind == "checkpoint" {
                if let contract = s.contract {
                    print(contractSummary(contract))
                } else {
                    print("  deployment  none (written before the deployment contract; `flowpolicy upgrade` adds it)")
                }
            }
            print("  metadata")
            for key in s.metadata.keys.sorted() where key != "deployment" { print("    \(key): \(s.metadata[key]!)") }
            print("  tensors")
            for tensor in s.tensors { print("    \(tensor.name)  \(tensor.dtype) \(tensor.shape)") }
            if let json = report.json { try writeJSONReport(s, to: json) }
        }
    }
}

/// The deployment contract, a few lines.
public func contractSummary(_ c: DeploymentContract) -> String {
    let format = { (values: [Float]) in values.map { String(format: "%g", $0) }.joined(separator: ", ") }
    let layout = { (groups: [DeploymentContract.SignalGroup]) in
        groups.isEmpty ? "not named" : groups.map { "\($0.name) \($0.size)\($0.unit.isEmpty ? "" : " (\($0.unit))")" }
            .joined(separator: ", ")
    }
    var lines = [
        String(format: "  deployment  %g Hz, hand-over %@, %@ actions", c.controlRateHz, c.handOver.rawValue,
               c.actionKind.rawValue),
        "    observations      \(layout(c.observations))",
        "    actions           \(layout(c.actions))",
        "    action bounds     [\(format(c.actionLow))] .. [\(format(c.actionHigh))]",
        "    max step change   [\(format(c.maximumStepChange))]",
    ]
    for (name, values) in [("max velocity", c.maximumVelocity), ("max acceleration", c.maximumAcceleration),
                           ("max jerk", c.maximumJerk)] {
        if let values {
            lines.append("    \(name.padding(toLength: 17, withPad: " ", startingAt: 0)) [\(format(values))]")
        }
    }
    return lines.joined(separator: "\n")
}
