#ifndef FLOWPOLICY_CMUJOCO_SHIM_H
#define FLOWPOLICY_CMUJOCO_SHIM_H

#include <mujoco/mujoco.h>
#include <mujoco/mjxmacro.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collision.h"

// ---------------------------------------------------------------------------------------------------
// Stateless helpers: macros and fixed-size arrays that Swift cannot reach directly.
// ---------------------------------------------------------------------------------------------------

/// The MuJoCo version this header was written for (`mjVERSION_HEADER`); compare with `mj_version()`.
static inline int fp_mj_version_header(void) { return mjVERSION_HEADER; }

/// How many times the warning `warning` (an `mjtWarning`) was raised since the last reset.
static inline int fp_warning_count(const mjData* d, int warning) { return d->warning[warning].number; }

/// The index MuJoCo attached to the last `warning` (a dof, coordinate or actuator index).
static inline int fp_warning_lastinfo(const mjData* d, int warning) { return d->warning[warning].lastinfo; }

/// Zeroes the counter and info of one warning.
static inline void fp_clear_warning(mjData* d, int warning) {
    d->warning[warning].number = 0;
    d->warning[warning].lastinfo = 0;
}

/// Reorders the geoms of every body so that those that can collide (contype or conaffinity non-zero) come first, in
/// their original order, and sets `body_geomnum` to the number of those; the other (visual) geoms follow, still
/// attached to their bodies through `geom_bodyid`, so kinematics places them as before. Every per-geom array (the
/// `ngeom`-row fields of mjxmacro.h, names included) is permuted, and the geom ids stored elsewhere (predefined
/// pairs, tendon wraps, sensors, tuples) are renumbered. Returns 0, or -1 (nothing changed) if a body's geoms are not
/// contiguous or memory runs out.
///
/// Why: MuJoCo 2.2.2's `mj_collision` calls `mj_collideGeoms` for every geom pair of every body pair the broadphase
/// keeps, visual geoms included, and rejects them only inside that call. In 2.2.2, `body_geomnum` is read at run time
/// only by collision detection (and by the fluid model, unused when density and viscosity are 0, and rendering), so
/// collisions find the same contacts in the same order while skipping the pairs that can never collide.
static inline int fp_collidable_geoms_first(mjModel* m) {
    int n = m->ngeom;
    if (n == 0) return 0;
    int* order = (int*)malloc(sizeof(int) * (size_t)n);    // order[new] = old
    int* inverse = (int*)malloc(sizeof(int) * (size_t)n);  // inverse[old] = new
    int* counts = (int*)malloc(sizeof(int) * (size_t)m->nbody);
    if (!order || !inverse || !counts) {
        free(order); free(inverse); free(counts);
        return -1;
    }
    int next = 0;
    for (int b = 0; b < m->nbody; b++) {
        int first = m->body_geomadr[b], count = m->body_geomnum[b], collidable = 0;
        if (count > 0 && first != next) {
            free(order); free(inverse); free(counts);
            return -1;
        }
        for (int g = first; g < first + count; g++) {
            if (m->geom_contype[g] || m->geom_conaffinity[g]) { order[next++] = g; collidable++; }
        }
        for (int g = first; g < first + count; g++) {
            if (!(m->geom_contype[g] || m->geom_conaffinity[g])) order[next++] = g;
        }
        counts[b] = collidable;
    }
    if (next != n) {
        free(order); free(inverse); free(counts);
        return -1;
    }
    for (int i = 0; i < n; i++) inverse[order[i]] = i;

    MJMODEL_POINTERS_PREAMBLE(m)
    (void)nuser_body; (void)nuser_jnt; (void)nuser_site; (void)nuser_cam; (void)nuser_tendon;
    (void)nuser_actuator; (void)nuser_sensor; (void)nv; (void)na; (void)nu; (void)nmocap;
#define X(type, name, nr, nc)                                                                            \
    if (&m->nr == &m->ngeom) {                                                                           \
        size_t row = sizeof(type) * (size_t)(nc);                                                        \
        char* copy = row > 0 ? (char*)malloc(row * (size_t)n) : NULL;                                    \
        if (row > 0 && copy) {                                                                           \
            memcpy(copy, m->name, row * (size_t)n);                                                      \
            for (int i = 0; i < n; i++) memcpy((char*)m->name + row * i, copy + row * order[i], row);    \
            free(copy);                                                                                  \
        }                                                                                                \
    }
    MJMODEL_POINTERS
#undef X
    for (int b = 0; b < m->nbody; b++) m->body_geomnum[b] = counts[b];
    for (int i = 0; i < m->npair; i++) {
        m->pair_geom1[i] = inverse[m->pair_geom1[i]];
        m->pair_geom2[i] = inverse[m->pair_geom2[i]];
    }
    for (int i = 0; i < m->nwrap; i++) {
        if ((m->wrap_type[i] == mjWRAP_SPHERE || m->wrap_type[i] == mjWRAP_CYLINDER) && m->wrap_objid[i] >= 0)
            m->wrap_objid[i] = inverse[m->wrap_objid[i]];
    }
    for (int i = 0; i < m->nsensor; i++) {
        if (m->sensor_objtype[i] == mjOBJ_GEOM && m->sensor_objid[i] >= 0)
            m->sensor_objid[i] = inverse[m->sensor_objid[i]];
    }
    for (int i = 0; i < m->ntupledata; i++) {
        if (m->tuple_objtype[i] == mjOBJ_GEOM && m->tuple_objid[i] >= 0)
            m->tuple_objid[i] = inverse[m->tuple_objid[i]];
    }
    free(order); free(inverse); free(counts);
    return 0;
}

