import FlowPolicy
import Foundation

/// `flowpolicy train`: fits a flow-matching policy to a dataset and writes its checkpoint.
public enum TrainingSession {
    public struct Options: Sendable {
        public var datasetPath: String
        public var outputPath: String
        /// Horizons; nil means the task's defaults.
        public var observationSteps: Int?
        public var actionSteps: Int?
        public var predictionSteps: Int?
        public var hidden = 256
        public var blocks = 4
        public var timeEmbedding = 64
        public var training = TrainingConfiguration()
        public var command = ""

        public init(datasetPath: String, outputPath: String) {
            self.datasetPath = datasetPath
            self.outputPath = outputPath
        }
    }

    public struct Summary: Codable, Sendable {
        public var dataset: String
        public var datasetHash: String
        public var episodes: Int
        public var trainingPairs: Int
        public var checkpoint: String
        public var task: String
        public var observationSteps: Int
        public var actionSteps: Int
        public var predictionSteps: Int
        public var parameters: Int
        public var steps: Int
        public var batchSize: Int
        public var seed: UInt64
        public var threads: Int
        public var firstLoss: Float
        /// Mean loss over the last 1% of steps (at least one).
        public var finalLoss: Float
        public var seconds: Double
        public var samplesPerSecond: Double
    }

    public static func run(_ options: Options) throws -> Summary {
        let dataset = try EpisodeDataset(contentsOf: options.datasetPath)
        let task = dataset.metadata["task"] ?? "unknown"
        let defaults = try TaskDefaults.horizons(for: task)
        let spec = PolicySpec(
            task: task, observationSteps: options.observationSteps ?? defaults.observationSteps,
            actionSteps: options.actionSteps ?? defaults.actionSteps,
            predictionSteps: options.predictionSteps ?? defaults.predictionSteps,
            observationDimensions: dataset.observationDimensions, actionDimensions: dataset.actionDimensions)
        try spec.validate()
        try checkWritable(options.outputPath)
        let network = spec.networkConfiguration(
            hidden: options.hidden, blocks: options.blocks, timeEmbedding: options.timeEmbedding)
        let trainer = try FlowMatchingTrainer(
            spec: spec, network: network, dataset: dataset, configuration: options.training)
        let steps = options.training.steps
        let progress = ProgressBar(title: "train", total: steps, unit: "step")
        var firstLoss: Float = .nan
        var recent: [Float] = []
        let window = max(1, steps / 100)
        var smoothed: Float = .nan
        let start = monotonicSeconds()
        for step in 0..<steps {
            let loss = try trainer.trainStep()
            if step == 0 { firstLoss = loss }
            smoothed = smoothed.isNaN ? loss : 0.98 * smoothed + 0.02 * loss
            if step >= steps - window { recent.append(loss) }
            progress.update(completed: step + 1, status: String(format: "loss %.4f", smoothed))
        }
        let seconds = monotonicSeconds() - start
        progress.finish(status: String(format: "loss %.4f", smoothed))
        var provenance = [
            "dataset": options.datasetPath, "command": options.command, "train_seconds": String(format: "%.1f", seconds),
            "threads": String(options.training.threads),
        ]
        provenance["dataset_seeds"] = dataset.metadata["seeds"]
        provenance["observation_mode"] = dataset.metadata["observation_mode"]
        let checkpoint = trainer.checkpoint(provenance: provenance)
        try checkpoint.write(to: options.outputPath)
        return Summary(
            dataset: options.datasetPath, datasetHash: dataset.contentHash, episodes: dataset.episodeCount,
            trainingPairs: trainer.sampler.count, checkpoint: options.outputPath, task: task,
            observationSteps: spec.observationSteps, actionSteps: spec.actionSteps,
            predictionSteps: spec.predictionSteps, parameters: checkpoint.network.layout.parameterCount, steps: steps,
            batchSize: options.training.batchSize, seed: options.training.seed, threads: options.training.threads,
            firstLoss: firstLoss, finalLoss: recent.reduce(0, +) / Float(max(recent.count, 1)), seconds: seconds,
            samplesPerSecond: Double(steps * options.training.batchSize) / seconds)
    }

    /// Fails before hours of training if the checkpoint could not be written at the end.
    static func checkWritable(_ path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw FlowPolicyError.io(path: path, message: "the folder \(folder) does not exist; create it first")
        }
        guard FileManager.default.isWritableFile(atPath: folder) else {
            throw FlowPolicyError.io(path: path, message: "the folder \(folder) is not writable")
        }
    }
}
