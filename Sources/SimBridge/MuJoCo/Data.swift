import CMuJoCo

/// The state of one simulation of a `Model`, and everything MuJoCo computes from it. Owns its `mjData` and keeps
/// its `Model` alive.
///
/// Arrays are exposed twice: closures such as `withQpos { buffer in ... }` hand out MuJoCo's own memory without
/// allocating (for the control loop), and properties such as `qpos` copy into and out of Swift arrays.
/// Buffers are valid only inside their closure. Multi-dimensional arrays are row-major, e.g. `xpos` is
/// `[nbody, 3]` and `xmat` `[nbody, 9]`.
///
/// After a failed `step()` or `forward()` (an engine error or a divergence) the data is inconsistent: `needsReset`
/// becomes true and `step()` and `forward()` throw `MuJoCoError.needsReset` until `reset()`, `reset(keyframe:)`
/// or `restoreState(_:)` is called. The arrays stay readable for diagnosis.
///
/// Not `Sendable`: one thread at a time. Different `Data` of one `Model` may step on different threads.
public final class Data {
    /// The model this data simulates.
    public let model: Model
    /// The underlying `mjData`, for calling MuJoCo's C API directly; valid while this object lives. MuJoCo calls that
    /// can raise errors must go through SimBridge's guarded wrappers (see `MuJoCoRuntime.swift`).
    public let pointer: UnsafeMutablePointer<mjData>
    /// Why the data needs a reset, or nil when it is usable.
    private var failure: String?

    /// Makes data for `model` in its initial state. The corresponding C function is `mj_makeData`.
    public init(model: Model) throws(MuJoCoError) {
        self.model = model
        pointer = try Engine.makeData(model.pointer)
    }

    /// Makes an independent copy of `other`, including its need for a reset. The corresponding C function is
    /// `mj_copyData`.
    public init(copying other: Data) throws(MuJoCoError) {
        model = other.model
        pointer = try Engine.copyData(into: nil, model: other.model.pointer, from: other.pointer)
        failure = other.failure
    }

    deinit {
        mj_deleteData(pointer)
    }

    /// Whether an earlier error left the data inconsistent, so that it must be reset before stepping.
    public var needsReset: Bool { failure != nil }

    /// The simulation time in seconds. The corresponding C field is `mjData.time`.
    public var time: Double {
        get { pointer.pointee.time }
        set { pointer.pointee.time = newValue }
    }

    // MARK: Simulation

    /// Advances the simulation by one `model.timestep`, without allocating.
    ///
    /// Position-dependent results (`xpos`, `siteXpos`, contacts, sensors) describe the state at the *start* of the
    /// step, as in MuJoCo; call `forward()` to bring them up to date with the new `qpos` and `qvel`.
    ///
    /// Throws `MuJoCoError.engineError` if MuJoCo raised an error and `MuJoCoError.divergence` if it found a NaN,
    /// infinite or huge number in qpos, qvel, qacc or ctrl, or if the new qpos or qvel is not finite. MuJoCo
    /// resets the data to the initial state itself on a bad qpos, qvel or qacc, and steps with zero controls on a
    /// bad ctrl, so the trajectory is broken either way: after any error the data needs a reset (see `Data`).
    /// The corresponding C function is `mj_step`.
    public func step() throws(MuJoCoError) {
        try requireUsable()
        let time = pointer.pointee.time
        clearBadNumberWarnings()
        do throws(MuJoCoError) {
            try Engine.step(model.pointer, pointer)
        } catch {
            throw fail(error)
        }
        try checkDivergence(time: time)
    }

    /// `step()` with collision detection by `table` (made for this data's model) instead of MuJoCo's `mj_collision`:
    /// the same contacts in the same order, so the same step, bit for bit (see `GeomPairTable`). Throws like
    /// `step()`. The corresponding C function is `mj_step`, with `mj_collision` replaced.
    public func step(with table: GeomPairTable) throws(MuJoCoError) {
        precondition(table.model === model, "the geom-pair table was made for another model")
        try requireUsable()
        let time = pointer.pointee.time
        clearBadNumberWarnings()
        do throws(MuJoCoError) {
            try Engine.step(model.pointer, pointer, table: table.pointer)
        } catch {
            throw fail(error)
        }
        try checkDivergence(time: time)
    }

