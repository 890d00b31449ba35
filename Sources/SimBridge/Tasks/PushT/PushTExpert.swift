import Foundation

/// The scripted Push-T expert: it moves the block to the goal with a sequence of straight pushes, each chosen by
/// simulating the candidates on a private copy of the environment.
///
/// A push is a contact on the T's outline (a point of an edge, pushed along the edge's inward normal, or a convex
/// corner, pushed along one of a fan of directions) and a number of steps at the push speed. Executing a push is a
/// few deliberate motions (see `PushTApproach`): back off from the block if touching it, travel around the block
/// on the shortest path that keeps clear of it, come straight in along the contact's normal, slowing down to the
/// push speed, and push. A push that uses the contact the agent already touches just goes on, without stopping.
///
/// Choosing a push, at the end of every push (and of every back-off):
/// 1. Screening. Every reachable contact is pushed in simulation from an idealised start (the agent arriving at
///    the contact at the push speed), for up to `Tuning.pushSteps` steps plus `Tuning.settleSteps` (the agent
///    trails its target and goes on pushing after the target stops; a push of j steps is judged by the pose at
///    step j + settleSteps). The cost of a block pose is the mean distance of the T's 8 outline corners to their
///    goal positions: position and angle together, in units. Candidates are ranked by progress rate: the cost
///    removed per control step, counting the estimated steps to reach the contact and `Tuning.stepOverhead`.
/// 2. Verification. The best `Tuning.verifiedCandidates` are planned in full and simulated exactly from the
///    environment's saved state; the best true progress rate wins. A push that reaches the goal (coverage above
///    the success threshold) beats all others, the quickest first. The push that continues the current contact
///    gets a bonus (`Tuning.continuationBonus`), so that consecutive decisions agree.
/// 3. If the winner needs the agent to leave the block (judged by its screening rate, as the way around depends on
///    where the block settles), the expert first backs off along the normal, holding there until the trailing
///    agent is clear, and then decides again, with the contact it left excluded: a decision to leave stands.
///
/// The push speed, and so the push length, shrinks as the block nears the goal (`Tuning.pushSpeed(error:)`): the
/// last pushes are short and slow. Consecutive targets are at most `Tuning.cruiseSpeed` apart by construction, and
/// never more than `Tuning.maximumTargetStep`.
///
/// The environment is deterministic, so an executed plan comes true exactly; the expert still compares every
/// state with the plan's prediction and decides again at once when they part (for instance when a data collector
/// perturbs the actions). It draws no random numbers: the episode's seed only names the episode.
public final class PushTExpert: Expert {
    /// The expert's parameters. Lengths in the environment's units, speeds in units per control step (0.1 s).
    public struct Tuning: Sendable {
        /// Extra distance (beyond the agent's radius) by which the agent's path keeps clear of the block.
        public var clearance = 8.0
        /// Extra distance by which the final approach, along the push direction, passes other parts of the T
        /// (the bar's inner edges beside the stem, the stem's sides above the bar).
        public var legClearance = 4.0
        /// Spacing of the candidate contacts along the T's edges.
        public var contactSpacing = 8.0
        /// Push directions tried at each convex corner (spread evenly between the two edge normals).
        public var cornerDirections = 3
        /// Speed of travel on straight stretches towards the block.
        public var cruiseSpeed = 25.0
        /// Speed limit on the stretches that bend around the block's corners. The agent trails its target by
        /// 2 steps of travel and cuts a right-angled corner by roughly 0.02 v² units at v units per step: 15 keeps
        /// the cut (about 5) inside the clearance.
        public var aroundSpeed = 15.0
        /// Speed limit at the turn onto the push line, so that the agent lines up before it reaches the block.
        public var entrySpeed = 6.0
        /// Speed change per control step on the way.
        public var acceleration = 6.0
        /// The push speed is the pose error (mean corner distance to the goal) times this, within
        /// `pushSpeedRange`: 10 (60 units per push) far away, down to 2 (12 units) near the goal.
        public var pushSpeedPerError = 1.0 / 6
        public var pushSpeedRange: ClosedRange<Double> = 2...10
        /// The longest push, in control steps.
        public var pushSteps = 6
        /// Steps after the target stops over which a push is judged (the trailing agent still pushes).
        public var settleSteps = 2
        /// Candidates simulated in full after the screening.
        public var verifiedCandidates = 4
        /// Added to every plan's step count when computing progress rates: favours longer, more useful pushes
        /// over tiny quick ones.
        public var stepOverhead = 4.0
        /// Factor on the progress rate of the push that continues the current contact.
        public var continuationBonus = 1.15
        /// Largest change of the commanded target between consecutive control steps (a safety net: the plans
        /// stay under `cruiseSpeed`).
        public var maximumTargetStep = 40.0
        /// Targets stay this far inside the field [0, 512]².
        public var fieldMargin = 2.0

