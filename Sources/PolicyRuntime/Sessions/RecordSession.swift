import FlowPolicy
import Foundation

/// `record`: demonstrations from a robot, over its `flowpolicy.v1` interface, into a dataset file.
///
/// It subscribes to the robot's `RobotState` stream and pairs each state's observation with the action the robot
/// reports applying next (`applied_action` of the state one step later): whatever drives the robot — an operator's
/// teleoperation device, `flowpolicy teleop`, a policy — is what gets recorded, as the robot executed it. A pair is
/// kept only when the robot's step advanced by exactly one (a missed state breaks the pairing; it is counted, never
/// guessed).
///
/// Episodes start, end (kept, with an outcome) and are discarded by `Control` requests on the record's control socket
/// (`START_EPISODE`, `END_EPISODE` with `outcome`, `DISCARD_EPISODE`, `QUIT`), by keys on a terminal, or, with
/// `followRobot`, by the robot's own episodes (its first state starts one, its final state ends it with the robot's
/// success as the outcome).
///
/// Durability: each finished episode is appended and the whole file written again to a temporary file, flushed,
/// renamed over the dataset and the folder flushed (`AtomicFile`), so a `kill -9` at any moment leaves either the
/// file with every finished episode, or the one before it had the last; only the episode in progress is lost.
public final class RecordSession {
    public struct Options: Sendable {
        /// The robot's RobotState endpoint (its command endpoint is not needed: recording only listens).
        public var robot: String
        /// The dataset file written (created, replaced, or with `append` added to).
        public var outputPath: String
        /// Written as the dataset's `task` (a simulated task's name lets `train` take its horizons and contract);
        /// nil: the robot's name.
        public var task: String?
        public var notes = ""
        public var append = false
        public var followRobot = false
        /// Stop after this many kept episodes (nil: until QUIT or interrupted).
        public var episodes: Int?
        /// The control socket (nil: none).
        public var control: String? = "tcp://127.0.0.1:*"
        public var startupSeconds = 10.0
        public var credentials = Credentials.none
        public var robotPublicKey: String?
        public var command = ""

        public init(robot: String, outputPath: String) {
            self.robot = robot
            self.outputPath = outputPath
        }
    }

    public struct Summary: Codable, Sendable {
        public var output: String
        public var robot: String
        public var controlRateHz: Double?
        public var episodesKept: Int
        public var episodesDiscarded: Int
        public var steps: Int
        /// States whose pairing with the next action was broken (a state missed between them).
        public var gaps: Int
        public var datasetEpisodes: Int
        public var seconds: Double
    }

    /// What happened to an episode, for the log.
    public enum Event: Sendable {
        /// The robot's first state arrived: what it is.
        case connected(robot: String, observationDimensions: Int)
        case started(index: Int)
        case kept(index: Int, steps: Int, outcome: String)
        case discarded(steps: Int)
    }

    public let options: Options
    public let controlEndpoint: String?
    private let context: ZMQContext
    private let states: ZMQSocket
    private let control: ZMQSocket?
    private let poller = ZMQPoller(capacity: 2)
    private var dataset: EpisodeDataset?
    private var episodesMetadata: [[String: String]] = []
    private var recording = false
    private var observations: [Float] = []
    private var actions: [Float] = []
    private var pending: (observation: [Float], step: UInt64)?
    private var episodeStart = Date()
    private var lastSequence: UInt64?
    /// What the robot's states hold: observation and action sizes, and its name.
    private var observationDimensions: Int?
    private var actionDimensions: Int?
    private var robotName = "robot"
    private var summary: Summary
    private var quit = false
    private let keys = KeyRequests()

    public init(options: Options) throws {
        self.options = options
        context = try ZMQContext()
        if options.append, FileManager.default.fileExists(atPath: options.outputPath) {
            dataset = try EpisodeDataset(contentsOf: options.outputPath)
            if let task = options.task, let existing = dataset?.metadata["task"], existing != task {
                throw RuntimeError.invalidConfiguration(
                    "\(options.outputPath) holds \(existing) demonstrations; recording \(task) there would mix tasks")
            }
            episodesMetadata = (dataset?.metadata["episodes"]).flatMap {
                try? JSONDecoder().decode([[String: String]].self, from: Data($0.utf8))
            } ?? []
        }
        states = try ZMQSocket(.subscribe, context: context)
        try options.credentials.clientSecurity(serverPublicKey: options.robotPublicKey).apply(to: states)
        try states.setOption(.receiveHighWaterMark, 100_000)
        try states.subscribe()
        try states.connect(options.robot)
        _ = try poller.register(states)
        if let endpoint = options.control {
            let authentication = try options.credentials.startAuthentication(context)
            let socket = try ZMQSocket(.router, context: context)
            try options.credentials.serverSecurity(binding: endpoint, authentication: authentication).apply(to: socket)
            try socket.bind(endpoint)
            controlEndpoint = try socket.lastEndpoint ?? endpoint
            _ = try poller.register(socket)
            control = socket
        } else {
            controlEndpoint = nil
            control = nil
        }
        summary = Summary(output: options.outputPath, robot: options.robot, controlRateHz: nil, episodesKept: 0,
                          episodesDiscarded: 0, steps: 0, gaps: 0, datasetEpisodes: dataset?.episodeCount ?? 0,
                          seconds: 0)
    }

