/// Cuts episodes into training pairs (observation window of `To` steps, action chunk of `Tp` steps) the way
/// Diffusion Policy's `SequenceSampler` does.
///
/// A pair is a sequence of `Tp` consecutive steps starting at `start` (relative to the episode); the observation
/// window is its first `To` steps and the chunk is all `Tp` actions. Starts run from `-(To - 1)` to
/// `L - Tp + (Ta - 1)`, and steps outside the episode repeat its first step (before the start) or its last step
/// (past the end). At run time the policy executes the chunk's steps `To - 1 ..< To - 1 + Ta`:
/// ```
/// time      : t-1   t    t+1  ...  t+Ta-1  ...  t+Tp-2
/// window    : o     o                                     (To = 2)
/// chunk     : a     a    a    ...  a       ...  a         (Tp)
/// executed  :       a    a    ...  a                      (Ta, from index To - 1)
/// ```
public struct SequenceSampler: Sendable {
    public let observationSteps: Int
    public let predictionSteps: Int
    public let actionSteps: Int
    /// Per pair: absolute row of the episode's first step, episode length, start relative to the episode.
    let episodeStarts: [Int32]
    let episodeLengths: [Int32]
    let starts: [Int32]

    public init(dataset: EpisodeDataset, observationSteps To: Int, predictionSteps Tp: Int, actionSteps Ta: Int) {
        precondition(To >= 1 && Tp >= 1 && Ta >= 1 && To - 1 + Ta <= Tp, "need To - 1 + Ta <= Tp")
        observationSteps = To
        predictionSteps = Tp
        actionSteps = Ta
        var episodeStarts: [Int32] = []
        var episodeLengths: [Int32] = []
        var starts: [Int32] = []
        for e in 0..<dataset.episodeCount {
            let range = dataset.episodeRange(e)
            let length = range.count
            let lowest = -(To - 1)
            let highest = length - Tp + (Ta - 1)
            guard highest >= lowest else { continue }
            for start in lowest...highest {
                episodeStarts.append(Int32(range.lowerBound))
                episodeLengths.append(Int32(length))
                starts.append(Int32(start))
            }
        }
        self.episodeStarts = episodeStarts
        self.episodeLengths = episodeLengths
        self.starts = starts
    }

    public var count: Int { starts.count }

    /// The dataset row of step `offset` of pair `index` (clamped to the episode: padding repeats the edge steps).
    @inline(__always)
    public func row(pair index: Int, offset: Int) -> Int {
        let step = min(max(Int(starts[index]) + offset, 0), Int(episodeLengths[index]) - 1)
        return Int(episodeStarts[index]) + step
    }

    /// Copies pair `index` out of row-major `observations [N, Do]` and `actions [N, Da]` into `window [To, Do]` and
    /// `chunk [Tp, Da]`.
    @inline(__always)
    public func fill(
        pair index: Int, observations: UnsafePointer<Float>, observationDimensions Do: Int,
        actions: UnsafePointer<Float>, actionDimensions Da: Int,
        window: UnsafeMutablePointer<Float>, chunk: UnsafeMutablePointer<Float>
    ) {
        for k in 0..<observationSteps {
            (window + k * Do).update(from: observations + row(pair: index, offset: k) * Do, count: Do)
        }
        for k in 0..<predictionSteps {
            (chunk + k * Da).update(from: actions + row(pair: index, offset: k) * Da, count: Da)
        }
    }
}
