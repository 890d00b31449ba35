import CMuJoCo

/// The kinds of named MuJoCo objects SimBridge looks up. The corresponding C type is `mjtObj`.
public enum ObjectKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case body
    case joint
    case geom
    case site
    case camera
    case light
    case mesh
    case tendon
    case actuator
    case sensor
    case equality
    case keyframe

    public var description: String { rawValue }

    var mjtObj: mjtObj {
        switch self {
        case .body: mjOBJ_BODY
        case .joint: mjOBJ_JOINT
        case .geom: mjOBJ_GEOM
        case .site: mjOBJ_SITE
        case .camera: mjOBJ_CAMERA
        case .light: mjOBJ_LIGHT
        case .mesh: mjOBJ_MESH
        case .tendon: mjOBJ_TENDON
        case .actuator: mjOBJ_ACTUATOR
        case .sensor: mjOBJ_SENSOR
        case .equality: mjOBJ_EQUALITY
        case .keyframe: mjOBJ_KEY
        }
    }
}

/// The kinds of joint; each moves its body in a different number of coordinates. The corresponding C type is
/// `mjtJoint`.
public enum JointType: Sendable, CustomStringConvertible {
    /// Position and orientation in the world: 7 coordinates (x, y, z, quaternion w, x, y, z), 6 dofs.
    case free
    /// Orientation relative to the parent: 4 coordinates (a quaternion), 3 dofs.
    case ball
    /// Translation along an axis: 1 coordinate, 1 dof.
    case slide
    /// Rotation about an axis, in radians: 1 coordinate, 1 dof.
    case hinge

    /// The number of entries the joint occupies in `qpos`.
    public var qposWidth: Int {
        switch self {
        case .free: 7
        case .ball: 4
        case .slide, .hinge: 1
        }
    }

    /// The number of entries the joint occupies in `qvel`.
    public var dofWidth: Int {
        switch self {
        case .free: 6
        case .ball: 3
        case .slide, .hinge: 1
        }
    }

    public var description: String {
        switch self {
        case .free: "free"
        case .ball: "ball"
        case .slide: "slide"
        case .hinge: "hinge"
        }
    }

    init(mjtJoint value: Int32) {
        switch UInt32(value) {
        case mjJNT_FREE.rawValue: self = .free
        case mjJNT_BALL.rawValue: self = .ball
        case mjJNT_SLIDE.rawValue: self = .slide
        case mjJNT_HINGE.rawValue: self = .hinge
        default: preconditionFailure("MuJoCo reported joint type \(value), which MuJoCo 2.2.2 does not define")
        }
    }
}
