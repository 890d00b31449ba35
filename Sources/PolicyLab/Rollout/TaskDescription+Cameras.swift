import FlowPolicy
import SimBridge

extension TaskDescription {
    /// The task's cameras as a policy and a dataset describe them (RGB frames).
    public var cameraSpecs: [CameraSpec] {
        cameras.map { CameraSpec(name: $0.name, height: $0.height, width: $0.width, channels: 3) }
    }
}
