import CZeroMQ
import Foundation

/// A CURVE handshake that a ``ZAPHandler`` refused: who tried, with which key, and why. For the caller to log.
public struct ZAPRefusal: Sendable, Equatable, CustomStringConvertible {
    /// The ZAP domain of the server socket (``SocketSecurity/server(keyPair:authentication:domain:)``).
    public let domain: String
    /// The peer's address as libzmq reports it: for TCP its IP address without the port, e.g. `"127.0.0.1"`.
    public let address: String
    /// The mechanism the peer used: `"CURVE"` (the only one allowed), or `"NULL"` / `"PLAIN"`.
    public let mechanism: String
    /// The Z85 text of the client's public key, if it presented one.
    public let publicKey: String?
    /// Why it was refused, e.g. "public key not on the allow-list of domain flowpolicy".
    public let reason: String

    public var description: String {
        "refused \(mechanism) client at \(address)" + (publicKey.map { " with public key \($0)" } ?? "")
            + " (domain \(domain)): \(reason)"
    }
}

/// The context's ZAP handler (ZeroMQ RFC 27): it decides which CURVE clients a server socket lets in, by comparing
/// each client's public key with an allow-list.
///
/// libzmq asks it about every CURVE connection to a server socket of its context, in that context's handshake, over
/// `inproc://zeromq.zap.01`; it answers on a thread of its own with status 200 for a client whose public key is on the
/// allow-list of the socket's ZAP domain and 400 for every other one. It counts both (``acceptedCount``,
/// ``refusedCount``), keeps the ``lastRefusal`` and calls `onRefusal`, and logs nothing itself.
///
/// What a refusal looks like: the connection never completes. The refused client's messages stay queued on its side
/// and nothing is ever received, and it retries every reconnect interval (each retry is refused and counted again);
/// the server sees neither the client nor its messages. A client without CURVE at all, or with the wrong server key,
/// fails the handshake before the handler is asked, so it is not counted; it too sees nothing.
///
/// **One per context.** libzmq finds the handler by its endpoint inside the context, so a second handler in the same
/// context fails with `EADDRINUSE`. One handler serves every server socket of its context: sockets that need different
/// allow-lists use different ZAP domains (``setAllowList(_:domain:)``). A CURVE server socket in a context without a
/// running handler is refused by ``SocketSecurity/apply(to:)``.
///
/// **Stop it last.** Close the server sockets it authenticates before ``stop()``. libzmq's default is to let every
/// client in when no handler is bound; ``SocketSecurity`` turns that off (`ZMQ_ZAP_ENFORCE_DOMAIN`), but only a libzmq
/// built with the draft API honours it (Debian's does; see ``SocketSecurity/handlerAbsenceRefusesClients``).
/// Releasing the handler stops it too, but every server socket it was applied to keeps it alive, so a handler that is
/// never stopped explicitly stops after its last server socket is gone. Shutting the context down
/// (``ZMQContext/shutdown()``) also ends it (``failure`` is then `ETERM`).
///
/// The corresponding C endpoint is `inproc://zeromq.zap.01`.
public final class ZAPHandler: @unchecked Sendable {
    // `@unchecked`: the ZAP and stop-receiving sockets belong to the handler's thread (handed over before it starts);
    // `stopSender` is used only by `stop()` under `lock`; everything else mutable is in `state`, guarded by its lock.

    /// The inproc endpoint libzmq sends ZAP requests to.
    public static let endpoint = "inproc://zeromq.zap.01"
    /// The ZAP domain used unless another is named.
    public static let defaultDomain = "flowpolicy"

