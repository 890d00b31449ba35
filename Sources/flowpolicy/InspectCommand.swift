import ArgumentParser
import Foundation
import PolicyRuntime

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show what a checkpoint or dataset file holds: shapes, metadata, sizes.")

    @Argument(help: "Checkpoint or dataset file.")
    var path: String

    @Option(help: "Also write the summary as JSON to this path.")
    var json: String?

    func run() throws {
        try reportingErrors {
            let s = try InspectSession.run(path: path)
            print("\(s.path): \(s.kind), \(s.bytes) bytes")
            if let count = s.parameterCount {
                print("  parameters  \(count)\(s.metadata["method"].map { ", method \($0)" } ?? "")"
                    + ((s.stages ?? 1) > 1 ? ", a chain of \(s.stages!) flows" : ""))
            }
            if let episodes = s.episodes, let steps = s.steps, let lengths = s.episodeLength {
                print("  episodes    \(episodes), \(steps) steps, length min/mean/max \(lengths[0])/\(lengths[1])/\(lengths[2])")
            }
            let format = { (values: [Float]) in values.map { String(format: "%.4g", $0) }.joined(separator: ", ") }
            if let range = s.observationRange { print("  obs range   [\(format(range[0]))] .. [\(format(range[1]))]") }
            if let range = s.actionRange { print("  action range [\(format(range[0]))] .. [\(format(range[1]))]") }
            print("  metadata")
            for key in s.metadata.keys.sorted() { print("    \(key): \(s.metadata[key]!)") }
            print("  tensors")
            for tensor in s.tensors { print("    \(tensor.name)  \(tensor.dtype) \(tensor.shape)") }
            if let json { try writeJSONReport(s, to: json) }
        }
    }
}
