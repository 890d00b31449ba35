import Foundation

/// Composes a robosuite manipulation scene from robosuite 1.5.2's own MJCF files (fetched into the asset cache by
/// `scripts/fetch_assets.py robomimic`): the Panda on its Rethink mount, the Panda gripper in the Panda's hand, an
/// arena, and objects with free joints, assembled the way robosuite's `ManipulationTask` merges its models.
///
/// What robosuite does in Python and this code does to the same files:
/// - every name of a part gets the part's prefix (`robot0_`, `fixed_mount0_`, `gripper0_right_`), and so do the
///   references to those names (meshes of geoms, joints of actuators);
/// - the gripper's root body goes into the robot's hand (`right_hand`), the mount's root body into the robot's root
///   body at `base_offset - mount.top_offset` = (0, 0, 0.01), and the robot's root body at the arena's base position
///   minus the robot's bottom offset (`mount root z - mount top offset`: -0.922 + 0.01);
/// - the Panda's arm joints get robosuite's damping (0.1 for joints 1-5, 0.01 for 6-7), armature `5 / (i + 1)` and
///   friction loss 0.1 (`RobotModel` and `Panda` set these in code);
/// - the global options of robosuite's `base.xml`: `impratio 20`, `cone elliptic`, air `density 1.2` and
///   `viscosity 2e-5`, timestep 0.002, and only group-0 geoms count for inertia (`inertiagrouprange 0 0`).
///
/// What differs, and why:
/// - visual-only geoms (contype and conaffinity 0), materials, textures, cameras, lights and sensors are left out,
///   with the meshes only they use: simulation does not draw, and none of them has mass or contacts (robosuite counts
///   only group-0 geoms for inertia, and the visual geoms are group 1). A *visual* scene (`init(model:visual:)`, for
///   rendering) keeps them, with robosuite's `<map znear="0.001"/>` and the visual geometry `TableArena` sets in code;
///   its bodies, joints and actuators are the same, so a simulation's state can be copied into it. Its meshes and
///   textures are fetched only for rendering (`scripts/fetch_assets.py robomimic --render`).
/// - MuJoCo 2.2.2 (Debian's) has no `autolimits` default of "true" as MuJoCo 3 has: a joint `range`, actuator
///   `ctrlrange` or `forcerange` without an explicit `limited` / `ctrllimited` / `forcelimited` would be ignored.
///   Composition writes the explicit flag wherever a range is given, so the limits robosuite's XML means hold.
/// - `<size>` is smaller than robosuite's 5000 / 5000 (MuJoCo 2.2.2 preallocates from it; 3.x grows on demand): the
///   scenes have a few dozen contacts at most, and `Data` reports overflow as a warning count.
public struct RobosuiteScene {
    /// The part of the composed model the task needs to find by name.
    public static let robotPrefix = "robot0_"
    public static let mountPrefix = "fixed_mount0_"
    public static let gripperPrefix = "gripper0_right_"
    /// The command that fetches the files only a visual scene needs.
    public static let renderAssetsCommand = "scripts/fetch_assets.py robomimic --render"

    /// Whether the scene keeps robosuite's visual geoms, materials, textures, cameras and lights.
    public let visual: Bool

    /// Where the fetched robosuite files are: `<asset cache>/robosuite-1.5.2/assets`.
    public let assets: URL
    public let root: MJCFElement
    private let worldbody: MJCFElement
    private let assetSection: MJCFElement
    private let actuatorSection: MJCFElement
    private let contactSection: MJCFElement

    /// Arm joint damping of robosuite's `Panda` model (joints 1..7).
    static let armDamping = [0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01]

    /// Starts a scene with robosuite's global options, for simulation or (`visual`) for rendering. Throws
    /// `MissingAssetError` (naming the fetch command) when the robosuite files are not in the asset cache.
    public init(model name: String, visual: Bool = false) throws {
        self.visual = visual
        assets = try Self.assetFolder()
        root = MJCFElement("mujoco", [("model", name)])
        root.children.append(MJCFElement("compiler", [("angle", "radian"), ("inertiagrouprange", "0 0")]))
        root.children.append(MJCFElement("option", [
            ("timestep", "0.002"), ("impratio", "20"), ("cone", "elliptic"), ("density", "1.2"),
            ("viscosity", "2e-05"),
        ]))
        root.children.append(MJCFElement("size", [("nconmax", "500"), ("njmax", "2000")]))
        if visual {
            root.children.append(MJCFElement("visual", children: [MJCFElement("map", [("znear", "0.001")])]))
        }
        assetSection = MJCFElement("asset")
        worldbody = MJCFElement("worldbody")
        actuatorSection = MJCFElement("actuator")
        contactSection = MJCFElement("contact")
        root.children += [assetSection, worldbody, contactSection, actuatorSection]
    }

