import CZeroMQ

/// A socket option with the Swift type of its value, for `ZMQSocket.setOption(_:_:)` and `ZMQSocket.option(_:)`.
///
/// `Value` selects how the value crosses to C: `Int32` and `Bool` as `int`, `Int64` as `int64_t`, ``ZMQTimeout`` as
/// an `int` of milliseconds with `-1` for no limit, `[UInt8]` as bytes, `String` as its UTF-8 bytes. Options libzmq
/// does not have here can be named directly: `ZMQSocketOption<Int32>(code: ZMQ_TOS, name: "ZMQ_TOS")`.
///
/// Most options apply to connections made after they are set, so set them before ``ZMQSocket/bind(_:)`` and
/// ``ZMQSocket/connect(_:)``. Some are write-only in libzmq 4.3.4 (reading them fails with `EINVAL`); their
/// documentation says so.
public struct ZMQSocketOption<Value>: Sendable {
    /// The libzmq option number, e.g. `ZMQ_LINGER`.
    public let code: Int32
    /// The libzmq option name, used in error messages.
    public let name: StaticString

    public init(code: Int32, name: StaticString) {
        self.code = code
        self.name = name
    }
}

extension ZMQSocketOption where Value == ZMQTimeout {
    /// How long closing the socket (and so terminating its context) waits to deliver unsent messages.
    /// ``ZMQSocket`` sets zero at creation, so nothing waits; libzmq's own default is ``ZMQTimeout/infinite``.
    public static var linger: Self { .init(code: ZMQ_LINGER, name: "ZMQ_LINGER") }
    /// How long a blocking send waits before it throws a timeout (``ZMQError/isTimeout``). Default: infinite.
    public static var sendTimeout: Self { .init(code: ZMQ_SNDTIMEO, name: "ZMQ_SNDTIMEO") }
    /// How long a blocking receive waits before it throws a timeout (``ZMQError/isTimeout``). Default: infinite.
    public static var receiveTimeout: Self { .init(code: ZMQ_RCVTIMEO, name: "ZMQ_RCVTIMEO") }
    /// How long to wait before reconnecting a lost or refused connection; ``ZMQTimeout/infinite`` never
    /// reconnects. Default: 100 ms.
    public static var reconnectInterval: Self { .init(code: ZMQ_RECONNECT_IVL, name: "ZMQ_RECONNECT_IVL") }
}

extension ZMQSocketOption where Value == Int32 {
    /// The most outbound messages queued per peer before sends block or drop (by socket type); 0 means no limit.
    /// Default: 1000.
    public static var sendHighWaterMark: Self { .init(code: ZMQ_SNDHWM, name: "ZMQ_SNDHWM") }
    /// The most inbound messages queued per peer before the peer is held back; 0 means no limit. Default: 1000.
    public static var receiveHighWaterMark: Self { .init(code: ZMQ_RCVHWM, name: "ZMQ_RCVHWM") }
    /// The security mechanism the socket's options select: `ZMQ_NULL` (0, none), `ZMQ_PLAIN` (1) or `ZMQ_CURVE` (2).
    /// Read-only; setting a CURVE option selects CURVE.
    public static var mechanism: Self { .init(code: ZMQ_MECHANISM, name: "ZMQ_MECHANISM") }
}

extension ZMQSocketOption where Value == Int64 {
    /// The largest inbound message in bytes; a peer that sends a larger one is disconnected. -1 (the default)
    /// means no limit.
    public static var maxMessageSize: Self { .init(code: ZMQ_MAXMSGSIZE, name: "ZMQ_MAXMSGSIZE") }
}

