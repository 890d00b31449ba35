/// Push-T drawn in 2-D as Diffusion Policy's environment draws it (pygame on a 512 × 512 white canvas, resized):
/// the goal T in light green under everything, the walls light grey, the agent a royal-blue disc, the block a
/// light-slate-grey T, with image rows along +y (the reference's screen coordinates are its world coordinates).
/// Each pixel averages `samples × samples` points of the canvas, which stands in for the reference's resize.
public final class PushTRenderer: FrameRenderer {
    public let width: Int
    public let height: Int
    private let environment: PushT
    private let samples: Int
    private let agentRadius: Double
    /// The block's rectangles where it is now (kept, so that rendering allocates nothing).
    private var block: [ConvexPolygon]

    static let white: SIMD3<Double> = [255, 255, 255]
    static let lightGreen: SIMD3<Double> = [144, 238, 144]
    static let lightGray: SIMD3<Double> = [211, 211, 211]
    static let royalBlue: SIMD3<Double> = [65, 105, 225]
    static let lightSlateGray: SIMD3<Double> = [119, 136, 153]
    /// The canvas the reference draws on, and its walls: segments (5, 5)–(506, 506) of radius 2.
    static let canvas = 512.0
    static let walls = (low: 5.0, high: 506.0, radius: 2.0)

    init(environment: PushT, width: Int, height: Int) throws {
        guard (8...4096).contains(width), (8...4096).contains(height) else {
            throw EnvironmentError.invalidTaskFile(
                path: "render size", message: "a frame must be 8 to 4096 pixels a side, got \(width) × \(height)")
        }
        self.environment = environment
        self.width = width
        self.height = height
        // One point per canvas pixel up to 4 × 4 per output pixel, at least 2 × 2.
        samples = min(4, max(2, Int((Self.canvas / Double(min(width, height))).rounded(.up))))
        agentRadius = environment.model.pointer.pointee.geom_size[3 * environment.agentGeom]
        block = environment.localRectangles
    }

    public func render(into pixels: UnsafeMutablePointer<UInt8>) throws {
        let pose = environment.blockPose
        for (index, rectangle) in environment.localRectangles.enumerated() {
            block[index] = PushT.transform(rectangle, by: pose)
        }
        let (block, goal) = (self.block, environment.goalRectangles)
        let agent = environment.agentPosition
        // Points outside every shape's bounding box are background (white or wall): most of the canvas.
        var shapes = Box(agent - agentRadius, agent + agentRadius)
        for rectangle in block { shapes.include(rectangle) }
        for rectangle in goal { shapes.include(rectangle) }
        let (scaleX, scaleY) = (Self.canvas / Double(width), Self.canvas / Double(height))
        let step = 1 / Double(samples)
        for row in 0..<height {
            for column in 0..<width {
                var sum = SIMD3<Double>()
                for i in 0..<samples {
                    for j in 0..<samples {
                        let point = SIMD2((Double(column) + (Double(j) + 0.5) * step) * scaleX,
                                          (Double(row) + (Double(i) + 0.5) * step) * scaleY)
                        sum += shapes.contains(point)
                            ? color(at: point, block: block, goal: goal, agent: agent)
                            : Self.isOnWall(point) ? Self.lightGray : Self.white
                    }
                }
                let pixel = pixels + 3 * (row * width + column)
                let mean = sum / Double(samples * samples)
                pixel[0] = UInt8(mean.x.rounded())
                pixel[1] = UInt8(mean.y.rounded())
                pixel[2] = UInt8(mean.z.rounded())
            }
        }
    }

    /// The colour of the topmost shape at `point`, in the reference's drawing order.
    @inline(__always)
    private func color(at point: SIMD2<Double>, block: [ConvexPolygon], goal: [ConvexPolygon],
                       agent: SIMD2<Double>) -> SIMD3<Double> {
        if block.contains(where: { $0.contains(point) }) { return Self.lightSlateGray }
        let offset = point - agent
        if (offset * offset).sum() <= agentRadius * agentRadius { return Self.royalBlue }
        if Self.isOnWall(point) { return Self.lightGray }
        if goal.contains(where: { $0.contains(point) }) { return Self.lightGreen }
        return Self.white
    }

    private static func isOnWall(_ point: SIMD2<Double>) -> Bool {
        let (low, high, radius) = walls
        let inside = (low - radius)...(high + radius)
        guard inside.contains(point.x), inside.contains(point.y) else { return false }
        return abs(point.x - low) <= radius || abs(point.x - high) <= radius || abs(point.y - low) <= radius
            || abs(point.y - high) <= radius
    }
}

extension PushT: RenderableEnvironment {
    public func makeRenderer(width: Int, height: Int) throws -> any FrameRenderer {
        try PushTRenderer(environment: self, width: width, height: height)
    }
}

/// An axis-aligned box.
private struct Box {
    var low: SIMD2<Double>
    var high: SIMD2<Double>

    init(_ low: SIMD2<Double>, _ high: SIMD2<Double>) {
        self.low = low
        self.high = high
    }

    mutating func include(_ polygon: ConvexPolygon) {
        for i in 0..<polygon.count {
            low = pointwiseMin(low, polygon[i])
            high = pointwiseMax(high, polygon[i])
        }
    }

    func contains(_ point: SIMD2<Double>) -> Bool {
        all(point .>= low) && all(point .<= high)
    }
}

