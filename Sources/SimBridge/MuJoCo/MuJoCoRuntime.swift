import CMuJoCo

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Process-wide MuJoCo set-up: the version check and the error hooks.
public enum MuJoCo {
    /// The MuJoCo version SimBridge was compiled against, e.g. 222 for 2.2.2. The corresponding C macro is
    /// `mjVERSION_HEADER`.
    public static var headerVersion: Int { Int(fp_mj_version_header()) }

    /// The version of the libmujoco loaded at run time. The corresponding C function is `mj_version`.
    public static var libraryVersion: Int { Int(mj_version()) }

    /// Checks that the loaded libmujoco matches the header and installs SimBridge's error and warning hooks.
    ///
    /// Runs once per process; later calls return the first outcome. Loading a `Model` calls it, so calling it
    /// yourself is only needed to fail fast at start-up.
    public static func prepare() throws(MuJoCoError) {
        try preparation.get()
    }

    /// The text of the last warning MuJoCo raised on this thread, or nil if there was none since
    /// `clearLastWarning()`. MuJoCo raises most warnings only the first time their counter in `mjData.warning`
    /// goes up, so this is for diagnostics; `Data` checks the counters themselves.
    public static var lastWarning: String? {
        let message = fp_warning_message()!
        return message.pointee == 0 ? nil : String(cString: message)
    }

    /// Forgets `lastWarning` on this thread.
    public static func clearLastWarning() {
        fp_clear_warning_message()
    }

    // A global `let` is initialised exactly once, on first use, even with several threads racing to it.
    private static let preparation: Result<Void, MuJoCoError> = {
        let header = Int(fp_mj_version_header())
        let library = Int(mj_version())
        guard header == library else {
            return .failure(.versionMismatch(header: header, library: library))
        }
        fp_install_handlers()
        return .success(())
    }()
}

/// The guarded MuJoCo calls (see "Turning `mju_error` into a status code" in `CMuJoCo/shim.h`).
///
/// The shim keeps its jump slot and message buffers in `static` variables, so each Swift source file that calls
/// it gets its own copy of them; the installed error hook sees only the copy of the file that installed it. This
/// file is therefore the only one that calls `fp_guarded_*`, `fp_load_xml` and the hook functions. The functions
/// are `@inline(never)` so that the optimiser cannot move those calls into another file's object code.
enum Engine {
    @inline(never)
    static func makeData(_ model: UnsafePointer<mjModel>) throws(MuJoCoError) -> UnsafeMutablePointer<mjData> {
        var result: UnsafeMutablePointer<mjData>?
        try check(fp_guarded_make_data(model, &result), "mj_makeData")
        guard let result else {
            throw .engineError(function: "mj_makeData", message: "MuJoCo returned no data (out of memory?)")
        }
        return result
    }

    /// Copies `source` into `destination`, or into a new mjData when `destination` is nil.
    @inline(never)
    static func copyData(
        into destination: UnsafeMutablePointer<mjData>?, model: UnsafePointer<mjModel>,
        from source: UnsafePointer<mjData>
    ) throws(MuJoCoError) -> UnsafeMutablePointer<mjData> {
        var result: UnsafeMutablePointer<mjData>?
        try check(fp_guarded_copy_data(destination, model, source, &result), "mj_copyData")
        guard let result else {
            throw .engineError(function: "mj_copyData", message: "MuJoCo returned no data (out of memory?)")
        }
        return result
    }

    @inline(never)
    static func step(_ model: UnsafePointer<mjModel>, _ data: UnsafeMutablePointer<mjData>) throws(MuJoCoError) {
        try check(fp_guarded_step(model, data), "mj_step")
    }

    @inline(never)
    static func step(
        _ model: UnsafePointer<mjModel>, _ data: UnsafeMutablePointer<mjData>, table: UnsafePointer<fp_pair_table>
    ) throws(MuJoCoError) {
        try check(fp_guarded_step_with_table(model, data, table), "mj_step")
    }

    @inline(never)
    static func step1(_ model: UnsafePointer<mjModel>, _ data: UnsafeMutablePointer<mjData>) throws(MuJoCoError) {
        try check(fp_guarded_step1(model, data), "mj_step1")
    }

