import FlowPolicy
import PolicyRuntime
import Foundation

/// `flowpolicy finetune`: seed-000 fine-tuning of a flow-matching checkpoint on a dataset (MLE of the deployed
/// sampler's reconstructions, straightforward or with the contracting residual head).
///
/// Every 20th episode of the dataset is held out; the summary reports the deployed sampler's reconstruction error
/// on the held-out pairs before and after. Reconstruction latents are encoded once (RK4, 16 steps by default,
/// backwards through the frozen pre-trained field) and cached under `$FLOWPOLICY_CACHE/latents/`, keyed by the
/// checkpoint's bytes, the dataset's content and the step count. The summary gives the encoding's round-trip error
/// (held-out latents decoded forward with the same RK4), which shows whether the step count is enough.
public enum FineTuneSession {
    public struct Options: Sendable {
        public var checkpointPath: String
        public var datasetPath: String
        public var outputPath: String
        public var configuration = FineTuningConfiguration()
        public var encodingSteps = 16
        public var heldOutEvery = 20
        public var command = ""

        public init(checkpointPath: String, datasetPath: String, outputPath: String) {
            self.checkpointPath = checkpointPath
            self.datasetPath = datasetPath
            self.outputPath = outputPath
        }
    }

    public struct Summary: Codable, Sendable {
        public var checkpoint: String
        public var dataset: String
        public var output: String
        public var mode: String
        public var coupling: String
        public var solver: String
        public var sigma: Float
        public var lambdaFM: Float
        public var lambdaProx: Float
        public var steps: Int
        public var trainingPairs: Int
        public var heldOutPairs: Int
        public var latentsFromCache: Bool
        /// Mean squared error of held-out latents decoded forward by the encoding's RK4 (normalized units).
        public var encodingRoundTripError: Float
        /// Mean squared reconstruction error of the deployed sampler on held-out pairs (normalized units).
        public var heldOutErrorBefore: Float
        public var heldOutErrorAfter: Float
        public var finalLoss: Float
        public var seconds: Double
    }

    public static func run(_ options: Options) throws -> Summary {
        let start = monotonicSeconds()
        let checkpoint = try CheckpointReader.read(options.checkpointPath)
        guard checkpoint.spec.cameras.isEmpty else {
            throw FlowPolicyError.incompatible(
                path: options.checkpointPath, message: "this policy sees \(checkpoint.spec.cameras.shapeDescription); "
                    + "fine-tuning takes low-dimensional policies only, for now")
        }
        let dataset = try EpisodeDataset(contentsOf: options.datasetPath)
        let spec = checkpoint.spec
        guard dataset.observationDimensions == spec.observationDimensions,
              dataset.actionDimensions == spec.actionDimensions
        else {
            throw FlowPolicyError.incompatible(
                path: options.datasetPath,
                message: "the dataset has \(dataset.observationDimensions)-D observations and "
                    + "\(dataset.actionDimensions)-D actions; the checkpoint expects \(spec.observationDimensions) and "
                    + "\(spec.actionDimensions)")
        }
        guard options.encodingSteps >= 1 else {
            throw FlowPolicyError.invalidConfiguration(
                "the encoding steps (RK4 steps encoding the latents) must be at least 1, got \(options.encodingSteps)")
        }
        guard dataset.episodeCount >= 2 else {
            throw FlowPolicyError.invalidConfiguration("fine-tuning needs at least 2 episodes (one is held out)")
        }
        try TrainingSession.checkWritable(options.outputPath)
        let every = max(2, options.heldOutEvery)
        let heldOutEpisodes = (0..<dataset.episodeCount).filter { $0 % every == every - 1 }
        let trainEpisodes = (0..<dataset.episodeCount).filter { $0 % every != every - 1 }
        func pairs(_ episodes: [Int]) -> PairSet {
            PairSet(dataset: dataset.subset(episodes: episodes), spec: spec,
                    observationNormalizer: checkpoint.observationNormalizer,
                    actionNormalizer: checkpoint.actionNormalizer)
        }
        let (trainPairs, heldOutPairs) = (pairs(trainEpisodes), pairs(heldOutEpisodes))
        let (latents, cached) = try reconstructionLatents(
            checkpoint: checkpoint, checkpointPath: options.checkpointPath, dataset: dataset, train: trainPairs,
            heldOut: heldOutPairs, steps: options.encodingSteps, threads: options.configuration.training.threads)

        let roundTrip = reconstructionError(checkpoint: checkpoint, pairs: heldOutPairs, latents: latents.heldOut,
                                            method: .rk4, steps: options.encodingSteps)
        let configuration = options.configuration
        let before = reconstructionError(checkpoint: checkpoint, pairs: heldOutPairs, latents: latents.heldOut,
                                         method: configuration.method, steps: configuration.steps)
        let tuner = try ReconstructionFineTuner(
            checkpoint: checkpoint, pairs: trainPairs,
            latents: configuration.coupling == .reconstruction ? latents.train : nil, configuration: configuration)
        let total = configuration.training.steps
        let progress = ProgressBar(title: "finetune \(configuration.mode.rawValue)", total: total, unit: "step")
        var smoothed: Float = .nan
        for step in 0..<total {
            let losses = try tuner.trainStep()
            smoothed = smoothed.isNaN ? losses.reconstruction : 0.98 * smoothed + 0.02 * losses.reconstruction
            progress.update(completed: step + 1, status: String(format: "reconstruction %.4f", smoothed))
        }
        progress.finish(status: String(format: "reconstruction %.4f", smoothed))
        let tuned = tuner.checkpoint(provenance: [
            "finetune_command": options.command, "finetune_dataset": options.datasetPath,
            "finetune_base": options.checkpointPath,
        ])
        let after = reconstructionError(checkpoint: tuned, pairs: heldOutPairs, latents: latents.heldOut,
                                        method: configuration.method, steps: configuration.steps)
        try tuned.write(to: options.outputPath)
        return Summary(
            checkpoint: options.checkpointPath, dataset: options.datasetPath, output: options.outputPath,
            mode: configuration.mode.rawValue, coupling: configuration.coupling.rawValue,
            solver: "\(configuration.method.rawValue) K=\(configuration.steps)", sigma: configuration.sigma,
            lambdaFM: configuration.lambdaFM, lambdaProx: configuration.lambdaProx, steps: total,
            trainingPairs: trainPairs.count, heldOutPairs: heldOutPairs.count, latentsFromCache: cached,
            encodingRoundTripError: roundTrip,
            heldOutErrorBefore: before, heldOutErrorAfter: after, finalLoss: smoothed,
            seconds: monotonicSeconds() - start)
    }

