import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge

/// `flowpolicy eval`: success-rate evaluation of a policy (a checkpoint, or a policy server through the same
/// `ChunkSampler` calls) or of the task's scripted expert, on seeded episodes of a task.
///
/// Policy episodes run in lock-step: every episode starts together, so all unfinished episodes need a new chunk at
/// the same control steps; one call serves them all (split over the worker threads), then each episode executes its
/// actions, the episodes split over the same threads. Expert episodes are independent and are handed out to the
/// threads one at a time. Results are listed in seed order.
///
/// An episode's outcome depends on its seed alone: chunk c of the episode of seed s starts from noise seeded with
/// `chunkNoiseSeed(policySeed, s, c)`, integrated as a batch of one. So the outcomes do not depend on the thread
/// count, on the other episodes, or on where the policy runs (a `RemotePolicy` sends each row as a request of its own
/// with that seed), and a shard of the seeds (`Options.shard`) gives exactly the unsharded run's episodes.
public enum EvaluationSession {
    public struct Options: Sendable {
        public var task: TaskDescription
        public var episodes = 200
        /// First seed; nil means the task's evaluation seeds.
        public var firstSeed: UInt64?
        public var method = SolverMethod.euler
        public var steps = 10
        /// The number format of a checkpoint's matrix products (`Precision`).
        public var precision = Precision.fp32
        /// Actions executed per chunk; nil means the policy's Ta. Fewer replan more often.
        public var actionSteps: Int?
        /// How consecutive chunks hand over: receding horizon (Ta actions each) or temporal ensembling (a chunk every
        /// `replanEvery` steps, default 1, every chunk covering a step averaged with weights `exp(-ensembleDecay i)`,
        /// as `run`). Nil: the task's default.
        public var handOver: ChunkHandOver?
        public var replanEvery: Int?
        public var ensembleDecay: Float = 0.01
        /// Standard deviation of Gaussian noise added to the observations the policy sees, in the observation's units
        /// (`ObservationNoise`).
        public var observationNoise: Float = 0
        /// Seed of the observation noise; nil: the policy seed.
        public var observationNoiseSeed: UInt64?
        /// A push of every episode after this many control steps (`DisturbableEnvironment`); nil: none.
        public var disturbance: Disturbance?
        /// Seed of the policy's sampling noise (and of the observation noise, unless it has a seed of its own).
        public var policySeed: UInt64 = 0
        /// Evaluate only part `index` of `count` disjoint, contiguous parts of the seeds (the first parts one seed
        /// longer when they do not divide evenly); `EvaluationMerge` puts the parts' reports back together.
        public var shard: Shard?
        /// Videos of some episodes, made after the evaluation by running those seeds again (an episode's outcome
        /// depends on its seed alone, so the rerun is the same episode).
        public var video: VideoOptions?
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        public var showProgress = true

        public init(task: TaskDescription) {
            self.task = task
        }
    }

    /// `eval --video DIR`: how many episodes, failures first (3 of 5 by default, then successes; either kind fills
    /// in for the other when short), at what size.
    public struct VideoOptions: Sendable {
        public var folder: String
        public var episodes = 5
        public var width = 256
        public var height = 256

        public init(folder: String) { self.folder = folder }
    }

    /// The push of `eval --disturbance` in a report: its step, what it does, and how many episodes met it (an
    /// episode that ended before the step did not).
    public struct DisturbanceSummary: Codable, Sendable, Equatable {
        public var step: Int
        public var push: String
        public var disturbedEpisodes: Int
    }

    /// One episode's video in the report.
    public struct Video: Codable, Sendable, Equatable {
        public var seed: UInt64
        public var success: Bool
        public var steps: Int
        public var file: String
    }

