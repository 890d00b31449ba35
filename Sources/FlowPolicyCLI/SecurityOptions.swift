import ArgumentParser
import Foundation
import PolicyRuntime

/// `--secret-key FILE --allow DIR --insecure`: the keys of a process that binds sockets (serve, robot, run's
/// control socket) and connects to others.
public struct SecurityOptions: ParsableArguments {
    @Option(name: .customLong("secret-key"), help: ArgumentHelp(
        "This process's CURVE key pair: the NAME.key_secret file `keys` wrote.",
        discussion: "With it, sockets this process binds use CURVE and let in only --allow's keys."))
    public var secretKey: String?

    @Option(help: "Folder of the public keys (NAME.key files) of the clients allowed to connect.")
    public var allow: String?

    @Flag(help: ArgumentHelp(
        "Bind beyond loopback without CURVE keys (anyone who reaches the port may connect); warned about at start "
            + "and every minute."))
    public var insecure = false

    public init() {}

    public func validate() throws {
        if (secretKey == nil) != (allow == nil) && allow != nil {
            throw ValidationError("--allow needs --secret-key (this process's own key pair)")
        }
        try Check.inputFile("--secret-key", secretKey)
        try Check.inputFolder("--allow", allow)
    }

    /// The keys, read from their files.
    public func credentials() throws -> Credentials {
        Credentials(keyPair: try secretKey.map { try CurveKeyPair.read(secretFile: $0) },
                    allowList: try allow.map { try CurveKeyPair.readAllowList(folder: $0) } ?? [],
                    insecure: insecure)
    }

    /// Warns on standard error, now and every minute while the process runs, when `endpoints` are reachable from
    /// other machines without CURVE.
    public func warnIfInsecure(_ endpoints: [String]) {
        let exposed = endpoints.filter { !Credentials.isLocal($0) }
        guard secretKey == nil, !exposed.isEmpty else { return }
        let warning = "warning: \(exposed.joined(separator: ", ")) accepts anyone who reaches it: no CURVE keys "
            + "(--insecure). See `flowpolicy keys`.\n"
        let thread = Thread {
            while true {
                FileHandle.standardError.write(Data(warning.utf8))
                Thread.sleep(forTimeInterval: 60)
            }
        }
        thread.start()
    }
}

/// The public key of a server this process connects to, read from its NAME.key file.
func serverPublicKey(_ file: String?) throws -> String? {
    try file.map { try CurveKeyPair.readPublicKey(file: $0) }
}
