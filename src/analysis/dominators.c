/* dominators.c - see dominators.h. */
#include <stdlib.h>
#include <string.h>
#include "dominators.h"
#include "graph.h"

#define NONE HS_DOM_NONE

struct lt {
	const struct hs_analysis *a;
	size_t n;                /* blocks; the virtual root is n */
	uint32_t *dfnum;         /* 1-based; 0 unvisited (root is 1) */
	uint32_t *vertex;        /* dfnum - 1 -> node */
	uint32_t *parent, *semi, *ancestor, *best, *samedom, *idom;
	uint32_t *bucket, *next; /* bucket lists */
	uint8_t *from_root;      /* the virtual root is a predecessor */
	size_t count;
};

static void visit(struct lt *t, uint32_t start, uint32_t parent, uint32_t *stack, uint32_t *pos)
{
	const struct hs_analysis *a = t->a;
	size_t sp = 0;
	t->dfnum[start] = (uint32_t)++t->count;
	t->vertex[t->count - 1] = start;
	t->parent[start] = parent;
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
		t->dfnum[w] = (uint32_t)++t->count;
		t->vertex[t->count - 1] = w;
		t->parent[w] = v;
		stack[sp] = w;
		pos[sp++] = a->fwd_off[w];
	}
}

// Path compression without recursion: climb to the top, then walk back down.
static uint32_t eval(struct lt *t, uint32_t v, uint32_t *path)
{
	if (t->ancestor[v] == NONE)
		return v;
	size_t k = 0;
	uint32_t u = v;
	while (t->ancestor[t->ancestor[u]] != NONE) {
		path[k++] = u;
		u = t->ancestor[u];
	}
	while (k) {
		uint32_t x = path[--k];
		uint32_t anc = t->ancestor[x];
		if (t->dfnum[t->semi[t->best[anc]]] < t->dfnum[t->semi[t->best[x]]])
			t->best[x] = t->best[anc];
		t->ancestor[x] = t->ancestor[anc];
	}
	return t->best[v];
}

static void semidominators(struct lt *t, uint32_t *path)
{
	const struct hs_analysis *a = t->a;
	uint32_t root = (uint32_t)t->n;
	for (size_t i = t->count - 1; i >= 1; i--) {
		uint32_t w = t->vertex[i], p = t->parent[w], s = p;
		for (uint32_t e = a->rev_off[w]; e < a->rev_off[w + 1]; e++) {
			uint32_t v = a->rev[e];
			if (!t->dfnum[v])
				continue;
			uint32_t s2 = t->dfnum[v] <= t->dfnum[w] ? v : t->semi[eval(t, v, path)];
			if (t->dfnum[s2] < t->dfnum[s])
				s = s2;
		}
		if (t->from_root[w])
			s = root;   // the root has the smallest dfnum of all
		t->semi[w] = s;
		t->next[w] = t->bucket[s];
		t->bucket[s] = w;
		t->ancestor[w] = p;
		t->best[w] = w;
		for (uint32_t v = t->bucket[p]; v != NONE; v = t->next[v]) {
			uint32_t y = eval(t, v, path);
			if (t->semi[y] == t->semi[v])
				t->idom[v] = p;
			else
				t->samedom[v] = y;
		}
		t->bucket[p] = NONE;
	}
	for (size_t i = 1; i < t->count; i++) {
		uint32_t w = t->vertex[i];
		if (t->samedom[w] != NONE)
			t->idom[w] = t->idom[t->samedom[w]];
	}
}

struct hs_error *hs_dominators_create(const struct hs_analysis *a, const struct hs_heap *heap,
				      struct hs_dominators **ret)
{
	*ret = NULL;
	size_t n = a->n, m = n + 1;
	struct hs_dominators *d = calloc(1, sizeof(*d));
	struct lt t = { .a = a, .n = n };
	uint32_t **arrays[] = { &t.dfnum, &t.vertex, &t.parent, &t.semi, &t.ancestor, &t.best,
				&t.samedom, &t.idom, &t.bucket, &t.next };
	uint32_t *stack = malloc(m * sizeof(uint32_t)), *pos = malloc(m * sizeof(uint32_t));
	uint64_t *retained = calloc(m, sizeof(uint64_t));
	uint32_t *rcount = calloc(m, sizeof(uint32_t));
	t.from_root = calloc(m, 1);
	bool ok = d && stack && pos && retained && rcount && t.from_root;
	for (size_t k = 0; k < sizeof(arrays) / sizeof(arrays[0]); k++)
		ok &= (*arrays[k] = malloc(m * sizeof(uint32_t))) != NULL;
	if (!ok)
		goto nomem;
	memset(t.dfnum, 0, m * sizeof(uint32_t));
	for (size_t i = 0; i < m; i++)
		t.ancestor[i] = t.samedom[i] = t.bucket[i] = t.idom[i] = NONE;
	uint32_t root = (uint32_t)n;
	t.dfnum[root] = 1;
	t.vertex[0] = root;
	t.count = 1;
	t.semi[root] = root;
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
				visit(&t, (uint32_t)i, root, stack, pos);
		}
	}
	semidominators(&t, stack);
	// Retained sizes: children before parents (reverse DFS order).
	for (size_t i = t.count - 1; i >= 1; i--) {
		uint32_t w = t.vertex[i];
		retained[w] += hs_block_size(&heap->blocks[w]);
		rcount[w]++;
		if (t.idom[w] != NONE) {
			retained[t.idom[w]] += retained[w];
			rcount[t.idom[w]] += rcount[w];
		}
	}
	d->n = n;
	d->idom = t.idom;
	d->retained = retained;
	d->retained_count = rcount;
	*ret = d;
	d = NULL;
	t.idom = NULL;
	retained = NULL;
	rcount = NULL;
nomem:
	for (size_t k = 0; k < sizeof(arrays) / sizeof(arrays[0]); k++)
		free(*arrays[k]);
	free(stack);
	free(pos);
	free(retained);
	free(rcount);
	free(t.from_root);
	free(d);
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
