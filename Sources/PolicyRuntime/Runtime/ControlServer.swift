import Foundation

/// The control socket of `flowpolicy run`: a ROUTER that takes `Control` requests (STOP, RESUME, STATUS) on a
/// thread of its own, passes them to the loop's `LoopControl` and answers each with the loop's `Status`.
public final class ControlServer: @unchecked Sendable {
    // `@unchecked`: the socket is used by the server thread only (after `init` hands it over); `running` is guarded
    // by `lock`.
    public let endpoint: String
    private let socket: ZMQSocket
    private let control: LoopControl
    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    /// Binds `endpoint` with `security` (CURVE: only clients on the allow-list may stop or resume the loop); `log`
    /// receives what the operator must see (a resume after a watchdog stop).
    public init(context: ZMQContext, endpoint: String, control: LoopControl, security: SocketSecurity = .none,
                log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.log = log
        socket = try ZMQSocket(.router, context: context)
        try security.apply(to: socket)
        try socket.bind(endpoint)
        self.endpoint = try socket.lastEndpoint ?? endpoint
        self.control = control
        let thread = Thread { self.serve() }
        thread.name = "flowpolicy control"
        thread.start()
    }

    /// Stops the thread and closes the socket.
    public func stop() {
        let wasRunning = lock.withLock {
            defer { running = false }
            return running
        }
        if wasRunning { finished.wait() }
    }

    private func serve() {
        defer {
            socket.close()
            finished.signal()
        }
        let poller = ZMQPoller(capacity: 1)
        guard (try? poller.register(socket)) != nil else { return }
        while lock.withLock({ running }) {
            guard (try? poller.poll(timeout: .milliseconds(20))) ?? 0 > 0 else { continue }
            while let frames = try? socket.receiveMultipart(flags: .dontWait) {
                let routing = Array(frames.prefix(frames.count >= 3 && frames[1].isEmpty ? 2 : 1))
                let reply = answer(frames.dropFirst(routing.count))
                _ = try? socket.sendMultipart(routing + [Wire.encode(reply)], flags: .dontWait)
            }
        }
    }

    private func answer(_ payload: ArraySlice<[UInt8]>) -> Wire.Envelope {
        var sequence: UInt64 = 0
        do {
            guard payload.count == 1, let frame = payload.first else {
                throw WireError(.malformed, "expected one frame holding an Envelope, got \(payload.count)")
            }
            let envelope = try Wire.decode(frame)
            sequence = envelope.sequence
            guard case .control(let request) = envelope.body else {
                throw WireError(
                    .unexpectedMessage, "the control socket takes Control, not \(Wire.name(of: envelope.body))")
            }
            switch request.command {
            case .stop:
                control.stop(reason: request.reason.isEmpty ? "Control STOP" : "Control STOP: \(request.reason)")
            case .resume:
                control.resume(overrideWatchdog: request.overrideWatchdog)
                if request.overrideWatchdog && control.status.stoppedByWatchdog {
                    log("control: RESUME with override_watchdog after a watchdog stop (\(control.status.reason))"
                        + (request.reason.isEmpty ? "" : ": \(request.reason)"))
                }
            case .status: break
            default: throw WireError(.invalidArgument, "Control needs a command: STOP, RESUME or STATUS")
            }
            // A stop or resume takes effect at the loop's next tick; report what was requested.
            var status = Self.wireStatus(control.status)
            if request.command == .stop { status.state = .stopped }
            if request.command == .resume && status.state == .stopped {
                if control.status.stoppedByWatchdog && !request.overrideWatchdog {
                    status.reason = "RESUME refused: the watchdog stopped the loop (\(control.status.reason)); "
                        + "look at why, then RESUME with override_watchdog"
                } else {
                    status.state = .starting
                    status.reason = ""
                }
            }
            return Wire.envelope(sequence: sequence, .status(status))
        } catch let error as WireError {
            return Wire.errorEnvelope(sequence: error.sequence != 0 ? error.sequence : sequence, error)
        } catch {
            return Wire.errorEnvelope(sequence: sequence, WireError(.internal, "\(error)"))
        }
    }

    static func wireStatus(_ status: LoopStatus) -> Wire.Status {
        var wire = Wire.Status()
        switch status.state {
        case .starting: wire.state = .starting
        case .running: wire.state = .running
        case .stopped: wire.state = .stopped
        case .finished: wire.state = .finished
        }
        wire.reason = status.reason
        wire.step = UInt64(status.step)
        wire.rejectedActions = UInt64(status.rejectedActions)
        wire.holdCommands = UInt64(status.holdCommands)
        wire.missedDeadlines = UInt64(status.missedDeadlines)
        wire.chunks = UInt64(status.chunks)
        wire.solverSteps = UInt32(status.solverSteps)
        return wire
    }
}

/// SIGINT (Ctrl-C) and SIGTERM as a flag that long-running commands poll, so they stop cleanly and print their
/// summary.
public enum Interrupt {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    /// Installs the handlers (idempotent).
    public static func install() {
        signal(SIGINT) { _ in Interrupt.flag = 1 }
        signal(SIGTERM) { _ in Interrupt.flag = 1 }
    }

    public static var requested: Bool { flag != 0 }
}
