import CMuJoCo
import Foundation

/// Where an `OffscreenRenderer` looks from.
public enum RenderCamera: Equatable, Sendable {
    /// A camera of the model, by name (robosuite's `agentview`). The corresponding C value is `mjCAMERA_FIXED`.
    case named(String)
    /// MuJoCo's free camera looking at `lookAt` from `distance` metres, `azimuth` and `elevation` in degrees (what
    /// Gymnasium's `MujocoRenderer` sets from `default_camera_config`). The corresponding C value is `mjCAMERA_FREE`.
    case free(lookAt: SIMD3<Double>, distance: Double, azimuth: Double, elevation: Double)
}

/// Everything that can go wrong while making or using an `OffscreenRenderer`.
public enum RenderingError: Error, Equatable, CustomStringConvertible {
    /// Width or height is not positive, or larger than the GL implementation allows.
    case invalidSize(width: Int, height: Int, limit: Int)
    /// EGL could not give an OpenGL context; `message` says which call failed and its EGL error code.
    case noContext(message: String)
    /// The context exists but cannot be made current on this thread (EGL error code): it is current on another one.
    case contextNotCurrent(eglError: Int)
    /// MuJoCo raised an error (`mju_error`) in `function`; `message` is MuJoCo's text.
    case engineError(function: String, message: String)
    /// A file that only rendering needs (a visual mesh or texture) is not in the asset cache.
    case missingRenderAsset(path: String, fetchCommand: String)
    /// The visual model does not fit the simulated one (different joints or bodies), so its state cannot be copied.
    case modelMismatch(String)
    /// The model has no camera of that name.
    case unknownCamera(String)

    public var description: String {
        switch self {
        case .invalidSize(let width, let height, let limit):
            return "cannot render \(width) × \(height) pixels: width and height must be between 1 and \(limit)"
        case .noContext(let message):
            return "no headless OpenGL context for MuJoCo's renderer: \(message). Install Mesa's EGL and software "
                + "renderer (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri, which scripts/setup.sh installs)"
        case .contextNotCurrent(let code):
            return "the renderer's OpenGL context cannot be made current on this thread (EGL error "
                + "0x\(String(code, radix: 16))): it is in use on another thread; render from one thread at a time"
        case .engineError(let function, let message):
            return "MuJoCo's renderer raised an error in \(function): \(message). Make a new renderer"
        case .missingRenderAsset(let path, let command):
            return "a file needed for rendering is not in the asset cache (\(path) is missing): fetch the rendering "
                + "assets with `\(command)`, or set FLOWPOLICY_ASSETS to the folder that holds them"
        case .modelMismatch(let message):
            return "the visual model does not match the simulated one: \(message)"
        case .unknownCamera(let name):
            return "the visual model has no camera named '\(name)'"
        }
    }
}

/// Draws a MuJoCo simulation headless, through MuJoCo's own renderer in an EGL context (llvmpipe on a machine without
/// a GPU), from a camera of the model or a free camera.
///
/// The renderer owns a *visual* model (the scene with its visual geoms, materials, textures and lights) and a data of
/// it; the simulation keeps its own model, so rendering cannot change the physics. Each `render(into:)` first calls
/// `synchronize` to copy the simulation's state into the visual data (`copyState(from:)` copies qpos, qvel, act and
/// the mocap poses), then computes the kinematics (`mj_forward`) and draws.
///
/// Everything is allocated when the renderer is made: one GL context, the scene, GL buffers of `width` × `height`.
/// `render(into:)` allocates nothing itself, nor does MuJoCo; the GL driver may (Mesa's llvmpipe does, a steady
/// ~1,400 small blocks per robosuite frame). One thread at a time: the context is made current on the rendering thread for
/// the frame and released after it, so the renderer may move between threads but not be used by two at once.
public final class OffscreenRenderer: FrameRenderer {
    public let width: Int
    public let height: Int
    /// The visual model and its data (the state drawn).
    public let model: Model
    public let data: Data
    private let synchronize: (Data) throws -> Void
    private let display: UnsafeMutableRawPointer  // EGLDisplay
    private let context: UnsafeMutableRawPointer  // EGLContext
    private let scene: UnsafeMutablePointer<mjvScene>
    private let renderContext: UnsafeMutablePointer<mjrContext>
    private let camera: UnsafeMutablePointer<mjvCamera>
    private let option: UnsafeMutablePointer<mjvOption>
    private let message: UnsafeMutablePointer<CChar>
    private static let messageCapacity = 1024

