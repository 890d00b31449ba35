import Foundation

extension PushT: DisturbableEnvironment {
    /// How far the push shoves the block (world units: the bar's width) and how much it turns it (radians, 15°).
    public static let disturbanceDistance = 30.0
    public static let disturbanceTurn = Double.pi / 12

    public var disturbanceDescription: String {
        "the T block shoved \(Int(Self.disturbanceDistance)) world units in a random direction and turned "
            + "\(Int((Self.disturbanceTurn * 180 / .pi).rounded()))° about its centre of mass"
    }

    /// The block is quasi-static (it moves only while pushed), so a push is a displacement: the T moves
    /// `disturbanceDistance` in a direction uniform in [0, 2π) and turns by ±`disturbanceTurn` (the sign uniform)
    /// about its centre of mass, (0, 45) in the block frame. A direction that would put the T through a wall or onto
    /// the agent is replaced by the next of 8 directions 45° apart (the first that fits; the drawn one if none does),
    /// so the push never starts with a penetration for the contact solver to undo.
    public func disturb(using random: inout SeededRandom) throws {
        let start = blockPose
        let firstDirection = 2 * Double.pi * random.uniform()
        let turn = random.uniform() < 0.5 ? -Self.disturbanceTurn : Self.disturbanceTurn
        let centreOfMass = start.apply(SIMD2(0, 45))
        func pushed(direction: Double) -> Pose2D {
            let angle = start.angle + turn
            let centre = centreOfMass + Self.disturbanceDistance * SIMD2(cos(direction), sin(direction))
            // The origin that puts the centre of mass there at the new angle.
            return Pose2D(x: centre.x + 45 * sin(angle), y: centre.y - 45 * cos(angle), angle: angle)
        }
        let candidates = (0..<8).map { pushed(direction: firstDirection + Double($0) * Double.pi / 4) }
        let pose = candidates.first(where: fitsInside) ?? candidates[0]
        data.withQpos { qpos in
            qpos[blockQpos.x] = pose.x
            qpos[blockQpos.y] = pose.y
            qpos[blockQpos.angle] = pose.angle
        }
        try data.forward()
    }

    /// The T at `pose` lies inside the walls (their inner faces at 7 and 504) and clear of the agent's disc.
    func fitsInside(_ pose: Pose2D) -> Bool {
        let agentRadius = model.pointer.pointee.geom_size[3 * agentGeom]
        for rectangle in localRectangles {
            let placed = Self.transform(rectangle, by: pose)
            for i in 0..<placed.count where !(7...504).contains(placed[i].x) || !(7...504).contains(placed[i].y) {
                return false
            }
            if placed.contains(agentPosition) { return false }
            for i in 0..<placed.count {
                let (a, b) = (placed[i], placed[(i + 1) % placed.count])
                if Self.distance(from: agentPosition, toSegment: a, b) < agentRadius { return false }
            }
        }
        return true
    }

    static func distance(from point: SIMD2<Double>, toSegment a: SIMD2<Double>, _ b: SIMD2<Double>) -> Double {
        let edge = b - a
        let t = min(max(((point - a) * edge).sum() / max((edge * edge).sum(), 1e-12), 0), 1)
        let gap = point - (a + t * edge)
        return (gap * gap).sum().squareRoot()
    }
}
