import Foundation

/// What a policy consumes and produces, and its horizons (Diffusion Policy's To / Ta / Tp).
public struct PolicySpec: Codable, Equatable, Sendable {
    /// Task the policy was trained for (e.g. `pusht`), or a free name.
    public var task: String
    /// To: observations in the conditioning window.
    public var observationSteps: Int
    /// Ta: actions executed per chunk.
    public var actionSteps: Int
    /// Tp: actions predicted per chunk.
    public var predictionSteps: Int
    /// Do.
    public var observationDimensions: Int
    /// Da.
    public var actionDimensions: Int

    public init(task: String, observationSteps: Int, actionSteps: Int, predictionSteps: Int,
                observationDimensions: Int, actionDimensions: Int) {
        self.task = task
        self.observationSteps = observationSteps
        self.actionSteps = actionSteps
        self.predictionSteps = predictionSteps
        self.observationDimensions = observationDimensions
        self.actionDimensions = actionDimensions
    }

    public func validate() throws(FlowPolicyError) {
        let (To, Ta, Tp) = (observationSteps, actionSteps, predictionSteps)
        guard To >= 1, Ta >= 1, Tp >= 1 else {
            throw .invalidConfiguration("To, Ta and Tp must be at least 1 (got \(To), \(Ta), \(Tp))")
        }
        guard To - 1 + Ta <= Tp else {
            throw .invalidConfiguration(
                "the executed actions (steps To-1 ..< To-1+Ta = \(To - 1)..<\(To - 1 + Ta)) must lie inside the "
                    + "predicted chunk of Tp = \(Tp)")
        }
        guard observationDimensions >= 1, actionDimensions >= 1 else {
            throw .invalidConfiguration("observation and action dimensions must be at least 1")
        }
    }

    /// The network sizes this spec implies, with the given width.
    public func networkConfiguration(hidden: Int, blocks: Int, timeEmbedding: Int = 64) -> ResMLPFiLMConfiguration {
        ResMLPFiLMConfiguration(
            chunkDimensions: predictionSteps * actionDimensions,
            observationDimensions: observationSteps * observationDimensions,
            hidden: hidden, blocks: blocks, timeEmbedding: timeEmbedding)
    }
}

/// A trained policy on disk: the velocity network's weights (the EMA weights), the normalizers, the horizons and
/// where it came from; for residual fine-tuned policies also the contracting residual head.
///
/// File layout (safetensors): the network's tensors under PyTorch names (`inp.weight` ...), the normalizers as
/// `normalizer.observation.min|max` `[Do]` and `normalizer.action.min|max` `[Da]`, the residual head's tensors as
/// `residual.l1.weight` ... when there is one, and `__metadata__` with `format = flowpolicy`, `format_version`,
/// `architecture`, `network` (JSON sizes), `To`, `Ta`, `Tp`, `obs_dim`, `action_dim`, `task`, `method` (`fm`,
/// `mle` or `residual`), `residual` (JSON head sizes, only with a head) and `provenance` (JSON: dataset hash,
/// steps, seed, ...).
public final class Checkpoint {
    public static let formatName = "flowpolicy"
    public static let formatVersion = 1
    public static let architecture = "ResMLPFiLM"

    public let spec: PolicySpec
    public let network: ResMLPFiLM
    /// In `network.layout`.
    public let parameters: FloatBuffer
    public let observationNormalizer: MinMaxNormalizer
    public let actionNormalizer: MinMaxNormalizer
    /// The contracting residual head and its parameters (residual fine-tuned checkpoints only).
    public let head: ContractiveResidualHead?
    public let headParameters: FloatBuffer?
    /// How the weights were produced: `fm` (flow matching), `mle` or `residual` (seed 000 fine-tuning).
    public var method: String
    public var provenance: [String: String]

    public init(spec: PolicySpec, network: ResMLPFiLM, parameters: FloatBuffer,
                observationNormalizer: MinMaxNormalizer, actionNormalizer: MinMaxNormalizer,
                head: ContractiveResidualHead? = nil, headParameters: FloatBuffer? = nil,
                method: String = "fm", provenance: [String: String] = [:]) {
        precondition(parameters.count == network.layout.count)
        precondition(observationNormalizer.dimensions == spec.observationDimensions)
        precondition(actionNormalizer.dimensions == spec.actionDimensions)
        precondition((head == nil) == (headParameters == nil) && headParameters?.count ?? 0 == head?.layout.count ?? 0)
        self.spec = spec
        self.network = network
        self.parameters = parameters
        self.observationNormalizer = observationNormalizer
        self.actionNormalizer = actionNormalizer
        self.head = head
        self.headParameters = headParameters
        self.method = method
        self.provenance = provenance
        field = VelocityField(network: network, head: head)
    }

