/* owners.c - who owns the memory: every used allocation is labelled with the
 * one root owner (a global variable, a thread's stack, TLS or registers) from
 * which all its paths start, or "shared" when several owners reach it.  A
 * label changes at most twice (none -> owner -> shared): linear in the graph.
 * Declared in containers.h (the per-container share is there too); reads
 * only its struct hs_owners_input, never the session.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "containers.h"
#include "graph.h"
#include "memory.h"
#include "notes.h"
#include "rtti.h"
#include "symbols.h"
#include "vec.h"

#define SHARED UINT32_MAX

void hs_owners_destroy(struct hs_owners *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n; i++)
		free(o->v[i].name);
	free(o->v);
	free(o);
}

static int owner_cmp(const void *x, const void *y)
{
	const struct hs_owner *a = x, *b = y;
	if (a->retained != b->retained)
		return a->retained > b->retained ? -1 : 1;
	return strcmp(a->name, b->name);
}

struct table {
	struct hs_owners *o;
	size_t cap;
	uint32_t *slots;            /* open addressing: owner index + 1 */
	size_t nslots;
	bool nomem;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static bool grow_slots(struct table *t)
{
	size_t n = t->nslots ? t->nslots * 2 : 256;
	uint32_t *g = calloc(n, sizeof(*g));
	if (!g)
		return false;
	for (size_t i = 0; i < t->o->n; i++) {
		size_t h = hash_str(t->o->v[i].name) & (n - 1);
		while (g[h])
			h = (h + 1) & (n - 1);
		g[h] = (uint32_t)i + 1;
	}
	free(t->slots);
	t->slots = g;
	t->nslots = n;
	return true;
}

// The id (index + 1) of the owner called name, added if new; 0 on no memory.
static uint32_t owner_id(struct table *t, const char *name, const char *kind)
{
	if ((t->o->n + 1) * 2 > t->nslots && !grow_slots(t)) {
		t->nomem = true;
		return 0;
	}
	size_t h = hash_str(name) & (t->nslots - 1);
	while (t->slots[h]) {
		if (!strcmp(t->o->v[t->slots[h] - 1].name, name))
			return t->slots[h];
		h = (h + 1) & (t->nslots - 1);
	}
	if (t->o->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct hs_owner *g = realloc(t->o->v, cap * sizeof(*g));
		if (!g) {
			t->nomem = true;
			return 0;
		}
		t->o->v = g;
		t->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy) {
		t->nomem = true;
		return 0;
	}
	t->o->v[t->o->n] = (struct hs_owner){ .name = copy, .kind = kind };
	t->slots[h] = (uint32_t)++t->o->n;
	return t->slots[h];
}

static void label(uint32_t *lab, size_t b, uint32_t id, uint32_t *queue, size_t *tail, bool weak)
{
	if (!id || lab[b] == id || lab[b] == SHARED || (weak && lab[b]))
		return;
	lab[b] = lab[b] ? SHARED : id;
	queue[(*tail)++] = (uint32_t)b;
}

static bool holds(const struct hs_container *c, uint64_t p)
{
	return c->anchor && p >= c->address && p < c->address + c->kind->size;
}

// The container whose object holds global word p.  Those in root ranges were
// found first, in address order (a binary search); DWARF's refused ones last.
static const struct hs_container *global_container(const struct hs_containers *cs, uint64_t p)
{
	if (!cs)
		return NULL;
	for (size_t i = cs->nshape; i < cs->n; i++)
		if (holds(&cs->v[i], p))
			return &cs->v[i];
	size_t lo = 0, hi = cs->nroot;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cs->v[mid].address <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	// The candidates just below p (objects do not overlap; kinds probe a few words back).
	for (size_t i = lo, k = 0; i-- > 0 && k < 8; k++)
		if (holds(&cs->v[i], p))
			return &cs->v[i];
	return NULL;
}

// The owner of root word p in range r: the variable holding it, or the thread.
struct sym_cache { uint64_t start, end; uint32_t id; const struct hs_root_range *range; };

static uint32_t root_owner(const struct hs_owners_input *in, struct table *t, const struct hs_root_range *r, uint64_t p,
			   struct sym_cache *cache)
{
	char name[300];
	const char *kind;
	if (in->root_name && r->kind != HS_ROOT_GLOBAL) {
		// One name a range (a goroutine's stack): asked once.
		if (cache->range == r)
			return cache->id;
		cache->range = r;
		cache->id = in->root_name(in->ctx, r, p, name, sizeof(name), &kind) ? owner_id(t, name, kind) : 0;
		if (cache->id)
			return cache->id;
		cache->range = NULL;
	}
	switch (r->kind) {
	case HS_ROOT_GLOBAL: {
		if (cache->id && p >= cache->start && p < cache->end)
			return cache->id;
		struct hs_symbol sym;
		uint64_t off;
		if (in->symbols && hs_symbols_addr_symbol(in->symbols, p, &sym, &off) && sym.size) {
			hs_demangle(sym.name, name, sizeof(name));
			cache->start = sym.address;
			cache->end = sym.address + sym.size;
			cache->id = owner_id(t, name, "global");
			return cache->id;
		}
		// No symbol (stripped): a container there names the words it spans.
		const struct hs_container *c = global_container(in->containers, p);
		if (c)
			return owner_id(t, c->anchor, "global");
		if (!in->symbols || !hs_symbols_describe(in->symbols, p, name, sizeof(name)))
			snprintf(name, sizeof(name), "global 0x%" PRIx64, p);
		return owner_id(t, name, "global");
	}
	case HS_ROOT_STACK:
		snprintf(name, sizeof(name), "thread %d stack", r->tid);
		return owner_id(t, name, "stack");
	case HS_ROOT_TLS:
		snprintf(name, sizeof(name), "thread %d TLS", r->tid);
		return owner_id(t, name, "tls");
	default:
		return owner_id(t, "other memory", "memory");
	}
}

