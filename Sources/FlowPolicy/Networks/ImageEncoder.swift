// Dimensions: B batch (images), C input channels, H × W input size, K keypoints, F features. Images are NCHW,
// contiguous, already scaled to [-1, 1].

/// Sizes of an `ImageEncoder`.
public struct ImageEncoderConfiguration: Codable, Equatable, Sendable {
    public enum Backbone: String, Codable, Sendable, CaseIterable {
        /// torchvision's ResNet-18 trunk (no avgpool, no fc) with GroupNorm(C / 16, C) for BatchNorm, as Diffusion
        /// Policy's image encoder.
        case resnet18
        /// Three stride-2 3x3 convolutions (32, 64, 64 channels) with GroupNorm and ReLU: trains on a CPU.
        case smallCNN = "small_cnn"
    }

    public var backbone: Backbone
    /// C.
    public var channels: Int
    /// H and W: the input size after cropping.
    public var height: Int
    public var width: Int
    /// K: SpatialSoftmax keypoints.
    public var keypoints: Int
    /// F: the size of the feature vector per image.
    public var features: Int

    public init(
        backbone: Backbone, channels: Int = 3, height: Int = 84, width: Int = 84, keypoints: Int = 32,
        features: Int = 64
    ) {
        self.backbone = backbone
        self.channels = channels
        self.height = height
        self.width = width
        self.keypoints = keypoints
        self.features = features
    }

    /// Throws if a size cannot make an encoder, naming the field.
    public func validate() throws(FlowPolicyError) {
        for (name, value) in [("image channels", channels), ("image height", height), ("image width", width),
                              ("keypoints", keypoints), ("image features", features)] where value < 1 {
            throw .invalidConfiguration("\(name) must be at least 1, got \(value)")
        }
    }
}

/// Features `[B, F]` from images `[B, C, H, W]`: a convolutional backbone, robomimic's SpatialSoftmax and a Linear
/// projection, as Diffusion Policy's image observation encoder.
///
/// ```
/// images                                                        [B, C, H, W]
/// backbone (resnet18 or small_cnn)                              [B, C', H', W']
/// pool: SpatialSoftmax, 1x1 conv C' -> K, softmax, E[(x, y)]    [B, 2K]
/// projection: Linear(2K -> F)                                   [B, F]
/// ```
/// ResNet-18 (torchvision's `resnet18(norm_layer=lambda c: nn.GroupNorm(c // 16, c))` without avgpool and fc):
/// `conv1` 7x7/2 pad 3 (no bias), `bn1`, ReLU, max pool 3/2/1, then `layer1` ... `layer4` of two BasicBlocks each
/// (64, 128, 256, 512 channels, strides 1, 2, 2, 2): `conv1` 3x3/s, `bn1`, ReLU, `conv2` 3x3, `bn2`, plus the
/// identity or `downsample` (`0`: 1x1/s conv, `1`: GroupNorm), then ReLU. At 84 x 84 the trunk ends at 512 x 3 x 3.
///
/// Small CNN: `conv1` 3x3/2 (C -> 32), `norm1`, ReLU, `conv2` 3x3/2 (32 -> 64), `norm2`, ReLU, `conv3` 3x3/2
/// (64 -> 64), `norm3`, ReLU; padding 1, convolutions with bias, GroupNorm(C / 16, C). At 84 x 84: 64 x 11 x 11.
///
/// Parameter names, under `prefix`, are the PyTorch module's (`clients/python/flowpolicy_torch/vision.py`):
/// `backbone.conv1.weight`, `backbone.bn1.weight`, `backbone.layer2.0.downsample.0.weight`, ... (ResNet-18) or
/// `backbone.conv1.weight`, `backbone.norm1.weight`, ... (small CNN), `pool.keypoints.weight` / `.bias` and
/// `projection.weight` / `.bias`.
public final class ImageEncoder: Sendable {
    /// A feature map's size per image.
    struct MapShape: Sendable {
        let channels: Int
        let height: Int
        let width: Int
        var count: Int { channels * height * width }
    }

