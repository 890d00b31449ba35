#ifndef FLOWPOLICY_CMUJOCO_COLLISION_H
#define FLOWPOLICY_CMUJOCO_COLLISION_H

#include <math.h>
#include <mujoco/mujoco.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------------
// A geom-pair table: MuJoCo 2.2.2's `mj_collision` for scenes with no predefined pairs, with the work that does not
// depend on the state done once.
//
// Per step, `mj_collision` builds a sweep-and-prune broadphase over all bodies (a covariance frame over every geom,
// two sorts), then for each body pair it keeps, in order of the pair's signature, skips excluded pairs, and calls
// `mj_collideGeoms` for every geom pair: the contype/conaffinity and weld filters, the margin and contact parameter
// mix (all constant), a bounding-sphere test, the narrow phase. On the Franka Kitchen that driver cost about 35 of
// 80 µs per physics step, and the narrow phase's calls that found nothing most of the rest.
//
// The table keeps, in the same order (bodies b1 < b2, then b1's geoms, then b2's), the geom pairs that pass the
// constant filters, with their mixed parameters computed as `mj_collideGeoms` computes them. Per step it tests a
// bounding sphere per body pair (enclosing the body's geoms' spheres and margins), then each geom's sphere against
// the other body's, then per geom pair MuJoCo's own bounding-sphere and plane tests, then sphere-box and box-box
// tests on boxes enclosing the geoms, and calls the narrow phase of `mjCOLLISIONFUNC` for what is left. Every test it
// adds only skips pairs that cannot be within the margin, and no pair the broadphase would keep is lost (a contact
// needs overlapping geom spheres, so overlapping body boxes), so it finds MuJoCo's contacts in MuJoCo's order, field
// for field; SimBridge's tests check that.
//
// Supported: `npair == 0` (no predefined pairs), planes only in the world body, no height fields, no
// `mjcb_contactfilter` (checked at every step: with one installed, the step calls `mj_collision`). The constant
// filters and parameters follow the model's options when the table is made.
// ---------------------------------------------------------------------------------------------------

typedef struct {
    int nbodypair;
    int* body1;          // [nbodypair] b1 < b2
    int* body2;          // [nbodypair]
    int* gridadr;        // [nbodypair] the body pair's grid in `grid`
    int* grid;           // per body pair [body_geomnum[b1], body_geomnum[b2]]: the geom pair's index, or -1
    int ngeompair;
    int* geom1;          // [ngeompair] ordered by geom type, as mj_collideGeoms orders them
    int* geom2;          // [ngeompair]
    mjtNum* margin;      // [ngeompair] after mj_assignMargin
    mjtNum* gap;         // [ngeompair]
    int* condim;         // [ngeompair]
    mjtNum* friction;    // [ngeompair, 5] unpacked and clamped to mjMINMU
    mjtNum* solref;      // [ngeompair, mjNREF] after mj_assignRef
    mjtNum* solimp;      // [ngeompair, mjNIMP] after mj_assignImp
    mjtNum* bodycenter;  // [nbody, 3] body frame: centre of a sphere enclosing the body's geoms' spheres and margins
    mjtNum* bodyradius;  // [nbody] its radius; HUGE_VAL for a plane
    mjtNum* boxcenter;   // [ngeom, 3] geom frame: centre of a box enclosing the geom
    mjtNum* boxhalf;     // [ngeom, 3] its half sizes; all 0 when the geom has none (plane)
} fp_pair_table;

static inline void fp_free_pair_table(fp_pair_table* t) {
    if (!t) return;
    free(t->body1); free(t->body2); free(t->gridadr); free(t->grid);
    free(t->geom1); free(t->geom2); free(t->margin); free(t->gap); free(t->condim);
    free(t->friction); free(t->solref); free(t->solimp);
    free(t->bodycenter); free(t->bodyradius); free(t->boxcenter); free(t->boxhalf);
    free(t);
}

/// The contype/conaffinity, same-weld and parent filters of MuJoCo 2.2.2's `mj_contactFilter`: 1 discards.
static inline int fp_pair_filtered(const mjModel* m, int g1, int g2) {
    int weld1 = m->body_weldid[m->geom_bodyid[g1]], weld2 = m->body_weldid[m->geom_bodyid[g2]];
    int parent1 = m->body_weldid[m->body_parentid[weld1]], parent2 = m->body_weldid[m->body_parentid[weld2]];
    int filterparent = !(m->opt.disableflags & mjDSBL_FILTERPARENT) && weld1 && weld2;
    if (!(m->geom_contype[g1] & m->geom_conaffinity[g2]) && !(m->geom_contype[g2] & m->geom_conaffinity[g1]))
        return 1;
    if (weld1 == weld2) return 1;
    if (filterparent && (weld1 == parent2 || weld2 == parent1)) return 1;
    return 0;
}

