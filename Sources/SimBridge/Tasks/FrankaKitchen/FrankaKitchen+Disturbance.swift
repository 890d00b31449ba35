import Foundation

extension FrankaKitchen: DisturbableEnvironment {
    /// The bump's joint-velocity change, rad/s (Euclidean norm over the 7 arm joints). The kitchen's arm joints are
    /// heavily damped, so the impulse dies within the step: measured with zero velocity actions, the arm ends 0.04
    /// rad (norm over its joints; a few centimetres at the hand) off its course and stays there (the position targets
    /// follow the observed joints).
    public static let disturbanceJointSpeed = 10.0

    public var disturbanceDescription: String { Disturbance.armBumpDescription(speed: Self.disturbanceJointSpeed) }

    /// A bump of the arm: an impulse that adds `disturbanceJointSpeed` rad/s along a uniformly random direction of
    /// the 7 arm joints' velocities (the first 7 entries of qvel). The position actuators then pull the arm back
    /// towards their targets; the fingers and the kitchen's objects are left as they are.
    public func disturb(using random: inout SeededRandom) throws {
        Disturbance.bumpArm(data, dofs: Array(0..<7), speed: Self.disturbanceJointSpeed, using: &random)
    }
}
