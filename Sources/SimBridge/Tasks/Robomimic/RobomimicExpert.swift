import Foundation

/// Scripted demonstrator for the Robomimic tasks: a grasp planned from the object's pose, a sequence of waypoints,
/// and proportional delta actions for the OSC controller (smooth: each action component changes by at most
/// `maximumActionChange` per step).
///
/// Lift: above the cube with the gripper open and the fingers turned to a pair of the cube's faces (yaw modulo 90°),
/// down to the cube's centre, close, lift 15 cm.
///
/// Can: above the can with the gripper open (the can is round: the gripper keeps its yaw), down to 1 cm above the can's
/// body origin (the fingertips then stay clear of the bin's floor), close, lift until the can's bottom clears the
/// bins' walls, carry it at a limited speed to a point of its quadrant of bin 2 near the quadrant's corner closest to
/// the robot (the quadrant's centre lies at the edge of the Panda's reach with the gripper pointing down), lower it,
/// open, and rise away (success needs the gripper more than 4.2 cm from the can).
///
/// Square: the fingers close across the nut's handle (along the nut's y axis), so the gripper's yaw is the nut's plus
/// 90°, one of two ways; and the nut goes onto the peg turned to one of the yaws that leave its handle towards the
/// robot or to a side (+x would put the gripper beyond the Panda's reach). Of these, the plan takes the pair that
/// turns the gripper least while keeping its yaw inside `squareYawRange` of the start (the seventh joint's limits).
/// Above the handle with the gripper open, down to the handle, close, lift until the nut's bottom clears the peg's top,
/// turn to the planned yaw while carrying the nut's centre (not the gripper: the handle is 5.4 cm off it) over the peg,
/// then lower it, steering the nut's centre onto the peg's axis, and open.
public final class RobomimicExpert: Expert {
    public let environment: Robomimic

    enum Phase { case approach, descend, grasp, lift, transport, lower, release, retreat }

    /// Proportional gains: a position error of 0.1 m (rotation error of 0.33 rad) gives a full action.
    public var translationGain = 10.0
    public var rotationGain = 3.0
    /// Largest change of an action component between steps.
    public var maximumActionChange: Float = 0.25

    var phase = Phase.approach
    var phaseSteps = 0
    var yaw = 0.0
    var graspPoint = SIMD3<Double>.zero
    var previous = [Float](repeating: 0, count: 7)

    /// Can: the height at which the can is carried (its bottom 6 cm lower, above the walls' tops at 0.9 m), the
    /// height at which it is let go, and the largest translation action while carrying it.
    public var carryHeight = 1.0
    public var releaseHeight = 0.93
    public var carrySpeed: Float = 0.6
    /// Can: where the can is let go, relative to the goal region's low x and low y corner.
    public var placeInset = SIMD2<Double>(0.06, 0.07)
    /// Can: the grasp point's height above the can's body origin.
    public var graspHeight = 0.01

    /// Can: above the centre of the goal region (x, y).
    var goal = SIMD2<Double>.zero

    /// Square: the height of the end-effector while carrying (the nut's bottom, 1 cm below the handle's centre, then
    /// clears the peg's top at 0.95 m), the height of the nut's centre at which it is let go (below success's 0.87 m),
    /// how close over the peg's axis the nut's centre must be before lowering, and the gripper's yaw range (rad,
    /// relative to its yaw at reset) the plan keeps inside: the seventh joint, at π/4 of its ±2.8973 at reset, turns
    /// the gripper's yaw the other way, so about -2.1 to +3.7 rad, less a margin.
    public var squareCarryHeight = 1.0
    public var squareReleaseHeight = 0.85
    public var squareAlignTolerance = 0.003
    public var squareYawRange = -1.8 ... 3.3
    /// Square: the grasp point's distance beyond the handle's centre, outwards along the handle: the fingers (2.1 cm
    /// wide) then clear the nut's ring, whose edge is 1 cm from the handle's centre.
    public var handleGraspOffset = 0.008
    /// Square: the gripper's yaw now (unwrapped), at the grasp, and when the nut is over the peg; the turning rate.
    var measuredYaw = 0.0
    var graspYaw = 0.0
    var placeYaw = 0.0
    public var turnRate = 0.15

    public init(environment: Robomimic) throws {
        guard ["lift", "can", "square"].contains(environment.settings.task) else {
            throw EnvironmentError.invalidState("no scripted expert for robomimic \(environment.settings.task) yet")
        }
        self.environment = environment
    }

