import Foundation

/// robosuite's OSC_POSE controller (its default for the Panda), computed from MuJoCo's Jacobians and mass matrix.
///
/// Per policy step, `setGoal(delta:)` turns a 6-D action in [-1, 1] (clipped) into a pose goal in the base frame:
/// the delta is scaled to ±`maximumTranslation` m and ±`maximumRotation` rad (axis-angle) and applied to the pose the
/// end-effector site *has* (robosuite's "achieved" goal update): `goal_pos = base⁻¹(p) + Δp`,
/// `goal_R = R(Δω) · base_Rᵀ R`. Every physics step, after `Data.step1()`, `computeTorques()` writes the arm
/// torques:
///
///     F = kp (p_goal - p) - kd v          τ_ori = kp e_R - kd ω        (kd = 2 √kp · damping ratio)
///     τ = Jpᵀ Λp F + Jrᵀ Λr τ_ori + bias + Nᵀ M (kn (q0 - q) - 2 √kn q̇)
///
/// with `Λp = (Jp M⁻¹ Jpᵀ)⁻¹`, `Λr = (Jr M⁻¹ Jrᵀ)⁻¹` (position and orientation uncoupled),
/// `e_R = ½ Σ rᵢ × r_goal,ᵢ` over the columns of the rotation matrices, `N = I - M⁻¹ Jᵀ Λ J` with
/// `Λ = (J M⁻¹ Jᵀ)⁻¹` (null space), the null-space posture gain `kn = 10` towards the joints at reset `q0`,
/// `bias` MuJoCo's `qfrc_bias` (gravity and Coriolis), and `M` the arm's block of the joint-space mass matrix. Torques
/// are clipped to the actuators' control ranges.
///
/// No allocation after `init`: every matrix lives in one buffer allocated once.
public final class OperationalSpaceController {
    /// Dimension letters: `A` arm joints (7), `V` model dofs (`nv`).
    public let data: Data
    public let kp: Double
    public let kd: Double
    public let nullSpaceKp: Double
    public let maximumTranslation: Double
    public let maximumRotation: Double

    let site: Int
    let baseSite: Int
    let dofs: [Int]  // [A] dof index of each arm joint
    let qposAddresses: [Int]  // [A]
    let actuators: [Int]  // [A] torque actuator of each arm joint
    let torqueLow: [Double]  // [A]
    let torqueHigh: [Double]  // [A]
    let A: Int
    let V: Int

    /// The goal in the base frame.
    public private(set) var goalPosition = SIMD3<Double>(0, 0, 0)
    public private(set) var goalOrientation = [Double](repeating: 0, count: 9)  // [3, 3] row-major
    /// The joint posture the null-space term pulls towards (the arm's joints at `reset()`).
    public private(set) var initialJoints: [Double]

    // Work buffers, views into one allocation.
    private let storage: UnsafeMutablePointer<Double>
    private let jacobianPosition: UnsafeMutablePointer<Double>  // [3, V]
    private let jacobianRotation: UnsafeMutablePointer<Double>  // [3, V]
    private let fullMass: UnsafeMutablePointer<Double>  // [V, V]
    private let jacobian: UnsafeMutablePointer<Double>  // [6, A]: rows 0-2 position, 3-5 rotation
    private let mass: UnsafeMutablePointer<Double>  // [A, A]
    private let massInverse: UnsafeMutablePointer<Double>  // [A, A]
    private let jacobianMassInverse: UnsafeMutablePointer<Double>  // [6, A]: J M⁻¹
    private let lambdaFull: UnsafeMutablePointer<Double>  // [6, 6]
    private let lambdaPosition: UnsafeMutablePointer<Double>  // [3, 3]
    private let lambdaRotation: UnsafeMutablePointer<Double>  // [3, 3]
    private let scratch: UnsafeMutablePointer<Double>  // [2 * A * A]: inversion workspace
    private let vectorA: UnsafeMutablePointer<Double>  // [A]
    private let vectorB: UnsafeMutablePointer<Double>  // [A]
    private let torques: UnsafeMutablePointer<Double>  // [A]
    private let storageCount: Int

