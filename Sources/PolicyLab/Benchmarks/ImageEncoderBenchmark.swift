import CAllocationCounter
import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge

/// `flowpolicy bench infer --encoders`: the image encoders' forward pass on one thread, from uint8 frames through the
/// centre crop and scaling (`ImageObservationEncoder.encode`), and PyTorch's on the same module and input size in the
/// same run (`python -m flowpolicy_torch.vision bench`, torchvision's ResNet-18; its input is already cropped).
public enum ImageEncoderBenchmark {
    public struct Settings: Sendable {
        /// The camera's frames, uint8 [H, W, C]: Push-T's 96 x 96 x 3.
        public var frameHeight = 96
        public var frameWidth = 96
        public var channels = 3
        /// The encoder's input after the centre crop: Diffusion Policy's Push-T crop, 84 x 84.
        public var cropHeight = 84
        public var cropWidth = 84
        /// Batch-1 calls to time (after 20 warm-up calls); the batch figure times max(3, iterations / 50) calls.
        public var iterations = 500
        public var batch = 64
        public var backbones: [ImageEncoderConfiguration.Backbone] = [.smallCNN, .resnet18]
        public var seed: UInt64 = 0
        /// The interpreter with torch and torchvision; nil: `$FLOWPOLICY_TORCH_PYTHON`, else
        /// `${FLOWPOLICY_CACHE:-~/.cache/flowpolicy}/torch-venv/bin/python` (scripts/test_torch.sh makes it).
        public var python: String?
        public init() {}
    }

    public struct Result: Codable, Sendable {
        public var backbone: String
        /// [H, W, C] of a frame, and [C, h, w] of the encoder's input after the crop.
        public var frame: [Int]
        public var input: [Int]
        public var parameters: Int
        public var multiplyAddsPerFrame: Int
        public var openBLASCore: String
        // Batch 1, one thread: milliseconds per call (one frame).
        public var latencyMilliseconds: LatencySummary
        public var allocationsPerCall: Double
        public var gflopsBatch1: Double
        // Batch `batch`, one thread: the time of one call / batch.
        public var batch: Int
        public var batchMillisecondsPerFrame: Double
        public var gflopsBatch: Double
        /// PyTorch's figures, or why there are none.
        public var torch: TorchResult?
        public var torchNote: String?
    }

    /// What `python -m flowpolicy_torch.vision bench` prints: the same figures for PyTorch's module, whose input is
    /// the float image already cropped and scaled.
    public struct TorchResult: Codable, Sendable {
        public var torch: String
        public var torchvision: String
        public var threads: Int
        public var input: [Int]
        public var parameters: Int
        public var latencyMilliseconds: LatencySummary
        public var batch: Int
        public var batchMillisecondsPerImage: Double
    }

    public static func run(settings: Settings, log: (String) -> Void) throws -> [Result] {
        var results: [Result] = []
        for backbone in settings.backbones {
            log("image encoder \(backbone.rawValue): batch 1 (\(settings.iterations) calls) and batch \(settings.batch)"
                + ", one thread")
            var result = try measure(backbone: backbone, settings: settings)
            log("image encoder \(backbone.rawValue): PyTorch")
            switch torch(backbone: backbone, settings: settings) {
            case .success(let figures): result.torch = figures
            case .failure(let failure): result.torchNote = failure.description
            }
            results.append(result)
        }
        return results
    }

