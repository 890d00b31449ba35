// Dimensions: Da action dimensions; N servo ticks per control period; dt the servo period in seconds.

/// How the reference moves from one policy action to the next within a control period.
public enum ServoInterpolation: String, CaseIterable, Codable, Sendable {
    /// A straight line at constant speed, s(τ) = τ. The position is continuous, but the velocity jumps whenever the
    /// policy's actions change direction or speed, so under acceleration or jerk limits the limiter rounds the corners.
    case linear
    /// The minimum-jerk blend s(τ) = 10τ³ − 15τ⁴ + 6τ⁵: velocity and acceleration are zero at both ends of
    /// every segment, so consecutive segments join without a jump in either (deoxys' minimum-jerk interpolators).
    case minimumJerk = "min-jerk"

    /// The fraction s(τ) of the segment covered at the fraction τ ∈ [0, 1] of the control period.
    @inline(__always)
    public func progress(_ tau: Double) -> Double {
        switch self {
        case .linear: return tau
        case .minimumJerk: return tau * tau * tau * (10 + tau * (-15 + 6 * tau))
        }
    }
}

/// Per-dimension limits on the commanded signal's first, second and third time derivatives (task units per second,
/// per second², per second³), as a robot measures them: finite differences of consecutive commands over the servo
/// period. nil leaves that derivative unlimited in every dimension.
///
/// A value of this type is always valid: the initializer and the decoder refuse counts that disagree and values that
/// are not positive and finite, so the interpolator never meets a limit it cannot honour. The interpolator checks
/// the count against its action dimensions.
public struct ServoLimits: Codable, Equatable, Sendable {
    public let maximumVelocity: [Float]?  // [Da]
    public let maximumAcceleration: [Float]?  // [Da]
    public let maximumJerk: [Float]?  // [Da]

    public init(maximumVelocity: [Float]? = nil, maximumAcceleration: [Float]? = nil,
                maximumJerk: [Float]? = nil) throws(RuntimeError) {
        var first: (name: String, count: Int)?
        for (name, values) in [("maximum velocity", maximumVelocity), ("maximum acceleration", maximumAcceleration),
                               ("maximum jerk", maximumJerk)] {
            guard let values else { continue }
            guard !values.isEmpty else {
                throw RuntimeError.invalidConfiguration(
                    "the \(name) has no values; give one per action dimension, or none (nil) to leave it unlimited")
            }
            if let first, values.count != first.count {
                throw RuntimeError.invalidConfiguration(
                    "the \(name) has \(values.count) values but the \(first.name) has \(first.count); give one per "
                        + "action dimension")
            }
            first = first ?? (name, values.count)
            for (d, value) in values.enumerated() where !(value.isFinite && value > 0) {
                throw RuntimeError.invalidConfiguration(
                    "the \(name) of dimension \(d) must be a positive finite number (got \(value)); leave the whole "
                        + "limit out (nil) to leave that derivative unlimited")
            }
        }
        self.maximumVelocity = maximumVelocity
        self.maximumAcceleration = maximumAcceleration
        self.maximumJerk = maximumJerk
    }

    /// How many action dimensions the limits are for; nil when no limit is given (then they fit any).
    public var dimensions: Int? { (maximumVelocity ?? maximumAcceleration ?? maximumJerk)?.count }

    private enum CodingKeys: String, CodingKey {
        case maximumVelocity, maximumAcceleration, maximumJerk
    }

    /// Decodes and validates like `init`: a file cannot bring in a limit the initializer refuses.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            maximumVelocity: try container.decodeIfPresent([Float].self, forKey: .maximumVelocity),
            maximumAcceleration: try container.decodeIfPresent([Float].self, forKey: .maximumAcceleration),
            maximumJerk: try container.decodeIfPresent([Float].self, forKey: .maximumJerk))
    }
}

