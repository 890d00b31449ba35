import FlowPolicy
import Foundation

/// The robot's two endpoints: it publishes `RobotState` on the state endpoint and takes `ActionCommand`s on the
/// command endpoint (by default the state port + 1).
public enum RobotEndpoints {
    /// `tcp://host:5556` → `tcp://host:5557`; nil if the endpoint has no numeric TCP port (then give it explicitly).
    public static func defaultCommandEndpoint(forState endpoint: String) -> String? {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":"),
              let port = Int(endpoint[endpoint.index(after: colon)...]), port > 0, port < 65535
        else { return nil }
        return "\(endpoint[..<colon]):\(port + 1)"
    }
}

/// A robot across ZeroMQ: subscribes to its `RobotState` stream keeping only the newest (`ZMQ_CONFLATE`), and
/// publishes `ActionCommand`s. Malformed or mis-sized states are dropped and counted; a state published again under
/// the same sequence number (a lock-step robot repeating the state that waits for its command) is not new.
///
/// State timestamps are the robot's clock; the link moves them onto this machine's (`CLOCK_MONOTONIC`) with the offset
/// seen on the first state (its arrival here minus its timestamp, transport included), so that a state's age means
/// the same on one host or two.
///
/// Camera frames (`cameras`, those of a policy with cameras): each state must carry a raw frame of each, of the
/// camera's shape (picked by name); a state without them is dropped like a malformed one, so the loop sees no new
/// state and its watchdog stops it, naming the reason (`lastRefusal`).
///
/// Lock-step (`lockStepWaitSeconds`): `receiveLatest` waits up to that long for the next state, so the loop runs at
/// the robot's pace, one control step per state, whatever the time each takes. A lock-step robot publishing the
/// answered state again means the answer was lost (a connection still being made): the command is sent again.
public final class ZMQRobotLink: RobotLink {
    public let observationDimensions: Int
    public let actionDimensions: Int
    public let cameras: [CameraSpec]
    public let stateSocket: ZMQSocket
    public let commandSocket: ZMQSocket
    public private(set) var droppedStates = 0
    public private(set) var lastDropReason: String?
    /// Why the states since the last one taken were dropped (nil if none was).
    public private(set) var lastRefusal: String?
    public let stateEndpoint: String
    /// Lock-step: how long `receiveLatest` waits for the next state (nil: it never waits).
    public var lockStepWaitSeconds: Double?
    private var sequence: UInt64 = 0
    private var lastStateSequence: UInt64?
    /// This machine's clock minus the robot's, from the first state (nil until then).
    private var clockOffset: Int64?
    /// Lock-step: the last command sent and the state it answered (re-sent if that state comes again).
    private var lastCommandFrame: [UInt8] = []
    private var lastCommandAnswers: UInt64 = 0
    private var sawRepeat = false
    private lazy var poller: ZMQPoller = {
        let poller = ZMQPoller(capacity: 1)
        _ = try? poller.register(stateSocket)
        return poller
    }()

    /// Connects to the robot's endpoints with `security` (CURVE with the robot's public key, or plain).
    public init(context: ZMQContext, stateEndpoint: String, commandEndpoint: String, observationDimensions: Int,
                actionDimensions: Int, cameras: [CameraSpec] = [], security: SocketSecurity = .none) throws {
        self.observationDimensions = observationDimensions
        self.cameras = cameras
        self.actionDimensions = actionDimensions
        self.stateEndpoint = stateEndpoint
        stateSocket = try ZMQSocket(.subscribe, context: context)
        try security.apply(to: stateSocket)
        try stateSocket.setOption(.conflate, true)
        try stateSocket.subscribe()
        try stateSocket.connect(stateEndpoint)
        commandSocket = try ZMQSocket(.publish, context: context)
        try security.apply(to: commandSocket)
        try commandSocket.setOption(.sendHighWaterMark, 8)
        try commandSocket.connect(commandEndpoint)
    }

    public func awaitDescription(timeoutSeconds: Double) throws -> RobotDescription {
        let deadline = monotonicNanoseconds() + UInt64(max(timeoutSeconds, 0) * 1e9)
        while true {
            while let frame = try stateSocket.receive(flags: .dontWait) {
                guard let envelope = try? Wire.decode(frame), case .robotState(let state) = envelope.body else {
                    continue
                }
                let arrival = monotonicNanoseconds()
                clockOffset = Int64(bitPattern: arrival &- envelope.timestampNs)
                return RobotDescription(
                    name: state.robot.isEmpty ? stateEndpoint : state.robot,
                    observationDimensions: state.observation.count,
                    actionDimensions: state.actionDimensions > 0 ? Int(state.actionDimensions) : nil,
                    controlRateHz: state.controlRateHz > 0 ? state.controlRateHz : nil,
                    stateArrival: arrival, cameras: CameraFrames.cameras(state.frames))
            }
            let now = monotonicNanoseconds()
            guard now < deadline else {
                throw RuntimeError.robotSilent(endpoint: stateEndpoint, seconds: timeoutSeconds)
            }
            _ = try poller.poll(timeout: .milliseconds(Int(min((deadline - now) / 1_000_000 + 1, 100))))
        }
    }

