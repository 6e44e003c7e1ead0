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
#include <string.h>
#include "bits.h"
#include "error.h"
#include "heap.h"
#include "roots.h"

struct hs_memory;
struct hs_notes;
struct hs_diags;
struct hs_module;
struct hs_timings;

enum {
	HS_NODE_USED = 1,
	HS_NODE_ROOTED = 2,       /* a root word points into it */
	HS_NODE_REACHABLE = 4,
	HS_NODE_REFERENCED = 8,   /* leaked, and another allocation points into it (set on
				     leaked blocks only: hs_node_unreferenced) */
	HS_NODE_VPTR = 16,        /* its first word points into a module: maybe a vtable */
};

/* address -> used block, fast: spans of the heap (a gap of more than 1 MiB
 * starts a new one).  A lookup is a short search over the spans, then one
 * group of start bits (below) or one granule entry, and the block: no binary
 * search over the blocks.  Used means a used `where` in the block itself (the
 * same as HS_NODE_USED in graph.c's flags).
 *
 * A span whose starts share an alignment (1 << ashift) has two bits a slot of
 * that size, in groups of 64 slots: s (a block starts here) and u (a block
 * that answers a lookup at its start starts here: used, and not empty unless
 * exact), with base, the blocks of the span before the group.  A value at a
 * slot whose u bit is set is answered from its group alone
 * (hs_addrmap_lookup_many); any other value by the last block starting at or
 * before it, which is the span's first plus base plus the s bits up to its
 * slot, less one.  (Blocks never share a start: hs_heap_finish.)  A group
 * costs 24 bytes: a span whose start bits would cost more than 16 bytes a
 * block (a few blocks far apart) is cut instead into granules of a
 * power of two near its mean block size, each with the first block ending
 * past its start, and the step or two from it to the block. */
struct hs_addr_group {
	uint64_t s, u;
	uint32_t base;
};
struct hs_addr_span {
	uint64_t start, end;
	unsigned shift;             /* granule = 1 << shift bytes */
	size_t first_entry, nentries;
	size_t first_block, last_block;
	uint64_t starts_or;         /* the starts' offsets or-ed: their alignment */
	unsigned ashift;            /* the starts' alignment, when groups */
	size_t first_group;         /* SIZE_MAX: no groups */
};
struct hs_addrmap {
	const struct hs_heap *heap;
	const uint8_t *flags;
	struct hs_addr_span *spans;
	size_t nspans;
	uint32_t *pages;            /* the granule entries of the spans without groups */
	struct hs_addr_group *groups; /* the start bits of the spans that have them */
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
	int jobs;                     /* threads a stage over the graph may use */
};

/* jobs > 1: the start bits are filled on two threads. */
struct hs_error *hs_addrmap_build(struct hs_addrmap *m, const struct hs_heap *heap,
				  const uint8_t *flags, bool exact, int jobs);
void hs_addrmap_deinit(struct hs_addrmap *m);
/* The last block of span sp starting at or before its slot (slot in group
 * g): one of the group's starts, or the last before the group. */
static inline size_t hs_addr_group_block(const struct hs_addr_span *sp, const struct hs_addr_group *g, uint64_t slot)
{
	uint64_t upto = g->s & ((UINT64_C(2) << (slot % 64)) - 1);   // (slot % 64 == 63: all)
	size_t before = g->base + hs_popcount64(upto);
	return sp->first_block + (before ? before - 1 : 0);
}

/* The last span starting at or before v (m->lo <= v): a search whose steps
 * depend only on the number of spans, each a conditional move, not a branch
 * (the values looked up lie in the spans at random: a branch would be
 * mispredicted at every other step). */
static inline const struct hs_addr_span *hs_addr_span_of(const struct hs_addrmap *m, uint64_t v)
{
	const struct hs_addr_span *sp = m->spans;
	for (size_t len = m->nspans; len > 1;) {
		size_t half = len / 2;
		sp = sp[half].start <= v ? sp + half : sp;
		len -= half;
	}
	return sp;
}

/* The used block holding v (or starting at v when exact), or -1. */
static inline ptrdiff_t hs_addrmap_lookup(const struct hs_addrmap *m, uint64_t v)
{
	if (v < m->lo || v >= m->hi)
		return -1;
	const struct hs_addr_span *sp = hs_addr_span_of(m, v);
	if (v >= sp->end)
		return -1;
	const struct hs_block *blocks = m->heap->blocks;
	size_t i;
	if (sp->first_group != SIZE_MAX) {
		uint64_t slot = (v - sp->start) >> sp->ashift;
		i = hs_addr_group_block(sp, &m->groups[sp->first_group + slot / 64], slot);
	} else {
		i = m->pages[sp->first_entry + ((v - sp->start) >> sp->shift)];
		while (i < sp->last_block && blocks[i + 1].address <= v)
			i++;
	}
	const struct hs_block *b = &blocks[i];
	if (b->address > v || !hs_where_is_used(hs_block_where(b)))
		return -1;
	if (m->exact ? v != b->address : v - b->address >= hs_block_size(b))
		return -1;
	return (ptrdiff_t)i;
}

