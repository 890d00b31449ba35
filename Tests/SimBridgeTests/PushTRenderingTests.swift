import CAllocationCounter
import SimBridge
import Testing

@Suite struct PushTRenderingTests {
    /// The pixel at canvas point (x, y) of a `size` × `size` frame.
    private func pixel(_ frame: [UInt8], size: Int, x: Double, y: Double) -> [UInt8] {
        let (column, row) = (Int(x / 512 * Double(size)), Int(y / 512 * Double(size)))
        let offset = 3 * (row * size + column)
        return Array(frame[offset..<(offset + 3)])
    }

    private func render(_ renderer: any FrameRenderer) throws -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: renderer.width * renderer.height * 3)
        try frame.withUnsafeMutableBufferPointer { try renderer.render(into: $0.baseAddress!) }
        return frame
    }

    /// Diffusion Policy's colours where its shapes are: the agent royal blue, the block light slate grey, the goal
    /// light green, the walls light grey, white elsewhere; the same state gives the same bytes; nothing allocated.
    @Test(arguments: [96, 512])
    func framesShowTheShapesInTheReferenceColours(size: Int) throws {
        let env = try PushT(task: .named("pusht"))
        _ = try env.reset(seed: 0)
        try env.place(agent: SIMD2(100, 400), block: Pose2D(x: 380, y: 120, angle: 0), settle: false)
        let renderer = try env.makeRenderer(width: size, height: size)
        let frame = try render(renderer)
        #expect(pixel(frame, size: size, x: 100, y: 400) == [65, 105, 225])  // agent
        #expect(pixel(frame, size: size, x: 380, y: 135) == [119, 136, 153])  // the block's bar
        #expect(pixel(frame, size: size, x: 213.6, y: 298.4) == [144, 238, 144])  // the middle of the goal's stem
        #expect(pixel(frame, size: size, x: 60, y: 60) == [255, 255, 255])
        #expect(pixel(frame, size: size, x: 5, y: 256) == [211, 211, 211] || size < 128)  // the wall, where resolved
        #expect(try render(renderer) == frame)
        var pixels = frame
        let before = fp_thread_allocation_count()
        try pixels.withUnsafeMutableBufferPointer { try renderer.render(into: $0.baseAddress!) }
        #expect(fp_thread_allocation_count() - before == 0)
        // Moving the agent moves its disc.
        try env.place(agent: SIMD2(300, 420), block: Pose2D(x: 380, y: 120, angle: 0), settle: false)
        let moved = try render(renderer)
        #expect(pixel(moved, size: size, x: 100, y: 400) == [255, 255, 255])
        #expect(pixel(moved, size: size, x: 300, y: 420) == [65, 105, 225])
        #expect(throws: EnvironmentError.self) { try env.makeRenderer(width: 4, height: 4) }
    }
}
