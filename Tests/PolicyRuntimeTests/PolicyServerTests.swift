import FlowPolicy
import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

/// A DEALER client that sends raw frames and reads replies (for requests the typed client would not send).
private final class RawClient {
    let socket: ZMQSocket
    private var sequence: UInt64 = 100

    init(_ context: ZMQContext, _ endpoint: String) throws {
        socket = try makeSocket(.dealer, context)
        try socket.connect(endpoint)
    }

    func send(_ body: Wire.Envelope.OneOf_Body, version: UInt32 = 1) throws -> UInt64 {
        sequence += 1
        var envelope = Wire.envelope(sequence: sequence, body)
        envelope.protocolVersion = version
        try socket.send(Wire.encode(envelope))
        return sequence
    }

    func reply() throws -> Wire.Envelope {
        let frame = try #require(try socket.receive())
        return try Wire.decode(frame)
    }

    func error() throws -> (sequence: UInt64, error: Wire.Error) {
        let envelope = try reply()
        guard case .error(let error) = envelope.body else {
            throw WireError(.unexpectedMessage, "expected Error, got \(Wire.name(of: envelope.body))")
        }
        return (envelope.sequence, error)
    }
}

private func infer(_ windows: [[Float]], seed: UInt64? = nil, reset: Bool = false, episode: UInt64 = 0,
                   steps: Int = 2) -> Wire.Infer {
    var infer = Wire.Infer()
    infer.observations = windows.flatMap { $0 }
    infer.observationSteps = UInt32(steps)
    infer.batch = UInt32(windows.count)
    infer.episodeID = episode
    infer.reset = reset
    if let seed { infer.noiseSeed = seed }
    return infer
}

@Suite struct PolicyServerTests {
    @Test func metadataDescribesThePolicyAndTheTask() throws {
        let context = try ZMQContext()
        let server = try RunningServer(checkpoint: randomPushTCheckpoint(), context: context) { $0.steps = 4 }
        defer { try? server.stop() }
        let client = try PolicyClient(context: context, endpoint: server.endpoint)
        let metadata = try client.metadata()
        #expect(metadata.protocolVersion == 1 && metadata.task == "pusht")
        #expect(metadata.observationSteps == 2 && metadata.actionSteps == 8 && metadata.predictionSteps == 16)
        #expect(metadata.observationDimensions == 20 && metadata.actionDimensions == 2)
        #expect(metadata.controlRateHz == 10 && metadata.actionLow == [0, 0] && metadata.actionHigh == [512, 512])
        #expect(metadata.maxStepChange == [150, 150] && metadata.solver == "euler" && metadata.solverSteps == 4)
        try client.ping()
    }

    @Test func seededRequestsReproduceInProcessSamplingBitForBit() throws {
        let checkpoint = try randomPushTCheckpoint()
        let context = try ZMQContext()
        let server = try RunningServer(checkpoint: checkpoint, context: context) { $0.steps = 3 }
        defer { try? server.stop() }
        let client = try PolicyClient(context: context, endpoint: server.endpoint)
        let windows = (0..<3).map { pushTWindow(seed: $0) }
        for workers in [1, 2] {
            let local = Policy(checkpoint: checkpoint, capacity: 8, steps: 3, seed: 77, workers: workers)
            for round in 0..<3 {
                var request = infer(windows, seed: 77, reset: round == 0, episode: UInt64(workers))
                request.workers = UInt32(workers)
                let chunk = try client.infer(request)
                // The server clips what it sends to the contract's bounds ([0, 512]; this random policy leaves them).
                let expected = local.predictAction(observations: windows.flatMap { $0 }, batch: 3).actionPrediction
                    .map { min(max($0, 0), 512) }
                #expect(chunk.batch == 3 && chunk.predictionSteps == 16 && chunk.actionDimensions == 2)
                #expect(chunk.firstActionIndex == 1 && chunk.actionSteps == 8 && chunk.dt == 0.1)
                #expect(chunk.actions == expected, "workers \(workers), round \(round)")
                #expect(chunk.timing.solverSteps == 3 && chunk.timing.batch == 3 && chunk.timing.inferenceMs > 0)
            }
        }
    }

    @Test func serverSideWindowsEqualFullWindows() throws {
        let context = try ZMQContext()
        let server = try RunningServer(checkpoint: randomPushTCheckpoint(), context: context)
        defer { try? server.stop() }
        let client = try PolicyClient(context: context, endpoint: server.endpoint)
        let o = (0..<3).map { Array(pushTWindow(seed: 10 + UInt64($0))[0..<20]) }
        // Episode 1 sends only the newest observation; episode 2 sends the windows the server should have built.
        let full = [o[0] + o[0], o[0] + o[1], o[1] + o[2]]
        for step in 0..<3 {
            let newest = try client.infer(infer([o[step]], seed: 5, reset: step == 0, episode: 1, steps: 1))
            let whole = try client.infer(infer([full[step]], seed: 5, reset: step == 0, episode: 2))
            #expect(newest.actions == whole.actions, "step \(step)")
        }
        // A reset starts the window again.
        let again = try client.infer(infer([o[2]], seed: 5, reset: true, episode: 1, steps: 1))
        let fresh = try client.infer(infer([o[2] + o[2]], seed: 5, reset: true, episode: 2))
        #expect(again.actions == fresh.actions)
    }

