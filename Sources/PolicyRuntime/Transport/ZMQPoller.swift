import CZeroMQ

/// The readiness a ``ZMQPoller`` waits for and reports.
public struct ZMQPollEvents: OptionSet, Hashable, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// At least one message can be received without blocking (`ZMQ_POLLIN`).
    public static let readable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// At least one message can be sent without blocking (`ZMQ_POLLOUT`).
    public static let writable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLOUT))
}

/// Waits until any of several sockets can receive or send, for a loop that serves several sockets from one thread.
///
/// Register the sockets once; each gets an index (in registration order). The poll items live in a buffer owned
/// by the poller, so ``poll(timeout:)``, ``events(at:)`` and iterating ``ready`` do not allocate. The poller keeps
/// its sockets alive; like them it is not thread-safe.
///
/// ```swift
/// let poller = ZMQPoller()
/// let requests = try poller.register(router)
/// let commands = try poller.register(control)
/// while running {
///     try poller.poll(timeout: .milliseconds(10))
///     if poller.events(at: requests).contains(.readable) { ... }
///     if poller.events(at: commands).contains(.readable) { ... }
/// }
/// ```
///
/// The corresponding C function is `zmq_poll`.
public final class ZMQPoller {
    /// `zmq_pollitem_t` for each registered socket, in registration order; `capacity` of them allocated.
    private var items: UnsafeMutablePointer<zmq_pollitem_t>
    private var capacity: Int
    /// The registered sockets, kept alive because `items` holds their raw libzmq pointers.
    private var sockets: [ZMQSocket] = []

    /// Creates a poller with room for `capacity` sockets before registering more reallocates.
    public init(capacity: Int = 4) {
        self.capacity = max(capacity, 1)
        items = .allocate(capacity: self.capacity)
    }

    deinit {
        items.deinitialize(count: sockets.count)
        items.deallocate()
    }

    /// The number of registered sockets.
    public var count: Int { sockets.count }

    /// Registers `socket` to be polled for `events` and returns its index.
    public func register(_ socket: ZMQSocket, for events: ZMQPollEvents = .readable) throws(ZMQError) -> Int {
        let handle = try socket.openHandle("zmq_poll")
        if sockets.count == capacity {
            let grown = UnsafeMutablePointer<zmq_pollitem_t>.allocate(capacity: capacity * 2)
            grown.moveInitialize(from: items, count: sockets.count)
            items.deallocate()
            items = grown
            capacity *= 2
        }
        (items + sockets.count).initialize(
            to: zmq_pollitem_t(socket: handle, fd: 0, events: events.rawValue, revents: 0))
        sockets.append(socket)
        return sockets.count - 1
    }

    /// The socket registered at `index`.
    public func socket(at index: Int) -> ZMQSocket { sockets[index] }

    /// Changes what the socket at `index` is polled for, e.g. adds ``ZMQPollEvents/writable`` while it has output
    /// waiting; the empty set leaves it out of polls.
    public func setEvents(_ events: ZMQPollEvents, at index: Int) {
        precondition(sockets.indices.contains(index), "no socket registered at index \(index)")
        items[index].events = events.rawValue
    }

    /// Waits until at least one registered socket is ready for what it is polled for, or until `timeout`
    /// (``ZMQTimeout/zero`` checks and returns at once). Returns the number of ready sockets, zero on timeout;
    /// ``events(at:)`` and ``ready`` then tell which. An interrupting signal restarts the wait.
    ///
    /// Throws `ENOTSOCK` if a registered socket was closed, and `ETERM` if the context was shut down.
    ///
    /// The corresponding C function is `zmq_poll`.
    @discardableResult
    public func poll(timeout: ZMQTimeout) throws(ZMQError) -> Int {
        // A closed socket's pointer in `items` dangles. (An index loop: `enumerated()` allocates in debug builds.)
        for index in sockets.indices where sockets[index].isClosed {
            throw ZMQError(
                code: ENOTSOCK, operation: "zmq_poll",
                subject: "socket \(index) (\(sockets[index].type.name)) is closed")
        }
        let items = items
        let count = Int32(sockets.count)
        let milliseconds = timeout.cMilliseconds
        return Int(try zmqCheck("zmq_poll") { zmq_poll(items, count, milliseconds) })
    }

    /// What the socket at `index` was found ready for by the last ``poll(timeout:)``; empty if not ready.
    public func events(at index: Int) -> ZMQPollEvents {
        precondition(sockets.indices.contains(index), "no socket registered at index \(index)")
        return ZMQPollEvents(rawValue: items[index].revents)
    }

    /// The sockets the last ``poll(timeout:)`` found ready, as `(index, events)` in registration order.
    public var ready: ReadySockets { ReadySockets(poller: self) }

    /// The sockets found ready by the last poll; iterating it does not allocate.
    public struct ReadySockets: Sequence {
        let poller: ZMQPoller

        public struct Iterator: IteratorProtocol {
            let poller: ZMQPoller
            var index = 0

            public mutating func next() -> (index: Int, events: ZMQPollEvents)? {
                while index < poller.count {
                    defer { index += 1 }
                    let events = poller.events(at: index)
                    if !events.isEmpty { return (index, events) }
                }
                return nil
            }
        }

        public func makeIterator() -> Iterator { Iterator(poller: poller) }
    }
}
