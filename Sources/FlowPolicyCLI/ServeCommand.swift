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

    @Option(help: ArgumentHelp(
        "Endpoint to bind, e.g. tcp://127.0.0.1:* (any free port) or tcp://*:5555.",
        discussion: "Beyond loopback it needs --secret-key and --allow (CURVE), or --insecure."))
    var bind: String = "tcp://127.0.0.1:5555"

    @OptionGroup var security: SecurityOptions

    @OptionGroup var sampling: SolverOptions

    @OptionGroup var precision: PrecisionOptions

    @Option(name: .customLong("max-batch"), parsing: .unconditional,
            help: "Most observation windows in one batched call.")
    var maxBatch: Int = 256

    @Option(parsing: .unconditional, help: "Threads a batched call is split over.")
    var workers: Int = 1

    @Flag(name: .customLong("no-batching"), help: "Sample every request on its own (for comparison).")
    var noBatching = false

    @Option(name: .customLong("out-of-bounds"),
            help: "A chunk outside the contract's action bounds: clip (and count) or refuse.")
    var outOfBounds: OutOfBounds = .clip

    @Option(name: .customLong("max-clients"), parsing: .unconditional, help: "Clients whose state is kept at once.")
    var maxClients: Int = 64

    @Option(parsing: .unconditional, help: "Seed of the shared noise stream. (default: 0)", transform: seedArgument)
    var seed: UInt64 = 0

    public init() {}

    public enum OutOfBounds: String, CaseIterable, ExpressibleByArgument, Sendable { case clip, refuse }

    public func validate() throws {
        try Check.integer("--max-batch", maxBatch, in: 1...16_384)
        try Check.integer("--workers", workers, in: 1...256)
        try Check.integer("--max-clients", maxClients, in: 1...100_000)
        try Check.inputFile("--checkpoint", checkpoint)
    }

    public func run() throws {
        try reportingErrors {
            let model = try Checkpoint(contentsOf: checkpoint)
            var options = PolicyServer.Options(endpoint: bind)
            options.method = sampling.solver
            options.steps = sampling.steps
            options.precision = precision.precision
            options.maxBatch = maxBatch
            options.workers = workers
            options.batching = !noBatching
            options.clipsOutOfBounds = outOfBounds == .clip
            options.maxClients = maxClients
            options.seed = seed
            options.checkpointName = URL(fileURLWithPath: checkpoint).lastPathComponent
            options.credentials = try security.credentials()
            let context = try ZMQContext()
            let server = try PolicyServer(checkpoint: model, options: options, context: context)
            let spec = model.spec
            printNow("serving \(checkpoint) (\(spec.task): To=\(spec.observationSteps) Ta=\(spec.actionSteps) "
                + "Tp=\(spec.predictionSteps), Do=\(spec.observationDimensions) Da=\(spec.actionDimensions); "
                + "\(sampling.solver.rawValue) K=\(sampling.steps), \(precision.description)) on \(server.endpoint)"
                + (server.authentication == nil ? "" : " (CURVE)"))
            security.warnIfInsecure([server.endpoint])
            Interrupt.install()
            let watcher = Thread {
                while !Interrupt.requested { usleep(50_000) }
                server.stop()
            }
            watcher.start()
            try server.run()
            let statistics = server.statistics
            print("served \(statistics.inferRequests) Infer requests in \(statistics.calls) calls "
                  + "(largest batch \(statistics.largestCall)); \(statistics.errors) error replies; chunks clipped "
                  + "\(statistics.clippedChunks), refused \(statistics.refusedChunks), non-finite "
                  + "\(statistics.nonFiniteChunks); requests over a client's share or the client limit "
                  + "\(statistics.exhausted), refused but unanswered (one error per client per turn) "
                  + "\(statistics.unansweredErrors)")
        }
    }
}
