import CAllocationCounter
import FlowPolicy
import PolicyRuntime
import Foundation

/// `flowpolicy bench infer`: latency of one action chunk at batch 1 against the memory-bandwidth floor, batched
/// throughput against the machine's sgemm rate, and training throughput; at each precision (fp32 on the packed kernel
/// and on OpenBLAS, bf16, int8), with each precision's chunks compared with fp32's, and ONNX Runtime's figures from
/// the same run when the tools' environment has it. A policy with cameras gets random frames of its cameras' sizes,
/// so its chunk figures (latency, floor, chunks/s and GFLOP/s) include the image encoders (centre crop and forward
/// pass, fp32 at every precision); its training throughput is not measured.
public enum InferenceBenchmark {
    public struct Settings: Sendable {
        public var steps = 10
        public var method = SolverMethod.euler
        public var iterations = 500
        public var batch = 64
        public var trainingBatch = 256
        public var trainingSteps = 10
        public var threads = ProcessInfo.processInfo.activeProcessorCount
        /// The precisions to time besides fp32 (which always runs: it is the reference of the errors).
        public var precisions = Precision.allCases
        /// Time ONNX Runtime on the same network (`ONNXRuntimePeer`); the checkpoint's path, nil for the reference
        /// network.
        public var onnxRuntime = true
        public var checkpointPath: String?
        public init() {}
    }

    /// One way of running the network's products: batch-1 latency (one thread), batched throughput, and how far its
    /// chunks are from fp32's.
    public struct PrecisionResult: Codable, Sendable {
        /// `fp32`, `bf16`, `int8`, or `fp32 OpenBLAS`.
        public var precision: String
        public var kernel: String
        public var latencyMilliseconds: LatencySummary
        public var allocationsPerCall: Double
        /// p50 over the fp32 floor.
        public var p50OverFloor: Double
        public var chunksPerSecondOneThread: Double
        public var chunksPerSecondAllThreads: Double
        /// The largest difference from fp32's chunks, normalized action units ([-1, 1] spans the data's range), over
        /// `batch` windows with the same noise.
        public var maxChunkError: Double
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
        // Batch 1, one thread, fp32 (the default precision).
        public var latencyMilliseconds: LatencySummary
        public var allocationsPerCall: Double
        public var readBandwidthGBPerSecond: Double
        public var floorMilliseconds: Double
        public var p50OverFloor: Double
        // Batched, fp32.
        public var batch: Int
        public var chunksPerSecondOneThread: Double
        public var gflopsOneThread: Double
        public var chunksPerSecondAllThreads: Double
        public var gflopsAllThreads: Double
        public var sgemmGflopsOneThread: Double
        public var sgemmShape: [Int]
        /// Every precision timed, fp32 first.
        public var precisions: [PrecisionResult]
        /// ONNX Runtime on the same network, or why it did not run.
        public var onnxRuntime: ONNXRuntimePeer.Result?
        public var onnxRuntimeNote: String?
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
        let multiplyAdds = Double(network.multiplyAddsPerSample)
        let evaluations = settings.steps * settings.method.evaluationsPerStep
        let encoder = checkpoint.imageEncoder
        let encoderBytes = (encoder?.layout.parameterCount ?? 0) * MemoryLayout<Float>.size
        let encoderMultiplyAdds = Double(
            spec.observationSteps * (encoder?.encoders.reduce(0) { $0 + $1.multiplyAddsPerImage } ?? 0))
        let bandwidth = readBandwidth(bytes: weightBytes)
        let floor = (Double(weightBytes) * Double(evaluations) + Double(encoderBytes)) / bandwidth * 1000
        let inputs = BenchmarkInputs(checkpoint: checkpoint, batch: settings.batch)

        var variants: [(precision: Precision, openBLAS: Bool)] = [(.fp32, false)]
        if Precision.fp32.kernel != "portable" { variants.append((.fp32, true)) }
        variants += settings.precisions.filter { $0 != .fp32 }.map { ($0, false) }
        var precisions: [PrecisionResult] = []
        var reference: [Float] = []
        for (precision, openBLAS) in variants {
            let label = openBLAS ? "fp32 OpenBLAS" : precision.rawValue
            log("\(label): batch 1, one thread: \(settings.iterations) chunks of \(spec.predictionSteps)x"
                + "\(spec.actionDimensions), \(settings.method.rawValue) K=\(settings.steps); batch \(settings.batch) "
                + "on one and \(settings.threads) threads")
            func policy(capacity: Int, workers: Int = 1) -> Policy {
                Policy(checkpoint: checkpoint, capacity: capacity, method: settings.method, steps: settings.steps,
                       workers: workers, precision: precision, openBLAS: openBLAS)
            }
            let latency = inputs.latency(policy(capacity: 1), iterations: settings.iterations)
            let batched = policy(capacity: settings.batch)
            let chunks = inputs.normalizedChunks(batched)
            if reference.isEmpty { reference = chunks }
            precisions.append(PrecisionResult(
                precision: label, kernel: openBLAS ? "OpenBLAS \(BLAS.coreType)" : precision.kernel,
                latencyMilliseconds: latency.summary, allocationsPerCall: latency.allocationsPerCall,
                p50OverFloor: latency.summary.p50 / floor,
                chunksPerSecondOneThread: inputs.throughput(batched, iterations: settings.iterations),
                chunksPerSecondAllThreads: inputs.throughput(
                    policy(capacity: settings.batch, workers: settings.threads), iterations: settings.iterations),
                maxChunkError: Double(zip(chunks, reference).map { abs($0 - $1) }.max() ?? 0)))
        }
        let fp32 = precisions[0]
        let flopsPerChunk = 2 * (multiplyAdds * Double(evaluations) + encoderMultiplyAdds)
        let hidden = network.configuration.hidden
        let sgemm = sgemmRate(M: settings.batch, N: hidden, K: hidden)

