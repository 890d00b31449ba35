import CInferenceKernels

/// The number format a policy's Linear layers run in at inference (`--precision`). Training is always fp32.
///
/// - fp32: the checkpoint's weights, repacked for our own kernel (on CPUs with AVX-512; elsewhere OpenBLAS).
/// - bf16: weights and each layer's input rounded to bf16 (round to nearest even), products summed in fp32
///   (AVX512-BF16 `VDPBF16PS`).
/// - int8: weights quantized per output channel (scale = largest |w| / 127), each layer's input per row (dynamic,
///   symmetric, 127 levels), products summed in int32 (AVX512-VNNI `VPDPBUSD`), then scaled back to fp32.
///
/// LayerNorm, FiLM, Mish, the time embedding, a residual head and image encoders stay fp32 at every precision.
public enum Precision: String, CaseIterable, Codable, Sendable {
    case fp32, bf16, int8

    var kernelPrecision: fp_precision {
        switch self {
        case .fp32: FP_PRECISION_FP32
        case .bf16: FP_PRECISION_BF16
        case .int8: FP_PRECISION_INT8
        }
    }

    /// The kernel this CPU runs for this precision, chosen at start-up: `avx512f`, `avx512-bf16`, `avx512-vnni`, or
    /// `portable` (plain C; also under `FLOWPOLICY_KERNELS=portable`).
    public var kernel: String { String(cString: fp_kernel_name(kernelPrecision)) }

    /// Whether fp32 runs on the packed kernel (faster than OpenBLAS's sgemv and sgemm for these shapes, measured by
    /// `flowpolicy bench infer`) rather than on OpenBLAS: only where the packed kernel is AVX-512.
    var usesPackedKernel: Bool { self != .fp32 || kernel != "portable" }
}

/// A `Linear` layer's weight and bias packed for inference at a precision (see `inference_kernels.h` for the
/// layout). Immutable after packing, so threads share it; each caller brings its own scratch.
public final class PackedLinear: @unchecked Sendable {
    public let precision: Precision
    public let inputDimensions: Int
    public let outputDimensions: Int
    private let packed: UnsafeMutableRawPointer

    /// Packs `layer`'s weight and bias from `parameters`.
    public init(_ layer: Linear, parameters: UnsafePointer<Float>, precision: Precision) {
        self.precision = precision
        inputDimensions = layer.inputDimensions
        outputDimensions = layer.outputDimensions
        let bytes = fp_packed_bytes(precision.kernelPrecision, Int32(outputDimensions), Int32(inputDimensions))
        packed = .allocate(byteCount: bytes, alignment: 64)
        fp_pack_linear(precision.kernelPrecision, parameters + layer.weight, parameters + layer.bias,
                       Int32(outputDimensions), Int32(inputDimensions), packed)
    }

    deinit { packed.deallocate() }

    /// Bytes of scratch a call with `batch` rows of `inputDimensions` needs, at any precision.
    public static func scratchBytes(batch: Int, inputDimensions: Int) -> Int {
        Precision.allCases.map {
            fp_packed_scratch_bytes($0.kernelPrecision, Int32(batch), Int32(inputDimensions))
        }.max()!
    }

    /// `y [B, out] = x [B, in] Wᵀ + b`. Each output sums its products in the same order whatever the batch, so a
    /// row's result does not depend on the rows beside it. Allocates nothing.
    @inline(__always)
    public func callAsFunction(
        _ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, scratch: UnsafeMutableRawPointer
    ) {
        fp_packed_linear(precision.kernelPrecision, packed, Int32(outputDimensions), Int32(inputDimensions), x,
                         Int32(batch), y, scratch)
    }
}
