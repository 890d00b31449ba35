// Linear layers for inference at fp32, bf16 and int8, and the forward pass's Mish and LayerNorm, on AVX-512 (F, BF16,
// VNNI) where the CPU has it and in plain C otherwise. The kernel is chosen once, at start-up.
//
// Packed layout, the same for every precision: the outputs are cut into panels of 16 (one 512-bit register of fp32 or
// int32 lanes, zero-padded), the inputs into groups of 4 bytes per lane: one fp32, two bf16 or four int8 inputs. A
// panel's weights are `kGroups` entries of 64 bytes, entry k holding group k of the panel's 16 outputs. One product
// step then loads an entry, broadcasts the matching 4-byte group of the input row, and accumulates with one
// instruction: FMA (fp32), VDPBF16PS (bf16: two products per lane) or VPDPBUSD (int8: four products per lane, the
// input as unsigned bytes offset by 128, the weights signed). A blob is
//
//     bias [panels * 16] f32 | int8 only: scale [panels * 16] f32, offset [panels * 16] i32 | weights
//
// where `offset[o] = 128 Σ_k W_q[o, k]` removes the input's offset:
// y[o] = x_scale * scale[o] * (Σ_k (x_q[k] + 128) W_q[o, k] - offset[o]) + bias[o].
#include "inference_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { LANES = 16, ENTRY = 64 };

static int uses_avx512(fp_precision precision);

static int k_groups(fp_precision precision, int in) {
    switch (precision) {
    case FP_PRECISION_BF16: return (in + 1) / 2;
    case FP_PRECISION_INT8: return (in + 3) / 4;
    default: return in;
    }
}

static int panels(int out) { return (out + LANES - 1) / LANES; }

static size_t round_up(size_t bytes) { return (bytes + ENTRY - 1) / ENTRY * ENTRY; }

// The parts of a packed blob.
typedef struct {
    int out, in, kGroups, panels;
    const float *bias, *scale;
    const int32_t *offset;
    const uint8_t *weights;
} packed_view;

static packed_view view(fp_precision precision, const void *packed, int out, int in) {
    packed_view v = {out, in, k_groups(precision, in), panels(out), NULL, NULL, NULL, NULL};
    const uint8_t *cursor = packed;
    size_t column = (size_t)v.panels * LANES * 4;
    v.bias = (const float *)cursor;
    cursor += column;
    if (precision == FP_PRECISION_INT8) {
        v.scale = (const float *)cursor;
        v.offset = (const int32_t *)(cursor + column);
        cursor += 2 * column;
    }
    v.weights = cursor;
    return v;
}

size_t fp_packed_bytes(fp_precision precision, int out, int in) {
    size_t columns = precision == FP_PRECISION_INT8 ? 3 : 1;
    return (size_t)panels(out) * (columns * LANES * 4 + (size_t)k_groups(precision, in) * ENTRY);
}

// Scratch: a row of input groups (4 bytes each) per batch row, each row 64-byte aligned, then the int8 row scales.
static size_t scratch_row_bytes(fp_precision precision, int in) {
    return round_up((size_t)k_groups(precision, in) * 4);
}

size_t fp_packed_scratch_bytes(fp_precision precision, int batch, int in) {
    if (precision == FP_PRECISION_FP32) return 0;
    return (size_t)batch * (scratch_row_bytes(precision, in) + 4) + ENTRY;
}

