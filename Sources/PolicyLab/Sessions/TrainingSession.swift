import FlowPolicy
import PolicyRuntime
import SimBridge
import Foundation

/// `flowpolicy train`: fits a flow-matching policy to a dataset and writes its checkpoint.
public enum TrainingSession {
    public enum Method: String, CaseIterable, Sendable {
        /// One flow-matching network, noise to data.
        case fm
        /// A Local Flow Matching chain (seed 001), sized to match the FM network the options describe.
        case lfm
    }

    public struct Options: Sendable {
        public var datasetPath: String
        public var outputPath: String
        public var method = Method.fm
        /// LFM: blocks N (the last is the free block), OU step sizes γ_n = c ρ^(n-1).
        public var chainBlocks = 4
        public var ouStepScale: Float = 0.1
        public var ouStepGrowth: Float = 1.5
        /// Horizons; nil means the task's defaults.
        public var observationSteps: Int?
        public var actionSteps: Int?
        public var predictionSteps: Int?
        /// Width and depth of the FM network (for LFM: of the FM network whose parameter count the chain matches).
        public var hidden = 256
        public var depth = 4
        public var timeEmbedding = 64
        /// A dataset with cameras: the image encoder per camera, and the size frames are cropped to (nil: 7/8 of
        /// the frame, Diffusion Policy's 84 of 96).
        public var imageBackbone = ImageEncoderConfiguration.Backbone.smallCNN
        public var imageCrop: Int?
        public var training = TrainingConfiguration()
        /// FM: also write the EMA weights every this many steps, to `<out>.step<N>.safetensors` (learning curves).
        public var saveEvery: Int?
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
        public var method: String
        /// LFM: the chain's blocks and each block's width.
        public var chainBlocks: Int?
        public var blockHidden: Int?
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
        /// `[step, mean loss of the steps since the previous point]`, about 200 points over the run.
        public var lossCurve: [[Double]]
    }

    public static func run(_ options: Options) throws -> Summary {
        guard options.saveEvery.map({ $0 >= 1 }) ?? true, options.training.steps >= 1 else {
            throw FlowPolicyError.invalidConfiguration("training steps and the saving interval must be at least 1")
        }
        let dataset = try EpisodeDataset(contentsOf: options.datasetPath)
        let task = dataset.metadata["task"] ?? "unknown"
        let horizons = try defaultHorizons(task: task)
        let spec = PolicySpec(
            task: task, observationSteps: options.observationSteps ?? horizons.observationSteps,
            actionSteps: options.actionSteps ?? horizons.actionSteps,
            predictionSteps: options.predictionSteps ?? horizons.predictionSteps,
            observationDimensions: dataset.observationDimensions, actionDimensions: dataset.actionDimensions,
            cameras: dataset.cameras)
        try spec.validate()
        try checkWritable(options.outputPath)
        let imageEncoder = try imageEncoderConfiguration(cameras: dataset.cameras, options: options)
        if imageEncoder != nil, options.method != .fm {
            throw FlowPolicyError.invalidConfiguration(
                "the dataset has cameras; image policies train with --method fm (LFM takes low-dimensional data)")
        }
        let contract = try DeploymentContract.forTraining(
            spec: spec, observationMode: dataset.metadata["observation_mode"])
        let network = spec.networkConfiguration(
            hidden: options.hidden, blocks: options.depth, timeEmbedding: options.timeEmbedding,
            imageFeatures: dataset.cameras.count * (imageEncoder?.features ?? 0))
        let steps = options.training.steps
        let progress = ProgressBar(title: "train \(options.method.rawValue)", total: steps, unit: "step")
        var firstLoss: Float = .nan
        var recent: [Float] = []
        let window = max(1, steps / 100)
        var smoothed: Float = .nan
        var completed = 0
        var lossCurve: [[Double]] = []
        let curveInterval = max(1, steps / 200)
        var curveSum = 0.0
        func record(_ loss: Float, status: String = "") {
            if completed == 0 { firstLoss = loss }
            smoothed = smoothed.isNaN ? loss : 0.98 * smoothed + 0.02 * loss
            if completed >= steps - window { recent.append(loss) }
            completed += 1
            curveSum += Double(loss)
            if completed % curveInterval == 0 || completed == steps {
                let count = completed % curveInterval == 0 ? curveInterval : completed % curveInterval
                lossCurve.append([Double(completed), curveSum / Double(count)])
                curveSum = 0
            }
            progress.update(completed: completed, status: status + String(format: "loss %.4f", smoothed))
        }
        let start = monotonicSeconds()
        let trained: (checkpoint: Checkpoint, pairs: Int, blockHidden: Int?)
        var provenance = [
            "dataset": options.datasetPath, "command": options.command, "threads": String(options.training.threads),
        ]
        provenance["dataset_seeds"] = dataset.metadata["seeds"]
        provenance["observation_mode"] = dataset.metadata["observation_mode"]
        switch options.method {
        case .fm:
            let trainer = try FlowMatchingTrainer(
                spec: spec, network: network, dataset: dataset, configuration: options.training,
                imageEncoder: imageEncoder)
            for step in 1...steps {
                record(try trainer.trainStep())
                if let every = options.saveEvery, step % every == 0, step < steps {
                    provenance["train_seconds"] = String(format: "%.1f", monotonicSeconds() - start)
                    let intermediate = trainer.checkpoint(provenance: provenance)
                    intermediate.contract = contract
                    try intermediate.write(to: intermediatePath(options.outputPath, step: step))
                }
            }
            provenance["train_seconds"] = String(format: "%.1f", monotonicSeconds() - start)
            trained = (trainer.checkpoint(provenance: provenance), trainer.source.pairCount, nil)
        case .lfm:
            let reference = try ResMLPFiLM(network)
            var configuration = LocalFlowConfiguration()
            configuration.blocks = options.chainBlocks
            configuration.stepScale = options.ouStepScale
            configuration.stepGrowth = options.ouStepGrowth
            configuration.depth = options.depth
            configuration.timeEmbedding = options.timeEmbedding
            configuration.hidden = try LocalFlowConfiguration.hiddenWidth(
                matching: reference.layout.parameterCount, blocks: options.chainBlocks, spec: spec,
                depth: options.depth, timeEmbedding: options.timeEmbedding)
            configuration.training = options.training
            let trainer = try LocalFlowMatchingTrainer(spec: spec, dataset: dataset, configuration: configuration)
            // Read before the push: the push holds the pool's states for writing, and the bar's callback runs
            // inside it.
            let poolCount = trainer.pool.count
            for block in 0..<configuration.blocks {
                var pushBar: ProgressBar?
                try trainer.trainNextBlock(
                    progress: { _, loss in record(loss, status: "block \(block + 1)/\(configuration.blocks) ") },
                    pushProgress: { states in
                        if pushBar == nil {
                            pushBar = ProgressBar(title: "push pool through block \(block + 1)",
                                                  total: poolCount, unit: "chunk")
                        }
                        pushBar?.update(completed: states)
                    })
                pushBar?.finish()
            }
            provenance["train_seconds"] = String(format: "%.1f", monotonicSeconds() - start)
            provenance["lfm_matched_fm"] = "H=\(options.hidden) depth=\(options.depth)"
            trained = (trainer.checkpoint(provenance: provenance), trainer.pool.count, configuration.hidden)
        }
        let seconds = monotonicSeconds() - start
        progress.finish(status: String(format: "loss %.4f", smoothed))
        let checkpoint = trained.checkpoint
        checkpoint.contract = contract
        try checkpoint.write(to: options.outputPath)
        return Summary(
            dataset: options.datasetPath, datasetHash: dataset.contentHash, episodes: dataset.episodeCount,
            trainingPairs: trained.pairs, checkpoint: options.outputPath, task: task, method: options.method.rawValue,
            chainBlocks: options.method == .lfm ? options.chainBlocks : nil, blockHidden: trained.blockHidden,
            observationSteps: spec.observationSteps, actionSteps: spec.actionSteps,
            predictionSteps: spec.predictionSteps, parameters: checkpoint.parameterCount, steps: steps,
            batchSize: options.training.batchSize, seed: options.training.seed, threads: options.training.threads,
            firstLoss: firstLoss, finalLoss: recent.reduce(0, +) / Float(max(recent.count, 1)), seconds: seconds,
            samplesPerSecond: Double(steps * options.training.batchSize) / seconds, lossCurve: lossCurve)
    }