    /// The cached robosuite asset folder, checked for one file of each part.
    public static func assetFolder() throws -> URL {
        let folder = AssetCache.root.appendingPathComponent("robosuite-1.5.2/assets")
        for file in ["robots/panda/robot.xml", "grippers/panda_gripper.xml", "bases/rethink_mount.xml"] {
            _ = try AssetCache.path("robosuite-1.5.2/assets/" + file, task: "robomimic")
        }
        return folder
    }

    /// Reads a robosuite file (relative to the asset folder).
    public func load(_ file: String) throws -> MJCFElement {
        let path = try AssetCache.path("robosuite-1.5.2/assets/" + file, task: "robomimic")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try MJCFElement.parse(text, source: path)
    }

    /// The composed MJCF text.
    public var xml: String { root.xml() }

    /// Compiles the scene. A visual scene first checks that its meshes and textures are in the asset cache, and
    /// throws `RenderingError.missingRenderAsset` (naming the fetch command) when one is not.
    public func compile() throws -> Model {
        if visual {
            for element in root.descendants where ["mesh", "texture"].contains(element.name) {
                guard let file = element["file"] else { continue }
                guard FileManager.default.fileExists(atPath: file) else {
                    throw RenderingError.missingRenderAsset(path: file, fetchCommand: Self.renderAssetsCommand)
                }
            }
        }
        // Mesh paths are absolute, so the virtual file's location only names the model in errors.
        return try Model(xml: xml, asIfAt: assets.appendingPathComponent("composed_scene.xml").path)
    }

    // MARK: Parts

    /// Adds an arena's collidable bodies and geoms (robosuite's arena files), with no prefix, as robosuite does.
    /// `edit` may change the arena's tree first (robosuite's `TableArena` resizes and moves the table in code).
    public func addArena(_ file: String, edit: (MJCFElement) throws -> Void = { _ in }) throws {
        let arena = try load(file)
        try edit(arena)
        if visual { try Self.configureTableVisuals(arena, file: file) }
        try merge(arena, prefix: "", file: file, into: worldbody)
    }

    /// Adds the Panda on its Rethink mount with its root body at `basePosition` (robosuite's arena base offset, e.g.
    /// `(-0.56, 0, 0)` for a 0.8 m table), and the Panda gripper in its hand.
    public func addPandaWithGripper(basePosition: SIMD3<Double>) throws {
        let robotFile = "robots/panda/robot.xml"
        let robot = try load(robotFile)
        let mountFile = "bases/rethink_mount.xml"
        let mount = try load(mountFile)
        let gripperFile = "grippers/panda_gripper.xml"
        let gripper = try load(gripperFile)

        guard let robotRoot = robot.child("worldbody")?.child("body") else {
            throw MJCFError.missing(source: robotFile, what: "root body")
        }
        guard let mountRoot = mount.child("worldbody")?.child("body"),
              let mountPosition = try mountRoot.numbers("pos"), mountPosition.count == 3
        else { throw MJCFError.missing(source: mountFile, what: "root body with a position") }
        guard let gripperRoot = gripper.child("worldbody")?.child("body") else {
            throw MJCFError.missing(source: gripperFile, what: "root body")
        }
        // robosuite's RethinkMount.top_offset; the robot's bottom offset is the mount's (root pos - top offset).
        let mountTop = SIMD3<Double>(0, 0, -0.01)
        let bottomOffset = SIMD3(mountPosition[0], mountPosition[1], mountPosition[2]) - mountTop
        let rootPosition = basePosition - bottomOffset
        robotRoot.setNumbers("pos", [rootPosition.x, rootPosition.y, rootPosition.z])
        mountRoot.setNumbers("pos", [-mountTop.x, -mountTop.y, -mountTop.z])

        // Arm joint attributes robosuite sets in code.
        for (i, name) in (1...7).map({ "joint\($0)" }).enumerated() {
            guard let joint = robot.find("joint", named: name) else {
                throw MJCFError.missing(source: robotFile, what: "joint \(name)")
            }
            joint["damping"] = formatNumber(Self.armDamping[i])
            joint["armature"] = formatNumber(5.0 / Double(i + 1))
            joint["frictionloss"] = "0.1"
        }
        guard let hand = robot.find("body", named: "right_hand") else {
            throw MJCFError.missing(source: robotFile, what: "body right_hand")
        }

        // Prefix each part on its own (names and references), then nest: mount and gripper bodies inside the robot.
        try prepare(robot, prefix: Self.robotPrefix, folder: Self.folder(of: robotFile), file: robotFile)
        try prepare(mount, prefix: Self.mountPrefix, folder: "bases", file: mountFile)
        try prepare(gripper, prefix: Self.gripperPrefix, folder: "grippers", file: gripperFile)
        hand.children.append(gripperRoot)
        robotRoot.children.append(mountRoot)
        for part in [robot, mount, gripper] {
            assetSection.children += part.child("asset")?.children ?? []
            actuatorSection.children += part.child("actuator")?.children ?? []
        }
        worldbody.children.append(robotRoot)
    }

