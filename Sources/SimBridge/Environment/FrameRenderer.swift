/// Draws an environment's current state as an RGB image, for videos of rollouts. A renderer is made on request
/// (`RenderableEnvironment.makeRenderer`), so environments that are never rendered pay nothing for it.
public protocol FrameRenderer: AnyObject {
    var width: Int { get }
    var height: Int { get }
    /// Writes the current state as `height` rows of `width` RGB pixels (3 bytes each, top row first) into `pixels`,
    /// which holds `width * height * 3` bytes. Allocates nothing (beyond what a GL driver may).
    func render(into pixels: UnsafeMutablePointer<UInt8>) throws
}

/// An environment that can be drawn: Push-T in 2-D, the MuJoCo scenes from their named cameras.
public protocol RenderableEnvironment: Environment {
    /// A renderer of this environment's state, `width` × `height` pixels.
    func makeRenderer(width: Int, height: Int) throws -> any FrameRenderer
}
