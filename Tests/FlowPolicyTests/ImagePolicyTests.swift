import CAllocationCounter
import Foundation
import Testing
import FlowPolicy

/// Demonstrations where only the camera tells the action: a 16 x 16 frame shows a white square on the left or on the
/// right, and the expert holds the action at 0.2 (left) or 0.8 (right) in both dimensions. The low-dimensional
/// observation is the same constant everywhere, so a policy that ignores the frames can only sample both modes.
private func squareDataset(episodes: Int = 16, length: Int = 20) throws -> EpisodeDataset {
    let camera = CameraSpec(name: "top", height: 16, width: 16)
    var dataset = EpisodeDataset(observationDimensions: 1, actionDimensions: 2, cameras: [camera],
                                 metadata: ["task": "squares"])
    for episode in 0..<episodes {
        let right = episode % 2 == 1
        dataset.metadata["episodes"] = String(episode + 1)
        try dataset.appendEpisode(
            observations: [Float](repeating: 0.5, count: length),
            actions: [Float](repeating: right ? 0.8 : 0.2, count: 2 * length),
            stepFrames: Array((0..<length).map { _ in squareFrame(right: right) }.joined()))
    }
    return dataset
}

private func squareFrame(right: Bool) -> [UInt8] {
    var frame = [UInt8](repeating: 30, count: 16 * 16 * 3)
    let left = right ? 10 : 2
    for y in 6..<10 { for x in left..<(left + 4) { for c in 0..<3 { frame[(y * 16 + x) * 3 + c] = 250 } } }
    return frame
}

private func trainedSquarePolicy(steps: Int) throws -> Checkpoint {
    let dataset = try squareDataset()
    let spec = PolicySpec(task: "squares", observationSteps: 2, actionSteps: 2, predictionSteps: 4,
                          observationDimensions: 1, actionDimensions: 2, cameras: dataset.cameras)
    let encoder = ImageEncoderConfiguration(backbone: .smallCNN, height: 14, width: 14, keypoints: 8, features: 16)
    var configuration = TrainingConfiguration()
    configuration.steps = steps
    configuration.batchSize = 32
    configuration.learningRate = 1e-3
    configuration.warmupSteps = 20
    configuration.threads = 2
    let trainer = try FlowMatchingTrainer(
        spec: spec,
        network: spec.networkConfiguration(hidden: 32, blocks: 2, timeEmbedding: 8, imageFeatures: 16),
        dataset: dataset, configuration: configuration, imageEncoder: encoder)
    for _ in 0..<steps { try trainer.trainStep() }
    return trainer.checkpoint()
}

/// First executed action of `count` chunks sampled for a window of the square on one side.
private func sampledActions(_ policy: Policy, right: Bool, count: Int = 32) -> [Float] {
    let frames = Array((0..<(count * 2)).map { _ in squareFrame(right: right) }.joined())
    let observations = [Float](repeating: 0.5, count: count * 2)
    let action = policy.predictAction(observations: observations, frames: frames, batch: count).action
    return (0..<count).map { action[$0 * 2 * 2] }
}

