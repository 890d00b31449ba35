import Foundation

/// One step of a phase: the action, or that the phase is over (its action is then not used).
struct KitchenCommand {
    var action: [Double]
    var done: Bool
}

/// A phase of the expert's program for a subtask.
protocol KitchenPhase: AnyObject {
    var name: String { get }
    var maxSteps: Int { get }
    func start(_ expert: FrankaKitchenExpert) throws
    func step(_ expert: FrankaKitchenExpert) throws -> KitchenCommand
}

typealias PoseTarget = (FrankaKitchenExpert) -> (SIMD3<Double>, Rotation3)

/// A straight-line move: the controller chases a point that advances along the segment from where the phase
/// started to the goal (the goal is evaluated when the phase starts). Done within the tolerances.
final class CartesianMove: KitchenPhase {
    let name: String
    let maxSteps: Int
    let target: PoseTarget
    let gripper: FrankaKitchenExpert.Gripper
    let tolerance: Double
    let rotationTolerance: Double
    let speed: Double
    /// Done only once the arm has (nearly) stopped, so that the next phase does not start with the joints still
    /// moving from this one (the expert's acceleration limit would carry that motion on).
    let settle: Bool
    var goal = SIMD3<Double>(repeating: 0)
    var rotation = Rotation3.identity
    var origin = SIMD3<Double>(repeating: 0)

    init(_ name: String, _ gripper: FrankaKitchenExpert.Gripper, tolerance: Double = 0.012,
         rotationTolerance: Double = 0.06, speed: Double = 0.6, maxSteps: Int = 50, settle: Bool = false,
         to target: @escaping PoseTarget) {
        self.name = name
        self.settle = settle
        self.gripper = gripper
        self.tolerance = tolerance
        self.rotationTolerance = rotationTolerance
        self.speed = speed
        self.maxSteps = maxSteps
        self.target = target
    }

    func start(_ expert: FrankaKitchenExpert) throws {
        (goal, rotation) = target(expert)
        origin = expert.pose.0
    }

    func step(_ expert: FrankaKitchenExpert) throws -> KitchenCommand {
        let (position, current) = expert.pose
        if length(goal - position) < tolerance && length(rotation.difference(from: current)) < rotationTolerance
            && (!settle || expert.previousDq.allSatisfy { abs($0) < 0.01 })
        {
            return KitchenCommand(action: [], done: true)
        }
        let segment = goal - origin
        let total = length(segment)
        var carrot = goal
        if total > 1e-6 {
            let direction = segment / total
            let along = min(max(((position - origin) * direction).sum(), 0), total)
            carrot = origin + direction * min(total, along + speed * expert.dt * 1.5)
        }
        return KitchenCommand(
            action: try expert.cartesianAction(to: carrot, rotation, gripper: gripper, speed: speed), done: false)
    }
}

/// A joint-space move to the posture that reaches the target pose from the initial posture.
final class JointMove: KitchenPhase {
    let name: String
    let maxSteps = 60
    let target: PoseTarget
    let gripper: FrankaKitchenExpert.Gripper
    let speed = 1.1
    /// Done with every joint within `tolerance` of the posture; it brakes only down to `floor` rad per step, so it
    /// hands over still moving and the Cartesian move that follows (which corrects the pose) takes the motion over
    /// under the expert's acceleration limit instead of waiting for the arm to creep into the posture.
    let tolerance = 0.1
    let floor = 0.02
    /// Added to the solved posture (the Cartesian move that follows corrects the pose), to vary the transit.
    let jitter: [Double]
    var posture: [Double] = []

    init(_ name: String, _ gripper: FrankaKitchenExpert.Gripper, jitter: [Double], to target: @escaping PoseTarget) {
        self.name = name
        self.gripper = gripper
        self.jitter = jitter
        self.target = target
    }

    func start(_ expert: FrankaKitchenExpert) throws {
        let (x, r) = target(expert)
        posture = try expert.solvePosture(x, r)
        for k in posture.indices {
            posture[k] = min(max(posture[k] + jitter[k], expert.lower[k]), expert.upper[k])
        }
    }

