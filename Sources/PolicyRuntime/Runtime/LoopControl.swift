import Foundation

/// Where the control loop is.
public enum LoopState: String, Codable, Sendable {
    /// Waiting for the first state or the first chunk of an episode; commands HOLD.
    case starting
    /// Commanding the policy's actions.
    case running
    /// Stopped by a stop request or by the watchdog; commands HOLD until resumed.
    case stopped
    /// The loop has ended.
    case finished
}

/// The loop's status as other threads see it (the control socket, a progress line).
public struct LoopStatus: Sendable, Equatable {
    public var state = LoopState.starting
    /// Why the loop stopped (a static description), when it did.
    public var reason = ""
    /// The watchdog stopped the loop (a stale state, a missed deadline, a failed policy, an overrun): resuming
    /// needs the operator's explicit confirmation.
    public var stoppedByWatchdog = false
    public var step = 0
    public var rejectedActions = 0
    public var holdCommands = 0
    public var missedDeadlines = 0
    public var chunks = 0
    public var solverSteps = 0

    public init() {}
}

/// Stop, resume and end requests for a running control loop, and its status, shared between threads.
///
/// Requests are taken by the loop at its next tick. The watchdog and a stop request both leave the loop stopped:
/// it keeps running and commanding HOLD (so the robot holds and sees a live controller) until `resume()`; after a
/// watchdog stop, only `resume(overrideWatchdog: true)` restarts it (the operator has seen why it stopped).
public final class LoopControl: @unchecked Sendable {
    // `@unchecked`: every field is guarded by `lock`.
    private let lock = NSLock()
    private var stopReason: String?
    private var resumeRequested = false
    private var overrideWatchdog = false
    private var endRequested = false
    private var current = LoopStatus()

    public init() {}

    public func stop(reason: String = "stop requested") {
        lock.withLock {
            stopReason = reason
            resumeRequested = false
        }
    }

    public func resume(overrideWatchdog: Bool = false) {
        lock.withLock {
            resumeRequested = true
            self.overrideWatchdog = overrideWatchdog
            stopReason = nil
        }
    }

    /// Ends the loop after its current tick.
    public func end() { lock.withLock { endRequested = true } }

    public var status: LoopStatus { lock.withLock { current } }

    /// The loop's side: takes the pending requests and publishes the status.
    func exchange(_ status: LoopStatus) -> (stop: String?, resume: Bool, overrideWatchdog: Bool, end: Bool) {
        lock.withLock {
            current = status
            defer {
                stopReason = nil
                resumeRequested = false
                overrideWatchdog = false
            }
            return (stopReason, resumeRequested, overrideWatchdog, endRequested)
        }
    }
}
