/* glibc_locate.c - glibc walker, detection: where ptmalloc's roots are and how
 * its structs are laid out (called by gl_detect in alloc_glibc.c).
 *
 * Reads libc's module (symbols.c: ELF symbols, DWARF), the "release version"
 * banner in core memory or the libc file, and libc's writable data; produces
 * in struct gl the libc ranges, the version, the layout L (DWARF, else the
 * glibc_layouts.c row, adjusted by what the core shows), main_arena and mp_,
 * each with how it was found.  A stripped libc is searched by scoring
 * arena-shaped data (empty bins point at themselves, the `next` ring closes).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "glibc_walker.h"

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

void glibc_copy_mp(struct hs_glibc_layout *d, const struct hs_glibc_layout *s)
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

void glibc_copy_hi(struct hs_glibc_layout *d, const struct hs_glibc_layout *s)
{
	d->hi_ar_ptr = s->hi_ar_ptr; d->hi_prev = s->hi_prev; d->hi_size = s->hi_size;
	d->hi_mprotect_size = s->hi_mprotect_size; d->hi_pagesize = s->hi_pagesize;
	d->hi_sizeof = s->hi_sizeof;
}

void glibc_copy_tc(struct hs_glibc_layout *d, const struct hs_glibc_layout *s)
{
	d->tc_counts = s->tc_counts; d->tc_count_width = s->tc_count_width;
	d->tc_entries = s->tc_entries; d->tc_nbins = s->tc_nbins; d->tc_sizeof = s->tc_sizeof;
}

/* The rows that differ in one aspect: named by the first version that has the
 * newer variant. */
const struct hs_glibc_layout *glibc_row_of(unsigned version)
{
	const struct hs_glibc_layout *r = hs_glibc_layout_for_version(version);
	return r ? r : &hs_glibc_layouts[hs_glibc_nlayouts - 1];
}

void glibc_note_adjusted(struct gl *g, const char *what)
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
		glibc_copy_mp(L, &mp);

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
			glibc_copy_hi(L, &hi);
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
			glibc_copy_tc(L, &tc);
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
void glibc_find_libc(struct gl *g)
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

void glibc_detect_version(struct gl *g)
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

void glibc_choose_layout(struct gl *g)
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
									  : glibc_row_of(0);
	g->L = *base;
	if (g->libc && g->libc->debug_found && layout_from_dwarf(g, &g->L))
		g->dwarf = true;
	else
		g->L = *base;
	g->safe_linking = g->L.safe_linking;
	g->safe_linking_how = g->row ? "version" : "default";

	uint64_t v;
	if (hs_walk_override(g->ctx, "heap_info_size", &v) && (v == 32 || v == 48)) {
		glibc_copy_hi(&g->L, glibc_row_of(v == 48 ? V_HEAP_INFO_48 : V_HEAP_INFO_48 - 1));
		g->over_hi = true;
	}
	if (hs_walk_override(g->ctx, "tcache_counts_u16", &v)) {
		glibc_copy_tc(&g->L, glibc_row_of(v ? V_TCACHE_U16 : V_TCACHE_U16 - 1));
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

/* Read one malloc_state with the malloc_state aspect of layout L. */
bool glibc_read_arena(struct gl *g, const struct hs_glibc_layout *L, uint64_t addr,
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
int glibc_arena_score(struct gl *g, const struct hs_glibc_layout *L, uint64_t addr)
{
	struct gl_arena a;
	if ((addr & 7) || !glibc_read_arena(g, L, addr, &a))
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
		glibc_row_of(g->L.ms_have_fastchunks == HS_GLIBC_ABSENT ? V_HAVE_FASTCHUNKS : V_HAVE_FASTCHUNKS - 1);
	out[1] = other;
	return 2;
}

/* Which malloc_state variant makes main_arena consistent: switch to it if it
 * is not the version's (a finding). */
void glibc_confirm_ms_variant(struct gl *g)
{
	const struct hs_glibc_layout *v[2];
	size_t n = ms_variants(g, v);
	if (n < 2)
		return;
	int s0 = glibc_arena_score(g, v[0], g->main_arena), s1 = glibc_arena_score(g, v[1], g->main_arena);
	if (s1 > s0 && s1 >= ARENA_SCORE_CLOSED) {
		if (g->row)
			hs_walk_diag(g->ctx, HS_DIAG_WARNING, g->main_arena,
				    "main_arena does not fit glibc %u.%02u's malloc_state but fits the %s "
				    "one: using that", g->version / 100, g->version % 100,
				    v[1]->ms_have_fastchunks == HS_GLIBC_ABSENT ? "2.26" : "2.27+");
		copy_ms(&g->L, v[1]);
		glibc_note_adjusted(g, "malloc_state");
	}
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
			int sc = glibc_arena_score(g, v[k], arena);
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
			glibc_note_adjusted(g, "malloc_state");
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

bool glibc_find_main_arena(struct gl *g)
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

void glibc_find_mp_by_symbol(struct gl *g)
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