/* The first of words [k, n) in [lo, hi) (a heap address, perhaps), n for
 * none.  Most words of a heap are not: four are tested with one branch. */
static inline size_t hs_next_heap_word(const uint8_t *words, size_t k, size_t n, uint64_t lo, uint64_t hi)
{
	uint64_t span = hi - lo, v0, v1, v2, v3;
	for (; k + 4 <= n; k += 4) {
		const uint8_t *w = words + 8 * k;
		memcpy(&v0, w, 8);
		memcpy(&v1, w + 8, 8);
		memcpy(&v2, w + 16, 8);
		memcpy(&v3, w + 24, 8);
		if ((v0 - lo < span) | (v1 - lo < span) | (v2 - lo < span) | (v3 - lo < span))
			break;
	}
	for (; k < n; k++) {
		memcpy(&v0, words + 8 * k, 8);
		if (v0 - lo < span)
			return k;
	}
	return n;
}

/* Run fn on parts[0..nparts) (each argsize bytes, nparts <= 64): part 0
 * on this thread, the others on threads of their own, or here after part 0
 * when a thread cannot start.  Returns when every part has run. */
void hs_run_parts(size_t nparts, void *(*fn)(void *), void *parts, size_t argsize);

/* Fault in the whole pages of arrays p[0..n) (bytes[k] each) on up to jobs
 * threads, for a stage that is about to write all of them on one thread:
 * a page new to the process costs its first writer more than the stage
 * spends in it (docs/architecture.md, "Memory per block"), and so this
 * cost is shared instead of being paid on the critical path.  Contents are
 * not changed; where the kernel cannot populate (before Linux 5.14) the
 * pages fault in as they are written. */
void hs_prefault(void *const *p, const size_t *bytes, size_t n, int jobs);

/* hs_addrmap_lookup of v[0..n) into ret[0..n), with the memory accesses of
 * all of them in flight together (n <= HS_LOOKUP_BATCH). */
#define HS_LOOKUP_BATCH 256
void hs_addrmap_lookup_many(const struct hs_addrmap *m, const uint64_t *v, int64_t *ret, size_t n);

struct hs_scan_visitor;

/* What the graph stage reads; nothing else (the session fills it in). */
struct hs_graph_input {
	const struct hs_heap *heap;
	struct hs_memory *mem;            /* the core's memory: loaded whole here */
	const struct hs_notes *notes;     /* each thread's registers are roots */
	const struct hs_module *modules;  /* sorted load ranges: words into them flag HS_NODE_VPTR */
	size_t nmodules;
	int jobs;                         /* scan threads; <= 0: one */
	bool exact_pointers;              /* only a block's start makes an edge */
	struct hs_diags *diags;
	struct hs_timings *timings;       /* load, index, scan, roots, reachability, classes */
	/* Precise scanning (the Go heap, go_mark.c): which words of the used
	 * block [addr, addr + size) hold pointers, bit k of bits (cleared by
	 * it) for word k: 1 bits filled, 0 none, -1 unknown (every word is
	 * scanned).  Called from the scan threads.  NULL: every word. */
	int (*pointer_bits)(const void *ctx, uint64_t addr, uint64_t size, uint64_t *bits);
	const void *pointer_ctx;
	/* Shown every used block's words as the scan reads them (containers.c's
	 * shape probes ride along: one pass over the heap's bytes, not two).
	 * NULL: none. */
	const struct hs_scan_visitor *visitor;
};

/* begin(), once before the scan's parts start, gets the analysis as built
 * so far (blocks' flags, the address map) and the number of parts; false:
 * no visits.  block() is called on part `part`'s thread for each used block
 * it scans, in block order within each run of blocks the part takes, with
 * the block's words while they are in cache and which of them hold an
 * address in [map.lo, map.hi) (heap_words, ascending; NULL: not told, for a
 * block of more than HS_SCAN_HEAP_WORDS words); words NULL when the scan
 * did not read the block whole (not all dumped, misaligned, or scanned by
 * its pointer map): the visitor reads it itself, later. */
#define HS_SCAN_HEAP_WORDS 65536
struct hs_scan_visitor {
	void *ctx;
	bool (*begin)(void *ctx, struct hs_analysis *a, size_t nparts);
	void (*block)(void *ctx, size_t part, size_t i, const uint64_t *words, size_t nwords,
		      const uint32_t *heap_words, size_t nheap);
};
/* The pointer graph from the roots (roots.c's, taken over: freed with the
 * analysis, or here on failure). */
struct hs_error *hs_analysis_create(const struct hs_graph_input *in, struct hs_roots *roots,
				    struct hs_analysis **ret);
void hs_analysis_destroy(struct hs_analysis *a);
struct hs_error *hs_analysis_need_reverse(struct hs_analysis *a);
/* The same, its pages faulted in on up to jobs threads (hs_prefault). */
struct hs_error *hs_analysis_reverse_jobs(struct hs_analysis *a, int jobs);

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
void hs_scan_for_target(const struct hs_analysis *a, struct hs_memory *mem, uint64_t start, uint64_t len, size_t target,
			void (*fn)(uint64_t word_addr, void *ctx), void *ctx);

#endif
