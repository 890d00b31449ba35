/// The last `To` observations of one episode, oldest first, as a policy consumes them. At the start of an episode
/// the first observation fills the whole window (Diffusion Policy's `MultiStepWrapper` does the same), matching the
/// padding the policy saw in training.
public struct ObservationWindow {
    public let steps: Int
    public let dimensions: Int
    /// `[To, Do]`, oldest first.
    public private(set) var values: [Float]

    public init(steps: Int, dimensions: Int) {
        self.steps = steps
        self.dimensions = dimensions
        values = [Float](repeating: 0, count: steps * dimensions)
    }

    public mutating func reset(to observation: UnsafePointer<Float>) {
        for k in 0..<steps {
            for d in 0..<dimensions { values[k * dimensions + d] = observation[d] }
        }
    }

    /// Drops the oldest observation and appends `observation` (no allocation).
    public mutating func push(_ observation: UnsafePointer<Float>) {
        values.withUnsafeMutableBufferPointer { window in
            let base = window.baseAddress!
            base.update(from: base + dimensions, count: (steps - 1) * dimensions)
            (base + (steps - 1) * dimensions).update(from: observation, count: dimensions)
        }
    }
}
