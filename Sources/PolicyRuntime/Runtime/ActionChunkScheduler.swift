import FlowPolicy
import Foundation

/// Which action to command at each control step, given the chunks that have arrived: pure bookkeeping, no time,
/// no threads, no allocation after construction.
///
/// Steps are control periods counted by the loop. A chunk requested at step `r` is conditioned on the window whose
/// newest observation is step `r`, so its index `To - 1 + j` is the action for step `r + j`. It is requested `lead`
/// steps before it is first needed (`lead` covers the inference time), so it is used from step `r + lead`:
/// ```
/// step        : r-1   r    r+1 ... r+lead ... r+lead+Ta-1          (To = 2)
/// window      : o     o                                            conditioning observations
/// chunk index : 0     1    2   ... 1+lead ... lead+Ta               Tp predicted
/// receding    :                    a      ... a                    Ta executed
/// committed   : c     c    c   ... (continuation: indices 0 ..< To-1+lead held, from what was commanded/planned)
/// ```
/// Receding horizon and continuation request every Ta steps; ensembling every `replanInterval` steps (at least
/// `lead`, so at most one request is in flight). A request not answered by step `r + lead` is a missed deadline.
public final class ActionChunkScheduler {
    public let mode: ChunkHandOver
    public let spec: PolicySpec
    public let lead: Int
    public let replanInterval: Int
    public let ensembleDecay: Float

    private let To: Int, Tp: Int, Da: Int
    /// Arrived chunks, a ring of `slotCount` `[Tp, Da]` chunks; `slotStep[i]` is the request step of slot i, or nil.
    private let slotCount: Int
    private let chunks: UnsafeMutablePointer<Float>
    private var slotStep: [Int?]
    private var newestSlot = -1
    /// The request in flight (its step), and the next step at which one is due.
    public private(set) var pendingRequest: Int?
    public private(set) var nextRequestStep: Int?
    /// Commanded (effective) actions of the last Tp steps: `[Tp, Da]` ring indexed by step mod Tp.
    private let history: UnsafeMutablePointer<Float>
    private var historyStep: [Int]
    /// The last planned action and the request step of the newest chunk it used, for boundary jumps.
    private let lastPlanned: UnsafeMutablePointer<Float>
    private var lastPlannedStep = Int.min
    private var lastNewestRequest = Int.min
    private let scratch: UnsafeMutablePointer<Float>

    /// Chunk boundaries seen and the action change there (largest component, task units): max and sum.
    public private(set) var boundaries = 0
    public private(set) var largestBoundaryJump: Float = 0
    public private(set) var boundaryJumpSum: Double = 0
    /// The same for steps inside a chunk, for comparison.
    public private(set) var interiorSteps = 0
    public private(set) var largestInteriorChange: Float = 0
    public private(set) var interiorChangeSum: Double = 0

    public init(spec: PolicySpec, mode: ChunkHandOver, lead: Int, replanInterval: Int? = nil,
                ensembleDecay: Float = 0.01) throws(RuntimeError) {
        let (To, Ta, Tp) = (spec.observationSteps, spec.actionSteps, spec.predictionSteps)
        // The last action a chunk is used for must lie inside it: To - 1 + lead + (Ta, or 1 when ensembling) <= Tp.
        let largestLead = Tp - To + 1 - (mode == .ensemble ? 1 : Ta)
        guard lead >= 0, lead <= largestLead else {
            throw .invalidConfiguration(
                "inference needs \(lead) control steps of lead, but a chunk of Tp = \(Tp) with To = \(To) and "
                    + "Ta = \(Ta) allows at most \(largestLead); use fewer solver steps, a lower control rate or a "
                    + "policy with a longer chunk")
        }
        self.spec = spec
        self.mode = mode
        self.lead = lead
        self.ensembleDecay = ensembleDecay
        (self.To, self.Tp, Da) = (To, Tp, spec.actionDimensions)
        switch mode {
        case .receding, .continuation:
            self.replanInterval = Ta
            slotCount = 2
        case .ensemble:
            let interval = max(replanInterval ?? 1, max(lead, 1))
            self.replanInterval = interval
            // Chunks usable at one step: those requested within the last Tp - To - lead steps.
            slotCount = (Tp - To - lead) / interval + 2
        }
        chunks = .allocate(capacity: slotCount * Tp * Da)
        chunks.initialize(repeating: 0, count: slotCount * Tp * Da)
        slotStep = [Int?](repeating: nil, count: slotCount)
        history = .allocate(capacity: Tp * Da)
        history.initialize(repeating: 0, count: Tp * Da)
        historyStep = [Int](repeating: Int.min, count: Tp)
        lastPlanned = .allocate(capacity: Da)
        lastPlanned.initialize(repeating: 0, count: Da)
        scratch = .allocate(capacity: Da)
        scratch.initialize(repeating: 0, count: Da)
    }

    deinit {
        chunks.deallocate()
        history.deallocate()
        lastPlanned.deallocate()
        scratch.deallocate()
    }

    /// Forgets every chunk and commanded action (a new episode, or a resume); the next request is due at `step`.
    public func reset(firstRequestAt step: Int) {
        for i in 0..<slotCount { slotStep[i] = nil }
        for i in 0..<Tp { historyStep[i] = Int.min }
        newestSlot = -1
        pendingRequest = nil
        nextRequestStep = step
        lastPlannedStep = Int.min
        lastNewestRequest = Int.min
    }

    /// Whether a request should be made at `step` (none is in flight and one is due).
    public func requestDue(at step: Int) -> Bool {
        guard pendingRequest == nil, let next = nextRequestStep else { return false }
        return step >= next
    }

    /// Records that a request conditioned on the window ending at `step` was started.
    public func requested(at step: Int) {
        pendingRequest = step
        nextRequestStep = step + replanInterval
    }

