import ArgumentParser
import FlowPolicy
import Foundation
import PolicyRuntime

@main
struct FlowPolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowpolicy",
        abstract: "Flow-matching robot policies: collect demonstrations, train, evaluate, sample, inspect, benchmark.",
        subcommands: [
            CollectCommand.self, TrainCommand.self, FineTuneCommand.self, DistillCommand.self, EvalCommand.self,
            CertifyCommand.self,
            SampleCommand.self, InspectCommand.self,
            ReplayCommand.self,
            ServeCommand.self, RobotCommand.self, RunCommand.self,
            BenchCommand.self,
        ])
}

/// Runs a command body; errors are printed as one clear line on standard error and exit with status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

/// The command line as typed, for provenance.
var commandLine: String { (["flowpolicy"] + CommandLine.arguments.dropFirst()).joined(separator: " ") }

extension SolverMethod: ExpressibleByArgument {}

func parseNumbers(_ text: String, name: String) throws -> [Float] {
    let parts = text.split(whereSeparator: { $0 == "," || $0 == " " })
    let values = parts.compactMap { Float($0) }
    guard values.count == parts.count, !values.isEmpty else {
        throw ValidationError("\(name) must be a comma-separated list of numbers, got \"\(text)\"")
    }
    return values
}
