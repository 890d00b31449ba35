import CAllocationCounter
import Testing
import FlowPolicy

private func trainedToyCheckpoint(seed: UInt64, threads: Int = 2, steps: Int = 5) throws -> Checkpoint {
    var configuration = TrainingConfiguration()
    configuration.steps = steps
    configuration.batchSize = 32
    configuration.seed = seed
    configuration.threads = threads
    let spec = PolicySpec(task: "toy", observationSteps: 2, actionSteps: 3, predictionSteps: 6,
                          observationDimensions: 3, actionDimensions: 2)
    var dataset = EpisodeDataset(observationDimensions: 3, actionDimensions: 2)
    var generator = RandomSource(seed: 99)
    for _ in 0..<4 {
        try dataset.appendEpisode(observations: (0..<30).map { _ in generator.nextUniform() },
                                  actions: (0..<20).map { _ in generator.nextUniform() })
    }
    let trainer = try FlowMatchingTrainer(
        spec: spec, network: spec.networkConfiguration(hidden: 16, blocks: 2, timeEmbedding: 8), dataset: dataset,
        configuration: configuration)
    for _ in 0..<steps { try trainer.trainStep() }
    return trainer.checkpoint()
}

@Suite struct PolicyTests {
    @Test func fixedSeedsGiveBitIdenticalTraining() throws {
        let a = try trainedToyCheckpoint(seed: 7).parameters.array.map(\.bitPattern)
        let b = try trainedToyCheckpoint(seed: 7).parameters.array.map(\.bitPattern)
        let c = try trainedToyCheckpoint(seed: 8).parameters.array.map(\.bitPattern)
        #expect(a == b)
        #expect(a != c)
    }

    @Test func predictActionReturnsTheExecutedSliceOfTheChunk() throws {
        let policy = Policy(checkpoint: try trainedToyCheckpoint(seed: 1), capacity: 3, method: .midpoint, steps: 4)
        let observations = randomValues(3 * 2 * 3, seed: 3)
        let (action, prediction) = policy.predictAction(observations: observations, batch: 3)
        #expect(action.count == 3 * 3 * 2 && prediction.count == 3 * 6 * 2)
        for row in 0..<3 {
            // Executed steps are To - 1 ..< To - 1 + Ta = 1 ..< 4 of the Tp = 6 chunk.
            #expect(Array(action[(row * 6)..<(row * 6 + 6)]) == Array(prediction[(row * 12 + 2)..<(row * 12 + 8)]))
        }
        #expect(action.allSatisfy { $0.isFinite })
    }

    @Test func sameSeedSameChunks() throws {
        let checkpoint = try trainedToyCheckpoint(seed: 1)
        let observations = randomValues(2 * 3, seed: 4)
        let first = Policy(checkpoint: checkpoint, seed: 11).predictAction(observations: observations)
        let second = Policy(checkpoint: checkpoint, seed: 11).predictAction(observations: observations)
        let other = Policy(checkpoint: checkpoint, seed: 12).predictAction(observations: observations)
        #expect(first.actionPrediction == second.actionPrediction)
        #expect(first.actionPrediction != other.actionPrediction)
    }