/// The collision functions the box prefilter wraps, as found in `mjCOLLISIONFUNC` (per translation unit: only one
/// Swift file installs the prefilter).
static inline mjfCollision* fp_box_prefilter_originals(void) {
    static mjfCollision originals[mjNGEOMTYPES][mjNGEOMTYPES];
    return &originals[0][0];
}

/// Whether every point within `radius` of `center` is farther than 0 from box `box` (an oriented box test).
static inline int fp_sphere_clear_of_box(const mjModel* m, const mjData* d, const mjtNum* center, mjtNum radius,
                                         int box) {
    const mjtNum* position = d->geom_xpos + 3 * box;
    const mjtNum* frame = d->geom_xmat + 9 * box;  // row-major: column k is the box's axis k
    const mjtNum* size = m->geom_size + 3 * box;
    mjtNum offset[3] = {center[0] - position[0], center[1] - position[1], center[2] - position[2]};
    mjtNum squared = 0;
    for (int k = 0; k < 3; k++) {
        mjtNum local = offset[0] * frame[k] + offset[1] * frame[3 + k] + offset[2] * frame[6 + k];
        mjtNum outside = (local < 0 ? -local : local) - size[k];
        if (outside > 0) squared += outside * outside;
    }
    return squared > radius * radius;
}

/// A convex-versus-box collision function with a prefilter: if the bounding sphere of the other geom, grown by the
/// margin, does not reach the box, there can be no contact and the (expensive) original is not called. MuJoCo 2.2.2
/// only compares bounding spheres, which for the kitchen's large flat boxes (counter tops, walls, the oven) pass
/// for almost everything near them; capsule-box alone was 17% of a step.
static inline int fp_box_prefiltered_collision(const mjModel* m, const mjData* d, mjContact* con, int g1, int g2,
                                               mjtNum margin) {
    int type1 = m->geom_type[g1], type2 = m->geom_type[g2];
    if (type2 == mjGEOM_BOX && m->geom_rbound[g1] > 0 &&
        fp_sphere_clear_of_box(m, d, d->geom_xpos + 3 * g1, m->geom_rbound[g1] + margin, g2))
        return 0;
    if (type1 == mjGEOM_BOX && m->geom_rbound[g2] > 0 &&
        fp_sphere_clear_of_box(m, d, d->geom_xpos + 3 * g2, m->geom_rbound[g2] + margin, g1))
        return 0;
    return fp_box_prefilter_originals()[type1 * mjNGEOMTYPES + type2](m, d, con, g1, g2, margin);
}