    public func begin(episodeSeed: UInt64) throws {
        phase = .approach
        phaseSteps = 0
        for i in 0..<7 { previous[i] = 0 }
        // Fingers close along a pair of cube faces: turn the gripper by the cube's yaw modulo 90°, the short way.
        let (r0, r1, _) = environment.endEffectorRotation
        let gripperYaw = atan2(r1.x, r0.x)  // yaw of the site's x axis
        let q = environment.objectQuaternion
        let cubeYaw = 2 * atan2(q[3], q[0])
        if environment.settings.task == "square" {
            measuredYaw = gripperYaw
            yaw = gripperYaw
            planSquare(nutYaw: cubeYaw)
        } else if let target = environment.settings.target {
            yaw = gripperYaw
            goal = SIMD2(target.x[0], target.y[0]) + placeInset
        } else {
            yaw = gripperYaw + remainder(cubeYaw - gripperYaw, Double.pi / 2)
        }
    }

    public func act(action: UnsafeMutablePointer<Float>) throws {
        if environment.settings.task == "square" { return actSquare(action: action) }
        let eef = environment.endEffectorPosition
        let cube = environment.objectPosition
        var target: SIMD3<Double>
        var gripper: Float = -1
        phaseSteps += 1
        switch phase {
        case .approach:
            target = cube + SIMD3(0, 0, environment.settings.task == "lift" ? 0.08 : 0.09)
            if distance(eef, target) < 0.01 && orientationError().max() < 0.05 { advance(.descend) }
        case .descend:
            target = environment.settings.task == "lift" ? cube : cube + SIMD3(0, 0, graspHeight)
            if distance(eef, target) < 0.006 || phaseSteps > 60 {
                graspPoint = eef
                advance(.grasp)
            }
        case .grasp:
            target = graspPoint
            gripper = 1
            if phaseSteps >= 14 { advance(.lift) }
        case .lift:
            gripper = 1
            if environment.settings.task == "lift" {
                target = SIMD3(graspPoint.x, graspPoint.y, graspPoint.z + 0.15)
            } else {
                target = SIMD3(graspPoint.x, graspPoint.y, carryHeight)
                if eef.z > carryHeight - 0.02 { advance(.transport) }
            }
        case .transport:
            gripper = 1
            target = SIMD3(goal.x, goal.y, carryHeight)
            let d = SIMD2(eef.x - goal.x, eef.y - goal.y)
            if (d * d).sum().squareRoot() < 0.01 { advance(.lower) }
        case .lower:
            gripper = 1
            target = SIMD3(goal.x, goal.y, releaseHeight)
            if eef.z < releaseHeight + 0.01 || phaseSteps > 40 { advance(.release) }
        case .release:
            target = SIMD3(goal.x, goal.y, releaseHeight)
            if phaseSteps >= 8 { advance(.retreat) }
        case .retreat:
            target = SIMD3(goal.x, goal.y, carryHeight + 0.05)
        }
        let limit: Float = phase == .transport || phase == .lower ? carrySpeed : 1
        let e = orientationError()
        for i in 0..<3 {
            let translation = Float(min(max(translationGain * (target[i] - eef[i]), -1), 1)) * limit
            let rotation = Float(min(max(rotationGain * e[i], -1), 1))
            action[i] = smooth(translation, i)
            action[3 + i] = smooth(rotation, 3 + i)
        }
        action[6] = gripper  // the gripper command is already rate-limited by the environment
        previous[6] = gripper
    }

    /// Square: chooses the grasp yaw (nut yaw + 90° + k 180°) and the placing yaw (the nut's yaw on the peg with the
    /// handle towards -x, +y or -y), both near the start, the total turn smallest.
    func planSquare(nutYaw: Double) {
        let start = measuredYaw
        var best = Double.infinity
        for k in -4...4 {
            let grasp = nutYaw + Double.pi / 2 + Double(k) * Double.pi
            guard squareYawRange.contains(grasp - start) else { continue }
            for handle in [Double.pi / 2, Double.pi, -Double.pi / 2] {
                for m in -2...2 {
                    let turn = handle - nutYaw + 2 * Double.pi * Double(m)
                    guard squareYawRange.contains(grasp + turn - start) else { continue }
                    let cost = abs(grasp - start) + abs(turn)
                    if cost < best {
                        best = cost
                        graspYaw = grasp
                        placeYaw = grasp + turn
                    }
                }
            }
        }
    }

