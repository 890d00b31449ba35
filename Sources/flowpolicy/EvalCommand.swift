import ArgumentParser
import FlowPolicy
import Foundation
import FlowPolicyCLI
import PolicyLab
import PolicyRuntime
import SimBridge

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Success rate of a policy (or the scripted expert) on seeded episodes of a task.",
        discussion: """
            Without --checkpoint, evaluates the task's shipped policy (tasks/<task>/policy.safetensors). Episodes use \
            the task's evaluation seeds unless --seed is given; seeds the checkpoint's training data was collected \
            with are refused. Success rates come with 95% Wilson intervals.
            """)

    @OptionGroup var taskOptions: TaskOptions

    @Option(help: "Policy checkpoint (default: the task's shipped policy).")
    var checkpoint: String?

    @Flag(help: "Evaluate the task's scripted expert instead of a policy.")
    var expert = false

    @OptionGroup var episodeOptions: EpisodeOptions

    @OptionGroup var sampling: SolverOptions

    @OptionGroup var precision: PrecisionOptions

    @Option(name: .customLong("action-steps"), parsing: .unconditional,
            help: "Actions executed per chunk (default: the checkpoint's Ta).")
    var actionSteps: Int?

    @Option(name: .customLong("hand-over"), help: ArgumentHelp(
        "Chunk hand-over: receding (Ta actions per chunk) or ensemble (default: the task's).",
        discussion: "The task's default is task.yaml policy.hand_over, receding when it names none."))
    var handOver: ChunkHandOver?

    @Option(name: .customLong("replan-every"), parsing: .unconditional,
            help: "Temporal ensembling: steps between chunks (default: 1).")
    var replanEvery: Int?

    @Option(name: .customLong("ensemble-decay"), parsing: .unconditional,
            help: "Temporal ensembling: k in the weights exp(-k i), i = 0 for the oldest chunk.")
    var ensembleDecay: Float = 0.01

    @Option(name: .customLong("observation-noise"), parsing: .unconditional, help: ArgumentHelp(
        "Std. dev. of Gaussian noise on the policy's observations, in their own units (Push-T: world units).",
        discussion: "Added to every number of every observation the policy sees (not to camera frames, not to what "
            + "the task scores), in the units of task.yaml's interface.observations: Push-T world units of the "
            + "512 x 512 field, Robomimic metres and quaternion components, the kitchen radians and metres. Drawn "
            + "per episode from the noise seed and the episode's seed: the same seed gives the same noise. The "
            + "summary also gives σ where it is largest in the policy's normalized inputs: on a number the "
            + "demonstrations hardly vary, a small σ is many normalized units."))
    var observationNoise: Float = 0

    @Option(name: .customLong("observation-noise-seed"), parsing: .unconditional,
            help: "Seed of the observation noise (default: the policy seed).", transform: seedArgument)
    var observationNoiseSeed: UInt64?

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Push every episode once, after this many control steps (0 = before the first action).",
        discussion: "Push-T: the T block shoved 30 world units in a random direction and turned 15 degrees. "
            + "Robomimic and Franka Kitchen: the arm bumped, its 7 joint velocities changed in a random direction by "
            + "3 rad/s (norm; Robomimic) or 10 rad/s (the kitchen's heavily damped joints), which puts the hand "
            + "centimetres off its course. The direction is drawn from the episode's seed, so every policy meets the "
            + "same push; episodes that end before the step are not pushed (the report counts those that were)."))
    var disturbance: Int?

    @Option(name: .customLong("policy-seed"), parsing: .unconditional,
            help: "Seed of the policy's sampling noise. (default: 0)", transform: seedArgument)
    var policySeed: UInt64 = 0

    @OptionGroup var threading: ThreadOptions

    @Option(help: ArgumentHelp(
        "Evaluate only part I of N of the seeds (I from 0), e.g. 2/4.",
        discussion: "Contiguous parts, the first ones one seed longer when N does not divide the episodes. "
            + "`flowpolicy merge` puts the parts' --json reports together into the unsharded run's report."),
            transform: { text in
                guard let shard = Shard(text) else {
                    throw ValidationError("--shard must be I/N with 0 <= I < N, e.g. 0/4; got \(text)")
                }
                return shard
            })
    var shard: Shard?

    @Option(help: ArgumentHelp(
        "Write MP4 videos of some episodes to this folder (ffmpeg).",
        discussion: "Failures first: by default the first 3 failures and 2 successes (--video-episodes), recorded by "
            + "running those seeds again after the evaluation; the report lists them."))
    var video: String?

    @Option(name: .customLong("video-episodes"), parsing: .unconditional, help: "Episodes to film. (default: 5)")
    var videoEpisodes: Int?

    @Option(name: .customLong("video-size"), parsing: .unconditional,
            help: "Width and height of the videos in pixels, even. (default: 256)")
    var videoSize: Int?

    @Option(help: ArgumentHelp(
        "Evaluate the policy served at this endpoint (flowpolicy serve), e.g. tcp://host:5555.",
        discussion: "The server's solver and K are used; the outcomes equal the in-process evaluation of the same "
            + "checkpoint with the same seeds, --policy-seed and --threads."))
    var remote: String?

    @Option(name: .customLong("remote-timeout"), parsing: .unconditional,
            help: "Seconds to wait for the policy server's replies.")
    var remoteTimeout: Double = 5

    @Option(name: .customLong("remote-key"),
            help: "The policy server's public key (its NAME.key file): connect with CURVE.")
    var remoteKey: String?

    @Option(name: .customLong("secret-key"), help: "This process's key pair (NAME.key_secret), for CURVE.")
    var secretKey: String?

    @OptionGroup var report: ReportOptions

    func validate() throws {
        if expert && checkpoint != nil { throw ValidationError("give --checkpoint or --expert, not both") }
        if remote != nil && (expert || checkpoint != nil) {
            throw ValidationError("--remote evaluates the served policy; do not give --checkpoint or --expert")
        }
        try Check.integer("--action-steps", actionSteps, in: 1...1000)
        try Check.integer("--video-episodes", videoEpisodes, in: 1...1000)
        try Check.integer("--video-size", videoSize, in: 16...4096)
        if let videoSize, videoSize % 2 != 0 {
            throw ValidationError("--video-size must be even (H.264 in yuv420p), got \(videoSize)")
        }
        try Check.integer("--replan-every", replanEvery, in: 1...1000)
        try Check.real("--ensemble-decay", ensembleDecay, in: .from(0))
        try Check.real("--observation-noise", observationNoise, in: .from(0))
        try Check.integer("--disturbance", disturbance, in: 0...1_000_000, unit: "control steps")
        if observationNoiseSeed != nil && observationNoise == 0 {
            throw ValidationError("--observation-noise-seed is for --observation-noise SIGMA")
        }
        if expert && observationNoise > 0 {
            throw ValidationError("--observation-noise is for a policy's observations; the expert reads the simulation")
        }
        try Check.real("--remote-timeout", remoteTimeout, in: .from(0.001, through: 3600), unit: "seconds")
        try Check.inputFile("--checkpoint", checkpoint)
        try Check.inputFile("--remote-key", remoteKey)
        try Check.inputFile("--secret-key", secretKey)
        try Check.outputFolder("--video", video)
        if video == nil && (videoEpisodes != nil || videoSize != nil) {
            throw ValidationError("--video-episodes and --video-size are for --video DIR")
        }
        if video != nil && expert { throw ValidationError("--video films the policy's episodes, not the expert's") }
    }

    func run() throws {
        try reportingErrors {
            let task = try taskOptions.description()
            if let disturbance, disturbance >= task.maximumSteps {
                throw ValidationError("--disturbance must be below the episode length of \(task.name), "
                    + "\(task.maximumSteps) control steps; got \(disturbance)")
            }
            var options = EvaluationSession.Options(task: task)
            options.episodes = episodeOptions.episodes
            options.firstSeed = episodeOptions.seed
            options.steps = sampling.steps
            options.method = sampling.solver
            options.precision = precision.precision
            options.actionSteps = actionSteps
            options.handOver = handOver
            options.replanEvery = replanEvery
            options.ensembleDecay = ensembleDecay
            options.observationNoise = observationNoise
            options.observationNoiseSeed = observationNoiseSeed
            options.disturbance = disturbance.map { Disturbance(step: $0) }
            options.policySeed = policySeed
            options.threads = threading.threads
            options.shard = shard
            if let video {
                var videoOptions = EvaluationSession.VideoOptions(folder: video)
                videoOptions.episodes = videoEpisodes ?? videoOptions.episodes
                videoOptions.width = videoSize ?? videoOptions.width
                videoOptions.height = videoSize ?? videoOptions.height
                options.video = videoOptions
            }
            let r: EvaluationSession.Report
            if expert {
                r = try EvaluationSession.runExpert(options)
            } else if let remote {
                let credentials = Credentials(keyPair: try secretKey.map { try CurveKeyPair.read(secretFile: $0) })
                r = try EvaluationSession.run(
                    options, remote: remote, timeoutMilliseconds: Int((remoteTimeout * 1000).rounded()),
                    security: credentials.clientSecurity(
                        serverPublicKey: remoteKey.map { try CurveKeyPair.readPublicKey(file: $0) }))
            } else {
                let path = try checkpoint ?? shippedPolicy(task: task)
                FileHandle.standardError.write(Data("eval: \(precision.description)\n".utf8))
                r = try EvaluationSession.run(options, checkpoint: CheckpointReader.read(path), path: path)
            }
            print(evaluationSummary(r))
            if let json = report.json { try writeJSONReport(r, to: json) }
        }
    }
}

