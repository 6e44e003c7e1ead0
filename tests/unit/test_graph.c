/* test_graph.c - the pointer graph, leak classes and dominators on synthetic
 * memory: a heap of blocks with pointers we place, globals as the root, and
 * answers checked against a brute-force computation of the same definitions
 * (reachability by BFS; "d dominates v" = v is unreachable once d is gone). */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "unit_util.h"
#include "dominators.h"
#include "graph.h"
#include "session.h"

#define HEAP_BASE UINT64_C(0x10000000)
#define GLOBALS_BASE UINT64_C(0x20000000)
#define BLOCK 64              /* block stride; usable sizes vary below it */
#define WORDS (BLOCK / 8)
#define MAXN 160

struct world {
	size_t n;                  /* blocks */
	uint64_t size[MAXN];       /* usable size of each */
	bool used[MAXN];
	uint64_t heap[MAXN * WORDS];
	uint64_t globals[64];
	size_t nglobals;
};

static uint64_t block_addr(size_t i) { return HEAP_BASE + i * BLOCK; }

/* A session over the world: its memory, a heap index as a walker would give,
 * and the heap segment marked as the allocator's so that it is no root. */
static struct hs_session *open_world(const struct world *w, bool exact, int jobs)
{
	struct hs_segment segs[2] = {
		{ .start = HEAP_BASE, .end = HEAP_BASE + sizeof(w->heap), .filesz = sizeof(w->heap),
		  .data = (const uint8_t *)w->heap, .flags = HS_SEG_R | HS_SEG_W },
		{ .start = GLOBALS_BASE, .end = GLOBALS_BASE + sizeof(w->globals),
		  .filesz = sizeof(w->globals), .data = (const uint8_t *)w->globals,
		  .flags = HS_SEG_R | HS_SEG_W },
	};
	struct hs_session *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	assert_null(hs_target_open_buffers(segs, 2, &s->target));
	hs_diags_init(&s->diags);
	hs_heap_init(&s->heap);
	s->jobs = jobs;
	s->exact_pointers = exact;
	for (size_t i = 0; i < w->n; i++)
		assert_null(hs_heap_add(&s->heap, block_addr(i), w->size[i],
					w->used[i] ? HS_WHERE_USED : WHERE("tcache"), 0));
	assert_null(hs_heap_finish(&s->heap, NULL));
	s->heap_done = true;
	assert_null(HS_VEC_GROW(s->desc, s->capdesc, 1));
	memset(s->desc, 0, sizeof(*s->desc));
	s->ndesc = 1;
	s->desc[0].allocator = "test";
	struct hs_region r = { HEAP_BASE, HEAP_BASE + sizeof(w->heap), HS_REGION_HEAP, 0 };
	assert_null(hs_alloc_desc_add_region(&s->desc[0], &r));
	return s;
}

/* Brute force. */

static bool points_into(const struct world *w, uint64_t v, size_t t, bool exact)
{
	uint64_t a = block_addr(t);
	return w->used[t] && (exact ? v == a : v >= a && v < a + w->size[t]);
}

static bool edge(const struct world *w, size_t from, size_t to, bool exact)
{
	if (!w->used[from] || from == to)
		return false;
	for (size_t k = 0; k < w->size[from] / 8; k++)
		if (points_into(w, w->heap[from * WORDS + k], to, exact))
			return true;
	return false;
}

static bool rooted(const struct world *w, size_t t, bool exact)
{
	for (size_t g = 0; g < w->nglobals; g++)
		if (points_into(w, w->globals[g], t, exact))
			return true;
	return false;
}

/* Reach from the seeds, never through `removed` (MAXN: none). */
static void reach(const struct world *w, const bool *seed, size_t removed, bool *out, bool exact)
{
	size_t queue[MAXN], head = 0, tail = 0;
	memset(out, 0, MAXN * sizeof(bool));
	for (size_t i = 0; i < w->n; i++)
		if (seed[i] && i != removed) {
			out[i] = true;
			queue[tail++] = i;
		}
	while (head < tail) {
		size_t v = queue[head++];
		for (size_t t = 0; t < w->n; t++)
			if (!out[t] && t != removed && edge(w, v, t, exact)) {
				out[t] = true;
				queue[tail++] = t;
			}
	}
}

struct expected {
	bool anchored[MAXN], leaked[MAXN], unreferenced[MAXN];
	uint64_t retained[MAXN], retained_count[MAXN];
	bool dom[MAXN][MAXN];       /* dom[d][v]: every path from the root to v passes d */
	size_t idom[MAXN];          /* the strict dominator nearest v; n: the root */
};

