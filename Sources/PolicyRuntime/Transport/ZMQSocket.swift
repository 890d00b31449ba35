import CZeroMQ

/// The ZeroMQ messaging patterns this runtime uses.
public enum ZMQSocketType: Hashable, Sendable, CaseIterable {
    /// `ZMQ_ROUTER`: receives each message prefixed with the sender's routing id; replies are routed by that id.
    case router
    /// `ZMQ_DEALER`: asynchronous request side of ROUTER; round-robins sends, fair-queues receives.
    case dealer
    /// `ZMQ_REQ`: strict send-then-receive client.
    case request
    /// `ZMQ_REP`: strict receive-then-send server.
    case reply
    /// `ZMQ_PUB`: sends to every subscriber whose subscription matches; never blocks (drops at the high-water mark).
    case publish
    /// `ZMQ_SUB`: receives what it subscribed to (nothing until ``ZMQSocket/subscribe(_:)-([UInt8])``).
    case subscribe
    /// `ZMQ_PUSH`: pipeline output, round-robin to connected PULL sockets.
    case push
    /// `ZMQ_PULL`: pipeline input, fair-queued from connected PUSH sockets.
    case pull
    /// `ZMQ_PAIR`: exclusive link between two sockets.
    case pair

    /// The libzmq constant, e.g. `ZMQ_ROUTER`.
    var cValue: Int32 {
        switch self {
        case .router: return ZMQ_ROUTER
        case .dealer: return ZMQ_DEALER
        case .request: return ZMQ_REQ
        case .reply: return ZMQ_REP
        case .publish: return ZMQ_PUB
        case .subscribe: return ZMQ_SUB
        case .push: return ZMQ_PUSH
        case .pull: return ZMQ_PULL
        case .pair: return ZMQ_PAIR
        }
    }

    /// libzmq's name for the type, e.g. `"ROUTER"`; used in error messages.
    public var name: String {
        switch self {
        case .router: return "ROUTER"
        case .dealer: return "DEALER"
        case .request: return "REQ"
        case .reply: return "REP"
        case .publish: return "PUB"
        case .subscribe: return "SUB"
        case .push: return "PUSH"
        case .pull: return "PULL"
        case .pair: return "PAIR"
        }
    }
}

/// A ZeroMQ socket: endpoints, options, and (in `ZMQSocket+Messages.swift`) sending and receiving.
///
/// A libzmq socket is not thread-safe, so neither is this class: use it from one thread at a time (handing it to
/// another thread is fine with a synchronizing hand-over). It keeps its ``context`` alive, sets a linger of zero at
/// creation so that closing never waits for unsent messages, and closes the socket in ``close()`` or, at the
/// latest, in `deinit`.
///
/// Every operation on a closed socket throws `ENOTSOCK`.
///
/// The corresponding C function is `zmq_socket`.
public final class ZMQSocket {
    /// The context this socket belongs to; kept alive at least as long as the socket.
    public let context: ZMQContext
    /// The socket's messaging pattern.
    public let type: ZMQSocketType
    /// The libzmq socket, or `nil` once closed.
    private var handle: UnsafeMutableRawPointer?
    /// What the socket's configuration relies on, kept alive as long as the socket: the ``ZAPHandler`` of a CURVE
    /// server socket (``SocketSecurity/apply(to:)``), so that it cannot stop while the socket takes connections.
    var dependencies: [AnyObject] = []

