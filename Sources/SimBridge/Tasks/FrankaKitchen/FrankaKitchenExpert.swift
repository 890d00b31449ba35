import CMuJoCo
import Foundation

/// The scripted expert of Franka Kitchen: it does the requested subtasks in the order of the task list, with the
/// environment's own action space (joint velocities), driving the genuine Franka model by differential inverse
/// kinematics on MuJoCo's site Jacobian of the end effector.
///
/// Each subtask is a short program of phases (`KitchenSkills`): a joint-space move to a pre-pose (the configuration
/// that reaches it from the initial posture, found by kinematic inverse kinematics), straight-line Cartesian moves,
/// gripper holds, and closed-loop phases that follow the object (pulling a door handle along its arc as the door
/// opens, twisting a knob, carrying the kettle). Phases end on a tolerance or a step budget, so a failed phase does
/// not stall the episode.
///
/// Control: each step solves for joint displacements that move the end effector toward the phase's target (damped
/// least squares, joints near their limits locked, a weak pull toward the initial posture in the null space), then
/// turns them into the action the environment integrates: the position target that, given the actuators' gain,
/// damping and the gravity and Coriolis forces (`qfrc_bias`), makes the joints follow, relative to the last observed
/// joint positions from which the environment integrates. The gripper is fully open (+1) or closed (-1).
///
/// Privileged and deterministic: it reads the true simulation state (on its own scratch copy, so that the
/// environment's trajectory is untouched) and its only randomness is the environment's.
public final class FrankaKitchenExpert: Expert {
    let environment: FrankaKitchen
    let model: Model
    /// The expert's copy of the state, where it computes kinematics, Jacobians and bias forces.
    let scratch: Data
    /// A second copy for the kinematic inverse kinematics of pre-poses.
    let planning: Data
    let endEffector: Int
    var sites: [String: Int] = [:]
    /// Initial arm posture: null-space target and the start of every pre-pose solution.
    let nominal: [Double]
    let lower: [Double]
    let upper: [Double]
    let gain: [Double]
    let damping: [Double]
    /// Target lead per arm joint (`jointAction`).
    let lead: [Double]
    let dt: Double
    var program: [KitchenPhase] = []
    var phaseIndex = 0
    var phaseSteps = 0
    var phaseStarted = false
    /// Filled by the kettle skill: where the kettle was when it was lifted.
    var kettleStart = SIMD3<Double>(repeating: 0)
    /// Finished phases with their step counts (for diagnosis).
    public private(set) var log: [(phase: String, steps: Int)] = []
    /// With the environment variable `FLOWPOLICY_KITCHEN_TRACE` set, each episode's phases (steps, `!` when a phase
    /// ran out of steps), the steps at which subtasks were completed and the largest change of an arm action between
    /// consecutive steps go to standard error, one line per episode (for profiling the expert).
    static let tracing = ProcessInfo.processInfo.environment["FLOWPOLICY_KITCHEN_TRACE"] != nil
    var trace = ""
    var traceSeed: UInt64 = 0
    var traceSteps = 0
    var traceCompleted: [Bool] = []
    var previousAction: [Double] = []
    /// Largest change of an arm action between consecutive steps in this episode.
    public private(set) var largestActionChange = 0.0
    /// Where it happened (traced only).
    var largestActionChangeAt = ""

    static let arm = 7
    /// Largest change of an arm joint's displacement per step from one step to the next (rad per step per step:
    /// 4.7 rad/s²; this bounds the change of an arm action between steps to about 0.4 of the [-1, 1] range), and
    /// largest braking of the end effector's (m per step per step: 1.9 m/s²).
    static let jointAcceleration = 0.03
    static let cartesianBraking = 0.012
    /// The displacement the last action asked of each arm joint.
    var previousDq = [Double](repeating: 0, count: arm)

