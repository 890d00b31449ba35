/// The simulated tasks flowpolicy knows, by name.
public enum TaskRegistry {
    public static let names = ["pusht", "franka_kitchen", "robomimic_lift", "robomimic_can", "robomimic_square"]

    /// A new environment for `task`, configured from `tasks/<task>/task.yaml`.
    public static func makeEnvironment(_ task: String) throws -> any Environment {
        switch task {
        case "pusht": return try PushT()
        case "franka_kitchen": return try FrankaKitchen()
        case "robomimic_lift", "robomimic_can", "robomimic_square": return try Robomimic(task: task)
        default: throw EnvironmentError.unknownTask(task, known: names)
        }
    }

    /// The scripted expert of `task`, acting in `environment` (which must be that task's environment).
    public static func makeExpert(_ task: String, environment: any Environment) throws -> any Expert {
        switch (task, environment) {
        case ("franka_kitchen", let kitchen as FrankaKitchen): return try FrankaKitchenExpert(environment: kitchen)
        case ("pusht", let pushT as PushT): return try PushTExpert(environment: pushT)
        case ("robomimic_lift", let robomimic as Robomimic), ("robomimic_can", let robomimic as Robomimic),
             ("robomimic_square", let robomimic as Robomimic):
            return try RobomimicExpert(environment: robomimic)
        default: throw EnvironmentError.unknownTask("\(task) (no scripted expert)", known: [])
        }
    }

    /// The settings every task file has (horizons, seeds, safety limits).
    public static func commonSettings(_ task: String) throws -> CommonTaskSettings {
        guard names.contains(task) else { throw EnvironmentError.unknownTask(task, known: names) }
        return try TaskFolder(task: task).settings(CommonTaskSettings.self)
    }
}
