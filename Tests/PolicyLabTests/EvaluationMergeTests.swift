import FlowPolicy
import Foundation
import PolicyLab
import PolicyRuntime
import SimBridge
import RuntimeTestSupport
import Testing

private func temporaryPath(_ name: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("flowpolicy-\(UUID())-\(name)").path
}

@Suite struct EvaluationMergeTests {
    @Test func shardsCoverTheSeedsOnceLongestFirst() {
        for n in [1, 2, 7, 10, 200] {
            for count in 1...min(n, 6) {
                let ranges = (0..<count).map { Shard("\($0)/\(count)")!.range(of: n) }
                #expect(ranges.flatMap { Array($0) } == Array(0..<n))
                #expect(ranges.map(\.count) == ranges.map(\.count).sorted(by: >))
                #expect(ranges.map(\.count).max()! - ranges.map(\.count).min()! <= 1)
            }
        }
        #expect(Shard("3/3") == nil && Shard("0/0") == nil && Shard("1") == nil && Shard("-1/2") == nil)
    }

    /// The shipped Push-T policy on 11 seeds: three uneven shards (4, 4, 3 episodes) on one thread, merged, are the
    /// unsharded run on two threads, seed by seed, with the same success, interval and chunk count.
    @Test func mergedShardsAreTheUnshardedRun() throws {
        let path = "tasks/pusht/policy.safetensors"
        let checkpoint = try Checkpoint(contentsOf: path)
        var options = EvaluationSession.Options(task: try .named("pusht"))
        options.episodes = 11
        options.steps = 2
        options.showProgress = false
        options.threads = 2
        let whole = try EvaluationSession.run(options, checkpoint: checkpoint, path: path)
        options.threads = 1
        let folder = temporaryPath("shards")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let shards = try (0..<3).map { index in
            options.shard = Shard("\(index)/3")
            let report = try EvaluationSession.run(options, checkpoint: checkpoint, path: path)
            let file = "\(folder)/\(index).json"
            try writeJSONReport(report, to: file)  // merged as `flowpolicy merge` reads them: from their files
            return (path: file, report: try readJSONReport(EvaluationSession.Report.self, from: file))
        }
        #expect(shards.map(\.report.episodes) == [4, 4, 3])
        let merged = try EvaluationMerge.merge(shards.reversed())
        #expect(merged.results == whole.results)
        #expect(merged.success == whole.success && merged.meanMaxProgress == whole.meanMaxProgress)
        #expect(merged.seeds == whole.seeds && merged.episodes == 11 && merged.shard == nil)
        #expect(merged.chunkLatency?.count == whole.chunkLatency?.count && (whole.chunkLatency?.count ?? 0) > 0)
        #expect(merged.clampedChunkValues == whole.clampedChunkValues)
        #expect(merged.checkpointHash == whole.checkpointHash && merged.checkpointHash?.hasPrefix("fnv1a64:") == true)
        #expect(merged.wallSeconds == shards.reduce(0) { $0 + $1.report.wallSeconds })

        // Refused: a shard missing, a seed twice, a different K; each error names what differs.
        #expect(throws: FlowPolicyError.self) { try EvaluationMerge.merge(Array(shards.prefix(2))) }
        #expect(throws: FlowPolicyError.self) { try EvaluationMerge.merge(shards + [shards[1]]) }
        var otherK = shards[2]
        otherK.report.solverSteps = 10
        do {
            _ = try EvaluationMerge.merge([shards[0], shards[1], otherK])
            Issue.record("shards of different K merged")
        } catch {
            #expect("\(error)".contains("its K is 10") && "\(error)".contains("2"), "\(error)")
        }
    }

    @Test func campaignPlansOneJobPerShardAndConfiguration() throws {
        let folder = temporaryPath("campaign")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let file = folder + "/campaign.yaml"
        try """
            task: pusht
            checkpoints: [tasks/pusht/policy.safetensors]
            steps: [2, 10]
            hand_overs: [receding, ensemble]
            episodes: 10
            shards: 3
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let plan = try Campaign(contentsOf: file).plan(into: folder + "/plan", executable: "/usr/bin/flowpolicy")
        #expect(plan.configurations.count == 4 && plan.jobs == 12)
        let jobs = try String(contentsOfFile: folder + "/plan/jobs.txt", encoding: .utf8)
            .split(separator: "\n")
        #expect(jobs.count == 12 && jobs.allSatisfy { $0.contains("'eval'") && $0.contains("'--shard'") })
        let script = try String(contentsOfFile: folder + "/plan/campaign.sbatch", encoding: .utf8)
        #expect(script.contains("#SBATCH --array=0-11"))

        try "task: pusht\ncheckpoints: []\nsteps: [2]\nepisodes: 4\nshards: 5\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: FlowPolicyError.self) { try Campaign(contentsOf: file) }
    }
}

@Suite struct EvaluationVideoTests {
    /// `eval --video`: the chosen episodes filmed again after the evaluation, one H.264 frame per step (ffprobe).
    @Test func videosHaveOneFramePerStep() throws {
        let folder = temporaryPath("videos")
        var options = EvaluationSession.Options(task: try .named("pusht"))
        options.episodes = 4
        options.steps = 2
        options.showProgress = false
        var video = EvaluationSession.VideoOptions(folder: folder)
        video.episodes = 2
        video.width = 96
        video.height = 96
        options.video = video
        let path = "tasks/pusht/policy.safetensors"
        let report = try EvaluationSession.run(options, checkpoint: try Checkpoint(contentsOf: path), path: path)
        let videos = try #require(report.videos)
        #expect(videos.count == 2)
        for entry in videos {
            let outcome = try #require(report.results.first { $0.seed == entry.seed })
            #expect(entry.steps == outcome.steps && entry.success == outcome.success)
            #expect(entry.file.hasSuffix("seed-\(entry.seed)-\(outcome.success ? "success" : "failure").mp4"))
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            probe.arguments = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                               "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0", entry.file]
            let output = Pipe()
            probe.standardOutput = output
            try probe.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            probe.waitUntilExit()
            #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == "h264,96,96,\(outcome.steps)")
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)
    }
}
