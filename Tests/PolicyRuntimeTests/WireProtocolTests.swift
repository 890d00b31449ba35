import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

@Suite struct WireProtocolTests {
    @Test func envelopesRoundTripWithVersionSequenceAndTimestamp() throws {
        var infer = Wire.Infer()
        infer.episodeID = 42
        infer.reset = true
        infer.observations = [1, 2, 3.5]
        infer.observationSteps = 1
        infer.noiseSeed = 7
        let before = monotonicNanoseconds()
        let envelope = Wire.envelope(sequence: 9, .infer(infer))
        let decoded = try Wire.decode(Wire.encode(envelope))
        #expect(decoded.protocolVersion == 1 && decoded.sequence == 9)
        #expect(decoded.timestampNs >= before && decoded.timestampNs <= monotonicNanoseconds())
        guard case .infer(let back) = decoded.body else {
            Issue.record("expected Infer, got \(Wire.name(of: decoded.body))")
            return
        }
        #expect(back == infer && back.hasNoiseSeed && back.noiseSeed == 7)
    }

    @Test func otherVersionsGarbageAndEmptyEnvelopesAreRefusedWithTheirCode() throws {
        var envelope = Wire.envelope(sequence: 5, .ping(Wire.Ping()))
        envelope.protocolVersion = 2
        #expect(throws: WireError.self) { try Wire.decode(Wire.encode(envelope)) }
        do {
            _ = try Wire.decode(Wire.encode(envelope))
        } catch {
            #expect(error.code == .unsupportedVersion && error.sequence == 5 && error.message.contains("version 2"))
        }
        for garbage: [UInt8] in [[0xFF, 0xFF, 0xFF], [0x0A, 0x05, 0x01]] {
            do {
                _ = try Wire.decode(garbage)
                Issue.record("decoded garbage \(garbage)")
            } catch {
                #expect(error.code == .malformed)
            }
        }
        var empty = Wire.Envelope()
        empty.protocolVersion = 1
        do {
            _ = try Wire.decode(Wire.encode(empty))
            Issue.record("decoded an envelope without a message")
        } catch {
            #expect(error.code == .malformed && error.message.contains("no message"))
        }
    }
}
