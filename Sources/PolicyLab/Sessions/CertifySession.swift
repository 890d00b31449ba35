import FlowPolicy
import PolicyRuntime
import Foundation
import SimBridge

/// `flowpolicy certify`: contraction analysis of a policy's sampling flow on observation windows the policy meets in
/// a task (METHODS.md section 3).
///
/// Windows come from running the policy (receding horizon, the deployed solver) in the task's evaluation episodes.
/// For each window a latent z ~ N(0, I) is drawn and the deployed sampler's trajectory followed; at every solver step
/// `(t_k, x_k)` the estimated contraction rate of the combined field is
/// `μ = λ_max(sym J_base(t_k, x_k, o)) - λ_min guaranteed by the head` (power iteration on Jacobian-vector products;
/// the head's guarantee is the smallest `softplus(d) + ε`, 0 without a head): negative means contracting. The
/// empirical disturbance gains are `|Φ(z + δz) - Φ(z)| / |δz|` and `|Φ(z; o + δo) - Φ(z; o)| / |δo|` with the
/// whole field and the deployed solver, in normalized units.
public enum CertifySession {
    public struct Options: Sendable {
        public var checkpointPath: String
        public var task: TaskDescription
        public var windows = 32
        public var episodes = 8
        public var method = SolverMethod.euler
        public var steps = 4
        public var perturbation: Float = 1e-2
        public var seed: UInt64 = 0

        public init(checkpointPath: String, task: TaskDescription) {
            self.checkpointPath = checkpointPath
            self.task = task
        }
    }

    public struct Report: Codable, Sendable {
        public var checkpoint: String
        public var method: String
        public var task: String
        public var solver: String
        public var windows: Int
        /// Per solver step k (t_k = k/K): mean λ_max(sym J_base), mean guaranteed head rate, mean μ.
        public var baseExpansionByStep: [Float]
        public var headRateByStep: [Float]
        public var contractionRateByStep: [Float]
        public var meanContractionRate: Float
        public var largestContractionRate: Float
        /// Share of trajectory points where μ < 0.
        public var contractingShare: Float
        public var latentGain: MeanEstimate
        public var observationGain: MeanEstimate
        public var seconds: Double
    }

    public static func run(_ options: Options) throws -> Report {
        let start = monotonicSeconds()
        let checkpoint = try CheckpointReader.read(options.checkpointPath)
        guard checkpoint.spec.cameras.isEmpty else {
            throw FlowPolicyError.incompatible(
                path: options.checkpointPath, message: "this policy sees \(checkpoint.spec.cameras.shapeDescription); "
                    + "the certificate takes low-dimensional policies only, for now")
        }
        let windows = try observationWindows(checkpoint: checkpoint, options: options)
        let K = options.steps
        var expansion = [[Float]](repeating: [], count: K)
        var rates = [[Float]](repeating: [], count: K)
        var latentGains: [Double] = []
        var observationGains: [Double] = []
        var generator = RandomSource(seed: options.seed)
        let progress = ProgressBar(title: "certify", total: windows.count, unit: "window")
        for (index, window) in windows.enumerated() {
            let whole = PolicyJacobianField(checkpoint: checkpoint, observation: window)
            let base = PolicyJacobianField(checkpoint: checkpoint, observation: window, includeHead: false)
            let z = (0..<whole.dimensions).map { _ in generator.nextGaussian() }
            // Follow the deployed sampler's states.
            var x = z
            for k in 0..<K {
                let t = Float(k) / Float(K)
                expansion[k].append(base.largestSymmetricEigenvalue(t: t, x: x, seed: UInt64(index * K + k)))
                rates[k].append(whole.guaranteedRate(t: t))
                x = integrateOneStep(whole, x: x, t: t, h: 1 / Float(K), method: options.method)
            }
            latentGains.append(Double(disturbanceGain(whole, at: z, method: options.method, steps: K,
                                                      size: options.perturbation, seed: options.seed &+ UInt64(index))))
            var direction = window.map { _ in generator.nextGaussian() }
            let norm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
            direction = direction.map { options.perturbation * $0 / norm }
            let moved = PolicyJacobianField(checkpoint: checkpoint, observation: zip(window, direction).map(+))
            let reference = integrate(whole, from: z, method: options.method, steps: K)
            let perturbed = integrate(moved, from: z, method: options.method, steps: K)
            let deviation = zip(perturbed, reference).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                .squareRoot()
            observationGains.append(Double(deviation / options.perturbation))
            progress.update(completed: index + 1)
        }
        progress.finish()
        let mean = { (values: [Float]) in values.reduce(0, +) / Float(max(values.count, 1)) }
        let contraction = zip(expansion, rates).map { pair in zip(pair.0, pair.1).map { $0 - $1 } }
        let all = contraction.flatMap { $0 }
        return Report(
            checkpoint: options.checkpointPath, method: checkpoint.method, task: options.task.name,
            solver: "\(options.method.rawValue) K=\(K)", windows: windows.count,
            baseExpansionByStep: expansion.map(mean), headRateByStep: rates.map(mean),
            contractionRateByStep: contraction.map(mean), meanContractionRate: mean(all),
            largestContractionRate: all.max() ?? .nan,
            contractingShare: Float(all.filter { $0 < 0 }.count) / Float(max(all.count, 1)),
            latentGain: MeanEstimate(latentGains), observationGain: MeanEstimate(observationGains),
            seconds: monotonicSeconds() - start)
    }

