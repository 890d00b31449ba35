/// A `ResMLPFiLM`'s Linear layers packed for inference at a precision (`PackedLinear`), beside the flat fp32 buffer
/// that still holds the LayerNorm parameters. `ResMLPFiLM.forward(..., packed:)` runs its products on these.
public struct PackedResMLPFiLM: Sendable {
    struct Block: Sendable {
        let film: PackedLinear
        let l1: PackedLinear
        let l2: PackedLinear
    }

    let inp: PackedLinear
    let blocks: [Block]
    let out: PackedLinear

    public init(network: ResMLPFiLM, parameters: UnsafePointer<Float>, precision: Precision) {
        func pack(_ layer: Linear) -> PackedLinear { PackedLinear(layer, parameters: parameters, precision: precision) }
        inp = pack(network.inp)
        blocks = network.blocks.map { Block(film: pack($0.film), l1: pack($0.l1), l2: pack($0.l2)) }
        out = pack(network.out)
    }
}
