import Foundation
import Testing
import FlowPolicy

/// The image encoders against their PyTorch modules (`clients/python/flowpolicy_torch/vision.py`, torchvision's
/// ResNet-18): flowpolicy writes its seeded parameters under their names, an input batch and its output; PyTorch
/// loads the parameters with `strict=True` (the names and shapes must match exactly), runs the forward pass and
/// fails if the outputs differ by more than 1e-4.
///
/// Needs the torch environment: `$FLOWPOLICY_TORCH_PYTHON` names its interpreter (scripts/test_torch.sh sets it);
/// without it the tests are skipped.
@Suite struct ImageEncoderTorchParityTests {
    static let torchPython = ProcessInfo.processInfo.environment["FLOWPOLICY_TORCH_PYTHON"]

    @Test(
        .enabled(if: torchPython != nil, "FLOWPOLICY_TORCH_PYTHON is not set (scripts/test_torch.sh sets it)"),
        arguments: [
            ImageEncoderConfiguration(backbone: .smallCNN, channels: 3, height: 84, width: 84),
            ImageEncoderConfiguration(backbone: .resnet18, channels: 3, height: 64, width: 64),
        ])
    func forwardMatchesPyTorch(configuration: ImageEncoderConfiguration) throws {
        let prefix = "camera"
        var layout = ParameterLayout()
        let encoder = try ImageEncoder(configuration, name: prefix, layout: &layout)
        var generator = RandomSource(seed: 51)
        let parameters = FloatBuffer(count: layout.count)
        layout.initialize(parameters, using: &generator)
        // GroupNorm weights and biases off 1 and 0, so that a swapped or misplaced affine shows.
        for spec in layout.tensors where spec.initializer == .ones || spec.initializer == .zeros {
            for i in spec.offset..<(spec.offset + spec.count) {
                parameters[i] += 0.2 * (2 * generator.nextUniform() - 1)
            }
        }
        // Sharper keypoint maps: at the default scale the softmax is nearly uniform over the positions, every keypoint
        // near (0, 0), and the features would barely depend on the backbone.
        let keypoints = try #require(layout.spec(named: "\(prefix).pool.keypoints.weight"))
        for i in keypoints.offset..<(keypoints.offset + keypoints.count) { parameters[i] *= 30 }
        let B = 2
        let (C, H, W, F) = (configuration.channels, configuration.height, configuration.width, configuration.features)
        let images = FloatBuffer(randomValues(B * C * H * W, seed: 52))
        let output = FloatBuffer(count: B * F)
        let cache = ImageEncoderCache(encoder: encoder, capacity: B)
        encoder.forward(images: images.pointer, batch: B, parameters: parameters.pointer, cache: cache,
                        output: output.pointer)

        var file = SafeTensorsFile()
        file.metadata["image_encoder"] = String(decoding: try JSONEncoder().encode(configuration), as: UTF8.self)
        file.metadata["prefix"] = prefix
        for spec in layout.tensors {
            file.tensors.append((spec.name, StoredTensor(
                float32: UnsafeBufferPointer(start: parameters.pointer + spec.offset, count: spec.count),
                shape: spec.shape)))
        }
        file.tensors.append(("input", StoredTensor(float32: UnsafeBufferPointer(images.buffer), shape: [B, C, H, W])))
        file.tensors.append(("output", StoredTensor(float32: UnsafeBufferPointer(output.buffer), shape: [B, F])))
        let path = temporaryPath("image-encoder-\(configuration.backbone.rawValue).safetensors")
        try file.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }

        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.torchPython!)
        process.arguments = ["-m", "flowpolicy_torch.vision", path, "--tolerance", "1e-4"]
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = root.appendingPathComponent("clients/python").path
        environment["OMP_NUM_THREADS"] = "1"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let report = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        print("PyTorch parity, \(report.trimmingCharacters(in: .whitespacesAndNewlines))")
        #expect(process.terminationStatus == 0, "\(report)")
    }
}
