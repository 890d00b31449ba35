import FlowPolicy
import Foundation
import SimBridge

/// `flowpolicy eval`: success-rate evaluation of a policy checkpoint (or the task's scripted expert) on seeded
/// episodes of a task.
///
/// Policy episodes run in lock-step: every episode starts together, so all unfinished episodes need a new chunk at
/// the same control steps; one batched policy call serves them all (split over the worker threads), then each episode
/// executes its Ta actions, the episodes split over the same threads. Expert episodes are independent and are handed
/// out to the threads one at a time. Results are listed in seed order and do not depend on the thread count.
public enum EvaluationSession {
    public struct Options: Sendable {
        public var task: String
        /// Nil evaluates the scripted expert.
        public var checkpointPath: String?
        public var episodes = 200
        /// First seed; nil means the task's evaluation seeds (task.yaml `seeds.evaluation`).
        public var firstSeed: UInt64?
        public var method = SolverMethod.euler
        public var steps = 10
        /// Actions executed per chunk; nil means the checkpoint's Ta. Fewer replan more often.
        public var actionSteps: Int?
        /// How consecutive chunks hand over: receding horizon (Ta actions each) or temporal ensembling (a chunk every
        /// `replanEvery` steps, default 1, every chunk covering a step averaged with weights `exp(-ensembleDecay i)`,
        /// as `run`). Nil: the task's default (task.yaml `policy.hand_over`).
        public var handOver: ChunkHandOver?
        public var replanEvery: Int?
        public var ensembleDecay: Float = 0.01
        /// Standard deviation of Gaussian noise added to the observations the policy sees (task units).
        public var observationNoise: Float = 0
        /// Seed of the policy's sampling noise (and of the observation noise).
        public var policySeed: UInt64 = 0
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        public var showProgress = true
        /// Evaluate the policy served at this endpoint (`flowpolicy serve`) instead of a checkpoint; see
        /// `RemoteEvaluation.swift` for how it reproduces in-process results.
        public var remote: String?

        public init(task: String, checkpointPath: String?) {
            self.task = task
            self.checkpointPath = checkpointPath
        }
    }

    public struct EpisodeResult: Codable, Sendable {
        public var seed: UInt64
        public var success: Bool
        public var steps: Int
        /// Largest progress in the episode (Push-T: coverage).
        public var maxProgress: Double
        public var finalProgress: Double
        public var totalReward: Double
        public var clippedActions: Int
        /// The step at which each of the task's progress levels was first reached (nil: never), in the order of
        /// its `progressLevels` (Franka Kitchen: when the first, second, ... subtask was done).
        public var stepsToProgressLevels: [Int?]
        /// Why the episode stopped early (a non-finite action, a diverged simulation), if it did.
        public var failure: String?

        init(seed: UInt64, progressLevelCount: Int) {
            self.seed = seed
            success = false
            steps = 0
            maxProgress = 0
            finalProgress = 0
            totalReward = 0
            clippedActions = 0
            stepsToProgressLevels = Array(repeating: nil, count: progressLevelCount)
        }

        /// Counts one control step's outcome; `progressLevels` are the task's.
        mutating func record(_ outcome: StepResult, progressLevels: [Double]) {
            steps += 1
            totalReward += outcome.reward
            maxProgress = max(maxProgress, outcome.progress)
            finalProgress = outcome.progress
            for (i, level) in progressLevels.enumerated() where stepsToProgressLevels[i] == nil && outcome.progress >= level {
                stepsToProgressLevels[i] = steps
            }
            success = success || outcome.success
            if outcome.actionClipped { clippedActions += 1 }
        }
    }