    /// Adds an object body (already named with its prefix) to the world.
    public func addObject(_ body: MJCFElement) {
        worldbody.children.append(body)
    }

    /// Adds a robosuite object file (`objects/can.xml`, ...) as robosuite's `MujocoXMLObject` does: the file's
    /// outer body becomes `<name>_main` with a free joint `<name>_joint0`, every name gets the prefix `<name>_`,
    /// and the object's sites (`bottom_site`, `top_site`, `horizontal_radius_site`) are kept for placement.
    /// `jointDamping` is the free joint's damping (robosuite's `CanObject` and `SquareNutObject` give 0.0005).
    @discardableResult
    public func addObject(file: String, name: String, jointDamping: Double? = nil) throws -> MJCFElement {
        let object = try load(file)
        guard let outer = object.child("worldbody")?.child("body") else {
            throw MJCFError.missing(source: file, what: "object body")
        }
        if visual { Self.duplicateCollisionGeomsAsVisual(object) }
        try prepare(object, prefix: name + "_", folder: Self.folder(of: file), file: file)
        outer["name"] = name + "_main"
        let joint = MJCFElement("joint", [("name", name + "_joint0"), ("type", "free")])
        if let jointDamping { joint["damping"] = formatNumber(jointDamping) }
        outer.children.insert(joint, at: 0)
        assetSection.children += object.child("asset")?.children ?? []
        worldbody.children.append(outer)
        return outer
    }

    /// Adds an element (a texture or material, names as they are) to the scene's assets.
    public func addAsset(_ element: MJCFElement) {
        assetSection.children.append(element)
    }

    /// robosuite's `MujocoXMLObject` with `duplicate_collision_geoms=True` (the can, the square nut): every collision
    /// geom (group 0 or none) gets a visual copy beside it (group 1, no contacts, mass 1e-8, name + `_visual`) that
    /// keeps its material; the collision geom itself is hidden in robosuite's renders (group 0).
    static func duplicateCollisionGeomsAsVisual(_ object: MJCFElement) {
        var index = 0
        for parent in object.descendants where parent.name == "body" {
            for geom in parent.children where geom.name == "geom" {
                defer { index += 1 }
                guard geom["group"] == nil || geom["group"] == "0" else { continue }
                let copy = MJCFElement("geom", geom.attributes.map { ($0.key, $0.value) })
                copy["group"] = "1"
                copy["conaffinity"] = "0"
                copy["contype"] = "0"
                copy["mass"] = "1e-8"
                copy["name"] = (geom["name"] ?? "g\(index)") + "_visual"
                parent.children.append(copy)
            }
        }
    }

    /// Excludes contacts between two bodies (composed names).
    public func excludeContacts(_ body1: String, _ body2: String) {
        contactSection.children.append(MJCFElement("exclude", [("body1", body1), ("body2", body2)]))
    }

    // MARK: Composition

    /// The folder of a file path relative to the asset folder ("robots/panda/robot.xml" -> "robots/panda").
    static func folder(of file: String) -> String {
        guard let slash = file.lastIndex(of: "/") else { return "" }
        return String(file[..<slash])
    }

