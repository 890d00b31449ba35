import FlowPolicy
import Foundation

/// Camera frames on the wire (`CameraFrame` in `Infer.frames` and `RobotState.frames`): the one place that checks
/// them against a policy's cameras and copies them out, and that builds them.
///
/// Layout, everywhere: for each window row, each observation step oldest first, each camera in the policy's order
/// (`PolicySpec.cameras`), one frame of `uint8 [H, W, C]`, channels last, RGB; copied out, `[rows, frameBytesPerStep]`
/// with `rows = windows x steps`. Only `RAW_UINT8` frames are taken: JPEG is allowed by the protocol, but this build
/// has no JPEG decoder, so a JPEG frame is refused with a message saying so.
public enum CameraFrames {
    /// Checks `frames` (`windows x steps x cameras.count` of them, in the layout above) and copies their bytes into
    /// `destination` (`[windows * steps, Σ H*W*C]`); with no destination, only checks. Nothing is copied unless
    /// every frame is right. Allocates nothing unless it throws.
    ///
    /// Throws `WireError(.invalidArgument)` naming the frame (its index, window row where there are several, camera
    /// and step), what was expected and what came, e.g. `frame 3 (camera image, step 1): expected image 96 x 96 x 3
    /// uint8 raw (27648 bytes), got 84 x 84 x 3 (21168 bytes)`. `receiver` names who refuses JPEG frames.
    public static func copy(_ frames: [Wire.CameraFrame], cameras: [CameraSpec], windows: Int, steps: Int,
                            into destination: UnsafeMutablePointer<UInt8>?, receiver: String = "this server")
        throws(WireError)
    {
        let C = cameras.count
        guard frames.count == windows * steps * C else {
            throw WireError(.invalidArgument, "expected \(windows * steps * C) camera frames (\(windows) window"
                + "\(windows == 1 ? "" : "s") x \(steps) step\(steps == 1 ? "" : "s") x cameras [\(describe(cameras))]"
                + ", for each window and step oldest first, the cameras in that order), got \(frames.count)"
                + (frames.isEmpty ? "" : " (\(received(frames)))"))
        }
        for (i, frame) in frames.enumerated() {
            let camera = cameras[i % C]
            func label(naming: Bool = true) -> String {
                let row = windows > 1 ? "window \(i / (steps * C)), " : ""
                return "frame \(i) (\(row)\(naming ? "camera \(camera.name), " : "")step \((i / C) % steps))"
            }
            guard frame.camera == camera.name else {
                throw WireError(.invalidArgument, "\(label(naming: false)): expected camera \"\(camera.name)\" (the "
                    + "policy's cameras, in order: \(cameras.map(\.name).joined(separator: ", "))), got "
                    + "\"\(frame.camera)\"")
            }
            try check(frame, camera: camera, receiver: receiver, label: label())
        }
        guard let destination else { return }
        var offset = 0
        for (i, frame) in frames.enumerated() {
            let count = cameras[i % C].byteCount
            frame.data.withUnsafeBytes { bytes in
                (destination + offset).update(from: bytes.bindMemory(to: UInt8.self).baseAddress!, count: count)
            }
            offset += count
        }
    }

    /// Copies a robot state's frames of `cameras` (`[Σ H*W*C]`, in the order of `cameras`) into `destination`,
    /// picking each camera's frame by name (the robot may send more cameras, in any order), after checking them all
    /// as `copy` does. Allocates nothing unless it throws.
    public static func copyCurrent(_ frames: [Wire.CameraFrame], cameras: [CameraSpec],
                                   into destination: UnsafeMutablePointer<UInt8>?, receiver: String = "this runtime")
        throws(WireError)
    {
        for camera in cameras {
            guard let frame = frames.first(where: { $0.camera == camera.name }) else {
                throw WireError(.invalidArgument, "the state has no frame of camera \"\(camera.name)\" (it has "
                    + (frames.isEmpty ? "no frames" : received(frames)) + "); the policy takes "
                    + describe(cameras))
            }
            try check(frame, camera: camera, receiver: receiver, label: "camera \(camera.name)'s frame")
        }
        guard let destination else { return }
        var offset = 0
        for camera in cameras {
            guard let frame = frames.first(where: { $0.camera == camera.name }) else { continue }
            frame.data.withUnsafeBytes { bytes in
                (destination + offset).update(from: bytes.bindMemory(to: UInt8.self).baseAddress!,
                                              count: camera.byteCount)
            }
            offset += camera.byteCount
        }
    }

