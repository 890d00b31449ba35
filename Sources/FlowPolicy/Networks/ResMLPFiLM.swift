// Dimensions: B batch, Dx = Tp * Da (flattened action chunk), Do' = To * Do (flattened observation window),
// Te time-embedding size, Dc = Te + Do' (condition), H hidden width, N residual blocks.

/// Sizes of a `ResMLPFiLM` velocity network.
public struct ResMLPFiLMConfiguration: Codable, Equatable, Sendable {
    /// Dx = Tp * Da: the flattened action chunk.
    public var chunkDimensions: Int
    /// To * Do: the flattened observation window.
    public var observationDimensions: Int
    /// H.
    public var hidden: Int
    /// N.
    public var blocks: Int
    /// Te.
    public var timeEmbedding: Int

    public init(chunkDimensions: Int, observationDimensions: Int, hidden: Int = 512, blocks: Int = 4,
                timeEmbedding: Int = 64) {
        self.chunkDimensions = chunkDimensions
        self.observationDimensions = observationDimensions
        self.hidden = hidden
        self.blocks = blocks
        self.timeEmbedding = timeEmbedding
    }

    /// Dc = Te + To * Do.
    public var conditionDimensions: Int { timeEmbedding + observationDimensions }

    /// Throws if a size cannot make a network, naming the field.
    public func validate() throws(FlowPolicyError) {
        for (name, value) in [("chunk dimensions (Tp*Da)", chunkDimensions), ("hidden", hidden),
                              ("blocks", blocks), ("time embedding", timeEmbedding)] where value < 1 {
            throw .invalidConfiguration("\(name) must be at least 1, got \(value)")
        }
        if observationDimensions < 0 { throw .invalidConfiguration("observation dimensions must be >= 0") }
        if timeEmbedding % 2 != 0 { throw .invalidConfiguration("time embedding must be even, got \(timeEmbedding)") }
    }
}

/// The velocity network `v_θ(t, x, o)`: a residual MLP whose blocks are modulated (FiLM) by the flow time and the
/// observation window.
///
/// ```
/// c = [temb(t) (Te), o (To*Do)]                                   [B, Dc]
/// h = inp(x)                                        Linear(Dx -> H)  [B, H]
/// for each block:  (γ, β) = film(c)                 Linear(Dc -> 2H)
///                  y = ln(h) * (1 + γ) + β          LayerNorm(H)
///                  h = h + l2(mish(l1(mish(y))))    Linear(H -> H) twice
/// v = out(mish(ln(h)))                              LayerNorm(H), Linear(H -> Dx)
/// ```
/// Parameter names are those of the equivalent PyTorch module: `inp.weight`, `blocks.0.film.weight`,
/// `blocks.0.ln.weight`, `blocks.0.l1.weight`, `blocks.0.l2.weight`, `ln.weight`, `out.weight` and the biases.
public final class ResMLPFiLM: Sendable {
    public struct Block: Sendable {
        let film: Linear
        let ln: LayerNorm
        let l1: Linear
        let l2: Linear
    }

    public let configuration: ResMLPFiLMConfiguration
    public let layout: ParameterLayout
    let timeEmbedding: SinusoidalTimeEmbedding
    let inp: Linear
    let blocks: [Block]
    let ln: LayerNorm
    let out: Linear

    public init(_ configuration: ResMLPFiLMConfiguration) throws(FlowPolicyError) {
        try configuration.validate()
        self.configuration = configuration
        let (Dx, Dc, H) = (configuration.chunkDimensions, configuration.conditionDimensions, configuration.hidden)
        var layout = ParameterLayout()
        timeEmbedding = SinusoidalTimeEmbedding(configuration.timeEmbedding)
        inp = Linear(Dx, H, name: "inp", layout: &layout)
        blocks = (0..<configuration.blocks).map { i in
            Block(
                film: Linear(Dc, 2 * H, name: "blocks.\(i).film", layout: &layout),
                ln: LayerNorm(H, name: "blocks.\(i).ln", layout: &layout),
                l1: Linear(H, H, name: "blocks.\(i).l1", layout: &layout),
                l2: Linear(H, H, name: "blocks.\(i).l2", layout: &layout))
        }
        ln = LayerNorm(H, name: "ln", layout: &layout)
        out = Linear(H, Dx, name: "out", layout: &layout)
        self.layout = layout
    }

    /// Multiply-adds for one sample's forward pass (matrix products only).
    public var multiplyAddsPerSample: Int {
        inp.multiplyAdds + out.multiplyAdds + blocks.reduce(0) { $0 + $1.film.multiplyAdds + 2 * $1.l1.multiplyAdds }
    }

