import Testing
import CAllocationCounter
@testable import FlowPolicy
@Test func probe() {
    let before = fp_thread_allocation_count()
    let a = [Int](repeating: 3, count: 1000)
    let after = fp_thread_allocation_count()
    print("allocs", after - before, a.count)
    #expect(after > before)
}
