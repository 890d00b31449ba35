import FlowPolicy
import SimBridge

/// Defaults per task for what a command does not say.
public enum TaskDefaults {
    public struct Horizons: Sendable {
        public var observationSteps: Int
        public var actionSteps: Int
        public var predictionSteps: Int
    }

    /// To / Ta / Tp from the task's `task.yaml` (`policy` section); 1/1/1 for the one-step toy; Diffusion Policy's
    /// 2 / 8 / 16 for a dataset of an unknown task.
    public static func horizons(for task: String) throws -> Horizons {
        if task == ConditionalMixture.spec.task { return Horizons(observationSteps: 1, actionSteps: 1, predictionSteps: 1) }
        guard TaskRegistry.names.contains(task) else {
            return Horizons(observationSteps: 2, actionSteps: 8, predictionSteps: 16)
        }
        let policy = try TaskRegistry.commonSettings(task).policy
        return Horizons(observationSteps: policy.observationSteps, actionSteps: policy.actionSteps,
                        predictionSteps: policy.predictionSteps)
    }
}
