/* walkers.c - THE walker table: every allocator heapscope knows, one line
 * each, in detection order.  `--allocator` values, the public allocator names
 * (hs_allocator_names), GDB's choices, the "looked for: ..." message and the
 * state registry all come from here.  Adding an allocator is src/alloc_NAME.c
 * defining `const struct hs_walker hs_NAME_walker` plus one line below (see
 * docs/architecture.md, "How to add an allocator walker").
 */
#include "alloc.h"

#ifndef HS_WALKER_TABLE   /* a unit test may bring its own table */
#define HS_WALKER_TABLE \
	HS_WALKER(glibc) \
	HS_WALKER(jemalloc) \
	HS_WALKER(tcmalloc) \
	HS_WALKER(mimalloc) \
	HS_WALKER(go)
#endif

#define HS_WALKER(name) extern const struct hs_walker hs_##name##_walker;
HS_WALKER_TABLE
#undef HS_WALKER

#define HS_WALKER(name) &hs_##name##_walker,
const struct hs_walker *const hs_walkers[] = { HS_WALKER_TABLE };
#undef HS_WALKER

const size_t hs_nwalkers = sizeof(hs_walkers) / sizeof(hs_walkers[0]);
