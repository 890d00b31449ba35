/// Everything `mj_step` reads from an `mjData` that it does not recompute: restoring a saved state into a `Data`
/// of the same model and stepping it with the same controls reproduces the same trajectory bit for bit.
///
/// MuJoCo 2.2.2 has no `mj_getState`/`mj_setState`, so this is SimBridge's own list: time, the physics state
/// (qpos, qvel, act), the solver's warm start (qacc_warmstart, without which contact forces come out slightly
/// different), the inputs (ctrl, qfrc_applied, xfrc_applied, mocap poses) and userdata.
public struct SimulationState: Equatable, Sendable {
    public var time: Double
    public var qpos: [Double]  // [nq]
    public var qvel: [Double]  // [nv]
    public var act: [Double]  // [na]
    public var ctrl: [Double]  // [nu]
    public var qaccWarmstart: [Double]  // [nv]
    public var qfrcApplied: [Double]  // [nv]
    public var xfrcApplied: [Double]  // [nbody, 6]
    public var mocapPos: [Double]  // [nmocap, 3]
    public var mocapQuat: [Double]  // [nmocap, 4]
    public var userdata: [Double]  // [nuserdata]

    /// A zeroed state sized for `model`, to be filled by `Data.saveState(into:)` without allocating.
    public init(model: Model) {
        time = 0
        qpos = Array(repeating: 0, count: model.nq)
        qvel = Array(repeating: 0, count: model.nv)
        act = Array(repeating: 0, count: model.na)
        ctrl = Array(repeating: 0, count: model.nu)
        qaccWarmstart = Array(repeating: 0, count: model.nv)
        qfrcApplied = Array(repeating: 0, count: model.nv)
        xfrcApplied = Array(repeating: 0, count: 6 * model.nbody)
        mocapPos = Array(repeating: 0, count: 3 * model.nmocap)
        mocapQuat = Array(repeating: 0, count: 4 * model.nmocap)
        userdata = Array(repeating: 0, count: model.nuserdata)
    }
}
