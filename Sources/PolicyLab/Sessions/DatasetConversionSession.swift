import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge

/// `flowpolicy import` and `flowpolicy export`: demonstrations between flowpolicy's dataset file and LeRobot (v2.x,
/// v3.0), robomimic HDF5 and Diffusion Policy zarr replay buffers.
///
/// The formats are read and written by their own libraries (pyarrow, h5py, zarr) in the repository's Python package
/// `clients/python/flowpolicy_data`, run with the project's Python environment: `$FLOWPOLICY_PYTHON`, else
/// `${FLOWPOLICY_CACHE:-~/.cache/flowpolicy}/venv/bin/python` (scripts/setup.sh installs it). The package writes
/// atomically and reports bad input as one line; this session passes that line on, then reads an imported file back
/// with `EpisodeDataset(contentsOf:)` (flowpolicy's own checks) and summarizes it. An export is read back and compared
/// bit for bit by the package before it replaces anything.
public enum DatasetConversionSession {
    public enum Format: String, CaseIterable, Codable, Sendable {
        case lerobot, robomimic, zarr
    }

    public struct ImportOptions: Sendable {
        public var format: Format
        public var sourcePath: String
        public var outputPath: String
        /// The simulated task the data is for: its layout is checked and its name recorded (what `train` reads).
        public var task: TaskDescription?
        /// One of the task's observation modes (Push-T: keypoints or state); nil means the task's own.
        public var observationMode: String?
        /// robomimic: obs keys, concatenated in this order; zarr: data keys.
        public var observationKeys: [String]?
        /// robomimic: the demos of `mask/<filter>`.
        public var filter: String?
        /// LeRobot: state features, concatenated in this order.
        public var stateKeys: [String]?
        /// Cameras to carry as `images.<camera>`, in this order (LeRobot: image/video features, nil means all;
        /// robomimic: image keys such as agentview_image, nil means none); empty means none.
        public var cameras: [String]?
        public var actionKey: String?
        public var command = ""

        public init(format: Format, sourcePath: String, outputPath: String) {
            self.format = format
            self.sourcePath = sourcePath
            self.outputPath = outputPath
        }
    }

    public struct ExportOptions: Sendable {
        public var format: Format
        public var datasetPath: String
        public var outputPath: String
        /// The task whose layout names the exported keys; nil means the dataset's own task.
        public var task: TaskDescription?
        /// LeRobot: frame rate (nil: the dataset's control rate) and the episodes' language task.
        public var framesPerSecond: Double?
        public var taskText: String?
        /// robomimic: the share of demos in `mask/valid`.
        public var validRatio: Double?

        public init(format: Format, datasetPath: String, outputPath: String) {
            self.format = format
            self.datasetPath = datasetPath
            self.outputPath = outputPath
        }
    }

    public struct Summary: Codable, Sendable {
        /// "import" or "export".
        public var direction: String
        public var format: Format
        public var source: String
        public var output: String
        public var task: String?
        public var observationMode: String?
        public var episodes: Int
        public var steps: Int
        public var observationDimensions: Int
        public var actionDimensions: Int
        public var controlRate: String?
        /// Import: the observation keys taken; export: the keys written.
        public var keys: String?
        /// What was remapped or skipped on the way.
        public var notes: [String]
        /// Format-specific facts: the LeRobot version, the robomimic masks, the zarr mapping.
        public var details: [String: String]
        /// The arrays' hash (as `train` records it in a checkpoint's provenance).
        public var datasetHash: String
        public var seconds: Double
    }

    public static func importDataset(_ options: ImportOptions) throws -> Summary {
        let start = monotonicSeconds()
        try TrainingSession.checkWritable(options.outputPath)
        var arguments = ["import", "--format", options.format.rawValue, options.sourcePath, options.outputPath]
        if let task = options.task { arguments += ["--task", task.name] }
        if let mode = options.observationMode { arguments += ["--observation-mode", mode] }
        if let keys = options.observationKeys { arguments += ["--obs-keys", keys.joined(separator: ",")] }
        if let filter = options.filter { arguments += ["--filter", filter] }
        if let keys = options.stateKeys { arguments += ["--state-key", keys.joined(separator: ",")] }
        if let cameras = options.cameras {
            arguments += ["--cameras", cameras.isEmpty ? "none" : cameras.joined(separator: ",")]
        }
        if let key = options.actionKey { arguments += ["--action-key", key] }
        arguments += ["--command", options.command]
        let result = try runPackage(arguments, task: options.task)
        let dataset = try EpisodeDataset(contentsOf: options.outputPath)
        let metadata = dataset.metadata
        var details: [String: String] = [:]
        for key in ["source_format", "source_episodes", "robot_type", "lerobot_tasks", "camera_keys", "skipped"] {
            details[key] = metadata[key]
        }
        return Summary(
            direction: "import", format: options.format, source: options.sourcePath, output: options.outputPath,
            task: metadata["task"], observationMode: metadata["observation_mode"], episodes: dataset.episodeCount,
            steps: dataset.stepCount, observationDimensions: dataset.observationDimensions,
            actionDimensions: dataset.actionDimensions, controlRate: metadata["control_hz"],
            keys: metadata["observation_keys"], notes: result.notes, details: details,
            datasetHash: dataset.contentHash, seconds: monotonicSeconds() - start)
    }

