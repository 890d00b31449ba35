#ifndef FLOWPOLICY_INFERENCE_KERNELS_H
#define FLOWPOLICY_INFERENCE_KERNELS_H
#include <stddef.h>

// The kernels that depend on the CPU, chosen once at start-up: AVX-512 (F, BF16, VNNI) where it has them, plain C
// otherwise. Linear layers packed for inference, and the forward pass's Mish and LayerNorm.

/// The number formats a Linear layer's weights can be packed in for inference. Activations stay fp32 between layers;
/// bf16 rounds a layer's input to bf16, int8 quantizes it per row (symmetric, 127 levels), and both accumulate in fp32
/// (bf16) or int32 (int8) before the bias.
typedef enum {
    FP_PRECISION_FP32 = 0,
    FP_PRECISION_BF16 = 1,
    FP_PRECISION_INT8 = 2,
} fp_precision;

/// Bytes of a packed [out, in] Linear layer (weights, bias and, for int8, scales); the blob is 64-byte aligned by the
/// caller.
size_t fp_packed_bytes(fp_precision precision, int out, int in);

/// Bytes of scratch `fp_packed_linear` needs for `batch` rows of `in` inputs (the converted activations).
size_t fp_packed_scratch_bytes(fp_precision precision, int batch, int in);

/// Packs `weight [out, in]` (row-major, PyTorch's layout) and `bias [out]` into `packed` (`fp_packed_bytes`).
/// int8 scales each output channel by its largest |weight| / 127.
void fp_pack_linear(fp_precision precision, const float *weight, const float *bias, int out, int in, void *packed);

/// `y [batch, out] = x [batch, in] Wᵀ + b` with weights packed by `fp_pack_linear`. `scratch` holds
/// `fp_packed_scratch_bytes` bytes. Allocates nothing.
void fp_packed_linear(fp_precision precision, const void *packed, int out, int in, const float *x, int batch,
                      float *y, void *scratch);

/// PyTorch's Mish, `y = x tanh(softplus(x))`, computed as `x n (n + 2) / (n (n + 2) + 2)` with `n = e^min(x, 20)`.
void fp_mish(const float *x, int count, float *y);

/// PyTorch's LayerNorm over the last dimension of `x [rows, dimensions]` (biased variance); keeps each row's mean and
/// 1 / sqrt(variance + epsilon) for the backward pass.
void fp_layer_norm(const float *x, int rows, int dimensions, const float *weight, const float *bias, float epsilon,
                   float *y, float *mean, float *rstd);

/// The kernel `fp_packed_linear` runs for `precision` on this CPU, chosen at start-up: "avx512f", "avx512-bf16",
/// "avx512-vnni", or "portable" (plain C; also when FLOWPOLICY_KERNELS=portable).
const char *fp_kernel_name(fp_precision precision);

/// Forces (1) or stops forcing (0) the portable kernels on the calling thread, so tests can check both on one machine
/// without changing what other threads compute.
void fp_force_portable_kernels(int force);

#endif
