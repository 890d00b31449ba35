import CAllocationCounter
import CInferenceKernels
import FlowPolicy
import Testing

/// The packed inference kernels (`PackedLinear`) against `y = x Wᵀ + b` summed in Double, on shapes that are not
/// multiples of the kernels' 16 lanes or 4-byte input groups, with the AVX-512 kernels and the portable ones.
///
/// Tolerances follow from the formats, per output, with `|w|·|x| = Σ_k |w_k| |x_k|`:
/// - fp32: 1e-5 · (|w|·|x| + |b|), float rounding of the sum.
/// - bf16: weights and inputs each rounded to 8 significant bits (relative error ≤ 2⁻⁸), so each product is off by
///   at most about 2⁻⁷ of itself: 2⁻⁷ · |w|·|x|, plus the fp32 term.
/// - int8: weights off by at most half their channel's step s_w = max|w| / 127, inputs by half the row's step
///   s_x = max|x| / 127: s_w / 2 · Σ|x| + s_x / 2 · Σ|w| + in · s_w s_x / 4, plus the fp32 term.
@Suite(.serialized) struct PackedLinearTests {
    static let shapes: [(out: Int, in: Int)] = [(1, 1), (15, 3), (17, 5), (33, 31), (100, 74), (16, 129), (130, 64)]
    static let batches = [1, 3, 4, 9]

    struct Case {
        let out: Int, inputs: Int, batch: Int
        let weight: [Float], bias: [Float], x: [Float]
        var layout = ParameterLayout()
        let layer: Linear
        let parameters: FloatBuffer

        init(out: Int, inputs: Int, batch: Int, weight: [Float], bias: [Float], x: [Float]) {
            (self.out, self.inputs, self.batch, self.weight, self.bias, self.x) = (out, inputs, batch, weight, bias, x)
            layer = Linear(inputs, out, name: "layer", layout: &layout)
            parameters = FloatBuffer(count: layout.count)
            for i in 0..<weight.count { parameters[layer.weight + i] = weight[i] }
            for i in 0..<out { parameters[layer.bias + i] = bias[i] }
        }

        /// Random weights, and inputs of mixed magnitudes, as activations are.
        init(out: Int, inputs: Int, batch: Int, seed: UInt64) {
            self.init(
                out: out, inputs: inputs, batch: batch, weight: randomValues(out * inputs, scale: 0.5, seed: seed),
                bias: randomValues(out, scale: 0.1, seed: seed + 1),
                x: randomValues(batch * inputs, scale: 2, seed: seed + 2).enumerated().map {
                    $1 * ($0 % 7 == 0 ? 3 : 1)
                })
        }

        /// Row `r` alone, as a batch of one.
        func row(_ r: Int) -> Case {
            Case(out: out, inputs: inputs, batch: 1, weight: weight, bias: bias,
                 x: Array(x[(r * inputs)..<((r + 1) * inputs)]))
        }

        func run(_ precision: Precision) -> [Float] {
            let packed = PackedLinear(layer, parameters: parameters.pointer, precision: precision)
            let scratch = UnsafeMutableRawPointer.allocate(
                byteCount: PackedLinear.scratchBytes(batch: batch, inputDimensions: inputs), alignment: 64)
            defer { scratch.deallocate() }
            var y = [Float](repeating: .nan, count: batch * out)
            x.withUnsafeBufferPointer { x in
                y.withUnsafeMutableBufferPointer { packed(x.baseAddress!, batch: batch, output: $0.baseAddress!,
                                                          scratch: scratch) }
            }
            return y
        }