    func actSquare(action: UnsafeMutablePointer<Float>) {
        let eef = environment.endEffectorPosition
        let nut = environment.objectPosition
        let q = environment.objectQuaternion
        let nutYaw = 2 * atan2(q[3], q[0])
        let handle = environment.handlePosition! + handleGraspOffset * SIMD3(cos(nutYaw), sin(nutYaw), 0)
        let peg = environment.pegPosition!
        let (r0, r1, _) = environment.endEffectorRotation
        measuredYaw += remainder(atan2(r1.x, r0.x) - measuredYaw, 2 * Double.pi)
        // Moving the end-effector by the nut's error moves the held nut there.
        let overPeg = SIMD3(eef.x + peg.x - nut.x, eef.y + peg.y - nut.y, 0)
        let pegError = SIMD2(peg.x - nut.x, peg.y - nut.y)
        var target: SIMD3<Double>
        var desiredYaw = graspYaw
        var gripper: Float = -1
        phaseSteps += 1
        switch phase {
        case .approach:
            // Follow the nut while it settles from its drop.
            graspYaw += remainder(nutYaw + Double.pi / 2 - graspYaw, Double.pi)
            desiredYaw = graspYaw
            target = handle + SIMD3(0, 0, 0.08)
            let lateral = SIMD2(target.x - eef.x, target.y - eef.y)
            if distance(eef, target) < 0.01 && (lateral * lateral).sum() < 0.004 * 0.004
                && abs(measuredYaw - graspYaw) < 0.05 && orientationError().max() < 0.05
            {
                advance(.descend)
            }
        case .descend:
            target = handle
            if distance(eef, target) < 0.006 || phaseSteps > 60 {
                graspPoint = eef
                advance(.grasp)
            }
        case .grasp:
            target = graspPoint
            gripper = 1
            if phaseSteps >= 14 { advance(.lift) }
        case .lift:
            gripper = 1
            target = SIMD3(graspPoint.x, graspPoint.y, squareCarryHeight)
            if eef.z - nut.z > 0.04 {
                advance(.approach)  // the nut stayed behind: open and grasp again
            } else if eef.z > squareCarryHeight - 0.02 {
                advance(.transport)
            }
        case .transport:
            gripper = 1
            // The nut's yaw on the peg matters modulo 90° (the hole is square): correct what it slipped in the grasp.
            desiredYaw = placeYaw - remainder(nutYaw + placeYaw - measuredYaw, Double.pi / 2)
            target = SIMD3(overPeg.x, overPeg.y, squareCarryHeight)
            if abs(measuredYaw - desiredYaw) < 0.03 && (pegError * pegError).sum().squareRoot() < squareAlignTolerance {
                placeYaw = desiredYaw
                advance(.lower)
            }
        case .lower:
            gripper = 1
            desiredYaw = placeYaw
            target = SIMD3(overPeg.x, overPeg.y, eef.z + squareReleaseHeight - nut.z)
            if nut.z < squareReleaseHeight + 0.005 || phaseSteps > 80 {
                graspPoint = eef
                advance(.release)
            }
        case .release:
            desiredYaw = placeYaw
            target = graspPoint
            if phaseSteps >= 8 { advance(.retreat) }
        case .retreat:
            desiredYaw = placeYaw
            target = SIMD3(graspPoint.x, graspPoint.y, squareCarryHeight)
        }
        // Turn towards the desired yaw the planned way round: the goal leads the measured yaw by at most turnRate.
        yaw = measuredYaw + min(max(desiredYaw - measuredYaw, -turnRate), turnRate)
        let limit: Float = phase == .transport || phase == .lower ? carrySpeed : 1
        let e = orientationError()
        for i in 0..<3 {
            let translation = Float(min(max(translationGain * (target[i] - eef[i]), -1), 1)) * limit
            let rotation = Float(min(max(rotationGain * e[i], -1), 1))
            action[i] = smooth(translation, i)
            action[3 + i] = smooth(rotation, 3 + i)
        }
        action[6] = gripper
        previous[6] = gripper
    }

    private func smooth(_ value: Float, _ i: Int) -> Float {
        let limited = min(max(value, previous[i] - maximumActionChange), previous[i] + maximumActionChange)
        previous[i] = limited
        return limited
    }

    private func advance(_ next: Phase) {
        phase = next
        phaseSteps = 0
    }

    /// Rotation error from the end-effector's orientation to the grasp orientation (site z axis down, x axis at
    /// `yaw`), as robosuite's `orientation_error`: ½ Σ rᵢ × r_goal,ᵢ over the columns.
    func orientationError() -> SIMD3<Double> {
        let (r0, r1, r2) = environment.endEffectorRotation
        let goal = (SIMD3(cos(yaw), sin(yaw), 0), SIMD3(sin(yaw), -cos(yaw), 0), SIMD3<Double>(0, 0, -1))
        var error = SIMD3<Double>.zero
        error += OperationalSpaceController.cross(SIMD3(r0.x, r1.x, r2.x), goal.0)
        error += OperationalSpaceController.cross(SIMD3(r0.y, r1.y, r2.y), goal.1)
        error += OperationalSpaceController.cross(SIMD3(r0.z, r1.z, r2.z), goal.2)
        return 0.5 * error
    }

    private func distance(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double {
        let d = a - b
        return (d * d).sum().squareRoot()
    }
}

extension SIMD3 where Scalar == Double {
    fileprivate func max() -> Double { Swift.max(Swift.max(abs(x), abs(y)), abs(z)) }
}
