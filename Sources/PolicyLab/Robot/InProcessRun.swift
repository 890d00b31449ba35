import FlowPolicy
import PolicyRuntime
import SimBridge

/// `flowpolicy run` without a robot: the real-time control loop driving the task's environment in this process
/// (`EnvironmentRobot`), episode after episode, with every episode's outcome in the report. The environment steps
/// once per command, so there is no servo-rate output here (a simulated robot over ZeroMQ takes it).
public enum InProcessRun {
    public struct Report: Codable, Sendable {
        public var report: RunSession.Report
        public var episodes: [EpisodeOutcome]
    }

    public static func run(_ options: RunSession.Options, task: TaskDescription, episodes: Int, firstSeed: UInt64?,
                           log: (String) -> Void = { _ in }) throws -> Report {
        let first = firstSeed ?? task.evaluationSeed
        let seeds = (0..<UInt64(max(1, episodes))).map { first + $0 }
        let robot = try EnvironmentRobot(
            task: task, seeds: seeds,
            clock: MonotonicClock(spinNanoseconds: UInt64(max(0, options.spinMicroseconds)) * 1000))
        guard options.servoRate == nil else {
            throw RuntimeError.invalidConfiguration(
                "servo-rate output needs a robot over ZeroMQ (flowpolicy robot); in process the simulation steps once "
                    + "per command")
        }
        let sampler = try options.checkpointPath.map { path in
            Policy(checkpoint: try CheckpointReader.read(path), capacity: 1, method: options.method,
                   steps: options.steps, seed: options.policySeed, precision: options.precision)
        }
        let report = try RunSession.run(options, sampler: sampler, robot: robot, shouldEnd: { robot.isFinished },
                                        log: log)
        return Report(report: report, episodes: robot.outcomes)
    }
}
