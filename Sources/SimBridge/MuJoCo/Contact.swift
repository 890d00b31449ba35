/// One contact MuJoCo's collision detection found in the last `step()` or `forward()`. The corresponding C type
/// is `mjContact`.
public struct Contact: Equatable, Sendable {
    /// The first geom of the pair.
    public var geom1: Int
    /// The second geom of the pair.
    public var geom2: Int
    /// The distance between the nearest points of the geoms in metres; negative means they interpenetrate.
    /// MuJoCo also reports pairs that are apart by less than their margin, with a positive distance.
    public var distance: Double
    /// The contact point in world coordinates, midway between the geoms.
    public var position: SIMD3<Double>
    /// The unit contact normal in world coordinates, pointing from `geom1` towards `geom2`.
    public var normal: SIMD3<Double>

    public init(geom1: Int, geom2: Int, distance: Double, position: SIMD3<Double>, normal: SIMD3<Double>) {
        self.geom1 = geom1
        self.geom2 = geom2
        self.distance = distance
        self.position = position
        self.normal = normal
    }

    /// Whether this contact is between geoms `a` and `b`, in either order.
    public func involves(_ a: Int, _ b: Int) -> Bool {
        (geom1 == a && geom2 == b) || (geom1 == b && geom2 == a)
    }
}
