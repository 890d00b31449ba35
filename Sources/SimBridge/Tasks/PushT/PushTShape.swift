import Foundation

/// An axis-aligned rectangle in the block's frame.
struct BlockRectangle: Sendable {
    var low: SIMD2<Double>
    var high: SIMD2<Double>

    /// Distance from `point` to the rectangle: positive outside, minus the depth to the nearest side inside.
    func signedDistance(to point: SIMD2<Double>) -> Double {
        let outside = SIMD2(max(low.x - point.x, 0, point.x - high.x), max(low.y - point.y, 0, point.y - high.y))
        if outside.x > 0 || outside.y > 0 { return (outside * outside).sum().squareRoot() }
        return -min(point.x - low.x, high.x - point.x, point.y - low.y, high.y - point.y)
    }

    /// The shortest distance between the segment `a`–`b` and the rectangle (0 when they meet).
    func distance(fromSegment a: SIMD2<Double>, _ b: SIMD2<Double>) -> Double {
        if intersects(segment: a, b) { return 0 }
        var nearest = min(signedDistance(to: a), signedDistance(to: b))
        for corner in [low, SIMD2(high.x, low.y), high, SIMD2(low.x, high.y)] {
            nearest = min(nearest, pointSegmentDistance(corner, a, b))
        }
        return nearest
    }

    /// Liang–Barsky: does the segment `a`–`b` touch the rectangle?
    func intersects(segment a: SIMD2<Double>, _ b: SIMD2<Double>) -> Bool {
        var entry = 0.0
        var exit = 1.0
        let direction = b - a
        for axis in 0..<2 {
            if abs(direction[axis]) < 1e-12 {
                if a[axis] < low[axis] || a[axis] > high[axis] { return false }
                continue
            }
            var near = (low[axis] - a[axis]) / direction[axis]
            var far = (high[axis] - a[axis]) / direction[axis]
            if near > far { swap(&near, &far) }
            entry = max(entry, near)
            exit = min(exit, far)
            if entry > exit { return false }
        }
        return true
    }
}

/// Where the agent can push the T: a point of its outline and the outward normal there (the agent, a circle,
/// pushes along minus the normal, since contacts are frictionless). Block frame.
struct PushContact: Sendable {
    var point: SIMD2<Double>
    var normal: SIMD2<Double>
    /// Which part of the outline: the edge index (0..<8), or 8 + the convex corner index for corner pushes.
    var feature: Int
}

/// The T block as the expert sees it, in the block's frame: the bar and the stem (read from the scene's boxes),
/// the 8-vertex outline, and the agent's radius.
///
/// The outline runs counter-clockwise from the bar's outer-left corner:
///
/// ```
///                (-15,120) +--+ (15,120)
///                          |  |            edges: 0 bar's outer edge, 1 bar's right end, 2 bar's inner right
///                          |  |            edge, 3 stem's right side, 4 stem's end, 5 stem's left side,
///   (-60,30) +-------------+  +-----+ (60,30)     6 bar's inner left edge, 7 bar's left end
///            |        origin          |
///   (-60,0)  +-----------o-----------+ (60,0)
/// ```
struct PushTShape: Sendable {
    let bar: BlockRectangle
    let stem: BlockRectangle
    let agentRadius: Double
    /// Counter-clockwise outline; edge `i` runs from vertex `i` to vertex `i + 1`.
    let outline: [SIMD2<Double>]
    /// The outline's convex corners (indices into `outline`): the agent can push there in a fan of directions.
    let convexCorners: [Int]

    init(bar: BlockRectangle, stem: BlockRectangle, agentRadius: Double) {
        self.bar = bar
        self.stem = stem
        self.agentRadius = agentRadius
        outline = [
            bar.low, SIMD2(bar.high.x, bar.low.y), bar.high, SIMD2(stem.high.x, bar.high.y),
            stem.high, SIMD2(stem.low.x, stem.high.y), SIMD2(stem.low.x, bar.high.y), SIMD2(bar.low.x, bar.high.y),
        ]
        convexCorners = [0, 1, 2, 4, 5, 7]
    }

    /// Outward normal of outline edge `edge`.
    func normal(ofEdge edge: Int) -> SIMD2<Double> {
        let direction = outline[(edge + 1) % outline.count] - outline[edge]
        return SIMD2(direction.y, -direction.x) / length(direction)
    }

    /// Signed distance from `point` (block frame) to the T: negative inside.
    func signedDistance(to point: SIMD2<Double>) -> Double {
        let toBar = bar.signedDistance(to: point)
        let toStem = stem.signedDistance(to: point)
        // Outside both: the nearer. Inside one or both: the deeper (a lower bound on the depth where the two meet).
        return min(toBar, toStem)
    }

    /// The shortest distance between the segment `a`–`b` (block frame) and the T.
    func distance(fromSegment a: SIMD2<Double>, _ b: SIMD2<Double>) -> Double {
        min(bar.distance(fromSegment: a, b), stem.distance(fromSegment: a, b))
    }