    /// The context whose CURVE server sockets this handler authenticates.
    public let context: ZMQContext
    private let state: ZAPState
    private let lock = NSLock()
    private var stopSender: ZMQSocket?
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    /// Binds the context's ZAP endpoint and starts answering on a thread of its own, letting in the clients whose
    /// public keys (Z85) are in `allowList` on server sockets of `domain`. Prefer
    /// ``ZMQContext/startAuthentication(allowList:domain:onRefusal:)``.
    ///
    /// `onRefusal` is called on the handler's thread after each refusal is counted; keep it short, and do not call
    /// ``stop()`` from it. Throws ``CurveError`` for a malformed key in `allowList`, and ``ZMQError`` `EADDRINUSE` if
    /// the context has a handler already.
    public init(
        context: ZMQContext, allowList: [String], domain: String = ZAPHandler.defaultDomain,
        onRefusal: (@Sendable (ZAPRefusal) -> Void)? = nil
    ) throws {
        self.context = context
        state = ZAPState(onRefusal: onRefusal)
        try state.setAllowList(allowList, domain: domain)

        let requests = try ZMQSocket(.router, context: context)
        try Self.bindEndpoint(requests)
        // Stopping: `stop()` sends one empty message over this pipe, which wakes the thread from its poll at once.
        let pipe = "inproc://flowpolicy.zap-handler.stop.\(UUID().uuidString)"
        let stopReceiver = try ZMQSocket(.pair, context: context)
        try stopReceiver.bind(pipe)
        let stopSender = try ZMQSocket(.pair, context: context)
        try stopSender.connect(pipe)
        self.stopSender = stopSender

        let worker = ZAPWorker(requests: requests, stopReceiver: stopReceiver, state: state, finished: finished)
        let thread = Thread { worker.run() }
        thread.name = "flowpolicy ZAP handler"
        self.thread = thread
        thread.start()
    }

    deinit {
        stop()
    }

    /// Binds the ZAP endpoint, explaining `EADDRINUSE`.
    private static func bindEndpoint(_ socket: ZMQSocket) throws(ZMQError) {
        do {
            try socket.bind(endpoint)
        } catch where error.code == EADDRINUSE {
            throw ZMQError(
                code: error.code, operation: error.operation,
                subject: "\(endpoint): this context has a ZAP handler already; one per context serves all its "
                    + "sockets (use a ZAP domain per allow-list)")
        }
    }

    /// Stops answering, closes the handler's sockets (unbinding the ZAP endpoint) and waits for its thread to end.
    /// Idempotent. Close the server sockets it authenticates first (see the type's documentation).
    public func stop() {
        let sender: ZMQSocket? = lock.withLock {
            precondition(
                stopSender == nil || Thread.current !== thread, "ZAPHandler.stop() called on the handler's own thread")
            defer { stopSender = nil }
            return stopSender
        }
        guard let sender else { return }
        // Fails only if the context was shut down, in which case the thread has ended (or is ending) by itself.
        _ = try? sender.send([UInt8](), flags: .dontWait)
        finished.wait()
        sender.close()
    }

    /// Whether the handler is answering: it was neither stopped nor ended by a failure of its socket.
    public var isRunning: Bool { state.withLock { $0.isRunning } }

    /// Why the handler ended on its own (`ETERM` when its context was shut down); `nil` while it runs, and after
    /// ``stop()`` when nothing had failed before.
    public var failure: ZMQError? { state.withLock { $0.failure } }

    /// The number of CURVE handshakes let in so far.
    public var acceptedCount: Int { state.withLock { $0.accepted } }

    /// The number of handshakes refused so far (a refused client that keeps retrying is counted each time).
    public var refusedCount: Int { state.withLock { $0.refused } }

    /// The most recent refusal, for the caller to log; `nil` until there is one.
    public var lastRefusal: ZAPRefusal? { state.withLock { $0.lastRefusal } }

    /// The ZAP domains that have an allow-list.
    public var domains: [String] { state.withLock { $0.allowLists.keys.sorted() } }

    /// The allow-list of `domain` as Z85 public keys, sorted; empty for a domain without one.
    public func allowList(domain: String = ZAPHandler.defaultDomain) -> [String] {
        state.withLock { $0.allowLists[domain].map { $0.map(CurveKeyPair.encode).sorted() } ?? [] }
    }