/// Commands a robot at its servo rate between the policy's actions: the control loop gives the policy's action for a
/// control period (`setTarget`), then asks for the command of each of the period's N servo ticks (`command`).
///
/// ```
/// control period : |<-------------- segment: previous target → target -------------->|
/// servo tick     :       0         1         2      ...      N-2         N-1
/// reference      :  s(1/N)    s(2/N)    s(3/N)      ...   s((N-1)/N)   s(1) = target
/// command        :  the reference, through the rate limiter
/// ```
/// Each command is the reference r = previous + s((tick + 1) / N) (target − previous) passed through a rate limiter
/// that keeps the commands' finite-difference velocity, acceleration and jerk within `ServoLimits`. A reference that
/// respects the limits passes through unchanged (bit for bit); one that does not (a step, a corner of the linear
/// interpolation, a policy faster than the arm) is followed as closely as the limits allow, without ever planning to
/// pass the reference: the command approaches a held target without overshooting it (in the tests it stays within
/// the span of the start and the targets to 1e-9; what is left is the gap between the continuous-time braking model
/// below and the discrete commands).
///
/// The rate limiter, per dimension, keeps the last command c, its velocity v and acceleration a (Double), the finite
/// differences a robot measures. Every command chooses the next acceleration a' and sets v' = v + a' dt,
/// c' = c + v' dt, so (c' − c) / dt = v', (v' − v) / dt = a' and (a' − a) / dt is the jerk. a' must satisfy:
/// 1. |a' − a| ≤ J dt (jerk);
/// 2. |a'| ≤ A;
/// 3. |v'| ≤ V, and it must stay possible: after a' > 0, ramping the acceleration down at the jerk limit
///    (a', a' − J dt, a' − 2 J dt, ... while positive) must keep the velocity at or below V, that is the peak
///    P(a') = v + dt Σ_{n ≥ 0, a' − n J dt > 0} (a' − n J dt) ≤ V; the mirror image for a' < 0 and −V.
/// These limits hold for every command, from any start, by induction: after reset or hold (v = a = 0) a' = 0 is
/// admissible, and whenever the previous choice a was admissible, so is moving a towards zero by J dt (the braking
/// choice `a − clamp(a, −J dt, J dt)`). For a > J dt it is a − J dt, its |·| ≤ |a| ≤ A and it is one jerk
/// step away, and the ramp-down sum telescopes: with v = v₋ + a dt (v₋ the velocity before the previous command),
///     P(a − J dt) = v + dt Σ_{n ≥ 0} (a − (n + 1) J dt)⁺
///                 = v₋ + dt Σ_{n ≥ 0} (a − n J dt)⁺ = P_previous(a) ≤ V,
/// while on the negative side the velocity only grows (v' ≥ v ≥ −V). For 0 ≤ a ≤ J dt it is 0, with P(0) = v
/// = v₋ + a dt = P_previous(a) ≤ V. a < 0 is the mirror image. So the admissible set is never empty.
///
/// Within the admissible set: the step to the reference itself (c' = r) when it is admissible, so a feasible
/// reference is never lagged; otherwise the acceleration after which braking as hard as the limits allow comes to
/// rest exactly at r (found by bisection: where the command would come to rest grows with a'), or the admissible
/// bound nearest to it. This is "never go faster than you can stop", with the stopping distance taken from the
/// current velocity *and acceleration* (the jerk-limited braking profile), not from the velocity alone: a chase that
/// ignores the acceleration already built up overshoots under a jerk limit, and oscillates around the target.
/// A limiter that has fallen off the reference lands on it again only when following the reference for the next two
/// ticks is admissible too, so it does not arrive at a target with a speed it cannot shed.
///
/// `setTarget`, `command` and `hold` allocate nothing. Not thread-safe: the control loop's thread owns it.
public final class ServoInterpolator {
    public let dimensions: Int
    public let ticksPerControlPeriod: Int
    public let servoPeriodSeconds: Double
    public let interpolation: ServoInterpolation
    public let limits: ServoLimits

    /// Commands in which the limiter changed at least one dimension (held periods are not counted).
    public private(set) var limitedCommands = 0

