import Foundation
import FlowPolicy

/// Random values in [-scale, scale].
func randomValues(_ count: Int, scale: Float = 1, seed: UInt64) -> [Float] {
    var generator = RandomSource(seed: seed)
    return (0..<count).map { _ in (2 * generator.nextUniform() - 1) * scale }
}

/// `Σ w_i y_i` accumulated in Double: a scalar loss whose gradient with respect to `y` is `w`.
func projection(_ y: UnsafePointer<Float>, _ w: [Float]) -> Double {
    var total = 0.0
    for i in w.indices { total += Double(y[i]) * Double(w[i]) }
    return total
}

/// Central finite difference of `loss` with respect to `value[index]`.
///
/// Tolerance used by the gradient tests: the forward passes run in Float32, so the loss carries a relative rounding
/// error of about 1e-6 (a few ulps accumulated over the layer); divided by 2ε = 2e-3 that is an absolute error of
/// about 1e-3 of the loss scale, and the truncation error ε² f''' / 6 is ~1e-7. Hence |fd - analytic| must be
/// below 5e-3 + 1e-2 |analytic|: a wrong sign, factor or index gives errors of order |analytic| itself.
func centralDifference(
    _ value: UnsafeMutablePointer<Float>, index: Int, epsilon: Float = 1e-3, loss: () -> Double
) -> Double {
    let original = value[index]
    value[index] = original + epsilon
    let plus = loss()
    value[index] = original - epsilon
    let minus = loss()
    value[index] = original
    let actualStep = Double(original + epsilon) - Double(original - epsilon)
    return (plus - minus) / actualStep
}

func gradientsAgree(_ finiteDifference: Double, _ analytic: Float) -> Bool {
    abs(finiteDifference - Double(analytic)) <= 5e-3 + 1e-2 * abs(Double(analytic))
}

func temporaryPath(_ name: String) -> String {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flowpolicy-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder.appendingPathComponent(name).path
}

/// The Python interpreter for cross-checks: `$FLOWPOLICY_PYTHON` (the README's test command points it at the
/// project's virtual environment), else `python3`.
var pythonInterpreter: String { ProcessInfo.processInfo.environment["FLOWPOLICY_PYTHON"] ?? "python3" }

/// Runs a Python snippet; returns (exit status, stdout + stderr).
func runPython(_ code: String) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [pythonInterpreter, "-c", code]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
