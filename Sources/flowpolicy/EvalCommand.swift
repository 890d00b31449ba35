import ArgumentParser
import FlowPolicy
import Foundation
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

    @Option(help: "Task (\(TaskRegistry.names.joined(separator: ", "))).")
    var task: String

    @Option(help: "Policy checkpoint (default: the task's shipped policy).")
    var checkpoint: String?

    @Flag(help: "Evaluate the task's scripted expert instead of a policy.")
    var expert = false

    @Option(help: "Number of episodes.")
    var episodes: Int = 200

    @Option(help: "First episode seed (default: the task's evaluation seeds).")
    var seed: UInt64?

    @Option(help: "Solver steps K per chunk.")
    var steps: Int = 10

    @Option(help: "Fixed-step solver: euler, midpoint or rk4.")
    var solver: SolverMethod = .euler

    @Option(name: .customLong("action-steps"), help: "Actions executed per chunk (default: the checkpoint's Ta).")
    var actionSteps: Int?

    @Option(name: .customLong("hand-over"), help: ArgumentHelp(
        "Chunk hand-over: receding (Ta actions per chunk) or ensemble (default: the task's).",
        discussion: "The task's default is task.yaml policy.hand_over, receding when it names none."))
    var handOver: ChunkHandOver?

    @Option(name: .customLong("replan-every"), help: "Temporal ensembling: steps between chunks (default: 1).")
    var replanEvery: Int?

    @Option(name: .customLong("ensemble-decay"), help: "Temporal ensembling: k in the weights exp(-k i), i = 0 for the oldest chunk.")
    var ensembleDecay: Float = 0.01

    @Option(name: .customLong("observation-noise"), help: "Std. dev. of Gaussian noise on the policy's observations.")
    var observationNoise: Float = 0

    @Option(name: .customLong("policy-seed"), help: "Seed of the policy's sampling noise.")
    var policySeed: UInt64 = 0

    @Option(help: "Worker threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: ArgumentHelp(
        "Evaluate the policy served at this endpoint (flowpolicy serve), e.g. tcp://host:5555.",
        discussion: "The server's solver and K are used; the outcomes equal the in-process evaluation of the same "
            + "checkpoint with the same seeds, --policy-seed and --threads."))
    var remote: String?

    @Option(help: "Write the report, with every episode's result, as JSON to this path.")
    var json: String?

    func run() throws {
        try reportingErrors {
            if expert && checkpoint != nil { throw ValidationError("give --checkpoint or --expert, not both") }
            if remote != nil && (expert || checkpoint != nil) {
                throw ValidationError("--remote evaluates the served policy; do not give --checkpoint or --expert")
            }
            var path = checkpoint
            if !expert && path == nil && remote == nil {
                path = try TaskFolder(task: task).requireFile("policy.safetensors")
            }
            var options = EvaluationSession.Options(task: task, checkpointPath: expert ? nil : path)
            options.episodes = episodes
            options.firstSeed = seed
            options.steps = steps
            options.method = solver
            options.actionSteps = actionSteps
            options.handOver = handOver
            options.replanEvery = replanEvery
            options.ensembleDecay = ensembleDecay
            options.observationNoise = observationNoise
            options.policySeed = policySeed
            options.threads = threads
            options.remote = remote
            let r = try EvaluationSession.run(options)
            var lines = ["\(r.task): \(r.policy)\(r.checkpoint.map { " \($0)" } ?? "")"]
            if let solver = r.solver, let k = r.solverSteps, let evaluations = r.evaluationsPerChunk {
                let handOver = r.replanEvery.map { "temporal ensembling, a chunk every \($0) steps" }
                    ?? "\(r.actionSteps ?? 0) actions executed per chunk"
                lines.append("  solver          \(solver) K=\(k) (\(evaluations) network evaluations per chunk), \(handOver)")
            }
            if r.observationNoise > 0 { lines.append("  observation noise  σ = \(r.observationNoise)") }
            lines += [
                "  episodes        \(r.episodes) (seeds \(r.seeds[0])-\(r.seeds[1]))",
                "  success         \(r.success.text)",
                "  \(r.progressName.padding(toLength: max(15, r.progressName.count), withPad: " ", startingAt: 0)) \(r.meanMaxProgress.text) (mean over episodes)",
            ]
            for name in r.progressLevels.keys.sorted() {
                let step = r.meanStepToProgressLevels[name].map { String(format: ", reached at step %.1f on average", $0) }
                lines.append("  \(name.padding(toLength: 15, withPad: " ", startingAt: 0)) \(r.progressLevels[name]!.text)\(step ?? "")")
            }
            lines += [
                String(format: "  episode length  %.1f steps", r.meanEpisodeLength),
                "  clipped actions \(r.clippedActions); failed episodes \(r.failedEpisodes)",
            ]
            if let latency = r.inferenceLatencyMilliseconds, let batch = r.meanBatch {
                lines.append(String(format: "  inference       p50 %.2f ms, p99 %.2f ms per batched call (mean batch %.0f)",
                                    latency.p50, latency.p99, batch))
            }
            lines.append(String(format: "  env steps/s     %.0f per core, %.0f overall (%d threads)",
                                r.environmentStepsPerSecondPerCore, r.environmentStepsPerSecondOverall, r.threads))
            lines.append("  wall time       \(formatDuration(r.wallSeconds))")
            for result in r.results where result.failure != nil {
                lines.append("  seed \(result.seed) failed: \(result.failure!)")
            }
            print(lines.joined(separator: "\n"))
            if let json { try writeJSONReport(r, to: json) }
        }
    }
}
