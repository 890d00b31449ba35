import Foundation

/// FNV-1a, 64 bits, over bytes: a fingerprint that tells two files or datasets apart (not a security measure),
/// written `fnv1a64:` and 16 hex digits.
public struct ContentHash {
    private var hash: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func mix(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
    }

    public mutating func mix<T>(_ array: [T]) { array.withUnsafeBytes { mix($0) } }

    public var text: String { String(format: "fnv1a64:%016llx", hash) }
}
