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
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "glibc_layouts.h"
#include "walker.h"

#define PAGE_SIZE_4K        UINT64_C(4096)
#define MAX_ARENAS          4096u          /* ring walk bound (HS_ARENA_NONE is 0xffff) */
#define MAX_HEAPS_PER_ARENA 65536u         /* heap_info chain bound */
#define TLS_SCAN_BYTES      (64u * 1024)   /* static TLS searched below fs_base */
#define RESYNC_WINDOW       (UINT64_C(4) << 20)
#define RESYNC_CHAIN        64u            /* valid headers in a row that we trust */
#define HEAP_START_PAGES    4096u          /* pages tried when sbrk_base is unknown */
#define DIAGS_PER_KIND      25u
#define ARENA_SCORE_ALONE   120            /* consistent bins (of 127) that need no ring */
#define ARENA_SCORE_RING    500            /* bonus: the next ring is cut by missing memory */
#define ARENA_SCORE_CLOSED  1000           /* bonus: the next ring closes */
#define BANNER              "release version "

struct gl_range { uint64_t start, end; };

struct gl_arena {
	uint64_t addr;
	uint64_t top;                     /* top chunk (not user address) */
	uint64_t next, flags, system_mem, attached;
	uint64_t fastbins[HS_GLIBC_NFASTBINS];
	uint64_t bins[2 * (HS_GLIBC_NBINS - 1)];
	struct hs_arena out;              /* label and totals for the description */
	uint64_t heap_bytes;              /* what its heaps span, when all were found (else 0) */
};

/* One run of chunks: the main heap (or a piece of it), or one heap_info heap. */
struct gl_heap {
	uint64_t start, end;              /* the region: [start, end) */
	uint64_t first;                   /* first chunk */
	uint64_t info;                    /* heap_info address, 0 for the main heap */
	unsigned arena;
	bool has_top;                     /* the arena's top chunk ends this heap */
	bool main;
	bool top_guess;                   /* main heap with a bad top: the chunk that
					     ends the mapping is taken for top */
};

struct gl_tcache { uint64_t addr; int32_t tid; unsigned arena; };

/* A chunk some list holds (or a tcache struct: HS_WHERE_META). */
struct gl_free { uint64_t chunk; uint8_t where; uint8_t matched; };

enum gl_diag_kind { DK_HEADER, DK_LIST, DK_UNLISTED, DK_READ, DK_DUP, DK_STRAY, DK_OTHER, DK_N };

/* The walker's own block states (ctx->state[] gives their ids). */
enum gl_state { GL_TCACHE, GL_FASTBIN, GL_UNSORTED, GL_SMALLBIN, GL_LARGEBIN, GL_TOP, GL_NSTATES };
static const struct hs_state_def gl_states[GL_NSTATES] = {
	[GL_TCACHE] = { "tcache", HS_STATE_FREE, "in a thread's tcache bin" },
	[GL_FASTBIN] = { "fastbin", HS_STATE_FREE, "in an arena's fastbin" },
	[GL_UNSORTED] = { "unsorted", HS_STATE_FREE, "in an arena's unsorted bin" },
	[GL_SMALLBIN] = { "smallbin", HS_STATE_FREE, "in an arena's small bin" },
	[GL_LARGEBIN] = { "largebin", HS_STATE_FREE, "in an arena's large bin" },
	[GL_TOP] = { "top", HS_STATE_FREE, "an arena's top chunk (the wilderness)" },
};
#define GST(k) (g->ctx->state[k])

struct gl {
	struct hs_walk_ctx *ctx;
	struct hs_memory *mem;

	/* read cache: the dumped part of the last segment read */
	uint64_t c_lo, c_len;
	const uint8_t *c_data;
	enum hs_error_code last_read_error;

	/* detection */
	struct hs_module *libc;
	struct gl_range libc_ranges[32];
	size_t nlibc_ranges;
	struct hs_glibc_layout L;
	bool dwarf;                       /* L is from DWARF */
	const struct hs_glibc_layout *row;/* table row chosen (NULL: by features) */
	unsigned version;                 /* 236; 0 unknown */
	char version_from[48];
	bool over_hi, over_tc, over_safe; /* user overrides pin these features */
	char adjusted[64];                /* features that overrode the version's row */
	uint64_t main_arena, mp;
	const char *main_arena_how, *mp_how;
	bool mp_new_known;                /* mp_ variant decided by a match */
	bool feat_tc, feat_hi, feat_safe; /* decided by what the core shows */

	/* walk */
	struct gl_arena *arenas;
	size_t narenas, caparenas;
	struct gl_heap *heaps;
	size_t nheaps, capheaps;
	struct gl_tcache *tcaches;
	size_t ntcaches, captcaches;
	struct gl_free *free;
	size_t nfree, capfree;
	uint64_t sbrk_base;
	int64_t n_mmaps;                  /* mp_.n_mmaps, -1 unknown */
	uint64_t tcache_count_max;        /* mp_.tcache_count, 0 unknown */
	bool safe_linking;
	const char *safe_linking_how;
	size_t nmmapped;
	bool interrupted;
	unsigned dcount[DK_N];
};

/* ------------------------------------------------------------------------ */
/* findings */

static const char *const gl_diag_what[DK_N] = {
	"of bad chunk headers", "of free-list problems", "of unlisted free chunks",
	"of unreadable memory", "of chunks on two lists", "of list entries inside chunks", "of other",
};

#define gdiag(g, kind, ...) hs_walk_diagk((g)->ctx, (kind), __VA_ARGS__)

/* ------------------------------------------------------------------------ */
/* memory: zero-copy reads through a one-segment cache */

static bool rd_slow(struct gl *g, uint64_t addr, void *buf, size_t n)
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

static inline bool rd(struct gl *g, uint64_t addr, void *buf, size_t n)
{
	uint64_t off = addr - g->c_lo;
	if (off < g->c_len && g->c_len - off >= n) {
		memcpy(buf, g->c_data + off, n);
		return true;
	}
	return rd_slow(g, addr, buf, n);
}

static inline bool rd64(struct gl *g, uint64_t addr, uint64_t *v)
{
	return rd(g, addr, v, 8);
}

static const char *read_error_name(const struct gl *g)
{
	return g->last_read_error == HS_ERR_NOT_DUMPED ? "not dumped" : "not mapped";
}

static inline uint64_t ld64(const uint8_t *buf, unsigned off)
{
	uint64_t v;
	memcpy(&v, buf + off, 8);
	return v;
}

static inline uint64_t chunksize(uint64_t size_field)
{
	return size_field & ~HS_GLIBC_SIZE_BITS;
}

/* ------------------------------------------------------------------------ */
/* growable arrays */

static bool grow(void **items, size_t *cap, size_t n, size_t elem)
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

static struct hs_error *add_free(struct gl *g, uint64_t chunk, unsigned where)
{
	if (!grow((void **)&g->free, &g->capfree, g->nfree, sizeof(*g->free)))
		return &hs_error_nomem;
	g->free[g->nfree++] = (struct gl_free){ .chunk = chunk, .where = (uint8_t)where };
	return NULL;
}

