import Foundation

extension Robomimic {
    /// A composed scene and what the environment needs to know about it.
    struct ComposedScene {
        var scene: RobosuiteScene
        /// The object's name prefix: `cube`, `Can` or `SquareNut`.
        var objectName: String
        /// The table top's height (Lift, Square), or the bins' centre height (Can).
        var tableTop: Double
    }

    /// Composes the task's robosuite scene: for simulation, or (`visual`) for rendering, with the same bodies,
    /// joints and actuators plus robosuite's visual geoms, materials, textures, cameras and lights.
    static func composeScene(settings: RobomimicSettings, taskName: String, visual: Bool) throws -> ComposedScene {
        let scene = try RobosuiteScene(model: taskName, visual: visual)
        let objectName: String
        let tableTop: Double
        if let table = settings.table {
            // Lift and Square stand on robosuite's TableArena (Square's PegsArena is a TableArena with the pegs of its
            // file: the square peg1 and the round peg2, both kept as the file has them).
            let tableHalf = SIMD3(table.size[0], table.size[1], table.size[2]) / 2
            let tableOffset = SIMD3(table.offset[0], table.offset[1], table.offset[2])
            tableTop = tableOffset.z
            let arenaFile = settings.task == "lift" ? "arenas/table_arena.xml" : "arenas/pegs_arena.xml"
            try scene.addArena(arenaFile) { arena in
                // robosuite's TableArena: the table body at offset - half height, the box resized, the top site moved.
                guard let body = arena.find("body", named: "table"),
                      let box = arena.find("geom", named: "table_collision"),
                      let top = arena.find("site", named: "table_top")
                else {
                    throw MJCFError.missing(source: arenaFile, what: "table, table_collision, table_top")
                }
                body.setNumbers("pos", [tableOffset.x, tableOffset.y, tableOffset.z - tableHalf.z])
                box.setNumbers("size", [tableHalf.x, tableHalf.y, tableHalf.z])
                top.setNumbers("pos", [0, 0, tableHalf.z])
            }
            // robosuite's Panda.base_xpos_offset["table"]: (-0.16 - table length / 2, 0, 0).
            let base = settings.robotBase ?? [-0.16 - table.size[0] / 2, 0, 0]
            try scene.addPandaWithGripper(basePosition: SIMD3(base[0], base[1], base[2]))
            if settings.task == "lift" {
                // The cube (robosuite's BoxObject "cube": one box geom with MuJoCo's default material, density 1000);
                // its size is set per episode.
                let cube = MJCFElement("body", [("name", "cube_main")], children: [
                    MJCFElement("joint", [("name", "cube_joint0"), ("type", "free")]),
                    MJCFElement("geom", [("name", "cube_g0"), ("type", "box"), ("size", "0.021 0.021 0.021"),
                                         ("density", "1000"), ("group", "0")]),
                ])
                if visual { addCubeVisual(to: cube, scene: scene) }
                scene.addObject(cube)
                objectName = "cube"
            } else {
                // NutAssemblySquare: only the square nut (five boxes). NutAssembly also builds the round nut and, in
                // single-object mode, moves it to (10, 10, 10) at every reset, far from everything: it is left out.
                try scene.addObject(file: "objects/square-nut.xml", name: "SquareNut", jointDamping: 0.0005)
                objectName = "SquareNut"
            }
        } else {
            // PickPlaceCan: robosuite's bins arena as it is (PickPlace keeps the file's bin positions), the robot at
            // Panda.base_xpos_offset["bins"], and only the can: PickPlaceCan also builds the milk, bread and cereal
            // and moves them to (10, 10, 10) at every reset, far from everything, so they are left out.
            tableTop = settings.bins!.bin1[2]
            try scene.addArena("arenas/bins_arena.xml")
            let base = settings.robotBase!
            try scene.addPandaWithGripper(basePosition: SIMD3(base[0], base[1], base[2]))
            try scene.addObject(file: "objects/can.xml", name: "Can", jointDamping: 0.0005)
            objectName = "Can"
        }
        return ComposedScene(scene: scene, objectName: objectName, tableTop: tableTop)
    }

    /// The cube's visual geom as robosuite's Lift builds it (`BoxObject` with the `redwood` material: texture
    /// `WoodRed`, red-wood.png as a cube map), group 1 and without contacts or mass. Its size follows the cube's
    /// collision geom, which changes every episode (`Robomimic.renderCubeGeoms`).
    static func addCubeVisual(to cube: MJCFElement, scene: RobosuiteScene) {
        let texture = scene.assets.appendingPathComponent("textures/red-wood.png").standardizedFileURL.path
        scene.addAsset(MJCFElement("texture", [("name", "redwood"), ("type", "cube"), ("file", texture)]))
        scene.addAsset(MJCFElement("material", [
            ("name", "redwood_mat"), ("texture", "redwood"), ("texrepeat", "1 1"), ("specular", "0.4"),
            ("shininess", "0.1"),
        ]))
        cube.children.append(MJCFElement("geom", [
            ("name", "cube_g0_vis"), ("type", "box"), ("size", "0.021 0.021 0.021"), ("group", "1"),
            ("contype", "0"), ("conaffinity", "0"), ("material", "redwood_mat"), ("rgba", "1 0 0 1"),
        ]))
    }
}