/// Margin, gap, condim, friction, solref and solimp of dynamic geom pair k, as MuJoCo 2.2.2's `mj_collideGeoms`
/// computes them (with MuJoCo's own vector functions, so the numbers are the same to the bit).
static inline void fp_pair_parameters(const mjModel* m, fp_pair_table* t, int k, int g1, int g2) {
    mjtNum* friction = t->friction + 5 * k;
    mjtNum* solref = t->solref + mjNREF * k;
    mjtNum* solimp = t->solimp + mjNIMP * k;
    int override = m->opt.enableflags & mjENBL_OVERRIDE;
    mjtNum margin = mju_max(m->geom_margin[g1], m->geom_margin[g2]);
    t->gap[k] = mju_max(m->geom_gap[g1], m->geom_gap[g2]);
    t->margin[k] = override ? m->opt.o_margin : margin;
    if (m->geom_priority[g1] != m->geom_priority[g2]) {
        int gp = m->geom_priority[g1] > m->geom_priority[g2] ? g1 : g2;
        t->condim[k] = m->geom_condim[gp];
        for (int i = 0; i < 3; i++) friction[2 * i] = m->geom_friction[3 * gp + i];
        mju_copy(solref, m->geom_solref + mjNREF * gp, mjNREF);
        mju_copy(solimp, m->geom_solimp + mjNIMP * gp, mjNIMP);
    } else {
        t->condim[k] = mjMAX(m->geom_condim[g1], m->geom_condim[g2]);
        for (int i = 0; i < 3; i++) {
            friction[2 * i] = mju_max(m->geom_friction[3 * g1 + i], m->geom_friction[3 * g2 + i]);
        }
        mjtNum mix;
        if (m->geom_solmix[g1] >= mjMINVAL && m->geom_solmix[g2] >= mjMINVAL) {
            mix = m->geom_solmix[g1] / (m->geom_solmix[g1] + m->geom_solmix[g2]);
        } else if (m->geom_solmix[g1] < mjMINVAL && m->geom_solmix[g2] < mjMINVAL) {
            mix = 0.5;
        } else if (m->geom_solmix[g1] < mjMINVAL) {
            mix = 0.0;
        } else {
            mix = 1.0;
        }
        if (m->geom_solref[mjNREF * g1] > 0 && m->geom_solref[mjNREF * g2] > 0) {
            for (int i = 0; i < mjNREF; i++) {
                mjtNum first = mix * m->geom_solref[mjNREF * g1 + i];  // two statements: no fused multiply-add
                solref[i] = first + (1 - mix) * m->geom_solref[mjNREF * g2 + i];
            }
        } else {
            for (int i = 0; i < mjNREF; i++)
                solref[i] = mju_min(m->geom_solref[mjNREF * g1 + i], m->geom_solref[mjNREF * g2 + i]);
        }
        mju_scl(solimp, m->geom_solimp + mjNIMP * g1, mix, mjNIMP);
        mju_addToScl(solimp, m->geom_solimp + mjNIMP * g2, 1 - mix, mjNIMP);
        friction[1] = friction[0];
        friction[3] = friction[4];
    }
    for (int i = 0; i < 5; i++) friction[i] = mju_max(mjMINMU, friction[i]);
    if (override) {
        mju_copy(solref, m->opt.o_solref, mjNREF);
        mju_copy(solimp, m->opt.o_solimp, mjNIMP);
    }
}

