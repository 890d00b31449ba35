import FlowPolicy
import Foundation

/// ONNX Runtime on the same network, for `bench infer`: `tools/bench_onnx_reference.py bench` in the tools'
/// environment (`ProjectPython.interpreter`; scripts/setup.sh installs onnx and onnxruntime there) builds the
/// velocity network as an ONNX graph, times whole Euler chunks on one thread at fp32, bf16 and int8 (dynamic
/// quantization), and prints one JSON object.
public enum ONNXRuntimePeer {
    public struct PrecisionFigures: Codable, Sendable {
        public var supported: Bool
        /// Why a precision did not run (ONNX Runtime's CPU provider has no bf16 MatMul).
        public var reason: String?
        public var p50Milliseconds: Double?
        public var p99Milliseconds: Double?
        public var chunksPerSecond: Double?
        public var maxAbsErrorVsFP32: Double?

        enum CodingKeys: String, CodingKey {
            case supported, reason
            case p50Milliseconds = "p50_ms"
            case p99Milliseconds = "p99_ms"
            case chunksPerSecond = "chunks_per_second"
            case maxAbsErrorVsFP32 = "max_abs_error_vs_fp32"
        }
    }

    public struct Result: Codable, Sendable {
        public var name: String
        public var precisions: [String: PrecisionFigures]
    }

    /// Runs the peer on the checkpoint at `checkpointPath` (nil: the reference network, random weights of the same
    /// sizes) with the benchmark's K, iterations and batch. Euler only: the peer integrates with Euler.
    static func run(checkpointPath: String?, settings: InferenceBenchmark.Settings)
        -> Swift.Result<Result, ProjectPython.Failure>
    {
        guard settings.method == .euler else {
            return .failure(.init(description: "the ONNX Runtime peer integrates with Euler only"))
        }
        do {
            let python = try ProjectPython.interpreter(libraries: "onnx and onnxruntime")
            let folders = try ProjectPython.folders(package: "flowpolicy_data")
            let script = URL(fileURLWithPath: folders.tasks).deletingLastPathComponent()
                .appendingPathComponent("tools/bench_onnx_reference.py").path
            var arguments = [
                script, "bench", "--steps", String(settings.steps), "--iterations", String(settings.iterations),
                "--batch", String(settings.batch), "--threads", "1",
                "--precisions", Precision.allCases.filter { $0 == .fp32 || settings.precisions.contains($0) }
                    .map(\.rawValue).joined(separator: ","),
            ]
            if let checkpointPath { arguments += ["--checkpoint", checkpointPath] }
            let run = try ProjectPython.run(
                python, arguments, environment: ProjectPython.environment(clients: folders.clients))
            guard run.status == 0 else {
                let last = run.lastErrorLine
                if last.contains("ModuleNotFoundError") || last.contains("ImportError") {
                    return .failure(.init(description: "\(python) lacks onnx or onnxruntime (\(last)): run "
                        + "scripts/setup.sh"))
                }
                return .failure(.init(description: "tools/bench_onnx_reference.py failed: \(last)"))
            }
            return .success(try JSONDecoder().decode(Result.self, from: run.output))
        } catch let failure as ProjectPython.Failure {
            return .failure(failure)
        } catch {
            return .failure(.init(description: "tools/bench_onnx_reference.py printed no figures: \(error)"))
        }
    }
}