    @Test func committedActionsStartTheChunk() throws {
        let context = try ZMQContext()
        let server = try RunningServer(checkpoint: randomPushTCheckpoint(), context: context)
        defer { try? server.stop() }
        let client = try PolicyClient(context: context, endpoint: server.endpoint)
        var request = infer([pushTWindow(seed: 1)])
        request.committed = [100, 300, 120, 310, 140, 320]
        request.committedSteps = 3
        let chunk = try client.infer(request)
        #expect(zip(chunk.actions[0..<6], request.committed).allSatisfy { abs($0 - $1) < 1e-3 })
    }

    @Test func badRequestsGetClearErrorsAndTheServerKeepsServing() throws {
        let context = try ZMQContext()
        let server = try RunningServer(checkpoint: randomPushTCheckpoint(), context: context) { $0.maxBatch = 4 }
        defer { try? server.stop() }
        let raw = try RawClient(context, server.endpoint)
        func expectError(_ body: Wire.Envelope.OneOf_Body, version: UInt32 = 1, code: Wire.Error.Code,
                         mentioning text: String) throws {
            let sequence = try raw.send(body, version: version)
            let (replySequence, error) = try raw.error()
            #expect(replySequence == sequence && error.code == code, "\(error)")
            #expect(error.message.contains(text), "\"\(error.message)\" should mention \"\(text)\"")
        }
        try expectError(.ping(Wire.Ping()), version: 7, code: .unsupportedVersion, mentioning: "version 7")
        try expectError(.infer(infer([[Float](repeating: 1, count: 39)])), code: .invalidArgument,
                        mentioning: "1 x 2 x 20 = 40")
        var nan = pushTWindow(seed: 1)
        nan[13] = .nan
        try expectError(.infer(infer([nan])), code: .nonFinite, mentioning: "observation number 13")
        try expectError(.infer(infer([pushTWindow(seed: 1)], steps: 3)), code: .invalidArgument,
                        mentioning: "observation_steps")
        try expectError(.infer(infer((0..<5).map { pushTWindow(seed: $0) })), code: .invalidArgument,
                        mentioning: "max batch 4")
        var badCommitted = infer([pushTWindow(seed: 1)])
        badCommitted.committedSteps = 2
        badCommitted.committed = [1, 2, 3]
        try expectError(.infer(badCommitted), code: .invalidArgument, mentioning: "committed")
        try expectError(.actionChunk(Wire.ActionChunk()), code: .unexpectedMessage, mentioning: "ActionChunk")
        // Frames that are not an envelope, and a message of two frames.
        try raw.socket.send([0x12, 0x34, 0x56])
        #expect(try raw.error().error.code == .malformed)
        try raw.socket.sendMultipart([Wire.encode(Wire.envelope(sequence: 1, .ping(Wire.Ping()))), [1]])
        let twoFrames = try raw.error().error
        #expect(twoFrames.code == .malformed && twoFrames.message.contains("got 2"))
        // Still serving.
        let client = try PolicyClient(context: context, endpoint: server.endpoint)
        #expect(try client.infer(infer([pushTWindow(seed: 2)])).actions.count == 32)
        #expect(server.server.statistics.errors == 9)
        // The typed client turns an Error reply into a thrown error that says what was wrong.
        #expect { try client.infer(infer([nan])) } throws: { "\($0)".contains("NON_FINITE") }
    }

