import Foundation

extension FrankaKitchen: RenderableEnvironment {
    /// Gymnasium-Robotics 1.4.2's render camera for `FrankaKitchen-v1`: `FrankaRobot`'s `DEFAULT_CAMERA_CONFIG`
    /// (franka_env.py). The scene has no camera named `track`, so Gymnasium's `MujocoRenderer` draws from MuJoCo's
    /// free camera with these four values set, and the model's own visual settings for the rest.
    public static let renderCamera = RenderCamera.free(
        lookAt: SIMD3(-0.2, 0.5, 2.0), distance: 2.2, azimuth: 70, elevation: -35)

    /// A renderer of this kitchen from the reference's default view. The scene file is loaded again as it is (the
    /// simulated model's geoms are reordered for speed and shared between environments), with its visual meshes and
    /// textures, which the kitchen's assets already include.
    public func makeRenderer(width: Int, height: Int) throws -> any FrameRenderer {
        let scenePath = try AssetCache.path(settings.assets + "/" + settings.scene, task: "franka_kitchen")
        let visual = try Model(path: scenePath)
        let simulation = data
        let renderer = try OffscreenRenderer(
            model: visual, width: width, height: height, camera: Self.renderCamera
        ) { target in target.copyState(from: simulation) }
        try renderer.data.requireSameState(as: simulation)
        return renderer
    }
}
