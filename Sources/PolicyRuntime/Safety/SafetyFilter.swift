import FlowPolicy

/// The limits every commanded action must respect: per-dimension bounds and the largest change of each component
/// between consecutive commands (from the deployment contract).
public struct SafetyLimits: Codable, Equatable, Sendable {
    /// `[Da]` each.
    public var low: [Float]
    public var high: [Float]
    public var maximumStepChange: [Float]

    public init(low: [Float], high: [Float], maximumStepChange: [Float]) throws(RuntimeError) {
        guard !low.isEmpty, low.count == high.count, low.count == maximumStepChange.count else {
            throw .invalidConfiguration(
                "safety limits need one low, high and maximum step change per action dimension (got \(low.count), "
                    + "\(high.count) and \(maximumStepChange.count))")
        }
        for d in low.indices {
            guard low[d].isFinite, high[d].isFinite, low[d] <= high[d] else {
                throw .invalidConfiguration(
                    "action bounds of dimension \(d) are not an interval: [\(low[d]), \(high[d])]")
            }
            guard maximumStepChange[d] > 0, !maximumStepChange[d].isNaN else {
                throw .invalidConfiguration(
                    "the maximum step change of dimension \(d) must be positive (got \(maximumStepChange[d]))")
            }
        }
        self.low = low
        self.high = high
        self.maximumStepChange = maximumStepChange
    }

    public var dimensions: Int { low.count }

    /// Clamps `rows` rows of `[Da]` actions to the bounds in place; returns how many numbers it moved. Chunks are
    /// clamped when they arrive (the server's, the loop's, the evaluation's alike), so that a policy slightly
    /// beyond its bounds acts the same whether it is sampled here or on a server. Non-finite numbers are left for
    /// the filter to refuse.
    @discardableResult
    public func clamp(_ actions: UnsafeMutablePointer<Float>, rows: Int) -> Int {
        var moved = 0
        for row in 0..<rows {
            for d in 0..<dimensions {
                let value = actions[row * dimensions + d]
                if value < low[d] || value > high[d] {
                    actions[row * dimensions + d] = value < low[d] ? low[d] : high[d]
                    moved += 1
                }
            }
        }
        return moved
    }

    /// The contract's bounds and largest step change.
    public init(contract: DeploymentContract) throws(RuntimeError) {
        try self.init(low: contract.actionLow, high: contract.actionHigh, maximumStepChange: contract.maximumStepChange)
    }
}

/// Why the filter turned an action into HOLD.
public enum SafetyRejection: String, Codable, Sendable, CaseIterable {
    case nonFinite = "non-finite"
    case outOfBounds = "out of bounds"
    case stepChange = "step change"
}

/// Checks every action before it is commanded. A rejected action is not clipped or repaired: the command becomes
/// HOLD (the robot keeps its last applied action) and the rejection is counted by reason. Allocates nothing.
public struct SafetyFilter: Sendable {
    public let limits: SafetyLimits
    /// Rejections so far, by reason, and accepted actions.
    public private(set) var rejectedNonFinite = 0
    public private(set) var rejectedOutOfBounds = 0
    public private(set) var rejectedStepChange = 0
    public private(set) var accepted = 0

    public init(limits: SafetyLimits) {
        self.limits = limits
    }

    public var rejected: Int { rejectedNonFinite + rejectedOutOfBounds + rejectedStepChange }

    /// Checks `action` (`[Da]`) against the bounds and, if there is one, the previous commanded action. Returns nil
    /// if it may be commanded, else why not (and counts it).
    public mutating func check(_ action: UnsafePointer<Float>, previous: UnsafePointer<Float>?) -> SafetyRejection? {
        let verdict = Self.verdict(action, previous: previous, limits: limits)
        switch verdict {
        case .none: accepted += 1
        case .nonFinite: rejectedNonFinite += 1
        case .outOfBounds: rejectedOutOfBounds += 1
        case .stepChange: rejectedStepChange += 1
        }
        return verdict
    }

    static func verdict(_ action: UnsafePointer<Float>, previous: UnsafePointer<Float>?, limits: SafetyLimits)
        -> SafetyRejection?
    {
        let Da = limits.dimensions
        for d in 0..<Da where !action[d].isFinite { return .nonFinite }
        for d in 0..<Da where action[d] < limits.low[d] || action[d] > limits.high[d] { return .outOfBounds }
        if let previous {
            for d in 0..<Da where abs(action[d] - previous[d]) > limits.maximumStepChange[d] { return .stepChange }
        }
        return nil
    }
}
