/* glibc_heaps.c - glibc walker, steps 1-2: the arenas and the heaps their chunks
 * live in (called by gl_walk in alloc_glibc.c).
 *
 * Reads main_arena's `next` ring (plus orphan arenas that a scan finds), mp_
 * (sbrk_base, n_mmaps) and each non-main arena's heap_info chain; produces
 * g->arenas and g->heaps (each heap's [start, end), first chunk and whether
 * it ends with its arena's top).  The main heap is found from sbrk_base, or
 * back from top by a validated chain of chunk headers when mp_ is unknown.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "glibc_walker.h"

/* ------------------------------------------------------------------------ */
/* step 1: the arena ring */

static struct hs_error *add_arena(struct gl *g, uint64_t addr, bool *readable_ret)
{
	if (!glibc_grow((void **)&g->arenas, &g->caparenas, g->narenas, sizeof(*g->arenas)))
		return &hs_error_nomem;
	struct gl_arena *a = &g->arenas[g->narenas];
	*readable_ret = glibc_read_arena(g, &g->L, addr, a);
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

struct hs_error *glibc_read_arena_ring(struct gl *g)
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
		if (g->narenas > 1 && glibc_arena_score(g, &g->L, a->addr) < 0) {
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
struct hs_error *glibc_find_orphan_arenas(struct gl *g)
{
	for (size_t i = 0; i < g->mem->nsegs && g->narenas < MAX_ARENAS; i++) {
		const struct hs_segment *seg = &g->mem->segs[i];
		uint64_t h = seg->start, ar;
		if ((h & (HS_GLIBC_HEAP_MAX - 1)) || !(seg->flags & HS_SEG_W) || seg->filesz < 64 ||
		    !rd64(g, h + g->L.hi_ar_ptr, &ar) || ar <= h || !hs_glibc_heap_info_size_known(ar - h) ||
		    arena_known(g, ar))
			continue;
		if (glibc_arena_score(g, &g->L, ar) < 0)
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
	const struct hs_glibc_layout *v[2] = { &g->L, glibc_row_of(
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
		glibc_copy_mp(&g->L, best_v);
		if (g->row)
			glibc_note_adjusted(g, "malloc_par");
	}
	g->mp_new_known = true;
}

/* The main heap's first chunk when sbrk_base is unknown: the first page
 * boundary in top's segment from which valid chunks lead exactly to top. */
uint64_t glibc_main_heap_start_by_scan(struct gl *g, uint64_t top)
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
	struct gl_heap h = { .start = start, .end = seg->start + seg->span, .first = start,
			     .arena = 0, .has_top = false, .main = true, .top_guess = true };
	return glibc_add_heap(g, &h);
}

static struct hs_error *find_main_heap(struct gl *g)
{
	struct gl_arena *m = &g->arenas[0];
	uint64_t sf;
	if (!is_chunk_ptr(m->top) || !rd64(g, m->top + HS_GLIBC_CHUNK_SIZE, &sf) || chunksize(sf) < HS_GLIBC_MINSIZE)
		return main_heap_without_top(g);
	uint64_t end = m->top + chunksize(sf);
	uint64_t mapped = hs_memory_mapping_end(g->mem, m->top);
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
		start = glibc_main_heap_start_by_scan(g, m->top);
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
	return glibc_add_heap(g, &h);
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
	glibc_copy_hi(&g->L, glibc_row_of(want == 48 ? V_HEAP_INFO_48 : V_HEAP_INFO_48 - 1));
	glibc_note_adjusted(g, "heap_info");
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
		HS_CHECK(glibc_add_heap(g, &gh));
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

struct hs_error *glibc_find_heaps(struct gl *g)
{
	HS_CHECK(find_main_heap(g));
	confirm_heap_info_size(g);
	for (unsigned i = 1; i < g->narenas; i++)
		HS_CHECK(find_arena_heaps(g, i));
	check_system_mem(g);
	return NULL;
}