static void expect(const struct world *w, bool exact, struct expected *e)
{
	bool seed[MAXN] = { false }, referenced[MAXN] = { false };
	for (size_t i = 0; i < w->n; i++)
		seed[i] = rooted(w, i, exact);
	reach(w, seed, MAXN, e->anchored, exact);
	for (size_t i = 0; i < w->n; i++)
		for (size_t f = 0; f < w->n; f++)
			referenced[i] |= edge(w, f, i, exact);
	for (size_t i = 0; i < w->n; i++) {
		e->leaked[i] = w->used[i] && !e->anchored[i];
		e->unreferenced[i] = e->leaked[i] && !referenced[i];
	}
	// The virtual root's children: rooted, then leaked heads, then, in index
	// order, whatever is still unreached (one member of each leaked cycle).
	bool root_child[MAXN] = { false }, all[MAXN];
	for (size_t i = 0; i < w->n; i++)
		root_child[i] = seed[i] || e->unreferenced[i];
	reach(w, root_child, MAXN, all, exact);
	for (size_t i = 0; i < w->n; i++) {
		if (w->used[i] && !all[i]) {
			root_child[i] = true;
			reach(w, root_child, MAXN, all, exact);
		}
	}
	for (size_t d = 0; d < w->n; d++) {
		e->retained[d] = e->retained_count[d] = 0;
		if (!w->used[d])
			continue;
		// What a root reaches is dominated by the paths from the roots
		// alone: a leaked block that points into it is no way in (the
		// program has none to the leaked).
		bool without[MAXN], without_roots[MAXN];
		reach(w, root_child, d, without, exact);
		reach(w, seed, d, without_roots, exact);
		for (size_t v = 0; v < w->n; v++) {
			e->dom[d][v] = w->used[v] && (v == d || !(e->anchored[v] ? without_roots[v] : without[v]));
			if (e->dom[d][v]) {
				e->retained[d] += w->size[v];
				e->retained_count[d]++;
			}
		}
	}
	// A vertex's strict dominators form a chain: the nearest is the one
	// with the most dominators of its own.
	for (size_t v = 0; v < w->n; v++) {
		size_t best = w->n, depth = 0;
		for (size_t d = 0; d < w->n; d++) {
			if (d == v || !w->used[d] || !e->dom[d][v])
				continue;
			size_t k = 0;
			for (size_t x = 0; x < w->n; x++)
				k += w->used[x] && e->dom[x][d];
			if (best == w->n || k > depth) {
				best = d;
				depth = k;
			}
		}
		e->idom[v] = best;
	}
}

// The reverse edges (built with the dominators): into each block, every
// block with an edge to it, in block order, once for each of its forward
// edges to it (a block's words into another, apart, are edges apart).
static void check_reverse(const struct world *w, const struct hs_analysis *a, bool exact)
{
	assert_non_null(a->rev_off);
	assert_int_equal(a->rev_off[0], 0);
	assert_int_equal(a->rev_off[w->n], a->fwd_off[w->n]);
	for (size_t t = 0; t < w->n; t++) {
		uint32_t e = a->rev_off[t];
		for (size_t f = 0; f < w->n; f++) {
			size_t times = 0;
			for (uint32_t x = a->fwd_off[f]; x < a->fwd_off[f + 1]; x++)
				times += a->fwd[x] == t;
			assert_int_equal(times > 0, edge(w, f, t, exact));
			for (; times; times--) {
				assert_true(e < a->rev_off[t + 1]);
				assert_int_equal(a->rev[e++], f);
			}
		}
		assert_int_equal(e, a->rev_off[t + 1]);
	}
}

static void check_jobs(const struct world *w, bool exact, int jobs)
{
	struct expected *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	expect(w, exact, e);
	struct hs_session *s = open_world(w, exact, jobs);
	assert_null(hs_session_need_analysis(s));
	assert_null(hs_session_need_dominators(s));
	const struct hs_analysis *a = s->analysis;
	assert_int_equal(a->n, w->n);
	check_reverse(w, a, exact);
	uint64_t leaked = 0, unref = 0;
	for (size_t i = 0; i < w->n; i++) {
		assert_int_equal(hs_node_leaked(a, i), e->leaked[i]);
		assert_int_equal(hs_node_unreferenced(a, i), e->unreferenced[i]);
		assert_int_equal(!!(a->flags[i] & HS_NODE_REACHABLE), e->anchored[i]);
		if (w->used[i]) {
			assert_int_equal(s->dominators->retained[i], e->retained[i]);
			assert_int_equal(s->dominators->retained_count[i], e->retained_count[i]);
			assert_int_equal(s->dominators->idom[i], e->idom[i]);
		} else {
			assert_int_equal(s->dominators->idom[i], HS_DOM_NONE);
		}
		leaked += e->leaked[i];
		unref += e->unreferenced[i];
	}
	assert_int_equal(a->leaked_count, leaked);
	assert_int_equal(a->unref_count, unref);
	hs_session_destroy(s);
	free(e);
}

