import Testing
import FlowPolicy

@Suite struct MatmulTests {
    /// BLAS and the naive triple loop agree on random shapes, both transposes, batch 1 (the gemv path),
    /// non-square and beta = 0 / 1.
    @Test(arguments: [
        (1, 7, 5), (1, 64, 33), (3, 1, 4), (17, 9, 31), (64, 128, 40), (5, 5, 1), (128, 3, 70),
    ])
    func blasMatchesNaive(shape: (Int, Int, Int)) {
        let (M, N, K) = shape
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                for beta: Float in [0, 1] {
                    let lda = transposeA ? M + 2 : K + 3  // padded leading dimensions
                    let ldb = transposeB ? K + 1 : N + 2
                    let a = randomValues((transposeA ? K : M) * lda, seed: 1)
                    let b = randomValues((transposeB ? N : K) * ldb, seed: 2)
                    var fast = randomValues(M * N, seed: 3)
                    var slow = fast
                    a.withUnsafeBufferPointer { a in
                        b.withUnsafeBufferPointer { b in
                            fast.withUnsafeMutableBufferPointer { c in
                                matmul(transposeA: transposeA, transposeB: transposeB, M: M, N: N, K: K, alpha: 0.7,
                                       A: a.baseAddress!, lda: lda, B: b.baseAddress!, ldb: ldb, beta: beta,
                                       C: c.baseAddress!, ldc: N)
                            }
                            slow.withUnsafeMutableBufferPointer { c in
                                naiveMatmul(transposeA: transposeA, transposeB: transposeB, M: M, N: N, K: K, alpha: 0.7,
                                            A: a.baseAddress!, lda: lda, B: b.baseAddress!, ldb: ldb, beta: beta,
                                            C: c.baseAddress!, ldc: N)
                            }
                        }
                    }
                    // Float32 sums of K products of values in [-1, 1]: rounding grows like sqrt(K) ulps.
                    let tolerance = Float(1e-5) * Float(K).squareRoot() * 4 + 1e-6
                    let worst = zip(fast, slow).map { abs($0 - $1) }.max() ?? 0
                    #expect(worst <= tolerance, "M=\(M) N=\(N) K=\(K) tA=\(transposeA) tB=\(transposeB) beta=\(beta)")
                }
            }
        }
    }

    @Test func openBLASUsesVectorKernels() {
        // On CPUs OpenBLAS 0.3.21 misdetects, the shim re-selects the core; it must never stay on the SSE3 fallback
        // when the CPU has AVX2.
        let core = BLAS.coreType
        #expect(!core.isEmpty)
        if core == "Prescott" {
            let hasAVX2 = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains(" avx2") ?? false
            #expect(!hasAVX2, "OpenBLAS runs its Prescott kernels on a CPU with AVX2")
        }
    }
}