    /// A convolution followed by a GroupNorm, at a fixed input size.
    struct ConvNorm: Sendable {
        let conv: Conv2d
        let norm: GroupNorm
        let input: MapShape
        let output: MapShape

        init(_ conv: Conv2d, input: MapShape, name normName: String, layout: inout ParameterLayout) {
            self.conv = conv
            let (Ho, Wo) = conv.outputSize(height: input.height, width: input.width)
            let O = conv.outputChannels
            norm = GroupNorm(O / 16, O, name: normName, layout: &layout)
            self.input = input
            output = MapShape(channels: O, height: Ho, width: Wo)
        }
    }

    /// A ResNet BasicBlock as indices into `units`.
    struct BasicBlock: Sendable {
        let first: Int
        let second: Int
        let downsample: Int?
    }

    public let configuration: ImageEncoderConfiguration
    /// Every convolution + norm, in declaration order (the small CNN's stages; ResNet's stem, then per block
    /// conv1/bn1, conv2/bn2 and the downsample).
    let units: [ConvNorm]
    /// ResNet-18 only: the max pool after the stem (`units[0]`), its output size, and the blocks.
    let stemPool: MaxPool2d
    let pooled: MapShape
    let blocks: [BasicBlock]
    let pool: SpatialSoftmax
    let projection: Linear

    /// Declares the encoder's tensors into `layout` (after whatever it holds already) under `prefix`.
    public init(
        _ configuration: ImageEncoderConfiguration, name prefix: String, layout: inout ParameterLayout
    ) throws(FlowPolicyError) {
        try configuration.validate()
        self.configuration = configuration
        let backbone = "\(prefix).backbone"
        var units: [ConvNorm] = []
        var blocks: [BasicBlock] = []
        var shape = MapShape(channels: configuration.channels, height: configuration.height, width: configuration.width)
        func convNorm(
            _ outputChannels: Int, kernel: Int, stride: Int, padding: Int, bias: Bool, conv: String, norm: String
        ) -> Int {
            let layer = Conv2d(
                shape.channels, outputChannels, kernelSize: kernel, stride: stride, padding: padding, bias: bias,
                name: "\(backbone).\(conv)", layout: &layout)
            units.append(ConvNorm(layer, input: shape, name: "\(backbone).\(norm)", layout: &layout))
            return units.count - 1
        }
        stemPool = MaxPool2d(kernelSize: 3, stride: 2, padding: 1)
        switch configuration.backbone {
        case .smallCNN:
            for (i, channels) in [32, 64, 64].enumerated() {
                let unit = convNorm(
                    channels, kernel: 3, stride: 2, padding: 1, bias: true, conv: "conv\(i + 1)", norm: "norm\(i + 1)")
                shape = units[unit].output
            }
            pooled = shape
        case .resnet18:
            let stem = convNorm(64, kernel: 7, stride: 2, padding: 3, bias: false, conv: "conv1", norm: "bn1")
            let stemOutput = units[stem].output
            let (Hp, Wp) = stemPool.outputSize(height: stemOutput.height, width: stemOutput.width)
            pooled = MapShape(channels: stemOutput.channels, height: Hp, width: Wp)
            shape = pooled
            for (layer, (channels, stride)) in [(64, 1), (128, 2), (256, 2), (512, 2)].enumerated() {
                for index in 0..<2 {
                    let name = "layer\(layer + 1).\(index)"
                    let blockInput = shape
                    let blockStride = index == 0 ? stride : 1
                    let first = convNorm(
                        channels, kernel: 3, stride: blockStride, padding: 1, bias: false, conv: "\(name).conv1",
                        norm: "\(name).bn1")
                    shape = units[first].output
                    let second = convNorm(
                        channels, kernel: 3, stride: 1, padding: 1, bias: false, conv: "\(name).conv2",
                        norm: "\(name).bn2")
                    var downsample: Int?
                    if blockStride != 1 || blockInput.channels != channels {
                        shape = blockInput
                        downsample = convNorm(
                            channels, kernel: 1, stride: blockStride, padding: 0, bias: false,
                            conv: "\(name).downsample.0", norm: "\(name).downsample.1")
                    }
                    shape = units[second].output
                    blocks.append(BasicBlock(first: first, second: second, downsample: downsample))
                }
            }
        }
        self.units = units
        self.blocks = blocks
        pool = SpatialSoftmax(
            shape.channels, keypoints: configuration.keypoints, height: shape.height, width: shape.width,
            name: "\(prefix).pool", layout: &layout)
        projection = Linear(2 * configuration.keypoints, configuration.features, name: "\(prefix).projection",
                            layout: &layout)
    }

