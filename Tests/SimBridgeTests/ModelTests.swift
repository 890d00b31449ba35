import Foundation
import Testing

import SimBridge

@Suite struct ModelTests {
    @Test func headerAndLibraryVersionsAgree() throws {
        #expect(MuJoCo.headerVersion == MuJoCo.libraryVersion)
        #expect(MuJoCo.headerVersion == 222)
        try MuJoCo.prepare()
    }

    @Test func sizesOfALoadedModel() throws {
        let model = try Model(xml: Fixtures.armAndBox)
        #expect(model.nq == 2 + 7)
        #expect(model.nv == 2 + 6)
        #expect(model.nu == 2)
        #expect(model.na == 0)
        #expect(model.nbody == 5)  // world, target, upper, lower, box
        #expect(model.njnt == 3)
        #expect(model.ngeom == 5)
        #expect(model.nsite == 1)
        #expect(model.nmocap == 1)
        #expect(model.nkey == 1)
        #expect(model.nsensor == 2)
        #expect(model.nsensordata == 1 + 3)
        #expect(model.nuserdata == 3)
        #expect(model.count(of: .actuator) == 2)
        #expect(model.source == "MJCF text")
        #expect(model.loadWarning == nil)
    }

    @Test func timestepAndGravity() throws {
        let model = try Model(xml: Fixtures.armAndBox)
        #expect(model.timestep == 0.002)
        model.timestep = 0.001
        #expect(model.timestep == 0.001)
        #expect(model.gravity == SIMD3(0, 0, -9.81))
    }

    @Test func namesAndAddresses() throws {
        let model = try Model(xml: Fixtures.armAndBox)
        let elbow = try model.requireId(of: .joint, named: "elbow")
        let box = try model.requireId(of: .joint, named: "box")
        #expect(model.name(of: .joint, id: elbow) == "elbow")
        #expect(model.jointType(elbow) == .hinge)
        #expect(model.jointType(box) == .free)
        #expect(model.jointQposAddress(elbow) == 1)
        #expect(model.jointQposAddress(box) == 2)
        #expect(model.jointDofAddress(box) == 2)
        #expect(model.jointRange(elbow) == -2...2)
        #expect(try model.jointRange(model.requireId(of: .joint, named: "shoulder")) == nil)
        #expect(model.jointBody(elbow) == model.id(of: .body, named: "lower"))

        let lower = try model.requireId(of: .body, named: "lower")
        #expect(model.bodyParent(lower) == model.id(of: .body, named: "upper"))
        #expect(model.bodyMass(lower) == 0.3)
        #expect(try model.bodyMocapIndex(model.requireId(of: .body, named: "target")) == 0)
        #expect(model.bodyMocapIndex(lower) == nil)
        #expect(try model.geomBody(model.requireId(of: .geom, named: "lower")) == lower)
        #expect(try model.siteBody(model.requireId(of: .site, named: "tip")) == lower)
        #expect(try model.actuatorControlRange(model.requireId(of: .actuator, named: "shoulder")) == -2...2)
        #expect(try model.actuatorControlRange(model.requireId(of: .actuator, named: "elbow")) == nil)
        #expect(try model.sensorRange(model.requireId(of: .sensor, named: "tip")) == 1..<4)
        #expect(model.id(of: .keyframe, named: "bent") == 0)
        #expect(model.id(of: .geom, named: "floor") == 0)
    }

    @Test func unknownNames() throws {
        let model = try Model(xml: Fixtures.armAndBox)
        #expect(model.id(of: .body, named: "wrist") == nil)
        #expect(model.id(of: .joint, named: "upper") == nil)  // a body and a geom are called "upper", no joint
        let thrown = error { try model.requireId(of: .actuator, named: "wrist") }
        #expect(thrown == .unknownName(kind: .actuator, name: "wrist"))
        #expect(thrown?.description.contains("no actuator named 'wrist'") == true)
    }

    @Test func malformedXMLCarriesMuJoCosMessage() {
        let thrown = error { try Model(xml: "<mujoco><worldbody><body><geom size=\".1\"/></body></worldbod></mujoco>") }
        guard case .loadFailed(let source, let message) = thrown else {
            Issue.record("expected loadFailed, got \(String(describing: thrown))")
            return
        }
        #expect(source == "MJCF text")
        #expect(message.contains("XML_ERROR_MISMATCHED_ELEMENT"))
    }

    @Test func invalidAttributeCarriesMuJoCosMessage() {
        let thrown = error {
            try Model(xml: "<mujoco><worldbody><body><joint type=\"bogus\"/></body></worldbody></mujoco>")
        }
        guard case .loadFailed(_, let message) = thrown else {
            Issue.record("expected loadFailed, got \(String(describing: thrown))")
            return
        }
        #expect(message.contains("invalid keyword: 'bogus'"))
        #expect(thrown!.description.contains("invalid keyword: 'bogus'"))
    }

    @Test func compilerErrorCarriesMuJoCosMessage() {
        // Too small a stack for the test step MuJoCo's compiler runs: the compiler reports the engine error itself.
        let thrown = error { try Model(xml: Fixtures.boxOnFloor(nstack: 10)) }
        #expect(thrown == .loadFailed(source: "MJCF text", message: "Error: engine error: Stack overflow"))
    }

    @Test func emptyXMLIsRefused() {
        let thrown = error { try Model(xml: "") }
        #expect(thrown == .loadFailed(source: "MJCF text", message: "the MJCF text is empty"))
    }

    @Test func missingFileIsNamed() {
        let path = "/nonexistent/flowpolicy/scene.xml"
        let thrown = error { try Model(path: path) }
        #expect(thrown == .fileNotFound(path: path))
        #expect(thrown?.description.contains(path) == true)
    }

    @Test func loadsFromAFileByPathAndURL() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("simbridge-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("ball.xml")
        try Fixtures.fallingBall.write(to: url, atomically: true, encoding: .utf8)

        let byPath = try Model(path: url.path)
        #expect(byPath.nq == 7)
        #expect(byPath.source == url.path)
        let byURL = try Model(contentsOf: url)
        #expect(byURL.id(of: .geom, named: "ball") == 0)
    }

    @Test func brokenFileNamesTheFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("simbridge-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("broken.xml")
        try "<mujoco><worldbody>".write(to: url, atomically: true, encoding: .utf8)

        let thrown = error { try Model(contentsOf: url) }
        guard case .loadFailed(let source, let message) = thrown else {
            Issue.record("expected loadFailed, got \(String(describing: thrown))")
            return
        }
        #expect(source.contains(url.path))
        #expect(message.contains("XML parse error"))
    }
}
