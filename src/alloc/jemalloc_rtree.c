/* jemalloc_rtree.c - jemalloc walker, the rtree and collect: every extent the
 * extent map indexes (called by the locators to check a candidate, and by
 * walk_run in alloc_jemalloc.c to collect).
 *
 * Reads the rtree at the emap (2 or 3 levels: root, nodes, leaves) and one
 * edata_t per extent; produces the sorted extents (base, size, arena, state,
 * size class, slab bitmap), with stale elements of freed extents told apart
 * from live ones (elm_disagrees) and overlapping extents reported.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jemalloc_walker.h"

/* len bytes at addr: zero-copy when they lie in one dumped segment, else a copy
 * in *owned (freed by the caller). */
static struct hs_error *bytes_at(struct je_state *j, uint64_t addr, size_t len, const uint8_t **ret,
				 uint8_t **owned)
{
	*owned = NULL;
	*ret = hs_memory_span(j->mem, addr, len);
	if (*ret)
		return NULL;
	uint8_t *buf = malloc(len);
	if (!buf)
		return &hs_error_nomem;
	struct hs_error *err = hs_memory_read(j->mem, addr, buf, len);
	if (err) {
		free(buf);
		return err;
	}
	*owned = buf;
	*ret = buf;
	return NULL;
}

/* --- the rtree ------------------------------------------------------------ */

/* A leaf of the rtree and the key (page address) of its first element. */
struct leaf_ref { uint64_t leaf, prefix; };

/* The leaves of the rtree at emap (2 or 3 levels), at most max, in key order.
 * Root and node slots that hold no plausible pointer, and nodes that cannot be
 * read, are counted in *bad (and reported when report is set). */
static struct hs_error *rtree_leaves(struct je_state *j, uint64_t emap, struct leaf_ref *out, size_t max,
				     size_t *n_ret, unsigned *bad, bool report)
{
	const struct hs_je_layout *L = j->L;
	size_t nroot = (size_t)1 << L->root_bits, nnode = (size_t)1 << L->node_bits, n = 0;
	unsigned node_span = L->node_bits + L->leaf_bits + L->lg_page;
	const uint8_t *root;
	uint8_t *owned;
	*n_ret = 0;
	HS_CHECK(bytes_at(j, emap + L->emap_root, nroot * 8, &root, &owned));
	for (size_t i0 = 0; i0 < nroot && n < max; i0++) {
		uint64_t child = word_at(root, i0 * 8);
		if (!child)
			continue;
		if (!plausible_ptr(child, L->cacheline)) {
			(*bad)++;
			if (report)
				diag(j, D_ELM, HS_DIAG_ERROR, emap + L->emap_root + 8 * i0,
				     "rtree root slot %zu holds 0x%" PRIx64 ", not a %s; its %s of address space is skipped",
				     i0, child, L->height == 2 ? "leaf" : "node", L->height == 2 ? "1 GiB" : "4 TiB");
			continue;
		}
		if (L->height == 2) {
			out[n++] = (struct leaf_ref){ child, (uint64_t)i0 << node_span };
			continue;
		}
		const uint8_t *node;
		uint8_t *node_owned;
		struct hs_error *err = bytes_at(j, child, nnode * 8, &node, &node_owned);
		if (err) {
			(*bad)++;
			if (report)
				diag(j, D_ELM, HS_DIAG_ERROR, child,
				     "rtree node 0x%" PRIx64 " (root slot %zu) cannot be read (%s); its extents are missing",
				     child, i0, hs_error_message(err));
			hs_error_destroy(err);
			continue;
		}
		for (size_t i1 = 0; i1 < nnode && n < max; i1++) {
			uint64_t leaf = word_at(node, i1 * 8);
			if (!leaf)
				continue;
			if (!plausible_ptr(leaf, L->cacheline)) {
				(*bad)++;
				if (report)
					diag(j, D_ELM, HS_DIAG_ERROR, child + 8 * i1,
					     "rtree node slot %zu.%zu holds 0x%" PRIx64 ", not a leaf; skipped", i0, i1, leaf);
				continue;
			}
			out[n++] = (struct leaf_ref){ leaf, ((uint64_t)i0 << node_span) |
							    ((uint64_t)i1 << hs_je_leaf_span_bits(L)) };
		}
		free(node_owned);
	}
	if (n == max && report)
		diag(j, D_ELM, HS_DIAG_WARNING, emap,
		     "the rtree has more than %zu leaves; only the first %zu are walked", max, max);
	free(owned);
	*n_ret = n;
	return NULL;
}

