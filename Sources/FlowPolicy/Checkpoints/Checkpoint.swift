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
    /// The cameras whose frames join each observation step (none for a low-dimensional policy).
    public var cameras: [CameraSpec]

    public init(task: String, observationSteps: Int, actionSteps: Int, predictionSteps: Int,
                observationDimensions: Int, actionDimensions: Int, cameras: [CameraSpec] = []) {
        self.task = task
        self.cameras = cameras
        self.observationSteps = observationSteps
        self.actionSteps = actionSteps
        self.predictionSteps = predictionSteps
        self.observationDimensions = observationDimensions
        self.actionDimensions = actionDimensions
    }

    private enum CodingKeys: String, CodingKey {
        case task, observationSteps, actionSteps, predictionSteps, observationDimensions, actionDimensions, cameras
    }

    /// Reads specs written before cameras existed (no `cameras`: a low-dimensional policy).
    public init(from decoder: any Decoder) throws {
        let values = try decoder.container(keyedBy: CodingKeys.self)
        task = try values.decode(String.self, forKey: .task)
        observationSteps = try values.decode(Int.self, forKey: .observationSteps)
        actionSteps = try values.decode(Int.self, forKey: .actionSteps)
        predictionSteps = try values.decode(Int.self, forKey: .predictionSteps)
        observationDimensions = try values.decode(Int.self, forKey: .observationDimensions)
        actionDimensions = try values.decode(Int.self, forKey: .actionDimensions)
        cameras = try values.decodeIfPresent([CameraSpec].self, forKey: .cameras) ?? []
    }

    /// Bytes of one observation step's frames: every camera's `H * W * C`, in the order of `cameras`.
    public var frameBytesPerStep: Int { cameras.frameBytes }

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

    /// The network sizes this spec implies, with the given width; `imageFeatures` per observation step join the
    /// condition of a policy with cameras (`ImageObservationEncoder.featuresPerStep`).
    public func networkConfiguration(hidden: Int, blocks: Int, timeEmbedding: Int = 64, imageFeatures: Int = 0)
        -> ResMLPFiLMConfiguration
    {
        ResMLPFiLMConfiguration(
            chunkDimensions: predictionSteps * actionDimensions,
            observationDimensions: observationSteps * (observationDimensions + imageFeatures),
            hidden: hidden, blocks: blocks, timeEmbedding: timeEmbedding)
    }
}

/// One flow a policy integrates when it samples: a velocity field and its parameters, integrated in the field's own
/// time from `start` to `end`. A flow-matching policy has one stage, 0 → 1 (noise to data). A Local Flow Matching
/// chain has one per block, run in reverse: the last (free) block first, each from 1 → 0. A distilled block is a
/// one-step student: `fixedSteps` = 1, whatever solver steps the policy is asked for.
public struct FlowStage: Sendable {
    public let field: VelocityField
    public let parameters: VelocityFieldParameters
    public let start: Float
    public let end: Float
    public let fixedSteps: Int?

    public init(field: VelocityField, parameters: VelocityFieldParameters, start: Float = 0, end: Float = 1,
                fixedSteps: Int? = nil) {
        self.field = field
        self.parameters = parameters
        self.start = start
        self.end = end
        self.fixedSteps = fixedSteps
    }

    /// Steps this stage takes when the policy asks for `steps`.
    public func steps(requested steps: Int) -> Int { fixedSteps ?? steps }
}

/// A trained policy on disk: its flow stages' weights (the EMA weights), the normalizers, the horizons and where it
/// came from.
///
/// File layout (safetensors). A single-stage policy (flow matching, and its MLE or residual fine-tunings) stores the
/// network's tensors under PyTorch names (`inp.weight` ...), the residual head's (if any) as `residual.l1.weight`
/// ..., and metadata `network` (JSON sizes) and `residual` (JSON head sizes, only with a head). A chain (Local Flow
/// Matching) stores stage i's tensors as `chain.{i}.inp.weight` ... and metadata `chain` (JSON list of stage sizes,
/// intervals and fixed step counts, in sampling order). Both store the normalizers as `normalizer.observation.min|max`
/// `[Do]` and `normalizer.action.min|max` `[Da]`, and `__metadata__` with `format = flowpolicy`, `format_version`,
/// `architecture`, `To`, `Ta`, `Tp`, `obs_dim`, `action_dim`, `task`, `method` (`fm`, `mle`, `residual`, `lfm`,
/// `lfm-distilled`), `provenance` (JSON: dataset hash, steps, seed, ...) and `deployment` (JSON: the deployment
/// contract, see `DeploymentContract`; absent in checkpoints written before it existed). A policy with cameras also
/// stores its image encoders' tensors (`encoders.<camera>.backbone.conv1.weight` ...) and metadata `cameras` (JSON
/// list of name, height, width, channels) and `image_encoder` (JSON encoder sizes).
public final class Checkpoint {
    public static let formatName = "flowpolicy"
    public static let formatVersion = 1
    public static let architecture = "ResMLPFiLM"

