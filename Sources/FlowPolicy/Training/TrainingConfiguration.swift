import Foundation

/// Optimizer and schedule settings (METHODS.md section 1 defaults: AdamW lr 1e-4, weight decay 1e-6, cosine
/// schedule with 500 warm-up steps, EMA, batch 256).
public struct TrainingConfiguration: Codable, Equatable, Sendable {
    public var steps: Int = 20_000
    public var batchSize: Int = 256
    public var learningRate: Float = 1e-4
    public var weightDecay: Float = 1e-6
    public var warmupSteps: Int = 500
    public var beta1: Float = 0.95
    public var beta2: Float = 0.999
    public var gradientClipNorm: Float = 1
    public var emaPower: Float = 0.75
    public var emaMaximumDecay: Float = 0.9999
    /// σmin of the probability path.
    public var sigmaMin: Float = 0
    public var seed: UInt64 = 0
    /// Data-parallel workers: the batch is split across this many threads, each with single-threaded OpenBLAS.
    /// Results are bit-identical for the same seed, data and worker count.
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    public init() {}

    public func validate() throws(FlowPolicyError) {
        guard steps >= 1 else { throw .invalidConfiguration("steps must be at least 1, got \(steps)") }
        guard batchSize >= 1 else { throw .invalidConfiguration("batch size must be at least 1, got \(batchSize)") }
        guard learningRate > 0, learningRate.isFinite else {
            throw .invalidConfiguration("learning rate must be positive, got \(learningRate)")
        }
        guard (0..<1).contains(sigmaMin) else { throw .invalidConfiguration("sigma-min must be in [0, 1)") }
        guard threads >= 1 else { throw .invalidConfiguration("threads must be at least 1") }
    }
}