    /// The geoms MuJoCo's scene has room for (model geoms and decorations); the kitchen, the largest scene, has 240.
    public static let maximumGeoms = 10_000

    /// Makes a renderer of `model` (which it adjusts: its offscreen buffer size becomes `width` × `height`).
    /// `visibleGroups` are the geom groups drawn (MuJoCo's default: 0, 1, 2; robosuite hides group 0, its collision
    /// geoms); `visibleSiteGroups` likewise for sites. `synchronize` brings `data` to the state to draw; it must not
    /// allocate.
    public init(
        model: Model, width: Int, height: Int, camera: RenderCamera, visibleGroups: Set<Int> = [0, 1, 2],
        visibleSiteGroups: Set<Int> = [0, 1, 2], synchronize: @escaping (Data) throws -> Void
    ) throws {
        let limit = 8192
        guard (1...limit).contains(width), (1...limit).contains(height) else {
            throw RenderingError.invalidSize(width: width, height: height, limit: limit)
        }
        try MuJoCo.prepare()
        self.width = width
        self.height = height
        self.model = model
        self.synchronize = synchronize
        data = try Data(model: model)
        let message = UnsafeMutablePointer<CChar>.allocate(capacity: Self.messageCapacity)
        message.initialize(repeating: 0, count: Self.messageCapacity)
        let scene = UnsafeMutablePointer<mjvScene>.allocate(capacity: 1)
        let renderContext = UnsafeMutablePointer<mjrContext>.allocate(capacity: 1)
        let option = UnsafeMutablePointer<mjvOption>.allocate(capacity: 1)
        self.message = message
        self.scene = scene
        self.renderContext = renderContext
        self.camera = .allocate(capacity: 1)
        self.option = option
        mjv_defaultScene(scene)
        mjr_defaultContext(renderContext)
        mjv_defaultCamera(self.camera)
        mjv_defaultOption(option)
        withUnsafeMutableBytes(of: &option.pointee.geomgroup) { groups in
            for group in 0..<groups.count { groups[group] = visibleGroups.contains(group) ? 1 : 0 }
        }
        withUnsafeMutableBytes(of: &option.pointee.sitegroup) { groups in
            for group in 0..<groups.count { groups[group] = visibleSiteGroups.contains(group) ? 1 : 0 }
        }
        switch camera {
        case .named(let name):
            guard let id = model.id(of: .camera, named: name) else {
                Self.release(scene, renderContext, self.camera, option, message)
                throw RenderingError.unknownCamera(name)
            }
            self.camera.pointee.type = Int32(mjCAMERA_FIXED.rawValue)
            self.camera.pointee.fixedcamid = Int32(id)
        case .free(let lookAt, let distance, let azimuth, let elevation):
            self.camera.pointee.type = Int32(mjCAMERA_FREE.rawValue)
            self.camera.pointee.lookat = (lookAt.x, lookAt.y, lookAt.z)
            self.camera.pointee.distance = distance
            self.camera.pointee.azimuth = azimuth
            self.camera.pointee.elevation = elevation
        }
        // The offscreen buffer is made at the model's size; a larger one (the kitchen asks for 2560 × 1920, with 4×
        // multisampling) costs memory and nothing in the picture, since only the viewport is drawn.
        model.pointer.pointee.vis.global.offwidth = Int32(width)
        model.pointer.pointee.vis.global.offheight = Int32(height)

        let made: Result<(UnsafeMutableRawPointer, UnsafeMutableRawPointer), RenderingError> = Self.lock.withLock {
            let display: UnsafeMutableRawPointer
            switch Self.display.result {
            case .success(let opened): display = opened
            case .failure(let error): return .failure(error)
            }
            guard let context = fp_egl_create_context(display, message, Int32(Self.messageCapacity)) else {
                return .failure(.noContext(message: String(cString: message)))
            }
            guard eglMakeCurrent(display, nil, nil, context) == EGLBoolean(EGL_TRUE) else {
                let code = Int(eglGetError())
                eglDestroyContext(display, context)
                return .failure(.noContext(message: "eglMakeCurrent failed (EGL error 0x\(String(code, radix: 16)))"))
            }
            // MuJoCo loads the GL functions into process-wide pointers here: one context is made at a time.
            let status = fp_guarded_make_render_context(
                model.pointer, scene, renderContext, Int32(Self.maximumGeoms), message, Int32(Self.messageCapacity))
            if Int(status) != FP_STATUS_OK {
                fp_free_render_context(scene, renderContext)
                eglMakeCurrent(display, nil, nil, nil)
                eglDestroyContext(display, context)
                return .failure(.engineError(function: "mjr_makeContext", message: String(cString: message)))
            }
            eglMakeCurrent(display, nil, nil, nil)
            return .success((display, context))
        }
        switch made {
        case .success(let (display, context)):
            self.display = display
            self.context = context
        case .failure(let error):
            Self.release(scene, renderContext, self.camera, option, message)
            throw error
        }
    }

