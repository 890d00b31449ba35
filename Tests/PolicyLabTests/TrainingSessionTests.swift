import FlowPolicy
import Foundation
import PolicyLab
import PolicyRuntime
import RuntimeTestSupport
import Testing

/// `flowpolicy train` end to end on the conditional toy: the files it writes and what they hold.
@Suite struct TrainingSessionTests {
    static func toyDataset(in folder: URL) throws -> String {
        let path = folder.appendingPathComponent("toy.safetensors").path
        try ConditionalMixture.dataset(count: 512, seed: 3).write(to: path)
        return path
    }

    static func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("flowpolicy-train-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    static func options(dataset: String, out: String) -> TrainingSession.Options {
        var options = TrainingSession.Options(datasetPath: dataset, outputPath: out)
        options.hidden = 32
        options.depth = 1
        options.timeEmbedding = 8
        options.training.steps = 40
        options.training.batchSize = 32
        options.training.warmupSteps = 4
        options.training.threads = 2
        return options
    }

    /// The pool push reports its progress while it writes the pool: the session must not read the pool meanwhile
    /// (that was an exclusivity violation, a crash at the end of the first block).
    @Test func localFlowMatchingTrainsEveryBlockAndWritesTheChain() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("lfm.safetensors").path
        var options = Self.options(dataset: try Self.toyDataset(in: folder), out: out)
        options.method = .lfm
        options.chainBlocks = 2
        let summary = try TrainingSession.run(options)
        #expect(summary.method == "lfm" && summary.chainBlocks == 2 && summary.steps == 40)
        let chain = try Checkpoint(contentsOf: out)
        #expect(chain.isChain && chain.stages.count == 2)
    }

    @Test func flowMatchingWritesIntermediateCheckpoints() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("fm.safetensors").path
        var options = Self.options(dataset: try Self.toyDataset(in: folder), out: out)
        options.saveEvery = 20
        let summary = try TrainingSession.run(options)
        #expect(summary.method == "fm" && summary.finalLoss.isFinite)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(files == ["fm.safetensors", "fm.step20.safetensors", "toy.safetensors"])
    }
}