    /// The first half of a physics step: kinematics, the mass matrix, bias forces and everything else that depends
    /// on positions and velocities, for the current state; no time passes. Write the controls, then call `step2()`.
    /// Together they equal `step()` with the Euler integrator (the integrator robosuite's scenes use), which is how
    /// robosuite computes its controllers' torques every physics step. Throws like `step()`. The corresponding C
    /// function is `mj_step1`.
    public func step1() throws(MuJoCoError) {
        try requireUsable()
        let time = pointer.pointee.time
        clearBadNumberWarnings()
        do throws(MuJoCoError) {
            try Engine.step1(model.pointer, pointer)
        } catch {
            throw fail(error)
        }
        try checkDivergence(time: time)
    }

    /// The second half of a physics step after `step1()`: accelerations with the current controls, and the
    /// integration. Throws like `step()`. The corresponding C function is `mj_step2`.
    public func step2() throws(MuJoCoError) {
        try requireUsable()
        let time = pointer.pointee.time
        do throws(MuJoCoError) {
            try Engine.step2(model.pointer, pointer)
        } catch {
            throw fail(error)
        }
        try checkDivergence(time: time)
    }

    /// Recomputes the model's derived constants (inverse weights of bodies and dofs, actuator lengths at `qpos0`) after
    /// masses, inertias or geom sizes were changed in the model, using this data as workspace; the data's state is then
    /// undefined, so reset it afterwards. The corresponding C function is `mj_setConst`.
    public func recomputeModelConstants() throws(MuJoCoError) {
        do throws(MuJoCoError) {
            try Engine.setConstants(model.pointer, pointer)
        } catch {
            throw fail(error)
        }
    }

    /// Calls `step()` `count` times, stopping at the first error.
    public func step(count: Int) throws(MuJoCoError) {
        for _ in 0..<count {
            try step()
        }
    }

    /// Computes everything that depends on the state (kinematics, contacts, forces, accelerations, sensors) without
    /// advancing time. Throws like `step()`, except that MuJoCo does not check qpos, qvel or qacc here (SimBridge
    /// does: non-finite values throw `MuJoCoError.divergence`) and does not reset the data. The corresponding C
    /// function is `mj_forward`.
    public func forward() throws(MuJoCoError) {
        try requireUsable()
        let time = pointer.pointee.time
        clearBadNumberWarnings()
        do throws(MuJoCoError) {
            try Engine.forward(model.pointer, pointer)
        } catch {
            throw fail(error)
        }
        try checkDivergence(time: time)
    }

    /// Resets the data to the model's initial state (`qpos0`, zero velocities and inputs, time 0) and makes it
    /// usable again. Derived quantities are zero until the next `forward()` or `step()`. The corresponding C
    /// function is `mj_resetData`.
    public func reset() {
        do throws(MuJoCoError) {
            try Engine.resetData(model.pointer, pointer)
        } catch {
            // mj_resetData in 2.2.2 only clears and copies memory; it has no path to mju_error.
            preconditionFailure("mj_resetData raised an error, which MuJoCo 2.2.2 never does: \(error)")
        }
        failure = nil
    }

    /// Resets the data to keyframe `keyframe` (time, qpos, qvel, act, ctrl, mocap poses) and makes it usable
    /// again. The corresponding C function is `mj_resetDataKeyframe`.
    public func reset(keyframe: Int) throws(MuJoCoError) {
        guard keyframe >= 0 && keyframe < model.nkey else {
            throw .indexOutOfRange(kind: .keyframe, index: keyframe, count: model.nkey)
        }
        do throws(MuJoCoError) {
            try Engine.resetData(model.pointer, pointer, keyframe: keyframe)
        } catch {
            throw fail(error)
        }
        failure = nil
    }