    /// The image encoder's sizes for a dataset's cameras (nil without cameras): square crops of `imageCrop`.
    static func imageEncoderConfiguration(cameras: [CameraSpec], options: Options) throws
        -> ImageEncoderConfiguration?
    {
        guard let first = cameras.first else { return nil }
        let side = min(first.height, first.width)
        let crop = options.imageCrop ?? (side - side / 8)
        guard crop >= 8, crop <= side else {
            throw FlowPolicyError.invalidConfiguration(
                "the crop must be 8 to \(side) pixels (the frames are \(first.height) x \(first.width)), got \(crop)")
        }
        let configuration = ImageEncoderConfiguration(
            backbone: options.imageBackbone, channels: first.channels, height: crop, width: crop)
        try configuration.validate()
        return configuration
    }

    /// To / Ta / Tp of a dataset's task: the task's (task.yaml `policy`), 1/1/1 for the one-step toy, Diffusion
    /// Policy's 2 / 8 / 16 for data of no simulated task.
    static func defaultHorizons(
        task: String
    ) throws -> (observationSteps: Int, actionSteps: Int, predictionSteps: Int) {
        if task == ConditionalMixture.spec.task { return (1, 1, 1) }
        guard TaskDescription.knownTasks.contains(task) else { return (2, 8, 16) }
        let description = try TaskDescription.named(task)
        return (description.observationSteps, description.actionSteps, description.predictionSteps)
    }

    /// `policy.safetensors` → `policy.step5000.safetensors`.
    public static func intermediatePath(_ path: String, step: Int) -> String {
        let url = URL(fileURLWithPath: path)
        let stem = url.deletingPathExtension().lastPathComponent
        let ext = url.pathExtension.isEmpty ? "safetensors" : url.pathExtension
        return url.deletingLastPathComponent().appendingPathComponent("\(stem).step\(step).\(ext)").path
    }

    /// Fails before hours of training if the checkpoint could not be written at the end.
    static func checkWritable(_ path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw FlowPolicyError.io(path: path, message: "this is a folder; give a file path to write")
        }
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw FlowPolicyError.io(path: path, message: "the folder \(folder) does not exist; create it first")
        }
        guard FileManager.default.isWritableFile(atPath: folder) else {
            throw FlowPolicyError.io(path: path, message: "the folder \(folder) is not writable")
        }
    }
}
