import ArgumentParser
import FlowPolicy
import Foundation
import FlowPolicyCLI
import PolicyLab
import PolicyRuntime
import SimBridge

extension FineTuningConfiguration.Mode: ExpressibleByArgument {}
extension FineTuningConfiguration.Coupling: ExpressibleByArgument {}

struct FineTuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune a flow-matching policy by maximum likelihood of its deployed sampler's reconstructions.",
        discussion: """
            Seed 000 (METHODS.md sections 2-3). --mode mle trains every weight; --mode residual freezes the network \
            and trains a contracting residual head r = -K(t,o)(x - m(t,o)), K = diag(softplus(d) + ε) + U Uᵀ. The \
            loss mean|Φ^K(z;o) - a|²/(2σ²) + λ_FM L_FM + λ_prox|θ - θ_start|² is taken through the K unrolled \
            steps of the deployed solver. Every 20th episode is held out to report the reconstruction error before and \
            after.
            """)

    @Option(help: "Pre-trained flow-matching checkpoint.")
    var checkpoint: String

    @Option(help: "Dataset (the one the policy was trained on, or another of the same task).")
    var dataset: String

    @Option(help: "Fine-tuned checkpoint to write.")
    var out: String

    @Option(help: "mle (all weights) or residual (contracting head on the frozen network).")
    var mode: FineTuningConfiguration.Mode = .mle

    @Option(parsing: .unconditional, help: "Deployed solver steps K the loss is taken through.")
    var steps: Int = 2

    @Option(help: "Deployed solver: euler or midpoint.")
    var solver: SolverMethod = .euler

    @Option(help: "reconstruction (latents encoded by the frozen flow) or independent (z ~ N(0, I)).")
    var coupling: FineTuningConfiguration.Coupling = .reconstruction

    @Option(parsing: .unconditional, help: "σ of the reconstruction likelihood (normalized action units).")
    var sigma: Float = 0.1

    @Option(name: .customLong("lambda-fm"), parsing: .unconditional, help: "Weight of the flow-matching loss.")
    var lambdaFM: Float = 1

    @Option(name: .customLong("lambda-prox"), parsing: .unconditional, help: "Weight of the proximal term.")
    var lambdaProx: Float = 0

    @Option(name: .customLong("train-steps"), parsing: .unconditional, help: "Optimization steps.")
    var trainSteps: Int = 3000

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Batch size.")
    var batchSize: Int = 256

    @Option(name: .customLong("lr"), parsing: .unconditional,
            help: "Peak learning rate (default: 3e-5 for mle, 3e-4 for residual).")
    var learningRate: Float?

    @Option(parsing: .unconditional, help: "Warm-up steps.")
    var warmup: Int = 100

    @Option(name: .customLong("head-rank"), parsing: .unconditional, help: "Rank of U in the residual head.")
    var headRank: Int = 4

    @Option(name: .customLong("head-epsilon"), parsing: .unconditional,
            help: "ε: the head's guaranteed contraction rate.")
    var headEpsilon: Float = 0.1

    @Option(name: .customLong("encode-steps"), parsing: .unconditional,
            help: "RK4 steps encoding the reconstruction latents (the summary reports the round-trip error).")
    var encodeSteps: Int = 16

    @Option(parsing: .unconditional, help: "Random seed. (default: 0)", transform: seedArgument)
    var seed: UInt64 = 0

    @OptionGroup var threading: ThreadOptions

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.integer("--steps", steps, in: 1...100)
        try Check.real("--sigma", sigma, in: .above(0, upTo: 100))
        try Check.real("--lambda-fm", lambdaFM, in: .from(0, through: 1000))
        try Check.real("--lambda-prox", lambdaProx, in: .from(0, through: 1000))
        try Check.integer("--train-steps", trainSteps, in: 1...100_000_000)
        try Check.integer("--batch-size", batchSize, in: 1...16_384)
        try Check.real("--lr", learningRate, in: .above(0, upTo: 1))
        try Check.integer("--warmup", warmup, in: 0...100_000_000)
        try Check.integer("--head-rank", headRank, in: 0...256)
        try Check.real("--head-epsilon", headEpsilon, in: .above(0, upTo: 100))
        try Check.integer("--encode-steps", encodeSteps, in: 1...10_000)
        try Check.inputFile("--checkpoint", checkpoint)
        try Check.inputFile("--dataset", dataset)
        try Check.output("--out", out)
    }

    func run() throws {
        try reportingErrors {
            var options = FineTuneSession.Options(checkpointPath: checkpoint, datasetPath: dataset, outputPath: out)
            var c = FineTuningConfiguration()
            c.mode = mode
            c.coupling = coupling
            c.method = solver
            c.steps = steps
            c.sigma = sigma
            c.lambdaFM = lambdaFM
            c.lambdaProx = lambdaProx
            c.training.steps = trainSteps
            c.training.batchSize = batchSize
            c.training.learningRate = learningRate ?? (mode == .mle ? 3e-5 : 3e-4)
            c.training.warmupSteps = warmup
            c.training.seed = seed
            c.training.threads = threading.threads
            c.headRank = headRank
            c.headEpsilon = headEpsilon
            options.configuration = c
            options.encodingSteps = encodeSteps
            options.command = commandLine
            let s = try FineTuneSession.run(options)
            print("""
                fine-tuned (\(s.mode), \(s.coupling) coupling) through \(s.solver): σ \(s.sigma), \
                λ_FM \(s.lambdaFM), λ_prox \(s.lambdaProx), \(s.steps) steps on \(s.trainingPairs) pairs\
                \(s.latentsFromCache ? " (latents from cache)" : "")
                  latent encoding round-trip error \(String(format: "%.2e", s.encodingRoundTripError)) (held out, RK4)
                  held-out reconstruction error \(String(format: "%.5f", s.heldOutErrorBefore)) -> \
                \(String(format: "%.5f", s.heldOutErrorAfter)) (\(s.heldOutPairs) pairs, normalized units)
                  time \(formatDuration(s.seconds))
                wrote \(s.output)
                """)
            if let json = report.json { try writeJSONReport(s, to: json) }
        }
    }
}

