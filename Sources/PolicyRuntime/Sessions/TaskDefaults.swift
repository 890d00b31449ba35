import FlowPolicy

/// Defaults per task for what a command does not say.
public enum TaskDefaults {
    public struct Horizons: Sendable {
        public var observationSteps: Int
        public var actionSteps: Int
        public var predictionSteps: Int
    }

    /// To / Ta / Tp: Diffusion Policy's 2 / 8 / 16, except the one-step toy.
    public static func horizons(for task: String) -> Horizons {
        switch task {
        case "toy-mixture": return Horizons(observationSteps: 1, actionSteps: 1, predictionSteps: 1)
        default: return Horizons(observationSteps: 2, actionSteps: 8, predictionSteps: 16)
        }
    }
}