    public init(environment: FrankaKitchen) throws {
        self.environment = environment
        model = environment.model
        scratch = try Data(model: model)
        planning = try Data(model: model)
        endEffector = try model.requireId(of: .site, named: "end_effector")
        for name in ["knob2_site", "knob4_site", "light_site", "slide_site", "hinge_site2", "microhandle_site",
                     "kettle_site"]
        {
            sites[name] = try model.requireId(of: .site, named: name)
        }
        nominal = Array(FrankaKitchen.initialQpos[0..<Self.arm])
        let model = environment.model
        let m = model.pointer
        lower = (0..<Self.arm).map { model.jointRange($0)!.lowerBound + 0.05 }
        upper = (0..<Self.arm).map { model.jointRange($0)!.upperBound - 0.05 }
        gain = (0..<Self.arm).map { m.pointee.actuator_gainprm[10 * $0] }  // mjNGAIN = 10
        damping = (0..<Self.arm).map { m.pointee.dof_damping[$0] }
        dt = environment.controlPeriod
        lead = (0..<Self.arm).map { [gain, damping, dt] k in 1 / (1 - exp(-dt * gain[k] / damping[k])) }
    }

    deinit { flushTrace() }

    /// Adds a finished phase to the trace; one that ran out of steps with where the hand is, the arm joints near
    /// their limits and the bodies in contact.
    func traceEnd(of phase: KitchenPhase, done: Bool) {
        trace += " \(phase.name) \(phaseSteps)\(done ? "" : "!")"
        if !done {
            let x = pose.0
            let atLimit = (0..<Self.arm).filter { qpos($0) < lower[$0] + 0.02 || qpos($0) > upper[$0] - 0.02 }
            let touching = Set(environment.data.contacts.map { contact in
                [contact.geom1, contact.geom2].map { model.name(of: .body, id: model.geomBody($0)) ?? "?" }
                    .joined(separator: "/")
            })
            trace += String(format: " at (%.3f %.3f %.3f)", x.x, x.y, x.z)
                + " joints at limits \(atLimit) contacts \(touching.sorted())"
            if let move = phase as? CartesianMove {
                trace += String(format: " goal (%.3f %.3f %.3f)", move.goal.x, move.goal.y, move.goal.z)
            }
        }
        trace += ";"
    }

    func flushTrace() {
        guard Self.tracing, traceSteps > 0 else { return }
        let line = "kitchen-trace seed \(traceSeed) steps \(traceSteps) max-arm-change "
            + String(format: "%.3f", largestActionChange) + " (\(largestActionChangeAt)) |" + trace + "\n"
        FileHandle.standardError.write(line.data(using: .utf8)!)
        traceSteps = 0
    }

    public func begin(episodeSeed: UInt64) throws {
        flushTrace()
        trace = ""
        traceSeed = episodeSeed
        traceCompleted = environment.completed
        previousAction = []
        largestActionChange = 0
        largestActionChangeAt = ""
        var random = SeededRandom(seed: episodeSeed ^ 0x6578_7065_7274)  // "expert": not the noise's stream
        program = environment.settings.tasks.flatMap { subtask in
            KitchenSkills.phases(for: subtask, expert: self, variation: .init(&random))
        }
        phaseIndex = 0
        previousDq = [Double](repeating: 0, count: Self.arm)
        phaseSteps = 0
        phaseStarted = false
        log = []
    }

    public func act(action: UnsafeMutablePointer<Float>) throws {
        try sync()
        while phaseIndex < program.count {
            let phase = program[phaseIndex]
            if !phaseStarted {
                try phase.start(self)
                phaseStarted = true
                phaseSteps = 0
            }
            // A phase out of steps ends before computing another action: computing one advances the acceleration
            // limit's state (`previousDq`), and discarding it would let the next phase's first action change by
            // twice the limit.
            let command = phaseSteps < phase.maxSteps ? try phase.step(self) : nil
            guard let command, !command.done else {
                log.append((phase.name, phaseSteps))
                if Self.tracing { traceEnd(of: phase, done: command?.done ?? false) }
                phaseIndex += 1
                phaseStarted = false
                continue
            }
            phaseSteps += 1
            write(command.action, to: action)
            return
        }
        let (x, r) = pose
        write(try cartesianAction(to: x, r, gripper: .open, speed: 0.3), to: action)
    }