    /// Creates a socket of `type` in `context`, with ``ZMQSocketOption/linger`` set to zero.
    ///
    /// The corresponding C function is `zmq_socket`.
    public init(_ type: ZMQSocketType, context: ZMQContext) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, type.cValue) else {
            throw ZMQError(code: zmq_errno(), operation: "zmq_socket", subject: type.name)
        }
        self.context = context
        self.type = type
        self.handle = handle
        // libzmq's default linger is infinite: a socket with unsent messages to an absent peer would make
        // `zmq_ctx_term`, and so the release of the context and the exit of the process, wait forever.
        try setOption(.linger, .zero)  // On failure `deinit` closes the socket.
    }

    deinit {
        close()
    }

    /// Closes the socket now. Unsent messages are dropped unless ``ZMQSocketOption/linger`` was raised, in which case
    /// the context keeps delivering them in the background. Idempotent.
    ///
    /// The corresponding C function is `zmq_close`.
    public func close() {
        guard let handle else { return }
        self.handle = nil
        // The only documented failure is ENOTSOCK for an invalid socket, which ownership rules out.
        zmq_close(handle)
    }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { handle == nil }

    /// The libzmq socket for a call, or `ENOTSOCK` if the socket was closed.
    @inline(__always)
    func openHandle(_ operation: StaticString) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let handle else {
            throw ZMQError(code: ENOTSOCK, operation: operation.description, subject: "\(type.name), closed")
        }
        return handle
    }

    // MARK: Endpoints

    /// Accepts connections on `endpoint`, e.g. `tcp://127.0.0.1:5555`, `tcp://*:*` (any interface, a free port; read
    /// the port from ``lastEndpoint``), `ipc:///tmp/robot.sock` or `inproc://name`.
    ///
    /// The corresponding C function is `zmq_bind`.
    public func bind(_ endpoint: String) throws(ZMQError) {
        let socket = try openHandle("zmq_bind")
        try Self.checkTCPPort(in: endpoint, operation: "zmq_bind")
        try zmqCheck("zmq_bind", subject: endpoint) { zmq_bind(socket, endpoint) }
    }

    /// Connects to `endpoint`. For `tcp://` the connection is made (and remade) in the background, so a host that
    /// does not answer is not an error here; a malformed endpoint is.
    ///
    /// The corresponding C function is `zmq_connect`.
    public func connect(_ endpoint: String) throws(ZMQError) {
        let socket = try openHandle("zmq_connect")
        try Self.checkTCPPort(in: endpoint, operation: "zmq_connect")
        try zmqCheck("zmq_connect", subject: endpoint) { zmq_connect(socket, endpoint) }
    }

    /// Stops accepting connections on `endpoint`, which must be spelled as bound; for a wildcard bind use the
    /// resolved ``lastEndpoint``. Throws `ENOENT` if it is not bound.
    ///
    /// The corresponding C function is `zmq_unbind`.
    public func unbind(_ endpoint: String) throws(ZMQError) {
        let socket = try openHandle("zmq_unbind")
        try zmqCheck("zmq_unbind", subject: endpoint) { zmq_unbind(socket, endpoint) }
    }

    /// Drops the connection to `endpoint` and its queued messages. Throws `ENOENT` if it is not connected.
    ///
    /// The corresponding C function is `zmq_disconnect`.
    public func disconnect(_ endpoint: String) throws(ZMQError) {
        let socket = try openHandle("zmq_disconnect")
        try zmqCheck("zmq_disconnect", subject: endpoint) { zmq_disconnect(socket, endpoint) }
    }

    /// The endpoint of the last bind or connect, with wildcards resolved (`tcp://127.0.0.1:*` reads as
    /// `tcp://127.0.0.1:41327`), or `nil` if there was none.
    ///
    /// The corresponding C function is `zmq_getsockopt` with `ZMQ_LAST_ENDPOINT`.
    public var lastEndpoint: String? {
        get throws(ZMQError) {
            let socket = try openHandle("zmq_getsockopt")
            // The longest endpoint libzmq accepts is well below this (an IPC path is at most 107 bytes).
            return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { (buffer) throws(ZMQError) in
                var size = buffer.count
                try zmqCheck("zmq_getsockopt", subject: "ZMQ_LAST_ENDPOINT") {
                    zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, buffer.baseAddress, &size)
                }
                // `size` counts the terminating zero byte; an empty string means nothing was bound or connected.
                let endpoint = UnsafeBufferPointer(rebasing: buffer.prefix(max(size - 1, 0)))
                return endpoint.isEmpty ? nil : String(decoding: endpoint, as: UTF8.self)
            }
        }
    }

    /// libzmq 4.3.4 parses a TCP port with `strtoul` and keeps the low 16 bits, so `tcp://127.0.0.1:99999` binds
    /// port 34463 and a negative port binds some other port, without an error. Refuse such endpoints instead.
    private static func checkTCPPort(in endpoint: String, operation: StaticString) throws(ZMQError) {
        guard endpoint.hasPrefix("tcp://") else { return }
        let address = endpoint.dropFirst("tcp://".count)
        // Without a port separator the endpoint is malformed in a way libzmq reports itself (EINVAL).
        guard let colon = address.lastIndex(of: ":") else { return }
        let port = address[address.index(after: colon)...]
        if port == "*" { return }
        if !port.isEmpty, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber), let value = Int(port),
            value <= Int(UInt16.max)
        {
            return
        }
        throw ZMQError(
            code: EINVAL, operation: operation.description,
            subject: "\(endpoint): the port must be * or a number from 0 to 65535")
    }

    // MARK: Options

    /// Sets a millisecond option; ``ZMQTimeout/infinite`` is libzmq's `-1`.
    ///
    /// The corresponding C function is `zmq_setsockopt`.
    public func setOption(_ option: ZMQSocketOption<ZMQTimeout>, _ value: ZMQTimeout) throws(ZMQError) {
        try setOption(
            ZMQSocketOption<Int32>(code: option.code, name: option.name), Int32(clamping: value.cMilliseconds))
    }

    /// Sets an `int` option.
    ///
    /// The corresponding C function is `zmq_setsockopt`.
    public func setOption(_ option: ZMQSocketOption<Int32>, _ value: Int32) throws(ZMQError) {
        var value = value
        try setRawOption(option.code, option.name, &value, MemoryLayout<Int32>.size)
    }

    /// Sets an `int64_t` option.
    ///
    /// The corresponding C function is `zmq_setsockopt`.
    public func setOption(_ option: ZMQSocketOption<Int64>, _ value: Int64) throws(ZMQError) {
        var value = value
        try setRawOption(option.code, option.name, &value, MemoryLayout<Int64>.size)
    }

    /// Sets a boolean (`int` 0 or 1) option.
    ///
    /// The corresponding C function is `zmq_setsockopt`.
    public func setOption(_ option: ZMQSocketOption<Bool>, _ value: Bool) throws(ZMQError) {
        try setOption(ZMQSocketOption<Int32>(code: option.code, name: option.name), value ? 1 : 0)
    }

    /// Sets a binary option.
    ///
    /// The corresponding C function is `zmq_setsockopt`.
    public func setOption(_ option: ZMQSocketOption<[UInt8]>, _ value: [UInt8]) throws(ZMQError) {
        try value.withUnsafeBufferPointer { (bytes) throws(ZMQError) in
            try setRawOption(option.code, option.name, bytes.baseAddress, bytes.count)
        }
    }

    /// Sets a text option, passed as its UTF-8 bytes without a terminating zero (libzmq takes the length). A CURVE
    /// key is 40 Z85 characters.
    ///
    /// The corresponding C function is `zmq_setsockopt`.
    public func setOption(_ option: ZMQSocketOption<String>, _ value: String) throws(ZMQError) {
        try setOption(ZMQSocketOption<[UInt8]>(code: option.code, name: option.name), Array(value.utf8))
    }

    /// Reads a millisecond option.
    ///
    /// The corresponding C function is `zmq_getsockopt`.
    public func option(_ option: ZMQSocketOption<ZMQTimeout>) throws(ZMQError) -> ZMQTimeout {
        ZMQTimeout(cMilliseconds: Int(try self.option(ZMQSocketOption<Int32>(code: option.code, name: option.name))))
    }

    /// Reads an `int` option.
    ///
    /// The corresponding C function is `zmq_getsockopt`.
    public func option(_ option: ZMQSocketOption<Int32>) throws(ZMQError) -> Int32 {
        var value: Int32 = 0
        try getRawOption(option.code, option.name, &value, MemoryLayout<Int32>.size)
        return value
    }

    /// Reads an `int64_t` option.
    ///
    /// The corresponding C function is `zmq_getsockopt`.
    public func option(_ option: ZMQSocketOption<Int64>) throws(ZMQError) -> Int64 {
        var value: Int64 = 0
        try getRawOption(option.code, option.name, &value, MemoryLayout<Int64>.size)
        return value
    }

    /// Reads a boolean option; write-only ones throw `EINVAL`.
    ///
    /// The corresponding C function is `zmq_getsockopt`.
    public func option(_ option: ZMQSocketOption<Bool>) throws(ZMQError) -> Bool {
        try self.option(ZMQSocketOption<Int32>(code: option.code, name: option.name)) != 0
    }

    /// Reads a binary option of at most 255 bytes (the limit for routing ids).
    ///
    /// The corresponding C function is `zmq_getsockopt`.
    public func option(_ option: ZMQSocketOption<[UInt8]>) throws(ZMQError) -> [UInt8] {
        var value = [UInt8](repeating: 0, count: 255)
        let size = try value.withUnsafeMutableBufferPointer { (bytes) throws(ZMQError) in
            try getRawOption(option.code, option.name, bytes.baseAddress!, bytes.count)
        }
        value.removeSubrange(size...)
        return value
    }

    /// Reads a text option; CURVE keys read as 40 Z85 characters.
    ///
    /// The corresponding C function is `zmq_getsockopt`.
    public func option(_ option: ZMQSocketOption<String>) throws(ZMQError) -> String {
        // libzmq returns a CURVE key as Z85 only when given exactly 41 bytes (40 characters and the terminating
        // zero), and refuses any other size but 32 (raw); other text options need room for the text and its zero.
        let isCurveKey = [ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY, ZMQ_CURVE_SERVERKEY].contains(option.code)
        var value = [UInt8](repeating: 0, count: isCurveKey ? 41 : 256)
        let size = try value.withUnsafeMutableBufferPointer { (bytes) throws(ZMQError) in
            try getRawOption(option.code, option.name, bytes.baseAddress!, bytes.count)
        }
        // `size` counts the terminating zero.
        return String(decoding: value.prefix(max(size - 1, 0)), as: UTF8.self)
    }

    /// Subscribes a SUB socket to messages whose first frame starts with `prefix`; the empty prefix matches all.
    /// Subscriptions made after connecting reach the publisher asynchronously, so the first messages after this
    /// call may still be missed.
    ///
    /// The corresponding C function is `zmq_setsockopt` with `ZMQ_SUBSCRIBE`.
    public func subscribe(_ prefix: [UInt8] = []) throws(ZMQError) {
        try setOption(ZMQSocketOption<[UInt8]>(code: ZMQ_SUBSCRIBE, name: "ZMQ_SUBSCRIBE"), prefix)
    }

    /// Subscribes a SUB socket to messages whose first frame starts with the UTF-8 bytes of `prefix`.
    ///
    /// The corresponding C function is `zmq_setsockopt` with `ZMQ_SUBSCRIBE`.
    public func subscribe(_ prefix: String) throws(ZMQError) {
        try subscribe(Array(prefix.utf8))
    }

    /// Removes one earlier ``subscribe(_:)-([UInt8])`` of the same prefix.
    ///
    /// The corresponding C function is `zmq_setsockopt` with `ZMQ_UNSUBSCRIBE`.
    public func unsubscribe(_ prefix: [UInt8] = []) throws(ZMQError) {
        try setOption(ZMQSocketOption<[UInt8]>(code: ZMQ_UNSUBSCRIBE, name: "ZMQ_UNSUBSCRIBE"), prefix)
    }

    /// Removes one earlier ``subscribe(_:)-(String)`` of the same prefix.
    ///
    /// The corresponding C function is `zmq_setsockopt` with `ZMQ_UNSUBSCRIBE`.
    public func unsubscribe(_ prefix: String) throws(ZMQError) {
        try unsubscribe(Array(prefix.utf8))
    }

    /// Whether the last frame received is followed by more frames of the same message.
    ///
    /// The corresponding C function is `zmq_getsockopt` with `ZMQ_RCVMORE`.
    public var hasMoreFrames: Bool {
        get throws(ZMQError) {
            try option(ZMQSocketOption<Int32>(code: ZMQ_RCVMORE, name: "ZMQ_RCVMORE")) != 0
        }
    }

    private func setRawOption(_ code: Int32, _ name: StaticString, _ value: UnsafeRawPointer?, _ size: Int)
        throws(ZMQError)
    {
        let socket = try openHandle("zmq_setsockopt")
        try zmqCheck("zmq_setsockopt", subject: "\(name) on \(type.name)") {
            zmq_setsockopt(socket, code, value, size)
        }
    }

    /// Reads an option into `value` (of `capacity` bytes) and returns the size libzmq reported.
    @discardableResult
    private func getRawOption(_ code: Int32, _ name: StaticString, _ value: UnsafeMutableRawPointer, _ capacity: Int)
        throws(ZMQError) -> Int
    {
        let socket = try openHandle("zmq_getsockopt")
        var size = capacity
        try zmqCheck("zmq_getsockopt", subject: "\(name) on \(type.name)") {
            zmq_getsockopt(socket, code, value, &size)
        }
        return size
    }
}
