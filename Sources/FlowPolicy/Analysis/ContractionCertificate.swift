/// A vector field with Jacobian products, for contraction analysis: `f(t, x)` (the observation fixed) and
/// `Jᵀ u`. Allocating; analysis is not a hot path.
public protocol JacobianField {
    var dimensions: Int { get }
    func value(t: Float, x: [Float]) -> [Float]
    /// `J(t, x)ᵀ u`.
    func transposedProduct(t: Float, x: [Float], u: [Float]) -> [Float]
}

extension JacobianField {
    /// `J(t, x) u` by a central finite difference (step `epsilon` along unit u, scaled by |u|).
    public func product(t: Float, x: [Float], u: [Float], epsilon: Float = 1e-3) -> [Float] {
        let norm = length(u)
        guard norm > 0 else { return [Float](repeating: 0, count: dimensions) }
        let step = epsilon / norm
        let plus = value(t: t, x: zip(x, u).map { $0 + step * $1 })
        let minus = value(t: t, x: zip(x, u).map { $0 - step * $1 })
        return zip(plus, minus).map { ($0 - $1) / (2 * step) }
    }

    /// The largest eigenvalue of `sym(J(t, x)) = (J + Jᵀ) / 2`: the field's local expansion rate in the identity
    /// metric (negative: contracting). Power iteration on Jacobian-vector products; when the eigenvalue of largest
    /// magnitude is negative, a second power iteration on `sym(J) - λ I` finds the largest.
    public func largestSymmetricEigenvalue(t: Float, x: [Float], iterations: Int = 60, seed: UInt64 = 0) -> Float {
        let symmetric = { (u: [Float]) -> [Float] in
            zip(self.product(t: t, x: x, u: u), self.transposedProduct(t: t, x: x, u: u)).map { 0.5 * ($0 + $1) }
        }
        let dominant = powerIteration(dimensions: dimensions, iterations: iterations, seed: seed, apply: symmetric)
        if dominant >= 0 { return dominant }
        let shifted = powerIteration(dimensions: dimensions, iterations: iterations, seed: seed + 1) { u in
            zip(symmetric(u), u).map { $0 - dominant * $1 }
        }
        return shifted + dominant
    }
}

/// The dominant (largest magnitude) eigenvalue of a symmetric operator, as the Rayleigh quotient after `iterations`
/// power-iteration steps from a seeded random start.
func powerIteration(dimensions: Int, iterations: Int, seed: UInt64, apply: ([Float]) -> [Float]) -> Float {
    var generator = RandomSource(seed: seed)
    var u = (0..<dimensions).map { _ in generator.nextGaussian() }
    u = u.map { $0 / length(u) }
    var eigenvalue: Float = 0
    for _ in 0..<iterations {
        let w = apply(u)
        eigenvalue = zip(u, w).reduce(0) { $0 + $1.0 * $1.1 }
        let norm = length(w)
        guard norm > 0 else { return 0 }
        u = w.map { $0 / norm }
    }
    return eigenvalue
}

func length(_ v: [Float]) -> Float { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

/// The fixed-step map `Φ^K(z)` of a field (Euler, midpoint or RK4 from t = 0 to 1), for disturbance gains.
public func integrate(_ field: some JacobianField, from z: [Float], method: SolverMethod, steps: Int) -> [Float] {
    let h = 1 / Float(steps)
    var x = z
    func add(_ a: [Float], _ scale: Float, _ b: [Float]) -> [Float] { zip(a, b).map { $0 + scale * $1 } }
    for k in 0..<steps {
        let t = Float(k) * h
        switch method {
        case .euler:
            x = add(x, h, field.value(t: t, x: x))
        case .midpoint:
            let k1 = field.value(t: t, x: x)
            x = add(x, h, field.value(t: t + h / 2, x: add(x, h / 2, k1)))
        case .rk4:
            let k1 = field.value(t: t, x: x)
            let k2 = field.value(t: t + h / 2, x: add(x, h / 2, k1))
            let k3 = field.value(t: t + h / 2, x: add(x, h / 2, k2))
            let k4 = field.value(t: t + h, x: add(x, h, k3))
            x = zip(x, zip(zip(k1, k2), zip(k3, k4))).map { $0 + h / 6 * ($1.0.0 + 2 * $1.0.1 + 2 * $1.1.0 + $1.1.1) }
        }
    }
    return x
}

/// `|Φ(z + δ) - Φ(z)| / |δ|` for `δ = size · unit` along a seeded random unit direction.
public func disturbanceGain(
    _ field: some JacobianField, at z: [Float], method: SolverMethod, steps: Int, size: Float = 1e-2, seed: UInt64
) -> Float {
    var generator = RandomSource(seed: seed)
    var direction = (0..<field.dimensions).map { _ in generator.nextGaussian() }
    direction = direction.map { size * $0 / length(direction) }
    let reference = integrate(field, from: z, method: method, steps: steps)
    let moved = integrate(field, from: zip(z, direction).map(+), method: method, steps: steps)
    return length(zip(moved, reference).map(-)) / size
}

/// A policy's velocity field at one observation window (normalized), as a `JacobianField`: the whole field
/// (network + head) or the network alone. Batch-1 evaluations with exact `Jᵀ u` from the backward pass.
public final class PolicyJacobianField: JacobianField {
    public let field: VelocityField
    public let parameters: VelocityFieldParameters
    public let observation: [Float]
    public let dimensions: Int
    let cache: VelocityFieldCache

    /// `includeHead: false` analyses the network alone (the pre-trained base of a residual policy).
    public init(checkpoint: Checkpoint, observation: [Float], includeHead: Bool = true) {
        field = includeHead ? checkpoint.field : VelocityField(network: checkpoint.network, head: nil)
        parameters = includeHead ? checkpoint.fieldParameters
            : VelocityFieldParameters(network: checkpoint.parameters, head: nil)
        self.observation = observation
        dimensions = checkpoint.network.configuration.chunkDimensions
        cache = VelocityFieldCache(field: field, capacity: 1)
    }

    public func value(t: Float, x: [Float]) -> [Float] {
        var v = [Float](repeating: 0, count: dimensions)
        var time = [t]
        x.withUnsafeBufferPointer { x in
            observation.withUnsafeBufferPointer { o in
                v.withUnsafeMutableBufferPointer { v in
                    field.forward(x: x.baseAddress!, t: &time, observation: o.baseAddress!, batch: 1,
                                  parameters: parameters, cache: cache, output: v.baseAddress!)
                }
            }
        }
        return v
    }

    public func transposedProduct(t: Float, x: [Float], u: [Float]) -> [Float] {
        _ = value(t: t, x: x)
        var result = [Float](repeating: 0, count: dimensions)
        x.withUnsafeBufferPointer { x in
            u.withUnsafeBufferPointer { u in
                result.withUnsafeMutableBufferPointer { r in
                    field.backward(dOutput: u.baseAddress!, x: x.baseAddress!, batch: 1, parameters: parameters,
                                   networkGradients: nil, headGradients: nil, cache: cache, dX: r.baseAddress!)
                }
            }
        }
        return result
    }

    /// The head's guaranteed contraction rate at (t, o) (0 without a head).
    public func guaranteedRate(t: Float) -> Float {
        _ = value(t: t, x: [Float](repeating: 0, count: dimensions))
        return cache.guaranteedRate(field: field, row: 0) ?? 0
    }
}
