import Foundation

// Dimensions: B batch, Dx = Tp * Da, Do' = To * Do, Te time embedding, Dc = Te + Do', Hh hidden, r rank of U,
// q rank of the skew term, Dout = Dx (m) + Dx (d) + Dx r (U) + 2 Dx q (P, Q).

/// Sizes of a `ContractiveResidualHead`.
public struct ResidualHeadConfiguration: Codable, Equatable, Sendable {
    public var chunkDimensions: Int
    public var observationDimensions: Int
    public var hidden: Int
    /// Rank of U in K = diag(softplus(d) + ε) + U Uᵀ.
    public var rank: Int
    /// Rank of the skew-symmetric term S = P Qᵀ - Q Pᵀ (0: no skew term).
    public var skewRank: Int
    /// ε: the guaranteed contraction rate of the head, sym(K) ⪰ ε I.
    public var epsilon: Float
    public var timeEmbedding: Int

    public init(chunkDimensions: Int, observationDimensions: Int, hidden: Int = 128, rank: Int = 4, skewRank: Int = 2,
                epsilon: Float = 0.1, timeEmbedding: Int = 32) {
        self.chunkDimensions = chunkDimensions
        self.observationDimensions = observationDimensions
        self.hidden = hidden
        self.rank = rank
        self.skewRank = skewRank
        self.epsilon = epsilon
        self.timeEmbedding = timeEmbedding
    }

    var conditionDimensions: Int { timeEmbedding + observationDimensions }
    var outputDimensions: Int { chunkDimensions * (2 + rank + 2 * skewRank) }

    public func validate() throws(FlowPolicyError) {
        guard chunkDimensions >= 1, hidden >= 1, rank >= 0, skewRank >= 0, timeEmbedding >= 2,
              timeEmbedding % 2 == 0, epsilon > 0, epsilon.isFinite
        else {
            throw .invalidConfiguration(
                "residual head: sizes must be positive, the time embedding even and ε > 0 (got \(self))")
        }
    }
}

/// The residual field of seed 000, contracting by construction (METHODS.md section 3):
///
/// `r(t, x, o) = -K(t, o) (x - m(t, o)) + S(t, o) (x - m(t, o))`, `K = diag(softplus(d) + ε) + U Uᵀ`,
/// `S = P Qᵀ - Q Pᵀ`,
///
/// where m, d, U, P, Q come from a small MLP of `c = [temb(t), o]` (`l1`, `l2`: Linear + Mish, `out`: Linear). For
/// any x, y: `<r(x) - r(y), x - y> = -(x - y)ᵀ K (x - y) <= -ε |x - y|²` (K's symmetric part is at least ε I and S
/// is skew, so it adds rotation without changing the rate). The head is affine in x, so the bound is exact.
///
/// Parameters live in their own flat buffer, named `residual.l1.weight` ... in checkpoints. At initialization the
/// output layer is scaled down and d starts at -4 (softplus ≈ 0.018), so the head starts close to `-ε (x - m)`.
public final class ContractiveResidualHead: Sendable {
    public let configuration: ResidualHeadConfiguration
    public let layout: ParameterLayout
    let timeEmbedding: SinusoidalTimeEmbedding
    let l1: Linear
    let l2: Linear
    let out: Linear

    public init(_ configuration: ResidualHeadConfiguration) throws(FlowPolicyError) {
        try configuration.validate()
        self.configuration = configuration
        var layout = ParameterLayout()
        timeEmbedding = SinusoidalTimeEmbedding(configuration.timeEmbedding)
        l1 = Linear(configuration.conditionDimensions, configuration.hidden, name: "residual.l1", layout: &layout)
        l2 = Linear(configuration.hidden, configuration.hidden, name: "residual.l2", layout: &layout)
        out = Linear(configuration.hidden, configuration.outputDimensions, name: "residual.out", layout: &layout)
        self.layout = layout
    }

