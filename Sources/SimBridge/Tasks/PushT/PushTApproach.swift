import Foundation

/// How the agent gets from where it is to each candidate push, for one decision: the target paths and their
/// speed profiles.
///
/// Three situations:
/// - The agent touches the block at (nearly) the candidate's contact: the push simply goes on, straight from the
///   current target, at the current speed (`continues(contact:)`).
/// - The agent touches the block, or its last target lies inside it, elsewhere: it must first back off along the
///   normal of the point it touches to `exit`, clear of the block (`backOffTargets()`). The expert makes that a
///   move of its own and plans the way around afterwards, once the block has stopped moving: a pushing agent trails
///   its target, so it goes on pushing for a few steps after the target stops.
/// - Otherwise the agent travels around the block on the shortest path that keeps clear of it (`PushTRoadmap`),
///   turns onto the push line at the entry point, slows down to the push speed, and pushes (`targets(...)`).
///
/// Speeds are in units per control step. The agent trails its target by `kv / kp` = 0.2 s of travel (2 steps) and
/// cuts the corners of the target's path, so the path slows down where it bends around the block.
struct PushTApproach {
    let shape: PushTShape
    let tuning: PushTExpert.Tuning
    let contacts: [PushContact]
    /// For each contact, the distance along its normal at which the agent's centre is clear of the whole T.
    let clearDistances: [Double]
    /// Where targets may lie (both coordinates).
    let field: ClosedRange<Double>
    /// Control steps of travel by which the agent trails a target moving at constant speed.
    let lagSteps: Double
    let pose: Pose2D
    /// The last commanded target (world): every path starts there.
    let lastTarget: SIMD2<Double>
    /// Where the agent backs off to (world), when it is touching the block or its target is inside it.
    let exit: SIMD2<Double>?
    /// The point (block frame) where the agent touches the block and the outward normal there.
    let touching: (point: SIMD2<Double>, normal: SIMD2<Double>)?
    let roadmap: PushTRoadmap

    init(
        shape: PushTShape, tuning: PushTExpert.Tuning, contacts: [PushContact], clearDistances: [Double],
        field: ClosedRange<Double>, lagSteps: Double, pose: Pose2D, agent: SIMD2<Double>, lastTarget: SIMD2<Double>
    ) {
        self.shape = shape
        self.tuning = tuning
        self.contacts = contacts
        self.clearDistances = clearDistances
        self.field = field
        self.lagSteps = lagSteps
        self.pose = pose
        self.lastTarget = lastTarget
        let localAgent = pose.toLocal(agent)
        let localTarget = pose.toLocal(lastTarget)
        let agentClearance = shape.signedDistance(to: localAgent)
        let nearest = shape.nearestBoundaryPoint(to: localAgent)
        touching = Self.isTouching(clearance: agentClearance, agentRadius: shape.agentRadius) ? nearest : nil
        var start = localTarget
        // Also when the agent has lost touch but its target lies inside the block (or so close that the agent would
        // touch it there), as at the end of a push that turned the block away.
        if touching != nil || shape.signedDistance(to: localTarget) < shape.agentRadius + 1 {
            let leaving = PushContact(point: nearest.point, normal: nearest.normal, feature: -1)
            start = nearest.point + nearest.normal * shape.clearDistance(along: leaving, clearance: tuning.clearance)
            let world = pose.apply(start)
            exit = SIMD2(field.clamp(world.x), field.clamp(world.y))
        } else {
            exit = nil
        }
        roadmap = PushTRoadmap(shape: shape, pose: pose, clearance: tuning.clearance, bounds: field, start: start)
    }

    /// Whether an agent whose centre is `clearance` from the T counts as touching it (within 3 units).
    static func isTouching(clearance: Double, agentRadius: Double) -> Bool { clearance < agentRadius + 3 }

    /// Whether the agent touches the block at (nearly) this contact already: then it pushes on without leaving.
    func continues(contact index: Int) -> Bool {
        guard let touching else { return false }
        let contact = contacts[index]
        return length(touching.point - contact.point) < 4 && (touching.normal * contact.normal).sum() > 0.95
    }

    /// Where (distance from the contact point along its normal) the target is down to the push speed, so that
    /// the trailing agent reaches the block at the push speed, lined up: one step of travel beyond the agent's lag,
    /// plus 5 units.
    func slowDownDistance(pushSpeed: Double) -> Double { shape.agentRadius + (lagSteps + 1) * pushSpeed + 5 }

    /// Where (distance along the normal) the path turns onto the push line: clear of the block, and no nearer
    /// than the slow-down point.
    func entryDistance(contact index: Int, pushSpeed: Double) -> Double {
        max(clearDistances[index], slowDownDistance(pushSpeed: pushSpeed))
    }