    public struct Report: Codable, Sendable {
        public var task: String
        public var policy: String
        public var checkpoint: String?
        public var solver: String?
        public var solverSteps: Int?
        public var evaluationsPerChunk: Int?
        /// Chunk hand-over (receding or ensemble) and, for ensembling, the steps between chunks.
        public var handOver: String?
        public var replanEvery: Int?
        /// Actions executed per chunk (Ta).
        public var actionSteps: Int?
        public var observationNoise: Float
        public var episodes: Int
        /// First and last seed.
        public var seeds: [UInt64]
        public var success: ProportionEstimate
        /// Mean over episodes of the largest progress (Push-T: Diffusion Policy's score, mean max coverage).
        public var meanMaxProgress: MeanEstimate
        public var progressName: String
        /// For tasks with progress levels (the kitchen's p1..p4): the share of episodes reaching each level.
        public var progressLevels: [String: ProportionEstimate]
        /// Per level: the mean step at which it was first reached, over the episodes that reached it.
        public var meanStepToProgressLevels: [String: Double]
        public var meanEpisodeLength: Double
        public var clippedActions: Int
        public var failedEpisodes: Int
        /// One batched policy call (`meanBatch` chunks), in milliseconds.
        public var inferenceLatencyMilliseconds: LatencySummary?
        public var meanBatch: Double?
        /// Environment steps per second on one core (time spent stepping), and over the whole run (wall clock).
        public var environmentStepsPerSecondPerCore: Double
        public var environmentStepsPerSecondOverall: Double
        public var threads: Int
        public var wallSeconds: Double
        public var results: [EpisodeResult]
    }

    /// Evaluates `options.checkpointPath` (or the expert when it is nil).
    public static func run(_ options: Options) throws -> Report {
        if let remote = options.remote { return try runRemote(options, endpoint: remote) }
        let checkpoint = try options.checkpointPath.map { try Checkpoint(contentsOf: $0) }
        return try run(options, checkpoint: checkpoint)
    }

    /// Evaluates `checkpoint` (or the expert when it is nil); `options.checkpointPath` only names it in messages.
    public static func run(_ options: Options, checkpoint: Checkpoint?) throws -> Report {
        guard options.episodes >= 1 else { throw FlowPolicyError.invalidConfiguration("--episodes must be at least 1") }
        let common = try TaskRegistry.commonSettings(options.task)
        let firstSeed = options.firstSeed ?? common.seeds.evaluation
        let seeds = (0..<UInt64(options.episodes)).map { firstSeed + $0 }
        let start = monotonicSeconds()
        var report: Report
        if let checkpoint {
            let path = options.checkpointPath ?? "the checkpoint"
            try checkSeeds(seeds, checkpoint: checkpoint, path: path)
            report = try runPolicy(checkpoint: checkpoint, seeds: seeds, options: options)
            report.checkpoint = options.checkpointPath
        } else {
            report = try runExpert(seeds: seeds, options: options)
        }
        report.wallSeconds = monotonicSeconds() - start
        report.environmentStepsPerSecondOverall = Double(report.results.reduce(0) { $0 + $1.steps }) / report.wallSeconds
        return report
    }

    /// Refuses evaluation seeds that the checkpoint's training data was collected with.
    static func checkSeeds(_ seeds: [UInt64], checkpoint: Checkpoint, path: String) throws {
        guard let text = checkpoint.provenance["dataset_seeds"], let range = SeedRanges(text) else { return }
        if let overlap = seeds.first(where: { range.contains($0) }) {
            throw FlowPolicyError.invalidConfiguration(
                "evaluation seed \(overlap) is one the training data of \(path) was collected with (\(text)); "
                    + "evaluate on other seeds (the task's evaluation seeds are the default)")
        }
    }

    // MARK: Policy

    static func runPolicy(checkpoint: Checkpoint, seeds: [UInt64], options: Options) throws -> Report {
        let capacity = min(seeds.count, 256)
        let policy = Policy(checkpoint: checkpoint, capacity: capacity, method: options.method,
                            steps: options.steps, seed: options.policySeed, workers: max(1, options.threads))
        let spec = checkpoint.spec
        let actions = FloatBuffer(count: capacity * spec.actionSteps * spec.actionDimensions)
        return try runLockStep(spec: spec, seeds: seeds, options: options,
                               policy: "checkpoint (\(checkpoint.method))",
                               evaluationsPerChunk: policy.evaluationsPerChunk) { observations, batch, chunks in
            policy.predictAction(observations: observations, batch: batch, action: actions.pointer,
                                 actionPrediction: chunks)
        }
    }

