import Foundation
import SwiftProtobuf

/// The `flowpolicy.v1` wire protocol: short names for the generated messages (`flowpolicy.pb.swift`, from
/// `proto/flowpolicy/v1/flowpolicy.proto`) and the envelope rules every endpoint follows.
///
/// One ZeroMQ message carries one serialized ``Envelope`` in its last frame. Every envelope holds the protocol
/// version (``version``), a sequence number (the sender's counter; a reply carries the sequence of the request it
/// answers) and the sender's `CLOCK_MONOTONIC` in nanoseconds.
public enum Wire {
    public typealias Envelope = Flowpolicy_V1_Envelope
    public typealias MetadataRequest = Flowpolicy_V1_MetadataRequest
    public typealias Metadata = Flowpolicy_V1_Metadata
    public typealias Infer = Flowpolicy_V1_Infer
    public typealias Timing = Flowpolicy_V1_Timing
    public typealias ActionChunk = Flowpolicy_V1_ActionChunk
    public typealias RobotState = Flowpolicy_V1_RobotState
    public typealias ActionCommand = Flowpolicy_V1_ActionCommand
    public typealias Control = Flowpolicy_V1_Control
    public typealias Status = Flowpolicy_V1_Status
    public typealias Ping = Flowpolicy_V1_Ping
    public typealias Pong = Flowpolicy_V1_Pong
    public typealias Error = Flowpolicy_V1_Error
    public typealias CameraFrame = Flowpolicy_V1_CameraFrame
    public typealias CameraInfo = Flowpolicy_V1_CameraInfo

    /// The protocol version of this build.
    public static let version: UInt32 = 1

    /// An envelope of this version stamped with `sequence` and the current monotonic time.
    public static func envelope(sequence: UInt64, _ body: Envelope.OneOf_Body) -> Envelope {
        var envelope = Envelope()
        envelope.protocolVersion = version
        envelope.sequence = sequence
        envelope.timestampNs = monotonicNanoseconds()
        envelope.body = body
        return envelope
    }

    /// An `Error` reply to the request with `sequence`.
    public static func errorEnvelope(sequence: UInt64, _ error: WireError) -> Envelope {
        var message = Error()
        message.code = error.code
        message.message = error.message
        return envelope(sequence: sequence, .error(message))
    }

    /// The bytes of `envelope`.
    public static func encode(_ envelope: Envelope) -> [UInt8] {
        // Encoding a message built in memory fails only for missing required fields, which proto3 does not have.
        do { return try envelope.serializedBytes() } catch { preconditionFailure("encoding an envelope: \(error)") }
    }

    /// Parses one frame as an envelope of this protocol version with a body.
    ///
    /// Throws ``WireError`` with `MALFORMED` (not a protobuf envelope, or no message in it) or `UNSUPPORTED_VERSION`;
    /// the error keeps the sequence number when the envelope parsed, so that the reply can name the request.
    public static func decode(_ frame: [UInt8]) throws(WireError) -> Envelope {
        let envelope: Envelope
        do {
            envelope = try Envelope(serializedBytes: frame)
        } catch {
            throw WireError(.malformed, "the frame (\(frame.count) bytes) is not a flowpolicy.v1 Envelope: \(error)")
        }
        guard envelope.protocolVersion == version else {
            throw WireError(
                .unsupportedVersion,
                "protocol version \(envelope.protocolVersion) is not supported; this server speaks version \(version)",
                sequence: envelope.sequence)
        }
        guard envelope.body != nil else {
            throw WireError(.malformed, "the envelope holds no message", sequence: envelope.sequence)
        }
        return envelope
    }

    /// The name of the message in `body`, for error messages.
    public static func name(of body: Envelope.OneOf_Body?) -> String {
        switch body {
        case .none: return "nothing"
        case .metadataRequest: return "MetadataRequest"
        case .metadata: return "Metadata"
        case .infer: return "Infer"
        case .actionChunk: return "ActionChunk"
        case .robotState: return "RobotState"
        case .actionCommand: return "ActionCommand"
        case .control: return "Control"
        case .status: return "Status"
        case .ping: return "Ping"
        case .pong: return "Pong"
        case .error: return "Error"
        }
    }
}

/// A protocol-level failure with the `Error.Code` to report to the peer.
public struct WireError: Error, CustomStringConvertible, Equatable, Sendable {
    public var code: Wire.Error.Code
    public var message: String
    /// The sequence of the request it concerns, when known.
    public var sequence: UInt64

    public init(_ code: Wire.Error.Code, _ message: String, sequence: UInt64 = 0) {
        self.code = code
        self.message = message
        self.sequence = sequence
    }

    public init(_ error: Wire.Error, sequence: UInt64 = 0) {
        self.init(error.code, error.message, sequence: sequence)
    }

    public var description: String { "\(Self.codeName(code)): \(message)" }

    /// `MALFORMED`, `NON_FINITE`, ... as the .proto spells them.
    public static func codeName(_ code: Wire.Error.Code) -> String {
        switch code {
        case .unspecified: return "CODE_UNSPECIFIED"
        case .malformed: return "MALFORMED"
        case .unsupportedVersion: return "UNSUPPORTED_VERSION"
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .nonFinite: return "NON_FINITE"
        case .unexpectedMessage: return "UNEXPECTED_MESSAGE"
        case .resourceExhausted: return "RESOURCE_EXHAUSTED"
        case .internal: return "INTERNAL"
        case .outOfBounds: return "OUT_OF_BOUNDS"
        case .UNRECOGNIZED(let value): return "code \(value)"
        }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the timestamps of the wire protocol (comparable between processes on one host).
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
}
