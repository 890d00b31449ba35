/// Everything that can go wrong between flowpolicy and MuJoCo.
public enum MuJoCoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The MuJoCo library found at run time is not the version whose header SimBridge was compiled against.
    case versionMismatch(header: Int, library: Int)
    /// A model file does not exist.
    case fileNotFound(path: String)
    /// MuJoCo's parser or compiler refused a model; `message` is MuJoCo's error text.
    case loadFailed(source: String, message: String)
    /// MuJoCo raised an error (`mju_error`) inside `function`; `message` is MuJoCo's text.
    case engineError(function: String, message: String)
    /// The simulation produced, or was given, a NaN, infinite or huge value.
    case divergence(kind: DivergenceKind, time: Double)
    /// A `Data` refuses to step because an earlier error left it inconsistent; `reason` describes that error.
    case needsReset(reason: String)
    /// No object of that kind has that name in the model.
    case unknownName(kind: ObjectKind, name: String)
    /// An object index is outside the model's range `0..<count`.
    case indexOutOfRange(kind: ObjectKind, index: Int, count: Int)
    /// A saved `SimulationState` does not fit this model: `field` has `actual` values, the model needs `expected`.
    case stateMismatch(field: String, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .versionMismatch(let header, let library):
            return "MuJoCo version mismatch: SimBridge was compiled against the header of version \(header), but "
                + "the loaded libmujoco is version \(library). Install the matching libmujoco-dev (Debian's 2.2.2) "
                + "and rebuild."
        case .fileNotFound(let path):
            return "MuJoCo model file '\(path)' does not exist. Check the path (relative paths are resolved "
                + "against the current directory)."
        case .loadFailed(let source, let message):
            return "MuJoCo could not load the model from \(source): \(message). Fix the MJCF at the place "
                + "MuJoCo names."
        case .engineError(let function, let message):
            return "MuJoCo raised an error in \(function): \(message). The simulation data is now inconsistent; "
                + "call reset() or restoreState(_:) before using it again."
        case .divergence(let kind, let time):
            return "The simulation diverged at t = \(time) s: \(kind). Call reset() or restoreState(_:) before "
                + "stepping again; if it recurs, lower the timestep or bound the controls and applied forces."
        case .needsReset(let reason):
            return "This simulation data cannot be used until it is reset: an earlier call failed (\(reason)). "
                + "Call reset(), reset(keyframe:) or restoreState(_:) first."
        case .unknownName(let kind, let name):
            return "The model has no \(kind) named '\(name)'. Check the name attribute in the MJCF."
        case .indexOutOfRange(let kind, let index, let count):
            return "\(kind) index \(index) is out of range: the model has \(count) \(kind) object(s)."
        case .stateMismatch(let field, let expected, let actual):
            return "The simulation state does not fit this model: \(field) has \(actual) values, the model needs "
                + "\(expected). Restore only states saved from a Data of the same model."
        }
    }
}

/// Which bad number ended a simulation, and where. MuJoCo counts a value as bad when it is NaN or its
/// magnitude exceeds `mjMAXVAL` (1e10); SimBridge's own check after `step()` and `forward()` also flags NaN
/// and infinities that MuJoCo's checks did not see.
public enum DivergenceKind: Equatable, Sendable, CustomStringConvertible {
    /// `qpos[coordinate]` was bad (`mjWARN_BADQPOS`). In a step, MuJoCo then resets the data to the initial state.
    case badQpos(coordinate: Int)
    /// `qvel[dof]` was bad (`mjWARN_BADQVEL`). In a step, MuJoCo then resets the data to the initial state.
    case badQvel(dof: Int)
    /// The computed `qacc[dof]` was bad (`mjWARN_BADQACC`). In a step, MuJoCo then resets the data.
    case badQacc(dof: Int)
    /// `ctrl[actuator]` was bad (`mjWARN_BADCTRL`). MuJoCo then computes with all controls set to zero.
    case badCtrl(actuator: Int)

    public var description: String {
        switch self {
        case .badQpos(let coordinate):
            return "qpos[\(coordinate)] is NaN, infinite or beyond ±1e10"
        case .badQvel(let dof):
            return "qvel[\(dof)] is NaN, infinite or beyond ±1e10"
        case .badQacc(let dof):
            return "qacc[\(dof)] is NaN, infinite or beyond ±1e10"
        case .badCtrl(let actuator):
            return "ctrl[\(actuator)] is NaN, infinite or beyond ±1e10, so MuJoCo used zero for all controls"
        }
    }
}