        public init() {}

        func pushSpeed(error: Double) -> Double {
            min(max(error * pushSpeedPerError, pushSpeedRange.lowerBound), pushSpeedRange.upperBound)
        }
    }

    /// A planned move: its targets, and the states the environment will be in after each.
    struct Plan {
        enum Kind {
            case push(contact: Int)
            /// Straight away from the block (the expert decides again once clear).
            case backOff
            /// The target stays where it is for a step.
            case hold
        }

        var kind: Kind
        var targets: [SIMD2<Double>] = []
        var predictedPoses: [Pose2D] = []
        var predictedAgents: [SIMD2<Double>] = []
        var reachesGoal = false
        /// The pose error once the agent has settled after the last target.
        var finalError = Double.infinity
        var steps: Int { targets.count }
    }

    /// The environment the expert acts in (it reads its state; it never steps it).
    public let environment: PushT
    public let tuning: Tuning
    /// The private copy the expert simulates on.
    let simulator: PushT
    let shape: PushTShape
    let contacts: [PushContact]
    /// For each contact, the distance along its normal at which the agent's centre is clear of the whole T.
    let clearDistances: [Double]
    let goalCorners: [SIMD2<Double>]
    /// The targets the environment accepts, less `Tuning.fieldMargin` (the field is square).
    let field: ClosedRange<Double>
    /// How many control steps of travel the PD agent trails a target moving at constant speed: kv / kp seconds.
    let lagSteps: Double
    /// Seconds per control step.
    let controlPeriod: Double

    var plan: Plan?
    var planStep = 0
    var lastTarget: SIMD2<Double>?
    /// How far the target moved in the last step.
    var lastTargetSpeed = 0.0
    /// Moves (pushes and back-offs) chosen this episode.
    private(set) var decisions = 0
    /// The point (block frame) and normal the agent backed off from, when the last move was a back-off: the next
    /// decision does not go straight back there (it decided to leave).
    var leftContact: (point: SIMD2<Double>, normal: SIMD2<Double>)?

    public init(environment: PushT, tuning: Tuning = Tuning()) throws {
        self.environment = environment
        self.tuning = tuning
        simulator = try PushT(settings: environment.settings, scenePath: environment.model.source)
        let shape = try Self.shape(of: environment)
        self.shape = shape
        let contacts = shape.contacts(
            spacing: tuning.contactSpacing, cornerDirections: tuning.cornerDirections,
            legClearance: tuning.legClearance)
        self.contacts = contacts
        clearDistances = contacts.map { shape.clearDistance(along: $0, clearance: tuning.clearance) }
        goalCorners = shape.outline.map { environment.goal.apply($0) }
        let specification = environment.specification
        let low = Double(specification.actionLow[0]) + tuning.fieldMargin
        field = low...(Double(specification.actionHigh[0]) - tuning.fieldMargin)
        controlPeriod = specification.physicsTimestep * Double(specification.substeps)
        lagSteps = environment.settings.agent.kv / environment.settings.agent.kp / controlPeriod
    }

    /// The T and the agent as the scene defines them (the boxes `bar` and `stem`, the sphere `agent`).
    static func shape(of environment: PushT) throws -> PushTShape {
        let model = environment.model
        let m = model.pointer.pointee
        func box(_ name: String) throws -> BlockRectangle {
            let geom = try model.requireId(of: .geom, named: name)
            let center = SIMD2(m.geom_pos[3 * geom], m.geom_pos[3 * geom + 1])
            let half = SIMD2(m.geom_size[3 * geom], m.geom_size[3 * geom + 1])
            return BlockRectangle(low: center - half, high: center + half)
        }
        let bar = try box("bar")
        let stem = try box("stem")
        let agent = try model.requireId(of: .geom, named: "agent")
        // The outline assumes a T: the stem stands on the middle of the bar's upper side.
        guard abs(stem.low.y - bar.high.y) < 1e-9, stem.low.x > bar.low.x, stem.high.x < bar.high.x else {
            throw EnvironmentError.invalidTaskFile(
                path: model.source, message: "the Push-T expert needs the stem standing on the bar's upper side")
        }
        return PushTShape(bar: bar, stem: stem, agentRadius: m.geom_size[3 * agent])
    }

    public func begin(episodeSeed: UInt64) throws {
        plan = nil
        planStep = 0
        lastTarget = nil
        lastTargetSpeed = 0
        leftContact = nil
        decisions = 0
    }