extension ZMQSocketOption where Value == Bool {
    /// Keep only the latest message: inbound and outbound queues hold one message, a new one replaces it. For
    /// state streams (SUB, PULL, DEALER, PUSH, PUB); single-frame messages only. Set before connecting.
    public static var conflate: Self { .init(code: ZMQ_CONFLATE, name: "ZMQ_CONFLATE") }
    /// Queue outbound messages only to completed connections, so sends block (or would block) while no peer is
    /// connected instead of filling queues for peers that may never come.
    public static var immediate: Self { .init(code: ZMQ_IMMEDIATE, name: "ZMQ_IMMEDIATE") }
    /// ROUTER: a send to an unknown routing id fails with `EHOSTUNREACH` instead of being dropped silently.
    /// Write-only.
    public static var routerMandatory: Self { .init(code: ZMQ_ROUTER_MANDATORY, name: "ZMQ_ROUTER_MANDATORY") }
    /// ROUTER: a new peer with a routing id already in use takes it over instead of being refused. Write-only.
    public static var routerHandover: Self { .init(code: ZMQ_ROUTER_HANDOVER, name: "ZMQ_ROUTER_HANDOVER") }
    /// REQ: match replies to requests, so a late reply to an abandoned request is dropped. Write-only.
    public static var requestCorrelate: Self { .init(code: ZMQ_REQ_CORRELATE, name: "ZMQ_REQ_CORRELATE") }
    /// REQ: allow a new request before the reply to the previous one arrived (with ``requestCorrelate``).
    /// Write-only.
    public static var requestRelaxed: Self { .init(code: ZMQ_REQ_RELAXED, name: "ZMQ_REQ_RELAXED") }
    /// Use IPv6 as well as IPv4 for `tcp://` endpoints.
    public static var ipv6: Self { .init(code: ZMQ_IPV6, name: "ZMQ_IPV6") }
    /// CURVE: act as the server of the handshake, which holds a secret key and authenticates every client through
    /// the context's ZAP handler (``ZAPHandler``). Independent of bind and connect, but set before either.
    public static var curveServer: Self { .init(code: ZMQ_CURVE_SERVER, name: "ZMQ_CURVE_SERVER") }
    /// Refuse a security handshake when no ZAP handler is bound in the context, instead of accepting every peer
    /// (libzmq's default, for compatibility). Part of libzmq's draft API: a library built without it refuses the
    /// option with `EINVAL`. Write-only.
    public static var zapEnforceDomain: Self { .init(code: ZMQ_ZAP_ENFORCE_DOMAIN, name: "ZMQ_ZAP_ENFORCE_DOMAIN") }
}

extension ZMQSocketOption where Value == [UInt8] {
    /// The routing id a ROUTER peer sees for this socket (1 to 255 bytes, not starting with a zero byte). Set before
    /// connecting; without one the ROUTER makes one up. Reads as empty when unset.
    public static var routingID: Self { .init(code: ZMQ_ROUTING_ID, name: "ZMQ_ROUTING_ID") }
}

// CURVE keys are given and read as 40 Z85 characters (see ``CurveKeyPair``). libzmq also takes them as 32 raw bytes,
// but reads them back only as Z85 (into exactly 41 bytes) or raw (exactly 32), which `ZMQSocket.option(_:)` handles.
extension ZMQSocketOption where Value == String {
    /// CURVE: this socket's long-term public key. Setting it (or any CURVE key) selects the CURVE mechanism.
    public static var curvePublicKey: Self { .init(code: ZMQ_CURVE_PUBLICKEY, name: "ZMQ_CURVE_PUBLICKEY") }
    /// CURVE: this socket's long-term secret key.
    public static var curveSecretKey: Self { .init(code: ZMQ_CURVE_SECRETKEY, name: "ZMQ_CURVE_SECRETKEY") }
    /// CURVE client: the public key of the server it connects to; setting it makes the socket a CURVE client.
    public static var curveServerKey: Self { .init(code: ZMQ_CURVE_SERVERKEY, name: "ZMQ_CURVE_SERVERKEY") }
    /// The ZAP domain a server socket's handshakes are authenticated in: the ``ZAPHandler`` chooses the allow-list
    /// by it. At most 255 bytes; empty by default.
    public static var zapDomain: Self { .init(code: ZMQ_ZAP_DOMAIN, name: "ZMQ_ZAP_DOMAIN") }
}
