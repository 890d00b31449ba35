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

/// Splits `0 ..< count` into `parts` contiguous ranges of nearly equal size (multiples of 16 where possible).
public func partition(_ count: Int, into parts: Int, index: Int) -> Range<Int> {
    let chunk = (count + parts - 1) / parts
    let aligned = parts > 1 && count >= 16 * parts ? (chunk + 15) / 16 * 16 : chunk
    let lower = min(index * aligned, count)
    return lower..<min(lower + aligned, count)
}

struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
