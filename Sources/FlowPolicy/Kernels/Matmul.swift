import COpenBLAS

// Row-major matrix products. `matmul` runs on OpenBLAS; `naiveMatmul` is the reference it is tested against.
// C[M, N] = alpha * op(A) * op(B) + beta * C, where op(A) is [M, K] and op(B) is [K, N].

/// `C = alpha * op(A) op(B) + beta * C` on OpenBLAS (`cblas_sgemm`, or `cblas_sgemv` when M == 1).
@inline(__always)
public func matmul(
    transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int,
    alpha: Float = 1, A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
    beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int
) {
    _ = BLAS.coreType
    if M == 1 {
        // A single row: y[N] = alpha * op(B)ᵀ x + beta * y, a matrix-vector product that reads B once.
        // op(B) is [K, N]; with B stored untransposed ([K, N], row stride ldb) that is y = Bᵀ x.
        let incx = transposeA ? Int32(lda) : 1
        cblas_sgemv(
            CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans,
            Int32(transposeB ? N : K), Int32(transposeB ? K : N),
            alpha, B, Int32(ldb), A, incx, beta, C, 1)
        return
    }
    cblas_sgemm(
        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
}

/// The reference for `matmul`: triple loop, accumulating in Double.
public func naiveMatmul(
    transposeA: Bool, transposeB: Bool, M: Int, N: Int, K: Int,
    alpha: Float = 1, A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
    beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int
) {
    for m in 0..<M {
        for n in 0..<N {
            var sum = 0.0
            for k in 0..<K {
                let a = transposeA ? A[k * lda + m] : A[m * lda + k]
                let b = transposeB ? B[n * ldb + k] : B[k * ldb + n]
                sum += Double(a) * Double(b)
            }
            let previous = beta == 0 ? 0 : beta * C[m * ldc + n]
            C[m * ldc + n] = alpha * Float(sum) + previous
        }
    }
}

/// `y += alpha * x` (`cblas_saxpy`).
@inline(__always)
public func axpy(_ count: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
    cblas_saxpy(Int32(count), alpha, x, 1, y, 1)
}

/// Sum over rows: `out[n] += Σ_m A[m, n]` for a row-major [M, N] matrix (bias gradients).
@inline(__always)
public func addColumnSums(M: Int, N: Int, A: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
    for m in 0..<M {
        let row = A + m * N
        for n in 0..<N { out[n] += row[n] }
    }
}
