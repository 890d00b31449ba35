import CAllocationCounter
import Foundation
import SimBridge
import Testing

/// Offscreen rendering of the MuJoCo tasks through MuJoCo's renderer in a headless EGL context (llvmpipe here). Needs
/// the kitchen's assets and robosuite's rendering assets in the cache (`scripts/fetch_assets.py robomimic --render`).
@Suite struct RenderingTests {
    static let size = 96

    static func environment(_ task: String) throws -> any RenderableEnvironment {
        switch task {
        case "franka_kitchen": return try FrankaKitchen(task: .named(task))
        default: return try Robomimic(task: .named(task))
        }
    }

    static func step(
        _ env: any RenderableEnvironment, _ action: [Float], _ observation: inout [Float]
    ) throws -> StepResult {
        try action.withUnsafeBufferPointer { action in
            try observation.withUnsafeMutableBufferPointer {
                try env.step(action: action.baseAddress!, observation: $0.baseAddress!)
            }
        }
    }

    static func frame(_ renderer: any FrameRenderer) throws -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: renderer.width * renderer.height * 3)
        try pixels.withUnsafeMutableBufferPointer { try renderer.render(into: $0.baseAddress!) }
        return pixels
    }

    /// The variance of all channel values: a blank or single-colour frame has (almost) none.
    static func variance(_ pixels: [UInt8]) -> Double {
        let mean = pixels.reduce(0.0) { $0 + Double($1) } / Double(pixels.count)
        return pixels.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(pixels.count)
    }

    /// Writes a frame as a binary PPM (for looking at it; `RENDERING_FRAMES=folder` keeps one per task).
    static func keep(_ pixels: [UInt8], width: Int, height: Int, name: String) {
        guard let folder = ProcessInfo.processInfo.environment["RENDERING_FRAMES"] else { return }
        var file = Foundation.Data("P6 \(width) \(height) 255\n".utf8)
        file.append(contentsOf: pixels)
        try? file.write(to: URL(fileURLWithPath: folder).appendingPathComponent("\(name).ppm"))
    }

    static let tasks = ["robomimic_lift", "robomimic_can", "robomimic_square", "franka_kitchen"]

    /// A frame shows the scene (not blank), the same state gives the same bytes, and moving the robot changes pixels.
    @Test(arguments: tasks) func framesShowTheSceneAndAreDeterministic(task: String) throws {
        let env = try Self.environment(task)
        let observation = [Float](repeating: 0, count: env.specification.observationDimensions)
        var o = observation
        try o.withUnsafeMutableBufferPointer { try env.reset(seed: 3, observation: $0.baseAddress!) }
        let renderer = try env.makeRenderer(width: Self.size, height: Self.size)
        #expect(renderer.width == Self.size && renderer.height == Self.size)
        let first = try Self.frame(renderer)
        Self.keep(first, width: Self.size, height: Self.size, name: task)
        #expect(Self.variance(first) > 200, "\(task): variance \(Self.variance(first))")
        #expect(try Self.frame(renderer) == first, "\(task): the same state rendered differently")

        // Move the arm: full speed on every joint for a few steps.
        let action = [Float](repeating: 0.8, count: env.specification.actionDimensions)
        for _ in 0..<5 {
            _ = try Self.step(env, action, &o)
        }
        let moved = try Self.frame(renderer)
        let changed = zip(first, moved).filter { $0 != $1 }.count
        #expect(changed > first.count / 100, "\(task): only \(changed) of \(first.count) values changed")

        // A second renderer of the same state draws the same bytes.
        let other = try env.makeRenderer(width: Self.size, height: Self.size)
        #expect(try Self.frame(other) == moved, "\(task): two renderers of one state differ")
    }

    /// Bringing the visual data to the simulation's state (the copy and the kinematics, the part of a frame that is
    /// flowpolicy's and MuJoCo's) allocates nothing. Drawing does allocate inside the GL driver: Mesa's llvmpipe makes
    /// about 1,300 (robosuite scenes) to 11,500 (kitchen) small allocations per frame in its draw calls; the count is
    /// the same every frame (nothing accumulates), which is what is checked for that part.
    @Test(arguments: tasks) func updatingTheStateAllocatesNothingAndDrawingDoesNotAccumulate(task: String) throws {
        let env = try Self.environment(task)
        var o = [Float](repeating: 0, count: env.specification.observationDimensions)
        try o.withUnsafeMutableBufferPointer { try env.reset(seed: 1, observation: $0.baseAddress!) }
        let renderer = try #require(try env.makeRenderer(width: Self.size, height: Self.size) as? OffscreenRenderer)
        let pixels = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.size * Self.size * 3)
        defer { pixels.deallocate() }
        try renderer.render(into: pixels)
        try renderer.render(into: pixels)
        var before = fp_thread_allocation_count()
        for _ in 0..<5 { try renderer.updateState() }
        let stateAllocations = fp_thread_allocation_count() - before
        #expect(stateAllocations == 0, "\(task): \(stateAllocations) allocations in 5 state updates")
        var counts = [UInt64](repeating: 0, count: 5)
        for index in counts.indices {
            before = fp_thread_allocation_count()
            try renderer.render(into: pixels)
            counts[index] = fp_thread_allocation_count() - before
        }
        let spread = counts.max()! - counts.min()!
        #expect(spread * 100 <= counts.max()!, "\(task): allocations per frame vary: \(counts)")
    }

    /// Rendering does not touch the simulation: an episode stepped with a frame drawn after every step gives the same
    /// observations, bit for bit, as the same episode without a renderer.
    @Test(arguments: tasks) func steppingIsUnchangedByRendering(task: String) throws {
        func run(render: Bool) throws -> [[Float]] {
            let env = try Self.environment(task)
            let renderer = render ? try env.makeRenderer(width: 32, height: 32) : nil
            var o = [Float](repeating: 0, count: env.specification.observationDimensions)
            try o.withUnsafeMutableBufferPointer { try env.reset(seed: 7, observation: $0.baseAddress!) }
            var observations = [o]
            var generator = SplitMix(seed: 11)
            for _ in 0..<8 {
                let action = (0..<env.specification.actionDimensions).map { _ in
                    Float(Double(generator.next() >> 11) * 0x1p-53 * 2 - 1)
                }
                _ = try Self.step(env, action, &o)
                if let renderer { _ = try Self.frame(renderer) }
                observations.append(o)
            }
            return observations
        }
        let plain = try run(render: false)
        let rendered = try run(render: true)
        #expect(plain.map { $0.map(\.bitPattern) } == rendered.map { $0.map(\.bitPattern) })
    }

    @Test func invalidSizesAreRefused() throws {
        let env = try Self.environment("robomimic_lift")
        #expect(throws: RenderingError.self) { _ = try env.makeRenderer(width: 0, height: 96) }
    }

    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
