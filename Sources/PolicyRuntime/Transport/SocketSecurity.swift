import CZeroMQ

/// How a socket secures its connections: not at all, or with CURVE (ZeroMQ RFC 26) as server or client.
///
/// CURVE encrypts every connection and authenticates both ends by their long-term key pairs (``CurveKeyPair``). The
/// server role is independent of who binds, but the binding side is the natural server: it has one key pair its
/// clients know, and an allow-list of their public keys, checked by the context's ``ZAPHandler``. A client knows the
/// server's public key and presents its own key pair. A client whose key is not on the allow-list, a client with the
/// wrong server key and a client without CURVE never complete a connection: they see nothing, and neither does the
/// server (see ``ZAPHandler``).
///
/// Apply it to a socket after creating it and before ``ZMQSocket/bind(_:)`` or ``ZMQSocket/connect(_:)``:
///
/// ```swift
/// let security = try SocketSecurity.client(keyPair: myKeys, serverPublicKey: serverKey)
/// let dealer = try ZMQSocket(.dealer, context: context)
/// try security.apply(to: dealer)
/// try dealer.connect("tcp://robot:5555")
/// ```
public struct SocketSecurity: Sendable, CustomStringConvertible {
    /// The socket's part in the CURVE handshake.
    public enum Role: Sendable {
        /// No security: ZeroMQ's NULL mechanism, plain text and anyone may connect.
        case none
        /// CURVE server with `keyPair`; clients are let in by `authentication`'s allow-list of `domain`.
        case server(keyPair: CurveKeyPair, authentication: ZAPHandler, domain: String)
        /// CURVE client with `keyPair`, connecting to the server whose public key is `serverPublicKey`.
        case client(keyPair: CurveKeyPair, serverPublicKey: String)
    }

    /// What ``apply(to:)`` sets up.
    public let role: Role

    /// No security (ZeroMQ's default): plain text, and anyone who reaches the endpoint may connect.
    public static let none = SocketSecurity(role: .none)

    /// A CURVE server with `keyPair`, letting in the clients on the allow-list `authentication` keeps for `domain`.
    /// `authentication` must run in the context of the sockets this is applied to.
    public static func server(
        keyPair: CurveKeyPair, authentication: ZAPHandler, domain: String = ZAPHandler.defaultDomain
    ) -> SocketSecurity {
        SocketSecurity(role: .server(keyPair: keyPair, authentication: authentication, domain: domain))
    }

    /// A CURVE client with `keyPair` of the server whose public key (Z85) is `serverPublicKey`. Throws if that is
    /// not 40 Z85 characters.
    public static func client(keyPair: CurveKeyPair, serverPublicKey: String) throws(CurveError) -> SocketSecurity {
        try CurveKeyPair.validate(serverPublicKey, role: "server public key")
        return SocketSecurity(role: .client(keyPair: keyPair, serverPublicKey: serverPublicKey))
    }

    public var description: String {
        switch role {
        case .none: return "no security (plain text, anyone may connect)"
        case .server(let keyPair, let authentication, let domain):
            let count = authentication.allowList(domain: domain).count
            return "CURVE server \(keyPair.publicKey), \(count) allowed client key\(count == 1 ? "" : "s")"
        case .client(let keyPair, let serverPublicKey):
            return "CURVE client \(keyPair.publicKey) of server \(serverPublicKey)"
        }
    }

    /// Sets `socket` up for this security: for a server `ZMQ_ZAP_DOMAIN`, `ZMQ_ZAP_ENFORCE_DOMAIN` (when libzmq has
    /// it), `ZMQ_CURVE_SERVER` and its keys; for a client `ZMQ_CURVE_SERVERKEY` and its keys; nothing for ``none``.
    ///
    /// A server socket keeps its ZAP handler alive (stopping it explicitly is still possible; close the socket first).
    ///
    /// Throws ``CurveError`` if the socket was bound or connected already (options apply to later connections only),
    /// or, for a server, if `authentication` runs in another context than the socket's, was stopped, or has no
    /// allow-list for the domain: libzmq would then let every client in, or none. Throws ``ZMQError`` if libzmq
    /// refuses an option.
    ///
    /// The corresponding C function is `zmq_setsockopt`.
    public func apply(to socket: ZMQSocket) throws {
        if let endpoint = try socket.lastEndpoint {
            throw CurveError(
                "security must be set before bind or connect, but the \(socket.type.name) socket is at \(endpoint) "
                    + "already")
        }
        switch role {
        case .none:
            return
        case .server(let keyPair, let authentication, let domain):
            guard authentication.context === socket.context else {
                throw CurveError(
                    "the ZAP handler runs in another context than the \(socket.type.name) socket; libzmq asks only "
                        + "the handler of the socket's own context, so start it there")
            }
            guard authentication.isRunning else {
                throw CurveError("the ZAP handler was stopped; a CURVE server socket needs a running one")
            }
            guard authentication.domains.contains(domain) else {
                throw CurveError("the ZAP handler has no allow-list for domain \"\(domain)\"")
            }
            try socket.setOption(.zapDomain, domain)
            if Self.handlerAbsenceRefusesClients { try socket.setOption(.zapEnforceDomain, true) }
            try socket.setOption(.curveServer, true)
            try socket.setOption(.curveSecretKey, keyPair.secretKey)
            try socket.setOption(.curvePublicKey, keyPair.publicKey)
            // A handler released while the socket still takes connections would stop, leaving it without one.
            socket.dependencies.append(authentication)
        case .client(let keyPair, let serverPublicKey):
            try socket.setOption(.curveServerKey, serverPublicKey)
            try socket.setOption(.curvePublicKey, keyPair.publicKey)
            try socket.setOption(.curveSecretKey, keyPair.secretKey)
        }
    }

    /// Whether a CURVE server socket refuses every client while no ZAP handler runs in its context (because the
    /// handler was stopped before the socket was closed). libzmq's default is to let every client in then; the
    /// option that turns this off, `ZMQ_ZAP_ENFORCE_DOMAIN`, is part of libzmq's draft API, present in Debian's
    /// libzmq5 and absent from libraries built without the draft API (then this is `false`, and the handler must
    /// outlive its server sockets).
    public static let handlerAbsenceRefusesClients: Bool = {
        guard let context = zmq_ctx_new() else { return false }
        defer { zmq_ctx_term(context) }
        guard let socket = zmq_socket(context, ZMQ_ROUTER) else { return false }
        defer { zmq_close(socket) }
        var enabled: Int32 = 1
        return zmq_setsockopt(socket, ZMQ_ZAP_ENFORCE_DOMAIN, &enabled, MemoryLayout<Int32>.size) == 0
    }()
}