    /// - Parameters:
    ///   - site: the controlled site (robosuite: the gripper's `grip_site`).
    ///   - baseSite: the site whose frame is the input frame (robosuite: the arm's `right_center` on `link0`).
    ///   - joints: the arm's hinge joints, each driven by the torque actuator in `actuators` at the same index.
    public init(
        data: Data, site: Int, baseSite: Int, joints: [Int], actuators: [Int], kp: Double = 150,
        dampingRatio: Double = 1, nullSpaceKp: Double = 10, maximumTranslation: Double = 0.05,
        maximumRotation: Double = 0.5
    ) {
        precondition(joints.count == actuators.count && !joints.isEmpty, "one actuator per joint")
        let model = data.model
        self.data = data
        self.site = site
        self.baseSite = baseSite
        dofs = joints.map { model.jointDofAddress($0) }
        qposAddresses = joints.map { model.jointQposAddress($0) }
        self.actuators = actuators
        torqueLow = actuators.map { model.actuatorControlRange($0)?.lowerBound ?? -Double.infinity }
        torqueHigh = actuators.map { model.actuatorControlRange($0)?.upperBound ?? Double.infinity }
        self.kp = kp
        kd = 2 * kp.squareRoot() * dampingRatio
        self.nullSpaceKp = nullSpaceKp
        self.maximumTranslation = maximumTranslation
        self.maximumRotation = maximumRotation
        A = joints.count
        V = model.nv
        initialJoints = [Double](repeating: 0, count: joints.count)
        let sizes = [3 * V, 3 * V, V * V, 6 * A, A * A, A * A, 6 * A, 36, 9, 9, 2 * A * A + 72, A, A, A]
        storageCount = sizes.reduce(0, +)
        storage = .allocate(capacity: storageCount)
        storage.initialize(repeating: 0, count: storageCount)
        var next = storage
        func take(_ count: Int) -> UnsafeMutablePointer<Double> {
            defer { next += count }
            return next
        }
        jacobianPosition = take(sizes[0])
        jacobianRotation = take(sizes[1])
        fullMass = take(sizes[2])
        jacobian = take(sizes[3])
        mass = take(sizes[4])
        massInverse = take(sizes[5])
        jacobianMassInverse = take(sizes[6])
        lambdaFull = take(sizes[7])
        lambdaPosition = take(sizes[8])
        lambdaRotation = take(sizes[9])
        scratch = take(sizes[10])
        vectorA = take(sizes[11])
        vectorB = take(sizes[12])
        torques = take(sizes[13])
    }

    deinit {
        storage.deallocate()
    }

    // MARK: Poses

    /// The controlled site's position, world frame.
    public var sitePosition: SIMD3<Double> { data.sitePosition(site) }

    /// The controlled site's rotation matrix, world frame, row-major.
    func siteRotation(_ site: Int) -> (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>) {
        data.withSiteXmat { m in
            let o = 9 * site
            return (SIMD3(m[o], m[o + 1], m[o + 2]), SIMD3(m[o + 3], m[o + 4], m[o + 5]),
                    SIMD3(m[o + 6], m[o + 7], m[o + 8]))
        }
    }

    /// Forgets the goal: the goal becomes the current pose, and the null-space posture the current joints. Needs
    /// kinematics of the current state (after `forward()`).
    public func reset() {
        data.withQpos { qpos in
            for i in 0..<A { initialJoints[i] = qpos[qposAddresses[i]] }
        }
        setGoal(translation: .zero, rotation: .zero)
    }

    /// Restores a goal and posture saved from `goalPosition`, `goalOrientation` and `initialJoints`.
    public func restore(goalOrientation: [Double], goalPosition: SIMD3<Double>, initialJoints: [Double]) {
        precondition(goalOrientation.count == 9 && initialJoints.count == A, "a goal of another controller")
        for i in 0..<9 { self.goalOrientation[i] = goalOrientation[i] }
        for i in 0..<A { self.initialJoints[i] = initialJoints[i] }
        self.goalPosition = goalPosition
    }

