import Foundation

/// A proportion with its 95% Wilson score interval (better than the normal approximation near 0 and 1 and for
/// small samples).
public struct ProportionEstimate: Codable, Sendable, Equatable {
    public var successes: Int
    public var trials: Int
    public var rate: Double
    public var low: Double
    public var high: Double

    public init(successes: Int, trials: Int, z: Double = 1.959_963_984_540_054) {
        self.successes = successes
        self.trials = trials
        guard trials > 0 else {
            rate = .nan
            low = .nan
            high = .nan
            return
        }
        let n = Double(trials)
        let p = Double(successes) / n
        let denominator = 1 + z * z / n
        let center = (p + z * z / (2 * n)) / denominator
        let half = z * (p * (1 - p) / n + z * z / (4 * n * n)).squareRoot() / denominator
        rate = p
        low = max(0, center - half)
        high = min(1, center + half)
    }

    /// `0.915 [0.869, 0.946] (183/200)`.
    public var text: String {
        String(format: "%.3f [%.3f, %.3f] (%d/%d)", rate, low, high, successes, trials)
    }
}

/// A mean with its 95% confidence interval (normal approximation, sample standard deviation), clipped to `bounds`
/// when the values are known to lie there (a mean of coverages cannot exceed 1).
public struct MeanEstimate: Codable, Sendable, Equatable {
    public var mean: Double
    public var low: Double
    public var high: Double
    public var count: Int

    public init(_ values: [Double], bounds: ClosedRange<Double>? = nil) {
        count = values.count
        guard !values.isEmpty else {
            mean = .nan
            low = .nan
            high = .nan
            return
        }
        let average = values.reduce(0, +) / Double(values.count)
        mean = average
        let variance = values.count > 1
            ? values.reduce(0) { $0 + ($1 - average) * ($1 - average) } / Double(values.count - 1) : 0
        let half = 1.959_963_984_540_054 * (variance / Double(values.count)).squareRoot()
        low = max(mean - half, bounds?.lowerBound ?? -.infinity)
        high = min(mean + half, bounds?.upperBound ?? .infinity)
    }

    public var text: String { String(format: "%.3f [%.3f, %.3f]", mean, low, high) }
}