    private func merge(_ part: MJCFElement, prefix: String, file: String, into target: MJCFElement) throws {
        try prepare(part, prefix: prefix, folder: Self.folder(of: file), file: file)
        assetSection.children += part.child("asset")?.children ?? []
        actuatorSection.children += part.child("actuator")?.children ?? []
        target.children += part.child("worldbody")?.children ?? []
    }

    /// robosuite's `TableArena.configure_location` for the visual geoms (the physics edit of `addArena` sets the
    /// table body and its collision box): the visual box takes the collision box's size, and the four legs reach
    /// from the table top's underside to the floor, 0.1 m in from the corners. Arenas without `table_visual` (the
    /// bins) are left as they are.
    static func configureTableVisuals(_ arena: MJCFElement, file: String) throws {
        guard let box = arena.find("geom", named: "table_visual") else { return }
        guard let body = arena.find("body", named: "table"),
              let collision = arena.find("geom", named: "table_collision"),
              let half = try collision.numbers("size"), half.count == 3,
              let center = try body.numbers("pos"), center.count == 3
        else { throw MJCFError.missing(source: file, what: "table body position and table_collision size") }
        box.setNumbers("size", half)
        let offsetZ = center[2] + half[2]  // TableArena: center = offset - half height
        for (index, (dx, dy)) in [(0.1, 0.1), (-0.1, 0.1), (-0.1, -0.1), (0.1, -0.1)].enumerated() {
            guard let leg = arena.find("geom", named: "table_leg\(index + 1)_visual") else { continue }
            let x = half[0] > abs(dx * 2) ? (dx > 0 ? half[0] : -half[0]) - dx : 0
            let y = half[1] > abs(dy * 2) ? (dy > 0 ? half[1] : -half[1]) - dy : 0
            let z = (offsetZ - half[2]) / 2
            leg.setNumbers("pos", [x, y, -z])
            leg.setNumbers("size", [0.025, z])
        }
    }

    /// Strips what has no physics (unless the scene is visual), makes limits explicit, prefixes names and references,
    /// and resolves mesh and texture files to absolute paths (robosuite resolves them against the part file's folder).
    /// A visual scene keeps the visual elements, with their references (materials of geoms, textures of materials)
    /// prefixed as robosuite's `add_prefix` does.
    private func prepare(_ part: MJCFElement, prefix: String, folder: String, file: String) throws {
        part.children.removeAll { $0.name == "sensor" }
        if !visual {
            part.removeAll { element in
                switch element.name {
                case "camera", "light", "material", "texture": return true
                case "geom": return element["contype"] == "0" && element["conaffinity"] == "0"
                default: return false
                }
            }
            // Meshes that only visual geoms used.
            var usedMeshes = Set<String>()
            for element in part.descendants where element.name == "geom" {
                element["material"] = nil
                if let mesh = element["mesh"] { usedMeshes.insert(mesh) }
            }
            part.child("asset")?.children.removeAll { $0.name == "mesh" && !usedMeshes.contains($0["name"] ?? "") }
        }
        for element in part.descendants {
            switch element.name {
            case "joint":
                if element["range"] != nil && element["limited"] == nil { element["limited"] = "true" }
            case "motor", "position", "velocity", "general":
                if element["ctrlrange"] != nil && element["ctrllimited"] == nil { element["ctrllimited"] = "true" }
                if element["forcerange"] != nil && element["forcelimited"] == nil { element["forcelimited"] = "true" }
                if let joint = element["joint"] { element["joint"] = prefix + joint }
            case "mesh", "texture":
                guard let assetFile = element["file"] else {
                    if element.name == "mesh" {
                        throw MJCFError.missing(source: file, what: "file of mesh \(element["name"] ?? "?")")
                    }
                    break  // a builtin texture
                }
                element["file"] = assets.appendingPathComponent(folder).appendingPathComponent(assetFile)
                    .standardizedFileURL.path
            case "geom":
                if let mesh = element["mesh"] { element["mesh"] = prefix + mesh }
                if let material = element["material"] { element["material"] = prefix + material }
            case "material":
                if let texture = element["texture"] { element["texture"] = prefix + texture }
            case "exclude":
                if let body = element["body1"] { element["body1"] = prefix + body }
                if let body = element["body2"] { element["body2"] = prefix + body }
            default:
                break
            }
            if let name = element["name"], !prefix.isEmpty { element["name"] = prefix + name }
        }
    }
}