/// The printed summary of an evaluation report (eval, merge).
func evaluationSummary(_ r: EvaluationSession.Report) -> String {
    var lines = ["\(r.task): \(r.policy)\(r.checkpoint.map { " \($0)" } ?? "")"]
    if let solver = r.solver, let k = r.solverSteps, let evaluations = r.evaluationsPerChunk {
        let handOver = r.replanEvery.map { "temporal ensembling, a chunk every \($0) steps" }
            ?? "\(r.actionSteps ?? 0) actions executed per chunk"
        lines.append("  solver          \(solver) K=\(k) (\(evaluations) network evaluations per chunk), "
            + "\(handOver)")
        if let precision = r.precision.flatMap(Precision.init(rawValue:)) {
            lines.append("  precision       \(precision.rawValue) (\(precision.kernel) kernel)")
        }
    }
    if r.observationNoise > 0 {
        lines.append("  obs. noise      Gaussian σ = \(r.observationNoise)"
            + (r.observationNoiseUnits.map { " (\($0))" } ?? "") + ", seeded per episode by "
            + (r.observationNoiseSeed.map { "noise seed \($0)" } ?? "the policy seed"))
        if let normalized = r.observationNoiseNormalized {
            lines.append("                  up to σ = \(String(format: "%.3g", normalized.standardDeviation)) in the "
                + "normalized inputs (observation \(normalized.observation): range "
                + "\(String(format: "%.3g", normalized.trainingRange)) in the training data)")
        }
    }
    if let disturbance = r.disturbance {
        lines.append("  disturbance     after \(disturbance.step) control steps, \(disturbance.disturbedEpisodes) of "
            + "\(r.episodes) episodes pushed (the others ended sooner):")
        lines.append("                  \(disturbance.push)")
    }
    lines += [
        "  episodes        \(r.episodes) (seeds \(r.seeds[0])-\(r.seeds[1])"
            + (r.shard.map { ", shard \($0) of seeds \(r.shardOf![0])-\(r.shardOf![1])" } ?? "") + ")",
        "  success         \(r.success.text)",
        "  \(r.progressName.padding(toLength: max(15, r.progressName.count), withPad: " ", startingAt: 0)) "
            + "\(r.meanMaxProgress.text) (mean over episodes)",
    ]
    if let score = r.diffusionPolicyScore {
        lines.append("  DP score        \(score.text) (Diffusion Policy's Push-T score: mean of min(max coverage / "
            + "0.95, 1))")
    }
    for name in r.progressLevels.keys.sorted() {
        let step = r.meanStepToProgressLevels[name].map {
            String(format: ", reached at step %.1f on average", $0)
        }
        lines.append("  \(name.padding(toLength: 15, withPad: " ", startingAt: 0)) "
            + "\(r.progressLevels[name]!.text)\(step ?? "")")
    }
    lines += [
        String(format: "  episode length  %.1f steps", r.meanEpisodeLength),
        "  clipped actions \(r.clippedActions) by the environment, \(r.clampedChunkValues ?? 0) chunk numbers to the "
            + "contract's bounds; failed episodes \(r.failedEpisodes)",
    ]
    if let latency = r.chunkLatency, let batch = r.meanBatch {
        lines.append("  inference       \(latency.summary.text(milliseconds: true)) per chunk's call "
                     + String(format: "(mean batch %.0f)", batch))
    }
    lines.append(String(format: "  env steps/s     %.0f per core, %.0f overall (%d threads)",
                        r.environmentStepsPerSecondPerCore, r.environmentStepsPerSecondOverall, r.threads))
    lines.append("  wall time       \(formatDuration(r.wallSeconds))"
                 + (r.longestShardSeconds.map { " over the shards, the longest \(formatDuration($0))" } ?? ""))
    for result in r.results where result.failure != nil {
        lines.append("  seed \(result.seed) failed: \(result.failure!)")
    }
    return lines.joined(separator: "\n")
}
