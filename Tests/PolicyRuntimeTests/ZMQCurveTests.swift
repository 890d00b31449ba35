import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

/// CURVE sockets with a ZAP allow-list over TCP loopback, and the key files behind them.
///
/// The servers and their clients use separate contexts, as separate processes would. Refusal has no event a client
/// can wait for (the connection simply never completes), so "gets nothing" is checked with a short receive timeout
/// after the handler reported the refusal, and the server is shown to serve allowed clients meanwhile.
@Suite struct ZMQCurveTests {
    /// The key pair of zmq_curve(7)'s example server: a reference for deriving the public key.
    static let documentedSecretKey = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
    static let documentedPublicKey = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
    /// `ZMQ_CURVE`, what ``ZMQSocketOption/mechanism`` reads on a CURVE socket.
    static let curveMechanism: Int32 = 2

    // MARK: ROUTER server, DEALER clients

    @Test func allowedClientsRequestGetsThroughAndTheReplyComesBack() throws {
        let server = try CurveServer(allowing: 1)
        let client = try server.client(keys: server.allowedKeys[0])

        try client.send("request")
        let frames = try #require(try server.router.receiveMultipart())
        #expect(frames.count == 2)
        #expect(frames.last == bytes("request"))
        try server.router.sendMultipart([frames[0], bytes("reply")])
        #expect(try client.receiveString() == "reply")

        #expect(server.authentication.acceptedCount == 1)
        #expect(server.authentication.refusedCount == 0)
        #expect(server.authentication.lastRefusal == nil)
    }

    @Test func clientWithAValidKeyPairNotOnTheAllowListGetsNothingAndIsCounted() throws {
        let server = try CurveServer(allowing: 1)
        let strangerKeys = try CurveKeyPair.generate()
        let stranger = try server.client(keys: strangerKeys)
        try stranger.send("from a stranger")

        #expect(server.refusals.wait(forKey: strangerKeys.publicKey), "the ZAP handler was never asked")
        let refusal = try #require(server.authentication.lastRefusal)
        #expect(refusal.publicKey == strangerKeys.publicKey)
        #expect(refusal.address == "127.0.0.1")
        #expect(refusal.mechanism == "CURVE")
        #expect(refusal.domain == ZAPHandler.defaultDomain)
        #expect(refusal.reason.contains("not on the allow-list"))
        #expect(server.authentication.refusedCount >= 1)  // The stranger retries, and is refused each time.
        #expect(server.authentication.acceptedCount == 0)

        try stranger.setOption(.receiveTimeout, .milliseconds(200))
        let error = #expect(throws: ZMQError.self) { try stranger.receive() }
        #expect(error?.isTimeout == true)
        try server.expectServesAllowedClientAndSawNothingElse()
    }

    enum UnauthenticatedClient: CaseIterable, CustomTestStringConvertible {
        /// No CURVE at all: the NULL mechanism meets a CURVE server.
        case plain
        /// An allowed key pair, but the wrong server public key: the server cannot read its hello.
        case wrongServerKey

        var testDescription: String { self == .plain ? "plain" : "wrong server key" }
    }

    @Test(arguments: UnauthenticatedClient.allCases)
    func clientThatFailsTheHandshakeGetsNothing(_ kind: UnauthenticatedClient) throws {
        let server = try CurveServer(allowing: 1)
        let client: ZMQSocket
        switch kind {
        case .plain:
            client = try server.client(security: .none)
        case .wrongServerKey:
            let impostor = try CurveKeyPair.generate()
            client = try server.client(
                security: .client(keyPair: server.allowedKeys[0], serverPublicKey: impostor.publicKey))
        }
        try client.send("unauthenticated")
        try client.setOption(.receiveTimeout, .milliseconds(200))
        let error = #expect(throws: ZMQError.self) { try client.receive() }
        #expect(error?.isTimeout == true)
        try server.expectServesAllowedClientAndSawNothingElse()
        // The handshake fails before libzmq asks the handler, so the handler counts nothing.
        #expect(server.authentication.refusedCount == 0)
    }

    // MARK: PUB/SUB: the robot is the CURVE server of both its bound sockets