    /// Splitting a batch over worker threads changes nothing but rounding (the noise is drawn before the split).
    @Test func workersAgreeWithOneThread() throws {
        let checkpoint = try trainedToyCheckpoint(seed: 1)
        let observations = randomValues(7 * 2 * 3, seed: 6)
        let single = Policy(checkpoint: checkpoint, capacity: 9, seed: 3).predictAction(observations: observations, batch: 7)
        let split = Policy(checkpoint: checkpoint, capacity: 9, seed: 3, workers: 2)
            .predictAction(observations: observations, batch: 7)
        let worst = zip(single.actionPrediction, split.actionPrediction).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-4, "largest difference \(worst)")
    }

    /// Continuation: the committed prefix comes back exactly (up to the normalizer's rounding), for every solver, and
    /// the rest of the chunk is sampled.
    /// With a noise seed per row, a row's chunk is the same bits whatever batch, position or worker count it is
    /// sampled with (what sharded evaluation relies on): on the toy network and on the shipped Push-T policy's.
    @Test(arguments: ["toy", "tasks/pusht/policy.safetensors"])
    func seededRowsDoNotDependOnTheirBatch(source: String) throws {
        let checkpoint = source == "toy" ? try trainedToyCheckpoint(seed: 1) : try Checkpoint(contentsOf: source)
        let spec = checkpoint.spec
        let (window, chunk) = (spec.observationSteps * spec.observationDimensions,
                               spec.predictionSteps * spec.actionDimensions)
        let rows = 67
        let observations = randomValues(rows * window, seed: 5)
        let seeds = (0..<UInt64(rows)).map { 1000 + $0 * 7 }
        func sample(rows range: Range<Int>, workers: Int) -> [UInt32] {
            let policy = Policy(checkpoint: checkpoint, capacity: range.count, steps: 3, workers: workers)
            var chunks = [Float](repeating: 0, count: range.count * chunk)
            observations[(range.lowerBound * window)...].withUnsafeBufferPointer { o in
                seeds[range.lowerBound...].withUnsafeBufferPointer { s in
                    chunks.withUnsafeMutableBufferPointer { c in
                        policy.predictAction(observations: o.baseAddress!, batch: range.count, action: nil,
                                             actionPrediction: c.baseAddress!, noiseSeeds: s.baseAddress!)
                    }
                }
            }
            return chunks.map(\.bitPattern)
        }
        let whole = sample(rows: 0..<rows, workers: 1)
        #expect(sample(rows: 0..<rows, workers: 2) == whole)
        for range in [0..<1, 5..<6, 3..<10, 17..<50, 66..<67] {
            let part = sample(rows: range, workers: 2)
            let differing = zip(part, whole[(range.lowerBound * chunk)...]).filter { $0 != $1 }.count
            #expect(differing == 0, "rows \(range): \(differing) of \(part.count) numbers differ")
        }
    }

    @Test func committedPrefixIsKept() throws {
        let checkpoint = try trainedToyCheckpoint(seed: 1)
        for method in SolverMethod.allCases {
            let policy = Policy(checkpoint: checkpoint, capacity: 2, method: method, steps: 3, seed: 4)
            let observations = FloatBuffer(randomValues(2 * 2 * 3, seed: 7))
            let committed = FloatBuffer(randomValues(2 * 2 * 2, scale: 0.8, seed: 8))  // [B=2, P=2, Da=2]
            let action = FloatBuffer(count: 2 * 3 * 2)
            let prediction = FloatBuffer(count: 2 * 6 * 2)
            policy.predictAction(observations: observations.pointer, batch: 2, action: action.pointer,
                                 actionPrediction: prediction.pointer, committed: committed.pointer, committedSteps: 2)
            for row in 0..<2 {
                for j in 0..<4 { #expect(abs(prediction[row * 12 + j] - committed[row * 4 + j]) < 1e-5, "\(method)") }
            }
            #expect((0..<24).allSatisfy { prediction[$0].isFinite })
        }
    }

    /// The same noise and windows give nearly fp32's chunks at bf16 and int8 (normalized units; `bench infer` prints
    /// these errors for real policies), and fp32 on the packed kernel matches OpenBLAS to float rounding.
    @Test func reducedPrecisionChunksStayNearFP32() throws {
        let checkpoint = try trainedToyCheckpoint(seed: 1, steps: 30)
        let observations = randomValues(8 * 2 * 3, seed: 4)
        func chunks(_ precision: Precision, openBLAS: Bool = false) -> [Float] {
            let policy = Policy(checkpoint: checkpoint, capacity: 8, steps: 10, seed: 9, precision: precision,
                                openBLAS: openBLAS)
            return checkpoint.actionNormalizer.normalized(policy.predictAction(observations: observations, batch: 8).1)
        }
        func largestDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! }
        let fp32 = chunks(.fp32)
        #expect(largestDifference(fp32, chunks(.fp32, openBLAS: true)) < 1e-5)
        for (precision, bound) in [(Precision.bf16, Float(0.02)), (.int8, 0.05)] {
            let difference = largestDifference(fp32, chunks(precision))
            #expect(difference > 0 && difference < bound, "\(precision): \(difference)")
        }
    }

    /// After a warm-up call, sampling a chunk allocates nothing on the heap, at batch 1 and batched, for every solver
    /// and precision.
    @Test(arguments: Precision.allCases) func predictActionAllocatesNothing(precision: Precision) throws {
        let checkpoint = try trainedToyCheckpoint(seed: 1)
        for method in SolverMethod.allCases {
            for batch in [1, 4] {
                let policy = Policy(checkpoint: checkpoint, capacity: 4, method: method, steps: 3,
                                    precision: precision)
                let observations = FloatBuffer(randomValues(batch * 2 * 3, seed: 5))
                let action = FloatBuffer(count: batch * 3 * 2)
                let prediction = FloatBuffer(count: batch * 6 * 2)
                policy.predictAction(observations: observations.pointer, batch: batch, action: action.pointer,
                                     actionPrediction: prediction.pointer)
                let before = fp_thread_allocation_count()
                for _ in 0..<10 {
                    policy.predictAction(observations: observations.pointer, batch: batch, action: action.pointer,
                                         actionPrediction: prediction.pointer)
                }
                let allocations = fp_thread_allocation_count() - before
                #expect(allocations == 0,
                        "\(precision) \(method) batch \(batch): \(allocations) allocations in 10 calls")
            }
        }
        // The counter itself works: an array allocates.
        let before = fp_thread_allocation_count()
        let array = [Float](repeating: 1, count: 1000)
        #expect(fp_thread_allocation_count() > before && array.count == 1000)
    }
}