    func write(_ values: [Double], to action: UnsafeMutablePointer<Float>) {
        for i in 0..<values.count { action[i] = Float(values[i]) }
        if !previousAction.isEmpty {
            for k in 0..<Self.arm where abs(values[k] - previousAction[k]) > largestActionChange {
                largestActionChange = abs(values[k] - previousAction[k])
                if Self.tracing {
                    let name = phaseIndex < program.count ? program[phaseIndex].name : "done"
                    largestActionChangeAt = "joint \(k + 1), step \(environment.stepCount), \(name)"
                }
            }
        }
        previousAction = values
        if Self.tracing {
            traceSteps += 1
            for (i, done) in environment.completed.enumerated() where done && !traceCompleted[i] {
                trace += " [DONE \(environment.settings.tasks[i].rawValue) @\(environment.stepCount)];"
            }
            traceCompleted = environment.completed
        }
    }

    // MARK: State

    /// Copies the true state into the scratch data and computes its kinematics and forces.
    func sync() throws {
        let source = environment.data
        source.withQpos { q in scratch.withQpos { for i in 0..<q.count { $0[i] = q[i] } } }
        source.withQvel { v in scratch.withQvel { for i in 0..<v.count { $0[i] = v[i] } } }
        try scratch.forward()
    }

    /// The end effector's position and orientation.
    var pose: (SIMD3<Double>, Rotation3) {
        (scratch.sitePosition(endEffector), Rotation3(rowMajor: scratch.pointer.pointee.site_xmat + 9 * endEffector))
    }

    func site(_ name: String) -> SIMD3<Double> { scratch.sitePosition(sites[name]!) }

    /// True joint position `index` of the simulation.
    func qpos(_ index: Int) -> Double { scratch.withQpos { $0[index] } }

    /// The anchor of joint `joint` in world coordinates.
    func jointAnchor(_ joint: Int) -> SIMD3<Double> {
        let a = scratch.pointer.pointee.xanchor + 3 * joint
        return [a[0], a[1], a[2]]
    }

    // MARK: Control

    enum Gripper { case open, closed }

    /// The action that moves the end effector toward (`x`, `r`) by at most `speed` m/s and `turn` rad/s.
    func cartesianAction(
        to x: SIMD3<Double>, _ r: Rotation3, gripper: Gripper, speed: Double, turn: Double = 1.5
    ) throws -> [Double] {
        let (position, rotation) = pose
        // Decelerate into the target (at most `Self.cartesianBraking` m per step per step), so moves end smoothly.
        let distance = length(x - position)
        let dx = clampedLength(x - position, min(speed * dt, (2 * Self.cartesianBraking * distance).squareRoot()))
        let dw = clampedLength(r.difference(from: rotation), turn * dt)
        let error = [dx.x, dx.y, dx.z, dw.x, dw.y, dw.z]
        let J = try jacobian(of: scratch)
        let q = (0..<Self.arm).map { qpos($0) }
        var free = [Bool](repeating: true, count: Self.arm)
        var dq = [Double](repeating: 0, count: Self.arm)
        for _ in 0..<3 {
            var Jf = J
            for i in 0..<6 { for k in 0..<Self.arm where !free[k] { Jf[i * 7 + k] = 0 } }
            dq = dampedPseudoInverse(Jf, error, damping: 0.05 * 0.05)
            // Null space: (I - J+ J) z, with the locked joints' columns removed.
            var z = (0..<Self.arm).map { free[$0] ? 0.05 * (nominal[$0] - q[$0]) : 0 }
            let projected = dampedPseudoInverse(Jf, multiply(Jf, z), damping: 0.05 * 0.05)
            for k in 0..<Self.arm { z[k] -= projected[k] }
            for k in 0..<Self.arm where free[k] { dq[k] += z[k] }
            var blocked = false
            for k in 0..<Self.arm where free[k] {
                if (q[k] + dq[k] < lower[k] && dq[k] < 0) || (q[k] + dq[k] > upper[k] && dq[k] > 0) {
                    free[k] = false
                    blocked = true
                }
            }
            if !blocked { break }
        }
        for k in 0..<Self.arm where !free[k] { dq[k] = min(max(dq[k], lower[k] - q[k]), upper[k] - q[k]) }
        return jointAction(dq, gripper: gripper)
    }