/* Why leaf element e (for page key) disagrees with the edata_t it names, or
 * NULL.  Only what jemalloc keeps in step is compared, so that every state a
 * healthy heap can be in passes:
 *   - the page lies in the extent, and the states agree (5.3's leaves carry
 *     the state; every boundary element is updated with it);
 *   - an active slab: every element has the slab bit and the slab's class;
 *   - an active large extent: its head element (the page of e_addr) has the
 *     extent's class and no slab bit.  Its last page may keep a stale slab
 *     bit and class: emap_remap() writes only the head of a large extent;
 *   - an inactive extent: the slab bit and class of its elements are stale
 *     when it was a slab (freeing a slab rewrites only the state), and the
 *     edata_t's own slab bit too: neither is compared. */
static const char *elm_disagrees(const struct hs_je_layout *L, uint64_t key, const struct hs_je_leaf_elm *e,
				 uint64_t base, uint64_t size, const struct hs_je_ebits *eb)
{
	if (key < base || key - base >= size)
		return "the page is outside the extent";
	if (hs_je_leaf_has_state(L) && e->state != eb->state)
		return "the states differ";
	if (eb->state != HS_JE_ACTIVE)
		return NULL;
	if (eb->slab) {
		if (eb->szind >= L->nbins)
			return "a slab of no small size class";
		if (!e->slab || e->szind != eb->szind)
			return "a slab page without the slab's bit or class";
	} else if (key == base && (e->slab || e->szind != eb->szind)) {
		return "the head of a large extent without its class";
	}
	return NULL;
}

/* Does leaf element e (page key) decode to an edata_t that agrees with it? */
static bool elm_consistent(struct je_state *j, uint64_t key, const struct hs_je_leaf_elm *e)
{
	const struct hs_je_layout *L = j->L;
	if (!plausible_ptr(e->edata, 8))
		return false;
	uint8_t ed[32];
	struct hs_error *err = hs_memory_read(j->mem, e->edata, ed, L->edata_size_esn + 8);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	struct hs_je_ebits eb;
	hs_je_ebits_decode(L, word_at(ed, L->edata_bits), &eb);
	uint64_t page_mask = (UINT64_C(1) << L->lg_page) - 1;
	uint64_t base = word_at(ed, L->edata_addr) & ~page_mask;
	uint64_t size = word_at(ed, L->edata_size_esn) & ~page_mask;
	if (!size || size >= USER_MAX || base >= USER_MAX || eb.state > HS_JE_MERGING || eb.arena >= L->arenas_max)
		return false;
	return elm_disagrees(L, key, e, base, size, &eb) == NULL;
}

/* Check the rtree an emap candidate implies: its leaves must hold elements
 * that decode consistently.  Reads at most 4 leaves x 32 elements. */
bool je_emap_check(struct je_state *j, uint64_t emap, struct emap_score *sc)
{
	const struct hs_je_layout *L = j->L;
	memset(sc, 0, sizeof(*sc));
	uint64_t b0;
	if (!plausible_ptr(emap, 8) || !rd64(j, emap, &b0) || (L->emap_has_base && !plausible_ptr(b0, 8)))
		return false;
	struct leaf_ref leaves[4];
	size_t nleaves;
	unsigned bad_slots = 0;
	struct hs_error *err = rtree_leaves(j, emap, leaves, 4, &nleaves, &bad_slots, false);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	sc->bad = bad_slots;
	size_t nleaf = (size_t)1 << L->leaf_bits;
	for (size_t k = 0; k < nleaves; k++) {
		sc->leaves++;
		const uint8_t *lp = hs_memory_span(j->mem, leaves[k].leaf, hs_je_leaf_bytes(L));
		if (!lp) {
			sc->bad++;
			continue;
		}
		unsigned tried = 0;
		for (size_t i1 = 0; i1 < nleaf && tried < 32; i1++) {
			struct hs_je_leaf_elm e;
			hs_je_leaf_elm_at(L, lp, i1, &e);
			if (!e.edata)
				continue;
			tried++;
			if (elm_consistent(j, leaves[k].prefix | ((uint64_t)i1 << L->lg_page), &e))
				sc->good++;
			else
				sc->bad++;
		}
	}
	return sc->good >= 2 && sc->bad * 8 <= sc->good;
}


/* --- collect: the rtree's extents --------------------------------------- */

static int elm_cmp(const void *a, const void *b)
{
	const struct je_elm *x = a, *y = b;
	if (x->edata != y->edata)
		return x->edata < y->edata ? -1 : 1;
	return (x->key > y->key) - (x->key < y->key);
}

