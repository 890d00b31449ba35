import Foundation

// Dimensions: B batch, C input channels, K keypoints, H × W feature map, S = H W positions. NCHW, contiguous.

/// robomimic's `SpatialSoftmax` as Diffusion Policy uses it (num_kp = K, temperature 1, no noise, no variance):
/// a 1x1 convolution `keypoints` turns the C feature maps into K maps, a softmax over the S positions of each map
/// gives an attention `a`, and each keypoint is the attention's expected position, with x running over the width
/// and y over the height on `linspace(-1, 1)` grids
/// (`pos_x, pos_y = meshgrid(linspace(-1, 1, W), linspace(-1, 1, H))`).
///
/// ```
/// logits = keypoints(features)            Conv2d(C -> K, 1x1)   [B, K, H, W]
/// a = softmax(logits over H W)                                  [B, K, S]
/// y[b, 2k] = Σ_s a[b, k, s] pos_x[s],  y[b, 2k + 1] = Σ_s a[b, k, s] pos_y[s]   [B, 2K]
/// ```
/// The output order (x0, y0, x1, y1, ...) is robomimic's `feature_keypoints.view(-1, K * 2)`.
public struct SpatialSoftmax: Sendable {
    public let keypoints: Conv2d
    public let height: Int
    public let width: Int
    /// `pos_x [S]`, `pos_y [S]`: the x (column) and y (row) coordinate of each position, in [-1, 1].
    let positionX: [Float]
    let positionY: [Float]

    /// `name.keypoints.weight [K, C, 1, 1]` and `.bias [K]`, for `C × height × width` feature maps.
    public init(
        _ inputChannels: Int, keypoints K: Int, height: Int, width: Int, name: String, layout: inout ParameterLayout
    ) {
        keypoints = Conv2d(inputChannels, K, kernelSize: 1, name: "\(name).keypoints", layout: &layout)
        self.height = height
        self.width = width
        let xs = linspace(-1, 1, width)
        let ys = linspace(-1, 1, height)
        positionX = (0..<(height * width)).map { xs[$0 % width] }
        positionY = (0..<(height * width)).map { ys[$0 / width] }
    }

    public var keypointCount: Int { keypoints.outputChannels }

    /// Multiply-adds per image (the 1x1 convolution and the expectations).
    public var multiplyAdds: Int {
        keypoints.multiplyAdds(height: height, width: width) + 2 * keypointCount * height * width
    }

    /// `y [B, 2K]` from `x [B, C, H, W]`; keeps the attention `a [B, K, S]` for the backward pass. `columns` is the
    /// keypoint convolution's scratch (`keypoints.columnsCount(height:width:)` floats).
    @inline(__always)
    public func callAsFunction(
        _ x: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>,
        columns: UnsafeMutablePointer<Float>, attention a: UnsafeMutablePointer<Float>,
        output y: UnsafeMutablePointer<Float>
    ) {
        let (K, S) = (keypointCount, height * width)
        keypoints(
            x, batch: batch, height: height, width: width, parameters: parameters, columns: columns, output: a)
        positionX.withUnsafeBufferPointer { px in
            positionY.withUnsafeBufferPointer { py in
                for map in 0..<(batch * K) {
                    let am = a + map * S
                    var largest = -Float.infinity
                    for s in 0..<S { largest = max(largest, am[s]) }
                    var total: Float = 0
                    for s in 0..<S {
                        am[s] = Foundation.exp(am[s] - largest)
                        total += am[s]
                    }
                    let scale = 1 / total
                    var (ex, ey): (Float, Float) = (0, 0)
                    for s in 0..<S {
                        am[s] *= scale
                        ex += am[s] * px[s]
                        ey += am[s] * py[s]
                    }
                    y[2 * map] = ex
                    y[2 * map + 1] = ey
                }
            }
        }
    }

    /// Accumulates the keypoint convolution's gradients (when `gradients` is given) and, when `dx` is given,
    /// `dx += ∂L/∂x [B, C, H, W]`, from `dy [B, 2K]`, the forward pass's `x`, attention and output `y`.
    /// `dLogits [B, K, S]` is scratch.
    ///
    /// With E = Σ a pos, `∂E/∂logit_s = a_s (pos_s - E)`, so
    /// `dlogit_s = a_s (dEx (pos_x,s - Ex) + dEy (pos_y,s - Ey))`.
    @inline(__always)
    public func backward(
        _ x: UnsafePointer<Float>, attention a: UnsafePointer<Float>, output y: UnsafePointer<Float>,
        dOutput dy: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>,
        gradients: UnsafeMutablePointer<Float>?, dLogits: UnsafeMutablePointer<Float>,
        dInput dx: UnsafeMutablePointer<Float>?
    ) {
        let (K, S) = (keypointCount, height * width)
        positionX.withUnsafeBufferPointer { px in
            positionY.withUnsafeBufferPointer { py in
                for map in 0..<(batch * K) {
                    let (am, dm) = (a + map * S, dLogits + map * S)
                    let (ex, ey) = (y[2 * map], y[2 * map + 1])
                    let (dex, dey) = (dy[2 * map], dy[2 * map + 1])
                    for s in 0..<S { dm[s] = am[s] * (dex * (px[s] - ex) + dey * (py[s] - ey)) }
                }
            }
        }
        keypoints.backward(
            x, dOutput: dLogits, batch: batch, height: height, width: width, parameters: parameters,
            gradients: gradients, columns: dLogits, dInput: dx)
    }
}

/// numpy's `linspace(start, stop, count)`: `start + i step` with `step = (stop - start) / (count - 1)`, the last
/// value exactly `stop` (and `[start]` alone when count is 1).
func linspace(_ start: Double, _ stop: Double, _ count: Int) -> [Float] {
    guard count > 1 else { return count == 1 ? [Float(start)] : [] }
    let step = (stop - start) / Double(count - 1)
    return (0..<count).map { $0 == count - 1 ? Float(stop) : Float(start + Double($0) * step) }
}
