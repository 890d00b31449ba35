/// The field a policy samples: `v(t, x, o) = v_base(t, x, o) [+ r(t, x, o)]`, the ResMLP-FiLM network plus, for
/// residual fine-tuned checkpoints, the contracting residual head.
public final class VelocityField: Sendable {
    public let network: ResMLPFiLM
    public let head: ContractiveResidualHead?

    public init(network: ResMLPFiLM, head: ContractiveResidualHead?) {
        if let head {
            precondition(head.configuration.chunkDimensions == network.configuration.chunkDimensions
                && head.configuration.observationDimensions == network.configuration.observationDimensions)
        }
        self.network = network
        self.head = head
    }

    /// `v [B, Dx]` at `(t [B], x [B, Dx], o [B, To*Do])`.
    @inline(__always)
    public func forward(
        x: UnsafePointer<Float>, t: UnsafePointer<Float>, observation: UnsafePointer<Float>, batch B: Int,
        parameters: VelocityFieldParameters, cache: VelocityFieldCache, output v: UnsafeMutablePointer<Float>
    ) {
        network.forward(x: x, t: t, observation: observation, batch: B, parameters: parameters.network.pointer,
                        packed: parameters.packedNetwork, cache: cache.network, output: v)
        if let head, let headParameters = parameters.head, let headCache = cache.head {
            head.forward(x: x, t: t, observation: observation, batch: B, parameters: headParameters.pointer,
                         cache: headCache, addingTo: v)
        }
    }

    /// Backward pass of the last `forward` with `cache`. Parameter gradients go to `networkGradients` and
    /// `headGradients` when given (nil: that part is frozen); `dX` and `dObservation` accumulate when given.
    public func backward(
        dOutput: UnsafePointer<Float>, x: UnsafePointer<Float>, batch B: Int, parameters: VelocityFieldParameters,
        networkGradients: UnsafeMutablePointer<Float>?, headGradients: UnsafeMutablePointer<Float>?,
        cache: VelocityFieldCache, dX: UnsafeMutablePointer<Float>?, dObservation: UnsafeMutablePointer<Float>? = nil
    ) {
        if let head, let headParameters = parameters.head, let headCache = cache.head {
            head.backward(dOutput: dOutput, batch: B, parameters: headParameters.pointer, gradients: headGradients,
                          cache: headCache, dX: dX, dObservation: dObservation)
        }
        // The base network's parameter gradients are only needed when it trains; its input gradients whenever asked.
        if networkGradients != nil || dX != nil || dObservation != nil {
            network.backward(dOutput: dOutput, x: x, batch: B, parameters: parameters.network.pointer,
                             gradients: networkGradients, cache: cache.network, dX: dX, dObservation: dObservation)
        }
    }
}

/// The parameters of a `VelocityField`: the network's flat buffer and, with a head, the head's; for inference, the
/// network's Linear layers packed at a precision too. Sendable in the sense that matters here: checkpoints share
/// them read-only between threads; trainers own theirs.
public struct VelocityFieldParameters: @unchecked Sendable {
    public let network: FloatBuffer
    public let head: FloatBuffer?
    /// Used by `forward` when present (the head stays fp32).
    public let packedNetwork: PackedResMLPFiLM?

    public init(network: FloatBuffer, head: FloatBuffer?, packedNetwork: PackedResMLPFiLM? = nil) {
        self.network = network
        self.head = head
        self.packedNetwork = packedNetwork
    }

    /// These parameters with `field`'s network packed at `precision` (fp32 stays on OpenBLAS where the packed
    /// kernel would be the portable one).
    public func packed(for field: VelocityField, precision: Precision) -> VelocityFieldParameters {
        guard precision.usesPackedKernel else { return VelocityFieldParameters(network: network, head: head) }
        return VelocityFieldParameters(
            network: network, head: head,
            packedNetwork: PackedResMLPFiLM(network: field.network, parameters: network.pointer, precision: precision))
    }
}

/// Activations of a `VelocityField` for up to `capacity` samples.
public final class VelocityFieldCache {
    public let capacity: Int
    let network: ResMLPFiLMCache
    let head: ResidualHeadCache?

    public init(field: VelocityField, capacity: Int) {
        self.capacity = capacity
        network = ResMLPFiLMCache(network: field.network, capacity: capacity)
        head = field.head.map { ResidualHeadCache(head: $0, capacity: capacity) }
    }

    /// The head's guaranteed contraction rate for sample `row` of the last forward pass (nil without a head).
    public func guaranteedRate(field: VelocityField, row: Int) -> Float? {
        guard let head = field.head, let cache = self.head else { return nil }
        return head.guaranteedRate(cache: cache, row: row)
    }
}
