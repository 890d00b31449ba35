import Foundation

/// Settings of a Local Flow Matching chain (seed 001; METHODS.md section 4, as the authors' code implements it).
public struct LocalFlowConfiguration: Sendable {
    /// N = L + 1 blocks: L Ornstein–Uhlenbeck blocks, then the free block to N(0, I).
    public var blocks = 4
    /// OU step sizes γ_n = c ρ^(n - 1), n = 1 ... L.
    public var stepScale: Float = 0.1
    public var stepGrowth: Float = 1.5
    /// Each block's network: ResMLP-FiLM of this width and depth.
    public var hidden = 128
    public var depth = 4
    public var timeEmbedding = 64
    /// Tolerance of the adaptive Dormand–Prince solve that pushes the data pool through a trained block. Adaptive and
    /// tight, because a block is stiff and expanding at its data end (s = 0), where the push starts: on the
    /// conditional toy a tolerance of 1e-4 leaves errors of 0.05 (local errors stretched about 500-fold), 1e-6 of
    /// 1.5e-3, while fixed RK4 needs 256 steps for 1.6e-4.
    public var pushTolerance: Float = 1e-6
    /// Optimizer settings of every block; `training.steps` is the total, split evenly over the blocks (each block
    /// has its own warm-up and cosine schedule; block n + 1 starts from block n's weights).
    public var training = TrainingConfiguration()

    public init() {}

    /// γ_n for n = 1 ... L.
    public func stepSize(block n: Int) -> Float { stepScale * Float(Foundation.pow(Double(stepGrowth), Double(n - 1))) }

    public func validate() throws(FlowPolicyError) {
        guard blocks >= 1, stepScale > 0, stepGrowth > 0, hidden >= 1, depth >= 1, pushTolerance > 0 else {
            throw .invalidConfiguration("LFM needs at least one block, positive OU steps and sizes")
        }
        guard training.steps >= blocks else {
            throw .invalidConfiguration("LFM needs at least one training step per block (\(blocks) blocks)")
        }
        try training.validate()
    }

    /// The widest H (a multiple of 8) for which `blocks` networks of this depth have at most `parameters`
    /// parameters in total: the chain's size matched to a flow-matching model's.
    public static func hiddenWidth(matching parameters: Int, blocks: Int, spec: PolicySpec, depth: Int,
                                   timeEmbedding: Int) throws(FlowPolicyError) -> Int {
        var best = 8
        var width = 8
        while width <= 4096 {
            let network = try ResMLPFiLM(
                spec.networkConfiguration(hidden: width, blocks: depth, timeEmbedding: timeEmbedding))
            if blocks * network.layout.parameterCount > parameters { break }
            best = width
            width += 8
        }
        return best
    }
}

/// The data pool of Local Flow Matching: every training pair's window (fixed) and chunk (pushed through each
/// trained block in turn), normalized.
public final class LocalFlowPool: @unchecked Sendable {
    public let windows: [Float]
    public var states: [Float]
    public let windowSize: Int
    public let chunkSize: Int
    public var count: Int { states.count / chunkSize }

    public init(pairs: PairSet) {
        windows = pairs.windows
        states = pairs.chunks
        windowSize = pairs.windowSize
        chunkSize = pairs.chunkSize
    }
}

/// Pairs of an Ornstein–Uhlenbeck block: start from the pool, end one OU step of size γ away
/// (`x1 = e^{-γ} x0 + sqrt(1 - e^{-2γ}) z`, the "dependent" coupling).
public struct OrnsteinUhlenbeckPairs: FlowPairSource {
    public let pool: LocalFlowPool
    public let step: Float

    public init(pool: LocalFlowPool, step: Float) {
        self.pool = pool
        self.step = step
    }

    public var pairCount: Int { pool.count }

