import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge

/// `flowpolicy teleop --expert`: a task's scripted expert acting as the operator of a robot, over the robot's
/// `flowpolicy.v1` interface, so that the whole recording path (`record` listening to the robot while someone drives
/// it) runs without hardware.
///
/// The expert plans from the simulation's state, which a robot does not send; so it acts in a mirror of the robot:
/// its own environment of the task, reset with each episode's seed (the simulated robot numbers episodes by seed)
/// and stepped with every action it sends. The robot must be `flowpolicy robot --task T --lock-step`, which applies
/// exactly one step per command; each state it publishes is checked against the mirror, number for number, and a
/// difference is an error naming the step.
public enum TeleopSession {
    public struct Options: Sendable {
        public var task: TaskDescription
        public var robot: String
        /// The robot's command endpoint; nil means the state port + 1.
        public var robotCommands: String?
        /// Stop after this many episodes (nil: until interrupted).
        public var episodes: Int?
        /// How long to wait for the robot's first state, and for each next one.
        public var waitSeconds = 10.0
        public var credentials = Credentials.none
        public var robotPublicKey: String?

        public init(task: TaskDescription, robot: String) {
            self.task = task
            self.robot = robot
        }
    }

    public struct Summary: Codable, Sendable {
        public var task: String
        public var episodes: Int
        public var successes: Int
        public var steps: Int
    }

    public static func run(_ options: Options, shouldStop: () -> Bool = { false },
                           episodeEnded: (EpisodeOutcome) -> Void = { _ in }) throws -> Summary {
        let runner = try ExpertRunner(task: options.task)
        let rollout = runner.rollout
        let (Do, Da) = (rollout.specification.observationDimensions, rollout.specification.actionDimensions)
        guard let commands = options.robotCommands ?? RobotEndpoints.defaultCommandEndpoint(forState: options.robot)
        else {
            throw RuntimeError.invalidConfiguration(
                "cannot derive the command endpoint from \(options.robot); give the robot's command endpoint")
        }
        let context = try ZMQContext()
        let link = try ZMQRobotLink(
            context: context, stateEndpoint: options.robot, commandEndpoint: commands, observationDimensions: Do,
            actionDimensions: Da, security: options.credentials.clientSecurity(serverPublicKey: options.robotPublicKey))
        link.lockStepWaitSeconds = options.waitSeconds
        let robot = try link.awaitDescription(timeoutSeconds: options.waitSeconds)
        guard robot.observationDimensions == Do, robot.actionDimensions.map({ $0 == Da }) ?? true else {
            throw RuntimeError.contractMismatch(
                "\(robot.name) sends \(robot.observationDimensions)-D observations and takes "
                    + "\(robot.actionDimensions.map(String.init) ?? "?")-D actions; \(options.task.name)'s expert "
                    + "works with \(Do)-D and \(Da)-D")
        }
        var summary = Summary(task: options.task.name, episodes: 0, successes: 0, steps: 0)
        var observation = [Float](repeating: 0, count: Do)
        var applied = [Float](repeating: 0, count: Da)
        var action = [Float](repeating: 0, count: Da)
        var episode: UInt64?
        var step = 0
        while !shouldStop() && (options.episodes.map { summary.episodes < $0 } ?? true) {
            guard let state = try link.receiveLatest(observation: &observation, appliedAction: &applied) else {
                throw RuntimeError.robotSilent(endpoint: options.robot, seconds: options.waitSeconds)
            }
            if state.episodeStart || state.episode != episode {
                episode = state.episode
                step = 0
                try rollout.reset(seed: state.episode)
                try runner.expert.begin(episodeSeed: state.episode)
            }
            guard observation.indices.allSatisfy({ observation[$0] == rollout.observation[$0] }) else {
                throw RuntimeError.contractMismatch(
                    "at step \(step) of episode \(state.episode) the robot's observation differs from the expert's "
                        + "mirror; is it `flowpolicy robot --task \(options.task.name) --lock-step`?")
            }
            if state.done {
                summary.episodes += 1
                if rollout.outcome.success { summary.successes += 1 }
                episodeEnded(rollout.outcome)
                try link.send(.hold, action: action, answering: state, step: step)  // the robot starts the next one
                continue
            }
            try runner.expert.act(action: &action)
            try link.send(.act, action: action, answering: state, step: step)
            guard rollout.step(action) != nil else {
                throw RuntimeError.invalidConfiguration(
                    "the expert's mirror failed at step \(step): \(rollout.outcome.failure ?? "")")
            }
            step += 1
            summary.steps += 1
        }
        return summary
    }
}
