import ArgumentParser
import FlowPolicyCLI

/// The robot computer's binary: serve a policy, run it against a robot, record demonstrations, inspect a
/// checkpoint, make keys. It needs the checkpoint and nothing else: no task files, no simulator, no Swift toolchain
/// (built with the standard library linked in).
@main
struct FlowPolicyRuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowpolicy-runtime",
        abstract: "Run a flow-matching policy on a robot computer: serve it, run it against a robot, record "
            + "demonstrations, inspect it, make CURVE keys.",
        subcommands: [
            ServeCommand.self, RobotRunCommand.self, RecordCommand.self, InspectCommand.self, KeysCommand.self])
}