    public struct Report: Codable, Sendable {
        public var task: String
        public var policy: String
        public var checkpoint: String?
        public var solver: String?
        public var solverSteps: Int?
        /// A checkpoint's inference precision (fp32, bf16, int8); nil for an expert or a served policy.
        public var precision: String?
        public var evaluationsPerChunk: Int?
        /// Chunk hand-over (receding or ensemble) and, for ensembling, the steps between chunks.
        public var handOver: String?
        public var replanEvery: Int?
        /// Actions executed per chunk (Ta).
        public var actionSteps: Int?
        public var observationNoise: Float
        public var policySeed: UInt64?
        /// The content hash of the checkpoint's weights, when a checkpoint was evaluated here.
        public var checkpointHash: String?
        public var episodes: Int
        /// First and last seed.
        public var seeds: [UInt64]
        /// The part of the seeds this report covers (`I/N`), with the first and last seed of the whole run.
        public var shard: String?
        public var shardOf: [UInt64]?
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
        /// One policy call (`meanBatch` chunks), in milliseconds.
        public var inferenceLatencyMilliseconds: LatencySummary?
        public var meanBatch: Double?
        /// Per chunk, the latency of the call that sampled it (an HDR histogram; histograms of shards add up).
        public var chunkLatency: LatencyHistogram?
        /// Chunk numbers clamped to the deployment contract's action bounds.
        public var clampedChunkValues: Int?
        /// Environment steps per second on one core (time spent stepping), and over the whole run (wall clock).
        public var environmentStepsPerSecondPerCore: Double
        public var environmentStepsPerSecondOverall: Double
        public var threads: Int
        /// Wall time; for a merged report the sum over its shards, with the longest shard's.
        public var wallSeconds: Double
        public var longestShardSeconds: Double?
        public var videos: [Video]?
        /// Push-T: Diffusion Policy's score, the mean over episodes of `min(max coverage / 0.95, 1)`
        /// (`DiffusionPolicyScore`); nil for other tasks.
        public var diffusionPolicyScore: MeanEstimate?
        /// With observation noise: the units σ is in, and the noise's seed when it is not the policy seed.
        public var observationNoiseUnits: String?
        public var observationNoiseSeed: UInt64?
        /// With observation noise on a checkpoint: σ where it is largest in the policy's normalized inputs.
        public var observationNoiseNormalized: ObservationNoise.Normalized?
        /// The mid-episode push, when one was applied.
        public var disturbance: DisturbanceSummary?
        public var results: [EpisodeOutcome]
    }

    /// Evaluates a checkpoint (sampled here with `options`' solver, K, seed and threads).
    public static func run(_ options: Options, checkpoint: Checkpoint, path: String) throws -> Report {
        _ = try evaluationSeeds(options)  // checked before the policy is sized by them
        let policy = Policy(checkpoint: checkpoint, capacity: min(options.episodes, 256), method: options.method,
                            steps: options.steps, seed: options.policySeed, workers: max(1, options.threads),
                            precision: options.precision)
        var report = try run(options, policy: policy, name: "checkpoint (\(checkpoint.method))",
                             trainingSeeds: checkpoint.provenance["dataset_seeds"], source: path)
        report.checkpoint = path
        report.precision = options.precision.rawValue
        report.checkpointHash = parameterHash(checkpoint)
        if options.observationNoise > 0 {
            report.observationNoiseNormalized = ObservationNoise.largestNormalized(
                options.observationNoise, by: checkpoint.observationNormalizer)
        }
        return report
    }

    /// Evaluates the policy served at `endpoint` (its solver and K), failing within `timeoutMilliseconds` when
    /// nothing answers.
    public static func run(_ options: Options, remote endpoint: String, timeoutMilliseconds: Int = 5_000,
                           security: SocketSecurity = .none) throws -> Report {
        let context = try ZMQContext()
        let remote = try RemotePolicy(context: context, endpoint: endpoint, timeoutMilliseconds: timeoutMilliseconds,
                                      security: security)
        var report = try run(options, policy: remote, name: "served by \(endpoint) (\(remote.metadata.method))",
                             trainingSeeds: remote.metadata.datasetSeeds, source: endpoint)
        report.checkpoint = remote.metadata.checkpoint.isEmpty ? nil : remote.metadata.checkpoint
        return report
    }

    /// Evaluates the task's scripted expert.
    public static func runExpert(_ options: Options) throws -> Report {
        let seeds = try evaluationSeeds(options)
        let start = monotonicSeconds()
        var report = try runExpert(seeds: seeds, options: options)
        return finish(&report, start: start)
    }