    public func act(action: UnsafeMutablePointer<Float>) throws {
        if !planIsOnTrack() {
            plan = try decide()
            planStep = 0
            decisions += 1
        }
        let target = plan!.targets[planStep]
        planStep += 1
        lastTargetSpeed = lastTarget.map { length(target - $0) } ?? 0
        lastTarget = target
        action[0] = Float(target.x)
        action[1] = Float(target.y)
    }

    /// Whether the current plan has steps left and the environment is where the plan said it would be.
    func planIsOnTrack() -> Bool {
        guard let plan, planStep < plan.steps else { return false }
        guard planStep > 0 else { return true }
        let pose = environment.blockPose
        let predicted = plan.predictedPoses[planStep - 1]
        let agentDrift = length(environment.agentPosition - plan.predictedAgents[planStep - 1])
        return abs(pose.x - predicted.x) < 0.5 && abs(pose.y - predicted.y) < 0.5
            && abs(pose.angle - predicted.angle) < 0.01 && agentDrift < 2
    }

    // MARK: Costs

    /// Mean distance of the T's outline corners to their goal positions.
    func poseError(_ pose: Pose2D) -> Double {
        var total = 0.0
        for (corner, goal) in zip(shape.outline, goalCorners) { total += length(pose.apply(corner) - goal) }
        return total / Double(goalCorners.count)
    }

    func reachesGoal(_ pose: Pose2D) -> Bool {
        environment.coverage(of: pose) > environment.settings.successCoverage
    }

    // MARK: Deciding

    /// What the screening found for one contact: the best push length and its estimated progress rate.
    struct ScreenedPush {
        var contact: Int
        var pushSteps: Int
        var rate: Double
        var reachesGoal: Bool
    }

    /// Whether a contact is (nearly) the given point and normal.
    static func isNear(_ contact: PushContact, _ other: (point: SIMD2<Double>, normal: SIMD2<Double>)) -> Bool {
        length(contact.point - other.point) < 8 && (contact.normal * other.normal).sum() > 0.9
    }

    /// Chooses the next move: screening, verification, and a back-off first when the winner needs one.
    func decide() throws -> Plan {
        let saved = environment.saveState()
        let pose = environment.blockPose
        let startError = poseError(pose)
        let pushSpeed = tuning.pushSpeed(error: startError)
        let approach = PushTApproach(
            shape: shape, tuning: tuning, contacts: contacts, clearDistances: clearDistances, field: field,
            lagSteps: lagSteps, pose: pose, agent: environment.agentPosition,
            lastTarget: lastTarget ?? environment.agentPosition)

        let left = leftContact
        leftContact = nil
        var screened: [ScreenedPush] = []
        for index in contacts.indices {
            if let left, Self.isNear(contacts[index], left) { continue }
            guard let approachSteps = approach.approachSteps(contact: index, pushSpeed: pushSpeed) else { continue }
            if let result = try screen(
                contact: index, pose: pose, pushSpeed: pushSpeed, startError: startError, approachSteps: approachSteps)
            {
                screened.append(result)
            }
        }
        screened.sort { a, b in a.reachesGoal != b.reachesGoal ? a.reachesGoal : a.rate > b.rate }

        var best: (plan: Plan, score: Double)?
        for candidate in screened.prefix(tuning.verifiedCandidates) {
            let continuing = approach.continues(contact: candidate.contact)
            if !continuing && approach.exit != nil {
                // Judged as if the back-off and the way around were one move (they will be planned apart).
                let score = candidate.reachesGoal ? 1e6 + candidate.rate : candidate.rate
                if best == nil || score > best!.score { best = (Plan(kind: .backOff), score) }
                continue
            }
            let targets = approach.targets(
                contact: candidate.contact, pushSpeed: pushSpeed, pushSteps: candidate.pushSteps,
                targetSpeed: lastTargetSpeed)
            let plan = try simulate(
                Plan(kind: .push(contact: candidate.contact)), targets: targets, from: saved,
                settleSteps: tuning.settleSteps)
            var score = plan.reachesGoal
                ? 1e6 - Double(plan.steps) : (startError - plan.finalError) / (Double(plan.steps) + tuning.stepOverhead)
            if continuing && score > 0 { score *= tuning.continuationBonus }
            if best == nil || score > best!.score { best = (plan, score) }
        }
        guard let chosen = best?.plan else {
            // No contact reachable (the block boxed in a corner of the field, say): hold still for a step.
            return try simulate(Plan(kind: .hold), targets: [approach.lastTarget], from: saved, settleSteps: 0)
        }
        if case .backOff = chosen.kind {
            leftContact = approach.touching
            return try backOff(approach.backOffTargets(), from: saved)
        }
        return chosen
    }