    /// `v [B, Dx] = v_θ(t [B], x [B, Dx], o [B, To*Do])`; keeps what the backward pass needs in `cache`. With
    /// `packed` (inference), the matrix products run on its packed Linear layers instead of the fp32 `p`.
    public func forward(
        x: UnsafePointer<Float>, t: UnsafePointer<Float>, observation: UnsafePointer<Float>, batch B: Int,
        parameters p: UnsafePointer<Float>, packed: PackedResMLPFiLM? = nil, cache: ResMLPFiLMCache,
        output v: UnsafeMutablePointer<Float>
    ) {
        precondition(B <= cache.capacity, "batch \(B) exceeds the cache capacity \(cache.capacity)")
        let (H, Te, Dc, Do) = (
            configuration.hidden, configuration.timeEmbedding, configuration.conditionDimensions,
            configuration.observationDimensions
        )
        let c = cache.condition
        timeEmbedding(t, batch: B, output: c, outputStride: Dc)
        if Do > 0 {
            for row in 0..<B { (c + row * Dc + Te).update(from: observation + row * Do, count: Do) }
        }
        func product(
            _ layer: Linear, _ packedLayer: PackedLinear?, _ input: UnsafePointer<Float>,
            _ output: UnsafeMutablePointer<Float>
        ) {
            if let packedLayer {
                packedLayer(input, batch: B, output: output, scratch: cache.packingScratch)
            } else {
                layer(input, batch: B, parameters: p, output: output)
            }
        }
        product(inp, packed?.inp, x, cache.h[0])
        for (i, block) in blocks.enumerated() {
            let a = cache.blocks[i]
            let hIn = cache.h[i]
            let hOut = cache.h[i + 1]
            let packedBlock = packed?.blocks[i]
            block.ln(hIn, batch: B, parameters: p, output: a.normalized, mean: a.mean, rstd: a.rstd)
            product(block.film, packedBlock?.film, c, a.film)
            FiLM.forward(a.normalized, film: a.film, batch: B, hidden: H, output: a.modulated)
            Mish.forward(a.modulated, count: B * H, output: a.mish1)
            product(block.l1, packedBlock?.l1, a.mish1, a.l1)
            Mish.forward(a.l1, count: B * H, output: a.mish2)
            product(block.l2, packedBlock?.l2, a.mish2, hOut)
            for j in 0..<(B * H) { hOut[j] += hIn[j] }
        }
        ln(cache.h[blocks.count], batch: B, parameters: p, output: cache.normalized, mean: cache.mean, rstd: cache.rstd)
        Mish.forward(cache.normalized, count: B * H, output: cache.mish)
        product(out, packed?.out, cache.mish, v)
    }

    /// Backward pass of the last `forward` that used `cache`: accumulates `gradients += ∂L/∂θ` (skipped when
    /// `gradients` is nil: a frozen network, through which only input gradients flow) and, when given,
    /// `dX += ∂L/∂x` [B, Dx] and `dObservation += ∂L/∂o` [B, To*Do], from `dOutput = ∂L/∂v` [B, Dx].
    public func backward(
        dOutput: UnsafePointer<Float>, x: UnsafePointer<Float>, batch B: Int, parameters p: UnsafePointer<Float>,
        gradients g: UnsafeMutablePointer<Float>?, cache: ResMLPFiLMCache,
        dX: UnsafeMutablePointer<Float>? = nil, dObservation: UnsafeMutablePointer<Float>? = nil
    ) {
        let (H, Te, Dc, Do) = (
            configuration.hidden, configuration.timeEmbedding, configuration.conditionDimensions,
            configuration.observationDimensions
        )
        let n = B * H
        let dh = cache.dHidden
        let d1 = cache.dScratch1
        let d2 = cache.dScratch2
        let dCondition: UnsafeMutablePointer<Float>? = dObservation == nil ? nil : cache.dCondition
        dCondition?.update(repeating: 0, count: B * Dc)

        d1.update(repeating: 0, count: n)
        out.backward(cache.mish, dOutput: dOutput, batch: B, parameters: p, gradients: g, dInput: d1)
        d2.update(repeating: 0, count: n)
        Mish.backward(cache.normalized, dOutput: d1, count: n, dInput: d2)
        dh.update(repeating: 0, count: n)
        ln.backward(
            cache.h[blocks.count], mean: cache.mean, rstd: cache.rstd, dOutput: d2, batch: B, parameters: p,
            gradients: g, dInput: dh)
        for i in stride(from: blocks.count - 1, through: 0, by: -1) {
            let block = blocks[i]
            let a = cache.blocks[i]
            // h_out = h_in + l2(mish(l1(mish(y)))): dh already is ∂L/∂h_in through the skip connection.
            d1.update(repeating: 0, count: n)
            block.l2.backward(a.mish2, dOutput: dh, batch: B, parameters: p, gradients: g, dInput: d1)
            d2.update(repeating: 0, count: n)
            Mish.backward(a.l1, dOutput: d1, count: n, dInput: d2)
            d1.update(repeating: 0, count: n)
            block.l1.backward(a.mish1, dOutput: d2, batch: B, parameters: p, gradients: g, dInput: d1)
            d2.update(repeating: 0, count: n)
            Mish.backward(a.modulated, dOutput: d1, count: n, dInput: d2)
            d1.update(repeating: 0, count: n)
            FiLM.backward(
                a.normalized, film: a.film, dOutput: d2, batch: B, hidden: H, dInput: d1, dFilm: cache.dFilm)
            block.film.backward(
                cache.condition, dOutput: cache.dFilm, batch: B, parameters: p, gradients: g, dInput: dCondition)
            block.ln.backward(
                cache.h[i], mean: a.mean, rstd: a.rstd, dOutput: d1, batch: B, parameters: p, gradients: g,
                dInput: dh)
        }
        inp.backward(x, dOutput: dh, batch: B, parameters: p, gradients: g, dInput: dX)
        if let dObservation, let dCondition {
            for row in 0..<B {
                let source = dCondition + row * Dc + Te
                let target = dObservation + row * Do
                for j in 0..<Do { target[j] += source[j] }
            }
        }
    }
}

