import FlowPolicy
import Foundation
import PolicyLab
import PolicyRuntime
import RuntimeTestSupport
import SimBridge
import Testing

/// Who may use what, over real sockets on loopback: the policy server, the simulated robot and the run's control
/// socket let in CURVE clients on their allow-list, and nobody else (a client with another key, a plain client);
/// binding beyond loopback without keys is refused.
@Suite struct AuthenticationTests {
    let server = try! CurveKeyPair.generate()
    let operatorKeys = try! CurveKeyPair.generate()
    let stranger = try! CurveKeyPair.generate()

    /// The server side: its key pair, the operator on its allow-list.
    var serverCredentials: Credentials { Credentials(keyPair: server, allowList: [operatorKeys.publicKey]) }

    /// How a client connects: CURVE with `keys` (nil: plain ZeroMQ).
    func clientSecurity(_ keys: CurveKeyPair?) throws -> SocketSecurity {
        try keys.map { try Credentials(keyPair: $0).clientSecurity(serverPublicKey: server.publicKey) } ?? .none
    }

    @Test func thePolicyServerServesOnlyClientsOnItsAllowList() throws {
        let serverContext = try ZMQContext()
        let running = try RunningServer(checkpoint: randomPushTCheckpoint(), context: serverContext) {
            $0.credentials = serverCredentials
        }
        defer { try? running.stop() }
        let context = try ZMQContext()
        let allowed = try RemotePolicy(context: context, endpoint: running.endpoint,
                                       timeoutMilliseconds: Int(generousTimeoutSeconds * 1000),
                                       security: clientSecurity(operatorKeys))
        #expect(allowed.contract == pushTContract)
        for keys in [stranger, nil] {
            #expect {
                try RemotePolicy(context: context, endpoint: running.endpoint, timeoutMilliseconds: 300,
                                 security: clientSecurity(keys))
            } throws: { ($0 as? RuntimeError).map { if case .timeout = $0 { true } else { false } } ?? false }
        }
        #expect(running.server.authentication?.acceptedCount == 1)
        #expect(running.server.authentication?.refusedCount ?? 0 >= 1)  // the stranger (the plain client never gets that far)
    }

    @Test func theRobotPublishesAndTakesCommandsOnlyForItsAllowList() throws {
        let robotContext = try ZMQContext()
        var options = SimulatedRobot.Options(task: try .named("pusht"), stateEndpoint: "tcp://127.0.0.1:*")
        options.lockStep = true
        options.episodes = 1
        options.credentials = serverCredentials
        let robot = Handed(try SimulatedRobot(options: options, context: robotContext))
        let (state, commands) = (robot.value.stateEndpoint, robot.value.commandEndpoint)
        let stop = Flag()
        let running = Peer { try robot.value.run { stop.isSet } }
        defer {
            stop.set()
            _ = try? running.join()
        }
        let context = try ZMQContext()
        func link(_ keys: CurveKeyPair?) throws -> ZMQRobotLink {
            try ZMQRobotLink(context: context, stateEndpoint: state, commandEndpoint: commands,
                             observationDimensions: 20, actionDimensions: 2, security: clientSecurity(keys))
        }
        let description = try link(operatorKeys).awaitDescription(timeoutSeconds: generousTimeoutSeconds)
        #expect(description.observationDimensions == 20 && description.controlRateHz == 10)
        for keys in [stranger, nil] {
            #expect { try link(keys).awaitDescription(timeoutSeconds: 0.3) } throws: {
                ($0 as? RuntimeError) == .robotSilent(endpoint: state, seconds: 0.3)
            }
        }
    }

    @Test func theControlSocketObeysOnlyTheOperator() throws {
        let context = try ZMQContext()
        let authentication = try #require(try serverCredentials.startAuthentication(context))
        defer { authentication.stop() }
        let control = LoopControl()
        let socket = try ControlServer(
            context: context, endpoint: "tcp://127.0.0.1:*", control: control,
            security: serverCredentials.serverSecurity(binding: "tcp://127.0.0.1:*", authentication: authentication))
        defer { socket.stop() }
        let clients = try ZMQContext()
        func stopRequest(_ keys: CurveKeyPair?) throws -> Wire.Envelope? {
            let client = try PolicyClient(context: clients, endpoint: socket.endpoint,
                                          timeoutMilliseconds: keys == nil || keys == stranger ? 300 : 10_000,
                                          security: clientSecurity(keys))
            var stop = Wire.Control()
            stop.command = .stop
            return try? client.request(.control(stop))
        }
        #expect(try stopRequest(stranger) == nil && stopRequest(nil) == nil)
        #expect(control.status.state == .starting)  // nobody stopped it
        let reply = try #require(try stopRequest(operatorKeys))
        guard case .status(let status) = reply.body else {
            Issue.record("expected Status, got \(Wire.name(of: reply.body))")
            return
        }
        #expect(status.state == .stopped)
    }

    @Test func bindingBeyondLoopbackWithoutKeysIsRefused() throws {
        let context = try ZMQContext()
        var options = PolicyServer.Options(endpoint: "tcp://0.0.0.0:*")
        #expect { try PolicyServer(checkpoint: randomPushTCheckpoint(), options: options, context: context) } throws: {
            "\($0)".contains("reachable from other machines")
        }
        options.credentials.insecure = true
        let insecure = try PolicyServer(checkpoint: randomPushTCheckpoint(), options: options, context: context)
        #expect(insecure.authentication == nil)
        #expect(Credentials.isLocal("tcp://127.0.0.1:5555") && Credentials.isLocal("tcp://[::1]:5555")
            && Credentials.isLocal("ipc:///tmp/robot") && !Credentials.isLocal("tcp://*:5555")
            && !Credentials.isLocal("tcp://192.168.1.2:5555"))
    }
}

/// A flag one thread sets and another reads.
private final class Flag: @unchecked Sendable {
    // `@unchecked`: `value` is guarded by `lock`.
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
