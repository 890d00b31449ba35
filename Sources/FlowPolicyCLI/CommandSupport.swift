import ArgumentParser
import FlowPolicy
import Foundation
import PolicyRuntime

/// Runs a command body; errors are printed as one clear line on standard error and exit with status 1.
public func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

/// The command line as typed, for provenance.
public var commandLine: String {
    ([URL(fileURLWithPath: CommandLine.arguments[0]).lastPathComponent] + CommandLine.arguments.dropFirst())
        .joined(separator: " ")
}

extension SolverMethod: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
extension ChunkHandOver: ExpressibleByArgument {}
extension ServoInterpolation: ExpressibleByArgument {}

/// `text` as comma- or space-separated finite numbers; the error names the option.
public func parseNumbers(_ text: String, name: String) throws -> [Float] {
    let parts = text.split(whereSeparator: { $0 == "," || $0 == " " })
    let values = parts.compactMap { Float($0) }.filter(\.isFinite)
    guard values.count == parts.count, !values.isEmpty else {
        throw ValidationError("\(name) must be a comma-separated list of finite numbers, got \"\(text)\"")
    }
    return values
}

/// Prints a line at once (progress lines of long-running commands must not wait in a buffer).
public func printNow(_ line: String) {
    print(line)
    fflush(nil)
}
