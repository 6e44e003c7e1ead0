/* alloc_glibc.c - the glibc ptmalloc walker (glibc 2.26-2.41, x86-64).
 *
 * detect: find libc, its version (the "release version 2.NN" banner in core
 * memory or in the libc file the symbols module verified), main_arena (user
 * override, DWARF, symbol table, or a scan of libc's writable data for an arena
 * whose empty bins point at themselves and whose `next` ring closes), and the
 * struct layout (DWARF, else the built-in table).
 *
 * walk, in named steps:
 *   1. arenas: the `next` ring from main_arena;
 *   2. heaps: the main heap from mp_.sbrk_base (or found back from top) and each
 *      other arena's heap_info chain, newest first;
 *   3. tcaches: each thread's tcache_perthread_struct, from static TLS below
 *      fs_base (all threads share the offset), else the first chunk of a heap;
 *   4. free lists: every tcache bin, fastbin and bin, bounded and
 *      cycle-checked (Brent), safe-linking decoded when on (decided by votes);
 *   5. chunks: every heap walked over zero-copy spans; a chunk is free iff a
 *      list holds it, or its successor's PREV_INUSE is clear (unlisted);
 *   6. mmapped chunks: page-aligned headers in anonymous writable mappings,
 *      counted against mp_.n_mmaps.
 * Layout facts that a version implies are confirmed by what the core shows
 * (tcache chunk size, where an arena sits in its heap, which malloc_state
 * variant gives a consistent arena, safe-linking votes); a disagreement is a
 * finding, and the evidence wins unless the user overrode it.
 *
 * Every finding goes to the session's diagnostics (stage "glibc"); a bad chunk
 * header costs the chunks up to the next trustworthy point, never the rest.
 *
 * This file is the walker's entry (detect, walk, destroy: the order of the
 * steps is read in gl_detect and gl_walk below) and what every step shares
 * at run time: the read cache, arrays, findings, and the description that
 * `info` prints.  The steps live in glibc_locate.c, glibc_heaps.c,
 * glibc_freelists.c and glibc_chunks.c; glibc_walker.h lists them.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "glibc_walker.h"

/* The walker's own block states (ctx->state[] gives their ids). */
static const struct hs_state_def gl_states[GL_NSTATES] = {
	[GL_TCACHE] = { "tcache", HS_STATE_FREE, "in a thread's tcache bin" },
	[GL_FASTBIN] = { "fastbin", HS_STATE_FREE, "in an arena's fastbin" },
	[GL_UNSORTED] = { "unsorted", HS_STATE_FREE, "in an arena's unsorted bin" },
	[GL_SMALLBIN] = { "smallbin", HS_STATE_FREE, "in an arena's small bin" },
	[GL_LARGEBIN] = { "largebin", HS_STATE_FREE, "in an arena's large bin" },
	[GL_TOP] = { "top", HS_STATE_FREE, "an arena's top chunk (the wilderness)" },
};

/* ------------------------------------------------------------------------ */
/* findings */

static const char *const gl_diag_what[DK_N] = {
	"of bad chunk headers", "of free-list problems", "of unlisted free chunks",
	"of unreadable memory", "of chunks on two lists", "of list entries inside chunks", "of other",
};

/* ------------------------------------------------------------------------ */
/* memory: zero-copy reads through a one-segment cache */

bool glibc_rd_slow(struct gl *g, uint64_t addr, void *buf, size_t n)
{
	const struct hs_segment *seg = hs_memory_segment(g->mem, addr);
	if (seg && seg->filesz >= n && addr - seg->start <= seg->filesz - n) {
		const uint8_t *data = hs_memory_span(g->mem, seg->start, seg->filesz);
		if (data) {
			g->c_lo = seg->start;
			g->c_len = seg->filesz;
			g->c_data = data;
			memcpy(buf, data + (addr - seg->start), n);
			return true;
		}
	}
	struct hs_error *err = hs_memory_read(g->mem, addr, buf, n);
	if (!err)
		return true;
	g->last_read_error = err->code;
	hs_error_destroy(err);
	return false;
}

/* ------------------------------------------------------------------------ */
/* growable arrays */

bool glibc_grow(void **items, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 64;
	void *p = realloc(*items, c * elem);
	if (!p)
		return false;
	*items = p;
	*cap = c;
	return true;
}

struct hs_error *glibc_add_free(struct gl *g, uint64_t chunk, unsigned where)
{
	if (!glibc_grow((void **)&g->free, &g->capfree, g->nfree, sizeof(*g->free)))
		return &hs_error_nomem;
	g->free[g->nfree++] = (struct gl_free){ .chunk = chunk, .where = (uint8_t)where };
	return NULL;
}