    public func fill(batch B: Int, condition: UnsafeMutablePointer<Float>, start: UnsafeMutablePointer<Float>,
                     end: UnsafeMutablePointer<Float>, using generator: inout RandomSource) {
        let (Do, Dx) = (pool.windowSize, pool.chunkSize)
        let decay = Float(Foundation.exp(-Double(step)))
        let spread = Float((1 - Foundation.exp(-2 * Double(step))).squareRoot())
        for row in 0..<B {
            let pair = generator.nextIndex(below: pool.count)
            for j in 0..<Do { condition[row * Do + j] = pool.windows[pair * Do + j] }
            for j in 0..<Dx { start[row * Dx + j] = pool.states[pair * Dx + j] }
        }
        generator.fillGaussian(end, count: B * Dx)
        for i in 0..<(B * Dx) { end[i] = decay * start[i] + spread * end[i] }
    }
}

/// Pairs of the free block: start from the pool, end an independent draw from N(0, I).
public struct FreeBlockPairs: FlowPairSource {
    public let pool: LocalFlowPool

    public init(pool: LocalFlowPool) { self.pool = pool }

    public var pairCount: Int { pool.count }

    public func fill(batch B: Int, condition: UnsafeMutablePointer<Float>, start: UnsafeMutablePointer<Float>,
                     end: UnsafeMutablePointer<Float>, using generator: inout RandomSource) {
        let (Do, Dx) = (pool.windowSize, pool.chunkSize)
        for row in 0..<B {
            let pair = generator.nextIndex(below: pool.count)
            for j in 0..<Do { condition[row * Do + j] = pool.windows[pair * Do + j] }
            for j in 0..<Dx { start[row * Dx + j] = pool.states[pair * Dx + j] }
        }
        generator.fillGaussian(end, count: B * Dx)
    }
}

/// Trains a Local Flow Matching chain on demonstrations (seed 001).
///
/// Convention of the paper: blocks run data → noise. Block n (n <= L) learns, by flow matching on the straight path,
/// to carry the pool `P_{n-1}` one OU step of size γ_n towards noise; the pool is then pushed once through the
/// trained block (its ODE solved with RK4) to give `P_n`. The free block carries `P_L` to N(0, I) with independent
/// coupling. Every block is conditioned on the observation window and warm-starts from the previous block's weights.
/// Sampling draws from N(0, I) and runs the blocks in reverse, each integrated from s = 1 back to s = 0.
public final class LocalFlowMatchingTrainer {
    public let spec: PolicySpec
    public let configuration: LocalFlowConfiguration
    public let observationNormalizer: MinMaxNormalizer
    public let actionNormalizer: MinMaxNormalizer
    public let pool: LocalFlowPool
    public let datasetHash: String
    public let network: ResMLPFiLM
    /// Trained blocks (EMA weights), in training order: block 1 first, the free block last.
    public private(set) var trainedBlocks: [FloatBuffer] = []

    public init(
        spec: PolicySpec, dataset: EpisodeDataset, configuration: LocalFlowConfiguration
    ) throws(FlowPolicyError) {
        try spec.validate()
        try configuration.validate()
        guard dataset.observationDimensions == spec.observationDimensions,
              dataset.actionDimensions == spec.actionDimensions
        else { throw .invalidConfiguration("the dataset's dimensions do not match the policy's") }
        self.spec = spec
        self.configuration = configuration
        observationNormalizer = MinMaxNormalizer(fitting: dataset.observations, dimensions: spec.observationDimensions)
        actionNormalizer = MinMaxNormalizer(fitting: dataset.actions, dimensions: spec.actionDimensions)
        let pairs = PairSet(dataset: dataset, spec: spec, observationNormalizer: observationNormalizer,
                            actionNormalizer: actionNormalizer)
        guard pairs.count > 0 else { throw .invalidConfiguration("the dataset has no training pairs") }
        pool = LocalFlowPool(pairs: pairs)
        datasetHash = dataset.contentHash
        network = try ResMLPFiLM(spec.networkConfiguration(
            hidden: configuration.hidden, blocks: configuration.depth, timeEmbedding: configuration.timeEmbedding))
    }

    /// Training steps of block `n` (0-based): the total split evenly, the remainder to the first blocks.
    public func steps(ofBlock n: Int) -> Int {
        let total = configuration.training.steps
        return total / configuration.blocks + (n < total % configuration.blocks ? 1 : 0)
    }

