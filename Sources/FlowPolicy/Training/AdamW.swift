import Foundation

/// PyTorch's `torch.optim.AdamW` over one flat parameter buffer: decoupled weight decay, bias-corrected moments.
public final class AdamW {
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    /// First and second moments, mirroring the parameters.
    let firstMoment: FloatBuffer
    let secondMoment: FloatBuffer
    public private(set) var stepCount = 0

    public init(
        count: Int, beta1: Float = 0.95, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 1e-6
    ) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        firstMoment = FloatBuffer(count: count)
        secondMoment = FloatBuffer(count: count)
    }

    /// One update of every parameter, split over `workers` threads.
    public func update(parameters: FloatBuffer, gradients: FloatBuffer, learningRate: Float, workers: Int = 1) {
        precondition(parameters.count == firstMoment.count && gradients.count == firstMoment.count)
        stepCount += 1
        let correction1 = 1 - Float(Foundation.pow(Double(beta1), Double(stepCount)))
        let correction2 = 1 - Float(Foundation.pow(Double(beta2), Double(stepCount)))
        let (p, g, m, v) = (parameters.pointer, gradients.pointer, firstMoment.pointer, secondMoment.pointer)
        let (beta1, beta2, epsilon) = (self.beta1, self.beta2, self.epsilon)
        let decay = 1 - learningRate * weightDecay
        let stepSize = learningRate / correction1
        let inverseRootCorrection2 = 1 / correction2.squareRoot()
        let count = parameters.count
        parallelFor(workers) { worker in
            let range = partition(count, into: workers, index: worker)
            forEachVector(count: range.count) { offset, lanes in
                let i = range.lowerBound + offset
                let gradient = load(g + i, lanes)
                let first = beta1 * load(m + i, lanes) + (1 - beta1) * gradient
                let second = beta2 * load(v + i, lanes) + (1 - beta2) * gradient * gradient
                let denominator = second.squareRoot() * inverseRootCorrection2 + epsilon
                store(load(p + i, lanes) * decay - stepSize * first / denominator, p + i, lanes)
                store(first, m + i, lanes)
                store(second, v + i, lanes)
            }
        }
    }
}

/// Exponential moving average of the weights (Diffusion Policy's `EMAModel`): decay `1 - (1 + step)^(-power)`,
/// clipped to `[0, maximumDecay]`. The average is what gets saved and sampled from.
public final class ExponentialMovingAverage {
    public let average: FloatBuffer
    public var power: Float
    public var maximumDecay: Float

    public init(initial parameters: FloatBuffer, power: Float = 0.75, maximumDecay: Float = 0.9999) {
        average = FloatBuffer(count: parameters.count)
        average.copy(from: parameters)
        self.power = power
        self.maximumDecay = maximumDecay
    }

    public func decay(atStep step: Int) -> Float {
        let value = 1 - Float(Foundation.pow(1 + Double(step), -Double(power)))
        return min(max(value, 0), maximumDecay)
    }

    public func update(from parameters: FloatBuffer, step: Int, workers: Int = 1) {
        let d = decay(atStep: step)
        let (a, p, count) = (average.pointer, parameters.pointer, average.count)
        parallelFor(workers) { worker in
            let range = partition(count, into: workers, index: worker)
            forEachVector(count: range.count) { offset, lanes in
                let i = range.lowerBound + offset
                store(d * load(a + i, lanes) + (1 - d) * load(p + i, lanes), a + i, lanes)
            }
        }
    }
}

/// Linear warm-up to the base rate, then cosine decay to zero at `totalSteps` (diffusers' `cosine` schedule).
public struct CosineSchedule: Sendable {
    public var baseRate: Float
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(baseRate: Float, warmupSteps: Int, totalSteps: Int) {
        self.baseRate = baseRate
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    public func learningRate(atStep step: Int) -> Float {
        if step < warmupSteps { return baseRate * Float(step + 1) / Float(max(warmupSteps, 1)) }
        let progress = Double(step - warmupSteps) / Double(max(totalSteps - warmupSteps, 1))
        return baseRate * Float(0.5 * (1 + Foundation.cos(Double.pi * min(progress, 1))))
    }
}

/// Scales `gradients` so that their global L2 norm is at most `maximumNorm`; returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ gradients: FloatBuffer, maximumNorm: Float) -> Float {
    let g = gradients.pointer
    var squares = Float16x()
    forEachVector(count: gradients.count) { i, lanes in
        let v = load(g + i, lanes)
        squares += v * v
    }
    let norm = squares.sum().squareRoot()
    if norm > maximumNorm && norm.isFinite {
        let scale = maximumNorm / (norm + 1e-6)
        forEachVector(count: gradients.count) { i, lanes in store(load(g + i, lanes) * scale, g + i, lanes) }
    }
    return norm
}