    /// The backbone's output size per image (C', H', W').
    var trunkOutput: MapShape {
        MapShape(channels: pool.keypoints.inputChannels, height: pool.height, width: pool.width)
    }

    /// Multiply-adds for one image's forward pass (convolutions, keypoint expectations and the projection).
    public var multiplyAddsPerImage: Int {
        units.reduce(0) { $0 + $1.conv.multiplyAdds(height: $1.input.height, width: $1.input.width) }
            + pool.multiplyAdds + projection.multiplyAdds
    }

    /// features [B, F] from images [B, C, H, W]; keeps what the backward pass needs in `cache`.
    public func forward(
        images: UnsafePointer<Float>, batch B: Int, parameters p: UnsafePointer<Float>, cache: ImageEncoderCache,
        output: UnsafeMutablePointer<Float>
    ) {
        precondition(B <= cache.capacity, "batch \(B) exceeds the cache capacity \(cache.capacity)")
        func run(_ index: Int, _ x: UnsafePointer<Float>) {
            let (unit, a) = (units[index], cache.units[index])
            unit.conv(
                x, batch: B, height: unit.input.height, width: unit.input.width, parameters: p,
                columns: cache.columns, output: a.convolved)
            unit.norm(
                a.convolved, batch: B, spatial: unit.output.height * unit.output.width, parameters: p,
                output: a.normalized, mean: a.mean, rstd: a.rstd)
        }
        let (C, H, W) = (configuration.channels, configuration.height, configuration.width)
        cache.images.update(from: images, count: B * C * H * W)
        var x = images
        switch configuration.backbone {
        case .smallCNN:
            for (index, unit) in units.enumerated() {
                run(index, x)
                let normalized = cache.units[index].normalized
                ReLU.forward(normalized, count: B * unit.output.count, output: normalized)
                x = UnsafePointer(normalized)
            }
        case .resnet18:
            let stem = cache.units[0]
            run(0, x)
            ReLU.forward(stem.normalized, count: B * units[0].output.count, output: stem.normalized)
            stemPool(
                stem.normalized, batch: B, channels: pooled.channels, height: units[0].output.height,
                width: units[0].output.width, output: cache.pooled, argmax: cache.argmax)
            x = UnsafePointer(cache.pooled)
            for block in blocks {
                let (first, second) = (cache.units[block.first], cache.units[block.second])
                run(block.first, x)
                ReLU.forward(first.normalized, count: B * units[block.first].output.count, output: first.normalized)
                run(block.second, first.normalized)
                var identity = x
                if let downsample = block.downsample {
                    run(downsample, x)
                    identity = UnsafePointer(cache.units[downsample].normalized)
                }
                let n = B * units[block.second].output.count
                for i in 0..<n { second.normalized[i] += identity[i] }
                ReLU.forward(second.normalized, count: n, output: second.normalized)
                x = UnsafePointer(second.normalized)
            }
        }
        pool(x, batch: B, parameters: p, columns: cache.columns, attention: cache.attention, output: cache.keypoints)
        projection(cache.keypoints, batch: B, parameters: p, output: output)
    }