    @Test func robotStateStreamReachesAllowedSubscribersOnlyAndTakesCommandsFromAllowedPublishersOnly() throws {
        let robotKeys = try CurveKeyPair.generate()
        let controllerKeys = try CurveKeyPair.generate()
        let strangerKeys = try (CurveKeyPair.generate(), CurveKeyPair.generate())

        // The robot binds its state PUB and its command SUB, both as CURVE servers of one handler.
        let robotContext = try ZMQContext()
        let refusals = RefusalWatcher()
        let authentication = try robotContext.startAuthentication(
            allowList: [controllerKeys.publicKey], onRefusal: refusals.record)
        defer { authentication.stop() }
        let robotSecurity = SocketSecurity.server(keyPair: robotKeys, authentication: authentication)
        let states = try makeSocket(.publish, robotContext)
        try robotSecurity.apply(to: states)
        try states.bind("tcp://127.0.0.1:*")
        let commands = try makeSocket(.subscribe, robotContext)
        try robotSecurity.apply(to: commands)
        try commands.subscribe()
        try commands.bind("tcp://127.0.0.1:*")
        let stateEndpoint = try #require(try states.lastEndpoint)
        let commandEndpoint = try #require(try commands.lastEndpoint)

        // Controllers connect as CURVE clients that know the robot's public key.
        let controllerContext = try ZMQContext()
        let connect = { (type: ZMQSocketType, keys: CurveKeyPair, endpoint: String) throws -> ZMQSocket in
            let socket = try makeSocket(type, controllerContext)
            try SocketSecurity.client(keyPair: keys, serverPublicKey: robotKeys.publicKey).apply(to: socket)
            if type == .subscribe { try socket.subscribe() }
            try socket.connect(endpoint)
            return socket
        }
        let stateSubscriber = try connect(.subscribe, controllerKeys, stateEndpoint)
        let strangerSubscriber = try connect(.subscribe, strangerKeys.0, stateEndpoint)
        let commandPublisher = try connect(.publish, controllerKeys, commandEndpoint)
        let strangerPublisher = try connect(.publish, strangerKeys.1, commandEndpoint)

        // State stream: the allowed subscriber receives (once connected and subscribed); the stranger does not.
        #expect(try publish("state 1", on: states, until: stateSubscriber).last == "state 1")
        #expect(refusals.wait(forKey: strangerKeys.0.publicKey), "the stranger subscriber was never refused")
        #expect(try publish("state 2", on: states, until: stateSubscriber).last == "state 2")
        #expect(try strangerSubscriber.receive(flags: .dontWait) == nil)

        // Commands: the robot takes the allowed controller's, never the stranger's, who publishes all along.
        #expect(refusals.wait(forKey: strangerKeys.1.publicKey), "the stranger publisher was never refused")
        let received = try publish(
            "act", on: commandPublisher, until: commands, alongside: (strangerPublisher, "intruder"))
        #expect(received.last == "act")
        #expect(!received.contains("intruder"))
        #expect(authentication.acceptedCount == 2)
    }

    // MARK: One handler per context, several domains

