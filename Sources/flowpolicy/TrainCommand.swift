import ArgumentParser
import FlowPolicy
import Foundation
import FlowPolicyCLI
import PolicyLab
import PolicyRuntime

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a conditional flow-matching policy on a dataset and write its checkpoint.",
        discussion: """
            Horizons default to the dataset's task (its task.yaml; 1/1/1 for toy-mixture). The checkpoint holds the \
            EMA weights and is written only when training finishes, atomically. --method lfm trains a Local Flow \
            Matching chain of --blocks blocks whose total parameter count matches the FM network given by --hidden \
            and --depth; --steps is then the total over all blocks.
            """)

    @Option(help: "fm (flow matching) or lfm (Local Flow Matching chain).")
    var method: TrainingSession.Method = .fm

    @Option(help: "LFM: blocks in the chain (the last is the free block to N(0, I)).")
    var blocks: Int = 4

    @Option(name: .customLong("ou-step"), help: "LFM: OU step sizes γ_n = c ρ^(n-1), given as c,ρ.")
    var ouStep: String = "0.1,1.5"

    @Option(help: "Dataset file (from `flowpolicy collect`, or any file in the same layout).")
    var dataset: String

    @Option(help: "Checkpoint file to write.")
    var out: String

    @Option(help: "Optimization steps.")
    var steps: Int = 20_000

    @Option(name: .customLong("batch-size"), help: "Batch size.")
    var batchSize: Int = 256

    @Option(name: .customLong("lr"), help: "Peak learning rate (AdamW, cosine schedule).")
    var learningRate: Float = 1e-4

    @Option(help: "Warm-up steps of the learning-rate schedule.")
    var warmup: Int = 500

    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay.")
    var weightDecay: Float = 1e-6

    @Option(help: "Hidden width H of the ResMLP-FiLM network (LFM: of the FM network the chain's size matches).")
    var hidden: Int = 256

    @Option(help: "Residual blocks per network.")
    var depth: Int = 4

    @Option(name: .customLong("time-embedding"), help: "Size of the sinusoidal time embedding.")
    var timeEmbedding: Int = 64

    @Option(name: .customLong("obs-steps"), help: "To: observations in the window (default: the task's).")
    var observationSteps: Int?

    @Option(name: .customLong("action-steps"), help: "Ta: actions executed per chunk (default: the task's).")
    var actionSteps: Int?

    @Option(name: .customLong("prediction-steps"), help: "Tp: actions predicted per chunk (default: the task's).")
    var predictionSteps: Int?

    @Option(help: "Random seed (weights, batches, noise).")
    var seed: UInt64 = 0

    @OptionGroup var threading: ThreadOptions

    @Option(name: .customLong("save-every"), help: "FM: also save the EMA weights every N steps (out.stepN.safetensors).")
    var saveEvery: Int?

    @OptionGroup var report: ReportOptions

    func run() throws {
        try reportingErrors {
            var options = TrainingSession.Options(datasetPath: dataset, outputPath: out)
            options.observationSteps = observationSteps
            options.actionSteps = actionSteps
            options.predictionSteps = predictionSteps
            options.method = method
            options.saveEvery = saveEvery
            options.chainBlocks = blocks
            let ou = try parseNumbers(ouStep, name: "--ou-step")
            guard ou.count == 2 else { throw ValidationError("--ou-step takes two numbers, c,ρ") }
            (options.ouStepScale, options.ouStepGrowth) = (ou[0], ou[1])
            options.hidden = hidden
            options.depth = depth
            options.timeEmbedding = timeEmbedding
            options.training.steps = steps
            options.training.batchSize = batchSize
            options.training.learningRate = learningRate
            options.training.warmupSteps = warmup
            options.training.weightDecay = weightDecay
            options.training.seed = seed
            options.training.threads = threading.threads
            options.command = commandLine
            let s = try TrainingSession.run(options)
            let chain = s.chainBlocks.map { ", a chain of \($0) blocks of width \(s.blockHidden ?? 0)" } ?? ""
            print("""
                trained \(s.task) \(s.method) policy\(chain): \(s.parameters) parameters, To=\(s.observationSteps) \
                Ta=\(s.actionSteps) Tp=\(s.predictionSteps)
                  data      \(s.episodes) episodes, \(s.trainingPairs) training pairs (\(s.datasetHash))
                  steps     \(s.steps) x batch \(s.batchSize), seed \(s.seed), \(s.threads) threads
                  loss      \(String(format: "%.4f", s.firstLoss)) -> \(String(format: "%.4f", s.finalLoss))
                  time      \(formatDuration(s.seconds)) (\(Int(s.samplesPerSecond)) samples/s)
                wrote \(s.checkpoint)
                """)
            if let json = report.json { try writeJSONReport(s, to: json) }
        }
    }
}

extension TrainingSession.Method: ExpressibleByArgument {}