    public static func exportDataset(_ options: ExportOptions) throws -> Summary {
        let start = monotonicSeconds()
        // flowpolicy's own checks first, with flowpolicy's messages.
        let dataset = try EpisodeDataset(contentsOf: options.datasetPath)
        let taskName = options.task?.name ?? dataset.metadata["task"]
        let task = try options.task
            ?? taskName.flatMap { TaskDescription.knownTasks.contains($0) ? try TaskDescription.named($0) : nil }
        var arguments = ["export", "--format", options.format.rawValue, options.datasetPath, options.outputPath]
        if let task { arguments += ["--task", task.name] }
        if let rate = options.framesPerSecond { arguments += ["--fps", String(rate)] }
        if let text = options.taskText { arguments += ["--task-text", text] }
        if let ratio = options.validRatio { arguments += ["--valid-ratio", String(ratio)] }
        let result = try runPackage(arguments, task: task)
        var details: [String: String] = [:]
        for (key, value) in result.details {
            details[key] = (value as? [Any]).map { $0.map { "\($0)" }.joined(separator: ",") } ?? "\(value)"
        }
        let keys = details.removeValue(forKey: "keys")
        return Summary(
            direction: "export", format: options.format, source: options.datasetPath, output: options.outputPath,
            task: taskName, observationMode: dataset.metadata["observation_mode"], episodes: dataset.episodeCount,
            steps: dataset.stepCount, observationDimensions: dataset.observationDimensions,
            actionDimensions: dataset.actionDimensions, controlRate: dataset.metadata["control_hz"], keys: keys,
            notes: result.notes, details: details, datasetHash: dataset.contentHash,
            seconds: monotonicSeconds() - start)
    }

    // MARK: The Python package

    struct PackageResult {
        var notes: [String]
        var details: [String: Any]
    }

    /// Runs `python -m flowpolicy_data ARGUMENTS --machine`; its notes are passed to standard error as they are,
    /// its `error:` line becomes the thrown `ProjectPython.Failure`.
    static func runPackage(_ arguments: [String], task: TaskDescription?) throws -> PackageResult {
        let python = try ProjectPython.interpreter(libraries: "pyarrow, h5py and zarr")
        let folders = try ProjectPython.folders(package: "flowpolicy_data", task: task)
        let environment = ProjectPython.environment(clients: folders.clients)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-m", "flowpolicy_data"] + arguments
            + ["--tasks-folder", folders.tasks, "--machine"]
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        // Standard error goes to a file, so that a chatty library can never block the process on a full pipe.
        let errorFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("flowpolicy-data-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: errorFile.path, contents: nil),
              let errorHandle = try? FileHandle(forWritingTo: errorFile)
        else { throw ProjectPython.Failure(description: "\(errorFile.path): cannot create a temporary file") }
        defer {
            try? errorHandle.close()
            try? FileManager.default.removeItem(at: errorFile)
        }
        process.standardError = errorHandle
        do { try process.run() } catch {
            throw ProjectPython.Failure(description: "cannot run \(python): \(error)")
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errorLines = ((try? String(contentsOf: errorFile, encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
        let notes = errorLines.filter { $0.hasPrefix("note: ") }.map { String($0.dropFirst(6)) }
        for note in notes { CheckpointReader.printNote("note: \(note)") }
        guard process.terminationStatus == 0 else {
            if let line = errorLines.last(where: { $0.hasPrefix("error: ") }) {
                throw ProjectPython.Failure(description: String(line.dropFirst(7)))
            }
            let tail = errorLines.suffix(3).joined(separator: " | ")
            throw ProjectPython.Failure(description: "the converter (\(python) -m flowpolicy_data) failed with status "
                + "\(process.terminationStatus): \(tail.isEmpty ? "no message" : tail)")
        }
        guard let report = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ProjectPython.Failure(description: "the converter (\(python) -m flowpolicy_data) printed no summary")
        }
        return PackageResult(notes: notes, details: report["details"] as? [String: Any] ?? [:])
    }
}
