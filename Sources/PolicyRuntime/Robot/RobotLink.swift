import FlowPolicy

/// What the control loop learns from one robot state besides the observation.
public struct RobotStateInfo: Equatable, Sendable {
    /// The robot's episode counter (the simulated robot uses the episode's seed).
    public var episode: UInt64
    /// Control steps the robot applied in this episode.
    public var step: UInt64
    public var episodeStart: Bool
    public var done: Bool
    public var success: Bool
    public var progress: Double
    /// When the robot took the state (ns, on this machine's `CLOCK_MONOTONIC`: a link translates the robot's clock)
    /// and its sequence number (answered by commands).
    public var timestampNanoseconds: UInt64
    public var sequence: UInt64
    /// Whether the state reported the action the robot applies (written beside the observation).
    public var hasAppliedAction = false

    public init(episode: UInt64, step: UInt64, episodeStart: Bool, done: Bool, success: Bool, progress: Double,
                timestampNanoseconds: UInt64, sequence: UInt64) {
        self.episode = episode
        self.step = step
        self.episodeStart = episodeStart
        self.done = done
        self.success = success
        self.progress = progress
        self.timestampNanoseconds = timestampNanoseconds
        self.sequence = sequence
    }
}

/// Whether a command moves the robot or keeps its last applied action.
public enum CommandMode: Sendable, Equatable {
    case act
    case hold
}

/// What a robot says about itself, checked against the policy's deployment contract before the loop acts.
public struct RobotDescription: Sendable, Equatable {
    public var name: String
    public var observationDimensions: Int
    /// Nil where the robot does not report it.
    public var actionDimensions: Int?
    public var controlRateHz: Double?
    /// When the state arrived (this machine's `CLOCK_MONOTONIC`, ns), for a loop to tick in phase with the robot's
    /// state stream; nil where states come when asked for.
    public var stateArrival: UInt64?
    /// The cameras whose frames its state carries (names and shapes), in the order it sends them; nil where the robot
    /// does not say.
    public var cameras: [CameraSpec]?

    public init(name: String, observationDimensions: Int, actionDimensions: Int?, controlRateHz: Double?,
                stateArrival: UInt64? = nil, cameras: [CameraSpec]? = nil) {
        self.name = name
        self.observationDimensions = observationDimensions
        self.actionDimensions = actionDimensions
        self.controlRateHz = controlRateHz
        self.stateArrival = stateArrival
        self.cameras = cameras
    }
}

/// The robot as the control loop sees it: the newest state, and commands. ZeroMQ (`ZMQRobotLink`) and the
/// in-process environment (PolicyLab's `EnvironmentRobot`) are adapters; the loop knows nothing of either.
public protocol RobotLink: AnyObject {
    var observationDimensions: Int { get }
    var actionDimensions: Int { get }
    /// The cameras whose frames `receiveLatest(observation:appliedAction:frames:)` delivers with each state, in the
    /// policy's order (none by default).
    var cameras: [CameraSpec] { get }
    /// Why the states that came since the last one taken were refused (malformed, wrong size, missing frames); nil if
    /// none was. The watchdog names it when it stops the loop for want of a state.
    var lastRefusal: String? { get }
    /// Waits at most `timeoutSeconds` for the robot's first state and returns what the robot says about itself;
    /// throws `RuntimeError.robotSilent` if none comes.
    func awaitDescription(timeoutSeconds: Double) throws -> RobotDescription
    /// The newest state that arrived since the last call, if any (older unread ones are dropped): writes its
    /// observation (`[Do]`) and, when the state reports it, the action the robot applies (`[Da]`), and returns the
    /// rest. Does not wait, except for a link told to wait for each state in lock-step runs.
    func receiveLatest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>) throws
        -> RobotStateInfo?
    /// As `receiveLatest(observation:appliedAction:)`, and writes the state's camera frames (`[Σ H*W*C]` of
    /// `cameras`, in order, `uint8 [H, W, C]` each) into `frames` when given. A state without them is refused (not
    /// returned), as a malformed one is.
    func receiveLatest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>,
                       frames: UnsafeMutablePointer<UInt8>?) throws -> RobotStateInfo?
    /// Commands `action` (`[Da]`, ignored for HOLD), answering the state `answering` (nil if none was seen).
    func send(_ mode: CommandMode, action: UnsafePointer<Float>, answering: RobotStateInfo?, step: Int) throws
}

extension RobotLink {
    public var cameras: [CameraSpec] { [] }
    public var lastRefusal: String? { nil }

    /// A link without cameras: only the observation and the applied action.
    public func receiveLatest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>,
                              frames: UnsafeMutablePointer<UInt8>?) throws -> RobotStateInfo?
    {
        precondition(frames == nil || cameras.isEmpty, "\(Self.self) lists cameras but does not deliver their frames")
        return try receiveLatest(observation: observation, appliedAction: appliedAction)
    }
}
