/* go_mark.c - the Go runtime's roots, for the pointer graph (graph.c) with
 * its precise pointer maps (go_rt.c):
 *   globals     every word the module's GC masks (firstmoduledata.gcdatamask,
 *               gcbssmask) say holds a pointer: precise, without DWARF;
 *   finalizers  each finalizer special's fn, and the pointer words of the
 *               object it is set on (the object itself is not a root: the
 *               GC keeps what it points at, not the object);
 *   goroutines  each live goroutine's stack: its live pointer slots by the
 *               executable's stack maps, word by word where there are none
 *               (go_goroutines.c's stack_live), and the registers of one a
 *               signal stopped (saved on its M's signal stack), word by
 *               word.  The Ms' own stacks (g0, gsignal) are not roots, as
 *               for the GC: the runtime keeps no heap pointer there alone,
 *               and what its mark left there is stale;
 *   threads     each thread's registers (graph.c, always).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "go_goroutines.h"
#include "go_mark.h"
#include "go_rt.h"
#include "diag.h"
#include "symbols.h"

#define MAX_MASK_BITS (UINT64_C(1) << 28)
#define MAX_SPECIALS 1000000

struct rb {
	struct hs_roots *r;
	size_t cap;
	bool nomem;
};

static void add(struct rb *b, uint64_t start, uint64_t end, enum hs_root_kind kind, const struct hs_module *mod)
{
	if (b->nomem || start >= end)
		return;
	struct hs_root_range *last = b->r->n ? &b->r->ranges[b->r->n - 1] : NULL;
	// Globals join; a stack stays one goroutine's (its owner).
	if (last && last->end == start && last->kind == kind && last->module == mod && kind == HS_ROOT_GLOBAL) {
		last->end = end;
		return;
	}
	if (b->r->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct hs_root_range *g = realloc(b->r->ranges, cap * sizeof(*g));
		if (!g) {
			b->nomem = true;
			return;
		}
		b->r->ranges = g;
		b->cap = cap;
	}
	b->r->ranges[b->r->n++] = (struct hs_root_range){ start, end, kind, 0, mod };
}

// The words of [base, base + 8n) whose bit is set in the mask at bits.
static void add_mask(struct rb *b, struct hs_gort *rt, uint64_t base, uint64_t n, uint64_t bits)
{
	if (!n || n > MAX_MASK_BITS || !bits)
		return;
	size_t nbytes = (size_t)((n + 7) / 8);
	uint8_t *m = malloc(nbytes);
	if (!m) {
		b->nomem = true;
		return;
	}
	if (hs_go_read(rt, bits, m, nbytes))
		for (uint64_t i = 0; i < n; i++)
			if (m[i / 8] >> (i % 8) & 1)
				add(b, base + 8 * i, base + 8 * i + 8, HS_ROOT_GLOBAL, rt->mod);
	free(m);
}

// Each finalizer: its fn word, and the pointer words of its object.
static void add_finalizers(struct rb *b, struct hs_gort *rt, uint64_t *count)
{
	uint64_t *bits = NULL;
	size_t capbits = 0, seen = 0;
	for (size_t i = 0; i < rt->nspans && !b->nomem; i++) {
		const struct hs_go_span *s = &rt->spans[i];
		for (uint64_t p = s->specials; p && seen < MAX_SPECIALS; seen++) {
			uint8_t hdr[24];
			if (!hs_go_read(rt, p, hdr, sizeof(hdr)))
				break;
			uint64_t next, off = 0;
			memcpy(&next, hdr, 8);
			memcpy(&off, hdr + rt->special_offset, rt->special_offset_size);
			if (hdr[rt->special_kind] == 1 && off < s->elemsize * 65536) {
				uint64_t obj = s->start + off - off % s->elemsize, size = s->elemsize;
				add(b, p + rt->special_fin_fn, p + rt->special_fin_fn + 8, HS_ROOT_MEMORY, NULL);
				size_t need = (size / 8 + 63) / 64;
				if (need > capbits) {
					uint64_t *n = realloc(bits, need * 8);
					if (!n) {
						b->nomem = true;
						break;
					}
					bits = n;
					capbits = need;
				}
				int r = obj + size <= s->end ? hs_go_pointer_bits(rt, obj, size, bits) : 0;
				for (uint64_t k = 0; r != 0 && k < size / 8; k++)
					if (r < 0 || (bits[k / 64] >> (k % 64) & 1))
						add(b, obj + 8 * k, obj + 8 * k + 8, HS_ROOT_MEMORY, NULL);
				(*count)++;
			}
			if (next == p)
				break;
			p = next;
		}
	}
	free(bits);
}

// Each live goroutine's stack: what of it the collector scans (its live
// ranges, go_goroutines.h: precise slots and word-by-word ranges alike, as
// the graph scans every word of a root range).  True when every goroutine
// of allgs was read.
static bool add_goroutines(struct rb *b, const struct hs_go_mark_input *in, uint64_t *count, uint64_t *signal_regs)
{
	const struct hs_go_goroutines *l = NULL;
	if (!in->goroutines)
		return false;
	struct hs_error *err = in->goroutines(in->ctx, &l);
	if (err) {
		hs_diag_add(in->diags, HS_DIAG_WARNING, "go", 0, "goroutine stacks are not roots: %s",
			    hs_error_message(err));
		hs_error_destroy(err);
		return false;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct hs_go_goroutine *g = &l->g[i];
		if (!g->nlive)
			continue;   // its stack bounds are not a stack
		for (size_t k = 0; k < g->nlive; k++) {
			add(b, g->live[k].start, g->live[k].end, HS_ROOT_STACK, NULL);
			if (b->r->n)
				b->r->ranges[b->r->n - 1].tid = g->tid;
		}
		(*count)++;
		// A goroutine a signal stopped (the crash of a kernel core): its
		// registers, where the kernel saved them on its M's signal stack.
		if (g->regs_at) {
			add(b, g->regs_at, g->regs_at + 8 * HS_GO_SIGNAL_REGS, HS_ROOT_STACK, NULL);
			if (b->r->n)
				b->r->ranges[b->r->n - 1].tid = g->tid;
			(*signal_regs)++;
		}
	}
	return l->unreadable == 0;
}

static int range_cmp(const void *x, const void *y)
{
	const struct hs_root_range *a = x, *b = y;
	return (a->start > b->start) - (a->start < b->start);
}

static int go_pointer_bits(const void *ctx, uint64_t addr, uint64_t size, uint64_t *bits)
{
	return hs_go_pointer_bits(ctx, addr, size, bits);
}

struct hs_error *hs_go_roots_build(const struct hs_go_mark_input *in, struct hs_roots *ret, struct hs_go_mark *m)
{
	memset(ret, 0, sizeof(*ret));
	memset(m, 0, sizeof(*m));
	struct hs_gort *rt;
	HS_CHECK(hs_gort_open(&in->rt, &rt));
	struct hs_error *err = hs_gort_prepare_types(rt);
	if (err) {
		hs_gort_close(rt);
		return err;
	}
	struct rb b = { .r = ret };
	// A mask covers its section at most (a damaged n must not make millions of roots).
	add_mask(&b, rt, rt->data, rt->edata > rt->data && rt->gcdata_n > (rt->edata - rt->data) / 8 ?
		 (rt->edata - rt->data) / 8 : rt->gcdata_n, rt->gcdata_bits);
	add_mask(&b, rt, rt->bss, rt->ebss > rt->bss && rt->gcbss_n > (rt->ebss - rt->bss) / 8 ?
		 (rt->ebss - rt->bss) / 8 : rt->gcbss_n, rt->gcbss_bits);
	m->global_words = 0;
	for (size_t i = 0; i < ret->n; i++)
		m->global_words += (ret->ranges[i].end - ret->ranges[i].start) / 8;
	add_finalizers(&b, rt, &m->finalizers);
	m->stacks = add_goroutines(&b, in, &m->goroutines, &m->signal_regs);
	if (b.nomem) {
		hs_roots_deinit(ret);
		hs_gort_close(rt);
		return &hs_error_nomem;
	}
	qsort(ret->ranges, ret->n, sizeof(*ret->ranges), range_cmp);
	// Overlaps (a finalized object's words twice): cut, never nested.
	size_t k = 0;
	for (size_t i = 0; i < ret->n; i++) {
		struct hs_root_range r = ret->ranges[i];
		if (k && r.start < ret->ranges[k - 1].end) {
			if (r.end <= ret->ranges[k - 1].end)
				continue;
			r.start = ret->ranges[k - 1].end;
		}
		ret->ranges[k++] = r;
	}
	ret->n = k;
	m->rt = rt;
	m->pointer_bits = go_pointer_bits;
	return NULL;
}

static const struct hs_go_goroutine *stack_root(const struct hs_go_goroutines *l, uint64_t addr)
{
	for (size_t i = 0; l && i < l->n; i++) {
		const struct hs_go_goroutine *g = &l->g[i];
		bool regs = g->regs_at && addr >= g->regs_at && addr < g->regs_at + 8 * HS_GO_SIGNAL_REGS;
		if (regs || (addr >= g->stack_lo && addr < g->stack_hi))
			return g;
	}
	return NULL;
}

const char *hs_go_stack_word(const struct hs_go_goroutines *l, uint64_t addr, bool *precise)
{
	const struct hs_go_goroutine *g = stack_root(l, addr);
	*precise = false;
	// (A word of the registers a signal saved is in no frame.)
	if (!g || addr < g->sp || addr >= g->stack_hi || !g->nframes || !g->sps)
		return NULL;
	for (size_t k = 0; k < g->nlive; k++)
		if (addr >= g->live[k].start && addr < g->live[k].end)
			*precise = g->live[k].precise;
	size_t i = 0;
	while (i + 1 < g->nframes && g->sps[i + 1] <= addr)
		i++;
	return g->funcs[i];
}

bool hs_go_stack_root_system(const struct hs_go_goroutines *l, uint64_t addr)
{
	const struct hs_go_goroutine *g = stack_root(l, addr);
	return g && g->system;
}

bool hs_go_stack_root_name(const struct hs_go_goroutines *l, uint64_t addr, char *buf, size_t len, uint64_t *goid)
{
	const struct hs_go_goroutine *g = stack_root(l, addr);
	if (g) {
		const char *fn = g->blocking < g->nframes && g->funcs ? g->funcs[g->blocking] : g->start_func;
		snprintf(buf, len, "goroutine %" PRIu64 "%s%s%s", g->goid, fn ? " (" : "", fn ? fn : "", fn ? ")" : "");
		*goid = g->goid;
		return true;
	}
	return false;
}
