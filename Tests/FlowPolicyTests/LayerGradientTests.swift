import Foundation
import Testing
import FlowPolicy

/// Every layer's backward pass against central finite differences (tolerance: see `centralDifference`).
@Suite struct LayerGradientTests {
    @Test func linear() {
        var layout = ParameterLayout()
        let layer = Linear(6, 5, name: "l", layout: &layout)
        let B = 3
        var generator = RandomSource(seed: 7)
        let parameters = FloatBuffer(count: layout.count)
        layout.initialize(parameters, using: &generator)
        let x = FloatBuffer(randomValues(B * 6, seed: 1))
        let w = randomValues(B * 5, seed: 2)
        let y = FloatBuffer(count: B * 5)
        let gradients = FloatBuffer(count: layout.count)
        let dx = FloatBuffer(count: B * 6)
        layer(x.pointer, batch: B, parameters: parameters.pointer, output: y.pointer)
        layer.backward(x.pointer, dOutput: w, batch: B, parameters: parameters.pointer,
                       gradients: gradients.pointer, dInput: dx.pointer)
        let loss = {
            layer(x.pointer, batch: B, parameters: parameters.pointer, output: y.pointer)
            return projection(y.pointer, w)
        }
        for i in 0..<layout.count where i < layout.parameterCount + 16 {
            guard layout.tensors.contains(where: { ($0.offset..<($0.offset + $0.count)).contains(i) }) else { continue }
            #expect(gradientsAgree(centralDifference(parameters.pointer, index: i, loss: loss), gradients[i]))
        }
        for i in 0..<(B * 6) {
            #expect(gradientsAgree(centralDifference(x.pointer, index: i, loss: loss), dx[i]))
        }
    }

    @Test func layerNorm() {
        var layout = ParameterLayout()
        let layer = LayerNorm(8, name: "ln", layout: &layout)
        let B = 3
        let parameters = FloatBuffer(randomValues(layout.count, scale: 1.5, seed: 3))
        let x = FloatBuffer(randomValues(B * 8, scale: 2, seed: 4))
        let w = randomValues(B * 8, seed: 5)
        let (y, mean, rstd) = (FloatBuffer(count: B * 8), FloatBuffer(count: B), FloatBuffer(count: B))
        let gradients = FloatBuffer(count: layout.count)
        let dx = FloatBuffer(count: B * 8)
        let loss = {
            layer(x.pointer, batch: B, parameters: parameters.pointer, output: y.pointer, mean: mean.pointer,
                  rstd: rstd.pointer)
            return projection(y.pointer, w)
        }
        _ = loss()
        layer.backward(x.pointer, mean: mean.pointer, rstd: rstd.pointer, dOutput: w, batch: B,
                       parameters: parameters.pointer, gradients: gradients.pointer, dInput: dx.pointer)
        for spec in layout.tensors {
            for i in spec.offset..<(spec.offset + spec.count) {
                #expect(gradientsAgree(centralDifference(parameters.pointer, index: i, loss: loss), gradients[i]))
            }
        }
        for i in 0..<(B * 8) {
            #expect(gradientsAgree(centralDifference(x.pointer, index: i, loss: loss), dx[i]))
        }
        // PyTorch's definition: biased variance, ε inside the square root.
        let row = Array(x.buffer[0..<8])
        let m = row.reduce(0, +) / 8
        let variance = row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 8
        let expected = (row[0] - m) / (variance + 1e-5).squareRoot() * parameters[0] + parameters[layer.bias]
        _ = loss()
        #expect(abs(y[0] - expected) < 1e-5)
    }

