import ArgumentParser
import FlowPolicy
import Foundation
import PolicyRuntime

public struct ServeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a policy's action chunks over ZeroMQ (protocol flowpolicy.v1).",
        discussion: """
            Binds a ROUTER socket. Clients (DEALER or REQ) send MetadataRequest, Infer (observation windows, or the \
            newest observation of an episode) and Ping; every reply carries the request's sequence number. Metadata \
            carries the checkpoint's deployment contract (rate, bounds, limits), so nothing but the checkpoint is \
            read. Requests that arrive while a chunk is being sampled are batched into one call. Bad requests get an \
            Error reply. Prints the bound endpoint, then serves until interrupted (Ctrl-C).
            """)

    @Option(help: "Policy checkpoint.")
    var checkpoint: String

    @Option(help: "Endpoint to bind, e.g. tcp://*:5555 or tcp://127.0.0.1:* (any free port).")
    var bind: String = "tcp://*:5555"

    @OptionGroup var sampling: SolverOptions

    @Option(name: .customLong("max-batch"), help: "Most observation windows in one batched call.")
    var maxBatch: Int = 256

    @Option(help: "Threads a batched call is split over.")
    var workers: Int = 1

    @Flag(name: .customLong("no-batching"), help: "Sample every request on its own (for comparison).")
    var noBatching = false

    @Option(help: "Seed of the shared noise stream.")
    var seed: UInt64 = 0

    public init() {}

    public func run() throws {
        try reportingErrors {
            let model = try Checkpoint(contentsOf: checkpoint)
            var options = PolicyServer.Options(endpoint: bind)
            options.method = sampling.solver
            options.steps = sampling.steps
            options.maxBatch = maxBatch
            options.workers = workers
            options.batching = !noBatching
            options.seed = seed
            options.checkpointName = URL(fileURLWithPath: checkpoint).lastPathComponent
            let context = try ZMQContext()
            let server = try PolicyServer(checkpoint: model, options: options, context: context)
            let spec = model.spec
            printNow("serving \(checkpoint) (\(spec.task): To=\(spec.observationSteps) Ta=\(spec.actionSteps) "
                + "Tp=\(spec.predictionSteps), Do=\(spec.observationDimensions) Da=\(spec.actionDimensions); "
                + "\(sampling.solver.rawValue) K=\(sampling.steps)) on \(server.endpoint)")
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
