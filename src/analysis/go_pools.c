/* go_pools.c - every sync.Pool of a Go program and what its caches hold,
 * for the pools stage (pools.h: its "more" callback on a Go heap).
 *
 * The pools are the runtime's own lists: sync.allPools (pools used since the
 * last GC) and sync.oldPools (those whose caches the last GC made victim
 * caches); a pool in neither holds nothing.  A Pool has local, an array of
 * localSize poolLocal (one per P), and victim, victimSize of them.  A
 * poolLocal holds a private value and a shared poolChain: rings
 * (poolChainElt, a poolDequeue) from head through prev; a ring's live slots
 * are vals[i % len] for tail <= i < head (headTail: head in the high 32
 * bits).  A value is an interface {type, data}: the pooled object is the
 * heap block data points into (the object for a pointer type, the box of a
 * slice or a struct).
 *
 * Offsets come from DWARF by name, with the go1.19 rows (the same in every
 * release read: /work/shared/reference/go-runtime.md §8) without it.  Every
 * count read from the core is bounded; a ring or chain that cannot be
 * believed is reported and the rest of the pool kept.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "go_pools.h"
#include "go_rt.h"
#include "pools.h"
#include "diag.h"
#include "heap.h"
#include "symbols.h"

#define MAX_POOLS 100000
#define MAX_PROCS 65536          /* localSize: GOMAXPROCS is at most 2^16 in practice */
#define MAX_RINGS 64             /* rings double from 8 up to 2^30 slots */
#define MAX_RING (UINT64_C(1) << 30)
#define MAX_OBJECTS (UINT64_C(1) << 26)

struct layout {
	uint64_t local, local_size, victim, victim_size;
	uint64_t pl_size, private_, shared_head;
	uint64_t headtail, vals, prev;
};

static struct hs_error *layout(struct hs_gort *rt, struct layout *l)
{
	HS_CHECK(hs_gort_field(rt, "sync.Pool", "local", 0, &l->local));
	HS_CHECK(hs_gort_field(rt, "sync.Pool", "localSize", 8, &l->local_size));
	HS_CHECK(hs_gort_field(rt, "sync.Pool", "victim", 16, &l->victim));
	HS_CHECK(hs_gort_field(rt, "sync.Pool", "victimSize", 24, &l->victim_size));
	HS_CHECK(hs_gort_field(rt, "sync.poolLocal", "poolLocalInternal.private", 0, &l->private_));
	HS_CHECK(hs_gort_field(rt, "sync.poolLocal", "poolLocalInternal.shared.head", 16, &l->shared_head));
	HS_CHECK(hs_gort_field(rt, "sync.poolChainElt", "poolDequeue.headTail", 0, &l->headtail));
	HS_CHECK(hs_gort_field(rt, "sync.poolChainElt", "poolDequeue.vals", 8, &l->vals));
	HS_CHECK(hs_gort_field(rt, "sync.poolChainElt", "prev", 40, &l->prev));
	l->pl_size = 128;
	if (rt->dwarf) {
		struct hs_error *err = hs_dwarf_struct_size(rt->mod, "sync.poolLocal", &l->pl_size);
		if (err) {
			struct hs_error *e = hs_error_create(HS_ERR_HEAP, "Go runtime layout: sync.poolLocal is not in the "
							     "DWARF (%s)", hs_error_message(err));
			hs_error_destroy(err);
			return e;
		}
	}
	if (!l->pl_size || l->pl_size > 4096)
		return hs_error_create(HS_ERR_HEAP, "Go runtime layout: sync.poolLocal of %" PRIu64 " bytes", l->pl_size);
	return NULL;
}

/* One pool being read. */
struct reader {
	const struct hs_go_pools_input *in;
	struct hs_gort *rt;
	const struct layout *l;
	struct hs_pool pool;
	struct hs_pool_object *objs;
	size_t n, cap;
	uint64_t *type_addr;        /* pool.types[k]'s descriptor */
	bool nomem;
};