/// A box in the geom's frame that encloses the geom (for a mesh, its vertices), or half sizes 0 for none.
static inline void fp_geom_box(const mjModel* m, int g, mjtNum* center, mjtNum* half) {
    const mjtNum* size = m->geom_size + 3 * g;
    center[0] = center[1] = center[2] = 0;
    half[0] = half[1] = half[2] = 0;
    switch (m->geom_type[g]) {
    case mjGEOM_SPHERE: half[0] = half[1] = half[2] = size[0]; break;
    case mjGEOM_CAPSULE: half[0] = half[1] = size[0]; half[2] = size[1] + size[0]; break;
    case mjGEOM_CYLINDER: half[0] = half[1] = size[0]; half[2] = size[1]; break;
    case mjGEOM_ELLIPSOID:
    case mjGEOM_BOX: half[0] = size[0]; half[1] = size[1]; half[2] = size[2]; break;
    case mjGEOM_MESH: {
        int mesh = m->geom_dataid[g];
        if (mesh < 0 || m->mesh_vertnum[mesh] == 0) break;
        const float* vertices = m->mesh_vert + 3 * m->mesh_vertadr[mesh];
        for (int k = 0; k < 3; k++) {
            mjtNum low = vertices[k], high = vertices[k];
            for (int v = 1; v < m->mesh_vertnum[mesh]; v++) {
                low = mju_min(low, vertices[3 * v + k]);
                high = mju_max(high, vertices[3 * v + k]);
            }
            center[k] = (low + high) / 2;
            half[k] = (high - low) / 2;
        }
        break;
    }
    default: break;
    }
}

/// Makes the table for `m`, or returns NULL if the model is not supported (see above) or memory runs out.
static inline fp_pair_table* fp_make_pair_table(const mjModel* m) {
    if (m->npair > 0 || m->nbody >= 0x10000) return NULL;
    for (int g = 0; g < m->ngeom; g++) {
        if (m->geom_type[g] == mjGEOM_HFIELD) return NULL;
        if (m->geom_type[g] == mjGEOM_PLANE && m->geom_bodyid[g] != 0) return NULL;
    }
    fp_pair_table* t = (fp_pair_table*)calloc(1, sizeof(fp_pair_table));
    if (!t) return NULL;
    size_t bodypairs = (size_t)m->nbody * (size_t)(m->nbody - 1) / 2 + 1;
    // Count the geom pairs first, to size the arrays.
    size_t geompairs = 1;
    for (int b1 = 0; b1 < m->nbody; b1++) {
        for (int b2 = b1 + 1; b2 < m->nbody; b2++) {
            geompairs += (size_t)m->body_geomnum[b1] * (size_t)m->body_geomnum[b2];
        }
    }
    t->body1 = (int*)malloc(sizeof(int) * bodypairs);
    t->body2 = (int*)malloc(sizeof(int) * bodypairs);
    t->gridadr = (int*)malloc(sizeof(int) * bodypairs);
    t->grid = (int*)malloc(sizeof(int) * geompairs);
    t->geom1 = (int*)malloc(sizeof(int) * geompairs);
    t->geom2 = (int*)malloc(sizeof(int) * geompairs);
    t->margin = (mjtNum*)malloc(sizeof(mjtNum) * geompairs);
    t->gap = (mjtNum*)malloc(sizeof(mjtNum) * geompairs);
    t->condim = (int*)malloc(sizeof(int) * geompairs);
    t->friction = (mjtNum*)malloc(sizeof(mjtNum) * 5 * geompairs);
    t->solref = (mjtNum*)malloc(sizeof(mjtNum) * mjNREF * geompairs);
    t->solimp = (mjtNum*)malloc(sizeof(mjtNum) * mjNIMP * geompairs);
    t->bodycenter = (mjtNum*)malloc(sizeof(mjtNum) * 3 * (size_t)m->nbody);
    t->bodyradius = (mjtNum*)malloc(sizeof(mjtNum) * (size_t)m->nbody);
    t->boxcenter = (mjtNum*)malloc(sizeof(mjtNum) * 3 * (size_t)(m->ngeom + 1));
    t->boxhalf = (mjtNum*)malloc(sizeof(mjtNum) * 3 * (size_t)(m->ngeom + 1));
    if (!t->body1 || !t->body2 || !t->gridadr || !t->grid || !t->geom1 || !t->geom2 || !t->margin || !t->gap
        || !t->condim || !t->friction || !t->solref || !t->solimp || !t->bodycenter || !t->bodyradius
        || !t->boxcenter || !t->boxhalf) {
        fp_free_pair_table(t);
        return NULL;
    }
    for (int g = 0; g < m->ngeom; g++) fp_geom_box(m, g, t->boxcenter + 3 * g, t->boxhalf + 3 * g);
    for (int b = 0; b < m->nbody; b++) {
        mjtNum* center = t->bodycenter + 3 * b;
        mjtNum low[3] = {0, 0, 0}, high[3] = {0, 0, 0}, radius = 0;
        for (int g = m->body_geomadr[b]; g < m->body_geomadr[b] + m->body_geomnum[b]; g++) {
            mjtNum reach = m->geom_rbound[g] + m->geom_margin[g];
            for (int k = 0; k < 3; k++) {
                mjtNum lower = m->geom_pos[3 * g + k] - reach, upper = m->geom_pos[3 * g + k] + reach;
                low[k] = g == m->body_geomadr[b] ? lower : mju_min(low[k], lower);
                high[k] = g == m->body_geomadr[b] ? upper : mju_max(high[k], upper);
            }
        }
        for (int k = 0; k < 3; k++) center[k] = (low[k] + high[k]) / 2;
        for (int g = m->body_geomadr[b]; g < m->body_geomadr[b] + m->body_geomnum[b]; g++) {
            if (m->geom_rbound[g] <= 0) radius = HUGE_VAL;
            mjtNum offset[3];
            mju_sub3(offset, m->geom_pos + 3 * g, center);
            // 1 µm of slack for the rounding of kinematics.
            radius = mju_max(radius, mju_norm3(offset) + m->geom_rbound[g] + m->geom_margin[g] + 1e-6);
        }
        t->bodyradius[b] = radius;
    }
    int gridused = 0;
    for (int b1 = 0; b1 < m->nbody; b1++) {
        for (int b2 = b1 + 1; b2 < m->nbody; b2++) {
            int signature = ((b1 + 1) << 16) + (b2 + 1);
            int excluded = 0;
            for (int e = 0; e < m->nexclude; e++) excluded |= m->exclude_signature[e] == signature;
            if (excluded || !m->body_geomnum[b1] || !m->body_geomnum[b2]) continue;
            int first = t->ngeompair, gridadr = gridused;
            for (int a = m->body_geomadr[b1]; a < m->body_geomadr[b1] + m->body_geomnum[b1]; a++) {
                for (int b = m->body_geomadr[b2]; b < m->body_geomadr[b2] + m->body_geomnum[b2]; b++) {
                    int g1 = a, g2 = b;
                    if (m->geom_type[g1] > m->geom_type[g2]) { g1 = b; g2 = a; }
                    int k = -1;
                    if (mjCOLLISIONFUNC[m->geom_type[g1]][m->geom_type[g2]] && !fp_pair_filtered(m, g1, g2)) {
                        k = t->ngeompair++;
                        t->geom1[k] = g1;
                        t->geom2[k] = g2;
                        fp_pair_parameters(m, t, k, g1, g2);
                    }
                    t->grid[gridused++] = k;
                }
            }
            if (t->ngeompair == first) {
                gridused = gridadr;
                continue;
            }
            int p = t->nbodypair++;
            t->body1[p] = b1;
            t->body2[p] = b2;
            t->gridadr[p] = gridadr;
        }
    }
    return t;
}

