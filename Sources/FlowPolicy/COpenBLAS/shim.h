#ifndef FLOWPOLICY_COPENBLAS_SHIM_H
#define FLOWPOLICY_COPENBLAS_SHIM_H
// Debian's libopenblas-dev installs cblas.h under /usr/include/<triplet>/ (on the default search path).
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

// OpenBLAS built with DYNAMIC_ARCH (Debian's is) picks its kernels from the CPU model when the library loads.
// Version 0.3.21 does not know recent Xeons (family 6, model 207, Emerald Rapids, among others) and falls back to
// the "Prescott" kernels: SSE3 only, 4-5x slower sgemm on a CPU that has AVX-512. The documented override is the
// environment variable OPENBLAS_CORETYPE, but it is read at load time, before any Swift code runs. The library
// exports the functions that make that choice (`gotoblas_dynamic_quit`, `gotoblas_dynamic_init`), so when the
// fallback was taken and the CPU has the instructions, choose again with the variable set. The symbols are weak:
// a build without DYNAMIC_ARCH does not have them and is left alone. A user-set OPENBLAS_CORETYPE always wins.
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

/// Returns the core type chosen instead of OpenBLAS's fallback, or NULL when nothing was changed.
static inline const char *fp_openblas_correct_core_type(void) {
    if (gotoblas_dynamic_init == NULL || gotoblas_dynamic_quit == NULL) return NULL;
    if (getenv("OPENBLAS_CORETYPE") != NULL) return NULL;
    if (strcmp(openblas_get_corename(), "Prescott") != 0) return NULL;
    __builtin_cpu_init();
    const char *core = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
        core = "SkylakeX";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        core = "Haswell";
    } else {
        return NULL;
    }
    setenv("OPENBLAS_CORETYPE", core, 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    return core;
}
#endif
