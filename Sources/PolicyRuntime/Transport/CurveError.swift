/// What is wrong with a CURVE key, a key file or a socket's security set-up, and what to do about it.
///
/// Failures of libzmq itself (binding the ZAP endpoint, setting an option) stay ``ZMQError``s; this error is for what
/// the caller gave: a key that is not 40 Z85 characters, a key file that is malformed or readable by others, a server
/// socket without a running ``ZAPHandler`` in its context.
public struct CurveError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The key file or folder concerned, when there is one.
    public let file: String?
    /// What is wrong, and what was expected.
    public let message: String

    public init(_ message: String, file: String? = nil) {
        self.message = message
        self.file = file
    }

    public var description: String { file.map { "\($0): \(message)" } ?? message }
}
