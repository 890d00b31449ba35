import FlowPolicy
import Foundation

/// A finished chunk: which request it answers and what it cost.
public struct InferenceResult: Equatable, Sendable {
    /// The request step the chunk was conditioned on (the tag given to `submit`).
    public var tag: Int
    /// Episode generation the request belonged to; results of an older generation are stale.
    public var generation: Int
    public var latencyNanoseconds: UInt64
    public var solverSteps: Int
    /// The sampler failed (a remote policy's error or timeout); no chunk was written. `ChunkInference.lastFailure`
    /// says why.
    public var failed: Bool

    public init(tag: Int, generation: Int, latencyNanoseconds: UInt64, solverSteps: Int, failed: Bool = false) {
        self.tag = tag
        self.generation = generation
        self.latencyNanoseconds = latencyNanoseconds
        self.solverSteps = solverSteps
        self.failed = failed
    }
}

/// Samples action chunks for the control loop without ever making it wait: `submit` copies the inputs and returns,
/// `collect` hands over a finished chunk if there is one. At most one request is in flight.
public protocol ChunkInference: AnyObject {
    var spec: PolicySpec { get }
    /// Solver steps K the next request will use.
    var solverSteps: Int { get }
    /// Starts sampling a chunk conditioned on `window` (`[To, Do]`, task units) and, for a policy with cameras, its
    /// `frames` (`[To, spec.frameBytesPerStep]`; nil without cameras), keeping `committedSteps` actions of
    /// `committed` (`[P, Da]`) on their flow path. Returns false (and does nothing) while a request is in flight.
    func submit(window: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, committed: UnsafePointer<Float>?,
                committedSteps: Int, tag: Int, generation: Int) -> Bool
    /// If a chunk is finished, copies it (`[Tp, Da]`, task units) into `chunk` and returns what it answers.
    func collect(into chunk: UnsafeMutablePointer<Float>) -> InferenceResult?
    /// Restarts the sampling noise (taken before the next request).
    func resetNoise(seed: UInt64)
    /// Why the last failed request failed.
    var lastFailure: String? { get }
}

extension ChunkInference {
    /// Submits a window of a policy without cameras.
    public func submit(window: UnsafePointer<Float>, committed: UnsafePointer<Float>?, committedSteps: Int, tag: Int,
                       generation: Int) -> Bool {
        submit(window: window, frames: nil, committed: committed, committedSteps: committedSteps, tag: tag,
               generation: generation)
    }
}

/// The solver-step count for a latency budget (`--deadline-ms`): the largest K whose p99 latency fits, re-picked as
/// latency drifts.
///
/// Latency is modelled as proportional to K (the network evaluations dominate). The p99 of the time per solver step
/// is estimated over a sliding window of recent chunks; K is the largest count whose predicted p99 (`K x` that)
/// fits the budget. Allocates nothing after construction.
public struct SolverStepPlanner: Sendable {
    public let deadlineNanoseconds: UInt64
    public let maximumSteps: Int
    /// Time per solver step of the last `window` chunks (ns), a ring.
    private var perStep: [Double]
    private var sorted: [Double]
    private var count = 0
    private var next = 0
    public private(set) var steps: Int
    /// Times K changed after the first pick.
    public private(set) var changes = 0
    public private(set) var smallestSteps: Int
    public private(set) var largestSteps: Int

    public init(deadlineNanoseconds: UInt64, maximumSteps: Int, window: Int = 64) {
        precondition(maximumSteps >= 1 && window >= 8)
        self.deadlineNanoseconds = deadlineNanoseconds
        self.maximumSteps = maximumSteps
        perStep = [Double](repeating: 0, count: window)
        sorted = perStep
        steps = maximumSteps
        smallestSteps = maximumSteps
        largestSteps = 0
    }

    /// The p99 of the time per solver step over the window (ns), or nil before any measurement.
    public private(set) var perStepP99: Double?

    private mutating func updatePercentile() {
        guard count > 0 else { return }
        // Insertion sort of at most `window` values into a buffer made at construction: no allocation.
        for i in 0..<count {
            let value = perStep[i]
            var j = i
            while j > 0 && sorted[j - 1] > value {
                sorted[j] = sorted[j - 1]
                j -= 1
            }
            sorted[j] = value
        }
        let rank = Int((0.99 * Double(count)).rounded(.up)) - 1
        perStepP99 = sorted[min(max(rank, 0), count - 1)]
    }

    /// Adds a chunk's latency at `solverSteps` and re-picks K; returns the K for the next chunk.
    @discardableResult
    public mutating func record(latencyNanoseconds: UInt64, solverSteps: Int) -> Int {
        perStep[next] = Double(latencyNanoseconds) / Double(max(solverSteps, 1))
        next = (next + 1) % perStep.count
        count = min(count + 1, perStep.count)
        updatePercentile()
        guard let p99 = perStepP99, p99 > 0 else { return steps }
        let fitting = Int(Double(deadlineNanoseconds) / p99)
        let picked = min(max(fitting, 1), maximumSteps)
        if picked != steps && largestSteps > 0 { changes += 1 }
        steps = picked
        smallestSteps = min(smallestSteps, picked)
        largestSteps = max(largestSteps, picked)
        return steps
    }
}

