/* dominators.c - see dominators.h. */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "dominators.h"
#include "graph.h"
#include "testhook.h"
#include "vec.h"

#define NONE HS_DOM_NONE
#define AHEAD 8                 /* vertices ahead whose predecessors are asked for */

/* Semi-NCA (Georgiadis, Tarjan and Werneck), numbered in depth-first order.
 * The semidominators as Lengauer-Tarjan finds them, in a forest linked in
 * reverse order (ancestor, best); then, in depth-first order, each vertex's
 * immediate dominator: the nearest common ancestor, in the dominator tree
 * so far, of its parent and its semidominator, found by walking up from
 * the parent.  Everything is indexed by depth-first number and holds
 * numbers, so a semidominator compares as it is, and a vertex's parent,
 * ancestors and dominators lie near it in memory; only the depth-first
 * search itself and the predecessors are by block.
 *
 * The walk up is a step or two as a rule, but a long dominator chain that
 * many vertices climb makes it quadratic.  Past a budget of steps the
 * dominators are taken again from Lengauer-Tarjan's buckets (lt_buckets),
 * which evaluate each vertex once more on the forest as it is linked:
 * near-linear always, and about a third slower on a heap of 10 M. */
struct vx {                     /* what eval() reads together */
	uint32_t ancestor, parent;
	union {
		struct {
			uint32_t best, semi;
		};
		uint64_t retained;      /* the last step's, by number */
	};
};

struct lt {
	struct hs_analysis *a;
	size_t n;                /* blocks; the virtual root is n, numbered 0 */
	uint32_t *dfnum;         /* per block: its number + 1; 0 unvisited */
	uint32_t *vertex;        /* number -> block (n: the root) */
	struct vx *v;            /* per number */
	uint32_t *idom, *samedom, *bucket, *next;   /* per number: lt_buckets' */
	uint8_t *from_root;      /* per block: the virtual root is a predecessor */
	uint64_t *seen;          /* per block, a bit: numbered (the search's test at every
				    edge, in the cache where dfnum is not) */
	size_t count;
	size_t reached;          /* numbers below it: the root and what the roots reach */
};

/* An edge from an allocation no root reaches (leaked, or Go's garbage) to
 * one a root reaches is no path from the root: it is left out, and what a
 * root reaches is dominated as if the unreachable were not there (as the
 * program sees it: nothing it can reach goes through them).  Else a leaked
 * block, or an old map bucket array awaiting GC, that points into live data
 * would make that data a child of the virtual root, owned by no root.  The
 * search numbers what the roots reach first, so such an edge is one from a
 * number at or above reached to one below it. */
static inline bool cut_edge(const struct lt *t, size_t i, uint32_t d)
{
	return i < t->reached && d >= t->reached;
}

// Block b is numbered next, its parent numbered parent: a tree of its own
// in the forest.
static inline void number(struct lt *t, uint32_t b, uint32_t parent)
{
	uint32_t i = (uint32_t)t->count++;
	t->vertex[i] = b;
	t->v[i] = (struct vx){ .ancestor = NONE, .parent = parent, .best = i, .semi = i };
	t->dfnum[b] = i + 1;
	t->seen[b / 64] |= UINT64_C(1) << (b % 64);
}

// Depth first from start, numbering what it reaches.
static void visit(struct lt *t, uint32_t start, uint32_t parent, uint32_t *stack, uint32_t *pos)
{
	const struct hs_analysis *a = t->a;
	size_t sp = 0;
	number(t, start, parent);
	stack[sp] = start;
	pos[sp++] = a->fwd_off[start];
	while (sp) {
		uint32_t v = stack[sp - 1];
		if (pos[sp - 1] == a->fwd_off[v + 1]) {
			sp--;
			continue;
		}
		uint32_t w = a->fwd[pos[sp - 1]++];
		if (t->seen[w / 64] >> (w % 64) & 1)
			continue;
		number(t, w, t->dfnum[v] - 1);
		// Its edges and their targets' numbers are read next.
		__builtin_prefetch(&a->fwd_off[w]);
		stack[sp] = w;
		pos[sp++] = a->fwd_off[w];
	}
}

