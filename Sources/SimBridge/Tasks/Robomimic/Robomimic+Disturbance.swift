import Foundation

extension Robomimic: DisturbableEnvironment {
    /// The bump's joint-velocity change, rad/s (Euclidean norm over the 7 arm joints). Measured on Lift with the
    /// hand told to stay: the hand is 5 mm off its course after the bumped step and about 5 cm after 8 steps (the
    /// delta controller holds wherever the hand is, it does not return to where it was).
    public static let disturbanceJointSpeed = 3.0

    public var disturbanceDescription: String { Disturbance.armBumpDescription(speed: Self.disturbanceJointSpeed) }

    /// A bump of the arm: an impulse that adds `disturbanceJointSpeed` rad/s along a uniformly random direction of
    /// the 7 arm joints' velocities. The operational-space controller then pulls the hand back to its goal; the
    /// gripper and the object are left as they are (an object held in the hand moves with it, or slips).
    public func disturb(using random: inout SeededRandom) throws {
        Disturbance.bumpArm(data, dofs: armDofs, speed: Self.disturbanceJointSpeed, using: &random)
    }
}
