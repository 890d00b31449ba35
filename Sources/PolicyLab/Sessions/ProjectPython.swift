import Foundation
import SimBridge

/// The project's Python side, for the commands that run a package of `clients/python` (import and export run
/// flowpolicy_data, report runs flowpolicy_report): the interpreter and the repository's folders.
public enum ProjectPython {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String

        public init(description: String) { self.description = description }
    }

    /// The interpreter: `$FLOWPOLICY_PYTHON`, else the project's environment under the cache folder (which
    /// scripts/setup.sh fills with `libraries`, named in the error when it is missing).
    public static func interpreter(libraries: String) throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let python = environment["FLOWPOLICY_PYTHON"], !python.isEmpty {
            guard !python.contains("/") || FileManager.default.isExecutableFile(atPath: python) else {
                throw Failure(description: "FLOWPOLICY_PYTHON is \(python), which is not an executable file")
            }
            return python
        }
        let cache = environment["FLOWPOLICY_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/flowpolicy").path
        let python = URL(fileURLWithPath: cache).appendingPathComponent("venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw Failure(description: "no Python environment at \(python): run scripts/setup.sh (it installs "
                + "\(libraries) there), or set FLOWPOLICY_PYTHON to an interpreter that has them")
        }
        return python
    }

    /// The repository's `clients/python` (which must hold `package`) and `tasks` folders, found from a task folder
    /// as `bench env` finds `tools/` (any task will do when there is none).
    public static func folders(package: String, task: TaskDescription? = nil) throws
        -> (clients: String, tasks: String)
    {
        let folder = try task?.folder ?? TaskFolder(task: TaskDescription.knownTasks[0])
        let tasks = folder.url.deletingLastPathComponent()
        let clients = tasks.deletingLastPathComponent().appendingPathComponent("clients/python")
        guard FileManager.default.fileExists(atPath: clients.appendingPathComponent("\(package)/__main__.py").path)
        else {
            throw Failure(description: "\(clients.path)/\(package) not found: it lives in the repository beside "
                + "tasks/ (\(tasks.path))")
        }
        return (clients.path, tasks.path)
    }

    /// The environment for running a package of `clients`: it on PYTHONPATH, no bytecode files written.
    public static func environment(clients: String) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = [clients, environment["PYTHONPATH"]].compactMap { $0 }
            .filter { !$0.isEmpty }.joined(separator: ":")
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        return environment
    }

    /// What a finished interpreter printed, and its exit status.
    public struct Run: Sendable {
        public var status: Int32
        public var output: Foundation.Data
        public var errors: Foundation.Data

        /// The last line of standard output (where the project's tools print their JSON).
        public var lastOutputLine: String { Self.lastLine(output) }
        /// The last line of standard error (where a Python traceback ends with the error).
        public var lastErrorLine: String { Self.lastLine(errors) }

        private static func lastLine(_ data: Foundation.Data) -> String {
            String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        }
    }

    /// Runs `python arguments...` to the end with `environment`, reading standard output and standard error at once
    /// (so that neither pipe fills and blocks the interpreter).
    public static func run(_ python: String, _ arguments: [String], environment: [String: String])
        throws(Failure) -> Run
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python] + arguments
        process.environment = environment
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch { throw Failure(description: "cannot run \(python): \(error)") }
        let errorData = LockedData()
        let reader = Thread { errorData.set(errors.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: data, errors: errorData.wait())
    }
}

/// Bytes handed from a reader thread, waited for once.
private final class LockedData: @unchecked Sendable {
    private let condition = NSCondition()
    private var data: Foundation.Data?

    func set(_ value: Foundation.Data) {
        condition.lock()
        data = value
        condition.signal()
        condition.unlock()
    }

    func wait() -> Foundation.Data {
        condition.lock()
        defer { condition.unlock() }
        while data == nil { condition.wait() }
        return data!
    }
}