// Path compression without recursion: climb to the top, then walk back down.
static uint32_t eval(struct vx *vx, uint32_t v, uint32_t *path)
{
	if (vx[v].ancestor == NONE)
		return v;
	size_t k = 0;
	uint32_t u = v;
	while (vx[vx[u].ancestor].ancestor != NONE) {
		path[k++] = u;
		u = vx[u].ancestor;
	}
	while (k) {
		struct vx *x = &vx[path[--k]];
		const struct vx *anc = &vx[x->ancestor];
		if (vx[anc->best].semi < vx[x->best].semi)
			x->best = anc->best;
		x->ancestor = anc->ancestor;
	}
	return vx[v].best;
}

// The predecessors of the vertex numbered i are read some vertices before
// they are needed: the block's reverse edges, then their numbers.  Never
// the root's (number 0: it is no block), nor a lone predecessor's (the
// parent: one_pred).
static void prefetch_preds(const struct lt *t, size_t i)
{
	const struct hs_analysis *a = t->a;
	if (i > 2 * AHEAD) {
		uint32_t w = t->vertex[i - 2 * AHEAD];
		__builtin_prefetch(&a->rev_off[w]);
		__builtin_prefetch(&t->from_root[w]);
	}
	if (i > AHEAD) {
		uint32_t w = t->vertex[i - AHEAD];
		uint32_t e = a->rev_off[w], end = a->rev_off[w + 1];
		if (end - e > 1) {
			__builtin_prefetch(&a->rev[e]);
			for (uint32_t k = 0; k < 4 && e + k < end; k++)
				__builtin_prefetch(&t->dfnum[a->rev[e + k]]);
		}
	}
}

/* A block that one edge leads to (most of a heap's: a list's nodes, a
 * table's entries) has its parent in the search for its only predecessor,
 * numbered before it: its semidominator is its parent, read neither from
 * the reverse edges nor from the numbers.  (A root's child is not one: the
 * root is a predecessor too.) */
static bool one_pred(const struct hs_analysis *a, uint32_t w)
{
	return a->rev_off[w + 1] - a->rev_off[w] == 1;
}

/* The semidominators' reads of the predecessors, on the other thread.  A
 * predecessor numbered before a vertex gives its number as it is (the
 * least of them and the parent's: pre); one numbered after it needs eval()
 * on the forest the main thread builds meanwhile (a late one).  The helper
 * goes ahead through the vertices in the main thread's order (numbers
 * downwards) and hands them over through a ring: the reverse edges and
 * their numbers, the reads that miss the cache, are the helper's, and the
 * main thread only evaluates and links. */
#define RING 4096               /* vertices */
#define LATE_RING 16384         /* late predecessors */
#define LATE_ALL UINT32_MAX     /* more than the ring holds: the main thread reads them */
#define RING_BATCH 64           /* vertices between two publications of a counter */

struct ring {
	const struct lt *t;
	size_t cap, late_cap;           /* RING, LATE_RING (tests: a few, to wrap often) */
	struct { uint32_t pre, nlate; } slot[RING];
	uint32_t late[LATE_RING];
	/* atomics, each side's in a line of its own */
	_Alignas(64) size_t made;               /* vertices handed over (late ones written first) */
	_Alignas(64) size_t taken, late_taken;  /* vertices and late predecessors done with */
};

