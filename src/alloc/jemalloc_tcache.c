/* jemalloc_tcache.c - jemalloc walker, tcaches: every thread cache and the
 * objects it holds (called by walk_run in alloc_jemalloc.c).
 *
 * Reads the arenas' tcache rings (tcache_slow_t) and each thread's TLS
 * (tsd_t, at the TLS offset je_find_tpoff found in jemalloc_locate.c), then each
 * tcache's cache bins; produces j->tcaches and the sorted set of cached
 * objects, which emit (jemalloc_emit.c) marks free ("tcache").
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jemalloc_walker.h"

/* --- tcaches ----------------------------------------------------------------- */

static struct je_tcache *tcache_add(struct je_state *j, uint64_t address, uint64_t slow)
{
	for (size_t i = 0; i < j->ntcaches; i++)
		if (j->tcaches[i].address == address)
			return &j->tcaches[i];
	if ((j->ntcaches & (j->ntcaches - 1)) == 0) {
		struct je_tcache *p = realloc(j->tcaches, (j->ntcaches ? j->ntcaches * 2 : 8) * sizeof(*p));
		if (!p)
			return NULL;
		j->tcaches = p;
	}
	struct je_tcache *t = &j->tcaches[j->ntcaches++];
	memset(t, 0, sizeof(*t));
	t->address = address;
	t->slow = slow;
	return t;
}

/* Every tcache: each arena's tcache_ql ring of tcache_slow_t (config_stats),
 * and each thread's own (tsd_t in TLS). */
struct hs_error *je_find_tcaches(struct je_state *j)
{
	const struct hs_je_layout *L = j->L;
	for (size_t a = 0; a < j->narenas; a++) {
		uint64_t head, ts;
		if (!j->arenas[a].address || !rd64(j, j->arenas[a].address + L->arena_tcache_ql, &head) || !head)
			continue;
		ts = head;
		for (unsigned n = 0;; n++) {
			uint64_t tc = ts, next, back;
			if (n == MAX_RING || !plausible_ptr(ts, 8) ||
			    (!L->ring_is_tcache && !rd64(j, ts + L->tcache_slow_tcache, &tc)) || !plausible_ptr(tc, 8)) {
				diag(j, D_RING, HS_DIAG_WARNING, ts,
				     "the tcache ring of arena %u is broken at 0x%" PRIx64 " after %u entries; the rest is found through TLS only",
				     j->arenas[a].ind, ts, n);
				break;
			}
			struct je_tcache *t = tcache_add(j, tc, ts);
			if (!t)
				return &hs_error_nomem;
			t->in_ring = true;
			// The next node must link back to this one (a qr ring).
			if (!rd64(j, ts + L->tcache_slow_link, &next) || next == head)
				break;
			if (!rd64(j, next + L->tcache_slow_prev, &back) || back != ts) {
				diag(j, D_RING, HS_DIAG_WARNING, ts,
				     "the tcache ring of arena %u is broken after 0x%" PRIx64 " (%u entries): its next, 0x%" PRIx64 ", does not link back; the rest is found through TLS only",
				     j->arenas[a].ind, ts, n + 1, next);
				break;
			}
			ts = next;
		}
	}
	const struct hs_notes *nt = j->ctx->notes;
	for (size_t t = 0; j->have_tpoff && t < nt->nthreads; t++) {
		uint64_t fs = nt->threads[t].regs[HS_REG_FS_BASE];
		uint64_t tsd = fs + (uint64_t)j->tpoff;
		if (!fs || !je_tsd_valid(j, tsd))
			continue;
		struct je_tcache *tc = tcache_add(j, tsd + L->tsd_tcache,
						  L->ring_is_tcache ? tsd + L->tsd_tcache : tsd + L->tsd_tcache_slow);
		if (!tc)
			return &hs_error_nomem;
		tc->in_tls = true;
		tc->tid = nt->threads[t].tid;
	}
	return NULL;
}

static int cached_cmp(const void *a, const void *b)
{
	const struct je_cached *x = a, *y = b;
	return (x->ptr > y->ptr) - (x->ptr < y->ptr);
}

/* The objects cached in one cache_bin_t (cb: its bytes): where they are and
 * how many, and an address inside the tcache's stack allocation.  5.3: the
 * stack grows down from low_bits_empty to stack_head.  5.2: the objects are
 * avail[-ncached .. -1].  False when the bin is unused. */