/// Whether the sphere of geom `sphere` (its bounding sphere grown by `margin`) misses the enclosing box of geom
/// `box`: a cheaper test than `fp_boxes_apart`, and enough for a small geom near a large box.
static inline int fp_sphere_misses_box(const mjModel* m, const mjData* d, const fp_pair_table* t, int sphere,
                                       int box, mjtNum margin) {
    const mjtNum* half = t->boxhalf + 3 * box;
    if (m->geom_rbound[sphere] <= 0 || (half[0] == 0 && half[1] == 0 && half[2] == 0)) return 0;
    const mjtNum* frame = d->geom_xmat + 9 * box;  // row-major: column k is the box's axis k
    const mjtNum* center = t->boxcenter + 3 * box;
    mjtNum offset[3];
    for (int k = 0; k < 3; k++) offset[k] = d->geom_xpos[3 * sphere + k] - d->geom_xpos[3 * box + k];
    mjtNum squared = 0;
    for (int k = 0; k < 3; k++) {
        mjtNum local = offset[0] * frame[k] + offset[1] * frame[3 + k] + offset[2] * frame[6 + k] - center[k];
        mjtNum outside = fabs(local) - half[k];
        if (outside > 0) squared += outside * outside;
    }
    mjtNum reach = m->geom_rbound[sphere] + margin + 1e-4;
    return squared > reach * reach;
}

