/// An environment whose observation includes camera frames (task.yaml `cameras`): Push-T image's 96 × 96 top view.
/// The frames come from the environment's renderer, so they show exactly the state the observation describes.
public protocol CameraEnvironment: Environment {
    /// The cameras, in the order `renderCameras` writes them (empty: a task without image observations).
    var cameraNames: [String] { get }
    var frameHeight: Int { get }
    var frameWidth: Int { get }
    /// 3 (RGB).
    var frameChannels: Int { get }
    /// Writes the current frame of every camera, in `cameraNames` order, as `uint8 [H, W, C]` each (rows top first,
    /// channels last). Allocates nothing (beyond what a GL driver may).
    func renderCameras(into frames: UnsafeMutablePointer<UInt8>) throws
}

extension CameraEnvironment {
    /// Bytes of one step's frames over every camera.
    public var frameBytes: Int { cameraNames.count * frameHeight * frameWidth * frameChannels }
}