struct hs_error *glibc_add_heap(struct gl *g, const struct gl_heap *h)
{
	if (!glibc_grow((void **)&g->heaps, &g->capheaps, g->nheaps, sizeof(*g->heaps)))
		return &hs_error_nomem;
	g->heaps[g->nheaps++] = *h;
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* walker entry: detect */

static void gl_destroy(void *state)
{
	struct gl *g = state;
	if (!g)
		return;
	free(g->arenas);
	free(g->heaps);
	free(g->tcaches);
	free(g->free);
	free(g);
}

/* Is libc's writable memory in the core (dumped), where main_arena lives? */
static bool libc_data_dumped(struct gl *g)
{
	for (size_t r = 0; r < g->nlibc_ranges; r++)
		for (size_t i = 0; i < g->mem->nsegs; i++) {
			const struct hs_segment *seg = &g->mem->segs[i];
			if ((seg->flags & HS_SEG_W) && seg->filesz && seg->start < g->libc_ranges[r].end &&
			    g->libc_ranges[r].start < seg->start + seg->filesz)
				return true;
		}
	return false;
}

static struct hs_error *gl_detect(struct hs_walk_ctx *ctx, void **state_ret)
{
	struct gl *g = calloc(1, sizeof(*g));
	if (!g)
		return &hs_error_nomem;
	g->ctx = ctx;
	g->mem = ctx->mem;
	g->n_mmaps = -1;
	hs_walk_diag_kinds(ctx, gl_diag_what, DK_N, DIAGS_PER_KIND);

	glibc_find_libc(g);
	glibc_detect_version(g);
	glibc_choose_layout(g);
	if (!glibc_find_main_arena(g)) {
		bool libc = g->libc || g->nlibc_ranges, dumped = libc_data_dumped(g);
		gl_destroy(g);
		if (hs_walk_interrupted(ctx))
			return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
		if (!libc)
			return hs_error_create(HS_ERR_NOT_FOUND, "no glibc malloc arena found");
		// An initialised main_arena has empty bins pointing at themselves,
		// which the scan finds: none in libc's dumped data means malloc
		// never ran (another allocator replaced it), as with symbols below.
		if (dumped)
			return hs_error_create(HS_ERR_NOT_FOUND,
					       "glibc malloc was never used: no initialised arena in libc's writable memory "
					       "(if it was, give --override main_arena=ADDR)");
		return hs_error_create(HS_ERR_HEAP,
				       "libc is loaded but its main_arena was not found (no symbols, and no "
				       "arena-like data in libc's writable memory); give it with main_arena=ADDR");
	}
	/* main_arena from a symbol but malloc never initialised (another
	 * allocator replaced it): not ours, quietly. */
	struct gl_arena a;
	if (!glibc_read_arena(g, &g->L, g->main_arena, &a)) {
		uint64_t at = g->main_arena;
		const char *why = read_error_name(g);
		gl_destroy(g);
		return hs_error_create(HS_ERR_HEAP, "main_arena at 0x%" PRIx64 " cannot be read (%s)", at, why);
	}
	if (a.top == 0 && strcmp(g->main_arena_how, "override") != 0) {
		gl_destroy(g);
		return hs_error_create(HS_ERR_NOT_FOUND, "glibc malloc was never used");
	}
	if (!g->dwarf)
		glibc_confirm_ms_variant(g);
	glibc_find_mp_by_symbol(g);
	*state_ret = g;
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* the description */

/* snprintf that may cut: for fixed-size description fields. */
static void set_text(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_text(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dst, size, fmt, ap);
	va_end(ap);
}

static void describe_layout(struct gl *g, struct hs_alloc_desc *d)
{
	if (g->version)
		set_text(d->version, sizeof(d->version), "%u.%u", g->version / 100, g->version % 100);
	if (g->dwarf) {
		const char *path = g->libc->debug_path ? g->libc->debug_path : g->libc->path;
		path = path ? path : "libc";
		size_t len = strlen(path), room = sizeof(d->layout_source) - sizeof("DWARF from ...");
		if (len > room)
			set_text(d->layout_source, sizeof(d->layout_source), "DWARF from ...%s", path + len - room);
		else
			set_text(d->layout_source, sizeof(d->layout_source), "DWARF from %s", path);
	} else if (g->row) {
		set_text(d->layout_source, sizeof(d->layout_source), "built-in table %s, %s %u.%u%s%s",
			 g->row->name, g->version_from, g->version / 100, g->version % 100,
			 g->adjusted[0] ? ", adjusted: " : "", g->adjusted);
	} else {
		/* no version: the oldest row the evidence allows */
		unsigned lo = g->L.ms_have_fastchunks == HS_GLIBC_ABSENT ? 226 : V_HAVE_FASTCHUNKS;
		if (g->feat_tc && g->L.tc_count_width == 2)
			lo = V_TCACHE_U16;
		if (g->feat_safe && g->safe_linking)
			lo = V_SAFE_LINKING;
		if ((g->feat_hi && g->L.hi_sizeof == 48) ||
		    (g->mp_new_known && g->L.mp_thp_pagesize != HS_GLIBC_ABSENT))
			lo = V_HEAP_INFO_48;
		set_text(d->layout_source, sizeof(d->layout_source),
			 "built-in table by features: glibc %u.%u or later", lo / 100, lo % 100);
	}
}

static void describe_facts(struct gl *g, struct hs_alloc_desc *d)
{
	hs_alloc_desc_fact(d, "main_arena", g->main_arena);
	hs_alloc_desc_fact(d, "mp_", g->mp);
	hs_alloc_desc_fact(d, "glibc_version", g->version);
	hs_alloc_desc_fact(d, "sizeof(malloc_state)", g->L.ms_sizeof);
	hs_alloc_desc_fact(d, "sizeof(malloc_par)", g->L.mp_sizeof);
	hs_alloc_desc_fact(d, "sizeof(heap_info)", g->L.hi_sizeof);
	hs_alloc_desc_fact(d, "malloc_state.top", g->L.ms_top);
	hs_alloc_desc_fact(d, "malloc_state.bins", g->L.ms_bins);
	hs_alloc_desc_fact(d, "malloc_state.next", g->L.ms_next);
	hs_alloc_desc_fact(d, "malloc_par.sbrk_base", g->L.mp_sbrk_base);
	hs_alloc_desc_fact(d, "tcache_chunk_size", hs_glibc_tcache_chunk_size(&g->L));
	hs_alloc_desc_fact(d, "tcache_count_bytes", g->L.tc_count_width);
	hs_alloc_desc_fact(d, "safe_linking", g->safe_linking);
	hs_alloc_desc_fact(d, "heap_max_size", HS_GLIBC_HEAP_MAX);
	hs_alloc_desc_fact(d, "sbrk_base", g->sbrk_base);
	hs_alloc_desc_fact(d, "arenas", g->narenas);
	hs_alloc_desc_fact(d, "heaps", g->nheaps);
	hs_alloc_desc_fact(d, "tcaches", g->ntcaches);
	hs_alloc_desc_fact(d, "mmapped_chunks", g->nmmapped);
	if (g->n_mmaps >= 0)
		hs_alloc_desc_fact(d, "mp_.n_mmaps", (uint64_t)g->n_mmaps);
	if (g->tcache_count_max)
		hs_alloc_desc_fact(d, "mp_.tcache_count", g->tcache_count_max);
}

static void diag_how(struct gl *g)
{
	hs_walk_diag(g->ctx, HS_DIAG_INFO, g->main_arena,
		    "main_arena 0x%" PRIx64 " (%s), mp_ %s%" PRIx64 "%s%s%s, safe-linking %s (%s)",
		    g->main_arena, g->main_arena_how, g->mp ? "0x" : "", g->mp,
		    g->mp ? " (" : "not found", g->mp ? g->mp_how : "", g->mp ? ")" : "",
		    g->safe_linking ? "on" : "off", g->safe_linking_how);
}

/* ------------------------------------------------------------------------ */
/* walker entry: walk */

static struct hs_error *gl_walk(struct hs_walk_ctx *ctx, void *state, struct hs_heap *heap,
				struct hs_alloc_desc *d)
{
	struct gl *g = state;
	g->ctx = ctx;
	HS_CHECK(glibc_read_arena_ring(g));                  /* 1 */
	HS_CHECK(glibc_find_orphan_arenas(g));
	HS_CHECK(glibc_find_heaps(g));                       /* 2 */
	HS_CHECK(glibc_find_tcaches(g));                     /* 3 */
	glibc_decide_safe_linking(g);
	HS_CHECK(glibc_walk_lists(g, d));                    /* 4 */
	HS_CHECK(glibc_walk_heaps(g, heap, d));              /* 5 */
	glibc_report_stray_entries(g);
	HS_CHECK(glibc_find_mmapped(g, heap, d));            /* 6 */