    /// Whether the request in flight is late: it was due by `step`.
    public func deadlineMissed(at step: Int) -> Bool {
        guard let pending = pendingRequest else { return false }
        return step >= pending + lead
    }

    /// Stores a chunk (`[Tp, Da]`, task units) requested at `requestStep`.
    public func accept(chunk: UnsafePointer<Float>, requestStep: Int) {
        if pendingRequest == requestStep { pendingRequest = nil }
        newestSlot = (newestSlot + 1) % slotCount
        slotStep[newestSlot] = requestStep
        (chunks + newestSlot * Tp * Da).update(from: chunk, count: Tp * Da)
    }

    /// Whether any chunk has arrived since the last reset.
    public var hasChunk: Bool { newestSlot >= 0 }

    /// The planned action for `step` (`[Da]`), without side effects. False if no chunk covers the step.
    @discardableResult
    public func plannedAction(at step: Int, into action: UnsafeMutablePointer<Float>) -> Bool {
        plan(step: step, into: action).covered
    }

    /// The action for `step`: writes it, records the change from the previous step's plan (boundary jumps), and
    /// returns false if no chunk covers the step.
    public func action(at step: Int, into action: UnsafeMutablePointer<Float>) -> Bool {
        let (covered, newest) = plan(step: step, into: action)
        guard covered else { return false }
        if lastPlannedStep == step - 1 {
            var change: Float = 0
            for d in 0..<Da { change = max(change, abs(action[d] - lastPlanned[d])) }
            if newest != lastNewestRequest {
                boundaries += 1
                largestBoundaryJump = max(largestBoundaryJump, change)
                boundaryJumpSum += Double(change)
            } else {
                interiorSteps += 1
                largestInteriorChange = max(largestInteriorChange, change)
                interiorChangeSum += Double(change)
            }
        }
        lastPlanned.update(from: action, count: Da)
        lastPlannedStep = step
        lastNewestRequest = newest
        return true
    }

    /// Records what was commanded at `step` (the action the robot applies; nil if nothing is known, e.g. HOLD
    /// before any action), for the continuation prefix.
    public func recordCommanded(_ action: UnsafePointer<Float>?, at step: Int) {
        let slot = ((step % Tp) + Tp) % Tp
        guard let action else {
            historyStep[slot] = Int.min
            return
        }
        (history + slot * Da).update(from: action, count: Da)
        historyStep[slot] = step
    }

    /// Continuation: the actions a chunk requested at `requestStep` must keep, `[P, Da]` for chunk indices
    /// `0 ..< P` with `P = To - 1 + lead` (steps `requestStep - To + 1 ..< requestStep + lead`): commanded actions
    /// for past steps, planned ones for the rest. Returns P, or 0 when some of them are unknown (start of an
    /// episode) or the mode is not continuation.
    public func committedPrefix(forRequestAt requestStep: Int, into committed: UnsafeMutablePointer<Float>) -> Int {
        guard mode == .continuation else { return 0 }
        let P = To - 1 + lead
        for j in 0..<P {
            let step = requestStep - (To - 1) + j
            let destination = committed + j * Da
            if step < requestStep {
                let slot = ((step % Tp) + Tp) % Tp
                guard historyStep[slot] == step else { return 0 }
                destination.update(from: history + slot * Da, count: Da)
            } else {
                guard plan(step: step, into: destination).covered else { return 0 }
            }
        }
        return P
    }

    /// The action for `step` from the arrived chunks, and the request step of the newest chunk used.
    private func plan(step: Int, into action: UnsafeMutablePointer<Float>) -> (covered: Bool, newest: Int) {
        guard newestSlot >= 0 else { return (false, Int.min) }
        switch mode {
        case .receding, .continuation:
            // The newest chunk whose turn has come (requested at least `lead` steps ago); before the first chunk's
            // turn, the first chunk itself (nothing older is there to execute).
            var chosen: (slot: Int, request: Int)?
            for age in 0..<slotCount {
                let slot = ((newestSlot - age) % slotCount + slotCount) % slotCount
                guard let request = slotStep[slot], step >= request else { continue }
                if step >= request + lead {
                    chosen = (slot, request)
                    break
                }
                chosen = chosen ?? (slot, request)
            }
            guard let (slot, request) = chosen else { return (false, Int.min) }
            let index = To - 1 + (step - request)
            guard index < Tp else { return (false, Int.min) }
            action.update(from: chunks + (slot * Tp + index) * Da, count: Da)
            return (true, request)
        case .ensemble:
            // Every chunk covering the step, oldest first, weighted exp(-k i).
            for d in 0..<Da { action[d] = 0 }
            var weightSum: Float = 0
            var order = 0
            var newest = Int.min
            for age in stride(from: slotCount - 1, through: 0, by: -1) {
                let slot = ((newestSlot - age) % slotCount + slotCount) % slotCount
                guard let request = slotStep[slot], step >= request + lead else { continue }
                let index = To - 1 + (step - request)
                guard index < Tp else { continue }
                let weight = expf(-ensembleDecay * Float(order))
                let source = chunks + (slot * Tp + index) * Da
                for d in 0..<Da { action[d] += weight * source[d] }
                weightSum += weight
                order += 1
                newest = max(newest, request)
            }
            if order == 0 {
                // Before the first chunk's turn: the first chunk alone.
                let slot = newestSlot
                guard let request = slotStep[slot], step >= request, To - 1 + (step - request) < Tp else {
                    return (false, Int.min)
                }
                action.update(from: chunks + (slot * Tp + To - 1 + (step - request)) * Da, count: Da)
                return (true, request)
            }
            for d in 0..<Da { action[d] /= weightSum }
            return (true, newest)
        }
    }
}
