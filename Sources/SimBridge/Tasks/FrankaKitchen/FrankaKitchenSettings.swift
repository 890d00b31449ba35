import Foundation

/// The `environment` section of `tasks/franka_kitchen/task.yaml`.
public struct FrankaKitchenSettings: Codable, Sendable {
    /// How the scene is compiled for speed; neither changes what the simulation computes (see `FrankaKitchen`).
    public struct Collision: Codable, Sendable {
        /// Take visual geoms (contype = conaffinity = 0) out of MuJoCo's collision loops
        /// (`Model.removeVisualGeomsFromCollisionLoops()`).
        public var skipVisualGeoms: Bool
        /// Skip convex-versus-box collision tests whose bounding sphere does not reach the box (installed in MuJoCo's
        /// collision table for the whole process; it only skips calls that would find no contact).
        public var boxPrefilter: Bool
        /// Body pairs that can never touch, added to the scene as `<contact><exclude/>` (by body name).
        public var exclude: [[String]]
        /// Room for constraint rows and contacts per simulation state (MuJoCo 2.2.2's njmax and nconmax; nil keeps
        /// the scene's 1000 and 1000). A step that needs more throws.
        public var maxConstraintRows: Int?
        public var maxContacts: Int?
        /// Step with a geom-pair table (`GeomPairTable`) instead of MuJoCo's broadphase and geom-pair loops: the
        /// same contacts in the same order, found with less work. Nil or false: MuJoCo's `mj_collision`.
        public var pairTable: Bool?

        public init(skipVisualGeoms: Bool, boxPrefilter: Bool, exclude: [[String]], maxConstraintRows: Int? = nil,
                    maxContacts: Int? = nil, pairTable: Bool? = nil) {
            self.skipVisualGeoms = skipVisualGeoms
            self.boxPrefilter = boxPrefilter
            self.exclude = exclude
            self.maxConstraintRows = maxConstraintRows
            self.maxContacts = maxContacts
            self.pairTable = pairTable
        }

        enum CodingKeys: String, CodingKey {
            case exclude
            case skipVisualGeoms = "skip_visual_geoms", boxPrefilter = "box_prefilter"
            case maxConstraintRows = "max_constraint_rows", maxContacts = "max_contacts", pairTable = "pair_table"
        }
    }

    /// Folder of the Gymnasium-Robotics `kitchen_franka` assets in the asset cache.
    public var assets: String
    /// The scene, relative to `assets` (loaded as it is; the exclusions are added around it).
    public var scene: String
    /// Joint position and velocity bounds and noise amplitudes, relative to `assets`.
    public var robotConfig: String
    /// Physics steps per control step (the reference's `frame_skip`).
    public var frameSkip: Int
    public var maxSteps: Int
    /// `full` (59-D) or `dp` (60-D, Diffusion Policy's).
    public var observation: String
    /// The requested subtasks, by the reference's names. The scripted expert does them in this order.
    public var tasks: [KitchenSubtask]
    public var terminateOnTasksCompleted: Bool
    public var robotNoiseRatio: Double
    public var objectNoiseRatio: Double
    public var completionThreshold: Double
    public var collision: Collision

    public init(
        assets: String, scene: String, robotConfig: String, frameSkip: Int, maxSteps: Int, observation: String,
        tasks: [KitchenSubtask], terminateOnTasksCompleted: Bool, robotNoiseRatio: Double, objectNoiseRatio: Double,
        completionThreshold: Double, collision: Collision
    ) {
        self.assets = assets
        self.scene = scene
        self.robotConfig = robotConfig
        self.frameSkip = frameSkip
        self.maxSteps = maxSteps
        self.observation = observation
        self.tasks = tasks
        self.terminateOnTasksCompleted = terminateOnTasksCompleted
        self.robotNoiseRatio = robotNoiseRatio
        self.objectNoiseRatio = objectNoiseRatio
        self.completionThreshold = completionThreshold
        self.collision = collision
    }

