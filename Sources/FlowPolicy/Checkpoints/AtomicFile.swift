import Foundation

/// Writes whole files so that readers and crashes never see half of one.
public enum AtomicFile {
    /// Writes `bytes` to a temporary file beside `path`, flushes it, renames it over `path` and flushes the folder,
    /// so that after a crash or a power cut the file is either the old one or the new one, whole. If anything fails,
    /// the temporary file is removed and whatever was at `path` is untouched. Temporary files that killed writers
    /// left for the same target (`.NAME.tmp-PID-...` of a process that no longer runs) are removed first.
    public static func write(_ bytes: [UInt8], to path: String) throws(FlowPolicyError) {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw .io(path: path, message: "the folder \(folder) does not exist; create it first")
        }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw .io(path: path, message: "this is a folder; give a file path to write")
        }
        let prefix = "." + url.lastPathComponent + ".tmp-"
        removeStaleTemporaries(in: folder, prefix: prefix)
        let temporary = folder + "/" + prefix + "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else {
            throw .io(
                path: path, message: "cannot create a temporary file in \(folder): \(String(cString: strerror(errno)))")
        }
        var written = 0
        var failure: String?
        bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = Foundation.write(descriptor, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                written += n
            }
        }
        if failure == nil, fsync(descriptor) != 0 { failure = String(cString: strerror(errno)) }
        close(descriptor)
        if failure == nil, rename(temporary, path) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(temporary)
            throw .io(path: path, message: "write failed (\(failure)); the previous file, if any, is unchanged")
        }
        // The rename is durable once the folder's entry is on disk.
        let folderDescriptor = open(folder, O_RDONLY | O_DIRECTORY)
        if folderDescriptor >= 0 {
            fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }

    /// Removes `folder`'s files named `prefix` + `PID-...` whose process is gone (a writer killed mid-write).
    static func removeStaleTemporaries(in folder: String, prefix: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(folder + "/" + name) }
        }
    }
}
