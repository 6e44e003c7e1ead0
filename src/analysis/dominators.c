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

/* Lengauer-Tarjan, numbered in depth-first order: the forest (ancestor,
 * best), the semidominators and the buckets are indexed by depth-first
 * number and hold depth-first numbers, so a semidominator compares as it is,
 * and a vertex's parent, ancestors and dominators lie near it in memory.
 * Only the depth-first search itself and the predecessors are by block. */
struct vx {                     /* what eval() reads together */
	uint32_t ancestor, best, semi, parent;
};

struct lt {
	struct hs_analysis *a;
	size_t n;                /* blocks; the virtual root is n, numbered 0 */
	uint32_t *dfnum;         /* per block: its number + 1; 0 unvisited */
	uint32_t *vertex;        /* number -> block (n: the root) */
	struct vx *v;            /* per number */
	uint32_t *idom, *samedom, *bucket, *next;   /* per number */
	uint8_t *from_root;      /* per block: the virtual root is a predecessor */
	size_t count;
};

// Depth first from start, numbering what it reaches: each number's block in
// vertex, its parent's number in next (the forest in v is set up meanwhile
// on the other thread: prepare).
static void visit(struct lt *t, uint32_t start, uint32_t parent, uint32_t *stack, uint32_t *pos)
{
	const struct hs_analysis *a = t->a;
	size_t sp = 0;
	t->next[t->count] = parent;
	t->vertex[t->count] = start;
	t->dfnum[start] = (uint32_t)++t->count;
	stack[sp] = start;
	pos[sp++] = a->fwd_off[start];
	while (sp) {
		uint32_t v = stack[sp - 1];
		if (pos[sp - 1] == a->fwd_off[v + 1]) {
			sp--;
			continue;
		}
		uint32_t w = a->fwd[pos[sp - 1]++];
		if (t->dfnum[w])
			continue;
		t->next[t->count] = t->dfnum[v] - 1;
		t->vertex[t->count] = w;
		t->dfnum[w] = (uint32_t)++t->count;
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
// the root's (number 0: it is no block).
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
		__builtin_prefetch(&a->rev[e]);
		for (uint32_t k = 0; k < 4 && e + k < end; k++)
			__builtin_prefetch(&t->dfnum[a->rev[e + k]]);
	}
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
		// (A root's child needs no predecessor: the root is the least.)
		size_t need = t->from_root[w] ? 0 : e1 - e0;
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
		} else if (all) {
			nlate = LATE_ALL;
		} else {
			for (uint32_t e = e0; e < e1; e++) {
				uint32_t d = t->dfnum[a->rev[e]];
				if (!d--)
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
	for (uint32_t e = a->rev_off[w]; e < a->rev_off[w + 1]; e++) {
		uint32_t d = t->dfnum[a->rev[e]];
		if (!d--)
			continue;
		uint32_t s2 = d <= i ? d : t->v[eval(t->v, d, path)].semi;
		if (s2 < s)
			s = s2;
	}
	return s;
}

// Vertex i's semidominator is s: into its bucket, linked to its parent, and
// the parent's bucket emptied (Lengauer-Tarjan's step 3, deferred).
static void link_vertex(struct lt *t, size_t i, uint32_t s, uint32_t *path)
{
	struct vx *vx = t->v;
	uint32_t p = vx[i].parent;
	vx[i].semi = s;
	t->next[i] = t->bucket[s];
	t->bucket[s] = (uint32_t)i;
	vx[i].ancestor = p;
	vx[i].best = (uint32_t)i;
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
	for (size_t i = 1; i < t->count; i++)
		if (t->samedom[i] != NONE)
			t->idom[i] = t->idom[t->samedom[i]];
}

static void lt_free(struct lt *t)
{
	free(t->dfnum);
	free(t->v);
	free(t->samedom);
	free(t->bucket);
	free(t->next);
	free(t->from_root);
	t->dfnum = t->samedom = t->bucket = t->next = NULL;
	t->v = NULL;
	t->from_root = NULL;
}

/* What the depth-first search does not need, done beside it: the forest
 * and the semidominators' arrays set up, and the reverse edges built.  Its
 * pages are new (a page new to the process costs more than what is done in
 * it): on the other thread their cost is off the search's path. */
struct prepare {
	struct lt *t;
	size_t m;
	int jobs;
	struct hs_error *err;
};

static void *prepare(void *arg)
{
	struct prepare *pr = arg;
	struct lt *t = pr->t;
	for (size_t i = 0; i < pr->m; i++) {
		t->samedom[i] = t->bucket[i] = t->idom[i] = NONE;
		t->v[i] = (struct vx){ .ancestor = NONE, .best = (uint32_t)i, .semi = (uint32_t)i, .parent = NONE };
	}
	pr->err = hs_analysis_reverse_jobs(t->a, pr->jobs);
	return NULL;
}

struct hs_error *hs_dominators_create(struct hs_analysis *a, const struct hs_heap *heap,
				      struct hs_dominators **ret)
{
	*ret = NULL;
	size_t n = a->n, m = n + 1;
	struct lt t = { .a = a, .n = n };
	uint32_t **arrays[] = { &t.vertex, &t.idom, &t.samedom, &t.bucket, &t.next };
	// Every array is read at random: huge pages spare a TLB miss a read.
	uint32_t *stack = hs_array_new(m, sizeof(uint32_t)), *pos = hs_array_new(m, sizeof(uint32_t));
	uint64_t *rn = NULL;
	struct hs_dominators *d = NULL;
	t.dfnum = hs_array_zeroed(m, sizeof(uint32_t));
	t.v = hs_array_new(m, sizeof(*t.v));
	t.from_root = calloc(m, 1);
	bool ok = stack && pos && t.dfnum && t.v && t.from_root;
	for (size_t k = 0; k < sizeof(arrays) / sizeof(arrays[0]); k++)
		ok &= (*arrays[k] = hs_array_new(m, sizeof(uint32_t))) != NULL;
	if (!ok)
		goto out;
	// On one thread, the reverse edges' pages faulted in on as many as
	// there are first.
	struct prepare pr = { .t = &t, .m = m, .jobs = 1 };
	pthread_t helper;
	bool two = a->jobs > 1 && !hs_test_no_threads() && pthread_create(&helper, NULL, prepare, &pr) == 0;
	if (!two) {
		pr.jobs = a->jobs;
		prepare(&pr);
	}
	uint32_t root = (uint32_t)n;
	t.dfnum[root] = 1;
	t.vertex[0] = root;
	t.count = 1;
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
	}
	if (two)
		pthread_join(helper, NULL);
	if (pr.err) {
		ok = false;
		goto out;
	}
	for (size_t i = 1; i < t.count; i++)
		t.v[i].parent = t.next[i];
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
	free(stack);
	stack = NULL;
	// The results go into arrays of the search that are done with: their
	// pages are there already, and a fresh page costs more than the work
	// done in it.  t.v (16 bytes a number) holds the retained bytes by
	// block in its first half, by number (rn) in its second; samedom
	// becomes the idoms by block, bucket the retained counts (by number in
	// next, which the search wrote whole).
	d = calloc(1, sizeof(*d));
	if (!d) {
		ok = false;
		goto out;
	}
	uint64_t *both = (uint64_t *)(void *)t.v;
	t.v = NULL;
	memset(both, 0, m * 2 * sizeof(uint64_t));
	d->retained = both;
	rn = both + m;
	d->retained_count = t.bucket;
	t.bucket = NULL;
	d->idom = t.samedom;
	t.samedom = NULL;
	memset(d->retained_count, 0, m * sizeof(uint32_t));
	uint32_t *cn = t.next;
	memset(cn, 0, m * sizeof(uint32_t));
	for (size_t i = t.count - 1; i >= 1; i--) {
		if (i > AHEAD)
			__builtin_prefetch(&heap->blocks[t.vertex[i - AHEAD]]);
		rn[i] += hs_block_size(&heap->blocks[t.vertex[i]]);
		cn[i]++;
		if (t.idom[i] != NONE) {
			rn[t.idom[i]] += rn[i];
			cn[t.idom[i]] += cn[i];
		}
	}
	for (size_t i = 0; i < m; i++)
		d->idom[i] = NONE;
	for (size_t i = 0; i < t.count; i++) {
		uint32_t b = t.vertex[i];
		d->idom[b] = t.idom[i] == NONE ? NONE : t.vertex[t.idom[i]];
		d->retained[b] = rn[i];
		d->retained_count[b] = cn[i];
	}
	rn = NULL;
	// rn's half given back (a shrink stays in place).
	uint64_t *g = realloc(both, m * sizeof(uint64_t));
	if (g)
		d->retained = g;
	d->n = n;
	*ret = d;
	d = NULL;
out:
	lt_free(&t);
	free(t.vertex);
	free(t.idom);
	free(stack);
	free(pos);
	free(rn);
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
