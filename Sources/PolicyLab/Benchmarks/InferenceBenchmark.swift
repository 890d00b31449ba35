import CAllocationCounter
import FlowPolicy
import PolicyRuntime
import Foundation

/// `flowpolicy bench infer`: latency of one action chunk at batch 1 against the memory-bandwidth floor, batched
/// throughput against the machine's sgemm rate, and training throughput. A policy with cameras gets random frames of
/// its cameras' sizes, so its chunk figures (latency, floor, chunks/s and GFLOP/s) include the image encoders (centre
/// crop and forward pass); its training throughput is not measured.
public enum InferenceBenchmark {
    public struct Settings: Sendable {
        public var steps = 10
        public var method = SolverMethod.euler
        public var iterations = 500
        public var batch = 64
        public var trainingBatch = 256
        public var trainingSteps = 10
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        public init() {}
    }

    public struct Result: Codable, Sendable {
        public var network: String
        public var parameters: Int
        public var weightBytes: Int
        /// A policy with cameras: its image encoders' weights, read once per chunk (in the floor).
        public var encoderWeightBytes: Int?
        public var solver: String
        public var steps: Int
        public var openBLASCore: String
        // Batch 1, one thread.
        public var latencyMilliseconds: LatencySummary
        public var allocationsPerCall: Double
        public var readBandwidthGBPerSecond: Double
        public var floorMilliseconds: Double
        public var p50OverFloor: Double
        // Batched.
        public var batch: Int
        public var chunksPerSecondOneThread: Double
        public var gflopsOneThread: Double
        public var chunksPerSecondAllThreads: Double
        public var gflopsAllThreads: Double
        public var sgemmGflopsOneThread: Double
        public var sgemmShape: [Int]
        // Training: nil figure, and a note why, when it was not measured (a policy with cameras).
        public var trainingBatch: Int
        public var trainingThreads: Int
        public var trainingSamplesPerSecond: Double?
        public var trainingNote: String?
        /// `--encoders`: the image encoders alone, and PyTorch's (`ImageEncoderBenchmark`).
        public var encoders: [ImageEncoderBenchmark.Result]?
    }

    /// The reference network of the foundation issue: H = 512, 4 blocks, Te = 64, To = 2, Do = 5, Tp = 16, Da = 2.
    public static func referenceCheckpoint(seed: UInt64 = 0) throws -> Checkpoint {
        let spec = PolicySpec(task: "reference", observationSteps: 2, actionSteps: 8, predictionSteps: 16,
                              observationDimensions: 5, actionDimensions: 2)
        let network = try ResMLPFiLM(spec.networkConfiguration(hidden: 512, blocks: 4, timeEmbedding: 64))
        var generator = RandomSource(seed: seed)
        let parameters = FloatBuffer(count: network.layout.count)
        network.layout.initialize(parameters, using: &generator)
        let unit = MinMaxNormalizer(minimum: [Float](repeating: -1, count: 5), maximum: [Float](repeating: 1, count: 5))
        let action = MinMaxNormalizer(minimum: [-1, -1], maximum: [1, 1])
        return Checkpoint(spec: spec, network: network, parameters: parameters, observationNormalizer: unit,
                          actionNormalizer: action)
    }

