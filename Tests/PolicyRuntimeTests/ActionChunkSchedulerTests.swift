import FlowPolicy
import Foundation
import PolicyRuntime
import RuntimeTestSupport
import Testing

/// To = 2, Ta = 3, Tp = 8, Da = 1; the chunk requested at step r holds 100 r + i at index i, so every action tells
/// which chunk and which index it came from.
private let spec = PolicySpec(task: "test", observationSteps: 2, actionSteps: 3, predictionSteps: 8,
                              observationDimensions: 1, actionDimensions: 1)

private func chunk(requestedAt r: Int) -> [Float] { (0..<8).map { Float(100 * r + $0) } }

/// Drives `scheduler` for `steps` steps: a chunk arrives `delay` steps after its request (never for requests listed
/// in `lost`); records the action of each step (nil when none) and what is commanded.
private func drive(_ scheduler: ActionChunkScheduler, steps: Int, delay: Int, lost: Set<Int> = [])
    -> [Float?]
{
    scheduler.reset(firstRequestAt: 0)
    var inFlight: (request: Int, arrives: Int)?
    var actions: [Float?] = []
    var action: Float = 0
    for t in 0..<steps {
        if let flight = inFlight, flight.arrives <= t {
            scheduler.accept(chunk: chunk(requestedAt: flight.request), requestStep: flight.request)
            inFlight = nil
        }
        if scheduler.requestDue(at: t) {
            scheduler.requested(at: t)
            if !lost.contains(t) { inFlight = (t, t + delay) }
            if delay == 0, let flight = inFlight {
                scheduler.accept(chunk: chunk(requestedAt: flight.request), requestStep: flight.request)
                inFlight = nil
            }
        }
        let covered = scheduler.action(at: t, into: &action)
        actions.append(covered ? action : nil)
        withUnsafePointer(to: action) { scheduler.recordCommanded(covered ? $0 : nil, at: t) }
    }
    return actions
}

@Suite struct ActionChunkSchedulerTests {
    @Test func recedingHorizonExecutesTaActionsStartingLeadStepsAfterTheRequest() throws {
        let scheduler = try ActionChunkScheduler(spec: spec, mode: .receding, lead: 1)
        let actions = drive(scheduler, steps: 10, delay: 1)
        // Chunk 0 (requested at 0) from step 1: indices To-1+1...; chunk 3 from step 4; chunk 6 from step 7.
        #expect(actions == [nil, 2, 3, 4, 302, 303, 304, 602, 603, 604])
        #expect(scheduler.boundaries == 2 && scheduler.largestBoundaryJump == 298 && scheduler.interiorSteps == 6)
        #expect(scheduler.largestInteriorChange == 1)
    }

    @Test func aChunkThatArrivesEarlyWaitsForItsTurn() throws {
        let scheduler = try ActionChunkScheduler(spec: spec, mode: .receding, lead: 2)
        // Requests every Ta = 3 steps; chunks come back at once but start 2 steps after their request, except the
        // first, which starts as soon as it is there.
        let actions = drive(scheduler, steps: 9, delay: 0)
        #expect(actions == [1, 2, 3, 4, 5, 303, 304, 305, 603])
    }

    @Test func aLostChunkIsAMissedDeadlineAtItsTurn() throws {
        let scheduler = try ActionChunkScheduler(spec: spec, mode: .receding, lead: 1)
        scheduler.reset(firstRequestAt: 0)
        scheduler.requested(at: 0)
        #expect(!scheduler.deadlineMissed(at: 0) && scheduler.deadlineMissed(at: 1))
        scheduler.accept(chunk: chunk(requestedAt: 0), requestStep: 0)
        #expect(!scheduler.deadlineMissed(at: 1) && !scheduler.requestDue(at: 2) && scheduler.requestDue(at: 3))
        let actions = drive(scheduler, steps: 9, delay: 1, lost: [3])
        // Chunk 0 runs out of its Ta steps but still covers the next ones (the loop stops at the missed deadline).
        #expect(actions == [nil, 2, 3, 4, 5, 6, 7, nil, nil])
    }

    @Test func temporalEnsemblingAveragesOverlappingChunksWithACTWeights() throws {
        let k: Float = 0.5
        let scheduler = try ActionChunkScheduler(spec: spec, mode: .ensemble, lead: 1, replanInterval: 1,
                                                 ensembleDecay: k)
        let actions = drive(scheduler, steps: 12, delay: 1)
        // At step t the chunks requested at r with r + 1 <= t and 1 + (t - r) < 8 cover it, oldest first with
        // weight exp(-k i).
        for t in 1..<12 {
            let requests = (max(0, t - 6)...(t - 1))
            var sum: Float = 0, weights: Float = 0
            for (i, r) in requests.enumerated() {
                let w = expf(-k * Float(i))
                sum += w * Float(100 * r + 1 + (t - r))
                weights += w
            }
            let expected = sum / weights
            let got = try #require(actions[t])
            #expect(abs(got - expected) <= 1e-3 * abs(expected), "step \(t): \(got) vs \(expected)")
        }
    }

    @Test func continuationCommitsPastCommandsAndThePlannedActionsUntilTheNewChunkStarts() throws {
        let scheduler = try ActionChunkScheduler(spec: spec, mode: .continuation, lead: 1)
        scheduler.reset(firstRequestAt: 0)
        var committed = [Float](repeating: -1, count: 8)
        // Nothing commanded yet: no prefix.
        #expect(scheduler.committedPrefix(forRequestAt: 0, into: &committed) == 0)
        scheduler.requested(at: 0)
        scheduler.accept(chunk: chunk(requestedAt: 0), requestStep: 0)
        var action: Float = 0
        for t in 1...2 {
            #expect(scheduler.action(at: t, into: &action))
            var commanded = action + 0.5  // what the robot got may differ from the plan (a HOLD, say)
            scheduler.recordCommanded(&commanded, at: t)
        }
        // A request at step 3 keeps chunk indices 0 ..< To - 1 + lead = 2: step 2 (commanded: 3.5) and step 3
        // (planned by chunk 0: index 1 + 3 = 4).
        #expect(scheduler.committedPrefix(forRequestAt: 3, into: &committed) == 2)
        #expect(Array(committed[0..<2]) == [3.5, 4])
        let receding = try ActionChunkScheduler(spec: spec, mode: .receding, lead: 1)
        #expect(receding.committedPrefix(forRequestAt: 3, into: &committed) == 0)
    }

    @Test func leadThatDoesNotFitTheChunkIsRefused() {
        // Receding: To - 1 + lead + Ta <= Tp, so lead <= 4 here.
        #expect(throws: RuntimeError.self) { try ActionChunkScheduler(spec: spec, mode: .receding, lead: 5) }
        #expect(throws: Never.self) { try ActionChunkScheduler(spec: spec, mode: .receding, lead: 4) }
    }
}
