import Foundation
import Yams

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

    /// Decodes `task.yaml` (or the part of it that `T` describes; other keys are ignored).
    public func settings<T: Decodable>(_ type: T.Type) throws(EnvironmentError) -> T {
        let path = self.path("task.yaml")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .missingTaskFile(task: name, path: path)
        }
        do {
            return try YAMLDecoder().decode(T.self, from: text)
        } catch {
            throw .invalidTaskFile(path: path, message: "\(error)")
        }
    }

    /// Reads a file of the folder (e.g. the scene), with an error naming it if it is missing.
    public func requireFile(_ file: String) throws(EnvironmentError) -> String {
        let path = self.path(file)
        guard FileManager.default.fileExists(atPath: path) else { throw .missingTaskFile(task: name, path: path) }
        return path
    }
}

/// The parts of `task.yaml` every task has.
public struct CommonTaskSettings: Codable, Sendable {
    public struct Horizons: Codable, Sendable {
        public var observationSteps: Int
        public var actionSteps: Int
        public var predictionSteps: Int
        /// How `eval` and `run` hand over between chunks unless told otherwise: receding (absent), ensemble or
        /// continuation.
        public var handOver: String?
        enum CodingKeys: String, CodingKey {
            case observationSteps = "observation_steps", actionSteps = "action_steps"
            case predictionSteps = "prediction_steps", handOver = "hand_over"
        }
    }

    public struct Seeds: Codable, Sendable {
        /// Demonstrations use seeds from here up.
        public var collection: UInt64
        /// Evaluations use seeds from here up (never overlapping collection).
        public var evaluation: UInt64
    }

    public struct Safety: Codable, Sendable {
        /// Largest change of any action component between consecutive commands (task units).
        public var maximumStepChange: [Float]
        /// Bounds of a commanded action, when they differ from the environment's action bounds (a task whose
        /// environment clips actions, as Franka Kitchen's does, may accept a margin beyond them).
        public var actionLow: [Float]?
        public var actionHigh: [Float]?
        enum CodingKeys: String, CodingKey {
            case maximumStepChange = "max_step_change", actionLow = "action_low", actionHigh = "action_high"
        }
    }

    public var task: String
    public var description: String
    public var policy: Horizons
    public var seeds: Seeds
    public var safety: Safety
}