// bf16 with round-to-nearest-even (the rounding of VCVTNEPS2BF16); NaN stays NaN.
static uint16_t bf16_from_float(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    if ((bits & 0x7fffffff) > 0x7f800000) return (uint16_t)((bits >> 16) | 0x40);
    bits += 0x7fff + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

static float float_from_bf16(uint16_t value) {
    uint32_t bits = (uint32_t)value << 16;
    float result;
    memcpy(&result, &bits, 4);
    return result;
}

void fp_pack_linear(fp_precision precision, const float *weight, const float *bias, int out, int in, void *packed) {
    memset(packed, 0, fp_packed_bytes(precision, out, in));
    packed_view v = view(precision, packed, out, in);
    uint8_t *weights = (uint8_t *)v.weights;
    memcpy((float *)v.bias, bias, (size_t)out * 4);
    for (int o = 0; o < out; o++) {
        const float *row = weight + (size_t)o * in;
        uint8_t *lane = weights + (size_t)(o / LANES) * v.kGroups * ENTRY + (size_t)(o % LANES) * 4;
        if (precision == FP_PRECISION_FP32) {
            for (int k = 0; k < in; k++) memcpy(lane + (size_t)k * ENTRY, row + k, 4);
        } else if (precision == FP_PRECISION_BF16) {
            for (int k = 0; k < in; k++) {
                uint16_t value = bf16_from_float(row[k]);
                memcpy(lane + (size_t)(k / 2) * ENTRY + (k % 2) * 2, &value, 2);
            }
        } else {
            float largest = 0;
            for (int k = 0; k < in; k++) largest = fmaxf(largest, fabsf(row[k]));
            float scale = largest > 0 ? largest / 127 : 1;
            int32_t sum = 0;
            for (int k = 0; k < in; k++) {
                int8_t q = (int8_t)lrintf(fminf(fmaxf(row[k] / scale, -127), 127));
                lane[(size_t)(k / 4) * ENTRY + k % 4] = (uint8_t)q;
                sum += q;
            }
            ((float *)v.scale)[o] = scale;
            ((int32_t *)v.offset)[o] = 128 * sum;
        }
    }
}

// --- Portable kernels -----------------------------------------------------------------------------------------------

// Converts each row of x to input groups in `scratch` (bf16 pairs, or int8 offset by 128 with the row's scale).
static void convert_rows_portable(fp_precision precision, const float *x, int batch, int in, uint8_t *scratch,
                                  float *rowScales) {
    size_t rowBytes = scratch_row_bytes(precision, in);
    for (int r = 0; r < batch; r++) {
        const float *row = x + (size_t)r * in;
        uint8_t *target = scratch + (size_t)r * rowBytes;
        memset(target, precision == FP_PRECISION_INT8 ? 128 : 0, rowBytes);
        if (precision == FP_PRECISION_BF16) {
            for (int k = 0; k < in; k++) {
                uint16_t value = bf16_from_float(row[k]);
                memcpy(target + 2 * k, &value, 2);
            }
            continue;
        }
        float largest = 0;
        for (int k = 0; k < in; k++) largest = fmaxf(largest, fabsf(row[k]));
        float scale = largest > 0 ? largest / 127 : 1;
        for (int k = 0; k < in; k++) target[k] = (uint8_t)(lrintf(fminf(fmaxf(row[k] / scale, -127), 127)) + 128);
        rowScales[r] = scale;
    }
}

static void packed_linear_portable(fp_precision precision, packed_view v, const float *x, int batch, float *y,
                                   uint8_t *scratch) {
    size_t rowBytes = scratch_row_bytes(precision, v.in);
    float *rowScales = (float *)(scratch + (size_t)batch * rowBytes);
    if (precision != FP_PRECISION_FP32) convert_rows_portable(precision, x, batch, v.in, scratch, rowScales);
    for (int r = 0; r < batch; r++) {
        const uint8_t *groups = scratch + (size_t)r * rowBytes;
        for (int o = 0; o < v.out; o++) {
            const uint8_t *lane = v.weights + (size_t)(o / LANES) * v.kGroups * ENTRY + (size_t)(o % LANES) * 4;
            if (precision == FP_PRECISION_INT8) {
                int32_t sum = 0;
                for (int k = 0; k < v.kGroups * 4; k++) {
                    sum += (int32_t)groups[k] * (int8_t)lane[(size_t)(k / 4) * ENTRY + k % 4];
                }
                y[(size_t)r * v.out + o] = rowScales[r] * v.scale[o] * (float)(sum - v.offset[o]) + v.bias[o];
                continue;
            }
            float sum = v.bias[o];
            for (int k = 0; k < v.in; k++) {
                float w, input;
                if (precision == FP_PRECISION_FP32) {
                    memcpy(&w, lane + (size_t)k * ENTRY, 4);
                    input = x[(size_t)r * v.in + k];
                } else {
                    uint16_t wb, xb;
                    memcpy(&wb, lane + (size_t)(k / 2) * ENTRY + (k % 2) * 2, 2);
                    memcpy(&xb, groups + 2 * k, 2);
                    w = float_from_bf16(wb);
                    input = float_from_bf16(xb);
                }
                sum += w * input;
            }
            y[(size_t)r * v.out + o] = sum;
        }
    }
}

// --- AVX-512 kernels ------------------------------------------------------------------------------------------------

#define AVX512 "avx512f,avx512bw,avx512dq,avx512vl,fma"

// acc[r][g] += Σ_k x_r[k] w_g[k] for R rows and G panels (compile-time constants after inlining, so the
// accumulators live in registers): per input group, G entries are loaded once and used by every row.
#define DEFINE_BLOCK(NAME, TARGET, DOT)                                                                                \
    static inline __attribute__((always_inline, target(TARGET))) void NAME(                                          \
        const uint8_t *w, size_t panelBytes, const uint8_t *x, size_t rowBytes, int kGroups, int R, int G,            \
        __m512 acc[4][8]) {                                                                                           \
        for (int k = 0; k < kGroups; k++) {                                                                           \
            __m512i entry[8];                                                                                         \
            for (int g = 0; g < G; g++) entry[g] = _mm512_loadu_si512(w + g * panelBytes + (size_t)k * ENTRY);       \
            for (int r = 0; r < R; r++) {                                                                             \
                int32_t group;                                                                                        \
                memcpy(&group, x + r * rowBytes + (size_t)k * 4, 4);                                                  \
                __m512i input = _mm512_set1_epi32(group);                                                             \
                for (int g = 0; g < G; g++) acc[r][g] = DOT(acc[r][g], entry[g], input);                              \
            }                                                                                                         \
        }                                                                                                             \
    }

#define DOT_FP32(acc, w, x) _mm512_fmadd_ps(_mm512_castsi512_ps(w), _mm512_castsi512_ps(x), acc)
#define DOT_BF16(acc, w, x) _mm512_dpbf16_ps(acc, (__m512bh)(x), (__m512bh)(w))
#define DOT_INT8(acc, w, x) _mm512_castsi512_ps(_mm512_dpbusd_epi32(_mm512_castps_si512(acc), x, w))

DEFINE_BLOCK(block_fp32, AVX512, DOT_FP32)
DEFINE_BLOCK(block_bf16, AVX512 ",avx512bf16", DOT_BF16)
DEFINE_BLOCK(block_int8, AVX512 ",avx512vnni", DOT_INT8)

// The driver: panels in blocks of G (8 at batch 1, else 4) outside, rows in tiles of R (4, or 1 for the rest)
// inside, so a block of weights is reused by every tile while it is in cache. `precision` is a constant in each
// caller, so each instance keeps only its own product and store.
#define DEFINE_DRIVER(NAME, TARGET, BLOCK, PRECISION)                                                                  \
    static inline __attribute__((always_inline, target(TARGET))) void NAME##_tile(                                   \
        packed_view v, const uint8_t *x, size_t rowBytes, const float *rowScales, int r0, int R, int p0, int G,       \
        float *y) {                                                                                                   \
        __m512 acc[4][8];                                                                                             \
        for (int r = 0; r < R; r++)                                                                                   \
            for (int g = 0; g < G; g++)                                                                               \
                acc[r][g] = PRECISION == FP_PRECISION_INT8 ? _mm512_setzero_ps()                                      \
                                                           : _mm512_loadu_ps(v.bias + (p0 + g) * LANES);              \
        size_t panelBytes = (size_t)v.kGroups * ENTRY;                                                                \
        BLOCK(v.weights + (size_t)p0 * panelBytes, panelBytes, x + (size_t)r0 * rowBytes, rowBytes, v.kGroups, R, G, \
              acc);                                                                                                   \
        for (int g = 0; g < G; g++) {                                                                                 \
            int first = (p0 + g) * LANES;                                                                             \
            __mmask16 mask = v.out - first >= LANES ? 0xffff : (__mmask16)((1u << (v.out - first)) - 1);              \
            for (int r = 0; r < R; r++) {                                                                             \
                __m512 value = acc[r][g];                                                                             \
                if (PRECISION == FP_PRECISION_INT8) {                                                                 \
                    __m512i sum = _mm512_sub_epi32(_mm512_castps_si512(value), _mm512_loadu_si512(v.offset + first)); \
                    __m512 scale = _mm512_mul_ps(_mm512_loadu_ps(v.scale + first),                                  \
                                                 _mm512_set1_ps(rowScales[r0 + r]));                                  \
                    value = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scale, _mm512_loadu_ps(v.bias + first));         \
                }                                                                                                     \
                _mm512_mask_storeu_ps(y + (size_t)(r0 + r) * v.out + first, mask, value);                            \
            }                                                                                                         \
        }                                                                                                             \
    }                                                                                                                 \
    static __attribute__((target(TARGET))) void NAME(packed_view v, const uint8_t *x, size_t rowBytes,                \
                                                     const float *rowScales, int batch, float *y) {                  \
        int G = batch == 1 ? 8 : 4;                                                                                   \
        for (int p = 0; p < v.panels;) {                                                                              \
            int g = v.panels - p >= G ? G : 1;                                                                        \
            int r = 0;                                                                                                \
            for (; r + 4 <= batch; r += 4) {                                                                          \
                if (g == 4) NAME##_tile(v, x, rowBytes, rowScales, r, 4, p, 4, y);                                   \
                else NAME##_tile(v, x, rowBytes, rowScales, r, 4, p, 1, y);                                          \
            }                                                                                                         \
            for (; r < batch; r++) {                                                                                  \
                if (g == 8) NAME##_tile(v, x, rowBytes, rowScales, r, 1, p, 8, y);                                   \
                else if (g == 4) NAME##_tile(v, x, rowBytes, rowScales, r, 1, p, 4, y);                              \
                else NAME##_tile(v, x, rowBytes, rowScales, r, 1, p, 1, y);                                          \
            }                                                                                                         \
            p += g;                                                                                                   \
        }                                                                                                             \
    }