static struct hs_error *add_heap(struct gl *g, const struct gl_heap *h)
{
	if (!grow((void **)&g->heaps, &g->capheaps, g->nheaps, sizeof(*g->heaps)))
		return &hs_error_nomem;
	g->heaps[g->nheaps++] = *h;
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* layouts: the table rows, aspects of a row, DWARF */

static void copy_ms(struct hs_glibc_layout *d, const struct hs_glibc_layout *s)
{
	d->ms_flags = s->ms_flags; d->ms_have_fastchunks = s->ms_have_fastchunks;
	d->ms_fastbins = s->ms_fastbins; d->ms_top = s->ms_top;
	d->ms_last_remainder = s->ms_last_remainder; d->ms_bins = s->ms_bins;
	d->ms_binmap = s->ms_binmap; d->ms_next = s->ms_next; d->ms_next_free = s->ms_next_free;
	d->ms_attached_threads = s->ms_attached_threads; d->ms_system_mem = s->ms_system_mem;
	d->ms_max_system_mem = s->ms_max_system_mem; d->ms_sizeof = s->ms_sizeof;
}

static void copy_mp(struct hs_glibc_layout *d, const struct hs_glibc_layout *s)
{
	d->mp_trim_threshold = s->mp_trim_threshold; d->mp_top_pad = s->mp_top_pad;
	d->mp_mmap_threshold = s->mp_mmap_threshold; d->mp_arena_test = s->mp_arena_test;
	d->mp_arena_max = s->mp_arena_max; d->mp_thp_pagesize = s->mp_thp_pagesize;
	d->mp_hp_pagesize = s->mp_hp_pagesize; d->mp_n_mmaps = s->mp_n_mmaps;
	d->mp_n_mmaps_max = s->mp_n_mmaps_max; d->mp_max_n_mmaps = s->mp_max_n_mmaps;
	d->mp_mmapped_mem = s->mp_mmapped_mem; d->mp_max_mmapped_mem = s->mp_max_mmapped_mem;
	d->mp_sbrk_base = s->mp_sbrk_base; d->mp_tcache_bins = s->mp_tcache_bins;
	d->mp_tcache_max_bytes = s->mp_tcache_max_bytes; d->mp_tcache_count = s->mp_tcache_count;
	d->mp_sizeof = s->mp_sizeof;
}

static void copy_hi(struct hs_glibc_layout *d, const struct hs_glibc_layout *s)
{
	d->hi_ar_ptr = s->hi_ar_ptr; d->hi_prev = s->hi_prev; d->hi_size = s->hi_size;
	d->hi_mprotect_size = s->hi_mprotect_size; d->hi_pagesize = s->hi_pagesize;
	d->hi_sizeof = s->hi_sizeof;
}

static void copy_tc(struct hs_glibc_layout *d, const struct hs_glibc_layout *s)
{
	d->tc_counts = s->tc_counts; d->tc_count_width = s->tc_count_width;
	d->tc_entries = s->tc_entries; d->tc_nbins = s->tc_nbins; d->tc_sizeof = s->tc_sizeof;
}

/* The rows that differ in one aspect: named by the first version that has the
 * newer variant. */
static const struct hs_glibc_layout *row_of(unsigned version)
{
	const struct hs_glibc_layout *r = hs_glibc_layout_for_version(version);
	return r ? r : &hs_glibc_layouts[hs_glibc_nlayouts - 1];
}
#define V_HAVE_FASTCHUNKS 227u
#define V_TCACHE_U16      230u
#define V_SAFE_LINKING    232u
#define V_HEAP_INFO_48    235u

static void note_adjusted(struct gl *g, const char *what)
{
	size_t len = strlen(g->adjusted);
	snprintf(g->adjusted + len, sizeof(g->adjusted) - len, "%s%s", len ? "," : "", what);
}

static bool dwarf_member(struct hs_module *m, const char *st, const char *member, uint16_t *ret)
{
	uint64_t off;
	uint32_t bit;
	struct hs_error *err = hs_dwarf_member_offset(m, st, member, &off, &bit);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	if (off >= HS_GLIBC_ABSENT)
		return false;
	*ret = (uint16_t)off;
	return true;
}

static bool dwarf_size(struct hs_module *m, const char *st, uint16_t *ret)
{
	uint64_t size;
	struct hs_error *err = hs_dwarf_struct_size(m, st, &size);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	if (size >= HS_GLIBC_ABSENT)
		return false;
	*ret = (uint16_t)size;
	return true;
}

/* Fill L from libc's DWARF, on top of the row for the version (which supplies
 * what DWARF cannot say: safe-linking, what `key` holds).  False when a
 * field the walk cannot do without is missing. */
static bool layout_from_dwarf(struct gl *g, struct hs_glibc_layout *L)
{
	struct hs_module *m = g->libc;
	bool ok = true;
#define NEED(st, mem, field) ok = dwarf_member(m, st, mem, &L->field) && ok
#define MAYBE(st, mem, field) if (!dwarf_member(m, st, mem, &L->field)) L->field = HS_GLIBC_ABSENT

	NEED("malloc_state", "flags", ms_flags);
	MAYBE("malloc_state", "have_fastchunks", ms_have_fastchunks);
	NEED("malloc_state", "fastbinsY", ms_fastbins);
	NEED("malloc_state", "top", ms_top);
	NEED("malloc_state", "last_remainder", ms_last_remainder);
	NEED("malloc_state", "bins", ms_bins);
	NEED("malloc_state", "binmap", ms_binmap);
	NEED("malloc_state", "next", ms_next);
	NEED("malloc_state", "next_free", ms_next_free);
	NEED("malloc_state", "attached_threads", ms_attached_threads);
	NEED("malloc_state", "system_mem", ms_system_mem);
	NEED("malloc_state", "max_system_mem", ms_max_system_mem);
	ok = dwarf_size(m, "malloc_state", &L->ms_sizeof) && ok;
	if (!ok)
		return false;

	/* mp_ and heap_info: keep the row's values for what DWARF lacks */
	struct hs_glibc_layout mp = *L;
	bool mp_ok = true;
#define NEED_MP(mem, field) mp_ok = dwarf_member(m, "malloc_par", mem, &mp.field) && mp_ok
	NEED_MP("trim_threshold", mp_trim_threshold);
	NEED_MP("top_pad", mp_top_pad);
	NEED_MP("mmap_threshold", mp_mmap_threshold);
	NEED_MP("arena_test", mp_arena_test);
	NEED_MP("arena_max", mp_arena_max);
	NEED_MP("n_mmaps", mp_n_mmaps);
	NEED_MP("n_mmaps_max", mp_n_mmaps_max);
	NEED_MP("max_n_mmaps", mp_max_n_mmaps);
	NEED_MP("mmapped_mem", mp_mmapped_mem);
	NEED_MP("max_mmapped_mem", mp_max_mmapped_mem);
	NEED_MP("sbrk_base", mp_sbrk_base);
	NEED_MP("tcache_bins", mp_tcache_bins);
	NEED_MP("tcache_max_bytes", mp_tcache_max_bytes);
	NEED_MP("tcache_count", mp_tcache_count);
	mp_ok = dwarf_size(m, "malloc_par", &mp.mp_sizeof) && mp_ok;
	if (!dwarf_member(m, "malloc_par", "thp_pagesize", &mp.mp_thp_pagesize))
		mp.mp_thp_pagesize = HS_GLIBC_ABSENT;
	if (!dwarf_member(m, "malloc_par", "hp_pagesize", &mp.mp_hp_pagesize))
		mp.mp_hp_pagesize = HS_GLIBC_ABSENT;
	if (mp_ok)
		copy_mp(L, &mp);

	static const char *const hi_names[] = { "_heap_info", "heap_info" };
	for (size_t i = 0; i < 2; i++) {
		struct hs_glibc_layout hi = *L;
		const char *st = hi_names[i];
		if (dwarf_member(m, st, "ar_ptr", &hi.hi_ar_ptr) && dwarf_member(m, st, "prev", &hi.hi_prev) &&
		    dwarf_member(m, st, "size", &hi.hi_size) &&
		    dwarf_member(m, st, "mprotect_size", &hi.hi_mprotect_size) &&
		    dwarf_size(m, st, &hi.hi_sizeof)) {
			if (!dwarf_member(m, st, "pagesize", &hi.hi_pagesize))
				hi.hi_pagesize = HS_GLIBC_ABSENT;
			copy_hi(L, &hi);
			break;
		}
	}

	struct hs_glibc_layout tc = *L;
	if (dwarf_member(m, "tcache_perthread_struct", "counts", &tc.tc_counts) &&
	    dwarf_member(m, "tcache_perthread_struct", "entries", &tc.tc_entries) &&
	    dwarf_size(m, "tcache_perthread_struct", &tc.tc_sizeof) && tc.tc_entries > tc.tc_counts) {
		unsigned width = (tc.tc_entries - tc.tc_counts) / HS_GLIBC_TCACHE_MAX_BINS;
		if (width == 1 || width == 2) {
			tc.tc_count_width = (uint16_t)width;
			tc.tc_nbins = HS_GLIBC_TCACHE_MAX_BINS;
			copy_tc(L, &tc);
		}
	}
	if (!dwarf_member(m, "tcache_entry", "key", &L->te_key))
		L->te_key = HS_GLIBC_ABSENT;
	L->name = "DWARF";
#undef NEED
#undef MAYBE
#undef NEED_MP
	return true;
}

/* ------------------------------------------------------------------------ */
/* detection: libc, version, layout */

static bool is_libc_name(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	return strncmp(base, "libc.so", 7) == 0 || strncmp(base, "libc-2.", 7) == 0;
}

static void add_libc_range(struct gl *g, uint64_t start, uint64_t end)
{
	if (g->nlibc_ranges < sizeof(g->libc_ranges) / sizeof(g->libc_ranges[0]) && start < end)
		g->libc_ranges[g->nlibc_ranges++] = (struct gl_range){ start, end };
}

/* libc's address ranges: the module's load range, or its NT_FILE mappings
 * plus the anonymous mapping right after them (.bss). */
static void find_libc(struct gl *g)
{
	g->libc = hs_walk_module_named(g->ctx, "libc.so");
	if (!g->libc)
		g->libc = hs_walk_module_named(g->ctx, "libc-2.");
	if (g->libc)
		add_libc_range(g, g->libc->start, g->libc->end);
	const struct hs_notes *n = g->ctx->notes;
	uint64_t last_end = 0;
	for (size_t i = 0; i < n->nfiles; i++) {
		if (!n->files[i].path || !is_libc_name(n->files[i].path))
			continue;
		add_libc_range(g, n->files[i].start, n->files[i].end);
		if (n->files[i].end > last_end)
			last_end = n->files[i].end;
	}
	if (last_end) {
		const struct hs_segment *seg = hs_memory_segment(g->mem, last_end);
		if (seg && seg->start == last_end && (seg->flags & HS_SEG_W))
			add_libc_range(g, seg->start, seg->end);
	}
}

/* "2.36." after "release version " -> 236. */
static unsigned parse_banner(const char *p, const char *end)
{
	unsigned major = 0, minor = 0;
	int nd = 0;
	while (p < end && *p >= '0' && *p <= '9' && nd < 3)
		major = major * 10 + (unsigned)(*p++ - '0'), nd++;
	if (!nd || p >= end || *p++ != '.')
		return 0;
	nd = 0;
	while (p < end && *p >= '0' && *p <= '9' && nd < 3)
		minor = minor * 10 + (unsigned)(*p++ - '0'), nd++;
	if (!nd || major != 2 || minor > 99)
		return 0;
	return major * 100 + minor;
}

static unsigned banner_in(const uint8_t *data, size_t len)
{
	const uint8_t *p = data, *end = data + len;
	static const char prefix[] = "GNU C Library";
	while (p < end) {
		const uint8_t *hit = memmem(p, (size_t)(end - p), BANNER, sizeof(BANNER) - 1);
		if (!hit)
			return 0;
		/* must be glibc's own banner: "GNU C Library ... release version" */
		size_t back = (size_t)(hit - data) < 200 ? (size_t)(hit - data) : 200;
		if (memmem(hit - back, back, prefix, sizeof(prefix) - 1)) {
			unsigned v = parse_banner((const char *)hit + sizeof(BANNER) - 1, (const char *)end);
			if (v)
				return v;
		}
		p = hit + 1;
	}
	return 0;
}

static unsigned banner_in_memory(struct gl *g)
{
	for (size_t r = 0; r < g->nlibc_ranges; r++) {
		for (size_t i = 0; i < g->mem->nsegs; i++) {
			const struct hs_segment *seg = &g->mem->segs[i];
			uint64_t lo = seg->start > g->libc_ranges[r].start ? seg->start : g->libc_ranges[r].start;
			uint64_t dumped_end = seg->start + seg->filesz;
			uint64_t hi = dumped_end < g->libc_ranges[r].end ? dumped_end : g->libc_ranges[r].end;
			if (lo >= hi || (seg->flags & HS_SEG_W))
				continue;
			const uint8_t *data = hs_memory_span(g->mem, lo, hi - lo);
			unsigned v = data ? banner_in(data, hi - lo) : 0;
			if (v)
				return v;
		}
	}
	return 0;
}

static unsigned banner_in_file(const char *path)
{
	struct hs_elf_file *f = hs_elf_open(path, 0);
	if (!f)
		return 0;
	uint64_t len;
	const uint8_t *image = hs_elf_image(f, &len);
	unsigned v = banner_in(image, (size_t)len);
	hs_elf_close(f);
	return v;
}

static void detect_version(struct gl *g)
{
	uint64_t v;
	if (hs_walk_override(g->ctx, "glibc_version", &v)) {
		g->version = (unsigned)v;
		snprintf(g->version_from, sizeof(g->version_from), "override");
		return;
	}
	if ((g->version = banner_in_memory(g))) {
		snprintf(g->version_from, sizeof(g->version_from), "core's banner");
		return;
	}
	/* The file the symbols module verified by build-id; never the host's own
	 * libc by name. */
	if (g->libc && g->libc->path && g->libc->elf_found && !g->libc->build_id_mismatch &&
	    (g->version = banner_in_file(g->libc->path))) {
		snprintf(g->version_from, sizeof(g->version_from), "libc file's banner");
		return;
	}
	g->version = 0;
}

static void choose_layout(struct gl *g)
{
	g->row = g->version ? hs_glibc_layout_for_version(g->version) : NULL;
	if (g->version && !g->row)
		hs_walk_diag(g->ctx, HS_DIAG_WARNING, 0,
			    "glibc %u.%02u is outside the built-in layouts (2.26-2.41): "
			    "using the nearest one, confirmed by what the core shows",
			    g->version / 100, g->version % 100);
	const struct hs_glibc_layout *base = g->row;
	if (!base)
		base = g->version && g->version < hs_glibc_layouts[0].first ? &hs_glibc_layouts[0]
									  : row_of(0);
	g->L = *base;
	if (g->libc && g->libc->debug_found && layout_from_dwarf(g, &g->L))
		g->dwarf = true;
	else
		g->L = *base;
	g->safe_linking = g->L.safe_linking;
	g->safe_linking_how = g->row ? "version" : "default";

	uint64_t v;
	if (hs_walk_override(g->ctx, "heap_info_size", &v) && (v == 32 || v == 48)) {
		copy_hi(&g->L, row_of(v == 48 ? V_HEAP_INFO_48 : V_HEAP_INFO_48 - 1));
		g->over_hi = true;
	}
	if (hs_walk_override(g->ctx, "tcache_counts_u16", &v)) {
		copy_tc(&g->L, row_of(v ? V_TCACHE_U16 : V_TCACHE_U16 - 1));
		g->over_tc = true;
	}
	if (hs_walk_override(g->ctx, "safe_linking", &v)) {
		g->safe_linking = v != 0;
		g->safe_linking_how = "override";
		g->over_safe = true;
	}
}

/* ------------------------------------------------------------------------ */
/* arenas */

static bool is_chunk_ptr(uint64_t p)
{
	return p && (p & (HS_GLIBC_ALIGN - 1)) == 0;
}

/* Read one malloc_state with the malloc_state aspect of layout L. */
static bool read_arena(struct gl *g, const struct hs_glibc_layout *L, uint64_t addr,
		       struct gl_arena *a)
{
	uint8_t buf[4096];
	if (L->ms_sizeof > sizeof(buf) || !rd(g, addr, buf, L->ms_sizeof))
		return false;
	memset(a, 0, sizeof(*a));
	a->addr = addr;
	a->top = ld64(buf, L->ms_top);
	a->next = ld64(buf, L->ms_next);
	uint32_t flags;
	memcpy(&flags, buf + L->ms_flags, 4);
	a->flags = flags;
	a->system_mem = ld64(buf, L->ms_system_mem);
	a->attached = ld64(buf, L->ms_attached_threads);
	for (unsigned i = 0; i < HS_GLIBC_NFASTBINS; i++)
		a->fastbins[i] = ld64(buf, L->ms_fastbins + 8 * i);
	for (unsigned i = 0; i < 2 * (HS_GLIBC_NBINS - 1); i++)
		a->bins[i] = ld64(buf, L->ms_bins + 8 * i);
	return true;
}

/* Address of bin i's fake chunk (bin_at): its fd sits at bins[2(i-1)]. */
static uint64_t bin_at(const struct hs_glibc_layout *L, uint64_t arena, unsigned i)
{
	return arena + L->ms_bins + (uint64_t)(i - 1) * 2 * HS_GLIBC_SIZE_SZ - HS_GLIBC_CHUNK_FD;
}

/* Is the fd/bk pair of a bin whose fake chunk is at self consistent: empty
 * (both point at self), or a doubly-linked list that starts and ends at self? */
static bool bin_consistent(struct gl *g, uint64_t self, uint64_t fd, uint64_t bk)
{
	uint64_t v;
	if (fd == self && bk == self)
		return true;
	return is_chunk_ptr(fd) && is_chunk_ptr(bk) && rd64(g, fd + HS_GLIBC_CHUNK_BK, &v) && v == self &&
	       rd64(g, bk + HS_GLIBC_CHUNK_FD, &v) && v == self;
}

/* How much an address looks like a malloc_state with layout L: -1 if not at
 * all (a bin pointer or fastbin that is no chunk address, a top chunk that is
 * not one); else the number of consistent bins (of 127), plus a bonus if the
 * `next` ring closes, a smaller one if it leaves for memory the core lacks. */
static int arena_score(struct gl *g, const struct hs_glibc_layout *L, uint64_t addr)
{
	struct gl_arena a;
	if ((addr & 7) || !read_arena(g, L, addr, &a))
		return -1;
	uint64_t sf;
	if (!is_chunk_ptr(a.top) || (a.top >= addr && a.top < addr + L->ms_sizeof) ||
	    !rd64(g, a.top + HS_GLIBC_CHUNK_SIZE, &sf) || (sf & HS_GLIBC_IS_MMAPPED) ||
	    chunksize(sf) < HS_GLIBC_MINSIZE || chunksize(sf) & (HS_GLIBC_ALIGN - 1))
		return -1;
	int consistent = 0;
	for (unsigned i = 1; i < HS_GLIBC_NBINS; i++) {
		uint64_t fd = a.bins[2 * (i - 1)], bk = a.bins[2 * (i - 1) + 1];
		uint64_t self = bin_at(L, addr, i);
		if (bin_consistent(g, self, fd, bk))
			consistent++;
		else if ((fd != self && !is_chunk_ptr(fd)) || (bk != self && !is_chunk_ptr(bk)))
			return -1;
	}
	for (unsigned i = 0; i < HS_GLIBC_NFASTBINS; i++)
		if (a.fastbins[i] & (HS_GLIBC_ALIGN - 1))
			return -1;
	if (consistent < 16)
		return -1;
	int score = consistent;
	uint64_t p = a.next;
	for (unsigned k = 0; k < MAX_ARENAS && p && !(p & 7); k++) {
		if (p == addr) {
			score += ARENA_SCORE_CLOSED;
			break;
		}
		if (!rd64(g, p + L->ms_next, &p)) {
			score += ARENA_SCORE_RING;
			break;
		}
	}
	return score;
}

/* The malloc_state variants the table knows (with and without
 * have_fastchunks); under DWARF only DWARF's. */
static size_t ms_variants(struct gl *g, const struct hs_glibc_layout **out)
{
	if (g->dwarf) {
		out[0] = &g->L;
		return 1;
	}
	out[0] = &g->L;
	const struct hs_glibc_layout *other =
		row_of(g->L.ms_have_fastchunks == HS_GLIBC_ABSENT ? V_HAVE_FASTCHUNKS : V_HAVE_FASTCHUNKS - 1);
	out[1] = other;
	return 2;
}

/* Which malloc_state variant makes main_arena consistent: switch to it if it
 * is not the version's (a finding). */
static void confirm_ms_variant(struct gl *g)
{
	const struct hs_glibc_layout *v[2];
	size_t n = ms_variants(g, v);
	if (n < 2)
		return;
	int s0 = arena_score(g, v[0], g->main_arena), s1 = arena_score(g, v[1], g->main_arena);
	if (s1 > s0 && s1 >= ARENA_SCORE_CLOSED) {
		if (g->row)
			hs_walk_diag(g->ctx, HS_DIAG_WARNING, g->main_arena,
				    "main_arena does not fit glibc %u.%02u's malloc_state but fits the %s "
				    "one: using that", g->version / 100, g->version % 100,
				    v[1]->ms_have_fastchunks == HS_GLIBC_ABSENT ? "2.26" : "2.27+");
		copy_ms(&g->L, v[1]);
		note_adjusted(g, "malloc_state");
	}
}

static bool in_ranges(const struct gl_range *r, size_t n, uint64_t a)
{
	for (size_t i = 0; i < n; i++)
		if (a >= r[i].start && a < r[i].end)
			return true;
	return false;
}

struct arena_pick { uint64_t addr; int score; const struct hs_glibc_layout *layout; };
struct arena_picks { struct arena_pick any, outside_heaps; };
static bool arena_in_heap(struct gl *g, uint64_t a);

/* Score every arena address that would put the "empty bin" cluster
 * [c_lo, c_hi] inside its bins[]. */
static void score_cluster(struct gl *g, const struct hs_glibc_layout *const *v, size_t nv,
			  uint64_t c_lo, uint64_t c_hi, struct arena_picks *best)
{
	const uint64_t span = (HS_GLIBC_NBINS - 2) * 16;   /* first to last bin's fd */
	for (size_t k = 0; k < nv; k++) {
		uint64_t bins = v[k]->ms_bins;
		uint64_t first = c_hi >= span + bins ? c_hi - span - bins : 0;
		for (uint64_t arena = first; arena + bins <= c_lo; arena += 16) {
			int sc = arena_score(g, v[k], arena);
			if (sc > best->any.score)
				best->any = (struct arena_pick){ arena, sc, v[k] };
			if (sc > best->outside_heaps.score && !arena_in_heap(g, arena))
				best->outside_heaps = (struct arena_pick){ arena, sc, v[k] };
		}
	}
}

/* Scan [lo, hi) (dumped, one segment) for an arena: find "empty bin" pairs
 * (fd == bk == the bin's fake chunk: their own address - CHUNK_FD), group them into clusters that could
 * be one bins[] array, and score each cluster's possible arena addresses. */
static void scan_for_arena(struct gl *g, uint64_t lo, uint64_t hi, bool nonempty_bins,
			   struct arena_picks *best)
{
	const uint8_t *data = hs_memory_span(g->mem, lo, hi - lo);
	if (!data || hi - lo < 16)
		return;
	const struct hs_glibc_layout *v[2];
	size_t nv = ms_variants(g, v);
	const uint64_t span = (HS_GLIBC_NBINS - 2) * 16;
	uint64_t c_lo = 0, c_hi = 0;
	bool open = false;