        /// The largest |packed - exact| / tolerance over every output (at most 1 passes).
        func worstRatio(_ y: [Float], _ precision: Precision) -> Double {
            var worst = 0.0
            for r in 0..<batch {
                let row = x[(r * inputs)..<((r + 1) * inputs)]
                let xLargest = Double(row.map(abs).max()!)
                let xSum = row.reduce(0.0) { $0 + Double(abs($1)) }
                for o in 0..<out {
                    let w = weight[(o * inputs)..<((o + 1) * inputs)]
                    var exact = Double(bias[o]), magnitude = 0.0
                    for (wk, xk) in zip(w, row) {
                        exact += Double(wk) * Double(xk)
                        magnitude += abs(Double(wk) * Double(xk))
                    }
                    var tolerance = 1e-5 * (magnitude + Double(abs(bias[o]))) + 1e-6
                    switch precision {
                    case .fp32: break
                    case .bf16: tolerance += magnitude / 128
                    case .int8:
                        let wStep = Double(w.map(abs).max()!) / 127, xStep = xLargest / 127
                        let wSum = w.reduce(0.0) { $0 + Double(abs($1)) }
                        tolerance += wStep / 2 * xSum + xStep / 2 * wSum + Double(inputs) * wStep * xStep / 4
                    }
                    worst = max(worst, abs(Double(y[r * out + o]) - exact) / tolerance)
                }
            }
            return worst
        }
    }

    @Test(arguments: Precision.allCases) func matchesTheExactProductWithinTheFormatsError(precision: Precision) {
        for portable in [false, true] {
            fp_force_portable_kernels(portable ? 1 : 0)
            defer { fp_force_portable_kernels(0) }
            for (index, shape) in Self.shapes.enumerated() {
                for batch in Self.batches {
                    let test = Case(out: shape.out, inputs: shape.in, batch: batch, seed: UInt64(10 * index + batch))
                    let ratio = test.worstRatio(test.run(precision), precision)
                    #expect(ratio <= 1, """
                        \(precision) \(precision.kernel) [\(shape.out), \(shape.in)] batch \(batch): error \(ratio) x \
                        the tolerance
                        """)
                }
            }
        }
    }

    /// The tolerance is tight enough to catch a wrong kernel: a product that drops the last input is refused.
    @Test func theToleranceRefusesAProductMissingOneInput() {
        let test = Case(out: 17, inputs: 31, batch: 3, seed: 3)
        var y = test.run(.fp32)
        for r in 0..<3 {
            for o in 0..<17 { y[r * 17 + o] -= test.weight[o * 31 + 30] * test.x[r * 31 + 30] }
        }
        #expect(test.worstRatio(y, .bf16) > 1)
    }

    /// The AVX-512 and portable kernels round the same numbers: bf16 and int8 agree to float summation order.
    @Test(arguments: Precision.allCases) func avx512AndPortableKernelsAgree(precision: Precision) throws {
        try #require(precision.kernel != "portable", "this CPU runs the portable kernel only")
        let test = Case(out: 130, inputs: 74, batch: 5, seed: 7)
        let fast = test.run(precision)
        fp_force_portable_kernels(1)
        defer { fp_force_portable_kernels(0) }
        let portable = test.run(precision)
        for (a, b) in zip(fast, portable) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b)), "\(a) vs \(b)") }
    }

    /// A row's outputs do not depend on the rows beside it: the sums run in the same order at every batch size.
    @Test(arguments: Precision.allCases) func aRowsResultDoesNotDependOnTheBatch(precision: Precision) {
        let batched = Case(out: 100, inputs: 74, batch: 9, seed: 11)
        let all = batched.run(precision)
        for r in [0, 4, 8] {
            #expect(batched.row(r).run(precision) == Array(all[(r * 100)..<((r + 1) * 100)]), "row \(r)")
        }
    }

    /// A call allocates nothing on the heap.
    @Test(arguments: Precision.allCases) func aCallAllocatesNothing(precision: Precision) {
        let test = Case(out: 33, inputs: 31, batch: 4, seed: 5)
        let packed = PackedLinear(test.layer, parameters: test.parameters.pointer, precision: precision)
        let scratch = UnsafeMutableRawPointer.allocate(
            byteCount: PackedLinear.scratchBytes(batch: 4, inputDimensions: 31), alignment: 64)
        defer { scratch.deallocate() }
        let x = FloatBuffer(test.x), y = FloatBuffer(count: 4 * 33)
        packed(x.pointer, batch: 4, output: y.pointer, scratch: scratch)
        let before = fp_thread_allocation_count()
        for _ in 0..<10 { packed(x.pointer, batch: 4, output: y.pointer, scratch: scratch) }
        #expect(fp_thread_allocation_count() - before == 0)
    }
}