    @Test func theServerSurvivesAStreamOfRandomFramesAndKeepsAnsweringAWellFormedClient() throws {
        let context = try ZMQContext()
        let server = try RunningServer(checkpoint: randomPushTCheckpoint(), context: context) { $0.steps = 2 }
        defer { try? server.stop() }
        let endpoint = server.endpoint
        // A raw TCP peer that writes bytes that are not ZMTP at all: libzmq drops the connection.
        let garbage = Background {
            guard let port = port(of: endpoint) else { return }
            for round in 0..<20 {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                guard fd >= 0 else { return }
                defer { close(fd) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                guard connected == 0 else { continue }
                var generator = RandomSource(seed: UInt64(round))
                let bytes = (0..<(1 + round * 50)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            }
        }
        // A ZeroMQ peer sending random multipart messages (random bytes, sometimes valid protobuf with junk).
        let fuzzer = Peer { () throws -> Int in
            let socket = try makeSocket(.dealer, context)
            try socket.connect(endpoint)
            var generator = RandomSource(seed: 99)
            var answered = 0
            for round in 0..<300 {
                let frames = (0..<(1 + generator.nextIndex(below: 3))).map { _ in
                    (0..<generator.nextIndex(below: 64)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                }
                var message = frames
                if round % 10 == 0 {
                    var envelope = Wire.envelope(sequence: UInt64(round), .infer(infer([pushTWindow(seed: 1)])))
                    let index = generator.nextIndex(below: 40)
                    envelope.infer.observations[index] = [Float.nan, .infinity, 1e30][round % 3]
                    message = [Wire.encode(envelope)]
                }
                try socket.sendMultipart(message)
                // Every message gets exactly one reply (an Error here, unless the junk happens to be a valid request).
                _ = try #require(try socket.receiveMultipart())
                answered += 1
            }
            return answered
        }
        let client = try PolicyClient(context: context, endpoint: endpoint)
        for round in 0..<50 {
            let chunk = try client.infer(infer([pushTWindow(seed: UInt64(round))]))
            #expect(chunk.actions.count == 32 && chunk.actions.allSatisfy(\.isFinite))
        }
        #expect(try fuzzer.join() == 300)
        try garbage.join()
        #expect(try client.metadata().observationDimensions == 20)
    }

    @Test func concurrentRequestsAreBatchedAndEachReplyCarriesItsRequestsSequence() throws {
        let context = try ZMQContext()
        // inproc: a send returns once the message is in the server's queue, so all eight are waiting when it serves.
        var options = PolicyServer.Options(endpoint: "inproc://policy")
        options.maxBatch = 16
        let server = try PolicyServer(checkpoint: randomPushTCheckpoint(), options: options, context: context)
        let clients = try (0..<8).map { _ in try RawClient(context, "inproc://policy") }
        var sequences: [UInt64] = []
        for (index, client) in clients.enumerated() {
            _ = try client.send(.ping(Wire.Ping()))  // a quick request too: answered after the turn's sampling
            sequences.append(try client.send(.infer(infer([pushTWindow(seed: UInt64(index))], episode: UInt64(index)))))
        }
        try server.serve(timeout: .milliseconds(10_000))
        #expect(server.statistics.calls == 1 && server.statistics.largestCall == 8 && server.statistics.windows == 8)
        for (index, client) in clients.enumerated() {
            let reply = try client.reply()
            #expect(reply.sequence == sequences[index])
            #expect(Wire.name(of: try client.reply().body) == "Pong")
            guard case .actionChunk(let chunk) = reply.body else {
                Issue.record("expected ActionChunk, got \(Wire.name(of: reply.body))")
                continue
            }
            #expect(chunk.episodeID == UInt64(index) && chunk.timing.batch == 8 && chunk.actions.count == 32)
        }
        // Without batching, the same requests take one call each.
        options.endpoint = "inproc://unbatched"
        options.batching = false
        let unbatched = try PolicyServer(checkpoint: randomPushTCheckpoint(), options: options, context: context)
        let others = try (0..<4).map { _ in try RawClient(context, "inproc://unbatched") }
        for client in others { _ = try client.send(.infer(infer([pushTWindow(seed: 1)]))) }
        try unbatched.serve(timeout: .milliseconds(10_000))
        #expect(unbatched.statistics.calls == 4 && unbatched.statistics.largestCall == 1)
    }

    @Test func requestSocketsWorkToo() throws {
        let context = try ZMQContext()
        let server = try RunningServer(checkpoint: randomPushTCheckpoint(), context: context)
        defer { try? server.stop() }
        let request = try makeSocket(.request, context)
        try request.connect(server.endpoint)
        try request.send(Wire.encode(Wire.envelope(sequence: 3, .metadataRequest(Wire.MetadataRequest()))))
        let reply = try Wire.decode(try #require(try request.receive()))
        guard case .metadata(let metadata) = reply.body else {
            Issue.record("expected Metadata, got \(Wire.name(of: reply.body))")
            return
        }
        #expect(reply.sequence == 3 && metadata.actionDimensions == 2)
    }

    @Test func aClientTimesOutClearlyWhenNoServerAnswers() throws {
        let context = try ZMQContext()
        let silent = try makeSocket(.router, context)
        try silent.bind("tcp://127.0.0.1:*")
        let client = try PolicyClient(context: context, endpoint: try #require(try silent.lastEndpoint),
                                      timeoutMilliseconds: 50)
        #expect { try client.metadata() } throws: { error in
            guard case RuntimeError.timeout = error else { return false }
            return "\(error)".contains("within 50 ms")
        }
    }
}