    public let spec: PolicySpec
    /// The flows sampling runs, in order.
    public let stages: [FlowStage]
    public let observationNormalizer: MinMaxNormalizer
    public let actionNormalizer: MinMaxNormalizer
    /// How the weights were produced.
    public var method: String
    public var provenance: [String: String]
    /// What a robot computer needs to run the policy (rate, bounds, limits, hand-over); nil in older checkpoints.
    public var contract: DeploymentContract?
    /// The image encoders of a policy with cameras (`spec.cameras`), and their weights (EMA); nil without cameras.
    public let imageEncoder: ImageObservationEncoder?
    public let imageEncoderParameters: FloatBuffer?

    /// A single-stage policy: the network (and, for residual fine-tuning, the contracting head), 0 → 1.
    public convenience init(spec: PolicySpec, network: ResMLPFiLM, parameters: FloatBuffer,
                            observationNormalizer: MinMaxNormalizer, actionNormalizer: MinMaxNormalizer,
                            head: ContractiveResidualHead? = nil, headParameters: FloatBuffer? = nil,
                            method: String = "fm", provenance: [String: String] = [:],
                            contract: DeploymentContract? = nil, imageEncoder: ImageObservationEncoder? = nil,
                            imageEncoderParameters: FloatBuffer? = nil) {
        precondition(parameters.count == network.layout.count)
        precondition((head == nil) == (headParameters == nil) && headParameters?.count ?? 0 == head?.layout.count ?? 0)
        let stage = FlowStage(field: VelocityField(network: network, head: head),
                              parameters: VelocityFieldParameters(network: parameters, head: headParameters))
        self.init(spec: spec, stages: [stage], observationNormalizer: observationNormalizer,
                  actionNormalizer: actionNormalizer, method: method, provenance: provenance, contract: contract,
                  imageEncoder: imageEncoder, imageEncoderParameters: imageEncoderParameters)
    }

    public init(spec: PolicySpec, stages: [FlowStage], observationNormalizer: MinMaxNormalizer,
                actionNormalizer: MinMaxNormalizer, method: String, provenance: [String: String] = [:],
                contract: DeploymentContract? = nil, imageEncoder: ImageObservationEncoder? = nil,
                imageEncoderParameters: FloatBuffer? = nil) {
        precondition(!stages.isEmpty)
        precondition(spec.cameras == (imageEncoder?.cameras ?? []))
        precondition(imageEncoderParameters?.count == imageEncoder?.layout.count)
        let imageFeatures = imageEncoder?.featuresPerStep ?? 0
        precondition(observationNormalizer.dimensions == spec.observationDimensions)
        precondition(actionNormalizer.dimensions == spec.actionDimensions)
        precondition(stages.allSatisfy {
            $0.field.network.configuration.chunkDimensions == spec.predictionSteps * spec.actionDimensions
                && $0.field.network.configuration.observationDimensions
                    == spec.observationSteps * (spec.observationDimensions + imageFeatures)
        })
        self.spec = spec
        self.stages = stages
        self.observationNormalizer = observationNormalizer
        self.actionNormalizer = actionNormalizer
        self.method = method
        self.provenance = provenance
        self.contract = contract
        self.imageEncoder = imageEncoder
        self.imageEncoderParameters = imageEncoderParameters
    }

    /// Whether sampling runs several flows (a Local Flow Matching chain).
    public var isChain: Bool { stages.count > 1 || stages[0].start != 0 || stages[0].end != 1 }

