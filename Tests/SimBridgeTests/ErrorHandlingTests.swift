import CMuJoCo
import Foundation
import Testing

import SimBridge

/// MuJoCo errors and divergence become Swift errors, and the data then refuses to step until it is reset.
@Suite struct ErrorHandlingTests {
    @Test func stackOverflowInStepIsAnEngineError() throws {
        let model = try Model(xml: Fixtures.boxOnFloor(nstack: 100))
        let data = try Data(model: model)
        var thrown: MuJoCoError?
        while thrown == nil && data.time < 1 {
            thrown = error { try data.step() }
        }
        // The box lands after sqrt(2 * 0.2 / 9.81) ≈ 0.2 s, and its four contacts overflow the stack.
        #expect(thrown == .engineError(function: "mj_step", message: "Stack overflow"))
        #expect(data.time > 0.19 && data.time < 0.21)
        #expect(data.needsReset)

        // The data refuses until it is reset; its stack was emptied, so it can still be copied for diagnosis.
        guard case .needsReset(let reason) = error(of: { try data.step() }) else {
            Issue.record("expected needsReset")
            return
        }
        #expect(reason.contains("mj_step raised 'Stack overflow'"))
        #expect(error { try data.forward() } != nil)
        let copy = try Data(copying: data)
        #expect(copy.needsReset)

        data.reset()
        #expect(!data.needsReset)
        try data.step(count: 50)
        #expect(data.time > 0.099)
    }

    @Test func stackOverflowInForwardIsAnEngineError() throws {
        let model = try Model(xml: Fixtures.boxOnFloor(nstack: 100))
        let data = try Data(model: model)
        data.withQpos { $0[2] = 0.05 }  // sink the box into the floor
        #expect(error { try data.forward() } == .engineError(function: "mj_forward", message: "Stack overflow"))
        #expect(data.needsReset)
    }

    @Test func hugeVelocityIsADivergence() throws {
        let model = try Model(xml: Fixtures.fallingBall)
        let data = try Data(model: model)
        try data.step(count: 10)
        let time = data.time
        data.withQvel { $0[2] = 1e30 }
        #expect(error { try data.step() } == .divergence(kind: .badQvel(dof: 2), time: time))
        // MuJoCo 2.2.2 reset the data to qpos0 and then took the step from there.
        #expect(data.time == model.timestep)
        #expect(data.warningCount(.badQvel) == 1)
        #expect(MuJoCo.lastWarning?.contains("Nan, Inf or huge value in QVEL at DOF 2") == true)
        #expect(
            error { try data.step() }
                == .needsReset(reason: "the simulation diverged at t = \(time) s: \(DivergenceKind.badQvel(dof: 2))"))
    }

    @Test func notANumberInQposIsADivergence() throws {
        let model = try Model(xml: Fixtures.fallingBall)
        let data = try Data(model: model)
        try data.step(count: 10)
        let time = data.time
        data.withQpos { $0[3] = .nan }
        #expect(error { try data.step() } == .divergence(kind: .badQpos(coordinate: 3), time: time))
    }

    @Test func hugeForceIsAnAccelerationDivergence() throws {
        let model = try Model(xml: Fixtures.fallingBall)
        let data = try Data(model: model)
        try data.step(count: 10)
        let time = data.time
        data.withQfrcApplied { $0[0] = 1e20 }
        #expect(error { try data.step() } == .divergence(kind: .badQacc(dof: 0), time: time))
    }

    @Test func notANumberInControlIsReported() throws {
        let model = try Model(xml: Fixtures.armAndBox)
        let data = try Data(model: model)
        data.ctrl = [0, .nan]
        #expect(error { try data.step() } == .divergence(kind: .badCtrl(actuator: 1), time: 0))
    }

    @Test func forwardReportsNotANumberMuJoCoDoesNotCheck() throws {
        // mj_forward runs no bad-number checks; SimBridge's own check catches the NaN it produces.
        let model = try Model(xml: Fixtures.fallingBall)
        let data = try Data(model: model)
        data.withQpos { $0[0] = .nan }
        #expect(error { try data.forward() } == .divergence(kind: .badQpos(coordinate: 0), time: 0))
    }

    @Test func everyDivergenceIsReportedNotOnlyTheFirst() throws {
        // After a divergence MuJoCo's counter reads 1 however many there were; a second one must still throw.
        let model = try Model(xml: Fixtures.fallingBall)
        let data = try Data(model: model)
        try data.step(count: 10)
        let saved = data.saveState()
        for _ in 0..<3 {
            try data.restoreState(saved)
            try data.step()
            data.withQvel { $0[0] = .infinity }
            #expect(error { try data.step() } == .divergence(kind: .badQvel(dof: 0), time: saved.time + model.timestep))
        }
    }

    @Test func errorsOnOneThreadDoNotDisturbAnother() throws {
        // Each thread has its own jump slot and message buffer: threads whose box overflows the stack on landing
        // get their own error back, while the others step through the landing undisturbed.
        final class Outcomes: @unchecked Sendable {  // guarded by `lock`
            let lock = NSLock()
            var byThread: [Int: [MuJoCoError?]] = [:]
        }
        let outcomes = Outcomes()
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            var mine: [MuJoCoError?] = []
            do {
                let data = try Data(
                    model: Model(xml: Fixtures.boxOnFloor(nstack: thread.isMultiple(of: 2) ? 100 : nil)))
                for _ in 0..<100 {
                    data.reset()
                    mine.append(error { try data.step(count: 150) })  // 0.3 s: the box lands at 0.2 s
                }
            } catch {
                Issue.record("thread \(thread): \(error)")
            }
            outcomes.lock.withLock { outcomes.byThread[thread] = mine }
        }
        let overflow = MuJoCoError.engineError(function: "mj_step", message: "Stack overflow")
        for thread in 0..<4 {
            #expect(
                outcomes.byThread[thread] == Array(repeating: thread.isMultiple(of: 2) ? overflow : nil, count: 100))
        }
    }

    @Test func guardedCallsFromAnotherFileAreRefused() throws {
        // This file has its own copy of the shim's static functions and thread-local jump slot, which the installed
        // error hook (MuJoCoRuntime.swift's copy) never sees. The guard notices and refuses instead of calling
        // MuJoCo, whose first error would otherwise abort the process.
        let data = try Data(model: Model(xml: Fixtures.fallingBall))
        #expect(Int(fp_guarded_forward(data.model.pointer, data.pointer)) == FP_STATUS_FOREIGN_HANDLER)
        try data.forward()
    }

    @Test func errorsDescribeTheFix() {
        let errors: [MuJoCoError] = [
            .versionMismatch(header: 222, library: 300),
            .engineError(function: "mj_step", message: "Stack overflow"),
            .divergence(kind: .badQacc(dof: 4), time: 1.25),
        ]
        #expect(errors[0].description.contains("222") && errors[0].description.contains("300"))
        #expect(errors[1].description.contains("mj_step") && errors[1].description.contains("reset()"))
        #expect(errors[2].description.contains("qacc[4]") && errors[2].description.contains("t = 1.25 s"))
    }
}