    /// Evaluates any chunk sampler (each chunk on the noise of its episode and index).
    public static func run(_ options: Options, policy: any ChunkSampler, name: String, trainingSeeds: String?,
                           source: String) throws -> Report {
        let seeds = try evaluationSeeds(options)
        if let text = trainingSeeds, let range = SeedRanges(text), let overlap = seeds.first(where: range.contains) {
            throw FlowPolicyError.invalidConfiguration(
                "evaluation seed \(overlap) is one the training data of \(source) was collected with (\(text)); "
                    + "evaluate on other seeds (the task's evaluation seeds are the default)")
        }
        let start = monotonicSeconds()
        var report = try runLockStep(seeds: seeds, options: options, policy: policy, name: name)
        if let video = options.video {
            report.videos = try recordVideos(video, of: report.results, options: options, policy: policy, name: name)
        }
        return finish(&report, start: start)
    }

    /// The chosen episodes run again, each recorded to `folder/seed-S-success|failure.mp4`; their outcomes must be
    /// the evaluation's.
    static func recordVideos(_ video: VideoOptions, of results: [EpisodeOutcome], options: Options,
                             policy: any ChunkSampler, name: String) throws -> [Video] {
        guard video.episodes >= 1, video.width % 2 == 0, video.height % 2 == 0 else {
            throw FlowPolicyError.invalidConfiguration(
                "videos need at least one episode and an even width and height (H.264 in yuv420p)")
        }
        let failures = results.filter { !$0.success }, successes = results.filter(\.success)
        let wantedFailures = video.episodes - video.episodes * 2 / 5
        let failureCount = min(failures.count, max(wantedFailures, video.episodes - successes.count))
        let chosen = (failures.prefix(failureCount) + successes.prefix(video.episodes - failureCount))
            .sorted { $0.seed < $1.seed }
        try FileManager.default.createDirectory(atPath: video.folder, withIntermediateDirectories: true)
        var rerun = options
        rerun.showProgress = false
        let recorded = try runLockStep(seeds: chosen.map(\.seed), options: rerun, policy: policy, name: name,
                                       videoFolder: video.folder, videoSize: (video.width, video.height))
        for (original, again) in zip(chosen, recorded.results) where original != again {
            throw FlowPolicyError.invalidConfiguration(
                "the recorded rerun of seed \(original.seed) differs from the evaluation ("
                    + (again.failure ?? "\(again.steps) steps, success \(again.success)") + ")")
        }
        return chosen.map { outcome in
            Video(seed: outcome.seed, success: outcome.success, steps: outcome.steps,
                  file: videoPath(folder: video.folder, outcome: outcome))
        }
    }

    static func videoPath(folder: String, outcome: EpisodeOutcome) -> String {
        URL(fileURLWithPath: folder).appendingPathComponent(
            "seed-\(outcome.seed)-\(outcome.success ? "success" : "failure").mp4").standardizedFileURL.path
    }

    /// The seeds this run evaluates: the whole range, or its shard.
    static func evaluationSeeds(_ options: Options) throws -> [UInt64] {
        guard options.episodes >= 1 else { throw FlowPolicyError.invalidConfiguration("episodes must be at least 1") }
        guard options.observationNoise >= 0, options.observationNoise.isFinite else {
            throw FlowPolicyError.invalidConfiguration(
                "the observation noise must be a standard deviation of 0 or more, got \(options.observationNoise)")
        }
        try options.disturbance?.validate(maximumSteps: options.task.maximumSteps)
        let firstSeed = options.firstSeed ?? options.task.evaluationSeed
        let all = (0..<UInt64(options.episodes)).map { firstSeed + $0 }
        guard let shard = options.shard else { return all }
        guard shard.count <= options.episodes else {
            throw FlowPolicyError.invalidConfiguration(
                "\(shard.count) shards of \(options.episodes) episodes would leave some empty; use at most "
                    + "\(options.episodes) shards")
        }
        return Array(all[shard.range(of: all.count)])
    }