    static func integrateOneStep(_ field: some JacobianField, x: [Float], t: Float, h: Float,
                                 method: SolverMethod) -> [Float] {
        switch method {
        case .euler:
            return zip(x, field.value(t: t, x: x)).map { $0 + h * $1 }
        case .midpoint:
            let k1 = field.value(t: t, x: x)
            let k2 = field.value(t: t + h / 2, x: zip(x, k1).map { $0 + h / 2 * $1 })
            return zip(x, k2).map { $0 + h * $1 }
        case .rk4:
            let k1 = field.value(t: t, x: x)
            let k2 = field.value(t: t + h / 2, x: zip(x, k1).map { $0 + h / 2 * $1 })
            let k3 = field.value(t: t + h / 2, x: zip(x, k2).map { $0 + h / 2 * $1 })
            let k4 = field.value(t: t + h, x: zip(x, k3).map { $0 + h * $1 })
            return (0..<x.count).map { x[$0] + h / 6 * (k1[$0] + 2 * k2[$0] + 2 * k3[$0] + k4[$0]) }
        }
    }

    /// Normalized observation windows the policy meets: `episodes` evaluation episodes, a window at every replan,
    /// spread evenly to `windows` in all.
    static func observationWindows(checkpoint: Checkpoint, options: Options) throws -> [[Float]] {
        let rollout = try Rollout(task: options.task)
        let spec = checkpoint.spec
        guard rollout.specification.observationDimensions == spec.observationDimensions,
              rollout.specification.actionDimensions == spec.actionDimensions
        else {
            throw FlowPolicyError.incompatible(
                path: options.checkpointPath,
                message: "the checkpoint's dimensions do not match task \(options.task.name)")
        }
        let policy = Policy(checkpoint: checkpoint, capacity: 1, method: options.method, steps: options.steps,
                            seed: options.seed)
        let perEpisode = max(1, (options.windows + options.episodes - 1) / max(options.episodes, 1))
        var windows: [[Float]] = []
        for episode in 0..<options.episodes where windows.count < options.windows {
            var window = ObservationWindow(steps: spec.observationSteps, dimensions: spec.observationDimensions)
            try rollout.reset(seed: options.task.evaluationSeed + UInt64(episode))
            window.reset(to: rollout.observation)
            var collected = 0
            episodeLoop: while collected < perEpisode && windows.count < options.windows {
                let normalized = checkpoint.observationNormalizer.normalized(window.values)
                windows.append(normalized)
                collected += 1
                let (action, _) = policy.predictAction(observations: window.values)
                for k in 0..<spec.actionSteps {
                    let stepped = action.withUnsafeBufferPointer {
                        rollout.step($0.baseAddress! + k * spec.actionDimensions)
                    }
                    guard stepped != nil else { break episodeLoop }
                    window.push(rollout.observation)
                    if rollout.isDone { break episodeLoop }
                }
            }
        }
        return windows
    }
}