    /// The lock-step batched rollouts: `sample(observations [B, To, Do], B, chunks [B, Tp, Da])` gives the chunks of
    /// every unfinished episode, in seed order, at once; each episode executes steps To - 1 ..< To - 1 + Ta.
    static func runLockStep(
        spec: PolicySpec, seeds: [UInt64], options: Options, policy name: String, evaluationsPerChunk: Int,
        sample: (UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>) throws -> Void
    ) throws -> Report {
        let probe = try TaskRegistry.makeEnvironment(options.task)
        let environmentSpec = probe.specification
        guard spec.observationDimensions == environmentSpec.observationDimensions,
              spec.actionDimensions == environmentSpec.actionDimensions
        else {
            throw FlowPolicyError.incompatible(
                path: options.checkpointPath ?? "",
                message: "the checkpoint takes \(spec.observationDimensions)-D observations and gives "
                    + "\(spec.actionDimensions)-D actions; task \(options.task) (\(environmentSpec.observationMode) "
                    + "observations) has \(environmentSpec.observationDimensions)-D observations and "
                    + "\(environmentSpec.actionDimensions)-D actions")
        }
        let (To, Tp, Do, Da) = (spec.observationSteps, spec.predictionSteps, spec.observationDimensions, spec.actionDimensions)
        let Ta = options.actionSteps ?? spec.actionSteps
        guard Ta >= 1, To - 1 + Ta <= Tp else {
            throw FlowPolicyError.invalidConfiguration(
                "--action-steps must be between 1 and Tp - To + 1 = \(Tp - To + 1) for this checkpoint, got \(Ta)")
        }
        let handOver = try options.handOver ?? ChunkHandOver.taskDefault(options.task)
        let ensemble: Bool
        switch handOver {
        case .receding: ensemble = false
        case .ensemble: ensemble = true
        case .continuation:
            throw FlowPolicyError.invalidConfiguration(
                "eval runs --hand-over receding or ensemble; continuation needs the control loop (flowpolicy run)")
        }
        if ensemble && options.actionSteps != nil {
            throw FlowPolicyError.invalidConfiguration(
                "--action-steps is for the receding hand-over (add --hand-over receding; "
                    + "\(options.handOver == nil ? "this task's default is ensemble" : "ensembling takes --replan-every"))")
        }
        if !ensemble && options.replanEvery != nil {
            throw FlowPolicyError.invalidConfiguration("--replan-every is for temporal ensembling (--hand-over ensemble)")
        }
        let replanEvery = options.replanEvery ?? 1
        guard !ensemble || (replanEvery >= 1 && To - 1 + replanEvery <= Tp) else {
            throw FlowPolicyError.invalidConfiguration(
                "--replan-every must be between 1 and Tp - To + 1 = \(Tp - To + 1) for this checkpoint, got \(replanEvery)")
        }
        let stepsPerChunk = ensemble ? replanEvery : Ta
        var executed = spec
        executed.actionSteps = Ta
        let threads = max(1, options.threads)
        let batchCapacity = min(seeds.count, 256)
        let progress = options.showProgress ? ProgressBar(title: "eval", total: seeds.count, unit: "episode") : nil
        var results: [EpisodeResult] = []
        var latencies: [Double] = []
        var batches: [Int] = []
        var busySeconds = 0.0

        // Waves of at most `batchCapacity` episodes in lock-step.
        for waveStart in stride(from: 0, to: seeds.count, by: batchCapacity) {
            let waveSeeds = Array(seeds[waveStart..<min(waveStart + batchCapacity, seeds.count)])
            let episodes = try waveSeeds.map { seed in
                // The chunks' bookkeeping of the control loop, with no inference delay (lead 0).
                let scheduler = try ActionChunkScheduler(
                    spec: executed, mode: ensemble ? .ensemble : .receding, lead: 0, replanInterval: replanEvery,
                    ensembleDecay: options.ensembleDecay)
                return try PolicyEpisode(
                    seed: seed, environment: TaskRegistry.makeEnvironment(options.task), observationSteps: To,
                    noise: options.observationNoise, noiseSeed: options.policySeed, chunks: scheduler)
            }
            busySeconds += parallelEpisodes(episodes, threads: threads) { try $0.start() }
            let observations = FloatBuffer(count: episodes.count * To * Do)
            let chunks = FloatBuffer(count: episodes.count * Tp * Da)
            while true {
                let active = episodes.filter { !$0.finished }
                if active.isEmpty { break }
                for (row, episode) in active.enumerated() {
                    episode.copyWindow(into: observations.pointer + row * To * Do)
                }
                let begin = monotonicSeconds()
                try sample(observations.pointer, active.count, chunks.pointer)
                latencies.append((monotonicSeconds() - begin) * 1000)
                batches.append(active.count)
                for (row, episode) in active.enumerated() {
                    episode.chunks.accept(chunk: chunks.pointer + row * Tp * Da, requestStep: episode.result.steps)
                }
                busySeconds += parallelEpisodes(active, threads: threads) { episode in
                    for _ in 0..<stepsPerChunk where !episode.finished { try episode.stepPlanned() }
                }
                progress?.update(completed: results.count + episodes.filter(\.finished).count,
                                 status: "success \(results.filter(\.success).count + episodes.filter { $0.result.success }.count)")
            }
            results += episodes.map(\.result)
        }
        progress?.finish(status: "success \(results.filter(\.success).count)/\(results.count)")
        var report = makeReport(
            options: options, specification: environmentSpec, results: results,
            policy: name,
            latencies: latencies, batches: batches, busySeconds: busySeconds, threads: threads,
            evaluationsPerChunk: evaluationsPerChunk)
        report.handOver = handOver.rawValue
        if ensemble { report.replanEvery = replanEvery } else { report.actionSteps = Ta }
        return report
    }

    /// Runs `body` on every episode, the episodes split over `threads`; returns the summed busy time of the threads.
    /// An error thrown for an episode ends that episode as a failure.
    static func parallelEpisodes(
        _ episodes: [PolicyEpisode], threads: Int, _ body: (PolicyEpisode) throws -> Void
    ) -> Double {
        let busy = UnsafeMutableBufferPointer<Double>.allocate(capacity: threads)
        busy.initialize(repeating: 0)
        defer { busy.deallocate() }
        parallelFor(min(threads, episodes.count)) { worker in
            let begin = monotonicSeconds()
            var index = worker
            while index < episodes.count {
                let episode = episodes[index]
                do { try body(episode) } catch { episode.fail("\(error)") }
                index += threads
            }
            busy[worker] = monotonicSeconds() - begin
        }
        return busy.reduce(0, +)
    }

    // MARK: Expert

    static func runExpert(seeds: [UInt64], options: Options) throws -> Report {
        let threads = max(1, min(options.threads, seeds.count))
        let progress = options.showProgress ? ProgressBar(title: "eval expert", total: seeds.count, unit: "episode") : nil
        let workers = try (0..<threads).map { _ in
            let environment = try TaskRegistry.makeEnvironment(options.task)
            return ExpertEpisodeRunner(environment: environment,
                                       expert: try TaskRegistry.makeExpert(options.task, environment: environment))
        }
        let queue = WorkQueue(count: seeds.count)
        var results = [EpisodeResult?](repeating: nil, count: seeds.count)
        let busy = UnsafeMutableBufferPointer<Double>.allocate(capacity: threads)
        busy.initialize(repeating: 0)
        defer { busy.deallocate() }
        results.withUnsafeMutableBufferPointer { slots in
            parallelFor(threads) { worker in
                let begin = monotonicSeconds()
                while let index = queue.next() {
                    let result = workers[worker].run(seed: seeds[index])
                    slots[index] = result
                    queue.finished { completed, _ in
                        progress?.update(completed: completed, status: "")
                    }
                }
                busy[worker] = monotonicSeconds() - begin
            }
        }
        let finished = results.compactMap { $0 }
        progress?.finish(status: "success \(finished.filter(\.success).count)/\(finished.count)")
        return makeReport(options: options, specification: workers[0].environment.specification, results: finished,
                          policy: "scripted expert", latencies: [], batches: [],
                          busySeconds: busy.reduce(0, +), threads: threads, evaluationsPerChunk: nil)
    }

    static func makeReport(
        options: Options, specification: EnvironmentSpecification, results: [EpisodeResult], policy: String,
        latencies: [Double], batches: [Int],
        busySeconds: Double, threads: Int, evaluationsPerChunk: Int?
    ) -> Report {
        let steps = results.reduce(0) { $0 + $1.steps }
        let usesPolicy = evaluationsPerChunk != nil
        var levels: [String: ProportionEstimate] = [:]
        var meanSteps: [String: Double] = [:]
        for (i, (level, name)) in zip(specification.progressLevels, specification.progressLevelNames).enumerated() {
            levels[name] = ProportionEstimate(successes: results.filter { $0.maxProgress >= level }.count,
                                              trials: results.count)
            let reached = results.compactMap { $0.stepsToProgressLevels[i] }
            if !reached.isEmpty { meanSteps[name] = Double(reached.reduce(0, +)) / Double(reached.count) }
        }
        return Report(
            task: options.task, policy: policy, checkpoint: nil,
            solver: usesPolicy ? options.method.rawValue : nil, solverSteps: usesPolicy ? options.steps : nil,
            evaluationsPerChunk: evaluationsPerChunk, actionSteps: nil, observationNoise: options.observationNoise,
            episodes: results.count, seeds: [results.first?.seed ?? 0, results.last?.seed ?? 0],
            success: ProportionEstimate(successes: results.filter(\.success).count, trials: results.count),
            meanMaxProgress: MeanEstimate(results.map(\.maxProgress),
                                          bounds: 0...(specification.progressLevels.last ?? 1)),
            progressName: "max \(specification.progressName)", progressLevels: levels, meanStepToProgressLevels: meanSteps,
            meanEpisodeLength: Double(steps) / Double(max(results.count, 1)),
            clippedActions: results.reduce(0) { $0 + $1.clippedActions },
            failedEpisodes: results.filter { $0.failure != nil }.count,
            inferenceLatencyMilliseconds: latencies.isEmpty ? nil : LatencySummary(latencies),
            meanBatch: batches.isEmpty ? nil : Double(batches.reduce(0, +)) / Double(batches.count),
            environmentStepsPerSecondPerCore: busySeconds > 0 ? Double(steps) / busySeconds : 0,
            environmentStepsPerSecondOverall: 0, threads: threads, wallSeconds: 0, results: results)
    }
}

/// A policy-driven episode: its environment, observation window and what happened so far.
final class PolicyEpisode {
    let environment: any Environment
    var window: ObservationWindow
    var result: EvaluationSession.EpisodeResult
    /// The chunks so far: which action each step executes (receding horizon: steps To - 1 ..< To - 1 + Ta of the
    /// newest chunk; ensembling: the weighted average of the chunks covering the step).
    let chunks: ActionChunkScheduler
    var finished = false
    let noise: Float
    var noiseSource: RandomSource
    var observation: [Float]