DEFINE_DRIVER(linear_fp32, AVX512, block_fp32, FP_PRECISION_FP32)
DEFINE_DRIVER(linear_bf16, AVX512 ",avx512bf16", block_bf16, FP_PRECISION_BF16)
DEFINE_DRIVER(linear_int8, AVX512 ",avx512vnni", block_int8, FP_PRECISION_INT8)

static __attribute__((target(AVX512 ",avx512bf16"))) void convert_rows_bf16(const float *x, int batch, int in,
                                                                          uint8_t *scratch) {
    size_t rowBytes = scratch_row_bytes(FP_PRECISION_BF16, in);
    for (int r = 0; r < batch; r++) {
        const float *row = x + (size_t)r * in;
        uint16_t *target = (uint16_t *)(scratch + (size_t)r * rowBytes);
        for (int k = 0; k < in; k += LANES) {
            __mmask16 mask = in - k >= LANES ? 0xffff : (__mmask16)((1u << (in - k)) - 1);
            __m256bh value = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, row + k));
            _mm256_mask_storeu_epi16(target + k, mask, (__m256i)value);
        }
        if (in % 2) target[in] = 0;
    }
}

static __attribute__((target(AVX512))) void convert_rows_int8(const float *x, int batch, int in, uint8_t *scratch,
                                                             float *rowScales) {
    size_t rowBytes = scratch_row_bytes(FP_PRECISION_INT8, in);
    for (int r = 0; r < batch; r++) {
        const float *row = x + (size_t)r * in;
        uint8_t *target = scratch + (size_t)r * rowBytes;
        __m512 largest = _mm512_setzero_ps();
        for (int k = 0; k < in; k += LANES) {
            __mmask16 mask = in - k >= LANES ? 0xffff : (__mmask16)((1u << (in - k)) - 1);
            largest = _mm512_max_ps(largest, _mm512_abs_ps(_mm512_maskz_loadu_ps(mask, row + k)));
        }
        float biggest = _mm512_reduce_max_ps(largest);
        float scale = biggest > 0 ? biggest / 127 : 1;
        // x / scale as the portable kernel computes it (a division, not a multiplication by the reciprocal).
        __m512 divisor = _mm512_set1_ps(scale);
        for (int k = 0; k < in; k += LANES) {
            __mmask16 mask = in - k >= LANES ? 0xffff : (__mmask16)((1u << (in - k)) - 1);
            __m512 q = _mm512_div_ps(_mm512_maskz_loadu_ps(mask, row + k), divisor);
            q = _mm512_min_ps(_mm512_max_ps(q, _mm512_set1_ps(-127)), _mm512_set1_ps(127));
            __m512i offset = _mm512_add_epi32(_mm512_cvtps_epi32(q), _mm512_set1_epi32(128));
            _mm_mask_storeu_epi8(target + k, mask, _mm512_cvtepi32_epi8(offset));
        }
        for (int k = in; k < (int)rowBytes; k++) target[k] = 128;
        rowScales[r] = scale;
    }
}