    func step(_ expert: FrankaKitchenExpert) throws -> KitchenCommand {
        let q = (0..<FrankaKitchenExpert.arm).map { expert.qpos($0) }
        if zip(q, posture).allSatisfy({ abs($0 - $1) < tolerance }) { return KitchenCommand(action: [], done: true) }
        // Cruise at `speed`, braking toward the posture at the expert's joint acceleration.
        let dq = zip(q, posture).map { current, goal in
            let error = goal - current
            let braking = (2 * FrankaKitchenExpert.jointAcceleration * abs(error)).squareRoot()
            let limit = min(speed * expert.dt, max(floor, braking))
            return min(max(error, -limit), limit)
        }
        return KitchenCommand(action: expert.jointAction(dq, gripper: gripper), done: false)
    }
}

/// Holds the pose where the phase started for a number of steps (to open or close the gripper).
final class Hold: KitchenPhase {
    let name: String
    let maxSteps: Int
    let gripper: FrankaKitchenExpert.Gripper
    var position = SIMD3<Double>(repeating: 0)
    var rotation = Rotation3.identity

    init(_ name: String, _ gripper: FrankaKitchenExpert.Gripper, steps: Int) {
        self.name = name
        self.gripper = gripper
        maxSteps = steps
    }

    func start(_ expert: FrankaKitchenExpert) throws { (position, rotation) = expert.pose }

    func step(_ expert: FrankaKitchenExpert) throws -> KitchenCommand {
        KitchenCommand(
            action: try expert.cartesianAction(to: position, rotation, gripper: gripper, speed: 0.3), done: false)
    }
}

/// Follows a target recomputed every step (from the object's state) until a condition holds.
final class Track: KitchenPhase {
    let name: String
    let maxSteps: Int
    let gripper: FrankaKitchenExpert.Gripper
    let speed: Double
    let begin: (FrankaKitchenExpert) -> Void
    let target: PoseTarget
    let finished: (FrankaKitchenExpert) -> Bool

    init(_ name: String, _ gripper: FrankaKitchenExpert.Gripper, speed: Double, maxSteps: Int,
         begin: @escaping (FrankaKitchenExpert) -> Void = { _ in },
         until finished: @escaping (FrankaKitchenExpert) -> Bool,
         to target: @escaping PoseTarget) {
        self.name = name
        self.gripper = gripper
        self.speed = speed
        self.maxSteps = maxSteps
        self.begin = begin
        self.finished = finished
        self.target = target
    }

    func start(_ expert: FrankaKitchenExpert) throws { begin(expert) }

    func step(_ expert: FrankaKitchenExpert) throws -> KitchenCommand {
        if finished(expert) { return KitchenCommand(action: [], done: true) }
        let (x, r) = target(expert)
        return KitchenCommand(action: try expert.cartesianAction(to: x, r, gripper: gripper, speed: speed), done: false)
    }
}

/// The expert's program for each subtask. Orientations are given relative to `front`: the gripper pointing
/// forward (+y, into the kitchen), fingers closing along x, the hand's back up. Handles and knob bars are pinched
/// from the front; the kettle's handle bar is pinched from above and below (the hand turned a quarter turn).
enum KitchenSkills {
    /// Approach +y (site z), fingers along x (site y), site x up.
    static let front = Rotation3(x: [0, 0, 1], y: [1, 0, 0], z: [0, 1, 0])
    static let up = SIMD3<Double>(0, 0, 1)
    static let forward = SIMD3<Double>(0, 1, 0)

    /// Per-subtask variation drawn from the episode's seed, so that demonstrations cover more than one path: the
    /// pre-grasp pose moves by up to `offset` m per axis and the transit posture by up to `posture` rad per joint.
    struct Variation {
        static let offset = 0.02
        static let posture = 0.08
        var offset: SIMD3<Double>
        var jitter: [Double]

