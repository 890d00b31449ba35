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

    /// Where σ lands largest among a checkpoint's normalized inputs.
    public struct Normalized: Codable, Sendable, Equatable {
        /// σ in normalized units on that number: σ times the normalizer's scale, 2 / its range.
        public var standardDeviation: Float
        /// The observation number (from 0, within one step's observation) and its range in the training data.
        public var observation: Int
        public var trainingRange: Float
    }

    /// σ in the policy's normalized units where it is largest: on the number the demonstrations vary least (numbers
    /// that do not vary at all pass the normalizer unscaled). A few normalized units there are far outside anything
    /// the policy saw, whatever σ is in the observation's own units.
    public static func largestNormalized(_ sigma: Float, by normalizer: MinMaxNormalizer) -> Normalized {
        let observation = normalizer.scale.indices.max { normalizer.scale[$0] < normalizer.scale[$1] } ?? 0
        return Normalized(standardDeviation: sigma * normalizer.scale[observation], observation: observation,
                          trainingRange: normalizer.maximum[observation] - normalizer.minimum[observation])
    }

    /// The units σ is in for `task`: the distinct units of its observation groups, or nil if task.yaml names none.
    public static func units(of task: TaskDescription) -> String? {
        guard let groups = task.observationGroups() else { return nil }
        var units: [String] = []
        for group in groups where !group.unit.isEmpty && !units.contains(group.unit) { units.append(group.unit) }
        return units.isEmpty ? nil : units.joined(separator: "; ")
    }
}
