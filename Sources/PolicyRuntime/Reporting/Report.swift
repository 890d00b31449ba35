import FlowPolicy
import Foundation

/// Writes a machine-readable report (`--json PATH`): pretty-printed, keys sorted, written atomically.
public func writeJSONReport<Value: Encodable>(_ value: Value, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    let data = try encoder.encode(value)
    try AtomicFile.write([UInt8](data) + [0x0A], to: path)
}

/// Reads a JSON report `writeJSONReport` wrote; the error names the file and what in it is wrong.
public func readJSONReport<Value: Decodable>(_ type: Value.Type, from path: String) throws -> Value {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw RuntimeError.invalidConfiguration("\(path): cannot be read (check the path)")
    }
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    do {
        return try decoder.decode(type, from: data)
    } catch let error as DecodingError {
        throw RuntimeError.invalidConfiguration("\(path): not a report of the expected kind (\(describe(error)))")
    }
}

/// A decoding error in a sentence: what is missing or wrong, and where (`results[3].seed`).
public func describe(_ error: DecodingError) -> String {
    func place(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return path.isEmpty ? "at the top level" : "at \(path.dropFirst(path.hasPrefix(".") ? 1 : 0))"
    }
    switch error {
    case .keyNotFound(let key, let context): return "no \"\(key.stringValue)\" \(place(context))"
    case .typeMismatch(let type, let context): return "\(place(context)): expected \(type)"
    case .valueNotFound(let type, let context): return "\(place(context)): expected \(type), found null"
    case .dataCorrupted(let context): return "\(place(context)): \(context.debugDescription)"
    @unknown default: return "\(error)"
    }
}

/// Percentiles of a set of measurements (nearest-rank).
public struct LatencySummary: Codable, Sendable, Equatable {
    public var count: Int
    public var mean: Double
    public var p50: Double
    public var p99: Double
    public var p999: Double
    public var max: Double

    public init(_ values: [Double]) {
        let sorted = values.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            let rank = Int((p * Double(sorted.count)).rounded(.up)) - 1
            return sorted[Swift.min(Swift.max(rank, 0), sorted.count - 1)]
        }
        count = sorted.count
        mean = sorted.isEmpty ? .nan : sorted.reduce(0, +) / Double(sorted.count)
        p50 = percentile(0.5)
        p99 = percentile(0.99)
        p999 = percentile(0.999)
        max = sorted.last ?? .nan
    }
}

/// Monotonic time in seconds.
@inline(__always)
public func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// `1h02m`, `3m05s`, `12.3s`.
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    if seconds >= 3600 { return String(format: "%dh%02dm", Int(seconds) / 3600, Int(seconds) % 3600 / 60) }
    if seconds >= 60 { return String(format: "%dm%02ds", Int(seconds) / 60, Int(seconds) % 60) }
    return String(format: "%.1fs", seconds)
}
