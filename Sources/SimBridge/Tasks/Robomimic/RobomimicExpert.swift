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

    public init(environment: Robomimic) throws {
        guard ["lift", "can"].contains(environment.settings.task) else {
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
        if let target = environment.settings.target {
            yaw = gripperYaw
            goal = SIMD2(target.x[0], target.y[0]) + placeInset
        } else {
            yaw = gripperYaw + remainder(cubeYaw - gripperYaw, Double.pi / 2)
        }
    }

    public func act(action: UnsafeMutablePointer<Float>) throws {
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