    /// The action that displaces the arm joints by `dq` this step: the position target that makes the actuators
    /// (gain kp, joint damping) follow against the bias forces, relative to the last observation. A joint driven by
    /// a position servo against heavy damping moves like a first-order lag, covering 1 - exp(-dt kp / damping) of
    /// the way to its target in one control period (0.50 for the arm's shoulder and elbow joints, 0.62 for the
    /// forearm's; measured on the scene: 0.51 and 0.64): the target leads by the inverse, so one step covers `dq`
    /// without overshoot and the next step's correction does not alternate in sign.
    func jointAction(_ requested: [Double], gripper: Gripper) -> [Double] {
        let bias = scratch.pointer.pointee.qfrc_bias!
        var action = [Double](repeating: 0, count: FrankaKitchen.robotDimensions)
        // The displacement per step changes by at most `jointAcceleration` from the last step's, so phase changes
        // and starts ramp the joints instead of jumping.
        var dq = requested
        for k in 0..<Self.arm {
            dq[k] = previousDq[k]
                + min(max(requested[k] - previousDq[k], -Self.jointAcceleration), Self.jointAcceleration)
            previousDq[k] = dq[k]
        }
        for k in 0..<Self.arm {
            let q = qpos(k)
            let target = q + lead[k] * dq[k] + bias[k] / gain[k]
            let scale = FrankaKitchen.actionScale * dt
            action[k] = min(max((target - environment.lastRobotQpos[k]) / scale, -1), 1)
        }
        action[7] = gripper == .open ? 1 : -1
        action[8] = action[7]
        return action
    }

    /// The `[6, 7]` Jacobian (translation rows, then rotation) of the end effector in `data`.
    func jacobian(of data: Data) throws -> [Double] {
        let nv = model.nv
        var translation = [Double](repeating: 0, count: 3 * nv)
        var rotation = translation
        try translation.withUnsafeMutableBufferPointer { t in
            try rotation.withUnsafeMutableBufferPointer { r in
                try data.siteJacobian(endEffector, translation: t, rotation: r)
            }
        }
        var J = [Double](repeating: 0, count: 42)
        for k in 0..<Self.arm {
            for i in 0..<3 {
                J[i * 7 + k] = translation[i * nv + k]
                J[(i + 3) * 7 + k] = rotation[i * nv + k]
            }
        }
        return J
    }

    /// Arm joint positions that put the end effector at (`x`, `r`), found from the initial posture by damped least
    /// squares on the kinematics alone (the objects where they are now).
    func solvePosture(_ x: SIMD3<Double>, _ r: Rotation3) throws -> [Double] {
        scratch.withQpos { q in planning.withQpos { for i in 0..<q.count { $0[i] = q[i] } } }
        planning.withQvel { for i in 0..<$0.count { $0[i] = 0 } }
        var q = nominal
        for _ in 0..<200 {
            planning.withQpos { for k in 0..<Self.arm { $0[k] = q[k] } }
            try planning.forward()
            let position = planning.sitePosition(endEffector)
            let rotation = Rotation3(rowMajor: planning.pointer.pointee.site_xmat + 9 * endEffector)
            let dx = x - position
            let dw = r.difference(from: rotation)
            let error = [dx.x, dx.y, dx.z, dw.x, dw.y, dw.z]
            if error.reduce(0, { $0 + $1 * $1 }).squareRoot() < 1e-4 { break }
            let J = try jacobian(of: planning)
            var dq = dampedPseudoInverse(J, error, damping: 0.01)
            var z = (0..<Self.arm).map { 0.1 * (nominal[$0] - q[$0]) }
            let projected = dampedPseudoInverse(J, multiply(J, z), damping: 1e-6)
            for k in 0..<Self.arm { z[k] -= projected[k]; dq[k] += z[k] }
            for k in 0..<Self.arm { q[k] = min(max(q[k] + min(max(dq[k], -0.2), 0.2), lower[k]), upper[k]) }
        }
        return q
    }
}
