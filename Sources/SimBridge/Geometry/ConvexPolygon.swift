/// A convex polygon of at most 16 vertices in counter-clockwise order, stored inline (no heap allocation), for
/// exact intersection areas on the hot path.
public struct ConvexPolygon: Sendable {
    public static let capacity = 16
    public var x = SIMD16<Double>()
    public var y = SIMD16<Double>()
    public private(set) var count = 0

    public init() {}

    /// `points` in counter-clockwise order.
    public init(_ points: [SIMD2<Double>]) {
        precondition(points.count <= Self.capacity)
        for point in points { append(point) }
    }

    public subscript(index: Int) -> SIMD2<Double> { SIMD2(x[index], y[index]) }

    /// Whether `point` is inside or on the boundary (the vertices are counter-clockwise).
    public func contains(_ point: SIMD2<Double>) -> Bool {
        guard count >= 3 else { return false }
        for i in 0..<count where cross(self[(i + 1) % count] - self[i], point - self[i]) < 0 { return false }
        return true
    }

    @inline(__always)
    public mutating func append(_ point: SIMD2<Double>) {
        precondition(count < Self.capacity)
        x[count] = point.x
        y[count] = point.y
        count += 1
    }

    /// Shoelace area (non-negative).
    public var area: Double {
        guard count >= 3 else { return 0 }
        var twice = 0.0
        for i in 0..<count {
            let j = i + 1 == count ? 0 : i + 1
            twice += x[i] * y[j] - x[j] * y[i]
        }
        return abs(twice) / 2
    }

    /// The part of this polygon inside the convex polygon `clip` (Sutherland–Hodgman; both counter-clockwise). Exact
    /// up to floating-point rounding; shared edges and touching polygons are handled (points on an edge count as
    /// inside).
    public func intersection(_ clip: ConvexPolygon) -> ConvexPolygon {
        var output = self
        for edge in 0..<clip.count {
            guard output.count > 0 else { break }
            let a = clip[edge]
            let b = clip[edge + 1 == clip.count ? 0 : edge + 1]
            let direction = b - a
            let input = output
            output = ConvexPolygon()
            for i in 0..<input.count {
                let current = input[i]
                let next = input[i + 1 == input.count ? 0 : i + 1]
                let currentSide = cross(direction, current - a)
                let nextSide = cross(direction, next - a)
                if currentSide >= 0 {
                    output.append(current)
                    if nextSide < 0 {
                        output.append(current + (next - current) * (currentSide / (currentSide - nextSide)))
                    }
                } else if nextSide >= 0 {
                    output.append(current + (next - current) * (currentSide / (currentSide - nextSide)))
                }
            }
        }
        return output
    }
}

@inline(__always)
func cross(_ a: SIMD2<Double>, _ b: SIMD2<Double>) -> Double { a.x * b.y - a.y * b.x }

/// A planar pose: position and angle (radians, counter-clockwise).
public struct Pose2D: Equatable, Sendable, Codable {
    public var x: Double
    public var y: Double
    public var angle: Double

    public init(x: Double, y: Double, angle: Double) {
        self.x = x
        self.y = y
        self.angle = angle
    }

    /// A point given in this pose's frame, in world coordinates.
    @inline(__always)
    public func apply(_ local: SIMD2<Double>) -> SIMD2<Double> {
        let (c, s) = (cosine(angle), sine(angle))
        return SIMD2(x + c * local.x - s * local.y, y + s * local.x + c * local.y)
    }
}
