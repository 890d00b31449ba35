import Foundation

/// Sinusoidal embedding of the flow time: `[sin(1000 t f_i), cos(1000 t f_i)]` for
/// `f_i = exp(-ln(10000) i / (Te / 2))`, i = 0 ..< Te/2 (sines first, then cosines). No parameters.
///
/// The argument is scaled by 1000 so that t ∈ [0, 1] spans the range of diffusion timesteps the embedding was
/// designed for.
public struct SinusoidalTimeEmbedding: Sendable {
    public let dimensions: Int
    public static let timeScale: Float = 1000
    /// `f_i` [Te/2].
    let frequencies: [Float]

    public init(_ dimensions: Int) {
        precondition(dimensions >= 2 && dimensions % 2 == 0, "time embedding size must be even, got \(dimensions)")
        self.dimensions = dimensions
        let half = dimensions / 2
        frequencies = (0..<half).map { Float(Foundation.exp(-Foundation.log(10000.0) * Double($0) / Double(half))) }
    }

    /// Writes `emb [B, Te]` into rows of `output`, which are `outputStride` floats apart.
    @inline(__always)
    public func callAsFunction(
        _ t: UnsafePointer<Float>, batch: Int, output: UnsafeMutablePointer<Float>, outputStride: Int
    ) {
        let half = dimensions / 2
        frequencies.withUnsafeBufferPointer { f in
            for row in 0..<batch {
                let e = output + row * outputStride
                let scaled = Self.timeScale * t[row]
                for i in 0..<half {
                    let argument = scaled * f[i]
                    e[i] = Foundation.sin(argument)
                    e[half + i] = Foundation.cos(argument)
                }
            }
        }
    }

    /// Accumulates `dt[b] += Σ_i dEmb[b, i] · ∂emb_i/∂t`.
    public func backward(
        _ t: UnsafePointer<Float>, dOutput: UnsafePointer<Float>, dOutputStride: Int, batch: Int,
        dInput dt: UnsafeMutablePointer<Float>
    ) {
        let half = dimensions / 2
        frequencies.withUnsafeBufferPointer { f in
            for row in 0..<batch {
                let g = dOutput + row * dOutputStride
                let scaled = Self.timeScale * t[row]
                var total: Float = 0
                for i in 0..<half {
                    let argument = scaled * f[i]
                    let dArgument = Self.timeScale * f[i]
                    total += g[i] * Foundation.cos(argument) * dArgument
                    total -= g[half + i] * Foundation.sin(argument) * dArgument
                }
                dt[row] += total
            }
        }
    }
}