static uint32_t type_index(struct reader *r, uint64_t t)
{
	for (size_t k = 0; k < r->pool.ntypes; k++)
		if (r->type_addr[k] == t)
			return (uint32_t)k;
	struct hs_pool_type *g = realloc(r->pool.types, (r->pool.ntypes + 1) * sizeof(*g));
	if (g)
		r->pool.types = g;
	uint64_t *a = g ? realloc(r->type_addr, (r->pool.ntypes + 1) * sizeof(*a)) : NULL;
	if (a)
		r->type_addr = a;
	char name[512];
	if (!hs_go_type_name(r->rt, t, name, sizeof(name)))
		snprintf(name, sizeof(name), "type 0x%" PRIx64, t);
	char *copy = a ? strdup(name) : NULL;
	if (!copy) {
		r->nomem = true;
		return 0;
	}
	r->pool.types[r->pool.ntypes] = (struct hs_pool_type){ .name = copy, .addr = t };
	r->type_addr[r->pool.ntypes] = t;
	return (uint32_t)r->pool.ntypes++;
}

// One interface value {type, data} of cache c of P proc: the heap object
// data points into.  A nil value, or one outside the heap, is not an object.
static void value(struct reader *r, const uint64_t v[2], enum hs_pool_cache c, uint64_t proc)
{
	if (!v[0] || !v[1] || r->nomem || r->n >= MAX_OBJECTS)
		return;
	const struct hs_heap *h = r->in->rt.heap;
	ptrdiff_t b = hs_heap_find(h, v[1]);
	if (b < 0 || !hs_where_is_used(hs_block_where(&h->blocks[b])))
		return;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		struct hs_pool_object *g = realloc(r->objs, cap * sizeof(*g));
		if (!g) {
			r->nomem = true;
			return;
		}
		r->objs = g;
		r->cap = cap;
	}
	uint32_t t = type_index(r, v[0]);
	if (r->nomem)
		return;
	const struct hs_block *blk = &h->blocks[b];
	uint64_t size = hs_block_size(blk);
	r->objs[r->n++] = (struct hs_pool_object){ .address = blk->address, .size = size, .block = (uint32_t)b,
						   .cache = (uint8_t)c, .proc = (uint32_t)proc, .type = t,
						   .value = v[1] };
	r->pool.cache_count[c]++;
	r->pool.cache_bytes[c] += size;
	r->pool.types[t].count++;
	r->pool.types[t].bytes += size;
}

static void broken(struct reader *r, uint64_t at, const char *fmt, uint64_t a, uint64_t b)
{
	char what[160];
	snprintf(what, sizeof(what), fmt, a, b);
	hs_diag_add(r->in->diags, HS_DIAG_WARNING, "pools", at, "sync.Pool %s: %s: the rest of that chain is not read",
		    r->pool.anchor, what);
	r->pool.broken = true;
}

// A poolLocal's shared chain: rings from head through prev.
static void chain(struct reader *r, uint64_t elt, enum hs_pool_cache c, uint64_t proc)
{
	const struct layout *l = r->l;
	uint64_t seen[MAX_RINGS];
	for (size_t k = 0; elt && !r->nomem; k++) {
		uint64_t ht, vals[2], prev;
		if (k == MAX_RINGS) {
			broken(r, elt, "more than %" PRIu64 " rings (a loop?) at 0x%" PRIx64, MAX_RINGS, elt);
			return;
		}
		for (size_t j = 0; j < k; j++)
			if (seen[j] == elt) {
				broken(r, elt, "ring %" PRIu64 " at 0x%" PRIx64 " closes a loop", k, elt);
				return;
			}
		seen[k] = elt;
		if (!hs_go_read(r->rt, elt + l->headtail, &ht, 8) || !hs_go_read(r->rt, elt + l->vals, vals, 16) ||
		    !hs_go_read(r->rt, elt + l->prev, &prev, 8)) {
			broken(r, elt, "ring %" PRIu64 " at 0x%" PRIx64 " is not in the core", k, elt);
			return;
		}
		uint32_t head = (uint32_t)(ht >> 32), tail = (uint32_t)ht;
		uint64_t len = vals[1], live = (uint32_t)(head - tail);
		if (!len || len > MAX_RING || (len & (len - 1)) || live > len) {
			broken(r, elt, "ring of %" PRIu64 " slots with %" PRIu64 " in use", len, live);
			return;
		}
		for (uint64_t i = 0; i < live && !r->nomem; i++) {
			uint64_t slot = vals[0] + ((tail + i) & (len - 1)) * 16, v[2];
			if (!hs_go_read(r->rt, slot, v, 16)) {
				broken(r, slot, "slot %" PRIu64 " of a ring at 0x%" PRIx64 " is not in the core", i, elt);
				return;
			}
			value(r, v, c, proc);
		}
		elt = prev;
	}
}