    /// Sets (or replaces) the allow-list of `domain`; it applies from the next handshake on, connections already
    /// made stay. Throws for a key that is not 40 Z85 characters, changing nothing.
    public func setAllowList(_ publicKeys: [String], domain: String = ZAPHandler.defaultDomain) throws(CurveError) {
        try state.setAllowList(publicKeys, domain: domain)
    }
}

extension ZMQContext {
    /// Starts this context's ZAP handler, which lets CURVE clients whose public keys (Z85) are in `allowList` into
    /// the server sockets of `domain`, and refuses every other client. Only one handler can run per context; it
    /// serves all the context's server sockets (give other domains their allow-lists with
    /// ``ZAPHandler/setAllowList(_:domain:)``). See ``ZAPHandler`` for what refusal looks like and for stopping.
    ///
    /// ```swift
    /// let context = try ZMQContext()
    /// let authentication = try context.startAuthentication(allowList: try CurveKeyPair.readAllowList(folder: dir))
    /// let security = SocketSecurity.server(keyPair: serverKeys, authentication: authentication)
    /// let router = try ZMQSocket(.router, context: context)
    /// try security.apply(to: router)   // before bind
    /// try router.bind("tcp://*:5555")
    /// ```
    public func startAuthentication(
        allowList: [String], domain: String = ZAPHandler.defaultDomain,
        onRefusal: (@Sendable (ZAPRefusal) -> Void)? = nil
    ) throws -> ZAPHandler {
        try ZAPHandler(context: self, allowList: allowList, domain: domain, onRefusal: onRefusal)
    }
}

/// The handler's shared state: allow-lists, counters, the last refusal. Every access goes through `withLock`.
final class ZAPState: @unchecked Sendable {
    // `@unchecked`: `fields` is only touched under `lock`.
    struct Fields {
        /// Per ZAP domain, the raw 32-byte public keys let in.
        var allowLists: [String: Set<[UInt8]>] = [:]
        var accepted = 0
        var refused = 0
        var lastRefusal: ZAPRefusal?
        var isRunning = true
        var failure: ZMQError?
    }

    private let lock = NSLock()
    private var fields = Fields()
    let onRefusal: (@Sendable (ZAPRefusal) -> Void)?

    init(onRefusal: (@Sendable (ZAPRefusal) -> Void)?) {
        self.onRefusal = onRefusal
    }

    func withLock<Result>(_ body: (inout Fields) -> Result) -> Result {
        lock.withLock { body(&fields) }
    }

    func setAllowList(_ publicKeys: [String], domain: String) throws(CurveError) {
        guard domain.utf8.count <= 255 else {
            throw CurveError("a ZAP domain is at most 255 bytes, got \(domain.utf8.count)")
        }
        var keys = Set<[UInt8]>()
        for (index, key) in publicKeys.enumerated() {
            do {
                keys.insert(try CurveKeyPair.decode(key, role: "public key", file: nil))
            } catch {
                throw CurveError("allow-list entry \(index + 1) of domain \(domain): \(error.message)")
            }
        }
        withLock { $0.allowLists[domain] = keys }
    }

    /// The ZAP reply to `frames` (a ZAP request as the handler's ROUTER receives it), or `nil` if it cannot be
    /// addressed. Counts the decision.
    func answer(_ frames: [[UInt8]]) -> [[UInt8]]? {
        // [routing id, empty delimiter, version, request id, domain, address, routing id, mechanism, credentials...]
        guard frames.count >= 4, frames[1].isEmpty else { return nil }
        let request = Array(frames[2...])
        let decision = decide(request)
        switch decision {
        case .accept(let userID):
            withLock { $0.accepted += 1 }
            return Self.reply(to: frames, status: "200", text: "OK", userID: userID)
        case .refuse(let status, let refusal):
            withLock {
                $0.refused += 1
                $0.lastRefusal = refusal
            }
            onRefusal?(refusal)
            return Self.reply(to: frames, status: status, text: refusal.reason, userID: "")
        }
    }

    private enum Decision {
        /// Status 200; the user id libzmq attaches to the client's messages ("User-Id").
        case accept(userID: String)
        /// Status 400 (or 500 for a malformed request).
        case refuse(status: String, ZAPRefusal)
    }

