import CAllocationCounter
import FlowPolicy
import PolicyRuntime
import Foundation
import SimBridge

/// `flowpolicy bench env`: control steps per second of a task on one core, and of the reference implementation
/// (gym-pusht for Push-T, Gymnasium-Robotics for Franka Kitchen, robosuite for the Robomimic tasks) measured in the
/// same run when its Python package is installed.
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
        /// `--render`: frames per second of the task's renderer at each size, and heap allocations per frame.
        public var rendering: [RenderingFigure]?
    }

    public struct RenderingFigure: Codable, Sendable {
        public var width: Int
        public var height: Int
        public var frames: Int
        public var framesPerSecond: Double
        public var allocationsPerFrame: Double
    }

    /// The action pattern: component d oscillates about the middle of its bounds with 39% of the half-range,
    /// `sin(step / 10 + d π / 2)`. For Push-T that is a circle of radius 100 about the field's centre, crossing the
    /// block, one revolution every 63 steps. Episodes restart with the next seed when they end.
    public static func action(step: Int, low: [Float], high: [Float]) -> [Float] {
        (0..<low.count).map { d in
            let middle = Double(low[d] + high[d]) / 2
            let half = Double(high[d] - low[d]) / 2
            return Float(middle + 0.390625 * half * sin(Double(step) / 10 + Double(d) * Double.pi / 2))
        }
    }

    public static func run(task description: TaskDescription, steps: Int, python: String?, renderSizes: [Int] = [])
        throws -> Result
    {
        let task = description.name
        let rollout = try Rollout(task: description)
        let specification = rollout.specification
        let Da = specification.actionDimensions
        let action = FloatBuffer(count: Da)
        var seed: UInt64 = 0
        try rollout.reset(seed: seed)
        let targets = (0..<steps).map {
            Self.action(step: $0, low: specification.actionLow, high: specification.actionHigh)
        }
        let allocationsBefore = fp_thread_allocation_count()
        let start = monotonicSeconds()
        for step in 0..<steps {
            for d in 0..<Da { action[d] = targets[step][d] }
            rollout.step(action.pointer)
            if let failure = rollout.outcome.failure { throw EnvironmentError.invalidState(failure) }
            if rollout.isDone {
                seed += 1
                try rollout.reset(seed: seed)
            }
        }
        let seconds = monotonicSeconds() - start
        let allocations = Double(fp_thread_allocation_count() - allocationsBefore) / Double(steps)
        var result = Result(
            task: task, controlSteps: steps, substeps: specification.substeps,
            stepsPerSecondPerCore: Double(steps) / seconds,
            physicsStepsPerSecondPerCore: Double(steps * specification.substeps) / seconds,
            allocationsPerStep: allocations)
        if !renderSizes.isEmpty {
            result.rendering = try renderSizes.map { try rendering(rollout: rollout, size: $0) }
        }
        switch task {
        case "pusht":
            (result.reference, result.referenceStepsPerSecond, result.referenceNote) = reference(
                python: python, steps: steps, task: description, script: "bench_reference_env.py", arguments: [],
                install: "pip install gym-pusht==0.1.8")
        case "franka_kitchen":
            // Gymnasium-Robotics 1.4.2 needs MuJoCo 3.x, so it lives in a virtual environment of its own.
            let kitchenPython = FileManager.default.homeDirectoryForCurrentUser
                .appendingPathComponent(".cache/flowpolicy/venv-kitchen/bin/python").path
            (result.reference, result.referenceStepsPerSecond, result.referenceNote) = reference(
                python: python ?? (FileManager.default.fileExists(atPath: kitchenPython) ? kitchenPython : nil),
                steps: steps, task: description, script: "bench_kitchen_reference.py", arguments: [],
                install: "python3 -m venv ~/.cache/flowpolicy/venv-kitchen && ~/.cache/flowpolicy/venv-kitchen/bin/pip "
                    + "install gymnasium-robotics==1.4.2 mujoco==3.3.7")
        case "robomimic_lift", "robomimic_can", "robomimic_square":
            // robosuite 1.5.2 needs MuJoCo 3.x, so it lives in a virtual environment of its own.
            let robosuitePython = FileManager.default.homeDirectoryForCurrentUser
                .appendingPathComponent(".cache/flowpolicy/venv-robosuite/bin/python").path
            (result.reference, result.referenceStepsPerSecond, result.referenceNote) = reference(
                python: python ?? (FileManager.default.fileExists(atPath: robosuitePython) ? robosuitePython : nil),
                steps: steps, task: description, script: "bench_robosuite_reference.py", arguments: ["--task", task],
                install: "python3 -m venv ~/.cache/flowpolicy/venv-robosuite && "
                    + "~/.cache/flowpolicy/venv-robosuite/bin/pip install robosuite==1.5.2 mujoco==3.3.7")
        default:
            break
        }
        return result
    }

    /// Frames per second of the task's renderer at `size` × `size`, on the first seed's state after 20 steps (at
    /// least 20 frames and one second).
    static func rendering(rollout: Rollout, size: Int) throws -> RenderingFigure {
        guard let environment = rollout.environment as? any RenderableEnvironment else {
            throw FlowPolicyError.invalidConfiguration("task \(rollout.specification.task) cannot be rendered yet")
        }
        try rollout.reset(seed: 0)
        let specification = rollout.specification
        for step in 0..<20 {
            let action = Self.action(step: step, low: specification.actionLow, high: specification.actionHigh)
            action.withUnsafeBufferPointer { _ = rollout.step($0.baseAddress!) }
        }
        let renderer = try environment.makeRenderer(width: size, height: size)
        let pixels = UnsafeMutablePointer<UInt8>.allocate(capacity: size * size * 3)
        defer { pixels.deallocate() }
        try renderer.render(into: pixels)  // warm-up
        let allocationsBefore = fp_thread_allocation_count()
        let start = monotonicSeconds()
        var frames = 0
        while frames < 20 || monotonicSeconds() - start < 1 {
            try renderer.render(into: pixels)
            frames += 1
        }
        let seconds = monotonicSeconds() - start
        return RenderingFigure(
            width: size, height: size, frames: frames, framesPerSecond: Double(frames) / seconds,
            allocationsPerFrame: Double(fp_thread_allocation_count() - allocationsBefore) / Double(frames))
    }

    /// Runs `tools/<script>` with `python` if the reference package imports there.
    static func reference(
        python: String?, steps: Int, task: TaskDescription, script name: String, arguments: [String], install: String
    ) -> (String?, Double?, String?) {
        let interpreter = python ?? ProcessInfo.processInfo.environment["FLOWPOLICY_PYTHON"] ?? "python3"
        let script = task.folder.url.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/\(name)").path
        guard FileManager.default.fileExists(atPath: script)
        else { return (nil, nil, "tools/\(name) not found") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [interpreter, script, "--steps", String(steps)] + arguments
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
            return (nil, nil, "the reference is not installed for \(interpreter) (\(install), or name an interpreter "
                + "that has it)")
        }
        return (report["name"] as? String, rate, nil)
    }
}