// With one thread, and with two (the dominators' helper thread builds the
// reverse edges while the search runs, then reads the predecessors ahead),
// and with two through rings of a few entries (HEAPSCOPE_TEST_SMALL_SPLITS):
// wrapped all the time, and a vertex's predecessors often more than the ring
// holds.  Then the dominators from Lengauer-Tarjan's buckets, as when the
// walks up the dominator tree grow too long (HEAPSCOPE_TEST_DOMINATOR_BUCKETS),
// after the semidominators on one thread and on two.
static void check(const struct world *w, bool exact)
{
	check_jobs(w, exact, 1);
	check_jobs(w, exact, 2);
	setenv("HEAPSCOPE_TEST_SMALL_SPLITS", "1", 1);
	check_jobs(w, exact, 2);
	unsetenv("HEAPSCOPE_TEST_SMALL_SPLITS");
	setenv("HEAPSCOPE_TEST_DOMINATOR_BUCKETS", "1", 1);
	check_jobs(w, exact, 1);
	check_jobs(w, exact, 2);
	unsetenv("HEAPSCOPE_TEST_DOMINATOR_BUCKETS");
}

static struct world *new_world(size_t n)
{
	struct world *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	w->n = n;
	for (size_t i = 0; i < n; i++) {
		w->size[i] = 24 + 8 * (i % 5);   /* 24..56: all inside the 64-byte stride */
		w->used[i] = true;
	}
	return w;
}

static void link_(struct world *w, size_t from, unsigned word, size_t to, uint64_t offset)
{
	w->heap[from * WORDS + word] = block_addr(to) + offset;
}

// Pages of arrays of [p, p + bytes) not yet in memory.
static size_t absent_pages(const void *p, size_t bytes)
{
	uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095, e = ((uintptr_t)p + bytes) & ~(uintptr_t)4095;
	size_t n = (e - a) / 4096, absent = 0;
	unsigned char *vec = malloc(n ? n : 1);
	assert_non_null(vec);
	assert_int_equal(mincore((void *)a, e - a, vec), 0);
	for (size_t i = 0; i < n; i++)
		absent += !(vec[i] & 1);
	free(vec);
	return absent;
}

