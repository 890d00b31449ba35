import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

@Suite struct SafetyFilterTests {
    @Test func rejectsNonFiniteOutOfBoundsAndLargeStepsAndCountsThem() throws {
        let limits = try SafetyLimits(low: [0, -1], high: [10, 1], maximumStepChange: [2, 0.5])
        var filter = SafetyFilter(limits: limits)
        let previous: [Float] = [5, 0]
        func check(_ action: [Float], previous: [Float]?) -> SafetyRejection? {
            action.withUnsafeBufferPointer { a in
                if let previous {
                    return previous.withUnsafeBufferPointer { filter.check(a.baseAddress!, previous: $0.baseAddress!) }
                }
                return filter.check(a.baseAddress!, previous: nil)
            }
        }
        #expect(check([6.9, 0.4], previous: previous) == nil)
        #expect(check([.nan, 0], previous: previous) == .nonFinite)
        #expect(check([5, .infinity], previous: nil) == .nonFinite)
        #expect(check([10.5, 0], previous: nil) == .outOfBounds)
        #expect(check([5, -1.01], previous: previous) == .outOfBounds)
        #expect(check([7.01, 0], previous: previous) == .stepChange)
        #expect(check([5, 0.51], previous: previous) == .stepChange)
        // Without a previous action only the bounds apply.
        #expect(check([10, 1], previous: nil) == nil)
        #expect(filter.accepted == 2 && filter.rejectedNonFinite == 2 && filter.rejectedOutOfBounds == 2
                && filter.rejectedStepChange == 2 && filter.rejected == 6)
    }

    @Test func limitsComeFromTheContractAndAreChecked() throws {
        let limits = try SafetyLimits(contract: pushTContract)
        #expect(limits.low == [0, 0] && limits.high == [512, 512] && limits.maximumStepChange == [150, 150])
        #expect(throws: (any Error).self) { try SafetyLimits(low: [0], high: [1, 2], maximumStepChange: [1]) }
        #expect(throws: (any Error).self) { try SafetyLimits(low: [0], high: [1], maximumStepChange: [0]) }
    }
}