    /// Resets the data to the keyframe named `name`. The corresponding C function is `mj_resetDataKeyframe`.
    public func reset(keyframe name: String) throws(MuJoCoError) {
        try reset(keyframe: model.requireId(of: .keyframe, named: name))
    }

    /// Copies all of `other` (a data of the same `Model` instance) into this data, without allocating. The
    /// corresponding C function is `mj_copyData`.
    public func copy(from other: Data) throws(MuJoCoError) {
        precondition(other.model === model, "copy(from:) needs a Data of the same Model instance")
        _ = try Engine.copyData(into: pointer, model: model.pointer, from: other.pointer)
        failure = other.failure
    }

    private func requireUsable() throws(MuJoCoError) {
        if let failure {
            throw .needsReset(reason: failure)
        }
    }

    /// Records `error` as the reason the data needs a reset, and returns it.
    private func fail(_ error: MuJoCoError) -> MuJoCoError {
        // After an engine error the jump out of MuJoCo skipped the mjFREESTACK calls that pop the mjData stack.
        // No MuJoCo call is running on this data now, so its stack is empty by definition; without this, every
        // later mj_copyData would refuse ("stack is in use") and the leaked frames would shrink the stack.
        pointer.pointee.pstack = 0
        switch error {
        case .engineError(let function, let message):
            failure = "\(function) raised '\(message)' at t = \(pointer.pointee.time) s"
        case .divergence(let kind, let time):
            failure = "the simulation diverged at t = \(time) s: \(kind)"
        default:
            failure = error.description
        }
        return error
    }

    // MuJoCo's bad-number counters have a quirk: mj_checkPos (and the qvel, qacc checks) counts the warning,
    // then calls mj_resetData, which zeroes all counters, then counts once more, so after any number of
    // divergences the counter reads 1. Comparing with the value before the step would miss a second divergence.
    // So each step starts from zero, and any non-zero counter afterwards means the bad number was found in this
    // step. (It also means MuJoCo, which prints a warning only when a counter goes from 0 to 1, tells
    // `MuJoCo.lastWarning` every time.)
    private func clearBadNumberWarnings() {
        fp_clear_warning(pointer, SimulationWarning.badQpos.mjtWarning)
        fp_clear_warning(pointer, SimulationWarning.badQvel.mjtWarning)
        fp_clear_warning(pointer, SimulationWarning.badQacc.mjtWarning)
        fp_clear_warning(pointer, SimulationWarning.badCtrl.mjtWarning)
    }

    private func checkDivergence(time: Double) throws(MuJoCoError) {
        if let kind = badNumberWarning() {
            throw fail(.divergence(kind: kind, time: time))
        }
        // `pointer.pointee.field` reads one field; a `let d = pointer.pointee` would copy all of mjData (40 kB).
        let qpos = pointer.pointee.qpos!
        let qvel = pointer.pointee.qvel!
        let qacc = pointer.pointee.qacc!
        let nq = Int(model.pointer.pointee.nq)
        let nv = Int(model.pointer.pointee.nv)
        for i in 0..<nq where !qpos[i].isFinite {
            throw fail(.divergence(kind: .badQpos(coordinate: i), time: time))
        }
        for i in 0..<nv where !qvel[i].isFinite {
            throw fail(.divergence(kind: .badQvel(dof: i), time: time))
        }
        for i in 0..<nv where !qacc[i].isFinite {
            throw fail(.divergence(kind: .badQacc(dof: i), time: time))
        }
    }

    private func badNumberWarning() -> DivergenceKind? {
        func index(_ warning: SimulationWarning) -> Int? {
            fp_warning_count(pointer, warning.mjtWarning) == 0
                ? nil : Int(fp_warning_lastinfo(pointer, warning.mjtWarning))
        }
        if let i = index(.badQpos) { return .badQpos(coordinate: i) }
        if let i = index(.badQvel) { return .badQvel(dof: i) }
        if let i = index(.badQacc) { return .badQacc(dof: i) }
        if let i = index(.badCtrl) { return .badCtrl(actuator: i) }
        return nil
    }