    /// The field the policy samples (the network, plus the head if any).
    public let field: VelocityField
    public var fieldParameters: VelocityFieldParameters {
        VelocityFieldParameters(network: parameters, head: headParameters)
    }

    public func write(to path: String) throws(FlowPolicyError) {
        try safeTensors().write(to: path)
    }

    public func safeTensors() -> SafeTensorsFile {
        var tensors: [(name: String, tensor: StoredTensor)] = network.layout.tensors.map { spec in
            (spec.name,
             StoredTensor(
                float32: UnsafeBufferPointer(start: parameters.pointer + spec.offset, count: spec.count),
                shape: spec.shape))
        }
        if let head, let headParameters {
            for spec in head.layout.tensors {
                tensors.append((spec.name, StoredTensor(
                    float32: UnsafeBufferPointer(start: headParameters.pointer + spec.offset, count: spec.count),
                    shape: spec.shape)))
            }
        }
        for (name, normalizer) in [("observation", observationNormalizer), ("action", actionNormalizer)] {
            tensors.append(("normalizer.\(name).min", StoredTensor(float32: normalizer.minimum, shape: [normalizer.dimensions])))
            tensors.append(("normalizer.\(name).max", StoredTensor(float32: normalizer.maximum, shape: [normalizer.dimensions])))
        }
        let configuration = network.configuration
        var metadata: [String: String] = [
            "format": Self.formatName,
            "format_version": String(Self.formatVersion),
            "architecture": Self.architecture,
            "network": jsonObject([
                "hidden": configuration.hidden, "blocks": configuration.blocks,
                "time_embedding": configuration.timeEmbedding,
                "chunk_dimensions": configuration.chunkDimensions,
                "observation_dimensions": configuration.observationDimensions,
            ]),
            "To": String(spec.observationSteps),
            "Ta": String(spec.actionSteps),
            "Tp": String(spec.predictionSteps),
            "obs_dim": String(spec.observationDimensions),
            "action_dim": String(spec.actionDimensions),
            "task": spec.task,
            "method": method,
            "provenance": jsonObject(provenance),
        ]
        if let head {
            let c = head.configuration
            metadata["residual"] = jsonObject([
                "hidden": c.hidden, "rank": c.rank, "skew_rank": c.skewRank, "epsilon": Double(c.epsilon),
                "time_embedding": c.timeEmbedding,
            ])
        }
        return SafeTensorsFile(metadata: metadata, tensors: tensors)
    }

    /// Reads and checks a checkpoint. Refuses other formats and versions, and any tensor that is missing or of the
    /// wrong shape, with a message naming the file, the tensor and the expected shape.
    public convenience init(contentsOf path: String) throws(FlowPolicyError) {
        let file = try SafeTensorsFile(contentsOf: path)
        try self.init(file: file, path: path)
    }