/// Activations of one forward pass of a `ResMLPFiLM` for up to `capacity` samples, kept for the backward pass,
/// plus the backward pass's scratch. Allocated once; forward and backward allocate nothing.
public final class ResMLPFiLMCache {
    struct BlockActivations {
        let normalized: UnsafeMutablePointer<Float>  // [B, H] ln(h_in)
        let mean: UnsafeMutablePointer<Float>  // [B]
        let rstd: UnsafeMutablePointer<Float>  // [B]
        let film: UnsafeMutablePointer<Float>  // [B, 2H] (γ, β)
        let modulated: UnsafeMutablePointer<Float>  // [B, H] y
        let mish1: UnsafeMutablePointer<Float>  // [B, H]
        let l1: UnsafeMutablePointer<Float>  // [B, H]
        let mish2: UnsafeMutablePointer<Float>  // [B, H]
    }

    public let capacity: Int
    let storage: FloatBuffer
    let condition: UnsafeMutablePointer<Float>  // [B, Dc]
    let h: [UnsafeMutablePointer<Float>]  // N + 1 of [B, H]: the residual stream before and after each block
    let blocks: [BlockActivations]
    let normalized: UnsafeMutablePointer<Float>  // [B, H] final ln
    let mean: UnsafeMutablePointer<Float>  // [B]
    let rstd: UnsafeMutablePointer<Float>  // [B]
    let mish: UnsafeMutablePointer<Float>  // [B, H]
    let dHidden: UnsafeMutablePointer<Float>  // [B, H]
    let dScratch1: UnsafeMutablePointer<Float>  // [B, H]
    let dScratch2: UnsafeMutablePointer<Float>  // [B, H]
    let dFilm: UnsafeMutablePointer<Float>  // [B, 2H]
    let dCondition: UnsafeMutablePointer<Float>  // [B, Dc]
    /// A packed forward pass's converted layer inputs (`PackedLinear.scratchBytes`).
    let packingScratch: UnsafeMutableRawPointer

    public init(network: ResMLPFiLM, capacity: Int) {
        let configuration = network.configuration
        let (B, H, Dc, N) = (capacity, configuration.hidden, configuration.conditionDimensions, configuration.blocks)
        self.capacity = capacity
        let perBlock = 7 * B * H + 2 * B
        let total = B * Dc + (N + 1) * B * H + N * perBlock + 2 * B * H + 2 * B + 5 * B * H + B * Dc
        storage = FloatBuffer(count: total)
        var cursor = storage.pointer
        func take(_ count: Int) -> UnsafeMutablePointer<Float> {
            defer { cursor += count }
            return cursor
        }
        condition = take(B * Dc)
        h = (0...N).map { _ in take(B * H) }
        blocks = (0..<N).map { _ in
            BlockActivations(
                normalized: take(B * H), mean: take(B), rstd: take(B), film: take(2 * B * H), modulated: take(B * H),
                mish1: take(B * H), l1: take(B * H), mish2: take(B * H))
        }
        normalized = take(B * H)
        mean = take(B)
        rstd = take(B)
        mish = take(B * H)
        dHidden = take(B * H)
        dScratch1 = take(B * H)
        dScratch2 = take(B * H)
        dFilm = take(2 * B * H)
        dCondition = take(B * Dc)
        precondition(cursor - storage.pointer == total)
        let widestInput = max(Dc, H, configuration.chunkDimensions)
        packingScratch = .allocate(
            byteCount: PackedLinear.scratchBytes(batch: capacity, inputDimensions: widestInput), alignment: 64)
    }

    deinit { packingScratch.deallocate() }
}