    private let Da: Int, N: Int, dt: Double
    private let dimensionLimits: UnsafeMutablePointer<DimensionLimits>  // [Da]
    /// Every Double buffer in one allocation, with the named views below.
    private let storage: UnsafeMutablePointer<Double>  // [11, Da]
    /// The current segment runs from `segmentStart` to `target`.
    private let segmentStart: UnsafeMutablePointer<Double>  // [Da]
    private let target: UnsafeMutablePointer<Double>  // [Da]
    /// The limiter: the last command and its velocity and acceleration (zeroed by `hold`).
    private let position: UnsafeMutablePointer<Double>  // [Da]
    private let velocity: UnsafeMutablePointer<Double>  // [Da]
    private let acceleration: UnsafeMutablePointer<Double>  // [Da]
    /// The figures: the commands' finite differences as a robot measures them (a hold shows as the stop it is).
    private let measuredPosition: UnsafeMutablePointer<Double>  // [Da]
    private let measuredVelocity: UnsafeMutablePointer<Double>  // [Da]
    private let measuredAcceleration: UnsafeMutablePointer<Double>  // [Da]
    private let largestMeasured: UnsafeMutablePointer<Double>  // [3, Da]: |velocity|, |acceleration|, |jerk|
    /// Whether the last command of each dimension was the reference itself (tracking) rather than a catch-up.
    private let onReference: UnsafeMutablePointer<Bool>  // [Da]
    private var phase = Phase.empty

    private enum Phase {
        /// No position known (after `reset(start: nil)`): nothing to command until the first target.
        case empty
        /// The command stays at `position` (after `hold`, or `reset(start:)` before the first target).
        case holding
        /// Following the segment `segmentStart` → `target`.
        case moving
    }

    public init(dimensions: Int, ticksPerControlPeriod: Int, servoPeriodSeconds: Double,
                interpolation: ServoInterpolation, limits: ServoLimits) throws(RuntimeError) {
        guard dimensions >= 1 else {
            throw RuntimeError.invalidConfiguration(
                "the interpolator needs at least one action dimension (got \(dimensions))")
        }
        if let limited = limits.dimensions, limited != dimensions {
            throw RuntimeError.invalidConfiguration(
                "the limits give \(limited) values each but the actions have \(dimensions) dimensions; give one "
                    + "limit per action dimension")
        }
        guard ticksPerControlPeriod >= 1 else {
            throw RuntimeError.invalidConfiguration(
                "ticks per control period must be at least 1 (got \(ticksPerControlPeriod)): the servo rate "
                    + "divided by the control rate, e.g. 1000 Hz / 10 Hz = 100")
        }
        guard servoPeriodSeconds.isFinite, servoPeriodSeconds > 0 else {
            throw RuntimeError.invalidConfiguration(
                "the servo period must be a positive number of seconds (got \(servoPeriodSeconds)), e.g. 0.001 "
                    + "for a 1 kHz servo rate")
        }
        self.dimensions = dimensions
        self.ticksPerControlPeriod = ticksPerControlPeriod
        self.servoPeriodSeconds = servoPeriodSeconds
        self.interpolation = interpolation
        self.limits = limits
        (Da, N, dt) = (dimensions, ticksPerControlPeriod, servoPeriodSeconds)

        dimensionLimits = .allocate(capacity: Da)
        for d in 0..<Da {
            dimensionLimits.advanced(by: d).initialize(to: DimensionLimits(
                velocity: limits.maximumVelocity.map { Double($0[d]) } ?? .infinity,
                acceleration: limits.maximumAcceleration.map { Double($0[d]) } ?? .infinity,
                jerk: limits.maximumJerk.map { Double($0[d]) } ?? .infinity,
                dt: servoPeriodSeconds))
        }
        storage = .allocate(capacity: 11 * Da)
        storage.initialize(repeating: 0, count: 11 * Da)
        segmentStart = storage
        target = storage + Da
        position = storage + 2 * Da
        velocity = storage + 3 * Da
        acceleration = storage + 4 * Da
        measuredPosition = storage + 5 * Da
        measuredVelocity = storage + 6 * Da
        measuredAcceleration = storage + 7 * Da
        largestMeasured = storage + 8 * Da  // rows 8, 9, 10
        onReference = .allocate(capacity: Da)
        onReference.initialize(repeating: true, count: Da)
    }

