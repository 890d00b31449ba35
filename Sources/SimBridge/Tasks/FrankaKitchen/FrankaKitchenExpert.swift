/// Placeholder.
public final class FrankaKitchenExpert: Expert {
    let environment: FrankaKitchen
    public init(environment: FrankaKitchen) throws { self.environment = environment }
    public func begin(episodeSeed: UInt64) throws {}
    public func act(action: UnsafeMutablePointer<Float>) throws {
        for i in 0..<9 { action[i] = 0 }
    }
}
