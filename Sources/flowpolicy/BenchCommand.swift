import ArgumentParser
import FlowPolicy
import Foundation
import FlowPolicyCLI
import PolicyLab
import PolicyRuntime
import SimBridge

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure speed; prints figures, asserts nothing.",
        subcommands: [BenchInferCommand.self, BenchEnvCommand.self, BenchServeCommand.self, BenchLoopCommand.self])
}

struct BenchInferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Inference latency and throughput of a policy network, and training throughput.",
        discussion: """
            Without --checkpoint, benchmarks the reference network: ResMLP-FiLM H=512, 4 blocks, Te=64, To=2, Do=5, \
            Tp=16, Da=2 (2.45 M parameters). Batch-1 latency runs on one thread and is compared with the floor \
            weight bytes x K / (single-core read bandwidth measured for a buffer of that size). A checkpoint with \
            cameras gets random frames, so its chunk figures include the image encoders (crop and forward pass); its \
            training throughput is not measured.

            --encoders adds the image encoders alone (small_cnn, resnet18; random weights), on one thread: random \
            96 x 96 x 3 uint8 frames centre-cropped to 84 x 84 and scaled, latency per frame at batch 1 and the time \
            per frame of a --batch call, against PyTorch's module (flowpolicy_torch.vision, torchvision's ResNet-18) \
            in the same run, one thread, no_grad, on 84 x 84 float input (no crop). PyTorch runs in \
            ${FLOWPOLICY_CACHE:-~/.cache/flowpolicy}/torch-venv (scripts/test_torch.sh installs it) unless \
            FLOWPOLICY_TORCH_PYTHON or --python names another interpreter.
            """)

    @Option(help: "Checkpoint to benchmark (default: the reference network with random weights).")
    var checkpoint: String?

    @OptionGroup var sampling: SolverOptions

    @Option(parsing: .unconditional, help: "Batch-1 calls to time.")
    var iterations: Int = 500

    @Option(parsing: .unconditional, help: "Batch size for the throughput figure.")
    var batch: Int = 64

    @Option(help: "Time only this precision beside fp32 (default: fp32, bf16 and int8).")
    var precision: Precision?

    @Flag(inversion: .prefixedNo, help: """
        Time ONNX Runtime on the same network (tools/bench_onnx_reference.py in the tools' environment; Euler only).
        """)
    var onnxRuntime = true

    @Flag(help: "Also time the image encoders (small_cnn, resnet18) on 96 x 96 frames cropped to 84 x 84, and PyTorch.")
    var encoders = false

    @Option(help: "Python interpreter with torch and torchvision for --encoders (default: the torch environment).")
    var python: String?

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.integer("--iterations", iterations, in: 1...1_000_000)
        try Check.integer("--batch", batch, in: 1...16_384)
        try Check.inputFile("--checkpoint", checkpoint)
        try Check.inputFile("--python", python)
        if python != nil && !encoders { throw ValidationError("--python goes with --encoders") }
    }

    func run() throws {
        try reportingErrors {
            var settings = InferenceBenchmark.Settings()
            settings.method = sampling.solver
            settings.steps = sampling.steps
            settings.iterations = iterations
            settings.batch = batch
            settings.precisions = precision.map { [$0] } ?? Precision.allCases
            settings.onnxRuntime = onnxRuntime
            settings.checkpointPath = checkpoint
            let model = try checkpoint.map { try Checkpoint(contentsOf: $0) }
                ?? InferenceBenchmark.referenceCheckpoint()
            let log: (String) -> Void = { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }
            var r = try InferenceBenchmark.run(checkpoint: model, settings: settings, log: log)
            let floorBytes = r.encoderWeightBytes.map {
                "(\(r.weightBytes / 1000) kB x \(r.steps) + \($0 / 1000) kB of image encoders)"
            } ?? "\(r.weightBytes / 1000) kB x \(r.steps)"
            let training = r.trainingSamplesPerSecond.map {
                "batch \(r.trainingBatch) on \(r.trainingThreads) threads: \(Int($0)) samples/s"
            } ?? (r.trainingNote ?? "not measured")
            print("""
                network      \(r.network), \(r.parameters) parameters (\(r.weightBytes / 1000) kB)
                solver       \(r.solver) K=\(r.steps); OpenBLAS core \(r.openBLASCore)
                floor        \(ms(r.floorMilliseconds)) = \(floorBytes) / \
                \(String(format: "%.1f", r.readBandwidthGBPerSecond)) GB/s (fp32 weights, single-core read bandwidth)
                \(pad("", 16))\(pad("kernel", 22))batch 1, 1 thread\(pad("", 30))batch \(r.batch), chunks/s   \
                chunk error
                \(pad("", 16))\(pad("", 22))\(pad("p50", 11))\(pad("p99", 11))p50/floor  allocs  \
                \(pad("1 thread", 11))\(pad("\(settings.threads) threads", 12))vs fp32
                """)
            for figures in r.precisions {
                print("""
                      \(pad(figures.precision, 14))\(pad(figures.kernel, 22))\
                    \(pad(ms(figures.latencyMilliseconds.p50), 11))\(pad(ms(figures.latencyMilliseconds.p99), 11))\
                    \(pad(String(format: "%.2f", figures.p50OverFloor), 11))\
                    \(pad(String(format: "%.2f", figures.allocationsPerCall), 8))\
                    \(pad(String(Int(figures.chunksPerSecondOneThread)), 11))\
                    \(pad(String(Int(figures.chunksPerSecondAllThreads)), 12))\
                    \(String(format: "%.2g", figures.maxChunkError))
                    """)
            }
            print("""
                  chunk error: the largest difference from fp32's chunks over \(r.batch) windows with the same noise, \
                normalized action units
                batch \(r.batch) fp32: \(String(format: "%.1f", r.gflopsOneThread)) GFLOP/s on 1 thread, \
                \(String(format: "%.1f", r.gflopsAllThreads)) on \(settings.threads); sgemm \
                \(r.sgemmShape.map(String.init).joined(separator: "x")) on 1 thread: \
                \(String(format: "%.1f", r.sgemmGflopsOneThread)) GFLOP/s
                training     \(training)
                """)
            printONNXRuntime(r)
            if encoders {
                var encoderSettings = ImageEncoderBenchmark.Settings()
                encoderSettings.iterations = iterations
                encoderSettings.batch = batch
                encoderSettings.python = python
                let figures = try ImageEncoderBenchmark.run(settings: encoderSettings, log: log)
                r.encoders = figures
                printEncoders(figures, settings: encoderSettings)
            }
            if let json = report.json { try writeJSONReport(r, to: json) }
        }
    }

    private func printEncoders(_ figures: [ImageEncoderBenchmark.Result], settings: ImageEncoderBenchmark.Settings) {
        print("""
            image encoders  \(settings.frameHeight) x \(settings.frameWidth) x \(settings.channels) uint8 frames, \
            centre crop to \(settings.cropHeight) x \(settings.cropWidth), scaled to [-1, 1]; random weights, 1 thread
            """)
        for e in figures {
            let gflops = { String(format: "%.1f GFLOP/s", $0) }
            print("""
                \(pad(e.backbone, 13))\
                \(e.parameters) parameters, \(String(format: "%.1f", Double(e.multiplyAddsPerFrame) / 1e6)) M \
                multiply-adds per frame
                  batch 1    p50 \(ms(e.latencyMilliseconds.p50))  p99 \(ms(e.latencyMilliseconds.p99))  \
                max \(ms(e.latencyMilliseconds.max)) per frame (\(e.latencyMilliseconds.count) calls), \
                \(gflops(e.gflopsBatch1)) at p50
                  allocations per call  \(String(format: "%.2f", e.allocationsPerCall))
                  \(pad("batch \(e.batch)", 11))\(ms(e.batchMillisecondsPerFrame)) per frame, \(gflops(e.gflopsBatch))
                """)
            if let t = e.torch {
                let version = { (full: String) in full.split(separator: "+").first.map(String.init) ?? full }
                let speed = (t.latencyMilliseconds.p50 / e.latencyMilliseconds.p50,
                             t.batchMillisecondsPerImage / e.batchMillisecondsPerFrame)
                print("""
                      PyTorch    \(version(t.torch)), torchvision \(version(t.torchvision)), \(t.threads) thread, \
                    no_grad, \(t.input.map(String.init).joined(separator: " x ")) float input (excludes the crop)
                        batch 1    p50 \(ms(t.latencyMilliseconds.p50))  p99 \(ms(t.latencyMilliseconds.p99))  \
                    max \(ms(t.latencyMilliseconds.max)) per frame (\(t.latencyMilliseconds.count) calls)
                        \(pad("batch \(t.batch)", 11))\(ms(t.batchMillisecondsPerImage)) per frame
                        flowpolicy is \(String(format: "%.2f", speed.0))x PyTorch's speed at batch 1 (p50), \
                    \(String(format: "%.2f", speed.1))x at batch \(e.batch)
                    """)
            } else {
                print("  PyTorch    not measured: \(e.torchNote ?? "no figures")")
            }
        }
    }

    /// ONNX Runtime's figures, and each precision's speed over them: over ONNX Runtime at the same precision, or
    /// at fp32 where ONNX Runtime cannot run that precision.
    private func printONNXRuntime(_ r: InferenceBenchmark.Result) {
        guard let peer = r.onnxRuntime else {
            if onnxRuntime { print("ONNX Runtime not measured: \(r.onnxRuntimeNote ?? "no figures")") }
            return
        }
        print("\(peer.name), 1 thread, Euler K=\(r.steps), whole chunks")
        for figures in r.precisions where !figures.precision.contains("OpenBLAS") {
            guard let own = peer.precisions[figures.precision] else { continue }
            let compared = own.supported ? (figures.precision, own) : ("fp32", peer.precisions["fp32"])
            let measured = own.p50Milliseconds.map {
                "p50 \(ms($0))  p99 \(ms(own.p99Milliseconds ?? .nan))  batch \(r.batch) "
                    + "\(Int(own.chunksPerSecond ?? 0)) chunks/s"
            } ?? "not run: \(own.reason ?? "unsupported")"
            print("  \(pad(figures.precision, 14))\(measured)")
            guard let peerP50 = compared.1?.p50Milliseconds, let peerRate = compared.1?.chunksPerSecond
            else { continue }
            print("""
                  \(pad("", 14))flowpolicy \(figures.precision) is \
                \(String(format: "%.2f", peerP50 / figures.latencyMilliseconds.p50))x ONNX Runtime \(compared.0) at \
                batch 1 (p50), \(String(format: "%.2f", figures.chunksPerSecondOneThread / peerRate))x at batch \
                \(r.batch) (1 thread)
                """)
        }
    }

    private func ms(_ value: Double) -> String { String(format: "%.3f ms", value) }

    /// `text` and at least one space, padded to `width` characters.
    private func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(1, width - text.count))
    }
}

