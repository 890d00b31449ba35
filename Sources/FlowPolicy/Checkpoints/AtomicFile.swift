import Foundation

/// Writes whole files so that readers and crashes never see half of one.
public enum AtomicFile {
    /// Writes `bytes` to a temporary file beside `path`, flushes it, and renames it over `path`. If anything fails,
    /// the temporary file is removed and whatever was at `path` is untouched.
    public static func write(_ bytes: [UInt8], to path: String) throws(FlowPolicyError) {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw .io(path: path, message: "the folder \(folder) does not exist; create it first")
        }
        let temporary = folder + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else {
            throw .io(path: path, message: "cannot create a temporary file in \(folder): \(String(cString: strerror(errno)))")
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
    }
}