        var peer: ONNXRuntimePeer.Result?
        var peerNote: String?
        if settings.onnxRuntime {
            log("ONNX Runtime: the same network through tools/bench_onnx_reference.py")
            switch ONNXRuntimePeer.run(checkpointPath: settings.checkpointPath, settings: settings) {
            case .success(let result): peer = result
            case .failure(let failure): peerNote = failure.description
            }
        }

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
            steps: settings.steps, openBLASCore: BLAS.coreType, latencyMilliseconds: fp32.latencyMilliseconds,
            allocationsPerCall: fp32.allocationsPerCall, readBandwidthGBPerSecond: bandwidth / 1e9,
            floorMilliseconds: floor, p50OverFloor: fp32.p50OverFloor, batch: settings.batch,
            chunksPerSecondOneThread: fp32.chunksPerSecondOneThread,
            gflopsOneThread: fp32.chunksPerSecondOneThread * flopsPerChunk / 1e9,
            chunksPerSecondAllThreads: fp32.chunksPerSecondAllThreads,
            gflopsAllThreads: fp32.chunksPerSecondAllThreads * flopsPerChunk / 1e9, sgemmGflopsOneThread: sgemm,
            sgemmShape: [settings.batch, hidden, hidden], precisions: precisions, onnxRuntime: peer,
            onnxRuntimeNote: peerNote, trainingBatch: settings.trainingBatch, trainingThreads: settings.threads,
            trainingSamplesPerSecond: samplesPerSecond, trainingNote: trainingNote)
    }

    /// The windows every precision is timed on: zero observations for the latency and throughput figures (the time
    /// does not depend on them), and for the chunk errors `batch` windows drawn uniformly over the data's range, each
    /// with its own noise seed. A policy with cameras gets random frames.
    struct BenchmarkInputs {
        let spec: PolicySpec
        let batch: Int
        let zeros: FloatBuffer  // [batch, To*Do]
        let windows: FloatBuffer  // [batch, To*Do], raw units
        let noiseSeeds: [UInt64]
        let frames: [UInt8]  // [batch, To, frameBytesPerStep]

        init(checkpoint: Checkpoint, batch: Int) {
            spec = checkpoint.spec
            self.batch = batch
            let windowSize = spec.observationSteps * spec.observationDimensions
            var generator = RandomSource(seed: 2)
            zeros = FloatBuffer(count: batch * windowSize)
            windows = FloatBuffer(checkpoint.observationNormalizer.denormalized(
                (0..<(batch * windowSize)).map { _ in 2 * generator.nextUniform() - 1 }))
            noiseSeeds = (0..<batch).map { UInt64($0) + 1 }
            frames = (0..<(batch * spec.observationSteps * spec.frameBytesPerStep)).map { _ in
                UInt8(truncatingIfNeeded: generator.next())
            }
        }

        private func frameWindows(_ body: (UnsafePointer<UInt8>?) -> Void) {
            frames.withUnsafeBufferPointer { body($0.isEmpty ? nil : $0.baseAddress) }
        }

        /// Batch-1 latency in milliseconds and heap allocations per call, after 20 warm-up calls.
        func latency(_ policy: Policy, iterations: Int) -> (summary: LatencySummary, allocationsPerCall: Double) {
            let action = FloatBuffer(count: spec.actionSteps * spec.actionDimensions)
            var latencies = [Double](repeating: 0, count: iterations)
            var allocations: UInt64 = 0
            frameWindows { frames in
                let predict = {
                    policy.predictAction(observations: zeros.pointer, frames: frames, batch: 1, action: action.pointer)
                }
                for _ in 0..<20 { predict() }
                let before = fp_thread_allocation_count()
                for i in 0..<iterations {
                    let start = monotonicSeconds()
                    predict()
                    latencies[i] = (monotonicSeconds() - start) * 1000
                }
                allocations = fp_thread_allocation_count() - before
            }
            return (LatencySummary(latencies), Double(allocations) / Double(iterations))
        }

        /// Chunks per second at `policy.capacity` windows per call.
        func throughput(_ policy: Policy, iterations: Int) -> Double {
            let actions = FloatBuffer(count: policy.capacity * spec.actionSteps * spec.actionDimensions)
            var seconds = 0.0
            let repeats = max(3, iterations / 50)
            frameWindows { frames in
                let run = {
                    policy.predictAction(observations: zeros.pointer, frames: frames, batch: policy.capacity,
                                         action: actions.pointer)
                }
                run()
                let start = monotonicSeconds()
                for _ in 0..<repeats { run() }
                seconds = monotonicSeconds() - start
            }
            return Double(repeats * policy.capacity) / seconds
        }

        /// The chunks `[batch, Tp, Da]` for `windows`, normalized (each row's noise from its own seed).
        func normalizedChunks(_ policy: Policy) -> [Float] {
            var chunks = [Float](repeating: 0, count: batch * spec.predictionSteps * spec.actionDimensions)
            frameWindows { frames in
                noiseSeeds.withUnsafeBufferPointer { seeds in
                    chunks.withUnsafeMutableBufferPointer { chunks in
                        policy.predictAction(observations: windows.pointer, frames: frames, batch: batch,
                                             action: nil, actionPrediction: chunks.baseAddress!,
                                             noiseSeeds: seeds.baseAddress!)
                    }
                }
            }
            return policy.checkpoint.actionNormalizer.normalized(chunks)
        }
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