/// Installs `fp_box_prefiltered_collision` in `mjCOLLISIONFUNC` (MuJoCo's public table of pair collision functions)
/// for capsule, ellipsoid, cylinder, box and mesh against boxes. The contacts found do not change: the prefilter only
/// skips calls that would return none. Call once per process, before stepping (SimBridge does it in a Swift `let`
/// initialiser, which runs once); installing again is a no-op.
static inline void fp_install_box_prefilter(void) {
    const int pairs[][2] = {{mjGEOM_CAPSULE, mjGEOM_BOX}, {mjGEOM_ELLIPSOID, mjGEOM_BOX},
                            {mjGEOM_CYLINDER, mjGEOM_BOX}, {mjGEOM_BOX, mjGEOM_BOX}, {mjGEOM_BOX, mjGEOM_MESH}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        int a = pairs[i][0], b = pairs[i][1];
        if (mjCOLLISIONFUNC[a][b] == NULL || mjCOLLISIONFUNC[a][b] == fp_box_prefiltered_collision) continue;
        fp_box_prefilter_originals()[a * mjNGEOMTYPES + b] = mjCOLLISIONFUNC[a][b];
        mjCOLLISIONFUNC[a][b] = fp_box_prefiltered_collision;
    }
}

// ---------------------------------------------------------------------------------------------------
// Turning `mju_error` into a status code.
//
// MuJoCo reports fatal errors (stack overflow, invalid arguments, allocation failures) by calling
// `mju_error`, which calls the global hook `mju_user_error` and expects it never to return: the code
// after the call assumes the error did not happen. The default hook prints the message, waits for Enter
// on stdin and calls `exit(1)`, which takes the whole runtime (and a robot's control loop) down.
//
// The only way out of a hook that must not return is a non-local jump. Every MuJoCo call that can raise
// goes through an `fp_guarded_*` function below. It `sigsetjmp`s into a jump buffer on its own stack
// frame, publishes that buffer in a thread-local slot, calls MuJoCo, and returns FP_STATUS_OK. If MuJoCo
// raises, `fp_on_error` copies the message into a thread-local buffer and `siglongjmp`s back to the
// guard, which returns FP_STATUS_ENGINE_ERROR. The jump crosses only C frames (MuJoCo's engine is C, and
// the handler and guard are C), never a Swift frame: Swift frames cannot be unwound by longjmp. The
// guards are `noinline` so that no optimiser can fold the `sigsetjmp` into a Swift caller.
//
// The jump skips whatever MuJoCo would have done after the error. The engine keeps no locks and no
// heap allocations in flight during a step, but the mjData it was working on is left half-updated and
// its stack pointer (`pstack`) is not popped: the caller must treat that mjData as needing a reset.
//
// Slots and buffers are `static _Thread_local` variables inside `static inline` functions so that the
// header needs no .c file. Each thread has its own slot, so guards on different threads (each with its
// own mjData) do not interfere. A consequence of `static` is that every object file that uses these
// functions gets its own copy of the functions *and of the variables*: Swift emits a separate copy per
// source file. The handler installed in `mju_user_error` belongs to one copy, and it only sees that
// copy's slot. So all calls to the functions in this section must come from a single Swift file
// (SimBridge's `MuJoCoRuntime.swift`). Every guard checks that the installed handler is its own copy
// and returns FP_STATUS_FOREIGN_HANDLER otherwise, so a call from a second file fails loudly at once
// instead of aborting on the first MuJoCo error.
//
// If MuJoCo raises while no guard is active on the thread, there is nowhere safe to go: returning into
// MuJoCo would run code that assumes the error did not happen. The handler prints the message to
// stderr and aborts.
// ---------------------------------------------------------------------------------------------------

/// Status codes of the guarded calls.
enum {
    FP_STATUS_OK = 0,
    FP_STATUS_ENGINE_ERROR = 1,     // MuJoCo called mju_error; the message is in fp_error_message()
    FP_STATUS_FOREIGN_HANDLER = 2,  // the installed handler is not this file's copy (see above)
    FP_STATUS_OUT_OF_MEMORY = 3,    // malloc failed in the shim itself
};

/// MuJoCo formats its messages into 1000-byte buffers; one more kilobyte is room to spare.
#define FP_MESSAGE_CAPACITY 2048

static inline sigjmp_buf** fp_active_guard(void) {
    static _Thread_local sigjmp_buf* active = NULL;
    return &active;
}