    /// How many times MuJoCo raised `warning` since the last reset; the bad-number counters cover only the last
    /// `step()` or `forward()`. The corresponding C field is `mjData.warning`.
    public func warningCount(_ warning: SimulationWarning) -> Int {
        Int(fp_warning_count(pointer, warning.mjtWarning))
    }

    // MARK: State

    /// Saves everything needed to replay the simulation from here (see `SimulationState`).
    public func saveState() -> SimulationState {
        var state = SimulationState(model: model)
        saveState(into: &state)
        return state
    }

    /// Saves the state into `state`, reusing its arrays: no allocation when they already have this model's sizes
    /// (as they do for `SimulationState(model:)` or an earlier save from the same model) and are not shared.
    public func saveState(into state: inout SimulationState) {
        let d = pointer
        let m = model
        state.time = d.pointee.time
        Self.copy(d.pointee.qpos, count: m.nq, into: &state.qpos)
        Self.copy(d.pointee.qvel, count: m.nv, into: &state.qvel)
        Self.copy(d.pointee.act, count: m.na, into: &state.act)
        Self.copy(d.pointee.ctrl, count: m.nu, into: &state.ctrl)
        Self.copy(d.pointee.qacc_warmstart, count: m.nv, into: &state.qaccWarmstart)
        Self.copy(d.pointee.qfrc_applied, count: m.nv, into: &state.qfrcApplied)
        Self.copy(d.pointee.xfrc_applied, count: 6 * m.nbody, into: &state.xfrcApplied)
        Self.copy(d.pointee.mocap_pos, count: 3 * m.nmocap, into: &state.mocapPos)
        Self.copy(d.pointee.mocap_quat, count: 4 * m.nmocap, into: &state.mocapQuat)
        Self.copy(d.pointee.userdata, count: m.nuserdata, into: &state.userdata)
    }

    /// Restores a saved state and makes the data usable again, without allocating. Nothing is recomputed: stepping
    /// next reproduces the saved trajectory bit for bit; call `forward()` first if you need positions or sensors of
    /// the restored state. Throws `MuJoCoError.stateMismatch`, changing nothing, if the state was saved from
    /// another model.
    public func restoreState(_ state: SimulationState) throws(MuJoCoError) {
        let m = model
        func check(_ field: String, _ expected: Int, _ actual: [Double]) throws(MuJoCoError) {
            if actual.count != expected {
                throw .stateMismatch(field: field, expected: expected, actual: actual.count)
            }
        }
        try check("qpos", m.nq, state.qpos)
        try check("qvel", m.nv, state.qvel)
        try check("act", m.na, state.act)
        try check("ctrl", m.nu, state.ctrl)
        try check("qaccWarmstart", m.nv, state.qaccWarmstart)
        try check("qfrcApplied", m.nv, state.qfrcApplied)
        try check("xfrcApplied", 6 * m.nbody, state.xfrcApplied)
        try check("mocapPos", 3 * m.nmocap, state.mocapPos)
        try check("mocapQuat", 4 * m.nmocap, state.mocapQuat)
        try check("userdata", m.nuserdata, state.userdata)
        let d = pointer
        d.pointee.time = state.time
        Self.copy(state.qpos, into: d.pointee.qpos)
        Self.copy(state.qvel, into: d.pointee.qvel)
        Self.copy(state.act, into: d.pointee.act)
        Self.copy(state.ctrl, into: d.pointee.ctrl)
        Self.copy(state.qaccWarmstart, into: d.pointee.qacc_warmstart)
        Self.copy(state.qfrcApplied, into: d.pointee.qfrc_applied)
        Self.copy(state.xfrcApplied, into: d.pointee.xfrc_applied)
        Self.copy(state.mocapPos, into: d.pointee.mocap_pos)
        Self.copy(state.mocapQuat, into: d.pointee.mocap_quat)
        Self.copy(state.userdata, into: d.pointee.userdata)
        failure = nil
    }