    // The single stage of a flow-matching policy (for a chain: its first stage).
    public var field: VelocityField { stages[0].field }
    public var fieldParameters: VelocityFieldParameters { stages[0].parameters }
    public var network: ResMLPFiLM { stages[0].field.network }
    public var parameters: FloatBuffer { stages[0].parameters.network }
    public var head: ContractiveResidualHead? { stages[0].field.head }
    public var headParameters: FloatBuffer? { stages[0].parameters.head }

    /// Trainable numbers over all stages.
    public var parameterCount: Int {
        stages.reduce(imageEncoder?.layout.parameterCount ?? 0) {
            $0 + $1.field.network.layout.parameterCount + ($1.field.head?.layout.parameterCount ?? 0)
        }
    }

    /// Network evaluations to sample one chunk with `steps` steps of `method` per stage.
    public func evaluations(steps: Int, method: SolverMethod) -> Int {
        stages.reduce(0) { total, stage in
            total + (stage.fixedSteps.map { $0 } ?? steps * method.evaluationsPerStep)
        }
    }

    public func write(to path: String) throws(FlowPolicyError) {
        try safeTensors().write(to: path)
    }

    public func safeTensors() -> SafeTensorsFile {
        var tensors: [(name: String, tensor: StoredTensor)] = []
        func append(_ layout: ParameterLayout, _ values: FloatBuffer, prefix: String) {
            for spec in layout.tensors {
                tensors.append((prefix + spec.name, StoredTensor(
                    float32: UnsafeBufferPointer(start: values.pointer + spec.offset, count: spec.count),
                    shape: spec.shape)))
            }
        }
        for (index, stage) in stages.enumerated() {
            let prefix = isChain ? "chain.\(index)." : ""
            append(stage.field.network.layout, stage.parameters.network, prefix: prefix)
            if let head = stage.field.head, let headParameters = stage.parameters.head {
                append(head.layout, headParameters, prefix: prefix)
            }
        }
        if let imageEncoder, let imageEncoderParameters {
            append(imageEncoder.layout, imageEncoderParameters, prefix: "")
        }
        for (name, normalizer) in [("observation", observationNormalizer), ("action", actionNormalizer)] {
            tensors.append(
                ("normalizer.\(name).min", StoredTensor(float32: normalizer.minimum, shape: [normalizer.dimensions])))
            tensors.append(
                ("normalizer.\(name).max", StoredTensor(float32: normalizer.maximum, shape: [normalizer.dimensions])))
        }
        var metadata: [String: String] = [
            "format": Self.formatName,
            "format_version": String(Self.formatVersion),
            "architecture": Self.architecture,
            "To": String(spec.observationSteps),
            "Ta": String(spec.actionSteps),
            "Tp": String(spec.predictionSteps),
            "obs_dim": String(spec.observationDimensions),
            "action_dim": String(spec.actionDimensions),
            "task": spec.task,
            "method": method,
            "provenance": jsonObject(provenance),
        ]
        if let contract { metadata["deployment"] = contract.json }
        if let imageEncoder {
            metadata["cameras"] = jsonArray(imageEncoder.cameras.map {
                ["name": $0.name, "height": $0.height, "width": $0.width, "channels": $0.channels]
            })
            let c = imageEncoder.configuration
            metadata["image_encoder"] = jsonObject([
                "backbone": c.backbone.rawValue, "channels": c.channels, "height": c.height, "width": c.width,
                "keypoints": c.keypoints, "features": c.features,
            ])
        }
        func sizes(_ configuration: ResMLPFiLMConfiguration) -> [String: Any] {
            ["hidden": configuration.hidden, "blocks": configuration.blocks,
             "time_embedding": configuration.timeEmbedding, "chunk_dimensions": configuration.chunkDimensions,
             "observation_dimensions": configuration.observationDimensions]
        }
        if isChain {
            let list: [[String: Any]] = stages.map { stage in
                var entry = sizes(stage.field.network.configuration)
                entry["start"] = Double(stage.start)
                entry["end"] = Double(stage.end)
                if let fixed = stage.fixedSteps { entry["fixed_steps"] = fixed }
                return entry
            }
            metadata["chain"] = jsonArray(list)
        } else {
            metadata["network"] = jsonObject(sizes(network.configuration))
            if let head {
                let c = head.configuration
                metadata["residual"] = jsonObject([
                    "hidden": c.hidden, "rank": c.rank, "skew_rank": c.skewRank, "epsilon": Double(c.epsilon),
                    "time_embedding": c.timeEmbedding,
                ])
            }
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
            throw fail("not a flowpolicy checkpoint (metadata format is "
                + "\(metadata["format"].map { "\"\($0)\"" } ?? "missing"))")
        }
        guard metadata["format_version"] == String(Self.formatVersion) else {
            throw fail("checkpoint format version \(metadata["format_version"] ?? "missing") is not supported; this "
                + "build reads version \(Self.formatVersion). Use the flowpolicy version that wrote it, or retrain.")
        }
        guard metadata["architecture"] == Self.architecture else {
            throw fail("architecture \(metadata["architecture"] ?? "missing") is not supported "
                + "(expected \(Self.architecture))")
        }
        func integer(_ key: String) throws(FlowPolicyError) -> Int {
            guard let text = metadata[key], let value = Int(text) else {
                throw fail("metadata \(key) is missing or not an integer")
            }
            return value
        }
        var imageEncoder: ImageObservationEncoder?
        if let camerasText = metadata["cameras"] {
            guard let list = parseJSONObject(camerasText) as? [[String: Any]],
                  let sizes = parseJSONObject(metadata["image_encoder"] ?? "") as? [String: Any],
                  let backboneName = sizes["backbone"] as? String,
                  let backbone = ImageEncoderConfiguration.Backbone(rawValue: backboneName),
                  let channels = sizes["channels"] as? Int, let height = sizes["height"] as? Int,
                  let width = sizes["width"] as? Int, let keypoints = sizes["keypoints"] as? Int,
                  let features = sizes["features"] as? Int
            else {
                throw fail("metadata cameras must be a JSON list, and image_encoder a JSON object with backbone "
                    + "(resnet18 or small_cnn), channels, height, width, keypoints and features")
            }
            var cameras: [CameraSpec] = []
            for entry in list {
                guard let name = entry["name"] as? String, let height = entry["height"] as? Int,
                      let width = entry["width"] as? Int, let channels = entry["channels"] as? Int
                else { throw fail("each camera needs name, height, width and channels (\(camerasText))") }
                cameras.append(CameraSpec(name: name, height: height, width: width, channels: channels))
            }
            do {
                imageEncoder = try ImageObservationEncoder(cameras: cameras, configuration: ImageEncoderConfiguration(
                    backbone: backbone, channels: channels, height: height, width: width, keypoints: keypoints,
                    features: features))
            } catch { throw fail("\(error)") }
        }
        let spec = PolicySpec(
            task: metadata["task"] ?? "", observationSteps: try integer("To"), actionSteps: try integer("Ta"),
            predictionSteps: try integer("Tp"), observationDimensions: try integer("obs_dim"),
            actionDimensions: try integer("action_dim"), cameras: imageEncoder?.cameras ?? [])
        do { try spec.validate() } catch { throw fail("\(error)") }

        func load(_ layout: ParameterLayout, prefix: String, described description: String) throws(FlowPolicyError)
            -> FloatBuffer
        {
            let parameters = FloatBuffer(count: layout.count)
            for tensorSpec in layout.tensors {
                let name = prefix + tensorSpec.name
                guard let tensor = file[name] else {
                    throw fail("tensor \(name) is missing (expected shape \(tensorSpec.shape))")
                }
                guard tensor.dtype == .float32, tensor.shape == tensorSpec.shape else {
                    throw fail("tensor \(name) has \(tensor.dtype.rawValue) \(tensor.shape); expected F32 "
                        + "\(tensorSpec.shape) for this network (\(description))")
                }
                tensor.bytes.withUnsafeBytes { raw in
                    (parameters.pointer + tensorSpec.offset).update(
                        from: raw.bindMemory(to: Float.self).baseAddress!, count: tensorSpec.count)
                }
            }
            if let bad = parameters.buffer.firstIndex(where: { !$0.isFinite }),
               let owner = layout.tensors.last(where: { $0.offset <= bad }) {
                throw fail("tensor \(prefix + owner.name) holds a non-finite value; the checkpoint is corrupt")
            }
            return parameters
        }
        func network(_ sizes: [String: Any], described description: String) throws(FlowPolicyError) -> ResMLPFiLM {
            guard let hidden = sizes["hidden"] as? Int, let blocks = sizes["blocks"] as? Int,
                  let timeEmbedding = sizes["time_embedding"] as? Int
            else { throw fail("network sizes must give hidden, blocks and time_embedding (\(description))") }
            do {
                return try ResMLPFiLM(spec.networkConfiguration(
                    hidden: hidden, blocks: blocks, timeEmbedding: timeEmbedding,
                    imageFeatures: imageEncoder?.featuresPerStep ?? 0))
            } catch { throw fail("\(error)") }
        }

        var stages: [FlowStage] = []
        if let chainText = metadata["chain"] {
            guard let list = parseJSONObject(chainText) as? [[String: Any]], !list.isEmpty else {
                throw fail("metadata chain must be a non-empty JSON list of stages")
            }
            for (index, entry) in list.enumerated() {
                let stageNetwork = try network(entry, described: "chain stage \(index)")
                let parameters = try load(
                    stageNetwork.layout, prefix: "chain.\(index).", described: "chain stage \(index)")
                guard let start = (entry["start"] as? NSNumber)?.floatValue,
                      let end = (entry["end"] as? NSNumber)?.floatValue
                else { throw fail("chain stage \(index) lacks start and end") }
                stages.append(FlowStage(
                    field: VelocityField(network: stageNetwork, head: nil),
                    parameters: VelocityFieldParameters(network: parameters, head: nil), start: start, end: end,
                    fixedSteps: entry["fixed_steps"] as? Int))
            }
        } else {
            guard let networkText = metadata["network"],
                  let sizes = parseJSONObject(networkText) as? [String: Any]
            else {
                throw fail("metadata network must be a JSON object with hidden, blocks and time_embedding")
            }
            let baseNetwork = try network(sizes, described: networkText)
            let parameters = try load(baseNetwork.layout, prefix: "", described: networkText)
            var head: ContractiveResidualHead?
            var headParameters: FloatBuffer?
            if let residualText = metadata["residual"] {
                guard let sizes = parseJSONObject(residualText) as? [String: Any], let hidden = sizes["hidden"] as? Int,
                      let rank = sizes["rank"] as? Int, let skewRank = sizes["skew_rank"] as? Int,
                      let epsilon = (sizes["epsilon"] as? NSNumber)?.floatValue,
                      let timeEmbedding = sizes["time_embedding"] as? Int
                else {
                    throw fail("metadata residual must be a JSON object with hidden, rank, skew_rank, epsilon, "
                        + "time_embedding")
                }
                do {
                    head = try ContractiveResidualHead(ResidualHeadConfiguration(
                        chunkDimensions: baseNetwork.configuration.chunkDimensions,
                        observationDimensions: baseNetwork.configuration.observationDimensions, hidden: hidden,
                        rank: rank, skewRank: skewRank, epsilon: epsilon, timeEmbedding: timeEmbedding))
                } catch { throw fail("\(error)") }
                headParameters = try load(head!.layout, prefix: "", described: residualText)
            }
            stages.append(FlowStage(field: VelocityField(network: baseNetwork, head: head),
                                    parameters: VelocityFieldParameters(network: parameters, head: headParameters)))
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
        let contract = try metadata["deployment"].map { text throws(FlowPolicyError) in
            try DeploymentContract(json: text, source: path, observationDimensions: spec.observationDimensions,
                                   actionDimensions: spec.actionDimensions)
        }
        let imageEncoderParameters = try imageEncoder.map { encoder throws(FlowPolicyError) in
            try load(encoder.layout, prefix: "", described: metadata["image_encoder"] ?? "")
        }
        self.init(
            spec: spec, stages: stages,
            observationNormalizer: try normalizer("observation", dimensions: spec.observationDimensions),
            actionNormalizer: try normalizer("action", dimensions: spec.actionDimensions),
            method: metadata["method"] ?? "fm",
            provenance: (parseJSONObject(metadata["provenance"] ?? "{}") as? [String: String]) ?? [:],
            contract: contract, imageEncoder: imageEncoder, imageEncoderParameters: imageEncoderParameters)
    }
}

func jsonObject(_ dictionary: [String: Any]) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: dictionary, options: [.sortedKeys]) else {
        return "{}"
    }
    return String(decoding: data, as: UTF8.self)
}

func jsonArray(_ list: [[String: Any]]) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: list, options: [.sortedKeys]) else { return "[]" }
    return String(decoding: data, as: UTF8.self)
}

func parseJSONObject(_ text: String) -> Any? {
    try? JSONSerialization.jsonObject(with: Data(text.utf8))
}
