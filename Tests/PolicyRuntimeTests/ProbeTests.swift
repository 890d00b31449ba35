import Testing
import PolicyRuntime
@Test func probe() { #expect(true) }