    @Test func oneHandlerServesSeveralSocketsWithAnAllowListPerDomain() throws {
        let context = try ZMQContext()
        let policyClientKeys = try CurveKeyPair.generate()
        let operatorKeys = try CurveKeyPair.generate()
        let refusals = RefusalWatcher()
        let authentication = try context.startAuthentication(
            allowList: [policyClientKeys.publicKey], domain: "policy", onRefusal: refusals.record)
        defer { authentication.stop() }
        try authentication.setAllowList([operatorKeys.publicKey], domain: "control")
        #expect(authentication.domains == ["control", "policy"])
        #expect(authentication.allowList(domain: "control") == [operatorKeys.publicKey])

        let serverKeys = try CurveKeyPair.generate()
        var endpoints: [String: String] = [:]
        var routers: [String: ZMQSocket] = [:]
        for domain in ["policy", "control"] {
            let router = try makeSocket(.router, context)
            try SocketSecurity.server(keyPair: serverKeys, authentication: authentication, domain: domain)
                .apply(to: router)
            try router.bind("tcp://127.0.0.1:*")
            endpoints[domain] = try router.lastEndpoint
            routers[domain] = router
        }

        let clientContext = try ZMQContext()
        let roundTrip = { (keys: CurveKeyPair, domain: String) throws -> Bool in
            let dealer = try makeSocket(.dealer, clientContext)
            try SocketSecurity.client(keyPair: keys, serverPublicKey: serverKeys.publicKey).apply(to: dealer)
            try dealer.connect(endpoints[domain]!)
            try dealer.send(domain)
            let frames = try #require(try routers[domain]!.receiveMultipart())
            try routers[domain]!.sendMultipart([frames[0], frames[1]])
            return try dealer.receiveString() == domain
        }
        #expect(try roundTrip(policyClientKeys, "policy"))
        #expect(try roundTrip(operatorKeys, "control"))

        // The policy client's key opens the policy socket only.
        let misplaced = try makeSocket(.dealer, clientContext)
        try SocketSecurity.client(keyPair: policyClientKeys, serverPublicKey: serverKeys.publicKey)
            .apply(to: misplaced)
        try misplaced.connect(endpoints["control"]!)
        #expect(refusals.wait(forKey: policyClientKeys.publicKey))
        #expect(authentication.lastRefusal?.domain == "control")
        #expect(authentication.acceptedCount == 2)
    }

    // MARK: Handler life cycle and misuse

    @Test func handlerIsOnePerContextAndServerSecurityNeedsItRunningInTheSocketsContext() throws {
        let context = try ZMQContext()
        let keys = try CurveKeyPair.generate()
        let authentication = try context.startAuthentication(allowList: [keys.publicKey])
        #expect(authentication.isRunning)

        let second = #expect(throws: ZMQError.self) { try context.startAuthentication(allowList: []) }
        #expect(second?.code == EADDRINUSE)
        #expect(second?.description.contains("one per context") == true)

        // A handler in another context would never be asked.
        let otherContext = try ZMQContext()
        let foreign = try ZMQSocket(.router, context: otherContext)
        let wrongContext = #expect(throws: CurveError.self) {
            try SocketSecurity.server(keyPair: keys, authentication: authentication).apply(to: foreign)
        }
        #expect(wrongContext?.message.contains("another context") == true)