        init(_ random: inout SeededRandom) {
            func uniform(_ limit: Double) -> Double { (2 * random.uniform() - 1) * limit }
            offset = [uniform(Self.offset), uniform(Self.offset), uniform(Self.offset)]
            jitter = (0..<FrankaKitchenExpert.arm).map { _ in uniform(Self.posture) }
        }

        static let none = Variation(offset: .zero, jitter: Array(repeating: 0, count: FrankaKitchenExpert.arm))

        init(offset: SIMD3<Double>, jitter: [Double]) {
            self.offset = offset
            self.jitter = jitter
        }
    }

    static func phases(
        for subtask: KitchenSubtask, expert: FrankaKitchenExpert, variation v: Variation
    ) -> [KitchenPhase] {
        switch subtask {
        case .microwave: microwave(expert, v)
        case .kettle: kettle(expert, v)
        case .lightSwitch: lightSwitch(v)
        case .slideCabinet: slideCabinet(v)
        case .hingeCabinet: hingeCabinet(expert, v)
        // The bottom knob with the hand pitched 0.2 rad down: level, the wrist (joint 6) runs into its limit on the
        // reach and the hand drifts sideways onto the knob's bar; at 0.35 rad it drifts as well.
        case .bottomBurner: knob(site: "knob2_site", qpos: 11, label: "bottom burner", pitch: -0.2, v)
        case .topBurner: knob(site: "knob4_site", qpos: 15, label: "top burner", pitch: 0, twistEnd: -0.7, v)
        }
    }

    /// Back off along the gripper's approach axis.
    static func retreat(
        _ name: String, _ gripper: FrankaKitchenExpert.Gripper, distance: Double = 0.1
    ) -> KitchenPhase {
        CartesianMove(name, gripper, tolerance: 0.03, rotationTolerance: 0.2, maxSteps: 12) { e in
            let (x, r) = e.pose
            return (x - r.z * distance, r)
        }
    }

    /// Where a point at `start` (when the door was at `startAngle`) is with the door at `angle`, for a door on a
    /// vertical hinge through `anchor`.
    static func arc(anchor: SIMD3<Double>, start: SIMD3<Double>, startAngle: Double, angle: Double) -> SIMD3<Double> {
        let (c, s) = (cos(angle - startAngle), sin(angle - startAngle))
        let offset = start - anchor
        return [anchor.x + c * offset.x - s * offset.y, anchor.y + s * offset.x + c * offset.y, start.z]
    }

    /// Pinch the vertical handle, pull it along the door's arc (door angle decreasing) to -0.7 rad (done below -0.45).
    static func microwave(_ expert: FrankaKitchenExpert, _ v: Variation) -> [KitchenPhase] {
        // The microwave stands turned 0.3 rad about z (its body's euler in the scene): approach square to the door.
        let r = Rotation3.about(up, angle: 0.3) * front
        let joint = (try? expert.model.requireId(of: .joint, named: "microwave")) ?? 22
        let handle: (FrankaKitchenExpert) -> SIMD3<Double> = { $0.site("microhandle_site") }
        var start = SIMD3<Double>(repeating: 0)
        var startAngle = 0.0
        return [
            JointMove("microwave: posture", .open, jitter: v.jitter) { e in (handle(e) - 0.12 * r.z + v.offset, r) },
            CartesianMove("microwave: pre-grasp", .open, tolerance: 0.015, rotationTolerance: 0.08) { e in
                (handle(e) - 0.12 * r.z, r)
            },
            CartesianMove("microwave: reach", .open, speed: 0.4) { e in (handle(e), r) },
            Hold("microwave: close", .closed, steps: 4),
            Track("microwave: pull", .closed, speed: 0.5, maxSteps: 50,
                  begin: { e in start = handle(e); startAngle = e.qpos(22) }, until: { $0.qpos(22) < -0.7 }) { e in
                let goal = max(e.qpos(22) - 0.3, -1.0)
                return (arc(anchor: e.jointAnchor(joint), start: start, startAngle: startAngle, angle: goal), r)
            },
            Hold("microwave: release", .open, steps: 3),
            retreat("microwave: retreat", .open),
        ]
    }

