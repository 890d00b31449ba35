/// The simulated tasks flowpolicy knows, by name.
public enum TaskRegistry {
    public static let names = ["pusht"]

    /// A new environment for `task`, configured from `tasks/<task>/task.yaml`.
    public static func makeEnvironment(_ task: String) throws -> any Environment {
        switch task {
        case "pusht": return try PushT()
        default: throw EnvironmentError.unknownTask(task, known: names)
        }
    }

    /// The settings every task file has (horizons, seeds, safety limits).
    public static func commonSettings(_ task: String) throws -> CommonTaskSettings {
        guard names.contains(task) else { throw EnvironmentError.unknownTask(task, known: names) }
        return try TaskFolder(task: task).settings(CommonTaskSettings.self)
    }
}
