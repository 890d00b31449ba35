/// The conditional toy of the foundation tests and the `toy-mixture` dataset: 2-D actions, a condition
/// `c ∈ {0, 1}` (the observation), and for each condition a mixture of four isotropic Gaussians with its own means
/// and weights. A conditional policy must put mass on every mode of the given condition, in the right proportions,
/// and none on the other condition's modes.
///
/// Each example is a one-step episode (observation `[c]`, action `[x, y]`), so a policy for it uses
/// To = Ta = Tp = 1, Do = 1, Da = 2.
public enum ConditionalMixture {
    public struct Mode: Sendable {
        public let mean: SIMD2<Float>
        public let weight: Float
    }

    public static let standardDeviation: Float = 0.1
    /// Condition 0: the corners of a square, unequal weights. Condition 1: the same square rotated by 45 degrees
    /// (its modes sit between condition 0's), other weights.
    public static let modes: [[Mode]] = [
        [Mode(mean: [1, 1], weight: 0.4), Mode(mean: [-1, 1], weight: 0.3),
         Mode(mean: [-1, -1], weight: 0.2), Mode(mean: [1, -1], weight: 0.1)],
        [Mode(mean: [0, 1.414], weight: 0.1), Mode(mean: [-1.414, 0], weight: 0.2),
         Mode(mean: [0, -1.414], weight: 0.3), Mode(mean: [1.414, 0], weight: 0.4)],
    ]

    public static var spec: PolicySpec {
        PolicySpec(task: "toy-mixture", observationSteps: 1, actionSteps: 1, predictionSteps: 1,
                   observationDimensions: 1, actionDimensions: 2)
    }

    /// One sample of the given condition.
    public static func sample(condition: Int, using generator: inout RandomSource) -> SIMD2<Float> {
        let u = generator.nextUniform()
        var cumulative: Float = 0
        var chosen = modes[condition].last!
        for mode in modes[condition] {
            cumulative += mode.weight
            if u < cumulative {
                chosen = mode
                break
            }
        }
        let noise = SIMD2(generator.nextGaussian(), generator.nextGaussian())
        return chosen.mean + standardDeviation * noise
    }

    /// `count` one-step episodes, conditions alternating 0, 1, 0, ...
    public static func dataset(count: Int, seed: UInt64) -> EpisodeDataset {
        var generator = RandomSource(seed: seed)
        var dataset = EpisodeDataset(
            observationDimensions: 1, actionDimensions: 2,
            metadata: ["task": "toy-mixture", "generator": "ConditionalMixture", "seed": String(seed)])
        for i in 0..<count {
            let condition = i % 2
            let point = sample(condition: condition, using: &generator)
            try! dataset.appendEpisode(observations: [Float(condition)], actions: [point.x, point.y])
        }
        return dataset
    }

    /// How `points` ([x, y] pairs sampled for `condition`) fall on the modes: the share on each of the condition's
    /// modes, with the mean of those points, and the shares on the other condition's modes and far from every mode
    /// (more than `radius` from the nearest mean; 0.38 is about 4 standard deviations, half the distance between
    /// the nearest modes of the two conditions).
    public struct ModeReport: Codable, Sendable {
        public var weights: [Float]
        public var means: [[Float]]
        public var otherCondition: Float
        public var unassigned: Float
    }

    public static func modeReport(points: [Float], condition: Int, radius: Float = 0.38) -> ModeReport {
        let count = points.count / 2
        var counts = [Int](repeating: 0, count: 4)
        var sums = [SIMD2<Float>](repeating: .zero, count: 4)
        var other = 0
        var unassigned = 0
        for i in 0..<count {
            let point = SIMD2(points[2 * i], points[2 * i + 1])
            guard let (c, mode) = nearestMode(point, radius: radius) else {
                unassigned += 1
                continue
            }
            if c == condition {
                counts[mode] += 1
                sums[mode] += point
            } else {
                other += 1
            }
        }
        let total = Float(max(count, 1))
        return ModeReport(
            weights: counts.map { Float($0) / total },
            means: (0..<4).map { let m = sums[$0] / Float(max(counts[$0], 1)); return [m.x, m.y] },
            otherCondition: Float(other) / total, unassigned: Float(unassigned) / total)
    }

    /// The condition and mode whose mean is nearest to `point`, if it is within `radius`.
    public static func nearestMode(_ point: SIMD2<Float>, radius: Float) -> (condition: Int, mode: Int)? {
        var best: (condition: Int, mode: Int, distance: Float)?
        for (condition, list) in modes.enumerated() {
            for (index, mode) in list.enumerated() {
                let d = point - mode.mean
                let distance = (d * d).sum().squareRoot()
                if distance < (best?.distance ?? .infinity) { best = (condition, index, distance) }
            }
        }
        guard let best, best.distance <= radius else { return nil }
        return (best.condition, best.mode)
    }
}
