/// Part `index` of `count` of an evaluation's seeds (`--shard I/N`, I from 0): contiguous, disjoint parts that cover
/// the seeds, the first `n mod count` parts one seed longer.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]), count >= 1,
              (0..<count).contains(index)
        else { return nil }
        self.index = index
        self.count = count
    }

    public var description: String { "\(index)/\(count)" }

    /// The positions of this part among `n` seeds.
    public func range(of n: Int) -> Range<Int> {
        let (size, longer) = (n / count, n % count)
        let start = index * size + min(index, longer)
        return start..<(start + size + (index < longer ? 1 : 0))
    }
}
