#ifndef FLOWPOLICY_ALLOCATION_COUNTER_H
#define FLOWPOLICY_ALLOCATION_COUNTER_H
#include <stdint.h>

/// Number of heap allocations (malloc, calloc, realloc, aligned variants) made by the calling thread since it
/// started. Linking this target into an executable interposes the allocator entry points; each call is counted
/// in a thread-local counter and forwarded to glibc's own allocator.
uint64_t fp_thread_allocation_count(void);

#endif