/// Samples chunks on a thread of its own (with a one-worker `Policy`, zero allocations per chunk; with a
/// `RemotePolicy`, the round trip happens there); the control loop only copies buffers under a lock, so it never
/// waits for the network or the server.
public final class ThreadedInference: ChunkInference, @unchecked Sendable {
    // `@unchecked`: every field shared with the worker thread is guarded by `lock`; the policy and the worker's
    // buffers are touched by the worker only, after a hand-over under the lock.
    public let spec: PolicySpec
    private let sampler: any ChunkSampler
    private let lock = NSLock()
    private let wake = DispatchSemaphore(value: 0)
    private var planner: SolverStepPlanner?
    private var nextSteps: Int

    // Guarded by `lock`.
    private var busy = false
    private var finished = false
    private var stopping = false
    private var noiseSeed: UInt64?
    private var requestTag = 0, requestGeneration = 0, requestCommitted = 0
    private var result = InferenceResult(tag: 0, generation: 0, latencyNanoseconds: 0, solverSteps: 0)
    private var failure: String?
    private let requestWindow: UnsafeMutablePointer<Float>  // [To*Do]
    private let requestFrames: UnsafeMutablePointer<UInt8>  // [To*frameBytesPerStep]
    private var requestHasFrames = false
    private let requestCommittedActions: UnsafeMutablePointer<Float>  // [Tp*Da]
    private let resultChunk: UnsafeMutablePointer<Float>  // [Tp*Da]
    // The worker's own.
    private let workerWindow: UnsafeMutablePointer<Float>
    private let workerFrames: UnsafeMutablePointer<UInt8>
    private let workerCommitted: UnsafeMutablePointer<Float>
    private let workerChunk: UnsafeMutablePointer<Float>
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    /// `sampler` is used by this object's thread only from now on (a local `Policy` with one worker). With
    /// `planner`, K is re-picked after every chunk for the planner's deadline.
    public init(sampler: any ChunkSampler, planner: SolverStepPlanner? = nil) {
        precondition(
            (sampler as? Policy)?.workers ?? 1 == 1, "the control loop's policy samples one chunk on one thread")
        self.sampler = sampler
        spec = sampler.spec
        self.planner = planner
        nextSteps = planner?.steps ?? sampler.solverSteps
        let (To, Do, Tp, Da) = (spec.observationSteps, spec.observationDimensions, spec.predictionSteps,
                                spec.actionDimensions)
        func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: count)
            pointer.initialize(repeating: 0, count: count)
            return pointer
        }
        requestWindow = buffer(To * Do)
        requestCommittedActions = buffer(Tp * Da)
        resultChunk = buffer(Tp * Da)
        workerWindow = buffer(To * Do)
        workerCommitted = buffer(Tp * Da)
        workerChunk = buffer(Tp * Da)
        let frameBytes = max(To * spec.frameBytesPerStep, 1)
        requestFrames = .allocate(capacity: frameBytes)
        requestFrames.initialize(repeating: 0, count: frameBytes)
        workerFrames = .allocate(capacity: frameBytes)
        workerFrames.initialize(repeating: 0, count: frameBytes)
        // The thread keeps the object alive until `stop()`.
        let thread = Thread { self.work() }
        thread.name = "flowpolicy inference"
        thread.qualityOfService = .userInteractive
        self.thread = thread
        thread.start()
    }

    deinit {
        for pointer in [requestWindow, requestCommittedActions, resultChunk, workerWindow, workerCommitted,
                        workerChunk] {
            pointer.deallocate()
        }
        requestFrames.deallocate()
        workerFrames.deallocate()
    }

    /// Stops the worker thread (after the chunk in progress) and waits for it. The thread keeps this object alive
    /// until then, so call it when done.
    public func stop() {
        guard thread != nil else { return }
        lock.withLock { stopping = true }
        wake.signal()
        done.wait()
        thread = nil
    }

    public var solverSteps: Int { lock.withLock { nextSteps } }

    /// The deadline-aware planner's state (K history), if there is one.
    public var plannerState: SolverStepPlanner? { lock.withLock { planner } }

    public func submit(window: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, committed: UnsafePointer<Float>?,
                       committedSteps: Int, tag: Int, generation: Int) -> Bool {
        let accepted = lock.withLock { () -> Bool in
            guard !busy else { return false }
            busy = true
            finished = false
            requestTag = tag
            requestGeneration = generation
            requestWindow.update(from: window, count: spec.observationSteps * spec.observationDimensions)
            requestHasFrames = frames != nil
            if let frames { requestFrames.update(from: frames, count: spec.observationSteps * spec.frameBytesPerStep) }
            requestCommitted = committed == nil ? 0 : committedSteps
            if let committed, committedSteps > 0 {
                requestCommittedActions.update(from: committed, count: committedSteps * spec.actionDimensions)
            }
            return true
        }
        if accepted { wake.signal() }
        return accepted
    }

    public func collect(into chunk: UnsafeMutablePointer<Float>) -> InferenceResult? {
        lock.withLock { () -> InferenceResult? in
            guard finished else { return nil }
            finished = false
            busy = false
            if !result.failed { chunk.update(from: resultChunk, count: spec.predictionSteps * spec.actionDimensions) }
            return result
        }
    }

    public func resetNoise(seed: UInt64) {
        lock.withLock { noiseSeed = seed }
    }

    public var lastFailure: String? { lock.withLock { failure } }

    private func work() {
        let (To, Do, Tp, Da) = (spec.observationSteps, spec.observationDimensions, spec.predictionSteps,
                                spec.actionDimensions)
        while true {
            wake.wait()
            var tag = 0, generation = 0, committedSteps = 0
            var hasFrames = false
            var seed: UInt64?
            let stop = lock.withLock { () -> Bool in
                if stopping { return true }
                tag = requestTag
                generation = requestGeneration
                committedSteps = requestCommitted
                seed = noiseSeed
                noiseSeed = nil
                workerWindow.update(from: requestWindow, count: To * Do)
                hasFrames = requestHasFrames
                if hasFrames { workerFrames.update(from: requestFrames, count: To * spec.frameBytesPerStep) }
                workerCommitted.update(from: requestCommittedActions, count: Tp * Da)
                sampler.solverSteps = nextSteps
                return false
            }
            if stop { break }
            if let seed { sampler.resetNoise(seed: seed) }
            let begin = monotonicNanoseconds()
            var error: (any Error)?
            do {
                try sampler.sampleChunks(
                    observations: workerWindow, frames: hasFrames ? UnsafePointer(workerFrames) : nil, batch: 1,
                    into: workerChunk,
                    committed: committedSteps > 0 ? UnsafePointer(workerCommitted) : nil,
                    committedSteps: committedSteps)
            } catch let caught {
                error = caught
            }
            let latency = monotonicNanoseconds() - begin
            let steps = sampler.solverSteps
            lock.withLock {
                result = InferenceResult(tag: tag, generation: generation, latencyNanoseconds: latency,
                                         solverSteps: steps, failed: error != nil)
                if let error {
                    failure = "\(error)"
                } else {
                    resultChunk.update(from: workerChunk, count: Tp * Da)
                    if planner != nil { nextSteps = planner!.record(latencyNanoseconds: latency, solverSteps: steps) }
                }
                finished = true
            }
        }
        done.signal()
    }
}

