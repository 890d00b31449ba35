import Foundation

/// Demonstrations as Diffusion Policy's replay buffer lays them out: every step of every episode concatenated,
/// `obs [N, Do]` and `action [N, Da]`, with `episode_ends [E]` the exclusive cumulative end of each episode.
///
/// Stored as one safetensors file (F32 `obs`, F32 `action`, I64 `episode_ends`) with string metadata: task, control
/// rate and provenance. A dataset with cameras also holds each camera's frames beside the observation, U8
/// `images.<camera> [N, H, W, C]` (RGB, channels last, as LeRobot and robomimic keep them), and the metadata
/// `cameras` lists their names in order, comma-separated. Python reads it with `safetensors.numpy.load_file`.
public struct EpisodeDataset: Equatable, Sendable {
    public static let formatName = "flowpolicy.dataset"
    public static let formatVersion = 1

    public private(set) var observationDimensions: Int
    public private(set) var actionDimensions: Int
    /// `[N, Do]`.
    public private(set) var observations: [Float]
    /// `[N, Da]`.
    public private(set) var actions: [Float]
    /// `[E]`, strictly increasing, the last equals N.
    public private(set) var episodeEnds: [Int]
    /// The cameras whose frames each step holds (none for a low-dimensional dataset).
    public private(set) var cameras: [CameraSpec]
    /// Per camera, `[N, H, W, C]` uint8.
    public private(set) var frames: [[UInt8]]
    /// Task name, control rate, provenance and anything else worth keeping (all strings).
    public var metadata: [String: String]

    public init(observationDimensions: Int, actionDimensions: Int, cameras: [CameraSpec] = [],
                metadata: [String: String] = [:]) {
        self.observationDimensions = observationDimensions
        self.actionDimensions = actionDimensions
        self.cameras = cameras
        frames = cameras.map { _ in [] }
        observations = []
        actions = []
        episodeEnds = []
        self.metadata = metadata
    }

    public var stepCount: Int { episodeEnds.last ?? 0 }
    public var episodeCount: Int { episodeEnds.count }

    /// The rows of episode `index`.
    public func episodeRange(_ index: Int) -> Range<Int> {
        (index == 0 ? 0 : episodeEnds[index - 1])..<episodeEnds[index]
    }

    /// Appends one episode (`observations [L, Do]`, `actions [L, Da]`, and with cameras `stepFrames [L, Σ H*W*C]`:
    /// each step's frames, cameras in order); the episodes already present are unchanged.
    public mutating func appendEpisode(observations newObservations: [Float], actions newActions: [Float],
                                       stepFrames: [UInt8] = []) throws(FlowPolicyError)
    {
        let length = newObservations.count / max(observationDimensions, 1)
        guard newObservations.count == length * observationDimensions, length > 0,
            newActions.count == length * actionDimensions
        else {
            throw .invalidConfiguration(
                "an episode needs L x \(observationDimensions) observations and L x \(actionDimensions) actions, got "
                    + "\(newObservations.count) and \(newActions.count) numbers")
        }
        if let bad = newObservations.firstIndex(where: { !$0.isFinite })
            ?? newActions.firstIndex(where: { !$0.isFinite }) {
            throw .nonFinite("episode \(episodeCount) has a non-finite value (element \(bad)); it was not added")
        }
        let bytesPerStep = cameras.frameBytes
        guard stepFrames.count == length * bytesPerStep else {
            throw .invalidConfiguration(
                "an episode of \(length) steps needs \(length) x \(bytesPerStep) frame bytes "
                    + "(\(cameras.shapeDescription)), "
                    + "got \(stepFrames.count)")
        }
        for step in 0..<length {
            var offset = step * bytesPerStep
            for (camera, spec) in cameras.enumerated() {
                frames[camera] += stepFrames[offset..<(offset + spec.byteCount)]
                offset += spec.byteCount
            }
        }
        observations += newObservations
        actions += newActions
        episodeEnds.append(stepCount + length)
    }

    /// Appends every episode of `other` (same dimensions).
    public mutating func append(contentsOf other: EpisodeDataset) throws(FlowPolicyError) {
        guard other.observationDimensions == observationDimensions, other.actionDimensions == actionDimensions,
              other.cameras == cameras
        else {
            throw .invalidConfiguration(
                "cannot append a dataset with Do=\(other.observationDimensions), Da=\(other.actionDimensions), "
                    + "\(other.cameras.shapeDescription) to one with Do=\(observationDimensions), "
                    + "Da=\(actionDimensions), \(cameras.shapeDescription)")
        }
        let base = stepCount
        for camera in cameras.indices { frames[camera] += other.frames[camera] }
        observations += other.observations
        actions += other.actions
        episodeEnds += other.episodeEnds.map { $0 + base }
    }

    /// The dataset made of the listed episodes, in that order (metadata kept).
    public func subset(episodes indices: [Int]) -> EpisodeDataset {
        var subset = EpisodeDataset(observationDimensions: observationDimensions, actionDimensions: actionDimensions,
                                    cameras: cameras, metadata: metadata)
        for index in indices {
            let range = episodeRange(index)
            for (camera, spec) in cameras.enumerated() {
                subset.frames[camera] +=
                    frames[camera][(range.lowerBound * spec.byteCount)..<(range.upperBound * spec.byteCount)]
            }
            subset.observations +=
                observations[(range.lowerBound * observationDimensions)..<(range.upperBound * observationDimensions)]
            subset.actions += actions[(range.lowerBound * actionDimensions)..<(range.upperBound * actionDimensions)]
            subset.episodeEnds.append(subset.stepCount + range.count)
        }
        return subset
    }

