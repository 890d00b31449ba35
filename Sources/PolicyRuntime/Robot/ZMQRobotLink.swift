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
/// publishes `ActionCommand`s. Malformed or mis-sized states are dropped and counted.
public final class ZMQRobotLink: RobotLink {
    public let observationDimensions: Int
    public let actionDimensions: Int
    public let stateSocket: ZMQSocket
    public let commandSocket: ZMQSocket
    public private(set) var droppedStates = 0
    public private(set) var lastDropReason: String?
    public let stateEndpoint: String
    private var sequence: UInt64 = 0

    public init(context: ZMQContext, stateEndpoint: String, commandEndpoint: String, observationDimensions: Int,
                actionDimensions: Int) throws {
        self.observationDimensions = observationDimensions
        self.actionDimensions = actionDimensions
        self.stateEndpoint = stateEndpoint
        stateSocket = try ZMQSocket(.subscribe, context: context)
        try stateSocket.setOption(.conflate, true)
        try stateSocket.subscribe()
        try stateSocket.connect(stateEndpoint)
        commandSocket = try ZMQSocket(.publish, context: context)
        try commandSocket.setOption(.sendHighWaterMark, 8)
        try commandSocket.connect(commandEndpoint)
    }

    public func awaitDescription(timeoutSeconds: Double) throws -> RobotDescription {
        let poller = ZMQPoller(capacity: 1)
        _ = try poller.register(stateSocket)
        let deadline = monotonicNanoseconds() + UInt64(max(timeoutSeconds, 0) * 1e9)
        while true {
            while let frame = try stateSocket.receive(flags: .dontWait) {
                guard let envelope = try? Wire.decode(frame), case .robotState(let state) = envelope.body else {
                    continue
                }
                return RobotDescription(
                    name: state.robot.isEmpty ? stateEndpoint : state.robot,
                    observationDimensions: state.observation.count,
                    actionDimensions: state.actionDimensions > 0 ? Int(state.actionDimensions) : nil,
                    controlRateHz: state.controlRateHz > 0 ? state.controlRateHz : nil)
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
        var newest: RobotStateInfo?
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
                state.observation.withUnsafeBufferPointer {
                    observation.update(from: $0.baseAddress!, count: observationDimensions)
                }
                newest = RobotStateInfo(
                    episode: state.episodeID, step: state.step, episodeStart: state.episodeStart, done: state.done,
                    success: state.success, progress: state.progress, timestampNanoseconds: envelope.timestampNs,
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
            }
        }
        return newest
    }

    public func send(_ mode: CommandMode, action: UnsafePointer<Float>, answering: RobotStateInfo?, step: Int) throws {
        var command = Wire.ActionCommand()
        command.mode = mode == .act ? .act : .hold
        if mode == .act { command.values = Array(UnsafeBufferPointer(start: action, count: actionDimensions)) }
        command.stateSequence = answering?.sequence ?? 0
        command.stateTimestampNs = answering?.timestampNanoseconds ?? 0
        command.episodeID = answering?.episode ?? 0
        command.step = UInt64(step)
        sequence += 1
        try commandSocket.send(Wire.encode(Wire.envelope(sequence: sequence, .actionCommand(command))),
                               flags: .dontWait)
    }
}
