// Counts heap allocations per thread so benchmarks and tests can show that a hot path allocates nothing.
//
// A definition of `malloc` in the executable takes precedence over glibc's for every shared library the
// process loads (ELF symbol interposition), so defining the allocation entry points here sees every
// allocation: Swift's runtime, Foundation, OpenBLAS. Each forwards to glibc's internal `__libc_*` entry
// point, which is the allocator that would have run anyway, so `free` and `malloc_usable_size` stay glibc's.
// Only glibc is supported; elsewhere the counter reads zero and nothing is interposed.
#include "allocation_counter.h"

#if defined(__linux__) && defined(__GLIBC__)
#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

// Initial-exec TLS in the executable: reading it never allocates (no recursion into malloc).
static __thread uint64_t allocation_count __attribute__((tls_model("initial-exec")));

uint64_t fp_thread_allocation_count(void) { return allocation_count; }

void *malloc(size_t size) {
    allocation_count += 1;
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    allocation_count += 1;
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    allocation_count += 1;
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    allocation_count += 1;
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    allocation_count += 1;
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    allocation_count += 1;
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL && size != 0) return ENOMEM;
    *result = pointer;
    return 0;
}
#else
uint64_t fp_thread_allocation_count(void) { return 0; }
#endif
