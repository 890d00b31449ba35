/// `y = x Wᵀ + b`, PyTorch's `nn.Linear`: weight `[out, in]`, bias `[out]`, initialized uniform in ±1/sqrt(in).
///
/// Shapes: `x [B, in]`, `y [B, out]` (row-major, contiguous rows).
public struct Linear: Sendable {
    public let inputDimensions: Int
    public let outputDimensions: Int
    /// Offsets of the weight `[out, in]` and bias `[out]` in the flat parameter buffer.
    public let weight: Int
    public let bias: Int

    public init(_ inputDimensions: Int, _ outputDimensions: Int, name: String, layout: inout ParameterLayout) {
        self.inputDimensions = inputDimensions
        self.outputDimensions = outputDimensions
        let bound = 1 / Float(inputDimensions).squareRoot()
        weight = layout.declare(
            "\(name).weight", shape: [outputDimensions, inputDimensions], initializer: .uniform(bound: bound))
        bias = layout.declare("\(name).bias", shape: [outputDimensions], initializer: .uniform(bound: bound))
    }

    /// Multiply-adds per sample (for FLOP counts).
    public var multiplyAdds: Int { inputDimensions * outputDimensions }

    /// `y [B, out] = x [B, in] Wᵀ + b`.
    @inline(__always)
    public func callAsFunction(
        _ x: UnsafePointer<Float>, batch: Int, parameters: UnsafePointer<Float>, output y: UnsafeMutablePointer<Float>
    ) {
        let b = parameters + bias
        for row in 0..<batch { (y + row * outputDimensions).update(from: b, count: outputDimensions) }
        matmul(
            transposeA: false, transposeB: true, M: batch, N: outputDimensions, K: inputDimensions,
            A: x, lda: inputDimensions, B: parameters + weight, ldb: inputDimensions,
            beta: 1, C: y, ldc: outputDimensions)
    }

    /// Accumulates `dW += dyᵀ x`, `db += Σ dy` (when `gradients` is given; nil for a frozen layer), and, when `dx`
    /// is given, `dx += dy W`.
    @inline(__always)
    public func backward(
        _ x: UnsafePointer<Float>, dOutput dy: UnsafePointer<Float>, batch: Int,
        parameters: UnsafePointer<Float>, gradients: UnsafeMutablePointer<Float>?,
        dInput dx: UnsafeMutablePointer<Float>?
    ) {
        if let gradients {
            matmul(
                transposeA: true, transposeB: false, M: outputDimensions, N: inputDimensions, K: batch,
                A: dy, lda: outputDimensions, B: x, ldb: inputDimensions,
                beta: 1, C: gradients + weight, ldc: inputDimensions)
            addColumnSums(M: batch, N: outputDimensions, A: dy, into: gradients + bias)
        }
        if let dx {
            matmul(
                transposeA: false, transposeB: false, M: batch, N: inputDimensions, K: outputDimensions,
                A: dy, lda: outputDimensions, B: parameters + weight, ldb: inputDimensions,
                beta: 1, C: dx, ldc: inputDimensions)
        }
    }
}
