import Foundation
import Testing
import FlowPolicy

/// `f(t, x) = A x`: J = A everywhere.
private struct LinearField: JacobianField {
    let matrix: [[Float]]
    var dimensions: Int { matrix.count }
    func value(t: Float, x: [Float]) -> [Float] { matrix.map { row in zip(row, x).reduce(0) { $0 + $1.0 * $1.1 } } }
    func transposedProduct(t: Float, x: [Float], u: [Float]) -> [Float] {
        (0..<dimensions).map { j in (0..<dimensions).reduce(0) { $0 + matrix[$1][j] * u[$1] } }
    }
}

/// `A = Q diag(d) Qᵀ + S`: a rotated symmetric part with eigenvalues d, plus a skew part that leaves sym(A) alone.
private func matrix(eigenvalues d: [Float], skew: Float) -> [[Float]] {
    let n = d.count
    // Q: the Householder reflection I - 2 v vᵀ of a fixed unit vector (orthogonal and symmetric).
    let raw = (0..<n).map { Float($0 + 1) }
    let v = raw.map { $0 / raw.reduce(0) { $0 + $1 * $1 }.squareRoot() }
    let q = (0..<n).map { i in (0..<n).map { j in (i == j ? 1 : 0) - 2 * v[i] * v[j] } }
    return (0..<n).map { i in
        (0..<n).map { j in
            let symmetric = (0..<n).reduce(Float(0)) { $0 + q[i][$1] * d[$1] * q[j][$1] }
            let skewPart: Float = i < j ? skew * Float(i + 2 * j) : (i > j ? -skew * Float(j + 2 * i) : 0)
            return symmetric + skewPart
        }
    }
}

@Suite struct ContractionCertificateTests {
    @Test func largestSymmetricEigenvalueOfLinearFields() {
        let x: [Float] = [0.3, -1, 2, 0.5, -0.7]
        // Expanding direction present: λ_max = 0.5 (and the skew part must not change it).
        let expanding = LinearField(matrix: matrix(eigenvalues: [0.5, -1, -2, 0.1, -0.4], skew: 0.3))
        #expect(abs(expanding.largestSymmetricEigenvalue(t: 0.3, x: x) - 0.5) < 1e-2)
        // Contracting everywhere, the dominant eigenvalue is the most negative: λ_max = -0.3 needs the shifted pass.
        let contracting = LinearField(matrix: matrix(eigenvalues: [-0.3, -1, -2.5, -0.6, -1.7], skew: 0.2))
        #expect(abs(contracting.largestSymmetricEigenvalue(t: 0.3, x: x) - (-0.3)) < 1e-2)
    }

    /// For Euler on `A x` the K-step map is `(I + A/K)^K`, so the gain along a direction u is |(I + A/K)^K u| / |u|.
    @Test func disturbanceGainOfALinearField() {
        let d: [Float] = [-2, 0.5, -1, 1]
        let field = LinearField(matrix: (0..<4).map { i in (0..<4).map { j in i == j ? d[i] : 0 } })
        let K = 4
        let z: [Float] = [0.2, -0.4, 1, 0.3]
        let gain = disturbanceGain(field, at: z, method: .euler, steps: K, size: 1e-2, seed: 5)
        var generator = RandomSource(seed: 5)
        var u = (0..<4).map { _ in generator.nextGaussian() }
        u = u.map { $0 / u.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        let expected = zip(d, u).map { pow(1 + $0 / Float(K), Float(K)) * $1 }.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(gain - expected) < 1e-3, "\(gain) vs \(expected)")
    }
}