    /// Backward pass of the last `forward` that used `cache`: accumulates `gradients += ∂L/∂θ` (same offsets as
    /// `parameters`) from `dOutput = ∂L/∂features` [B, F]. Nil `gradients` is a frozen encoder: nothing to do (the
    /// images need no gradient).
    public func backward(
        dOutput: UnsafePointer<Float>, batch B: Int, parameters p: UnsafePointer<Float>,
        gradients: UnsafeMutablePointer<Float>?, cache: ImageEncoderCache
    ) {
        guard let g = gradients else { return }
        let K2 = 2 * configuration.keypoints
        cache.dKeypoints.update(repeating: 0, count: B * K2)
        projection.backward(cache.keypoints, dOutput: dOutput, batch: B, parameters: p, gradients: g,
                            dInput: cache.dKeypoints)
        let trunk = trunkOutput
        var dx = cache.gradient[0]  // ∂L/∂(the current stage's output)
        var dNext = cache.gradient[1]  // ∂L/∂(the current stage's input)
        let dScratch = cache.gradient[2]  // ∂L/∂(a convolution's output)
        dx.update(repeating: 0, count: B * trunk.count)
        let trunkFeatures = cache.units[blocks.last?.second ?? units.count - 1].normalized
        pool.backward(
            trunkFeatures, attention: cache.attention, output: cache.keypoints, dOutput: cache.dKeypoints, batch: B,
            parameters: p, gradients: g, dLogits: cache.dLogits, dInput: dx)

        /// From `dy = ∂L/∂(normalized)` of unit `index`: accumulates its parameters' gradients and, when `dInput` is
        /// given, `dInput += ∂L/∂(its input x)`. Uses `dScratch`.
        func back(
            _ index: Int, _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dInput: UnsafeMutablePointer<Float>?
        ) {
            let (unit, a) = (units[index], cache.units[index])
            dScratch.update(repeating: 0, count: B * unit.output.count)
            unit.norm.backward(
                a.convolved, mean: a.mean, rstd: a.rstd, dOutput: dy, batch: B,
                spatial: unit.output.height * unit.output.width, parameters: p, gradients: g, dInput: dScratch)
            unit.conv.backward(
                x, dOutput: dScratch, batch: B, height: unit.input.height, width: unit.input.width, parameters: p,
                gradients: g, columns: cache.columns, dInput: dInput)
        }

        switch configuration.backbone {
        case .smallCNN:
            for index in stride(from: units.count - 1, through: 0, by: -1) {
                let a = cache.units[index]
                ReLU.backwardInPlace(output: a.normalized, gradient: dx, count: B * units[index].output.count)
                if index == 0 {
                    back(index, cache.images, dx, nil)
                } else {
                    dNext.update(repeating: 0, count: B * units[index].input.count)
                    back(index, cache.units[index - 1].normalized, dx, dNext)
                    swap(&dx, &dNext)
                }
            }
        case .resnet18:
            for (b, block) in blocks.enumerated().reversed() {
                let input = UnsafePointer(b == 0 ? cache.pooled : cache.units[blocks[b - 1].second].normalized)
                let (first, second) = (cache.units[block.first], cache.units[block.second])
                let inputCount = B * units[block.first].input.count
                let firstCount = B * units[block.first].output.count
                // out = relu(bn2(conv2(h)) + identity(x)), h = relu(bn1(conv1(x))): dx becomes ∂L/∂(the sum),
                // then ∂L/∂h goes to `hidden` and, masked, through bn1 and conv1 to dNext = ∂L/∂x, as does the
                // identity's (or the downsample's) share.
                let secondCount = B * units[block.second].output.count
                ReLU.backwardInPlace(output: second.normalized, gradient: dx, count: secondCount)
                let hidden = cache.dHidden
                hidden.update(repeating: 0, count: firstCount)
                back(block.second, first.normalized, dx, hidden)
                ReLU.backwardInPlace(output: first.normalized, gradient: hidden, count: firstCount)
                dNext.update(repeating: 0, count: inputCount)
                back(block.first, input, hidden, dNext)
                if let downsample = block.downsample {
                    back(downsample, input, dx, dNext)
                } else {
                    for i in 0..<inputCount { dNext[i] += dx[i] }
                }
                swap(&dx, &dNext)
            }
            // dx is ∂L/∂(pooled): through the max pool, the stem's ReLU, bn1 and conv1.
            let stem = cache.units[0]
            let stemCount = B * units[0].output.count
            dNext.update(repeating: 0, count: stemCount)
            stemPool.backward(
                argmax: cache.argmax, dOutput: dx, batch: B, channels: pooled.channels, height: units[0].output.height,
                width: units[0].output.width, dInput: dNext)
            ReLU.backwardInPlace(output: stem.normalized, gradient: dNext, count: stemCount)
            back(0, cache.images, dNext, nil)
        }
    }
}

