/* glibc_freelists.c - glibc walker, steps 3-4: tcaches and every free list
 * (called by gl_walk in alloc_glibc.c).
 *
 * Reads each thread's tcache_perthread_struct (found in static TLS below
 * fs_base, else as the first chunk of a heap), then every tcache bin, fastbin
 * and bin of every arena, bounded and cycle-checked, decoding safe-linking
 * when the votes say it is on; produces g->tcaches and g->free, the sorted
 * list of chunks some list holds, with their state, which the chunk walk
 * (glibc_chunks.c) looks each chunk up in.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "glibc_walker.h"

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
	const struct hs_glibc_layout *u8 = glibc_row_of(V_TCACHE_U16 - 1), *u16 = glibc_row_of(V_TCACHE_U16);
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
	glibc_copy_tc(&g->L, want);
	glibc_note_adjusted(g, "tcache");
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
	if (!glibc_grow((void **)&g->tcaches, &g->captcaches, g->ntcaches, sizeof(*g->tcaches)))
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

struct hs_error *glibc_find_tcaches(struct gl *g)
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

void glibc_decide_safe_linking(struct gl *g)
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
		glibc_note_adjusted(g, "safe-linking");
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
	HS_CHECK(glibc_add_free(g, tc->addr - HS_GLIBC_CHUNK_HDR, HS_WHERE_META));
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
			HS_CHECK(glibc_add_free(g, e - HS_GLIBC_CHUNK_HDR, GST(GL_TCACHE)));
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
			HS_CHECK(glibc_add_free(g, p, GST(GL_FASTBIN)));
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
			HS_CHECK(glibc_add_free(g, p, fl.where));
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

struct hs_error *glibc_walk_lists(struct gl *g, struct hs_alloc_desc *d)
{
	for (size_t t = 0; t < g->ntcaches; t++)
		HS_CHECK(walk_tcache(g, &g->tcaches[t], d));
	for (unsigned a = 0; a < g->narenas; a++) {
		HS_CHECK(walk_fastbins(g, a, d));
		HS_CHECK(walk_bins(g, a, d));
	}
	return sort_free(g);
}