    /// FNV-1a 64 of the arrays (for provenance: which data a checkpoint was trained on; not a security hash).
    public var contentHash: String {
        var hash = ContentHash()
        hash.mix(observations)
        hash.mix(actions)
        hash.mix(episodeEnds.map(Int64.init))
        for cameraFrames in frames { hash.mix(cameraFrames) }
        return hash.text
    }

    public func write(to path: String) throws(FlowPolicyError) {
        var metadata = self.metadata
        metadata["format"] = Self.formatName
        metadata["format_version"] = String(Self.formatVersion)
        metadata["cameras"] = cameras.isEmpty ? nil : cameras.map(\.name).joined(separator: ",")
        var tensors: [(name: String, tensor: StoredTensor)] = [
            ("obs", StoredTensor(float32: observations, shape: [stepCount, observationDimensions])),
            ("action", StoredTensor(float32: actions, shape: [stepCount, actionDimensions])),
            ("episode_ends", StoredTensor(int64: episodeEnds.map(Int64.init), shape: [episodeCount])),
        ]
        for (camera, spec) in cameras.enumerated() {
            tensors.append(("images.\(spec.name)", StoredTensor(
                dtype: .uint8, shape: [stepCount, spec.height, spec.width, spec.channels], bytes: frames[camera])))
        }
        try SafeTensorsFile(metadata: metadata, tensors: tensors).write(to: path)
    }

    /// Reads and validates a dataset: shapes agree, `episode_ends` is strictly increasing and ends at N, every value
    /// is finite. Errors name the file and the problem.
    public init(contentsOf path: String) throws(FlowPolicyError) {
        let file = try SafeTensorsFile(contentsOf: path)
        func fail(_ message: String) -> FlowPolicyError { .malformedFile(path: path, message: message) }
        if let format = file.metadata["format"], format != Self.formatName {
            throw fail("this is a \(format) file, not a dataset (\(Self.formatName))")
        }
        if let version = file.metadata["format_version"], version != String(Self.formatVersion) {
            throw fail("dataset format version \(version) is not supported (this build reads \(Self.formatVersion))")
        }
        guard let obs = file["obs"], let action = file["action"], let ends = file["episode_ends"] else {
            throw fail("a dataset needs the tensors obs [N, Do], action [N, Da] and episode_ends [E]")
        }
        guard obs.dtype == .float32, obs.shape.count == 2, action.dtype == .float32, action.shape.count == 2 else {
            throw fail("obs and action must be 2-D F32, got obs \(obs.dtype.rawValue) \(obs.shape), "
                + "action \(action.dtype.rawValue) \(action.shape)")
        }
        guard obs.shape[0] == action.shape[0] else {
            throw fail("obs has \(obs.shape[0]) rows but action has \(action.shape[0])")
        }
        guard ends.dtype == .int64, ends.shape.count == 1 else {
            throw fail("episode_ends must be 1-D I64, got \(ends.dtype.rawValue) \(ends.shape)")
        }
        let endValues = ends.int64s.map(Int.init)
        var previous = 0
        for (i, end) in endValues.enumerated() {
            guard end > previous else {
                throw fail("episode_ends must be strictly increasing and positive: episode \(i) ends at \(end) "
                    + "after \(previous)")
            }
            previous = end
        }
        guard previous == obs.shape[0] else {
            throw fail("episode_ends ends at \(previous) but obs and action have \(obs.shape[0]) rows "
                + "(a truncated or inconsistent file)")
        }
        observationDimensions = obs.shape[1]
        actionDimensions = action.shape[1]
        observations = obs.floats
        actions = action.floats
        episodeEnds = endValues
        var cameras: [CameraSpec] = []
        var frames: [[UInt8]] = []
        for name in (file.metadata["cameras"] ?? "").split(separator: ",").map(String.init) {
            guard let images = file["images.\(name)"] else {
                throw fail("the metadata lists camera \(name) but the tensor images.\(name) [N, H, W, C] is missing")
            }
            guard images.dtype == .uint8, images.shape.count == 4, images.shape[0] == obs.shape[0],
                  images.shape[3] >= 1
            else {
                throw fail("images.\(name) must be U8 [\(obs.shape[0]), H, W, C] (one frame per step), got "
                    + "\(images.dtype.rawValue) \(images.shape)")
            }
            cameras.append(CameraSpec(
                name: name, height: images.shape[1], width: images.shape[2], channels: images.shape[3]))
            frames.append(images.bytes)
        }
        self.cameras = cameras
        self.frames = frames
        var metadata = file.metadata
        metadata["format"] = nil
        metadata["format_version"] = nil
        metadata["cameras"] = nil
        self.metadata = metadata
        for (name, values, width) in [("obs", observations, observationDimensions),
                                      ("action", actions, actionDimensions)] {
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                let row = bad / max(width, 1)
                let episode = episodeEnds.firstIndex { $0 > row } ?? 0
                throw fail("\(name) has a non-finite value \(values[bad]) at row \(row) (episode \(episode), "
                    + "step \(row - (episode == 0 ? 0 : episodeEnds[episode - 1]))); remove or repair that episode")
            }
        }
    }
}
