import Foundation

extension Robomimic: DisturbableEnvironment {
    /// The bump's joint-velocity change, rad/s (Euclidean norm over the 7 arm joints). Measured on Lift with the
    /// hand told to stay: the hand is 5 mm off its course after the bumped step and about 5 cm after 8 steps (the
    /// delta controller holds wherever the hand is, it does not return to where it was).
    public static let disturbanceJointSpeed = 3.0

    public var disturbanceDescription: String {
        "the arm bumped: its 7 joint velocities changed by \(Self.disturbanceJointSpeed) rad/s (norm) in a random "
            + "direction"
    }

    /// A bump of the arm: an impulse that adds `disturbanceJointSpeed` rad/s along a uniformly random direction of
    /// the 7 arm joints' velocities. The operational-space controller then pulls the hand back to its goal; the
    /// gripper and the object are left as they are (an object held in the hand moves with it, or slips).
    public func disturb(using random: inout SeededRandom) throws {
        let direction = Disturbance.randomDirection(dimensions: armDofs.count, using: &random)
        data.withQvel { qvel in
            for (i, dof) in armDofs.enumerated() { qvel[dof] += Self.disturbanceJointSpeed * direction[i] }
        }
    }
}
