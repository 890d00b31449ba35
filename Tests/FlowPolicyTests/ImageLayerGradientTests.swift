import Foundation
import Testing
import FlowPolicy

/// The image layers' and encoders' backward passes against central finite differences (tolerance: see
/// `centralDifference`), and their forward passes against their definitions.
@Suite struct ImageLayerGradientTests {
    /// (kernel, stride, padding, bias): 3x3 same, 3x3/2 without bias, ResNet's 7x7/2 stem, pointwise (the plain
    /// matrix product path) and the 1x1/2 downsample.
    static let convolutions = [(3, 1, 1, true), (3, 2, 1, false), (7, 2, 3, false), (1, 1, 0, true), (1, 2, 0, false)]

    @Test(arguments: convolutions)
    func conv2d(kernel: Int, stride: Int, padding: Int, bias: Bool) {
        let (B, C, O, H, W) = (2, 3, 4, 7, 6)
        var layout = ParameterLayout()
        let layer = Conv2d(C, O, kernelSize: kernel, stride: stride, padding: padding, bias: bias, name: "conv",
                           layout: &layout)
        #expect(layout.tensors.map(\.name) == (bias ? ["conv.weight", "conv.bias"] : ["conv.weight"]))
        #expect(layout.spec(named: "conv.weight")?.shape == [O, C, kernel, kernel])
        #expect(layout.spec(named: "conv.weight")?.initializer == .uniform(bound: 1 / Float(C * kernel * kernel)
            .squareRoot()))
        let (Ho, Wo) = layer.outputSize(height: H, width: W)
        let parameters = FloatBuffer(randomValues(layout.count, scale: 0.5, seed: 31))
        let x = FloatBuffer(randomValues(B * C * H * W, seed: 32))
        let w = randomValues(B * O * Ho * Wo, seed: 33)
        let y = FloatBuffer(count: B * O * Ho * Wo)
        let columns = FloatBuffer(count: layer.columnsCount(height: H, width: W))
        let loss = {
            layer(x.pointer, batch: B, height: H, width: W, parameters: parameters.pointer, columns: columns.pointer,
                  output: y.pointer)
            return projection(y.pointer, w)
        }
        _ = loss()
        let reference = FloatBuffer(count: y.count)
        layer.naiveForward(x.pointer, batch: B, height: H, width: W, parameters: parameters.pointer,
                           output: reference.pointer)
        for i in 0..<y.count { #expect(abs(y[i] - reference[i]) < 1e-5, "y[\(i)]") }
        let gradients = FloatBuffer(count: layout.count)
        let dx = FloatBuffer(count: x.count)
        w.withUnsafeBufferPointer {
            layer.backward(x.pointer, dOutput: $0.baseAddress!, batch: B, height: H, width: W,
                           parameters: parameters.pointer, gradients: gradients.pointer, columns: columns.pointer,
                           dInput: dx.pointer)
        }
        for spec in layout.tensors {
            for i in spec.offset..<(spec.offset + spec.count) {
                let fd = centralDifference(parameters.pointer, index: i, loss: loss)
                #expect(gradientsAgree(fd, gradients[i]), "\(spec.name)[\(i - spec.offset)]: \(fd) vs \(gradients[i])")
            }
        }
        for i in 0..<x.count {
            let fd = centralDifference(x.pointer, index: i, loss: loss)
            #expect(gradientsAgree(fd, dx[i]), "x[\(i)]: \(fd) vs \(dx[i])")
        }
    }

    @Test func groupNorm() {
        let (B, C, G, S) = (2, 8, 2, 12)
        var layout = ParameterLayout()
        let layer = GroupNorm(G, C, name: "gn", layout: &layout)
        let parameters = FloatBuffer(randomValues(layout.count, scale: 1.5, seed: 34))
        let x = FloatBuffer(randomValues(B * C * S, scale: 2, seed: 35))
        let w = randomValues(B * C * S, seed: 36)
        let y = FloatBuffer(count: B * C * S)
        let (mean, rstd) = (FloatBuffer(count: B * G), FloatBuffer(count: B * G))
        let loss = {
            layer(x.pointer, batch: B, spatial: S, parameters: parameters.pointer, output: y.pointer,
                  mean: mean.pointer, rstd: rstd.pointer)
            return projection(y.pointer, w)
        }
        _ = loss()
        let gradients = FloatBuffer(count: layout.count)
        let dx = FloatBuffer(count: x.count)
        w.withUnsafeBufferPointer {
            layer.backward(x.pointer, mean: mean.pointer, rstd: rstd.pointer, dOutput: $0.baseAddress!, batch: B,
                           spatial: S, parameters: parameters.pointer, gradients: gradients.pointer, dInput: dx.pointer)
        }
        for spec in layout.tensors {
            for i in spec.offset..<(spec.offset + spec.count) {
                #expect(gradientsAgree(centralDifference(parameters.pointer, index: i, loss: loss), gradients[i]))
            }
        }
        for i in 0..<x.count {
            #expect(gradientsAgree(centralDifference(x.pointer, index: i, loss: loss), dx[i]), "x[\(i)]")
        }
        // PyTorch's definition, in Double: image 1, group 1 (channels 4 ..< 8), channel 5, position 3.
        _ = loss()
        let group = (0..<(4 * S)).map { Double(x[(1 * C + 4) * S + $0]) }
        let m = group.reduce(0, +) / Double(group.count)
        let variance = group.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(group.count)
        let index = (1 * C + 5) * S + 3
        let expected = (Double(x[index]) - m) / (variance + 1e-5).squareRoot() * Double(parameters[layer.weight + 5])
            + Double(parameters[layer.bias + 5])
        #expect(abs(Double(y[index]) - expected) < 1e-5)
    }

    @Test func relu() {
        let count = 37
        let x = FloatBuffer(randomValues(count, seed: 37))
        let w = randomValues(count, seed: 38)
        let y = FloatBuffer(count: count)
        let loss = {
            ReLU.forward(x.pointer, count: count, output: y.pointer)
            return projection(y.pointer, w)
        }
        _ = loss()
        for i in 0..<count { #expect(y[i] == max(x[i], 0)) }
        let dx = FloatBuffer(count: count)
        let inPlace = FloatBuffer(w)
        w.withUnsafeBufferPointer {
            ReLU.backward(output: y.pointer, dOutput: $0.baseAddress!, count: count, dInput: dx.pointer)
        }
        ReLU.backwardInPlace(output: y.pointer, gradient: inPlace.pointer, count: count)
        for i in 0..<count {
            #expect(gradientsAgree(centralDifference(x.pointer, index: i, loss: loss), dx[i]), "x = \(x[i])")
            #expect(inPlace[i] == dx[i])
        }
        // In place, as torchvision's ReLU(inplace=True).
        ReLU.forward(x.pointer, count: count, output: x.pointer)
        for i in 0..<count { #expect(x[i] == y[i]) }
    }

    @Test func maxPool2d() {
        let (B, C, H, W) = (2, 3, 7, 6)
        let pool = MaxPool2d()
        let (Ho, Wo) = pool.outputSize(height: H, width: W)
        #expect(Ho == 4 && Wo == 3)
        // Distinct values 0.01 apart (wider than the finite difference step): no ties inside a window.
        var generator = RandomSource(seed: 39)
        let x = FloatBuffer((0..<(B * C * H * W)).map { Float($0) * 0.01 - 1 }.shuffled(using: &generator))
        let w = randomValues(B * C * Ho * Wo, seed: 40)
        let y = FloatBuffer(count: w.count)
        let argmax = UnsafeMutablePointer<Int32>.allocate(capacity: w.count)
        defer { argmax.deallocate() }
        let loss = {
            pool(x.pointer, batch: B, channels: C, height: H, width: W, output: y.pointer, argmax: argmax)
            return projection(y.pointer, w)
        }
        _ = loss()
        // The definition: the largest value of each 3x3 window at stride 2, padding 1.
        for plane in 0..<(B * C) {
            for oh in 0..<Ho {
                for ow in 0..<Wo {
                    var best = -Float.infinity
                    for h in (2 * oh - 1)...(2 * oh + 1) where (0..<H).contains(h) {
                        for v in (2 * ow - 1)...(2 * ow + 1) where (0..<W).contains(v) {
                            best = max(best, x[(plane * H + h) * W + v])
                        }
                    }
                    #expect(y[(plane * Ho + oh) * Wo + ow] == best)
                }
            }
        }
        let dx = FloatBuffer(count: x.count)
        w.withUnsafeBufferPointer {
            pool.backward(argmax: argmax, dOutput: $0.baseAddress!, batch: B, channels: C, height: H, width: W,
                          dInput: dx.pointer)
        }
        for i in 0..<x.count {
            #expect(gradientsAgree(centralDifference(x.pointer, index: i, loss: loss), dx[i]), "x[\(i)]")
        }
    }

    @Test func spatialSoftmax() {
        // A non-square map, so that x (over the width) and y (over the height) cannot be confused.
        let (B, C, K, H, W) = (2, 3, 4, 3, 5)
        var layout = ParameterLayout()
        let layer = SpatialSoftmax(C, keypoints: K, height: H, width: W, name: "pool", layout: &layout)
        #expect(layout.tensors.map(\.name) == ["pool.keypoints.weight", "pool.keypoints.bias"])
        #expect(layout.spec(named: "pool.keypoints.weight")?.shape == [K, C, 1, 1])
        let parameters = FloatBuffer(randomValues(layout.count, seed: 41))
        let x = FloatBuffer(randomValues(B * C * H * W, scale: 2, seed: 42))
        let w = randomValues(B * 2 * K, seed: 43)
        let y = FloatBuffer(count: w.count)
        let attention = FloatBuffer(count: B * K * H * W)
        let columns = FloatBuffer(count: layer.keypoints.columnsCount(height: H, width: W))
        let loss = {
            layer(x.pointer, batch: B, parameters: parameters.pointer, columns: columns.pointer,
                  attention: attention.pointer, output: y.pointer)
            return projection(y.pointer, w)
        }
        _ = loss()
        // robomimic's definition in Double: softmax of the 1x1 convolution over H W, expected linspace coordinates,
        // output (x0, y0, x1, y1, ...).
        for b in 0..<B {
            for k in 0..<K {
                var logits = [Double](repeating: Double(parameters[layer.keypoints.bias! + k]), count: H * W)
                for c in 0..<C {
                    for s in 0..<(H * W) {
                        logits[s] += Double(parameters[layer.keypoints.weight + k * C + c])
                            * Double(x[(b * C + c) * H * W + s])
                    }
                }
                let largest = logits.max()!
                let e = logits.map { exp($0 - largest) }
                let total = e.reduce(0, +)
                var (ex, ey) = (0.0, 0.0)
                for s in 0..<(H * W) {
                    ex += e[s] / total * (-1 + 2 * Double(s % W) / Double(W - 1))
                    ey += e[s] / total * (-1 + 2 * Double(s / W) / Double(H - 1))
                }
                #expect(abs(Double(y[(b * K + k) * 2]) - ex) < 1e-5)
                #expect(abs(Double(y[(b * K + k) * 2 + 1]) - ey) < 1e-5)
            }
        }
        let gradients = FloatBuffer(count: layout.count)
        let dx = FloatBuffer(count: x.count)
        let dLogits = FloatBuffer(count: attention.count)
        w.withUnsafeBufferPointer {
            layer.backward(x.pointer, attention: attention.pointer, output: y.pointer, dOutput: $0.baseAddress!,
                           batch: B, parameters: parameters.pointer, gradients: gradients.pointer,
                           dLogits: dLogits.pointer, dInput: dx.pointer)
        }
        for spec in layout.tensors {
            for i in spec.offset..<(spec.offset + spec.count) {
                #expect(gradientsAgree(centralDifference(parameters.pointer, index: i, loss: loss), gradients[i]))
            }
        }
        for i in 0..<x.count {
            #expect(gradientsAgree(centralDifference(x.pointer, index: i, loss: loss), dx[i]), "x[\(i)]")
        }
    }

    /// The whole encoder's parameter gradients against finite differences, a spread of elements of every tensor.
    /// ResNet-18 runs at 40 x 40, where layer4 ends at 2 x 2 (at 32 x 32 it ends at 1 x 1, where the softmax over
    /// one position is constant and no gradient reaches the backbone).
    @Test(arguments: [
        ImageEncoderConfiguration(backbone: .smallCNN, channels: 3, height: 12, width: 10, keypoints: 4, features: 5),
        ImageEncoderConfiguration(backbone: .resnet18, channels: 3, height: 40, width: 40, keypoints: 4, features: 5),
    ])
    func encoderBackward(configuration: ImageEncoderConfiguration) throws {
        var layout = ParameterLayout()
        // Another network's tensor first: the encoder's offsets are absolute.
        _ = layout.declare("other.weight", shape: [7], initializer: .zeros)
        let encoder = try ImageEncoder(configuration, name: "camera", layout: &layout)
        let B = configuration.backbone == .smallCNN ? 2 : 1
        var generator = RandomSource(seed: 44)
        let parameters = FloatBuffer(count: layout.count)
        layout.initialize(parameters, using: &generator)
        // Move the GroupNorm parameters off their trivial initial values so every path carries gradient.
        for i in 0..<parameters.count { parameters[i] += 0.05 * (2 * generator.nextUniform() - 1) }
        let (C, H, W) = (configuration.channels, configuration.height, configuration.width)
        let images = FloatBuffer(randomValues(B * C * H * W, seed: 45))
        let w = randomValues(B * configuration.features, seed: 46)
        let cache = ImageEncoderCache(encoder: encoder, capacity: B)
        let features = FloatBuffer(count: w.count)
        let loss = {
            encoder.forward(images: images.pointer, batch: B, parameters: parameters.pointer, cache: cache,
                            output: features.pointer)
            return projection(features.pointer, w)
        }
        _ = loss()
        let gradients = FloatBuffer(count: layout.count)
        w.withUnsafeBufferPointer {
            encoder.backward(dOutput: $0.baseAddress!, batch: B, parameters: parameters.pointer,
                             gradients: gradients.pointer, cache: cache)
        }
        // Frozen: nothing changes.
        let before = gradients.array
        w.withUnsafeBufferPointer {
            encoder.backward(dOutput: $0.baseAddress!, batch: B, parameters: parameters.pointer, gradients: nil,
                             cache: cache)
        }
        #expect(gradients.array == before)
        #expect(gradients[0] == 0)
        // A step of one weight moves thousands of pre-activations; when one of them crosses a ReLU's kink or a max
        // pool's tie inside the step, the loss is not smooth on that scale and the finite difference is off by
        // about that unit's contribution. Such points show as finite differences that depend on the step: where
        // the steps 1e-3 and 2e-3 disagree, the point is counted as non-smooth instead of compared (a few percent).
        var (checked, nonzero, nonSmooth) = (0, 0, 0)
        let samples = configuration.backbone == .smallCNN ? 10 : 3
        for spec in layout.tensors where spec.name != "other.weight" {
            let stride = max(1, spec.count / samples)
            for i in Swift.stride(from: spec.offset + stride / 2, to: spec.offset + spec.count, by: stride) {
                checked += 1
                if abs(gradients[i]) > 1e-4 { nonzero += 1 }
                let fd = centralDifference(parameters.pointer, index: i, loss: loss)
                if gradientsAgree(fd, gradients[i]) { continue }
                let wider = centralDifference(parameters.pointer, index: i, epsilon: 2e-3, loss: loss)
                if abs(wider - fd) > 5e-3 + 1e-2 * abs(fd) {
                    nonSmooth += 1
                    continue
                }
                let name = "\(spec.name)[\(i - spec.offset)]"
                Issue.record("\(name): fd \(fd) (\(wider) at twice the step) vs \(gradients[i])")
            }
        }
        #expect(checked > (configuration.backbone == .smallCNN ? 100 : 150))
        #expect(nonzero > checked / 2, "\(nonzero) of \(checked) sampled gradients are nonzero")
        #expect(nonSmooth <= checked / 20, "\(nonSmooth) of \(checked) sampled points are not smooth")
    }

    /// The documented names and shapes: torchvision's `resnet18` under the prefix, and the small CNN's.
    @Test func parameterNames() throws {
        var layout = ParameterLayout()
        let resnet = try ImageEncoder(ImageEncoderConfiguration(backbone: .resnet18), name: "cam", layout: &layout)
        let names = layout.tensors.map(\.name)
        #expect(names.prefix(9) == [
            "cam.backbone.conv1.weight", "cam.backbone.bn1.weight", "cam.backbone.bn1.bias",
            "cam.backbone.layer1.0.conv1.weight", "cam.backbone.layer1.0.bn1.weight", "cam.backbone.layer1.0.bn1.bias",
            "cam.backbone.layer1.0.conv2.weight", "cam.backbone.layer1.0.bn2.weight", "cam.backbone.layer1.0.bn2.bias",
        ])
        #expect(names.suffix(4) == [
            "cam.pool.keypoints.weight", "cam.pool.keypoints.bias", "cam.projection.weight", "cam.projection.bias",
        ])
        #expect(layout.spec(named: "cam.backbone.layer2.0.downsample.0.weight")?.shape == [128, 64, 1, 1])
        #expect(layout.spec(named: "cam.backbone.layer2.0.downsample.1.bias")?.shape == [128])
        #expect(layout.spec(named: "cam.backbone.layer1.0.downsample.0.weight") == nil)
        #expect(layout.spec(named: "cam.backbone.layer4.1.conv2.weight")?.shape == [512, 512, 3, 3])
        #expect(layout.spec(named: "cam.pool.keypoints.weight")?.shape == [32, 512, 1, 1])
        #expect(layout.spec(named: "cam.projection.weight")?.shape == [64, 64])
        // torchvision's resnet18 has 11,689,512 parameters: 11,176,512 in the trunk plus fc's 513,000.
        let trunk = layout.tensors.filter { $0.name.hasPrefix("cam.backbone.") }.reduce(0) { $0 + $1.count }
        #expect(trunk == 11_176_512)
        #expect(resnet.multiplyAddsPerImage > 0)

        var small = ParameterLayout()
        _ = try ImageEncoder(ImageEncoderConfiguration(backbone: .smallCNN), name: "cam", layout: &small)
        let stages = (1...3).flatMap { i in
            ["conv\(i).weight", "conv\(i).bias", "norm\(i).weight", "norm\(i).bias"].map { "cam.backbone.\($0)" }
        }
        #expect(small.tensors.map(\.name) == stages + [
            "cam.pool.keypoints.weight", "cam.pool.keypoints.bias", "cam.projection.weight", "cam.projection.bias",
        ])
        // The configuration's JSON: the backbone's PyTorch-side name.
        let json = try JSONEncoder().encode(ImageEncoderConfiguration(backbone: .smallCNN))
        #expect(String(decoding: json, as: UTF8.self).contains("\"small_cnn\""))
        #expect(throws: FlowPolicyError.self) {
            _ = try ImageEncoder(
                ImageEncoderConfiguration(backbone: .smallCNN, keypoints: 0), name: "x", layout: &small)
        }
    }
}
