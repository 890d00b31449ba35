/// Where a `FlowMatchingTrainer` gets its pairs: each step, B triples (condition, start, end). The field is trained
/// on the straight path `x_s = (1 - s) start + s end` with target `end - start`, `s ~ U[0, 1)`.
public protocol FlowPairSource {
    /// Training pairs available (for reports).
    var pairCount: Int { get }
    /// Writes `condition [B, To*Do]`, `start [B, Dx]` and `end [B, Dx]` (normalized units), drawing from `generator`.
    func fill(batch B: Int, condition: UnsafeMutablePointer<Float>, start: UnsafeMutablePointer<Float>,
              end: UnsafeMutablePointer<Float>, using generator: inout RandomSource)
    /// A fixed path time instead of `s ~ U[0, 1)` (distillation regresses a block's endpoint map at s = 1).
    var fixedTime: Float? { get }
}

extension FlowPairSource {
    public var fixedTime: Float? { nil }
}

/// Flow matching on demonstrations (METHODS.md section 1): start `x0 ~ N(0, I)`, end the demonstrated chunk, so that
/// `x_t = (1 - (1 - σmin) t) x0 + t a` with target `a - (1 - σmin) x0` (the end is `a + σmin x0`).
public final class DemonstrationPairs: FlowPairSource {
    public let sampler: SequenceSampler
    public let sigmaMin: Float
    let observations: FloatBuffer  // [N, Do] normalized
    let actions: FloatBuffer  // [N, Da] normalized
    let observationDimensions: Int
    let actionDimensions: Int

    public init(dataset: EpisodeDataset, spec: PolicySpec, observationNormalizer: MinMaxNormalizer,
                actionNormalizer: MinMaxNormalizer, sigmaMin: Float = 0) throws(FlowPolicyError) {
        guard dataset.observationDimensions == spec.observationDimensions,
              dataset.actionDimensions == spec.actionDimensions
        else {
            throw .invalidConfiguration(
                "dataset has Do=\(dataset.observationDimensions), Da=\(dataset.actionDimensions); the policy "
                    + "expects Do=\(spec.observationDimensions), Da=\(spec.actionDimensions)")
        }
        sampler = SequenceSampler(
            dataset: dataset, observationSteps: spec.observationSteps, predictionSteps: spec.predictionSteps,
            actionSteps: spec.actionSteps)
        guard sampler.count > 0 else {
            throw .invalidConfiguration(
                "the dataset's \(dataset.episodeCount) episodes are too short to cut any (To=\(spec.observationSteps), "
                    + "Tp=\(spec.predictionSteps), Ta=\(spec.actionSteps)) training pair")
        }
        self.sigmaMin = sigmaMin
        observations = FloatBuffer(observationNormalizer.normalized(dataset.observations))
        actions = FloatBuffer(actionNormalizer.normalized(dataset.actions))
        observationDimensions = spec.observationDimensions
        actionDimensions = spec.actionDimensions
    }

    public var pairCount: Int { sampler.count }

    public func fill(batch B: Int, condition: UnsafeMutablePointer<Float>, start: UnsafeMutablePointer<Float>,
                     end: UnsafeMutablePointer<Float>, using generator: inout RandomSource) {
        fill(batch: B, condition: condition, start: start, end: end, windowRows: nil, using: &generator)
    }

    /// `fill`, and with `windowRows [B, To]` the dataset row of every window step (where its frames are).
    public func fill(batch B: Int, condition: UnsafeMutablePointer<Float>, start: UnsafeMutablePointer<Float>,
                     end: UnsafeMutablePointer<Float>, windowRows: UnsafeMutablePointer<Int32>?,
                     using generator: inout RandomSource) {
        let To = sampler.observationSteps
        let windowSize = To * observationDimensions
        let Dx = sampler.predictionSteps * actionDimensions
        for row in 0..<B {
            let pair = generator.nextIndex(below: sampler.count)
            sampler.fill(
                pair: pair, observations: observations.pointer,
                observationDimensions: observationDimensions, actions: actions.pointer,
                actionDimensions: actionDimensions, window: condition + row * windowSize, chunk: end + row * Dx)
            if let windowRows {
                for k in 0..<To { windowRows[row * To + k] = Int32(sampler.row(pair: pair, offset: k)) }
            }
        }
        generator.fillGaussian(start, count: B * Dx)
        if sigmaMin != 0 { for i in 0..<(B * Dx) { end[i] += sigmaMin * start[i] } }
    }
}
