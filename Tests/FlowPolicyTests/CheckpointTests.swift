import Foundation
import Testing
import FlowPolicy

/// A small trained checkpoint for the file tests.
private func smallCheckpoint(steps: Int = 3) throws -> Checkpoint {
    let dataset = ConditionalMixture.dataset(count: 64, seed: 1)
    var configuration = TrainingConfiguration()
    configuration.steps = steps
    configuration.batchSize = 16
    let spec = ConditionalMixture.spec
    let trainer = try FlowMatchingTrainer(
        spec: spec, network: spec.networkConfiguration(hidden: 8, blocks: 2, timeEmbedding: 4), dataset: dataset,
        configuration: configuration)
    for _ in 0..<steps { try trainer.trainStep() }
    return trainer.checkpoint(provenance: ["command": "test"])
}

private func bytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

@Suite struct CheckpointTests {
    @Test func roundTripIsExact() throws {
        let checkpoint = try smallCheckpoint()
        let path = temporaryPath("roundtrip.safetensors")
        try checkpoint.write(to: path)
        let loaded = try Checkpoint(contentsOf: path)
        #expect(loaded.spec == checkpoint.spec)
        #expect(loaded.network.configuration == checkpoint.network.configuration)
        #expect(loaded.parameters.array.map(\.bitPattern) == checkpoint.parameters.array.map(\.bitPattern))
        #expect(loaded.observationNormalizer == checkpoint.observationNormalizer)
        #expect(loaded.actionNormalizer == checkpoint.actionNormalizer)
        #expect(loaded.method == "fm")
        #expect(loaded.provenance["command"] == "test")
        #expect(loaded.provenance["dataset_hash"]?.hasPrefix("fnv1a64:") == true)
        // Writing the loaded checkpoint again gives the same bytes.
        let again = temporaryPath("roundtrip-again.safetensors")
        try loaded.write(to: again)
        #expect(bytes(path) == bytes(again))
    }

    /// A contract of the toy's dimensions (1-D observations, 2-D actions).
    static let toyContract = DeploymentContract(
        controlRateHz: 12.5, observations: [.init(name: "condition", size: 1, unit: "")],
        actions: [.init(name: "target", size: 2, unit: "m")], actionKind: .position, actionLow: [-3, -3],
        actionHigh: [3, 3], maximumStepChange: [1, 1], maximumVelocity: [2, 2], handOver: .ensemble)

    @Test func theDeploymentContractTravelsWithTheCheckpoint() throws {
        let checkpoint = try smallCheckpoint()
        #expect(checkpoint.contract == nil)
        let legacy = temporaryPath("legacy.safetensors")
        try checkpoint.write(to: legacy)
        #expect(try Checkpoint(contentsOf: legacy).contract == nil)  // written before the contract: still loads
        checkpoint.contract = Self.toyContract
        let path = temporaryPath("contract.safetensors")
        try checkpoint.write(to: path)
        let loaded = try Checkpoint(contentsOf: path)
        #expect(loaded.contract == Self.toyContract)
        // The weights are the same with or without it.
        #expect(loaded.parameters.array.map(\.bitPattern) == checkpoint.parameters.array.map(\.bitPattern))
    }

    /// Spoils one field of a contract; returns what the refusal must say.
    static func spoil(_ contract: inout DeploymentContract, _ how: String) -> String {
        switch how {
        case "zero rate": contract.controlRateHz = 0; return "control_rate_hz"
        case "negative rate": contract.controlRateHz = -10; return "control_rate_hz"
        case "inverted bounds": contract.actionLow[1] = 4; return "dimension 1 are not an interval"
        case "NaN bound": contract.actionHigh[0] = 12345.5; return "dimension 0"
        case "NaN limit": contract.maximumVelocity = [1, 12345.5]; return "max_velocity[1]"
        case "zero step": contract.maximumStepChange = [0, 1]; return "max_step_change[0]"
        default: contract.actions[0].size = 3; return "actions layout adds up to 3"
        }
    }

