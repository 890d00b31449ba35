import FlowPolicy
import Foundation

/// A client of `flowpolicy serve` (a DEALER socket): one request at a time, replies matched by sequence number, so a
/// late reply to a request that timed out is dropped rather than taken for the next one.
public final class PolicyClient {
    public let endpoint: String
    public let socket: ZMQSocket
    public let timeoutMilliseconds: Int
    private let poller = ZMQPoller(capacity: 1)
    private var sequence: UInt64 = 0

    /// Connects to `endpoint` with `security` (CURVE with the server's public key, or plain).
    public init(context: ZMQContext, endpoint: String, timeoutMilliseconds: Int = 10_000,
                security: SocketSecurity = .none) throws {
        self.endpoint = endpoint
        self.timeoutMilliseconds = timeoutMilliseconds
        socket = try ZMQSocket(.dealer, context: context)
        try security.apply(to: socket)
        try socket.connect(endpoint)
        _ = try poller.register(socket)
    }

    public func metadata() throws -> Wire.Metadata {
        let reply = try request(.metadataRequest(Wire.MetadataRequest()))
        guard case .metadata(let metadata) = reply.body else { throw unexpected(reply, "Metadata") }
        return metadata
    }

    public func ping() throws {
        let reply = try request(.ping(Wire.Ping()))
        guard case .pong = reply.body else { throw unexpected(reply, "Pong") }
    }

    public func infer(_ infer: Wire.Infer) throws -> Wire.ActionChunk {
        let reply = try request(.infer(infer))
        guard case .actionChunk(let chunk) = reply.body else { throw unexpected(reply, "ActionChunk") }
        return chunk
    }

    /// Sends `body` and waits for the reply with the same sequence number; `Error` replies are thrown.
    public func request(_ body: Wire.Envelope.OneOf_Body) throws -> Wire.Envelope {
        sequence += 1
        try socket.send(Wire.encode(Wire.envelope(sequence: sequence, body)))
        let deadline = monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while true {
            let now = monotonicNanoseconds()
            guard now < deadline,
                  try poller.poll(timeout: .milliseconds(Int((deadline - now + 999_999) / 1_000_000))) > 0
            else { throw RuntimeError.timeout(endpoint: endpoint, milliseconds: timeoutMilliseconds) }
            while let frame = try socket.receive(flags: .dontWait) {
                guard let envelope = try? Wire.decode(frame), envelope.sequence == sequence else { continue }
                if case .error(let error) = envelope.body {
                    throw RuntimeError.server(WireError(error, sequence: envelope.sequence))
                }
                return envelope
            }
        }
    }

    private func unexpected(_ reply: Wire.Envelope, _ expected: String) -> RuntimeError {
        .unexpectedReply("expected \(expected), got \(Wire.name(of: reply.body))")
    }
}
