import Foundation

/// Shortest paths for the agent's centre around the T, in the block's frame: a visibility graph over waypoints
/// placed around the T inflated by the agent's radius plus a clearance.
///
/// The inflated T is the set of centre positions where the agent would touch the block (or come closer than the
/// clearance). Its boundary is made of straight edges and rounded convex corners; a path that keeps out of it
/// bends only around those corners, so the waypoints are three points on an octagon around each convex corner
/// (along both edge normals and their bisector, far enough that the chords between them stay clear) and one in
/// each of the two notches beside the stem. Waypoints whose world position lies outside `bounds` (the targets the
/// environment accepts) are dropped, so paths never leave the field; a block pressed against a wall is passed on
/// its free side.
struct PushTRoadmap {
    let shape: PushTShape
    /// The agent's radius plus the clearance: the centre keeps at least this far from the T.
    let keepOut: Double
    private(set) var waypoints: [SIMD2<Double>] = []
    private var visible: [[Bool]] = []
    private let start: SIMD2<Double>
    /// Paths may leave `start` with less than `keepOut` to spare when the start itself is that close (the block
    /// may settle towards it after it was chosen), but never closer than the start.
    private let startKeepOut: Double
    /// Length of the shortest path from `start` to each waypoint, and the waypoint before it (-1: `start`).
    private var distance: [Double] = []
    private var previous: [Int] = []

    /// The roadmap around the block at `pose`, searched from `start` (block frame; normally outside the inflated T).
    init(shape: PushTShape, pose: Pose2D, clearance: Double, bounds: ClosedRange<Double>, start: SIMD2<Double>) {
        self.shape = shape
        keepOut = shape.agentRadius + clearance
        self.start = start
        startKeepOut = min(keepOut, shape.signedDistance(to: start))
        let octagonRadius = keepOut / cos(Double.pi / 8) + 0.5
        var candidates: [SIMD2<Double>] = []
        for corner in shape.convexCorners {
            let count = shape.outline.count
            let before = shape.normal(ofEdge: (corner + count - 1) % count)
            let after = shape.normal(ofEdge: corner)
            let bisector = (before + after) / length(before + after)
            for direction in [before, bisector, after] {
                candidates.append(shape.outline[corner] + direction * octagonRadius)
            }
        }
        for notchCorner in shape.outline.indices where !shape.convexCorners.contains(notchCorner) {
            let count = shape.outline.count
            let inward = shape.normal(ofEdge: (notchCorner + count - 1) % count) + shape.normal(ofEdge: notchCorner)
            candidates.append(shape.outline[notchCorner] + inward * (keepOut + 0.5))
        }
        waypoints = candidates.filter { point in
            let world = pose.apply(point)
            return bounds.contains(world.x) && bounds.contains(world.y)
                && shape.signedDistance(to: point) >= keepOut - 1e-6
        }
        let n = waypoints.count
        visible = Array(repeating: Array(repeating: false, count: n), count: n)
        for i in 0..<n {
            for j in (i + 1)..<n where isClear(waypoints[i], waypoints[j]) {
                visible[i][j] = true
                visible[j][i] = true
            }
        }
        searchFromStart()
    }

    /// Whether the agent's centre can move along the segment without coming within `keepOut` of the T.
    func isClear(_ a: SIMD2<Double>, _ b: SIMD2<Double>) -> Bool {
        shape.distance(fromSegment: a, b) >= keepOut - 1e-6
    }

    /// Whether the agent's centre can leave `start` along the segment to `b`.
    func isClearFromStart(_ b: SIMD2<Double>) -> Bool {
        shape.distance(fromSegment: start, b) >= startKeepOut - 1e-6
    }

    /// Dijkstra from `start` over the (dense, small) visibility graph.
    private mutating func searchFromStart() {
        let n = waypoints.count
        distance = Array(repeating: .infinity, count: n)
        previous = Array(repeating: -1, count: n)
        var done = Array(repeating: false, count: n)
        for i in 0..<n where isClearFromStart(waypoints[i]) { distance[i] = length(waypoints[i] - start) }
        for _ in 0..<n {
            var nearest = -1
            for i in 0..<n where !done[i] && distance[i].isFinite && (nearest < 0 || distance[i] < distance[nearest]) {
                nearest = i
            }
            guard nearest >= 0 else { break }
            done[nearest] = true
            for j in 0..<n where !done[j] && visible[nearest][j] {
                let through = distance[nearest] + length(waypoints[j] - waypoints[nearest])
                if through < distance[j] {
                    distance[j] = through
                    previous[j] = nearest
                }
            }
        }
    }

    /// The shortest path from `start` to `goal` (block frame, outside the inflated T): the waypoints in between,
    /// and its length; nil when no path exists.
    func path(to goal: SIMD2<Double>) -> (via: [SIMD2<Double>], length: Double)? {
        if isClearFromStart(goal) { return ([], length(goal - start)) }
        var best = (waypoint: -1, length: Double.infinity)
        for i in waypoints.indices where distance[i].isFinite {
            let total = distance[i] + length(goal - waypoints[i])
            if total < best.length && isClear(waypoints[i], goal) { best = (i, total) }
        }
        guard best.waypoint >= 0 else { return nil }
        var via: [SIMD2<Double>] = []
        var i = best.waypoint
        while i >= 0 {
            via.append(waypoints[i])
            i = previous[i]
        }
        return (via.reversed(), best.length)
    }
}
