import CZeroMQ

/// Flags for the `send` methods of ``ZMQSocket``.
public struct ZMQSendFlags: OptionSet, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Do not wait: if the message cannot be queued now, the send returns `false` instead of blocking (`ZMQ_DONTWAIT`).
    public static let dontWait = ZMQSendFlags(rawValue: ZMQ_DONTWAIT)
    /// More frames of the same message follow; the message is delivered once its last frame is sent (`ZMQ_SNDMORE`).
    public static let sendMore = ZMQSendFlags(rawValue: ZMQ_SNDMORE)
}

/// Flags for the `receive` methods of ``ZMQSocket``.
public struct ZMQReceiveFlags: OptionSet, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Do not wait: if no message is queued, the receive returns `nil` instead of blocking (`ZMQ_DONTWAIT`).
    public static let dontWait = ZMQReceiveFlags(rawValue: ZMQ_DONTWAIT)
}

/// What ``ZMQSocket/receive(into:flags:)`` wrote into the caller's buffer.
public struct ZMQReceiveResult: Hashable, Sendable {
    /// The size of the frame as sent, which may exceed the buffer.
    public let frameSize: Int
    /// The number of bytes written to the start of the buffer: `min(frameSize, buffer.count)`.
    public let byteCount: Int
    /// Whether more frames of the same message follow.
    public let hasMore: Bool

    /// Whether the frame did not fit and only its first ``byteCount`` bytes were kept; the rest is gone.
    public var isTruncated: Bool { frameSize > byteCount }

    public init(frameSize: Int, byteCount: Int, hasMore: Bool) {
        self.frameSize = frameSize
        self.byteCount = byteCount
        self.hasMore = hasMore
    }
}

extension ZMQSendFlags {
    fileprivate var callMode: ZMQCallMode { contains(.dontWait) ? .nonBlocking : .blocking }
}

extension ZMQReceiveFlags {
    fileprivate var callMode: ZMQCallMode { contains(.dontWait) ? .nonBlocking : .blocking }
}

// Blocking calls wait up to the socket's send or receive timeout and then throw a ZMQError with `isTimeout` set and
// code EAGAIN; calls with `dontWait` report EAGAIN by returning `false` or `nil` instead. `ETERM` (the context was
// shut down) and the pattern's own refusals (`EFSM` for a REQ sending twice, `EHOSTUNREACH` for a ROUTER with
// `routerMandatory`) are thrown.
extension ZMQSocket {
    // MARK: Sending

    /// Sends one frame, copied from `frame`. Returns `false` only with ``ZMQSendFlags/dontWait`` when the frame cannot
    /// be queued now; otherwise returns `true` once it is queued, or throws (a ``ZMQError/isTimeout`` error when
    /// ``ZMQSocketOption/sendTimeout`` expires).
    ///
    /// The corresponding C function is `zmq_send`.
    @discardableResult
    public func send(_ frame: UnsafeRawBufferPointer, flags: ZMQSendFlags = []) throws(ZMQError) -> Bool {
        let socket = try openHandle("zmq_send")
        let sent = try zmqCall("zmq_send", subject: type.name, mode: flags.callMode) {
            zmq_send(socket, frame.baseAddress, frame.count, flags.rawValue)
        }
        return sent != nil
    }

    /// Sends one frame, copied from `frame`; see ``send(_:flags:)-(UnsafeRawBufferPointer,_)``.
    ///
    /// The corresponding C function is `zmq_send`.
    @discardableResult
    public func send(_ frame: [UInt8], flags: ZMQSendFlags = []) throws(ZMQError) -> Bool {
        try frame.withUnsafeBufferPointer { (bytes) throws(ZMQError) in
            try send(UnsafeRawBufferPointer(bytes), flags: flags)
        }
    }

    /// Sends the UTF-8 bytes of `text` as one frame (no terminating zero); see
    /// ``send(_:flags:)-(UnsafeRawBufferPointer,_)``.
    ///
    /// The corresponding C function is `zmq_send`.
    @discardableResult
    public func send(_ text: String, flags: ZMQSendFlags = []) throws(ZMQError) -> Bool {
        var text = text
        return try text.withUTF8 { utf8 in
            Result { () throws(ZMQError) in try send(UnsafeRawBufferPointer(utf8), flags: flags) }
        }.get()
    }

    /// Sends `frames` as one message (all frames but the last with ``ZMQSendFlags/sendMore``). With
    /// ``ZMQSendFlags/dontWait`` returns `false` if the message cannot be queued now, in which case no frame was
    /// sent: libzmq checks the high-water mark at the first frame only, so once it is accepted the rest are too.
    /// With ``ZMQSendFlags/sendMore`` the last frame is sent with it as well, to continue the message.
    ///
    /// The corresponding C function is `zmq_send`.
    @discardableResult
    public func sendMultipart(_ frames: [[UInt8]], flags: ZMQSendFlags = []) throws(ZMQError) -> Bool {
        precondition(!frames.isEmpty, "a ZeroMQ message has at least one frame")
        for (index, frame) in frames.enumerated() {
            let isLast = index == frames.count - 1
            var frameFlags: ZMQSendFlags = isLast ? flags.intersection(.sendMore) : .sendMore
            if index == 0 { frameFlags.formUnion(flags.intersection(.dontWait)) }
            guard try send(frame, flags: frameFlags) else { return false }  // `false` only for the first frame.
        }
        return true
    }

