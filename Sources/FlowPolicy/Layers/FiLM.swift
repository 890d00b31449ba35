/// Feature-wise linear modulation: `y = z * (1 + γ) + β`, with `(γ, β)` the two halves of a conditioning vector
/// produced by a `Linear(c -> 2H)`: the first H entries are γ (scale), the last H are β (shift). No parameters of
/// its own; the projection is a separate `Linear` named `film`.
///
/// Shapes: `z, y [B, H]`, `film [B, 2H]`.
public enum FiLM {
    @inline(__always)
    public static func forward(
        _ z: UnsafePointer<Float>, film: UnsafePointer<Float>, batch: Int, hidden H: Int,
        output y: UnsafeMutablePointer<Float>
    ) {
        for row in 0..<batch {
            let zr = z + row * H
            let gamma = film + row * 2 * H
            let beta = gamma + H
            let yr = y + row * H
            for i in 0..<H { yr[i] = zr[i] * (1 + gamma[i]) + beta[i] }
        }
    }

    /// Accumulates `dz += dy (1 + γ)` and writes `dfilm = [dy z, dy]` (overwrites `dfilm`).
    @inline(__always)
    public static func backward(
        _ z: UnsafePointer<Float>, film: UnsafePointer<Float>, dOutput dy: UnsafePointer<Float>, batch: Int,
        hidden H: Int, dInput dz: UnsafeMutablePointer<Float>, dFilm: UnsafeMutablePointer<Float>
    ) {
        for row in 0..<batch {
            let zr = z + row * H
            let gamma = film + row * 2 * H
            let dyr = dy + row * H
            let dzr = dz + row * H
            let dGamma = dFilm + row * 2 * H
            let dBeta = dGamma + H
            for i in 0..<H {
                dzr[i] += dyr[i] * (1 + gamma[i])
                dGamma[i] = dyr[i] * zr[i]
                dBeta[i] = dyr[i]
            }
        }
    }
}