    public func receiveLatest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>)
        throws -> RobotStateInfo?
    {
        try receiveLatest(observation: observation, appliedAction: appliedAction, frames: nil)
    }

    public func receiveLatest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>,
                              frames: UnsafeMutablePointer<UInt8>?) throws -> RobotStateInfo?
    {
        var newest = try receiveNewest(observation: observation, appliedAction: appliedAction, frames: frames)
        if newest == nil, let wait = lockStepWaitSeconds {
            let deadline = monotonicNanoseconds() + UInt64(wait * 1e9)
            while newest == nil {
                let now = monotonicNanoseconds()
                guard now < deadline else { break }
                _ = try poller.poll(timeout: .milliseconds(Int(min((deadline - now) / 1_000_000 + 1, 100))))
                newest = try receiveNewest(observation: observation, appliedAction: appliedAction, frames: frames)
                if newest == nil, sawRepeat, !lastCommandFrame.isEmpty, lastCommandAnswers == lastStateSequence {
                    try commandSocket.send(lastCommandFrame, flags: .dontWait)
                }
            }
        }
        return newest
    }

    /// The newest new state waiting on the socket, if any.
    private func receiveNewest(observation: UnsafeMutablePointer<Float>, appliedAction: UnsafeMutablePointer<Float>,
                               frames: UnsafeMutablePointer<UInt8>?) throws -> RobotStateInfo?
    {
        var newest: RobotStateInfo?
        sawRepeat = false
        while let frame = try stateSocket.receive(flags: .dontWait) {
            do {
                let envelope = try Wire.decode(frame)
                guard case .robotState(let state) = envelope.body else {
                    throw WireError(.unexpectedMessage, "expected RobotState, got \(Wire.name(of: envelope.body))")
                }
                guard state.observation.count == observationDimensions else {
                    throw WireError(.invalidArgument, "RobotState has \(state.observation.count) observation numbers, "
                        + "the policy takes \(observationDimensions)")
                }
                guard state.observation.allSatisfy(\.isFinite) else {
                    throw WireError(.nonFinite, "RobotState observation has a non-finite number")
                }
                guard envelope.sequence != lastStateSequence else {
                    sawRepeat = true
                    continue
                }
                if !cameras.isEmpty {
                    // Checked before anything is written, so a refused state leaves the last one's values.
                    try CameraFrames.copyCurrent(state.frames, cameras: cameras, into: frames)
                }
                lastStateSequence = envelope.sequence
                lastRefusal = nil
                state.observation.withUnsafeBufferPointer {
                    observation.update(from: $0.baseAddress!, count: observationDimensions)
                }
                if clockOffset == nil {
                    clockOffset = Int64(bitPattern: monotonicNanoseconds() &- envelope.timestampNs)
                }
                newest = RobotStateInfo(
                    episode: state.episodeID, step: state.step, episodeStart: state.episodeStart, done: state.done,
                    success: state.success, progress: state.progress,
                    timestampNanoseconds: envelope.timestampNs &+ UInt64(bitPattern: clockOffset!),
                    sequence: envelope.sequence)
                if state.appliedAction.count == actionDimensions, state.appliedAction.allSatisfy(\.isFinite) {
                    state.appliedAction.withUnsafeBufferPointer {
                        appliedAction.update(from: $0.baseAddress!, count: actionDimensions)
                    }
                    newest!.hasAppliedAction = true
                }
            } catch {
                droppedStates += 1
                lastDropReason = "\(error)"
                lastRefusal = lastDropReason
            }
        }
        return newest
    }

    public func send(_ mode: CommandMode, action: UnsafePointer<Float>, answering: RobotStateInfo?, step: Int) throws {
        var command = Wire.ActionCommand()
        command.mode = mode == .act ? .act : .hold
        if mode == .act { command.values = Array(UnsafeBufferPointer(start: action, count: actionDimensions)) }
        command.stateSequence = answering?.sequence ?? 0
        // Back on the robot's clock, as it stamped the state.
        command.stateTimestampNs = answering.map { $0.timestampNanoseconds &- UInt64(bitPattern: clockOffset ?? 0) }
            ?? 0
        command.episodeID = answering?.episode ?? 0
        command.step = UInt64(step)
        sequence += 1
        let frame = Wire.encode(Wire.envelope(sequence: sequence, .actionCommand(command)))
        if lockStepWaitSeconds != nil {
            lastCommandFrame = frame
            lastCommandAnswers = command.stateSequence
        }
        try commandSocket.send(frame, flags: .dontWait)
    }
}