    /// PyTorch's default initialization, then the output layer scaled by 0.01 and d's biases set to -4.
    public func initialize(_ parameters: FloatBuffer, using generator: inout RandomSource) {
        layout.initialize(parameters, using: &generator)
        let Dx = configuration.chunkDimensions
        for i in 0..<(configuration.outputDimensions * configuration.hidden) { parameters[out.weight + i] *= 0.01 }
        for i in 0..<configuration.outputDimensions { parameters[out.bias + i] *= 0.01 }
        for i in Dx..<(2 * Dx) { parameters[out.bias + i] = -4 }
    }

    /// `v [B, Dx] += r(t, x, o)`; keeps what the backward pass needs in `cache`.
    public func forward(
        x: UnsafePointer<Float>, t: UnsafePointer<Float>, observation: UnsafePointer<Float>, batch B: Int,
        parameters p: UnsafePointer<Float>, cache: ResidualHeadCache, addingTo v: UnsafeMutablePointer<Float>
    ) {
        precondition(B <= cache.capacity)
        let c = configuration
        let (Dx, Dc, Te, Do, H, Dout) = (
            c.chunkDimensions, c.conditionDimensions, c.timeEmbedding, c.observationDimensions, c.hidden,
            c.outputDimensions
        )
        timeEmbedding(t, batch: B, output: cache.condition, outputStride: Dc)
        for row in 0..<B { (cache.condition + row * Dc + Te).update(from: observation + row * Do, count: Do) }
        l1(cache.condition, batch: B, parameters: p, output: cache.hidden1)
        Mish.forward(cache.hidden1, count: B * H, output: cache.mish1)
        l2(cache.mish1, batch: B, parameters: p, output: cache.hidden2)
        Mish.forward(cache.hidden2, count: B * H, output: cache.mish2)
        out(cache.mish2, batch: B, parameters: p, output: cache.output)
        for row in 0..<B {
            let factors = Factors(cache.output + row * Dout, configuration: c)
            let delta = cache.delta + row * Dx
            let xr = x + row * Dx
            for i in 0..<Dx { delta[i] = xr[i] - factors.m[i] }
            let u = cache.projections + row * cache.projectionStride
            let pProjection = u + c.rank
            let qProjection = pProjection + c.skewRank
            project(delta, onto: factors.u, columns: c.rank, Dx: Dx, into: u)
            project(delta, onto: factors.p, columns: c.skewRank, Dx: Dx, into: pProjection)
            project(delta, onto: factors.q, columns: c.skewRank, Dx: Dx, into: qProjection)
            let vr = v + row * Dx
            for i in 0..<Dx {
                var value = -(softplus(factors.d[i]) + c.epsilon) * delta[i]
                for k in 0..<c.rank { value -= factors.u[i * c.rank + k] * u[k] }
                for k in 0..<c.skewRank {
                    value += factors.p[i * c.skewRank + k] * qProjection[k]
                        - factors.q[i * c.skewRank + k] * pProjection[k]
                }
                vr[i] += value
            }
        }
    }

