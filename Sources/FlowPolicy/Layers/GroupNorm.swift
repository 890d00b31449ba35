// Dimensions: B batch, C channels, G groups (C / G channels each), S = H W positions per channel. NCHW, contiguous.

/// PyTorch's `nn.GroupNorm(G, C, eps=1e-5)`: each image's channels are split into G groups of C / G consecutive
/// channels, and each group is normalized over its (C / G) S values with the biased variance, then scaled and shifted
/// per channel: `y = (x - mean) / sqrt(var + ε) * weight[c] + bias[c]`. Weight starts at 1, bias at 0.
///
/// Shapes: `x, y [B, C, H, W]`; the forward pass keeps `mean [B, G]` and `rstd [B, G]` (1 / sqrt(var + ε)).
public struct GroupNorm: Sendable {
    public let groups: Int
    public let channels: Int
    public let epsilon: Float
    public let weight: Int
    public let bias: Int

    public init(_ groups: Int, _ channels: Int, epsilon: Float = 1e-5, name: String, layout: inout ParameterLayout) {
        precondition(groups > 0 && channels % groups == 0, "GroupNorm: \(channels) channels in \(groups) groups")
        self.groups = groups
        self.channels = channels
        self.epsilon = epsilon
        weight = layout.declare("\(name).weight", shape: [channels], initializer: .ones)
        bias = layout.declare("\(name).bias", shape: [channels], initializer: .zeros)
    }

    /// `y = groupnorm(x)` for `x [B, C, S]`; fills `mean [B, G]` and `rstd [B, G]`. `y` may be `x` (in place).
    @inline(__always)
    public func callAsFunction(
        _ x: UnsafePointer<Float>, batch: Int, spatial S: Int, parameters: UnsafePointer<Float>,
        output y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>
    ) {
        let (G, Cg) = (groups, channels / groups)
        let n = Cg * S
        let w = parameters + weight
        let b = parameters + bias
        for row in 0..<(batch * G) {
            let xg = x + row * n
            let yg = y + row * n
            let m = sum(xg, n) / Float(n)
            var variance: Float = 0
            for i in 0..<n {
                let d = xg[i] - m
                variance += d * d
            }
            variance /= Float(n)
            let s = 1 / (variance + epsilon).squareRoot()
            mean[row] = m
            rstd[row] = s
            let firstChannel = (row % G) * Cg
            for c in 0..<Cg {
                // y = x a + β with a = s w, β = b - m s w.
                let a = s * w[firstChannel + c]
                let shift = b[firstChannel + c] - m * a
                let (xc, yc) = (xg + c * S, yg + c * S)
                for i in 0..<S { yc[i] = xc[i] * a + shift }
            }
        }
    }

    /// Accumulates `dweight`, `dbias` (when `gradients` is given) and `dx += ∂L/∂x` from `dy` (`dx` may not be `dy`).
    ///
    /// With x̂ = (x - mean) rstd and dx̂ = dy weight[c], over each group:
    /// `dx = rstd (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂))`.
    @inline(__always)
    public func backward(
        _ x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        dOutput dy: UnsafePointer<Float>, batch: Int, spatial S: Int, parameters: UnsafePointer<Float>,
        gradients: UnsafeMutablePointer<Float>?, dInput dx: UnsafeMutablePointer<Float>
    ) {
        let (G, Cg) = (groups, channels / groups)
        let n = Cg * S
        let w = parameters + weight
        for row in 0..<(batch * G) {
            let xg = x + row * n
            let dyg = dy + row * n
            let dxg = dx + row * n
            let (m, s) = (mean[row], rstd[row])
            let firstChannel = (row % G) * Cg
            var meanDNorm: Float = 0
            var meanDNormXHat: Float = 0
            for c in 0..<Cg {
                let (xc, dyc) = (xg + c * S, dyg + c * S)
                // Σ dy and Σ dy x̂ over the channel's positions give both the affine and the normalization terms.
                var sumDy: Float = 0
                var sumDyXHat: Float = 0
                for i in 0..<S {
                    sumDy += dyc[i]
                    sumDyXHat += dyc[i] * (xc[i] - m) * s
                }
                meanDNorm += w[firstChannel + c] * sumDy
                meanDNormXHat += w[firstChannel + c] * sumDyXHat
                if let gradients {
                    gradients[weight + firstChannel + c] += sumDyXHat
                    gradients[bias + firstChannel + c] += sumDy
                }
            }
            meanDNorm /= Float(n)
            meanDNormXHat /= Float(n)
            for c in 0..<Cg {
                let wc = w[firstChannel + c]
                let (xc, dyc, dxc) = (xg + c * S, dyg + c * S, dxg + c * S)
                for i in 0..<S {
                    let xHat = (xc[i] - m) * s
                    dxc[i] += (wc * dyc[i] - meanDNorm - xHat * meanDNormXHat) * s
                }
            }
        }
    }
}
