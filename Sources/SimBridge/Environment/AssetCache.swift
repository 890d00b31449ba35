import Foundation

/// Where third-party task assets (MJCF, meshes, textures from PyPI packages) live on this machine.
///
/// The cache is `$FLOWPOLICY_ASSETS`, else `$FLOWPOLICY_CACHE/assets`, else `~/.cache/flowpolicy/assets`: the folder
/// `scripts/fetch_assets.py` fills from each task's manifest (`tasks/<task>/assets.json`), once, verified by file list
/// and SHA-256. Nothing here downloads: a missing file is an error that names the command that fetches it.
public enum AssetCache {
    /// The cache folder (it may not exist yet).
    public static var root: URL {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["FLOWPOLICY_ASSETS"], !explicit.isEmpty {
            return URL(fileURLWithPath: explicit)
        }
        if let cache = environment["FLOWPOLICY_CACHE"], !cache.isEmpty {
            return URL(fileURLWithPath: cache).appendingPathComponent("assets")
        }
        return FileManager.default.homeDirectoryForCurrentUser
            .appendingPathComponent(".cache/flowpolicy/assets")
    }

    /// The path of `file` (relative to the cache) for `task`; throws `MissingAssetError` if it is not there.
    public static func path(_ file: String, task: String) throws(MissingAssetError) -> String {
        let path = root.appendingPathComponent(file).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw MissingAssetError(task: task, path: path)
        }
        return path
    }
}

/// A task's third-party asset is not in the cache.
public struct MissingAssetError: Error, CustomStringConvertible, Equatable {
    public var task: String
    public var path: String

    public init(task: String, path: String) {
        self.task = task
        self.path = path
    }

    /// The command that fetches the task's assets, run from the repository.
    public var fetchCommand: String { "scripts/fetch_assets.py \(task)" }

    public var description: String {
        "the \(task) assets are not in the asset cache (\(path) is missing); fetch them with `\(fetchCommand)` "
            + "(or `scripts/setup.sh`, which fetches every task's assets), or set FLOWPOLICY_ASSETS to the folder "
            + "that holds them"
    }
}
