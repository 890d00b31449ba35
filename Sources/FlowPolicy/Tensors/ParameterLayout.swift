/// How a parameter tensor starts out.
public enum ParameterInitializer: Sendable, Equatable {
    case zeros
    case ones
    /// Uniform in [-bound, bound] (PyTorch's `nn.Linear` default uses bound = 1 / sqrt(fan_in)).
    case uniform(bound: Float)
}

/// One named tensor inside the flat parameter buffer.
public struct TensorSpec: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    /// Offset, in floats, of the first element in the flat buffer.
    public let offset: Int
    public let initializer: ParameterInitializer
    public var count: Int { shape.reduce(1, *) }
}

/// The names, shapes and offsets of every parameter of a model, laid out in one flat buffer.
///
/// All parameters live in one `FloatBuffer` (and the gradients in another of the same size), as llm.c's
/// `malloc_and_point_parameters` does: the optimizer, EMA, gradient clipping and checkpoint I/O then loop over one
/// array, and each layer only remembers its offsets. Names and shapes follow PyTorch (`Linear.weight` is
/// `[out, in]`), so the checkpoint loads into the equivalent PyTorch module.
public struct ParameterLayout: Sendable, Equatable {
    public private(set) var tensors: [TensorSpec] = []
    /// Total floats, including the padding that keeps every tensor 64-byte aligned.
    public private(set) var count = 0

    public init() {}

    /// Reserves a tensor and returns its offset.
    public mutating func declare(_ name: String, shape: [Int], initializer: ParameterInitializer) -> Int {
        precondition(!tensors.contains { $0.name == name }, "parameter \(name) declared twice")
        let offset = count
        let spec = TensorSpec(name: name, shape: shape, offset: offset, initializer: initializer)
        tensors.append(spec)
        count += (spec.count + 15) / 16 * 16
        return offset
    }

    /// Number of trainable numbers (without padding).
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.count } }

    public func spec(named name: String) -> TensorSpec? { tensors.first { $0.name == name } }

    /// Fills `parameters` with each tensor's initial values, in declaration order, from `generator`.
    public func initialize(_ parameters: FloatBuffer, using generator: inout RandomSource) {
        precondition(parameters.count == count)
        parameters.fill(0)
        for spec in tensors {
            let p = parameters.pointer + spec.offset
            switch spec.initializer {
            case .zeros: break
            case .ones: p.update(repeating: 1, count: spec.count)
            case .uniform(let bound):
                for i in 0..<spec.count { p[i] = (2 * generator.nextUniform() - 1) * bound }
            }
        }
    }
}
