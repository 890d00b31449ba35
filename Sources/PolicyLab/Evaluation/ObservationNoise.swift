import FlowPolicy
import SimBridge

/// `eval --observation-noise σ`: Gaussian noise of standard deviation σ added to every number of every observation
/// the policy sees, in the observation's own units (task.yaml `interface.observations`: Push-T world units of the
/// 512 × 512 field, Robomimic metres and quaternion components, the kitchen radians and metres). Camera frames and
/// what the environment scores are left clean.
///
/// Seeded per episode: the draws of the episode of seed s come from `RandomSource(seed: noiseSeed, stream: s)`, in
/// step order, so an evaluation is reproducible and an episode's noise depends neither on the thread count nor on
/// the other episodes. `eval` uses the policy seed as the noise seed unless given one of its own.
public struct ObservationNoise: Sendable {
    public let standardDeviation: Float
    private var source: RandomSource

    public init(standardDeviation: Float, seed: UInt64, episode: UInt64) {
        self.standardDeviation = standardDeviation
        source = RandomSource(seed: seed, stream: episode)
    }

    /// Writes `clean` plus noise into `noisy`, `count` numbers (a copy when σ is 0). Allocates nothing.
    public mutating func apply(_ clean: UnsafePointer<Float>, into noisy: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            noisy[i] = clean[i]
            if standardDeviation > 0 { noisy[i] += standardDeviation * source.nextGaussian() }
        }
    }

    /// The units σ is in for `task`: the distinct units of its observation groups, or nil if task.yaml names none.
    public static func units(of task: TaskDescription) -> String? {
        guard let groups = task.observationGroups() else { return nil }
        var units: [String] = []
        for group in groups where !group.unit.isEmpty && !units.contains(group.unit) { units.append(group.unit) }
        return units.isEmpty ? nil : units.joined(separator: "; ")
    }
}