    /// Sets the goal from an action's six arm components in [-1, 1] (clipped): delta position and delta axis-angle in
    /// the base frame, scaled by the output limits. Uses the kinematics of the last `step1()` / `forward()`.
    public func setGoal(delta: UnsafePointer<Float>) {
        func scaled(_ i: Int, _ limit: Double) -> Double { Double(min(max(delta[i], -1), 1)) * limit }
        setGoal(
            translation: SIMD3(
                scaled(0, maximumTranslation), scaled(1, maximumTranslation), scaled(2, maximumTranslation)),
            rotation: SIMD3(scaled(3, maximumRotation), scaled(4, maximumRotation), scaled(5, maximumRotation)))
    }

    /// Sets the goal to the achieved pose moved by `translation` (m) and rotated by `rotation` (axis-angle, rad), both
    /// in the base frame.
    public func setGoal(translation: SIMD3<Double>, rotation: SIMD3<Double>) {
        let base = data.sitePosition(baseSite)
        let (b0, b1, b2) = siteRotation(baseSite)  // rows of base_R
        let p = data.sitePosition(site) - base
        goalPosition = b0 * p.x + b1 * p.y + b2 * p.z + translation  // base_Rᵀ p + Δp
        // Rows of base_Rᵀ R: row i = Σ_k base_R[k][i] R[k].
        let (r0, r1, r2) = siteRotation(site)
        let l0 = b0.x * r0 + b1.x * r1 + b2.x * r2
        let l1 = b0.y * r0 + b1.y * r1 + b2.y * r2
        let l2 = b0.z * r0 + b1.z * r1 + b2.z * r2
        let (d0, d1, d2) = Self.rotationMatrix(axisAngle: rotation)
        func setRow(_ i: Int, _ d: SIMD3<Double>) {
            let row = d.x * l0 + d.y * l1 + d.z * l2
            goalOrientation[3 * i] = row.x
            goalOrientation[3 * i + 1] = row.y
            goalOrientation[3 * i + 2] = row.z
        }
        setRow(0, d0)
        setRow(1, d1)
        setRow(2, d2)
    }