    @Test(arguments: ["zero rate", "negative rate", "inverted bounds", "NaN bound", "NaN limit", "zero step", "sizes"])
    func aBadContractIsRefusedWhenTheCheckpointIsRead(how: String) throws {
        var contract = Self.toyContract
        let expected = Self.spoil(&contract, how)
        var file = try smallCheckpoint().safeTensors()
        // 12345.5 stands for a NaN, which JSON spells as a string.
        file.metadata["deployment"] = contract.json.replacingOccurrences(of: "12345.5", with: "\"NaN\"")
        let path = temporaryPath("bad-contract-\(how.replacingOccurrences(of: " ", with: "-")).safetensors")
        try file.write(to: path)
        #expect { try Checkpoint(contentsOf: path) } throws: { error in
            "\(error)".contains(path) && "\(error)".contains(expected)
        }
    }

    @Test func otherFormatVersionIsRefused() throws {
        var file = try smallCheckpoint().safeTensors()
        file.metadata["format_version"] = "2"
        let path = temporaryPath("version2.safetensors")
        try file.write(to: path)
        #expect {
            try Checkpoint(contentsOf: path)
        } throws: { error in
            let text = "\(error)"
            return text.contains(path) && text.contains("format version 2") && text.contains("reads version 1")
        }
    }

    @Test func wrongShapeIsRefusedNamingTheTensor() throws {
        var file = try smallCheckpoint().safeTensors()
        let index = file.tensors.firstIndex { $0.name == "blocks.1.l1.weight" }!
        file.tensors[index].tensor = StoredTensor(float32: [Float](repeating: 0, count: 8 * 9), shape: [8, 9])
        let path = temporaryPath("wrongshape.safetensors")
        try file.write(to: path)
        #expect {
            try Checkpoint(contentsOf: path)
        } throws: { error in
            let text = "\(error)"
            return text.contains(path) && text.contains("blocks.1.l1.weight") && text.contains("[8, 9]")
                && text.contains("[8, 8]")
        }
    }

    @Test func truncatedFileIsRefused() throws {
        let path = temporaryPath("full.safetensors")
        try smallCheckpoint().write(to: path)
        let whole = bytes(path)
        for cut in [whole.count - 100, 40, 5] {
            let truncated = temporaryPath("truncated-\(cut).safetensors")
            _ = FileManager.default.createFile(atPath: truncated, contents: Data(whole[0..<cut]))
            #expect {
                try Checkpoint(contentsOf: truncated)
            } throws: { error in
                "\(error)".contains(truncated) && ("\(error)".contains("truncated") || "\(error)".contains("shorter"))
            }
        }
        #expect { try Checkpoint(contentsOf: temporaryPath("does-not-exist.safetensors")) } throws: {
            "\($0)".contains("no such file")
        }
    }

    @Test func aDatasetIsNotACheckpoint() throws {
        let path = temporaryPath("dataset-not-checkpoint.safetensors")
        try ConditionalMixture.dataset(count: 4, seed: 1).write(to: path)
        #expect { try Checkpoint(contentsOf: path) } throws: { "\($0)".contains("not a flowpolicy checkpoint") }
    }

    /// A failed write leaves the existing file exactly as it was and no temporary file behind.
    @Test func failedWriteLosesNothing() throws {
        let folder = temporaryPath("atomic")
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/policy.safetensors"
        let checkpoint = try smallCheckpoint()
        try checkpoint.write(to: path)
        let before = bytes(path)
        // Renaming a file over a non-empty directory fails: the target is a directory holding a file.
        let blocked = folder + "/blocked"
        try FileManager.default.createDirectory(atPath: blocked, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: blocked + "/keep", contents: Data([1, 2, 3]))
        #expect(throws: FlowPolicyError.self) { try checkpoint.write(to: blocked) }
        #expect(throws: FlowPolicyError.self) { try checkpoint.write(to: folder + "/missing-folder/policy.safetensors") }
        #expect(bytes(path) == before)
        #expect(bytes(blocked + "/keep") == [1, 2, 3])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }

    /// Temporary files a killed writer left for the same target are removed by the next write; a live writer's stay.
    @Test func theNextWriteRemovesTheTemporaryFilesOfKilledWriters() throws {
        let folder = temporaryPath("stale")
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // A process id that is not running: the largest the kernel would hand out, plus one.
        let pidMax = try? String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8)
        let gone = (Int32(pidMax?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 4_194_304) + 1
        let stale = folder + "/.policy.safetensors.tmp-\(gone)-123"
        let live = folder + "/.policy.safetensors.tmp-\(getpid())-456"
        let other = folder + "/.other.safetensors.tmp-\(gone)-789"
        for file in [stale, live, other] { _ = FileManager.default.createFile(atPath: file, contents: Data([0])) }
        try smallCheckpoint().write(to: folder + "/policy.safetensors")
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: live) && FileManager.default.fileExists(atPath: other))
        #expect(throws: FlowPolicyError.self) { try smallCheckpoint().write(to: folder) }  // a folder, refused
    }

    /// Python's `safetensors` reads the checkpoint and sees the documented PyTorch names and shapes.
    @Test func pythonSafetensorsReadsCheckpoint() throws {
        let checkpoint = try smallCheckpoint()
        let path = temporaryPath("python.safetensors")
        try checkpoint.write(to: path)
        let result = try runPython("""
            import json
            from safetensors import safe_open
            from safetensors.numpy import load_file
            tensors = load_file("\(path)")
            with safe_open("\(path)", framework="numpy") as f:
                meta = f.metadata()
            print(json.dumps({"shapes": {k: list(v.shape) for k, v in tensors.items()},
                              "dtypes": sorted({str(v.dtype) for v in tensors.values()}),
                              "meta": meta, "first": float(tensors["inp.weight"][0, 0])}))
            """)
        try #require(
            result.status == 0,
            "Python could not read the checkpoint (the README's test command installs safetensors): \(result.output)")
        let report = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as! [String: Any]
        let shapes = report["shapes"] as! [String: [Int]]
        for spec in checkpoint.network.layout.tensors {
            #expect(shapes[spec.name] == spec.shape, "\(spec.name)")
        }
        #expect(shapes["normalizer.action.min"] == [2])
        #expect(report["dtypes"] as? [String] == ["float32"])
        let meta = report["meta"] as! [String: String]
        #expect(meta["format"] == "flowpolicy" && meta["architecture"] == "ResMLPFiLM" && meta["Tp"] == "1")
        #expect(Float((report["first"] as! NSNumber).doubleValue) == checkpoint.parameters[0])
    }
}