    // MARK: Receiving

    /// Receives one frame into `buffer` without allocating. The result gives the true ``ZMQReceiveResult/frameSize``;
    /// a frame larger than the buffer is cut to fit and reported by ``ZMQReceiveResult/isTruncated``. Returns `nil`
    /// only with ``ZMQReceiveFlags/dontWait`` when no frame is queued; a blocking receive throws a
    /// ``ZMQError/isTimeout`` error when ``ZMQSocketOption/receiveTimeout`` expires.
    ///
    /// The corresponding C function is `zmq_recv`.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, flags: ZMQReceiveFlags = []) throws(ZMQError)
        -> ZMQReceiveResult?
    {
        let socket = try openHandle("zmq_recv")
        let received = try zmqCall("zmq_recv", subject: type.name, mode: flags.callMode) {
            zmq_recv(socket, buffer.baseAddress, buffer.count, flags.rawValue)
        }
        guard let received else { return nil }
        let frameSize = Int(received)
        return ZMQReceiveResult(
            frameSize: frameSize, byteCount: min(frameSize, buffer.count), hasMore: try hasMoreFrames)
    }

    /// Receives one frame and passes its bytes to `body` in place, without copying them, together with whether
    /// more frames of the message follow. The bytes are valid only inside `body`. Returns `nil` without calling
    /// `body` only with ``ZMQReceiveFlags/dontWait`` when no frame is queued.
    ///
    /// The corresponding C function is `zmq_msg_recv`.
    public func withReceivedFrame<Result>(
        flags: ZMQReceiveFlags = [], _ body: (_ frame: UnsafeRawBufferPointer, _ hasMore: Bool) throws -> Result
    ) throws -> Result? {
        let outcome = try receiveMessage(flags: flags) { frame, hasMore in
            Swift.Result { try body(frame, hasMore) }
        }
        return try outcome?.get()
    }

    /// Receives one frame as a new array; check ``hasMoreFrames`` for the rest of a multipart message. Returns `nil`
    /// only with ``ZMQReceiveFlags/dontWait`` when no frame is queued.
    ///
    /// The corresponding C function is `zmq_msg_recv`.
    public func receive(flags: ZMQReceiveFlags = []) throws(ZMQError) -> [UInt8]? {
        try receiveMessage(flags: flags) { frame, _ in [UInt8](frame) }
    }

    /// Receives one frame as text, decoding UTF-8 (invalid bytes become U+FFFD). Returns `nil` only with
    /// ``ZMQReceiveFlags/dontWait`` when no frame is queued.
    ///
    /// The corresponding C function is `zmq_msg_recv`.
    public func receiveString(flags: ZMQReceiveFlags = []) throws(ZMQError) -> String? {
        try receiveMessage(flags: flags) { frame, _ in String(decoding: frame, as: UTF8.self) }
    }

    /// Receives all frames of one message. `flags` apply to the first frame; libzmq delivers a message whole, so
    /// once the first frame is there the others are too. Returns `nil` only with ``ZMQReceiveFlags/dontWait`` when
    /// no message is queued.
    ///
    /// The corresponding C functions are `zmq_msg_recv` and `zmq_msg_more`.
    public func receiveMultipart(flags: ZMQReceiveFlags = []) throws(ZMQError) -> [[UInt8]]? {
        let copyFrame = { (frame: UnsafeRawBufferPointer, hasMore: Bool) in (bytes: [UInt8](frame), hasMore: hasMore) }
        guard var next = try receiveMessage(flags: flags, copyFrame) else { return nil }
        var frames = [next.bytes]
        while next.hasMore {
            // A blocking receive returns a frame or throws, so `nil` cannot happen here.
            guard let following = try receiveMessage(flags: [], copyFrame) else {
                preconditionFailure("a blocking zmq_msg_recv returned without a frame")
            }
            frames.append(following.bytes)
            next = following
        }
        return frames
    }

    /// Receives one frame into a `zmq_msg_t` on the stack and hands its bytes to `body` before closing it.
    private func receiveMessage<Result>(
        flags: ZMQReceiveFlags, _ body: (_ frame: UnsafeRawBufferPointer, _ hasMore: Bool) -> Result
    ) throws(ZMQError) -> Result? {
        let socket = try openHandle("zmq_msg_recv")
        // A temporary allocation gives the message a fixed address: libzmq keeps frames of up to 33 bytes inside
        // the `zmq_msg_t` itself, so a Swift copy of the struct would move the bytes `zmq_msg_data` points to.
        let outcome: Swift.Result<Result?, ZMQError> = withUnsafeTemporaryAllocation(of: zmq_msg_t.self, capacity: 1) {
            storage in
            let message = storage.baseAddress!
            zmq_msg_init(message)
            defer { zmq_msg_close(message) }
            return Swift.Result { () throws(ZMQError) -> Result? in
                guard
                    try zmqCall(
                        "zmq_msg_recv", subject: type.name, mode: flags.callMode,
                        {
                            zmq_msg_recv(message, socket, flags.rawValue)
                        }) != nil
                else { return nil }
                let frame = UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message))
                return body(frame, zmq_msg_more(message) != 0)
            }
        }
        return try outcome.get()
    }
}
