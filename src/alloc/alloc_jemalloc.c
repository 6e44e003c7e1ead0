/* alloc_jemalloc.c - the jemalloc 5.2.1 / 5.3.0 walker: find the extent map,
 * walk every extent it indexes, and say what each byte of the heap is.
 *
 * jemalloc's one complete index is the extent map (5.3: je_arena_emap_global,
 * 5.2: je_extents_rtree), an rtree from page to edata_t / extent_t (arena and
 * bin lists are incomplete for automatic arenas).  So the walk is:
 *   build    the candidate layouts (jemalloc_layout.h) from the version string
 *            and the TLS size: 5.3.0 has two rtree shapes (LG_VADDR 48 or 57,
 *            fixed by the build machine), told apart by which one decodes;
 *   locate   the emap: an override, the symbol, else three symbol-less ways
 *            (RIP-relative leas in exported functions, TLS -> rtree_ctx ->
 *            leaf -> (node ->) root, a scan of the module's writable memory),
 *            each accepted only when the rtree it implies decodes consistently
 *            (emap_check, elm_disagrees: stale elements of freed extents pass);
 *   collect  every extent from the rtree leaves (one edata_t read each);
 *   tcaches  every thread cache, from the arenas' tcache rings and from each
 *            thread's TLS (tsd_t): the objects they hold are free;
 *   emit     slab regions (the bitmap says free), large allocations at their
 *            user pointer, cached objects, inactive extents, and jemalloc's own
 *            memory (base blocks, tcache stacks) as metadata.
 * Layout facts come from jemalloc_layout.h only.  Every loop is bounded and
 * every read checked; what does not decode is reported and skipped.
 *
 * This file is the walker's entry: detect (je_detect: build, locate,
 * arenas) and walk (walk_run: collect, tcaches, emit, describe) read as the
 * list of steps above; the steps live in jemalloc_detect.c,
 * jemalloc_locate.c, jemalloc_rtree.c, jemalloc_tcache.c and
 * jemalloc_emit.c (jemalloc_walker.h lists them).  The size classes, also
 * used by the unit tests, are here.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jemalloc_walker.h"

/* --- size classes ---------------------------------------------------- */

struct hs_error *hs_je_sizes_compute(unsigned lg_quantum, unsigned lg_page, struct hs_je_sizes *ret)
{
	if (lg_quantum < 3 || lg_quantum > 8 || lg_page < 12 || lg_page > 16)
		return hs_error_create(HS_ERR_OTHER, "no size classes for LG_QUANTUM %u, LG_PAGE %u",
				       lg_quantum, lg_page);
	memset(ret, 0, sizeof(*ret));
	ret->lg_quantum = lg_quantum;
	ret->lg_page = lg_page;
	unsigned n = 0;
	// Tiny classes 8 .. quantum/2, then quantum multiples up to 4 quanta,
	// then four classes per doubling up to (but not including) 2^63.
	for (unsigned lg = 3; lg < lg_quantum; lg++)
		ret->index2size[n++] = UINT64_C(1) << lg;
	for (unsigned nd = 1; nd <= 4; nd++)
		ret->index2size[n++] = (uint64_t)nd << lg_quantum;
	for (unsigned lg_base = lg_quantum + 2; lg_base <= 62; lg_base++) {
		for (unsigned nd = 1; nd <= 4; nd++) {
			if (lg_base == 62 && nd == 4)
				break;
			if (n == HS_JE_MAX_SIZES)
				return hs_error_create(HS_ERR_OTHER, "too many size classes");
			ret->index2size[n++] = (UINT64_C(1) << lg_base) + ((uint64_t)nd << (lg_base - 2));
		}
	}
	ret->nsizes = n;
	// Small (slab) classes are those below 4 pages.  A slab is the smallest
	// whole number of pages that the region size divides.
	uint64_t page = UINT64_C(1) << lg_page;
	for (unsigned i = 0; i < n && ret->index2size[i] < (page << 2); i++) {
		if (i == HS_JE_MAX_BINS)
			return hs_error_create(HS_ERR_OTHER, "too many bins");
		uint64_t reg = ret->index2size[i], slab = page;
		while (slab % reg)
			slab += page;
		ret->bins[i] = (struct hs_je_bin_info){ reg, slab, (uint32_t)(slab / reg) };
		ret->nbins = i + 1;
	}
	return NULL;
}

size_t hs_je_bin_infos_image(const struct hs_je_sizes *sz, uint8_t *buf)
{
	for (unsigned i = 0; i < sz->nbins; i++) {
		const struct hs_je_bin_info *b = &sz->bins[i];
		uint64_t w[5] = { b->reg_size, b->slab_size, (uint64_t)b->nregs | (UINT64_C(1) << 32),
				  b->nregs, (b->nregs + 63) / 64 };
		memcpy(buf + 40 * i, w, 40);
	}
	return 40 * (size_t)sz->nbins;
}

/* --- findings and states ------------------------------------------------ */

static const char *const je_diag_what[] = {
	"about rtree elements", "about edata_t records", "about slabs", "about tcache entries",
	"about large extents", "about overlapping extents", "about tcache rings", "about other findings",
};

