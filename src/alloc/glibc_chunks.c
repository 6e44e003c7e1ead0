/* glibc_chunks.c - glibc walker, steps 5-6: every chunk (called by gl_walk in
 * alloc_glibc.c).
 *
 * Reads every heap from glibc_heaps.c over zero-copy spans and the sorted
 * free entries from glibc_freelists.c; produces the blocks (hs_heap_add: used,
 * or free in the state of the list that holds it, or unlisted-free when its
 * successor's PREV_INUSE is clear), the heap and mmap regions, and the arenas'
 * totals.  A bad header costs the chunks up to the next point where headers
 * chain again (resync), never the rest.  Then the mmapped chunks: page-aligned
 * headers in anonymous writable mappings, counted against mp_.n_mmaps.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "glibc_walker.h"

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
	const uint8_t *kinds; /* hs_where_kinds(), looked up once a heap */
};

static void emit(struct walk *w, uint64_t chunk, uint64_t usable, unsigned where)
{
	if (w->err)
		return;
	w->err = hs_heap_add(w->out, chunk + HS_GLIBC_CHUNK_HDR, usable, where, w->h->arena);
	struct hs_arena *o = &w->arena->out;
	enum hs_state_kind k = (enum hs_state_kind)w->kinds[where & 0xff];
	if (k == HS_STATE_FREE) {
		o->free_count++;
		o->free_bytes += usable;
	} else if (k == HS_STATE_USED) {
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
	struct walk w = { .g = g, .out = out, .h = h, .arena = a, .kinds = hs_where_kinds(),
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
	struct walk w = { .g = g, .out = out, .h = h, .arena = a, .kinds = hs_where_kinds() };
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
		uint64_t start2 = glibc_main_heap_start_by_scan(g, top);
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

/* Thread heaps are runs of chunks that share nothing a walk writes but the
 * arena totals and the findings: the last thread heaps, about half of all
 * heap bytes, are walked on a helper thread ("far" heaps) into a block array
 * of its own, with its own read cache, arena totals and deferred findings.
 * Then each far heap is finished here, in order, as if walked here: its
 * findings said, its blocks appended, its top and region added.  The result
 * is the one-thread walk's, block for block and finding for finding.  Even
 * a small heap is split so (a thread costs little next to reading a core):
 * every core with thread arenas takes this path, tests included. */
struct far_heap {
	size_t first, n;            /* its blocks in far.out */
	size_t top, tops_before;    /* its top in far_finish's tops (SIZE_MAX: none), and those before */
	size_t diags;               /* its findings start here in far.defer */
	uint64_t end;               /* where its walk ended */
	struct hs_error *err;
	bool interrupted;
};

struct far {
	struct gl g;                /* a copy: read cache, context, arenas */
	struct hs_walk_ctx ctx;
	struct hs_walk_defer defer;
	struct hs_heap out;
	size_t from;                /* heaps [from, g.nheaps) */
	struct far_heap *heaps;
};

static void *far_run(void *arg)
{
	struct far *f = arg;
	for (size_t i = f->from; i < f->g.nheaps; i++) {
		struct far_heap *fh = &f->heaps[i - f->from];
		fh->first = f->out.n;
		fh->diags = f->defer.n;
		fh->end = walk_heap(&f->g, &f->g.heaps[i], &f->out, &fh->err);
		fh->n = f->out.n - fh->first;
		fh->interrupted = f->g.interrupted;
		if (fh->err || fh->interrupted)
			break;
	}
	return NULL;
}

// The first far heap: thread heaps from there on hold about half of the heap
// bytes; nheaps when none is worth a thread.
static size_t far_from(const struct gl *g)
{
	if (g->ctx->jobs < 2 || !hs_memory_loaded(g->mem))
		return g->nheaps;
	uint64_t total = 0, tail = 0;
	for (size_t i = 0; i < g->nheaps; i++)
		total += g->heaps[i].end - g->heaps[i].start;
	size_t k = g->nheaps;
	while (k > 0 && !g->heaps[k - 1].main && !g->heaps[k - 1].top_guess && tail < total / 2) {
		k--;
		tail += g->heaps[k].end - g->heaps[k].start;
	}
	return k;
}

// After heap i's chunks: its top (when it ends in one) and its region.
static struct hs_error *heap_done(struct gl *g, size_t i, uint64_t end, struct hs_heap *out,
				  struct hs_alloc_desc *d)
{
	struct gl_heap *h = &g->heaps[i];
	if (h->has_top) {
		if (end != g->arenas[h->arena].top && !g->interrupted)
			gdiag(g, DK_HEADER, HS_DIAG_ERROR, end,
			      "%s: the chunk walk of heap 0x%" PRIx64 " ended at 0x%" PRIx64 ", not at top",
			      g->arenas[h->arena].out.label, h->start, end);
		HS_CHECK(emit_top(g, h->arena, h, out));
	}
	return add_heap_region(d, h->start, h->end, h->arena);
}

/* The far blocks of heaps [f->from, upto) and their tops appended to out:
 * the blocks moved all at once (hs_array_move: by their pages, not copied
 * into fresh ones), then, from the last heap down, each heap's shifted up past
 * the tops of the heaps before it and its top put after it. */
static struct hs_error *far_place(struct far *f, size_t upto, const struct hs_heap *tops, struct hs_heap *out)
{
	if (upto == f->from)
		return NULL;
	size_t first = f->heaps[0].first, at = out->n;
	const struct far_heap *fl = &f->heaps[upto - 1 - f->from];
	size_t nblocks = fl->first + fl->n - first;
	HS_CHECK(HS_VEC_GROW(out->blocks, out->cap, at + nblocks + tops->n));
	struct hs_block *b = out->blocks;
	if (nblocks)
		hs_array_move(b + at, f->out.blocks + first, nblocks * sizeof(*b));
	for (size_t i = upto; i-- > f->from;) {
		const struct far_heap *h = &f->heaps[i - f->from];
		size_t from = at + h->first - first, shift = h->tops_before;
		if (shift && h->n)
			memmove(b + from + shift, b + from, h->n * sizeof(*b));
		if (h->top != SIZE_MAX)
			b[from + shift + h->n] = tops->blocks[h->top];
	}
	out->n = at + nblocks + tops->n;
	// Sorted if it was, the far blocks were, and so is every joint: the
	// first block placed, and each top.
	bool sorted = out->sorted && f->out.sorted &&
		      (!at || at == out->n || b[at - 1].address <= b[at].address);
	for (size_t i = f->from; sorted && i < upto; i++) {
		const struct far_heap *h = &f->heaps[i - f->from];
		size_t k = at + h->first - first + h->tops_before + h->n;   // its top
		if (h->top == SIZE_MAX)
			continue;
		sorted = (k == 0 || b[k - 1].address <= b[k].address) &&
			 (k + 1 == out->n || b[k].address <= b[k + 1].address);
	}
	out->sorted = sorted;
	return NULL;
}

static struct hs_error *far_finish(struct gl *g, struct far *f, struct hs_heap *out, struct hs_alloc_desc *d)
{
	// Each heap's findings and top here, in order, as if walked here (the
	// tops to a heap of their own); then all the blocks placed at once.
	struct hs_heap tops;
	hs_heap_init(&tops);
	struct hs_error *err = NULL;
	size_t upto = f->from;
	for (size_t i = f->from; i < g->nheaps && !g->interrupted; i++) {
		struct far_heap *fh = &f->heaps[i - f->from];
		bool last = i + 1 == g->nheaps || fh->err || fh->interrupted;
		hs_walk_defer_replay(g->ctx, &f->defer, fh->diags, last ? f->defer.n : fh[1].diags);
		if ((err = fh->err)) {
			fh->err = NULL;
			break;
		}
		fh->tops_before = tops.n;
		upto = i + 1;
		g->interrupted = fh->interrupted;
		err = heap_done(g, i, fh->end, &tops, d);
		fh->top = tops.n > fh->tops_before ? tops.n - 1 : SIZE_MAX;
		if (err || last)
			break;
	}
	struct hs_error *perr = far_place(f, upto, &tops, out);
	hs_heap_deinit(&tops);
	if (err || perr) {
		if (err && perr)
			hs_error_destroy(perr);
		return err ? err : perr;
	}
	hs_walk_defer_finish(g->ctx, &f->defer);
	for (size_t a = 0; a < g->narenas; a++) {
		struct hs_arena *to = &g->arenas[a].out;
		const struct hs_arena *from = &f->g.arenas[a].out;
		to->used_count += from->used_count;
		to->used_bytes += from->used_bytes;
		to->free_count += from->free_count;
		to->free_bytes += from->free_bytes;
	}
	return NULL;
}

static void far_free(struct far *f)
{
	if (!f)
		return;
	free(f->heaps);
	free(f->g.arenas);
	hs_heap_deinit(&f->out);
	hs_walk_defer_deinit(&f->defer);
	free(f);
}

static struct far *far_start(struct gl *g, size_t from, pthread_t *tid)
{
	struct far *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->from = from;
	f->g = *g;
	f->ctx = *g->ctx;
	f->ctx.defer = &f->defer;
	f->g.ctx = &f->ctx;
	f->g.c_lo = f->g.c_len = 0;
	f->g.c_data = NULL;
	hs_heap_init(&f->out);
	f->heaps = calloc(g->nheaps - from, sizeof(*f->heaps));
	f->g.arenas = malloc(g->narenas * sizeof(*f->g.arenas));
	if (!f->heaps || !f->g.arenas) {
		far_free(f);
		return NULL;
	}
	memcpy(f->g.arenas, g->arenas, g->narenas * sizeof(*f->g.arenas));
	for (size_t a = 0; a < g->narenas; a++) {
		struct hs_arena *o = &f->g.arenas[a].out;
		o->used_count = o->used_bytes = o->free_count = o->free_bytes = 0;
	}
	// Room for the most chunks the far heaps can hold: pages never
	// written cost nothing, and the array never moves.
	uint64_t bytes = 0;
	for (size_t i = from; i < g->nheaps; i++)
		bytes += g->heaps[i].end - g->heaps[i].start;
	(void)hs_heap_reserve(&f->out, (size_t)(bytes / HS_GLIBC_MINSIZE + 1));
	if (pthread_create(tid, NULL, far_run, f) != 0) {
		far_free(f);
		return NULL;
	}
	return f;
}

static int heap_start_cmp(const void *x, const void *y)
{
	const struct gl_heap *a = *(const struct gl_heap *const *)x, *b = *(const struct gl_heap *const *)y;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return (a > b) - (a < b);       // stable: in the order they were found
}

/* The heaps in address order (stable), so that the blocks come out sorted:
 * found arena by arena, each arena's newest heap first, they would leave
 * finish() a second block array to fill.  Without memory for the order, it
 * is left as found (finish() sorts). */
static void heaps_by_address(struct gl *g)
{
	if (g->nheaps < 2)
		return;
	const struct gl_heap **ix = malloc(g->nheaps * sizeof(*ix));
	struct gl_heap *sorted = malloc(g->nheaps * sizeof(*sorted));
	if (ix && sorted) {
		for (size_t i = 0; i < g->nheaps; i++)
			ix[i] = &g->heaps[i];
		qsort(ix, g->nheaps, sizeof(*ix), heap_start_cmp);
		for (size_t i = 0; i < g->nheaps; i++)
			sorted[i] = *ix[i];
		memcpy(g->heaps, sorted, g->nheaps * sizeof(*sorted));
	}
	free(sorted);
	free(ix);
}

struct hs_error *glibc_walk_heaps(struct gl *g, struct hs_heap *out, struct hs_alloc_desc *d)
{
	heaps_by_address(g);
	size_t from = far_from(g);
	pthread_t tid;
	struct far *f = from < g->nheaps ? far_start(g, from, &tid) : NULL;
	size_t here = f ? from : g->nheaps;
	struct hs_error *err = NULL;
	for (size_t i = 0; i < here && !g->interrupted && !err; i++) {
		struct gl_heap *h = &g->heaps[i];
		if (h->main && h->has_top) {
			err = walk_main_heap(g, h, out, d);
			continue;
		}
		uint64_t end = walk_heap(g, h, out, &err);
		if (!err)
			err = heap_done(g, i, end, out, d);
	}
	if (f) {
		pthread_join(tid, NULL);
		if (!err && !g->interrupted)
			err = far_finish(g, f, out, d);
		far_free(f);
	}
	HS_CHECK(err);
	if (g->interrupted)
		return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
	return NULL;
}

/* List entries that no walked chunk started at: inside another chunk, or in
 * a part of a heap that was skipped (one by one), or outside every heap
 * walked (counted). */
void glibc_report_stray_entries(struct gl *g)
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

struct hs_error *glibc_find_mmapped(struct gl *g, struct hs_heap *out, struct hs_alloc_desc *d)
{
	size_t nex = 0;
	struct gl_range *ex = excluded_ranges(g, &nex);
	if (!ex)
		return &hs_error_nomem;
	struct hs_error *err = NULL;
	// A chunk's mapping may be several segments (madvise or mprotect split
	// it): its size is checked against the whole mapping, and the pages of
	// the segments after the first, its data, are not scanned for headers.
	uint64_t chunk_end = 0;
	for (size_t i = 0; i < g->mem->nsegs && !err; i++) {
		const struct hs_segment *seg = &g->mem->segs[i];
		if (!(seg->flags & HS_SEG_W) || (seg->flags & HS_SEG_NOT_IN_CORE) || seg->filesz < 16 ||
		    seg->start + seg->filesz <= chunk_end)
			continue;
		uint64_t dumped_end = seg->start + seg->filesz;
		const uint8_t *data = hs_memory_span(g->mem, seg->start, seg->filesz);
		if (!data)
			continue;
		// Every step moves q up; a range or segment ending near the top of
		// the address space must not wrap the page round-up to 0.
		uint64_t q = page_up(seg->start > chunk_end ? seg->start : chunk_end);
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
			    (cs & (PAGE_SIZE_4K - 1)) == 0 && cs <= hs_memory_mapping_end(g->mem, q) - q) {
				err = hs_heap_add(out, q + HS_GLIBC_CHUNK_HDR, cs - HS_GLIBC_CHUNK_HDR,
						  HS_WHERE_MMAPPED, HS_ARENA_NONE);
				if (!err) {
					struct hs_region r = { .start = q, .end = q + cs,
							       .kind = HS_REGION_MMAPPED_CHUNK, .arena = HS_ARENA_NONE };
					err = hs_alloc_desc_add_region(d, &r);
				}
				g->nmmapped++;
				q += cs;
				chunk_end = q;
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
