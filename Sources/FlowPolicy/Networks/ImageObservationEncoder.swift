// Dimensions: N observation steps (windows x To), per camera H x W x C frames (uint8, channels last) cropped to
// h x w (the encoder's input), F features per camera, Fs = cameras x F features per step.

/// The image side of a policy with cameras: one `ImageEncoder` per camera (Diffusion Policy's
/// `MultiImageObsEncoder`), and the way frames become its input.
///
/// A frame `uint8 [H, W, C]` is cropped to the encoder's `h x w` (at random in training, as Diffusion Policy's
/// `CropRandomizer`; at the centre when acting), moved to channels first and scaled from [0, 255] to [-1, 1]
/// (Diffusion Policy's image range normalizer). Each step's features, cameras in order, join that step's normalized
/// low-dimensional observation in the condition of the velocity network:
/// ```
/// condition row = [o_1 (Do), f_1 (Fs), o_2 (Do), f_2 (Fs), ...]      To x (Do + Fs)
/// ```
/// Parameter names are `encoders.<camera>.` followed by the encoder's (`backbone.conv1.weight`, ...), in a layout
/// of their own starting at 0.
public final class ImageObservationEncoder: Sendable {
    public let cameras: [CameraSpec]
    public let configuration: ImageEncoderConfiguration
    public let encoders: [ImageEncoder]
    public let layout: ParameterLayout

    public init(cameras: [CameraSpec], configuration: ImageEncoderConfiguration) throws(FlowPolicyError) {
        guard !cameras.isEmpty else { throw .invalidConfiguration("an image encoder needs at least one camera") }
        for camera in cameras
        where camera.channels != configuration.channels || camera.height < configuration.height
            || camera.width < configuration.width {
            throw .invalidConfiguration(
                "camera \(camera.shapeDescription) cannot be cropped to the encoder's \(configuration.height) x "
                    + "\(configuration.width) x \(configuration.channels)")
        }
        self.cameras = cameras
        self.configuration = configuration
        var layout = ParameterLayout()
        var encoders: [ImageEncoder] = []
        for camera in cameras {
            encoders.append(try ImageEncoder(configuration, name: "encoders.\(camera.name)", layout: &layout))
        }
        self.encoders = encoders
        self.layout = layout
    }

    /// Fs: features per observation step over every camera.
    public var featuresPerStep: Int { cameras.count * configuration.features }
    /// Bytes of one step's frames over every camera.
    public var frameBytesPerStep: Int { cameras.frameBytes }
    /// Floats of one cropped image, C x h x w.
    var imageCount: Int { configuration.channels * configuration.height * configuration.width }

    /// The largest crop offsets (top, left) of camera `index`'s frames.
    public func cropRange(camera index: Int) -> (top: Int, left: Int) {
        (cameras[index].height - configuration.height, cameras[index].width - configuration.width)
    }

    /// `features [N, Fs]` of `frames [N, frameBytesPerStep]`, cropped at the centre, or at `crops [N, cameras, 2]`
    /// (top, left) when given. Runs the encoders `cache.capacity` images at a time.
    public func encode(
        frames: UnsafePointer<UInt8>, steps N: Int, crops: UnsafePointer<Int32>? = nil,
        parameters: UnsafePointer<Float>, cache: ImageObservationEncoderCache, features: UnsafeMutablePointer<Float>
    ) {
        let (F, Fs) = (configuration.features, featuresPerStep)
        var first = 0
        while first < N {
            let count = min(cache.capacity, N - first)
            for (index, encoder) in encoders.enumerated() {
                prepare(frames: frames + first * frameBytesPerStep, steps: count,
                        crops: crops.map { $0 + first * 2 * cameras.count }, camera: index,
                        into: cache.images[index])
                encoder.forward(images: cache.images[index], batch: count, parameters: parameters,
                                cache: cache.encoders[index], output: cache.features[index])
                for step in 0..<count {
                    (features + (first + step) * Fs + index * F).update(
                        from: cache.features[index] + step * F, count: F)
                }
            }
            first += count
        }
    }

    /// Backward pass of the last `encode` (which must have fitted in one pass of the cache): accumulates
    /// `gradients += ∂L/∂θ` from `dFeatures [N, Fs]`.
    public func backward(
        dFeatures: UnsafePointer<Float>, steps N: Int, parameters: UnsafePointer<Float>,
        gradients: UnsafeMutablePointer<Float>, cache: ImageObservationEncoderCache
    ) {
        precondition(N <= cache.capacity, "the backward pass needs all \(N) steps in one pass of the cache")
        let (F, Fs) = (configuration.features, featuresPerStep)
        for (index, encoder) in encoders.enumerated() {
            let dOutput = cache.dFeatures
            for step in 0..<N { (dOutput + step * F).update(from: dFeatures + step * Fs + index * F, count: F) }
            encoder.backward(dOutput: dOutput, batch: N, parameters: parameters, gradients: gradients,
                             cache: cache.encoders[index])
        }
    }

    /// Crops camera `index`'s frames of `steps` steps to `images [steps, C, h, w]` in [-1, 1].
    private func prepare(
        frames: UnsafePointer<UInt8>, steps: Int, crops: UnsafePointer<Int32>?, camera index: Int,
        into images: UnsafeMutablePointer<Float>
    ) {
        let camera = cameras[index]
        let (C, h, w) = (configuration.channels, configuration.height, configuration.width)
        let offset = cameras[..<index].frameBytes  // the cameras before this one
        let range = cropRange(camera: index)
        for step in 0..<steps {
            let frame = frames + step * frameBytesPerStep + offset
            let top = crops.map { Int($0[(step * cameras.count + index) * 2]) } ?? range.top / 2
            let left = crops.map { Int($0[(step * cameras.count + index) * 2 + 1]) } ?? range.left / 2
            let image = images + step * imageCount
            for y in 0..<h {
                let row = frame + ((top + y) * camera.width + left) * C
                for x in 0..<w {
                    for c in 0..<C { image[(c * h + y) * w + x] = Float(row[x * C + c]) * (2 / 255) - 1 }
                }
            }
        }
    }
}

/// What `ImageObservationEncoder` needs for up to `capacity` observation steps: each camera's cropped images,
/// encoder activations and features. Allocated once; encoding and its backward pass allocate nothing.
public final class ImageObservationEncoderCache {
    public let capacity: Int
    let images: [UnsafeMutablePointer<Float>]  // per camera [capacity, C, h, w]
    let features: [UnsafeMutablePointer<Float>]  // per camera [capacity, F]
    let dFeatures: UnsafeMutablePointer<Float>  // [capacity, F]
    let encoders: [ImageEncoderCache]
    private let storage: FloatBuffer

    public init(encoder: ImageObservationEncoder, capacity: Int) {
        self.capacity = capacity
        let (cameras, F) = (encoder.cameras.count, encoder.configuration.features)
        storage = FloatBuffer(count: cameras * capacity * (encoder.imageCount + F) + capacity * F)
        let base = storage.pointer
        images = (0..<cameras).map { base + $0 * capacity * encoder.imageCount }
        let featureBase = base + cameras * capacity * encoder.imageCount
        features = (0..<cameras).map { featureBase + $0 * capacity * F }
        dFeatures = featureBase + cameras * capacity * F
        encoders = encoder.encoders.map { ImageEncoderCache(encoder: $0, capacity: capacity) }
    }
}