    public static func run(checkpoint: Checkpoint, settings: Settings, log: (String) -> Void) throws -> Result {
        BLAS.threads = 1
        let spec = checkpoint.spec
        let network = checkpoint.network
        let weightBytes = network.layout.parameterCount * MemoryLayout<Float>.size
        let windowSize = spec.observationSteps * spec.observationDimensions
        let multiplyAdds = Double(network.multiplyAddsPerSample)
        let evaluations = settings.steps * settings.method.evaluationsPerStep
        // A policy with cameras: random frames [B, To, frameBytesPerStep], encoded once per chunk (each camera's
        // encoder reads its weights once per call and runs To images).
        let windowFrameBytes = spec.observationSteps * spec.frameBytesPerStep
        let encoder = checkpoint.imageEncoder
        let encoderBytes = (encoder?.layout.parameterCount ?? 0) * MemoryLayout<Float>.size
        let encoderMultiplyAdds = Double(
            spec.observationSteps * (encoder?.encoders.reduce(0) { $0 + $1.multiplyAddsPerImage } ?? 0))
        var frameGenerator = RandomSource(seed: 2)
        func randomFrames(windows: Int) -> UnsafeMutablePointer<UInt8>? {
            guard windowFrameBytes > 0 else { return nil }
            let frames = UnsafeMutablePointer<UInt8>.allocate(capacity: windows * windowFrameBytes)
            for i in 0..<(windows * windowFrameBytes) { frames[i] = UInt8(truncatingIfNeeded: frameGenerator.next()) }
            return frames
        }

        log("batch 1, one thread: \(settings.iterations) chunks of \(spec.predictionSteps)x\(spec.actionDimensions), "
            + "\(settings.method.rawValue) K=\(settings.steps)")
        let single = Policy(checkpoint: checkpoint, capacity: 1, method: settings.method, steps: settings.steps)
        let observation = FloatBuffer(count: windowSize)
        let action = FloatBuffer(count: spec.actionSteps * spec.actionDimensions)
        let frame = randomFrames(windows: 1)
        defer { frame?.deallocate() }
        let predictOne = {
            single.predictAction(observations: observation.pointer, frames: frame, batch: 1, action: action.pointer)
        }
        for _ in 0..<20 { predictOne() }
        var latencies = [Double](repeating: 0, count: settings.iterations)
        let allocationsBefore = fp_thread_allocation_count()
        for i in 0..<settings.iterations {
            let start = monotonicSeconds()
            predictOne()
            latencies[i] = (monotonicSeconds() - start) * 1000
        }
        let allocations = Double(fp_thread_allocation_count() - allocationsBefore) / Double(settings.iterations)
        let latency = LatencySummary(latencies)
        let bandwidth = readBandwidth(bytes: weightBytes)
        let floor = (Double(weightBytes) * Double(evaluations) + Double(encoderBytes)) / bandwidth * 1000

        log("batch \(settings.batch): one thread and \(settings.threads) threads")
        func throughput(workers: Int) -> Double {
            let policy = Policy(checkpoint: checkpoint, capacity: settings.batch, method: settings.method,
                                steps: settings.steps, workers: workers)
            let observations = FloatBuffer(count: settings.batch * windowSize)
            let actions = FloatBuffer(count: settings.batch * spec.actionSteps * spec.actionDimensions)
            let frames = randomFrames(windows: settings.batch)
            defer { frames?.deallocate() }
            let run = {
                policy.predictAction(observations: observations.pointer, frames: frames, batch: settings.batch,
                                     action: actions.pointer)
            }
            run()
            let repeats = max(3, settings.iterations / 50)
            let start = monotonicSeconds()
            for _ in 0..<repeats { run() }
            return Double(repeats * settings.batch) / (monotonicSeconds() - start)
        }
        let chunksOne = throughput(workers: 1)
        let chunksAll = throughput(workers: settings.threads)
        let flopsPerChunk = 2 * (multiplyAdds * Double(evaluations) + encoderMultiplyAdds)
        let hidden = network.configuration.hidden
        let sgemm = sgemmRate(M: settings.batch, N: hidden, K: hidden)

        var samplesPerSecond: Double?
        var trainingNote: String?
        if spec.cameras.isEmpty {
            log("training: batch \(settings.trainingBatch) on \(settings.threads) threads")
            samplesPerSecond = try trainingThroughput(checkpoint: checkpoint, settings: settings)
        } else {
            trainingNote = "not measured for a policy with cameras (\(spec.cameras.shapeDescription))"
        }

        let cameras = encoder.map {
            " + \($0.configuration.backbone.rawValue) per camera (\(spec.cameras.shapeDescription), crop "
                + "\($0.configuration.height) x \($0.configuration.width), \($0.layout.parameterCount) parameters)"
        }
        return Result(
            network: "ResMLPFiLM H=\(hidden) blocks=\(network.configuration.blocks) "
                + "Te=\(network.configuration.timeEmbedding) To=\(spec.observationSteps) "
                + "Do=\(spec.observationDimensions) Tp=\(spec.predictionSteps) Da=\(spec.actionDimensions)"
                + (cameras ?? ""),
            parameters: network.layout.parameterCount, weightBytes: weightBytes,
            encoderWeightBytes: encoder == nil ? nil : encoderBytes, solver: settings.method.rawValue,
            steps: settings.steps, openBLASCore: BLAS.coreType, latencyMilliseconds: latency,
            allocationsPerCall: allocations, readBandwidthGBPerSecond: bandwidth / 1e9, floorMilliseconds: floor,
            p50OverFloor: latency.p50 / floor, batch: settings.batch, chunksPerSecondOneThread: chunksOne,
            gflopsOneThread: chunksOne * flopsPerChunk / 1e9, chunksPerSecondAllThreads: chunksAll,
            gflopsAllThreads: chunksAll * flopsPerChunk / 1e9, sgemmGflopsOneThread: sgemm,
            sgemmShape: [settings.batch, hidden, hidden], trainingBatch: settings.trainingBatch,
            trainingThreads: settings.threads, trainingSamplesPerSecond: samplesPerSecond, trainingNote: trainingNote)
    }

