/* graph.h - the pointer graph over the heap index, and what follows from it:
 * reachability from the roots, and the leak classes.
 *
 * Nodes are block indexes of the heap index (free and metadata blocks are
 * nodes without edges).  An edge A -> B exists when an aligned word inside used
 * allocation A holds an address inside used allocation B (only B's start with
 * exact_pointers).  Free blocks and allocator metadata are never scanned, so
 * stale words in freed chunks anchor nothing.  Self-edges are not kept.
 * Forward edges are CSR; reverse edges are built on first need.
 *
 * Invariants: flags[i] & HS_NODE_USED iff block i is a used allocation;
 * REACHABLE implies USED; leaked = USED & !REACHABLE; unreferenced = leaked &
 * !REFERENCED.
 */
#ifndef HS_GRAPH_H
#define HS_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "heap.h"
#include "roots.h"

struct hs_session;
struct hs_memory;

enum {
	HS_NODE_USED = 1,
	HS_NODE_ROOTED = 2,       /* a root word points into it */
	HS_NODE_REACHABLE = 4,
	HS_NODE_REFERENCED = 8,   /* another allocation points into it */
	HS_NODE_VPTR = 16,        /* its first word points into a module: maybe a vtable */
};

/* address -> used block, fast: spans of the heap with a page table each. */
struct hs_addr_span { uint64_t start, end, page0; size_t first_entry, npages; size_t last_block; };
struct hs_addrmap {
	const struct hs_heap *heap;
	const uint8_t *flags;
	struct hs_addr_span *spans;
	size_t nspans;
	uint32_t *pages;
	uint64_t lo, hi;
	bool exact;
};

struct hs_analysis {
	size_t n;
	uint8_t *flags;
	uint32_t *fwd_off, *fwd;      /* fwd_off has n + 1 entries */
	uint32_t *rev_off, *rev;      /* NULL until hs_analysis_need_reverse */
	struct hs_roots roots;
	struct hs_addrmap map;
	/* module images [start, end), sorted: the scan flags HS_NODE_VPTR */
	struct { uint64_t start, end; } *images;
	size_t nimages;
	uint64_t used_count, used_bytes;
	uint64_t leaked_count, leaked_bytes, unref_count, unref_bytes;
	/* types.c: a type per block (0 = unknown) */
	uint32_t *type;
	struct hs_types *types;
	/* dominators.c */
	uint64_t *retained;
	uint32_t *idom;
};

struct hs_error *hs_addrmap_build(struct hs_addrmap *m, const struct hs_heap *heap,
				  const uint8_t *flags, bool exact);
void hs_addrmap_deinit(struct hs_addrmap *m);
/* The used block holding v (or starting at v when exact), or -1. */
ptrdiff_t hs_addrmap_lookup(const struct hs_addrmap *m, uint64_t v);

struct hs_error *hs_analysis_create(struct hs_session *s, struct hs_analysis **ret);
void hs_analysis_destroy(struct hs_analysis *a);
struct hs_error *hs_analysis_need_reverse(struct hs_analysis *a);

static inline bool hs_node_leaked(const struct hs_analysis *a, size_t i)
{
	return (a->flags[i] & (HS_NODE_USED | HS_NODE_REACHABLE)) == HS_NODE_USED;
}
static inline bool hs_node_unreferenced(const struct hs_analysis *a, size_t i)
{
	return hs_node_leaked(a, i) && !(a->flags[i] & HS_NODE_REFERENCED);
}

/* Visit the words of [start, start + len) that point into used block target:
 * calls fn(word address, ctx) for each; reads what is dumped. */
void hs_scan_for_target(struct hs_session *s, uint64_t start, uint64_t len, size_t target,
			void (*fn)(uint64_t word_addr, void *ctx), void *ctx);

#endif
