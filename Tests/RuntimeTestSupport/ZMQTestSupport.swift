import Foundation
import PolicyRuntime

/// The upper bound for every blocking call in these tests, so that a broken test fails instead of hanging. It is
/// never a measured duration: passing tests do not wait for it.
public let generousTimeout = ZMQTimeout.seconds(10)
public let generousTimeoutSeconds = 10.0

/// A socket whose blocking sends and receives give up after ``generousTimeout``.
public func makeSocket(_ type: ZMQSocketType, _ context: ZMQContext) throws -> ZMQSocket {
    let socket = try ZMQSocket(type, context: context)
    try socket.setOption(.sendTimeout, generousTimeout)
    try socket.setOption(.receiveTimeout, generousTimeout)
    return socket
}

public func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// The port of a resolved `tcp://host:port` endpoint.
public func port(of endpoint: String) -> Int? {
    endpoint.split(separator: ":").last.flatMap { Int($0) }
}

public struct PeerTimedOut: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "the peer thread did not finish within \(generousTimeoutSeconds) s" }
}

/// Runs `body` on its own thread, as a concurrently running peer would. Sockets are not `Sendable`, so peers create
/// their own from the shared (thread-safe) context instead of receiving them.
public final class Peer<Value: Sendable>: @unchecked Sendable {
    // `@unchecked`: `result` is written once by the peer thread before `done.signal()` and read only after
    // `done.wait()` succeeded, which orders the two accesses.
    private var result: Result<Value, any Error>?
    private let done = DispatchSemaphore(value: 0)

    public init(_ body: @escaping @Sendable () throws -> Value) {
        let thread = Thread { [self] in
            result = Result { try body() }
            done.signal()
        }
        thread.start()
    }

    /// Waits for the peer and returns what it returned, rethrows what it threw, or throws ``PeerTimedOut``.
    public func join() throws -> Value {
        guard done.wait(timeout: .now() + generousTimeoutSeconds) == .success, let result else {
            throw PeerTimedOut()
        }
        return try result.get()
    }
}

/// Hands a non-`Sendable` object to the one thread that uses it from then on.
public final class Handed<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