/// Whether the enclosing boxes of geoms g1 and g2 are more than `margin` apart: the separating-axis test of two
/// oriented boxes on their 15 axes (Ericson, Real-Time Collision Detection, 4.4.1). A tenth of a millimetre of
/// slack keeps it clear of the narrow phase's own tolerances; the edge-edge axes are not normalised, which only
/// makes the test more cautious.
static inline int fp_boxes_apart(const mjData* d, const fp_pair_table* t, int g1, int g2, mjtNum margin) {
    const mjtNum* h1 = t->boxhalf + 3 * g1;
    const mjtNum* h2 = t->boxhalf + 3 * g2;
    if ((h1[0] == 0 && h1[1] == 0 && h1[2] == 0) || (h2[0] == 0 && h2[1] == 0 && h2[2] == 0)) return 0;
    const mjtNum* r1 = d->geom_xmat + 9 * g1;  // row-major: column i is the geom's axis i
    const mjtNum* r2 = d->geom_xmat + 9 * g2;
    const mjtNum* o1 = t->boxcenter + 3 * g1;
    const mjtNum* o2 = t->boxcenter + 3 * g2;
    mjtNum delta[3];  // box 2's centre minus box 1's, world
    for (int k = 0; k < 3; k++) {
        mjtNum c1 = d->geom_xpos[3 * g1 + k] + r1[3 * k] * o1[0] + r1[3 * k + 1] * o1[1] + r1[3 * k + 2] * o1[2];
        mjtNum c2 = d->geom_xpos[3 * g2 + k] + r2[3 * k] * o2[0] + r2[3 * k + 1] * o2[1] + r2[3 * k + 2] * o2[2];
        delta[k] = c2 - c1;
    }
    mjtNum reach = margin + 1e-4;
    mjtNum r[3][3], absr[3][3], offset[3];  // r[i][j] = axis i of box 1 . axis j of box 2; offset in box 1's axes
    for (int i = 0; i < 3; i++) {
        offset[i] = delta[0] * r1[i] + delta[1] * r1[3 + i] + delta[2] * r1[6 + i];
        for (int j = 0; j < 3; j++) {
            r[i][j] = r1[i] * r2[j] + r1[3 + i] * r2[3 + j] + r1[6 + i] * r2[6 + j];
            absr[i][j] = fabs(r[i][j]) + 1e-9;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (fabs(offset[i]) > h1[i] + h2[0] * absr[i][0] + h2[1] * absr[i][1] + h2[2] * absr[i][2] + reach) return 1;
    }
    for (int j = 0; j < 3; j++) {
        mjtNum distance = fabs(offset[0] * r[0][j] + offset[1] * r[1][j] + offset[2] * r[2][j]);
        if (distance > h2[j] + h1[0] * absr[0][j] + h1[1] * absr[1][j] + h1[2] * absr[2][j] + reach) return 1;
    }
    for (int i = 0; i < 3; i++) {
        int i1 = (i + 1) % 3, i2 = (i + 2) % 3;
        for (int j = 0; j < 3; j++) {
            int j1 = (j + 1) % 3, j2 = (j + 2) % 3;
            mjtNum distance = fabs(offset[i2] * r[i1][j] - offset[i1] * r[i2][j]);
            mjtNum extent = h1[i1] * absr[i2][j] + h1[i2] * absr[i1][j] + h2[j1] * absr[i][j2] + h2[j2] * absr[i][j1];
            if (distance > extent + reach) return 1;
        }
    }
    return 0;
}

/// Completes a contact frame from its normal (row 0) and optional tangent (row 1): MuJoCo 2.2.2's `mju_makeFrame`,
/// which libmujoco does not export, with the same vector functions.
static inline void fp_make_contact_frame(mjtNum frame[9]) {
    mjtNum projection[3];
    if (mju_normalize3(frame) < 0.5) mju_error("xaxis of contact frame undefined");
    if (mju_norm3(frame + 3) < 0.5) {
        mju_zero3(frame + 3);
        if (frame[1] < 0.5 && frame[1] > -0.5) {
            frame[4] = 1;
        } else {
            frame[5] = 1;
        }
    }
    mju_scl3(projection, frame, mju_dot3(frame, frame + 3));
    mju_subFrom3(frame + 3, projection);
    mju_normalize3(frame + 3);
    mju_cross(frame + 6, frame, frame + 3);
}

/// Geom pair k of the table: the tail of MuJoCo 2.2.2's `mj_collideGeoms` after its filters, with the oriented-box
/// test before the narrow phase. `con` has room for `mjMAXCONPAIR` contacts.
static inline void fp_collide_table_pair(const mjModel* m, mjData* d, const fp_pair_table* t, int k,
                                         mjContact* con) {
    int g1 = t->geom1[k], g2 = t->geom2[k];
    int type1 = m->geom_type[g1], type2 = m->geom_type[g2];
    mjtNum margin = t->margin[k];
    if (m->geom_rbound[g1] > 0 && m->geom_rbound[g2] > 0) {
        // MuJoCo's bounding-sphere test, after a squared one with slack that rejects most pairs without a call.
        const mjtNum* x1 = d->geom_xpos + 3 * g1;
        const mjtNum* x2 = d->geom_xpos + 3 * g2;
        mjtNum dx = x1[0] - x2[0], dy = x1[1] - x2[1], dz = x1[2] - x2[2];
        mjtNum reach = m->geom_rbound[g1] + m->geom_rbound[g2] + margin;
        if (dx * dx + dy * dy + dz * dz > reach * reach * (1 + 1e-9) + 1e-12) return;
        if (mju_dist3(x1, x2) > reach) return;
    }
    if (type1 == mjGEOM_PLANE && m->geom_rbound[g2] > 0) {
        const mjtNum* mat = d->geom_xmat + 9 * g1;
        mjtNum normal[3] = {mat[2], mat[5], mat[8]}, offset[3];
        mju_sub3(offset, d->geom_xpos + 3 * g2, d->geom_xpos + 3 * g1);
        if (mju_dot3(offset, normal) > margin + m->geom_rbound[g2]) return;
    }
    if (fp_sphere_misses_box(m, d, t, g1, g2, margin) || fp_sphere_misses_box(m, d, t, g2, g1, margin)
        || fp_boxes_apart(d, t, g1, g2, margin))
        return;

    int num = mjCOLLISIONFUNC[type1][type2](m, d, con, g1, g2, margin);
    if (!num) return;
    if (num > mjMAXCONPAIR) mju_error("Too many contacts returned by collision function");
    if (type1 == mjGEOM_BOX && type2 == mjGEOM_BOX) {  // remove repeated contacts, as mj_collideGeoms does
        for (int i = 0; i < num; i++) con[i].dim = 0;
        for (int i = 0; i < num - 1; i++) {
            for (int j = i + 1; j < num; j++) {
                if (con[i].pos[0] == con[j].pos[0] && con[i].pos[1] == con[j].pos[1]
                    && con[i].pos[2] == con[j].pos[2]) {
                    con[i].dim = -1;
                    break;
                }
            }
        }
        int kept = 0;
        for (int j = 0; j < num; j++) {
            if (con[j].dim == 0) {
                if (kept < j) con[kept] = con[j];
                kept++;
            }
        }
        num = kept;
    }
    for (int i = 0; i < num; i++) {
        con[i].dim = t->condim[k];
        con[i].geom1 = g1;
        con[i].geom2 = g2;
        con[i].includemargin = margin - t->gap[k];
        mju_copy(con[i].friction, t->friction + 5 * k, 5);
        mju_copy(con[i].solref, t->solref + mjNREF * k, mjNREF);
        mju_copy(con[i].solimp, t->solimp + mjNIMP * k, mjNIMP);
        con[i].exclude = con[i].dist < con[i].includemargin ? 0 : 1;
        fp_make_contact_frame(con[i].frame);
        con[i].efc_address = -1;
        con[i].mu = 0;
        mju_zero(con[i].H, 36);
        if (mj_addContact(m, d, con + i)) return;
    }
}

/// Whether geom g's sphere (with its margin) reaches the bounding sphere of body `body`.
static inline int fp_geom_near_body(const mjModel* m, const mjData* d, const fp_pair_table* t,
                                    const mjtNum* centers, int g, int body) {
    if (m->geom_rbound[g] <= 0) return 1;
    const mjtNum* a = d->geom_xpos + 3 * g;
    const mjtNum* b = centers + 3 * body;
    mjtNum dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
    mjtNum reach = m->geom_rbound[g] + m->geom_margin[g] + t->bodyradius[body];
    return dx * dx + dy * dy + dz * dz <= reach * reach;
}

/// Collision detection with the table: what `mj_collision` finds, in its order. Per body pair, each geom is first
/// tested against the other body's sphere (a geom that reaches none of the other body's geom spheres cannot be in
/// a contact), so that the pair loop only visits pairs whose geoms both pass.
static inline void fp_collide_with_table(const mjModel* m, mjData* d, const fp_pair_table* t) {
    if (mjcb_contactfilter) {
        mj_collision(m, d);
        return;
    }
    d->ncon = 0;
    if ((m->opt.disableflags & (mjDSBL_CONSTRAINT | mjDSBL_CONTACT)) || m->nconmax == 0 || m->nbody < 2) return;
    mjContact con[mjMAXCONPAIR];  // 26 kB: one per step, not one per geom pair
    mjtNum centers[3 * m->nbody];  // the bodies' sphere centres, world
    for (int b = 0; b < m->nbody; b++) {
        const mjtNum* local = t->bodycenter + 3 * b;
        const mjtNum* frame = d->xmat + 9 * b;
        for (int k = 0; k < 3; k++) {
            centers[3 * b + k] = d->xpos[3 * b + k] + frame[3 * k] * local[0] + frame[3 * k + 1] * local[1]
                + frame[3 * k + 2] * local[2];
        }
    }
    for (int p = 0; p < t->nbodypair; p++) {
        int b1 = t->body1[p], b2 = t->body2[p];
        const mjtNum* x1 = centers + 3 * b1;
        const mjtNum* x2 = centers + 3 * b2;
        mjtNum dx = x1[0] - x2[0], dy = x1[1] - x2[1], dz = x1[2] - x2[2];
        mjtNum reach = t->bodyradius[b1] + t->bodyradius[b2];
        if (dx * dx + dy * dy + dz * dz > reach * reach) continue;
        // The geoms of each body that reach the other body's sphere, in order.
        int n1 = m->body_geomnum[b1], n2 = m->body_geomnum[b2], near1[n1], near2[n2], count1 = 0, count2 = 0;
        for (int i = 0; i < n1; i++) {
            if (fp_geom_near_body(m, d, t, centers, m->body_geomadr[b1] + i, b2)) near1[count1++] = i;
        }
        if (count1 == 0) continue;
        for (int i = 0; i < n2; i++) {
            if (fp_geom_near_body(m, d, t, centers, m->body_geomadr[b2] + i, b1)) near2[count2++] = i;
        }
        const int* grid = t->grid + t->gridadr[p];
        for (int i = 0; i < count1; i++) {
            for (int j = 0; j < count2; j++) {
                int k = grid[near1[i] * n2 + near2[j]];
                if (k >= 0) fp_collide_table_pair(m, d, t, k, con);
            }
        }
    }
}

/// MuJoCo 2.2.2's `mj_step` (`mj_forward` inside it, and `mj_fwdPosition` inside that) with `fp_collide_with_table`
/// in place of `mj_collision`, and without the timers. Raises MuJoCo errors as `mj_step` does: call it guarded.
static inline void fp_step_with_table(const mjModel* m, mjData* d, const fp_pair_table* t) {
    mj_checkPos(m, d);
    mj_checkVel(m, d);
    mj_kinematics(m, d);
    mj_comPos(m, d);
    mj_camlight(m, d);
    mj_tendon(m, d);
    mj_crb(m, d);
    mj_factorM(m, d);
    fp_collide_with_table(m, d, t);
    mj_makeConstraint(m, d);
    mj_transmission(m, d);
    mj_projectConstraint(m, d);
    mj_sensorPos(m, d);
    if (m->opt.enableflags & mjENBL_ENERGY) mj_energyPos(m, d);
    mj_fwdVelocity(m, d);
    mj_sensorVel(m, d);
    if (m->opt.enableflags & mjENBL_ENERGY) mj_energyVel(m, d);
    if (mjcb_control) mjcb_control(m, d);
    mj_fwdActuation(m, d);
    mj_fwdAcceleration(m, d);
    mj_fwdConstraint(m, d);
    mj_sensorAcc(m, d);
    mj_checkAcc(m, d);
    if (m->opt.enableflags & mjENBL_FWDINV) mj_compareFwdInv(m, d);
    switch (m->opt.integrator) {
    case mjINT_EULER: mj_Euler(m, d); break;
    case mjINT_RK4: mj_RungeKutta(m, d, 4); break;
    case mjINT_IMPLICIT: mj_implicit(m, d); break;
    default: mju_error("Invalid integrator");
    }
}

#endif
