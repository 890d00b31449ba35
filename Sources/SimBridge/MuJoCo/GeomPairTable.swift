import CMuJoCo

/// The geom pairs of a model that can ever collide, with their contact parameters, for `Data.step(with:)`: MuJoCo
/// 2.2.2's collision detection with the work that does not depend on the state done once (see `CMuJoCo/collision.h`).
///
/// Per step, `mj_collision` sorts every body into a sweep-and-prune broadphase and then, for each body pair it keeps,
/// filters and mixes the parameters of every geom pair before a bounding-sphere test; on the Franka Kitchen that was
/// about 35 of 80 µs per physics step. The table keeps the pairs that pass the constant filters (contype and
/// conaffinity, welds, parents, `<exclude>`), in MuJoCo's order, with their parameters mixed as MuJoCo mixes them,
/// and per step tests bounding spheres of bodies, then of geoms, then oriented boxes, before the narrow phase. Those
/// tests only skip pairs that cannot come within their margin, so the contacts are MuJoCo's, in MuJoCo's order, and
/// the step is the same to the bit.
///
/// Made after every change to the model (geom order, exclusions, options); it reads the model's options once. Not
/// for models with predefined `<pair>`s, height fields or planes outside the world body (the initialiser throws).
/// Only read while stepping, so one table serves every `Data` of its model.
public final class GeomPairTable {
    /// The model the table was made for; kept alive by the table.
    public let model: Model
    let pointer: UnsafeMutablePointer<fp_pair_table>

    /// Makes the table of `model`. The corresponding C function is `fp_make_pair_table` (SimBridge's).
    public init(model: Model) throws(MuJoCoError) {
        guard let table = fp_make_pair_table(model.pointer) else {
            throw .engineError(
                function: "fp_make_pair_table", message: "the model has predefined pairs, height fields or planes "
                    + "outside the world body, or memory ran out")
        }
        self.model = model
        pointer = table
    }

    deinit {
        fp_free_pair_table(pointer)
    }

    /// Body pairs with geom pairs that can collide.
    public var bodyPairCount: Int { Int(pointer.pointee.nbodypair) }
    /// Geom pairs that pass the constant filters.
    public var geomPairCount: Int { Int(pointer.pointee.ngeompair) }
}
