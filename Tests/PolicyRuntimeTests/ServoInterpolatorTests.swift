import CAllocationCounter
import FlowPolicy
import Foundation
import RuntimeTestSupport
import Testing

import PolicyRuntime

/// What a control loop does with the interpolator: per control period, a target (`setTarget`) or nil (`hold`), then
/// the period's N commands. Records the commands (Double) and the reference of each (nil when held), computed here
/// from the formula, independently of the interpolator.
private struct Drive {
    var commands: [[Double]] = []  // [ticks, Da]
    var references: [[Double]?] = []  // [ticks, Da]

    init(_ servo: ServoInterpolator, start: [Float]?, periods: [[Float]?], progress: (Double) -> Double) {
        if let start {
            start.withUnsafeBufferPointer { servo.reset(start: $0.baseAddress!) }
        } else {
            servo.reset(start: nil)
        }
        let (Da, N) = (servo.dimensions, servo.ticksPerControlPeriod)
        var previous: [Double]? = start.map { $0.map(Double.init) }
        var lastCommand = previous
        var command = [Double](repeating: 0, count: Da)
        for period in periods {
            var segment: (start: [Double], target: [Double])?
            if let target = period {
                target.withUnsafeBufferPointer { _ = servo.setTarget($0.baseAddress!) }
                let to = target.map(Double.init)
                segment = (previous ?? to, to)
                previous = to
            } else {
                servo.hold()
                previous = lastCommand
            }
            for tick in 0..<N {
                guard servo.command(tick: tick, into: &command) else { continue }
                commands.append(command)
                lastCommand = command
                references.append(segment.map { segment in
                    (0..<Da).map { d in
                        tick == N - 1
                            ? segment.target[d]
                            : segment.start[d] + progress(Double(tick + 1) / Double(N))
                                * (segment.target[d] - segment.start[d])
                    }
                })
            }
        }
    }

    /// Dimension `d` of every command.
    func trace(_ d: Int) -> [Double] { commands.map { $0[d] } }
}

/// Finite-difference velocity, acceleration and jerk of `commands` over `dt`, the robot at rest at `start` before the
/// first command: exactly what a robot measures.
private func differences(_ commands: [Double], start: Double, dt: Double)
    -> (velocity: [Double], acceleration: [Double], jerk: [Double]) {
    var (position, velocity, acceleration) = (start, 0.0, 0.0)
    var result: (velocity: [Double], acceleration: [Double], jerk: [Double]) = ([], [], [])
    for command in commands {
        let newVelocity = (command - position) / dt
        let newAcceleration = (newVelocity - velocity) / dt
        result.velocity.append(newVelocity)
        result.acceleration.append(newAcceleration)
        result.jerk.append((newAcceleration - acceleration) / dt)
        (position, velocity, acceleration) = (command, newVelocity, newAcceleration)
    }
    return result
}

private func largest(_ values: [Double]) -> Double { values.map(abs).max() ?? 0 }

private func minimumJerk(_ tau: Double) -> Double { 10 * pow(tau, 3) - 15 * pow(tau, 4) + 6 * pow(tau, 5) }

/// Expects every finite difference of dimension `d` within `limits` (1e-6 relative).
private func expectWithinLimits(_ drive: Drive, _ d: Int, start: Double, dt: Double, limits: ServoLimits,
                                sourceLocation: SourceLocation = #_sourceLocation) {
    let measured = differences(drive.trace(d), start: start, dt: dt)
    for (name, values, limit) in [("velocity", measured.velocity, limits.maximumVelocity),
                                  ("acceleration", measured.acceleration, limits.maximumAcceleration),
                                  ("jerk", measured.jerk, limits.maximumJerk)] {
        guard let limit = limit?[d] else { continue }
        #expect(largest(values) <= Double(limit) * (1 + 1e-6),
                "dimension \(d): largest |\(name)| \(largest(values)) above its limit \(limit)",
                sourceLocation: sourceLocation)
    }
}

@Suite struct ServoInterpolatorTests {
    // Tight limits: V = 50, A = 200, J = 2000 for a step of 100 at 1 kHz, 100 ticks per 10 Hz control period (it
    // takes 2.35 s at best); a second dimension with other limits steps the other way.
    static let stepLimits = try! ServoLimits(
        maximumVelocity: [50, 20], maximumAcceleration: [200, 100], maximumJerk: [2000, 5000])