// --- Mish and LayerNorm, the forward pass's elementwise work ---------------------------------------------------------

// e^x with x clamped to [-87.3, 88.3]: Cody-Waite reduction x = n ln2 + r and Cephes' degree-7 polynomial for e^r, the
// method and constants of `exponential` in Sources/FlowPolicy/Kernels/Vectorized.swift.
static inline __attribute__((always_inline, target(AVX512))) __m512 exp_avx512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.98756915e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.39819995e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.16657959e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.66666655e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.00000012e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1));
    return _mm512_scalef_ps(p, n);
}

static __attribute__((target(AVX512))) void mish_avx512(const float *x, int count, float *y) {
    for (int i = 0; i < count; i += LANES) {
        __mmask16 mask = count - i >= LANES ? 0xffff : (__mmask16)((1u << (count - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(mask, x + i);
        __m512 n = exp_avx512(_mm512_min_ps(v, _mm512_set1_ps(20)));
        __m512 p = _mm512_mul_ps(n, _mm512_add_ps(n, _mm512_set1_ps(2)));
        __m512 gate = _mm512_div_ps(p, _mm512_add_ps(p, _mm512_set1_ps(2)));
        _mm512_mask_storeu_ps(y + i, mask, _mm512_mul_ps(v, gate));
    }
}

void fp_mish(const float *x, int count, float *y) {
    if (uses_avx512(FP_PRECISION_FP32)) {
        mish_avx512(x, count, y);
        return;
    }
    for (int i = 0; i < count; i++) {
        float n = expf(fminf(x[i], 20)), p = n * (n + 2);
        y[i] = x[i] * (p / (p + 2));
    }
}

static __attribute__((target(AVX512))) void layer_norm_avx512(const float *x, int rows, int dimensions,
                                                              const float *weight, const float *bias, float epsilon,
                                                              float *y, float *mean, float *rstd) {
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * dimensions;
        __m512 total = _mm512_setzero_ps();
        for (int i = 0; i < dimensions; i += LANES) {
            __mmask16 mask = dimensions - i >= LANES ? 0xffff : (__mmask16)((1u << (dimensions - i)) - 1);
            total = _mm512_add_ps(total, _mm512_maskz_loadu_ps(mask, row + i));
        }
        float m = _mm512_reduce_add_ps(total) / dimensions;
        __m512 centre = _mm512_set1_ps(m), squares = _mm512_setzero_ps();
        for (int i = 0; i < dimensions; i += LANES) {
            __mmask16 mask = dimensions - i >= LANES ? 0xffff : (__mmask16)((1u << (dimensions - i)) - 1);
            __m512 d = _mm512_maskz_sub_ps(mask, _mm512_maskz_loadu_ps(mask, row + i), centre);
            squares = _mm512_fmadd_ps(d, d, squares);
        }
        float s = 1 / sqrtf(_mm512_reduce_add_ps(squares) / dimensions + epsilon);
        __m512 scale = _mm512_set1_ps(s);
        for (int i = 0; i < dimensions; i += LANES) {
            __mmask16 mask = dimensions - i >= LANES ? 0xffff : (__mmask16)((1u << (dimensions - i)) - 1);
            __m512 normalized = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, row + i), centre), scale);
            __m512 value = _mm512_fmadd_ps(normalized, _mm512_maskz_loadu_ps(mask, weight + i),
                                           _mm512_maskz_loadu_ps(mask, bias + i));
            _mm512_mask_storeu_ps(y + (size_t)r * dimensions + i, mask, value);
        }
        mean[r] = m;
        rstd[r] = s;
    }
}