    @inline(never)
    static func step2(_ model: UnsafePointer<mjModel>, _ data: UnsafeMutablePointer<mjData>) throws(MuJoCoError) {
        try check(fp_guarded_step2(model, data), "mj_step2")
    }

    @inline(never)
    static func setConstants(
        _ model: UnsafeMutablePointer<mjModel>, _ data: UnsafeMutablePointer<mjData>
    ) throws(MuJoCoError) {
        try check(fp_guarded_set_const(model, data), "mj_setConst")
    }

    @inline(never)
    static func forward(_ model: UnsafePointer<mjModel>, _ data: UnsafeMutablePointer<mjData>) throws(MuJoCoError) {
        try check(fp_guarded_forward(model, data), "mj_forward")
    }

    @inline(never)
    static func resetData(_ model: UnsafePointer<mjModel>, _ data: UnsafeMutablePointer<mjData>) throws(MuJoCoError) {
        try check(fp_guarded_reset_data(model, data), "mj_resetData")
    }

    @inline(never)
    static func resetData(
        _ model: UnsafePointer<mjModel>, _ data: UnsafeMutablePointer<mjData>, keyframe: Int
    ) throws(MuJoCoError) {
        try check(fp_guarded_reset_data_keyframe(model, data, Int32(keyframe)), "mj_resetDataKeyframe")
    }

    @inline(never)
    static func siteJacobian(
        _ model: UnsafePointer<mjModel>, _ data: UnsafePointer<mjData>, site: Int,
        translation: UnsafeMutablePointer<Double>?, rotation: UnsafeMutablePointer<Double>?
    ) throws(MuJoCoError) {
        try check(fp_guarded_jac_site(model, data, translation, rotation, Int32(site)), "mj_jacSite")
    }

    /// Loads a model from a file, or from `text` when it is given (through a one-file virtual file system named
    /// `path`). Returns the model and MuJoCo's warning text, or throws MuJoCo's error text.
    @inline(never)
    static func loadXML(
        path: String, text: String?, source: String
    ) throws(MuJoCoError) -> (UnsafeMutablePointer<mjModel>, warning: String?) {
        var vfs: UnsafeMutablePointer<mjVFS>?
        defer {
            if let vfs {
                _ = fp_guarded_delete_vfs(vfs)
                free(vfs)
            }
        }
        if let text {
            var text = text
            let size = text.utf8.count
            guard size > 0 else { throw .loadFailed(source: source, message: "the MJCF text is empty") }
            guard size <= Int(Int32.max) else {
                throw .loadFailed(source: source, message: "the MJCF text is larger than 2 GB")
            }
            let status = text.withUTF8 { utf8 in
                fp_guarded_make_vfs(&vfs, path, UnsafeRawPointer(utf8.baseAddress!), Int32(size))
            }
            try check(status, "mj_makeEmptyFileVFS")
        }
        let capacity = 1000
        var errorText = [CChar](repeating: 0, count: capacity)
        var model: UnsafeMutablePointer<mjModel>?
        try check(fp_load_xml(path, vfs, &errorText, Int32(capacity), &model), "mj_loadXML")
        let message = String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingTrailingWhitespace()
        guard let model else {
            throw .loadFailed(source: source, message: message.isEmpty ? "no error text" : message)
        }
        return (model, message.isEmpty ? nil : message)
    }

    private static func check(_ status: Int32, _ function: StaticString) throws(MuJoCoError) {
        switch Int(status) {
        case FP_STATUS_OK:
            return
        case FP_STATUS_ENGINE_ERROR:
            throw .engineError(function: "\(function)", message: String(cString: fp_error_message()))
        case FP_STATUS_OUT_OF_MEMORY:
            throw .engineError(function: "\(function)", message: "out of memory")
        case FP_STATUS_FOREIGN_HANDLER:
            preconditionFailure(
                "\(function) was called through a copy of the CMuJoCo shim whose error hook is not installed: "
                    + "either MuJoCo.prepare() has not run, or a guarded call was made outside MuJoCoRuntime.swift")
        default:
            preconditionFailure("unknown status \(status) from the CMuJoCo shim")
        }
    }
}

extension String {
    fileprivate func trimmingTrailingWhitespace() -> String {
        var result = Substring(self)
        while let last = result.last, last.isWhitespace { result.removeLast() }
        return String(result)
    }
}