    @Test(arguments: ServoInterpolation.allCases)
    func aStepStaysWithinTheLimitsAndConvergesWithoutOvershoot(interpolation: ServoInterpolation) throws {
        let dt = 0.001
        let servo = try ServoInterpolator(dimensions: 2, ticksPerControlPeriod: 100, servoPeriodSeconds: dt,
                                          interpolation: interpolation, limits: Self.stepLimits)
        let drive = Drive(servo, start: [0, 0], periods: Array(repeating: [100, -40], count: 30),
                          progress: interpolation.progress)
        for d in 0..<2 { expectWithinLimits(drive, d, start: 0, dt: dt, limits: Self.stepLimits) }

        // Time-optimal under these limits: distance / V + V / A + A / J (accelerate, cruise, brake, each jerk-limited).
        for (d, step, V, A, J) in [(0, 100.0, 50.0, 200.0, 2000.0), (1, -40.0, 20.0, 100.0, 5000.0)] {
            let trace = drive.trace(d)
            let overshoot = step > 0 ? trace.max()! - step : step - trace.min()!
            let settled = trace.lastIndex { $0 != step }.map { $0 + 1 } ?? 0
            let fastest = abs(step) / V + V / A + A / J
            #expect(overshoot <= 1e-9 * abs(step), "dimension \(d): overshoot \(overshoot)")
            #expect(trace.last == step, "dimension \(d) ends at \(trace.last!), not \(step)")
            #expect(Double(settled) * dt <= fastest * 1.005,
                    "dimension \(d) settles after \(Double(settled) * dt) s; time-optimal is \(fastest) s")
            // Monotone approach: never moving away from the target.
            #expect(zip(trace, trace.dropFirst()).allSatisfy { step > 0 ? $1 >= $0 : $1 <= $0 })
        }
        #expect(servo.limitedCommands > 2000)
    }

    @Test func aReversingStepStaysWithinTheLimits() throws {
        let dt = 0.001
        let servo = try ServoInterpolator(dimensions: 2, ticksPerControlPeriod: 100, servoPeriodSeconds: dt,
                                          interpolation: .minimumJerk, limits: Self.stepLimits)
        // +100, then -100 half a second in, at full speed; the second dimension reverses too, under other limits.
        let periods: [[Float]?] = Array(repeating: [100, 40], count: 5) + Array(repeating: [-100, -40], count: 45)
        let drive = Drive(servo, start: [0, 0], periods: periods, progress: ServoInterpolation.minimumJerk.progress)
        for d in 0..<2 { expectWithinLimits(drive, d, start: 0, dt: dt, limits: Self.stepLimits) }
        let first = drive.trace(0)
        #expect(first.last == -100 && drive.trace(1).last == -40)
        // The turn happens short of the first target, and the command never passes the second.
        #expect(first.max()! < 100 && first.min()! >= -100)
        let speed = differences(first, start: 0, dt: dt).velocity
        #expect(abs(speed[499]) >= 49, "at full speed when the target reverses")
    }

    @Test func limitsHoldOnTheFirstCommandFromRestTowardsAFarTarget() throws {
        let dt = 0.002
        let configurations: [ServoLimits] = [
            Self.stepLimits,
            try ServoLimits(maximumVelocity: [3, 0.5]),
            try ServoLimits(maximumAcceleration: [30, 2]),
            try ServoLimits(maximumJerk: [700, 9]),
            try ServoLimits(maximumVelocity: [3, 0.5], maximumAcceleration: [30, 2]),
        ]
        for limits in configurations {
            let servo = try ServoInterpolator(dimensions: 2, ticksPerControlPeriod: 5, servoPeriodSeconds: dt,
                                              interpolation: .linear, limits: limits)
            let drive = Drive(servo, start: [50, 0], periods: [[-10_000, 1e6], [-10_000, 1e6]],
                              progress: ServoInterpolation.linear.progress)
            for d in 0..<2 {
                let start = [50.0, 0.0][d]
                let firstOnly = Drive.first(drive)
                expectWithinLimits(firstOnly, d, start: start, dt: dt, limits: limits)
                expectWithinLimits(drive, d, start: start, dt: dt, limits: limits)
                // With a jerk limit the first command is a single jerk step: J dt³.
                if let jerk = limits.maximumJerk?[d] {
                    let moved = abs(drive.commands[0][d] - start)
                    #expect(abs(moved - Double(jerk) * dt * dt * dt) <= 1e-9 * moved)
                }
            }
        }
    }

    @Test func looseLimitsPassTheMinimumJerkReferenceUnchanged() throws {
        let (dt, N) = (0.002, 50)
        let targets: [[Float]?] = [[1, -3], [3, 0.5], [-2, 2], [-2, 2], [0.5, -1], [0.5, -1]]
        // The reference's own largest derivatives, measured with no limits, then limits 1% above them.
        let free = try ServoInterpolator(dimensions: 2, ticksPerControlPeriod: N, servoPeriodSeconds: dt,
                                         interpolation: .minimumJerk, limits: ServoLimits())
        let reference = Drive(free, start: [0, 0], periods: targets, progress: minimumJerk)
        func loose(_ figure: [Double]) -> [Float] { figure.map { Float($0 * 1.01) } }
        let limits = try ServoLimits(maximumVelocity: loose(free.largestVelocity),
                                     maximumAcceleration: loose(free.largestAcceleration),
                                     maximumJerk: loose(free.largestJerk))
        let servo = try ServoInterpolator(dimensions: 2, ticksPerControlPeriod: N, servoPeriodSeconds: dt,
                                          interpolation: .minimumJerk, limits: limits)
        var floats = [Float](repeating: 0, count: 2)
        var commanded: [[Float]] = []
        servo.reset(start: [0, 0])
        for target in targets {
            target!.withUnsafeBufferPointer { _ = servo.setTarget($0.baseAddress!) }
            for tick in 0..<N {
                servo.command(tick: tick, into: &floats)
                commanded.append(floats)
            }
        }
        #expect(servo.limitedCommands == 0)
        for d in 0..<2 {
            // Every command is the independently computed reference, in Float.
            for (tick, command) in commanded.enumerated() {
                let expected = reference.references[tick]![d]
                #expect(abs(Double(command[d]) - expected) <= 1e-6 * max(1, abs(expected)), "tick \(tick)")
            }
            let measured = differences(reference.trace(d), start: 0, dt: dt)
            for (period, target) in targets.enumerated() {
                let last = (period + 1) * N - 1
                #expect(abs(commanded[last][d] - target![d]) <= 1e-5, "tick N - 1 reaches the target")
                // Velocity and acceleration vanish at both ends of a segment: what is left is one tick's worth of
                // the next derivative (s(1/N) ≈ 10 / N³, so the velocity is about 5 / N² of its peak, the
                // acceleration about 10 / N of its peak).
                let peakVelocity = largest(Array(measured.velocity[(last + 1 - N)...last]))
                let peakAcceleration = largest(Array(measured.acceleration[(last + 1 - N)...last]))
                guard peakVelocity > 0 else { continue }
                for end in [last + 1 - N, last] {
                    #expect(abs(measured.velocity[end]) <= 6 / Double(N * N) * peakVelocity)
                    #expect(abs(measured.acceleration[end]) <= 12 / Double(N) * peakAcceleration)
                }
            }
        }
    }

    @Test func looseLimitsPassTheLinearReferenceUnchanged() throws {
        let (dt, N) = (0.001, 20)
        let targets: [[Float]?] = [[0.3], [0.9], [0.4], [0.4], [1.5]]
        let free = try ServoInterpolator(dimensions: 1, ticksPerControlPeriod: N, servoPeriodSeconds: dt,
                                         interpolation: .linear, limits: ServoLimits())
        _ = Drive(free, start: [0], periods: targets, progress: { $0 })
        func loose(_ figure: [Double]) -> [Float] { figure.map { Float($0 * 1.01) } }
        let limits = try ServoLimits(maximumVelocity: loose(free.largestVelocity),
                                     maximumAcceleration: loose(free.largestAcceleration),
                                     maximumJerk: loose(free.largestJerk))
        let servo = try ServoInterpolator(dimensions: 1, ticksPerControlPeriod: N, servoPeriodSeconds: dt,
                                          interpolation: .linear, limits: limits)
        let drive = Drive(servo, start: [0], periods: targets, progress: { $0 })
        #expect(servo.limitedCommands == 0)
        // On the straight line between consecutive targets, at equal steps.
        var start = 0.0
        for (period, target) in targets.enumerated() {
            let to = Double(target![0])
            for tick in 0..<N {
                let expected = start + Double(tick + 1) / Double(N) * (to - start)
                #expect(abs(drive.commands[period * N + tick][0] - expected) <= 1e-12)
            }
            start = to
        }
    }

    @Test(arguments: ServoInterpolation.allCases)
    func withoutLimitsTheCommandIsTheReferenceExactly(interpolation: ServoInterpolation) throws {
        var generator = RandomSource(seed: 11)
        let servo = try ServoInterpolator(dimensions: 3, ticksPerControlPeriod: 7, servoPeriodSeconds: 0.01,
                                          interpolation: interpolation, limits: ServoLimits())
        let periods: [[Float]?] = (0..<30).map { period in
            period == 12 ? nil : (0..<3).map { _ in Float.random(in: -50...50, using: &generator) }
        }
        // Starts with no position: the first segment is constant at its target.
        let drive = Drive(servo, start: nil, periods: periods, progress: interpolation.progress)
        #expect(drive.commands.count == 30 * 7)
        for (command, reference) in zip(drive.commands, drive.references) where reference != nil {
            #expect(command == reference!)
        }
        #expect(Array(drive.commands[0..<7]) == Array(repeating: periods[0]!.map(Double.init), count: 7))
        #expect(servo.limitedCommands == 0)
        // The progress the exact comparison relies on is the minimum-jerk polynomial (or τ).
        for tau in stride(from: 0.0, through: 1.0, by: 1.0 / 64) {
            let expected = interpolation == .linear ? tau : minimumJerk(tau)
            #expect(abs(interpolation.progress(tau) - expected) <= 1e-14)
        }
    }

    @Test func aHoldKeepsTheCommandAndTheNextSegmentStartsFromIt() throws {
        let (dt, N) = (0.001, 10)
        let servo = try ServoInterpolator(dimensions: 1, ticksPerControlPeriod: N, servoPeriodSeconds: dt,
                                          interpolation: .minimumJerk, limits: ServoLimits())
        var command = [Double](repeating: 0, count: 1)
        // Before any position is known there is nothing to command; after a reset with a start, the start is held.
        #expect(!servo.command(tick: 0, into: &command))
        servo.reset(start: [2])
        #expect(servo.command(tick: 0, into: &command) && command == [2])
        servo.setTarget([10])
        for tick in 0..<N { servo.command(tick: tick, into: &command) }
        #expect(command == [10])
        servo.setTarget([20])
        for tick in 0..<4 { servo.command(tick: tick, into: &command) }
        let held = command[0]
        #expect(held > 10 && held < 20)
        servo.hold()
        for tick in 4..<N {
            servo.command(tick: tick, into: &command)
            #expect(command[0] == held)
        }
        servo.setTarget([0])
        for tick in 0..<N {
            servo.command(tick: tick, into: &command)
            let expected = tick == N - 1 ? 0 : held + minimumJerk(Double(tick + 1) / Double(N)) * (0 - held)
            #expect(abs(command[0] - expected) <= 1e-12 * held)
        }
        // A non-finite target is not followed: the command holds.
        #expect(!servo.setTarget([.nan]))
        servo.command(tick: 0, into: &command)
        #expect(command == [0])
    }

    @Test func limitsAreRefusedWithAMessageNamingTheLimitTheDimensionAndTheValue() throws {
        func message(_ make: () throws(RuntimeError) -> ServoLimits) -> String {
            do {
                _ = try make()
                return "accepted"
            } catch {
                return error.description
            }
        }
        let nan = message { () throws(RuntimeError) in
            try ServoLimits(maximumVelocity: [1, 1, .nan])
        }
        #expect(nan.contains("maximum velocity") && nan.contains("dimension 2") && nan.contains("nan"), "\(nan)")
        let zero = message { () throws(RuntimeError) in try ServoLimits(maximumAcceleration: [0, 1, 1]) }
        #expect(zero.contains("maximum acceleration") && zero.contains("dimension 0") && zero.contains("0.0"))
        let negative = message { () throws(RuntimeError) in try ServoLimits(maximumJerk: [1, -5, 1]) }
        #expect(negative.contains("maximum jerk") && negative.contains("dimension 1") && negative.contains("-5.0"))
        let infinite = message { () throws(RuntimeError) in
            try ServoLimits(maximumVelocity: [1, .infinity, 1])
        }
        #expect(infinite.contains("dimension 1") && infinite.contains("inf"), "\(infinite)")
        let count = message { () throws(RuntimeError) in
            try ServoLimits(maximumVelocity: [1, 2, 3], maximumJerk: [1, 2])
        }
        #expect(count.contains("maximum jerk has 2 values but the maximum velocity has 3"), "\(count)")
        #expect(message { () throws(RuntimeError) in try ServoLimits(maximumAcceleration: []) }.contains("no values"))
        #expect(try ServoLimits().dimensions == nil && ServoLimits(maximumJerk: [1, 2]).dimensions == 2)

        // Decoding validates too, and a valid value round-trips.
        let valid = try ServoLimits(maximumVelocity: [1, 2], maximumJerk: [30, 40])
        let decoded = try JSONDecoder().decode(ServoLimits.self, from: JSONEncoder().encode(valid))
        #expect(decoded == valid && decoded.maximumAcceleration == nil)
        let invalid = Data(#"{"maximumVelocity": [1, -2]}"#.utf8)
        #expect(throws: RuntimeError.self) { try JSONDecoder().decode(ServoLimits.self, from: invalid) }

        // The interpolator refuses limits for another dimension count, no dimensions, no ticks and non-positive
        // periods.
        for dimensions in [3, 0] {
            #expect(throws: RuntimeError.self) {
                try ServoInterpolator(dimensions: dimensions, ticksPerControlPeriod: 10, servoPeriodSeconds: 0.001,
                                      interpolation: .linear, limits: dimensions == 0 ? ServoLimits() : valid)
            }
        }
        for (ticks, period) in [(0, 0.001), (10, 0), (10, -0.001), (10, .nan), (10, .infinity)] {
            #expect(throws: RuntimeError.self) {
                try ServoInterpolator(dimensions: 2, ticksPerControlPeriod: ticks, servoPeriodSeconds: period,
                                      interpolation: .linear, limits: valid)
            }
        }
    }

    @Test func theFiguresAreTheFiniteDifferencesOfTheCommands() throws {
        let dt = 0.001
        let servo = try ServoInterpolator(dimensions: 2, ticksPerControlPeriod: 50, servoPeriodSeconds: dt,
                                          interpolation: .linear, limits: Self.stepLimits)
        // Steps, a reversal, a hold while moving (an abrupt stop, which the figures must show), a restart.
        let periods: [[Float]?] = [[100, -40], [100, -40], [100, -40], [-20, 10], nil, [-20, 10], [-20, 10]]
        let drive = Drive(servo, start: [0, 0], periods: periods, progress: { $0 })
        for d in 0..<2 {
            let measured = differences(drive.trace(d), start: 0, dt: dt)
            for (figure, independent) in [(servo.largestVelocity[d], largest(measured.velocity)),
                                          (servo.largestAcceleration[d], largest(measured.acceleration)),
                                          (servo.largestJerk[d], largest(measured.jerk))] {
                #expect(abs(figure - independent) <= 1e-12 * independent, "dimension \(d)")
            }
        }
        // The hold shows: the acceleration figure is far above the limit (everything else keeps to it).
        #expect(servo.largestAcceleration[0] > 1000)
        let changed = zip(drive.commands, drive.references).filter { command, reference in
            reference.map { $0 != command } ?? false
        }.count
        #expect(servo.limitedCommands == changed && changed > 0)
    }

    @Test func floatCommandsAreTheDoubleCommandsRounded() throws {
        func make() throws -> ServoInterpolator {
            let servo = try ServoInterpolator(dimensions: 2, ticksPerControlPeriod: 20, servoPeriodSeconds: 0.001,
                                              interpolation: .minimumJerk, limits: Self.stepLimits)
            servo.reset(start: [0, 0])
            servo.setTarget([100, -40])
            return servo
        }
        let (single, double) = (try make(), try make())
        var (floats, doubles) = ([Float](repeating: 0, count: 2), [Double](repeating: 0, count: 2))
        for period in 0..<50 {
            if period == 25 { for servo in [single, double] { servo.setTarget([-3, 7]) } }
            for tick in 0..<20 {
                single.command(tick: tick, into: &floats)
                double.command(tick: tick, into: &doubles)
                #expect(floats == doubles.map { Float($0) })
            }
        }
    }

    @Test func setTargetCommandAndHoldAllocateNothing() throws {
        let servo = try ServoInterpolator(dimensions: 7, ticksPerControlPeriod: 20, servoPeriodSeconds: 0.001,
                                          interpolation: .minimumJerk, limits: try ServoLimits(
                                              maximumVelocity: Array(repeating: 2, count: 7),
                                              maximumAcceleration: Array(repeating: 10, count: 7),
                                              maximumJerk: Array(repeating: 500, count: 7)))
        let targets = UnsafeMutablePointer<Float>.allocate(capacity: 2 * 7)  // [2, Da]
        defer { targets.deallocate() }
        for i in 0..<14 { targets[i] = Float(i % 7) * (i < 7 ? 0.1 : -0.2) }
        let command = UnsafeMutablePointer<Float>.allocate(capacity: 7)  // [Da]
        defer { command.deallocate() }
        func period(_ k: Int) {
            if k % 9 == 8 { servo.hold() } else { servo.setTarget(targets + (k % 2) * 7) }
            for tick in 0..<20 { servo.command(tick: tick, into: command) }
        }
        servo.reset(start: targets)
        for k in 0..<10 { period(k) }  // warm-up
        let before = fp_thread_allocation_count()
        for k in 0..<100 { period(k) }
        let allocations = fp_thread_allocation_count() - before
        #expect(allocations == 0, "\(allocations) allocations in 100 control periods")
        #expect(servo.limitedCommands > 0)
    }

    /// Random limits (any subset), targets, rates and interpolations: the limits hold on every command, the command
    /// never leaves the span of the start and the targets, and holding the last target it arrives there exactly.
    @Test func randomScenariosKeepTheLimitsAndArrive() throws {
        var generator = RandomSource(seed: 2024)
        for scenario in 0..<40 {
            let dt = [0.001, 0.002][scenario % 2]
            let N = [1, 5, 20, 50].randomElement(using: &generator)!
            func maybe(_ range: ClosedRange<Double>) -> [Float]? {
                Bool.random(using: &generator) ? nil : [Float(pow(10, Double.random(in: range, using: &generator)))]
            }
            let limits = try ServoLimits(maximumVelocity: maybe(0.5...1.5),
                                         maximumAcceleration: maybe(1...2.5), maximumJerk: maybe(2...3.5))
            let interpolation = ServoInterpolation.allCases.randomElement(using: &generator)!
            let servo = try ServoInterpolator(dimensions: 1, ticksPerControlPeriod: N, servoPeriodSeconds: dt,
                                              interpolation: interpolation, limits: limits)
            let targets = (0..<Int.random(in: 1...6, using: &generator)).map { _ in
                [Float.random(in: -2...2, using: &generator)]
            }
            // Long enough to cross the span (at most 4) under each limit alone, summed, with a margin.
            let crossing = (limits.maximumVelocity.map { 4 / Double($0[0]) } ?? 0)
                + (limits.maximumAcceleration.map { 2 * (4 / Double($0[0])).squareRoot() } ?? 0)
                + (limits.maximumJerk.map { cbrt(32 * 4 / Double($0[0])) } ?? 0)
            let holdPeriods = Int(1.5 * crossing / (Double(N) * dt)) + 5
            let periods: [[Float]?] = targets + Array(repeating: targets.last!, count: holdPeriods)
            let drive = Drive(servo, start: [0], periods: periods, progress: interpolation.progress)
            expectWithinLimits(drive, 0, start: 0, dt: dt, limits: limits)
            let trace = drive.trace(0)
            let span = targets.map { Double($0[0]) } + [0]
            #expect(trace.max()! <= span.max()! + 1e-9 && trace.min()! >= span.min()! - 1e-9,
                    "scenario \(scenario): left the span of the targets")
            #expect(trace.suffix(N).allSatisfy { $0 == Double(targets.last![0]) },
                    "scenario \(scenario): ends at \(trace.last!), target \(targets.last![0]) (\(limits))")
        }
    }
}

extension Drive {
    /// Only the first command of `drive`.
    fileprivate static func first(_ drive: Drive) -> Drive {
        var first = drive
        first.commands = [drive.commands[0]]
        first.references = [drive.references[0]]
        return first
    }
}
