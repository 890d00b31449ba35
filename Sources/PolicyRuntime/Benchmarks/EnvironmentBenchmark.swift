import CAllocationCounter
import FlowPolicy
import Foundation
import SimBridge

/// `flowpolicy bench env`: control steps per second of a task on one core, and of the reference implementation
/// (gym-pusht for Push-T) measured in the same run when its Python package is installed.
public enum EnvironmentBenchmark {
    public struct Result: Codable, Sendable {
        public var task: String
        public var controlSteps: Int
        public var substeps: Int
        public var stepsPerSecondPerCore: Double
        public var physicsStepsPerSecondPerCore: Double
        public var allocationsPerStep: Double
        public var reference: String?
        public var referenceStepsPerSecond: Double?
        public var referenceNote: String?
    }

    /// The action pattern both sides run: the target circles the field's centre at radius 100 (crossing the block,
    /// so contacts happen), one revolution every 63 steps; episodes restart with the next seed when they end.
    public static func target(step: Int) -> [Float] {
        let phase = Double(step) / 10
        return [Float(256 + 100 * cos(phase)), Float(256 + 100 * sin(phase))]
    }

    public static func run(task: String, steps: Int, python: String?) throws -> Result {
        let environment = try TaskRegistry.makeEnvironment(task)
        let specification = environment.specification
        guard specification.actionDimensions == 2 else {
            throw FlowPolicyError.invalidConfiguration("bench env drives 2-D targets; \(task) is not supported yet")
        }
        let observation = FloatBuffer(count: specification.observationDimensions)
        let action = FloatBuffer(count: 2)
        var seed: UInt64 = 0
        try environment.reset(seed: seed, observation: observation.pointer)
        let targets = (0..<steps).map(target(step:))
        let allocationsBefore = fp_thread_allocation_count()
        let start = monotonicSeconds()
        for step in 0..<steps {
            action[0] = targets[step][0]
            action[1] = targets[step][1]
            let result = try environment.step(action: action.pointer, observation: observation.pointer)
            if result.done {
                seed += 1
                try environment.reset(seed: seed, observation: observation.pointer)
            }
        }
        let seconds = monotonicSeconds() - start
        let allocations = Double(fp_thread_allocation_count() - allocationsBefore) / Double(steps)
        var result = Result(
            task: task, controlSteps: steps, substeps: specification.substeps,
            stepsPerSecondPerCore: Double(steps) / seconds,
            physicsStepsPerSecondPerCore: Double(steps * specification.substeps) / seconds,
            allocationsPerStep: allocations)
        if task == "pusht" {
            (result.reference, result.referenceStepsPerSecond, result.referenceNote) = reference(
                python: python, steps: steps)
        }
        return result
    }

    /// Runs `tools/bench_reference_env.py` with `python` if gym-pusht imports there.
    static func reference(python: String?, steps: Int) -> (String?, Double?, String?) {
        let interpreter = python ?? ProcessInfo.processInfo.environment["FLOWPOLICY_PYTHON"] ?? "python3"
        guard let script = try? TaskFolder(task: "pusht").url.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/bench_reference_env.py").path,
              FileManager.default.fileExists(atPath: script)
        else { return (nil, nil, "tools/bench_reference_env.py not found") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [interpreter, script, "--steps", String(steps)]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = Pipe()
        do { try process.run() } catch { return (nil, nil, "cannot run \(interpreter): \(error)") }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let report = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let rate = report["steps_per_second"] as? Double
        else {
            return (nil, nil, "gym-pusht is not installed for \(interpreter) (pip install gym-pusht==0.1.8, or "
                + "--python PATH)")
        }
        return (report["name"] as? String, rate, nil)
    }
}
