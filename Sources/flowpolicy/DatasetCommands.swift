import ArgumentParser
import FlowPolicy
import FlowPolicyCLI
import Foundation
import PolicyLab
import PolicyRuntime
import SimBridge

extension DatasetConversionSession.Format: ExpressibleByArgument {}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import demonstrations from LeRobot, robomimic HDF5 or a Diffusion Policy zarr into a dataset file.",
        discussion: """
            LeRobot: a dataset folder of codebase version v2.0, v2.1 or v3.0 (meta/info.json, data/*.parquet); the \
            state and action features are read, and image and video features (PNG/JPEG in the parquet, mp4 files) \
            become cameras. robomimic: an HDF5 file (data/demo_N/obs/<key>, actions); the obs keys are concatenated \
            in the order given (default for a robomimic task: \
            object,robot0_eef_pos,robot0_eef_quat,robot0_gripper_qpos), and image keys given with --cameras become \
            cameras. zarr: a Diffusion Policy replay buffer (data/state, data/keypoint, data/action, \
            meta/episode_ends), a folder or a .zip.

            A camera is stored as images.<camera> (uint8 [N, H, W, 3]) beside the observation: \
            observation.images.front -> front, agentview_image -> agentview.

            With --task the data is checked against the task's layout and recorded as that task's, so that `train` \
            takes its horizons and `eval --task` runs the policy: a robomimic low-dim file with the standard keys \
            maps onto robomimic_lift/can/square (robosuite-version differences in `object` are converted and \
            noted), a Push-T zarr onto pusht's 20-D keypoints (keypoint flattened, then state[:, :2]).

            Needs the project's Python environment (scripts/setup.sh: pyarrow, h5py, zarr), or FLOWPOLICY_PYTHON.
            """)

    @Option(help: "Source format: lerobot, robomimic or zarr.")
    var format: DatasetConversionSession.Format

    @Argument(help: "LeRobot dataset folder, robomimic .hdf5 file, or zarr folder (or .zip).")
    var source: String

    @Option(help: "Dataset file to write (replaced atomically).")
    var out: String

    @Option(help: "The simulated task the data is for (checked against its layout, recorded for train and eval).")
    var task: String?

    @Option(help: "The task's observation mode to map onto (Push-T: keypoints or state; default: the task's own).")
    var observationMode: String?

    @Option(help: "robomimic: obs keys to concatenate, comma-separated, in order; zarr: data keys (default: state).")
    var obsKeys: String?

    @Option(help: "robomimic: import the demos listed in mask/FILTER (e.g. train, valid).")
    var filter: String?

    @Option(help: "LeRobot: state feature(s), comma-separated (default: observation.state).")
    var stateKey: String?

    @Option(help: ArgumentHelp("Cameras to carry, comma-separated, in order, or none. LeRobot: image/video features "
        + "(front or observation.images.front; default: all); robomimic: image keys (agentview_image; default: none)."))
    var cameras: String?

    @Option(help: "The action key (default: action; robomimic: actions).")
    var actionKey: String?

    @OptionGroup var report: ReportOptions

    func validate() throws {
        if filter != nil, format != .robomimic { throw ValidationError("--filter applies to robomimic files only") }
        if stateKey != nil, format != .lerobot { throw ValidationError("--state-key applies to LeRobot datasets only") }
        if cameras != nil, format == .zarr { throw ValidationError("--cameras applies to LeRobot and robomimic only") }
        if obsKeys != nil, format == .lerobot {
            throw ValidationError("LeRobot datasets take --state-key (their features), not --obs-keys")
        }
        if observationMode != nil, task == nil { throw ValidationError("--observation-mode needs --task") }
        for (name, value) in [("--obs-keys", obsKeys), ("--state-key", stateKey), ("--cameras", cameras)] {
            if let value, keys(value).isEmpty {
                throw ValidationError("\(name) needs at least one key, got \"\(value)\"")
            }
        }
        try Check.input("<source>", source)
        try Check.output("--out", out)
    }

    func run() throws {
        try reportingErrors {
            var options = DatasetConversionSession.ImportOptions(format: format, sourcePath: source, outputPath: out)
            if let task {
                let description = try TaskDescription.named(task)
                if let observationMode, description.interface.observations[observationMode] == nil {
                    throw ValidationError("--observation-mode must be one of \(task)'s modes: "
                        + description.interface.observations.keys.sorted().joined(separator: ", "))
                }
                options.task = description
            }
            options.observationMode = observationMode
            options.observationKeys = obsKeys.map(keys)
            options.filter = filter
            options.stateKeys = stateKey.map(keys)
            options.cameras = cameras.map { $0.trimmingCharacters(in: .whitespaces) == "none" ? [] : keys($0) }
            options.actionKey = actionKey
            options.command = commandLine
            let s = try DatasetConversionSession.importDataset(options)
            print("imported \(s.episodes) episodes, \(s.steps) steps from \(s.format.rawValue) \(s.source) in "
                + formatDuration(s.seconds))
            print("  observations    \(s.observationDimensions)-D\(s.keys.map { " (\($0))" } ?? "")")
            print("  actions         \(s.actionDimensions)-D")
            if let task = s.task {
                print("  task            \(task)\(s.observationMode.map { ", observation mode \($0)" } ?? "")")
            } else {
                print("  task            none (give --task to train and evaluate on a simulated task)")
            }
            if let rate = s.controlRate { print("  control rate    \(rate) Hz") }
            for key in ["source_format", "source_episodes", "robot_type", "camera_keys", "skipped"] {
                guard let value = s.details[key] else { continue }
                let label = key.replacingOccurrences(of: "_", with: " ")
                print("  \(label.padding(toLength: 15, withPad: " ", startingAt: 0)) \(value)")
            }
            print("wrote \(s.output) (read back and checked; \(s.datasetHash))")
            if let json = report.json { try writeJSONReport(s, to: json) }
        }
    }

    private func keys(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a dataset file to LeRobot (v3.0), robomimic HDF5 or a Diffusion Policy zarr.",
        discussion: """
            LeRobot: a v3.0 dataset folder (meta/info.json, meta/episodes, meta/tasks.parquet, meta/stats.json, \
            data/chunk-000/file-000.parquet), which LeRobotDataset loads with root=OUT. robomimic: an HDF5 file with \
            data attrs env_args and total, data/demo_i/{obs,next_obs}/<key> named after the task's interface \
            (object, robot0_eef_pos, ... for the robomimic tasks), actions, rewards and dones, and mask/train and \
            mask/valid. zarr: a replay buffer (data/action, data/state; Push-T keypoints as data/keypoint [N, 9, 2] \
            and data/state = the agent's x, y), a folder or, for OUT ending in .zip, a zip file.

            The export is written beside OUT, read back and compared with the dataset (arrays bit-identical) before \
            it replaces OUT; an existing folder is replaced only if it is an earlier export of the same format.
            """)

    @Option(help: "Target format: lerobot, robomimic or zarr.")
    var format: DatasetConversionSession.Format

    @Argument(help: "The flowpolicy dataset file to export.")
    var dataset: String

    @Option(help: "LeRobot folder, robomimic .hdf5 file, or zarr folder (or .zip) to write.")
    var out: String

    @Option(help: "The task whose layout names the keys (default: the dataset's task).")
    var task: String?

    @Option(parsing: .unconditional, help: "LeRobot: frames per second (default: the dataset's control rate).")
    var fps: Double?

    @Option(help: "LeRobot: the episodes' language task (default: the task name).")
    var taskText: String?

    @Option(parsing: .unconditional,
            help: "robomimic: the share of demos listed in mask/valid (the rest in mask/train).")
    var validRatio: Double = 0.1

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.real("--fps", fps, in: .above(0, upTo: 10_000), unit: "Hz")
        try Check.real("--valid-ratio", validRatio, in: .from(0, below: 1))
        if fps != nil || taskText != nil, format != .lerobot {
            throw ValidationError("--fps and --task-text apply to LeRobot exports only")
        }
        try Check.inputFile("<dataset>", dataset)
        // LeRobot and zarr exports are folders (a zarr may be a .zip file); robomimic's is an HDF5 file.
        try Check.output("--out", out, folderAllowed: format != .robomimic && !out.hasSuffix(".zip"))
    }

    func run() throws {
        try reportingErrors {
            var options = DatasetConversionSession.ExportOptions(format: format, datasetPath: dataset, outputPath: out)
            options.task = try task.map { try TaskDescription.named($0) }
            options.framesPerSecond = fps
            options.taskText = taskText
            options.validRatio = format == .robomimic ? validRatio : nil
            let s = try DatasetConversionSession.exportDataset(options)
            print("exported \(s.episodes) episodes, \(s.steps) steps\(s.task.map { " of \($0)" } ?? "") to "
                + "\(s.format.rawValue) in \(formatDuration(s.seconds))")
            if let keys = s.keys { print("  keys            \(keys)") }
            for (key, value) in s.details.sorted(by: { $0.key < $1.key }) {
                print("  \(key.padding(toLength: 15, withPad: " ", startingAt: 0)) \(value)")
            }
            print("  read back       arrays bit-identical (\(s.datasetHash))")
            print("wrote \(s.output)")
            if let json = report.json { try writeJSONReport(s, to: json) }
        }
    }
}
