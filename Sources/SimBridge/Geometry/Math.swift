import Foundation

@inline(__always) func sine(_ x: Double) -> Double { Foundation.sin(x) }
@inline(__always) func cosine(_ x: Double) -> Double { Foundation.cos(x) }