    /// The noise seed of chunk `chunk` of the episode of seed `episode`: a function of the three numbers alone.
    public static func chunkNoiseSeed(policySeed: UInt64, episode: UInt64, chunk: Int) -> UInt64 {
        var generator = RandomSource(seed: policySeed ^ (UInt64(chunk + 1) &* 0x9E37_79B9_7F4A_7C15), stream: episode)
        return generator.next()
    }

    /// The content hash of a checkpoint's weights (shards of one evaluation have the same).
    static func parameterHash(_ checkpoint: Checkpoint) -> String {
        var hash = ContentHash()
        let parameters = checkpoint.parameters
        hash.mix(UnsafeRawBufferPointer(start: parameters.pointer, count: parameters.count * MemoryLayout<Float>.size))
        return hash.text
    }

    static func finish(_ report: inout Report, start: Double) -> Report {
        report.wallSeconds = monotonicSeconds() - start
        report.environmentStepsPerSecondOverall =
            Double(report.results.reduce(0) { $0 + $1.steps }) / report.wallSeconds
        return report
    }

    // MARK: Policy

    /// The lock-step batched rollouts: every unfinished episode's chunk, in seed order, in one call; each episode
    /// executes steps To - 1 ..< To - 1 + Ta (or, ensembling, the averaged plan).
    static func runLockStep(seeds: [UInt64], options: Options, policy: any ChunkSampler, name: String,
                            videoFolder: String? = nil, videoSize: (width: Int, height: Int) = (0, 0)) throws
        -> Report
    {
        let spec = policy.spec
        let probe = try options.task.makeEnvironment()
        let environmentSpec = probe.specification
        guard spec.observationDimensions == environmentSpec.observationDimensions,
              spec.actionDimensions == environmentSpec.actionDimensions
        else {
            throw FlowPolicyError.invalidConfiguration(
                "the policy takes \(spec.observationDimensions)-D observations and gives "
                    + "\(spec.actionDimensions)-D actions; task \(options.task.name) "
                    + "(\(environmentSpec.observationMode) observations) has "
                    + "\(environmentSpec.observationDimensions)-D observations and "
                    + "\(environmentSpec.actionDimensions)-D actions")
        }
        guard spec.cameras == options.task.cameraSpecs else {
            throw FlowPolicyError.invalidConfiguration(
                "the policy sees \(spec.cameras.shapeDescription); task \(options.task.name) has "
                    + "\(options.task.cameraSpecs.shapeDescription)")
        }
        let (To, Tp, Do, Da) =
            (spec.observationSteps, spec.predictionSteps, spec.observationDimensions, spec.actionDimensions)
        let Ta = options.actionSteps ?? spec.actionSteps
        guard Ta >= 1, To - 1 + Ta <= Tp else {
            throw FlowPolicyError.invalidConfiguration(
                "the actions executed per chunk must be between 1 and Tp - To + 1 = \(Tp - To + 1) for this policy, "
                    + "got \(Ta)")
        }
        let handOver = options.handOver ?? ChunkHandOver(rawValue: options.task.handOver) ?? .receding
        let ensemble: Bool
        switch handOver {
        case .receding: ensemble = false
        case .ensemble: ensemble = true
        case .continuation:
            throw FlowPolicyError.invalidConfiguration(
                "evaluation runs the receding or ensemble hand-over; continuation needs the control loop (run)")
        }
        if ensemble && options.actionSteps != nil {
            let reason = options.handOver == nil ? "this task's default is ensemble" : "ensembling replans instead"
            throw FlowPolicyError.invalidConfiguration(
                "the actions executed per chunk are for the receding hand-over (\(reason))")
        }
        if !ensemble && options.replanEvery != nil {
            throw FlowPolicyError.invalidConfiguration("replanning every few steps is for temporal ensembling")
        }
        let replanEvery = options.replanEvery ?? 1
        guard !ensemble || (replanEvery >= 1 && To - 1 + replanEvery <= Tp) else {
            throw FlowPolicyError.invalidConfiguration(
                "steps between chunks must be between 1 and Tp - To + 1 = \(Tp - To + 1) for this policy, got "
                    + "\(replanEvery)")
        }
        let stepsPerChunk = ensemble ? replanEvery : Ta
        // Chunks keep to the contract's bounds, as the server and the control loop make them (the environment then
        // clips to its own, which may be narrower).
        let bounds = try policy.contract.map { try SafetyLimits(contract: $0) }
        var executed = spec
        executed.actionSteps = Ta
        let threads = max(1, options.threads)
        let batchCapacity = min(seeds.count, policy.capacity)
        let progress = options.showProgress ? ProgressBar(title: "eval", total: seeds.count, unit: "episode") : nil
        var results: [EpisodeOutcome] = []
        var latencies: [Double] = []
        var batches: [Int] = []
        var chunkLatency = LatencyHistogram()
        var clampedValues = 0
        var busySeconds = 0.0

        // Waves of at most `batchCapacity` episodes in lock-step.
        for waveStart in stride(from: 0, to: seeds.count, by: batchCapacity) {
            let waveSeeds = Array(seeds[waveStart..<min(waveStart + batchCapacity, seeds.count)])
            let episodes = try waveSeeds.map { seed in
                // The chunks' bookkeeping of the control loop, with no inference delay (lead 0).
                let scheduler = try ActionChunkScheduler(
                    spec: executed, mode: ensemble ? .ensemble : .receding, lead: 0, replanInterval: replanEvery,
                    ensembleDecay: options.ensembleDecay)
                let rollout = try Rollout(task: options.task)
                try rollout.setDisturbance(options.disturbance)
                let episode = PolicyEpisode(
                    seed: seed, rollout: rollout, observationSteps: To,
                    noise: ObservationNoise(standardDeviation: options.observationNoise,
                                            seed: options.observationNoiseSeed ?? options.policySeed, episode: seed),
                    chunks: scheduler)
                if let videoFolder {
                    episode.video = try EpisodeVideo(
                        folder: videoFolder, seed: seed, environment: episode.rollout.environment,
                        width: videoSize.width, height: videoSize.height)
                }
                return episode
            }
            busySeconds += parallelEpisodes(episodes, threads: threads) { try $0.start() }
            let observations = FloatBuffer(count: episodes.count * To * Do)
            var frames = [UInt8](repeating: 0, count: episodes.count * To * spec.frameBytesPerStep)
            let chunks = FloatBuffer(count: episodes.count * Tp * Da)
            var noiseSeeds = [UInt64](repeating: 0, count: episodes.count)
            while true {
                let active = episodes.filter { !$0.finished }
                if active.isEmpty { break }
                for (row, episode) in active.enumerated() {
                    episode.copyWindow(into: observations.pointer + row * To * Do)
                    frames.withUnsafeMutableBufferPointer {
                        episode.copyFrames(into: $0.baseAddress! + row * To * spec.frameBytesPerStep)
                    }
                    noiseSeeds[row] = chunkNoiseSeed(policySeed: options.policySeed, episode: episode.seed,
                                                     chunk: episode.chunksSampled)
                    episode.chunksSampled += 1
                }
                let begin = monotonicNanoseconds()
                try frames.withUnsafeBufferPointer { frames in
                    try policy.sampleChunks(
                        observations: observations.pointer, frames: spec.cameras.isEmpty ? nil : frames.baseAddress,
                        batch: active.count, into: chunks.pointer, noiseSeeds: noiseSeeds)
                }
                let elapsed = monotonicNanoseconds() - begin
                clampedValues += bounds?.clamp(chunks.pointer, rows: active.count * Tp) ?? 0
                latencies.append(Double(elapsed) / 1e6)
                for _ in active { chunkLatency.record(nanoseconds: elapsed) }
                batches.append(active.count)
                for (row, episode) in active.enumerated() {
                    episode.chunks.accept(chunk: chunks.pointer + row * Tp * Da, requestStep: episode.steps)
                    episode.chunkStep = episode.steps
                }
                busySeconds += parallelEpisodes(active, threads: threads) { episode in
                    for _ in 0..<stepsPerChunk where !episode.finished { try episode.stepPlanned() }
                }
                progress?.update(
                    completed: results.count + episodes.filter(\.finished).count,
                    status: "success \(results.filter(\.success).count + episodes.filter(\.success).count)")
            }
            for episode in episodes {
                try episode.video?.finish(path: videoPath(folder: videoFolder!, outcome: episode.outcome),
                                          outcome: episode.success ? "success" : "failure")
            }
            results += episodes.map(\.outcome)
        }
        progress?.finish(status: "success \(results.filter(\.success).count)/\(results.count)")
        var report = try makeReport(
            options: options, environment: probe, results: results, policy: name,
            latencies: latencies, batches: batches, busySeconds: busySeconds, threads: threads,
            evaluationsPerChunk: policy.evaluationsPerChunk)
        report.solver = policy.solver.rawValue
        report.solverSteps = policy.solverSteps
        report.policySeed = options.policySeed
        report.chunkLatency = chunkLatency
        report.clampedChunkValues = clampedValues
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
                do { try body(episode) } catch { episode.rollout.fail("\(error)") }
                index += threads
            }
            busy[worker] = monotonicSeconds() - begin
        }
        return busy.reduce(0, +)
    }

    // MARK: Expert

    static func runExpert(seeds: [UInt64], options: Options) throws -> Report {
        let threads = max(1, min(options.threads, seeds.count))
        let progress = options.showProgress
            ? ProgressBar(title: "eval expert", total: seeds.count, unit: "episode") : nil
        let workers = try (0..<threads).map { _ in try ExpertRunner(task: options.task) }
        for worker in workers { try worker.rollout.setDisturbance(options.disturbance) }
        let queue = WorkQueue(count: seeds.count)
        var results = [EpisodeOutcome?](repeating: nil, count: seeds.count)
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
        return try makeReport(options: options, environment: workers[0].rollout.environment, results: finished,
                          policy: "scripted expert", latencies: [], batches: [],
                          busySeconds: busy.reduce(0, +), threads: threads, evaluationsPerChunk: nil)
    }

    static func makeReport(
        options: Options, environment: any Environment, results: [EpisodeOutcome], policy: String,
        latencies: [Double], batches: [Int],
        busySeconds: Double, threads: Int, evaluationsPerChunk: Int?
    ) throws -> Report {
        let specification = environment.specification
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
            task: options.task.name, policy: policy, checkpoint: nil,
            solver: usesPolicy ? options.method.rawValue : nil, solverSteps: usesPolicy ? options.steps : nil,
            evaluationsPerChunk: evaluationsPerChunk, actionSteps: nil, observationNoise: options.observationNoise,
            policySeed: nil, checkpointHash: nil,
            episodes: results.count, seeds: [results.first?.seed ?? 0, results.last?.seed ?? 0],
            shard: options.shard?.description,
            shardOf: options.shard.map { _ in
                let first = options.firstSeed ?? options.task.evaluationSeed
                return [first, first + UInt64(options.episodes) - 1]
            },
            success: ProportionEstimate(successes: results.filter(\.success).count, trials: results.count),
            meanMaxProgress: MeanEstimate(results.map(\.maxProgress),
                                          bounds: 0...(specification.progressLevels.last ?? 1)),
            progressName: "max \(specification.progressName)", progressLevels: levels,
            meanStepToProgressLevels: meanSteps,
            meanEpisodeLength: Double(steps) / Double(max(results.count, 1)),
            clippedActions: results.reduce(0) { $0 + $1.clippedActions },
            failedEpisodes: results.filter { $0.failure != nil }.count,
            inferenceLatencyMilliseconds: latencies.isEmpty ? nil : LatencySummary(latencies),
            meanBatch: batches.isEmpty ? nil : Double(batches.reduce(0, +)) / Double(batches.count),
            chunkLatency: nil, clampedChunkValues: nil,
            environmentStepsPerSecondPerCore: busySeconds > 0 ? Double(steps) / busySeconds : 0,
            environmentStepsPerSecondOverall: 0, threads: threads, wallSeconds: 0, longestShardSeconds: nil,
            videos: nil, diffusionPolicyScore: try DiffusionPolicyScore.estimate(results, task: options.task),
            observationNoiseUnits: options.observationNoise > 0 ? ObservationNoise.units(of: options.task) : nil,
            observationNoiseSeed: options.observationNoise > 0 ? options.observationNoiseSeed : nil,
            disturbance: options.disturbance.map { disturbance in
                DisturbanceSummary(
                    step: disturbance.step,
                    push: (environment as? any DisturbableEnvironment)?.disturbanceDescription ?? "none",
                    disturbedEpisodes: results.filter { $0.steps > disturbance.step }.count)
            },
            results: results)
    }
}