    init(seed: UInt64, environment: any Environment, observationSteps: Int, noise: Float, noiseSeed: UInt64,
         chunks: ActionChunkScheduler) {
        self.environment = environment
        self.chunks = chunks
        let dimensions = environment.specification.observationDimensions
        window = ObservationWindow(steps: observationSteps, dimensions: dimensions)
        result = .init(seed: seed, progressLevelCount: environment.specification.progressLevels.count)
        self.noise = noise
        noiseSource = RandomSource(seed: noiseSeed, stream: seed)
        observation = [Float](repeating: 0, count: dimensions)
    }

    func start() throws {
        try observation.withUnsafeMutableBufferPointer { try environment.reset(seed: result.seed, observation: $0.baseAddress!) }
        addNoise()
        observation.withUnsafeBufferPointer { window.reset(to: $0.baseAddress!) }
    }

    func step(_ action: [Float]) throws {
        let outcome = try action.withUnsafeBufferPointer { a in
            try observation.withUnsafeMutableBufferPointer { try environment.step(action: a.baseAddress!, observation: $0.baseAddress!) }
        }
        addNoise()
        observation.withUnsafeBufferPointer { window.push($0.baseAddress!) }
        result.record(outcome, progressLevels: environment.specification.progressLevels)
        if outcome.done { finished = true }
    }

