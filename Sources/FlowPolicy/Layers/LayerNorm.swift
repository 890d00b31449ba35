import CInferenceKernels

/// PyTorch's `nn.LayerNorm(D)` over the last dimension: `y = (x - mean) / sqrt(var + ε) * weight + bias`, with the
/// biased variance and ε = 1e-5; weight starts at 1, bias at 0.
///
/// Shapes: `x, y [B, D]`; the forward pass keeps `mean [B]` and `rstd [B]` (1 / sqrt(var + ε)) for the backward. The
/// forward pass is C (`fp_layer_norm`, AVX-512 where the CPU has it).
public struct LayerNorm: Sendable {
    public let dimensions: Int
    public let epsilon: Float
    public let weight: Int
    public let bias: Int

    public init(_ dimensions: Int, epsilon: Float = 1e-5, name: String, layout: inout ParameterLayout) {
        self.dimensions = dimensions
        self.epsilon = epsilon
        weight = layout.declare("\(name).weight", shape: [dimensions], initializer: .ones)
        bias = layout.declare("\(name).bias", shape: [dimensions], initializer: .zeros)
    }

    @inline(__always)
    public func callAsFunction(
        _ x: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>,
        output y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>
    ) {
        fp_layer_norm(
            x, Int32(batch), Int32(dimensions), parameters + weight, parameters + bias, epsilon, y, mean, rstd)
    }

    /// Accumulates `dweight`, `dbias` (when `gradients` is given) and `dx` (llm.c's layernorm_backward).
    @inline(__always)
    public func backward(
        _ x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        dOutput dy: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>,
        gradients: UnsafeMutablePointer<Float>?, dInput dx: UnsafeMutablePointer<Float>
    ) {
        let D = dimensions
        let w = parameters + weight
        for row in 0..<batch {
            let xr = x + row * D
            let dyr = dy + row * D
            let dxr = dx + row * D
            let m = mean[row]
            let s = rstd[row]
            var meanDNorm: Float = 0
            var meanDNormXHat: Float = 0
            for i in 0..<D {
                let xHat = (xr[i] - m) * s
                let dNorm = w[i] * dyr[i]
                meanDNorm += dNorm
                meanDNormXHat += dNorm * xHat
            }
            meanDNorm /= Float(D)
            meanDNormXHat /= Float(D)
            if let gradients {
                let (dw, db) = (gradients + weight, gradients + bias)
                for i in 0..<D {
                    let xHat = (xr[i] - m) * s
                    db[i] += dyr[i]
                    dw[i] += xHat * dyr[i]
                }
            }
            for i in 0..<D {
                let xHat = (xr[i] - m) * s
                let dNorm = w[i] * dyr[i]
                dxr[i] += (dNorm - meanDNorm - xHat * meanDNormXHat) * s
            }
        }
    }
}

/// Sum of `count` floats with eight independent accumulators (vectorizes; Float addition is not reassociated
/// by the compiler on its own).
@inline(__always)
func sum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    var accumulator = SIMD8<Float>()
    var i = 0
    while i + 8 <= count {
        accumulator += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var total = accumulator.sum()
    while i < count {
        total += x[i]
        i += 1
    }
    return total
}