/// Activations of one forward pass of an `ImageEncoder` for up to `capacity` images, kept for the backward pass,
/// plus the backward pass's scratch. Allocated once; forward and backward allocate nothing. One cache per thread.
public final class ImageEncoderCache {
    struct ConvNormActivations {
        let convolved: UnsafeMutablePointer<Float>  // [B, O, Ho, Wo] the convolution's output
        let normalized: UnsafeMutablePointer<Float>  // [B, O, Ho, Wo] the GroupNorm's output (then ReLU, in place)
        let mean: UnsafeMutablePointer<Float>  // [B, G]
        let rstd: UnsafeMutablePointer<Float>  // [B, G]
    }

    public let capacity: Int
    let storage: FloatBuffer
    let images: UnsafeMutablePointer<Float>  // [B, C, H, W] the input (the first convolution's weight gradient)
    let units: [ConvNormActivations]
    let pooled: UnsafeMutablePointer<Float>  // [B, 64, H/4, W/4] ResNet's stem max pool (empty for the small CNN)
    let argmax: UnsafeMutablePointer<Int32>  // [B, 64, H/4, W/4]
    let attention: UnsafeMutablePointer<Float>  // [B, K, H' W']
    let keypoints: UnsafeMutablePointer<Float>  // [B, 2K]
    let columns: UnsafeMutablePointer<Float>  // one image's im2col matrix, the largest of any convolution
    let gradient: [UnsafeMutablePointer<Float>]  // 3 of [B, the largest feature map]
    let dHidden: UnsafeMutablePointer<Float>  // [B, the largest feature map] inside a BasicBlock
    let dLogits: UnsafeMutablePointer<Float>  // [B, K, H' W']
    let dKeypoints: UnsafeMutablePointer<Float>  // [B, 2K]

    public init(encoder: ImageEncoder, capacity: Int) {
        let configuration = encoder.configuration
        let B = capacity
        self.capacity = capacity
        let imageCount = configuration.channels * configuration.height * configuration.width
        let largestMap = encoder.units.reduce(0) { max($0, $1.input.count, $1.output.count) }
        let largestColumns = encoder.units.reduce(
            encoder.pool.keypoints.columnsCount(height: encoder.pool.height, width: encoder.pool.width)
        ) { max($0, $1.conv.columnsCount(height: $1.input.height, width: $1.input.width)) }
        let pooledCount = configuration.backbone == .resnet18 ? encoder.pooled.count : 0
        let trunk = encoder.trunkOutput
        let (K, S) = (configuration.keypoints, trunk.height * trunk.width)
        let perUnit = encoder.units.map { 2 * B * $0.output.count + 2 * B * $0.norm.groups }
        let total = B * imageCount + perUnit.reduce(0, +) + B * pooledCount + B * K * S + 2 * B * K
            + largestColumns + 4 * B * largestMap + B * K * S + 2 * B * K
        storage = FloatBuffer(count: total)
        var cursor = storage.pointer
        func take(_ count: Int) -> UnsafeMutablePointer<Float> {
            defer { cursor += count }
            return cursor
        }
        images = take(B * imageCount)
        units = encoder.units.map { unit in
            ConvNormActivations(
                convolved: take(B * unit.output.count), normalized: take(B * unit.output.count),
                mean: take(B * unit.norm.groups), rstd: take(B * unit.norm.groups))
        }
        pooled = take(B * pooledCount)
        argmax = .allocate(capacity: max(1, B * pooledCount))
        argmax.initialize(repeating: 0, count: max(1, B * pooledCount))
        attention = take(B * K * S)
        keypoints = take(2 * B * K)
        columns = take(largestColumns)
        gradient = (0..<3).map { _ in take(B * largestMap) }
        dHidden = take(B * largestMap)
        dLogits = take(B * K * S)
        dKeypoints = take(2 * B * K)
        precondition(cursor - storage.pointer == total)
    }

    deinit { argmax.deallocate() }
}
