import CMuJoCo

/// The conditions MuJoCo counts in `mjData.warning`. The corresponding C type is `mjtWarning`.
public enum SimulationWarning: CaseIterable, Sendable {
    /// A (near) singular inertia matrix.
    case inertia
    /// More contacts than `nconmax`; the extra ones were dropped.
    case contactFull
    /// More constraint rows than `njmax`; the extra ones were dropped.
    case constraintFull
    /// More visual geoms than the scene holds (rendering only).
    case visualGeomFull
    /// A bad number in `qpos` (SimBridge reports it as `MuJoCoError.divergence`).
    case badQpos
    /// A bad number in `qvel` (SimBridge reports it as `MuJoCoError.divergence`).
    case badQvel
    /// A bad number in `qacc` (SimBridge reports it as `MuJoCoError.divergence`).
    case badQacc
    /// A bad number in `ctrl` (SimBridge reports it as `MuJoCoError.divergence`).
    case badCtrl

    var mjtWarning: Int32 {
        let value: mjtWarning
        switch self {
        case .inertia: value = mjWARN_INERTIA
        case .contactFull: value = mjWARN_CONTACTFULL
        case .constraintFull: value = mjWARN_CNSTRFULL
        case .visualGeomFull: value = mjWARN_VGEOMFULL
        case .badQpos: value = mjWARN_BADQPOS
        case .badQvel: value = mjWARN_BADQVEL
        case .badQacc: value = mjWARN_BADQACC
        case .badCtrl: value = mjWARN_BADCTRL
        }
        return Int32(value.rawValue)
    }
}
