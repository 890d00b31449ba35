import Testing
@testable import PolicyRuntime
@Test func probe() { #expect(true) }