    /// Executes the chunks' action for the current step.
    func stepPlanned() throws {
        var action = [Float](repeating: 0, count: environment.specification.actionDimensions)
        guard chunks.action(at: result.steps, into: &action) else {
            throw FlowPolicyError.invalidConfiguration("no chunk covers step \(result.steps)")
        }
        try step(action)
    }

    func copyWindow(into destination: UnsafeMutablePointer<Float>) {
        window.values.withUnsafeBufferPointer { destination.update(from: $0.baseAddress!, count: $0.count) }
    }

    func fail(_ reason: String) {
        result.failure = reason
        result.success = false
        finished = true
    }

    private func addNoise() {
        guard noise > 0 else { return }
        for i in observation.indices { observation[i] += noise * noiseSource.nextGaussian() }
    }
}

/// Runs whole expert episodes in one environment.
final class ExpertEpisodeRunner {
    let environment: any Environment
    let expert: any Expert

    init(environment: any Environment, expert: any Expert) {
        self.environment = environment
        self.expert = expert
    }

    func run(seed: UInt64) -> EvaluationSession.EpisodeResult {
        let specification = environment.specification
        var result = EvaluationSession.EpisodeResult(seed: seed, progressLevelCount: specification.progressLevels.count)
        var observation = [Float](repeating: 0, count: specification.observationDimensions)
        var action = [Float](repeating: 0, count: specification.actionDimensions)
        do {
            try observation.withUnsafeMutableBufferPointer { try environment.reset(seed: seed, observation: $0.baseAddress!) }
            try expert.begin(episodeSeed: seed)
            while true {
                try action.withUnsafeMutableBufferPointer { try expert.act(action: $0.baseAddress!) }
                let outcome = try action.withUnsafeBufferPointer { a in
                    try observation.withUnsafeMutableBufferPointer {
                        try environment.step(action: a.baseAddress!, observation: $0.baseAddress!)
                    }
                }
                result.record(outcome, progressLevels: specification.progressLevels)
                if outcome.done { break }
            }
        } catch {
            result.failure = "\(error)"
            result.success = false
        }
        return result
    }
}

/// Hands out indices 0 ..< count to threads, and counts finished work, under a lock.
final class WorkQueue: @unchecked Sendable {
    private let lock = NSLock()
    private let count: Int
    private var nextIndex = 0
    private var completed = 0