// An array of n poolLocal: each P's private value and shared chain.
static void locals(struct reader *r, uint64_t arr, uint64_t n, bool victim)
{
	if (!arr || !n)
		return;
	if (n > MAX_PROCS) {
		broken(r, arr, "%" PRIu64 " per-P caches (more than %" PRIu64 ")", n, MAX_PROCS);
		return;
	}
	for (uint64_t i = 0; i < n && !r->nomem; i++) {
		uint64_t pl = arr + i * r->l->pl_size, v[2], head;
		if (!hs_go_read(r->rt, pl + r->l->private_, v, 16) || !hs_go_read(r->rt, pl + r->l->shared_head, &head, 8)) {
			broken(r, pl, "the cache of P %" PRIu64 " at 0x%" PRIx64 " is not in the core", i, pl);
			return;
		}
		value(r, v, victim ? HS_POOL_VICTIM : HS_POOL_PRIVATE, i);
		chain(r, head, victim ? HS_POOL_VICTIM : HS_POOL_SHARED, i);
	}
}

// The pool's name: the global holding it ("main.bufPool", "main.srv+0x10"),
// else its address.
static char *anchor_name(const struct hs_go_pools_input *in, uint64_t pool)
{
	char name[320];
	struct hs_symbol sym;
	uint64_t off;
	if (hs_symbols_addr_symbol(in->rt.symbols, pool, &sym, &off) && sym.size && off < sym.size) {
		if (off)
			snprintf(name, sizeof(name), "%s+0x%" PRIx64, sym.name, off);
		else
			snprintf(name, sizeof(name), "%s", sym.name);
	} else {
		snprintf(name, sizeof(name), "sync.Pool at 0x%" PRIx64, pool);
	}
	return strdup(name);
}

static int type_cmp(const void *x, const void *y)
{
	const struct hs_pool_type *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return strcmp(a->name, b->name);
}

