import Foundation
import PolicyRuntime

/// A progress bar on standard error: redrawn in place (at most 10 times a second) on a terminal, one line per 10%
/// otherwise (CI logs). Shows count, rate, elapsed and remaining time, and a caller-supplied status.
public final class ProgressBar {
    public let title: String
    public let total: Int
    public let unit: String
    private let interactive: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var lastDecile = -1
    private var finished = false

    public init(title: String, total: Int, unit: String = "it") {
        self.title = title
        self.total = max(total, 1)
        self.unit = unit
        interactive = isatty(STDERR_FILENO) == 1
    }

    public func update(completed: Int, status: String = "") {
        let now = Date()
        let decile = completed * 10 / total
        if interactive {
            guard now.timeIntervalSince(lastDraw) >= 0.1 || completed >= total else { return }
            lastDraw = now
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line(completed: completed, status: status)).utf8))
        } else if decile > lastDecile {
            lastDecile = decile
            FileHandle.standardError.write(Data((line(completed: completed, status: status) + "\n").utf8))
        }
    }

    public func finish(status: String = "") {
        guard !finished else { return }
        finished = true
        if interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line(completed: total, status: status) + "\n").utf8))
        } else if lastDecile < 10 {
            FileHandle.standardError.write(Data((line(completed: total, status: status) + "\n").utf8))
        }
    }

    private func line(completed: Int, status: String) -> String {
        let elapsed = Date().timeIntervalSince(start)
        let fraction = Double(min(completed, total)) / Double(total)
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let rate = elapsed > 0 ? Double(completed) / elapsed : 0
        let remaining = rate > 0 ? Double(total - completed) / rate : 0
        var text = "\(title) \(bar) \(completed)/\(total) [\(formatDuration(elapsed))<\(formatDuration(remaining)), "
            + String(format: rate >= 10 ? "%.0f" : "%.2f", rate) + " \(unit)/s]"
        if !status.isEmpty { text += " " + status }
        return text
    }
}