    @Test(arguments: ["mish", "silu"])
    func activation(name: String) {
        let count = 40
        // Cover the saturated tails and the threshold at x = 20.
        var values = randomValues(count - 4, scale: 6, seed: 6)
        values += [-30, 19.5, 21, 0]
        let x = FloatBuffer(values)
        let w = randomValues(count, seed: 8)
        let y = FloatBuffer(count: count)
        let dx = FloatBuffer(count: count)
        let forward = { (x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) in
            name == "mish" ? Mish.forward(x, count: count, output: y) : SiLU.forward(x, count: count, output: y)
        }
        let loss = {
            forward(x.pointer, y.pointer)
            return projection(y.pointer, w)
        }
        _ = loss()
        w.withUnsafeBufferPointer { w in
            name == "mish"
                ? Mish.backward(x.pointer, dOutput: w.baseAddress!, count: count, dInput: dx.pointer)
                : SiLU.backward(x.pointer, dOutput: w.baseAddress!, count: count, dInput: dx.pointer)
        }
        for i in 0..<count {
            #expect(gradientsAgree(centralDifference(x.pointer, index: i, loss: loss), dx[i]), "x = \(values[i])")
        }
        // Against the textbook definitions in Double.
        _ = loss()
        for i in 0..<count {
            let v = Double(values[i])
            let softplus = v > 20 ? v : log1p(exp(v))
            let reference = name == "mish" ? v * tanh(softplus) : v / (1 + exp(-v))
            #expect(abs(Double(y[i]) - reference) <= 1e-6 * max(1, abs(reference)), "x = \(v)")
        }
    }

    @Test func timeEmbedding() {
        let embedding = SinusoidalTimeEmbedding(16)
        let B = 3
        // Small t: the argument 1000 t f is large, so keep ε small relative to the fastest period (2π/1000).
        let t = FloatBuffer([0.0004, 0.0011, 0.0023])
        let w = randomValues(B * 16, seed: 9)
        let y = FloatBuffer(count: B * 16)
        let dt = FloatBuffer(count: B)
        let loss = {
            embedding(t.pointer, batch: B, output: y.pointer, outputStride: 16)
            return projection(y.pointer, w)
        }
        _ = loss()
        w.withUnsafeBufferPointer {
            embedding.backward(t.pointer, dOutput: $0.baseAddress!, dOutputStride: 16, batch: B, dInput: dt.pointer)
        }
        for i in 0..<B {
            let fd = centralDifference(t.pointer, index: i, epsilon: 1e-5, loss: loss)
            #expect(abs(fd - Double(dt[i])) <= 2e-2 * max(1, abs(Double(dt[i]))), "t = \(t[i])")
        }
        // Definition: frequencies exp(-ln(10000) i / (Te/2)), argument 1000 t, sines then cosines.
        _ = loss()
        let frequency3 = exp(-log(10000.0) * 3 / 8)
        #expect(abs(Double(y[3]) - sin(1000 * Double(t[0]) * frequency3)) < 1e-5)
        #expect(abs(Double(y[8 + 3]) - cos(1000 * Double(t[0]) * frequency3)) < 1e-5)
    }

    @Test func film() {
        let (B, H) = (2, 5)
        let z = FloatBuffer(randomValues(B * H, seed: 10))
        let film = FloatBuffer(randomValues(B * 2 * H, seed: 11))
        let w = randomValues(B * H, seed: 12)
        let y = FloatBuffer(count: B * H)
        let dz = FloatBuffer(count: B * H)
        let dFilm = FloatBuffer(count: B * 2 * H)
        let loss = {
            FiLM.forward(z.pointer, film: film.pointer, batch: B, hidden: H, output: y.pointer)
            return projection(y.pointer, w)
        }
        _ = loss()
        w.withUnsafeBufferPointer {
            FiLM.backward(z.pointer, film: film.pointer, dOutput: $0.baseAddress!, batch: B, hidden: H,
                          dInput: dz.pointer, dFilm: dFilm.pointer)
        }
        for i in 0..<(B * H) {
            #expect(gradientsAgree(centralDifference(z.pointer, index: i, loss: loss), dz[i]))
        }
        for i in 0..<(B * 2 * H) {
            #expect(gradientsAgree(centralDifference(film.pointer, index: i, loss: loss), dFilm[i]))
        }
    }
}