    /// Records until QUIT, the episode count, or `shouldStop()`; `event` hears of every episode as it goes.
    public func run(readKeys: Bool, shouldStop: () -> Bool = { false }, event: (Event) -> Void = { _ in }) throws
        -> Summary
    {
        let start = monotonicNanoseconds()
        if readKeys { keys.start() }
        defer { keys.stop() }
        // The robot's first state says what it is.
        let deadline = start + UInt64(options.startupSeconds * 1e9)
        while !quit && !shouldStop() && (options.episodes.map { summary.episodesKept < $0 } ?? true) {
            _ = try poller.poll(timeout: .milliseconds(20))
            if summary.controlRateHz == nil && lastSequence == nil && monotonicNanoseconds() > deadline {
                throw RuntimeError.robotSilent(endpoint: options.robot, seconds: options.startupSeconds)
            }
            while let frame = try states.receive(flags: .dontWait) { try take(frame, event: event) }
            if let control {
                while let frames = try control.receiveMultipart(flags: .dontWait) { answer(frames, event) }
            }
            for key in keys.take() { try press(key, event: event) }
        }
        if recording { discard(event) }  // an episode in progress at the end is not a finished one
        summary.seconds = Double(monotonicNanoseconds() - start) / 1e9
        summary.datasetEpisodes = dataset?.episodeCount ?? 0
        return summary
    }

    // MARK: States

    private func take(_ frame: [UInt8], event: (Event) -> Void) throws {
        guard let envelope = try? Wire.decode(frame), case .robotState(let state) = envelope.body else { return }
        guard envelope.sequence != lastSequence else { return }  // a lock-step robot saying it again
        lastSequence = envelope.sequence
        if summary.controlRateHz == nil, state.controlRateHz > 0 { summary.controlRateHz = state.controlRateHz }
        if observationDimensions == nil {
            observationDimensions = state.observation.count
            if !state.robot.isEmpty { robotName = state.robot }
            event(.connected(robot: robotName, observationDimensions: state.observation.count))
        }
        if actionDimensions == nil, !state.appliedAction.isEmpty { actionDimensions = state.appliedAction.count }
        guard state.observation.count == observationDimensions, state.observation.allSatisfy(\.isFinite),
              state.appliedAction.allSatisfy(\.isFinite)
        else {
            summary.gaps += 1  // a malformed state breaks the pairing like a missed one
            pending = nil
            return
        }
        if options.followRobot && state.episodeStart && !recording { try begin(event) }
        guard recording else { return }
        if let previous = pending {
            if state.step == previous.step + 1, state.appliedAction.count == actionDimensions {
                observations += previous.observation
                actions += state.appliedAction
            } else if state.step != previous.step {
                summary.gaps += 1
            }
        }
        pending = state.done ? nil : (state.observation, state.step)
        if options.followRobot && state.done { try keep(outcome: state.success ? "success" : "failure", event) }
    }

    // MARK: Episodes

    private func begin(_ event: (Event) -> Void) throws {
        recording = true
        observations.removeAll(keepingCapacity: true)
        actions.removeAll(keepingCapacity: true)
        pending = nil
        episodeStart = Date()
        event(.started(index: (dataset?.episodeCount ?? 0)))
    }