    deinit {
        dimensionLimits.deallocate()
        storage.deallocate()
        onReference.deallocate()
    }

    /// The largest |velocity|, |acceleration| and |jerk| of the commands so far, per dimension (`[Da]` each): finite
    /// differences of consecutive commands over the servo period, the robot taken to be at rest where each episode
    /// starts (`reset`). They cover the interpolator's whole life; a `hold` during motion shows here as the abrupt
    /// stop it is. Reading them allocates (an array); filling them does not.
    public var largestVelocity: [Double] { Array(UnsafeBufferPointer(start: largestMeasured, count: Da)) }
    public var largestAcceleration: [Double] { Array(UnsafeBufferPointer(start: largestMeasured + Da, count: Da)) }
    public var largestJerk: [Double] { Array(UnsafeBufferPointer(start: largestMeasured + 2 * Da, count: Da)) }

    /// Forgets everything (a new episode, a stop). With `start` (the robot's last applied action, `[Da]`), the
    /// commands hold there and the next `setTarget` starts its segment from it; without it (or if it is not finite)
    /// nothing is commanded until the next `setTarget`, whose first segment is constant at its target. Either way
    /// the robot is taken to be at rest there. The figures are kept.
    public func reset(start: UnsafePointer<Float>?) {
        onReference.update(repeating: true, count: Da)
        guard let start, (0..<Da).allSatisfy({ start[$0].isFinite }) else {
            phase = .empty
            return
        }
        for d in 0..<Da { startAtRest(d, at: Double(start[d])) }
        phase = .holding
    }

    /// The policy's action for the control period that begins now (`[Da]`). The segment runs from the previous
    /// target (or the last command, after a hold or a reset with a start) to this one over the period's N ticks.
    /// A non-finite action (which the safety filter already refuses) is not followed: the command holds, and the
    /// result is false.
    @discardableResult
    public func setTarget(_ action: UnsafePointer<Float>) -> Bool {
        for d in 0..<Da where !action[d].isFinite {
            hold()
            return false
        }
        switch phase {
        case .empty:
            for d in 0..<Da { startAtRest(d, at: Double(action[d])) }
            onReference.update(repeating: true, count: Da)
        case .holding:
            segmentStart.update(from: position, count: Da)
            onReference.update(repeating: true, count: Da)
        case .moving:
            segmentStart.update(from: target, count: Da)
        }
        for d in 0..<Da { target[d] = Double(action[d]) }
        phase = .moving
        return true
    }

    /// A held period: the command stays where it is, the limiter's velocity and acceleration become zero, and the
    /// next segment starts from the last command. A hold during motion is an instantaneous stop, which the robot
    /// measures as such (see the figures); it is meant for stops, not as a pause within smooth motion.
    public func hold() {
        guard phase != .empty else { return }
        velocity.update(repeating: 0, count: Da)
        acceleration.update(repeating: 0, count: Da)
        phase = .holding
    }

    /// The command for servo tick `tick` (0 ..< N) of the current segment, written to `command` (`[Da]`): the
    /// reference r = previous + s((tick + 1) / N) (target − previous), through the rate limiter; tick N − 1 reaches
    /// the target when the limits allow it. Call it once per servo period, in order: each call advances the limiter by
    /// one period. Returns false, writing nothing, when no position is known yet (after `reset(start: nil)`, before
    /// the first target).
    ///
    /// Rounding the command to Float adds up to 2u / dt, 4u / dt² and 8u / dt³ to the velocity, acceleration and jerk
    /// a robot measures (u: half a Float ulp of the command, 3.8e-6 at 100); the limits and the figures are those of
    /// the Double commands, which a link that carries Double gets from the other overload.
    @discardableResult
    public func command(tick: Int, into command: UnsafeMutablePointer<Float>) -> Bool {
        guard advance(tick: tick) else { return false }
        for d in 0..<Da { command[d] = Float(position[d]) }
        return true
    }

    /// The command for servo tick `tick` in Double (`[Da]`), unrounded; as `command(tick:into:)` for Float.
    @discardableResult
    public func command(tick: Int, into command: UnsafeMutablePointer<Double>) -> Bool {
        guard advance(tick: tick) else { return false }
        command.update(from: position, count: Da)
        return true
    }

