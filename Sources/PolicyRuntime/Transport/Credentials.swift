import Foundation

/// What a process authenticates with: its own CURVE key pair, the public keys of the clients its servers let in,
/// and whether it may bind beyond loopback without them. Read once from files by the commands, passed down as a value.
///
/// The rule every server socket follows (`serverSecurity`): with a key pair, CURVE, and only clients on the
/// allow-list get a connection; without one, plain ZeroMQ, which is allowed on loopback (and `ipc://`, `inproc://`)
/// only, unless `insecure` says the operator wants it anyway. A client socket uses CURVE when it knows its server's
/// public key (`clientSecurity`).
public struct Credentials: Sendable {
    public var keyPair: CurveKeyPair?
    /// Public keys (Z85) of the clients allowed to connect to this process's servers.
    public var allowList: [String]
    /// Bind beyond loopback without CURVE (the commands warn at start and every minute).
    public var insecure: Bool

    public init(keyPair: CurveKeyPair? = nil, allowList: [String] = [], insecure: Bool = false) {
        self.keyPair = keyPair
        self.allowList = allowList
        self.insecure = insecure
    }

    /// Plain ZeroMQ on loopback.
    public static let none = Credentials()

    /// Starts `context`'s authentication (its ZAP handler) when there is a key pair; nil otherwise. One per context:
    /// the session that binds the context's servers starts it and keeps it.
    public func startAuthentication(_ context: ZMQContext) throws -> ZAPHandler? {
        guard keyPair != nil else { return nil }
        guard !allowList.isEmpty else {
            throw RuntimeError.invalidConfiguration(
                "a server with a key pair needs the public keys of the clients it lets in (an allow-list)")
        }
        return try context.startAuthentication(allowList: allowList)
    }

    /// The security of a server socket about to bind `endpoint`: CURVE with `authentication`'s allow-list, or plain
    /// ZeroMQ, which is refused beyond loopback unless `insecure`.
    public func serverSecurity(binding endpoint: String, authentication: ZAPHandler?) throws -> SocketSecurity {
        if let keyPair {
            guard let authentication else {
                throw RuntimeError.invalidConfiguration("a CURVE server socket needs its context's authentication "
                    + "started first (startAuthentication)")
            }
            return .server(keyPair: keyPair, authentication: authentication)
        }
        guard insecure || Self.isLocal(endpoint) else {
            throw RuntimeError.invalidConfiguration(
                "\(endpoint) is reachable from other machines, and without CURVE keys anyone who reaches it could "
                    + "use it; give this process a key pair and an allow-list, bind a loopback address "
                    + "(tcp://127.0.0.1:PORT), or accept the risk explicitly (insecure)")
        }
        return .none
    }

    /// The security of a client socket connecting to a server whose public key is `serverPublicKey` (plain when
    /// nil). CURVE needs this process's key pair too.
    public func clientSecurity(serverPublicKey: String?) throws -> SocketSecurity {
        guard let serverPublicKey else { return .none }
        guard let keyPair else {
            throw RuntimeError.invalidConfiguration(
                "connecting with CURVE needs this process's own key pair besides the server's public key")
        }
        return try .client(keyPair: keyPair, serverPublicKey: serverPublicKey)
    }

    /// Whether only this machine can reach `endpoint`: `tcp://` on a loopback address, `ipc://`, `inproc://`.
    public static func isLocal(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var host = endpoint.dropFirst("tcp://".count)
        if let colon = host.lastIndex(of: ":") { host = host[..<colon] }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