        // No allow-list for the domain.
        let router = try ZMQSocket(.router, context: context)
        #expect(throws: CurveError.self) {
            try SocketSecurity.server(keyPair: keys, authentication: authentication, domain: "elsewhere")
                .apply(to: router)
        }

        // Options set after bind would not apply to the bound endpoint.
        let bound = try ZMQSocket(.router, context: context)
        try bound.bind("tcp://127.0.0.1:*")
        let late = #expect(throws: CurveError.self) {
            try SocketSecurity.server(keyPair: keys, authentication: authentication).apply(to: bound)
        }
        #expect(late?.message.contains("before bind or connect") == true)

        // What `apply` sets, read back.
        try SocketSecurity.server(keyPair: keys, authentication: authentication).apply(to: router)
        #expect(try router.option(.curveServer))
        #expect(try router.option(.curvePublicKey) == keys.publicKey)
        #expect(try router.option(.curveSecretKey) == keys.secretKey)
        #expect(try router.option(.zapDomain) == ZAPHandler.defaultDomain)
        #expect(try router.option(.mechanism) == Self.curveMechanism)
        let dealer = try ZMQSocket(.dealer, context: otherContext)
        try SocketSecurity.client(keyPair: keys, serverPublicKey: Self.documentedPublicKey).apply(to: dealer)
        #expect(try !dealer.option(.curveServer))
        #expect(try dealer.option(.curveServerKey) == Self.documentedPublicKey)
        #expect(try dealer.option(.mechanism) == Self.curveMechanism)
        let plain = try ZMQSocket(.dealer, context: otherContext)
        try SocketSecurity.none.apply(to: plain)
        #expect(try plain.option(.mechanism) == 0)
        #expect(throws: CurveError.self) { try SocketSecurity.client(keyPair: keys, serverPublicKey: "short") }

        // Stopped: idempotent, no longer usable, and the endpoint is free for a new handler.
        authentication.stop()
        authentication.stop()
        #expect(!authentication.isRunning)
        #expect(authentication.failure == nil)
        let afterStop = try ZMQSocket(.router, context: context)
        let stopped = #expect(throws: CurveError.self) {
            try SocketSecurity.server(keyPair: keys, authentication: authentication).apply(to: afterStop)
        }
        #expect(stopped?.message.contains("stopped") == true)
        let replacement = try context.startAuthentication(allowList: [keys.publicKey])
        #expect(replacement.isRunning)
        replacement.stop()
    }

    @Test func serverSocketKeepsItsHandlerAliveUntilTheSocketIsGone() throws {
        let serverKeys = try CurveKeyPair.generate()
        let clientKeys = try CurveKeyPair.generate()
        let clientContext = try ZMQContext()
        weak var released: ZAPHandler?
        do {
            let context = try ZMQContext()
            let router = try makeSocket(.router, context)
            do {
                // The caller keeps no reference to the handler.
                let authentication = try context.startAuthentication(allowList: [clientKeys.publicKey])
                released = authentication
                try SocketSecurity.server(keyPair: serverKeys, authentication: authentication).apply(to: router)
            }
            try router.bind("tcp://127.0.0.1:*")
            #expect(released?.isRunning == true)

            let dealer = try makeSocket(.dealer, clientContext)
            try SocketSecurity.client(keyPair: clientKeys, serverPublicKey: serverKeys.publicKey).apply(to: dealer)
            try dealer.connect(try #require(try router.lastEndpoint))
            try dealer.send("still authenticated")
            #expect(try router.receiveMultipart()?.last == bytes("still authenticated"))
            #expect(released?.acceptedCount == 1)
        }
        #expect(released == nil)  // Gone with its last server socket (and stopped by its deinit).
    }

    @Test(.enabled(if: SocketSecurity.handlerAbsenceRefusesClients))
    func serverWhoseHandlerStoppedLetsNobodyIn() throws {
        let server = try CurveServer(allowing: 1)
        server.authentication.stop()
        let client = try server.client(keys: server.allowedKeys[0])
        try client.send("after the handler stopped")
        try client.setOption(.receiveTimeout, .milliseconds(200))
        let error = #expect(throws: ZMQError.self) { try client.receive() }
        #expect(error?.isTimeout == true)
        #expect(try server.router.receive(flags: .dontWait) == nil)
    }

    @Test func shuttingTheContextDownEndsTheHandler() throws {
        let context = try ZMQContext()
        let authentication = try context.startAuthentication(allowList: [Self.documentedPublicKey])
        context.shutdown()
        #expect(waitUntil { !authentication.isRunning })
        #expect(authentication.failure?.isContextTerminated == true)
        authentication.stop()  // Still fine afterwards.
    }

    @Test func allowListsRefuseMalformedKeys() throws {
        let context = try ZMQContext()
        let error = #expect(throws: CurveError.self) {
            let malformed = String(Self.documentedPublicKey.dropLast())
            return try context.startAuthentication(allowList: [Self.documentedPublicKey, malformed])
        }
        #expect(error?.message.contains("entry 2") == true)
        #expect(error?.message.contains("got 39 characters") == true)
        // Nothing was bound: a handler with a valid list starts.
        let authentication = try context.startAuthentication(allowList: [Self.documentedPublicKey])
        #expect(throws: CurveError.self) { try authentication.setAllowList(["not a key"]) }
        #expect(authentication.allowList() == [Self.documentedPublicKey])
        authentication.stop()
    }

    // MARK: Keys and key files

    @Test func keyPairsAreValidatedDerivedAndKeepTheSecretOutOfPrintouts() throws {
        let documented = try CurveKeyPair(secretKey: Self.documentedSecretKey)
        #expect(documented.publicKey == Self.documentedPublicKey)
        let checked = try CurveKeyPair(publicKey: Self.documentedPublicKey, secretKey: Self.documentedSecretKey)
        #expect(checked == documented)

        let generated = try CurveKeyPair.generate()
        #expect(generated.publicKey.count == 40 && generated.secretKey.count == 40)
        #expect(generated.publicKey.allSatisfy { CurveKeyPair.z85Alphabet.contains($0) })
        #expect(try CurveKeyPair(secretKey: generated.secretKey) == generated)
        #expect(try CurveKeyPair.generate() != generated)
        let mismatch = #expect(throws: CurveError.self) {
            try CurveKeyPair(publicKey: Self.documentedPublicKey, secretKey: generated.secretKey)
        }
        #expect(mismatch?.message.contains("does not belong") == true)

        var dumped = ""
        dump(generated, to: &dumped)
        for text in ["\(generated)", String(reflecting: generated), dumped] {
            #expect(text.contains(generated.publicKey))
            #expect(!text.contains(generated.secretKey))
        }
    }

    @Test func keyFilesRoundTripWithPrivateSecretFilesAndAreNotOverwrittenUnlessAsked() throws {
        let root = try TemporaryFolder()
        let folder = root.path + "/keys"  // Missing: created private.
        let keys = try CurveKeyPair.generate()
        let (publicFile, secretFile) = try keys.write(to: folder, name: "robot")
        #expect(publicFile == folder + "/robot.key")
        #expect(secretFile == folder + "/robot.key_secret")
        #expect(try permissions(of: folder) == 0o700)
        #expect(try permissions(of: secretFile) == 0o600)
        #expect(try permissions(of: publicFile) == 0o644)

        #expect(try CurveKeyPair.read(secretFile: secretFile) == keys)
        #expect(try CurveKeyPair.readPublicKey(file: publicFile) == keys.publicKey)
        #expect(try CurveKeyPair.readAllowList(folder: folder) == [keys.publicKey])  // The secret file is skipped.
        let publicText = try String(contentsOfFile: publicFile, encoding: .utf8)
        #expect(publicText.contains(keys.publicKey) && !publicText.contains(keys.secretKey))

        let replacement = try CurveKeyPair.generate()
        let refused = #expect(throws: CurveError.self) { try replacement.write(to: folder, name: "robot") }
        #expect(refused?.file == secretFile)
        #expect(try CurveKeyPair.read(secretFile: secretFile) == keys)
        try replacement.write(to: folder, name: "robot", overwrite: true)
        #expect(try CurveKeyPair.read(secretFile: secretFile) == replacement)
        #expect(try CurveKeyPair.readPublicKey(file: publicFile) == replacement.publicKey)
        #expect(try permissions(of: secretFile) == 0o600)
        #expect(try permissions(of: publicFile) == 0o644)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(files == ["robot.key", "robot.key_secret"])  // No temporary file left behind.

        #expect(throws: CurveError.self) { try keys.write(to: folder, name: "../escape") }
    }

    @Test(arguments: [0o640, 0o604, 0o644, 0o660])
    func secretKeyFilesOthersCanAccessAreRefused(mode: Int) throws {
        let folder = try TemporaryFolder()
        let keys = try CurveKeyPair.generate()
        let (_, secretFile) = try keys.write(to: folder.path, name: "operator")
        #expect(chmod(secretFile, mode_t(mode)) == 0)
        let error = #expect(throws: CurveError.self) { try CurveKeyPair.read(secretFile: secretFile) }
        #expect(error?.file == secretFile)
        #expect(error?.description.contains("chmod 600 \(secretFile)") == true)
        #expect(chmod(secretFile, 0o400) == 0)  // Read-only for its owner is fine.
        #expect(try CurveKeyPair.read(secretFile: secretFile) == keys)
    }

    @Test func malformedKeyFilesAreRefusedNamingTheFileAndWhatIsExpected() throws {
        let folder = try TemporaryFolder()
        let keys = try CurveKeyPair.generate()
        let other = try CurveKeyPair.generate()
        let certificate = { (publicKey: String, secretKey: String?) in
            "metadata\ncurve\n    public-key = \"\(publicKey)\"\n"
                + (secretKey.map { "    secret-key = \"\($0)\"\n" } ?? "")
        }
        let cases: [(name: String, text: String, secret: Bool, expected: String)] = [
            ("short.key", certificate(String(keys.publicKey.dropLast()), nil), false, "got 39 characters"),
            ("long.key", certificate(keys.publicKey + "0", nil), false, "got 41 characters"),
            ("tilde.key", certificate("~" + keys.publicKey.dropFirst(), nil), false, "found \"~\" at character 1"),
            ("empty.key", "# nothing here\n", false, "no public-key line"),
            ("secret.key", certificate(keys.publicKey, keys.secretKey), false, "holds a secret key"),
            ("twice.key", certificate(keys.publicKey, nil) + "    public-key = \"\(other.publicKey)\"\n", false,
             "two public-key lines"),
            ("mismatch.key_secret", certificate(other.publicKey, keys.secretKey), true, "does not belong"),
            ("nosecret.key_secret", certificate(keys.publicKey, nil), true, "no secret-key line"),
            ("badsecret.key_secret", certificate(keys.publicKey, String(keys.secretKey.dropFirst())), true,
             "a secret key is 40 characters of Z85"),
        ]
        for (name, text, secret, expected) in cases {
            let file = try folder.write(name, text, mode: secret ? 0o600 : 0o644)
            let error = #expect(throws: CurveError.self, "\(name)") {
                if secret {
                    _ = try CurveKeyPair.read(secretFile: file)
                } else {
                    _ = try CurveKeyPair.readPublicKey(file: file)
                }
            }
            #expect(error?.file == file, "\(name)")
            #expect(error?.description.hasPrefix(file + ": ") == true, "\(name)")
            #expect(error?.message.contains(expected) == true, "\(name): \(error?.message ?? "")")
            // Secret keys are never quoted in messages.
            #expect(error?.description.contains(keys.secretKey) == false, "\(name)")
        }
        // One bad public key file spoils the allow-list, which names it.
        let allowListError = #expect(throws: CurveError.self) { try CurveKeyPair.readAllowList(folder: folder.path) }
        #expect(allowListError?.file == folder.path + "/empty.key")
        let empty = try TemporaryFolder()
        let emptyError = #expect(throws: CurveError.self) { try CurveKeyPair.readAllowList(folder: empty.path) }
        #expect(emptyError?.message.contains("no public key files") == true)
    }

    @Test func certificatesWrittenByPyzmqAreRead() throws {
        // pyzmq's zmq.auth.create_certificates, verbatim but for the keys (its secret file then needs chmod 600).
        let folder = try TemporaryFolder()
        let keys = try CurveKeyPair.generate()
        let banner = "#   ****  Generated on 2025-01-01 12:00:00.000000 by pyzmq  ****\n"
        let publicFile = try folder.write("laptop.key", banner + """
            #   ZeroMQ CURVE Public Certificate
            #   Exchange securely, or use a secure mechanism to verify the contents
            #   of this file after exchange. Store public certificates in your home
            #   directory, in the .curve subdirectory.

            metadata
            curve
                public-key = "\(keys.publicKey)"

            """, mode: 0o644)
        let secretFile = try folder.write("laptop.key_secret", banner + """
            #   ZeroMQ CURVE **Secret** Certificate
            #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.

            metadata
                name = laptop
            curve
                public-key = "\(keys.publicKey)"
                secret-key = "\(keys.secretKey)"

            """, mode: 0o600)
        #expect(try CurveKeyPair.readPublicKey(file: publicFile) == keys.publicKey)
        #expect(try CurveKeyPair.read(secretFile: secretFile) == keys)
    }
}

