import Foundation
import Testing
import FlowPolicy

/// A small field (network + head) with parameters moved off their initial values so every path carries gradient.
private func smallField(skewRank: Int = 2, epsilon: Float = 0.1, headScale: Float = 1) throws
    -> (VelocityField, VelocityFieldParameters)
{
    let network = try ResMLPFiLM(ResMLPFiLMConfiguration(
        chunkDimensions: 6, observationDimensions: 4, hidden: 16, blocks: 2, timeEmbedding: 8))
    let head = try ContractiveResidualHead(ResidualHeadConfiguration(
        chunkDimensions: 6, observationDimensions: 4, hidden: 12, rank: 2, skewRank: skewRank, epsilon: epsilon,
        timeEmbedding: 8))
    var generator = RandomSource(seed: 31)
    let networkParameters = FloatBuffer(count: network.layout.count)
    network.layout.initialize(networkParameters, using: &generator)
    let headParameters = FloatBuffer(count: head.layout.count)
    head.layout.initialize(headParameters, using: &generator)  // full-size output layer: U, P, Q, d of order 1
    for i in 0..<headParameters.count { headParameters[i] *= headScale }
    for i in 0..<networkParameters.count { networkParameters[i] += 0.05 * (2 * generator.nextUniform() - 1) }
    return (VelocityField(network: network, head: head),
            VelocityFieldParameters(network: networkParameters, head: headParameters))
}

@Suite struct ResidualHeadTests {
    /// `<r(x) - r(y), x - y> <= -ε |x - y|²` for random parameters, conditions and points.
    @Test func headIsContractingByConstruction() throws {
        for (seed, epsilon) in [(UInt64(1), Float(0.1)), (2, 0.5), (3, 0.01)] {
            let head = try ContractiveResidualHead(ResidualHeadConfiguration(
                chunkDimensions: 8, observationDimensions: 3, hidden: 16, rank: 3, skewRank: 2, epsilon: epsilon,
                timeEmbedding: 8))
            var generator = RandomSource(seed: seed)
            let parameters = FloatBuffer(count: head.layout.count)
            head.layout.initialize(parameters, using: &generator)
            for i in 0..<parameters.count { parameters[i] *= 3 }  // large U, P, Q and both signs of d
            let B = 64
            let cache = ResidualHeadCache(head: head, capacity: B)
            let t = FloatBuffer(randomValues(B, scale: 0.5, seed: seed + 10).map { $0 + 0.5 })
            let o = FloatBuffer(randomValues(B * 3, scale: 2, seed: seed + 20))
            let x = FloatBuffer(randomValues(B * 8, scale: 3, seed: seed + 30))
            let y = FloatBuffer(randomValues(B * 8, scale: 3, seed: seed + 40))
            let rx = FloatBuffer(count: B * 8), ry = FloatBuffer(count: B * 8)
            head.forward(x: x.pointer, t: t.pointer, observation: o.pointer, batch: B, parameters: parameters.pointer,
                         cache: cache, addingTo: rx.pointer)
            head.forward(x: y.pointer, t: t.pointer, observation: o.pointer, batch: B, parameters: parameters.pointer,
                         cache: cache, addingTo: ry.pointer)
            for row in 0..<B {
                var inner = 0.0, squared = 0.0
                for i in (row * 8)..<((row + 1) * 8) {
                    inner += Double(rx[i] - ry[i]) * Double(x[i] - y[i])
                    squared += Double(x[i] - y[i]) * Double(x[i] - y[i])
                }
                // 0.1% slack for Float32 rounding.
                #expect(inner <= -Double(epsilon) * squared * 0.999, "row \(row): \(inner) vs \(squared)")
            }
        }
    }

    /// Gradients of the unrolled Euler and midpoint samplers (through the network and the head) with respect to
    /// the network's parameters, the head's parameters and the latent, against central finite differences.
    @Test(arguments: [SolverMethod.euler, .midpoint])
    func unrolledGradientsMatchFiniteDifferences(method: SolverMethod) throws {
        let (field, parameters) = try smallField()
        let (B, Dx) = (3, 6)
        let sampler = try UnrolledSampler(field: field, method: method, steps: 3, capacity: B)
        let z = FloatBuffer(randomValues(B * Dx, seed: 5))
        let o = FloatBuffer(randomValues(B * 4, seed: 6))
        let w = randomValues(B * Dx, seed: 7)
        let output = FloatBuffer(count: B * Dx)
        let loss = {
            sampler.forward(z: z.pointer, observation: o.pointer, batch: B, parameters: parameters, output: output.pointer)
            return projection(output.pointer, w)
        }
        _ = loss()
        let networkGradients = FloatBuffer(count: parameters.network.count)
        let headGradients = FloatBuffer(count: parameters.head!.count)
        let dZ = FloatBuffer(count: B * Dx)
        w.withUnsafeBufferPointer {
            sampler.backward(dOutput: $0.baseAddress!, parameters: parameters, networkGradients: networkGradients.pointer,
                             headGradients: headGradients.pointer, dZ: dZ.pointer)
        }
        for (layout, values, gradients) in [(field.network.layout, parameters.network, networkGradients),
                                            (field.head!.layout, parameters.head!, headGradients)] {
            for spec in layout.tensors {
                let stride = max(1, spec.count / 6)
                for i in Swift.stride(from: spec.offset, to: spec.offset + spec.count, by: stride) {
                    let fd = centralDifference(values.pointer, index: i, loss: loss)
                    #expect(gradientsAgree(fd, gradients[i]), "\(method) \(spec.name)[\(i - spec.offset)]: \(fd) vs \(gradients[i])")
                }
            }
        }
        for i in 0..<(B * Dx) {
            #expect(gradientsAgree(centralDifference(z.pointer, index: i, loss: loss), dZ[i]), "\(method) z[\(i)]")
        }
    }

    /// Frozen parts get no gradient: with `networkGradients` nil only the head's gradient is produced, and it is the
    /// same as when both are requested.
    @Test func frozenBaseGivesTheSameHeadGradient() throws {
        let (field, parameters) = try smallField()
        let sampler = try UnrolledSampler(field: field, method: .euler, steps: 2, capacity: 2)
        let z = FloatBuffer(randomValues(12, seed: 8)), o = FloatBuffer(randomValues(8, seed: 9))
        let output = FloatBuffer(count: 12)
        let upstream = FloatBuffer(randomValues(12, seed: 10))
        func headGradient(withNetwork: Bool) -> [Float] {
            sampler.forward(z: z.pointer, observation: o.pointer, batch: 2, parameters: parameters, output: output.pointer)
            let head = FloatBuffer(count: parameters.head!.count)
            let network = FloatBuffer(count: parameters.network.count)
            sampler.backward(dOutput: upstream.pointer, parameters: parameters,
                             networkGradients: withNetwork ? network.pointer : nil, headGradients: head.pointer)
            return head.array
        }
        #expect(headGradient(withNetwork: false) == headGradient(withNetwork: true))
    }
}