    /// Puts dimension `d` at rest at `value`, also for the figures.
    private func startAtRest(_ d: Int, at value: Double) {
        (position[d], velocity[d], acceleration[d]) = (value, 0, 0)
        (segmentStart[d], target[d]) = (value, value)
        (measuredPosition[d], measuredVelocity[d], measuredAcceleration[d]) = (value, 0, 0)
    }

    /// One servo period: the next command into `position`, then the figures.
    private func advance(tick: Int) -> Bool {
        precondition(tick >= 0 && tick < N, "servo tick \(tick) is outside the control period's ticks 0 ..< \(N)")
        switch phase {
        case .empty:
            return false
        case .holding:
            break
        case .moving:
            // The reference at this tick and the next two (past the segment's end: the target, held).
            let progress = referenceProgress(tick)
            let nextProgress = referenceProgress(tick + 1)
            let afterNextProgress = referenceProgress(tick + 2)
            var changed = false
            for d in 0..<Da {
                let start = segmentStart[d], span = target[d] - start
                let reference = progress.map { start + $0 * span } ?? target[d]
                let next = nextProgress.map { start + $0 * span } ?? target[d]
                let afterNext = afterNextProgress.map { start + $0 * span } ?? target[d]
                if !step(d, reference: reference, next: next, afterNext: afterNext) { changed = true }
            }
            if changed { limitedCommands += 1 }
        }
        measure()
        return true
    }

    /// s((tick + 1) / N) for the reference at `tick`, or nil from tick N − 1 on, where the reference is the target
    /// itself (exactly, not previous + 1 · (target − previous)).
    @inline(__always)
    private func referenceProgress(_ tick: Int) -> Double? {
        tick < N - 1 ? interpolation.progress(Double(tick + 1) / Double(N)) : nil
    }

    /// Advances dimension `d` by one servo period towards `reference`; `next` and `afterNext` are the references of
    /// the two periods after it. Returns whether the command is the reference itself.
    @inline(__always)
    private func step(_ d: Int, reference: Double, next: Double, afterNext: Double) -> Bool {
        let limit = dimensionLimits[d]
        let (c, v, a) = (position[d], velocity[d], acceleration[d])
        if let onto = limit.referenceStep(from: c, velocity: v, acceleration: a, to: reference) {
            // While on the reference, follow it whenever the limits allow. Off it, land only if the next two
            // reference steps are admissible from there too: arriving on a held target with a speed the limits cannot
            // shed in time would carry the command past it.
            var lands = onReference[d]
            if !lands, let then = limit.referenceStep(
                from: reference, velocity: onto.velocity, acceleration: onto.acceleration, to: next) {
                lands = limit.referenceStep(
                    from: next, velocity: then.velocity, acceleration: then.acceleration, to: afterNext) != nil
            }
            if lands {
                (position[d], velocity[d], acceleration[d]) = (reference, onto.velocity, onto.acceleration)
                onReference[d] = true
                return true
            }
        }
        onReference[d] = false
        let chosen = limit.trackingAcceleration(position: c, velocity: v, acceleration: a, reference: reference)
        let newPosition = c + (v + chosen * dt) * dt
        // The state is re-derived from the command itself, so it is exactly what a robot measures and rounding in
        // c + v dt cannot build up between the limiter's view and the commands.
        let newVelocity = (newPosition - c) / dt
        (position[d], velocity[d], acceleration[d]) = (newPosition, newVelocity, (newVelocity - v) / dt)
        return false
    }

    /// Updates the figures with the command in `position`.
    private func measure() {
        for d in 0..<Da {
            let measured = (position[d] - measuredPosition[d]) / dt
            let change = (measured - measuredVelocity[d]) / dt
            let jerk = (change - measuredAcceleration[d]) / dt
            largestMeasured[d] = max(largestMeasured[d], abs(measured))
            largestMeasured[Da + d] = max(largestMeasured[Da + d], abs(change))
            largestMeasured[2 * Da + d] = max(largestMeasured[2 * Da + d], abs(jerk))
            (measuredPosition[d], measuredVelocity[d], measuredAcceleration[d]) = (position[d], measured, change)
        }
    }
}