    /// Trains the next block (call `configuration.blocks` times); `progress(step, loss)` after every step. After an
    /// OU block the pool is pushed through it (its ODE solved from s = 0 to 1); `pushProgress(states)` reports the
    /// states done.
    public func trainNextBlock(
        progress: (Int, Float) -> Void = { _, _ in }, pushProgress: ((Int) -> Void)? = nil
    ) throws(FlowPolicyError) {
        let n = trainedBlocks.count
        precondition(n < configuration.blocks, "every block is trained")
        let isFree = n == configuration.blocks - 1
        let source: FlowPairSource = isFree
            ? FreeBlockPairs(pool: pool)
            : OrnsteinUhlenbeckPairs(pool: pool, step: configuration.stepSize(block: n + 1))
        var training = configuration.training
        training.steps = steps(ofBlock: n)
        training.warmupSteps = min(training.warmupSteps, training.steps / 4)
        training.seed = configuration.training.seed &+ UInt64(n) &* 7919
        let trainer = try FlowMatchingTrainer(
            spec: spec, network: network.configuration, source: source, observationNormalizer: observationNormalizer,
            actionNormalizer: actionNormalizer, datasetHash: datasetHash, configuration: training,
            initialParameters: trainedBlocks.last)
        for step in 0..<training.steps { progress(step, try trainer.trainStep()) }
        let weights = FloatBuffer(count: trainer.ema.average.count)
        weights.copy(from: trainer.ema.average)
        trainedBlocks.append(weights)
        if !isFree { try push(pool, through: weights, progress: pushProgress) }
    }

    /// Pushes every state of `pool` through a block with these weights: its ODE solved from s = 0 to 1 with adaptive
    /// Dormand–Prince to `pushTolerance`.
    public func push(
        _ pool: LocalFlowPool, through weights: FloatBuffer, progress: ((Int) -> Void)? = nil
    ) throws(FlowPolicyError) {
        try integrateBatch(
            states: &pool.states, windows: pool.windows, field: VelocityField(network: network, head: nil),
            parameters: VelocityFieldParameters(network: weights, head: nil), from: 0, to: 1,
            solver: .adaptive(tolerance: configuration.pushTolerance), workers: configuration.training.threads,
            progress: progress)
    }

    /// The chain as a policy: its blocks in sampling order (the free block first), each integrated from 1 to 0.
    public func checkpoint(provenance extra: [String: String] = [:]) -> Checkpoint {
        precondition(trainedBlocks.count == configuration.blocks, "train every block first")
        let field = VelocityField(network: network, head: nil)
        let stages = trainedBlocks.reversed().map { weights in
            FlowStage(field: field, parameters: VelocityFieldParameters(network: weights, head: nil), start: 1, end: 0)
        }
        let c = configuration
        var provenance = [
            "dataset_hash": datasetHash, "steps": String(c.training.steps), "seed": String(c.training.seed),
            "batch_size": String(c.training.batchSize), "learning_rate": String(c.training.learningRate),
            "lfm_blocks": String(c.blocks), "lfm_ou_step": "\(c.stepScale),\(c.stepGrowth)",
            "lfm_push_tolerance": String(c.pushTolerance),
        ]
        provenance.merge(extra) { _, new in new }
        return Checkpoint(spec: spec, stages: stages, observationNormalizer: observationNormalizer,
                          actionNormalizer: actionNormalizer, method: "lfm", provenance: provenance)
    }
}

/// Regression pairs for distilling one chain stage: a student evaluated at s = 1 on a stage's start state must output
/// `start - end`, so that one Euler step from 1 to 0 lands on the teacher's endpoint.
struct DistillationPairs: FlowPairSource {
    let windows: [Float]
    let starts: [Float]
    let ends: [Float]
    let windowSize: Int
    let chunkSize: Int

    var pairCount: Int { starts.count / chunkSize }
    var fixedTime: Float? { 1 }