    /// Rows of the rotation matrix of an axis-angle vector (robosuite's `axisangle2quat` then `quat2mat`).
    static func rotationMatrix(axisAngle v: SIMD3<Double>) -> (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>) {
        let angle = (v * v).sum().squareRoot()
        guard angle > 1e-12 else { return (SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1)) }
        let axis = v / angle
        let (s, c) = (sin(angle), cos(angle))
        let t = 1 - c
        let (x, y, z) = (axis.x, axis.y, axis.z)
        return (
            SIMD3(t * x * x + c, t * x * y - s * z, t * x * z + s * y),
            SIMD3(t * x * y + s * z, t * y * y + c, t * y * z - s * x),
            SIMD3(t * x * z - s * y, t * y * z + s * x, t * z * z + c)
        )
    }

    // MARK: Torques

    /// Computes the arm torques for the current state and writes them to the arm actuators' controls. Call after
    /// `Data.step1()` and before `Data.step2()`.
    public func computeTorques() throws {
        let A = self.A
        let V = self.V
        try data.siteJacobian(
            site, translation: UnsafeMutableBufferPointer(start: jacobianPosition, count: 3 * V),
            rotation: UnsafeMutableBufferPointer(start: jacobianRotation, count: 3 * V))
        data.fullMassMatrix(into: UnsafeMutableBufferPointer(start: fullMass, count: V * V))
        for r in 0..<3 {
            for a in 0..<A {
                jacobian[r * A + a] = jacobianPosition[r * V + dofs[a]]
                jacobian[(r + 3) * A + a] = jacobianRotation[r * V + dofs[a]]
            }
        }
        for i in 0..<A {
            for j in 0..<A { mass[i * A + j] = fullMass[dofs[i] * V + dofs[j]] }
        }
        guard Self.invert(mass, into: massInverse, n: A, scratch: scratch) else {
            throw EnvironmentError.invalidState("the arm's mass matrix is singular")
        }
        // J M⁻¹ [6, A]
        for r in 0..<6 {
            for j in 0..<A {
                var sum = 0.0
                for k in 0..<A { sum += jacobian[r * A + k] * massInverse[k * A + j] }
                jacobianMassInverse[r * A + j] = sum
            }
        }
        // Λ⁻¹ = J M⁻¹ Jᵀ [6, 6]; the position and rotation blocks give Λp⁻¹, Λr⁻¹.
        let full = scratch + 2 * A * A  // [6, 6] then [3, 3] x 2
        for r in 0..<6 {
            for c in 0..<6 {
                var sum = 0.0
                for k in 0..<A { sum += jacobianMassInverse[r * A + k] * jacobian[c * A + k] }
                full[r * 6 + c] = sum
            }
        }
        let blockPosition = full + 36
        let blockRotation = full + 45
        for r in 0..<3 {
            for c in 0..<3 {
                blockPosition[r * 3 + c] = full[r * 6 + c]
                blockRotation[r * 3 + c] = full[(r + 3) * 6 + c + 3]
            }
        }
        guard Self.invert(full, into: lambdaFull, n: 6, scratch: scratch),
              Self.invert(blockPosition, into: lambdaPosition, n: 3, scratch: scratch),
              Self.invert(blockRotation, into: lambdaRotation, n: 3, scratch: scratch)
        else {
            throw EnvironmentError.invalidState("the end-effector Jacobian is singular (arm at a singular pose)")
        }

        // Errors and velocities.
        let p = data.sitePosition(site)
        let base = data.sitePosition(baseSite)
        let (b0, b1, b2) = siteRotation(baseSite)
        // world goal = base + base_R goal (base_R rows b0, b1, b2)
        let goalWorld = base + SIMD3((b0 * goalPosition).sum(), (b1 * goalPosition).sum(), (b2 * goalPosition).sum())
        var velocity = SIMD3<Double>.zero
        var angularVelocity = SIMD3<Double>.zero
        data.withQvel { qvel in
            for r in 0..<3 {
                var linear = 0.0
                var angular = 0.0
                for a in 0..<A {
                    linear += jacobian[r * A + a] * qvel[dofs[a]]
                    angular += jacobian[(r + 3) * A + a] * qvel[dofs[a]]
                }
                velocity[r] = linear
                angularVelocity[r] = angular
            }
        }
        // Desired world orientation = base_R goal_R; column j of it, crossed with column j of R.
        let (r0, r1, r2) = siteRotation(site)
        var orientationError = SIMD3<Double>.zero
        for j in 0..<3 {
            // goal column j in base frame
            let g = SIMD3(goalOrientation[j], goalOrientation[3 + j], goalOrientation[6 + j])
            let desired = SIMD3((b0 * g).sum(), (b1 * g).sum(), (b2 * g).sum())
            let current = SIMD3(r0[j], r1[j], r2[j])
            orientationError += Self.cross(current, desired)
        }
        orientationError *= 0.5
        let force = kp * (goalWorld - p) - kd * velocity
        let moment = kp * orientationError - kd * angularVelocity
        var decoupledForce = SIMD3<Double>.zero
        var decoupledMoment = SIMD3<Double>.zero
        for r in 0..<3 {
            for c in 0..<3 {
                decoupledForce[r] += lambdaPosition[r * 3 + c] * force[c]
                decoupledMoment[r] += lambdaRotation[r * 3 + c] * moment[c]
            }
        }
        // τ = Jᵀ wrench + bias
        data.withQfrcBias { bias in
            for a in 0..<A {
                var sum = bias[dofs[a]]
                for r in 0..<3 {
                    sum += jacobian[r * A + a] * decoupledForce[r] + jacobian[(r + 3) * A + a] * decoupledMoment[r]
                }
                torques[a] = sum
            }
        }
        // Null space: pose torques M (kn (q0 - q) - kv q̇), projected by
        // Nᵀ = I - Jᵀ Λ J M⁻¹ = I - Jᵀ Λ (J M⁻¹).
        let nullSpaceKv = 2 * nullSpaceKp.squareRoot()
        data.withQpos { qpos in
            data.withQvel { qvel in
                for a in 0..<A {
                    vectorA[a] = nullSpaceKp * (initialJoints[a] - qpos[qposAddresses[a]]) - nullSpaceKv * qvel[dofs[a]]
                }
            }
        }
        for i in 0..<A {  // vectorB = M vectorA (pose torques)
            var sum = 0.0
            for j in 0..<A { sum += mass[i * A + j] * vectorA[j] }
            vectorB[i] = sum
        }
        // y = (J M⁻¹) vectorB [6]; z = Λ y [6]; null = vectorB - Jᵀ z
        var y = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        withUnsafeMutableBytes(of: &y) { raw in
            let yp = raw.baseAddress!.assumingMemoryBound(to: Double.self)
            for r in 0..<6 {
                var sum = 0.0
                for k in 0..<A { sum += jacobianMassInverse[r * A + k] * vectorB[k] }
                yp[r] = sum
            }
            var z = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
            withUnsafeMutableBytes(of: &z) { rawZ in
                let zp = rawZ.baseAddress!.assumingMemoryBound(to: Double.self)
                for r in 0..<6 {
                    var sum = 0.0
                    for c in 0..<6 { sum += lambdaFull[r * 6 + c] * yp[c] }
                    zp[r] = sum
                }
                for a in 0..<A {
                    var sum = 0.0
                    for r in 0..<6 { sum += jacobian[r * A + a] * zp[r] }
                    torques[a] += vectorB[a] - sum
                }
            }
        }
        data.withCtrl { ctrl in
            for a in 0..<A { ctrl[actuators[a]] = min(max(torques[a], torqueLow[a]), torqueHigh[a]) }
        }
    }

    static func cross(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
    }

    /// Gauss-Jordan inversion with partial pivoting of the `n x n` row-major `matrix` into `inverse`; `scratch` holds
    /// `2 n²` numbers. Returns false for a (numerically) singular matrix.
    static func invert(
        _ matrix: UnsafePointer<Double>, into inverse: UnsafeMutablePointer<Double>, n: Int,
        scratch: UnsafeMutablePointer<Double>
    ) -> Bool {
        let w = 2 * n
        var scale = 0.0
        for i in 0..<n {
            for j in 0..<n {
                scratch[i * w + j] = matrix[i * n + j]
                scratch[i * w + n + j] = i == j ? 1 : 0
                scale = max(scale, abs(matrix[i * n + j]))
            }
        }
        guard scale > 0 else { return false }
        for column in 0..<n {
            var pivot = column
            for r in (column + 1)..<max(n, column + 1)
                where abs(scratch[r * w + column]) > abs(scratch[pivot * w + column]) {
                pivot = r
            }
            let value = scratch[pivot * w + column]
            if abs(value) <= 1e-14 * scale { return false }
            if pivot != column {
                for k in 0..<w {
                    (scratch[pivot * w + k], scratch[column * w + k]) =
                        (scratch[column * w + k], scratch[pivot * w + k])
                }
            }
            for k in 0..<w { scratch[column * w + k] /= value }
            for r in 0..<n where r != column {
                let factor = scratch[r * w + column]
                if factor == 0 { continue }
                for k in 0..<w { scratch[r * w + k] -= factor * scratch[column * w + k] }
            }
        }
        for i in 0..<n {
            for j in 0..<n { inverse[i * n + j] = scratch[i * w + n + j] }
        }
        return true
    }
}
