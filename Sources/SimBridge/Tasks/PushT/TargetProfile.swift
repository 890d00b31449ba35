import Foundation

/// One stretch of a target path: a straight line to `end`, travelled at no more than `maximumSpeed` and left at no
/// more than `endSpeed` (units per control step).
struct TargetLeg: Sendable {
    var end: SIMD2<Double>
    var maximumSpeed: Double
    var endSpeed: Double
}

/// Turns a polyline into the agent's commanded targets, one per control step, with a trapezoidal speed profile:
/// the speed grows by at most `acceleration` per step, never exceeds a leg's limit, and falls in time to meet the
/// next limit (a slower leg, a sharp turn, the end). The targets lie on the polyline, so consecutive targets are
/// at most the largest speed limit apart.
enum TargetProfile {
    static func targets(
        from start: SIMD2<Double>, startSpeed: Double, legs: [TargetLeg], acceleration: Double
    ) -> [SIMD2<Double>] {
        var points = [start]
        var cumulative = [0.0]
        for leg in legs {
            cumulative.append(cumulative.last! + length(leg.end - points.last!))
            points.append(leg.end)
        }
        let total = cumulative.last!
        var targets: [SIMD2<Double>] = []
        var travelled = 0.0
        var speed = startSpeed
        var leg = 0
        while travelled < total - 1e-9 {
            while leg < legs.count - 1 && travelled >= cumulative[leg + 1] - 1e-9 { leg += 1 }
            // Limits: this leg's speed; then, for every leg ahead, its end speed and the speed of the leg after it,
            // reachable by braking at `acceleration` over the remaining distance. (Continuous braking: the step that
            // reaches a corner may still be up to about `acceleration` faster than the corner's speed.)
            var limit = min(speed + acceleration, legs[leg].maximumSpeed)
            for ahead in leg..<legs.count {
                let remaining = cumulative[ahead + 1] - travelled
                var required = legs[ahead].endSpeed
                if ahead + 1 < legs.count { required = min(required, legs[ahead + 1].maximumSpeed) }
                limit = min(limit, (required * required + 2 * acceleration * remaining).squareRoot())
            }
            speed = max(limit, 0.5)
            travelled = min(travelled + speed, total)
            targets.append(point(at: travelled, points: points, cumulative: cumulative))
        }
        return targets
    }

    private static func point(at distance: Double, points: [SIMD2<Double>], cumulative: [Double]) -> SIMD2<Double> {
        var segment = 0
        while segment < points.count - 2 && distance > cumulative[segment + 1] { segment += 1 }
        let segmentLength = cumulative[segment + 1] - cumulative[segment]
        guard segmentLength > 0 else { return points[segment + 1] }
        let fraction = min(max((distance - cumulative[segment]) / segmentLength, 0), 1)
        return points[segment] + (points[segment + 1] - points[segment]) * fraction
    }
}
