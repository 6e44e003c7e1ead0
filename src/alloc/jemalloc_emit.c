/* jemalloc_emit.c - jemalloc walker, emit and describe: blocks and the
 * description of the heap (called by walk_run in alloc_jemalloc.c).
 *
 * Reads the collected extents (jemalloc_rtree.c), the cached objects
 * (jemalloc_tcache.c), slab bitmaps and the base blocks; produces every block
 * (hs_heap_add: slab regions, free when the bitmap says so, large allocations
 * at their user pointer, cached objects, inactive extents, jemalloc's own
 * memory as metadata), then the arenas, regions, free lists and facts that
 * `info`, `arenas` and `bins` print.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jemalloc_walker.h"

/* --- emit ---------------------------------------------------------------------- */

static bool is_meta(const struct walk *w, uint64_t addr)
{
	return bsearch(&addr, w->meta, w->nmeta, sizeof(uint64_t), je_u64_cmp) != NULL;
}

/* The allocation holding addr: a slab region's start, or a large extent's user
 * pointer; 0 when addr is in no active extent. */
static uint64_t allocation_of(const struct walk *w, uint64_t addr)
{
	const struct je_extent *x = je_extent_of(&w->xs, addr);
	if (!x || x->state != HS_JE_ACTIVE)
		return 0;
	if (!x->slab)
		return x->addr;
	if (x->szind >= w->j->sizes.nbins)
		return 0;
	uint64_t reg = w->j->sizes.bins[x->szind].reg_size;
	return x->base + (addr - x->base) / reg * reg;
}

/* jemalloc's own allocations in its heap: each tcache's stack (one allocation
 * per tcache), and explicit tcaches' tcache_t. */
struct hs_error *je_find_meta(struct walk *w)
{
	struct je_state *j = w->j;
	w->meta = calloc(2 * j->ntcaches + 1, sizeof(uint64_t));
	if (!w->meta)
		return &hs_error_nomem;
	for (size_t t = 0; t < j->ntcaches; t++) {
		uint64_t a = w->cs.stacks && t < w->cs.nstacks ? allocation_of(w, w->cs.stacks[t]) : 0;
		if (a)
			w->meta[w->nmeta++] = a;
		a = allocation_of(w, j->tcaches[t].address);
		if (a)
			w->meta[w->nmeta++] = a;
	}
	if (w->nmeta)
		qsort(w->meta, w->nmeta, sizeof(uint64_t), je_u64_cmp);
	return NULL;
}

unsigned je_local_arena(struct walk *w, unsigned ind)
{
	struct je_arena *a = je_arena_add(w->j, ind, 0);
	return a ? (unsigned)(a - w->j->arenas) : HS_ARENA_NONE;
}

static struct hs_error *add_block(struct walk *w, uint64_t addr, uint64_t size, unsigned where,
				  unsigned local)
{
	unsigned global = local == HS_ARENA_NONE ? HS_ARENA_NONE : w->global_base + local;
	if (local != HS_ARENA_NONE) {
		struct hs_arena *ar = &w->j->arenas[local].out;
		if (hs_where_is_free(where)) {
			ar->free_count++;
			ar->free_bytes += size;
		} else if (hs_where_is_used(where)) {
			ar->used_count++;
			ar->used_bytes += size;
		}
	}
	return hs_heap_add(w->heap, addr, size, where, global);
}

static unsigned cached_or(struct walk *w, uint64_t addr, unsigned szind, unsigned other)
{
	struct je_cached *c = je_cached_find(&w->cs, addr);
	if (!c)
		return other;
	if (c->bin != szind) {
		diag(w->j, D_TCACHE, HS_DIAG_ERROR, addr,
		     "0x%" PRIx64 " sits in bin %u of tcache 0x%" PRIx64 " but is an object of size class %u", addr,
		     c->bin, w->j->tcaches[c->tcache].address, szind);
		return other;
	}
	c->matched = true;
	return WST(JE_TCACHE);
}

