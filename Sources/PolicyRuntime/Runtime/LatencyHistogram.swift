import Histogram

/// An HDR histogram of durations in nanoseconds (1 ns to 100 s, 3 significant digits), recorded without allocating.
public struct LatencyHistogram: Sendable {
    public private(set) var histogram: Histogram<UInt64>

    public init() {
        histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 100_000_000_000,
                                      numberOfSignificantValueDigits: .three)
    }

    /// Records one duration (values beyond the range are clamped to it).
    @inline(__always)
    public mutating func record(nanoseconds: UInt64) {
        _ = histogram.record(min(max(nanoseconds, 1), histogram.highestTrackableValue))
    }

    public mutating func add(_ other: LatencyHistogram) { histogram.add(other.histogram) }

    public var count: UInt64 { histogram.totalCount }

    /// p50 / p99 / p99.9 / max in microseconds.
    public var summary: HistogramSummary { HistogramSummary(self) }
}

/// What a `LatencyHistogram` reports, in microseconds.
public struct HistogramSummary: Codable, Sendable, Equatable {
    public var count: UInt64
    public var meanMicroseconds: Double
    public var p50Microseconds: Double
    public var p99Microseconds: Double
    public var p999Microseconds: Double
    public var maxMicroseconds: Double

    public init(_ latency: LatencyHistogram) {
        let h = latency.histogram
        count = h.totalCount
        func us(_ value: UInt64) -> Double { Double(value) / 1000 }
        meanMicroseconds = count == 0 ? 0 : h.mean / 1000
        p50Microseconds = count == 0 ? 0 : us(h.valueAtPercentile(50))
        p99Microseconds = count == 0 ? 0 : us(h.valueAtPercentile(99))
        p999Microseconds = count == 0 ? 0 : us(h.valueAtPercentile(99.9))
        maxMicroseconds = count == 0 ? 0 : us(h.max)
    }

    /// `p50 12.0 µs  p99 40.1 µs  p99.9 80.2 µs  max 120.5 µs (6000)`, or milliseconds with `unit: .milliseconds`.
    public func text(milliseconds: Bool = false) -> String {
        let scale = milliseconds ? 1000.0 : 1
        let unit = milliseconds ? "ms" : "µs"
        func f(_ value: Double) -> String { String(format: milliseconds ? "%.3f" : "%.1f", value / scale) }
        return "p50 \(f(p50Microseconds)) \(unit)  p99 \(f(p99Microseconds)) \(unit)  "
            + "p99.9 \(f(p999Microseconds)) \(unit)  max \(f(maxMicroseconds)) \(unit)  (\(count))"
    }
}
