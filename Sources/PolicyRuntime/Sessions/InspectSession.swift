import FlowPolicy
import Foundation

/// `inspect`: what a checkpoint or dataset file holds, with a checkpoint's deployment contract.
public enum InspectSession {
    public struct TensorEntry: Codable, Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
    }

    public struct Summary: Codable, Sendable {
        public var path: String
        public var kind: String
        public var bytes: Int
        public var metadata: [String: String]
        public var tensors: [TensorEntry]
        public var parameterCount: Int?
        /// A checkpoint's deployment contract (nil: it predates the contract).
        public var contract: DeploymentContract?
        /// Flows sampling runs (1, or a Local Flow Matching chain's blocks).
        public var stages: Int?
        public var episodes: Int?
        public var steps: Int?
        public var episodeLength: [Int]?
        public var observationRange: [[Float]]?
        public var actionRange: [[Float]]?
    }

    public static func run(path: String) throws -> Summary {
        let file = try SafeTensorsFile(contentsOf: path)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        var summary = Summary(
            path: path, kind: "safetensors", bytes: size, metadata: file.metadata,
            tensors: file.tensors.map {
                TensorEntry(name: $0.name, dtype: $0.tensor.dtype.rawValue, shape: $0.tensor.shape)
            })
        switch file.metadata["format"] {
        case Checkpoint.formatName:
            let checkpoint = try Checkpoint(file: file, path: path)
            summary.kind = "checkpoint"
            summary.parameterCount = checkpoint.parameterCount
            summary.stages = checkpoint.stages.count
            summary.contract = checkpoint.contract
        case EpisodeDataset.formatName,
             nil where file["episode_ends"] != nil:
            let dataset = try EpisodeDataset(contentsOf: path)
            summary.kind = "dataset"
            summary.episodes = dataset.episodeCount
            summary.steps = dataset.stepCount
            let lengths = (0..<dataset.episodeCount).map { dataset.episodeRange($0).count }
            summary.episodeLength =
                [lengths.min() ?? 0, lengths.reduce(0, +) / max(lengths.count, 1), lengths.max() ?? 0]
            let observations = MinMaxNormalizer(
                fitting: dataset.observations, dimensions: dataset.observationDimensions)
            let actions = MinMaxNormalizer(fitting: dataset.actions, dimensions: dataset.actionDimensions)
            summary.observationRange = [observations.minimum, observations.maximum]
            summary.actionRange = [actions.minimum, actions.maximum]
        default:
            break
        }
        return summary
    }
}