    func inField(_ point: SIMD2<Double>) -> Bool { field.contains(point.x) && field.contains(point.y) }

    /// Estimated control steps until the agent touches the contact at the push speed, after the back-off if one
    /// is needed; nil when the contact cannot be reached (its entry point lies outside the field, or no path
    /// leads there).
    func approachSteps(contact index: Int, pushSpeed: Double) -> Double? {
        if continues(contact: index) { return 0 }
        let contact = contacts[index]
        let entryDistance = entryDistance(contact: index, pushSpeed: pushSpeed)
        let entry = contact.point + contact.normal * entryDistance
        guard inField(pose.apply(entry)), let path = roadmap.path(to: entry) else { return nil }
        var distance = path.length
        if let exit { distance += length(exit - lastTarget) }
        let slowDown = slowDownDistance(pushSpeed: pushSpeed)
        distance += entryDistance - slowDown
        return distance / tuning.cruiseSpeed + 2 + (slowDown - shape.agentRadius) / pushSpeed
    }

    /// The back-off: straight out along the normal of the point the agent touches, stopping at `exit`. (If the
    /// target is there already, it holds for a step while the trailing agent catches up.)
    func backOffTargets() -> [SIMD2<Double>] {
        let leg = TargetLeg(end: exit ?? lastTarget, maximumSpeed: tuning.aroundSpeed, endSpeed: 0)
        let targets = TargetProfile.targets(
            from: lastTarget, startSpeed: 0, legs: [leg], acceleration: tuning.acceleration)
        return targets.isEmpty ? [lastTarget] : targets
    }

    /// The targets of a push of `pushSteps` steps at `pushSpeed` from contact `index`: straight on from the current
    /// target when the push continues (starting at `targetSpeed`, the target's current speed); otherwise around
    /// the block from the current target (clear of it: the back-off is done), in along the normal, and through the
    /// contact.
    func targets(contact index: Int, pushSpeed: Double, pushSteps: Int, targetSpeed: Double) -> [SIMD2<Double>] {
        let contact = contacts[index]
        let point = pose.apply(contact.point)
        let normal = pose.rotate(contact.normal)
        let continuing = continues(contact: index)
        // A continuing push goes on straight from the current target; a new one ends `pushSteps` steps past the
        // point where the agent's centre touches the contact.
        let pushStart = continuing ? lastTarget : point + normal * (shape.agentRadius + 1)
        let pushEnd = pushStart - normal * (pushSpeed * Double(pushSteps))
        var legs: [TargetLeg] = []
        if !continuing {
            let entryDistance = entryDistance(contact: index, pushSpeed: pushSpeed)
            let entry = contact.point + contact.normal * entryDistance
            var corners = (roadmap.path(to: entry)?.via ?? []).map { pose.apply($0) }
            corners.append(pose.apply(entry))
            let slowDownDistance = slowDownDistance(pushSpeed: pushSpeed)
            if entryDistance > slowDownDistance + 1 { corners.append(point + normal * slowDownDistance) }
            var previous = lastTarget
            for (i, corner) in corners.enumerated() {
                let next = i + 1 < corners.count ? corners[i + 1] : pushEnd
                let isLast = i + 1 == corners.count
                // Every leg after the first runs close to the block; the last turn is onto the push line, which may
                // pass other parts of the T closely (`legClearance`).
                var endSpeed = min(turnSpeed(from: previous, through: corner, to: next), tuning.aroundSpeed)
                if isLast { endSpeed = min(endSpeed, pushSpeed, tuning.entrySpeed) }
                let maximumSpeed = i > 0 ? tuning.aroundSpeed : tuning.cruiseSpeed
                legs.append(TargetLeg(end: corner, maximumSpeed: maximumSpeed, endSpeed: endSpeed))
                previous = corner
            }
        }
        legs.append(TargetLeg(end: pushEnd, maximumSpeed: pushSpeed, endSpeed: pushSpeed))
        let startSpeed = continuing ? min(targetSpeed, pushSpeed) : 0
        return TargetProfile.targets(
            from: lastTarget, startSpeed: startSpeed, legs: legs, acceleration: tuning.acceleration)
    }

    /// The speed at which the target may pass a corner of its path: full speed straight on, slower the sharper
    /// the turn.
    func turnSpeed(from a: SIMD2<Double>, through b: SIMD2<Double>, to c: SIMD2<Double>) -> Double {
        let first = b - a
        let second = c - b
        guard length(first) > 1e-9, length(second) > 1e-9 else { return tuning.cruiseSpeed }
        let cosine = (first * second).sum() / (length(first) * length(second))
        return max(4, tuning.cruiseSpeed * (1 + cosine) / 2)
    }
}
