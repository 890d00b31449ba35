import ArgumentParser
import FlowPolicy
import Foundation
import PolicyRuntime

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a conditional flow-matching policy on a dataset and write its checkpoint.",
        discussion: """
            Horizons default to the dataset's task (Diffusion Policy's To=2, Ta=8, Tp=16; 1/1/1 for toy-mixture). \
            The checkpoint holds the EMA weights and is written only when training finishes, atomically.
            """)

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

    @Option(help: "Hidden width H of the ResMLP-FiLM network.")
    var hidden: Int = 256

    @Option(help: "Residual blocks.")
    var blocks: Int = 4

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

    @Option(help: "Worker threads (the batch is split across them). Results are reproducible for a given count.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Also write the summary as JSON to this path.")
    var json: String?

    func run() throws {
        try reportingErrors {
            var options = TrainingSession.Options(datasetPath: dataset, outputPath: out)
            options.observationSteps = observationSteps
            options.actionSteps = actionSteps
            options.predictionSteps = predictionSteps
            options.hidden = hidden
            options.blocks = blocks
            options.timeEmbedding = timeEmbedding
            options.training.steps = steps
            options.training.batchSize = batchSize
            options.training.learningRate = learningRate
            options.training.warmupSteps = warmup
            options.training.weightDecay = weightDecay
            options.training.seed = seed
            options.training.threads = threads
            options.command = commandLine
            let s = try TrainingSession.run(options)
            print("""
                trained \(s.task) policy: \(s.parameters) parameters, To=\(s.observationSteps) Ta=\(s.actionSteps) \
                Tp=\(s.predictionSteps)
                  data      \(s.episodes) episodes, \(s.trainingPairs) training pairs (\(s.datasetHash))
                  steps     \(s.steps) x batch \(s.batchSize), seed \(s.seed), \(s.threads) threads
                  loss      \(String(format: "%.4f", s.firstLoss)) -> \(String(format: "%.4f", s.finalLoss))
                  time      \(formatDuration(s.seconds)) (\(Int(s.samplesPerSecond)) samples/s)
                wrote \(s.checkpoint)
                """)
            if let json { try writeJSONReport(s, to: json) }
        }
    }
}