    /// The trainer regresses `v(s, x_s)` onto `end' - start'` at `x_s = (1 - s) start' + s end'`; with s = 1,
    /// `start' = teacher end` and `end' = teacher start`, that is `v(1, start) = start - end`.
    func fill(batch B: Int, condition: UnsafeMutablePointer<Float>, start: UnsafeMutablePointer<Float>,
              end: UnsafeMutablePointer<Float>, using generator: inout RandomSource) {
        let (Do, Dx) = (windowSize, chunkSize)
        for row in 0..<B {
            let pair = generator.nextIndex(below: pairCount)
            for j in 0..<Do { condition[row * Do + j] = windows[pair * Do + j] }
            for j in 0..<Dx {
                start[row * Dx + j] = ends[pair * Dx + j]
                end[row * Dx + j] = starts[pair * Dx + j]
            }
        }
    }
}

/// Distils every stage of a chain into a one-step student of its endpoint map, so sampling costs one network
/// evaluation per stage.
///
/// Teacher trajectories: `samples` observation windows from `pairs`, a latent z ~ N(0, I) each, pushed through the
/// chain with adaptive Dormand–Prince (`teacherTolerance`). Stage i's student starts from the teacher stage's weights
/// and is trained by regression on (the state entering stage i, the teacher's endpoint of stage i).
/// `teacherProgress(stage, trajectories)` reports the teacher's solve, `progress(stage, step, loss)` the students'
/// training.
public func distillChain(
    _ chain: Checkpoint, pairs: PairSet, samples: Int, teacherTolerance: Float = 1e-6, training: TrainingConfiguration,
    teacherProgress: ((Int, Int) -> Void)? = nil, progress: (Int, Int, Float) -> Void = { _, _, _ in }
) throws(FlowPolicyError) -> Checkpoint {
    guard chain.isChain, chain.stages.allSatisfy({ $0.field.head == nil }) else {
        throw .invalidConfiguration("distillation takes a Local Flow Matching chain")
    }
    var generator = RandomSource(seed: training.seed)
    let (Do, Dx) = (pairs.windowSize, pairs.chunkSize)
    var windows = [Float](repeating: 0, count: samples * Do)
    for row in 0..<samples {
        let pair = generator.nextIndex(below: pairs.count)
        for j in 0..<Do { windows[row * Do + j] = pairs.windows[pair * Do + j] }
    }
    var states = (0..<(samples * Dx)).map { _ in generator.nextGaussian() }
    var students: [FlowStage] = []
    for (index, stage) in chain.stages.enumerated() {
        let starts = states
        try integrateBatch(states: &states, windows: windows, field: stage.field, parameters: stage.parameters,
                           from: stage.start, to: stage.end, solver: .adaptive(tolerance: teacherTolerance),
                           workers: training.threads, progress: teacherProgress.map { report in { report(index, $0) } })
        var stageTraining = training
        stageTraining.seed = training.seed &+ UInt64(index + 1)
        let trainer = try FlowMatchingTrainer(
            spec: chain.spec, network: stage.field.network.configuration,
            source: DistillationPairs(windows: windows, starts: starts, ends: states, windowSize: Do, chunkSize: Dx),
            observationNormalizer: chain.observationNormalizer, actionNormalizer: chain.actionNormalizer,
            datasetHash: chain.provenance["dataset_hash"] ?? "", configuration: stageTraining,
            initialParameters: stage.parameters.network)
        for step in 0..<stageTraining.steps { progress(index, step, try trainer.trainStep()) }
        let weights = FloatBuffer(count: trainer.ema.average.count)
        weights.copy(from: trainer.ema.average)
        students.append(FlowStage(field: stage.field, parameters: VelocityFieldParameters(network: weights, head: nil),
                                  start: stage.start, end: stage.end, fixedSteps: 1))
    }
    var provenance = chain.provenance
    provenance["distilled_samples"] = String(samples)
    provenance["distilled_teacher_tolerance"] = String(teacherTolerance)
    provenance["distilled_steps"] = String(training.steps)
    return Checkpoint(spec: chain.spec, stages: students, observationNormalizer: chain.observationNormalizer,
                      actionNormalizer: chain.actionNormalizer, method: "lfm-distilled", provenance: provenance,
                      contract: chain.contract)
}
