import CMuJoCo

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A compiled MuJoCo model: sizes, options, the kinematic tree, names. Owns its `mjModel`.
///
/// A `Model` is shared by every `Data` made from it, and each `Data` keeps its model alive. Changing an option
/// (such as `timestep`) affects all of them. Not `Sendable`: the options are mutable and unsynchronised.
public final class Model {
    /// The underlying `mjModel`, for calling MuJoCo's C API directly; valid while this object lives.
    public let pointer: UnsafeMutablePointer<mjModel>

    /// Where the model came from: a file path, or "MJCF text" for a model loaded from a string.
    public let source: String

    /// The warning MuJoCo's compiler attached to an otherwise successful load, if any.
    public let loadWarning: String?

    /// Loads and compiles an MJCF (or URDF) file; relative paths are resolved against the current directory, and
    /// files the model includes against the model file's directory. The corresponding C function is `mj_loadXML`.
    public init(path: String) throws(MuJoCoError) {
        try MuJoCo.prepare()
        guard FileManager.default.fileExists(atPath: path) else { throw .fileNotFound(path: path) }
        (pointer, loadWarning) = try Engine.loadXML(path: path, text: nil, source: "file '\(path)'")
        source = path
    }

    /// Loads and compiles an MJCF (or URDF) file. The corresponding C function is `mj_loadXML`.
    public convenience init(contentsOf url: URL) throws(MuJoCoError) {
        try self.init(path: url.path)
    }

    /// Compiles a model from MJCF text. Files the text refers to (meshes, includes) are looked up relative to the
    /// current directory. The corresponding C functions are `mj_makeEmptyFileVFS` and `mj_loadXML`.
    public init(xml: String) throws(MuJoCoError) {
        try MuJoCo.prepare()
        (pointer, loadWarning) = try Engine.loadXML(path: "model.xml", text: xml, source: "MJCF text")
        source = "MJCF text"
    }

    /// Compiles MJCF text as if it were the file at `path`: the files it includes, its meshes and textures are found
    /// relative to `path`'s folder, as for a model loaded from that file. (The text is served through a one-file
    /// virtual file system under `path`'s file name, which it shadows for includes too; `path` itself need not
    /// exist.) The corresponding C functions are `mj_makeEmptyFileVFS` and `mj_loadXML`.
    public init(xml: String, asIfAt path: String) throws(MuJoCoError) {
        try MuJoCo.prepare()
        (pointer, loadWarning) = try Engine.loadXML(path: path, text: xml, source: "MJCF text at '\(path)'")
        source = path
    }

    deinit {
        mj_deleteModel(pointer)
    }

    // MARK: Sizes

    /// The number of generalized coordinates (length of `qpos`).
    public var nq: Int { Int(pointer.pointee.nq) }
    /// The number of degrees of freedom (length of `qvel`).
    public var nv: Int { Int(pointer.pointee.nv) }
    /// The number of actuators (length of `ctrl`).
    public var nu: Int { Int(pointer.pointee.nu) }
    /// The number of actuator activations (length of `act`).
    public var na: Int { Int(pointer.pointee.na) }
    /// The number of bodies, including the world body 0.
    public var nbody: Int { Int(pointer.pointee.nbody) }
    /// The number of joints.
    public var njnt: Int { Int(pointer.pointee.njnt) }
    /// The number of geoms.
    public var ngeom: Int { Int(pointer.pointee.ngeom) }
    /// The number of sites.
    public var nsite: Int { Int(pointer.pointee.nsite) }
    /// The number of mocap bodies.
    public var nmocap: Int { Int(pointer.pointee.nmocap) }
    /// The number of keyframes.
    public var nkey: Int { Int(pointer.pointee.nkey) }
    /// The number of sensors.
    public var nsensor: Int { Int(pointer.pointee.nsensor) }
    /// The total length of all sensor outputs (length of `sensorData`).
    public var nsensordata: Int { Int(pointer.pointee.nsensordata) }
    /// The length of `userdata` (set with `<size nuserdata="..."/>`).
    public var nuserdata: Int { Int(pointer.pointee.nuserdata) }

    /// The number of objects of a kind.
    public func count(of kind: ObjectKind) -> Int {
        let m = pointer  // `pointer.pointee.field` reads one field without copying the whole mjModel
        switch kind {
        case .body: return Int(m.pointee.nbody)
        case .joint: return Int(m.pointee.njnt)
        case .geom: return Int(m.pointee.ngeom)
        case .site: return Int(m.pointee.nsite)
        case .camera: return Int(m.pointee.ncam)
        case .light: return Int(m.pointee.nlight)
        case .mesh: return Int(m.pointee.nmesh)
        case .tendon: return Int(m.pointee.ntendon)
        case .actuator: return Int(m.pointee.nu)
        case .sensor: return Int(m.pointee.nsensor)
        case .equality: return Int(m.pointee.neq)
        case .keyframe: return Int(m.pointee.nkey)
        }
    }

    // MARK: Options

    /// The simulation time step in seconds. Must be positive and finite. The corresponding C field is
    /// `mjModel.opt.timestep`.
    public var timestep: Double {
        get { pointer.pointee.opt.timestep }
        set {
            precondition(newValue > 0 && newValue.isFinite, "timestep must be positive and finite, got \(newValue)")
            pointer.pointee.opt.timestep = newValue
        }
    }

    /// The gravitational acceleration in m/s², world frame. The corresponding C field is `mjModel.opt.gravity`.
    public var gravity: SIMD3<Double> {
        let g = pointer.pointee.opt.gravity
        return SIMD3(g.0, g.1, g.2)
    }

