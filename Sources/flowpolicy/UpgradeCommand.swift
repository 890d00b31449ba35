import ArgumentParser
import FlowPolicyCLI
import PolicyLab
import SimBridge

struct UpgradeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Write the deployment contract into a checkpoint made before it existed.",
        discussion: """
            Reads the checkpoint's task (or --task) from its task.yaml and writes the contract (control rate, \
            observation and action layout, bounds, safety limits, hand-over) into the checkpoint's metadata. The \
            weights are not touched. The file is replaced atomically unless --out is given. Afterwards serve and run \
            need nothing but the checkpoint.
            """)

    @Argument(help: "Checkpoint file.")
    var path: String

    @Option(help: "Task whose contract to write (default: the checkpoint's).")
    var task: String?

    @Option(help: "Write the upgraded checkpoint here instead of over the original.")
    var out: String?

    func validate() throws {
        try Check.inputFile("<path>", path)
        try Check.output("--out", out)
    }

    func run() throws {
        try reportingErrors {
            let contract = try CheckpointReader.upgrade(path, task: task.map { try TaskDescription.named($0) },
                                                        output: out)
            print("wrote \(out ?? path) with its deployment contract:")
            print(contractSummary(contract))
        }
    }
}