static struct hs_error *emit_slab(struct walk *w, const struct je_extent *x, unsigned local)
{
	struct je_state *j = w->j;
	if (x->szind >= j->sizes.nbins) {
		diag(j, D_SLAB, HS_DIAG_ERROR, x->base, "slab 0x%" PRIx64 " has size class %u, not a bin; skipped",
		     x->base, x->szind);
		return NULL;
	}
	const struct hs_je_bin_info *bi = &j->sizes.bins[x->szind];
	if (x->size != bi->slab_size || x->addr != x->base) {
		diag(j, D_SLAB, HS_DIAG_ERROR, x->base,
		     "slab 0x%" PRIx64 " of %" PRIu64 "-byte regions is %" PRIu64 " bytes, not %" PRIu64 "; skipped",
		     x->base, bi->reg_size, x->size, bi->slab_size);
		return NULL;
	}
	unsigned nfree = hs_je_bitmap_count_free(x->bitmap, bi->nregs);
	if (nfree != x->nfree)
		diag(j, D_SLAB, HS_DIAG_WARNING, x->base,
		     "slab 0x%" PRIx64 ": its bitmap shows %u free regions, its edata_t says %u (a core taken mid-update?); the bitmap is used",
		     x->base, nfree, x->nfree);
	w->tot.slabs++;
	for (unsigned r = 0; r < bi->nregs; r++) {
		uint64_t a = x->base + (uint64_t)r * bi->reg_size;
		unsigned where;
		if (hs_je_region_free(x->bitmap, r)) {
			where = WST(JE_SLAB);
			if (je_cached_find(&w->cs, a))
				diag(j, D_TCACHE, HS_DIAG_ERROR, a,
				     "0x%" PRIx64 " is in a tcache and free in its slab: a double free, or a core taken mid-flush",
				     a);
			if (local < j->narenas) {
				w->slab_free[local][x->szind][0]++;
				w->slab_free[local][x->szind][1] += bi->reg_size;
			}
		} else {
			w->tot.allocated += bi->reg_size;
			where = cached_or(w, a, x->szind, is_meta(w, a) ? HS_WHERE_META : HS_WHERE_USED);
			if (where == WST(JE_TCACHE))
				w->tot.tcache += bi->reg_size;
			else if (where == HS_WHERE_META)
				w->tot.internal += bi->reg_size;
		}
		HS_CHECK(add_block(w, a, bi->reg_size, where, local));
	}
	return NULL;
}

static struct hs_error *emit_large(struct walk *w, const struct je_extent *x, unsigned local)
{
	struct je_state *j = w->j;
	if (x->szind >= j->sizes.nsizes) {
		diag(j, D_LARGE, HS_DIAG_ERROR, x->addr, "large extent 0x%" PRIx64 " has size class %u of %u; skipped",
		     x->base, x->szind, j->sizes.nsizes);
		return NULL;
	}
	uint64_t usize = j->sizes.index2size[x->szind];
	if (x->addr - x->base + usize > x->size) {
		diag(j, D_LARGE, HS_DIAG_ERROR, x->addr,
		     "large allocation 0x%" PRIx64 " of %" PRIu64 " bytes does not fit its %" PRIu64 "-byte extent at 0x%" PRIx64 "; skipped",
		     x->addr, usize, x->size, x->base);
		return NULL;
	}
	w->tot.large++;
	w->tot.allocated += usize;
	unsigned where = cached_or(w, x->addr, x->szind, is_meta(w, x->addr) ? HS_WHERE_META : WST(JE_LARGE));
	if (where == WST(JE_TCACHE))
		w->tot.tcache += usize;
	else if (where == HS_WHERE_META)
		w->tot.internal += usize;
	return add_block(w, x->addr, usize, where, local);
}