struct CertifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certify",
        abstract: "Contraction rate and disturbance gains of a policy's sampling flow on windows from a task.",
        discussion: """
            μ = λ_max(sym J_base) - (the residual head's guaranteed rate) along the deployed sampler's trajectories \
            (negative: contracting), and |ΔΦ| / |δ| for a small deviation δ of the latent and of the observation \
            window (normalized units).
            """)

    @Option(help: "Checkpoint.")
    var checkpoint: String

    @OptionGroup var taskOptions: TaskOptions

    @Option(parsing: .unconditional, help: "Number of observation windows.")
    var windows: Int = 32

    @Option(parsing: .unconditional, help: "Solver steps K.")
    var steps: Int = 4

    @Option(help: "Solver.")
    var solver: SolverMethod = .euler

    @Option(parsing: .unconditional, help: "Size of the injected deviations (normalized units).")
    var perturbation: Float = 1e-2

    @Option(parsing: .unconditional, help: "Random seed. (default: 0)", transform: seedArgument)
    var seed: UInt64 = 0

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.integer("--windows", windows, in: 1...100_000)
        try Check.integer("--steps", steps, in: 1...10_000)
        try Check.real("--perturbation", perturbation, in: .above(0, upTo: 1))
        try Check.inputFile("--checkpoint", checkpoint)
    }

    func run() throws {
        try reportingErrors {
            var options = CertifySession.Options(checkpointPath: checkpoint, task: try taskOptions.description())
            options.windows = windows
            options.steps = steps
            options.method = solver
            options.perturbation = perturbation
            options.seed = seed
            let r = try CertifySession.run(options)
            let row = { (values: [Float]) in values.map { String(format: "%7.3f", $0) }.joined(separator: " ") }
            print("""
                \(r.checkpoint) (\(r.method)) on \(r.task), \(r.solver), \(r.windows) windows
                  step k                      \
                \((0..<r.contractionRateByStep.count).map { String(format: "%7d", $0) }.joined(separator: " "))
                  λ_max(sym J_base)           \(row(r.baseExpansionByStep))
                  head's guaranteed rate      \(row(r.headRateByStep))
                  μ (negative: contracting)   \(row(r.contractionRateByStep))
                  mean μ \(String(format: "%.3f", r.meanContractionRate)), \
                largest \(String(format: "%.3f", r.largestContractionRate)), \
                contracting at \(String(format: "%.0f", 100 * r.contractingShare))% of points
                  disturbance gain: latent \(r.latentGain.text), observation \(r.observationGain.text)
                """)
            if let json = report.json { try writeJSONReport(r, to: json) }
        }
    }
}