/// The message of the last MuJoCo error on this thread (empty if none).
static inline char* fp_error_message(void) {
    static _Thread_local char message[FP_MESSAGE_CAPACITY];
    return message;
}

/// The text of the last MuJoCo warning on this thread (empty if none since the last clear).
static inline char* fp_warning_message(void) {
    static _Thread_local char message[FP_MESSAGE_CAPACITY];
    return message;
}

static inline void fp_copy_message(char* destination, const char* message) {
    strncpy(destination, message ? message : "(no message)", FP_MESSAGE_CAPACITY - 1);
    destination[FP_MESSAGE_CAPACITY - 1] = '\0';
}

static inline void fp_on_error(const char* message) {
    fp_copy_message(fp_error_message(), message);
    sigjmp_buf* guard = *fp_active_guard();
    if (guard == NULL) {
        fprintf(stderr, "flowpolicy: MuJoCo error outside a guarded call, cannot recover: %s\n",
                fp_error_message());
        fflush(stderr);
        abort();
    }
    siglongjmp(*guard, 1);
}

/// Warnings are recorded, not printed: MuJoCo also counts them in `mjData.warning`, which is what the
/// Swift side checks after every step. The default hook would print and append to MUJOCO_LOG.TXT.
static inline void fp_on_warning(const char* message) { fp_copy_message(fp_warning_message(), message); }

/// Installs the error and warning hooks (writes the globals `mju_user_error` and `mju_user_warning`).
static inline void fp_install_handlers(void) {
    mju_user_error = fp_on_error;
    mju_user_warning = fp_on_warning;
}

static inline void fp_clear_warning_message(void) { fp_warning_message()[0] = '\0'; }

// FP_GUARD_BEGIN / FP_GUARD_END bracket the MuJoCo calls of a guard. `previous` restores an outer guard
// (none exists today, but nesting costs nothing). Locals read after the jump are volatile.
#define FP_GUARD_BEGIN                                                                               \
    if (mju_user_error != fp_on_error) return FP_STATUS_FOREIGN_HANDLER;                           \
    sigjmp_buf fp_jump;                                                                            \
    sigjmp_buf* volatile fp_previous = *fp_active_guard();                                         \
    if (sigsetjmp(fp_jump, 0) != 0) {                                                              \
        *fp_active_guard() = fp_previous;                                                          \
        return FP_STATUS_ENGINE_ERROR;                                                             \
    }                                                                                              \
    *fp_active_guard() = &fp_jump;

#define FP_GUARD_END                                                                                 \
    *fp_active_guard() = fp_previous;                                                              \
    return FP_STATUS_OK;

__attribute__((noinline)) static inline int fp_guarded_make_data(const mjModel* m, mjData** result) {
    FP_GUARD_BEGIN
    *result = mj_makeData(m);
    FP_GUARD_END
}

__attribute__((noinline)) static inline int fp_guarded_copy_data(mjData* destination, const mjModel* m,
                                                                 const mjData* source, mjData** result) {
    FP_GUARD_BEGIN
    *result = mj_copyData(destination, m, source);
    FP_GUARD_END
}

__attribute__((noinline)) static inline int fp_guarded_step(const mjModel* m, mjData* d) {
    FP_GUARD_BEGIN
    mj_step(m, d);
    FP_GUARD_END
}

// mj_step with the geom-pair table of collision.h in place of mj_collision.
__attribute__((noinline)) static inline int fp_guarded_step_with_table(const mjModel* m, mjData* d,
                                                                       const fp_pair_table* table) {
    FP_GUARD_BEGIN
    fp_step_with_table(m, d, table);
    FP_GUARD_END
}

// mj_step split in two, as robosuite steps ("lite physics"): mj_step1 computes everything that depends on
// positions and velocities (kinematics, mass matrix, bias forces, Jacobians are then available), the caller
// writes the controls, and mj_step2 computes the accelerations and integrates. With the Euler integrator the pair
// equals mj_step with the controls set in between.
__attribute__((noinline)) static inline int fp_guarded_step1(const mjModel* m, mjData* d) {
    FP_GUARD_BEGIN
    mj_step1(m, d);
    FP_GUARD_END
}

