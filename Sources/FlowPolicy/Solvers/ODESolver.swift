import Foundation

/// A fixed-step method for `dx/dt = f(t, x)`.
public enum SolverMethod: String, CaseIterable, Codable, Sendable {
    case euler, midpoint, rk4

    /// Velocity evaluations per step.
    public var evaluationsPerStep: Int {
        switch self {
        case .euler: return 1
        case .midpoint: return 2
        case .rk4: return 4
        }
    }

    /// Order of accuracy.
    public var order: Int {
        switch self {
        case .euler: return 1
        case .midpoint: return 2
        case .rk4: return 4
        }
    }
}

/// Statistics of an adaptive integration.
public struct AdaptiveStatistics: Sendable, Equatable {
    public var acceptedSteps = 0
    public var rejectedSteps = 0
    public var evaluations = 0
}

/// Integrates `dx/dt = f(t, x)` for a flat state of `n` floats (a batch of flattened action chunks), with fixed-step
/// Euler, midpoint or RK4, or adaptive Dormand–Prince 5(4). Time may run backwards (`t1 < t0`).
///
/// The field is a non-escaping closure `f(t, x, dxdt)` that writes `dx/dt` at `(t, x)`; every stage buffer is
/// allocated once at construction, so integrating allocates nothing.
public final class ODESolver {
    public let capacity: Int
    private let storage: FloatBuffer
    private let stages: [UnsafeMutablePointer<Float>]  // 7 x [n]
    private let stageState: UnsafeMutablePointer<Float>  // [n]

    public init(capacity: Int) {
        self.capacity = capacity
        let storage = FloatBuffer(count: 8 * capacity)
        self.storage = storage
        stages = (0..<7).map { storage.pointer + $0 * capacity }
        stageState = storage.pointer + 7 * capacity
    }

    /// `K` steps of `method` from `t0` to `t1`, updating `x [n]` in place.
    public func integrate(
        _ x: UnsafeMutablePointer<Float>, count n: Int, from t0: Float, to t1: Float, steps K: Int,
        method: SolverMethod, field: (Float, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    ) {
        precondition(n <= capacity && K >= 1)
        let h = (t1 - t0) / Float(K)
        for k in 0..<K {
            step(x, count: n, t: t0 + Float(k) * h, h: h, method: method, field: field)
        }
    }

    /// One step of `method` from `t` of size `h`, updating `x [n]` in place.
    @inline(__always)
    public func step(
        _ x: UnsafeMutablePointer<Float>, count n: Int, t: Float, h: Float, method: SolverMethod,
        field: (Float, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    ) {
        let (k1, k2, k3, k4, y) = (stages[0], stages[1], stages[2], stages[3], stageState)
        switch method {
        case .euler:
            field(t, x, k1)
            for i in 0..<n { x[i] += h * k1[i] }
        case .midpoint:
            field(t, x, k1)
            for i in 0..<n { y[i] = x[i] + 0.5 * h * k1[i] }
            field(t + 0.5 * h, y, k2)
            for i in 0..<n { x[i] += h * k2[i] }
        case .rk4:
            field(t, x, k1)
            for i in 0..<n { y[i] = x[i] + 0.5 * h * k1[i] }
            field(t + 0.5 * h, y, k2)
            for i in 0..<n { y[i] = x[i] + 0.5 * h * k2[i] }
            field(t + 0.5 * h, y, k3)
            for i in 0..<n { y[i] = x[i] + h * k3[i] }
            field(t + h, y, k4)
            let sixth = h / 6
            for i in 0..<n { x[i] += sixth * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]) }
        }
    }