    /// The latents of the training and held-out pairs, from the cache or encoded now (and cached).
    static func reconstructionLatents(
        checkpoint: Checkpoint, checkpointPath: String, dataset: EpisodeDataset, train: PairSet, heldOut: PairSet,
        steps: Int, threads: Int
    ) throws -> (latents: (train: [Float], heldOut: [Float]), cached: Bool) {
        let checkpointBytes = FileManager.default.contents(atPath: checkpointPath) ?? Data()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in checkpointBytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let key = String(format: "%016llx", hash) + "-"
            + dataset.contentHash.replacingOccurrences(of: "fnv1a64:", with: "")
            + "-rk4x\(steps)-\(train.count)-\(heldOut.count)"
        let folder = cacheFolder().appendingPathComponent("latents")
        let path = folder.appendingPathComponent("\(key).safetensors").path
        if let file = try? SafeTensorsFile(contentsOf: path), let trainTensor = file["train"],
           let heldOutTensor = file["held_out"], trainTensor.elementCount == train.count * train.chunkSize,
           heldOutTensor.elementCount == heldOut.count * heldOut.chunkSize {
            return ((trainTensor.floats, heldOutTensor.floats), true)
        }
        let progress = ProgressBar(title: "encode latents", total: train.count + heldOut.count, unit: "pair")
        let trainLatents = encodeLatents(pairs: train, field: checkpoint.field, parameters: checkpoint.fieldParameters,
                                         steps: steps, workers: threads) { progress.update(completed: $0) }
        let heldOutLatents = encodeLatents(pairs: heldOut, field: checkpoint.field,
                                           parameters: checkpoint.fieldParameters, steps: steps, workers: threads) {
            progress.update(completed: train.count + $0)
        }
        progress.finish()
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try? SafeTensorsFile(
            metadata: ["checkpoint": checkpointPath, "dataset_hash": dataset.contentHash, "rk4_steps": String(steps)],
            tensors: [
                ("train", StoredTensor(float32: trainLatents, shape: [train.count, train.chunkSize])),
                ("held_out", StoredTensor(float32: heldOutLatents, shape: [heldOut.count, heldOut.chunkSize])),
            ]
        ).write(to: path)
        return ((trainLatents, heldOutLatents), false)
    }
}

/// `$FLOWPOLICY_CACHE`, default `~/.cache/flowpolicy`.
public func cacheFolder() -> URL {
    if let explicit = ProcessInfo.processInfo.environment["FLOWPOLICY_CACHE"] { return URL(fileURLWithPath: explicit) }
    return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/flowpolicy")
}