// MARK: Fixtures

/// A CURVE ROUTER server on a free loopback port whose handler allows `allowedKeys`, and a client context.
private final class CurveServer {
    let context: ZMQContext
    let keys: CurveKeyPair
    let allowedKeys: [CurveKeyPair]
    let refusals = RefusalWatcher()
    let authentication: ZAPHandler
    let router: ZMQSocket
    let endpoint: String
    let clientContext: ZMQContext

    init(allowing count: Int) throws {
        context = try ZMQContext()
        keys = try CurveKeyPair.generate()
        allowedKeys = try (0..<count).map { _ in try CurveKeyPair.generate() }
        authentication = try context.startAuthentication(
            allowList: allowedKeys.map(\.publicKey), onRefusal: refusals.record)
        router = try makeSocket(.router, context)
        try SocketSecurity.server(keyPair: keys, authentication: authentication).apply(to: router)
        try router.bind("tcp://127.0.0.1:*")
        endpoint = try router.lastEndpoint!
        clientContext = try ZMQContext()
    }

    deinit {
        router.close()
        authentication.stop()
    }

    /// A DEALER of the client context, connected with `security`.
    func client(security: SocketSecurity) throws -> ZMQSocket {
        let dealer = try makeSocket(.dealer, clientContext)
        try security.apply(to: dealer)
        try dealer.connect(endpoint)
        return dealer
    }

