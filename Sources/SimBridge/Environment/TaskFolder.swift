import Foundation

/// A task's folder, `tasks/<name>/`: `task.yaml` (rates, horizons, limits, success parameters), the scene MJCF it
/// owns, the shipped policy and its README.
///
/// Found at `$FLOWPOLICY_TASKS/<name>/` if that variable is set, else in `tasks/<name>/` under the current folder or
/// any folder above it, else under the folders above the running executable (so `.build/release/flowpolicy` finds
/// the repository's `tasks/` from anywhere).
public struct TaskFolder: Sendable {
    public let name: String
    public let url: URL

    public init(task name: String) throws(EnvironmentError) {
        self.name = name
        for root in Self.searchRoots() {
            let candidate = root.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("task.yaml").path) {
                url = candidate
                return
            }
        }
        let expected = Self.searchRoots().first?.appendingPathComponent(name).appendingPathComponent("task.yaml").path
        throw .missingTaskFile(task: name, path: expected ?? "tasks/\(name)/task.yaml")
    }

    static func searchRoots() -> [URL] {
        if let explicit = ProcessInfo.processInfo.environment["FLOWPOLICY_TASKS"] {
            let url = URL(fileURLWithPath: explicit)
            return [url.lastPathComponent == "tasks" ? url : url.appendingPathComponent("tasks")]
        }
        var roots: [URL] = []
        for start in [URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                      URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
                        .deletingLastPathComponent()] {
            var folder = start.standardizedFileURL
            for _ in 0..<8 {
                roots.append(folder.appendingPathComponent("tasks"))
                let parent = folder.deletingLastPathComponent()
                if parent.path == folder.path { break }
                folder = parent
            }
        }
        return roots
    }

    public func path(_ file: String) -> String { url.appendingPathComponent(file).path }

    /// Reads a file of the folder (e.g. the scene), with an error naming it if it is missing.
    public func requireFile(_ file: String) throws(EnvironmentError) -> String {
        let path = self.path(file)
        guard FileManager.default.fileExists(atPath: path) else { throw .missingTaskFile(task: name, path: path) }
        return path
    }
}