static bool cache_bin_objects(const struct hs_je_layout *L, const uint8_t *cb, uint64_t *at, unsigned *n,
			      uint64_t *inside)
{
	if (L->cache_bin_kind == HS_JE_CB_STACK) {
		uint64_t head = word_at(cb, L->cache_bin_stack_head);
		uint16_t empty;
		memcpy(&empty, cb + L->cache_bin_low_bits_empty, 2);
		if (!head)
			return false;
		*at = head;
		*inside = head;
		*n = hs_je_cache_bin_ncached(head, empty);
		return true;
	}
	uint64_t avail = word_at(cb, L->cache_bin_avail);
	int32_t ncached;
	memcpy(&ncached, cb + L->cache_bin_ncached, 4);
	if (!avail)
		return false;
	*n = ncached > 0 && (uint64_t)ncached * 8 < avail ? (unsigned)ncached : 0;
	*at = avail - 8 * (uint64_t)*n;
	*inside = avail - 8;
	return true;
}

/* Every object in every bin of every tcache (cache_bin_t stacks). */
struct hs_error *je_read_tcaches(struct je_state *j, struct cached_set *cs)
{
	const struct hs_je_layout *L = j->L;
	memset(cs, 0, sizeof(*cs));
	cs->stacks = calloc(j->ntcaches ? j->ntcaches : 1, sizeof(uint64_t));
	if (!cs->stacks)
		return &hs_error_nomem;
	size_t nbins = L->tcache_nbins_max < j->sizes.nsizes ? L->tcache_nbins_max : j->sizes.nsizes;
	if (nbins > 256)
		nbins = 256;
	uint8_t *bins = malloc(nbins * L->cache_bin_size);
	if (!bins)
		return &hs_error_nomem;
	struct hs_error *ret = NULL;
	for (size_t t = 0; t < j->ntcaches && !ret; t++) {
		// One array (5.3), or bins_small then bins_large (5.2).
		uint64_t tc = j->tcaches[t].address;
		size_t nsmall = L->tcache_bins_large ? L->nbins : nbins;
		struct hs_error *err = hs_memory_read(j->mem, tc + L->tcache_bins, bins, nsmall * L->cache_bin_size);
		if (!err && L->tcache_bins_large)
			err = hs_memory_read(j->mem, tc + L->tcache_bins_large, bins + nsmall * L->cache_bin_size,
					     (nbins - nsmall) * L->cache_bin_size);
		if (err) {
			diag(j, D_TCACHE, HS_DIAG_ERROR, tc, "tcache 0x%" PRIx64 " cannot be read: %s", tc,
			     hs_error_message(err));
			hs_error_destroy(err);
			continue;
		}
		for (size_t b = 0; b < nbins; b++) {
			uint64_t at, inside;
			unsigned n;
			if (!cache_bin_objects(L, bins + b * L->cache_bin_size, &at, &n, &inside))
				continue;
			if (!cs->stacks[t])
				cs->stacks[t] = inside;
			if (!n)
				continue;
			uint64_t ptrs[8192];
			err = n <= 8192 ? hs_memory_read(j->mem, at, ptrs, 8 * (size_t)n)
					: hs_error_create(HS_ERR_OTHER, "%u objects is too many for one bin", n);
			if (err) {
				diag(j, D_TCACHE, HS_DIAG_ERROR, at,
				     "bin %zu of tcache 0x%" PRIx64 " (%u objects at 0x%" PRIx64 ") cannot be read: %s", b,
				     tc, n, at, hs_error_message(err));
				hs_error_destroy(err);
				continue;
			}
			if (cs->n + n > cs->cap) {
				size_t cap = cs->cap ? cs->cap * 2 : 4096;
				while (cap < cs->n + n)
					cap *= 2;
				struct je_cached *nv = realloc(cs->v, cap * sizeof(*nv));
				if (!nv) {
					ret = &hs_error_nomem;
					break;
				}
				cs->v = nv;
				cs->cap = cap;
			}
			for (unsigned i = 0; i < n; i++)
				cs->v[cs->n++] = (struct je_cached){ ptrs[i], (uint32_t)t, (uint16_t)b, false };
		}
		cs->nstacks = j->ntcaches;
	}
	free(bins);
	if (ret)
		return ret;
	if (cs->n)
		qsort(cs->v, cs->n, sizeof(*cs->v), cached_cmp);
	for (size_t i = 1; i < cs->n; i++)
		if (cs->v[i].ptr == cs->v[i - 1].ptr)
			diag(j, D_TCACHE, HS_DIAG_ERROR, cs->v[i].ptr,
			     "0x%" PRIx64 " is cached twice (tcaches 0x%" PRIx64 " and 0x%" PRIx64 "): a double free",
			     cs->v[i].ptr, j->tcaches[cs->v[i - 1].tcache].address, j->tcaches[cs->v[i].tcache].address);
	return NULL;
}

struct je_cached *je_cached_find(struct cached_set *cs, uint64_t ptr)
{
	size_t lo = 0, hi = cs->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cs->v[mid].ptr < ptr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < cs->n && cs->v[lo].ptr == ptr ? &cs->v[lo] : NULL;
}
