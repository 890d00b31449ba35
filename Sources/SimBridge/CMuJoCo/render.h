#ifndef FLOWPOLICY_CMUJOCO_RENDER_H
#define FLOWPOLICY_CMUJOCO_RENDER_H

#include "shim.h"

#include <EGL/egl.h>
#include <EGL/eglext.h>

// ---------------------------------------------------------------------------------------------------
// Headless OpenGL for MuJoCo's renderer: an EGL context with no window.
//
// libmujoco does not link OpenGL: `mjr_makeContext` loads the GL functions it needs from whatever context is
// current on the calling thread. Any EGL context will do; with Debian's Mesa and no GPU it is llvmpipe (software).
// The display comes from the device platform first (EGL_EXT_platform_device, what MuJoCo's Python bindings use,
// and what finds a GPU when there is one), then from Mesa's surfaceless platform. Contexts have no surface at all
// (EGL_KHR_surfaceless_context): MuJoCo draws into its own framebuffer object (mjFB_OFFSCREEN).
// ---------------------------------------------------------------------------------------------------

/// The framebuffer configuration MuJoCo's Python bindings ask EGL for (python/mujoco/egl/__init__.py).
static inline const EGLint* fp_egl_config_attributes(void) {
    static const EGLint attributes[] = {
        EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8, EGL_ALPHA_SIZE, 8,
        EGL_DEPTH_SIZE, 24, EGL_STENCIL_SIZE, 8, EGL_COLOR_BUFFER_TYPE, EGL_RGB_BUFFER,
        EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE,
    };
    return attributes;
}