    /// Backward pass of the last `forward` that used `cache`, from `dOutput = ∂L/∂r` [B, Dx]: accumulates
    /// `gradients += ∂L/∂φ` (when given) and, when given, `dX += ∂L/∂x` and `dObservation += ∂L/∂o`.
    public func backward(
        dOutput g: UnsafePointer<Float>, batch B: Int, parameters p: UnsafePointer<Float>,
        gradients: UnsafeMutablePointer<Float>?, cache: ResidualHeadCache,
        dX: UnsafeMutablePointer<Float>? = nil, dObservation: UnsafeMutablePointer<Float>? = nil
    ) {
        let c = configuration
        let (Dx, Dc, Te, Do, H, Dout) = (
            c.chunkDimensions, c.conditionDimensions, c.timeEmbedding, c.observationDimensions, c.hidden,
            c.outputDimensions
        )
        let (r, q) = (c.rank, c.skewRank)
        let dOut = cache.dOutput
        for row in 0..<B {
            let factors = Factors(cache.output + row * Dout, configuration: c)
            let gradient = Factors(dOut + row * Dout, configuration: c)
            let delta = cache.delta + row * Dx
            let u = cache.projections + row * cache.projectionStride
            let pProjection = u + r
            let qProjection = pProjection + q
            let gr = g + row * Dx
            // Projections of g: Uᵀg [r], Pᵀg [q], Qᵀg [q].
            let scratch = cache.scratch
            let uG = scratch, pG = scratch + r, qG = scratch + r + q
            project(gr, onto: factors.u, columns: r, Dx: Dx, into: uG)
            project(gr, onto: factors.p, columns: q, Dx: Dx, into: pG)
            project(gr, onto: factors.q, columns: q, Dx: Dx, into: qG)
            for i in 0..<Dx {
                let d = factors.d[i]
                // dδ = -s g - U(Uᵀg) + Q(Pᵀg) - P(Qᵀg); dm = -dδ; dx = dδ.
                var dDelta = -(softplus(d) + c.epsilon) * gr[i]
                for k in 0..<r { dDelta -= factors.u[i * r + k] * uG[k] }
                for k in 0..<q { dDelta += factors.q[i * q + k] * pG[k] - factors.p[i * q + k] * qG[k] }
                gradient.m[i] = -dDelta
                dX?[row * Dx + i] += dDelta
                // ds = -g δ; softplus' = sigmoid.
                gradient.d[i] = -gr[i] * delta[i] * sigmoid(d)
                // dU = -(g uᵀ + δ (Uᵀg)ᵀ); dP = g qᵀ - δ (Qᵀg)ᵀ; dQ = δ (Pᵀg)ᵀ - g pᵀ.
                for k in 0..<r { gradient.u[i * r + k] = -(gr[i] * u[k] + delta[i] * uG[k]) }
                for k in 0..<q {
                    gradient.p[i * q + k] = gr[i] * qProjection[k] - delta[i] * qG[k]
                    gradient.q[i * q + k] = delta[i] * pG[k] - gr[i] * pProjection[k]
                }
            }
        }
        let (dHidden, dScratch) = (cache.dHidden, cache.dScratch)
        dHidden.update(repeating: 0, count: B * H)
        out.backward(cache.mish2, dOutput: dOut, batch: B, parameters: p, gradients: gradients, dInput: dHidden)
        dScratch.update(repeating: 0, count: B * H)
        Mish.backward(cache.hidden2, dOutput: dHidden, count: B * H, dInput: dScratch)
        dHidden.update(repeating: 0, count: B * H)
        l2.backward(cache.mish1, dOutput: dScratch, batch: B, parameters: p, gradients: gradients, dInput: dHidden)
        dScratch.update(repeating: 0, count: B * H)
        Mish.backward(cache.hidden1, dOutput: dHidden, count: B * H, dInput: dScratch)
        let dCondition: UnsafeMutablePointer<Float>? = dObservation == nil ? nil : cache.dCondition
        dCondition?.update(repeating: 0, count: B * Dc)
        l1.backward(
            cache.condition, dOutput: dScratch, batch: B, parameters: p, gradients: gradients, dInput: dCondition)
        if let dObservation, let dCondition {
            for row in 0..<B {
                for j in 0..<Do { dObservation[row * Do + j] += dCondition[row * Dc + Te + j] }
            }
        }
    }

    /// The smallest diagonal entry of `diag(softplus(d) + ε)` for each sample of the last forward pass: a lower bound
    /// of λ_min(sym K), the rate the head guarantees at that (t, o).
    public func guaranteedRate(cache: ResidualHeadCache, row: Int) -> Float {
        let factors = Factors(cache.output + row * configuration.outputDimensions, configuration: configuration)
        var smallest = Float.infinity
        for i in 0..<configuration.chunkDimensions { smallest = min(smallest, softplus(factors.d[i])) }
        return smallest + configuration.epsilon
    }