    private static func copy(_ source: UnsafeMutablePointer<Double>?, count: Int, into array: inout [Double]) {
        if array.count != count {
            array = Array(repeating: 0, count: count)
        }
        guard count > 0, let source else { return }
        array.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: source, count: count) }
    }

    private static func copy(_ array: [Double], into destination: UnsafeMutablePointer<Double>?) {
        guard let destination else { return }
        // A plain loop: `withUnsafeBufferPointer` and the implicit array-to-pointer conversion both allocate in
        // debug builds (six allocations per restore, measured with CAllocationCounter).
        for i in array.indices {
            destination[i] = array[i]
        }
    }

    // MARK: Contacts

    /// The number of contacts found in the last `step()` or `forward()`. The corresponding C field is
    /// `mjData.ncon`.
    public var contactCount: Int { Int(pointer.pointee.ncon) }

    /// Contact `index`, in `0..<contactCount`. The corresponding C field is `mjData.contact`.
    public func contact(at index: Int) -> Contact {
        precondition(index >= 0 && index < contactCount, "contact \(index) is out of range 0..<\(contactCount)")
        let c = pointer.pointee.contact[index]
        return Contact(
            geom1: Int(c.geom1), geom2: Int(c.geom2), distance: c.dist,
            position: SIMD3(c.pos.0, c.pos.1, c.pos.2), normal: SIMD3(c.frame.0, c.frame.1, c.frame.2))
    }

    /// All contacts found in the last `step()` or `forward()`.
    public var contacts: [Contact] {
        (0..<contactCount).map { contact(at: $0) }
    }

    /// Whether the last `step()` or `forward()` found a contact between geoms `a` and `b` (in either order),
    /// without allocating. Contacts within the geoms' margin count, even if the geoms do not yet touch.
    public func hasContact(between a: Int, and b: Int) -> Bool {
        guard let contacts = pointer.pointee.contact else { return false }
        for i in 0..<contactCount {
            let g1 = Int(contacts[i].geom1)
            let g2 = Int(contacts[i].geom2)
            if (g1 == a && g2 == b) || (g1 == b && g2 == a) {
                return true
            }
        }
        return false
    }

    // MARK: Jacobians

    /// Writes the Jacobians of site `site`'s position and orientation with respect to `qvel`, each `[3, nv]`, as
    /// of the last `forward()` or `step()`; either buffer may be nil. No allocation. The corresponding C function
    /// is `mj_jacSite`.
    public func siteJacobian(
        _ site: Int, translation: UnsafeMutableBufferPointer<Double>?, rotation: UnsafeMutableBufferPointer<Double>?
    ) throws(MuJoCoError) {
        model.checkIndex(site, of: .site)
        let size = 3 * model.nv
        precondition(translation == nil || translation!.count == size, "translation needs 3 * nv = \(size) values")
        precondition(rotation == nil || rotation!.count == size, "rotation needs 3 * nv = \(size) values")
        try requireUsable()
        do throws(MuJoCoError) {
            try Engine.siteJacobian(
                model.pointer, pointer, site: site, translation: translation?.baseAddress,
                rotation: rotation?.baseAddress)
        } catch {
            throw fail(error)
        }
    }

    /// The Jacobians of site `site`'s position and orientation, each `[3, nv]` row-major. The corresponding C
    /// function is `mj_jacSite`.
    public func siteJacobian(_ site: Int) throws(MuJoCoError) -> (translation: [Double], rotation: [Double]) {
        var translation = [Double](repeating: 0, count: 3 * model.nv)
        var rotation = translation
        try translation.withUnsafeMutableBufferPointer { (t) throws(MuJoCoError) in
            try rotation.withUnsafeMutableBufferPointer { (r) throws(MuJoCoError) in
                try siteJacobian(site, translation: t, rotation: r)
            }
        }
        return (translation, rotation)
    }

    // MARK: Dynamics

    /// Writes the joint-space mass matrix `[nv, nv]` (row-major, dense) as of the last `step1()`, `forward()` or
    /// `step()`. No allocation. The corresponding C function is `mj_fullM` (it has no error path).
    public func fullMassMatrix(into matrix: UnsafeMutableBufferPointer<Double>) {
        let nv = model.nv
        precondition(matrix.count == nv * nv, "the mass matrix needs nv * nv = \(nv * nv) values")
        mj_fullM(model.pointer, matrix.baseAddress!, pointer.pointee.qM)
    }

    /// Bias forces (Coriolis, centrifugal, gravitational), `[nv]`, as of the last `step1()`, `forward()` or
    /// `step()`. The corresponding C field is `mjData.qfrc_bias`.
    public func withQfrcBias<R, E: Error>(_ body: (UnsafeBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(UnsafeBufferPointer(start: pointer.pointee.qfrc_bias, count: model.nv))
    }
}

