import CInferenceKernels

/// PyTorch's `nn.Mish`: `y = x * tanh(softplus(x))`.
///
/// With `n = eˣ`, `tanh(softplus(x)) = n(n + 2) / (n(n + 2) + 2)`: one exponential per element instead of three
/// transcendental calls. Above x = 20 the factor is 1 to Float precision (PyTorch's softplus threshold), so the
/// exponential's argument is capped there.
public enum Mish {
    @inline(__always)
    static func gate(_ x: Float16x) -> (tanhSoftplus: Float16x, sigmoid: Float16x) {
        let n = exponential(x.replacing(with: 20, where: x .> 20))
        let p = n * (n + 2)
        return (p / (p + 2), n / (n + 1))
    }

    /// The same formula in C (`fp_mish`), on AVX-512 where the CPU has it: compiled for the baseline x86-64, Swift's
    /// 16 lanes run as four SSE registers, and this is most of a forward pass's elementwise time at batch 1.
    @inline(__always)
    public static func forward(_ x: UnsafePointer<Float>, count: Int, output y: UnsafeMutablePointer<Float>) {
        fp_mish(x, Int32(count), y)
    }

    /// `dx += dy * (tsp + x (1 - tsp²) σ(x))`, tsp = tanh(softplus(x)).
    @inline(__always)
    public static func backward(
        _ x: UnsafePointer<Float>, dOutput dy: UnsafePointer<Float>, count: Int, dInput dx: UnsafeMutablePointer<Float>
    ) {
        forEachVector(count: count) { i, lanes in
            let v = load(x + i, lanes)
            let (tsp, sigmoid) = gate(v)
            let derivative = tsp + v * (1 - tsp * tsp) * sigmoid
            store(load(dx + i, lanes) + load(dy + i, lanes) * derivative, dx + i, lanes)
        }
    }
}

/// PyTorch's `nn.SiLU`: `y = x σ(x)`.
public enum SiLU {
    @inline(__always)
    static func sigmoid(_ x: Float16x) -> Float16x { 1 / (1 + exponential(-x)) }

    @inline(__always)
    public static func forward(_ x: UnsafePointer<Float>, count: Int, output y: UnsafeMutablePointer<Float>) {
        forEachVector(count: count) { i, lanes in
            let v = load(x + i, lanes)
            store(v * sigmoid(v), y + i, lanes)
        }
    }

    /// `dx += dy * σ(x) (1 + x (1 - σ(x)))`.
    @inline(__always)
    public static func backward(
        _ x: UnsafePointer<Float>, dOutput dy: UnsafePointer<Float>, count: Int, dInput dx: UnsafeMutablePointer<Float>
    ) {
        forEachVector(count: count) { i, lanes in
            let v = load(x + i, lanes)
            let s = sigmoid(v)
            store(load(dx + i, lanes) + load(dy + i, lanes) * s * (1 + v * (1 - s)), dx + i, lanes)
        }
    }
}