/// One dimension's limits as the rate limiter uses them, in Double, +infinity where unlimited, and the rules 1–3 of
/// `ServoInterpolator` on them. Pure functions of the state: no memory, no allocation.
struct DimensionLimits {
    /// V, A, J.
    let velocity: Double
    let acceleration: Double
    let jerk: Double
    let dt: Double
    /// J dt: the largest change of the acceleration in one servo period.
    let accelerationStep: Double

    /// Bisection steps for the tracking acceleration: the admissible interval is at most 2 J dt (or 2A, or 2V / dt)
    /// wide, and 2⁻⁴⁸ of it is far below anything a robot can resolve. The bisection also stops when the interval
    /// cannot be halved any more.
    static let bisectionSteps = 48

    init(velocity: Double, acceleration: Double, jerk: Double, dt: Double) {
        self.velocity = velocity
        self.acceleration = acceleration
        self.jerk = jerk
        self.dt = dt
        accelerationStep = jerk * dt
    }

    /// The accelerations admissible for the next command from velocity v and acceleration a (rules 1–3).
    @inline(__always)
    func admissibleAccelerations(velocity v: Double, acceleration a: Double) -> (lower: Double, upper: Double) {
        let upper = min(a + accelerationStep, acceleration, largestAcceleration(velocity: v))
        let lower = max(a - accelerationStep, -acceleration, -largestAcceleration(velocity: -v))
        guard lower <= upper else {
            // Only rounding gets here (after an admissible choice the braking one is admissible; see
            // `ServoInterpolator`): brake.
            let braking = a - min(max(a, -accelerationStep), accelerationStep)
            let clamped = min(max(braking, -acceleration), acceleration)
            return (clamped, clamped)
        }
        return (lower, upper)
    }

    /// Rule 3, positive side: the largest next acceleration x after which ramping the acceleration down at the jerk
    /// limit keeps the velocity at or below V. The peak velocity of that ramp is
    ///     P(x) = v + dt Σ_{n = 0 ..< K} (x − n δ) = v + dt (K x − δ K (K − 1) / 2),
    ///     δ = J dt, K = ⌈x / δ⌉,
    /// continuous and piecewise linear with slope K dt, so increasing; on ((K − 1) δ, K δ] it is solved in closed
    /// form for the K where P crosses V, the smallest K with δ K (K + 1) / 2 ≥ S = (V − v) / dt. For x ≤ 0 the
    /// velocity peaks at the next command, v + x dt ≤ V, so x ≤ S; the same without a jerk limit (the acceleration
    /// can drop to zero at once).
    @inline(__always)
    func largestAcceleration(velocity v: Double) -> Double {
        guard velocity.isFinite else { return .infinity }
        let allowedSum = (velocity - v) / dt  // S
        guard allowedSum > 0, accelerationStep.isFinite else { return allowedSum }
        let step = accelerationStep  // δ
        // K, the number of positive terms: K (K + 1) ≥ 2S / δ. The square root gives it up to rounding, which the
        // two bounded corrections remove.
        var terms = max(1, (((1 + 8 * allowedSum / step).squareRoot() - 1) / 2).rounded(.up))
        for _ in 0..<4 where step * terms * (terms + 1) / 2 < allowedSum { terms += 1 }
        for _ in 0..<4 where terms > 1 && step * (terms - 1) * terms / 2 >= allowedSum { terms -= 1 }
        return (allowedSum + step * terms * (terms - 1) / 2) / terms
    }

    /// The velocity and acceleration of the step from (c, v, a) to exactly `reference` in one period, if that step
    /// is admissible.
    @inline(__always)
    func referenceStep(from c: Double, velocity v: Double, acceleration a: Double, to reference: Double)
        -> (velocity: Double, acceleration: Double)? {
        let stepVelocity = (reference - c) / dt
        let stepAcceleration = (stepVelocity - v) / dt
        let (lower, upper) = admissibleAccelerations(velocity: v, acceleration: a)
        guard lower <= stepAcceleration && stepAcceleration <= upper else { return nil }
        return (stepVelocity, stepAcceleration)
    }

