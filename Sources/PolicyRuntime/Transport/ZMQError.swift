import CZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failed libzmq call: the `errno` it reported, libzmq's text for it, the C function and what it was applied to.
///
/// libzmq reports failures as `-1` (or `NULL`) and leaves the reason in `errno`; ``zmqCall(_:subject:mode:_:)``
/// turns that into this error once, so no code is lost on the way to the caller. `EAGAIN` is special: for a call
/// made with ``ZMQSendFlags/dontWait`` or ``ZMQReceiveFlags/dontWait`` it is not an error at all (the call returns
/// `nil` or `false`), and for a blocking send or receive it means the socket's send or receive timeout expired,
/// which surfaces here with ``isTimeout`` set and ``code`` still `EAGAIN`.
public struct ZMQError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The `errno` value libzmq reported, e.g. `EAGAIN`, `EINVAL`, `EHOSTUNREACH` or libzmq's own `ETERM`.
    public let code: Int32
    /// libzmq's text for ``code``, as returned by `zmq_strerror`.
    public let message: String
    /// The libzmq function that failed, e.g. `"zmq_connect"`.
    public let operation: String
    /// What the operation was applied to, when that helps: the endpoint, the option name, the socket type.
    public let subject: String?
    /// Whether a blocking send or receive gave up because the socket's timeout expired (``code`` is `EAGAIN`).
    public let isTimeout: Bool

    /// Creates an error for `code`, taking the message from `zmq_strerror`.
    public init(code: Int32, operation: String, subject: String? = nil, isTimeout: Bool = false) {
        self.code = code
        self.message = String(cString: zmq_strerror(code))
        self.operation = operation
        self.subject = subject
        self.isTimeout = isTimeout
    }

    /// Whether libzmq reported `EAGAIN`: the operation could not complete now (non-blocking) or in time (timeout).
    public var isWouldBlock: Bool { code == EAGAIN }

    /// Whether the socket's context was shut down or terminated (`ETERM`); the socket should be closed.
    public var isContextTerminated: Bool { code == ETERM }

    /// The symbolic name of ``code`` (`"EAGAIN"`), or `nil` for codes this wrapper does not name.
    public var codeName: String? { Self.codeNames[code] }

    public var description: String {
        let target = subject.map { "(\($0))" } ?? ""
        let outcome = isTimeout ? "timed out" : "failed"
        let name = codeName.map { "\($0), " } ?? ""
        return "\(operation)\(target) \(outcome): \(message) (\(name)errno \(code))"
    }

    private static let codeNames: [Int32: String] = [
        EAGAIN: "EAGAIN", EINTR: "EINTR", EINVAL: "EINVAL", EFAULT: "EFAULT", ENOMEM: "ENOMEM", ENODEV: "ENODEV",
        ENOENT: "ENOENT", EMFILE: "EMFILE", ENOTSUP: "ENOTSUP", EPROTONOSUPPORT: "EPROTONOSUPPORT",
        ENOBUFS: "ENOBUFS", EADDRINUSE: "EADDRINUSE", EADDRNOTAVAIL: "EADDRNOTAVAIL", ECONNREFUSED: "ECONNREFUSED",
        ENOTSOCK: "ENOTSOCK", EMSGSIZE: "EMSGSIZE", EHOSTUNREACH: "EHOSTUNREACH", ENOTCONN: "ENOTCONN",
        ETIMEDOUT: "ETIMEDOUT", EFSM: "EFSM", ENOCOMPATPROTO: "ENOCOMPATPROTO", ETERM: "ETERM", EMTHREAD: "EMTHREAD",
    ]
}

/// How ``zmqCall(_:subject:mode:_:)`` treats `EAGAIN`.
enum ZMQCallMode {
    /// `EAGAIN` is a failure like any other (binding, options).
    case plain
    /// The call was made with `ZMQ_DONTWAIT`: `EAGAIN` means "would block" and the helper returns `nil`.
    case nonBlocking
    /// The call may block up to the socket's timeout: `EAGAIN` means the timeout expired and is thrown as a timeout.
    case blocking
}

/// Calls a libzmq function that returns `-1` on failure and turns the failure into a ``ZMQError``.
///
/// Modelled on swift-nio's `syscall(blocking:)`: a call interrupted by a signal (`EINTR`) is retried (for a
/// blocking call this restarts its timeout); `EAGAIN` is "would block" for a non-blocking call (`nil` is returned)
/// and a timeout for a blocking one; every other code is thrown with the operation and its subject. The subject
/// is only evaluated on failure, so the success path does not allocate.
@inline(__always)
func zmqCall(
    _ operation: StaticString, subject: @autoclosure () -> String? = nil, mode: ZMQCallMode = .plain,
    _ body: () -> Int32
) throws(ZMQError) -> Int32? {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = zmq_errno()
        switch (code, mode) {
        case (EINTR, _):
            continue
        case (EAGAIN, .nonBlocking):
            return nil
        default:
            throw ZMQError(
                code: code, operation: operation.description, subject: subject(),
                isTimeout: code == EAGAIN && mode == .blocking)
        }
    }
}

/// ``zmqCall(_:subject:mode:_:)`` for calls where `EAGAIN` cannot mean "would block": returns the result.
@inline(__always)
@discardableResult
func zmqCheck(_ operation: StaticString, subject: @autoclosure () -> String? = nil, _ body: () -> Int32)
    throws(ZMQError) -> Int32
{
    // A `.plain` call never returns nil.
    try zmqCall(operation, subject: subject(), mode: .plain, body)!
}
