/// The conditional flow-matching objective on the rectified (OT) path, METHODS.md section 1:
/// `x_t = (1 - (1 - σmin) t) x0 + t a`, target `u = a - (1 - σmin) x0`, loss `mean (v_θ(t, x_t, o) - u)²`.
public enum FlowMatchingLoss {
    /// Writes `x_t [B, Dx]` and the target velocity `u [B, Dx]` from noise `x0`, data `a` and times `t [B]`.
    @inline(__always)
    public static func interpolate(
        noise x0: UnsafePointer<Float>, data a: UnsafePointer<Float>, times t: UnsafePointer<Float>, batch B: Int,
        dimensions Dx: Int, sigmaMin: Float, state xt: UnsafeMutablePointer<Float>,
        target u: UnsafeMutablePointer<Float>
    ) {
        for row in 0..<B {
            let noiseWeight = 1 - (1 - sigmaMin) * t[row]
            for j in (row * Dx)..<((row + 1) * Dx) {
                xt[j] = noiseWeight * x0[j] + t[row] * a[j]
                u[j] = a[j] - (1 - sigmaMin) * x0[j]
            }
        }
    }

    /// Sum of squared errors over `count` elements; writes the gradient `dv = gradientScale * (v - u)`. For the mean
    /// over N elements, `gradientScale = 2 / N` and the loss is the returned sum divided by N.
    @inline(__always)
    public static func sumOfSquaredErrors(
        prediction v: UnsafePointer<Float>, target u: UnsafePointer<Float>, count: Int, gradientScale: Float,
        gradient dv: UnsafeMutablePointer<Float>
    ) -> Double {
        var total: Double = 0
        for i in 0..<count {
            let difference = v[i] - u[i]
            total += Double(difference * difference)
            dv[i] = gradientScale * difference
        }
        return total
    }
}
