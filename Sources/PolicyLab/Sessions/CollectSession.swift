import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge

/// `flowpolicy collect`: demonstrations into a dataset file.
///
/// For a simulated task, the scripted expert runs one episode per seed on every core; successful episodes are kept
/// (in seed order, whatever the thread count), failed ones dropped and counted. Each step stores the observation the
/// expert acted on and the action it took. The file is written atomically; with `append`, the episodes already in
/// the file are kept unchanged and the new ones follow.
public enum CollectSession {
    /// Where demonstrations come from: a simulated task's scripted expert, or the conditional toy distribution.
    public enum Source: Sendable {
        case expert(TaskDescription)
        case toyMixture

        public var name: String {
            switch self {
            case .expert(let task): return task.name
            case .toyMixture: return ConditionalMixture.spec.task
            }
        }
    }

    public struct Options: Sendable {
        public var source: Source
        public var episodes: Int
        public var outputPath: String
        /// First seed; nil means the task's collection seeds (or, when appending, the seed after the file's last).
        public var firstSeed: UInt64?
        public var append = false
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        public var command = ""

        public init(source: Source, episodes: Int, outputPath: String) {
            self.source = source
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
        guard options.episodes >= 1 else { throw FlowPolicyError.invalidConfiguration("episodes must be at least 1") }
        let start = monotonicSeconds()
        try TrainingSession.checkWritable(options.outputPath)
        var existing: EpisodeDataset?
        if options.append, FileManager.default.fileExists(atPath: options.outputPath) {
            let dataset = try EpisodeDataset(contentsOf: options.outputPath)
            guard case .expert = options.source else {
                throw FlowPolicyError.invalidConfiguration(
                    "appending is for expert demonstrations; the toy mixture is written whole (drop --append)")
            }
            let task = dataset.metadata["task"] ?? "no task"
            guard task == options.source.name else {
                throw FlowPolicyError.incompatible(
                    path: options.outputPath, message: "the file holds \(task) demonstrations; appending "
                        + "\(options.source.name) demonstrations would mix tasks (write them to another file)")
            }
            existing = dataset
        }
        guard case .expert(let task) = options.source else {
            var dataset = ConditionalMixture.dataset(count: options.episodes, seed: options.firstSeed ?? 0)
            dataset.metadata["command"] = options.command
            try dataset.write(to: options.outputPath)
            return Summary(
                task: options.source.name, output: options.outputPath, episodesRequested: options.episodes,
                episodesKept: dataset.episodeCount, episodesDropped: 0, expertSuccess: nil, steps: dataset.stepCount,
                seeds: "\(options.firstSeed ?? 0)", datasetSeeds: "\(options.firstSeed ?? 0)",
                datasetEpisodes: dataset.episodeCount, droppedSeeds: [], seconds: monotonicSeconds() - start)
        }
        let existingSeeds = existing?.metadata["seeds"].flatMap(SeedRanges.init)
        let firstSeed = options.firstSeed ?? existingSeeds?.last.map { $0 + 1 } ?? task.collectionSeed
        let seeds = (0..<UInt64(options.episodes)).map { firstSeed + $0 }
        if let existingSeeds, let repeated = seeds.first(where: existingSeeds.contains) {
            throw FlowPolicyError.invalidConfiguration(
                "seed \(repeated) is already in \(options.outputPath) (seeds \(existingSeeds.text)); "
                    + "choose other seeds")
        }

        let threads = max(1, min(options.threads, seeds.count))
        let workers = try (0..<threads).map { _ in DemonstrationRecorder(runner: try ExpertRunner(task: task)) }
        let progress = ProgressBar(title: "collect \(task.name)", total: seeds.count, unit: "episode")
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

        let specification = workers[0].runner.rollout.specification
        var dataset = existing ?? EpisodeDataset(
            observationDimensions: specification.observationDimensions,
            actionDimensions: specification.actionDimensions, cameras: task.cameraSpecs)
        guard dataset.observationDimensions == specification.observationDimensions,
              dataset.actionDimensions == specification.actionDimensions, dataset.cameras == task.cameraSpecs
        else {
            throw FlowPolicyError.incompatible(
                path: options.outputPath,
                message: "the file holds \(dataset.observationDimensions)-D observations and "
                    + "\(dataset.actionDimensions)-D actions and \(dataset.cameras.count) cameras; \(task.name) records "
                    + "\(specification.observationDimensions), \(specification.actionDimensions) and "
                    + "\(task.cameras.count)")
        }
        for episode in recorded where episode.success {
            try dataset.appendEpisode(observations: episode.observations, actions: episode.actions,
                                      stepFrames: episode.frames)
        }
        let runSeeds = SeedRanges([firstSeed...(firstSeed + UInt64(options.episodes) - 1)])
        let allSeeds = existingSeeds?.adding(runSeeds.ranges[0]) ?? runSeeds
        dataset.metadata["task"] = task.name
        dataset.metadata["observation_mode"] = specification.observationMode
        dataset.metadata["control_hz"] = String(specification.controlRate)
        dataset.metadata["seeds"] = allSeeds.text
        dataset.metadata["source"] = "scripted expert"
        dataset.metadata["command"] = options.command
        try dataset.write(to: options.outputPath)
        let kept = recorded.filter(\.success)
        return Summary(
            task: task.name, output: options.outputPath, episodesRequested: options.episodes,
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
        /// `[L, Σ H*W*C]`: the camera frames of each observation (empty for a task without cameras).
        var frames: [UInt8]
    }

    let runner: ExpertRunner

    init(runner: ExpertRunner) {
        self.runner = runner
    }

    func record(seed: UInt64) -> Episode {
        var episode = Episode(seed: seed, success: false, observations: [], actions: [], frames: [])
        let specification = runner.rollout.specification
        let (frames, frameBytes) = (runner.rollout.frames, runner.rollout.frameBytes)
        let outcome = runner.run(seed: seed) { observation, action in
            episode.observations += UnsafeBufferPointer(start: observation, count: specification.observationDimensions)
            episode.actions += UnsafeBufferPointer(start: action, count: specification.actionDimensions)
            if let frames { episode.frames += UnsafeBufferPointer(start: frames, count: frameBytes) }
        }
        episode.success = outcome.success && outcome.failure == nil
        return episode
    }
}