struct hs_error *je_emit_extents(struct walk *w)
{
	struct je_state *j = w->j;
	for (size_t i = 0; i < w->xs.n; i++) {
		const struct je_extent *x = &w->xs.v[i];
		if ((i & 0xfff) == 0 && hs_walk_interrupted(j->ctx))
			return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
		unsigned local = je_local_arena(w, x->arena);
		if (local == HS_ARENA_NONE)
			return &hs_error_nomem;
		switch (x->state) {
		case HS_JE_ACTIVE:
			w->tot.active += x->size;
			HS_CHECK(x->slab ? emit_slab(w, x, local) : emit_large(w, x, local));
			break;
		case HS_JE_DIRTY:
		case HS_JE_MUZZY:
		case HS_JE_RETAINED:
			*(x->state == HS_JE_DIRTY ? &w->tot.dirty : x->state == HS_JE_MUZZY ? &w->tot.muzzy : &w->tot.retained) += x->size;
			w->ext_free[local][x->state][0]++;
			w->ext_free[local][x->state][1] += x->size;
			HS_CHECK(add_block(w, x->base, x->size, WST(JE_EXTENT), local));
			break;
		default:
			diag(j, D_EDATA, HS_DIAG_WARNING, x->base,
			     "extent 0x%" PRIx64 "-0x%" PRIx64 " is being %s (a core taken inside the allocator); left out",
			     x->base, x->base + x->size, x->state == HS_JE_MERGING ? "merged" : "changed");
		}
	}
	return NULL;
}

/* Base blocks: jemalloc's metadata (arena_t, edata_t, rtree leaves), one chain
 * per arena's base_t. */
struct hs_error *je_emit_base(struct walk *w)
{
	struct je_state *j = w->j;
	const struct hs_je_layout *L = j->L;
	uint64_t seen[64];
	size_t nseen = 0;
	for (size_t a = 0; a < j->narenas; a++) {
		uint64_t base = j->arenas[a].base, b;
		bool dup = false;
		for (size_t k = 0; k < nseen; k++)
			dup |= seen[k] == base;
		if (!base || dup || !rd64(j, base + L->base_blocks, &b))
			continue;
		if (nseen < 64)
			seen[nseen++] = base;
		uint64_t total = 0, mapped = 0;
		for (unsigned n = 0; b; n++) {
			uint64_t size;
			uint64_t page = UINT64_C(1) << L->lg_page;
			if (n == MAX_BASE_BLOCKS || !plausible_ptr(b, page) || !rd64(j, b + L->block_size, &size) ||
			    !size || (size & (page - 1)) || size >= (UINT64_C(1) << 40)) {
				diag(j, D_OTHER, HS_DIAG_WARNING, b,
				     "the base blocks of arena %u end at 0x%" PRIx64 " (unreadable or not a block)", j->arenas[a].ind, b);
				break;
			}
			if (je_extent_of(&w->xs, b) || je_extent_of(&w->xs, b + size - 1)) {
				diag(j, D_OTHER, HS_DIAG_ERROR, b, "base block 0x%" PRIx64 " of arena %u overlaps the heap; skipped",
				     b, j->arenas[a].ind);
			} else {
				struct hs_region r = { b, b + size, HS_REGION_META, (unsigned)a };
				HS_CHECK(hs_alloc_desc_add_region(w->desc, &r));
				HS_CHECK(hs_heap_add(w->heap, b, size, HS_WHERE_META, w->global_base + (unsigned)a));
				total += size;
			}
			if (!rd64(j, b + L->block_next, &b))
				break;
		}
		w->tot.base += total;
		if (rd64(j, base + L->base_mapped, &mapped) && mapped != total)
			diag(j, D_OTHER, HS_DIAG_INFO, base,
			     "base of arena %u: its blocks add up to %" PRIu64 " bytes, its stats say %" PRIu64,
			     j->arenas[a].ind, total, mapped);
	}
	return NULL;
}

