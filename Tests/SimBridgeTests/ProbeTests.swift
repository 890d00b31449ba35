import Testing
@testable import SimBridge
@Test func probe() { #expect(true) }