    /// [version, request id, domain, address, routing id, mechanism, credentials...]
    private func decide(_ request: [[UInt8]]) -> Decision {
        let text = { (index: Int) in request.count > index ? String(decoding: request[index], as: UTF8.self) : "" }
        let domain = text(2)
        let address = text(3)
        let mechanism = text(5)
        let refusal = { (reason: String, publicKey: String?) in
            ZAPRefusal(domain: domain, address: address, mechanism: mechanism, publicKey: publicKey, reason: reason)
        }
        guard text(0) == "1.0", request.count >= 6 else {
            let reason = "malformed ZAP request (version \(text(0)), \(request.count) frames)"
            return .refuse(status: "500", refusal(reason, nil))
        }
        guard mechanism == "CURVE" else {
            return .refuse(status: "400", refusal("mechanism \(mechanism) is not allowed, only CURVE", nil))
        }
        guard request.count == 7, request[6].count == 32 else {
            return .refuse(status: "400", refusal("malformed CURVE credentials", nil))
        }
        let publicKey = request[6]
        let allowList = withLock { $0.allowLists[domain] }
        guard let allowList else {
            let reason = "no allow-list for ZAP domain \"\(domain)\""
            return .refuse(status: "400", refusal(reason, CurveKeyPair.encode(publicKey)))
        }
        guard allowList.contains(publicKey) else {
            let reason = "public key not on the allow-list of domain \"\(domain)\""
            return .refuse(status: "400", refusal(reason, CurveKeyPair.encode(publicKey)))
        }
        return .accept(userID: CurveKeyPair.encode(publicKey))
    }

    /// A ZAP reply: the routing envelope of `frames`, then version, request id, status, status text, user id and
    /// (empty) metadata.
    private static func reply(to frames: [[UInt8]], status: String, text: String, userID: String) -> [[UInt8]] {
        [frames[0], [], Array("1.0".utf8), frames[3], Array(status.utf8), Array(text.utf8), Array(userID.utf8), []]
    }
}

/// The handler's thread: polls the ZAP socket and the stop pipe, answers requests, closes both sockets at the end.
private final class ZAPWorker: @unchecked Sendable {
    // `@unchecked`: the sockets are used only on the handler's thread, which starts after `init` handed them over.
    let requests: ZMQSocket
    let stopReceiver: ZMQSocket
    let state: ZAPState
    let finished: DispatchSemaphore

    init(requests: ZMQSocket, stopReceiver: ZMQSocket, state: ZAPState, finished: DispatchSemaphore) {
        self.requests = requests
        self.stopReceiver = stopReceiver
        self.state = state
        self.finished = finished
    }

    func run() {
        var failure: ZMQError?
        do {
            let poller = ZMQPoller(capacity: 2)
            let requestIndex = try poller.register(requests)
            let stopIndex = try poller.register(stopReceiver)
            while true {
                try poller.poll(timeout: .infinite)
                if poller.events(at: stopIndex).contains(.readable) { break }
                guard poller.events(at: requestIndex).contains(.readable) else { continue }
                while let request = try requests.receiveMultipart(flags: .dontWait) {
                    // A ROUTER never blocks a send: a reply to a handshake that was abandoned meanwhile is dropped.
                    if let reply = state.answer(request) { try requests.sendMultipart(reply, flags: .dontWait) }
                }
            }
        } catch {
            failure = error
        }
        // Unbinds the ZAP endpoint: later handshakes of server sockets find no handler (ZAPHandler, "Stop it last").
        // Explicitly, before closing: closing alone frees an inproc endpoint only when libzmq's reaper thread gets to
        // the socket, so a new handler started right after `stop()` could still find it taken (EADDRINUSE).
        try? requests.unbind(ZAPHandler.endpoint)
        requests.close()
        stopReceiver.close()
        state.withLock {
            $0.isRunning = false
            $0.failure = failure
        }
        finished.signal()
    }
}
