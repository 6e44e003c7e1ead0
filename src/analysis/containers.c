/* containers.c - see containers.h: the kinds table, discovery by shape,
 * naming by DWARF, anchors, retained bytes and the types containers give. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "containers.h"
#include "containers_dwarf.h"
#include "go_rt.h"
#include "graph.h"
#include "locals.h"
#include "rtti.h"
#include "symbols.h"
#include "target.h"
#include "testhook.h"
#include "types.h"
#include "vec.h"

/* The kinds, probed in this order.  Adding a kind: one file defining a
 * struct hs_container_kind, one line here (docs/containers.md). */
static const struct hs_container_kind *const kinds[] = {
	&hs_kind_hashtable,
	&hs_kind_rbtree,
	&hs_kind_ghash,
	&hs_kind_uthash,
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Findings' thresholds. */
#define DEGENERATE_MIN_CHAIN 16      /* a chain this long, and 8x the load factor */
#define SPARSE_MIN_BUCKETS 4096      /* a bucket array this large, 64x the elements */
#define ANCHOR_MAX_HOPS 4

void hs_containers_destroy(struct hs_containers *cs)
{
	if (!cs)
		return;
	for (size_t i = 0; i < cs->n; i++) {
		struct hs_container *c = &cs->v[i];
		free(c->kind_name);
		free(c->anchor);
		free(c->key_type);
		free(c->value_type);
		free(c->value_pointee);
	}
	free(cs->v);
	free(cs->at);
	free(cs->owner);
	free(cs->role);
	free(cs);
}

/* What recognisers call. */

ptrdiff_t hs_cwalk_block(struct hs_cwalk *cw, uint64_t addr)
{
	const struct hs_analysis *a = cw->in->a;
	if (addr < a->map.lo || addr >= a->map.hi)
		return -1;
	ptrdiff_t b = hs_addrmap_lookup(&a->map, addr);
	if (b < 0 || cw->in->heap->blocks[b].address != addr)
		return -1;
	return b;
}

bool hs_cwalk_fail(struct hs_cwalk *cw, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cw->why, sizeof(cw->why), fmt, ap);
	va_end(ap);
	return false;
}

static const char *const role_names[] = { "node", "buckets", "keys", "hashes", "values", "table", "element" };

bool hs_cwalk_own(struct hs_cwalk *cw, uint64_t addr, enum hs_block_role role)
{
	const char *what = role_names[role];
	ptrdiff_t b = hs_cwalk_block(cw, addr);
	if (b < 0)
		return hs_cwalk_fail(cw, "%s 0x%" PRIx64 " is not an allocation", what, addr);
	if (cw->verify_only)
		return true;
	uint32_t *owner = cw->cs->owner;
	if (owner[b] == cw->id)
		return hs_cwalk_fail(cw, "%s 0x%" PRIx64 " is reached twice (a cycle)", what, addr);
	if (owner[b])
		return hs_cwalk_fail(cw, "%s 0x%" PRIx64 " belongs to another container", what, addr);
	if (cw->nowned == cw->capowned) {
		size_t cap = cw->capowned ? cw->capowned * 2 : 64;
		uint32_t *g = realloc(cw->owned, cap * sizeof(*g));
		if (!g) {
			cw->nomem = true;
			return hs_cwalk_fail(cw, "out of memory");
		}
		cw->owned = g;
		cw->capowned = cap;
	}
	cw->owned[cw->nowned++] = (uint32_t)b;
	owner[b] = cw->id;
	cw->cs->role[b] = (uint8_t)role;
	return true;
}

bool hs_cwalk_read(struct hs_cwalk *cw, uint64_t addr, void *buf, size_t len)
{
	const uint8_t *p = hs_memory_span(cw->in->mem, addr, len);
	if (p) {
		memcpy(buf, p, len);
		return true;
	}
	struct hs_error *err = hs_memory_read(cw->in->mem, addr, buf, len);
	if (!err)
		return true;
	hs_error_destroy(err);
	return hs_cwalk_fail(cw, "0x%" PRIx64 " cannot be read", addr);
}

bool hs_cwalk_u64(struct hs_cwalk *cw, uint64_t addr, uint64_t *ret)
{
	return hs_cwalk_read(cw, addr, ret, 8);
}

bool hs_cwalk_in_module(struct hs_cwalk *cw, uint64_t addr)
{
	return cw->in->symbols && hs_symbols_module_at(cw->in->symbols, addr) != NULL;
}

/* Discovery. */

struct discovery {
	const struct hs_containers_input *in;
	struct hs_containers *cs;
	size_t cap;
	struct hs_cwalk cw;
	struct hs_error *err;
	const struct hs_containers_dwarf *dwarf;
	uint32_t *by_address;       /* dwarf's entries by address (dwarf_at) */
};

/* cs->at: the containers by address.  A heap can hold a container in each
 * of a hundred thousand objects (Go maps), and discovery asks for each one
 * whether it is known already. */
