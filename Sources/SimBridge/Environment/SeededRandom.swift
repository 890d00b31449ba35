import Foundation

/// The random stream of one episode reset (SplitMix64): reset distributions draw from this, seeded by the episode
/// seed, so the same seed gives the same episode on every machine.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform integer in `range`.
    public mutating func integer(in range: Range<Int>) -> Int { Int.random(in: range, using: &self) }

    /// Standard normal (Box–Muller).
    public mutating func gaussian() -> Double {
        let u1 = 1 - uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * uniform())
    }
}
