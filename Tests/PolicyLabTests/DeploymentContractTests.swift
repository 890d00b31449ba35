import CAllocationCounter
import FlowPolicy
import Foundation
import PolicyLab
import PolicyRuntime
import RuntimeTestSupport
import SimBridge
import Testing

/// The shipped Push-T policy, when it is in the repository.
private let shippedPushTPolicy: String? = {
    guard let task = try? TaskDescription.named("pusht") else { return nil }
    let path = task.folder.path("policy.safetensors")
    return FileManager.default.fileExists(atPath: path) ? path : nil
}()

private func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("flowpolicy-\(UUID())-\(name)").path
}

/// The contract written from the task files, what reads and upgrades older checkpoints, and the deployment paths
/// that need the simulation to check them (the in-process robot, lock-step runs against a served policy).
@Suite struct DeploymentContractTests {
    @Test func theContractComesFromTheTaskFile() throws {
        // The runtime tests' fixture is Push-T's task file, number for number.
        let pushT = try DeploymentContract(task: .named("pusht"), observationMode: nil, observationDimensions: 20,
                                           actionDimensions: 2)
        #expect(pushT == pushTContract)
        let state = try DeploymentContract(task: .named("pusht"), observationMode: "state", observationDimensions: 5,
                                           actionDimensions: 2)
        #expect(state.observations.map(\.name) == ["agent_pos", "block_pos", "block_angle"])
        #expect(state.observations.map(\.size) == [2, 2, 1])
        // Franka Kitchen: a 12.5 Hz velocity-commanded arm, bounds wider than the environment's (it clips).
        let kitchen = try DeploymentContract(task: .named("franka_kitchen"), observationMode: "dp",
                                             observationDimensions: 60, actionDimensions: 9)
        #expect(kitchen.controlRateHz == 12.5 && kitchen.actionKind == .velocity && kitchen.handOver == .ensemble)
        #expect(kitchen.actionLow == [Float](repeating: -1.25, count: 9) && kitchen.maximumJerk == nil)
        // Robomimic: robosuite's observation keys in order; deltas, which no servo interpolates.
        let lift = try DeploymentContract(task: .named("robomimic_lift"), observationMode: nil,
                                          observationDimensions: 19, actionDimensions: 7)
        #expect(lift.observations.map(\.name)
            == ["cube_pos", "cube_quat", "gripper_to_cube_pos", "robot0_eef_pos", "robot0_eef_quat",
                "robot0_gripper_qpos"])
        #expect(lift.actionKind == .delta && lift.controlRateHz == 20)
        // A layout that does not add up to the policy's dimensions is left unnamed rather than wrong.
        let other = try DeploymentContract(task: .named("pusht"), observationMode: nil, observationDimensions: 7,
                                           actionDimensions: 2)
        #expect(other.observations.isEmpty && other.actions.count == 1)
    }

    @Test func anOlderCheckpointTakesItsTasksContractAndUpgradeWritesIt() throws {
        let checkpoint = try randomPushTCheckpoint()
        checkpoint.contract = nil
        let path = temporaryPath("legacy.safetensors")
        try checkpoint.write(to: path)
        var notes: [String] = []
        let read = try CheckpointReader.read(path) { notes.append($0) }
        #expect(read.contract == pushTContract && notes.count == 1 && notes[0].contains("flowpolicy upgrade"))
        let upgraded = temporaryPath("upgraded.safetensors")
        #expect(try CheckpointReader.upgrade(path, task: nil, output: upgraded) == pushTContract)
        let loaded = try Checkpoint(contentsOf: upgraded)
        #expect(loaded.contract == pushTContract)
        #expect(loaded.parameters.array.map(\.bitPattern) == checkpoint.parameters.array.map(\.bitPattern))
        #expect(try Checkpoint(contentsOf: path).contract == nil)  // the original is untouched
    }

    @Test func trainingOnATasksDataWritesItsContract() throws {
        let dataset = temporaryPath("pusht.safetensors")
        var data = EpisodeDataset(observationDimensions: 20, actionDimensions: 2)
        var generator = RandomSource(seed: 4)
        for _ in 0..<3 {
            let observations = (0..<(30 * 20)).map { _ in 50 + 400 * generator.nextUniform() }
            let actions = (0..<(30 * 2)).map { _ in 50 + 400 * generator.nextUniform() }
            try data.appendEpisode(observations: observations, actions: actions)
        }
        data.metadata["task"] = "pusht"
        data.metadata["observation_mode"] = "keypoints"
        try data.write(to: dataset)
        var options = TrainingSession.Options(datasetPath: dataset, outputPath: temporaryPath("policy.safetensors"))
        options.hidden = 16
        options.depth = 1
        options.training.steps = 2
        options.training.batchSize = 8
        options.training.threads = 1
        let summary = try TrainingSession.run(options)
        #expect(try Checkpoint(contentsOf: summary.checkpoint).contract == pushTContract)
    }

    @Test func theInProcessRobotsControlPeriodAllocatesNothing() throws {
        let clock = ManualClock()
        let policy = Policy(checkpoint: try randomPushTCheckpoint(), capacity: 1, steps: 3, seed: 2)
        let robot = try EnvironmentRobot(task: .named("pusht"), seeds: [100_000, 100_001], clock: clock)
        var configuration = ControlLoop.Configuration(periodNanoseconds: 100_000_000)
        configuration.lead = 1
        // Wide limits so that the random policy's actions are commanded (Push-T clips them).
        let limits = try SafetyLimits(low: [-1e6, -1e6], high: [1e6, 1e6], maximumStepChange: [1e6, 1e6])
        let control = try ControlLoop(spec: policy.spec, robot: robot,
                                      inference: InlineInference(sampler: policy, revealAfterCollects: 1),
                                      safety: limits, clock: clock, configuration: configuration)
        for _ in 0..<40 { control.tick() }  // warm-up: first chunks, every buffer touched
        let before = fp_thread_allocation_count()
        for _ in 0..<200 { control.tick() }
        #expect(fp_thread_allocation_count() - before == 0)
        #expect(control.actCommands > 150)
    }

    /// `run --policy` in lock-step: the control loop with a policy served over TCP loopback gives the outcomes of
    /// the same checkpoint in process, episode by episode, on 100 Push-T episodes.
    @Test func aServedPolicyInLockStepGivesTheInProcessOutcomes() throws {
        let checkpoint = try shippedPushTPolicy.map { try Checkpoint(contentsOf: $0) } ?? randomPushTCheckpoint()
        let task = try TaskDescription.named("pusht")
        func run(_ sampler: any ChunkSampler) throws -> [EpisodeOutcome] {
            let robot = try EnvironmentRobot(task: task, seeds: (0..<100).map { 100_000 + $0 }, clock: ManualClock())
            var options = RunSession.Options(checkpointPath: "the checkpoint")
            options.lockStep = true
            options.policySeed = 7
            options.control = nil
            _ = try RunSession.run(options, sampler: sampler, robot: robot, shouldEnd: { robot.isFinished })
            return robot.outcomes
        }
        let local = try run(Policy(checkpoint: checkpoint, capacity: 1, steps: 2))
        let context = try ZMQContext()
        let server = try RunningServer(checkpoint: checkpoint, context: context) { $0.steps = 2 }
        defer { try? server.stop() }
        let remote = try run(RemotePolicy(context: context, endpoint: server.endpoint))
        #expect(local.count == 100 && remote.count == 100)
        for (a, b) in zip(local, remote) { #expect(a == b, "seed \(a.seed)") }
        // Something to compare: the episodes differ among themselves.
        #expect(Set(local.map(\.steps)).count > 1)
    }
}
