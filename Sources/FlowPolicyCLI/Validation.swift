import ArgumentParser
import Foundation

/// The checks of `validate()`: numbers in range, files that can be read, paths that can be written. Every message
/// names the option and what it accepts (`--steps must be in 1...10000, got 0`), so a bad command line fails before
/// any work starts. The libraries check again in their own words; nothing from the command line may reach them
/// unchecked and trap.
public enum Check {
    /// An integer option (nil: not given) in `range`.
    public static func integer<T: BinaryInteger>(_ name: String, _ value: T?, in range: ClosedRange<T>,
                                                 unit: String = "") throws {
        guard let value, !range.contains(value) else { return }
        throw ValidationError(
            "\(name) must be in \(range.lowerBound)...\(range.upperBound)\(spaced(unit)), got \(value)")
    }

    /// A real option (nil: not given) in `range`; NaN and the infinities are outside every range.
    public static func real<T: BinaryFloatingPoint>(_ name: String, _ value: T?, in range: RealRange,
                                                    unit: String = "") throws {
        guard let value, !range.contains(Double(value)) else { return }
        throw ValidationError("\(name) must be \(range)\(spaced(unit)), got \(value)")
    }

    private static func spaced(_ unit: String) -> String { unit.isEmpty ? "" : " \(unit)" }

    /// A file the command reads (nil: not given): it exists and is not a folder.
    public static func inputFile(_ name: String, _ path: String?) throws {
        guard let path else { return }
        if try isFolder(name, path) { throw ValidationError("\(name): \(path) is a folder; give a file") }
    }

    /// A folder the command reads (nil: not given).
    public static func inputFolder(_ name: String, _ path: String?) throws {
        guard let path else { return }
        if try !isFolder(name, path) { throw ValidationError("\(name): \(path) is a file; give a folder") }
    }

    /// A file or folder the command reads (nil: not given): it exists.
    public static func input(_ name: String, _ path: String?) throws {
        guard let path else { return }
        _ = try isFolder(name, path)
    }

    /// A path the command writes (nil: not given): its folder exists and is writable and, unless `folderAllowed`
    /// (outputs that are folders), the path is not a folder.
    public static func output(_ name: String, _ path: String?, folderAllowed: Bool = false) throws {
        guard let path else { return }
        var folder: ObjCBool = false
        if !folderAllowed, FileManager.default.fileExists(atPath: path, isDirectory: &folder), folder.boolValue {
            throw ValidationError("\(name): \(path) is a folder; give a file path to write")
        }
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &folder), folder.boolValue else {
            throw ValidationError("\(name): the folder \(parent) does not exist; create it first")
        }
        guard FileManager.default.isWritableFile(atPath: parent) else {
            throw ValidationError("\(name): the folder \(parent) is not writable")
        }
    }

    /// A folder the command writes into, created when missing (nil: not given): if it exists, it is a writable folder.
    public static func outputFolder(_ name: String, _ path: String?) throws {
        guard let path else { return }
        var folder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &folder) else { return }
        guard folder.boolValue else { throw ValidationError("\(name): \(path) is a file; give a folder") }
        guard FileManager.default.isWritableFile(atPath: path) else {
            throw ValidationError("\(name): the folder \(path) is not writable")
        }
    }

    /// Whether `path` is a folder; throws when it does not exist or cannot be read.
    private static func isFolder(_ name: String, _ path: String) throws -> Bool {
        var folder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &folder) else {
            throw ValidationError("\(name): \(path) does not exist")
        }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ValidationError("\(name): \(path) cannot be read (permissions)")
        }
        return folder.boolValue
    }
}

/// An interval of real numbers, written as the messages show it: "in (0, 10000]", "a finite number >= 0".
public struct RealRange: Sendable, CustomStringConvertible {
    public let lower: Double
    public let upper: Double
    public let includesLower: Bool
    public let includesUpper: Bool

    /// (lower, upper]; without `upper`, every finite number above `lower`.
    public static func above(_ lower: Double, upTo upper: Double = .infinity) -> RealRange {
        RealRange(lower: lower, upper: upper, includesLower: false, includesUpper: true)
    }

    /// [lower, upper]; without `upper`, every finite number from `lower` on.
    public static func from(_ lower: Double, through upper: Double = .infinity) -> RealRange {
        RealRange(lower: lower, upper: upper, includesLower: true, includesUpper: true)
    }

    /// [lower, upper).
    public static func from(_ lower: Double, below upper: Double) -> RealRange {
        RealRange(lower: lower, upper: upper, includesLower: true, includesUpper: false)
    }

    public func contains(_ x: Double) -> Bool {
        x.isFinite && (includesLower ? x >= lower : x > lower) && (includesUpper ? x <= upper : x < upper)
    }

    public var description: String {
        let low = (includesLower ? ">= " : "> ") + Self.text(lower)
        guard upper.isFinite else { return "a finite number \(low)" }
        return "in \(includesLower ? "[" : "(")\(Self.text(lower)), \(Self.text(upper))\(includesUpper ? "]" : ")")"
    }

    /// 10000 rather than 10000.0, 0.1 and 1e-06 as Swift writes them.
    private static func text(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)"
    }
}

/// Parses a seed: any integer in 0...2^64-1 (a negative one is refused with the range, not as an unknown flag).
/// With a transform the parser shows no default, so the help of a seed that has one says it: "... (default: 0)".
public func seedArgument(_ text: String) throws -> UInt64 {
    guard let value = UInt64(text) else { throw ValidationError("a seed must be an integer in 0...\(UInt64.max)") }
    return value
}