    // MARK: Names

    /// The index of the object of `kind` named `name`, or nil if there is none. The corresponding C function is
    /// `mj_name2id`.
    public func id(of kind: ObjectKind, named name: String) -> Int? {
        let id = mj_name2id(pointer, Int32(kind.mjtObj.rawValue), name)
        return id < 0 ? nil : Int(id)
    }

    /// The index of the object of `kind` named `name`; throws `MuJoCoError.unknownName` if there is none. The
    /// corresponding C function is `mj_name2id`.
    public func requireId(of kind: ObjectKind, named name: String) throws(MuJoCoError) -> Int {
        guard let id = id(of: kind, named: name) else { throw .unknownName(kind: kind, name: name) }
        return id
    }

    /// The name of object `id` of `kind`, or nil if it has none. The corresponding C function is `mj_id2name`.
    public func name(of kind: ObjectKind, id: Int) -> String? {
        checkIndex(id, of: kind)
        guard let name = mj_id2name(pointer, Int32(kind.mjtObj.rawValue), Int32(id)) else { return nil }
        return String(cString: name)
    }

    // MARK: Joints

    /// The type of joint `joint`. The corresponding C field is `mjModel.jnt_type`.
    public func jointType(_ joint: Int) -> JointType {
        checkIndex(joint, of: .joint)
        return JointType(mjtJoint: pointer.pointee.jnt_type[joint])
    }

    /// The first index of joint `joint` in `qpos`. The corresponding C field is `mjModel.jnt_qposadr`.
    public func jointQposAddress(_ joint: Int) -> Int {
        checkIndex(joint, of: .joint)
        return Int(pointer.pointee.jnt_qposadr[joint])
    }

    /// The first index of joint `joint` in `qvel` (and `qacc`, `qfrcApplied`). The corresponding C field is
    /// `mjModel.jnt_dofadr`.
    public func jointDofAddress(_ joint: Int) -> Int {
        checkIndex(joint, of: .joint)
        return Int(pointer.pointee.jnt_dofadr[joint])
    }

    /// The body joint `joint` moves. The corresponding C field is `mjModel.jnt_bodyid`.
    public func jointBody(_ joint: Int) -> Int {
        checkIndex(joint, of: .joint)
        return Int(pointer.pointee.jnt_bodyid[joint])
    }

    /// The range of joint `joint` (radians or metres), or nil if it is not limited. The corresponding C fields
    /// are `mjModel.jnt_limited` and `mjModel.jnt_range`.
    public func jointRange(_ joint: Int) -> ClosedRange<Double>? {
        checkIndex(joint, of: .joint)
        guard pointer.pointee.jnt_limited[joint] != 0 else { return nil }
        return pointer.pointee.jnt_range[2 * joint]...pointer.pointee.jnt_range[2 * joint + 1]
    }

    // MARK: Bodies, geoms, sites, actuators

    /// The parent of body `body` (the world body 0 is its own parent). The corresponding C field is
    /// `mjModel.body_parentid`.
    public func bodyParent(_ body: Int) -> Int {
        checkIndex(body, of: .body)
        return Int(pointer.pointee.body_parentid[body])
    }

    /// The index of body `body` in `mocapPos` / `mocapQuat`, or nil if it is not a mocap body. The corresponding
    /// C field is `mjModel.body_mocapid`.
    public func bodyMocapIndex(_ body: Int) -> Int? {
        checkIndex(body, of: .body)
        let index = pointer.pointee.body_mocapid[body]
        return index < 0 ? nil : Int(index)
    }

    /// The mass of body `body` in kilograms. The corresponding C field is `mjModel.body_mass`.
    public func bodyMass(_ body: Int) -> Double {
        checkIndex(body, of: .body)
        return pointer.pointee.body_mass[body]
    }

    /// The body geom `geom` is attached to. The corresponding C field is `mjModel.geom_bodyid`.
    public func geomBody(_ geom: Int) -> Int {
        checkIndex(geom, of: .geom)
        return Int(pointer.pointee.geom_bodyid[geom])
    }

    /// The body site `site` is attached to. The corresponding C field is `mjModel.site_bodyid`.
    public func siteBody(_ site: Int) -> Int {
        checkIndex(site, of: .site)
        return Int(pointer.pointee.site_bodyid[site])
    }

    /// The control range of actuator `actuator`, or nil if its control is not limited. The corresponding C fields
    /// are `mjModel.actuator_ctrllimited` and `mjModel.actuator_ctrlrange`.
    public func actuatorControlRange(_ actuator: Int) -> ClosedRange<Double>? {
        checkIndex(actuator, of: .actuator)
        guard pointer.pointee.actuator_ctrllimited[actuator] != 0 else { return nil }
        return pointer.pointee.actuator_ctrlrange[2 * actuator]...pointer.pointee.actuator_ctrlrange[2 * actuator + 1]
    }

    /// The first index of sensor `sensor`'s output in `sensorData` and its number of values. The corresponding C
    /// fields are `mjModel.sensor_adr` and `mjModel.sensor_dim`.
    public func sensorRange(_ sensor: Int) -> Range<Int> {
        checkIndex(sensor, of: .sensor)
        let start = Int(pointer.pointee.sensor_adr[sensor])
        return start..<(start + Int(pointer.pointee.sensor_dim[sensor]))
    }

    func checkIndex(_ index: Int, of kind: ObjectKind) {
        precondition(
            index >= 0 && index < count(of: kind),
            "\(kind) index \(index) is out of range: the model has \(count(of: kind)) \(kind) object(s)")
    }
}