    private func keep(outcome: String, _ event: (Event) -> Void) throws {
        recording = false
        guard let Do = observationDimensions, let Da = actionDimensions, !actions.isEmpty else {
            summary.episodesDiscarded += 1
            event(.discarded(steps: 0))
            return
        }
        var file = dataset ?? EpisodeDataset(observationDimensions: Do, actionDimensions: Da)
        guard file.observationDimensions == Do, file.actionDimensions == Da else {
            throw RuntimeError.invalidConfiguration(
                "\(options.outputPath) holds \(file.observationDimensions)-D observations and "
                    + "\(file.actionDimensions)-D actions; the robot sends \(Do)-D and \(Da)-D")
        }
        let steps = actions.count / Da
        try file.appendEpisode(observations: observations, actions: actions)
        var episodes = episodesMetadata
        episodes.append([
            "index": String(file.episodeCount - 1), "start": ISO8601DateFormatter().string(from: episodeStart),
            "outcome": outcome, "steps": String(steps),
        ])
        file.metadata["task"] = options.task ?? file.metadata["task"] ?? robotName
        file.metadata["robot"] = robotName
        file.metadata["source"] = "recorded from \(options.robot)"
        if let rate = summary.controlRateHz { file.metadata["control_hz"] = String(rate) }
        if !options.notes.isEmpty { file.metadata["notes"] = options.notes }
        file.metadata["command"] = options.command
        file.metadata["episodes"] = String(decoding: (try? JSONEncoder().encode(episodes)) ?? Data(), as: UTF8.self)
        try file.write(to: options.outputPath)
        dataset = file
        episodesMetadata = episodes
        summary.episodesKept += 1
        summary.steps += steps
        event(.kept(index: file.episodeCount - 1, steps: steps, outcome: outcome))
    }

    private func discard(_ event: (Event) -> Void) {
        recording = false
        summary.episodesDiscarded += 1
        event(.discarded(steps: actionDimensions.map { actions.count / $0 } ?? 0))
    }

    // MARK: Requests

    private func answer(_ frames: [[UInt8]], _ event: (Event) -> Void) {
        let routing = Array(frames.prefix(frames.count >= 3 && frames[1].isEmpty ? 2 : 1))
        var sequence: UInt64 = 0
        var reply: Wire.Envelope
        do {
            guard frames.count == routing.count + 1 else { throw WireError(.malformed, "expected one Envelope frame") }
            let envelope = try Wire.decode(frames[routing.count])
            sequence = envelope.sequence
            guard case .control(let request) = envelope.body else {
                throw WireError(.unexpectedMessage, "the record control socket takes Control, not "
                    + Wire.name(of: envelope.body))
            }
            switch request.command {
            case .startEpisode: if !recording { try begin(event) }
            case .endEpisode:
                if recording { try keep(outcome: request.outcome.isEmpty ? "unknown" : request.outcome, event) }
            case .discardEpisode: if recording { discard(event) }
            case .quit: quit = true
            case .status: break
            default: throw WireError(.invalidArgument, "record takes START_EPISODE, END_EPISODE, DISCARD_EPISODE, "
                + "QUIT and STATUS")
            }
            var status = Wire.Status()
            status.state = recording ? .running : .stopped
            status.step = UInt64(actionDimensions.map { actions.count / $0 } ?? 0)
            status.chunks = UInt64(summary.episodesKept)
            status.reason = recording ? "recording" : "idle"
            reply = Wire.envelope(sequence: sequence, .status(status))
        } catch let error as WireError {
            reply = Wire.errorEnvelope(sequence: sequence, error)
        } catch {
            reply = Wire.errorEnvelope(sequence: sequence, WireError(.internal, "\(error)"))
        }
        _ = try? control?.sendMultipart(routing + [Wire.encode(reply)], flags: .dontWait)
    }

    /// Terminal keys: space or s starts and ends (keeps) an episode, d discards it, q quits.
    private func press(_ key: UInt8, event: (Event) -> Void) throws {
        switch key {
        case UInt8(ascii: " "), UInt8(ascii: "s"):
            if recording { try keep(outcome: "unknown", event) } else { try begin(event) }
        case UInt8(ascii: "d"): if recording { discard(event) }
        case UInt8(ascii: "q"): quit = true
        default: break
        }
    }
}

/// Keys typed on the terminal, read without waiting for Enter (the terminal is put in non-canonical mode and
/// restored at the end), handed to the session on its own thread.
final class KeyRequests: @unchecked Sendable {
    // `@unchecked`: `pressed` is guarded by `lock`; the reader thread owns the terminal while it runs.
    private let lock = NSLock()
    private var pressed: [UInt8] = []
    private var running = false
    private var saved = termios()

    func start() {
        guard isatty(STDIN_FILENO) == 1, tcgetattr(STDIN_FILENO, &saved) == 0 else { return }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &raw)
        lock.withLock { running = true }
        Thread {
            var byte: UInt8 = 0
            while self.lock.withLock({ self.running }) {
                var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
                guard poll(&descriptor, 1, 100) > 0, read(STDIN_FILENO, &byte, 1) == 1 else { continue }
                self.lock.withLock { self.pressed.append(byte) }
            }
        }.start()
    }

    func take() -> [UInt8] {
        lock.withLock {
            defer { pressed.removeAll() }
            return pressed
        }
    }

    func stop() {
        let wasRunning = lock.withLock {
            defer { running = false }
            return running
        }
        if wasRunning { tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
    }
}