void fp_layer_norm(const float *x, int rows, int dimensions, const float *weight, const float *bias, float epsilon,
                   float *y, float *mean, float *rstd) {
    if (uses_avx512(FP_PRECISION_FP32)) {
        layer_norm_avx512(x, rows, dimensions, weight, bias, epsilon, y, mean, rstd);
        return;
    }
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * dimensions;
        float total = 0, squares = 0;
        for (int i = 0; i < dimensions; i++) total += row[i];
        float m = total / dimensions;
        for (int i = 0; i < dimensions; i++) squares += (row[i] - m) * (row[i] - m);
        float s = 1 / sqrtf(squares / dimensions + epsilon);
        for (int i = 0; i < dimensions; i++) y[(size_t)r * dimensions + i] = (row[i] - m) * s * weight[i] + bias[i];
        mean[r] = m;
        rstd[r] = s;
    }
}

// --- Dispatch -------------------------------------------------------------------------------------------------------

static int has_avx512, has_bf16, has_vnni, portable_by_environment;
// Per thread, so that a test checking the portable kernels does not change the numbers of other threads.
static _Thread_local int portable_on_this_thread;

__attribute__((constructor)) static void choose_kernels(void) {
    __builtin_cpu_init();
    has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    has_bf16 = has_avx512 && __builtin_cpu_supports("avx512bf16");
    has_vnni = has_avx512 && __builtin_cpu_supports("avx512vnni");
    const char *choice = getenv("FLOWPOLICY_KERNELS");
    portable_by_environment = choice != NULL && strcmp(choice, "portable") == 0;
}