static int extent_cmp(const void *a, const void *b)
{
	const struct je_extent *x = a, *y = b;
	return (x->base > y->base) - (x->base < y->base);
}

int je_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Every element of every leaf, keeping only the first of a run with the same
 * edata (a slab registers all its pages) and the last (a slab's last page). */
static struct hs_error *collect_elements(struct je_state *j, struct je_elm **ret, size_t *n_ret)
{
	const struct hs_je_layout *L = j->L;
	size_t nleaf = (size_t)1 << L->leaf_bits;
	uint64_t leaf_bytes = hs_je_leaf_bytes(L);
	struct leaf_ref *leaves = malloc(MAX_LEAVES * sizeof(*leaves));
	size_t nleaves = 0;
	unsigned bad = 0;
	if (!leaves)
		return &hs_error_nomem;
	struct hs_error *err = rtree_leaves(j, j->emap, leaves, MAX_LEAVES, &nleaves, &bad, true);
	if (err) {
		free(leaves);
		return err;
	}
	qsort(leaves, nleaves, sizeof(leaves[0]), je_u64_cmp);   // by leaf address (first member)
	struct je_elm *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t prev_end = 0;
	for (size_t k = 0; k < nleaves && !err; k++) {
		if (hs_walk_interrupted(j->ctx)) {
			err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
			break;
		}
		// Leaves are arrays in base memory: two slots naming the same or
		// overlapping memory are corrupt (and would multiply the work).
		if (k && leaves[k].leaf < prev_end && leaves[k].leaf + leaf_bytes > leaves[k - 1].leaf) {
			diag(j, D_ELM, HS_DIAG_ERROR, leaves[k].leaf,
			     "rtree leaf 0x%" PRIx64 " (for 0x%" PRIx64 ") overlaps another leaf; skipped",
			     leaves[k].leaf, leaves[k].prefix);
			continue;
		}
		prev_end = leaves[k].leaf + leaf_bytes;
		const uint8_t *lp;
		uint8_t *owned;
		struct hs_error *rerr = bytes_at(j, leaves[k].leaf, leaf_bytes, &lp, &owned);
		if (rerr) {
			diag(j, D_ELM, HS_DIAG_ERROR, leaves[k].leaf,
			     "rtree leaf 0x%" PRIx64 " cannot be read (%s); the extents of its %" PRIu64 " MiB at 0x%" PRIx64 " are missing",
			     leaves[k].leaf, hs_error_message(rerr), (UINT64_C(1) << hs_je_leaf_span_bits(L)) >> 20,
			     leaves[k].prefix);
			hs_error_destroy(rerr);
			continue;
		}
		struct hs_je_leaf_elm prev = { 0 };
		for (size_t i1 = 0; i1 < nleaf; i1++) {
			struct hs_je_leaf_elm e;
			hs_je_leaf_elm_at(L, lp, i1, &e);
			if (!e.edata) {
				prev.edata = 0;
				continue;
			}
			// Keep the first and the last element of a run naming one
			// edata (a slab's pages), and any that differs from the one
			// before it (every element is checked, each run once).
			bool last = i1 + 1 == nleaf;
			if (!last) {
				struct hs_je_leaf_elm nx;
				hs_je_leaf_elm_at(L, lp, i1 + 1, &nx);
				last = nx.edata != e.edata;
			}
			if (e.edata == prev.edata && e.szind == prev.szind && e.state == prev.state &&
			    e.slab == prev.slab && !last)
				continue;
			prev = e;
			if (n == cap) {
				cap = cap ? cap * 2 : 4096;
				struct je_elm *nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					err = &hs_error_nomem;
					break;
				}
				v = nv;
			}
			v[n++] = (struct je_elm){ e.edata, leaves[k].prefix | ((uint64_t)i1 << L->lg_page),
						  (uint16_t)e.szind, (uint8_t)e.state, e.slab };
		}
		free(owned);
	}
	free(leaves);
	if (err) {
		free(v);
		return err;
	}
	*ret = v;
	*n_ret = n;
	return NULL;
}