@Suite struct ImagePolicyTests {
    @Test func datasetsKeepTheirFrames() throws {
        let dataset = try squareDataset(episodes: 4, length: 5)
        #expect(dataset.frames[0].count == 20 * 16 * 16 * 3)
        let path = temporaryPath("squares.safetensors")
        try dataset.write(to: path)
        let loaded = try EpisodeDataset(contentsOf: path)
        #expect(loaded == dataset)
        #expect(loaded.metadata["cameras"] == nil)  // the camera list lives in `cameras`, not in the metadata
        let subset = dataset.subset(episodes: [3])
        #expect(subset.frames[0] == Array(dataset.frames[0][(15 * 768)..<(20 * 768)]))
        // A frame count that does not match the steps is refused, naming the cameras.
        var other = dataset
        #expect(throws: FlowPolicyError.self) {
            try other.appendEpisode(observations: [0.5], actions: [0.2, 0.2], stepFrames: [1, 2, 3])
        }
        // A file whose frames do not match its rows is refused, naming the tensor.
        var file = try SafeTensorsFile(contentsOf: path)
        file.tensors[file.tensors.firstIndex { $0.name == "images.top" }!].tensor.shape[0] = 19
        file.tensors[file.tensors.firstIndex { $0.name == "images.top" }!].tensor.bytes.removeLast(768)
        let broken = temporaryPath("squares-broken.safetensors")
        try file.write(to: broken)
        do {
            _ = try EpisodeDataset(contentsOf: broken)
            Issue.record("a dataset with 19 frames for 20 steps was read")
        } catch {
            #expect("\(error)".contains("images.top must be U8 [20, H, W, C]"))
        }
    }

    @Test func thePolicyLearnsWhatOnlyTheCameraShows() throws {
        let checkpoint = try trainedSquarePolicy(steps: 400)
        let policy = Policy(checkpoint: checkpoint, capacity: 32, seed: 3)
        let left = sampledActions(policy, right: false)
        let right = sampledActions(policy, right: true)
        // Without the frames each side would get about half of each mode.
        #expect(left.filter { $0 < 0.5 }.count >= 29, "left: \(left)")
        #expect(right.filter { $0 > 0.5 }.count >= 29, "right: \(right)")
    }

    @Test func imageCheckpointsRoundTripAndSampleTheSameChunks() throws {
        let checkpoint = try trainedSquarePolicy(steps: 5)
        #expect(checkpoint.spec.cameras == [CameraSpec(name: "top", height: 16, width: 16)])
        #expect(checkpoint.imageEncoder?.layout.spec(named: "encoders.top.backbone.conv1.weight")?.shape
            == [32, 3, 3, 3])
        let path = temporaryPath("squares-policy.safetensors")
        try checkpoint.write(to: path)
        let loaded = try Checkpoint(contentsOf: path)
        #expect(loaded.spec == checkpoint.spec)
        #expect(loaded.imageEncoder?.configuration == checkpoint.imageEncoder?.configuration)
        #expect(loaded.imageEncoderParameters?.array.map(\.bitPattern)
            == checkpoint.imageEncoderParameters?.array.map(\.bitPattern))
        let (a, b) = (Policy(checkpoint: checkpoint, capacity: 4, seed: 9), Policy(checkpoint: loaded, capacity: 4, seed: 9))
        #expect(sampledActions(a, right: true, count: 4).map(\.bitPattern)
            == sampledActions(b, right: true, count: 4).map(\.bitPattern))
        // A policy's capacity does not change its chunks (the server samples with a larger one).
        let wide = Policy(checkpoint: checkpoint, capacity: 16, seed: 9)
        let narrow = Policy(checkpoint: checkpoint, capacity: 1, seed: 9)
        #expect(sampledActions(wide, right: false, count: 1).map(\.bitPattern)
            == sampledActions(narrow, right: false, count: 1).map(\.bitPattern))
        // Sampling into caller buffers allocates nothing, encoder included.
        let frames = Array((0..<2).map { _ in squareFrame(right: true) }.joined())
        let observations: [Float] = [0.5, 0.5]
        var chunk = [Float](repeating: 0, count: 8)
        func sample() {
            observations.withUnsafeBufferPointer { o in
                frames.withUnsafeBufferPointer { f in
                    chunk.withUnsafeMutableBufferPointer {
                        narrow.predictAction(observations: o.baseAddress!, frames: f.baseAddress!, batch: 1,
                                             action: nil, actionPrediction: $0.baseAddress!)
                    }
                }
            }
        }
        sample()
        let before = fp_thread_allocation_count()
        for _ in 0..<10 { sample() }
        #expect(fp_thread_allocation_count() - before == 0)
        // The tensors of a checkpoint with cameras are checked like the network's.
        var file = try SafeTensorsFile(contentsOf: path)
        file.tensors.removeAll { $0.name == "encoders.top.projection.weight" }
        let broken = temporaryPath("squares-policy-broken.safetensors")
        try file.write(to: broken)
        do {
            _ = try Checkpoint(contentsOf: broken)
            Issue.record("a checkpoint without its image projection was read")
        } catch {
            #expect("\(error)".contains("tensor encoders.top.projection.weight is missing (expected shape [16, 16])"))
        }
    }
}