// Label what the root ranges point at: the strong ones, or (weak) the
// weak ones, into unlabelled blocks only.
static void label_roots(const struct hs_owners_input *in, struct table *t, uint32_t *lab, uint32_t *queue,
			size_t *tail, bool weak)
{
	const struct hs_analysis *a = in->a;
	const struct hs_roots *roots = &a->roots;
	for (size_t r = 0; r < roots->n && !t->nomem; r++) {
		const struct hs_root_range *range = &roots->ranges[r];
		if (in->weak_root && in->weak_root(in->ctx, range) != weak)
			continue;
		if (!in->weak_root && weak)
			return;
		struct sym_cache cache = { 0 };
		uint64_t p = (range->start + 7) & ~UINT64_C(7);
		while (p + 8 <= range->end) {
			// Holes and memory not dumped are skipped, never faulted in.
			uint64_t len, q = hs_memory_next_scan_run(in->mem, p, range->end, &len);
			if (q == UINT64_MAX)
				break;
			uint64_t stop = q + len;
			p = (q + 7) & ~UINT64_C(7);
			if (p + 8 > stop) {
				p = stop;
				continue;
			}
			const uint8_t *base = hs_memory_span(in->mem, p, stop - p);
			if (!base)
				break;
			uint64_t p0 = p;
			for (; p + 8 <= stop; p += 8) {
				uint64_t v;
				memcpy(&v, base + (p - p0), 8);
				if (v < a->map.lo || v >= a->map.hi)
					continue;
				ptrdiff_t b = hs_addrmap_lookup(&a->map, v);
				if (b >= 0)
					label(lab, (size_t)b, root_owner(in, t, range, p, &cache), queue, tail, weak);
			}
		}
	}
}

struct hs_error *hs_owners_create(const struct hs_owners_input *in, struct hs_owners **retp)
{
	*retp = NULL;
	const struct hs_analysis *a = in->a;
	size_t n = a->n;
	struct hs_owners *ret = calloc(1, sizeof(*ret));
	uint32_t *lab = hs_array_zeroed(n, sizeof(uint32_t));
	uint32_t *queue = hs_array_new(2 * n + 1, sizeof(uint32_t));
	struct table t = { .o = ret };
	if (!ret || !lab || !queue) {
		free(ret);
		free(lab);
		free(queue);
		return &hs_error_nomem;
	}
	size_t head = 0, tail = 0;
	label_roots(in, &t, lab, queue, &tail, false);
	const struct hs_notes *notes = in->notes;
	for (size_t i = 0; i < notes->nthreads && !t.nomem; i++) {
		char name[64];
		snprintf(name, sizeof(name), "thread %d registers", notes->threads[i].tid);
		for (int r = 0; r < HS_NREGS; r++) {
			ptrdiff_t b = hs_addrmap_lookup(&a->map, notes->threads[i].regs[r]);
			if (b >= 0)
				label(lab, (size_t)b, owner_id(&t, name, "register"), queue, &tail, false);
		}
	}
	while (head < tail) {
		uint32_t v = queue[head++];
		for (uint32_t e = a->fwd_off[v]; e < a->fwd_off[v + 1]; e++)
			label(lab, a->fwd[e], lab[v], queue, &tail, false);
	}
	// Then the weak roots, into what no other root reached.
	if (in->weak_root) {
		label_roots(in, &t, lab, queue, &tail, true);
		while (head < tail) {
			uint32_t v = queue[head++];
			for (uint32_t e = a->fwd_off[v]; e < a->fwd_off[v + 1]; e++)
				label(lab, a->fwd[e], lab[v], queue, &tail, true);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!lab[i] || !(a->flags[i] & HS_NODE_USED))
			continue;
		uint64_t size = hs_block_size(&in->heap->blocks[i]);
		if (lab[i] == SHARED) {
			ret->shared_bytes += size;
			ret->shared_count++;
		} else {
			ret->v[lab[i] - 1].retained += size;
			ret->v[lab[i] - 1].count++;
		}
	}
	free(lab);
	free(queue);
	free(t.slots);
	if (t.nomem) {
		hs_owners_destroy(ret);
		return &hs_error_nomem;
	}
	if (ret->n)
		qsort(ret->v, ret->n, sizeof(*ret->v), owner_cmp);
	*retp = ret;
	return NULL;
}
