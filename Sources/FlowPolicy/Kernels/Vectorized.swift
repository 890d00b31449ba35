// SIMD kernels for the elementwise work of training and inference. LLVM does not vectorize calls to libm's `expf`,
// and a scalar exponential per element costs as much as the matrix products at batch 256, so the activations use
// this 16-lane exponential instead.

public typealias Float16x = SIMD16<Float>

/// `eˣ` on 16 lanes: Cody–Waite range reduction `x = n ln2 + r`, |r| <= ln2/2, and Cephes' degree-7 polynomial for
/// `eʳ` (relative error about 1 ulp in [-87, 88]; inputs are clamped to that range, so the result is finite).
@inline(__always)
public func exponential(_ x: Float16x) -> Float16x {
    let clamped = clamp(x, -87.3, 88.3)
    // Round x log2(e) to the nearest integer by adding and subtracting 1.5 * 2^23: the sum's low mantissa bits then
    // hold the integer (Swift's SIMD `rounded` and float-to-int conversions are not vectorized; this is).
    let shifter = Float16x(repeating: 12_582_912)
    let shifted = clamped * 1.442_695_04 + shifter
    let n = shifted - shifter
    var r = clamped - n * 0.693_359_375
    r = r + n * 2.121_944_40e-4
    var p = Float16x(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    p = p * (r * r) + r + 1
    // Scale by 2^n: n + 127 in the exponent field (n is in [-126, 127] after the clamp).
    let integer = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(shifter, to: SIMD16<Int32>.self)
    return p * unsafeBitCast((integer &+ 127) &<< 23, to: Float16x.self)
}

/// `x` limited to [lower, upper] (compare and select: Swift's `pointwiseMin`/`clamped` are lane-by-lane loops).
@inline(__always)
public func clamp(_ x: Float16x, _ lower: Float, _ upper: Float) -> Float16x {
    let upperLanes = Float16x(repeating: upper)
    let lowerLanes = Float16x(repeating: lower)
    return x.replacing(with: upperLanes, where: x .> upperLanes).replacing(with: lowerLanes, where: x .< lowerLanes)
}

/// Applies `body` to 16 floats at a time and the tail one at a time (the tail padded into a vector).
@inline(__always)
func forEachVector(
    count: Int, _ body: (_ offset: Int, _ lanes: Int) -> Void
) {
    var i = 0
    while i + 16 <= count {
        body(i, 16)
        i += 16
    }
    if i < count { body(i, count - i) }
}

@inline(__always)
func load(_ pointer: UnsafePointer<Float>, _ lanes: Int) -> Float16x {
    if lanes == 16 { return UnsafeRawPointer(pointer).loadUnaligned(as: Float16x.self) }
    var v = Float16x()
    for j in 0..<lanes { v[j] = pointer[j] }
    return v
}

@inline(__always)
func store(_ v: Float16x, _ pointer: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == 16 {
        UnsafeMutableRawPointer(pointer).storeBytes(of: v, as: Float16x.self)
        return
    }
    for j in 0..<lanes { pointer[j] = v[j] }
}
