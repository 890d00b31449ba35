import FlowPolicy
import PolicyRuntime
import Foundation

/// `flowpolicy sample`: draws action chunks from a checkpoint for one observation window.
public enum SampleSession {
    public enum Solver: Sendable {
        case fixed(SolverMethod, steps: Int)
        case adaptive(tolerance: Float)
    }

    public struct Options: Sendable {
        public var checkpointPath: String
        /// To * Do numbers, or Do numbers (repeated To times).
        public var observation: [Float]
        public var count = 1000
        public var solver = Solver.fixed(.euler, steps: 10)
        public var seed: UInt64 = 0
        /// A policy with cameras: the frames of row `row` of the dataset at `path` (repeated over the window, as a
        /// single observation is).
        public var framesFrom: (path: String, row: Int)?

        public init(checkpointPath: String, observation: [Float]) {
            self.checkpointPath = checkpointPath
            self.observation = observation
        }
    }

    public struct Summary: Codable, Sendable {
        public var checkpoint: String
        public var task: String
        public var observationWindow: [Float]
        /// `DATASET:ROW`: where the frames of a policy with cameras came from.
        public var framesFrom: String?
        public var count: Int
        public var solver: String
        public var evaluationsPerChunk: Int
        public var seed: UInt64
        public var seconds: Double
        /// Per action dimension, over the first executed action of every sample.
        public var actionMean: [Float]
        public var actionStandardDeviation: [Float]
        /// For the toy mixture: how the samples fall on the modes of the observed condition.
        public var modeReport: ConditionalMixture.ModeReport?
        public var trueModeWeights: [Float]?
        /// Every sampled chunk, `[count][Tp * Da]`.
        public var chunks: [[Float]]
    }

    public static func run(_ options: Options) throws -> Summary {
        let checkpoint = try Checkpoint(contentsOf: options.checkpointPath)
        let spec = checkpoint.spec
        let window = try observationWindow(options.observation, spec: spec)
        let frameWindow = try frames(options.framesFrom, spec: spec)
        guard options.count >= 1 else {
            throw FlowPolicyError.invalidConfiguration("the number of chunks must be at least 1")
        }
        let batch = min(options.count, 256)
        let policy = Policy(checkpoint: checkpoint, capacity: batch, seed: options.seed,
                            workers: ProcessInfo.processInfo.activeProcessorCount)
        var chunks: [[Float]] = []
        var evaluations = 0
        var solverName = ""
        let start = monotonicSeconds()
        while chunks.count < options.count {
            let rows = min(batch, options.count - chunks.count)
            let windows = Array((0..<rows).map { _ in window }.joined())
            let frames = Array((0..<rows).map { _ in frameWindow }.joined())
            let prediction: [Float]
            switch options.solver {
            case .fixed(let method, let steps):
                policy.method = method
                policy.steps = steps
                prediction = policy.predictAction(observations: windows, frames: frames, batch: rows).actionPrediction
                evaluations = policy.evaluationsPerChunk
                solverName = "\(method.rawValue) K=\(steps)"
            case .adaptive(let tolerance):
                let result = try policy.predictActionAdaptive(
                    observations: windows, frames: frames, batch: rows, relativeTolerance: tolerance,
                    absoluteTolerance: tolerance)
                prediction = result.actionPrediction
                evaluations = result.evaluations
                solverName = "dopri5 tol=\(tolerance)"
            }
            let size = spec.predictionSteps * spec.actionDimensions
            for row in 0..<rows { chunks.append(Array(prediction[(row * size)..<((row + 1) * size)])) }
        }
        let seconds = monotonicSeconds() - start
        let Da = spec.actionDimensions
        let firstExecuted = chunks.map { Array($0[((spec.observationSteps - 1) * Da)..<(spec.observationSteps * Da)]) }
        var mean = [Float](repeating: 0, count: Da)
        var deviation = [Float](repeating: 0, count: Da)
        for action in firstExecuted { for d in 0..<Da { mean[d] += action[d] / Float(chunks.count) } }
        for action in firstExecuted {
            for d in 0..<Da {
                let difference: Float = action[d] - mean[d]
                deviation[d] += difference * difference / Float(chunks.count)
            }
        }
        deviation = deviation.map { $0.squareRoot() }
        var report: ConditionalMixture.ModeReport?
        var truth: [Float]?
        if spec.task == ConditionalMixture.spec.task, let condition = window.first.map({ Int($0.rounded()) }),
           (0...1).contains(condition) {
            report = ConditionalMixture.modeReport(points: Array(firstExecuted.joined()), condition: condition)
            truth = ConditionalMixture.modes[condition].map(\.weight)
        }
        return Summary(
            checkpoint: options.checkpointPath, task: spec.task, observationWindow: window,
            framesFrom: options.framesFrom.map { "\($0.path):\($0.row)" }, count: chunks.count,
            solver: solverName, evaluationsPerChunk: evaluations, seed: options.seed, seconds: seconds,
            actionMean: mean, actionStandardDeviation: deviation, modeReport: report, trueModeWeights: truth,
            chunks: chunks)
    }

    /// `[To, frameBytesPerStep]`: one dataset row's frames, every camera, repeated over the window.
    static func frames(_ source: (path: String, row: Int)?, spec: PolicySpec) throws -> [UInt8] {
        guard !spec.cameras.isEmpty else {
            guard source == nil else {
                throw FlowPolicyError.invalidConfiguration("this policy has no cameras; drop --frames-from")
            }
            return []
        }
        guard let source else {
            throw FlowPolicyError.invalidConfiguration(
                "this policy sees \(spec.cameras.shapeDescription): give "
                    + "--frames-from DATASET:ROW")
        }
        let dataset = try EpisodeDataset(contentsOf: source.path)
        guard dataset.cameras == spec.cameras else {
            throw FlowPolicyError.incompatible(
                path: source.path, message: "the dataset has \(dataset.cameras.shapeDescription); the policy sees "
                    + "\(spec.cameras.shapeDescription)")
        }
        guard (0..<dataset.stepCount).contains(source.row) else {
            throw FlowPolicyError.invalidConfiguration(
                "row \(source.row) is outside the dataset's \(dataset.stepCount) rows")
        }
        var step: [UInt8] = []
        for (camera, spec) in dataset.cameras.enumerated() {
            step += dataset.frames[camera][(source.row * spec.byteCount)..<((source.row + 1) * spec.byteCount)]
        }
        return Array((0..<spec.observationSteps).map { _ in step }.joined())
    }

    static func observationWindow(_ values: [Float], spec: PolicySpec) throws -> [Float] {
        let (To, Do) = (spec.observationSteps, spec.observationDimensions)
        if values.count == To * Do { return values }
        if values.count == Do { return Array((0..<To).map { _ in values }.joined()) }
        throw FlowPolicyError.invalidConfiguration(
            "the observation needs \(Do) numbers (one observation, repeated over the window) or \(To * Do) (To = \(To) "
                + "observations of \(Do)); got \(values.count)")
    }
}
