import FlowPolicy
import Foundation
import SimBridge

/// `flowpolicy collect`: demonstrations into a dataset file.
///
/// For a simulated task, the scripted expert runs one episode per seed on every core; successful episodes are kept
/// (in seed order, whatever the thread count), failed ones dropped and counted. Each step stores the observation the
/// expert acted on and the action it took. The file is written atomically; with `append`, the episodes already in
/// the file are kept unchanged and the new ones follow.
public enum CollectSession {
    public struct Options: Sendable {
        public var task: String
        public var episodes: Int
        public var outputPath: String
        /// First seed; nil means the task's collection seeds (or, when appending, the seed after the file's last).
        public var firstSeed: UInt64?
        public var append = false
        public var threads = ProcessInfo.processInfo.activeProcessorCount
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
        public var expertSuccess: ProportionEstimate?
        public var steps: Int
        /// Seeds tried in this run, and all seeds in the file.
        public var seeds: String
        public var datasetSeeds: String
        public var datasetEpisodes: Int
        public var droppedSeeds: [UInt64]
        public var seconds: Double
    }

    public static func run(_ options: Options) throws -> Summary {
        guard options.episodes >= 1 else { throw FlowPolicyError.invalidConfiguration("--episodes must be at least 1") }
        let start = monotonicSeconds()
        if options.task == ConditionalMixture.spec.task {
            var dataset = ConditionalMixture.dataset(count: options.episodes, seed: options.firstSeed ?? 0)
            dataset.metadata["command"] = options.command
            try dataset.write(to: options.outputPath)
            return Summary(
                task: options.task, output: options.outputPath, episodesRequested: options.episodes,
                episodesKept: dataset.episodeCount, episodesDropped: 0, expertSuccess: nil, steps: dataset.stepCount,
                seeds: "\(options.firstSeed ?? 0)", datasetSeeds: "\(options.firstSeed ?? 0)",
                datasetEpisodes: dataset.episodeCount, droppedSeeds: [], seconds: monotonicSeconds() - start)
        }
        guard TaskRegistry.names.contains(options.task) else {
            throw EnvironmentError.unknownTask(options.task, known: TaskRegistry.names + [ConditionalMixture.spec.task])
        }
        let common = try TaskRegistry.commonSettings(options.task)
        var existing: EpisodeDataset?
        if options.append, FileManager.default.fileExists(atPath: options.outputPath) {
            existing = try EpisodeDataset(contentsOf: options.outputPath)
        }
        let existingSeeds = existing?.metadata["seeds"].flatMap(SeedRanges.init)
        let firstSeed = options.firstSeed ?? existingSeeds?.last.map { $0 + 1 } ?? common.seeds.collection
        let seeds = (0..<UInt64(options.episodes)).map { firstSeed + $0 }
        if let existingSeeds, let repeated = seeds.first(where: existingSeeds.contains) {
            throw FlowPolicyError.invalidConfiguration(
                "seed \(repeated) is already in \(options.outputPath) (seeds \(existingSeeds.text)); choose other seeds")
        }
        try TrainingSession.checkWritable(options.outputPath)

        let threads = max(1, min(options.threads, seeds.count))
        let workers = try (0..<threads).map { _ in
            let environment = try TaskRegistry.makeEnvironment(options.task)
            return DemonstrationRecorder(
                environment: environment, expert: try TaskRegistry.makeExpert(options.task, environment: environment))
        }
        let progress = ProgressBar(title: "collect \(options.task)", total: seeds.count, unit: "episode")
        let queue = WorkQueue(count: seeds.count)
        var episodes = [DemonstrationRecorder.Episode?](repeating: nil, count: seeds.count)
        let successCount = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        successCount.initialize(to: 0)
        defer { successCount.deallocate() }
        episodes.withUnsafeMutableBufferPointer { slots in
            parallelFor(threads) { worker in
                while let index = queue.next() {
                    let episode = workers[worker].record(seed: seeds[index])
                    slots[index] = episode
                    queue.finished { completed, _ in
                        if episode.success { successCount.pointee += 1 }
                        progress.update(completed: completed, status: "kept \(successCount.pointee)")
                    }
                }
            }
        }
        let recorded = episodes.compactMap { $0 }
        progress.finish(status: "kept \(recorded.filter(\.success).count)")

        let specification = workers[0].environment.specification
        var dataset = existing ?? EpisodeDataset(
            observationDimensions: specification.observationDimensions,
            actionDimensions: specification.actionDimensions)
        guard dataset.observationDimensions == specification.observationDimensions,
              dataset.actionDimensions == specification.actionDimensions
        else {
            throw FlowPolicyError.incompatible(
                path: options.outputPath,
                message: "the file holds \(dataset.observationDimensions)-D observations and "
                    + "\(dataset.actionDimensions)-D actions; \(options.task) records "
                    + "\(specification.observationDimensions) and \(specification.actionDimensions)")
        }
        for episode in recorded where episode.success {
            try dataset.appendEpisode(observations: episode.observations, actions: episode.actions)
        }
        let runSeeds = SeedRanges([firstSeed...(firstSeed + UInt64(options.episodes) - 1)])
        let allSeeds = existingSeeds?.adding(runSeeds.ranges[0]) ?? runSeeds
        dataset.metadata["task"] = options.task
        dataset.metadata["observation_mode"] = specification.observationMode
        dataset.metadata["control_hz"] = String(specification.controlRate)
        dataset.metadata["seeds"] = allSeeds.text
        dataset.metadata["source"] = "scripted expert"
        dataset.metadata["command"] = options.command
        try dataset.write(to: options.outputPath)
        let kept = recorded.filter(\.success)
        return Summary(
            task: options.task, output: options.outputPath, episodesRequested: options.episodes,
            episodesKept: kept.count, episodesDropped: recorded.count - kept.count,
            expertSuccess: ProportionEstimate(successes: kept.count, trials: recorded.count),
            steps: kept.reduce(0) { $0 + $1.actions.count / specification.actionDimensions },
            seeds: runSeeds.text, datasetSeeds: allSeeds.text, datasetEpisodes: dataset.episodeCount,
            droppedSeeds: recorded.filter { !$0.success }.map(\.seed), seconds: monotonicSeconds() - start)
    }
}

/// Runs the expert for one episode and keeps what it saw and did.
final class DemonstrationRecorder {
    struct Episode {
        var seed: UInt64
        var success: Bool
        /// `[L, Do]` and `[L, Da]`: the observation before each action, and the action.
        var observations: [Float]
        var actions: [Float]
    }

    let environment: any Environment
    let expert: any Expert

    init(environment: any Environment, expert: any Expert) {
        self.environment = environment
        self.expert = expert
    }

    func record(seed: UInt64) -> Episode {
        var episode = Episode(seed: seed, success: false, observations: [], actions: [])
        do {
            var observation = try environment.reset(seed: seed)
            try expert.begin(episodeSeed: seed)
            var action = [Float](repeating: 0, count: environment.specification.actionDimensions)
            while true {
                try action.withUnsafeMutableBufferPointer { try expert.act(action: $0.baseAddress!) }
                episode.observations += observation
                episode.actions += action
                let (next, result) = try environment.step(action)
                observation = next
                if result.success { episode.success = true }
                if result.done { break }
            }
        } catch {
            episode.success = false
        }
        return episode
    }
}