    /// The back-off plan: its targets, then holding the last one while the trailing agent is still touching the
    /// block (at most `Tuning.settleSteps` + 3 steps), so that the next decision starts clear of it.
    func backOff(_ targets: [SIMD2<Double>], from saved: EnvironmentState) throws -> Plan {
        let holds = Array(repeating: targets.last!, count: tuning.settleSteps + 3)
        var plan = try simulate(Plan(kind: .backOff), targets: targets + holds, from: saved, settleSteps: 0)
        guard !plan.reachesGoal else { return plan }
        var end = targets.count
        while end < plan.steps {
            let agent = plan.predictedPoses[end - 1].toLocal(plan.predictedAgents[end - 1])
            if !PushTApproach.isTouching(clearance: shape.signedDistance(to: agent), agentRadius: shape.agentRadius) {
                break
            }
            end += 1
        }
        plan.targets.removeSubrange(end...)
        plan.predictedPoses.removeSubrange(end...)
        plan.predictedAgents.removeSubrange(end...)
        return plan
    }

    /// Pushes contact `index` from an idealised start (the agent arriving at the push speed, its target at the
    /// contact) for up to `pushSteps` + `settleSteps` steps, and returns the push length with the best progress
    /// rate (which may be negative: sometimes every push loses ground).
    func screen(
        contact index: Int, pose: Pose2D, pushSpeed: Double, startError: Double, approachSteps: Double
    ) throws -> ScreenedPush? {
        let contact = contacts[index]
        let point = pose.apply(contact.point)
        let normal = pose.rotate(contact.normal)
        let radius = shape.agentRadius
        // The agent at its steady lag behind the target, moving at the push speed (PushT's task state is the agent's
        // position and velocity).
        try simulator.place(agent: point + normal * (radius + 1 + lagSteps * pushSpeed), block: pose, settle: false)
        var state = simulator.saveState()
        state.task[2] = -normal.x * pushSpeed / controlPeriod
        state.task[3] = -normal.y * pushSpeed / controlPeriod
        try simulator.restoreState(state)

        var best: ScreenedPush?
        var action = [Float](repeating: 0, count: 2)
        for step in 1...(tuning.pushSteps + tuning.settleSteps) {
            let target = point + normal * (radius + 1 - pushSpeed * Double(step))
            action[0] = Float(target.x)
            action[1] = Float(target.y)
            _ = try simulator.step(action)
            let reached = simulator.blockPose
            if reachesGoal(reached) {
                let pushSteps = max(step - tuning.settleSteps, 1)
                return ScreenedPush(
                    contact: index, pushSteps: pushSteps, rate: -(approachSteps + Double(step)), reachesGoal: true)
            }
            guard step > tuning.settleSteps else { continue }
            let rate = (startError - poseError(reached)) / (approachSteps + Double(step) + tuning.stepOverhead)
            if best == nil || rate > best!.rate {
                let pushSteps = step - tuning.settleSteps
                best = ScreenedPush(contact: index, pushSteps: pushSteps, rate: rate, reachesGoal: false)
            }
        }
        return best
    }

    /// Runs `targets` on the private copy from `saved`, then holds the last one for `settleSteps` steps, and
    /// records what happens in `plan`. The plan keeps the targets only (the next decision comes at the end of the
    /// push, so that a continuing push does not stop), unless the goal is reached while settling; its final error
    /// is the one after settling. Targets are kept inside `field` and within `Tuning.maximumTargetStep` of the one
    /// before (a safety net: the target paths respect both already).
    func simulate(
        _ plan: Plan, targets: [SIMD2<Double>], from saved: EnvironmentState, settleSteps: Int
    ) throws -> Plan {
        var plan = plan
        try simulator.restoreState(saved)
        var action = [Float](repeating: 0, count: 2)
        var last = lastTarget
        var settledPose = environment.blockPose
        let holds = targets.last.map { Array(repeating: $0, count: settleSteps) } ?? []
        for var target in targets + holds {
            if let last, length(target - last) > tuning.maximumTargetStep {
                target = last + (target - last) * (tuning.maximumTargetStep / length(target - last))
            }
            target = SIMD2(field.clamp(target.x), field.clamp(target.y))
            last = target
            action[0] = Float(target.x)
            action[1] = Float(target.y)
            _ = try simulator.step(action)
            let pose = simulator.blockPose
            plan.targets.append(target)
            plan.predictedPoses.append(pose)
            plan.predictedAgents.append(simulator.agentPosition)
            settledPose = pose
            if reachesGoal(pose) {
                plan.reachesGoal = true
                break
            }
        }
        plan.finalError = poseError(settledPose)
        if !plan.reachesGoal {
            plan.targets.removeLast(holds.count)
            plan.predictedPoses.removeLast(holds.count)
            plan.predictedAgents.removeLast(holds.count)
        }
        return plan
    }
}