// MARK: - Arrays without allocation

extension Data {
    private func mutable(_ base: UnsafeMutablePointer<Double>?, _ count: Int32) -> UnsafeMutableBufferPointer<Double> {
        count > 0
            ? UnsafeMutableBufferPointer(start: base, count: Int(count))
            : UnsafeMutableBufferPointer(start: nil, count: 0)
    }

    private func readOnly(_ base: UnsafeMutablePointer<Double>?, _ count: Int32) -> UnsafeBufferPointer<Double> {
        UnsafeBufferPointer(mutable(base, count))
    }

    /// Positions, `[nq]`. The corresponding C field is `mjData.qpos`.
    public func withQpos<R, E: Error>(_ body: (UnsafeMutableBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(mutable(pointer.pointee.qpos, model.pointer.pointee.nq))
    }

    /// Velocities, `[nv]`. The corresponding C field is `mjData.qvel`.
    public func withQvel<R, E: Error>(_ body: (UnsafeMutableBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(mutable(pointer.pointee.qvel, model.pointer.pointee.nv))
    }

    /// Actuator controls, `[nu]`. The corresponding C field is `mjData.ctrl`.
    public func withCtrl<R, E: Error>(_ body: (UnsafeMutableBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(mutable(pointer.pointee.ctrl, model.pointer.pointee.nu))
    }

    /// Actuator activations, `[na]`. The corresponding C field is `mjData.act`.
    public func withAct<R, E: Error>(_ body: (UnsafeMutableBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(mutable(pointer.pointee.act, model.pointer.pointee.na))
    }

    /// Applied generalized forces, `[nv]`. The corresponding C field is `mjData.qfrc_applied`.
    public func withQfrcApplied<R, E: Error>(
        _ body: (UnsafeMutableBufferPointer<Double>) throws(E) -> R
    ) throws(E) -> R {
        try body(mutable(pointer.pointee.qfrc_applied, model.pointer.pointee.nv))
    }

    /// Applied Cartesian forces and torques at each body's centre of mass, world frame, `[nbody, 6]` (force,
    /// then torque). The corresponding C field is `mjData.xfrc_applied`.
    public func withXfrcApplied<R, E: Error>(
        _ body: (UnsafeMutableBufferPointer<Double>) throws(E) -> R
    ) throws(E) -> R {
        try body(mutable(pointer.pointee.xfrc_applied, 6 * model.pointer.pointee.nbody))
    }

    /// Mocap body positions, `[nmocap, 3]`. The corresponding C field is `mjData.mocap_pos`.
    public func withMocapPos<R, E: Error>(_ body: (UnsafeMutableBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(mutable(pointer.pointee.mocap_pos, 3 * model.pointer.pointee.nmocap))
    }

    /// Mocap body orientations as quaternions (w, x, y, z), `[nmocap, 4]`. The corresponding C field is
    /// `mjData.mocap_quat`.
    public func withMocapQuat<R, E: Error>(
        _ body: (UnsafeMutableBufferPointer<Double>) throws(E) -> R
    ) throws(E) -> R {
        try body(mutable(pointer.pointee.mocap_quat, 4 * model.pointer.pointee.nmocap))
    }

    /// User data, `[nuserdata]`; MuJoCo never touches it. The corresponding C field is `mjData.userdata`.
    public func withUserdata<R, E: Error>(_ body: (UnsafeMutableBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(mutable(pointer.pointee.userdata, model.pointer.pointee.nuserdata))
    }

    /// Accelerations, `[nv]`. The corresponding C field is `mjData.qacc`.
    public func withQacc<R, E: Error>(_ body: (UnsafeBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(readOnly(pointer.pointee.qacc, model.pointer.pointee.nv))
    }

    /// Sensor outputs, `[nsensordata]`; see `Model.sensorRange(_:)`. The corresponding C field is
    /// `mjData.sensordata`.
    public func withSensorData<R, E: Error>(_ body: (UnsafeBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(readOnly(pointer.pointee.sensordata, model.pointer.pointee.nsensordata))
    }

    /// Body frame positions, world frame, `[nbody, 3]`. The corresponding C field is `mjData.xpos`.
    public func withXpos<R, E: Error>(_ body: (UnsafeBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(readOnly(pointer.pointee.xpos, 3 * model.pointer.pointee.nbody))
    }

    /// Body frame orientations as quaternions (w, x, y, z), `[nbody, 4]`. The corresponding C field is
    /// `mjData.xquat`.
    public func withXquat<R, E: Error>(_ body: (UnsafeBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(readOnly(pointer.pointee.xquat, 4 * model.pointer.pointee.nbody))
    }

    /// Body frame orientations as row-major rotation matrices, `[nbody, 9]`. The corresponding C field is
    /// `mjData.xmat`.
    public func withXmat<R, E: Error>(_ body: (UnsafeBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(readOnly(pointer.pointee.xmat, 9 * model.pointer.pointee.nbody))
    }

    /// Site positions, world frame, `[nsite, 3]`. The corresponding C field is `mjData.site_xpos`.
    public func withSiteXpos<R, E: Error>(_ body: (UnsafeBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(readOnly(pointer.pointee.site_xpos, 3 * model.pointer.pointee.nsite))
    }

    /// Site orientations as row-major rotation matrices, `[nsite, 9]`. The corresponding C field is
    /// `mjData.site_xmat`.
    public func withSiteXmat<R, E: Error>(_ body: (UnsafeBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(readOnly(pointer.pointee.site_xmat, 9 * model.pointer.pointee.nsite))
    }

    /// Geom positions, world frame, `[ngeom, 3]`. The corresponding C field is `mjData.geom_xpos`.
    public func withGeomXpos<R, E: Error>(_ body: (UnsafeBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(readOnly(pointer.pointee.geom_xpos, 3 * model.pointer.pointee.ngeom))
    }

    /// Geom orientations as row-major rotation matrices, `[ngeom, 9]`. The corresponding C field is
    /// `mjData.geom_xmat`.
    public func withGeomXmat<R, E: Error>(_ body: (UnsafeBufferPointer<Double>) throws(E) -> R) throws(E) -> R {
        try body(readOnly(pointer.pointee.geom_xmat, 9 * model.pointer.pointee.ngeom))
    }
}

// MARK: - Arrays, copied

extension Data {
    private static func assign(_ values: [Double], to buffer: UnsafeMutableBufferPointer<Double>, _ name: String) {
        precondition(values.count == buffer.count, "\(name) needs \(buffer.count) values, got \(values.count)")
        _ = buffer.update(fromContentsOf: values)
    }

    /// Positions, `[nq]`; setting needs exactly `nq` values.
    public var qpos: [Double] {
        get { withQpos { Array($0) } }
        set { withQpos { Self.assign(newValue, to: $0, "qpos") } }
    }

    /// Velocities, `[nv]`; setting needs exactly `nv` values.
    public var qvel: [Double] {
        get { withQvel { Array($0) } }
        set { withQvel { Self.assign(newValue, to: $0, "qvel") } }
    }

    /// Actuator controls, `[nu]`; setting needs exactly `nu` values.
    public var ctrl: [Double] {
        get { withCtrl { Array($0) } }
        set { withCtrl { Self.assign(newValue, to: $0, "ctrl") } }
    }

    /// Actuator activations, `[na]`; setting needs exactly `na` values.
    public var act: [Double] {
        get { withAct { Array($0) } }
        set { withAct { Self.assign(newValue, to: $0, "act") } }
    }

    /// Applied generalized forces, `[nv]`; setting needs exactly `nv` values.
    public var qfrcApplied: [Double] {
        get { withQfrcApplied { Array($0) } }
        set { withQfrcApplied { Self.assign(newValue, to: $0, "qfrcApplied") } }
    }

    /// Applied Cartesian forces and torques, `[nbody, 6]`; setting needs exactly `6 * nbody` values.
    public var xfrcApplied: [Double] {
        get { withXfrcApplied { Array($0) } }
        set { withXfrcApplied { Self.assign(newValue, to: $0, "xfrcApplied") } }
    }

    /// Mocap body positions, `[nmocap, 3]`; setting needs exactly `3 * nmocap` values.
    public var mocapPos: [Double] {
        get { withMocapPos { Array($0) } }
        set { withMocapPos { Self.assign(newValue, to: $0, "mocapPos") } }
    }

    /// Mocap body quaternions, `[nmocap, 4]`; setting needs exactly `4 * nmocap` values.
    public var mocapQuat: [Double] {
        get { withMocapQuat { Array($0) } }
        set { withMocapQuat { Self.assign(newValue, to: $0, "mocapQuat") } }
    }

    /// User data, `[nuserdata]`; setting needs exactly `nuserdata` values.
    public var userdata: [Double] {
        get { withUserdata { Array($0) } }
        set { withUserdata { Self.assign(newValue, to: $0, "userdata") } }
    }

    /// Accelerations, `[nv]`.
    public var qacc: [Double] { withQacc { Array($0) } }
    /// Sensor outputs, `[nsensordata]`.
    public var sensorData: [Double] { withSensorData { Array($0) } }
    /// Body positions, `[nbody, 3]`.
    public var xpos: [Double] { withXpos { Array($0) } }
    /// Body quaternions, `[nbody, 4]`.
    public var xquat: [Double] { withXquat { Array($0) } }
    /// Body rotation matrices, `[nbody, 9]`.
    public var xmat: [Double] { withXmat { Array($0) } }
    /// Site positions, `[nsite, 3]`.
    public var siteXpos: [Double] { withSiteXpos { Array($0) } }
    /// Site rotation matrices, `[nsite, 9]`.
    public var siteXmat: [Double] { withSiteXmat { Array($0) } }
    /// Geom positions, `[ngeom, 3]`.
    public var geomXpos: [Double] { withGeomXpos { Array($0) } }
    /// Geom rotation matrices, `[ngeom, 9]`.
    public var geomXmat: [Double] { withGeomXmat { Array($0) } }
}

// MARK: - One object, without allocation

extension Data {
    private func vector3(_ base: UnsafeMutablePointer<Double>, _ index: Int) -> SIMD3<Double> {
        SIMD3(base[3 * index], base[3 * index + 1], base[3 * index + 2])
    }

    /// The position of body `body`'s frame in world coordinates. The corresponding C field is `mjData.xpos`.
    public func bodyPosition(_ body: Int) -> SIMD3<Double> {
        model.checkIndex(body, of: .body)
        return vector3(pointer.pointee.xpos, body)
    }

    /// The orientation of body `body`'s frame as a unit quaternion (w, x, y, z). The corresponding C field is
    /// `mjData.xquat`.
    public func bodyQuaternion(_ body: Int) -> SIMD4<Double> {
        model.checkIndex(body, of: .body)
        let q = pointer.pointee.xquat + 4 * body
        return SIMD4(q[0], q[1], q[2], q[3])
    }

    /// The position of site `site` in world coordinates. The corresponding C field is `mjData.site_xpos`.
    public func sitePosition(_ site: Int) -> SIMD3<Double> {
        model.checkIndex(site, of: .site)
        return vector3(pointer.pointee.site_xpos, site)
    }

    /// The position of geom `geom`'s centre in world coordinates. The corresponding C field is `mjData.geom_xpos`.
    public func geomPosition(_ geom: Int) -> SIMD3<Double> {
        model.checkIndex(geom, of: .geom)
        return vector3(pointer.pointee.geom_xpos, geom)
    }
}
