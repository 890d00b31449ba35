import FlowPolicy
import Foundation

/// `flowpolicy collect`: demonstrations into a dataset file.
public enum CollectSession {
    public struct Options: Sendable {
        public var task: String
        public var episodes: Int
        public var outputPath: String
        public var seed: UInt64 = 0
        public var command = ""

        public init(task: String, episodes: Int, outputPath: String) {
            self.task = task
            self.episodes = episodes
            self.outputPath = outputPath
        }
    }

    public struct Summary: Codable, Sendable {
        public var task: String
        public var output: String
        public var episodesRequested: Int
        public var episodesKept: Int
        public var episodesDropped: Int
        public var steps: Int
        public var seeds: [UInt64]
        public var seconds: Double
    }

    public static func run(_ options: Options) throws -> Summary {
        guard options.episodes >= 1 else { throw FlowPolicyError.invalidConfiguration("--episodes must be at least 1") }
        let start = monotonicSeconds()
        switch options.task {
        case ConditionalMixture.spec.task:
            var dataset = ConditionalMixture.dataset(count: options.episodes, seed: options.seed)
            dataset.metadata["command"] = options.command
            try dataset.write(to: options.outputPath)
            return Summary(
                task: options.task, output: options.outputPath, episodesRequested: options.episodes,
                episodesKept: dataset.episodeCount, episodesDropped: 0, steps: dataset.stepCount,
                seeds: [options.seed], seconds: monotonicSeconds() - start)
        default:
            throw FlowPolicyError.invalidConfiguration(
                "unknown task \"\(options.task)\"; known tasks: \(ConditionalMixture.spec.task)")
        }
    }
}