/// Opens and initialises an EGL display without a window system. Returns EGL_NO_DISPLAY and a description of what
/// failed in `message` (at most `capacity` bytes) when neither platform gives one.
static inline EGLDisplay fp_egl_open_display(char* message, int capacity) {
    PFNEGLQUERYDEVICESEXTPROC query_devices = (PFNEGLQUERYDEVICESEXTPROC)eglGetProcAddress("eglQueryDevicesEXT");
    PFNEGLGETPLATFORMDISPLAYEXTPROC platform_display =
        (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
    EGLint device_error = EGL_SUCCESS, surfaceless_error = EGL_SUCCESS, count = 0;
    if (query_devices && platform_display) {
        EGLDeviceEXT devices[16];
        if (query_devices(16, devices, &count)) {
            for (EGLint i = 0; i < count; i++) {
                EGLDisplay display = platform_display(EGL_PLATFORM_DEVICE_EXT, devices[i], NULL);
                if (display != EGL_NO_DISPLAY && eglInitialize(display, NULL, NULL)) return display;
                device_error = eglGetError();
            }
        } else {
            device_error = eglGetError();
        }
        EGLDisplay display = platform_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
        if (display != EGL_NO_DISPLAY && eglInitialize(display, NULL, NULL)) return display;
        surfaceless_error = eglGetError();
    }
    if (!query_devices || !platform_display) {
        snprintf(message, (size_t)capacity, "libEGL offers no eglQueryDevicesEXT or eglGetPlatformDisplayEXT (no EGL "
                 "vendor library with the device and platform extensions, such as Mesa's, is installed)");
    } else {
        snprintf(message, (size_t)capacity, "no EGL display: device platform: %d device(s), EGL error 0x%04x; Mesa "
                 "surfaceless platform: EGL error 0x%04x", (int)count, (unsigned)device_error,
                 (unsigned)surfaceless_error);
    }
    return EGL_NO_DISPLAY;
}

/// Creates a desktop OpenGL context on `display` with `fp_egl_config_attributes`. Returns EGL_NO_CONTEXT and what
/// failed in `message` otherwise.
static inline EGLContext fp_egl_create_context(EGLDisplay display, char* message, int capacity) {
    EGLConfig config;
    EGLint count = 0;
    if (!eglChooseConfig(display, fp_egl_config_attributes(), &config, 1, &count) || count < 1) {
        snprintf(message, (size_t)capacity, "eglChooseConfig found no RGBA8, depth 24, stencil 8 OpenGL "
                 "configuration (EGL error 0x%04x)", (unsigned)eglGetError());
        return EGL_NO_CONTEXT;
    }
    if (!eglBindAPI(EGL_OPENGL_API)) {
        snprintf(message, (size_t)capacity, "eglBindAPI(EGL_OPENGL_API) failed (EGL error 0x%04x)",
                 (unsigned)eglGetError());
        return EGL_NO_CONTEXT;
    }
    EGLContext context = eglCreateContext(display, config, EGL_NO_CONTEXT, NULL);
    if (context == EGL_NO_CONTEXT) {
        snprintf(message, (size_t)capacity, "eglCreateContext failed (EGL error 0x%04x)", (unsigned)eglGetError());
    }
    return context;
}

// ---------------------------------------------------------------------------------------------------
// Guarded rendering calls.
//
// `mjr_makeContext` raises `mju_error` when the GL context lacks what MuJoCo needs (a GL version, a framebuffer
// object), `mjv_makeScene` when memory runs out. These calls are turned into status codes as in shim.h, but through
// a different hook: libmujoco 2.2.2's `mju_error` first calls a *thread-local* handler, if one is set
// (`_mjPRIVATE__set_tls_error_fn`; the XML compiler uses it, see `fp_load_xml` in shim.h), and only otherwise the
// global `mju_user_error`. A render guard sets that thread-local handler to its own for the duration of the call and
// restores the previous one after, so it needs no global hook, cannot disturb a physics guard on another thread, and
// works from any Swift file: the handler and the jump slot it uses are the same copy of this header as the guard
// that installed them, and the message goes into a buffer the caller passes. The symbols are exported by
// libmujoco.so.2.2.2 but not declared in its headers; SimBridge checks the library version at start-up
// (`MuJoCo.prepare()`), so they are the ones described here.
//
// After an error the scene or context may be half made: the caller frees both (mjv_freeScene and mjr_freeContext
// accept partly made objects: they free what is non-NULL / non-zero) and does not use them again.
// ---------------------------------------------------------------------------------------------------

void _mjPRIVATE__set_tls_error_fn(void (*handler)(const char*));
void (*_mjPRIVATE__get_tls_error_fn(void))(const char*);

typedef struct {
    sigjmp_buf jump;
    char* message;
    int capacity;
} fp_render_guard;

static inline fp_render_guard** fp_render_active_guard(void) {
    static _Thread_local fp_render_guard* active = NULL;
    return &active;
}

static inline void fp_render_on_error(const char* text) {
    fp_render_guard* guard = *fp_render_active_guard();
    if (guard == NULL) {  // only installed while a guard is active on this thread; kept as a safety net
        fprintf(stderr, "flowpolicy: MuJoCo rendering error outside a guarded call, cannot recover: %s\n",
                text ? text : "(no message)");
        fflush(stderr);
        abort();
    }
    snprintf(guard->message, (size_t)guard->capacity, "%s", text ? text : "(no message)");
    siglongjmp(guard->jump, 1);
}

#define FP_RENDER_GUARD_BEGIN(message_, capacity_)                                                   \
    fp_render_guard fp_guard;                                                                      \
    fp_guard.message = (message_);                                                                 \
    fp_guard.capacity = (capacity_);                                                               \
    fp_render_guard* volatile fp_previous = *fp_render_active_guard();                             \
    void (*volatile fp_previous_handler)(const char*) = _mjPRIVATE__get_tls_error_fn();            \
    if (sigsetjmp(fp_guard.jump, 0) != 0) {                                                        \
        *fp_render_active_guard() = fp_previous;                                                   \
        _mjPRIVATE__set_tls_error_fn(fp_previous_handler);                                         \
        return FP_STATUS_ENGINE_ERROR;                                                             \
    }                                                                                              \
    *fp_render_active_guard() = &fp_guard;                                                         \
    _mjPRIVATE__set_tls_error_fn(fp_render_on_error);

#define FP_RENDER_GUARD_END                                                                          \
    *fp_render_active_guard() = fp_previous;                                                       \
    _mjPRIVATE__set_tls_error_fn(fp_previous_handler);                                             \
    return FP_STATUS_OK;

/// Makes the abstract scene (room for `max_geoms` geoms) and the GL resources of `model` (meshes, textures, the
/// offscreen framebuffer of `model->vis.global.offwidth` × `offheight`) in the current GL context, and selects the
/// offscreen framebuffer. `scene` and `context` must have been set to their defaults (`mjv_defaultScene`,
/// `mjr_defaultContext`). Returns FP_STATUS_ENGINE_ERROR with MuJoCo's text in `message`, also when the context
/// came out without an offscreen framebuffer.
__attribute__((noinline)) static inline int fp_guarded_make_render_context(const mjModel* model, mjvScene* scene,
                                                                           mjrContext* context, int max_geoms,
                                                                           char* message, int capacity) {
    FP_RENDER_GUARD_BEGIN(message, capacity)
    mjv_makeScene(model, scene, max_geoms);
    // Fonts are only for overlays, which a frame for a video does not draw; 100% is the smallest common scale.
    mjr_makeContext(model, context, mjFONTSCALE_100);
    if (context->offFBO == 0) {
        snprintf(message, (size_t)capacity, "mjr_makeContext made no offscreen framebuffer");
        *fp_render_active_guard() = fp_previous;
        _mjPRIVATE__set_tls_error_fn(fp_previous_handler);
        return FP_STATUS_ENGINE_ERROR;
    }
    mjr_setBuffer(mjFB_OFFSCREEN, context);
    FP_RENDER_GUARD_END
}

/// Draws `data` (kinematics already computed) from `camera` into the offscreen framebuffer and reads it into `rgb`:
/// `width` × `height` pixels, 3 bytes each, rows from the top (GL's rows start at the bottom, so they are swapped in
/// place after reading). Allocates nothing.
__attribute__((noinline)) static inline int fp_guarded_render_frame(const mjModel* model, mjData* data,
                                                                    const mjvOption* option, mjvCamera* camera,
                                                                    mjvScene* scene, const mjrContext* context,
                                                                    int width, int height, unsigned char* rgb,
                                                                    char* message, int capacity) {
    FP_RENDER_GUARD_BEGIN(message, capacity)
    mjrRect viewport = {0, 0, width, height};
    mjv_updateScene(model, data, option, NULL, camera, mjCAT_ALL, scene);
    mjr_render(viewport, scene, context);
    mjr_readPixels(rgb, NULL, viewport, context);
    FP_RENDER_GUARD_END
}

#undef FP_RENDER_GUARD_BEGIN
#undef FP_RENDER_GUARD_END

/// Swaps rows so that the first row is the top one. Works through a small stack buffer: allocates nothing.
static inline void fp_flip_rows(unsigned char* rgb, int width, int height) {
    size_t row = (size_t)width * 3;
    unsigned char chunk[1024];
    for (int top = 0, bottom = height - 1; top < bottom; top++, bottom--) {
        unsigned char* a = rgb + row * (size_t)top;
        unsigned char* b = rgb + row * (size_t)bottom;
        for (size_t offset = 0; offset < row; offset += sizeof(chunk)) {
            size_t n = row - offset < sizeof(chunk) ? row - offset : sizeof(chunk);
            memcpy(chunk, a + offset, n);
            memcpy(a + offset, b + offset, n);
            memcpy(b + offset, chunk, n);
        }
    }
}

/// Frees what `fp_guarded_make_render_context` made, also after it failed part way (in the current GL context).
static inline void fp_free_render_context(mjvScene* scene, mjrContext* context) {
    mjr_freeContext(context);
    mjv_freeScene(scene);
}

#endif
