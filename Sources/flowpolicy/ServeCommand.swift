import ArgumentParser
import FlowPolicy
import Foundation
import PolicyRuntime
import SimBridge

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a policy's action chunks over ZeroMQ (protocol flowpolicy.v1).",
        discussion: """
            Binds a ROUTER socket. Clients (DEALER or REQ) send MetadataRequest, Infer (observation windows, or the \
            newest observation of an episode) and Ping; every reply carries the request's sequence number. Requests \
            that arrive while a chunk is being sampled are batched into one call. Bad requests get an Error reply. \
            Prints the bound endpoint, then serves until interrupted (Ctrl-C).
            """)

    @Option(help: "Policy checkpoint (default: the task's shipped policy).")
    var checkpoint: String?

    @Option(help: "Endpoint to bind, e.g. tcp://*:5555 or tcp://127.0.0.1:* (any free port).")
    var bind: String = "tcp://*:5555"

    @Option(help: "Task whose control rate and limits Metadata reports (default: the checkpoint's).")
    var task: String?

    @Option(help: "Fixed-step solver: euler, midpoint or rk4.")
    var solver: SolverMethod = .euler

    @Option(help: "Solver steps K per chunk.")
    var steps: Int = 10

    @Option(name: .customLong("max-batch"), help: "Most observation windows in one batched call.")
    var maxBatch: Int = 256

    @Option(help: "Threads a batched call is split over.")
    var workers: Int = 1

    @Flag(name: .customLong("no-batching"), help: "Sample every request on its own (for comparison).")
    var noBatching = false

    @Option(help: "Seed of the shared noise stream.")
    var seed: UInt64 = 0

    func run() throws {
        try reportingErrors {
            let path = try checkpoint ?? shippedPolicy(task: task ?? "pusht")
            let model = try Checkpoint(contentsOf: path)
            var options = PolicyServer.Options(endpoint: bind)
            options.method = solver
            options.steps = steps
            options.maxBatch = maxBatch
            options.workers = workers
            options.batching = !noBatching
            options.seed = seed
            options.task = task
            options.checkpointName = URL(fileURLWithPath: path).lastPathComponent
            let context = try ZMQContext()
            let server = try PolicyServer(checkpoint: model, options: options, context: context)
            let spec = model.spec
            print("serving \(path) (\(spec.task): To=\(spec.observationSteps) Ta=\(spec.actionSteps) "
                  + "Tp=\(spec.predictionSteps), Do=\(spec.observationDimensions) Da=\(spec.actionDimensions); "
                  + "\(solver.rawValue) K=\(steps)) on \(server.endpoint)")
            fflush(nil)
            Interrupt.install()
            let watcher = Thread {
                while !Interrupt.requested { usleep(50_000) }
                server.stop()
            }
            watcher.start()
            try server.run()
            let statistics = server.statistics
            print("served \(statistics.inferRequests) Infer requests in \(statistics.calls) calls "
                  + "(largest batch \(statistics.largestCall)); \(statistics.errors) error replies")
        }
    }
}

/// The task's shipped policy, or an error saying it is missing and what to give instead.
func shippedPolicy(task: String) throws -> String {
    let folder = try TaskFolder(task: task)
    let path = folder.path("policy.safetensors")
    guard FileManager.default.fileExists(atPath: path) else {
        throw ValidationError("the shipped \(task) policy (\(path)) is missing; give --checkpoint PATH")
    }
    return path
}
