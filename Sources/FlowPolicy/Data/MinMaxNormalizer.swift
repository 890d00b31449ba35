/// Per-dimension affine map of data to [-1, 1] from its min and max (Diffusion Policy's `limits` mode).
/// Dimensions whose range is below `rangeEpsilon` pass through unchanged.
public struct MinMaxNormalizer: Equatable, Sendable {
    public static let rangeEpsilon: Float = 1e-4
    public let minimum: [Float]
    public let maximum: [Float]
    /// normalized = raw * scale + offset.
    public let scale: [Float]
    public let offset: [Float]

    public var dimensions: Int { minimum.count }

    public init(minimum: [Float], maximum: [Float]) {
        precondition(minimum.count == maximum.count)
        self.minimum = minimum
        self.maximum = maximum
        var scale = [Float](repeating: 1, count: minimum.count)
        var offset = [Float](repeating: 0, count: minimum.count)
        for i in minimum.indices where maximum[i] - minimum[i] >= Self.rangeEpsilon {
            scale[i] = 2 / (maximum[i] - minimum[i])
            offset[i] = -1 - minimum[i] * scale[i]
        }
        self.scale = scale
        self.offset = offset
    }

    /// Fits to the rows of `data [N, D]`.
    public init(fitting data: [Float], dimensions: Int) {
        var minimum = [Float](repeating: .infinity, count: dimensions)
        var maximum = [Float](repeating: -.infinity, count: dimensions)
        for (i, value) in data.enumerated() {
            let d = i % dimensions
            minimum[d] = Swift.min(minimum[d], value)
            maximum[d] = Swift.max(maximum[d], value)
        }
        if data.isEmpty {
            minimum = [Float](repeating: 0, count: dimensions)
            maximum = minimum
        }
        self.init(minimum: minimum, maximum: maximum)
    }

    /// In place, on `rows` rows of `dimensions` values.
    @inline(__always)
    public func normalize(_ values: UnsafeMutablePointer<Float>, rows: Int) {
        scale.withUnsafeBufferPointer { s in
            offset.withUnsafeBufferPointer { o in
                for r in 0..<rows {
                    let row = values + r * s.count
                    for d in 0..<s.count { row[d] = row[d] * s[d] + o[d] }
                }
            }
        }
    }

    @inline(__always)
    public func denormalize(_ values: UnsafeMutablePointer<Float>, rows: Int) {
        scale.withUnsafeBufferPointer { s in
            offset.withUnsafeBufferPointer { o in
                for r in 0..<rows {
                    let row = values + r * s.count
                    for d in 0..<s.count { row[d] = (row[d] - o[d]) / s[d] }
                }
            }
        }
    }

    public func normalized(_ values: [Float]) -> [Float] {
        var copy = values
        copy.withUnsafeMutableBufferPointer { normalize($0.baseAddress!, rows: values.count / dimensions) }
        return copy
    }

    public func denormalized(_ values: [Float]) -> [Float] {
        var copy = values
        copy.withUnsafeMutableBufferPointer { denormalize($0.baseAddress!, rows: values.count / dimensions) }
        return copy
    }
}
