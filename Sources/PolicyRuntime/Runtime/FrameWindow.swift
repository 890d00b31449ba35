/// The camera frames of the last `To` observation steps of one episode, oldest first: `[To, bytesPerStep]`, each
/// step's cameras in the policy's order (`uint8 [H, W, C]` each). The bytes counterpart of `ObservationWindow`, with
/// its semantics: at the start of an episode the first frames fill the whole window; `push` drops the oldest step.
/// Allocates only at construction.
public struct FrameWindow {
    public let steps: Int
    public let bytesPerStep: Int
    /// `[To, bytesPerStep]`, oldest first.
    public private(set) var bytes: [UInt8]

    public init(steps: Int, bytesPerStep: Int) {
        self.steps = steps
        self.bytesPerStep = bytesPerStep
        bytes = [UInt8](repeating: 0, count: steps * bytesPerStep)
    }

    /// Fills every step with `frames` (`[bytesPerStep]`).
    public mutating func reset(to frames: UnsafePointer<UInt8>) {
        let count = bytesPerStep
        bytes.withUnsafeMutableBufferPointer { window in
            for k in 0..<steps { (window.baseAddress! + k * count).update(from: frames, count: count) }
        }
    }

    /// Drops the oldest step and appends `frames` (`[bytesPerStep]`).
    public mutating func push(_ frames: UnsafePointer<UInt8>) {
        let count = bytesPerStep
        bytes.withUnsafeMutableBufferPointer { window in
            let base = window.baseAddress!
            base.update(from: base + count, count: (steps - 1) * count)
            (base + (steps - 1) * count).update(from: frames, count: count)
        }
    }
}