    /// A DEALER connected as a CURVE client with `keys`, knowing the server's public key.
    func client(keys clientKeys: CurveKeyPair) throws -> ZMQSocket {
        try client(security: .client(keyPair: clientKeys, serverPublicKey: keys.publicKey))
    }

    /// A fresh allowed client is served, and the server received nothing before its request (nothing from the
    /// clients that were to get nothing) nor after it.
    func expectServesAllowedClientAndSawNothingElse() throws {
        let friend = try client(keys: allowedKeys[0])
        try friend.send("from a friend")
        let frames = try #require(try router.receiveMultipart())
        #expect(frames.last == bytes("from a friend"))
        try router.sendMultipart([frames[0], bytes("welcome")])
        #expect(try friend.receiveString() == "welcome")
        #expect(try router.receive(flags: .dontWait) == nil)
    }
}

/// Collects the refusals a ZAP handler reports and lets the test wait for one.
private final class RefusalWatcher: @unchecked Sendable {
    // `@unchecked`: `refused` is guarded by `condition`.
    private let condition = NSCondition()
    private var refused: [String?] = []

    var record: @Sendable (ZAPRefusal) -> Void {
        { [self] refusal in
            condition.withLock {
                refused.append(refusal.publicKey)
                condition.broadcast()
            }
        }
    }

