/// One camera a policy sees: its name and the size of the frames it takes (`uint8`, channels last, RGB), as the
/// dataset stores them (`images.<name>` `[N, H, W, C]`) and the robot sends them.
public struct CameraSpec: Codable, Equatable, Sendable {
    public var name: String
    public var height: Int
    public var width: Int
    public var channels: Int

    public init(name: String, height: Int, width: Int, channels: Int = 3) {
        self.name = name
        self.height = height
        self.width = width
        self.channels = channels
    }

    /// H * W * C.
    public var byteCount: Int { height * width * channels }

    /// `name H x W x C`, as errors name a frame.
    public var shapeDescription: String { "\(name) \(height) x \(width) x \(channels) uint8" }
}

extension Collection<CameraSpec> {
    /// Bytes of one step's frames: every camera's `H * W * C`, in order.
    public var frameBytes: Int { reduce(0) { $0 + $1.byteCount } }

    /// `image 96 x 96 x 3 uint8, wrist 84 x 84 x 3 uint8`, or `no cameras`.
    public var shapeDescription: String {
        isEmpty ? "no cameras" : map(\.shapeDescription).joined(separator: ", ")
    }
}