	for (uint64_t a = (lo + 7) & ~UINT64_C(7); a + 16 <= hi; a += 8) {
		// A hole of a sparse core is zeros: no bin there, and no reason
		// to fault its pages in.
		if (!(a & (PAGE_SIZE_4K - 1))) {
			uint64_t h = hs_memory_skip_hole(g->mem, a);
			if (h - a >= 16) {
				a = ((h + 7) & ~UINT64_C(7)) - 8;
				continue;
			}
		}
		uint64_t w0, w1;
		memcpy(&w0, data + (a - lo), 8);
		memcpy(&w1, data + (a - lo) + (HS_GLIBC_CHUNK_BK - HS_GLIBC_CHUNK_FD), 8);
		uint64_t self = a - HS_GLIBC_CHUNK_FD;
		if (!(w0 == self && w1 == w0) &&
		    !(nonempty_bins && is_chunk_ptr(w0) && is_chunk_ptr(w1) && bin_consistent(g, self, w0, w1)))
			continue;
		if (open && a - c_hi <= span && ((a - c_lo) & 15) == 0) {
			c_hi = a;
			continue;
		}
		if (open)
			score_cluster(g, v, nv, c_lo, c_hi, best);
		c_lo = c_hi = a;
		open = true;
	}
	if (open)
		score_cluster(g, v, nv, c_lo, c_hi, best);
}

/* Does a lie at the start of an arena's first heap (a heap_info on the 64
 * MiB boundary below it names an arena right after itself)?  Readings of
 * that arena shifted by a layout variant count too. */
static bool arena_in_heap(struct gl *g, uint64_t a)
{
	uint64_t h = a & ~(HS_GLIBC_HEAP_MAX - 1), ar;
	return a - h < PAGE_SIZE_4K && rd64(g, h + g->L.hi_ar_ptr, &ar) && ar > h &&
	       hs_glibc_heap_info_size_known(ar - h);
}

/* The heuristic: libc's writable data first; without libc ranges, every
 * writable segment.  An arena-like structure outside every heap is
 * main_arena; without one, the ring of the best arena found leads to it.  An
 * arena's ring must close (or leave for memory the core lacks) unless nearly
 * all its bins are consistent. */
static bool find_main_arena_by_scan(struct gl *g)
{
	struct arena_picks picks = { { 0, -1, NULL }, { 0, -1, NULL } };
	for (int pass = 0; pass < 2 && picks.outside_heaps.score < ARENA_SCORE_ALONE; pass++) {
		if (pass == 0 && g->nlibc_ranges == 0)
			continue;
		for (size_t i = 0; i < g->mem->nsegs; i++) {
			const struct hs_segment *seg = &g->mem->segs[i];
			if (!(seg->flags & HS_SEG_W) || seg->filesz == 0)
				continue;
			if (pass == 0 && !in_ranges(g->libc_ranges, g->nlibc_ranges, seg->start))
				continue;
			if (pass == 1 && in_ranges(g->libc_ranges, g->nlibc_ranges, seg->start))
				continue;
			scan_for_arena(g, seg->start, seg->start + seg->filesz, pass == 0, &picks);
			if (hs_walk_interrupted(g->ctx))
				return false;
		}
	}
	struct arena_pick pick = picks.outside_heaps;
	if (pick.score < ARENA_SCORE_ALONE)
		pick = picks.any;
	if (pick.score < ARENA_SCORE_ALONE && pick.score < ARENA_SCORE_RING + 16)
		return false;
	if (pick.layout != &g->L) {
		copy_ms(&g->L, pick.layout);
		if (g->row)
			note_adjusted(g, "malloc_state");
	}
	/* walk the ring to the member outside any heap */
	uint64_t best = pick.addr, p = best;
	for (unsigned k = 0; k < MAX_ARENAS; k++) {
		if (!arena_in_heap(g, p)) {
			g->main_arena = p;
			g->main_arena_how = "heuristic (consistent bins, next ring)";
			return true;
		}
		if (!rd64(g, p + g->L.ms_next, &p) || p == best)
			break;
	}
	return false;
}

static bool find_main_arena(struct gl *g)
{
	uint64_t v;
	if (hs_walk_override(g->ctx, "main_arena", &v)) {
		g->main_arena = v;
		g->main_arena_how = "override";
		return true;
	}
	if (g->libc) {
		struct hs_error *err;
		if (g->libc->debug_found) {
			err = hs_dwarf_variable(g->libc, "main_arena", &v);
			if (!err && v) {
				g->main_arena = v;
				g->main_arena_how = "DWARF";
				return true;
			}
			hs_error_destroy(err);
		}
		struct hs_symbol sym;
		err = hs_symbols_lookup(g->ctx->symbols, g->libc, "main_arena", &sym);
		if (!err && sym.address) {
			g->main_arena = sym.address;
			g->main_arena_how = "symbol";
			return true;
		}
		hs_error_destroy(err);
	}
	return find_main_arena_by_scan(g);
}

static void find_mp_by_symbol(struct gl *g)
{
	uint64_t v;
	if (hs_walk_override(g->ctx, "mp_", &v)) {
		g->mp = v;
		g->mp_how = "override";
		return;
	}
	if (!g->libc)
		return;
	struct hs_error *err;
	if (g->libc->debug_found) {
		err = hs_dwarf_variable(g->libc, "mp_", &v);
		if (!err && v) {
			g->mp = v;
			g->mp_how = "DWARF";
			return;
		}
		hs_error_destroy(err);
	}
	struct hs_symbol sym;
	err = hs_symbols_lookup(g->ctx->symbols, g->libc, "mp_", &sym);
	if (!err && sym.address) {
		g->mp = sym.address;
		g->mp_how = "symbol";
		return;
	}
	hs_error_destroy(err);
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

	find_libc(g);
	detect_version(g);
	choose_layout(g);
	if (!find_main_arena(g)) {
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
	if (!read_arena(g, &g->L, g->main_arena, &a)) {
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
		confirm_ms_variant(g);
	find_mp_by_symbol(g);
	*state_ret = g;
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* step 1: the arena ring */

static struct hs_error *add_arena(struct gl *g, uint64_t addr, bool *readable_ret)
{
	if (!grow((void **)&g->arenas, &g->caparenas, g->narenas, sizeof(*g->arenas)))
		return &hs_error_nomem;
	struct gl_arena *a = &g->arenas[g->narenas];
	*readable_ret = read_arena(g, &g->L, addr, a);
	if (!*readable_ret)
		return NULL;
	if (g->narenas == 0)
		snprintf(a->out.label, sizeof(a->out.label), "main_arena");
	else
		snprintf(a->out.label, sizeof(a->out.label), "arena %zu", g->narenas);
	a->out.address = addr;
	a->out.system_mem = a->system_mem;
	a->out.nthreads = a->attached <= INT32_MAX ? (int)a->attached : -1;
	g->narenas++;
	return NULL;
}

static bool arena_known(const struct gl *g, uint64_t addr)
{
	for (size_t i = 0; i < g->narenas; i++)
		if (g->arenas[i].addr == addr)
			return true;
	return false;
}

static struct hs_error *read_arena_ring(struct gl *g)
{
	uint64_t p = g->main_arena;
	while (g->narenas < MAX_ARENAS) {
		bool readable;
		HS_CHECK(add_arena(g, p, &readable));
		if (!readable) {
			if (g->narenas == 0)
				return hs_error_create(HS_ERR_HEAP, "main_arena at 0x%" PRIx64 " cannot be read (%s)",
						       p, read_error_name(g));
			gdiag(g, DK_READ, HS_DIAG_ERROR, p,
			      "arena 0x%" PRIx64 " (in the next ring) cannot be read (%s): the ring is cut there",
			      p, read_error_name(g));
			break;
		}
		const struct gl_arena *a = &g->arenas[g->narenas - 1];
		if (g->narenas > 1 && arena_score(g, &g->L, a->addr) < 0) {
			gdiag(g, DK_OTHER, HS_DIAG_ERROR, a->addr,
			      "0x%" PRIx64 " (in the next ring) is not an arena: the ring is cut there", a->addr);
			g->narenas--;
			break;
		}
		p = a->next;
		if (p == g->main_arena)
			break;
		if (!p || (p & 7)) {
			gdiag(g, DK_OTHER, HS_DIAG_ERROR, a->addr,
			      "arena 0x%" PRIx64 ": next pointer 0x%" PRIx64 " is not an arena: the ring is cut there",
			      a->addr, p);
			break;
		}
		/* every member is checked: the ring is at most MAX_ARENAS long */
		if (arena_known(g, p)) {
			gdiag(g, DK_OTHER, HS_DIAG_ERROR, a->addr,
			      "the arena ring loops back to 0x%" PRIx64 " without reaching main_arena", p);
			break;
		}
		if (g->narenas == MAX_ARENAS)
			gdiag(g, DK_OTHER, HS_DIAG_ERROR, p, "more than %u arenas: the rest are left out", MAX_ARENAS);
	}
	return NULL;
}

/* Arenas the ring does not reach (a corrupt next pointer): a non-main arena
 * sits right after the heap_info of its first heap, on a 64 MiB boundary, and
 * that heap_info names it. */
static struct hs_error *find_orphan_arenas(struct gl *g)
{
	for (size_t i = 0; i < g->mem->nsegs && g->narenas < MAX_ARENAS; i++) {
		const struct hs_segment *seg = &g->mem->segs[i];
		uint64_t h = seg->start, ar;
		if ((h & (HS_GLIBC_HEAP_MAX - 1)) || !(seg->flags & HS_SEG_W) || seg->filesz < 64 ||
		    !rd64(g, h + g->L.hi_ar_ptr, &ar) || ar <= h || !hs_glibc_heap_info_size_known(ar - h) ||
		    arena_known(g, ar))
			continue;
		if (arena_score(g, &g->L, ar) < 0)
			continue;
		bool readable;
		HS_CHECK(add_arena(g, ar, &readable));
		if (readable)
			gdiag(g, DK_OTHER, HS_DIAG_ERROR, ar,
			      "arena 0x%" PRIx64 " (in the heap at 0x%" PRIx64 ") is not in main_arena's next "
			      "ring: walked as %s", ar, h, g->arenas[g->narenas - 1].out.label);
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* step 2: heaps */

/* Walk chunk headers from q: does the chain stay valid and land exactly on
 * target, or (enough != 0) stay valid for that many links? */
static bool chain_reaches(struct gl *g, uint64_t q, uint64_t target, bool main, unsigned enough)
{
	uint64_t p = q, sf;
	uint64_t links = (target - q) / HS_GLIBC_MINSIZE + 1;
	for (unsigned n = 0; p < target && links--; n++) {
		if (enough && n == enough)
			return true;
		if (!rd64(g, p + HS_GLIBC_CHUNK_SIZE, &sf))
			return false;
		uint64_t cs = chunksize(sf);
		if (cs < HS_GLIBC_MINSIZE || (cs & (HS_GLIBC_ALIGN - 1)) || cs > target - p ||
		    (sf & HS_GLIBC_IS_MMAPPED) || (main && (sf & HS_GLIBC_NON_MAIN_ARENA)))
			return false;
		p += cs;
	}
	return p == target;
}

static uint64_t align_chunk(uint64_t p)
{
	/* chunk2mem(p) = p + HS_GLIBC_CHUNK_HDR must be MALLOC_ALIGNMENT aligned */
	uint64_t mis = (p + HS_GLIBC_CHUNK_HDR) & (HS_GLIBC_ALIGN - 1);
	return mis ? p + HS_GLIBC_ALIGN - mis : p;
}

/* mp_ values we use, once mp_ is known. */
static void read_mp(struct gl *g)
{
	uint64_t v;
	uint32_t n;
	if (!g->mp)
		return;
	if (rd64(g, g->mp + g->L.mp_sbrk_base, &v))
		g->sbrk_base = v;
	if (rd(g, g->mp + g->L.mp_n_mmaps, &n, 4))
		g->n_mmaps = (int32_t)n;
	if (rd64(g, g->mp + g->L.mp_tcache_count, &v))
		g->tcache_count_max = v;
}

/* How much a malloc_par with the mp_ aspect of L at m, with sbrk_base ==
 * sbrk, looks like glibc's: -1 if a field is out of the range glibc keeps it
 * in, else the number of fields at their usual values (tunables and mallopt
 * may change them, so they only rank candidates). */
static int mp_score(struct gl *g, const struct hs_glibc_layout *L, uint64_t m, uint64_t sbrk)
{
	uint8_t buf[256];
	if (L->mp_sizeof > sizeof(buf) || !rd(g, m, buf, L->mp_sizeof))
		return -1;
	if (ld64(buf, L->mp_sbrk_base) != sbrk)
		return -1;
	uint64_t trim = ld64(buf, L->mp_trim_threshold), thr = ld64(buf, L->mp_mmap_threshold);
	uint64_t test = ld64(buf, L->mp_arena_test);
	uint64_t tbins = ld64(buf, L->mp_tcache_bins), tmax = ld64(buf, L->mp_tcache_max_bytes);
	uint64_t tcount = ld64(buf, L->mp_tcache_count);
	uint64_t mm = ld64(buf, L->mp_mmapped_mem), max_mm = ld64(buf, L->mp_max_mmapped_mem);
	int32_t n_mmaps, n_max, max_n;
	memcpy(&n_mmaps, buf + L->mp_n_mmaps, 4);
	memcpy(&n_max, buf + L->mp_n_mmaps_max, 4);
	memcpy(&max_n, buf + L->mp_max_n_mmaps, 4);
	if (thr > HS_GLIBC_HEAP_MAX / 2 || tbins > HS_GLIBC_TCACHE_MAX_BINS ||
	    tmax > hs_glibc_tcache_chunk_size_of(HS_GLIBC_TCACHE_MAX_BINS) ||
	    tcount > HS_GLIBC_TCACHE_COUNT_MAX || n_mmaps < 0 || n_max < 0 || max_n < n_mmaps ||
	    max_mm < mm)
		return -1;
	if (L->mp_thp_pagesize != HS_GLIBC_ABSENT) {
		uint64_t thp = ld64(buf, L->mp_thp_pagesize), hp = ld64(buf, L->mp_hp_pagesize);
		if ((thp & (thp - 1)) || (hp & (hp - 1)))
			return -1;
	}
	/* glibc's defaults: DEFAULT_MMAP_THRESHOLD 128 KiB, trim 2x that when
	 * dynamic, arena_test NARENAS_FROM_NCORES (1) = 8 on 64-bit,
	 * DEFAULT_MMAP_MAX 65536, TCACHE_MAX_BINS 64, TCACHE_FILL_COUNT 7,
	 * tcache_max_bytes tidx2usize (63) = 1032. */
	return (trim != 0) + (thr != 0) + (test == 8) + (n_max == 65536) + (tbins == 64) +
	       (tcount == 7) + (tmax == 1032) + (thr >= 128 * 1024);
}

/* A plausible first chunk of the main heap at c, below top. */
static bool heap_start_plausible(struct gl *g, uint64_t c, uint64_t top)
{
	uint64_t sf;
	if (c > top || !rd64(g, c + HS_GLIBC_CHUNK_SIZE, &sf))
		return false;
	uint64_t cs = chunksize(sf);
	return c == top || (cs >= HS_GLIBC_MINSIZE && !(cs & (HS_GLIBC_ALIGN - 1)) && cs <= top - c &&
			    !(sf & (HS_GLIBC_IS_MMAPPED | HS_GLIBC_NON_MAIN_ARENA)));
}

/* mp_ without symbols: the malloc_par in libc's writable data whose
 * sbrk_base is a plausible start of the heap that ends at the main arena's
 * top.  Both mp_ variants are tried unless DWARF gave one; the match that
 * looks most like glibc's defaults decides the variant. */
static void find_mp_by_scan(struct gl *g, uint64_t top)
{
	const struct hs_glibc_layout *v[2] = { &g->L, row_of(
		g->L.mp_thp_pagesize == HS_GLIBC_ABSENT ? V_HEAP_INFO_48 : V_HEAP_INFO_48 - 1) };
	size_t nv = g->dwarf ? 1 : 2;
	const struct hs_segment *top_seg = hs_memory_segment(g->mem, top);
	int best = 2;   /* fewer fields at their defaults than this: not mp_ */
	uint64_t best_m = 0;
	const struct hs_glibc_layout *best_v = NULL;
	for (size_t i = 0; i < g->mem->nsegs; i++) {
		const struct hs_segment *seg = &g->mem->segs[i];
		if (!(seg->flags & HS_SEG_W) || !seg->filesz)
			continue;
		if (g->nlibc_ranges ? !in_ranges(g->libc_ranges, g->nlibc_ranges, seg->start)
				    : seg->filesz > (UINT64_C(1) << 20))
			continue;
		const uint8_t *data = hs_memory_span(g->mem, seg->start, seg->filesz);
		if (!data)
			continue;
		for (uint64_t off = 0; off + 8 <= seg->filesz; off += 8) {
			uint64_t w;
			memcpy(&w, data + off, 8);
			if (!w || w > top || !heap_start_plausible(g, align_chunk(w), top))
				continue;
			for (size_t k = 0; k < nv; k++) {
				if (off < v[k]->mp_sbrk_base)
					continue;
				uint64_t m = seg->start + off - v[k]->mp_sbrk_base;
				int sc = mp_score(g, v[k], m, w);
				if (sc >= 0 && top_seg && hs_memory_segment(g->mem, w) == top_seg)
					sc += 2;
				if (sc > best) {
					best = sc;
					best_m = m;
					best_v = v[k];
				}
			}
		}
	}
	if (!best_v)
		return;
	g->mp = best_m;
	g->mp_how = "heuristic (sbrk_base)";
	if (best_v != &g->L) {
		copy_mp(&g->L, best_v);
		if (g->row)
			note_adjusted(g, "malloc_par");
	}
	g->mp_new_known = true;
}

/* The main heap's first chunk when sbrk_base is unknown: the first page
 * boundary in top's segment from which valid chunks lead exactly to top. */
static uint64_t main_heap_start_by_scan(struct gl *g, uint64_t top)
{
	const struct hs_segment *seg = hs_memory_segment(g->mem, top);
	if (!seg)
		return 0;
	uint64_t q = (seg->start + PAGE_SIZE_4K - 1) & ~(PAGE_SIZE_4K - 1);
	for (unsigned k = 0; k < HEAP_START_PAGES && q <= top; k++, q += PAGE_SIZE_4K) {
		uint64_t c = align_chunk(q);
		if (chain_reaches(g, c, top, true, 0))
			return c;
	}
	/* a corrupt header between the start and top: a long valid run will do */
	q = (seg->start + PAGE_SIZE_4K - 1) & ~(PAGE_SIZE_4K - 1);
	for (unsigned k = 0; k < HEAP_START_PAGES && q <= top; k++, q += PAGE_SIZE_4K) {
		uint64_t c = align_chunk(q);
		if (chain_reaches(g, c, top, true, RESYNC_CHAIN))
			return c;
	}
	return 0;
}

/* main_arena's top is not a chunk: walk from mp_.sbrk_base (from symbols or
 * an override) to the end of its mapping instead. */
static struct hs_error *main_heap_without_top(struct gl *g)
{
	struct gl_arena *m = &g->arenas[0];
	read_mp(g);
	uint64_t start = g->sbrk_base ? align_chunk(g->sbrk_base) : 0, sf;
	const struct hs_segment *seg = start ? hs_memory_segment(g->mem, start) : NULL;
	bool ok = seg && seg->filesz > start - seg->start && rd64(g, start + HS_GLIBC_CHUNK_SIZE, &sf) &&
		  chunksize(sf) >= HS_GLIBC_MINSIZE && !(chunksize(sf) & (HS_GLIBC_ALIGN - 1));
	gdiag(g, DK_OTHER, HS_DIAG_ERROR, m->top,
	      "main_arena's top 0x%" PRIx64 " is not a readable chunk: %s", m->top,
	      ok ? "walking the main heap from mp_.sbrk_base to the end of its mapping"
		 : "the main heap is not walked");
	if (!ok)
		return NULL;
	struct gl_heap h = { .start = start, .end = seg->start + seg->filesz, .first = start,
			     .arena = 0, .has_top = false, .main = true, .top_guess = true };
	return add_heap(g, &h);
}

/* The end of the mapping holding a, through mappings that follow it without
 * a gap (a core may split one mapping into several segments); a if none. */
static uint64_t mapping_end(struct gl *g, uint64_t a)
{
	const struct hs_segment *seg = hs_memory_segment(g->mem, a);
	if (!seg)
		return a;
	const struct hs_segment *last = g->mem->segs + g->mem->nsegs - 1;
	while (seg < last && seg[1].start == seg->end)
		seg++;
	return seg->end;
}

static struct hs_error *find_main_heap(struct gl *g)
{
	struct gl_arena *m = &g->arenas[0];
	uint64_t sf;
	if (!is_chunk_ptr(m->top) || !rd64(g, m->top + HS_GLIBC_CHUNK_SIZE, &sf) || chunksize(sf) < HS_GLIBC_MINSIZE)
		return main_heap_without_top(g);
	uint64_t end = m->top + chunksize(sf);
	uint64_t mapped = mapping_end(g, m->top);
	if (end > mapped || end < m->top) {
		// A top that runs past its mapping is a corrupt size word: the
		// heap ends where the process's memory does.
		gdiag(g, DK_HEADER, HS_DIAG_ERROR, m->top,
		      "main_arena's top 0x%" PRIx64 " has size 0x%" PRIx64 ", past the end of its mapping "
		      "0x%" PRIx64 ": taken to end there", m->top, chunksize(sf), mapped);
		end = mapped;
	}
	if (m->flags & HS_GLIBC_NONCONTIGUOUS)
		gdiag(g, DK_OTHER, HS_DIAG_WARNING, g->main_arena,
		      "main_arena is non-contiguous (sbrk failed and it grew by mmap): only the part "
		      "that ends at top is walked");

	if (!g->mp)
		find_mp_by_scan(g, m->top);
	read_mp(g);
	uint64_t start = 0;
	if (g->sbrk_base && g->sbrk_base <= m->top && !(m->flags & HS_GLIBC_NONCONTIGUOUS) &&
	    heap_start_plausible(g, align_chunk(g->sbrk_base), m->top)) {
		/* a foreign sbrk leaves top elsewhere: walk_main_heap copes */
		start = align_chunk(g->sbrk_base);
	} else {
		if (g->mp && !(m->flags & HS_GLIBC_NONCONTIGUOUS))
			gdiag(g, DK_OTHER, HS_DIAG_WARNING, g->mp,
			      "mp_.sbrk_base 0x%" PRIx64 " is not the start of the main heap: looking for it",
			      g->sbrk_base);
		start = main_heap_start_by_scan(g, m->top);
		if (!start) {
			gdiag(g, DK_OTHER, HS_DIAG_ERROR, m->top,
			      "the start of the main heap was not found (no mp_.sbrk_base, and no valid chunk "
			      "chain to top): only the top chunk is reported");
			start = m->top;
		}
	}
	struct gl_heap h = { .start = start, .end = end, .first = start, .arena = 0,
			     .has_top = true, .main = true };
	if (g->sbrk_base && start == align_chunk(g->sbrk_base) && !(m->flags & HS_GLIBC_NONCONTIGUOUS))
		m->heap_bytes = end - g->sbrk_base;   // what sbrk gave, alignment included
	return add_heap(g, &h);
}

/* For non-main arenas: where an arena sits in its first heap says how big
 * heap_info is (32 before 2.35, 48 since). */
static void confirm_heap_info_size(struct gl *g)
{
	unsigned votes32 = 0, votes48 = 0;
	for (size_t i = 1; i < g->narenas; i++) {
		uint64_t off = g->arenas[i].addr & (HS_GLIBC_HEAP_MAX - 1);
		votes32 += off == 32;
		votes48 += off == 48;
	}
	if (g->dwarf || g->over_hi || (!votes32 && !votes48))
		return;
	unsigned want = votes48 > votes32 ? 48 : 32;
	g->feat_hi = true;
	if (want == g->L.hi_sizeof)
		return;
	if (g->row)
		hs_walk_diag(g->ctx, HS_DIAG_WARNING, 0,
			    "arenas sit %u bytes into their heaps: heap_info is %u bytes, not the %u of "
			    "glibc %u.%02u's layout", want, want, g->L.hi_sizeof, g->version / 100,
			    g->version % 100);
	copy_hi(&g->L, row_of(want == 48 ? V_HEAP_INFO_48 : V_HEAP_INFO_48 - 1));
	note_adjusted(g, "heap_info");
}

/* One non-main arena: its heaps from the newest (top's) back through prev. */
static struct hs_error *find_arena_heaps(struct gl *g, unsigned ai)
{
	const struct gl_arena *a = &g->arenas[ai];
	const struct hs_glibc_layout *L = &g->L;
	if (!is_chunk_ptr(a->top)) {
		gdiag(g, DK_OTHER, HS_DIAG_ERROR, a->addr,
		      "%s: top 0x%" PRIx64 " is not a chunk: its heaps are not walked", a->out.label, a->top);
		return NULL;
	}
	uint64_t h = a->top & ~(HS_GLIBC_HEAP_MAX - 1);
	uint64_t saved = h, power = 1, lam = 0, bytes = 0;
	for (unsigned k = 0; h && k < MAX_HEAPS_PER_ARENA; k++) {
		uint8_t buf[64];
		if (L->hi_sizeof > sizeof(buf) || !rd(g, h, buf, L->hi_sizeof)) {
			gdiag(g, DK_READ, HS_DIAG_ERROR, h, "%s: heap_info at 0x%" PRIx64 " cannot be read (%s)",
			      a->out.label, h, read_error_name(g));
			break;
		}
		uint64_t ar = ld64(buf, L->hi_ar_ptr), prev = ld64(buf, L->hi_prev);
		uint64_t size = ld64(buf, L->hi_size);
		if (ar != a->addr) {
			gdiag(g, DK_OTHER, HS_DIAG_ERROR, h,
			      "%s: heap_info at 0x%" PRIx64 " names arena 0x%" PRIx64 ": this heap and older "
			      "ones are not walked", a->out.label, h, ar);
			break;
		}
		if (size < L->hi_sizeof || size > HS_GLIBC_HEAP_MAX) {
			gdiag(g, DK_OTHER, HS_DIAG_ERROR, h,
			      "%s: heap_info at 0x%" PRIx64 " has size 0x%" PRIx64 ": this heap and older "
			      "ones are not walked", a->out.label, h, size);
			break;
		}
		bool first = a->addr == h + L->hi_sizeof;
		uint64_t c = first ? align_chunk(h + L->hi_sizeof + L->ms_sizeof) : align_chunk(h + L->hi_sizeof);
		struct gl_heap gh = { .start = h, .end = h + size, .first = c, .info = h, .arena = ai,
				      .has_top = k == 0, .main = false };
		if (k == 0 && (a->top < c || a->top >= h + size)) {
			gdiag(g, DK_OTHER, HS_DIAG_ERROR, a->top,
			      "%s: top 0x%" PRIx64 " is outside its heap [0x%" PRIx64 ", 0x%" PRIx64 ")",
			      a->out.label, a->top, h, h + size);
			break;
		}
		HS_CHECK(add_heap(g, &gh));
		if (prev & (HS_GLIBC_HEAP_MAX - 1)) {
			gdiag(g, DK_OTHER, HS_DIAG_ERROR, h,
			      "%s: heap_info at 0x%" PRIx64 " has prev 0x%" PRIx64 ", not a heap: older heaps "
			      "are not walked", a->out.label, h, prev);
			break;
		}
		if (first && prev)
			gdiag(g, DK_OTHER, HS_DIAG_WARNING, h,
			      "%s: its first heap 0x%" PRIx64 " has a prev pointer 0x%" PRIx64, a->out.label, h, prev);
		bytes += size;
		if (first) {
			g->arenas[ai].heap_bytes = bytes;   // the chain is whole
			break;
		}
		h = prev;
		if (h == saved) {
			gdiag(g, DK_OTHER, HS_DIAG_ERROR, h, "%s: the heap_info prev chain loops", a->out.label);
			break;
		}
		if (++lam == power) {
			saved = h;
			power *= 2;
			lam = 0;
		}
	}
	return NULL;
}

/* An arena's system_mem is what it got from the system: for main_arena the
 * sbrk'd bytes (mp_.sbrk_base to the end of top), for a thread arena the sum
 * of its heaps' heap_info.size (glibc keeps both in step when it grows,
 * shrinks or frees a heap).  Another value is a corrupt malloc_state. */
static void check_system_mem(struct gl *g)
{
	for (size_t i = 0; i < g->narenas; i++) {
		const struct gl_arena *a = &g->arenas[i];
		if (a->heap_bytes && a->system_mem != a->heap_bytes)
			gdiag(g, DK_OTHER, HS_DIAG_WARNING, a->addr,
			      "%s: system_mem says 0x%" PRIx64 " bytes, but its heaps span 0x%" PRIx64
			      " (%s): its malloc_state may be corrupt", a->out.label, a->system_mem,
			      a->heap_bytes, i == 0 ? "mp_.sbrk_base to the end of top" : "the sum of heap_info.size");
	}
}

static struct hs_error *find_heaps(struct gl *g)
{
	HS_CHECK(find_main_heap(g));
	confirm_heap_info_size(g);
	for (unsigned i = 1; i < g->narenas; i++)
		HS_CHECK(find_arena_heaps(g, i));
	check_system_mem(g);
	return NULL;
}

static const struct gl_heap *heap_of(const struct gl *g, uint64_t addr)
{
	for (size_t i = 0; i < g->nheaps; i++)
		if (addr >= g->heaps[i].first && addr < g->heaps[i].end)
			return &g->heaps[i];
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* step 3: tcaches */

static uint64_t tc_count(const struct hs_glibc_layout *L, const uint8_t *buf, unsigned i)
{
	if (L->tc_count_width == 1)
		return buf[L->tc_counts + i];
	uint16_t c;
	memcpy(&c, buf + L->tc_counts + 2 * i, 2);
	return c;
}

/* Is the user address t a tcache_perthread_struct (chunk size and content)? */
static bool tcache_valid(struct gl *g, uint64_t t)
{
	const struct hs_glibc_layout *L = &g->L;
	uint64_t sf;
	uint8_t buf[1024];
	if ((t & (HS_GLIBC_ALIGN - 1)) || !heap_of(g, t - HS_GLIBC_CHUNK_HDR) || !rd64(g, HS_GLIBC_MEM_SIZE_WORD(t), &sf) ||
	    chunksize(sf) != hs_glibc_tcache_chunk_size(L) || (sf & HS_GLIBC_IS_MMAPPED) ||
	    L->tc_sizeof > sizeof(buf) || !rd(g, t, buf, L->tc_sizeof))
		return false;
	unsigned mismatched = 0;
	for (unsigned i = 0; i < L->tc_nbins; i++) {
		uint64_t e = ld64(buf, L->tc_entries + 8 * i);
		if (e & (HS_GLIBC_ALIGN - 1))
			return false;
		mismatched += (e == 0) != (tc_count(L, buf, i) == 0);
	}
	return mismatched <= 4;
}

/* Which tcache struct size the core shows (first chunk of the main heap or of
 * an arena's first heap): u8 counts (0x250) or u16 (0x290). */
static void confirm_tcache_width(struct gl *g)
{
	if (g->dwarf || g->over_tc)
		return;
	const struct hs_glibc_layout *u8 = row_of(V_TCACHE_U16 - 1), *u16 = row_of(V_TCACHE_U16);
	unsigned v8 = 0, v16 = 0;
	for (size_t i = 0; i < g->nheaps; i++) {
		const struct gl_heap *h = &g->heaps[i];
		if (!h->main && h->info + g->L.hi_sizeof != g->arenas[h->arena].addr)
			continue;   /* not an arena's first heap */
		uint64_t sf;
		if (!rd64(g, h->first + HS_GLIBC_CHUNK_SIZE, &sf))
			continue;
		v8 += chunksize(sf) == hs_glibc_tcache_chunk_size(u8);
		v16 += chunksize(sf) == hs_glibc_tcache_chunk_size(u16);
	}
	if (!v8 && !v16)
		return;
	const struct hs_glibc_layout *want = v16 >= v8 ? u16 : u8;
	g->feat_tc = true;
	if (want->tc_sizeof == g->L.tc_sizeof)
		return;
	if (g->row)
		hs_walk_diag(g->ctx, HS_DIAG_WARNING, 0,
			    "the tcache chunks are 0x%" PRIx64 " bytes: counts are %s, not as in glibc %u.%02u",
			    hs_glibc_tcache_chunk_size(want), want->tc_count_width == 1 ? "u8" : "u16",
			    g->version / 100, g->version % 100);
	copy_tc(&g->L, want);
	note_adjusted(g, "tcache");
}

static struct hs_error *add_tcache(struct gl *g, uint64_t t, int32_t tid)
{
	for (size_t i = 0; i < g->ntcaches; i++)
		if (g->tcaches[i].addr == t) {
			if (tid && g->tcaches[i].tid && g->tcaches[i].tid != tid)
				gdiag(g, DK_OTHER, HS_DIAG_WARNING, t,
				      "threads %d and %d both point at tcache 0x%" PRIx64, g->tcaches[i].tid, tid, t);
			return NULL;
		}
	if (!grow((void **)&g->tcaches, &g->captcaches, g->ntcaches, sizeof(*g->tcaches)))
		return &hs_error_nomem;
	const struct gl_heap *h = heap_of(g, t - HS_GLIBC_CHUNK_HDR);
	g->tcaches[g->ntcaches++] = (struct gl_tcache){ .addr = t, .tid = tid,
							.arena = h ? h->arena : HS_ARENA_NONE };
	return NULL;
}

/* The nearest word below fs_base that points at a valid tcache; its
 * distance from fs_base, or 0. */
static uint64_t tls_nearest_tcache(struct gl *g, uint64_t fs)
{
	for (uint64_t d = 8; d <= TLS_SCAN_BYTES && d <= fs; d += 8) {
		uint64_t v;
		if (!rd64(g, fs - d, &v))
			return 0;
		if (v && !(v & (HS_GLIBC_ALIGN - 1)) && heap_of(g, v - HS_GLIBC_CHUNK_HDR) && tcache_valid(g, v))
			return d;
	}
	return 0;
}

/* Static TLS is at the same distance below fs_base in every thread: vote on
 * the distance of the nearest tcache pointer, then read every thread's slot
 * there.  Returns false when no thread showed one. */
static struct hs_error *find_tcaches_in_tls(struct gl *g, bool *found_ret)
{
	const struct hs_notes *n = g->ctx->notes;
	uint64_t best = 0;
	unsigned best_votes = 0;
	uint64_t *dist = calloc(n->nthreads + 1, sizeof(*dist));
	if (!dist)
		return &hs_error_nomem;
	for (size_t i = 0; i < n->nthreads; i++) {
		uint64_t fs = n->threads[i].regs[HS_REG_FS_BASE];
		dist[i] = fs ? tls_nearest_tcache(g, fs) : 0;
	}
	for (size_t i = 0; i < n->nthreads; i++) {
		unsigned votes = 0;
		for (size_t j = 0; j < n->nthreads && dist[i]; j++)
			votes += dist[j] == dist[i];
		if (votes > best_votes || (votes == best_votes && dist[i] && dist[i] < best)) {
			best_votes = votes;
			best = dist[i];
		}
	}
	free(dist);
	*found_ret = best != 0;
	if (!best)
		return NULL;
	for (size_t i = 0; i < n->nthreads; i++) {
		const struct hs_thread *t = &n->threads[i];
		uint64_t fs = t->regs[HS_REG_FS_BASE], v;
		if (!fs || fs < best)
			continue;
		if (!rd64(g, fs - best, &v)) {
			gdiag(g, DK_READ, HS_DIAG_WARNING, fs - best,
			      "thread %d: its tcache pointer at 0x%" PRIx64 " cannot be read (%s): its tcache "
			      "chunks look used", t->tid, fs - best, read_error_name(g));
			continue;
		}
		if (!v)
			continue;   /* no tcache (yet, or any more) */
		if (!tcache_valid(g, v)) {
			gdiag(g, DK_OTHER, HS_DIAG_WARNING, v,
			      "thread %d: its tcache pointer 0x%" PRIx64 " is not a valid tcache", t->tid, v);
			continue;
		}
		HS_CHECK(add_tcache(g, v, t->tid));
	}
	return NULL;
}

static struct hs_error *find_tcaches(struct gl *g)
{
	confirm_tcache_width(g);
	bool found = false;
	HS_CHECK(find_tcaches_in_tls(g, &found));
	if (found)
		return NULL;
	/* No TLS to go by: the first chunk of the main heap and of each arena's
	 * first heap, when it has a tcache's size and content. */
	const struct hs_notes *n = g->ctx->notes;
	int32_t main_tid = n->pid;
	for (size_t i = 0; i < g->nheaps; i++) {
		const struct gl_heap *h = &g->heaps[i];
		if (!h->main && h->info + g->L.hi_sizeof != g->arenas[h->arena].addr)
			continue;
		uint64_t t = h->first + HS_GLIBC_CHUNK_HDR;
		if (tcache_valid(g, t))
			HS_CHECK(add_tcache(g, t, h->main ? main_tid : 0));
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* step 4: free lists */

/* Safe-linking votes: for the first link of every tcache bin and fastbin,
 * which reading (plain or PROTECT_PTR'd) gives a valid next entry. */
static bool valid_link(struct gl *g, uint64_t next_chunk, uint64_t want_size)
{
	uint64_t sf;
	if (next_chunk == 0)
		return true;
	if (!is_chunk_ptr(next_chunk) || !rd64(g, next_chunk + HS_GLIBC_CHUNK_SIZE, &sf))
		return false;
	return chunksize(sf) == want_size;
}

static void decide_safe_linking(struct gl *g)
{
	unsigned plain = 0, mangled = 0;
	const struct hs_glibc_layout *L = &g->L;
	for (size_t t = 0; t < g->ntcaches; t++) {
		uint64_t base = g->tcaches[t].addr;
		for (unsigned i = 0; i < L->tc_nbins; i++) {
			uint64_t e, nx;
			if (!rd64(g, base + L->tc_entries + 8 * i, &e) || !is_chunk_ptr(e) || !rd64(g, e, &nx))
				continue;
			uint64_t want = hs_glibc_tcache_chunk_size_of(i);
			uint64_t dm = hs_glibc_reveal(e + L->te_next, nx);
			plain += valid_link(g, nx ? nx - HS_GLIBC_CHUNK_HDR : 0, want) && (!nx || is_chunk_ptr(nx));
			mangled += valid_link(g, dm ? dm - HS_GLIBC_CHUNK_HDR : 0, want) && (!dm || is_chunk_ptr(dm));
		}
	}
	for (size_t a = 0; a < g->narenas; a++) {
		for (unsigned i = 0; i < HS_GLIBC_NFASTBINS; i++) {
			uint64_t p = g->arenas[a].fastbins[i], fd;
			if (!is_chunk_ptr(p) || !rd64(g, p + HS_GLIBC_CHUNK_FD, &fd))
				continue;
			uint64_t want = hs_glibc_fastbin_chunk_size_of(i);
			plain += valid_link(g, fd, want);
			mangled += valid_link(g, hs_glibc_reveal(p + HS_GLIBC_CHUNK_FD, fd), want);
		}
	}
	if (g->over_safe || plain == mangled)
		return;
	bool votes_say = mangled > plain;
	g->feat_safe = true;
	if (votes_say == g->safe_linking) {
		if (!g->row)
			g->safe_linking_how = "votes";
		return;
	}
	if (g->row)
		hs_walk_diag(g->ctx, HS_DIAG_WARNING, 0,
			    "free lists are %s (%u links vs %u), unlike glibc %u.%02u: decoding them that way",
			    votes_say ? "safe-linked" : "not safe-linked", votes_say ? mangled : plain,
			    votes_say ? plain : mangled, g->version / 100, g->version % 100);
	if (g->row)
		note_adjusted(g, "safe-linking");
	g->safe_linking = votes_say;
	g->safe_linking_how = "votes";
}

/* Brent's cycle check over a list walk: call with each new node. */
struct cycle { uint64_t saved, power, lam; };
static bool cycle_step(struct cycle *c, uint64_t node)
{
	if (node == c->saved)
		return true;
	if (++c->lam == c->power) {
		c->saved = node;
		c->power *= 2;
		c->lam = 0;
	}
	return false;
}

/* A list walk that looped: keep each of its nodes once.  The walk added
 * g->free[first..] and stopped because `again` (a chunk it had) came next.
 * With x[k+1] = next(x[k]), the cycle's period is the distance between two
 * visits of `again`, and its entry the first j with x[j] == x[j + period]. */
static size_t drop_cycle_repeats(struct gl *g, size_t first, uint64_t again)
{
	const struct gl_free *x = g->free + first;
	size_t n = g->nfree - first, i = 0;
	while (i < n && x[i].chunk != again)
		i++;
	if (i == n)
		return n;
	size_t period = n - i;
	for (size_t k = 1; i + k < n; k++)
		if (x[i + k].chunk == again) {
			period = k;
			break;
		}
	size_t entry = 0;
	while (entry < i && x[entry].chunk != x[entry + period].chunk)
		entry++;
	g->nfree = first + entry + period;
	return entry + period;
}

static uint64_t list_cap(const struct gl *g)
{
	uint64_t bytes = 0;
	for (size_t i = 0; i < g->nheaps; i++)
		bytes += g->heaps[i].end - g->heaps[i].start;
	return bytes / HS_GLIBC_MINSIZE + 1;
}

static struct hs_error *walk_tcache(struct gl *g, const struct gl_tcache *tc, struct hs_alloc_desc *d)
{
	const struct hs_glibc_layout *L = &g->L;
	uint8_t buf[1024];
	if (!rd(g, tc->addr, buf, L->tc_sizeof))
		return NULL;
	HS_CHECK(add_free(g, tc->addr - HS_GLIBC_CHUNK_HDR, HS_WHERE_META));
	uint64_t cap = L->tc_count_width == 1 ? 256 : HS_GLIBC_TCACHE_COUNT_MAX + 1;
	uint64_t lcap = list_cap(g);
	if (lcap < cap)
		cap = lcap;
	for (unsigned i = 0; i < L->tc_nbins; i++) {
		uint64_t count = tc_count(L, buf, i), e = ld64(buf, L->tc_entries + 8 * i);
		if (!count && !e)
			continue;
		uint64_t want = hs_glibc_tcache_chunk_size_of(i);
		struct hs_freelist fl = { .where = GST(GL_TCACHE), .arena = HS_ARENA_NONE, .tid = tc->tid,
					  .owner = tc->addr, .index = (int)i, .chunk_size = want,
					  .declared = (int64_t)count };
		struct cycle cy = { e, 1, 0 };
		size_t first = g->nfree;
		while (e) {
			uint64_t sf, nx;
			if ((e & (HS_GLIBC_ALIGN - 1)) || !rd64(g, HS_GLIBC_MEM_SIZE_WORD(e), &sf)) {
				gdiag(g, DK_LIST, HS_DIAG_ERROR, e,
				      "tcache 0x%" PRIx64 " (thread %d) bin %u: entry 0x%" PRIx64 " is %s: the rest "
				      "of the bin is not walked", tc->addr, tc->tid, i, e,
				      (e & 15) ? "misaligned" : read_error_name(g));
				fl.broken = true;
				break;
			}
			if (chunksize(sf) != want) {
				gdiag(g, DK_LIST, HS_DIAG_ERROR, e,
				      "tcache 0x%" PRIx64 " (thread %d) bin %u: entry 0x%" PRIx64 " has chunk size "
				      "0x%" PRIx64 ", not 0x%" PRIx64 ": the rest of the bin is not walked",
				      tc->addr, tc->tid, i, e, chunksize(sf), want);
				fl.broken = true;
				break;
			}
			HS_CHECK(add_free(g, e - HS_GLIBC_CHUNK_HDR, GST(GL_TCACHE)));
			fl.count++;
			fl.bytes += want - HS_GLIBC_SIZE_SZ;
			if (!rd64(g, e, &nx)) {
				fl.broken = true;
				break;
			}
			if (g->safe_linking)
				nx = hs_glibc_reveal(e + L->te_next, nx);
			if (nx && cycle_step(&cy, nx)) {
				gdiag(g, DK_LIST, HS_DIAG_ERROR, e,
				      "tcache 0x%" PRIx64 " (thread %d) bin %u: the list loops (at 0x%" PRIx64 ")",
				      tc->addr, tc->tid, i, nx);
				fl.count = drop_cycle_repeats(g, first, nx - HS_GLIBC_CHUNK_HDR);
				fl.bytes = fl.count * (want - HS_GLIBC_SIZE_SZ);
				fl.broken = true;
				break;
			}
			if (nx && fl.count >= cap) {
				gdiag(g, DK_LIST, HS_DIAG_ERROR, e,
				      "tcache 0x%" PRIx64 " (thread %d) bin %u: longer than %" PRIu64 " entries: cut",
				      tc->addr, tc->tid, i, cap);
				fl.broken = true;
				break;
			}
			e = nx;
		}
		if (fl.count != count)
			gdiag(g, DK_LIST, HS_DIAG_WARNING, tc->addr,
			      "tcache 0x%" PRIx64 " (thread %d) bin %u: count says %" PRIu64 ", the list %s %"
			      PRIu64 " entries", tc->addr, tc->tid, i, count, fl.broken ? "walked had" : "has",
			      fl.count);
		HS_CHECK(hs_alloc_desc_add_list(d, &fl));
	}
	return NULL;
}

static struct hs_error *walk_fastbins(struct gl *g, unsigned ai, struct hs_alloc_desc *d)
{
	const struct gl_arena *a = &g->arenas[ai];
	uint64_t cap = list_cap(g);
	for (unsigned i = 0; i < HS_GLIBC_NFASTBINS; i++) {
		uint64_t p = a->fastbins[i];
		if (!p)
			continue;
		uint64_t want = hs_glibc_fastbin_chunk_size_of(i);
		struct hs_freelist fl = { .where = GST(GL_FASTBIN), .arena = ai, .tid = 0,
					  .owner = a->addr + g->L.ms_fastbins + 8 * i, .index = (int)i,
					  .chunk_size = want, .declared = -1 };
		struct cycle cy = { p, 1, 0 };
		size_t first = g->nfree;
		while (p) {
			uint64_t sf, fd;
			if (!is_chunk_ptr(p) || !rd64(g, p + HS_GLIBC_CHUNK_SIZE, &sf) || chunksize(sf) != want) {
				gdiag(g, DK_LIST, HS_DIAG_ERROR, p,
				      "%s fastbin %u: entry 0x%" PRIx64 " is %s: the rest of the bin is not walked",
				      a->out.label, i, p, !is_chunk_ptr(p) ? "misaligned" :
				      !rd64(g, p + HS_GLIBC_CHUNK_SIZE, &sf) ? read_error_name(g) : "of another size");
				fl.broken = true;
				break;
			}
			HS_CHECK(add_free(g, p, GST(GL_FASTBIN)));
			fl.count++;
			fl.bytes += want - HS_GLIBC_SIZE_SZ;
			if (!rd64(g, p + HS_GLIBC_CHUNK_FD, &fd)) {
				fl.broken = true;
				break;
			}
			if (g->safe_linking)
				fd = hs_glibc_reveal(p + HS_GLIBC_CHUNK_FD, fd);
			if (fd && cycle_step(&cy, fd)) {
				gdiag(g, DK_LIST, HS_DIAG_ERROR, p, "%s fastbin %u: the list loops (at 0x%" PRIx64 ")",
				      a->out.label, i, fd);
				fl.count = drop_cycle_repeats(g, first, fd);
				fl.bytes = fl.count * (want - HS_GLIBC_SIZE_SZ);
				fl.broken = true;
				break;
			}
			if (fd && fl.count >= cap) {
				gdiag(g, DK_LIST, HS_DIAG_ERROR, p, "%s fastbin %u: longer than the heaps allow: cut",
				      a->out.label, i);
				fl.broken = true;
				break;
			}
			p = fd;
		}
		HS_CHECK(hs_alloc_desc_add_list(d, &fl));
	}
	return NULL;
}

static unsigned bin_where(const struct gl *g, unsigned i)
{
	return i == 1 ? GST(GL_UNSORTED) : i < HS_GLIBC_NSMALLBINS ? GST(GL_SMALLBIN) : GST(GL_LARGEBIN);
}

static bool bin_size_ok(unsigned i, uint64_t cs)
{
	if (cs < HS_GLIBC_MINSIZE || (cs & (HS_GLIBC_ALIGN - 1)))
		return false;
	return i == 1 || hs_glibc_bin_index(cs) == i;
}

static struct hs_error *walk_bins(struct gl *g, unsigned ai, struct hs_alloc_desc *d)
{
	const struct gl_arena *a = &g->arenas[ai];
	uint64_t cap = list_cap(g);
	for (unsigned i = 1; i < HS_GLIBC_NBINS; i++) {
		uint64_t self = bin_at(&g->L, a->addr, i);
		uint64_t p = a->bins[2 * (i - 1)], prev = self;
		if (p == self)
			continue;
		struct hs_freelist fl = { .where = bin_where(g, i), .arena = ai, .owner = self, .index = (int)i,
					  .chunk_size = hs_glibc_bin_min_chunk_size(i), .declared = -1 };
		struct cycle cy = { p, 1, 0 };
		size_t first = g->nfree;
		bool bk_reported = false;
		while (p != self) {
			uint64_t sf, fd, bk;
			if (!is_chunk_ptr(p) || !rd64(g, p + HS_GLIBC_CHUNK_SIZE, &sf) || !bin_size_ok(i, chunksize(sf))) {
				gdiag(g, DK_LIST, HS_DIAG_ERROR, p,
				      "%s bin %u (%s): entry 0x%" PRIx64 " is %s: the rest of the bin is not walked",
				      a->out.label, i, hs_where_name(fl.where), p,
				      !is_chunk_ptr(p) ? "not a chunk address" :
				      !rd64(g, p + HS_GLIBC_CHUNK_SIZE, &sf) ? read_error_name(g) : "of another size class");
				fl.broken = true;
				break;
			}
			if (!rd64(g, p + HS_GLIBC_CHUNK_FD, &fd) || !rd64(g, p + HS_GLIBC_CHUNK_BK, &bk)) {
				fl.broken = true;
				break;
			}
			if (bk != prev && !bk_reported) {
				gdiag(g, DK_LIST, HS_DIAG_WARNING, p,
				      "%s bin %u: chunk 0x%" PRIx64 "'s bk is 0x%" PRIx64 ", not 0x%" PRIx64,
				      a->out.label, i, p, bk, prev);
				bk_reported = true;
			}
			HS_CHECK(add_free(g, p, fl.where));
			fl.count++;
			fl.bytes += chunksize(sf) - HS_GLIBC_SIZE_SZ;
			if (fd != self && cycle_step(&cy, fd)) {
				gdiag(g, DK_LIST, HS_DIAG_ERROR, p, "%s bin %u: the list loops (at 0x%" PRIx64 ")",
				      a->out.label, i, fd);
				fl.count = drop_cycle_repeats(g, first, fd);
				fl.bytes = 0;
				for (size_t k = first; k < g->nfree; k++)
					if (rd64(g, g->free[k].chunk + HS_GLIBC_CHUNK_SIZE, &sf))
						fl.bytes += chunksize(sf) - HS_GLIBC_SIZE_SZ;
				fl.broken = true;
				break;
			}
			if (fl.count >= cap) {
				gdiag(g, DK_LIST, HS_DIAG_ERROR, p, "%s bin %u: longer than the heaps allow: cut",
				      a->out.label, i);
				fl.broken = true;
				break;
			}
			prev = p;
			p = fd;
		}
		HS_CHECK(hs_alloc_desc_add_list(d, &fl));
	}
	return NULL;
}

/* Stable LSD radix sort of the free entries by chunk address (16-bit digits,
 * only as many passes as the largest address needs). */
static struct hs_error *sort_free(struct gl *g)
{
	size_t n = g->nfree;
	if (n < 2)
		return NULL;
	struct gl_free *tmp = malloc(n * sizeof(*tmp));
	size_t *cnt = malloc(65536 * sizeof(*cnt));
	if (!tmp || !cnt) {
		free(tmp);
		free(cnt);
		return &hs_error_nomem;
	}
	uint64_t max = 0;
	for (size_t i = 0; i < n; i++)
		if (g->free[i].chunk > max)
			max = g->free[i].chunk;
	struct gl_free *src = g->free, *dst = tmp;
	for (unsigned shift = 0; shift < 64 && (max >> shift); shift += 16) {
		memset(cnt, 0, 65536 * sizeof(*cnt));
		for (size_t i = 0; i < n; i++)
			cnt[(src[i].chunk >> shift) & 0xffff]++;
		size_t sum = 0;
		for (size_t k = 0; k < 65536; k++) {
			size_t c = cnt[k];
			cnt[k] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[cnt[(src[i].chunk >> shift) & 0xffff]++] = src[i];
		struct gl_free *t = src; src = dst; dst = t;
	}
	if (src != g->free)
		memcpy(g->free, src, n * sizeof(*src));
	free(tmp);
	free(cnt);
	/* one entry per chunk: the first list that had it wins */
	size_t out = 0;
	for (size_t i = 0; i < n; i++) {
		if (out && g->free[out - 1].chunk == g->free[i].chunk) {
			if (g->free[out - 1].where != g->free[i].where || g->free[i].where != GST(GL_TCACHE))
				gdiag(g, DK_DUP, HS_DIAG_ERROR, g->free[i].chunk,
				      "chunk 0x%" PRIx64 " is on two lists (%s and %s): a double free or corruption",
				      g->free[i].chunk, hs_where_name(g->free[out - 1].where),
				      hs_where_name(g->free[i].where));
			else
				gdiag(g, DK_DUP, HS_DIAG_ERROR, g->free[i].chunk,
				      "chunk 0x%" PRIx64 " is in two tcache bins: a double free or corruption",
				      g->free[i].chunk);
			continue;
		}
		g->free[out++] = g->free[i];
	}
	g->nfree = out;
	return NULL;
}

static struct hs_error *walk_lists(struct gl *g, struct hs_alloc_desc *d)
{
	for (size_t t = 0; t < g->ntcaches; t++)
		HS_CHECK(walk_tcache(g, &g->tcaches[t], d));
	for (unsigned a = 0; a < g->narenas; a++) {
		HS_CHECK(walk_fastbins(g, a, d));
		HS_CHECK(walk_bins(g, a, d));
	}
	return sort_free(g);
}

static size_t free_lower_bound(const struct gl *g, uint64_t chunk)
{
	size_t lo = 0, hi = g->nfree;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (g->free[mid].chunk < chunk)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool free_contains(const struct gl *g, uint64_t chunk)
{
	size_t i = free_lower_bound(g, chunk);
	return i < g->nfree && g->free[i].chunk == chunk;
}

/* ------------------------------------------------------------------------ */
/* step 5: chunks */

struct walk {
	struct gl *g;
	struct hs_heap *out;
	const struct gl_heap *h;
	struct gl_arena *arena;
	uint64_t limit;       /* top, or the heap's end */
	size_t cur;           /* cursor into the sorted free entries */
	uint64_t walked_end;  /* where the last good chunk ended */
	struct hs_error *err;
};

static void emit(struct walk *w, uint64_t chunk, uint64_t usable, unsigned where)
{
	if (w->err)
		return;
	w->err = hs_heap_add(w->out, chunk + HS_GLIBC_CHUNK_HDR, usable, where, w->h->arena);
	struct hs_arena *o = &w->arena->out;
	if (hs_where_is_free(where)) {
		o->free_count++;
		o->free_bytes += usable;
	} else if (hs_where_is_used(where)) {
		o->used_count++;
		o->used_bytes += usable;
	}
}

/* Can the header at q (following a chunk) be believed, PREV_INUSE bit
 * included?  Fenceposts (16) and the end marker (0) of a heap count. */
static bool next_header_sane(const struct walk *w, uint64_t q, uint64_t sf)
{
	uint64_t cs = chunksize(sf);
	if ((sf & HS_GLIBC_IS_MMAPPED) || (cs & (HS_GLIBC_ALIGN - 1)))
		return false;
	if (q >= w->limit)
		return true;   /* top, or the heap's end: checked on its own */
	return cs == 0 ? !w->h->has_top : cs <= w->limit - q;
}

/* Free or used, and where: the lists decide, then the successor's
 * PREV_INUSE (when its header is sane). */
static unsigned classify(struct walk *w, uint64_t p, uint64_t next_sf, bool next_sane)
{
	struct gl *g = w->g;
	while (w->cur < g->nfree && g->free[w->cur].chunk < p)
		w->cur++;
	if (w->cur < g->nfree && g->free[w->cur].chunk == p) {
		struct gl_free *f = &g->free[w->cur++];
		f->matched = 1;
		if ((f->where == GST(GL_UNSORTED) || f->where == GST(GL_SMALLBIN) ||
		     f->where == GST(GL_LARGEBIN)) && next_sane && (next_sf & HS_GLIBC_PREV_INUSE))
			gdiag(g, DK_LIST, HS_DIAG_WARNING, p,
			      "chunk 0x%" PRIx64 " is on the %s list but the next chunk says it is in use", p,
			      hs_where_name(f->where));
		return f->where;
	}
	if (next_sane && !(next_sf & HS_GLIBC_PREV_INUSE)) {
		gdiag(g, DK_UNLISTED, HS_DIAG_WARNING, p,
		      "chunk 0x%" PRIx64 " is free by its header but on no free list", p);
		return HS_WHERE_FREE_UNLISTED;
	}
	return HS_WHERE_USED;
}

/* A header check for resynchronisation: can q start a run of valid chunks
 * that ends on a trustworthy point (top, the heap end, a listed chunk) or
 * goes on for RESYNC_CHAIN links? */
static bool resync_candidate(struct walk *w, uint64_t q)
{
	struct gl *g = w->g;
	uint64_t p = q, sf;
	for (unsigned k = 0; k < RESYNC_CHAIN; k++) {
		if (!rd64(g, p + HS_GLIBC_CHUNK_SIZE, &sf))
			return false;
		uint64_t cs = chunksize(sf);
		if (cs < HS_GLIBC_MINSIZE || (cs & (HS_GLIBC_ALIGN - 1)) || cs > w->limit - p ||
		    (sf & HS_GLIBC_IS_MMAPPED) || (w->h->main && (sf & HS_GLIBC_NON_MAIN_ARENA)))
			return false;
		p += cs;
		if (p == w->limit || free_contains(g, p))
			return true;
	}
	return true;
}

/* After a bad header at p: the next trustworthy chunk start, or 0. */
static uint64_t resync(struct walk *w, uint64_t p)
{
	struct gl *g = w->g;
	size_t i = free_lower_bound(g, p + 1);
	uint64_t listed = i < g->nfree && g->free[i].chunk < w->limit ? g->free[i].chunk : 0;
	uint64_t stop = w->limit - p > RESYNC_WINDOW ? p + RESYNC_WINDOW : w->limit;
	for (uint64_t q = p + HS_GLIBC_ALIGN; q < stop; q += HS_GLIBC_ALIGN) {
		if (q == listed || resync_candidate(w, q))
			return q;
	}
	if (listed)
		return listed;
	return w->h->has_top ? w->limit : 0;
}

static const char *header_problem(struct walk *w, uint64_t p, uint64_t sf)
{
	uint64_t cs = chunksize(sf);
	if (cs < HS_GLIBC_MINSIZE)
		return "is smaller than a chunk";
	if (cs & (HS_GLIBC_ALIGN - 1))
		return "is not a multiple of 16";
	if (cs > w->limit - p)
		return w->h->has_top ? "runs past the top chunk" : "runs past the heap's end";
	if (sf & HS_GLIBC_IS_MMAPPED)
		return "has IS_MMAPPED set inside a heap";
	return "has NON_MAIN_ARENA set in the main heap";
}

/* At a fencepost (chunk size 16): step over it.  Returns the next chunk, or
 * 0 when the heap ends here (size-0 marker, or the double fencepost the main
 * arena leaves before a gap). */
static uint64_t past_fencepost(struct walk *w, uint64_t p, uint64_t *sf)
{
	uint64_t q = p + HS_GLIBC_CHUNK_HDR, nsf;
	if (q >= w->h->end || !rd64(w->g, q + HS_GLIBC_CHUNK_SIZE, &nsf))
		return 0;
	if (chunksize(nsf) == 0 || chunksize(nsf) == HS_GLIBC_CHUNK_HDR)
		return 0;
	*sf = nsf;
	return q;
}

static struct hs_error *emit_top(struct gl *g, unsigned ai, const struct gl_heap *h, struct hs_heap *out);

/* sysmalloc's filler: when a full thread heap is closed with 48 bytes of top
 * left (too few for a fencepost and a free chunk), glibc marks the whole old
 * top in use as a MINSIZE chunk WITHOUT the NON_MAIN_ARENA bit (every chunk
 * malloc hands out in a thread arena has it), followed by the size-0 end
 * marker.  It is allocator metadata, never an allocation. */
static bool is_filler(const struct walk *w, uint64_t p, uint64_t sf, uint64_t nsf)
{
	return !w->h->main && !w->h->has_top && chunksize(sf) == HS_GLIBC_MINSIZE &&
	       !(sf & HS_GLIBC_NON_MAIN_ARENA) && chunksize(nsf) == 0 &&
	       p + HS_GLIBC_MINSIZE + HS_GLIBC_CHUNK_HDR == w->h->end;
}

/* Walk one heap from its first chunk: returns where the walk ended. */
static uint64_t walk_heap(struct gl *g, const struct gl_heap *h, struct hs_heap *out,
			  struct hs_error **err_ret)
{
	struct gl_arena *a = &g->arenas[h->arena];
	struct walk w = { .g = g, .out = out, .h = h, .arena = a,
			  .limit = h->has_top ? a->top : h->end };
	uint64_t p = h->first, sf = 0;
	unsigned long iter = 0;
	w.cur = free_lower_bound(g, p);
	if (!rd64(g, p + HS_GLIBC_CHUNK_SIZE, &sf)) {
		gdiag(g, DK_READ, HS_DIAG_ERROR, p, "%s: heap 0x%" PRIx64 " cannot be read (%s): not walked",
		      a->out.label, h->start, read_error_name(g));
		return p;
	}
	while (p < w.limit && !w.err) {
		if ((++iter & 0xffff) == 0 && hs_walk_interrupted(g->ctx)) {
			g->interrupted = true;
			break;
		}
		uint64_t cs = chunksize(sf), nsf;
		bool bad = cs < HS_GLIBC_MINSIZE || (cs & (HS_GLIBC_ALIGN - 1)) || cs > w.limit - p ||
			   (sf & HS_GLIBC_IS_MMAPPED) || (h->main && (sf & HS_GLIBC_NON_MAIN_ARENA));
		if (bad && !(sf & HS_GLIBC_IS_MMAPPED) && cs == HS_GLIBC_CHUNK_HDR) {
			uint64_t q = past_fencepost(&w, p, &sf);
			if (!q) {
				w.walked_end = p;
				break;   /* the heap ends here */
			}
			p = q;
			continue;
		}
		if (bad && cs == 0 && !h->has_top) {
			w.walked_end = p;
			break;       /* end marker of an abandoned heap */
		}
		if (bad) {
			uint64_t q = resync(&w, p);
			gdiag(g, DK_HEADER, HS_DIAG_ERROR, p,
			      "%s: chunk 0x%" PRIx64 " has size field 0x%" PRIx64 ", which %s; %s",
			      a->out.label, p, sf, header_problem(&w, p, sf),
			      q ? "skipped to the next valid chunk" : "the rest of this heap is not walked");
			if (q && q < w.limit)
				gdiag(g, DK_HEADER, HS_DIAG_INFO, p,
				      "%s: 0x%" PRIx64 " bytes from 0x%" PRIx64 " to 0x%" PRIx64 " are unaccounted for",
				      a->out.label, q - p, p, q);
			if (!q || q >= w.limit) {
				p = q ? q : p;
				break;
			}
			p = q;
			w.cur = free_lower_bound(g, p);
			if (!rd64(g, p + HS_GLIBC_CHUNK_SIZE, &sf))
				break;
			continue;
		}
		if (h->top_guess && p + cs == h->end) {
			a->top = p;
			w.err = emit_top(g, h->arena, h, out);
			p += cs;
			break;
		}
		// Chunks are contiguous: ask for the memory a few chunks ahead now,
		// so that the dependent walk does not wait on every header.
		__builtin_prefetch(g->c_data + (p + cs + 1024 - g->c_lo));
		if (!rd64(g, p + cs + HS_GLIBC_CHUNK_SIZE, &nsf)) {
			gdiag(g, DK_READ, HS_DIAG_ERROR, p + cs,
			      "%s: chunk header 0x%" PRIx64 " cannot be read (%s): the rest of this heap is not walked",
			      a->out.label, p + cs, read_error_name(g));
			emit(&w, p, cs - HS_GLIBC_SIZE_SZ, classify(&w, p, 0, false));
			p += cs;
			break;
		}
		if (is_filler(&w, p, sf, nsf))
			emit(&w, p, cs - HS_GLIBC_SIZE_SZ, HS_WHERE_META);
		else
			emit(&w, p, cs - HS_GLIBC_SIZE_SZ, classify(&w, p, nsf, next_header_sane(&w, p + cs, nsf)));
		p += cs;
		sf = nsf;
	}
	*err_ret = w.err;
	return p;
}

/* The top chunk of an arena, checked against its heap. */
static struct hs_error *emit_top(struct gl *g, unsigned ai, const struct gl_heap *h, struct hs_heap *out)
{
	struct gl_arena *a = &g->arenas[ai];
	uint64_t sf;
	if (!rd64(g, a->top + HS_GLIBC_CHUNK_SIZE, &sf))
		return NULL;
	uint64_t cs = chunksize(sf);
	if (cs < HS_GLIBC_MINSIZE || (h && cs > h->end - a->top)) {
		if (cs != 0 || !h || a->top != h->end)
			gdiag(g, DK_HEADER, HS_DIAG_WARNING, a->top,
			      "%s: top chunk 0x%" PRIx64 " has size field 0x%" PRIx64, a->out.label, a->top, sf);
		if (cs < HS_GLIBC_MINSIZE)
			return NULL;
		cs = h->end - a->top;
	}
	hs_arena_fact_set(&a->out, "top", a->top + HS_GLIBC_CHUNK_HDR);
	hs_arena_fact_set(&a->out, "top_size", cs - HS_GLIBC_SIZE_SZ);
	struct walk w = { .g = g, .out = out, .h = h, .arena = a };
	emit(&w, a->top, cs - HS_GLIBC_SIZE_SZ, GST(GL_TOP));
	return w.err;
}

static struct hs_error *add_heap_region(struct hs_alloc_desc *d, uint64_t start, uint64_t end, unsigned arena)
{
	struct hs_region r = { .start = start, .end = end, .kind = HS_REGION_HEAP, .arena = arena };
	return hs_alloc_desc_add_region(d, &r);
}

/* The main heap: from the first chunk to top; a double fencepost before top
 * means sbrk memory was not contiguous, so the walk resumes in top's
 * mapping. */
static struct hs_error *walk_main_heap(struct gl *g, struct gl_heap *h, struct hs_heap *out,
				       struct hs_alloc_desc *d)
{
	struct hs_error *err = NULL;
	uint64_t top = g->arenas[0].top;
	uint64_t end = h->first < top ? walk_heap(g, h, out, &err) : top;
	HS_CHECK(err);
	if (g->interrupted)
		return NULL;
	if (end != top && h->first < top) {
		uint64_t start2 = main_heap_start_by_scan(g, top);
		if (start2 > end) {
			HS_CHECK(add_heap_region(d, h->start, end, 0));
			gdiag(g, DK_OTHER, HS_DIAG_INFO, end,
			      "main heap: a gap from 0x%" PRIx64 " (foreign sbrk); resumed at 0x%" PRIx64, end, start2);
			struct gl_heap h2 = *h;
			h2.start = h2.first = start2;
			end = walk_heap(g, &h2, out, &err);
			HS_CHECK(err);
			h->start = start2;
		}
		if (end != top)
			gdiag(g, DK_HEADER, HS_DIAG_ERROR, end,
			      "main heap: the chunk walk ended at 0x%" PRIx64 ", not at top 0x%" PRIx64, end, top);
	}
	HS_CHECK(emit_top(g, 0, h, out));
	return add_heap_region(d, h->start, h->end, 0);
}

static struct hs_error *walk_heaps(struct gl *g, struct hs_heap *out, struct hs_alloc_desc *d)
{
	for (size_t i = 0; i < g->nheaps && !g->interrupted; i++) {
		struct gl_heap *h = &g->heaps[i];
		struct hs_error *err = NULL;
		if (h->main && h->has_top) {
			HS_CHECK(walk_main_heap(g, h, out, d));
			continue;
		}
		uint64_t end = walk_heap(g, h, out, &err);
		HS_CHECK(err);
		if (h->has_top) {
			if (end != g->arenas[h->arena].top && !g->interrupted)
				gdiag(g, DK_HEADER, HS_DIAG_ERROR, end,
				      "%s: the chunk walk of heap 0x%" PRIx64 " ended at 0x%" PRIx64 ", not at top",
				      g->arenas[h->arena].out.label, h->start, end);
			HS_CHECK(emit_top(g, h->arena, h, out));
		}
		HS_CHECK(add_heap_region(d, h->start, h->end, h->arena));
	}
	if (g->interrupted)
		return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
	return NULL;
}

/* List entries that no walked chunk started at: inside another chunk, or in
 * a part of a heap that was skipped (one by one), or outside every heap
 * walked (counted). */
static void report_stray_entries(struct gl *g)
{
	size_t outside = 0;
	uint64_t first_outside = 0;
	for (size_t i = 0; i < g->nfree; i++) {
		const struct gl_free *f = &g->free[i];
		if (f->matched)
			continue;
		if (!heap_of(g, f->chunk)) {
			if (!outside++)
				first_outside = f->chunk;
			continue;
		}
		gdiag(g, DK_STRAY, HS_DIAG_WARNING, f->chunk,
		      "%s entry 0x%" PRIx64 " is not the start of any chunk the heap walk found",
		      f->where == HS_WHERE_META ? "tcache struct" : hs_where_name(f->where), f->chunk);
	}
	if (outside)
		gdiag(g, DK_OTHER, HS_DIAG_WARNING, first_outside,
		      "%zu free-list entries (the first at 0x%" PRIx64 ") lie outside every heap walked",
		      outside, first_outside);
}

/* ------------------------------------------------------------------------ */
/* step 6: mmapped chunks */

static int cmp_range(const void *a, const void *b)
{
	const struct gl_range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Everything that is not an anonymous mapping of mmapped chunks: files,
 * modules, heaps (the whole 64 MiB reservation), thread stacks. */
static struct gl_range *excluded_ranges(struct gl *g, size_t *n_ret)
{
	const struct hs_notes *n = g->ctx->notes;
	size_t cap = n->nfiles + g->nheaps + n->nthreads + g->nlibc_ranges + 1 +
		     (g->ctx->symbols ? g->ctx->symbols->nmodules : 0);
	struct gl_range *r = malloc(cap * sizeof(*r));
	size_t k = 0;
	if (!r)
		return NULL;
	for (size_t i = 0; i < n->nfiles; i++)
		r[k++] = (struct gl_range){ n->files[i].start, n->files[i].end };
	for (size_t i = 0; g->ctx->symbols && i < g->ctx->symbols->nmodules; i++)
		r[k++] = (struct gl_range){ g->ctx->symbols->modules[i].start, g->ctx->symbols->modules[i].end };
	for (size_t i = 0; i < g->nlibc_ranges; i++)
		r[k++] = g->libc_ranges[i];
	for (size_t i = 0; i < g->nheaps; i++)
		r[k++] = g->heaps[i].main ? (struct gl_range){ g->heaps[i].start, g->heaps[i].end }
					  : (struct gl_range){ g->heaps[i].start, g->heaps[i].start + HS_GLIBC_HEAP_MAX };
	for (size_t i = 0; i < n->nthreads; i++) {
		uint64_t sp = n->threads[i].regs[HS_REG_RSP] & ~(PAGE_SIZE_4K - 1);
		uint64_t hi = n->threads[i].stack_hi;
		if (!hi) {
			const struct hs_segment *seg = hs_memory_segment(g->mem, sp);
			hi = seg ? seg->end : sp;
		}
		if (sp && hi > sp)
			r[k++] = (struct gl_range){ sp, hi };
	}
	qsort(r, k, sizeof(*r), cmp_range);
	for (size_t i = 1; i < k; i++)
		if (r[i].end < r[i - 1].end)
			r[i].end = r[i - 1].end;
	*n_ret = k;
	return r;
}

/* The end of an excluded range holding a, or 0.  r is sorted by start and
 * its ends were turned into running maxima (so ranges may overlap). */
static uint64_t excluded_until(const struct gl_range *r, size_t n, uint64_t a)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r[mid].start <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && r[lo - 1].end > a ? r[lo - 1].end : 0;
}

/* a rounded up to a page; 0 (less than a) when that wraps. */
static uint64_t page_up(uint64_t a)
{
	return (a + PAGE_SIZE_4K - 1) & ~(PAGE_SIZE_4K - 1);
}

static struct hs_error *find_mmapped(struct gl *g, struct hs_heap *out, struct hs_alloc_desc *d)
{
	size_t nex = 0;
	struct gl_range *ex = excluded_ranges(g, &nex);
	if (!ex)
		return &hs_error_nomem;
	struct hs_error *err = NULL;
	for (size_t i = 0; i < g->mem->nsegs && !err; i++) {
		const struct hs_segment *seg = &g->mem->segs[i];
		if (!(seg->flags & HS_SEG_W) || (seg->flags & HS_SEG_NOT_IN_CORE) || seg->filesz < 16)
			continue;
		uint64_t dumped_end = seg->start + seg->filesz;
		const uint8_t *data = hs_memory_span(g->mem, seg->start, seg->filesz);
		if (!data)
			continue;
		// Every step moves q up; a range or segment ending near the top of
		// the address space must not wrap the page round-up to 0.
		uint64_t q = page_up(seg->start);
		while (q >= seg->start && q < dumped_end && dumped_end - q >= 16 && !err) {
			uint64_t until = excluded_until(ex, nex, q);
			if (!until && (until = hs_memory_skip_hole(g->mem, q)) == q)
				until = 0;          // (a hole of a sparse core: zeros)
			if (until) {
				q = page_up(until);
				if (q < until)
					break;
				continue;
			}
			uint64_t prev_size, sf;
			memcpy(&prev_size, data + (q - seg->start) + HS_GLIBC_CHUNK_PREV_SIZE, 8);
			memcpy(&sf, data + (q - seg->start) + HS_GLIBC_CHUNK_SIZE, 8);
			uint64_t cs = chunksize(sf);
			if (prev_size == 0 && (sf & HS_GLIBC_SIZE_BITS) == HS_GLIBC_IS_MMAPPED && cs &&
			    (cs & (PAGE_SIZE_4K - 1)) == 0 && cs <= seg->end - q) {
				err = hs_heap_add(out, q + HS_GLIBC_CHUNK_HDR, cs - HS_GLIBC_CHUNK_HDR,
						  HS_WHERE_MMAPPED, HS_ARENA_NONE);
				if (!err) {
					struct hs_region r = { .start = q, .end = q + cs,
							       .kind = HS_REGION_MMAPPED_CHUNK, .arena = HS_ARENA_NONE };
					err = hs_alloc_desc_add_region(d, &r);
				}
				g->nmmapped++;
				q += cs;
				continue;
			}
			if (dumped_end - q <= PAGE_SIZE_4K)
				break;
			q += PAGE_SIZE_4K;
		}
	}
	free(ex);
	if (err)
		return err;
	if (g->n_mmaps >= 0 && (uint64_t)g->n_mmaps != g->nmmapped)
		gdiag(g, DK_OTHER, HS_DIAG_WARNING, g->mp,
		      "found %zu mmapped chunks, but mp_.n_mmaps says %" PRId64 "%s", g->nmmapped, g->n_mmaps,
		      (uint64_t)g->n_mmaps > g->nmmapped ? " (some are not dumped, or not recognised)" : "");
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
	HS_CHECK(read_arena_ring(g));                  /* 1 */
	HS_CHECK(find_orphan_arenas(g));
	HS_CHECK(find_heaps(g));                       /* 2 */
	HS_CHECK(find_tcaches(g));                     /* 3 */
	decide_safe_linking(g);
	HS_CHECK(walk_lists(g, d));                    /* 4 */
	HS_CHECK(walk_heaps(g, heap, d));              /* 5 */
	report_stray_entries(g);
	HS_CHECK(find_mmapped(g, heap, d));            /* 6 */

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