__attribute__((noinline)) static inline int fp_guarded_step2(const mjModel* m, mjData* d) {
    FP_GUARD_BEGIN
    mj_step2(m, d);
    FP_GUARD_END
}

// Recomputes the model constants the compiler derives at qpos0 (body and dof inverse weights, actuator lengths) after
// a change of masses or sizes. Uses `d` as workspace.
__attribute__((noinline)) static inline int fp_guarded_set_const(mjModel* m, mjData* d) {
    FP_GUARD_BEGIN
    mj_setConst(m, d);
    FP_GUARD_END
}

__attribute__((noinline)) static inline int fp_guarded_forward(const mjModel* m, mjData* d) {
    FP_GUARD_BEGIN
    mj_forward(m, d);
    FP_GUARD_END
}

__attribute__((noinline)) static inline int fp_guarded_reset_data(const mjModel* m, mjData* d) {
    FP_GUARD_BEGIN
    mj_resetData(m, d);
    FP_GUARD_END
}

__attribute__((noinline)) static inline int fp_guarded_reset_data_keyframe(const mjModel* m, mjData* d,
                                                                           int key) {
    FP_GUARD_BEGIN
    mj_resetDataKeyframe(m, d, key);
    FP_GUARD_END
}

__attribute__((noinline)) static inline int fp_guarded_jac_site(const mjModel* m, const mjData* d,
                                                                mjtNum* jacp, mjtNum* jacr, int site) {
    FP_GUARD_BEGIN
    mj_jacSite(m, d, jacp, jacr, site);
    FP_GUARD_END
}

// Loads a model from a file (vfs NULL) or from an in-memory MJCF text.
//
// `mj_loadXML` is the one call that is *not* wrapped in a jump. In MuJoCo 2.2.2 it is C++: it holds a
// process-wide std::mutex for the whole parse and compile, and it installs its own thread-local error
// handler around the compiler, which turns engine errors raised while compiling into C++ exceptions
// and then into the text of `error` (a model with `<size nstack="50"/>`, too small for the test step the
// compiler runs, comes back as NULL with "Error: engine error: Stack overflow"). A longjmp out of it
// would skip the mutex's unlock (every later load would deadlock) and C++ destructors, so no guard is
// active around it: a MuJoCo error reaching our hook from inside it would abort with the message. The
// VFS calls around it are C and are guarded: `mj_makeEmptyFileVFS` raises on a non-positive size.
//
// mjVFS holds 2000 file names of 1000 bytes, about 2 MB: far too big for a stack, so it is malloc'ed.
__attribute__((noinline)) static inline int fp_guarded_make_vfs(mjVFS** result, const char* name,
                                                                const char* text, int size) {
    FP_GUARD_BEGIN
    mjVFS* vfs = (mjVFS*)malloc(sizeof(mjVFS));
    if (vfs == NULL) {
        *fp_active_guard() = fp_previous;
        return FP_STATUS_OUT_OF_MEMORY;
    }
    *result = vfs;  // published before MuJoCo can raise, so that the caller frees it either way
    mj_defaultVFS(vfs);
    if (mj_makeEmptyFileVFS(vfs, name, size) != 0) {  // 1: VFS full, 2: repeated name; neither in a new VFS
        fp_copy_message(fp_error_message(), "mj_makeEmptyFileVFS could not add the file");
        *fp_active_guard() = fp_previous;
        return FP_STATUS_ENGINE_ERROR;
    }
    memcpy(vfs->filedata[mj_findFileVFS(vfs, name)], text, (size_t)size);
    FP_GUARD_END
}

__attribute__((noinline)) static inline int fp_guarded_delete_vfs(mjVFS* vfs) {
    FP_GUARD_BEGIN
    mj_deleteVFS(vfs);
    FP_GUARD_END
}

static inline int fp_load_xml(const char* filename, const mjVFS* vfs, char* error, int error_size,
                              mjModel** result) {
    if (mju_user_error != fp_on_error) return FP_STATUS_FOREIGN_HANDLER;
    *result = mj_loadXML(filename, vfs, error, error_size);
    return FP_STATUS_OK;
}

#undef FP_GUARD_BEGIN
#undef FP_GUARD_END

#endif
