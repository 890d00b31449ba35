import CZeroMQ

/// A ZeroMQ context: the I/O threads and the `inproc://` namespace that its sockets share.
///
/// Every ``ZMQSocket`` keeps its context alive, so the context is terminated (`zmq_ctx_term`) in `deinit` only after
/// all of its sockets are closed and released. Sockets are created with a linger of zero, so termination does not
/// wait for unsent messages unless a socket's ``ZMQSocketOption/linger`` was raised.
///
/// A libzmq context is thread-safe, so this class is `Sendable`: several threads may create their own sockets on
/// one context, and ``shutdown()`` may be called from any thread.
///
/// The corresponding C function is `zmq_ctx_new`.
public final class ZMQContext: @unchecked Sendable {
    // `@unchecked`: the only state is the context pointer, which libzmq documents as safe to use from any thread.
    let handle: UnsafeMutableRawPointer

    /// Creates a context with `ioThreads` background I/O threads (libzmq's default is one, enough for about a
    /// gigabyte per second; `inproc://` traffic uses none).
    ///
    /// The corresponding C functions are `zmq_ctx_new` and `zmq_ctx_set` with `ZMQ_IO_THREADS`.
    public init(ioThreads: Int = 1) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else {
            throw ZMQError(code: zmq_errno(), operation: "zmq_ctx_new")
        }
        self.handle = handle
        // On failure `deinit` terminates the context.
        try zmqCheck("zmq_ctx_set", subject: "ZMQ_IO_THREADS = \(ioThreads)") {
            zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(clamping: ioThreads))
        }
    }

    /// The number of I/O threads, as set at creation.
    ///
    /// The corresponding C function is `zmq_ctx_get` with `ZMQ_IO_THREADS`.
    public var ioThreads: Int { Int(zmq_ctx_get(handle, ZMQ_IO_THREADS)) }

    /// Shuts the context down without terminating it: every blocking call on its sockets, in any thread, returns
    /// at once with `ETERM` (``ZMQError/isContextTerminated``), as does every later call except closing. Idempotent.
    ///
    /// Use it to stop threads that are blocked in ``ZMQSocket/receive(flags:)`` or ``ZMQPoller/poll(timeout:)``;
    /// they should then close their sockets, after which the context can be released.
    ///
    /// The corresponding C function is `zmq_ctx_shutdown`.
    public func shutdown() {
        // The only documented failure is EFAULT for an invalid context, which ownership rules out.
        let result = zmq_ctx_shutdown(handle)
        precondition(result == 0, "zmq_ctx_shutdown failed: errno \(zmq_errno())")
    }

    deinit {
        // All sockets hold a reference to this context, so they are closed by now and `zmq_ctx_term` only waits
        // for messages held back by a socket whose linger was raised. EINTR interrupts the wait; wait again.
        while zmq_ctx_term(handle) == -1 && zmq_errno() == EINTR {}
    }

    /// The version of the libzmq library loaded at run time, e.g. `(4, 3, 4)`.
    ///
    /// The corresponding C function is `zmq_version`.
    public static var libraryVersion: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }
}
