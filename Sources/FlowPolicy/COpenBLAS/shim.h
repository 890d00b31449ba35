#ifndef FLOWPOLICY_COPENBLAS_SHIM_H
#define FLOWPOLICY_COPENBLAS_SHIM_H
// Debian's libopenblas-dev installs cblas.h under /usr/include/<triplet>/ (on the default search path).
#include <cblas.h>
#endif
