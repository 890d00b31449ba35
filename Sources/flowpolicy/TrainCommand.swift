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
            Horizons default to the dataset's task (its task.yaml; 1/1/1 for toy-mixture; To/Ta/Tp = 2/8/16, \
            Diffusion Policy's, for data of no known task). The checkpoint holds the \
            EMA weights and is written only when training finishes, atomically. --method lfm trains a Local Flow \
            Matching chain of --blocks blocks whose total parameter count matches the FM network given by --hidden \
            and --depth; --steps is then the total over all blocks. A dataset with cameras (`images.<camera>`) \
            trains an image policy: an encoder per camera (--image-backbone: small_cnn, sized for CPU training, or \
            resnet18, Diffusion Policy's ResNet-18 with GroupNorm; both with spatial softmax) learns with the \
            network, on random crops of --image-crop pixels (default 7/8 of the frame: 84 of 96).
            """)

    @Option(help: "fm (flow matching) or lfm (Local Flow Matching chain).")
    var method: TrainingSession.Method = .fm

    @Option(parsing: .unconditional, help: "LFM: blocks in the chain (the last is the free block to N(0, I)).")
    var blocks: Int = 4

    @Option(name: .customLong("ou-step"), parsing: .unconditional,
            help: "LFM: OU step sizes γ_n = c ρ^(n-1), given as c,ρ.")
    var ouStep: String = "0.1,1.5"

    @Option(help: "Dataset file (from `flowpolicy collect`, or any file in the same layout).")
    var dataset: String

    @Option(help: "Checkpoint file to write.")
    var out: String

    @Option(parsing: .unconditional, help: "Optimization steps.")
    var steps: Int = 20_000

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Batch size.")
    var batchSize: Int = 256

    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Peak learning rate (AdamW, cosine schedule).")
    var learningRate: Float = 1e-4

    @Option(parsing: .unconditional, help: "Warm-up steps of the learning-rate schedule.")
    var warmup: Int = 500

    @Option(name: .customLong("weight-decay"), parsing: .unconditional, help: "AdamW weight decay.")
    var weightDecay: Float = 1e-6

    @Option(parsing: .unconditional,
            help: "Hidden width H of the ResMLP-FiLM network (LFM: of the FM network the chain's size matches).")
    var hidden: Int = 256

    @Option(parsing: .unconditional, help: "Residual blocks per network.")
    var depth: Int = 4

    @Option(name: .customLong("time-embedding"), parsing: .unconditional,
            help: "Size of the sinusoidal time embedding.")
    var timeEmbedding: Int = 64

    @Option(name: .customLong("image-backbone"),
            help: "Image datasets: small_cnn or resnet18, the encoder of each camera's frames.")
    var imageBackbone: ImageEncoderConfiguration.Backbone = .smallCNN

    @Option(name: .customLong("image-crop"), parsing: .unconditional,
            help: "Image datasets: the side of the square random crop in training (centre crop when acting).")
    var imageCrop: Int?

    @Option(name: .customLong("obs-steps"), parsing: .unconditional,
            help: "To: observations in the window (default: the task's).")
    var observationSteps: Int?

    @Option(name: .customLong("action-steps"), parsing: .unconditional,
            help: "Ta: actions executed per chunk (default: the task's).")
    var actionSteps: Int?

    @Option(name: .customLong("prediction-steps"), parsing: .unconditional,
            help: "Tp: actions predicted per chunk (default: the task's).")
    var predictionSteps: Int?

    @Option(parsing: .unconditional, help: "Random seed (weights, batches, noise). (default: 0)",
            transform: seedArgument)
    var seed: UInt64 = 0

    @OptionGroup var threading: ThreadOptions

    @Option(name: .customLong("save-every"), parsing: .unconditional,
            help: "FM: also save the EMA weights every N steps (out.stepN.safetensors).")
    var saveEvery: Int?

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.integer("--blocks", blocks, in: 1...64)
        _ = try ouSteps()
        try Check.integer("--steps", steps, in: 1...100_000_000)
        try Check.integer("--batch-size", batchSize, in: 1...16_384)
        try Check.real("--lr", learningRate, in: .above(0, upTo: 1))
        try Check.integer("--warmup", warmup, in: 0...100_000_000)
        try Check.real("--weight-decay", weightDecay, in: .from(0, through: 1))
        try Check.integer("--hidden", hidden, in: 1...2048)
        try Check.integer("--depth", depth, in: 1...64)
        guard (2...1024).contains(timeEmbedding), timeEmbedding % 2 == 0 else {
            throw ValidationError("--time-embedding must be an even number in 2...1024, got \(timeEmbedding)")
        }
        try Check.integer("--image-crop", imageCrop, in: 8...1024)
        try Check.integer("--obs-steps", observationSteps, in: 1...1000)
        try Check.integer("--action-steps", actionSteps, in: 1...1000)
        try Check.integer("--prediction-steps", predictionSteps, in: 1...1000)
        try Check.integer("--save-every", saveEvery, in: 1...100_000_000)
        try Check.inputFile("--dataset", dataset)
        try Check.output("--out", out)
    }

    /// `--ou-step` as (c, ρ).
    private func ouSteps() throws -> (scale: Float, growth: Float) {
        let ou = try parseNumbers(ouStep, name: "--ou-step")
        guard ou.count == 2, ou.allSatisfy({ $0 > 0 && $0 <= 10 }) else {
            throw ValidationError("--ou-step takes two numbers c,ρ, each in (0, 10], got \"\(ouStep)\"")
        }
        return (ou[0], ou[1])
    }

    func run() throws {
        try reportingErrors {
            var options = TrainingSession.Options(datasetPath: dataset, outputPath: out)
            options.observationSteps = observationSteps
            options.actionSteps = actionSteps
            options.predictionSteps = predictionSteps
            options.method = method
            options.saveEvery = saveEvery
            options.chainBlocks = blocks
            (options.ouStepScale, options.ouStepGrowth) = try ouSteps()
            options.hidden = hidden
            options.depth = depth
            options.timeEmbedding = timeEmbedding
            options.imageBackbone = imageBackbone
            options.imageCrop = imageCrop
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
extension ImageEncoderConfiguration.Backbone: ExpressibleByArgument {}