	// The arena and malloc_par structs in libc's data point at chunk headers
	// (top, bins), which lie in the tail of the chunk before: allocator
	// metadata, never a root.
	struct hs_region meta = { .start = g->main_arena, .end = g->main_arena + g->L.ms_sizeof,
				  .kind = HS_REGION_META, .arena = 0 };
	HS_CHECK(hs_alloc_desc_add_region(d, &meta));
	if (g->mp && g->L.mp_sizeof) {
		meta = (struct hs_region){ .start = g->mp, .end = g->mp + g->L.mp_sizeof,
					   .kind = HS_REGION_META, .arena = HS_ARENA_NONE };
		HS_CHECK(hs_alloc_desc_add_region(d, &meta));
	}
	d->allocator = "glibc";
	describe_layout(g, d);
	for (size_t i = 0; i < g->narenas; i++)
		HS_CHECK(hs_alloc_desc_add_arena(d, &g->arenas[i].out));
	describe_facts(g, d);
	diag_how(g);
	hs_walk_diag_flush(g->ctx);
	return NULL;
}

static const char *const glibc_overrides[] = { "main_arena", "mp_", "glibc_version", "heap_info_size", "tcache_counts_u16", "safe_linking", NULL };

const struct hs_walker hs_glibc_walker = {
	.name = "glibc",
	.title = "glibc ptmalloc",
	.states = gl_states,
	.nstates = GL_NSTATES,
	.detect = gl_detect,
	.walk = gl_walk,
	.destroy = gl_destroy,
	.overrides = glibc_overrides,
};