/* Heap regions: runs of adjacent extents of one arena. */
struct hs_error *je_describe_regions(struct walk *w)
{
	for (size_t i = 0; i < w->xs.n;) {
		const struct je_extent *x = &w->xs.v[i];
		size_t k = i + 1;
		uint64_t end = x->base + x->size;
		while (k < w->xs.n && w->xs.v[k].arena == x->arena && w->xs.v[k].base == end) {
			end += w->xs.v[k].size;
			k++;
		}
		struct hs_region r = { x->base, end, HS_REGION_HEAP, je_local_arena(w, x->arena) };
		HS_CHECK(hs_alloc_desc_add_region(w->desc, &r));
		i = k;
	}
	return NULL;
}

struct hs_error *je_describe_lists(struct walk *w)
{
	struct je_state *j = w->j;
	// Tcache bins: what each holds, against what its cache_bin_t declares.
	uint64_t (*per)[HS_JE_MAX_SIZES][3] = calloc(j->ntcaches ? j->ntcaches : 1, sizeof(*per));
	if (!per)
		return &hs_error_nomem;
	for (size_t i = 0; i < w->cs.n; i++) {
		const struct je_cached *c = &w->cs.v[i];
		per[c->tcache][c->bin][0]++;
		if (c->matched) {
			per[c->tcache][c->bin][1]++;
			per[c->tcache][c->bin][2] += j->sizes.index2size[c->bin];
		} else {
			diag(j, D_TCACHE, HS_DIAG_ERROR, c->ptr,
			     "bin %u of tcache 0x%" PRIx64 " holds 0x%" PRIx64 ", which is no allocated object of that size class",
			     c->bin, j->tcaches[c->tcache].address, c->ptr);
		}
	}
	struct hs_error *err = NULL;
	for (size_t t = 0; t < j->ntcaches && !err; t++) {
		for (unsigned b = 0; b < j->sizes.nsizes && !err; b++) {
			if (!per[t][b][0])
				continue;
			struct hs_freelist l = {
				.where = WST(JE_TCACHE), .arena = HS_ARENA_NONE, .tid = j->tcaches[t].tid,
				.owner = j->tcaches[t].address, .index = (int)b, .chunk_size = j->sizes.index2size[b],
				.count = per[t][b][1], .bytes = per[t][b][2], .declared = (int64_t)per[t][b][0],
			};
			err = hs_alloc_desc_add_list(w->desc, &l);
		}
	}
	free(per);
	HS_CHECK(err);
	for (size_t a = 0; a < j->narenas; a++) {
		for (unsigned b = 0; b < j->sizes.nbins; b++) {
			if (!w->slab_free[a][b][0])
				continue;
			uint64_t owner = j->arenas[a].address ? j->arenas[a].address + j->L->arena_bins + b * j->L->bin_size : 0;
			struct hs_freelist l = {
				.where = WST(JE_SLAB), .arena = (unsigned)a, .owner = owner, .index = (int)b,
				.chunk_size = j->sizes.bins[b].reg_size, .count = w->slab_free[a][b][0],
				.bytes = w->slab_free[a][b][1], .declared = -1,
			};
			HS_CHECK(hs_alloc_desc_add_list(w->desc, &l));
		}
		for (unsigned s = HS_JE_DIRTY; s <= HS_JE_RETAINED; s++) {
			if (!w->ext_free[a][s][0])
				continue;
			struct hs_freelist l = {
				.where = WST(JE_EXTENT), .arena = (unsigned)a, .owner = j->arenas[a].address, .index = (int)s,
				.chunk_size = UINT64_C(1) << j->L->lg_page, .count = w->ext_free[a][s][0],
				.bytes = w->ext_free[a][s][1], .declared = -1,
			};
			HS_CHECK(hs_alloc_desc_add_list(w->desc, &l));
		}
	}
	return NULL;
}

int je_arena_ind_cmp(const void *a, const void *b)
{
	const struct je_arena *x = a, *y = b;
	return (x->ind > y->ind) - (x->ind < y->ind);
}

