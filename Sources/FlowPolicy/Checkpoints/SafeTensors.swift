import Foundation

/// A tensor as stored in a safetensors file: element type, shape and little-endian bytes.
public struct StoredTensor: Equatable, Sendable {
    public enum DType: String, Sendable {
        case float32 = "F32"
        case float64 = "F64"
        case int64 = "I64"
        case int32 = "I32"
        case uint8 = "U8"

        var size: Int {
            switch self {
            case .uint8: return 1
            case .float32, .int32: return 4
            case .float64, .int64: return 8
            }
        }
    }

    public var dtype: DType
    public var shape: [Int]
    public var bytes: [UInt8]

    public var elementCount: Int { shape.reduce(1, *) }

    public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    public init(float32 values: UnsafeBufferPointer<Float>, shape: [Int]) {
        precondition(values.count == shape.reduce(1, *))
        self.init(dtype: .float32, shape: shape, bytes: Array(UnsafeRawBufferPointer(values)))
    }

    public init(float32 values: [Float], shape: [Int]) {
        self = values.withUnsafeBufferPointer { StoredTensor(float32: $0, shape: shape) }
    }

    public init(int64 values: [Int64], shape: [Int]) {
        precondition(values.count == shape.reduce(1, *))
        self.init(dtype: .int64, shape: shape, bytes: values.withUnsafeBytes { Array($0) })
    }

    /// The values as Float (F32 only; this machine and the format are both little-endian).
    public var floats: [Float] {
        precondition(dtype == .float32)
        return bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    public var int64s: [Int64] {
        precondition(dtype == .int64)
        return bytes.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
    }
}

/// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a
/// JSON header `{"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets": [begin, end]}}` padded
/// with spaces to a multiple of 8 bytes, then the raw tensors. Python reads these files with
/// `safetensors.numpy.load_file` / `safetensors.torch.load_file`.
public struct SafeTensorsFile: Equatable, Sendable {
    public var metadata: [String: String]
    /// Tensors in file order.
    public var tensors: [(name: String, tensor: StoredTensor)]

    public init(metadata: [String: String] = [:], tensors: [(name: String, tensor: StoredTensor)] = []) {
        self.metadata = metadata
        self.tensors = tensors
    }

    public static func == (lhs: SafeTensorsFile, rhs: SafeTensorsFile) -> Bool {
        lhs.metadata == rhs.metadata && lhs.tensors.map(\.name) == rhs.tensors.map(\.name)
            && lhs.tensors.map(\.tensor) == rhs.tensors.map(\.tensor)
    }

    public subscript(name: String) -> StoredTensor? { tensors.first { $0.name == name }?.tensor }

    /// The file's bytes.
    public func serialized() -> [UInt8] {
        var header = "{"
        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for (name, tensor) in tensors {
            let end = offset + tensor.bytes.count
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            entries.append(
                "\(jsonString(name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],"
                    + "\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += entries.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: headerBytes)
        for (_, tensor) in tensors { bytes.append(contentsOf: tensor.bytes) }
        return bytes
    }

    /// Writes the file atomically (temporary file in the same folder, then rename): an existing file is either
    /// replaced whole or left untouched.
    public func write(to path: String) throws(FlowPolicyError) {
        try AtomicFile.write(serialized(), to: path)
    }

    /// Parses a safetensors file; `path` names the file in errors.
    public init(bytes: [UInt8], path: String) throws(FlowPolicyError) {
        func fail(_ message: String) -> FlowPolicyError { .malformedFile(path: path, message: message) }
        guard bytes.count >= 8 else {
            throw fail("not a safetensors file: \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(bytes.count - 8), headerLength < 100_000_000 else {
            throw fail(
                "truncated or not a safetensors file: the header claims \(headerLength) bytes but the file has "
                    + "\(bytes.count - 8) after the length field")
        }
        let headerData = Data(bytes[8..<(8 + Int(headerLength))])
        guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw fail("the safetensors header is not a JSON object")
        }
        let dataStart = 8 + Int(headerLength)
        let dataLength = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [(name: String, dtype: StoredTensor.DType, shape: [Int], begin: Int, end: Int)] = []
        for (key, value) in header {
            if key == "__metadata__" {
                guard let dictionary = value as? [String: String] else {
                    throw fail("__metadata__ must map strings to strings")
                }
                metadata = dictionary
                continue
            }
            guard let entry = value as? [String: Any], let dtypeName = entry["dtype"] as? String,
                let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int],
                offsets.count == 2
            else { throw fail("tensor \(key): header entry lacks dtype, shape or data_offsets") }
            guard let dtype = StoredTensor.DType(rawValue: dtypeName) else {
                throw fail("tensor \(key): unsupported dtype \(dtypeName) (flowpolicy reads F32, F64, I64, I32, U8)")
            }
            guard shape.allSatisfy({ $0 >= 0 }), offsets[0] >= 0, offsets[0] <= offsets[1] else {
                throw fail("tensor \(key): negative shape or inverted data offsets \(offsets)")
            }
            guard offsets[1] <= dataLength else {
                throw fail(
                    "truncated: tensor \(key) ends at byte \(offsets[1]) of the data section, which has only "
                        + "\(dataLength) bytes")
            }
            let expected = shape.reduce(1, *) * dtype.size
            guard offsets[1] - offsets[0] == expected else {
                throw fail("tensor \(key): \(offsets[1] - offsets[0]) bytes stored, shape \(shape) needs \(expected)")
            }
            entries.append((key, dtype, shape, offsets[0], offsets[1]))
        }
        entries.sort { $0.begin < $1.begin }
        self.metadata = metadata
        self.tensors = entries.map { entry in
            (entry.name,
             StoredTensor(
                dtype: entry.dtype, shape: entry.shape,
                bytes: Array(bytes[(dataStart + entry.begin)..<(dataStart + entry.end)])))
        }
    }

    public init(contentsOf path: String) throws(FlowPolicyError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw .io(path: path, message: exists ? "cannot be read (permissions?)" : "no such file")
        }
        try self.init(bytes: [UInt8](data), path: path)
    }
}

private func jsonString(_ value: String) -> String {
    var out = "\""
    for scalar in value.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                out += String(format: "\\u%04x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
