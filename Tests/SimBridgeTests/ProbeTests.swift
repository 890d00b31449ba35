import Testing
import SimBridge
@Test func probe() { #expect(true) }