    /// The admissible next acceleration that heads for `reference` as fast as it can while still able to stop there:
    /// the one after which braking as hard as the limits allow comes to rest at the reference, or the admissible
    /// bound nearest to it. Where the command comes to rest grows with the acceleration chosen now, so bisection
    /// finds it; of the final interval the lower end is taken, which never plans past the reference.
    func trackingAcceleration(position c: Double, velocity v: Double, acceleration a: Double, reference: Double)
        -> Double {
        let (lower, upper) = admissibleAccelerations(velocity: v, acceleration: a)
        func restingBeyondReference(_ x: Double) -> Double {
            let nextVelocity = v + x * dt
            return c + nextVelocity * dt + stopDisplacement(velocity: nextVelocity, acceleration: x) - reference
        }
        if restingBeyondReference(upper) <= 0 { return upper }
        if restingBeyondReference(lower) >= 0 { return lower }
        var (below, above) = (lower, upper)  // resting short of the reference, resting past it
        for _ in 0..<Self.bisectionSteps {
            let middle = 0.5 * (below + above)
            guard middle > below && middle < above else { break }
            if restingBeyondReference(middle) <= 0 { below = middle } else { above = middle }
        }
        return below
    }

    /// How far the command moves from velocity v0 and acceleration a0 until it is at rest (v = a = 0), braking as
    /// hard as the limits allow; signed.
    ///
    /// With a jerk limit, in continuous time: if ramping the acceleration to zero at the jerk limit would leave a
    /// positive velocity (`residual` > 0), the acceleration ramps down to −p, stays at −A if p reaches A, and ramps
    /// back to zero as the velocity reaches zero, with p from v0 + (a0² − p²) / 2J − p² / 2J − A t_A = 0; a
    /// negative residual is the mirror image. Without one, the acceleration jumps to −A: this case uses the discrete
    /// update itself (m = ⌊|v0| / (A dt)⌋ periods of v0 − k A dt, then a last period, within A dt, that stops),
    /// since the continuous v0² / 2A differs from it by a fraction of a period that an unlimited jerk turns into
    /// overshoot. Without jerk and acceleration limits the command stops at once.
    @inline(__always)
    func stopDisplacement(velocity v0: Double, acceleration a0: Double) -> Double {
        guard accelerationStep.isFinite else {
            guard acceleration.isFinite else { return 0 }
            let speed = abs(v0)
            let periods = (speed / (acceleration * dt)).rounded(.down)
            let distance = dt * (periods * speed - acceleration * dt * periods * (periods + 1) / 2)
            return v0 < 0 ? -distance : distance
        }
        let residual = v0 + a0 * abs(a0) / (2 * jerk)
        let sign: Double = residual < 0 ? -1 : 1
        let (v, a) = (sign * v0, sign * a0)
        var peak = max(0, jerk * v + a * a / 2).squareRoot()  // p
        var heldFor = 0.0  // t_A
        if peak > acceleration {
            peak = acceleration
            heldFor = max(0, (v + a * a / (2 * jerk) - acceleration * acceleration / jerk) / acceleration)
        }
        var motion = (distance: 0.0, velocity: v, acceleration: a)
        motion = Self.constantJerk(motion, jerk: -jerk, duration: (a + peak) / jerk)
        motion = Self.constantJerk(motion, jerk: 0, duration: heldFor)
        motion = Self.constantJerk(motion, jerk: jerk, duration: peak / jerk)
        return sign * motion.distance
    }

    /// `motion` after `duration` seconds of constant `jerk`.
    @inline(__always)
    static func constantJerk(_ motion: (distance: Double, velocity: Double, acceleration: Double), jerk: Double,
                             duration t: Double) -> (distance: Double, velocity: Double, acceleration: Double) {
        (motion.distance + motion.velocity * t + motion.acceleration * t * t / 2 + jerk * t * t * t / 6,
         motion.velocity + motion.acceleration * t + jerk * t * t / 2,
         motion.acceleration + jerk * t)
    }
}
