import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge

extension DeploymentContract {
    /// The contract of a policy of `task` with observations in `observationMode`'s layout (nil: the task's own): the
    /// task's rate, bounds, safety limits, hand-over and, where they add up to the policy's dimensions, its names and
    /// units.
    public init(task: TaskDescription, observationMode: String?, observationDimensions: Int, actionDimensions: Int)
        throws
    {
        func contractGroups(_ groups: [TaskDescription.Interface.Group]?, dimensions: Int) -> [SignalGroup] {
            guard let groups, groups.reduce(0, { $0 + $1.size }) == dimensions else { return [] }
            return groups.map { SignalGroup(name: $0.name, size: $0.size, unit: $0.unit) }
        }
        guard let kind = ActionKind(rawValue: task.interface.actionKind) else {
            throw EnvironmentError.invalidTaskFile(
                path: task.folder.path("task.yaml"),
                message: "interface.action_kind must be position, velocity or delta, got \(task.interface.actionKind)")
        }
        self.init(
            controlRateHz: task.controlRate,
            observations: contractGroups(
                task.observationGroups(mode: observationMode), dimensions: observationDimensions),
            actions: contractGroups(task.interface.actions, dimensions: actionDimensions),
            actionKind: kind, actionLow: task.safety.actionLow ?? task.actionLow,
            actionHigh: task.safety.actionHigh ?? task.actionHigh,
            maximumStepChange: task.safety.maximumStepChange, maximumVelocity: task.safety.maximumVelocity,
            maximumAcceleration: task.safety.maximumAcceleration, maximumJerk: task.safety.maximumJerk,
            handOver: ChunkHandOver(rawValue: task.handOver) ?? .receding)
        try validate(observationDimensions: observationDimensions, actionDimensions: actionDimensions)
    }

    /// The contract for a policy of `spec` trained on `task`'s data (nil for data of no simulated task, whose
    /// checkpoints then carry none).
    public static func forTraining(spec: PolicySpec, observationMode: String?) throws -> DeploymentContract? {
        guard TaskDescription.knownTasks.contains(spec.task) else { return nil }
        return try DeploymentContract(
            task: .named(spec.task), observationMode: observationMode,
            observationDimensions: spec.observationDimensions, actionDimensions: spec.actionDimensions)
    }
}

extension SafetyLimits {
    /// A task's own limits on every command: its safety bounds (else the environment's) and largest step change.
    public init(task: TaskDescription) throws {
        try self.init(low: task.safety.actionLow ?? task.actionLow, high: task.safety.actionHigh ?? task.actionHigh,
                      maximumStepChange: task.safety.maximumStepChange)
    }
}

/// Reads checkpoints for the simulation side: a checkpoint written before the deployment contract gets its task's
/// contract, with a one-line note.
public enum CheckpointReader {
    public static func read(_ path: String, note: (String) -> Void = printNote) throws -> Checkpoint {
        let checkpoint = try Checkpoint(contentsOf: path)
        guard checkpoint.contract == nil,
              let contract = try DeploymentContract.forTraining(
                spec: checkpoint.spec, observationMode: checkpoint.provenance["observation_mode"])
        else { return checkpoint }
        checkpoint.contract = contract
        note("note: \(path) predates the deployment contract; using the \(checkpoint.spec.task) task's "
            + "(`flowpolicy upgrade \(path)` writes it into the file)")
        return checkpoint
    }

    /// Writes `path`'s checkpoint with the deployment contract of `task` (default: its own task) to `output`
    /// (default: over itself, atomically); the weights and everything else stay as they were. Returns the contract.
    public static func upgrade(_ path: String, task: TaskDescription?, output: String?) throws -> DeploymentContract {
        let checkpoint = try Checkpoint(contentsOf: path)
        let description = try task ?? TaskDescription.named(checkpoint.spec.task)
        let contract = try DeploymentContract(
            task: description, observationMode: checkpoint.provenance["observation_mode"],
            observationDimensions: checkpoint.spec.observationDimensions,
            actionDimensions: checkpoint.spec.actionDimensions)
        checkpoint.contract = contract
        try checkpoint.write(to: output ?? path)
        return contract
    }

    /// Notes go to standard error, so that they never mix with a command's output.
    public static func printNote(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