    /// Our figures for one backbone: random (seeded) weights and frames, centre crops, one thread.
    static func measure(backbone: ImageEncoderConfiguration.Backbone, settings: Settings) throws -> Result {
        BLAS.threads = 1
        let camera = CameraSpec(name: "image", height: settings.frameHeight, width: settings.frameWidth,
                                channels: settings.channels)
        let configuration = ImageEncoderConfiguration(
            backbone: backbone, channels: settings.channels, height: settings.cropHeight, width: settings.cropWidth)
        let encoder = try ImageObservationEncoder(cameras: [camera], configuration: configuration)
        var generator = RandomSource(seed: settings.seed)
        let parameters = FloatBuffer(count: encoder.layout.count)
        encoder.layout.initialize(parameters, using: &generator)
        let B = settings.batch
        let frames = UnsafeMutablePointer<UInt8>.allocate(capacity: B * camera.byteCount)  // [B, H, W, C]
        defer { frames.deallocate() }
        for i in 0..<(B * camera.byteCount) { frames[i] = UInt8(truncatingIfNeeded: generator.next()) }
        let features = FloatBuffer(count: B * encoder.featuresPerStep)  // [B, F]
        let multiplyAdds = encoder.encoders[0].multiplyAddsPerImage

        let single = ImageObservationEncoderCache(encoder: encoder, capacity: 1)
        let encodeOne = {
            encoder.encode(frames: frames, steps: 1, parameters: parameters.pointer, cache: single,
                           features: features.pointer)
        }
        for _ in 0..<20 { encodeOne() }
        var latencies = [Double](repeating: 0, count: settings.iterations)
        let allocationsBefore = fp_thread_allocation_count()
        for i in 0..<settings.iterations {
            let start = monotonicSeconds()
            encodeOne()
            latencies[i] = (monotonicSeconds() - start) * 1000
        }
        let allocations = Double(fp_thread_allocation_count() - allocationsBefore) / Double(settings.iterations)
        let latency = LatencySummary(latencies)

        // The whole batch in one pass of the encoder (the cache holds all B images), as PyTorch runs it.
        let batched = ImageObservationEncoderCache(encoder: encoder, capacity: B)
        let encodeBatch = {
            encoder.encode(frames: frames, steps: B, parameters: parameters.pointer, cache: batched,
                           features: features.pointer)
        }
        encodeBatch()
        let repeats = max(3, settings.iterations / 50)
        let start = monotonicSeconds()
        for _ in 0..<repeats { encodeBatch() }
        let perFrame = (monotonicSeconds() - start) * 1000 / Double(repeats * B)

        let flops = 2 * Double(multiplyAdds)
        return Result(
            backbone: backbone.rawValue, frame: [camera.height, camera.width, camera.channels],
            input: [configuration.channels, configuration.height, configuration.width],
            parameters: encoder.layout.parameterCount, multiplyAddsPerFrame: multiplyAdds,
            openBLASCore: BLAS.coreType, latencyMilliseconds: latency, allocationsPerCall: allocations,
            gflopsBatch1: flops / (latency.p50 / 1000) / 1e9, batch: B, batchMillisecondsPerFrame: perFrame,
            gflopsBatch: flops / (perFrame / 1000) / 1e9)
    }

    /// The interpreter `settings.python` names, or the torch environment's.
    public static func torchInterpreter(_ python: String?) -> String {
        let environment = ProcessInfo.processInfo.environment
        if let python { return python }
        if let python = environment["FLOWPOLICY_TORCH_PYTHON"], !python.isEmpty { return python }
        let cache = environment["FLOWPOLICY_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/flowpolicy").path
        return URL(fileURLWithPath: cache).appendingPathComponent("torch-venv/bin/python").path
    }

    /// Runs `python -m flowpolicy_torch.vision bench` for `backbone` (the repository's `clients/python`, found as
    /// `ProjectPython` finds it, on PYTHONPATH; one OpenMP thread).
    static func torch(backbone: ImageEncoderConfiguration.Backbone, settings: Settings)
        -> Swift.Result<TorchResult, ProjectPython.Failure>
    {
        let install = "scripts/test_torch.sh installs torch and torchvision in the torch environment"
        let python = torchInterpreter(settings.python)
        guard !python.contains("/") || FileManager.default.isExecutableFile(atPath: python) else {
            return .failure(.init(description: "no interpreter at \(python): \(install), or name one with --python"))
        }
        let clients: URL
        do {
            let tasks = try TaskFolder(task: TaskDescription.knownTasks[0]).url.deletingLastPathComponent()
            clients = tasks.deletingLastPathComponent().appendingPathComponent("clients/python")
        } catch {
            return .failure(.init(description: "the repository's clients/python was not found: \(error)"))
        }
        guard FileManager.default.fileExists(atPath: clients.appendingPathComponent("flowpolicy_torch/vision.py").path)
        else { return .failure(.init(description: "\(clients.path)/flowpolicy_torch/vision.py not found")) }

        var environment = ProjectPython.environment(clients: clients.path)
        environment["OMP_NUM_THREADS"] = "1"
        environment["MKL_NUM_THREADS"] = "1"
        let arguments = [
            "-m", "flowpolicy_torch.vision", "bench", "--backbone", backbone.rawValue,
            "--batch", String(settings.batch), "--iterations", String(settings.iterations),
            "--channels", String(settings.channels), "--height", String(settings.cropHeight),
            "--width", String(settings.cropWidth), "--seed", String(settings.seed),
        ]
        let run: ProjectPython.Run
        do { run = try ProjectPython.run(python, arguments, environment: environment) } catch {
            return .failure(error)
        }
        guard run.status == 0 else {
            let last = run.lastErrorLine
            if last.contains("ModuleNotFoundError") || last.contains("ImportError") {
                return .failure(.init(description: "\(python) lacks a package (\(last)): \(install), or name another "
                    + "interpreter with --python"))
            }
            return .failure(.init(description: "\(python) -m flowpolicy_torch.vision bench failed with status "
                + "\(run.status): \(last)"))
        }
        let line = run.lastOutputLine
        do {
            return .success(try JSONDecoder().decode(TorchResult.self, from: Foundation.Data(line.utf8)))
        } catch {
            return .failure(
                .init(description: "\(python) -m flowpolicy_torch.vision bench printed no figures: \(line)"))
        }
    }
}