    /// The point of the outline nearest to `point` (block frame; inside or outside) and the outward direction from
    /// there towards `point` (for a point inside, the outward normal of the nearest edge).
    func nearestBoundaryPoint(to point: SIMD2<Double>) -> (point: SIMD2<Double>, normal: SIMD2<Double>) {
        let inside = signedDistance(to: point) < 0
        var best = (point: outline[0], normal: normal(ofEdge: 0), distance: Double.infinity)
        for edge in outline.indices {
            let a = outline[edge]
            let b = outline[(edge + 1) % outline.count]
            let direction = b - a
            let along = min(max(((point - a) * direction).sum() / (direction * direction).sum(), 0), 1)
            let foot = a + direction * along
            let distance = length(point - foot)
            guard distance < best.distance else { continue }
            let outward = normal(ofEdge: edge)
            let normal = inside || distance < 1e-9 ? outward : (point - foot) / distance
            best = (foot, normal, distance)
        }
        return (best.point, best.normal)
    }

    /// The candidate pushes: points every `spacing` units along each edge (pushing along the edge's normal) and a
    /// fan of directions at each convex corner. Points where the agent, coming in along the normal, would touch
    /// another part of the T first (the bar's inner edges next to the stem, the stem's sides next to the bar) are
    /// left out: the agent's centre must pass the other part with `legClearance` to spare.
    func contacts(spacing: Double, cornerDirections: Int, legClearance: Double) -> [PushContact] {
        var contacts: [PushContact] = []
        for edge in outline.indices {
            let a = outline[edge]
            let b = outline[(edge + 1) % outline.count]
            let normal = normal(ofEdge: edge)
            let edgeLength = length(b - a)
            // Stay 2 units off the ends: the ends are the corners' business.
            let usable = edgeLength - 4
            let count = max(1, Int((usable / spacing).rounded(.up)) + 1)
            for i in 0..<count {
                let along = count == 1 ? edgeLength / 2 : 2 + usable * Double(i) / Double(count - 1)
                let point = a + (b - a) * (along / edgeLength)
                let contact = PushContact(point: point, normal: normal, feature: edge)
                if legIsClear(contact, clearance: legClearance) { contacts.append(contact) }
            }
        }
        for (index, corner) in convexCorners.enumerated() {
            let before = normal(ofEdge: (corner + outline.count - 1) % outline.count)
            let after = normal(ofEdge: corner)
            let start = atan2(before.y, before.x)
            var sweep = atan2(after.y, after.x) - start
            if sweep < 0 { sweep += 2 * Double.pi }
            for i in 1...cornerDirections {
                let angle = start + sweep * Double(i) / Double(cornerDirections + 1)
                let contact = PushContact(
                    point: outline[corner], normal: SIMD2(cos(angle), sin(angle)), feature: outline.count + index)
                if legIsClear(contact, clearance: legClearance) { contacts.append(contact) }
            }
        }
        return contacts
    }

    /// Whether the agent's centre, coming in along the normal to touch the contact, stays `clearance` (beyond its
    /// radius) away from every part of the T but the contact itself.
    func legIsClear(_ contact: PushContact, clearance: Double) -> Bool {
        let touching = contact.point + contact.normal * (agentRadius + 0.01)
        let far = contact.point + contact.normal * (agentRadius + 200)
        return signedDistance(to: touching) > agentRadius - 1e-6
            && distanceExcludingContact(fromSegment: touching, far, contact: contact) >= agentRadius + clearance
    }

    /// How far along the contact's normal (from the contact point) the agent's centre must be to stand `clearance`
    /// clear of the whole T, so that paths around the block can reach it.
    func clearDistance(along contact: PushContact, clearance: Double) -> Double {
        var distance = agentRadius + clearance
        while signedDistance(to: contact.point + contact.normal * distance) < agentRadius + clearance - 1e-6 {
            distance += 2
        }
        return distance
    }

    /// The distance from a segment to the rectangles that do not hold the contact point on their boundary. (The
    /// contact's own rectangle lies behind the contact as seen from the approach leg.)
    private func distanceExcludingContact(
        fromSegment a: SIMD2<Double>, _ b: SIMD2<Double>, contact: PushContact
    ) -> Double {
        var nearest = Double.infinity
        for rectangle in [bar, stem] where abs(rectangle.signedDistance(to: contact.point)) > 1e-6 {
            nearest = min(nearest, rectangle.distance(fromSegment: a, b))
        }
        return nearest
    }
}

// MARK: Plane geometry

func pointSegmentDistance(_ point: SIMD2<Double>, _ a: SIMD2<Double>, _ b: SIMD2<Double>) -> Double {
    let direction = b - a
    let lengthSquared = (direction * direction).sum()
    let along = lengthSquared > 0 ? min(max(((point - a) * direction).sum() / lengthSquared, 0), 1) : 0
    let offset = point - (a + direction * along)
    return (offset * offset).sum().squareRoot()
}

func length(_ vector: SIMD2<Double>) -> Double { (vector * vector).sum().squareRoot() }

/// `vector` turned by `angle` (counter-clockwise).
func rotated(_ vector: SIMD2<Double>, by angle: Double) -> SIMD2<Double> {
    let (c, s) = (cos(angle), sin(angle))
    return SIMD2(c * vector.x - s * vector.y, s * vector.x + c * vector.y)
}

extension ClosedRange where Bound == Double {
    func clamp(_ value: Double) -> Double { Swift.min(Swift.max(value, lowerBound), upperBound) }
}

extension Pose2D {
    /// A world point in this pose's frame.
    func toLocal(_ world: SIMD2<Double>) -> SIMD2<Double> {
        rotated(world - SIMD2(x, y), by: -angle)
    }

    /// A direction given in this pose's frame, in world coordinates.
    func rotate(_ local: SIMD2<Double>) -> SIMD2<Double> { rotated(local, by: angle) }
}
