import Dispatch

/// Runs `body(worker)` for `worker in 0 ..< workers` on that many threads (the caller's among them) and returns
/// when all are done. Each worker must touch only its own memory; OpenBLAS is called with one thread per worker.
///
/// Swift's strict concurrency cannot see that the workers write disjoint memory, so the closure is passed as
/// unchecked-Sendable: the callers in this module hand each worker its own rows and buffers.
public func parallelFor(_ workers: Int, _ body: (Int) -> Void) {
    if workers <= 1 {
        body(0)
        return
    }
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: workers) { shared.value($0) }
    }
}

/// Part `index` of `0 ..< count` split into `parts` contiguous ranges of at most `ceil(count / parts)` elements.
public func partition(_ count: Int, into parts: Int, index: Int) -> Range<Int> {
    let chunk = (count + parts - 1) / parts
    let lower = min(index * chunk, count)
    return lower..<min(lower + chunk, count)
}

struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
