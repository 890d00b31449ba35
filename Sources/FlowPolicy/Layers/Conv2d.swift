// Dimensions: B batch, C input channels, O output channels, k kernel size (square), H × W input, Ho × Wo output,
// Ck = C k k (rows of the column matrix), P = Ho Wo (output positions). All images NCHW, contiguous.

/// PyTorch's `nn.Conv2d(C, O, k, stride, padding, bias)`: weight `[O, C, k, k]`, optional bias `[O]`, zero padding,
/// initialized as PyTorch does (kaiming_uniform with a = √5, i.e. uniform in ±1/sqrt(C k k), the bias likewise).
///
/// Shapes: `x [B, C, H, W]`, `y [B, O, Ho, Wo]` with `Ho = (H + 2 padding - k) / stride + 1` (likewise Wo).
/// Each image is one sgemm: `y_b [O, P] = W [O, Ck] · col_b [Ck, P]`, where `col_b = im2col(x_b)` (Caffe's and
/// PyTorch's CPU lowering); a 1x1 convolution with stride 1 and no padding needs no im2col: `col_b` is `x_b`. Small
/// products (O P Ck up to 10⁶) build `col_bᵀ [P, Ck]` instead and multiply by its transpose: OpenBLAS 0.3.21 takes
/// its small-matrix kernel for them, and the untransposed one (`sgemm_small_kernel_nn`) calls malloc on every call,
/// while inference must allocate nothing; the transposed one does not (and is about a third slower on the large
/// products, which therefore stay untransposed).
public struct Conv2d: Sendable {
    public let inputChannels: Int
    public let outputChannels: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    /// Offsets of the weight `[O, C, k, k]` and, when the layer has one, the bias `[O]` in the flat parameter buffer.
    public let weight: Int
    public let bias: Int?

    public init(
        _ inputChannels: Int, _ outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        bias: Bool = true, name: String, layout: inout ParameterLayout
    ) {
        precondition(inputChannels > 0 && outputChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0)
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        let bound = 1 / Float(inputChannels * kernelSize * kernelSize).squareRoot()
        weight = layout.declare(
            "\(name).weight", shape: [outputChannels, inputChannels, kernelSize, kernelSize],
            initializer: .uniform(bound: bound))
        self.bias =
            bias ? layout.declare("\(name).bias", shape: [outputChannels], initializer: .uniform(bound: bound)) : nil
    }

    /// Ck = C k k: the reduction length of the per-image matrix product.
    var columnRows: Int { inputChannels * kernelSize * kernelSize }

    /// True when the input itself is the column matrix (1x1 kernel, stride 1, no padding).
    var isPointwise: Bool { kernelSize == 1 && stride == 1 && padding == 0 }

