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
}