/// A policy-driven episode: its rollout, the observation window the policy sees, and the chunks so far.
final class PolicyEpisode {
    let rollout: Rollout
    var window: ObservationWindow
    /// The frames of the window's steps, for a task with cameras.
    var frameWindow: FrameWindow?
    /// Which action each step executes (receding horizon: steps To - 1 ..< To - 1 + Ta of the newest chunk;
    /// ensembling: the weighted average of the chunks covering the step).
    let chunks: ActionChunkScheduler
    let seed: UInt64
    var noise: ObservationNoise
    /// Chunks sampled for this episode so far (the next one's noise index), and the step the newest was taken at.
    var chunksSampled = 0
    var chunkStep = -1
    /// Records a frame before each step, when the episode is filmed.
    var video: EpisodeVideo?
    /// The observation the policy sees (noise added) and the action to execute, `[Do]` and `[Da]`.
    var observation: [Float]
    var action: [Float]

    init(seed: UInt64, rollout: Rollout, observationSteps: Int, noise: ObservationNoise,
         chunks: ActionChunkScheduler) {
        self.rollout = rollout
        self.chunks = chunks
        self.seed = seed
        let specification = rollout.specification
        window = ObservationWindow(steps: observationSteps, dimensions: specification.observationDimensions)
        if rollout.frames != nil {
            frameWindow = FrameWindow(steps: observationSteps, bytesPerStep: rollout.frameBytes)
        }
        self.noise = noise
        observation = [Float](repeating: 0, count: specification.observationDimensions)
        action = [Float](repeating: 0, count: specification.actionDimensions)
    }

