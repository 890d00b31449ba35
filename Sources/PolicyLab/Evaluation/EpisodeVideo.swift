import FlowPolicy
import Foundation
import SimBridge

/// One episode's video: a frame of the environment before each step's action, with the step, the progress (Push-T's
/// coverage) and the chunk in a caption, and a bar along the top on the steps where a new chunk starts. Frames go
/// raw to a temporary file in the video's folder; `finish` encodes them with ffmpeg (H.264, yuv420p, one frame per
/// control step at the control rate), burning in the captions (an ASS subtitle track, through libass), writes the
/// MP4 to a temporary name and renames it into place (its name can tell the outcome, known only then).
final class EpisodeVideo {
    private let renderer: any FrameRenderer
    private let frame: UnsafeMutablePointer<UInt8>
    private let frameBytes: Int
    private let raw: FileHandle
    private let rawPath: String
    private let frameRate: Double
    private var captions: [String] = []
    private(set) var frames = 0

    init(folder: String, seed: UInt64, environment: any Environment, width: Int, height: Int) throws {
        guard let renderable = environment as? any RenderableEnvironment else {
            throw FlowPolicyError.invalidConfiguration(
                "task \(environment.specification.task) cannot be rendered yet; videos are for the tasks that can")
        }
        renderer = try renderable.makeRenderer(width: width, height: height)
        frameRate = environment.specification.controlRate
        frameBytes = width * height * 3
        frame = .allocate(capacity: frameBytes)
        rawPath = URL(fileURLWithPath: folder).appendingPathComponent(".seed-\(seed).frames.tmp").path
        guard FileManager.default.createFile(atPath: rawPath, contents: nil),
              let raw = FileHandle(forWritingAtPath: rawPath)
        else {
            frame.deallocate()
            throw FlowPolicyError.invalidConfiguration("\(rawPath): cannot be written (check the video folder)")
        }
        self.raw = raw
    }

    deinit {
        frame.deallocate()
        try? raw.close()
        try? FileManager.default.removeItem(atPath: rawPath)
    }

    /// Records the environment as it is before step `step`'s action.
    func record(step: Int, progress: Double, progressName: String, chunk: Int, newChunk: Bool) throws {
        try renderer.render(into: frame)
        if newChunk {
            let bar = min(renderer.height, max(2, renderer.height / 48)) * renderer.width
            for pixel in 0..<bar {  // dark orange
                (frame[3 * pixel], frame[3 * pixel + 1], frame[3 * pixel + 2]) = (255, 140, 0)
            }
        }
        try raw.write(contentsOf: UnsafeBufferPointer(start: frame, count: frameBytes))
        let (start, end) = (Double(frames) / frameRate, Double(frames + 1) / frameRate)
        captions.append("Dialogue: 0,\(Self.time(start)),\(Self.time(end)),Default,,0,0,0,,step \(step)\\N"
            + String(format: "%@ %.3f\\Nchunk %d", progressName, progress, chunk))
        frames += 1
    }

    /// Encodes the frames into the MP4 at `path`; nothing is left at `path` if encoding fails.
    func finish(path: String, outcome: String) throws {
        try raw.close()
        let subtitles = path + ".ass.tmp"
        let encoded = path + ".mp4.tmp"
        defer {
            try? FileManager.default.removeItem(atPath: subtitles)
            try? FileManager.default.removeItem(atPath: encoded)
        }
        let fontSize = max(8, renderer.height / 16)
        let header = """
            [Script Info]
            ScriptType: v4.00+
            PlayResX: \(renderer.width)
            PlayResY: \(renderer.height)

            [V4+ Styles]
            Format: Name, Fontname, Fontsize, PrimaryColour, OutlineColour, BorderStyle, Outline, Shadow, Alignment, \
            MarginL, MarginR, MarginV
            Style: Default,DejaVu Sans,\(fontSize),&H00FFFFFF,&H00000000,1,\(max(1, fontSize / 8)),0,7,4,4,4

            [Events]
            Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text

            """
        try AtomicFile.write(Array((header + captions.joined(separator: "\n") + "\n").utf8), to: subtitles)
        let arguments = [
            "ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", "\(renderer.width)x\(renderer.height)", "-r", String(format: "%g", frameRate), "-i", rawPath,
            "-vf", "subtitles=filename=\(Self.filterQuoted(subtitles))", "-c:v", "libx264", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", "-metadata", "comment=\(outcome)", "-f", "mp4", encoded,
        ]
        try Self.run(arguments)
        guard rename(encoded, path) == 0 else {
            throw FlowPolicyError.invalidConfiguration(
                "\(path): cannot be written (\(String(cString: strerror(errno))))")
        }
    }

    /// ASS time: h:mm:ss.cc.
    static func time(_ seconds: Double) -> String {
        let centiseconds = Int((seconds * 100).rounded())
        return String(format: "%d:%02d:%02d.%02d", centiseconds / 360_000, centiseconds / 6000 % 60,
                      centiseconds / 100 % 60, centiseconds % 100)
    }

    /// A path as a value in an ffmpeg filter graph: quoted, with its quotes, colons and backslashes escaped.
    static func filterQuoted(_ path: String) -> String {
        let escaped = path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ":", with: "\\:")
            .replacingOccurrences(of: "'", with: "\\'")
        return "'\(escaped)'"
    }

    /// Runs ffmpeg; its error output becomes the thrown error.
    static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw FlowPolicyError.invalidConfiguration(
                "cannot run ffmpeg (\(error)): install it (apt-get install ffmpeg; scripts/setup.sh does)")
        }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let reason = process.terminationStatus == 127
                ? "ffmpeg is not installed: apt-get install ffmpeg (scripts/setup.sh does)"
                : message.trimmingCharacters(in: .whitespacesAndNewlines)
            throw FlowPolicyError.invalidConfiguration("encoding the video failed: \(reason)")
        }
    }
}