struct hs_error *je_describe_arenas(struct walk *w)
{
	struct je_state *j = w->j;
	const struct hs_je_layout *L = j->L;
	uint64_t *sys = calloc(j->narenas ? j->narenas : 1, sizeof(uint64_t));
	if (!sys)
		return &hs_error_nomem;
	for (size_t i = 0; i < w->xs.n; i++) {
		const struct je_extent *x = &w->xs.v[i];
		if (x->state != HS_JE_RETAINED && x->arena < 4096 && j->local_of[x->arena])
			sys[j->local_of[x->arena] - 1] += x->size;
	}
	struct hs_error *err = NULL;
	for (size_t a = 0; a < j->narenas && !err; a++) {
		struct hs_arena *ar = &j->arenas[a].out;
		uint32_t nthreads;
		ar->address = j->arenas[a].address;
		snprintf(ar->label, sizeof(ar->label), "je arena %u", j->arenas[a].ind);
		ar->system_mem = sys[a];
		ar->nthreads = ar->address && rd32(j, ar->address + L->arena_nthreads, &nthreads) ? (int)nthreads : -1;
		err = hs_alloc_desc_add_arena(w->desc, ar);
	}
	free(sys);
	return err;
}

void je_describe_facts(struct walk *w)
{
	struct je_state *j = w->j;
	const struct hs_je_layout *L = j->L;
	struct hs_alloc_desc *d = w->desc;
	// "5.3.0-0-g54eaed1d8b56b1aa...": the version and a 12-digit commit fit.
	snprintf(d->version, sizeof(d->version), "%.*s", (int)sizeof(d->version) - 1,
		 j->version[0] ? j->version : L->name);
	char *g = strstr(d->version, "-g");
	if (g && strlen(g) > 14)
		g[14] = 0;
	snprintf(d->layout_source, sizeof(d->layout_source), "built-in %s; emap by %.38s", L->name, j->how);
	hs_alloc_desc_fact(d, "je_arena_emap_global", j->emap);
	hs_alloc_desc_fact(d, "rtree root", j->emap + L->emap_root);
	if (j->arenas_array)
		hs_alloc_desc_fact(d, "je_arenas", j->arenas_array);
	if (j->have_tpoff)
		hs_alloc_desc_fact(d, "tsd TLS offset (negated)", (uint64_t)-j->tpoff);
	hs_alloc_desc_fact(d, "LG_PAGE", L->lg_page);
	hs_alloc_desc_fact(d, "LG_QUANTUM", L->lg_quantum);
	hs_alloc_desc_fact(d, "LG_VADDR", L->lg_vaddr);
	hs_alloc_desc_fact(d, "rtree levels", L->height);
	hs_alloc_desc_fact(d, "SC_NBINS", j->sizes.nbins);
	hs_alloc_desc_fact(d, "SC_NSIZES", j->sizes.nsizes);
	hs_alloc_desc_fact(d, "size tables checked", strcmp(j->sizes_how, "assumed") != 0);
	hs_alloc_desc_fact(d, "sizeof(edata_t)", L->edata_size);
	hs_alloc_desc_fact(d, "sizeof(tsd_t)", L->tsd_size);
	hs_alloc_desc_fact(d, "extents", w->xs.n);
	hs_alloc_desc_fact(d, "slabs", w->tot.slabs);
	hs_alloc_desc_fact(d, "large extents", w->tot.large);
	hs_alloc_desc_fact(d, "tcaches", j->ntcaches);
	hs_alloc_desc_fact(d, "allocated_bytes", w->tot.allocated);
	hs_alloc_desc_fact(d, "active_bytes", w->tot.active);
	hs_alloc_desc_fact(d, "tcache_bytes", w->tot.tcache);
	hs_alloc_desc_fact(d, "internal_bytes", w->tot.internal);
	hs_alloc_desc_fact(d, "dirty_bytes", w->tot.dirty);
	hs_alloc_desc_fact(d, "muzzy_bytes", w->tot.muzzy);
	hs_alloc_desc_fact(d, "retained_bytes", w->tot.retained);
	hs_alloc_desc_fact(d, "base_bytes", w->tot.base);
}