    init(count: Int) { self.count = count }

    func next() -> Int? {
        lock.withLock {
            guard nextIndex < count else { return nil }
            defer { nextIndex += 1 }
            return nextIndex
        }
    }

    /// Marks one item finished and calls `body` with the number finished so far, under the lock.
    func finished(_ body: (Int, Int) -> Void) {
        lock.withLock {
            completed += 1
            body(completed, count)
        }
    }
}

/// Seeds written as inclusive ranges, `first-last[,first-last...]`, as datasets record them.
public struct SeedRanges: Sendable, Equatable {
    public var ranges: [ClosedRange<UInt64>]

    public init(_ ranges: [ClosedRange<UInt64>]) { self.ranges = ranges }

    public init?(_ text: String) {
        var ranges: [ClosedRange<UInt64>] = []
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-")
            guard bounds.count == 2, let first = UInt64(bounds[0]), let last = UInt64(bounds[1]), first <= last else {
                return nil
            }
            ranges.append(first...last)
        }
        guard !ranges.isEmpty else { return nil }
        self.ranges = ranges
    }

    public var text: String { ranges.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",") }
    public func contains(_ seed: UInt64) -> Bool { ranges.contains { $0.contains(seed) } }
    public var last: UInt64? { ranges.map(\.upperBound).max() }

    /// These ranges and `other`, merging a range that continues the last one.
    public func adding(_ other: ClosedRange<UInt64>) -> SeedRanges {
        var ranges = self.ranges
        if let last = ranges.last, other.lowerBound == last.upperBound + 1 {
            ranges[ranges.count - 1] = last.lowerBound...other.upperBound
        } else {
            ranges.append(other)
        }
        return SeedRanges(ranges)
    }
}