/// Samples each chunk inside `submit`, on the caller's thread, and hands it over after `revealAfterCollects` calls to
/// `collect` (0: at once). Deterministic: for tests and lock-step runs, where the time a chunk takes must not matter.
public final class InlineInference: ChunkInference {
    public let spec: PolicySpec
    public let sampler: any ChunkSampler
    public let revealAfterCollects: Int
    public private(set) var lastFailure: String?
    private var waiting: Int?
    private var result = InferenceResult(tag: 0, generation: 0, latencyNanoseconds: 0, solverSteps: 0)
    private let chunk: UnsafeMutablePointer<Float>

    public init(sampler: any ChunkSampler, revealAfterCollects: Int = 0) {
        precondition((sampler as? Policy)?.workers ?? 1 == 1)
        self.sampler = sampler
        self.revealAfterCollects = revealAfterCollects
        spec = sampler.spec
        chunk = .allocate(capacity: spec.predictionSteps * spec.actionDimensions)
        chunk.initialize(repeating: 0, count: spec.predictionSteps * spec.actionDimensions)
    }

    deinit {
        chunk.deallocate()
    }

    public var solverSteps: Int { sampler.solverSteps }

    public func submit(window: UnsafePointer<Float>, frames: UnsafePointer<UInt8>?, committed: UnsafePointer<Float>?,
                       committedSteps: Int, tag: Int, generation: Int) -> Bool {
        guard waiting == nil else { return false }
        let begin = monotonicNanoseconds()
        var failed = false
        do {
            try sampler.sampleChunks(observations: window, frames: frames, batch: 1, into: chunk, committed: committed,
                                     committedSteps: committed == nil ? 0 : committedSteps)
        } catch {
            failed = true
            lastFailure = "\(error)"
        }
        result = InferenceResult(tag: tag, generation: generation, latencyNanoseconds: monotonicNanoseconds() - begin,
                                 solverSteps: sampler.solverSteps, failed: failed)
        waiting = revealAfterCollects
        return true
    }

    public func collect(into destination: UnsafeMutablePointer<Float>) -> InferenceResult? {
        guard let remaining = waiting else { return nil }
        if remaining > 0 {
            waiting = remaining - 1
            return nil
        }
        waiting = nil
        if !result.failed { destination.update(from: chunk, count: spec.predictionSteps * spec.actionDimensions) }
        return result
    }

    public func resetNoise(seed: UInt64) { sampler.resetNoise(seed: seed) }
}