static void ring_wait(unsigned *spins)
{
	if (++*spins >= 256) {
		sched_yield();  // the other thread may have no processor of its own
		return;
	}
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static void *ring_fill(void *arg)
{
	struct ring *r = arg;
	const struct lt *t = r->t;
	const struct hs_analysis *a = t->a;
	size_t made = 0, late_made = 0, taken = 0, late_taken = 0;
	for (size_t i = t->count - 1; i >= 1; i--, made++) {
		prefetch_preds(t, i);
		uint32_t w = t->vertex[i], e0 = a->rev_off[w], e1 = a->rev_off[w + 1];
		uint32_t pre = t->v[i].parent, nlate = 0;
		bool lone = e1 - e0 == 1;       // one_pred: the parent, pre as it is
		// (A root's child needs no predecessor: the root is the least; nor
		// does a block one edge leads to.)
		size_t need = t->from_root[w] || lone ? 0 : e1 - e0;
		bool all = need > r->late_cap;
		if (all)
			need = 0;
		// Room for the vertex and for all its predecessors.
		for (unsigned spins = 0; made - taken >= r->cap || late_made + need - late_taken > r->late_cap;) {
			__atomic_store_n(&r->made, made, __ATOMIC_RELEASE);
			ring_wait(&spins);
			taken = __atomic_load_n(&r->taken, __ATOMIC_ACQUIRE);
			late_taken = __atomic_load_n(&r->late_taken, __ATOMIC_ACQUIRE);
		}
		if (t->from_root[w]) {
			pre = 0;        // the root has the smallest number of all
		} else if (lone) {
			// pre as it is
		} else if (all) {
			nlate = LATE_ALL;
		} else {
			for (uint32_t e = e0; e < e1; e++) {
				uint32_t d = t->dfnum[a->rev[e]];
				if (!d-- || cut_edge(t, i, d))
					continue;
				if (d <= i)
					pre = d < pre ? d : pre;
				else
					r->late[(late_made + nlate++) % r->late_cap] = d;
			}
			late_made += nlate;
		}
		r->slot[made % r->cap].pre = pre;
		r->slot[made % r->cap].nlate = nlate;
		if (made % RING_BATCH == RING_BATCH - 1)
			__atomic_store_n(&r->made, made + 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&r->made, made, __ATOMIC_RELEASE);
	return NULL;
}

// The least of s and what each of w's predecessors gives: its number when
// it is numbered before i, its eval()'s semidominator when after.
static uint32_t late_preds(struct lt *t, uint32_t w, size_t i, uint32_t s, uint32_t *path)
{
	const struct hs_analysis *a = t->a;
	if (one_pred(a, w))
		return s;
	for (uint32_t e = a->rev_off[w]; e < a->rev_off[w + 1]; e++) {
		uint32_t d = t->dfnum[a->rev[e]];
		if (!d-- || cut_edge(t, i, d))
			continue;
		uint32_t s2 = d <= i ? d : t->v[eval(t->v, d, path)].semi;
		if (s2 < s)
			s = s2;
	}
	return s;
}

// Vertex i's semidominator is s: linked to its parent.  With buckets
// (lt_buckets), also into its bucket, and the parent's bucket emptied
// (Lengauer-Tarjan's step 3, deferred).
static void link_vertex(struct lt *t, size_t i, uint32_t s, uint32_t *path)
{
	struct vx *vx = t->v;
	uint32_t p = vx[i].parent;
	vx[i].semi = s;
	vx[i].ancestor = p;
	if (!t->bucket)
		return;
	t->next[i] = t->bucket[s];
	t->bucket[s] = (uint32_t)i;
	for (uint32_t u = t->bucket[p]; u != NONE; u = t->next[u]) {
		uint32_t y = eval(vx, u, path);
		if (vx[y].semi == vx[u].semi)
			t->idom[u] = p;
		else
			t->samedom[u] = y;
	}
	t->bucket[p] = NONE;
}

// With the helper thread's ring (r), or alone (r NULL).
static void semidominators(struct lt *t, uint32_t *path, struct ring *r)
{
	size_t made = 0, late_at = 0;
	for (size_t i = t->count - 1, k = 0; i >= 1; i--, k++) {
		uint32_t w = t->vertex[i], s;
		if (!r) {
			prefetch_preds(t, i);
			s = t->from_root[w] ? 0 : late_preds(t, w, i, t->v[i].parent, path);
		} else {
			for (unsigned spins = 0; k >= made;) {
				made = __atomic_load_n(&r->made, __ATOMIC_ACQUIRE);
				if (k < made)
					break;
				__atomic_store_n(&r->late_taken, late_at, __ATOMIC_RELEASE);
				__atomic_store_n(&r->taken, k, __ATOMIC_RELEASE);
				ring_wait(&spins);
			}
			uint32_t nlate = r->slot[k % r->cap].nlate;
			s = r->slot[k % r->cap].pre;
			if (nlate == LATE_ALL) {
				s = late_preds(t, w, i, s, path);
			} else {
				for (uint32_t j = 0; j < nlate; j++) {
					uint32_t s2 = t->v[eval(t->v, r->late[(late_at + j) % r->late_cap], path)].semi;
					if (s2 < s)
						s = s2;
				}
				late_at += nlate;
			}
			if (k % RING_BATCH == RING_BATCH - 1) {
				__atomic_store_n(&r->late_taken, late_at, __ATOMIC_RELEASE);
				__atomic_store_n(&r->taken, k + 1, __ATOMIC_RELEASE);
			}
		}
		link_vertex(t, i, s, path);
	}
	if (!t->bucket)
		return;
	for (size_t i = 1; i < t->count; i++)
		if (t->samedom[i] != NONE)
			t->idom[i] = t->idom[t->samedom[i]];
}

/* Each vertex's immediate dominator, in depth-first order, into its
 * ancestor (the forest is done with): the first of its parent's dominators
 * (the parent itself included) numbered no later than its semidominator.
 * Those are numbered before it, so theirs are known.  False past budget
 * steps up (parents and semidominators as they were). */
static bool nca(struct lt *t, uint64_t budget)
{
	struct vx *vx = t->v;
	uint64_t steps = 0;
	for (size_t i = 1; i < t->count; i++) {
		if (i + AHEAD < t->count)
			__builtin_prefetch(&vx[vx[i + AHEAD].parent]);
		uint32_t x = vx[i].parent, s = vx[i].semi;
		while (x > s) {
			if (++steps > budget)
				return false;
			x = vx[x].ancestor;
		}
		vx[i].ancestor = x;
	}
	return true;
}

/* The immediate dominators from Lengauer-Tarjan's buckets instead (nca()
 * gave up): the forest set up again and the semidominators found again,
 * one thread, each bucket evaluated as it is emptied; then each idom into
 * its vertex's ancestor, as nca() leaves them. */
static bool lt_buckets(struct lt *t, uint32_t *path)
{
	size_t c = t->count;
	uint32_t **arrays[] = { &t->idom, &t->samedom, &t->bucket, &t->next };
	for (size_t k = 0; k < sizeof(arrays) / sizeof(arrays[0]); k++)
		if (!(*arrays[k] = hs_array_new(c, sizeof(uint32_t))))
			return false;
	for (size_t i = 0; i < c; i++) {
		t->idom[i] = t->samedom[i] = t->bucket[i] = NONE;
		t->v[i].ancestor = NONE;
		t->v[i].best = t->v[i].semi = (uint32_t)i;
	}
	semidominators(t, path, NULL);
	for (size_t i = 1; i < c; i++)
		t->v[i].ancestor = t->idom[i];
	return true;
}

static void lt_free(struct lt *t)
{
	free(t->dfnum);
	free(t->vertex);
	free(t->v);
	free(t->idom);
	free(t->samedom);
	free(t->bucket);
	free(t->next);
	free(t->from_root);
	free(t->seen);
}

// hs_populate, a huge page's worth at a time until *stop.
#define POPULATE_STEP ((size_t)2 << 20)
static void populate(void *p, size_t bytes, const bool *stop)
{
	for (size_t at = 0; at < bytes && !__atomic_load_n(stop, __ATOMIC_RELAXED); at += POPULATE_STEP)
		if (!hs_populate((char *)p + at, bytes - at < POPULATE_STEP ? bytes - at : POPULATE_STEP))
			break;
}

/* What the depth-first search does not need, done beside it: the reverse
 * edges built, and the pages of what the search writes faulted in (a page
 * new to the process costs more than what is done in it; faulting one in
 * never changes what another thread wrote there): on the other thread
 * their cost is off the search's path.  Then, until the search is done
 * (searched), the pages of the last step's results. */
struct prepare {
	struct lt *t;
	size_t m;
	uint32_t *pos;
	uint64_t *retained;
	int jobs;
	bool searched;
	struct hs_error *err;
};

static void *prepare(void *arg)
{
	struct prepare *pr = arg;
	const bool never = false;
	populate(pr->t->v, pr->m * sizeof(*pr->t->v), &never);
	populate(pr->t->vertex, pr->m * sizeof(uint32_t), &never);
	pr->err = hs_analysis_reverse_jobs(pr->t->a, pr->jobs);
	populate(pr->retained, pr->m * sizeof(uint64_t), &pr->searched);
	populate(pr->pos, pr->m * sizeof(uint32_t), &pr->searched);
	return NULL;
}

/* The last step, by number, in parts: each vertex's own bytes and count
 * (SUM_OWN: its block's size, read at random), then (on one thread, in
 * reverse order: every vertex is whole when it is added to its idom) the
 * sums up the dominator tree, then (SUM_PUT) each one's results written by
 * block, at random.  Only the sums depend on one another; the reads and
 * writes by block, the misses, are shared out. */
enum { SUM_OWN, SUM_PUT };
struct sum_part {
	struct lt *t;
	const struct hs_heap *heap;
	uint64_t *retained;
	uint32_t *count;
	size_t first, last;         /* numbers */
	int step;
};

static void *sum_run(void *arg)
{
	const struct sum_part *sp = arg;
	struct lt *t = sp->t;
	struct vx *vx = t->v;
	const struct hs_block *blocks = sp->heap->blocks;
	for (size_t i = sp->first; i < sp->last; i++) {
		uint32_t b = t->vertex[i];
		if (sp->step == SUM_OWN) {
			if (i + AHEAD < sp->last)
				__builtin_prefetch(&blocks[t->vertex[i + AHEAD]]);
			// (Number 0 is the virtual root: no block.)
			vx[i].retained = i ? hs_block_size(&blocks[b]) : 0;
			vx[i].parent = i ? 1 : 0;
			continue;
		}
		if (i + AHEAD < sp->last) {
			uint32_t ahead = t->vertex[i + AHEAD];
			__builtin_prefetch(&sp->retained[ahead], 1);
			__builtin_prefetch(&sp->count[ahead], 1);
			__builtin_prefetch(&t->dfnum[ahead], 1);
		}
		uint32_t up = vx[i].ancestor;
		sp->retained[b] = vx[i].retained;
		sp->count[b] = vx[i].parent;
		t->dfnum[b] = up == NONE ? NONE : t->vertex[up];
	}
	return NULL;
}

static void sum_step(struct lt *t, const struct hs_heap *heap, uint64_t *retained, uint32_t *count, int step)
{
	struct sum_part parts[2];
	// (Tests cut it small: a few vertices are two parts.)
	size_t np = t->a->jobs > 1 && t->count >= (hs_test_small_splits() ? 2 : 65536) ? 2 : 1;
	for (size_t k = 0; k < np; k++)
		parts[k] = (struct sum_part){ .t = t, .heap = heap, .retained = retained, .count = count,
					      .first = t->count * k / np, .last = t->count * (k + 1) / np,
					      .step = step };
	hs_run_parts(np, sum_run, parts, sizeof(parts[0]));
}

struct hs_error *hs_dominators_create(struct hs_analysis *a, const struct hs_heap *heap,
				      struct hs_dominators **ret)
{
	*ret = NULL;
	size_t n = a->n, m = n + 1;
	struct lt t = { .a = a, .n = n };
	// Every array is read at random: huge pages spare a TLB miss a read.
	// The last step's results go into the search's dfnum (the idoms) and pos
	// (the counts), and into retained.
	uint32_t *stack = hs_array_new(m, sizeof(uint32_t)), *pos = hs_array_new(m, sizeof(uint32_t));
	uint64_t *retained = hs_array_new(m, sizeof(uint64_t));
	struct hs_dominators *d = NULL;
	t.dfnum = hs_array_zeroed(m, sizeof(uint32_t));
	t.vertex = hs_array_new(m, sizeof(uint32_t));
	t.v = hs_array_new(m, sizeof(*t.v));
	t.from_root = calloc(m, 1);
	t.seen = calloc(m / 64 + 1, sizeof(uint64_t));
	bool ok = stack && pos && retained && t.dfnum && t.vertex && t.v && t.from_root && t.seen;
	if (!ok)
		goto out;
	// On one thread, the reverse edges' pages faulted in on as many as
	// there are first.
	struct prepare pr = { .t = &t, .m = m, .pos = pos, .retained = retained, .jobs = 1 };
	pthread_t helper;
	bool two = a->jobs > 1 && !hs_test_no_threads() && pthread_create(&helper, NULL, prepare, &pr) == 0;
	if (!two) {
		pr.jobs = a->jobs;
		prepare(&pr);
	}
	number(&t, (uint32_t)n, NONE);       // the root
	// The root's children: rooted allocations, leaked heads, then cycles.
	for (int phase = 0; phase < 3; phase++) {
		for (size_t i = 0; i < n; i++) {
			bool child = phase == 0 ? (a->flags[i] & HS_NODE_ROOTED) != 0 :
				     phase == 1 ? hs_node_unreferenced(a, i) :
				     (a->flags[i] & HS_NODE_USED) && !t.dfnum[i];
			if (!child)
				continue;
			t.from_root[i] = 1;
			if (!t.dfnum[i])
				visit(&t, (uint32_t)i, 0, stack, pos);
		}
		if (phase == 0)
			t.reached = t.count;
	}
	free(t.seen);
	t.seen = NULL;
	__atomic_store_n(&pr.searched, true, __ATOMIC_RELAXED);
	if (two)
		pthread_join(helper, NULL);
	if (pr.err) {
		ok = false;
		goto out;
	}
	// The predecessors read on the other thread, ahead.
	struct ring *r = a->jobs > 1 && !hs_test_no_threads() ? malloc(sizeof(*r)) : NULL;
	if (r) {
		memset(r, 0, sizeof(*r));
		r->t = &t;
		bool small = hs_test_small_splits();
		r->cap = small ? 8 : RING;
		r->late_cap = small ? 4 : LATE_RING;
		if (pthread_create(&helper, NULL, ring_fill, r) != 0) {
			free(r);
			r = NULL;
		}
	}
	semidominators(&t, stack, r);
	if (r) {
		pthread_join(helper, NULL);
		free(r);
	}
	// Walks up worth about as much as the rest of the work, at most.
	uint64_t budget = hs_test_dominator_buckets() ? 0 : 4 * (uint64_t)t.count + 65536;
	if (!nca(&t, budget) && !lt_buckets(&t, stack)) {
		ok = false;
		goto out;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		ok = false;
		goto out;
	}
	// A vertex's retained bytes and count are whole once every later
	// number (all it dominates) has added its own to its idom's: summed by
	// number in v (the forest and the parents are done with: the bytes in
	// retained, the count in parent), then written by block (sum_run).
	// Blocks never numbered (no used allocations) have none.
	struct vx *vx = t.v;
	for (size_t b = 0; b < m; b++) {
		if (!t.dfnum[b]) {
			t.dfnum[b] = NONE;
			pos[b] = 0;
			retained[b] = 0;
		}
	}
	sum_step(&t, heap, retained, pos, SUM_OWN);
	for (size_t i = t.count; i-- > 0;) {
		uint32_t up = vx[i].ancestor;
		if (up != NONE) {
			vx[up].retained += vx[i].retained;
			vx[up].parent += vx[i].parent;
		}
	}
	sum_step(&t, heap, retained, pos, SUM_PUT);
	d->idom = t.dfnum;
	t.dfnum = NULL;
	d->retained = retained;
	retained = NULL;
	d->retained_count = pos;
	pos = NULL;
	d->n = n;
	*ret = d;
	d = NULL;
out:
	lt_free(&t);
	free(stack);
	free(pos);
	free(retained);
	hs_dominators_destroy(d);
	return ok ? NULL : &hs_error_nomem;
}

void hs_dominators_destroy(struct hs_dominators *d)
{
	if (!d)
		return;
	free(d->idom);
	free(d->retained);
	free(d->retained_count);
	free(d);
}
