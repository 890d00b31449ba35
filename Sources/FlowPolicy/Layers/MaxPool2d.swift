// Dimensions: B batch, C channels, H × W input, Ho × Wo output. NCHW, contiguous.

/// PyTorch's `nn.MaxPool2d(kernel_size, stride, padding)` (ceil_mode false, dilation 1); the default is ResNet's
/// stem, `MaxPool2d(3, 2, 1)`. Padding counts as -∞, so every window holds at least one input.
///
/// Shapes: `x [B, C, H, W]`, `y [B, C, Ho, Wo]` with `Ho = (H + 2 padding - k) / stride + 1` (likewise Wo). The
/// forward pass keeps, for each output, the index `h W + w` of its maximum inside its channel's plane (the first
/// one in scan order on ties, as PyTorch), and the backward pass routes the gradient there.
public struct MaxPool2d: Sendable {
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int

    public init(kernelSize: Int = 3, stride: Int = 2, padding: Int = 1) {
        precondition(kernelSize > 0 && stride > 0 && padding >= 0 && 2 * padding <= kernelSize)
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    /// `(Ho, Wo)` for an `H × W` input.
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
    }

    /// `y [B, C, Ho, Wo]` = the maximum of each window of `x [B, C, H, W]`; `argmax [B, C, Ho, Wo]` its plane index.
    @inline(__always)
    public func callAsFunction(
        _ x: UnsafePointer<Float>, batch: Int, channels: Int, height H: Int, width W: Int,
        output y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>
    ) {
        let (Ho, Wo) = outputSize(height: H, width: W)
        for plane in 0..<(batch * channels) {
            let xp = x + plane * H * W
            let (yp, ap) = (y + plane * Ho * Wo, argmax + plane * Ho * Wo)
            for oh in 0..<Ho {
                let rows = max(0, oh * stride - padding)..<min(H, oh * stride - padding + kernelSize)
                for ow in 0..<Wo {
                    let columns = max(0, ow * stride - padding)..<min(W, ow * stride - padding + kernelSize)
                    var best = -Float.infinity
                    var index = rows.lowerBound * W + columns.lowerBound
                    for h in rows {
                        // PyTorch's rule: a larger value or a NaN takes the place (so NaN propagates).
                        for w in columns where xp[h * W + w] > best || xp[h * W + w].isNaN {
                            best = xp[h * W + w]
                            index = h * W + w
                        }
                    }
                    yp[oh * Wo + ow] = best
                    ap[oh * Wo + ow] = Int32(index)
                }
            }
        }
    }

    /// `dx[argmax] += dy` for every output.
    @inline(__always)
    public func backward(
        argmax: UnsafePointer<Int32>, dOutput dy: UnsafePointer<Float>, batch: Int, channels: Int, height H: Int,
        width W: Int, dInput dx: UnsafeMutablePointer<Float>
    ) {
        let (Ho, Wo) = outputSize(height: H, width: W)
        let P = Ho * Wo
        for plane in 0..<(batch * channels) {
            let (dxp, dyp, ap) = (dx + plane * H * W, dy + plane * P, argmax + plane * P)
            for i in 0..<P { dxp[Int(ap[i])] += dyp[i] }
        }
    }
}
