/// The deployed K-step sampler `Φ^K(z; o)` as a differentiable map (discretize-then-optimize): the forward pass
/// integrates `dx/dt = v(t, x, o)` from `x(0) = z` to t = 1 with K Euler or midpoint steps and keeps every
/// evaluation's activations; the backward pass returns the exact gradient of that discrete map with respect to the
/// field's parameters (and, if asked, to z). Memory grows with K and the batch: one activation cache per evaluation.
///
/// Euler: `x_{k+1} = x_k + h v(t_k, x_k)`; backward `g ← g + h (∂v/∂x)ᵀ g`, `∂θ += h (∂v/∂θ)ᵀ g`.
/// Midpoint: `y = x_k + (h/2) v(t_k, x_k)`, `x_{k+1} = x_k + h v(t_k + h/2, y)`; backward
/// `g_y = h (∂v/∂y)ᵀ g`, `g ← g + g_y + (h/2)(∂v/∂x)ᵀ g_y`.
public final class UnrolledSampler {
    public let field: VelocityField
    public let method: SolverMethod
    public let steps: Int
    public let capacity: Int
    let dimensions: Int
    let caches: [VelocityFieldCache]  // one per evaluation, in order
    let states: FloatBuffer  // [evaluations + 1, B, Dx]: the state each evaluation saw, then x_K
    let times: FloatBuffer  // [B]
    let velocity: FloatBuffer  // [B, Dx]
    let gradient: FloatBuffer  // [B, Dx]: ∂L/∂x running backwards
    let stageGradient: FloatBuffer  // [B, Dx]
    let inputGradient: FloatBuffer  // [B, Dx]
    let observation: FloatBuffer  // [B, To*Do]
    var batch = 0

    public init(field: VelocityField, method: SolverMethod, steps: Int, capacity: Int) throws(FlowPolicyError) {
        guard method != .rk4 else {
            throw .invalidConfiguration("fine-tuning differentiates Euler or midpoint samplers, not rk4")
        }
        guard steps >= 1 else { throw .invalidConfiguration("the sampler needs at least one step") }
        self.field = field
        self.method = method
        self.steps = steps
        self.capacity = capacity
        dimensions = field.network.configuration.chunkDimensions
        let evaluations = steps * method.evaluationsPerStep
        caches = (0..<evaluations).map { _ in VelocityFieldCache(field: field, capacity: capacity) }
        states = FloatBuffer(count: (evaluations + 1) * capacity * dimensions)
        times = FloatBuffer(count: capacity)
        velocity = FloatBuffer(count: capacity * dimensions)
        gradient = FloatBuffer(count: capacity * dimensions)
        stageGradient = FloatBuffer(count: capacity * dimensions)
        inputGradient = FloatBuffer(count: capacity * dimensions)
        observation = FloatBuffer(count: capacity * field.network.configuration.observationDimensions)
    }

    private func state(_ index: Int) -> UnsafeMutablePointer<Float> { states.pointer + index * capacity * dimensions }

    /// `output [B, Dx] = Φ^K(z [B, Dx]; o [B, To*Do])` (normalized units).
    public func forward(
        z: UnsafePointer<Float>, observation o: UnsafePointer<Float>, batch B: Int,
        parameters: VelocityFieldParameters, output: UnsafeMutablePointer<Float>
    ) {
        precondition(B <= capacity)
        batch = B
        let n = B * dimensions
        observation.pointer.update(from: o, count: B * field.network.configuration.observationDimensions)
        let h = 1 / Float(steps)
        let x = output
        x.update(from: z, count: n)
        var evaluation = 0
        func evaluate(_ t: Float, at input: UnsafePointer<Float>) {
            state(evaluation).update(from: input, count: n)
            times.pointer.update(repeating: t, count: B)
            field.forward(x: state(evaluation), t: times.pointer, observation: observation.pointer, batch: B,
                          parameters: parameters, cache: caches[evaluation], output: velocity.pointer)
            evaluation += 1
        }
        for k in 0..<steps {
            let t = Float(k) * h
            switch method {
            case .euler:
                evaluate(t, at: x)
                for i in 0..<n { x[i] += h * velocity[i] }
            case .midpoint:
                evaluate(t, at: x)
                let midpoint = stageGradient.pointer  // free during the forward pass
                for i in 0..<n { midpoint[i] = x[i] + 0.5 * h * velocity[i] }
                evaluate(t + 0.5 * h, at: midpoint)
                for i in 0..<n { x[i] += h * velocity[i] }
            case .rk4:
                preconditionFailure("rejected at construction")
            }
        }
        state(evaluation).update(from: x, count: n)
    }

    /// Backward pass of the last `forward`, from `dOutput = ∂L/∂x_K [B, Dx]`: accumulates the parameter gradients
    /// of the trainable parts (`networkGradients`, `headGradients`; nil = frozen) and, when given, `dZ += ∂L/∂z`.
    public func backward(
        dOutput: UnsafePointer<Float>, parameters: VelocityFieldParameters,
        networkGradients: UnsafeMutablePointer<Float>?, headGradients: UnsafeMutablePointer<Float>?,
        dZ: UnsafeMutablePointer<Float>? = nil
    ) {
        let B = batch
        let n = B * dimensions
        let h = 1 / Float(steps)
        let g = gradient.pointer
        g.update(from: dOutput, count: n)
        let scaled = velocity.pointer  // scratch: the dOutput handed to each evaluation's backward
        let dInput = inputGradient.pointer
        func backPropagate(evaluation: Int, scale: Float, of upstream: UnsafePointer<Float>) {
            for i in 0..<n { scaled[i] = scale * upstream[i] }
            dInput.update(repeating: 0, count: n)
            field.backward(dOutput: scaled, x: state(evaluation), batch: B, parameters: parameters,
                           networkGradients: networkGradients, headGradients: headGradients,
                           cache: caches[evaluation], dX: dInput)
        }
        for k in stride(from: steps - 1, through: 0, by: -1) {
            switch method {
            case .euler:
                backPropagate(evaluation: k, scale: h, of: g)
                for i in 0..<n { g[i] += dInput[i] }
            case .midpoint:
                let gy = stageGradient.pointer
                backPropagate(evaluation: 2 * k + 1, scale: h, of: g)
                gy.update(from: dInput, count: n)
                backPropagate(evaluation: 2 * k, scale: 0.5 * h, of: gy)
                for i in 0..<n { g[i] += gy[i] + dInput[i] }
            case .rk4:
                preconditionFailure("rejected at construction")
            }
        }
        if let dZ { for i in 0..<n { dZ[i] += g[i] } }
    }
}