    enum CodingKeys: String, CodingKey {
        case assets, scene, observation, tasks, collision
        case robotConfig = "robot_config", frameSkip = "frame_skip", maxSteps = "max_steps"
        case terminateOnTasksCompleted = "terminate_on_tasks_completed", robotNoiseRatio = "robot_noise_ratio"
        case objectNoiseRatio = "object_noise_ratio", completionThreshold = "completion_threshold"
    }
}

struct FrankaKitchenTaskFile: Codable {
    var environment: FrankaKitchenSettings
}

/// The per-coordinate bounds and noise amplitudes of the reference's `franka_config.xml` (entries `qpos0` ...,
/// one per degree of freedom): position bounds and velocity bounds (`pos_bound`, `vel_bound`, each "low high"),
/// and the amplitudes that scale the uniform observation noise (`pos_noise_amp`, `vel_noise_amp`).
public struct FrankaRobotConfig: Sendable, Equatable {
    public var positionLow: [Double]
    public var positionHigh: [Double]
    public var velocityLow: [Double]
    public var velocityHigh: [Double]
    public var positionNoiseAmplitude: [Double]
    public var velocityNoiseAmplitude: [Double]

    /// Reads entries `qpos0` ..< `qpos<count>` of the file at `path`.
    public init(path: String, count: Int) throws(EnvironmentError) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw .invalidTaskFile(path: path, message: "cannot read the robot configuration")
        }
        try self.init(text: text, count: count, source: path)
    }

    public init(text: String, count: Int, source: String = "franka_config.xml") throws(EnvironmentError) {
        var entries: [Int: [String: String]] = [:]
        // Elements are one per line: <qposN name='..' pos_bound='a b' vel_bound='a b' pos_noise_amp='x' .../>
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("<qpos") else { continue }
            let digits = trimmed.dropFirst(5).prefix { $0.isNumber }
            guard let index = Int(digits) else { continue }
            entries[index] = Self.attributes(of: String(trimmed.dropFirst(5 + digits.count)))
        }
        func numbers(_ index: Int, _ key: String, _ expected: Int) throws(EnvironmentError) -> [Double] {
            guard let value = entries[index]?[key] else {
                throw .invalidTaskFile(path: source, message: "qpos\(index) has no \(key)")
            }
            let parsed = value.split(separator: " ").compactMap { Double($0) }
            guard parsed.count == expected else {
                throw .invalidTaskFile(
                    path: source, message: "qpos\(index) \(key)='\(value)': expected \(expected) numbers")
            }
            return parsed
        }
        positionLow = []
        positionHigh = []
        velocityLow = []
        velocityHigh = []
        positionNoiseAmplitude = []
        velocityNoiseAmplitude = []
        for index in 0..<count {
            let position = try numbers(index, "pos_bound", 2)
            let velocity = try numbers(index, "vel_bound", 2)
            positionLow.append(position[0])
            positionHigh.append(position[1])
            velocityLow.append(velocity[0])
            velocityHigh.append(velocity[1])
            positionNoiseAmplitude.append(try numbers(index, "pos_noise_amp", 1)[0])
            velocityNoiseAmplitude.append(try numbers(index, "vel_noise_amp", 1)[0])
        }
    }

    /// `key='value'` or `key="value"` pairs.
    static func attributes(of text: String) -> [String: String] {
        var result: [String: String] = [:]
        var rest = Substring(text)
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].split(separator: " ").last.map(String.init) ?? ""
            let afterEquals = rest[rest.index(after: equals)...].drop { $0 == " " }
            guard let quote = afterEquals.first, quote == "'" || quote == "\"" else { break }
            let valueStart = afterEquals.index(after: afterEquals.startIndex)
            guard let valueEnd = afterEquals[valueStart...].firstIndex(of: quote) else { break }
            result[key] = afterEquals[valueStart..<valueEnd].trimmingCharacters(in: .whitespaces)
            rest = afterEquals[afterEquals.index(after: valueEnd)...]
        }
        return result
    }
}
