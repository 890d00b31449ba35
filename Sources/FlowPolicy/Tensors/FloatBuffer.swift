/// A fixed-size, 64-byte aligned, zero-initialized buffer of `Float` that owns its memory.
///
/// Numeric code works on raw pointers into buffers like this one (the way llm.c does) so that the hot paths
/// never touch Swift's copy-on-write arrays and never allocate. The buffer is a class: views into it are
/// pointers, and whoever holds a view keeps the buffer alive.
public final class FloatBuffer {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        precondition(count >= 0, "FloatBuffer count must be non-negative")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(buffer) }

    public subscript(index: Int) -> Float {
        get { pointer[index] }
        set { pointer[index] = newValue }
    }

    public func fill(_ value: Float) { pointer.update(repeating: value, count: count) }
    public func copy(from other: FloatBuffer) {
        precondition(other.count == count, "FloatBuffer sizes differ: \(other.count) vs \(count)")
        pointer.update(from: other.pointer, count: count)
    }
}
