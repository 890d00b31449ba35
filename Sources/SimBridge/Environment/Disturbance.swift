import Foundation

/// A mid-episode push (`eval --disturbance STEP`): at one control step of every episode the simulation is knocked
/// off its course once, and the policy has to recover. Each task pushes what is physically meaningful for it:
///
/// - Push-T: the T block shoved 30 world units (the bar's width) in a random direction and turned by 15° about its
///   centre of mass (`PushT+Disturbance.swift`).
/// - Robomimic Lift, Can, Square: the arm bumped, a joint-velocity impulse of 3 rad/s (Euclidean norm over the 7 arm
///   joints) in a random direction: the hand ends centimetres off its course (`Robomimic+Disturbance.swift`).
/// - Franka Kitchen: the arm bumped the same way, 10 rad/s against the scene's heavily damped joints: the arm ends
///   0.04 rad off its course (`FrankaKitchen+Disturbance.swift`).
///
/// The push happens between two control steps, after `step` control steps have been taken and before the action of
/// step `step` (counted from 0) is applied. It changes only positions or velocities of the simulation, never the
/// step count or the task's own bookkeeping, and the observation already written is not rewritten: the policy first
/// sees the push in the observation after that step. Before the push an episode is the undisturbed one, bit for bit.
///
/// The push's random directions come from `Disturbance.random(episodeSeed:)`, a function of the episode seed alone,
/// so every policy evaluated on an episode meets the same push, and a rerun meets it again.
public protocol DisturbableEnvironment: Environment {
    /// What the push does, in one sentence for reports.
    var disturbanceDescription: String { get }
    /// Pushes the simulation once, directions drawn from `random`. Throws `MuJoCoError` if the simulation fails.
    func disturb(using random: inout SeededRandom) throws
}

/// When an episode is pushed: after `step` control steps (the push of the task's `DisturbableEnvironment`).
public struct Disturbance: Codable, Sendable, Equatable {
    /// Control steps taken before the push, from 0 (a push before the first action) to the episode's length - 1.
    public var step: Int

    public init(step: Int) { self.step = step }

    /// Checks that the push can happen in an episode of at most `maximumSteps` control steps.
    public func validate(maximumSteps: Int) throws(EnvironmentError) {
        guard (0..<maximumSteps).contains(step) else {
            throw .invalidState(
                "the disturbance step must be between 0 and \(maximumSteps - 1) (episodes last at most "
                    + "\(maximumSteps) control steps), got \(step)")
        }
    }

    /// The random stream of the push in the episode of `episodeSeed` (a stream of its own, not the reset's).
    public static func random(episodeSeed: UInt64) -> SeededRandom {
        SeededRandom(seed: episodeSeed ^ 0xD157_0B0A_CE5E_ED00)
    }

    /// A direction drawn uniformly on the unit sphere in `dimensions` dimensions (normalised Gaussian numbers).
    public static func randomDirection(dimensions: Int, using random: inout SeededRandom) -> [Double] {
        var direction = (0..<dimensions).map { _ in random.gaussian() }
        let norm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if norm > 0 { direction = direction.map { $0 / norm } } else { direction[0] = 1 }
        return direction
    }

    /// The report's sentence for an arm bump of `speed` rad/s.
    public static func armBumpDescription(speed: Double) -> String {
        "the arm bumped: its 7 joint velocities changed by \(speed) rad/s (norm) in a random direction"
    }

    /// An arm bump: adds `speed` rad/s (Euclidean norm) along a uniformly random direction of the velocities of
    /// `dofs` (the arm's joints in qvel), drawn from `random`.
    static func bumpArm(_ data: Data, dofs: [Int], speed: Double, using random: inout SeededRandom) {
        let direction = randomDirection(dimensions: dofs.count, using: &random)
        data.withQvel { qvel in
            for (i, dof) in dofs.enumerated() { qvel[dof] += speed * direction[i] }
        }
    }
}