    /// Push the handle of the sliding door to the right (+x) until the door is 0.2 m open (done above 0.07).
    static func slideCabinet(_ v: Variation) -> [KitchenPhase] {
        let handle: (FrankaKitchenExpert) -> SIMD3<Double> = { $0.site("slide_site") }
        var start = SIMD3<Double>(repeating: 0)
        return [
            JointMove("slide cabinet: posture", .closed, jitter: v.jitter) { e in
                (handle(e) + [-0.07, -0.12, 0] + v.offset, front)
            },
            CartesianMove("slide cabinet: approach", .closed, tolerance: 0.015, rotationTolerance: 0.08) { e in
                (handle(e) + [-0.07, -0.12, 0], front)
            },
            CartesianMove("slide cabinet: reach", .closed, speed: 0.4) { e in (handle(e) + [-0.06, 0, 0], front) },
            Track("slide cabinet: push", .closed, speed: 0.5, maxSteps: 40,
                  begin: { e in start = handle(e) }, until: { $0.qpos(19) > 0.2 }) { _ in
                (start + [0.3, 0, 0], front)
            },
            retreat("slide cabinet: retreat", .closed),
        ]
    }

    /// Push the switch's lever to the left (-x).
    static func lightSwitch(_ v: Variation) -> [KitchenPhase] {
        let lever: (FrankaKitchenExpert) -> SIMD3<Double> = { $0.site("light_site") }
        var start = SIMD3<Double>(repeating: 0)
        return [
            JointMove("light switch: posture", .closed, jitter: v.jitter) { e in
                (lever(e) + [0.06, -0.12, 0] + v.offset, front)
            },
            CartesianMove("light switch: approach", .closed, tolerance: 0.015, rotationTolerance: 0.08) { e in
                (lever(e) + [0.06, -0.12, 0], front)
            },
            CartesianMove("light switch: reach", .closed, speed: 0.4) { e in (lever(e) + [0.05, 0, 0], front) },
            Track("light switch: push", .closed, speed: 0.3, maxSteps: 30,
                  begin: { e in start = lever(e) }, until: { $0.qpos(17) < -0.55 }) { _ in
                (start + [-0.12, 0, 0], front)
            },
            retreat("light switch: retreat", .closed),
        ]
    }

    /// Pinch the knob's bar from the front and twist it (about the knob's axis, -y) past `twistEnd` (done below about
    /// -0.62).
    static func knob(
        site: String, qpos: Int, label: String, pitch: Double, twistEnd: Double = -0.72, _ v: Variation
    ) -> [KitchenPhase] {
        let r = Rotation3.about([1, 0, 0], angle: pitch) * front
        let knob: (FrankaKitchenExpert) -> SIMD3<Double> = { $0.site(site) }
        var hold = SIMD3<Double>(repeating: 0)
        return [
            JointMove("\(label): posture", .open, jitter: v.jitter) { e in (knob(e) + [0, -0.12, 0] + v.offset, r) },
            CartesianMove(
                "\(label): approach", .open, tolerance: 0.006, rotationTolerance: 0.03, maxSteps: 25, settle: true
            ) { e in
                (knob(e) + [0, -0.12, 0], r)
            },
            CartesianMove("\(label): reach", .open, speed: 0.4) { e in (knob(e) + [0, -0.03, 0], r) },
            Hold("\(label): close", .closed, steps: 4),
            Track("\(label): twist", .closed, speed: 0.3, maxSteps: 22,
                  begin: { e in hold = e.pose.0 }, until: { $0.qpos(qpos) < twistEnd }) { _ in
                (hold, Rotation3.about(forward, angle: 1.2) * r)
            },
            Hold("\(label): release", .open, steps: 3),
            retreat("\(label): retreat", .open),
        ]
    }