static size_t at_slot(uint64_t addr, size_t cap)
{
	return (size_t)(((addr >> 3) * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

static void at_put(uint32_t *at, size_t cap, const struct hs_container *v, uint32_t i)
{
	size_t k = at_slot(v[i].address, cap);
	while (at[k]) {
		if (v[at[k] - 1].address == v[i].address)
			return;         // (an address keeps its first container)
		k = (k + 1) & (cap - 1);
	}
	at[k] = i + 1;
}

// v[n - 1] into the index (grown to keep it at most half full; from 4 slots
// under HEAPSCOPE_TEST_SMALL_SPLITS, so that every fixture grows it); false
// on no memory.
static bool at_add(struct hs_containers *cs)
{
	if (2 * cs->n > cs->atcap) {
		size_t cap = cs->atcap ? 2 * cs->atcap : hs_test_small_splits() ? 4 : 64;
		uint32_t *g = calloc(cap, sizeof(*g));
		if (!g)
			return false;
		for (size_t i = 0; i + 1 < cs->n; i++)
			at_put(g, cap, cs->v, (uint32_t)i);
		free(cs->at);
		cs->at = g;
		cs->atcap = cap;
	}
	at_put(cs->at, cs->atcap, cs->v, (uint32_t)(cs->n - 1));
	return true;
}

static void cwalk_reset(struct hs_cwalk *cw)
{
	cw->nowned = 0;
	cw->why[0] = 0;
}

static void rollback(struct hs_cwalk *cw)
{
	for (size_t i = 0; i < cw->nowned; i++)
		cw->cs->owner[cw->owned[i]] = 0;
	cw->nowned = 0;
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

// Walk kind k at addr; keep it when it holds (or when forced: DWARF says it
// is one, and then a broken one is kept with a diagnostic).
static bool try_container(struct discovery *d, const struct hs_container_kind *k, uint64_t addr,
			  const uint64_t *w, const struct hs_dwarf_container *known, const struct hs_go_map_found *go)
{
	struct hs_containers *cs = d->cs;
	if (cs->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct hs_container *g = realloc(cs->v, cap * sizeof(*g));
		if (!g) {
			d->err = &hs_error_nomem;
			return false;
		}
		cs->v = g;
		d->cap = cap;
	}
	struct hs_container *c = &cs->v[cs->n];
	memset(c, 0, sizeof(*c));
	c->kind = k;
	c->address = addr;
	c->buckets = c->max_chain = c->height = -1;
	c->overflow = c->tombstones = c->tables = -1;
	c->key_kind = k->key_kind;
	if (go)
		c->go = go->layout;
	struct hs_cwalk *cw = &d->cw;
	cwalk_reset(cw);
	cw->c = c;
	cw->id = (uint32_t)cs->n + 1;
	bool ok = k->walk(cw, addr, w);
	if (cw->nomem) {
		rollback(cw);
		d->err = &hs_error_nomem;
		return false;
	}
	if (!ok && !known && !go) {
		rollback(cw);
		return false;
	}
	if (!ok) {
		c->findings |= HS_FIND_CORRUPT;
		if (known)
			hs_diag_add(d->in->diags, HS_DIAG_ERROR, "containers", addr, "%s %s: %s; what was walked is reported",
				    known->kind, known->name, cw->why);
		else
			hs_diag_add(d->in->diags, HS_DIAG_ERROR, "containers", addr,
				    "Go map[%s]%s at 0x%" PRIx64 ": %s; what was walked is reported", go->key_type,
				    go->value_type, addr, cw->why);
	}
	for (size_t i = 0; i < cw->nowned; i++)
		c->bytes += hs_block_size(&d->in->heap->blocks[cw->owned[i]]);
	c->nblocks = cw->nowned;
	if (known) {
		c->from_dwarf = true;
		c->kind_name = xstrdup(known->kind);
		c->key_type = xstrdup(known->key_type);
		c->value_type = xstrdup(known->value_type);
		c->value_pointee = xstrdup(known->value_pointee);
		c->key_kind = known->key_kind;
		c->key_size = known->key_size;
		c->value_offset = known->value_offset;
		c->value_is_pointer = known->value_pointee != NULL;
	} else if (go) {
		c->from_dwarf = true;
		c->kind_name = xstrdup(k->name);
		c->key_type = xstrdup(go->key_type);
		c->value_type = xstrdup(go->value_type);
		c->key_kind = go->layout.key_kind;
		c->key_size = go->layout.key_size;
	} else {
		c->kind_name = xstrdup(k->name);
	}
	if (!c->kind_name) {
		d->err = &hs_error_nomem;
		return false;
	}
	cs->n++;
	if (!at_add(cs)) {
		d->err = &hs_error_nomem;
		return false;
	}
	return true;
}

/* What DWARF says is at addr (the first of d->dwarf there), or NULL: a
 * search of d->by_address, d->dwarf's indices in (address, index) order. */
static const struct hs_dwarf_container *dwarf_at(const struct discovery *d, uint64_t addr)
{
	const struct hs_containers_dwarf *dw = d->dwarf;
	size_t n = d->by_address ? dw->n : 0, lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (dw->v[d->by_address[mid]].address < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && dw->v[d->by_address[lo]].address == addr ? &dw->v[d->by_address[lo]] : NULL;
}

static int by_address_cmp(const void *x, const void *y, void *arg)
{
	const struct hs_dwarf_container *v = arg;
	uint32_t i = *(const uint32_t *)x, j = *(const uint32_t *)y;
	if (v[i].address != v[j].address)
		return v[i].address < v[j].address ? -1 : 1;
	return (i > j) - (i < j);
}

// d->by_address; false on no memory.
static bool by_address_build(struct discovery *d)
{
	const struct hs_containers_dwarf *dw = d->dwarf;
	if (!dw->n || dw->n > UINT32_MAX)
		return true;
	if (!(d->by_address = malloc(dw->n * sizeof(*d->by_address))))
		return false;
	for (size_t i = 0; i < dw->n; i++)
		d->by_address[i] = (uint32_t)i;
	qsort_r(d->by_address, dw->n, sizeof(*d->by_address), by_address_cmp, dw->v);
	return true;
}

/* Discovery reads every word of every used block: the probes only read
 * (the graph, the memory, the symbols), so stretches of blocks are probed on
 * two threads at once, each keeping the probes that held in address order;
 * then the stretch's hits are walked on one thread in that order, which is
 * the order of probing the heap word by word. */
#define PROBE_STRETCH 262144u   /* blocks */

struct hit { uint64_t obj, at; uint32_t kind; };   /* at: the word probed */

struct probe_part {
	const struct hs_containers_input *in;
	struct hs_cwalk cw;         /* the probes' own: they read in, never cs */
	size_t first, last;         /* blocks */
	struct hit *v;
	size_t n, cap;
	bool nomem;
};

/* Kind k as the probes run it: its object's words, where it lies (anchor
 * words before the heap word probed, or at a block's start), and its first
 * check: word filter of the object, masked, less lo, at most range
 * (kind->filter_*; none: any word holds). */
struct probe_filter {
	uint32_t kind, anchor, words, filter;
	uint64_t mask, lo, range;
};

static struct probe_filter filter_of(uint32_t k)
{
	const struct hs_container_kind *kind = kinds[k];
	struct probe_filter f = { .kind = k, .anchor = kind->at_block_start ? 0 : kind->anchor_word,
				  .words = kind->size / 8, .range = UINT64_MAX };
	if (kind->filter_mask) {
		f.filter = kind->filter_word;
		f.mask = kind->filter_mask;
		f.lo = kind->filter_lo;
		f.range = kind->filter_hi - kind->filter_lo;
	}
	return f;
}

static inline bool filter_holds(const struct probe_filter *f, const uint64_t *obj)
{
	return ((obj[f->filter] & f->mask) - f->lo) <= f->range;
}

// Kind k's probe at obj (its words w), probed from the word at p: a hit
// when it holds.
static void probe_hit(struct probe_part *pp, uint32_t k, uint64_t obj, const uint64_t *w, uint64_t p)
{
	if (pp->nomem || !kinds[k]->probe(&pp->cw, obj, w))
		return;
	if (HS_VEC_GROW(pp->v, pp->cap, pp->n + 1)) {
		pp->nomem = true;
		return;
	}
	pp->v[pp->n++] = (struct hit){ obj, p, k };
}

// Offer word p of the run [p0, stop) read at base, objects inside [start,
// end), to the kinds that probe there: at a block's first word those that
// live in their own allocation, at a heap address those anchored on one.
static void probe_word(struct probe_part *pp, uint64_t start, uint64_t end, uint64_t p0, uint64_t stop,
		       const uint8_t *base, uint64_t p, bool heap_word, bool block_start)
{
	const struct hs_containers_input *in = pp->in;
	for (uint32_t k = 0; k < NKINDS; k++) {
		const struct hs_container_kind *kind = kinds[k];
		uint64_t obj;
		if (kind->at_block_start) {
			if (!block_start)
				continue;
			obj = p;
		} else {
			if (!heap_word || p - start < 8u * kind->anchor_word)
				continue;
			obj = p - 8u * kind->anchor_word;
		}
		if (obj + kind->size > end)
			continue;
		// Within the run read: no lookup.
		const uint64_t *w = obj >= p0 && obj + kind->size <= stop
					    ? (const uint64_t *)(base + (obj - p0))
					    : (const uint64_t *)hs_memory_span(in->mem, obj, kind->size);
		struct probe_filter f = filter_of(k);
		if (w && filter_holds(&f, w))
			probe_hit(pp, k, obj, w, p);
		if (pp->nomem)
			break;
	}
}

// Offer the words of [p0, stop), read at base, to every kind's probe: at
// each word that holds a heap address (every non-empty container has one at
// its anchor_word), and at block starts for the kinds that live in their own
// allocation; objects stay inside [start, end).
static void probe_run(struct probe_part *pp, uint64_t start, uint64_t end, ptrdiff_t block, uint64_t p0,
		      uint64_t stop, const uint8_t *base)
{
	const struct hs_containers_input *in = pp->in;
	const struct hs_analysis *a = in->a;
	uint64_t first = block >= 0 ? in->heap->blocks[block].address : UINT64_MAX;
	// Most words are neither a heap address nor a block's first: skipped
	// up to the next heap address, or to the block's first word.
	size_t n = (stop - p0) / 8, at_first = first >= p0 && first < stop && !((first - p0) & 7) ? (first - p0) / 8 : n;
	for (size_t w = 0; w < n && !pp->nomem; w++) {
		w = hs_next_heap_word(base, w, w <= at_first ? at_first : n, a->map.lo, a->map.hi);
		if (w >= n)
			break;
		uint64_t p = p0 + 8 * w, v;
		memcpy(&v, base + 8 * w, 8);
		probe_word(pp, start, end, p0, stop, base, p, v >= a->map.lo && v < a->map.hi, p == first);
	}
}

// [start, end) run by run: holes and memory not dumped are skipped, never
// faulted in.
static void probe_range(struct probe_part *pp, uint64_t start, uint64_t end, ptrdiff_t block)
{
	const struct hs_memory *mem = pp->in->mem;
	start = (start + 7) & ~UINT64_C(7);
	for (uint64_t p = start; p + 8 <= end && !pp->nomem;) {
		uint64_t len, q = hs_memory_next_scan_run(mem, p, end, &len);
		if (q == UINT64_MAX)
			break;
		uint64_t stop = q + len;
		p = (q + 7) & ~UINT64_C(7);
		if (p + 8 > stop) {
			p = stop;
			continue;
		}
		const uint8_t *base = hs_memory_span(pp->in->mem, p, stop - p);
		if (!base)
			break;
		probe_run(pp, start, end, block, p, stop, base);
		p = stop;
	}
}

static void *probe_blocks(void *arg)
{
	struct probe_part *pp = arg;
	const struct hs_containers_input *in = pp->in;
	// The run of readable memory the last block lay in: most blocks lie in
	// the one before's.
	uint64_t run_lo = 0, run_hi = 0;
	const uint8_t *run = NULL;
	for (size_t i = pp->first; i < pp->last && !pp->nomem; i++) {
		if (!(in->a->flags[i] & HS_NODE_USED))
			continue;
		const struct hs_block *b = &in->heap->blocks[i];
		// Go's objects hold Go containers, found by type below, not C's.
		if (in->go_rt && hs_go_span_of(in->go_rt, b->address))
			continue;
		uint64_t start = (b->address + 7) & ~UINT64_C(7), end = b->address + hs_block_size(b);
		if (start >= end)
			continue;
		if (!run || start < run_lo || end > run_hi) {
			uint64_t len = 0, q = hs_memory_next_scan_run(in->mem, start, UINT64_MAX, &len);
			run = q == start ? hs_memory_span(in->mem, q, len) : NULL;
			run_lo = q;
			run_hi = q + len;
		}
		if (run && start >= run_lo && end <= run_hi)
			probe_run(pp, start, end, (ptrdiff_t)i, start, end, run + (start - run_lo));
		else
			probe_range(pp, b->address, end, (ptrdiff_t)i);
	}
	return NULL;
}

// Walk the hits of a part in order; a container found a few words back is
// not walked again.
static void walk_hits(struct discovery *d, struct probe_part *pp)
{
	if (pp->nomem && !d->err)
		d->err = &hs_error_nomem;
	for (size_t h = 0; h < pp->n && !d->err; h++) {
		const struct hs_container_kind *kind = kinds[pp->v[h].kind];
		uint64_t obj = pp->v[h].obj;
		if (hs_container_at(d->cs, obj))
			continue;
		const uint64_t *w = (const uint64_t *)hs_memory_span(d->in->mem, obj, kind->size);
		if (w)
			try_container(d, kind, obj, w, dwarf_at(d, obj), NULL);
	}
	pp->n = 0;
}

/* The probes the scan runs (hs_container_probes_create): each part of the
 * scan probes the blocks it reads into a probe_part of its own, and notes
 * the blocks it could not read; discovery probes those, then walks all the
 * hits in the order of the words probed, which is the order of probing the
 * heap word by word, block after block. */
struct skipped { uint32_t *v; size_t n, cap; };

struct hs_container_probes {
	struct hs_containers_input in;      /* a: the scan's (begin) */
	struct hs_scan_visitor visitor;
	struct probe_part parts[64];
	struct skipped skipped[64];
	size_t nparts;
	bool started;
	struct probe_filter at_start[NKINDS], anchored[NKINDS];
	size_t nat_start, nanchored;
};

static bool probes_begin(void *ctx, struct hs_analysis *a, size_t nparts)
{
	struct hs_container_probes *p = ctx;
	// A probe may read beyond its block (a tree's root node): only where
	// no segment is left to load, which the scan's threads must not do.
	if (p->started || nparts > 64 || !hs_memory_loaded(p->in.mem))
		return false;
	p->in.a = a;
	p->nparts = nparts;
	for (size_t k = 0; k < nparts; k++)
		p->parts[k] = (struct probe_part){ .in = &p->in, .cw = { .in = &p->in } };
	p->started = true;
	return true;
}

static void probes_block(void *ctx, size_t part, size_t i, const uint64_t *words, size_t nwords,
			 const uint32_t *heap_words, size_t nheap)
{
	struct hs_container_probes *p = ctx;
	struct probe_part *pp = &p->parts[part];
	const struct hs_block *b = &p->in.heap->blocks[i];
	if (pp->nomem || (p->in.go_rt && hs_go_span_of(p->in.go_rt, b->address)))
		return;
	if (!words) {
		struct skipped *sk = &p->skipped[part];
		if (HS_VEC_PUSH(sk->v, sk->n, sk->cap, (uint32_t)i))
			pp->nomem = true;
		return;
	}
	// The scan reads a block's whole words from its (aligned) start, and
	// says which hold a heap address: those and the first are probed.
	uint64_t start = b->address, end = start + hs_block_size(b);
	if (!heap_words) {
		if (start < end)
			probe_run(pp, start, end, (ptrdiff_t)i, start, end, (const uint8_t *)words);
		return;
	}
	// What probe_word does, a kind at a time, its first check inline: an
	// object lies in the block when its words do (nwords: the block's
	// whole words).  The hits' order is discovery's to make (walk_probed).
	for (size_t k = 0; k < p->nat_start; k++) {
		const struct probe_filter *f = &p->at_start[k];
		if (f->words <= nwords && filter_holds(f, words))
			probe_hit(pp, f->kind, start, words, start);
	}
	for (size_t k = 0; k < p->nanchored; k++) {
		const struct probe_filter *f = &p->anchored[k];
		for (size_t j = 0; j < nheap; j++) {
			size_t o = (size_t)heap_words[j] - f->anchor;
			if (heap_words[j] < f->anchor || o + f->words > nwords || !filter_holds(f, words + o))
				continue;
			probe_hit(pp, f->kind, start + 8 * (uint64_t)o, words + o, start + 8 * (uint64_t)heap_words[j]);
		}
	}
}

struct hs_container_probes *hs_container_probes_create(const struct hs_containers_input *in)
{
	struct hs_container_probes *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->in = *in;
	p->in.a = NULL;
	p->in.probes = NULL;
	p->visitor = (struct hs_scan_visitor){ .ctx = p, .begin = probes_begin, .block = probes_block };
	for (uint32_t k = 0; k < NKINDS; k++) {
		if (kinds[k]->at_block_start)
			p->at_start[p->nat_start++] = filter_of(k);
		else
			p->anchored[p->nanchored++] = filter_of(k);
	}
	return p;
}

const struct hs_scan_visitor *hs_container_probes_visitor(struct hs_container_probes *p)
{
	return &p->visitor;
}

void hs_container_probes_destroy(struct hs_container_probes *p)
{
	if (!p)
		return;
	for (size_t k = 0; k < 64; k++) {
		free(p->parts[k].v);
		free(p->skipped[k].v);
	}
	free(p);
}

static int hit_cmp(const void *x, const void *y)
{
	const struct hit *a = x, *b = y;
	if (a->at != b->at)
		return a->at < b->at ? -1 : 1;
	return (a->kind > b->kind) - (a->kind < b->kind);
}

// The blocks the scan could not read probed here, then every hit walked
// in the order of the words probed.
static void walk_probed(struct discovery *d, struct hs_container_probes *p)
{
	const struct hs_heap *heap = d->in->heap;
	struct probe_part all = { .in = d->in, .cw = { .in = d->in, .cs = d->cs } };
	for (size_t k = 0; k < p->nparts; k++) {
		struct probe_part *pp = &p->parts[k];
		for (size_t j = 0; j < p->skipped[k].n && !pp->nomem; j++) {
			const struct hs_block *b = &heap->blocks[p->skipped[k].v[j]];
			probe_range(pp, b->address, b->address + hs_block_size(b), (ptrdiff_t)p->skipped[k].v[j]);
		}
		all.nomem |= pp->nomem;
		if (!all.nomem && pp->n && HS_VEC_GROW(all.v, all.cap, all.n + pp->n))
			all.nomem = true;
		if (!all.nomem && pp->n) {
			memcpy(all.v + all.n, pp->v, pp->n * sizeof(*pp->v));
			all.n += pp->n;
		}
		free(pp->v);
		pp->v = NULL;
		pp->n = pp->cap = 0;
	}
	if (all.n)
		qsort(all.v, all.n, sizeof(*all.v), hit_cmp);
	walk_hits(d, &all);
	free(all.v);
}

static void discover(struct discovery *d)
{
	const struct hs_containers_input *in = d->in;
	const struct hs_analysis *a = in->a;
	const struct hs_roots *roots = &a->roots;
	struct probe_part parts[2];
	for (size_t k = 0; k < 2; k++)
		parts[k] = (struct probe_part){ .in = in, .cw = { .in = in, .cs = d->cs } };
	for (size_t r = 0; r < roots->n && !d->err; r++) {
		if (roots->ranges[r].kind == HS_ROOT_REGISTER)
			continue;
		probe_range(&parts[0], roots->ranges[r].start, roots->ranges[r].end, -1);
		walk_hits(d, &parts[0]);
	}
	d->cs->nroot = d->cs->n;
	// The heap's blocks: probed by the scan, or here.
	bool probed = in->probes && in->probes->started && in->probes->in.a == a;
	if (probed && !d->err)
		walk_probed(d, in->probes);
	// Threads only where every segment is loaded already (the scan loaded
	// them): a probe must not load one.
	bool two = in->jobs > 1 && in->heap->n >= 2 * 4096 && hs_memory_loaded(in->mem);
	for (size_t lo = 0; !probed && lo < in->heap->n && !d->err; lo += PROBE_STRETCH) {
		size_t hi = in->heap->n - lo > PROBE_STRETCH ? lo + PROBE_STRETCH : in->heap->n;
		size_t np = two && hi - lo >= 4096 ? 2 : 1;
		for (size_t k = 0; k < np; k++) {
			parts[k].first = lo + (hi - lo) * k / np;
			parts[k].last = lo + (hi - lo) * (k + 1) / np;
		}
		hs_run_parts(np, probe_blocks, parts, sizeof(parts[0]));
		for (size_t k = 0; k < np; k++)
			walk_hits(d, &parts[k]);
	}
	free(parts[0].v);
	free(parts[1].v);
	d->cs->nshape = d->cs->n;
	// What DWARF says is a container but the shape refused (empty, corrupt).
	for (size_t i = 0; d->dwarf && i < d->dwarf->n && !d->err; i++) {
		const struct hs_dwarf_container *k = &d->dwarf->v[i];
		if (hs_container_at(d->cs, k->address))
			continue;
		const uint64_t *w = (const uint64_t *)hs_memory_span(in->mem, k->address, k->kind_impl->size);
		if (w)
			try_container(d, k->kind_impl, k->address, w, k, NULL);
	}
	// Go maps: every header block the Go types name (containers_gomap.c).
	// Objects of one type come in runs: a type is asked once a run.
	uint64_t not_map = 0, map = 0;
	struct hs_go_map_found go = { 0 };
	for (size_t i = 0; in->go_rt && in->go_block_die && i < in->heap->n && !d->err; i++) {
		uint64_t die = in->go_block_die[i];
		if (!die || die == not_map || !(a->flags[i] & HS_NODE_USED))
			continue;
		if (die != map) {
			hs_go_map_found_deinit(&go);
			map = 0;
			if (!hs_go_map_describe(in, i, &go)) {
				not_map = die;
				continue;
			}
			map = die;
		}
		uint64_t addr = in->heap->blocks[i].address;
		const uint64_t *w = (const uint64_t *)hs_memory_span(in->mem, addr, hs_kind_gomap.size);
		if (w && !hs_container_at(d->cs, addr))
			try_container(d, &hs_kind_gomap, addr, w, NULL, &go);
	}
	hs_go_map_found_deinit(&go);
}

const struct hs_container *hs_container_at(const struct hs_containers *cs, uint64_t addr)
{
	if (!cs || !cs->at)
		return NULL;
	for (size_t k = at_slot(addr, cs->atcap); cs->at[k]; k = (k + 1) & (cs->atcap - 1))
		if (cs->v[cs->at[k] - 1].address == addr)
			return &cs->v[cs->at[k] - 1];
	return NULL;
}

/* Naming from DWARF the containers inside typed heap objects. */
/* DWARF answers by (type name, offset): many containers are the same member
 * of objects of the same type.  Type names are interned: pointers compare. */
#define MEMBER_CACHE 16
struct member_cache {
	struct { const char *type; uint64_t off; bool found; struct hs_dwarf_container k; } v[MEMBER_CACHE];
	size_t n, next;
};

static const struct hs_dwarf_container *member_lookup(const struct hs_containers_input *in, struct member_cache *mc,
							  const char *type, uint64_t off)
{
	for (size_t i = 0; i < mc->n; i++)
		if (mc->v[i].type == type && mc->v[i].off == off)
			return mc->v[i].found ? &mc->v[i].k : NULL;
	size_t i = mc->n < MEMBER_CACHE ? mc->n++ : mc->next++ % MEMBER_CACHE;
	if (mc->v[i].found)
		hs_dwarf_container_deinit(&mc->v[i].k);
	mc->v[i].type = type;
	mc->v[i].off = off;
	mc->v[i].found = hs_containers_dwarf_member(in, type, off, &mc->v[i].k);
	return mc->v[i].found ? &mc->v[i].k : NULL;
}

static void name_members(struct discovery *d)
{
	const struct hs_containers_input *in = d->in;
	struct member_cache mc = { .n = 0 };
	for (size_t i = 0; i < d->cs->n; i++) {
		struct hs_container *c = &d->cs->v[i];
		if (c->from_dwarf)
			continue;
		ptrdiff_t b = hs_addrmap_lookup(&in->a->map, c->address);
		const char *t = b >= 0 ? hs_block_type(in->types, (size_t)b) : NULL;
		const struct hs_dwarf_container *k = t ? member_lookup(in, &mc, t, c->address - in->heap->blocks[b].address) : NULL;
		if (!k || k->kind_impl != c->kind)
			continue;
		char *kind = strdup(k->kind);
		if (!kind)
			continue;
		free(c->kind_name);
		c->kind_name = kind;
		c->from_dwarf = true;
		c->key_type = xstrdup(k->key_type);
		c->value_type = xstrdup(k->value_type);
		c->value_pointee = xstrdup(k->value_pointee);
		c->key_kind = k->key_kind;
		c->key_size = k->key_size;
		c->value_offset = k->value_offset;
		c->value_is_pointer = c->value_pointee != NULL;
	}
	for (size_t i = 0; i < mc.n; i++)
		if (mc.v[i].found)
			hs_dwarf_container_deinit(&mc.v[i].k);
}

// The same from a stack local's DWARF type (TLS variables are in d->dwarf).
static void name_locals(struct discovery *d)
{
	const struct hs_containers_input *in = d->in;
	for (size_t i = 0; i < d->cs->n; i++) {
		struct hs_container *c = &d->cs->v[i];
		const struct hs_root_range *r = hs_roots_find(&in->a->roots, c->address);
		if (c->from_dwarf || !r || r->kind != HS_ROOT_STACK)
			continue;
		const struct hs_local *l = hs_local_at(in->locals, r->tid, c->address);
		struct hs_dwarf_container k;
		if (!l || l->start != c->address || !l->has_type)
			continue;
		Dwarf_Die type = l->type;
		if (!hs_containers_dwarf_describe(&type, &k))
			continue;
		char *kind = k.kind_impl == c->kind ? strdup(k.kind) : NULL;
		if (kind) {
			free(c->kind_name);
			c->kind_name = kind;
			c->from_dwarf = true;
			c->key_type = xstrdup(k.key_type);
			c->value_type = xstrdup(k.value_type);
			c->value_pointee = xstrdup(k.value_pointee);
			c->key_kind = k.key_kind;
			c->key_size = k.key_size;
			c->value_offset = k.value_offset;
			c->value_is_pointer = c->value_pointee != NULL;
		}
		hs_dwarf_container_deinit(&k);
	}
}

/* Anchors: how each container is reached. */

static int root_rank(enum hs_root_kind k)
{
	switch (k) {
	case HS_ROOT_GLOBAL: return 0;
	case HS_ROOT_TLS: return 1;
	case HS_ROOT_STACK: return 2;
	default: return 3;
	}
}

// A root word, for people: "g_sessions", "g_x+8", "thread 12 stack (frame of f)".
static void root_name(const struct hs_containers_input *in, uint64_t word, char *buf, size_t len)
{
	const struct hs_root_range *r = hs_roots_find(&in->a->roots, word);
	char fn[256];
	if (!r) {
		snprintf(buf, len, "0x%" PRIx64, word);
		return;
	}
	switch (r->kind) {
	case HS_ROOT_GLOBAL: {
		struct hs_symbol sym;
		uint64_t off;
		if (in->symbols && hs_symbols_addr_symbol(in->symbols, word, &sym, &off)) {
			char name[256];
			// Go: the global's field by its DWARF type ("main.registry.ByID").
			if (off && in->go_rt && in->global_field(in->ctx, sym.name, off, buf, len))
				return;
			hs_demangle(sym.name, name, sizeof(name));
			int n = snprintf(buf, len, "%s", name);
			if (off && n >= 0 && (size_t)n < len)
				snprintf(buf + n, len - (size_t)n, "+0x%" PRIx64, off);
		} else if (!in->symbols || !hs_symbols_describe(in->symbols, word, buf, len)) {
			snprintf(buf, len, "global 0x%" PRIx64, word);
		}
		return;
	}
	case HS_ROOT_STACK:
		if (hs_local_name(in->locals, r->tid, word, buf, len))
			return;
		if (in->frame_function(in->ctx, r->tid, word, fn, sizeof(fn))) {
			char name[256];
			snprintf(buf, len, "thread %d stack (frame of %s)", r->tid, hs_demangle(fn, name, sizeof(name)));
		} else {
			snprintf(buf, len, "thread %d stack", r->tid);
		}
		return;
	case HS_ROOT_TLS:
		if (!hs_local_name(in->locals, r->tid, word, buf, len))
			snprintf(buf, len, "thread %d TLS", r->tid);
		return;
	default:
		snprintf(buf, len, "memory 0x%" PRIx64, word);
	}
}

static void append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	if (used + 1 >= len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

// "->member" of block b at offset off, or "->+off" without DWARF.
static void append_member(const struct hs_containers_input *in, size_t b, uint64_t off, char *buf, size_t len)
{
	char field[128];
	if (in->block_field(in->ctx, b, off, field, sizeof(field)))
		append(buf, len, "->%s", field);
	else
		append(buf, len, "->+%" PRIu64, off);
}

struct first_hit { uint64_t word; bool found; };

#define SEED (UINT32_MAX - 1)

struct anchors {
	uint64_t *seed_word;        /* per block: the root word that first points into it */
	uint32_t *parent;           /* per block: BFS parent, SEED, or UINT32_MAX (not reached) */
	uint32_t *wanted;           /* the blocks holding heap containers (reachable ones) */
	size_t nwanted;
	uint8_t *is_wanted;         /* per block: 1 wanted, 3 awaited, 2 reached */
	uint64_t *handles;          /* sorted handles of the containers in the heap */
	uint64_t *exact;            /* per handle: a root word holding exactly it (best rank), or 0 */
	size_t nhandles;
};

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

// Mark wanted block b reached; true when it was still awaited (3).
static bool wanted_mark(struct anchors *an, uint32_t b, bool init)
{
	(void)init;
	if (an->is_wanted[b] != 3)
		return false;
	an->is_wanted[b] = 2;
	return true;
}

static struct hs_error *anchors_build(const struct hs_containers_input *in, struct anchors *an)
{
	const struct hs_analysis *a = in->a;
	size_t n = a->n;
	an->seed_word = hs_array_zeroed(n, sizeof(uint64_t));
	an->parent = hs_array_new(n, sizeof(uint32_t));
	an->is_wanted = hs_array_zeroed(n, 1);
	uint32_t *queue = hs_array_new(n, sizeof(uint32_t));
	if (!an->seed_word || !an->parent || !an->is_wanted || !queue) {
		free(queue);
		return &hs_error_nomem;
	}
	for (size_t i = 0; i < an->nwanted; i++)
		an->is_wanted[an->wanted[i]] = 1;
	memset(an->parent, 0xff, n * sizeof(uint32_t));
	size_t tail = 0;
	const struct hs_roots *roots = &a->roots;
	for (int rank = 0; rank <= 3; rank++) {
		for (size_t r = 0; r < roots->n; r++) {
			if (root_rank(roots->ranges[r].kind) != rank)
				continue;
			uint64_t p = (roots->ranges[r].start + 7) & ~UINT64_C(7), end = roots->ranges[r].end;
			while (p + 8 <= end) {
				// Holes and memory not dumped are skipped, never faulted in.
				uint64_t len, q = hs_memory_next_scan_run(in->mem, p, end, &len);
				if (q == UINT64_MAX)
					break;
				uint64_t stop = q + len;
				p = (q + 7) & ~UINT64_C(7);
				if (p + 8 > stop) {
					p = stop;
					continue;
				}
				const uint8_t *base = hs_memory_span(in->mem, p, stop - p);
				uint64_t p0 = p;
				for (; base && p + 8 <= stop; p += 8) {
					uint64_t v;
					memcpy(&v, base + (p - p0), 8);
					if (v < a->map.lo || v >= a->map.hi)
						continue;
					const uint64_t *h = an->nhandles ? bsearch(&v, an->handles, an->nhandles, 8, cmp_u64) : NULL;
					if (h && !an->exact[h - an->handles])
						an->exact[h - an->handles] = p;
					ptrdiff_t b = hs_addrmap_lookup(&a->map, v);
					if (b < 0 || an->seed_word[b])
						continue;
					an->seed_word[b] = p;
					queue[tail++] = (uint32_t)b;
				}
				if (!base)
					break;
			}
		}
	}
	// Parents until every wanted block is reached (any path names it).
	for (size_t i = 0; i < tail; i++)
		an->parent[queue[i]] = SEED;
	size_t left = 0;
	for (size_t i = 0; i < an->nwanted; i++) {
		uint32_t w = an->wanted[i];
		if (an->is_wanted[w] != 1)
			continue;
		an->is_wanted[w] = an->parent[w] == SEED ? 2 : 3;
		left += an->is_wanted[w] == 3;
	}
	for (size_t head = 0; head < tail && left; head++) {
		uint32_t v = queue[head];
		for (uint32_t e = a->fwd_off[v]; e < a->fwd_off[v + 1]; e++) {
			uint32_t w = a->fwd[e];
			if (an->parent[w] != UINT32_MAX)
				continue;
			an->parent[w] = v;
			queue[tail++] = w;
			if (wanted_mark(an, w, false))
				left--;
		}
	}
	free(queue);
	return NULL;
}

/* The first word of block `from` that points into block `to`: one scan per
 * parent block, indexed (a big vector of pointers to containers is the
 * parent of all of them). */
struct hop_index {
	size_t block;
	struct hop { uint32_t to; uint64_t word; } *v;
	size_t n, cap;
	bool valid;
};

static int hop_cmp(const void *x, const void *y)
{
	const struct hop *a = x, *b = y;
	if (a->to != b->to)
		return a->to < b->to ? -1 : 1;
	return (a->word > b->word) - (a->word < b->word);
}

static bool hop_word(const struct hs_containers_input *in, struct hop_index *hx, size_t from, size_t to, uint64_t *word_ret)
{
	const struct hs_analysis *a = in->a;
	if (!hx->valid || hx->block != from) {
		const struct hs_block *b = &in->heap->blocks[from];
		uint64_t size = hs_block_size(b) & ~UINT64_C(7);
		const uint8_t *p = hs_memory_span(in->mem, b->address, size);
		hx->n = 0;
		hx->valid = false;
		for (uint64_t off = 0; p && off + 8 <= size; off += 8) {
			uint64_t v;
			memcpy(&v, p + off, 8);
			if (v < a->map.lo || v >= a->map.hi)
				continue;
			ptrdiff_t t = hs_addrmap_lookup(&a->map, v);
			if (t < 0)
				continue;
			if (hx->n == hx->cap) {
				size_t cap = hx->cap ? hx->cap * 2 : 64;
				struct hop *g = realloc(hx->v, cap * sizeof(*g));
				if (!g)
					return false;
				hx->v = g;
				hx->cap = cap;
			}
			hx->v[hx->n++] = (struct hop){ (uint32_t)t, b->address + off };
		}
		qsort(hx->v, hx->n, sizeof(*hx->v), hop_cmp);
		hx->block = from;
		hx->valid = true;
	}
	// The first (lowest) word pointing at `to`.
	size_t lo = 0, hi = hx->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (hx->v[mid].to < to)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == hx->n || hx->v[lo].to != to)
		return false;
	*word_ret = hx->v[lo].word;
	return true;
}

static char *anchor_of(const struct hs_containers_input *in, const struct anchors *an, struct hop_index *hx, uint64_t handle)
{
	const struct hs_analysis *a = in->a;
	char buf[512] = "";
	if (hs_roots_find(&a->roots, handle)) {
		root_name(in, handle, buf, sizeof(buf));
		return strdup(buf);
	}
	ptrdiff_t b = hs_addrmap_lookup(&a->map, handle);
	if (b < 0 || !(a->flags[b] & HS_NODE_REACHABLE))
		return NULL;
	// A root holding exactly the container's address names it best.
	const uint64_t *h = bsearch(&handle, an->handles, an->nhandles, 8, cmp_u64);
	if (h && an->exact[h - an->handles]) {
		root_name(in, an->exact[h - an->handles], buf, sizeof(buf));
		return strdup(buf);
	}
	// The path seed -> ... -> b (at most ANCHOR_MAX_HOPS blocks shown).
	uint32_t path[ANCHOR_MAX_HOPS + 1];
	size_t len = 0;
	uint32_t v = (uint32_t)b;
	while (len < ANCHOR_MAX_HOPS + 1) {
		path[len++] = v;
		if (an->parent[v] == SEED || an->parent[v] == UINT32_MAX)
			break;
		v = an->parent[v];
	}
	uint32_t seed = path[len - 1];
	if (!an->seed_word[seed])
		snprintf(buf, sizeof(buf), "...");
	else
		root_name(in, an->seed_word[seed], buf, sizeof(buf));
	uint64_t last_value = 0;
	if (an->seed_word[seed])
		hs_error_destroy(hs_memory_read_u64(in->mem, an->seed_word[seed], &last_value));
	for (size_t i = len - 1; i > 0; i--) {
		const struct hs_block *from = &in->heap->blocks[path[i]];
		struct first_hit f = { 0 };
		f.found = hop_word(in, &hx[i & 1], path[i], path[i - 1], &f.word);
		uint64_t off = f.found ? f.word - from->address : 0;
		append_member(in, path[i], off, buf, sizeof(buf));
		last_value = 0;
		if (f.found) {
			struct hs_error *err = hs_memory_read_u64(in->mem, f.word, &last_value);
			hs_error_destroy(err);
		}
	}
	// The pointer names the block; the container may be a member of it.
	const struct hs_block *blk = &in->heap->blocks[b];
	if (last_value != handle && handle != blk->address)
		append_member(in, (size_t)b, handle - blk->address, buf, sizeof(buf));
	return strdup(buf);
}

static struct hs_error *name_anchors(struct hs_containers *cs)
{
	const struct hs_containers_input *in = &cs->in;
	bool need = false;
	for (size_t i = 0; i < cs->n; i++)
		need |= !hs_roots_find(&in->a->roots, cs->v[i].handle);
	struct anchors an = { 0 };
	an.handles = malloc((cs->n ? cs->n : 1) * sizeof(uint64_t));
	an.exact = calloc(cs->n ? cs->n : 1, sizeof(uint64_t));
	if (!an.handles || !an.exact) {
		free(an.handles);
		free(an.exact);
		return &hs_error_nomem;
	}
	an.wanted = malloc((cs->n ? cs->n : 1) * sizeof(uint32_t));
	if (!an.wanted) {
		free(an.handles);
		free(an.exact);
		return &hs_error_nomem;
	}
	const struct hs_analysis *a = in->a;
	for (size_t i = 0; i < cs->n; i++) {
		if (hs_roots_find(&a->roots, cs->v[i].handle))
			continue;
		an.handles[an.nhandles++] = cs->v[i].handle;
		ptrdiff_t b = hs_addrmap_lookup(&a->map, cs->v[i].handle);
		if (b >= 0 && (a->flags[b] & HS_NODE_REACHABLE))
			an.wanted[an.nwanted++] = (uint32_t)b;
	}
	qsort(an.handles, an.nhandles, 8, cmp_u64);
	struct hs_error *err = need ? anchors_build(in, &an) : NULL;
	struct hop_index hx[2] = { { 0 }, { 0 } };
	for (size_t i = 0; !err && i < cs->n; i++)
		cs->v[i].anchor = anchor_of(in, &an, hx, cs->v[i].handle);
	free(hx[0].v);
	free(hx[1].v);
	free(an.seed_word);
	free(an.parent);
	free(an.handles);
	free(an.exact);
	free(an.wanted);
	free(an.is_wanted);
	return err;
}

/* Retained bytes: each block is labelled with the one container through
 * which every path from the roots reaches it (own blocks are their
 * container's; a root word makes a block "shared").  Each label changes at
 * most twice (none -> one container -> shared), so this is linear. */

#define SHARED UINT32_MAX

static struct hs_error *retained(struct hs_containers *cs)
{
	const struct hs_containers_input *in = &cs->in;
	const struct hs_analysis *a = in->a;
	size_t n = a->n;
	if (!cs->n)
		return NULL;
	uint32_t *lab = hs_array_zeroed(n, sizeof(uint32_t));
	uint32_t *queue = hs_array_new(3 * n + 1, sizeof(uint32_t));
	if (!lab || !queue) {
		free(lab);
		free(queue);
		return &hs_error_nomem;
	}
	size_t head = 0, tail = 0;
	for (size_t i = 0; i < n; i++) {
		if (cs->owner[i])
			lab[i] = cs->owner[i];
		else if (a->flags[i] & HS_NODE_ROOTED)
			lab[i] = SHARED;
		else
			continue;
		queue[tail++] = (uint32_t)i;
	}
	while (head < tail) {
		uint32_t v = queue[head++];
		for (uint32_t e = a->fwd_off[v]; e < a->fwd_off[v + 1]; e++) {
			uint32_t w = a->fwd[e];
			if (cs->owner[w] || lab[w] == SHARED || lab[w] == lab[v])
				continue;
			lab[w] = lab[w] ? SHARED : lab[v];
			queue[tail++] = w;
		}
	}
	for (size_t i = 0; i < cs->n; i++)
		cs->v[i].retained = cs->v[i].bytes;
	for (size_t i = 0; i < n; i++)
		if (!cs->owner[i] && lab[i] && lab[i] != SHARED && (a->flags[i] & HS_NODE_USED))
			cs->v[lab[i] - 1].retained += hs_block_size(&in->heap->blocks[i]);
	free(lab);
	free(queue);
	return NULL;
}

static void findings(struct hs_containers *cs)
{
	const struct hs_containers_input *in = &cs->in;
	uint64_t used = in->a->used_bytes;
	for (size_t i = 0; i < cs->n; i++) {
		struct hs_container *c = &cs->v[i];
		if (c->buckets > 0 && c->max_chain >= DEGENERATE_MIN_CHAIN) {
			double load = (double)c->count / (double)c->buckets;
			if ((double)c->max_chain > 8 * (load < 1 ? 1 : load))
				c->findings |= HS_FIND_DEGENERATE;
		}
		if (c->buckets >= SPARSE_MIN_BUCKETS && (uint64_t)c->buckets > 64 * c->count)
			c->findings |= HS_FIND_SPARSE;
		if (used && c->retained * 2 > used)
			c->findings |= HS_FIND_MOST_OF_HEAP;
	}
}

/* Types: own blocks are named after their container, elements after the
 * mapped type. */

static void full_name(const struct hs_container *c, char *buf, size_t len)
{
	if (c->kind == &hs_kind_gomap)
		snprintf(buf, len, "map[%s]%s", c->key_type ? c->key_type : "?", c->value_type ? c->value_type : "?");
	else if (c->key_type && c->value_type)
		snprintf(buf, len, "%s<%s, %s>", c->kind_name, c->key_type, c->value_type);
	else if (c->key_type)
		snprintf(buf, len, "%s<%s>", c->kind_name, c->key_type);
	else
		snprintf(buf, len, "%s", c->kind_name);
}

struct typing { struct hs_containers *cs; const struct hs_container *c; uint32_t pointee, string_id; };
static bool std_string_at(const struct hs_containers_input *in, uint64_t key, char *buf, size_t len, bool strict);

// A std::string key's own buffer: {pointer, length, capacity or in-place bytes}.
static void type_key_buffer(struct typing *t, struct hs_cwalk *cw, uint64_t key)
{
	uint64_t p;
	if (t->c->key_kind != HS_KEY_STRING && t->c->key_kind != HS_KEY_UNKNOWN)
		return;
	if (!t->string_id || !hs_cwalk_u64(cw, key, &p) || p == key + 16)
		return;
	ptrdiff_t b = hs_cwalk_block(cw, p);
	char text[64];
	if (b < 0 || t->cs->owner[b] ||
	    (t->c->key_kind == HS_KEY_UNKNOWN && !std_string_at(&t->cs->in, key, text, sizeof(text), true)))
		return;
	hs_types_ids(t->cs->in.types)[b] = t->string_id;
}

static void type_element(struct hs_cwalk *cw, uint64_t node, uint64_t key, uint64_t key_len, uint64_t value)
{
	(void)node;
	(void)key_len;
	struct typing *t = cw->ctx;
	type_key_buffer(t, cw, key);
	if (!t->pointee)
		return;
	uint64_t v = hs_container_entry_value(t->cs, t->c, key, value);
	ptrdiff_t b = v ? hs_cwalk_block(cw, v) : -1;
	if (b >= 0 && !hs_types_ids(t->cs->in.types)[b] && !t->cs->owner[b])
		hs_types_ids(t->cs->in.types)[b] = t->pointee;
}

static struct hs_error *type_blocks(struct hs_containers *cs)
{
	const struct hs_containers_input *in = &cs->in;
	struct hs_analysis *a = in->a;
	uint32_t *type = hs_types_ids(in->types);
	// (No container: no owner set, and owner's pages are left unread; on
	// some virtual machines reading a fresh page costs as much as writing.)
	if (!type || !cs->n)
		return NULL;
	uint32_t *ids = calloc(cs->n * 8, sizeof(uint32_t));
	if (!ids)
		return &hs_error_nomem;
	// Containers of one type share their names: intern once per type.
	uint32_t *rep = malloc(cs->n * sizeof(uint32_t));
	if (!rep) {
		free(ids);
		return &hs_error_nomem;
	}
	for (size_t i = 0; i < cs->n; i++) {
		const struct hs_container *c = &cs->v[i], *p = i ? &cs->v[i - 1] : NULL;
		bool same = p && c->kind_name && p->kind_name && !strcmp(c->kind_name, p->kind_name) &&
			    !strcmp(c->key_type ? c->key_type : "", p->key_type ? p->key_type : "") &&
			    !strcmp(c->value_type ? c->value_type : "", p->value_type ? p->value_type : "");
		rep[i] = same ? rep[i - 1] : (uint32_t)i;
	}
	for (size_t i = 0; i < a->n; i++) {
		uint32_t o = cs->owner[i];
		if (!o)
			continue;
		const struct hs_container *c = &cs->v[o - 1];
		unsigned role = cs->role[i] < 7 ? cs->role[i] : 0;
		if (role == HS_ROLE_ELEMENT && type[i])
			continue;    // an intrusive element keeps its own type
		if (c->kind == &hs_kind_gomap)
			continue;    // Go's blocks keep the runtime's names (map.bucket[K]V)
		uint32_t *id = &ids[(size_t)rep[o - 1] * 8 + role];
		if (!*id) {
			char name[600], full[512];
			full_name(c, full, sizeof(full));
			snprintf(name, sizeof(name), "%s %s", full, role_names[role]);
			*id = hs_types_intern(in->types, name);
		}
		if (*id)
			type[i] = *id;
	}
	free(ids);
	free(rep);
	uint32_t string_id = hs_types_intern(in->types, "std::string data");
	for (size_t i = 0; i < cs->n; i++) {
		const struct hs_container *c = &cs->v[i];
		struct typing t = { cs, c, 0, string_id };
		if (c->value_is_pointer && c->value_pointee)
			t.pointee = hs_types_intern(in->types, c->value_pointee);
		if (c->kind->node_key && (t.pointee || c->key_kind == HS_KEY_STRING || c->key_kind == HS_KEY_UNKNOWN))
			HS_CHECK(hs_container_entries(cs, c, type_element, &t, UINT64_MAX));
	}
	return NULL;
}

struct hs_error *hs_containers_create(const struct hs_containers_input *input, struct hs_containers **ret)
{
	*ret = NULL;
	size_t n = input->a->n;
	struct hs_containers *cs = calloc(1, sizeof(*cs));
	if (!cs)
		return &hs_error_nomem;
	cs->in = *input;
	const struct hs_containers_input *in = &cs->in;
	cs->owner = hs_array_zeroed(n, sizeof(uint32_t));
	cs->role = hs_array_zeroed(n, 1);
	if (!cs->owner || !cs->role) {
		hs_containers_destroy(cs);
		return &hs_error_nomem;
	}
	struct hs_containers_dwarf dw = { 0 };
	struct hs_error *err = hs_containers_dwarf_globals(in, &dw);
	if (err) {
		hs_containers_destroy(cs);
		return err;
	}
	struct discovery d = { .in = in, .cs = cs, .dwarf = &dw, .cw = { .in = in, .cs = cs } };
	if (!by_address_build(&d))
		d.err = &hs_error_nomem;
	else
		discover(&d);
	free(d.by_address);
	cs->in.probes = NULL;       // the session's, and used up
	hs_containers_dwarf_deinit(&dw);
	free(d.cw.owned);
	err = d.err;
	if (!err) {
		for (size_t i = 0; i < cs->n; i++)
			if (!cs->v[i].handle)
				cs->v[i].handle = cs->v[i].address;
		name_members(&d);
		name_locals(&d);
		err = type_blocks(cs);
	}
	if (err) {
		hs_containers_destroy(cs);
		return err;
	}
	*ret = cs;
	return NULL;
}

struct hs_error *hs_containers_need_anchors(struct hs_containers *cs)
{
	if (!cs->anchors_done) {
		HS_CHECK(name_anchors(cs));
		cs->anchors_done = true;
	}
	return NULL;
}

struct hs_error *hs_containers_need_retained(struct hs_containers *cs)
{
	HS_CHECK(hs_containers_need_anchors(cs));
	if (!cs->retained_done) {
		HS_CHECK(retained(cs));
		findings(cs);
		cs->retained_done = true;
	}
	return NULL;
}

/* Entries and keys. */

struct hs_error *hs_container_entries(struct hs_containers *cs, const struct hs_container *c,
				      void (*entry)(struct hs_cwalk *cw, uint64_t node, uint64_t key,
						    uint64_t key_len, uint64_t value),
				      void *ctx, uint64_t limit)
{
	struct hs_container copy = *c;
	struct hs_cwalk cw = { .in = &cs->in, .cs = cs, .c = &copy, .id = (uint32_t)(c - cs->v) + 1,
			       .verify_only = true, .entry = entry, .ctx = ctx, .limit = limit };
	const uint64_t *w = (const uint64_t *)hs_memory_span(cs->in.mem, c->address, c->kind->size);
	if (!w)
		return hs_error_create(HS_ERR_NOT_DUMPED, "the container at 0x%" PRIx64 " is not in the core", c->address);
	c->kind->walk(&cw, c->address, w);
	return NULL;
}

uint64_t hs_container_entry_value(const struct hs_containers *cs, const struct hs_container *c, uint64_t key,
				  uint64_t value)
{
	if (value)
		return value;
	if (!c->value_is_pointer || !c->value_offset)
		return 0;
	uint64_t v = 0;
	struct hs_error *err = hs_memory_read_u64(cs->in.mem, key + c->value_offset, &v);
	if (err) {
		hs_error_destroy(err);
		return 0;
	}
	return v;
}

#define MAX_KEY_TEXT 200

static bool printable(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f)
			return false;
	return true;
}

static bool read_text(const struct hs_containers_input *in, uint64_t addr, uint64_t n, char *buf, size_t len)
{
	if (n >= len || n > MAX_KEY_TEXT)
		n = len - 1 < MAX_KEY_TEXT ? len - 1 : MAX_KEY_TEXT;
	struct hs_error *err = hs_memory_read(in->mem, addr, buf, n);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	buf[n] = 0;
	return printable(buf, n);
}

// A std::string in place at key: {pointer, length, in-place buffer or capacity}.
static bool std_string_at(const struct hs_containers_input *in, uint64_t key, char *buf, size_t len, bool strict)
{
	uint64_t w[2];
	struct hs_error *err = hs_memory_read(in->mem, key, w, sizeof(w));
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	if (w[0] == key + 16) {
		if (w[1] > 15)
			return false;
	} else if (strict) {
		ptrdiff_t b = hs_addrmap_lookup(&in->a->map, w[0]);
		if (b < 0 || in->heap->blocks[b].address != w[0] || w[1] >= hs_block_size(&in->heap->blocks[b]) ||
		    w[1] < 16)
			return false;
	}
	return read_text(in, w[0], w[1], buf, len);
}

static void int_text(const struct hs_containers_input *in, uint64_t key, uint32_t size, bool is_signed, char *buf, size_t len)
{
	uint64_t v = 0;
	if (size > 8 || !size)
		size = 8;
	struct hs_error *err = hs_memory_read(in->mem, key, &v, size);
	if (err) {
		hs_error_destroy(err);
		snprintf(buf, len, "?");
		return;
	}
	if (is_signed && size < 8 && (v >> (size * 8 - 1)) & 1)
		v |= ~UINT64_C(0) << (size * 8);
	if (is_signed)
		snprintf(buf, len, "%" PRId64, (int64_t)v);
	else
		snprintf(buf, len, "%" PRIu64, v);
}

void hs_container_key_text(const struct hs_containers *cs, const struct hs_container *c, uint64_t key,
			   uint64_t key_len, char *buf, size_t len, bool *is_string_ret)
{
	const struct hs_containers_input *in = &cs->in;
	*is_string_ret = false;
	// A Go key is in place: a pointer key is the word there; a key of
	// another type (a struct, an interface) is shown by its address.
	if (c->kind == &hs_kind_gomap && (c->key_kind == HS_KEY_POINTER || c->key_kind == HS_KEY_BYTES)) {
		uint64_t v = key;
		struct hs_error *err = c->key_kind == HS_KEY_POINTER ? hs_memory_read_u64(in->mem, key, &v) : NULL;
		if (err)
			snprintf(buf, len, "?");
		else
			snprintf(buf, len, "0x%" PRIx64, v);
		hs_error_destroy(err);
		return;
	}
	switch (c->key_kind) {
	case HS_KEY_STRING:
		if ((*is_string_ret = std_string_at(in, key, buf, len, false)))
			return;
		snprintf(buf, len, "?");
		return;
	case HS_KEY_INT:
	case HS_KEY_UINT:
		int_text(in, key, c->key_size, c->key_kind == HS_KEY_INT, buf, len);
		return;
	case HS_KEY_POINTER:
		snprintf(buf, len, "0x%" PRIx64, key);
		return;
	case HS_KEY_CSTRING_PTR: {
		char tmp[MAX_KEY_TEXT + 1];
		struct hs_error *err = hs_memory_read_string(in->mem, key, tmp, sizeof(tmp));
		if (!err && tmp[0] && printable(tmp, strlen(tmp))) {
			snprintf(buf, len, "%s", tmp);
			*is_string_ret = true;
		} else {
			snprintf(buf, len, "0x%" PRIx64, key);
		}
		hs_error_destroy(err);
		return;
	}
	case HS_KEY_GO_STRING: {
		uint64_t w[2];
		struct hs_error *err = hs_memory_read(in->mem, key, w, sizeof(w));
		if (!err && len && (w[1] == 0 || (w[1] <= MAX_KEY_TEXT && read_text(in, w[0], w[1], buf, len)))) {
			if (w[1] == 0)
				buf[0] = 0;
			*is_string_ret = true;
			return;
		}
		hs_error_destroy(err);
		*is_string_ret = false;
		snprintf(buf, len, "?");
		return;
	}
	case HS_KEY_BYTES:
		if (key_len == 1 || key_len == 2 || key_len == 4 || key_len == 8) {
			int_text(in, key, (uint32_t)key_len, true, buf, len);
			return;
		}
		if ((*is_string_ret = read_text(in, key, key_len, buf, len)))
			return;
		snprintf(buf, len, "0x%" PRIx64, key);
		return;
	default:
		// No type: a std::string if it looks like one, else a word.
		if ((*is_string_ret = std_string_at(in, key, buf, len, true)))
			return;
		int_text(in, key, 8, true, buf, len);
	}
}

bool hs_container_node_name(struct hs_containers *cs, size_t i, char *buf, size_t len)
{
	if (!cs || i >= cs->in.a->n || !cs->owner[i])
		return false;
	struct hs_error *err = hs_containers_need_anchors(cs);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	const struct hs_container *c = &cs->v[cs->owner[i] - 1];
	unsigned role = cs->role[i];
	if ((role != HS_ROLE_NODE && role != HS_ROLE_ELEMENT) || !c->kind->node_key)
		return false;
	struct hs_cwalk cw = { .in = &cs->in, .cs = cs, .c = (struct hs_container *)c, .verify_only = true };
	uint64_t key, key_len = 0;
	if (!c->kind->node_key(&cw, cs->in.heap->blocks[i].address, &key, &key_len))
		return false;
	char k[MAX_KEY_TEXT + 1];
	bool str;
	hs_container_key_text(cs, c, key, key_len, k, sizeof(k), &str);
	snprintf(buf, len, str ? "%s[\"%s\"]" : "%s[%s]", c->anchor ? c->anchor : "(leaked)", k);
	return true;
}

bool hs_container_entry_name(struct hs_containers *cs, size_t i, uint64_t off, char *buf, size_t len)
{
	if (!cs || i >= cs->in.a->n || !cs->owner[i])
		return false;
	const struct hs_container *c = &cs->v[cs->owner[i] - 1];
	if (!c->kind->slot_key)
		return hs_container_node_name(cs, i, buf, len);
	struct hs_error *err = hs_containers_need_anchors(cs);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	struct hs_cwalk cw = { .in = &cs->in, .cs = cs, .c = (struct hs_container *)c, .verify_only = true };
	uint64_t key;
	if (!c->kind->slot_key(&cw, i, cs->in.heap->blocks[i].address + off, &key))
		return false;
	char k[MAX_KEY_TEXT + 1];
	bool str;
	hs_container_key_text(cs, c, key, 0, k, sizeof(k), &str);
	snprintf(buf, len, str ? "%s[\"%s\"]" : "%s[%s]", c->anchor ? c->anchor : "(leaked)", k);
	return true;
}

bool hs_container_value_text(const struct hs_containers *cs, const struct hs_container *c, uint64_t node, uint64_t key,
			     char *buf, size_t len, bool *is_string_ret)
{
	const struct hs_go_map_layout *L = &c->go;
	if (c->kind != &hs_kind_gomap || (L->elem_kind != HS_KEY_INT && L->elem_kind != HS_KEY_UINT &&
					  L->elem_kind != HS_KEY_GO_STRING))
		return false;
	uint64_t addr;
	if (L->swiss) {
		addr = key - L->slot_key_off + L->slot_elem_off;
	} else {
		if (!L->key_size || key < node + L->keys_off)
			return false;
		uint64_t j = (key - node - L->keys_off) / L->key_size;
		addr = node + L->elems_off + j * L->elem_size;
	}
	struct hs_container v = *c;
	v.key_kind = L->elem_kind;
	v.key_size = L->elem_size;
	hs_container_key_text(cs, &v, addr, 0, buf, len, is_string_ret);
	return true;
}