// A fresh mapping of `bytes` bytes and a header: the array 16 bytes in,
// as glibc gives a big block.
static void *fresh(size_t bytes)
{
	void *m = mmap(NULL, bytes + 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	return (char *)m + 16;
}

static void unmap(void *p, size_t bytes)
{
	munmap((char *)p - 16, bytes + 16);
}

/* hs_prefault: every whole page of the arrays in memory, on one thread or
 * several, what the arrays hold unchanged; below its threshold (and with
 * one job) it leaves them be. */
static void test_prefault(void **state)
{
	(void)state;
	for (int jobs = 1; jobs <= 3; jobs++) {
		size_t bytes[3] = { (size_t)9 << 20, 12345, ((size_t)11 << 20) + 100 };
		void *p[3];
		for (size_t k = 0; k < 3; k++) {
			p[k] = fresh(bytes[k]);
			((unsigned char *)p[k])[0] = (unsigned char)(k + 1);
			((unsigned char *)p[k])[bytes[k] - 1] = (unsigned char)(k + 7);
		}
		// Next to nothing in memory yet (of some 5,100 pages).
		size_t before = absent_pages(p[0], bytes[0]) + absent_pages(p[2], bytes[2]);
		assert_true(before > 4000);
		hs_prefault(p, bytes, 3, jobs);
		size_t after = absent_pages(p[0], bytes[0]) + absent_pages(p[2], bytes[2]);
		assert_int_equal(after, jobs > 1 ? 0 : before);
		for (size_t k = 0; k < 3; k++) {
			assert_int_equal(((unsigned char *)p[k])[0], k + 1);
			assert_int_equal(((unsigned char *)p[k])[1], 0);
			assert_int_equal(((unsigned char *)p[k])[bytes[k] - 1], k + 7);
			unmap(p[k], bytes[k]);
		}
	}
	// Under 16 MiB in all: one thread faults them in as fast.
	size_t small[1] = { (size_t)8 << 20 };
	void *q[1] = { fresh(small[0]) };
	hs_prefault(q, small, 1, 2);
	assert_true(absent_pages(q[0], small[0]) > 1500);
	unmap(q[0], small[0]);
}

/* The shapes the issue names, by hand. */
static void test_shapes(void **state)
{
	(void)state;
	struct world *w = new_world(16);
	w->globals[w->nglobals++] = block_addr(0);         /* g -> 0 -> 1 -> 2 */
	link_(w, 0, 1, 1, 0);
	link_(w, 1, 1, 2, 0);
	link_(w, 3, 0, 4, 0);                              /* leaked head 3 -> 4 -> 5 */
	link_(w, 4, 0, 5, 0);
	link_(w, 3, 1, 1, 0);                              /* ... and 3 -> 1: no way in to 1 */
	link_(w, 6, 0, 7, 0);                              /* leaked cycle 6 <-> 7 */
	link_(w, 7, 0, 6, 0);
	link_(w, 8, 0, 8, 0);                              /* a self-loop only: unreferenced */
	w->used[9] = false;                                /* a free block pointing at 10 */
	link_(w, 9, 0, 10, 0);                             /* ... anchors nothing */
	w->globals[w->nglobals++] = block_addr(11) + 16;   /* interior pointer anchors 11 */
	link_(w, 11, 0, 12, 0);                            /* 11 -> 12, 11 -> 13, 12 -> 13: */
	link_(w, 11, 1, 13, 0);                            /* 13 is not dominated by 12 */
	link_(w, 12, 0, 13, 0);
	w->heap[14 * WORDS] = block_addr(15) + 40;         /* past 15's usable end: no edge */
	w->globals[w->nglobals++] = block_addr(2);         /* 2 is rooted itself: 1 does not dominate it */
	check(w, false);

	struct expected e;
	expect(w, false, &e);
	assert_false(e.leaked[2]);
	assert_true(e.unreferenced[3] && e.leaked[4] && !e.unreferenced[4]);
	assert_true(e.leaked[6] && !e.unreferenced[6]);
	assert_true(e.unreferenced[8]);
	assert_true(e.unreferenced[10]);
	assert_false(e.leaked[11]);
	assert_int_equal(e.retained[11], w->size[11] + w->size[12] + w->size[13]);
	assert_int_equal(e.retained[12], w->size[12]);
	assert_int_equal(e.retained[1], w->size[1]);
	assert_int_equal(e.retained[0], w->size[0] + w->size[1]);   /* 1 is 0's, though 3 points at it */
	assert_int_equal(e.idom[1], 0);
	assert_int_equal(e.retained[3], w->size[3] + w->size[4] + w->size[5]);
	check(w, true);                                    /* exact: 11 is leaked now */
	expect(w, true, &e);
	assert_true(e.leaked[11]);
	free(w);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Random graphs: sparse and dense, with interior pointers, free blocks,
 * junk words and garbage that points nowhere. */
static void test_random_graphs(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int round = 0; round < 60; round++) {
		size_t n = 20 + rnd(&x) % (MAXN - 20);
		struct world *w = new_world(n);
		for (size_t i = 0; i < n; i++)
			w->used[i] = rnd(&x) % 10 != 0;
		unsigned density = 1 + round % 4;
		for (size_t i = 0; i < n; i++) {
			for (unsigned k = 0; k < w->size[i] / 8; k++) {
				uint64_t r = rnd(&x) % 16;
				if (r < density)
					link_(w, i, k, rnd(&x) % n, rnd(&x) % 3 == 0 ? 8 * (rnd(&x) % 4) : 0);
				else if (r == 15)
					w->heap[i * WORDS + k] = rnd(&x);   /* junk */
			}
		}
		size_t roots = rnd(&x) % 12;
		for (size_t g = 0; g < roots; g++)
			w->globals[w->nglobals++] = block_addr(rnd(&x) % n) + (rnd(&x) % 2) * 8;
		check(w, false);
		check(w, round % 3 == 0);
		free(w);
	}
}

/* A long chain: deep DFS and deep path compression, without recursion. */
static void test_long_chain(void **state)
{
	(void)state;
	struct world *w = new_world(MAXN);
	w->globals[w->nglobals++] = block_addr(0);
	for (size_t i = 0; i + 1 < MAXN; i++)
		link_(w, i, 0, i + 1, 0);
	link_(w, MAXN - 1, 1, 0, 0);                       /* and back to the start */
	check(w, false);
	free(w);
}

/* A long dominator chain that many vertices climb: a rooted chain of K
 * blocks, the last pointing at M blocks that roots point at too.  The
 * search reaches the M through the chain, so each one's parent is the
 * chain's end but its semidominator the root: Semi-NCA's walk up would climb
 * the whole chain for each of them (K * M = 400 M steps), and past its
 * budget the buckets take over.  The dominators must be right either way,
 * and with one job or two. */
#define CLIMB_K 20000
#define CLIMB_M 20000

static void test_dominators_long_climb(void **state)
{
	(void)state;
	size_t n = CLIMB_K + CLIMB_M, edges = CLIMB_K - 1 + CLIMB_M;
	struct hs_heap heap;
	hs_heap_init(&heap);
	for (size_t i = 0; i < n; i++)
		assert_null(hs_heap_add(&heap, HEAP_BASE + 64 * i, 16 + 8 * (i % 4), HS_WHERE_USED, 0));
	assert_null(hs_heap_finish(&heap, NULL));
	for (int jobs = 1; jobs <= 2; jobs++) {
		struct hs_analysis a = { .n = n, .jobs = jobs };
		a.flags = calloc(n, 1);
		a.fwd_off = calloc(n + 1, sizeof(uint32_t));
		a.fwd = malloc(edges * sizeof(uint32_t));
		assert_true(a.flags && a.fwd_off && a.fwd);
		// Blocks 0..K-1 the chain (block 0 rooted), K..K+M-1 the rooted fan.
		size_t e = 0;
		for (size_t i = 0; i < n; i++) {
			a.flags[i] = HS_NODE_USED | HS_NODE_REACHABLE | HS_NODE_REFERENCED;
			a.fwd_off[i] = (uint32_t)e;
			if (i + 1 < CLIMB_K)
				a.fwd[e++] = (uint32_t)(i + 1);
			else if (i + 1 == CLIMB_K)
				for (size_t j = 0; j < CLIMB_M; j++)
					a.fwd[e++] = (uint32_t)(CLIMB_K + j);
			if (i == 0 || i >= CLIMB_K)
				a.flags[i] |= HS_NODE_ROOTED;
		}
		a.fwd_off[n] = (uint32_t)e;
		assert_int_equal(e, edges);
		struct hs_dominators *d;
		assert_null(hs_dominators_create(&a, &heap, &d));
		uint64_t chain = 0, all = 0;
		for (size_t i = 0; i < n; i++)
			all += hs_block_size(&heap.blocks[i]);
		for (size_t i = CLIMB_K; i-- > 0;) {
			chain += hs_block_size(&heap.blocks[i]);
			assert_int_equal(d->idom[i], i ? i - 1 : n);
			assert_int_equal(d->retained[i], chain);
			assert_int_equal(d->retained_count[i], CLIMB_K - i);
		}
		for (size_t i = CLIMB_K; i < n; i++) {
			assert_int_equal(d->idom[i], n);
			assert_int_equal(d->retained[i], hs_block_size(&heap.blocks[i]));
			assert_int_equal(d->retained_count[i], 1);
		}
		assert_int_equal(d->idom[n], HS_DOM_NONE);
		assert_int_equal(d->retained[n], all);
		assert_int_equal(d->retained_count[n], n);
		hs_dominators_destroy(d);
		free(a.flags);
		free(a.fwd_off);
		free(a.fwd);
		free(a.rev_off);
		free(a.rev);
	}
	hs_heap_deinit(&heap);
}

/* A wide graph: 64 globals -> 64 hubs of 2,048 words -> 131,072 leaves (a
 * frontier wide enough for reachability on several threads), leaves linked
 * among themselves, plus leaves no hub points at: some reached through other
 * leaves (two steps deep), some leaked (some pointing into the live part).  The
 * classes must equal a sequential BFS over the same edges, with 1 and 2 jobs. */
#define WIDE_HUBS 64
#define WIDE_FAN 2048
#define WIDE_LEAVES (WIDE_HUBS * WIDE_FAN + 8192)
#define WIDE_LEAF 16
#define WIDE_HUB (WIDE_FAN * 8)

static uint64_t wide_leaf(size_t k) { return HEAP_BASE + (uint64_t)WIDE_HUBS * WIDE_HUB + k * WIDE_LEAF; }

static void test_wide_graph(void **state)
{
	(void)state;
	size_t heap_bytes = (size_t)WIDE_HUBS * WIDE_HUB + (size_t)WIDE_LEAVES * WIDE_LEAF;
	uint64_t *heap = calloc(heap_bytes / 8, 8), globals[WIDE_HUBS];
	// succ[k]: the leaf leaf k points at (word 0), or -1.
	long *succ = malloc(WIDE_LEAVES * sizeof(*succ));
	assert_true(heap && succ);
	for (size_t h = 0; h < WIDE_HUBS; h++) {
		globals[h] = HEAP_BASE + h * WIDE_HUB;
		for (size_t j = 0; j < WIDE_FAN; j++)
			heap[(h * WIDE_HUB) / 8 + j] = wide_leaf(h * WIDE_FAN + j);
	}
	uint64_t x = 12345;
	for (size_t k = 0; k < WIDE_LEAVES; k++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		succ[k] = -1;
		if (k < WIDE_HUBS * WIDE_FAN) {
			// Live leaves: one in 64 points at an extra leaf of its own
			// (extras 0..2047 are reached only through live leaves, each
			// through one: every part of the level must hand on what it
			// found), some at another live leaf.
			if (k % 64 == 0)
				succ[k] = (long)(WIDE_HUBS * WIDE_FAN + k / 64);
			else if (x % 3 == 0)
				succ[k] = (long)((x >> 20) % (WIDE_HUBS * WIDE_FAN));
		} else if (k < WIDE_HUBS * WIDE_FAN + 2048) {
			// Extras 0..2047 lead on to extras 2048..4095: two steps from
			// the live leaves.
			succ[k] = (long)(k + 2048);
		} else if (k >= WIDE_HUBS * WIDE_FAN + 4096) {
			// Extras 4096..8191: leaked chains, some into the live part.
			succ[k] = x % 2 ? (long)(k + 1 < WIDE_LEAVES ? k + 1 : k) : (long)((x >> 20) % WIDE_LEAVES);
		}
		if (succ[k] >= 0)
			heap[(wide_leaf(k) - HEAP_BASE) / 8] = wide_leaf((size_t)succ[k]);
	}
	// Expected: BFS from the hubs; referenced = some other block points at it.
	size_t n = WIDE_HUBS + WIDE_LEAVES;
	bool *reach = calloc(n, 1), *refd = calloc(n, 1);
	size_t *queue = malloc(n * sizeof(*queue)), head = 0, tail = 0;
	assert_true(reach && refd && queue);
	for (size_t h = 0; h < WIDE_HUBS; h++) {
		reach[h] = true;
		queue[tail++] = h;
		for (size_t j = 0; j < WIDE_FAN; j++)
			refd[WIDE_HUBS + h * WIDE_FAN + j] = true;
	}
	for (size_t k = 0; k < WIDE_LEAVES; k++)
		if (succ[k] >= 0 && (size_t)succ[k] != k)
			refd[WIDE_HUBS + succ[k]] = true;
	while (head < tail) {
		size_t v = queue[head++];
		if (v < WIDE_HUBS) {
			for (size_t j = 0; j < WIDE_FAN; j++)
				if (!reach[WIDE_HUBS + v * WIDE_FAN + j])
					reach[WIDE_HUBS + v * WIDE_FAN + j] = true, queue[tail++] = WIDE_HUBS + v * WIDE_FAN + j;
		} else if (succ[v - WIDE_HUBS] >= 0 && !reach[WIDE_HUBS + succ[v - WIDE_HUBS]]) {
			reach[WIDE_HUBS + succ[v - WIDE_HUBS]] = true;
			queue[tail++] = WIDE_HUBS + succ[v - WIDE_HUBS];
		}
	}
	uint64_t leaked = 0, unref = 0;
	for (size_t i = 0; i < n; i++) {
		leaked += !reach[i];
		unref += !reach[i] && !refd[i];
	}
	assert_true(leaked > 1000 && unref > 100 && leaked < n);
	struct hs_segment segs[2] = {
		{ .start = HEAP_BASE, .end = HEAP_BASE + heap_bytes, .filesz = heap_bytes,
		  .data = (const uint8_t *)heap, .flags = HS_SEG_R | HS_SEG_W },
		{ .start = GLOBALS_BASE, .end = GLOBALS_BASE + sizeof(globals), .filesz = sizeof(globals),
		  .data = (const uint8_t *)globals, .flags = HS_SEG_R | HS_SEG_W },
	};
	// One thread; two; two with small frontiers (HEAPSCOPE_TEST_SMALL_SPLITS),
	// so that levels go from the queue to a bitmap and back.
	for (int run = 0; run < 3; run++) {
		int jobs = run ? 2 : 1;
		if (run == 2)
			setenv("HEAPSCOPE_TEST_SMALL_SPLITS", "1", 1);
		struct hs_session *s = calloc(1, sizeof(*s));
		assert_non_null(s);
		assert_null(hs_target_open_buffers(segs, 2, &s->target));
		hs_diags_init(&s->diags);
		hs_heap_init(&s->heap);
		s->jobs = jobs;
		for (size_t h = 0; h < WIDE_HUBS; h++)
			assert_null(hs_heap_add(&s->heap, HEAP_BASE + h * WIDE_HUB, WIDE_HUB, HS_WHERE_USED, 0));
		for (size_t k = 0; k < WIDE_LEAVES; k++)
			assert_null(hs_heap_add(&s->heap, wide_leaf(k), WIDE_LEAF, HS_WHERE_USED, 0));
		assert_null(hs_heap_finish(&s->heap, NULL));
		s->heap_done = true;
		assert_null(HS_VEC_GROW(s->desc, s->capdesc, 1));
		memset(s->desc, 0, sizeof(*s->desc));
		s->ndesc = 1;
		s->desc[0].allocator = "test";
		struct hs_region r = { HEAP_BASE, HEAP_BASE + heap_bytes, HS_REGION_HEAP, 0 };
		assert_null(hs_alloc_desc_add_region(&s->desc[0], &r));
		assert_null(hs_session_need_analysis(s));
		const struct hs_analysis *a = s->analysis;
		assert_int_equal(a->n, n);
		for (size_t i = 0; i < n; i++) {
			if (hs_node_leaked(a, i) != !reach[i] || hs_node_unreferenced(a, i) != (!reach[i] && !refd[i]))
				fail_msg("jobs %d, block %zu: leaked %d unreferenced %d, expected %d %d", jobs, i,
					 hs_node_leaked(a, i), hs_node_unreferenced(a, i), !reach[i], !reach[i] && !refd[i]);
		}
		assert_int_equal(a->leaked_count, leaked);
		assert_int_equal(a->unref_count, unref);
		hs_session_destroy(s);
		unsetenv("HEAPSCOPE_TEST_SMALL_SPLITS");
	}
	free(reach);
	free(refd);
	free(queue);
	free(succ);
	free(heap);
}

/* hs_next_heap_word against a word-by-word search: every start and end of
 * a run of up to 11 words, the heap addresses at each position, and the
 * range's edges (lo is in, hi is not; below lo wraps around). */
static void test_next_heap_word(void **state)
{
	(void)state;
	const uint64_t lo = HEAP_BASE, hi = HEAP_BASE + 0x1000;
	const uint64_t near[] = { lo - 1, lo, lo + 8, hi - 1, hi, 0, UINT64_MAX, 3 };
	uint64_t x = 99;
	for (int round = 0; round < 2000; round++) {
		uint64_t words[11];
		for (size_t k = 0; k < 11; k++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			// Mostly not heap addresses, as in a real heap.
			words[k] = x % 5 ? near[(x >> 33) % 8] : x >> 40;
			if (x % 5 == 1)
				words[k] = 12345;
		}
		for (size_t k = 0; k <= 11; k++)
			for (size_t n = k; n <= 11; n++) {
				size_t want = k;
				while (want < n && !(words[want] >= lo && words[want] < hi))
					want++;
				size_t got = hs_next_heap_word((const uint8_t *)words, k, n, lo, hi);
				if (got != want)
					fail_msg("round %d, words [%zu, %zu): %zu, expected %zu", round, k, n, got, want);
			}
	}
}

/* The address map against a search of the blocks: spans of starts aligned to
 * 16 and to 8 bytes (start bits), one of a few blocks far apart (granules),
 * one of blocks larger than a group of slots, empty and free blocks; every
 * start, interior, end and gap, and random values; exact or not, the map
 * built on one thread or two. */
static ptrdiff_t brute_lookup(const struct hs_heap *h, uint64_t v, bool exact)
{
	// (Blocks never overlap: only the last one starting at or before v
	// can hold it.)
	size_t lo = 0, hi = h->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (h->blocks[mid].address <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -1;
	const struct hs_block *b = &h->blocks[lo - 1];
	if (!hs_where_is_used(hs_block_where(b)))
		return -1;
	if (exact ? v == b->address : v - b->address < hs_block_size(b))
		return (ptrdiff_t)(lo - 1);
	return -1;
}

static void test_addrmap_lookups(void **state)
{
	(void)state;
	struct hs_heap h;
	hs_heap_init(&h);
	uint64_t x = 7;
#define RND() (x = x * 6364136223846793005ull + 1442695040888963407ull, x >> 33)
	struct { uint64_t base, align, maxsize; size_t n; } shape[] = {
		{ UINT64_C(0x10000000), 16, 200, 5000 },
		{ UINT64_C(0x30000000), 8, 100, 3000 },
		{ UINT64_C(0x50000000), 16, 64, 3 },      // far apart: granules
		{ UINT64_C(0x70000000), 16, 70000, 200 },  // larger than a group
	};
	for (size_t k = 0; k < 4; k++) {
		uint64_t a = shape[k].base;
		for (size_t i = 0; i < shape[k].n; i++) {
			uint64_t size = RND() % shape[k].maxsize;
			if (RND() % 7 == 0)
				size = 0;
			unsigned where = RND() % 5 ? HS_WHERE_USED : WHERE("tcache");
			assert_null(hs_heap_add(&h, a, size, where, 0));
			a += (size ? size : 1) + (k == 2 ? 300000 : 0) + RND() % 3 * shape[k].align;
			a = (a + shape[k].align - 1) / shape[k].align * shape[k].align;
		}
	}
	assert_null(hs_heap_finish(&h, NULL));
	uint64_t *v = malloc((h.n * 8 + 2) * sizeof(*v));
	size_t nv = 0;
	assert_non_null(v);
	for (size_t i = 0; i < h.n; i++) {
		uint64_t a = h.blocks[i].address, size = hs_block_size(&h.blocks[i]);
		uint64_t near[] = { a, a + 1, a + 8, a + size / 2, a + size - 1, a + size, a - 1,
				    a + RND() % 100000 };
		for (size_t q = 0; q < 8; q++)
			v[nv++] = near[q];
	}
	v[nv++] = 0;
	v[nv++] = UINT64_MAX;
	for (int round = 0; round < 4; round++) {
		bool exact = round & 1;
		struct hs_addrmap m;
		assert_null(hs_addrmap_build(&m, &h, NULL, exact, round & 2 ? 2 : 1));
		bool groups = false, granules = false;
		for (size_t k = 0; k < m.nspans; k++) {
			groups |= m.spans[k].first_group != SIZE_MAX;
			granules |= m.spans[k].first_group == SIZE_MAX;
		}
		assert_true(groups && granules);
		for (size_t at = 0; at < nv; at += HS_LOOKUP_BATCH) {
			size_t k = nv - at < HS_LOOKUP_BATCH ? nv - at : HS_LOOKUP_BATCH;
			int64_t got[HS_LOOKUP_BATCH];
			hs_addrmap_lookup_many(&m, v + at, got, k);
			for (size_t q = 0; q < k; q++) {
				ptrdiff_t want = brute_lookup(&h, v[at + q], exact);
				ptrdiff_t one = hs_addrmap_lookup(&m, v[at + q]);
				if (got[q] != want || one != want)
					fail_msg("0x%" PRIx64 " (exact %d, round %d): %lld and %td, expected %td",
						 v[at + q], exact, round, (long long)got[q], one, want);
			}
		}
		hs_addrmap_deinit(&m);
	}
#undef RND
	free(v);
	hs_heap_deinit(&h);
}

/* Heaps of 1 to 9 spans (blocks more than 1 MiB apart start a new one): the
 * span of a value is found by a search whose steps depend on their number
 * alone (hs_addr_span_of), odd numbers and even; every start, end and gap. */
static void test_addrmap_many_spans(void **state)
{
	(void)state;
	for (size_t nspans = 1; nspans <= 9; nspans++) {
		struct hs_heap h;
		hs_heap_init(&h);
		for (size_t k = 0; k < nspans; k++)
			for (uint64_t i = 0, a = UINT64_C(0x10000000) + k * UINT64_C(0x400000); i < 5; i++, a += 64)
				assert_null(hs_heap_add(&h, a, 48, i == 3 ? WHERE("tcache") : HS_WHERE_USED, 0));
		assert_null(hs_heap_finish(&h, NULL));
		for (int exact = 0; exact < 2; exact++) {
			struct hs_addrmap m;
			assert_null(hs_addrmap_build(&m, &h, NULL, exact, 1));
			assert_int_equal(m.nspans, nspans);
			for (size_t i = 0; i < h.n; i++) {
				uint64_t a = h.blocks[i].address;
				const uint64_t v[] = { a - 1, a, a + 8, a + 47, a + 48, a + 63, a + 0x200000 };
				for (size_t q = 0; q < 7; q++) {
					int64_t got;
					hs_addrmap_lookup_many(&m, &v[q], &got, 1);
					ptrdiff_t want = brute_lookup(&h, v[q], exact);
					assert_int_equal(got, want);
					assert_int_equal(hs_addrmap_lookup(&m, v[q]), want);
				}
			}
			hs_addrmap_deinit(&m);
		}
		hs_heap_deinit(&h);
	}
}

/* A heap whose every span has start bits has no granules (pages NULL): the
 * build passes over them (fuzz_core: NULL plus 0, UBSan), and lookups are
 * answered from the bits alone. */
static void test_addrmap_without_granules(void **state)
{
	(void)state;
	struct hs_heap h;
	hs_heap_init(&h);
	for (uint64_t i = 0, a = UINT64_C(0x10000000); i < 100; i++, a += 48)
		assert_null(hs_heap_add(&h, a, i % 3 ? 32 : 0, i % 5 ? HS_WHERE_USED : WHERE("tcache"), 0));
	assert_null(hs_heap_finish(&h, NULL));
	struct hs_addrmap m;
	assert_null(hs_addrmap_build(&m, &h, NULL, false, 2));
	assert_null(m.pages);
	for (uint64_t v = UINT64_C(0x10000000) - 64; v < UINT64_C(0x10000000) + 100 * 48 + 64; v++)
		assert_int_equal(hs_addrmap_lookup(&m, v), brute_lookup(&h, v, false));
	hs_addrmap_deinit(&m);
	hs_heap_deinit(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefault),
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_random_graphs),
		cmocka_unit_test(test_long_chain),
		cmocka_unit_test(test_dominators_long_climb),
		cmocka_unit_test(test_wide_graph),
		cmocka_unit_test(test_next_heap_word),
		cmocka_unit_test(test_addrmap_lookups),
		cmocka_unit_test(test_addrmap_without_granules),
		cmocka_unit_test(test_addrmap_many_spans),
	};
	return cmocka_run_group_tests_name("graph", tests, NULL, NULL);
}
