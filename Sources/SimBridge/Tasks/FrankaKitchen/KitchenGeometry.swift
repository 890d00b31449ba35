import Foundation

/// A rotation as the world coordinates of its frame's axes (the columns of the rotation matrix).
struct Rotation3: Sendable {
    var x: SIMD3<Double>
    var y: SIMD3<Double>
    var z: SIMD3<Double>

    static let identity = Rotation3(x: [1, 0, 0], y: [0, 1, 0], z: [0, 0, 1])

    /// The rotation by `angle` radians about the unit vector `axis` (Rodrigues).
    static func about(_ axis: SIMD3<Double>, angle: Double) -> Rotation3 {
        let (c, s) = (cos(angle), sin(angle))
        func rotate(_ v: SIMD3<Double>) -> SIMD3<Double> {
            v * c + cross(axis, v) * s + axis * ((axis * v).sum() * (1 - c))
        }
        return Rotation3(x: rotate([1, 0, 0]), y: rotate([0, 1, 0]), z: rotate([0, 0, 1]))
    }

    /// From MuJoCo's row-major 3x3 matrix (`xmat`): column j is (m[j], m[3 + j], m[6 + j]).
    init(rowMajor m: UnsafePointer<Double>) {
        x = [m[0], m[3], m[6]]
        y = [m[1], m[4], m[7]]
        z = [m[2], m[5], m[8]]
    }

    init(x: SIMD3<Double>, y: SIMD3<Double>, z: SIMD3<Double>) {
        self.x = x
        self.y = y
        self.z = z
    }

    func apply(_ v: SIMD3<Double>) -> SIMD3<Double> { x * v.x + y * v.y + z * v.z }

    static func * (a: Rotation3, b: Rotation3) -> Rotation3 {
        Rotation3(x: a.apply(b.x), y: a.apply(b.y), z: a.apply(b.z))
    }

    var transposed: Rotation3 {
        Rotation3(x: [x.x, y.x, z.x], y: [x.y, y.y, z.y], z: [x.z, y.z, z.z])
    }

    /// The rotation vector w (axis times angle, world frame) with `self = exp(w) * other`.
    func difference(from other: Rotation3) -> SIMD3<Double> {
        let e = self * other.transposed
        // Quaternion of e (Shepperd's method), sign chosen so that w >= 0: the shortest rotation.
        let (m00, m11, m22) = (e.x.x, e.y.y, e.z.z)
        let trace = m00 + m11 + m22
        var q: SIMD4<Double>  // w, x, y, z
        if trace > 0 {
            let s = (trace + 1).squareRoot() * 2
            q = [s / 4, (e.y.z - e.z.y) / s, (e.z.x - e.x.z) / s, (e.x.y - e.y.x) / s]
        } else if m00 > m11 && m00 > m22 {
            let s = (1 + m00 - m11 - m22).squareRoot() * 2
            q = [(e.y.z - e.z.y) / s, s / 4, (e.y.x + e.x.y) / s, (e.z.x + e.x.z) / s]
        } else if m11 > m22 {
            let s = (1 + m11 - m00 - m22).squareRoot() * 2
            q = [(e.z.x - e.x.z) / s, (e.y.x + e.x.y) / s, s / 4, (e.z.y + e.y.z) / s]
        } else {
            let s = (1 + m22 - m00 - m11).squareRoot() * 2
            q = [(e.x.y - e.y.x) / s, (e.z.x + e.x.z) / s, (e.z.y + e.y.z) / s, s / 4]
        }
        if q.x < 0 { q = -q }
        let v = SIMD3(q.y, q.z, q.w)
        let sine = length(v)
        guard sine > 1e-12 else { return .zero }
        return v / sine * (2 * atan2(sine, q.x))
    }
}

func cross(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
    [a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x]
}

func length(_ v: SIMD3<Double>) -> Double { (v * v).sum().squareRoot() }

/// `v` shortened to at most `limit` long.
func clampedLength(_ v: SIMD3<Double>, _ limit: Double) -> SIMD3<Double> {
    let n = length(v)
    return n > limit ? v * (limit / n) : v
}

/// Solves `a x = b` for a small symmetric positive definite `a` (`[n, n]` row-major) by Cholesky; `a` and `b` are
/// overwritten (`b` becomes x).
func choleskySolve(_ a: inout [Double], _ b: inout [Double], _ n: Int) {
    for j in 0..<n {
        var d = a[j * n + j]
        for k in 0..<j { d -= a[j * n + k] * a[j * n + k] }
        d = max(d, 1e-12).squareRoot()
        a[j * n + j] = d
        for i in (j + 1)..<n {
            var s = a[i * n + j]
            for k in 0..<j { s -= a[i * n + k] * a[j * n + k] }
            a[i * n + j] = s / d
        }
    }
    for i in 0..<n {
        var s = b[i]
        for k in 0..<i { s -= a[i * n + k] * b[k] }
        b[i] = s / a[i * n + i]
    }
    for i in stride(from: n - 1, through: 0, by: -1) {
        var s = b[i]
        for k in (i + 1)..<n { s -= a[k * n + i] * b[k] }
        b[i] = s / a[i * n + i]
    }
}

/// Damped least squares for a `[6, 7]` Jacobian: `J^T (J J^T + damping I)^-1 e` (6 -> 7).
func dampedPseudoInverse(_ J: [Double], _ e: [Double], damping: Double) -> [Double] {
    var a = [Double](repeating: 0, count: 36)
    for i in 0..<6 {
        for j in 0..<6 {
            var s = 0.0
            for k in 0..<7 { s += J[i * 7 + k] * J[j * 7 + k] }
            a[i * 6 + j] = s + (i == j ? damping : 0)
        }
    }
    var y = e
    choleskySolve(&a, &y, 6)
    var result = [Double](repeating: 0, count: 7)
    for k in 0..<7 {
        var s = 0.0
        for i in 0..<6 { s += J[i * 7 + k] * y[i] }
        result[k] = s
    }
    return result
}

/// `J z` for a `[6, 7]` Jacobian.
func multiply(_ J: [Double], _ z: [Double]) -> [Double] {
    (0..<6).map { i in (0..<7).reduce(0) { $0 + J[i * 7 + $1] * z[$1] } }
}
