/// Errors of the FlowPolicy module. Each message says what was wrong and, where it helps, what to do.
public enum FlowPolicyError: Error, CustomStringConvertible, Equatable {
    case invalidConfiguration(String)
    /// A file could not be read or written: path, and what went wrong.
    case io(path: String, message: String)
    /// A safetensors file is malformed: path, and what is wrong with it.
    case malformedFile(path: String, message: String)
    /// A checkpoint or dataset that is well formed but does not fit: path, and the mismatch.
    case incompatible(path: String, message: String)
    /// Non-finite numbers where finite ones are required.
    case nonFinite(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let message): return "invalid configuration: \(message)"
        case .io(let path, let message): return "\(path): \(message)"
        case .malformedFile(let path, let message): return "\(path): \(message)"
        case .incompatible(let path, let message): return "\(path): \(message)"
        case .nonFinite(let message): return message
        }
    }
}