    /// `(Ho, Wo)` for an `H × W` input.
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelSize) / stride + 1, (width + 2 * padding - kernelSize) / stride + 1)
    }

    /// Floats of column scratch one call needs for an `H × W` input (one image's `[Ck, P]`).
    public func columnsCount(height: Int, width: Int) -> Int {
        let (Ho, Wo) = outputSize(height: height, width: width)
        return columnRows * Ho * Wo
    }

    /// Multiply-adds per image for an `H × W` input.
    public func multiplyAdds(height: Int, width: Int) -> Int {
        let (Ho, Wo) = outputSize(height: height, width: width)
        return outputChannels * columnRows * Ho * Wo
    }

    /// `y [B, O, Ho, Wo] = conv(x [B, C, H, W]) + b`; `columns` is scratch of `columnsCount(height:width:)` floats.
    @inline(__always)
    public func callAsFunction(
        _ x: UnsafePointer<Float>, batch: Int, height H: Int, width W: Int, parameters: UnsafePointer<Float>,
        columns: UnsafeMutablePointer<Float>, output y: UnsafeMutablePointer<Float>
    ) {
        let (Ho, Wo) = outputSize(height: H, width: W)
        let (C, O, P, Ck) = (inputChannels, outputChannels, Ho * Wo, columnRows)
        let small = O * P * Ck <= 1_000_000
        for image in 0..<batch {
            let xb = x + image * C * H * W
            let yb = y + image * O * P
            if let bias {
                for o in 0..<O { (yb + o * P).update(repeating: parameters[bias + o], count: P) }
            }
            if small {
                im2row(xb, height: H, width: W, rows: columns)
                matmul(
                    transposeA: false, transposeB: true, M: O, N: P, K: Ck, A: parameters + weight, lda: Ck,
                    B: columns, ldb: Ck, beta: bias == nil ? 0 : 1, C: yb, ldc: P)
                continue
            }
            var col = UnsafePointer(columns)
            if isPointwise {
                col = xb
            } else {
                im2col(xb, height: H, width: W, columns: columns)
            }
            matmul(
                transposeA: false, transposeB: false, M: O, N: P, K: Ck, A: parameters + weight, lda: Ck,
                B: col, ldb: P, beta: bias == nil ? 0 : 1, C: yb, ldc: P)
        }
    }

    /// Accumulates `dW += dy_b col_bᵀ` and `db += Σ dy` over the images (when `gradients` is given; nil for a frozen
    /// layer) and, when `dx` is given, `dx += col2im(Wᵀ dy_b)`. The columns are recomputed from `x` into `columns`
    /// (scratch of `columnsCount(height:width:)` floats), which then holds `Wᵀ dy_b`.
    @inline(__always)
    public func backward(
        _ x: UnsafePointer<Float>, dOutput dy: UnsafePointer<Float>, batch: Int, height H: Int, width W: Int,
        parameters: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>?,
        columns: UnsafeMutablePointer<Float>, dInput dx: UnsafeMutablePointer<Float>?
    ) {
        let (Ho, Wo) = outputSize(height: H, width: W)
        let (C, O, P, Ck) = (inputChannels, outputChannels, Ho * Wo, columnRows)
        for image in 0..<batch {
            let xb = x + image * C * H * W
            let dyb = dy + image * O * P
            if let gradients {
                var col = UnsafePointer(columns)
                if isPointwise {
                    col = xb
                } else {
                    im2col(xb, height: H, width: W, columns: columns)
                }
                matmul(
                    transposeA: false, transposeB: true, M: O, N: Ck, K: P, A: dyb, lda: P, B: col, ldb: P,
                    beta: 1, C: gradients + weight, ldc: Ck)
                if let bias {
                    for o in 0..<O { gradients[bias + o] += sum(dyb + o * P, P) }
                }
            }
            if let dx {
                let dxb = dx + image * C * H * W
                if isPointwise {
                    matmul(
                        transposeA: true, transposeB: false, M: Ck, N: P, K: O, A: parameters + weight, lda: Ck,
                        B: dyb, ldb: P, beta: 1, C: dxb, ldc: P)
                } else {
                    matmul(
                        transposeA: true, transposeB: false, M: Ck, N: P, K: O, A: parameters + weight, lda: Ck,
                        B: dyb, ldb: P, beta: 0, C: columns, ldc: P)
                    col2im(columns, height: H, width: W, dInput: dxb)
                }
            }
        }
    }

    /// The output columns `ow` whose input column `ow stride - padding + offset` lies inside `0 ..< extent`.
    @inline(__always)
    func validRange(offset: Int, extent: Int, outputs: Int) -> Range<Int> {
        // ow stride >= padding - offset  and  ow stride <= extent - 1 + padding - offset.
        let low = padding - offset
        let lower = low <= 0 ? 0 : (low + stride - 1) / stride
        let high = extent - 1 + padding - offset
        let upper = high < 0 ? 0 : min(outputs, high / stride + 1)
        return lower..<max(lower, upper)
    }

    /// One image: `col [Ck, P]`, row `(c k + i) k + j`, column `oh Wo + ow` holds `x[c, oh s - p + i, ow s - p + j]`
    /// (0 in the padding).
    func im2col(_ x: UnsafePointer<Float>, height H: Int, width W: Int, columns col: UnsafeMutablePointer<Float>) {
        let (Ho, Wo) = outputSize(height: H, width: W)
        let (k, s, P) = (kernelSize, stride, Ho * Wo)
        for c in 0..<inputChannels {
            let plane = x + c * H * W
            for i in 0..<k {
                let rows = validRange(offset: i, extent: H, outputs: Ho)
                for j in 0..<k {
                    let row = col + ((c * k + i) * k + j) * P
                    let columns = validRange(offset: j, extent: W, outputs: Wo)
                    for oh in 0..<Ho {
                        let out = row + oh * Wo
                        guard rows.contains(oh) else {
                            out.update(repeating: 0, count: Wo)
                            continue
                        }
                        let source = plane + (oh * s - padding + i) * W - padding + j
                        for ow in 0..<columns.lowerBound { out[ow] = 0 }
                        if s == 1 {
                            (out + columns.lowerBound).update(
                                from: source + columns.lowerBound, count: columns.count)
                        } else {
                            for ow in columns { out[ow] = source[ow * s] }
                        }
                        for ow in columns.upperBound..<Wo { out[ow] = 0 }
                    }
                }
            }
        }
    }

    /// One image: `rows [P, Ck]`, the transpose of `im2col`'s `col [Ck, P]`.
    func im2row(_ x: UnsafePointer<Float>, height H: Int, width W: Int, rows: UnsafeMutablePointer<Float>) {
        let (Ho, Wo) = outputSize(height: H, width: W)
        let (k, s, Ck) = (kernelSize, stride, columnRows)
        for oh in 0..<Ho {
            let top = oh * s - padding
            for ow in 0..<Wo {
                let row = rows + (oh * Wo + ow) * Ck
                let left = ow * s - padding
                if top >= 0 && top + k <= H && left >= 0 && left + k <= W {
                    // The whole window lies inside the image (most positions): k runs of k values per channel.
                    for c in 0..<inputChannels {
                        let window = x + (c * H + top) * W + left
                        for i in 0..<k { (row + (c * k + i) * k).update(from: window + i * W, count: k) }
                    }
                    continue
                }
                for c in 0..<inputChannels {
                    let plane = x + c * H * W
                    for i in 0..<k {
                        let ih = top + i
                        let inside = ih >= 0 && ih < H
                        for j in 0..<k {
                            let iw = left + j
                            row[(c * k + i) * k + j] = inside && iw >= 0 && iw < W ? plane[ih * W + iw] : 0
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `im2col`: `dx[c, oh s - p + i, ow s - p + j] += dcol[(c k + i) k + j, oh Wo + ow]`.
    func col2im(_ col: UnsafePointer<Float>, height H: Int, width W: Int, dInput dx: UnsafeMutablePointer<Float>) {
        let (Ho, Wo) = outputSize(height: H, width: W)
        let (k, s, P) = (kernelSize, stride, Ho * Wo)
        for c in 0..<inputChannels {
            let plane = dx + c * H * W
            for i in 0..<k {
                let rows = validRange(offset: i, extent: H, outputs: Ho)
                for j in 0..<k {
                    let row = col + ((c * k + i) * k + j) * P
                    let columns = validRange(offset: j, extent: W, outputs: Wo)
                    for oh in rows {
                        let input = row + oh * Wo
                        let target = plane + (oh * s - padding + i) * W - padding + j
                        if s == 1 {
                            for ow in columns { target[ow] += input[ow] }
                        } else {
                            for ow in columns { target[ow * s] += input[ow] }
                        }
                    }
                }
            }
        }
    }

    /// The reference for the forward pass: the direct convolution, accumulating in Double.
    public func naiveForward(
        _ x: UnsafePointer<Float>, batch: Int, height H: Int, width W: Int, parameters: UnsafePointer<Float>,
        output y: UnsafeMutablePointer<Float>
    ) {
        let (Ho, Wo) = outputSize(height: H, width: W)
        let (C, O, k) = (inputChannels, outputChannels, kernelSize)
        for image in 0..<batch {
            for o in 0..<O {
                for oh in 0..<Ho {
                    for ow in 0..<Wo {
                        var total = bias.map { Double(parameters[$0 + o]) } ?? 0
                        for c in 0..<C {
                            for i in 0..<k {
                                for j in 0..<k {
                                    let (ih, iw) = (oh * stride - padding + i, ow * stride - padding + j)
                                    guard (0..<H).contains(ih), (0..<W).contains(iw) else { continue }
                                    total += Double(x[((image * C + c) * H + ih) * W + iw])
                                        * Double(parameters[weight + ((o * C + c) * k + i) * k + j])
                                }
                            }
                        }
                        y[((image * O + o) * Ho + oh) * Wo + ow] = Float(total)
                    }
                }
            }
        }
    }
}