    deinit {
        // GL objects are deleted in their context; if it cannot be made current here (it is current on a thread
        // that is rendering right now, which `render` does not allow to outlive a frame), destroying the context
        // frees them anyway.
        Self.lock.withLock {
            let current = eglMakeCurrent(display, nil, nil, context) == EGLBoolean(EGL_TRUE)
            if current {
                fp_free_render_context(scene, renderContext)
                eglMakeCurrent(display, nil, nil, nil)
            } else {
                mjv_freeScene(scene)
            }
            eglDestroyContext(display, context)
        }
        Self.release(scene, renderContext, camera, option, message)
    }

    /// Whether lights cast shadows (on, as in the model and the reference renderers). Off draws the scene once instead
    /// of once more per shadow-casting light: on llvmpipe the kitchen (four such lights) renders about 7 times faster.
    /// The corresponding C flag is `mjRND_SHADOW`.
    public var shadows: Bool {
        get { flag(Int(mjRND_SHADOW.rawValue)) }
        set { setFlag(Int(mjRND_SHADOW.rawValue), newValue) }
    }

    /// Whether reflective materials mirror the scene (on, as in the model and the reference renderers). The
    /// corresponding C flag is `mjRND_REFLECTION`.
    public var reflections: Bool {
        get { flag(Int(mjRND_REFLECTION.rawValue)) }
        set { setFlag(Int(mjRND_REFLECTION.rawValue), newValue) }
    }

    private func flag(_ index: Int) -> Bool {
        withUnsafeBytes(of: scene.pointee.flags) { $0[index] != 0 }
    }

    private func setFlag(_ index: Int, _ value: Bool) {
        withUnsafeMutableBytes(of: &scene.pointee.flags) { $0[index] = value ? 1 : 0 }
    }

    /// Copies the simulation's state into the visual data and computes its kinematics (`render(into:)` does this
    /// first). Allocates nothing.
    public func updateState() throws {
        try synchronize(data)
        try data.forward()
    }

    /// Copies the simulation's state into the visual data, computes its kinematics and draws it: `height` rows of
    /// `width` RGB pixels, top row first. Allocates nothing.
    public func render(into pixels: UnsafeMutablePointer<UInt8>) throws {
        try updateState()
        guard eglMakeCurrent(display, nil, nil, context) == EGLBoolean(EGL_TRUE) else {
            throw RenderingError.contextNotCurrent(eglError: Int(eglGetError()))
        }
        defer { eglMakeCurrent(display, nil, nil, nil) }
        let status = fp_guarded_render_frame(
            model.pointer, data.pointer, option, camera, scene, renderContext, Int32(width), Int32(height), pixels,
            message, Int32(Self.messageCapacity))
        guard Int(status) == FP_STATUS_OK else {
            throw RenderingError.engineError(function: "mjr_render", message: String(cString: message))
        }
        fp_flip_rows(pixels, Int32(width), Int32(height))
    }

