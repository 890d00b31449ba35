/// Errors of the robot-side runtime: its configuration, the deployment contract against the robot, and the policy
/// server's answers. (The transport's are `ZMQError`, the protocol's `WireError`.) Messages name both sides of a
/// mismatch and never a command-line flag.
public enum RuntimeError: Error, CustomStringConvertible, Equatable {
    case invalidConfiguration(String)
    /// The policy and the robot (or the server) disagree: what, and both values.
    case contractMismatch(String)
    /// A checkpoint without a deployment contract where one is needed.
    case missingContract(path: String)
    /// No robot state arrived within the start-up limit.
    case robotSilent(endpoint: String, seconds: Double)
    /// The policy server answered with an `Error`.
    case server(WireError)
    /// No reply from the policy server within the timeout.
    case timeout(endpoint: String, milliseconds: Int)
    /// The policy server's reply is not what was asked for (wrong message, wrong shape).
    case unexpectedReply(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let message): return "invalid configuration: \(message)"
        case .contractMismatch(let message): return "the policy does not fit the robot: \(message)"
        case .missingContract(let path):
            return "\(path) has no deployment contract (it predates it); on a machine with the task files, add it "
                + "with `flowpolicy upgrade \(path)`"
        case .robotSilent(let endpoint, let seconds):
            return "no robot state arrived from \(endpoint) within \(seconds) s; is the robot publishing there?"
        case .server(let error): return "the policy server refused the request: \(error)"
        case .timeout(let endpoint, let milliseconds):
            return "no reply from the policy server at \(endpoint) within \(milliseconds) ms (is `flowpolicy serve` "
                + "running there?)"
        case .unexpectedReply(let message): return "unexpected reply from the policy server: \(message)"
        }
    }
}
