import FlowPolicy
import Foundation
import PolicyLab
import PolicyRuntime
import SimBridge
import Testing

/// `eval --observation-noise` and `eval --disturbance` on the real Push-T environment and the shipped policy: the
/// noise follows its seed, the push comes at its step and nowhere else, and reports record both.
@Suite struct RobustnessEvaluationTests {
    func shippedPushT() throws -> (checkpoint: Checkpoint, path: String) {
        let path = "tasks/pusht/policy.safetensors"
        return (try Checkpoint(contentsOf: path), path)
    }

    func options(episodes: Int = 4) throws -> EvaluationSession.Options {
        var options = EvaluationSession.Options(task: try .named("pusht"))
        options.episodes = episodes
        options.steps = 2
        options.showProgress = false
        options.threads = 2
        return options
    }

    // MARK: Observation noise

    @Test func observationNoiseIsAFunctionOfItsSeedAndEpisode() {
        let clean: [Float] = (0..<20).map(Float.init)
        func noisy(seed: UInt64, episode: UInt64, sigma: Float = 2, draws: Int = 2) -> [Float] {
            var noise = ObservationNoise(standardDeviation: sigma, seed: seed, episode: episode)
            var out = [Float](repeating: 0, count: clean.count)
            for _ in 0..<draws { noise.apply(clean, into: &out, count: clean.count) }
            return out
        }
        #expect(noisy(seed: 0, episode: 100_000) == noisy(seed: 0, episode: 100_000))
        #expect(noisy(seed: 0, episode: 100_000) != noisy(seed: 1, episode: 100_000))
        #expect(noisy(seed: 0, episode: 100_000) != noisy(seed: 0, episode: 100_001))
        #expect(noisy(seed: 0, episode: 100_000, draws: 1) != noisy(seed: 0, episode: 100_000, draws: 2),
                "each observation draws new noise")
        #expect(noisy(seed: 0, episode: 100_000, sigma: 0) == clean)
        // σ is a standard deviation in the observation's units: 20 numbers x 500 draws at σ = 2.
        var noise = ObservationNoise(standardDeviation: 2, seed: 7, episode: 1)
        var out = [Float](repeating: 0, count: clean.count)
        var squares = 0.0
        for _ in 0..<500 {
            noise.apply(clean, into: &out, count: clean.count)
            squares += zip(out, clean).reduce(0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
        }
        #expect(abs((squares / 10_000).squareRoot() - 2) < 0.1)
    }

    @Test func noisyEvaluationsRepeatWithTheSameNoiseSeedAndDifferWithAnother() throws {
        let (checkpoint, path) = try shippedPushT()
        var options = try options()
        options.observationNoise = 5
        options.observationNoiseSeed = 1
        let first = try EvaluationSession.run(options, checkpoint: checkpoint, path: path)
        let again = try EvaluationSession.run(options, checkpoint: checkpoint, path: path)
        #expect(first.results == again.results)
        options.observationNoiseSeed = 2  // the policy's own sampling noise (policy seed 0) stays the same
        let other = try EvaluationSession.run(options, checkpoint: checkpoint, path: path)
        #expect(first.results.map(\.finalProgress) != other.results.map(\.finalProgress))
        options.observationNoise = 0
        options.observationNoiseSeed = nil
        let clean = try EvaluationSession.run(options, checkpoint: checkpoint, path: path)
        #expect(first.results.map(\.finalProgress) != clean.results.map(\.finalProgress))
        #expect(first.observationNoise == 5 && first.observationNoiseSeed == 1)
        #expect(first.observationNoiseUnits == "world units", "Push-T's keypoints and agent position")
        #expect(clean.observationNoiseUnits == nil && clean.observationNoiseSeed == nil)
        // σ where it is largest in the policy's inputs: 5 x 2 / the smallest range among the numbers that vary.
        let normalizer = checkpoint.observationNormalizer
        let ranges = zip(normalizer.maximum, normalizer.minimum).map { $0 - $1 }
        let narrowest = ranges.filter { $0 >= MinMaxNormalizer.rangeEpsilon }.min()!
        let normalized = try #require(first.observationNoiseNormalized)
        #expect(abs(normalized.standardDeviation - 5 * 2 / narrowest) <= 1e-5 * normalized.standardDeviation)
        #expect(ranges[normalized.observation] == narrowest && normalized.trainingRange == narrowest)
        #expect(clean.observationNoiseNormalized == nil)
    }