    // MARK: Process-wide EGL

    /// Made contexts are serialised (MuJoCo's GL function pointers are process-wide), and deinit with them.
    private static let lock = NSLock()

    /// One EGL display for the process, opened on first use and never terminated (terminating would invalidate the
    /// contexts of every renderer).
    private static let display = OpenedDisplay(result: {
        let capacity = 1024
        let message = UnsafeMutablePointer<CChar>.allocate(capacity: capacity)
        defer { message.deallocate() }
        message.initialize(repeating: 0, count: capacity)
        guard let display = fp_egl_open_display(message, Int32(capacity)) else {
            return .failure(.noContext(message: String(cString: message)))
        }
        return .success(display)
    }())

    /// An EGL display is a process-wide handle that EGL lets every thread use.
    private struct OpenedDisplay: @unchecked Sendable {
        let result: Result<UnsafeMutableRawPointer, RenderingError>
    }

    private static func release(
        _ scene: UnsafeMutablePointer<mjvScene>, _ context: UnsafeMutablePointer<mjrContext>,
        _ camera: UnsafeMutablePointer<mjvCamera>, _ option: UnsafeMutablePointer<mjvOption>,
        _ message: UnsafeMutablePointer<CChar>
    ) {
        scene.deallocate()
        context.deallocate()
        camera.deallocate()
        option.deallocate()
        message.deallocate()
    }
}

extension FrameRenderer {
    /// Frames per second of `render(into:)` at this renderer's size, over `frames` frames after one to warm up (what
    /// `flowpolicy bench env --render` reports). Any renderer: the MuJoCo scenes' and Push-T's.
    public func measureFramesPerSecond(frames: Int = 50) throws -> Double {
        let pixels = UnsafeMutablePointer<UInt8>.allocate(capacity: width * height * 3)
        defer { pixels.deallocate() }
        try render(into: pixels)
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<frames { try render(into: pixels) }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return Double(frames) / seconds
    }
}

extension Data {
    /// Copies the state that determines the kinematics (qpos, qvel, act, mocap poses) from `other`, a data of a model
    /// with the same joints, actuators and mocap bodies (checked by the caller). Allocates nothing.
    public func copyState(from other: Data) {
        let source = other.pointer, target = pointer
        let model = other.model
        target.pointee.qpos.update(from: source.pointee.qpos, count: model.nq)
        target.pointee.qvel.update(from: source.pointee.qvel, count: model.nv)
        if model.na > 0 { target.pointee.act.update(from: source.pointee.act, count: model.na) }
        if model.nmocap > 0 {
            target.pointee.mocap_pos.update(from: source.pointee.mocap_pos, count: 3 * model.nmocap)
            target.pointee.mocap_quat.update(from: source.pointee.mocap_quat, count: 4 * model.nmocap)
        }
        target.pointee.time = source.pointee.time
    }

    /// Throws unless `other`'s model has the same coordinates, degrees of freedom, actuator states and mocap bodies
    /// as this data's, so that `copyState(from:)` is meaningful.
    public func requireSameState(as other: Data) throws {
        let a = model, b = other.model
        guard a.nq == b.nq, a.nv == b.nv, a.na == b.na, a.nmocap == b.nmocap, a.njnt == b.njnt else {
            throw RenderingError.modelMismatch(
                "nq \(a.nq)/\(b.nq), nv \(a.nv)/\(b.nv), na \(a.na)/\(b.na), nmocap \(a.nmocap)/\(b.nmocap), "
                    + "njnt \(a.njnt)/\(b.njnt)")
        }
        for joint in 0..<a.njnt where a.name(of: .joint, id: joint) != b.name(of: .joint, id: joint) {
            throw RenderingError.modelMismatch(
                "joint \(joint) is \(a.name(of: .joint, id: joint) ?? "unnamed") in one model and "
                    + "\(b.name(of: .joint, id: joint) ?? "unnamed") in the other")
        }
    }
}
