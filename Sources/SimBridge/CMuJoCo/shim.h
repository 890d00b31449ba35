#ifndef FLOWPOLICY_CMUJOCO_SHIM_H
#define FLOWPOLICY_CMUJOCO_SHIM_H
#include <mujoco/mujoco.h>
static inline int fp_mj_version_header(void) { return mjVERSION_HEADER; }
#endif
