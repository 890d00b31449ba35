import CZeroMQ

/// A CURVE key pair (Curve25519, as libzmq's CURVE mechanism uses it), each key as 40 characters of Z85 text.
///
/// The public key identifies a peer: a server's clients need it to connect
/// (``SocketSecurity/client(keyPair:serverPublicKey:)``), and a server lets a client in only if the client's public
/// key is on its allow-list (``ZAPHandler``). The secret key never leaves its machine. A value of this type is always
/// valid: both keys are Z85 and the public key belongs to the secret key. Printing it shows the public key only.
///
/// On disk a pair is two ZeroMQ certificate files, as CZMQ's `zcert` and pyzmq's `zmq.auth.create_certificates`
/// write them (see `CurveKeyPair+Files.swift`): `NAME.key` with the public key, `NAME.key_secret` with both.
///
/// The corresponding C function is `zmq_curve_keypair`.
public struct CurveKeyPair: Sendable, Equatable {
    /// The public key, 40 Z85 characters.
    public let publicKey: String
    /// The secret key, 40 Z85 characters.
    public let secretKey: String

    /// A pair from its two keys; throws if either is not 40 Z85 characters or the public key does not belong to the
    /// secret key.
    public init(publicKey: String, secretKey: String) throws(CurveError) {
        try Self.validate(publicKey, role: "public key")
        let derived = try Self.publicKey(ofSecretKey: secretKey)
        guard derived == publicKey else {
            throw CurveError(
                "the public key \(publicKey) does not belong to the secret key (whose public key is \(derived))")
        }
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// The pair of `secretKey`, deriving the public key from it.
    ///
    /// The corresponding C function is `zmq_curve_public`.
    public init(secretKey: String) throws(CurveError) {
        publicKey = try Self.publicKey(ofSecretKey: secretKey)
        self.secretKey = secretKey
    }

    /// A pair whose keys were checked by the caller.
    init(checkedPublicKey: String, secretKey: String) {
        publicKey = checkedPublicKey
        self.secretKey = secretKey
    }

    /// A new random pair. Throws `ENOTSUP` if libzmq was built without CURVE (libsodium).
    ///
    /// The corresponding C function is `zmq_curve_keypair`.
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var publicText = [CChar](repeating: 0, count: 41)
        var secretText = [CChar](repeating: 0, count: 41)
        try zmqCheck("zmq_curve_keypair", subject: "CURVE needs libzmq built with libsodium") {
            zmq_curve_keypair(&publicText, &secretText)
        }
        return CurveKeyPair(checkedPublicKey: string(publicText), secretKey: string(secretText))
    }

    // MARK: Z85 keys

    /// Z85's 85 characters (ZeroMQ RFC 32), in the order of their values.
    public static let z85Alphabet =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

    private static let z85Characters = Set(z85Alphabet.utf8)

    /// Throws unless `key` is a CURVE key in Z85: 40 characters of the Z85 alphabet that decode to 32 bytes.
    /// `role` names the key in the message ("public key", "server key"); `file` is the file it came from, if any.
    public static func validate(_ key: String, role: String = "key", file: String? = nil) throws(CurveError) {
        _ = try decode(key, role: role, file: file)
    }

    /// The 32 bytes of a Z85 key, or a message saying what is wrong with it.
    ///
    /// The corresponding C function is `zmq_z85_decode`.
    static func decode(_ key: String, role: String, file: String?) throws(CurveError) -> [UInt8] {
        let expected = "a \(role) is 40 characters of Z85 (0-9, a-z, A-Z and .-:+=^!/*?&<>()[]{}@%$#)"
        let scalars = Array(key.unicodeScalars)
        if let index = scalars.firstIndex(where: { !($0.isASCII && z85Characters.contains(UInt8($0.value))) }) {
            let character = scalars[index]
            let shown = (0x21...0x7E).contains(character.value)
                ? "\"\(character)\"" : "U+" + String(character.value, radix: 16, uppercase: true)
            throw CurveError("\(expected); found \(shown) at character \(index + 1)", file: file)
        }
        guard scalars.count == 40 else {
            throw CurveError("\(expected); got \(scalars.count) characters", file: file)
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        // Z85 encodes four bytes in five characters; a group whose value exceeds 2^32 - 1 does not decode.
        guard zmq_z85_decode(&bytes, key) != nil else {
            throw CurveError("\(expected); this one does not decode (a group of 5 characters exceeds 32 bits)",
                             file: file)
        }
        return bytes
    }

    /// The Z85 text of 32 key bytes.
    ///
    /// The corresponding C function is `zmq_z85_encode`.
    static func encode(_ bytes: [UInt8]) -> String {
        precondition(bytes.count == 32, "a CURVE key is 32 bytes, got \(bytes.count)")
        var text = [CChar](repeating: 0, count: 41)
        let encoded = zmq_z85_encode(&text, bytes, bytes.count)
        precondition(encoded != nil, "zmq_z85_encode refused 32 bytes")
        return string(text)
    }

    /// The public key of `secretKey`.
    ///
    /// The corresponding C function is `zmq_curve_public`.
    static func publicKey(ofSecretKey secretKey: String, file: String? = nil) throws(CurveError) -> String {
        try validate(secretKey, role: "secret key", file: file)
        var publicText = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicText, secretKey) == 0 else {
            throw CurveError(
                "cannot derive the public key: libzmq has no CURVE support (errno \(zmq_errno()))", file: file)
        }
        return string(publicText)
    }

    /// The text of a zero-terminated C buffer.
    private static func string(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

// The secret key stays out of logs: `print`, string interpolation and `dump` show the public key only.
extension CurveKeyPair: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "CurveKeyPair(publicKey: \(publicKey), secretKey: <hidden>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["publicKey": publicKey, "secretKey": "<hidden>"]) }
}