    /// Pinch the right door's handle and pull it along the door's arc (angle increasing) past 1.3 rad
    /// (done above 1.15).
    static func hingeCabinet(_ expert: FrankaKitchenExpert, _ v: Variation) -> [KitchenPhase] {
        let joint = (try? expert.model.requireId(of: .joint, named: "right_hinge_cabinet")) ?? 21
        let handle: (FrankaKitchenExpert) -> SIMD3<Double> = { $0.site("hinge_site2") }
        var start = SIMD3<Double>(repeating: 0)
        var startAngle = 0.0
        return [
            JointMove("hinge cabinet: posture", .open, jitter: v.jitter) { e in
                (handle(e) + [0, -0.12, 0] + v.offset, front)
            },
            CartesianMove("hinge cabinet: pre-grasp", .open, tolerance: 0.015, rotationTolerance: 0.08) { e in
                (handle(e) + [0, -0.12, 0], front)
            },
            CartesianMove("hinge cabinet: reach", .open, speed: 0.4) { e in (handle(e), front) },
            Hold("hinge cabinet: close", .closed, steps: 4),
            Track("hinge cabinet: pull", .closed, speed: 0.5, maxSteps: 60,
                  begin: { e in start = handle(e); startAngle = e.qpos(21) }, until: { $0.qpos(21) > 1.3 }) { e in
                let goal = min(e.qpos(21) + 0.3, 1.55)
                return (arc(anchor: e.jointAnchor(joint), start: start, startAngle: startAngle, angle: goal), front)
            },
            Hold("hinge cabinet: release", .open, steps: 3),
            retreat("hinge cabinet: retreat", .open),
        ]
    }

    /// Pinch the handle bar from above and below, lift it, carry it back toward the goal burner, set it down.
    static func kettle(_ expert: FrankaKitchenExpert, _ v: Variation) -> [KitchenPhase] {
        let r = Rotation3.about(forward, angle: -Double.pi / 2) * front
        let handle: (FrankaKitchenExpert) -> SIMD3<Double> = { $0.site("kettle_site") }
        // The goal moves the kettle 0.04 m right and 0.4 m back; stopping 0.06 m short is well inside the threshold.
        let goal = KitchenSubtask.kettle.goal
        let initial = FrankaKitchen.initialQpos
        let travel = SIMD3<Double>(goal[0] - initial[23], goal[1] - initial[24] - 0.06, 0)
        let lift = SIMD3<Double>(0, 0, 0.08)
        return [
            JointMove("kettle: posture", .open, jitter: v.jitter) { e in (handle(e) - 0.12 * forward + v.offset, r) },
            CartesianMove("kettle: pre-grasp", .open, tolerance: 0.015, rotationTolerance: 0.08) { e in
                (handle(e) - 0.12 * forward, r)
            },
            CartesianMove("kettle: reach", .open, speed: 0.4) { e in (handle(e), r) },
            Hold("kettle: close", .closed, steps: 4),
            CartesianMove("kettle: lift", .closed, tolerance: 0.02, speed: 0.4) { e in
                e.kettleStart = handle(e)
                return (handle(e) + lift, r)
            },
            CartesianMove("kettle: carry", .closed, tolerance: 0.02, speed: 0.45) { e in
                (e.kettleStart + travel + lift, r)
            },
            CartesianMove("kettle: lower", .closed, tolerance: 0.015, speed: 0.2, maxSteps: 12) { e in
                (e.kettleStart + travel, r)
            },
            Hold("kettle: release", .open, steps: 4),
            // Back off along the handle's normal until the hand is clear of the kettle's front edge, then up.
            CartesianMove("kettle: retreat", .open, tolerance: 0.03, rotationTolerance: 0.2) { e in
                (e.pose.0 - 0.25 * forward, r)
            },
            CartesianMove("kettle: clear", .open, tolerance: 0.03, rotationTolerance: 0.2) { e in
                (e.pose.0 + 0.08 * up, r)
            },
        ]
    }
}
