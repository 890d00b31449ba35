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

/// In JSON, the recorded values only: `{"unit": "ns", "counts": [[value, count], ...]}`, each value the highest of
/// its bucket, so that a decoded histogram has the same buckets and counts (and adds up with others).
extension LatencyHistogram: Codable {
    private enum CodingKeys: String, CodingKey { case unit, counts }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("ns", forKey: .unit)
        try container.encode(histogram.recordedValues().map { [$0.value, $0.count] }, forKey: .counts)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard try container.decode(String.self, forKey: .unit) == "ns" else {
            throw DecodingError.dataCorruptedError(forKey: .unit, in: container, debugDescription: "expected \"ns\"")
        }
        self.init()
        for pair in try container.decode([[UInt64]].self, forKey: .counts) {
            guard pair.count == 2, histogram.record(pair[0], count: pair[1]) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .counts, in: container, debugDescription: "expected [value, count] pairs in 1 ns ... 100 s")
            }
        }
    }
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
