/// PyTorch's `nn.ReLU`: `y = max(x, 0)`.
///
/// The forward pass may run in place (`output` = `x`, as `nn.ReLU(inplace=True)` in torchvision's ResNet): the
/// backward pass reads only the output, whose sign is the input's (y > 0 exactly where x > 0).
public enum ReLU {
    /// `y = max(x, 0)`; `y` may be `x`.
    @inline(__always)
    public static func forward(_ x: UnsafePointer<Float>, count: Int, output y: UnsafeMutablePointer<Float>) {
        forEachVector(count: count) { i, lanes in
            let v = load(x + i, lanes)
            store(v.replacing(with: 0, where: v .< 0), y + i, lanes)
        }
    }

    /// `dx += dy * (y > 0)`, from the forward pass's output `y`.
    @inline(__always)
    public static func backward(
        output y: UnsafePointer<Float>, dOutput dy: UnsafePointer<Float>, count: Int,
        dInput dx: UnsafeMutablePointer<Float>
    ) {
        forEachVector(count: count) { i, lanes in
            let d = load(dy + i, lanes)
            store(load(dx + i, lanes) + d.replacing(with: 0, where: load(y + i, lanes) .<= 0), dx + i, lanes)
        }
    }

    /// The backward pass in place: `d = d * (y > 0)` turns `∂L/∂y` into `∂L/∂x` (when nothing else feeds `∂L/∂x`).
    @inline(__always)
    public static func backwardInPlace(
        output y: UnsafePointer<Float>, gradient d: UnsafeMutablePointer<Float>, count: Int
    ) {
        forEachVector(count: count) { i, lanes in
            let v = load(d + i, lanes)
            store(v.replacing(with: 0, where: load(y + i, lanes) .<= 0), d + i, lanes)
        }
    }
}