/* One edata_t, read and checked against the elements that name it. */
static bool extent_read(struct je_state *j, const struct je_elm *el, size_t nel, struct je_extent *x)
{
	const struct hs_je_layout *L = j->L;
	uint64_t ed = el[0].edata;
	uint8_t buf[128];
	const uint8_t *p = hs_memory_span(j->mem, ed, L->edata_size);
	if (!p) {
		struct hs_error *err = hs_memory_read(j->mem, ed, buf, L->edata_bitmap + 8 * L->bitmap_words);
		if (err) {
			diag(j, D_EDATA, HS_DIAG_ERROR, ed, "edata_t 0x%" PRIx64 " (for page 0x%" PRIx64 ") cannot be read: %s",
			     ed, el[0].key, hs_error_message(err));
			hs_error_destroy(err);
			return false;
		}
		p = buf;
	}
	struct hs_je_ebits eb;
	hs_je_ebits_decode(L, word_at(p, L->edata_bits), &eb);
	uint64_t page_mask = (UINT64_C(1) << L->lg_page) - 1;
	memset(x, 0, sizeof(*x));
	x->edata = ed;
	x->addr = word_at(p, L->edata_addr);
	x->base = x->addr & ~page_mask;
	x->size = word_at(p, L->edata_size_esn) & ~page_mask;
	x->arena = eb.arena;
	x->state = eb.state;
	x->szind = eb.szind;
	x->nfree = eb.nfree;
	x->slab = eb.slab;
	memcpy(x->bitmap, p + L->edata_bitmap, 8 * L->bitmap_words);
	if (!x->size || x->size >= USER_MAX || !x->base || x->base >= USER_MAX - x->size ||
	    eb.state > HS_JE_MERGING || eb.arena >= L->arenas_max) {
		diag(j, D_EDATA, HS_DIAG_ERROR, ed,
		     "edata_t 0x%" PRIx64 " does not decode (address 0x%" PRIx64 ", size 0x%" PRIx64 ", state %u, arena %u); its extent is skipped",
		     ed, x->addr, x->size, eb.state, eb.arena);
		return false;
	}
	for (size_t i = 0; i < nel; i++) {
		struct hs_je_leaf_elm e = { el[i].edata, el[i].szind, el[i].state, false, el[i].slab };
		const char *why = elm_disagrees(L, el[i].key, &e, x->base, x->size, &eb);
		if (why) {
			diag(j, D_ELM, HS_DIAG_ERROR, el[i].key,
			     "the rtree says page 0x%" PRIx64 " belongs to edata_t 0x%" PRIx64 " (state %u, slab %d, class %u), which covers 0x%" PRIx64 "-0x%" PRIx64 " (state %u, slab %d, class %u): %s; extent skipped",
			     el[i].key, ed, e.state, e.slab, e.szind, x->base, x->base + x->size, x->state, x->slab, x->szind, why);
			return false;
		}
	}
	return true;
}

struct hs_error *je_collect_extents(struct je_state *j, struct extents *out)
{
	struct je_elm *el;
	size_t nel;
	HS_CHECK(collect_elements(j, &el, &nel));
	if (nel)
		qsort(el, nel, sizeof(*el), elm_cmp);
	memset(out, 0, sizeof(*out));
	struct hs_error *err = NULL;
	for (size_t i = 0; i < nel && !err;) {
		size_t k = i + 1;
		while (k < nel && el[k].edata == el[i].edata)
			k++;
		if ((i & 0xfff) == 0 && hs_walk_interrupted(j->ctx)) {
			err = hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
			break;
		}
		struct je_extent x;
		if (extent_read(j, el + i, k - i, &x)) {
			if (out->n == out->cap) {
				out->cap = out->cap ? out->cap * 2 : 1024;
				struct je_extent *nv = realloc(out->v, out->cap * sizeof(*nv));
				if (!nv) {
					err = &hs_error_nomem;
					break;
				}
				out->v = nv;
			}
			out->v[out->n++] = x;
		}
		i = k;
	}
	free(el);
	if (err) {
		free(out->v);
		out->v = NULL;
		return err;
	}
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), extent_cmp);
	// Drop extents that overlap an earlier one.
	size_t w = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (w && out->v[i].base < out->v[w - 1].base + out->v[w - 1].size) {
			diag(j, D_OVERLAP, HS_DIAG_ERROR, out->v[i].base,
			     "extent 0x%" PRIx64 "-0x%" PRIx64 " (edata_t 0x%" PRIx64 ") overlaps extent 0x%" PRIx64 "-0x%" PRIx64 "; skipped",
			     out->v[i].base, out->v[i].base + out->v[i].size, out->v[i].edata, out->v[w - 1].base,
			     out->v[w - 1].base + out->v[w - 1].size);
			continue;
		}
		out->v[w++] = out->v[i];
	}
	out->n = w;
	return NULL;
}

/* The extent holding addr, or NULL. */
const struct je_extent *je_extent_of(const struct extents *xs, uint64_t addr)
{
	size_t lo = 0, hi = xs->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (xs->v[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	const struct je_extent *x = &xs->v[lo - 1];
	return addr - x->base < x->size ? x : NULL;
}
