import Testing
import FlowPolicy

@Suite struct NetworkGradientTests {
    /// The whole ResMLP-FiLM backward pass (parameters, x and observation) against central finite differences.
    @Test func resMLPFiLMBackward() throws {
        let configuration = ResMLPFiLMConfiguration(
            chunkDimensions: 6, observationDimensions: 4, hidden: 16, blocks: 2, timeEmbedding: 8)
        let network = try ResMLPFiLM(configuration)
        let B = 3
        var generator = RandomSource(seed: 21)
        let parameters = FloatBuffer(count: network.layout.count)
        network.layout.initialize(parameters, using: &generator)
        // Move the FiLM and LayerNorm parameters off their trivial initial values so every path carries gradient.
        for i in 0..<parameters.count { parameters[i] += 0.05 * (2 * generator.nextUniform() - 1) }
        let x = FloatBuffer(randomValues(B * 6, seed: 22))
        let t = FloatBuffer([0.1, 0.5, 0.9])
        let observation = FloatBuffer(randomValues(B * 4, seed: 23))
        let w = randomValues(B * 6, seed: 24)
        let cache = ResMLPFiLMCache(network: network, capacity: B)
        let v = FloatBuffer(count: B * 6)
        let loss = {
            network.forward(x: x.pointer, t: t.pointer, observation: observation.pointer, batch: B,
                            parameters: parameters.pointer, cache: cache, output: v.pointer)
            return projection(v.pointer, w)
        }
        _ = loss()
        let gradients = FloatBuffer(count: network.layout.count)
        let dx = FloatBuffer(count: B * 6)
        let dObservation = FloatBuffer(count: B * 4)
        w.withUnsafeBufferPointer {
            network.backward(dOutput: $0.baseAddress!, x: x.pointer, batch: B, parameters: parameters.pointer,
                             gradients: gradients.pointer, cache: cache, dX: dx.pointer,
                             dObservation: dObservation.pointer)
        }
        var checked = 0
        for spec in network.layout.tensors {
            // Every element of small tensors, a spread of elements of large ones.
            let stride = max(1, spec.count / 12)
            for i in Swift.stride(from: spec.offset, to: spec.offset + spec.count, by: stride) {
                let fd = centralDifference(parameters.pointer, index: i, loss: loss)
                #expect(gradientsAgree(fd, gradients[i]), "\(spec.name)[\(i - spec.offset)]: fd \(fd) vs \(gradients[i])")
                checked += 1
            }
        }
        #expect(checked > 100)
        for i in 0..<(B * 6) {
            #expect(gradientsAgree(centralDifference(x.pointer, index: i, loss: loss), dx[i]), "x[\(i)]")
        }
        for i in 0..<(B * 4) {
            #expect(gradientsAgree(centralDifference(observation.pointer, index: i, loss: loss), dObservation[i]),
                    "o[\(i)]")
        }
    }

    /// The documented tensor names and shapes (what a PyTorch module of the same structure has), and the reference
    /// network's size: H = 512, 4 blocks, Te = 64, To = 2, Do = 5, Tp = 16, Da = 2 has 2,446,880 parameters.
    @Test func parameterNamesAndCount() throws {
        let network = try ResMLPFiLM(ResMLPFiLMConfiguration(chunkDimensions: 32, observationDimensions: 10))
        let names = network.layout.tensors.map(\.name)
        #expect(names.prefix(10) == [
            "inp.weight", "inp.bias", "blocks.0.film.weight", "blocks.0.film.bias", "blocks.0.ln.weight",
            "blocks.0.ln.bias", "blocks.0.l1.weight", "blocks.0.l1.bias", "blocks.0.l2.weight", "blocks.0.l2.bias",
        ])
        #expect(names.suffix(4) == ["ln.weight", "ln.bias", "out.weight", "out.bias"])
        #expect(network.layout.spec(named: "blocks.3.film.weight")?.shape == [1024, 74])
        #expect(network.layout.spec(named: "out.weight")?.shape == [32, 512])
        #expect(network.layout.parameterCount == 2_446_880)
    }
}