    public convenience init(file: SafeTensorsFile, path: String) throws(FlowPolicyError) {
        func fail(_ message: String) -> FlowPolicyError { .incompatible(path: path, message: message) }
        let metadata = file.metadata
        guard metadata["format"] == Self.formatName else {
            throw fail("not a flowpolicy checkpoint (metadata format is \(metadata["format"].map { "\"\($0)\"" } ?? "missing"))")
        }
        guard metadata["format_version"] == String(Self.formatVersion) else {
            throw fail("checkpoint format version \(metadata["format_version"] ?? "missing") is not supported; this "
                + "build reads version \(Self.formatVersion). Use the flowpolicy version that wrote it, or retrain.")
        }
        guard metadata["architecture"] == Self.architecture else {
            throw fail("architecture \(metadata["architecture"] ?? "missing") is not supported (expected \(Self.architecture))")
        }
        func integer(_ key: String) throws(FlowPolicyError) -> Int {
            guard let text = metadata[key], let value = Int(text) else { throw fail("metadata \(key) is missing or not an integer") }
            return value
        }
        let spec = PolicySpec(
            task: metadata["task"] ?? "", observationSteps: try integer("To"), actionSteps: try integer("Ta"),
            predictionSteps: try integer("Tp"), observationDimensions: try integer("obs_dim"),
            actionDimensions: try integer("action_dim"))
        do { try spec.validate() } catch { throw fail("\(error)") }
        guard let networkText = metadata["network"], let sizes = parseJSONObject(networkText) as? [String: Int],
            let hidden = sizes["hidden"], let blocks = sizes["blocks"], let timeEmbedding = sizes["time_embedding"]
        else { throw fail("metadata network must be a JSON object with hidden, blocks and time_embedding") }
        let configuration = spec.networkConfiguration(hidden: hidden, blocks: blocks, timeEmbedding: timeEmbedding)
        let network: ResMLPFiLM
        do { network = try ResMLPFiLM(configuration) } catch { throw fail("\(error)") }
        func load(_ layout: ParameterLayout, described description: String) throws(FlowPolicyError) -> FloatBuffer {
            let parameters = FloatBuffer(count: layout.count)
            for tensorSpec in layout.tensors {
                guard let tensor = file[tensorSpec.name] else {
                    throw fail("tensor \(tensorSpec.name) is missing (expected shape \(tensorSpec.shape))")
                }
                guard tensor.dtype == .float32, tensor.shape == tensorSpec.shape else {
                    throw fail("tensor \(tensorSpec.name) has \(tensor.dtype.rawValue) \(tensor.shape); expected F32 "
                        + "\(tensorSpec.shape) for this network (\(description))")
                }
                tensor.bytes.withUnsafeBytes { raw in
                    (parameters.pointer + tensorSpec.offset).update(
                        from: raw.bindMemory(to: Float.self).baseAddress!, count: tensorSpec.count)
                }
            }
            if let bad = parameters.buffer.firstIndex(where: { !$0.isFinite }),
               let owner = layout.tensors.last(where: { $0.offset <= bad }) {
                throw fail("tensor \(owner.name) holds a non-finite value; the checkpoint is corrupt")
            }
            return parameters
        }
        let parameters = try load(network.layout, described: networkText)
        var head: ContractiveResidualHead?
        var headParameters: FloatBuffer?
        if let residualText = metadata["residual"] {
            guard let sizes = parseJSONObject(residualText) as? [String: Any], let hidden = sizes["hidden"] as? Int,
                  let rank = sizes["rank"] as? Int, let skewRank = sizes["skew_rank"] as? Int,
                  let epsilon = (sizes["epsilon"] as? NSNumber)?.floatValue,
                  let timeEmbedding = sizes["time_embedding"] as? Int
            else { throw fail("metadata residual must be a JSON object with hidden, rank, skew_rank, epsilon, time_embedding") }
            do {
                head = try ContractiveResidualHead(ResidualHeadConfiguration(
                    chunkDimensions: configuration.chunkDimensions,
                    observationDimensions: configuration.observationDimensions, hidden: hidden, rank: rank,
                    skewRank: skewRank, epsilon: epsilon, timeEmbedding: timeEmbedding))
            } catch { throw fail("\(error)") }
            headParameters = try load(head!.layout, described: residualText)
        }
        func normalizer(_ name: String, dimensions: Int) throws(FlowPolicyError) -> MinMaxNormalizer {
            var bounds: [[Float]] = []
            for bound in ["min", "max"] {
                let key = "normalizer.\(name).\(bound)"
                guard let tensor = file[key], tensor.dtype == .float32, tensor.shape == [dimensions] else {
                    throw fail("tensor \(key) is missing or not F32 [\(dimensions)]")
                }
                bounds.append(tensor.floats)
            }
            return MinMaxNormalizer(minimum: bounds[0], maximum: bounds[1])
        }
        self.init(
            spec: spec, network: network, parameters: parameters,
            observationNormalizer: try normalizer("observation", dimensions: spec.observationDimensions),
            actionNormalizer: try normalizer("action", dimensions: spec.actionDimensions),
            head: head, headParameters: headParameters, method: metadata["method"] ?? "fm",
            provenance: (parseJSONObject(metadata["provenance"] ?? "{}") as? [String: String]) ?? [:])
    }
}

func jsonObject(_ dictionary: [String: Any]) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: dictionary, options: [.sortedKeys]) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

func parseJSONObject(_ text: String) -> Any? {
    try? JSONSerialization.jsonObject(with: Data(text.utf8))
}
