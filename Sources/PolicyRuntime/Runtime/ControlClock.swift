import Foundation

/// The time source of the control loop, injected so that tests drive time without sleeping.
///
/// Times are nanoseconds on one monotonic timeline. The loop only asks for the time and sleeps until absolute
/// deadlines (`start + k * period`), so a late wake-up never shifts the deadlines after it.
public protocol ControlClock: AnyObject {
    /// The current time in nanoseconds.
    func now() -> UInt64
    /// Returns at `deadline` or soon after (at once if it has passed).
    func sleep(until deadline: UInt64)
}

/// `CLOCK_MONOTONIC`, sleeping with `clock_nanosleep(TIMER_ABSTIME)`, so the wake-up is bound to the absolute deadline
/// rather than to a duration computed a moment before (which would add the computation's own delay).
///
/// The corresponding C functions are `clock_gettime` and `clock_nanosleep` with `CLOCK_MONOTONIC`.
public final class MonotonicClock: ControlClock {
    /// Sleep until this long before the deadline, then spin on the clock (0: never spin). Spinning trades a
    /// busy core for a tighter wake-up than the scheduler's timer slack gives.
    public let spinNanoseconds: UInt64

    public init(spinNanoseconds: UInt64 = 0) {
        self.spinNanoseconds = spinNanoseconds
    }

    public func now() -> UInt64 { monotonicNanoseconds() }

    public func sleep(until deadline: UInt64) {
        let wake = deadline > spinNanoseconds ? deadline - spinNanoseconds : 0
        var target = timespec(tv_sec: Int(wake / 1_000_000_000), tv_nsec: Int(wake % 1_000_000_000))
        // EINTR (a signal) returns early; sleep again towards the same absolute time.
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, nil) == EINTR {}
        if spinNanoseconds > 0 {
            while monotonicNanoseconds() < deadline {}
        }
    }
}

/// A clock that moves only when told to: `sleep(until:)` jumps to the deadline at once, and `advance(by:)` adds
/// delays (a slow tick, a late wake-up). For tests.
public final class ManualClock: ControlClock, @unchecked Sendable {
    // `@unchecked`: the time is guarded by `lock`, so tests may read it from another thread.
    private let lock = NSLock()
    private var time: UInt64

    public init(start: UInt64 = 1_000_000_000) {
        time = start
    }

    public func now() -> UInt64 { lock.withLock { time } }

    public func sleep(until deadline: UInt64) {
        lock.withLock { time = max(time, deadline) }
    }

    public func advance(by nanoseconds: UInt64) {
        lock.withLock { time += nanoseconds }
    }
}

/// Asks the kernel for real-time scheduling (`SCHED_FIFO`) and locked memory for the calling thread, where allowed.
/// Returns what was obtained, for the report; failures (no `CAP_SYS_NICE`, a container's limits) are not errors.
///
/// The corresponding C functions are `pthread_setschedparam` and `mlockall`.
public func requestRealTimeScheduling(priority: Int32 = 80) -> String {
    var parameters = sched_param()
    parameters.sched_priority = priority
    let scheduling = pthread_setschedparam(pthread_self(), SCHED_FIFO, &parameters) == 0
        ? "SCHED_FIFO priority \(priority)" : "SCHED_OTHER (SCHED_FIFO not permitted)"
    let locked = mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? "memory locked" : "memory not locked"
    return "\(scheduling), \(locked)"
}

/// Sets the calling thread's timer slack to 1 ns (Linux's default of 50 µs lets the kernel fire a normal thread's
/// timer up to that late, to batch wake-ups) by writing `/proc/<tid>/timerslack_ns`; the thread id is read from the
/// `/proc/thread-self` link (`<pid>/task/<tid>`). Returns whether it took. Real-time threads have no slack anyway.
@discardableResult
public func minimizeTimerSlack() -> Bool {
    var link = [CChar](repeating: 0, count: 64)
    let length = readlink("/proc/thread-self", &link, link.count - 1)
    guard length > 0, let tid = String(decoding: link[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        .split(separator: "/").last.flatMap({ Int($0) }),
        let file = fopen("/proc/\(tid)/timerslack_ns", "w")
    else { return false }
    let written = fputs("1", file) >= 0
    return fclose(file) == 0 && written
}