struct BenchEnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Environment steps per second on one core, and the reference implementation's in the same run.",
        discussion: """
            The actions follow a fixed smooth pattern; episodes restart when they end. The reference is timed with \
            the same actions when its Python package imports (FLOWPOLICY_PYTHON or --python): gym-pusht for pusht, \
            Gymnasium-Robotics for franka_kitchen (default ~/.cache/flowpolicy/venv-kitchen/bin/python).
            """)

    @Option(help: "Task.")
    var task: String = "pusht"

    @Option(parsing: .unconditional, help: "Control steps to time.")
    var steps: Int = 20_000

    @Option(help: "Python interpreter that has the reference package (gym-pusht, gymnasium-robotics).")
    var python: String?

    @Flag(help: "Also time the task's renderer (frames/s at 96 × 96 and 256 × 256).")
    var render = false

    @OptionGroup var report: ReportOptions

    func validate() throws {
        try Check.integer("--steps", steps, in: 1...100_000_000)
        try checkTaskName(task)
        try Check.inputFile("--python", python)
    }

    func run() throws {
        try reportingErrors {
            let r = try EnvironmentBenchmark.run(task: TaskDescription.named(task), steps: steps, python: python,
                                                 renderSizes: render ? [96, 256] : [])
            print(String(format: "%@: %.0f control steps/s per core (%.0f physics steps/s, %d substeps), "
                         + "%.2f allocations per step", r.task, r.stepsPerSecondPerCore, r.physicsStepsPerSecondPerCore,
                         r.substeps, r.allocationsPerStep))
            if let name = r.reference, let rate = r.referenceStepsPerSecond {
                print(String(format: "%@: %.0f control steps/s per core (same actions); flowpolicy is %.1fx",
                             name, rate, r.stepsPerSecondPerCore / rate))
            } else if let note = r.referenceNote {
                print("reference: not measured (\(note))")
            }
            for figure in r.rendering ?? [] {
                print(String(format: "rendering %d × %d: %.0f frames/s (%d frames), %.2f allocations per frame",
                             figure.width, figure.height, figure.framesPerSecond, figure.frames,
                             figure.allocationsPerFrame))
            }
            if let json = report.json { try writeJSONReport(r, to: json) }
        }
    }
}