static const struct hs_state_def je_states[JE_NSTATES] = {
	[JE_LARGE] = { "large", HS_STATE_USED, "a live large allocation (its own extent)" },
	[JE_TCACHE] = { "tcache", HS_STATE_FREE, "cached in a thread's tcache bin" },
	[JE_SLAB] = { "slab", HS_STATE_FREE, "a free region of a slab" },
	[JE_EXTENT] = { "extent", HS_STATE_FREE, "inactive pages (dirty, muzzy or retained extents)" },
};

/* --- detect ---------------------------------------------------------------- */

static void state_destroy(void *p)
{
	struct je_state *j = p;
	if (!j)
		return;
	hs_elf_close(j->file);
	free(j->arenas);
	free(j->tcaches);
	free(j);
}

static struct hs_error *je_detect(struct hs_walk_ctx *ctx, void **state_ret)
{
	*state_ret = NULL;
	struct je_state *j = calloc(1, sizeof(*j));
	if (!j)
		return &hs_error_nomem;
	j->ctx = ctx;
	j->mem = ctx->mem;
	hs_walk_diag_kinds(ctx, je_diag_what, sizeof(je_diag_what) / sizeof(je_diag_what[0]), MAX_DIAGS_PER_KIND);
	j->L = &hs_je_layout_5_3_0;
	struct hs_symbol sym = { 0 };
	bool have_sym = false;
	uint64_t ov;
	bool override = hs_walk_override(ctx, "je_arena_emap_global", &ov);
	j->mod = je_find_module(j, &sym, &have_sym);
	if (!j->mod && override)
		j->mod = hs_walk_module_at(ctx, ov);
	if (!j->mod && !override) {
		state_destroy(j);
		return hs_error_create(HS_ERR_NOT_FOUND,
				       "jemalloc is not in this process: no libjemalloc module, no je_arena_emap_global symbol and no jemalloc version string in the executable (a stripped one can be given with --override je_arena_emap_global=ADDR)");
	}
	snprintf(j->module_name, sizeof(j->module_name), "%s",
		 j->mod ? hs_base_name(j->mod->path ? j->mod->path : j->mod->name) : "the target");
	j->file = j->mod ? hs_elf_open(j->mod->path, j->mod->bias) : NULL;
	struct hs_error *err = je_check_build(j);
	if (!err) {
		j->L = j->cands[0];
		err = je_check_size_classes(j);
	}
	if (!err)
		err = je_locate_emap(j, &sym, have_sym);
	if (!err)
		err = je_find_arenas(j);
	if (err) {
		state_destroy(j);
		return err;
	}
	*state_ret = j;
	return NULL;
}

static void walk_free(struct walk *w)
{
	free(w->xs.v);
	free(w->cs.v);
	free(w->cs.stacks);
	free(w->meta);
	free(w->slab_free);
	free(w->ext_free);
}

static struct hs_error *walk_run(struct walk *w)
{
	struct je_state *j = w->j;
	HS_CHECK(je_collect_extents(j, &w->xs));
	HS_CHECK(je_find_tcaches(j));
	HS_CHECK(je_read_tcaches(j, &w->cs));
	HS_CHECK(je_find_meta(w));
	// Every arena an extent names gets an entry (found or not), before the
	// per-arena tables are sized.
	for (size_t i = 0; i < w->xs.n; i++)
		if (je_local_arena(w, w->xs.v[i].arena) == HS_ARENA_NONE)
			return &hs_error_nomem;
	// Arenas in index order: local index = position.
	if (j->narenas) {
		qsort(j->arenas, j->narenas, sizeof(*j->arenas), je_arena_ind_cmp);
		memset(j->local_of, 0, sizeof(j->local_of));
		for (size_t a = 0; a < j->narenas; a++)
			j->local_of[j->arenas[a].ind] = (uint16_t)(a + 1);
	}
	w->slab_free = calloc(j->narenas ? j->narenas : 1, sizeof(*w->slab_free));
	w->ext_free = calloc(j->narenas ? j->narenas : 1, sizeof(*w->ext_free));
	if (!w->slab_free || !w->ext_free)
		return &hs_error_nomem;
	HS_CHECK(je_emit_extents(w));
	HS_CHECK(je_emit_base(w));
	HS_CHECK(je_describe_arenas(w));
	HS_CHECK(je_describe_regions(w));
	HS_CHECK(je_describe_lists(w));
	je_describe_facts(w);
	if (!j->ntcaches)
		hs_walk_diag(j->ctx, HS_DIAG_WARNING, 0,
			    "no tcache was found (no arena ring, no thread's TLS): objects cached in tcaches are counted as used");
	hs_walk_diag_flush(j->ctx);
	return NULL;
}

static struct hs_error *je_walk(struct hs_walk_ctx *ctx, void *state, struct hs_heap *heap,
				struct hs_alloc_desc *desc)
{
	struct je_state *j = state;
	j->ctx = ctx;
	struct walk w = { .j = j, .heap = heap, .desc = desc, .global_base = ctx->arena_base };
	struct hs_error *err = walk_run(&w);
	walk_free(&w);
	return err;
}

static const char *const jemalloc_overrides[] = { "je_arenas", "je_arena_emap_global", "je_locator", NULL };

const struct hs_walker hs_jemalloc_walker = {
	.name = "jemalloc",
	.title = "jemalloc",
	.states = je_states,
	.nstates = JE_NSTATES,
	.detect = je_detect,
	.walk = je_walk,
	.destroy = state_destroy,
	.overrides = jemalloc_overrides,
};
