/* pools.h - application object pools: free lists the program keeps itself
 * (intrusive lists of freed objects, free slots of a slab, per-thread caches).
 * To malloc their objects are in use; here they are "pooled".
 *
 * Declared pools come from --pool EXPR[:LINK] (expr.h); detected pools from a
 * rule over global and TLS pointers (docs/cli.md, "pools"): a name that marks
 * a free list, heading a singly linked, NULL-terminated chain of objects of one
 * size with one link offset, separate allocations or slots inside allocations,
 * that nothing else references (only stacks and registers may).
 *
 * Invariants: every walk is bounded (cycles by Brent's algorithm, length by the
 * heap's size); a pool's count never includes an object past the point where
 * its list broke (pool->broken, with a diagnostic).  objs is in walk order,
 * pool by pool; sorted is the same objects by address.  Pooled objects of
 * separate allocations have slab == false and object_size the usable size.
 */
#ifndef HS_POOLS_H
#define HS_POOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

struct hs_analysis;
struct hs_diags;
struct hs_expr_result;
struct hs_heap;
struct hs_memory;
struct hs_notes;
struct hs_symbols;

/* A Go sync.Pool's caches (go_pools.c): each P's poolLocal has a private
 * slot and a shared chain of rings; a GC moves them to the victim cache. */
enum hs_pool_cache { HS_POOL_PRIVATE, HS_POOL_SHARED, HS_POOL_VICTIM, HS_POOL_NCACHES };

struct hs_pool_type {
	char *name;                 /* the pooled value's Go type ("*main.Buf") */
	uint64_t addr;              /* its type descriptor */
	uint64_t count, bytes;
};

struct hs_pool {
	char *anchor;               /* the expression or the detected variable path */
	uint64_t anchor_address;    /* where the head pointer is stored */
	int tid;                    /* TLS pools: the thread; else 0 */
	bool declared;
	uint64_t head;
	uint64_t link;              /* byte offset of the next pointer in an object */
	bool slab;                  /* objects are slots inside allocations */
	uint64_t object_size;       /* usable size, or the slot stride */
	uint64_t count, bytes;
	bool broken;                /* the list is cyclic or leaves the heap (diagnostic) */
	size_t first;               /* objs[first .. first + count) */
	/* hs_pools_analyse() */
	uint64_t polluted;          /* pooled objects pointing into other heap memory */
	uint64_t polluted_retained; /* bytes only this pool's objects keep alive */
	/* A Go sync.Pool (go_pools.c): no list (head, link 0); objects by cache
	 * and by type; procs: its local caches (localSize), victim_procs. */
	bool sync_pool;
	uint64_t procs, victim_procs;
	uint64_t cache_count[HS_POOL_NCACHES], cache_bytes[HS_POOL_NCACHES];
	struct hs_pool_type *types; /* most bytes first */
	size_t ntypes;
};

struct hs_pool_object {
	uint64_t address;
	uint64_t size;
	uint32_t pool;
	uint32_t block;             /* heap index of the allocation holding it */
	bool polluted;
	uint8_t cache;              /* sync.Pool: enum hs_pool_cache */
	uint32_t proc;              /* sync.Pool: the P (poolLocal index) */
	uint32_t type;              /* sync.Pool: index in its pool's types */
	uint64_t value;             /* sync.Pool: the interface value's data word */
};

struct hs_pools {
	struct hs_pool *pools;
	size_t n;
	struct hs_pool_object *objs;    /* walk order */
	size_t nobjs;
	uint32_t *sorted;               /* indexes into objs, by address */
	uint64_t count, bytes;          /* all pools */
	bool analysed;
	uint64_t polluted, polluted_retained;   /* all pools; retained counted once */
};

/* Parse-only check of a --pool spec (EXPR[:LINK]), for option handling. */
struct hs_error *hs_pool_spec_check(const char *spec);

/* What the pools stage reads (the session fills it in: hs_session_need_pools,
 * session.h).  What it may not need at all it asks for through the callbacks,
 * only when it does: an expression of a --pool, and the pointer graph (detection, when a candidate list was found; an error there
 * means "detect nothing", with a warning). */
struct hs_pools_input {
	const struct hs_heap *heap;
	struct hs_memory *mem;
	const struct hs_notes *notes;
	struct hs_symbols *symbols;       /* NULL: no detection */
	struct hs_diags *diags;
	char *const *specs;               /* --pool specs */
	size_t nspecs;
	bool detect;
	void *ctx;                        /* the callbacks' */
	struct hs_error *(*eval)(void *ctx, const char *expr, struct hs_expr_result *ret);
	struct hs_error *(*graph)(void *ctx, struct hs_analysis **ret);
	/* More pools found another way (a Go program's sync.Pools), added after
	 * the declared and detected ones with hs_pools_add; NULL: none. */
	struct hs_error *(*more)(void *ctx, struct hs_pools *p);
};
/* Declared and detected pools. */
struct hs_error *hs_pools_create(const struct hs_pools_input *in, struct hs_pools **ret);
/* polluted and polluted_retained of every pool over a, the graph of heap. */
struct hs_error *hs_pools_analyse(struct hs_pools *p, const struct hs_analysis *a, const struct hs_heap *heap,
				  struct hs_memory *mem);
void hs_pools_destroy(struct hs_pools *p);
/* Append pool (its anchor and types taken over, also on failure) with its n
 * objects (pool, first, count and bytes are set here from them). */
struct hs_error *hs_pools_add(struct hs_pools *p, struct hs_pool *pool, const struct hs_pool_object *objs, size_t n);
/* The pooled object holding addr, or NULL (p may be NULL: not computed). */
const struct hs_pool_object *hs_pools_find(const struct hs_pools *p, uint64_t addr);
/* Is heap block i itself a pooled object (a separate allocation)? */
bool hs_pools_block_pooled(const struct hs_pools *p, const struct hs_heap *heap, size_t i);

#endif