void fp_force_portable_kernels(int force) { portable_on_this_thread = force; }

static int uses_avx512(fp_precision precision) {
    if (portable_by_environment || portable_on_this_thread) return 0;
    switch (precision) {
    case FP_PRECISION_BF16: return has_bf16;
    case FP_PRECISION_INT8: return has_vnni;
    default: return has_avx512;
    }
}

const char *fp_kernel_name(fp_precision precision) {
    if (!uses_avx512(precision)) return "portable";
    switch (precision) {
    case FP_PRECISION_BF16: return "avx512-bf16";
    case FP_PRECISION_INT8: return "avx512-vnni";
    default: return "avx512f";
    }
}

void fp_packed_linear(fp_precision precision, const void *packed, int out, int in, const float *x, int batch,
                      float *y, void *scratch) {
    packed_view v = view(precision, packed, out, in);
    uint8_t *groups = scratch;
    if (!uses_avx512(precision)) {
        packed_linear_portable(precision, v, x, batch, y, groups);
        return;
    }
    size_t rowBytes = scratch_row_bytes(precision, in);
    float *rowScales = (float *)(groups + (size_t)batch * rowBytes);
    switch (precision) {
    case FP_PRECISION_FP32:
        linear_fp32(v, (const uint8_t *)x, (size_t)in * 4, NULL, batch, y);
        break;
    case FP_PRECISION_BF16:
        convert_rows_bf16(x, batch, in, groups);
        linear_bf16(v, groups, rowBytes, NULL, batch, y);
        break;
    case FP_PRECISION_INT8:
        convert_rows_int8(x, batch, in, groups, rowScales);
        linear_int8(v, groups, rowBytes, rowScales, batch, y);
        break;
    }
}