    @Test func numbersThatDoNotVaryAreNotWhereNoiseIsLargest() {
        let normalizer = MinMaxNormalizer(minimum: [0, 1, -1, 3], maximum: [0, 1.5, 1, 3.0005])
        let normalized = ObservationNoise.largestNormalized(0.01, by: normalizer)
        #expect(normalized.observation == 3, "range 5e-4: scale 4000; range 0 passes unscaled")
        #expect(abs(normalized.standardDeviation - 0.01 * 2 / normalized.trainingRange) < 1e-3)
    }

    @Test func negativeNoiseIsRefused() throws {
        let (checkpoint, path) = try shippedPushT()
        var options = try options()
        options.observationNoise = -1
        #expect(throws: FlowPolicyError.self) { try EvaluationSession.run(options, checkpoint: checkpoint, path: path) }
    }

    // MARK: Disturbance

    @Test func aRolloutIsPushedAtItsStepAndNowhereElse() throws {
        let pushStep = 10
        func observations(disturbed: Bool) throws -> [[Float]] {
            let rollout = try Rollout(task: .named("pusht"))
            try rollout.setDisturbance(disturbed ? Disturbance(step: pushStep) : nil)
            try rollout.reset(seed: 100_005)
            var seen = [Array(UnsafeBufferPointer(start: rollout.observation, count: 20))]
            let target: [Float] = [256, 256]
            for _ in 0..<20 {
                rollout.step(target)
                seen.append(Array(UnsafeBufferPointer(start: rollout.observation, count: 20)))
            }
            return seen
        }
        let clean = try observations(disturbed: false), pushed = try observations(disturbed: true)
        #expect(Array(clean.prefix(pushStep + 1)) == Array(pushed.prefix(pushStep + 1)))
        #expect(clean[pushStep + 1] != pushed[pushStep + 1])
        let rollout = try Rollout(task: .named("pusht"))
        #expect(throws: EnvironmentError.self) { try rollout.setDisturbance(Disturbance(step: 300)) }
    }

    @Test func disturbedEvaluationsRecordThePushAndChangeTheEpisodes() throws {
        let (checkpoint, path) = try shippedPushT()
        var options = try options(episodes: 6)
        let clean = try EvaluationSession.run(options, checkpoint: checkpoint, path: path)
        options.disturbance = Disturbance(step: 20)
        let pushed = try EvaluationSession.run(options, checkpoint: checkpoint, path: path)
        let again = try EvaluationSession.run(options, checkpoint: checkpoint, path: path)
        #expect(pushed.results == again.results, "the push is a function of the episode seed")
        let reachedThePush = clean.results.filter { $0.steps > 20 }.map(\.seed)
        #expect(pushed.disturbance?.step == 20)
        #expect(pushed.disturbance?.disturbedEpisodes == pushed.results.filter { $0.steps > 20 }.count)
        #expect(pushed.disturbance?.push.contains("T block") == true)
        // Episodes that ended before step 20 are the undisturbed ones; the others are not.
        for (a, b) in zip(clean.results, pushed.results) where !reachedThePush.contains(a.seed) { #expect(a == b) }
        #expect(!reachedThePush.isEmpty)
        #expect(zip(clean.results, pushed.results).contains { reachedThePush.contains($0.seed) && $0 != $1 })
        options.disturbance = Disturbance(step: 300)
        #expect(throws: (any Error).self) { try EvaluationSession.run(options, checkpoint: checkpoint, path: path) }
    }

    @Test func shardsOfADisturbedNoisyRunMergeIntoIt() throws {
        let (checkpoint, path) = try shippedPushT()
        var options = try options(episodes: 5)
        options.observationNoise = 2
        options.disturbance = Disturbance(step: 15)
        let whole = try EvaluationSession.run(options, checkpoint: checkpoint, path: path)
        let shards = try (0..<2).map { index in
            options.shard = Shard("\(index)/2")
            let report = try EvaluationSession.run(options, checkpoint: checkpoint, path: path)
            return (path: "shard \(index)", report: report)
        }
        let merged = try EvaluationMerge.merge(shards)
        #expect(merged.results == whole.results)
        #expect(merged.disturbance == whole.disturbance && merged.diffusionPolicyScore == whole.diffusionPolicyScore)
        var undisturbed = shards[1]
        undisturbed.report.disturbance = nil
        #expect(throws: FlowPolicyError.self) { try EvaluationMerge.merge([shards[0], undisturbed]) }
    }
}
