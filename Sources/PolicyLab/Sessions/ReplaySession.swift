import FlowPolicy
import PolicyRuntime
import Foundation
import SimBridge

/// `flowpolicy replay`: runs recorded action sequences in a task from given starts and reports what happened at
/// every step (for comparing the simulation with a reference, or checking a recorded episode).
public enum ReplaySession {
    /// One episode to replay: a seed, or (Push-T) an exact start, and the actions.
    public struct Episode: Codable, Sendable {
        public var seed: UInt64?
        /// Push-T: the agent's [x, y].
        public var agent: [Double]?
        /// Push-T: the block's [x, y, angle] (the T's origin and angle, as gym-pusht's `block.position`, `angle`).
        public var block: [Double]?
        /// Robomimic: the arm's 7 joints, the object's [x, y, z, yaw] and (Lift) the cube's half sizes.
        public var joints: [Double]?
        public var object: [Double]?
        public var cubeHalfSize: [Double]?
        public var actions: [[Float]]

        enum CodingKeys: String, CodingKey {
            case seed, agent, block, joints, object, actions
            case cubeHalfSize = "cube_half_size"
        }
    }

    public struct StepRecord: Codable, Sendable {
        public var observation: [Float]
        public var progress: Double
        public var reward: Double
        public var done: Bool
        /// Push-T: the block's [x, y, angle].
        public var block: [Double]?
    }

    public struct EpisodeRecord: Codable, Sendable {
        /// The observation at the start.
        public var initial: [Float]?
        public var steps: [StepRecord]
        public var error: String?
    }

    public static func run(task: TaskDescription, episodes: [Episode]) throws -> [EpisodeRecord] {
        let rollout = try Rollout(task: task)
        let Da = rollout.specification.actionDimensions
        let Do = rollout.specification.observationDimensions
        return episodes.map { episode in
            var steps: [StepRecord] = []
            var initial: [Float]?
            do {
                try rollout.begin(seed: episode.seed ?? 0) { environment in
                    initial = try start(environment, episode: episode)
                }
                for action in episode.actions where rollout.outcome.failure == nil {
                    guard action.count == Da else {
                        throw EnvironmentError.invalidState(
                            "an action has \(action.count) numbers; \(task.name) takes \(Da)")
                    }
                    guard let result = action.withUnsafeBufferPointer({ rollout.step($0.baseAddress!) }) else { break }
                    let pose = (rollout.environment as? PushT)?.blockPose
                    steps.append(StepRecord(
                        observation: Array(UnsafeBufferPointer(start: rollout.observation, count: Do)),
                        progress: result.progress, reward: result.reward, done: result.done,
                        block: pose.map { [$0.x, $0.y, $0.angle] }))
                }
                return EpisodeRecord(initial: initial, steps: steps, error: rollout.outcome.failure)
            } catch {
                return EpisodeRecord(initial: initial, steps: steps, error: "\(error)")
            }
        }
    }

    /// Puts `environment` in the episode's first state: its exact start, or its seed's; returns the first
    /// observation where the environment gives one.
    static func start(_ environment: any Environment, episode: Episode) throws -> [Float]? {
        if let agent = episode.agent, let block = episode.block {
            guard let pushT = environment as? PushT, agent.count == 2, block.count == 3 else {
                throw EnvironmentError.invalidState("exact starts (agent, block) are only defined for pusht")
            }
            try pushT.place(agent: SIMD2(agent[0], agent[1]),
                            block: Pose2D(x: block[0], y: block[1], angle: block[2]), settle: false)
            return nil
        } else if let joints = episode.joints, let object = episode.object {
            guard let robomimic = environment as? Robomimic, joints.count == 7, object.count == 4 else {
                throw EnvironmentError.invalidState(
                    "exact starts (joints, object) are only defined for the robomimic tasks: 7 joints, [x, y, z, yaw]")
            }
            if let half = episode.cubeHalfSize {
                guard half.count == 3 else { throw EnvironmentError.invalidState("cube_half_size needs 3 numbers") }
                try robomimic.setCube(halfSize: SIMD3(half[0], half[1], half[2]))
            }
            try robomimic.place(joints: joints, objectPosition: SIMD3(object[0], object[1], object[2]),
                                objectYaw: object[3])
            return robomimic.observation()
        } else {
            return try environment.reset(seed: episode.seed ?? 0)
        }
    }
}