@Suite struct DatasetTests {
    @Test func roundTripIsExactAndAppendingKeepsEpisodes() throws {
        let dataset = ConditionalMixture.dataset(count: 10, seed: 4)
        let path = temporaryPath("dataset.safetensors")
        try dataset.write(to: path)
        let loaded = try EpisodeDataset(contentsOf: path)
        #expect(loaded == dataset)
        var extended = loaded
        try extended.append(contentsOf: ConditionalMixture.dataset(count: 5, seed: 5))
        #expect(extended.episodeCount == 15)
        #expect(Array(extended.observations.prefix(10)) == dataset.observations)
        #expect(Array(extended.episodeEnds.prefix(10)) == dataset.episodeEnds)
    }

    @Test func pythonSafetensorsReadsDataset() throws {
        let dataset = ConditionalMixture.dataset(count: 7, seed: 2)
        let path = temporaryPath("dataset-python.safetensors")
        try dataset.write(to: path)
        let result = try runPython("""
            from safetensors.numpy import load_file
            t = load_file("\(path)")
            print(list(t["obs"].shape), list(t["action"].shape), t["episode_ends"].dtype, t["episode_ends"].tolist())
            """)
        try #require(result.status == 0, "\(result.output)")
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines)
            == "[7, 1] [7, 2] int64 [1, 2, 3, 4, 5, 6, 7]")
    }

    private func writeRaw(_ name: String, obs: [Float], obsShape: [Int], action: [Float], actionShape: [Int],
                          ends: [Int64]) throws -> String {
        let path = temporaryPath(name)
        try SafeTensorsFile(tensors: [
            ("obs", StoredTensor(float32: obs, shape: obsShape)),
            ("action", StoredTensor(float32: action, shape: actionShape)),
            ("episode_ends", StoredTensor(int64: ends, shape: [ends.count])),
        ]).write(to: path)
        return path
    }

    @Test func inconsistentEpisodeEndsAreRefused() throws {
        let obs = [Float](repeating: 0, count: 6)
        let action = [Float](repeating: 0, count: 12)
        let short = try writeRaw("ends-short.safetensors", obs: obs, obsShape: [6, 1], action: action, actionShape: [6, 2], ends: [2, 5])
        #expect { try EpisodeDataset(contentsOf: short) } throws: { "\($0)".contains("ends at 5") && "\($0)".contains(short) }
        let unordered = try writeRaw("ends-order.safetensors", obs: obs, obsShape: [6, 1], action: action, actionShape: [6, 2], ends: [4, 2, 6])
        #expect { try EpisodeDataset(contentsOf: unordered) } throws: { "\($0)".contains("strictly increasing") }
        let rows = try writeRaw("rows.safetensors", obs: obs, obsShape: [6, 1], action: [Float](repeating: 0, count: 10), actionShape: [5, 2], ends: [6])
        #expect { try EpisodeDataset(contentsOf: rows) } throws: { "\($0)".contains("6 rows but action has 5") }
    }

    @Test func nonFiniteValuesAreRefusedWithTheirLocation() throws {
        var obs = [Float](repeating: 0, count: 6)
        obs[4] = .nan
        let path = try writeRaw("nan.safetensors", obs: obs, obsShape: [6, 1], action: [Float](repeating: 0, count: 12),
                                actionShape: [6, 2], ends: [3, 6])
        #expect { try EpisodeDataset(contentsOf: path) } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("row 4") && "\(error)".contains("episode 1")
        }
        var dataset = EpisodeDataset(observationDimensions: 1, actionDimensions: 2)
        #expect(throws: FlowPolicyError.self) { try dataset.appendEpisode(observations: [.infinity], actions: [0, 0]) }
        #expect(dataset.episodeCount == 0)
    }

    /// Diffusion Policy's padding: the first observation repeats before the episode start, the last action past its
    /// end, and starts run from -(To-1) to L - Tp + Ta - 1.
    @Test func sequenceSamplerPadsLikeDiffusionPolicy() throws {
        var dataset = EpisodeDataset(observationDimensions: 1, actionDimensions: 1)
        try dataset.appendEpisode(observations: (0..<5).map { Float($0) }, actions: (0..<5).map { Float(10 + $0) })
        try dataset.appendEpisode(observations: (0..<4).map { Float(100 + $0) }, actions: (0..<4).map { Float(200 + $0) })
        let sampler = SequenceSampler(dataset: dataset, observationSteps: 2, predictionSteps: 4, actionSteps: 2)
        // Episode lengths 5 and 4: starts -1...2 (4 pairs) and -1...1 (3 pairs).
        #expect(sampler.count == 7)
        var window = [Float](repeating: 0, count: 2)
        var chunk = [Float](repeating: 0, count: 4)
        func pair(_ i: Int) -> ([Float], [Float]) {
            dataset.observations.withUnsafeBufferPointer { o in
                dataset.actions.withUnsafeBufferPointer { a in
                    sampler.fill(pair: i, observations: o.baseAddress!, observationDimensions: 1, actions: a.baseAddress!,
                                 actionDimensions: 1, window: &window, chunk: &chunk)
                }
            }
            return (window, chunk)
        }
        #expect(pair(0) == ([0, 0], [10, 10, 11, 12]))
        #expect(pair(3) == ([2, 3], [12, 13, 14, 14]))
        #expect(pair(6) == ([101, 102], [201, 202, 203, 203]))
    }
}