    /// Waits (at most the generous timeout) until a client with `publicKey` was refused.
    func wait(forKey publicKey: String) -> Bool {
        let deadline = Date(timeIntervalSinceNow: generousTimeoutSeconds)
        return condition.withLock {
            while !refused.contains(publicKey) {
                if !condition.wait(until: deadline) { return false }
            }
            return true
        }
    }
}

/// Sends `message` on `publisher` (and `alongside.message` on `alongside.socket`) until `subscriber` receives
/// `message`, which takes a few rounds while connections and subscriptions are made; returns everything
/// `subscriber` received, ending with `message`, or what it had by the generous timeout.
private func publish(
    _ message: String, on publisher: ZMQSocket, until subscriber: ZMQSocket,
    alongside: (socket: ZMQSocket, message: String)? = nil
) throws -> [String] {
    let poller = ZMQPoller(capacity: 1)
    _ = try poller.register(subscriber)
    var received: [String] = []
    let deadline = Date(timeIntervalSinceNow: generousTimeoutSeconds)
    while Date() < deadline {
        if let alongside { try alongside.socket.send(alongside.message) }
        try publisher.send(message)
        guard try poller.poll(timeout: .milliseconds(20)) > 0 else { continue }
        while let frame = try subscriber.receiveString(flags: .dontWait) {
            received.append(frame)
            if frame == message { return received }
        }
    }
    return received
}

/// Polls `condition` until it holds or the generous timeout passes.
private func waitUntil(_ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: generousTimeoutSeconds)
    while !condition() {
        if Date() >= deadline { return false }
        usleep(2_000)
    }
    return true
}

/// The permission bits of `path`.
private func permissions(of path: String) throws -> Int {
    var status = stat()
    guard stat(path, &status) == 0 else { throw CurveError("cannot stat", file: path) }
    return Int(status.st_mode & 0o777)
}

/// A folder of its own under the temporary directory, removed at the end of the test.
private final class TemporaryFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("flowpolicy-curve-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes `text` to `name` in the folder with `mode` and returns its path.
    func write(_ name: String, _ text: String, mode: Int) throws -> String {
        let file = path + "/" + name
        try text.write(toFile: file, atomically: false, encoding: .utf8)
        guard chmod(file, mode_t(mode)) == 0 else { throw CurveError("cannot chmod", file: file) }
        return file
    }
}