    /// Checks one frame's encoding, shape and size against `camera`.
    private static func check(_ frame: Wire.CameraFrame, camera: CameraSpec, receiver: String,
                              label: @autoclosure () -> String) throws(WireError) {
        switch frame.encoding {
        case .rawUint8:
            break
        case .jpeg:
            throw WireError(.invalidArgument, "\(label()) is JPEG; \(receiver) takes raw uint8 frames only "
                + "(encoding RAW_UINT8: \(expected(camera)))")
        default:
            throw WireError(.invalidArgument, "\(label()): encoding "
                + (frame.encoding == .unspecified ? "ENCODING_UNSPECIFIED" : "\(frame.encoding.rawValue)")
                + " is not RAW_UINT8; expected " + expected(camera))
        }
        guard frame.height == camera.height, frame.width == camera.width, frame.channels == camera.channels,
              frame.data.count == camera.byteCount
        else {
            throw WireError(.invalidArgument, "\(label()): expected \(expected(camera)), got \(frame.height) x "
                + "\(frame.width) x \(frame.channels) (\(frame.data.count) bytes)")
        }
    }

    /// Frames of `steps` observation steps of `frames` (`[steps, Σ H*W*C]`, the layout above), raw.
    public static func make(_ frames: UnsafePointer<UInt8>, cameras: [CameraSpec], steps: Int) -> [Wire.CameraFrame] {
        var made: [Wire.CameraFrame] = []
        made.reserveCapacity(steps * cameras.count)
        var offset = 0
        for _ in 0..<steps {
            for camera in cameras {
                var frame = Wire.CameraFrame()
                frame.camera = camera.name
                frame.height = UInt32(camera.height)
                frame.width = UInt32(camera.width)
                frame.channels = UInt32(camera.channels)
                frame.encoding = .rawUint8
                frame.data = Data(bytes: frames + offset, count: camera.byteCount)
                made.append(frame)
                offset += camera.byteCount
            }
        }
        return made
    }

    /// The cameras as `Metadata` lists them.
    public static func info(_ cameras: [CameraSpec]) -> [Wire.CameraInfo] {
        cameras.map { camera in
            var info = Wire.CameraInfo()
            info.name = camera.name
            info.height = UInt32(camera.height)
            info.width = UInt32(camera.width)
            info.channels = UInt32(camera.channels)
            return info
        }
    }

    /// The cameras `Metadata` lists.
    public static func cameras(_ info: [Wire.CameraInfo]) -> [CameraSpec] {
        info.map { CameraSpec(name: $0.name, height: Int($0.height), width: Int($0.width), channels: Int($0.channels)) }
    }

    /// The cameras frames show (their names and shapes), as a robot's state describes its cameras.
    public static func cameras(_ frames: [Wire.CameraFrame]) -> [CameraSpec] {
        frames.map {
            CameraSpec(name: $0.camera, height: Int($0.height), width: Int($0.width), channels: Int($0.channels))
        }
    }

    /// `image 96 x 96 x 3 uint8, wrist 84 x 84 x 3 uint8`, or `none`.
    public static func describe(_ cameras: [CameraSpec]) -> String {
        cameras.isEmpty ? "none" : cameras.map(\.shapeDescription).joined(separator: ", ")
    }

    private static func expected(_ camera: CameraSpec) -> String {
        "\(camera.shapeDescription) raw (\(camera.byteCount) bytes)"
    }

    private static func received(_ frames: [Wire.CameraFrame]) -> String {
        let names = frames.prefix(8).map { $0.camera.isEmpty ? "unnamed" : $0.camera }
        return names.joined(separator: ", ") + (frames.count > 8 ? ", ..." : "")
    }
}
