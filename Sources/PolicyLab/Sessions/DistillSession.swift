import FlowPolicy
import PolicyRuntime
import Foundation

/// `flowpolicy distill`: a Local Flow Matching chain distilled into one-step students, one per block, so that
/// sampling costs one network evaluation per block.
public enum DistillSession {
    public struct Options: Sendable {
        public var checkpointPath: String
        public var datasetPath: String
        public var outputPath: String
        public var samples = 20_000
        public var teacherTolerance: Float = 1e-6
        public var training = TrainingConfiguration()

        public init(checkpointPath: String, datasetPath: String, outputPath: String) {
            self.checkpointPath = checkpointPath
            self.datasetPath = datasetPath
            self.outputPath = outputPath
            training.steps = 2000
            training.warmupSteps = 100
            training.learningRate = 3e-4
        }
    }

    public struct Summary: Codable, Sendable {
        public var checkpoint: String
        public var output: String
        public var stages: Int
        public var samples: Int
        public var stepsPerStage: Int
        public var evaluationsPerChunk: Int
        public var seconds: Double
    }

    public static func run(_ options: Options) throws -> Summary {
        let start = monotonicSeconds()
        let chain = try CheckpointReader.read(options.checkpointPath)
        guard chain.isChain else {
            throw FlowPolicyError.incompatible(
                path: options.checkpointPath,
                message: "distillation takes a Local Flow Matching chain (trained with the lfm method)")
        }
        let dataset = try EpisodeDataset(contentsOf: options.datasetPath)
        try TrainingSession.checkWritable(options.outputPath)
        let pairs = PairSet(dataset: dataset, spec: chain.spec, observationNormalizer: chain.observationNormalizer,
                            actionNormalizer: chain.actionNormalizer)
        let steps = options.training.steps
        // One bar per phase: each stage's teacher solve, then its student's training.
        var bar: ProgressBar?
        var phase = ""
        func show(_ name: String, total: Int, unit: String) -> ProgressBar {
            if phase != name || bar == nil {
                bar?.finish()
                bar = ProgressBar(title: name, total: total, unit: unit)
                phase = name
            }
            return bar!
        }
        let stages = chain.stages.count
        let distilled = try distillChain(
            chain, pairs: pairs, samples: options.samples, teacherTolerance: options.teacherTolerance,
            training: options.training,
            teacherProgress: { stage, done in
                show("teacher trajectories, stage \(stage + 1)/\(stages)", total: options.samples, unit: "trajectory")
                    .update(completed: done)
            }
        ) { stage, step, loss in
            show("distill stage \(stage + 1)/\(stages)", total: steps, unit: "step")
                .update(completed: step + 1, status: String(format: "loss %.4f", loss))
        }
        bar?.finish()
        try distilled.write(to: options.outputPath)
        return Summary(
            checkpoint: options.checkpointPath, output: options.outputPath, stages: distilled.stages.count,
            samples: options.samples, stepsPerStage: steps,
            evaluationsPerChunk: distilled.evaluations(steps: 1, method: .euler), seconds: monotonicSeconds() - start)
    }
}