    // Dormand–Prince 5(4) tableau (Hairer, Nørsett & Wanner, Table II.5.2); `b` gives the fifth-order solution,
    // `e = b - b*` the difference to the embedded fourth-order one.
    private static let c: [Float] = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1]
    private static let a: [[Float]] = [
        [],
        [1 / 5],
        [3 / 40, 9 / 40],
        [44 / 45, -56 / 15, 32 / 9],
        [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
        [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
        [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
    ]
    private static let e: [Float] = [
        71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40,
    ]

    /// Adaptive Dormand–Prince 5(4) from `t0` to `t1` with error control per element
    /// `|err_i| <= atol + rtol * max(|x_i|, |x_new_i|)`, every element (the max norm: the state is a batch of
    /// independent samples, and an RMS norm would let a few stiff samples hide behind many smooth ones). Used for
    /// reference solutions and for pushing data through flows.
    @discardableResult
    public func integrateAdaptive(
        _ x: UnsafeMutablePointer<Float>, count n: Int, from t0: Float, to t1: Float,
        relativeTolerance rtol: Float = 1e-5, absoluteTolerance atol: Float = 1e-5, maximumSteps: Int = 100_000,
        field: (Float, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    ) throws(FlowPolicyError) -> AdaptiveStatistics {
        precondition(n <= capacity)
        var statistics = AdaptiveStatistics()
        let direction: Float = t1 >= t0 ? 1 : -1
        let span = abs(t1 - t0)
        guard span > 0 else { return statistics }
        let k = stages
        let y = stageState
        func maximumNorm(_ values: (Int) -> Float) -> Float {
            var largest: Float = 0
            for i in 0..<n {
                let v = abs(values(i))
                if !(v <= largest) { largest = v }  // keeps NaN
            }
            return largest
        }
        field(t0, x, k[0])
        statistics.evaluations += 1
        // Initial step (Hairer, Nørsett & Wanner, II.4).
        let d0 = maximumNorm { x[$0] / (atol + rtol * abs(x[$0])) }
        let d1 = maximumNorm { k[0][$0] / (atol + rtol * abs(x[$0])) }
        var h0: Float = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1
        h0 = min(h0, span)
        for i in 0..<n { y[i] = x[i] + direction * h0 * k[0][i] }
        field(t0 + direction * h0, y, k[1])
        statistics.evaluations += 1
        let d2 = maximumNorm { (k[1][$0] - k[0][$0]) / (atol + rtol * abs(x[$0])) } / h0
        let h1: Float = max(d1, d2) <= 1e-15 ? max(1e-6, h0 * 1e-3) : Float(pow(Double(0.01 / max(d1, d2)), 0.2))
        var h = min(100 * h0, h1, span)
        var t = t0
        var remaining = span
        while remaining > 0 {
            guard statistics.acceptedSteps + statistics.rejectedSteps < maximumSteps else {
                throw .nonFinite(
                    "adaptive solver gave up after \(maximumSteps) steps at t = \(t) (stiff or diverging field)")
            }
            h = min(h, remaining)
            let signedH = direction * h
            for stage in 1..<7 {
                let coefficients = Self.a[stage]
                for i in 0..<n {
                    var sum: Float = 0
                    for j in 0..<stage { sum += coefficients[j] * k[j][i] }
                    y[i] = x[i] + signedH * sum
                }
                field(t + Self.c[stage] * signedH, y, k[stage])
                statistics.evaluations += 1
            }
            // y now holds the fifth-order solution (stage 7 is evaluated at it: first-same-as-last).
            let error = maximumNorm { i in
                var difference: Float = 0
                for j in 0..<7 { difference += Self.e[j] * k[j][i] }
                return signedH * difference / (atol + rtol * max(abs(x[i]), abs(y[i])))
            }
            guard error.isFinite else {
                throw .nonFinite("adaptive solver met a non-finite velocity at t = \(t)")
            }
            if error <= 1 {
                t += signedH
                remaining -= h
                x.update(from: y, count: n)
                k[0].update(from: k[6], count: n)
                statistics.acceptedSteps += 1
                let factor = error == 0 ? 10 : min(10, 0.9 * Float(pow(Double(error), -0.2)))
                h *= factor
            } else {
                statistics.rejectedSteps += 1
                h *= max(0.2, 0.9 * Float(pow(Double(error), -0.2)))
            }
            if remaining < 1e-7 * span { remaining = 0 }
        }
        return statistics
    }
}