static struct hs_error *read_pool(const struct hs_go_pools_input *in, struct hs_gort *rt, const struct layout *l, uint64_t addr,
				  struct hs_pools *p)
{
	uint64_t f[4];
	if (!hs_go_read(rt, addr + l->local, &f[0], 8) || !hs_go_read(rt, addr + l->local_size, &f[1], 8) ||
	    !hs_go_read(rt, addr + l->victim, &f[2], 8) || !hs_go_read(rt, addr + l->victim_size, &f[3], 8)) {
		hs_diag_add(in->diags, HS_DIAG_WARNING, "pools", addr, "sync.Pool at 0x%" PRIx64 " is not in the core",
			    addr);
		return NULL;
	}
	struct reader r = { .in = in, .rt = rt, .l = l };
	r.pool.sync_pool = true;
	r.pool.anchor_address = addr;
	r.pool.procs = f[1];
	r.pool.victim_procs = f[3];
	if (!(r.pool.anchor = anchor_name(in, addr)))
		return &hs_error_nomem;
	locals(&r, f[0], f[1], false);
	locals(&r, f[2], f[3], true);
	// The objects' types map to pool.types sorted (most bytes first).
	if (!r.nomem && r.pool.ntypes > 1) {
		struct hs_pool_type *sorted = malloc(r.pool.ntypes * sizeof(*sorted));
		uint32_t *to = malloc(r.pool.ntypes * sizeof(*to));
		if (sorted && to) {
			memcpy(sorted, r.pool.types, r.pool.ntypes * sizeof(*sorted));
			qsort(sorted, r.pool.ntypes, sizeof(*sorted), type_cmp);
			for (size_t k = 0; k < r.pool.ntypes; k++)
				for (size_t j = 0; j < r.pool.ntypes; j++)
					if (sorted[j].name == r.pool.types[k].name)
						to[k] = (uint32_t)j;
			for (size_t i = 0; i < r.n; i++)
				r.objs[i].type = to[r.objs[i].type];
			memcpy(r.pool.types, sorted, r.pool.ntypes * sizeof(*sorted));
		} else {
			r.nomem = true;
		}
		free(sorted);
		free(to);
	}
	free(r.type_addr);
	if (r.nomem) {
		free(r.objs);
		free(r.pool.anchor);
		for (size_t k = 0; k < r.pool.ntypes; k++)
			free(r.pool.types[k].name);
		free(r.pool.types);
		return &hs_error_nomem;
	}
	// One size for all its objects, or 0.
	for (size_t i = 0; i < r.n; i++)
		r.pool.object_size = !i || r.objs[i].size == r.pool.object_size ? r.objs[i].size : 0;
	for (size_t i = 1; i < r.n && r.pool.object_size; i++)
		if (r.objs[i].size != r.objs[0].size)
			r.pool.object_size = 0;
	struct hs_error *err = hs_pools_add(p, &r.pool, r.objs, r.n);
	free(r.objs);
	return err;
}

// The *Pool values of the []*Pool global name; added to v once each.
static struct hs_error *pool_list(const struct hs_go_pools_input *in, struct hs_gort *rt, const char *name, uint64_t **v, size_t *n)
{
	struct hs_symbol sym;
	uint64_t hdr[2];
	struct hs_error *err = hs_symbols_lookup(in->rt.symbols, rt->mod, name, &sym);
	if (err) {
		hs_error_destroy(err);
		return NULL;   // a program that never used a sync.Pool may not link these
	}
	if (!hs_go_read(rt, sym.address, hdr, sizeof(hdr)) || hdr[1] > MAX_POOLS) {
		hs_diag_add(in->diags, HS_DIAG_WARNING, "pools", sym.address, "%s cannot be read: its pools are not listed",
			    name);
		return NULL;
	}
	for (uint64_t i = 0; i < hdr[1]; i++) {
		uint64_t p;
		if (!hs_go_read(rt, hdr[0] + 8 * i, &p, 8)) {
			hs_diag_add(in->diags, HS_DIAG_WARNING, "pools", hdr[0], "%s: entries from %" PRIu64 " on are not "
				    "in the core", name, i);
			break;
		}
		bool dup = !p;
		for (size_t k = 0; k < *n && !dup; k++)
			dup = (*v)[k] == p;
		if (dup)
			continue;
		uint64_t *g = realloc(*v, (*n + 1) * sizeof(*g));
		if (!g)
			return &hs_error_nomem;
		*v = g;
		(*v)[(*n)++] = p;
	}
	return NULL;
}

struct hs_error *hs_go_pools_read(const struct hs_go_pools_input *in, struct hs_pools *p)
{
	struct hs_gort *rt;
	struct hs_error *err = hs_gort_open(&in->rt, &rt);
	if (err && err->code == HS_ERR_NOT_FOUND) {
		hs_error_destroy(err);
		return NULL;
	}
	HS_CHECK(err);
	struct layout l;
	uint64_t *v = NULL;
	size_t n = 0;
	err = layout(rt, &l);
	if (!err)
		err = pool_list(in, rt, "sync.allPools", &v, &n);
	if (!err)
		err = pool_list(in, rt, "sync.oldPools", &v, &n);
	for (size_t i = 0; !err && i < n; i++)
		err = read_pool(in, rt, &l, v[i], p);
	free(v);
	hs_gort_close(rt);
	return err;
}
