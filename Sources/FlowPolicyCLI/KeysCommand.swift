import ArgumentParser
import Foundation
import PolicyRuntime

public struct KeysCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Generate a CURVE key pair for encrypted, authenticated ZeroMQ connections.",
        discussion: """
            Writes DIR/NAME.key (the public key, mode 0644) and DIR/NAME.key_secret (public and secret key, mode \
            0600), ZeroMQ certificates as CZMQ and pyzmq (zmq.auth.load_certificate) read them. DIR is created, \
            private to you (0700), if it is missing. Existing key files are kept unless --force is given.

            Give NAME.key to the peers: a server lets in the clients whose .key files are in its allow-list folder, \
            and a client needs its server's .key file. NAME.key_secret stays on this machine; a secret key file that \
            group or others can read is refused.
            """)

    @Option(help: "Folder to write the key files into; created with mode 0700 if missing.")
    var out: String

    @Option(help: "Name of the key pair, e.g. the machine or role (robot, policy-server, operator).")
    var name: String

    @Flag(help: "Replace existing key files of that name (the old pair stops working everywhere it was used).")
    var force = false

    public init() {}

    public func validate() throws {
        if name.isEmpty || name.contains("/") || name.hasPrefix(".") {
            throw ValidationError(
                "--name must be a plain file name (no \"/\", not starting with \".\"), got \"\(name)\"")
        }
        try Check.outputFolder("--out", out)
    }

    public func run() throws {
        try reportingErrors {
            let (publicFile, secretFile) = CurveKeyPair.files(in: out, name: name)
            if !force {
                for file in [publicFile, secretFile] where FileManager.default.fileExists(atPath: file) {
                    throw KeyFileExists(file: file)
                }
            }
            let keyPair = try CurveKeyPair.generate()
            try keyPair.write(to: out, name: name, overwrite: force)
            print("public key  \(publicFile)")
            print("secret key  \(secretFile)  (mode 0600: keep it on this machine)")
            print("public key: \(keyPair.publicKey)")
            print("")
            print("Copy \(publicFile) to each peer:")
            print("  - a server that must let \"\(name)\" in: into the server's allow-list folder;")
            print("  - the clients of a server named \"\(name)\": as the key of the server they connect to.")
            print("Never copy \(secretFile).")
        }
    }
}

/// `flowpolicy keys` keeps existing key files unless told otherwise.
struct KeyFileExists: Error, CustomStringConvertible {
    let file: String

    var description: String {
        "\(file) exists already; pass --force to replace the pair (peers that hold the old public key will no "
            + "longer recognise this one)"
    }
}