    /// Single-thread read bandwidth (bytes per second) for a buffer of `bytes`: the median of repeated sums over it
    /// with 64 independent lanes, after two warm-up passes.
    public static func readBandwidth(bytes: Int) -> Double {
        let count = bytes / MemoryLayout<Float>.size / 64 * 64
        let buffer = FloatBuffer(count: count)
        for i in 0..<count { buffer[i] = Float(i % 7) }
        var sink: Float = 0
        var rates: [Double] = []
        for pass in 0..<32 {
            let start = monotonicSeconds()
            var a = SIMD16<Float>(), b = SIMD16<Float>(), c = SIMD16<Float>(), d = SIMD16<Float>()
            let raw = UnsafeRawPointer(buffer.pointer)
            var offset = 0
            let end = count * 4
            while offset < end {
                a += raw.load(fromByteOffset: offset, as: SIMD16<Float>.self)
                b += raw.load(fromByteOffset: offset + 64, as: SIMD16<Float>.self)
                c += raw.load(fromByteOffset: offset + 128, as: SIMD16<Float>.self)
                d += raw.load(fromByteOffset: offset + 192, as: SIMD16<Float>.self)
                offset += 256
            }
            sink += (a + b + c + d).sum()
            if pass >= 2 { rates.append(Double(count * 4) / (monotonicSeconds() - start)) }
        }
        if sink == -1 { print(sink) }  // keeps the sums alive
        return LatencySummary(rates).p50
    }

    /// GFLOP/s of `cblas_sgemm` on one thread for C[M, N] = A[M, K] Bᵀ (the shape of the network's hidden layers).
    public static func sgemmRate(M: Int, N: Int, K: Int) -> Double {
        BLAS.threads = 1
        let a = FloatBuffer(count: M * K), b = FloatBuffer(count: N * K), c = FloatBuffer(count: M * N)
        for i in 0..<a.count { a[i] = Float(i % 13) * 0.01 }
        for i in 0..<b.count { b[i] = Float(i % 11) * 0.01 }
        let run = {
            matmul(transposeA: false, transposeB: true, M: M, N: N, K: K, A: a.pointer, lda: K, B: b.pointer, ldb: K,
                   beta: 0, C: c.pointer, ldc: N)
        }
        for _ in 0..<5 { run() }
        let repeats = max(20, 2_000_000_000 / (2 * M * N * K))
        let start = monotonicSeconds()
        for _ in 0..<repeats { run() }
        return 2 * Double(M * N * K) * Double(repeats) / (monotonicSeconds() - start) / 1e9
    }

    /// Samples per second of flow-matching training on random data of the checkpoint's dimensions.
    public static func trainingThroughput(checkpoint: Checkpoint, settings: Settings) throws -> Double {
        let spec = checkpoint.spec
        var dataset = EpisodeDataset(
            observationDimensions: spec.observationDimensions, actionDimensions: spec.actionDimensions)
        var generator = RandomSource(seed: 1)
        for _ in 0..<8 {
            let length = 200
            try dataset.appendEpisode(
                observations: (0..<(length * spec.observationDimensions)).map { _ in generator.nextUniform() },
                actions: (0..<(length * spec.actionDimensions)).map { _ in generator.nextUniform() })
        }
        var configuration = TrainingConfiguration()
        configuration.batchSize = settings.trainingBatch
        configuration.threads = settings.threads
        configuration.steps = settings.trainingSteps + 3
        let trainer = try FlowMatchingTrainer(spec: spec, network: checkpoint.network.configuration, dataset: dataset,
                                              configuration: configuration)
        for _ in 0..<3 { try trainer.trainStep() }
        let start = monotonicSeconds()
        for _ in 0..<settings.trainingSteps { try trainer.trainStep() }
        return Double(settings.trainingSteps * settings.trainingBatch) / (monotonicSeconds() - start)
    }
}