    /// Views of one sample's MLP output: m [Dx], d [Dx], U [Dx, r], P [Dx, q], Q [Dx, q] (row-major).
    struct Factors {
        let m: UnsafeMutablePointer<Float>
        let d: UnsafeMutablePointer<Float>
        let u: UnsafeMutablePointer<Float>
        let p: UnsafeMutablePointer<Float>
        let q: UnsafeMutablePointer<Float>

        init(_ base: UnsafeMutablePointer<Float>, configuration c: ResidualHeadConfiguration) {
            let Dx = c.chunkDimensions
            m = base
            d = base + Dx
            u = base + 2 * Dx
            p = u + Dx * c.rank
            q = p + Dx * c.skewRank
        }
    }
}

/// `out[k] = Σ_i a[i] M[i, k]` for `M [Dx, columns]` row-major.
@inline(__always)
private func project(_ a: UnsafePointer<Float>, onto matrix: UnsafePointer<Float>, columns: Int, Dx: Int,
                     into out: UnsafeMutablePointer<Float>) {
    for k in 0..<columns { out[k] = 0 }
    for i in 0..<Dx {
        for k in 0..<columns { out[k] += a[i] * matrix[i * columns + k] }
    }
}

@inline(__always)
func softplus(_ x: Float) -> Float { max(x, 0) + Foundation.log1p(Foundation.exp(-abs(x))) }

@inline(__always)
func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }

/// Activations of a `ContractiveResidualHead` for up to `capacity` samples, and the backward pass's scratch.
public final class ResidualHeadCache {
    public let capacity: Int
    let storage: FloatBuffer
    let condition: UnsafeMutablePointer<Float>  // [B, Dc]
    let hidden1: UnsafeMutablePointer<Float>  // [B, Hh]
    let mish1: UnsafeMutablePointer<Float>  // [B, Hh]
    let hidden2: UnsafeMutablePointer<Float>  // [B, Hh]
    let mish2: UnsafeMutablePointer<Float>  // [B, Hh]
    let output: UnsafeMutablePointer<Float>  // [B, Dout]
    let delta: UnsafeMutablePointer<Float>  // [B, Dx]
    let projections: UnsafeMutablePointer<Float>  // [B, r + 2q]: Uᵀδ, Pᵀδ, Qᵀδ
    let projectionStride: Int
    let dOutput: UnsafeMutablePointer<Float>  // [B, Dout]
    let dHidden: UnsafeMutablePointer<Float>  // [B, Hh]
    let dScratch: UnsafeMutablePointer<Float>  // [B, Hh]
    let dCondition: UnsafeMutablePointer<Float>  // [B, Dc]
    let scratch: UnsafeMutablePointer<Float>  // [r + 2q]

    public init(head: ContractiveResidualHead, capacity: Int) {
        let c = head.configuration
        let (B, Dc, H, Dout, Dx) = (capacity, c.conditionDimensions, c.hidden, c.outputDimensions, c.chunkDimensions)
        self.capacity = capacity
        projectionStride = c.rank + 2 * c.skewRank
        let total = B * Dc * 2 + B * H * 6 + B * Dout * 2 + B * Dx + B * projectionStride + projectionStride
        storage = FloatBuffer(count: total)
        var cursor = storage.pointer
        func take(_ count: Int) -> UnsafeMutablePointer<Float> {
            defer { cursor += count }
            return cursor
        }
        condition = take(B * Dc)
        hidden1 = take(B * H)
        mish1 = take(B * H)
        hidden2 = take(B * H)
        mish2 = take(B * H)
        output = take(B * Dout)
        delta = take(B * Dx)
        projections = take(B * projectionStride)
        dOutput = take(B * Dout)
        dHidden = take(B * H)
        dScratch = take(B * H)
        dCondition = take(B * Dc)
        scratch = take(projectionStride)
        precondition(cursor - storage.pointer == total)
    }
}
