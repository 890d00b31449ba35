/// A libzmq time limit in milliseconds, where libzmq's `-1` means "no limit".
///
/// Used for the linger period, the send and receive timeouts and ``ZMQPoller/poll(timeout:)``.
public enum ZMQTimeout: Hashable, Sendable {
    /// Wait without limit (libzmq's `-1`).
    case infinite
    /// Wait at most this many milliseconds; zero means do not wait.
    case milliseconds(Int)

    /// Do not wait.
    public static let zero = ZMQTimeout.milliseconds(0)

    /// Wait at most this many seconds.
    public static func seconds(_ seconds: Int) -> ZMQTimeout { .milliseconds(seconds * 1000) }

    /// The value libzmq expects: milliseconds, or `-1` for ``infinite``.
    var cMilliseconds: Int {
        switch self {
        case .infinite: return -1
        case .milliseconds(let milliseconds):
            precondition(milliseconds >= 0, "ZMQTimeout.milliseconds must not be negative (got \(milliseconds))")
            return milliseconds
        }
    }

    /// Reads libzmq's representation: any negative value means no limit.
    init(cMilliseconds: Int) {
        self = cMilliseconds < 0 ? .infinite : .milliseconds(cMilliseconds)
    }
}