    var finished: Bool { rollout.isDone }
    var success: Bool { rollout.outcome.success }
    var steps: Int { rollout.outcome.steps }
    var outcome: EpisodeOutcome { rollout.outcome }

    func start() throws {
        try rollout.reset(seed: seed)
        observe()
        observation.withUnsafeBufferPointer { window.reset(to: $0.baseAddress!) }
        if let frames = rollout.frames { frameWindow?.reset(to: frames) }
    }

    /// Executes the chunks' action for the current step.
    func stepPlanned() throws {
        try video?.record(step: steps, progress: rollout.outcome.finalProgress,
                          progressName: rollout.specification.progressName, chunk: chunksSampled - 1,
                          newChunk: steps == chunkStep)
        guard chunks.action(at: steps, into: &action) else {
            throw FlowPolicyError.invalidConfiguration("no chunk covers step \(steps)")
        }
        guard action.withUnsafeBufferPointer({ rollout.step($0.baseAddress!) }) != nil else { return }
        observe()
        observation.withUnsafeBufferPointer { window.push($0.baseAddress!) }
        if let frames = rollout.frames { frameWindow?.push(frames) }
    }

    func copyWindow(into destination: UnsafeMutablePointer<Float>) {
        window.values.withUnsafeBufferPointer { destination.update(from: $0.baseAddress!, count: $0.count) }
    }

    /// `[To, frame bytes]` of the window's steps (nothing for a task without cameras).
    func copyFrames(into destination: UnsafeMutablePointer<UInt8>) {
        frameWindow?.bytes.withUnsafeBufferPointer { destination.update(from: $0.baseAddress!, count: $0.count) }
    }

    /// The rollout's observation, with the evaluation's observation noise.
    private func observe() {
        observation.withUnsafeMutableBufferPointer { noisy in
            noise.apply(rollout.observation, into: noisy.baseAddress!, count: noisy.count)
        }
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
