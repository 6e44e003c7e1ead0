/* go_mark.c - the Go runtime's roots, for the pointer graph (graph.c) with
 * its precise pointer maps (go_rt.c):
 *   globals     every word the module's GC masks (firstmoduledata.gcdatamask,
 *               gcbssmask) say holds a pointer: precise, without DWARF;
 *   finalizers  each finalizer special's fn, and the pointer words of the
 *               object it is set on (the object itself is not a root: the
 *               GC keeps what it points at, not the object);
 *   goroutines  each live goroutine's stack [sched.sp, stack.hi) and each
 *               M's g0/gsignal stack: scanned conservatively (every word
 *               that lands in an allocated object), as Go's stack maps are
 *               not read;
 *   threads     each thread's registers (graph.c, always).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "go_goroutines.h"
#include "go_mark.h"
#include "go_rt.h"
#include "session.h"
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
	if (last && last->end == start && last->kind == kind && last->module == mod) {
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

// Each thread's stack from its sp: the g0 or gsignal stack of its M
// (runtime.allm, linked by alllink) that holds the sp, scanned
// conservatively [sp, stack.hi).  A thread running a goroutine is that
// goroutine's (add_goroutines).  Returns how many were added.
static uint64_t add_m_stacks(struct rb *b, struct hs_gort *rt)
{
	struct hs_session *s = rt->s;
	struct hs_symbol sym;
	uint64_t o_link, o_g0, o_gsig, o_lo, o_hi, m, added = 0;
	struct hs_error *err = hs_symbols_lookup(s->symbols, rt->mod, "runtime.allm", &sym);
	if (!err)
		err = hs_gort_field(rt, "runtime.m", "alllink", 336, &o_link);
	if (!err)
		err = hs_gort_field(rt, "runtime.m", "g0", 0, &o_g0);
	if (!err)
		err = hs_gort_field(rt, "runtime.m", "gsignal", 80, &o_gsig);
	if (!err)
		err = hs_gort_field(rt, "runtime.g", "stack.lo", 0, &o_lo);
	if (!err)
		err = hs_gort_field(rt, "runtime.g", "stack.hi", 8, &o_hi);
	if (err || !hs_go_read(rt, sym.address, &m, 8)) {
		hs_diag_add(&s->diags, HS_DIAG_WARNING, "go", 0, "the Ms' stacks are not scanned: runtime.allm cannot be read%s%s",
			    err ? ": " : "", err ? hs_error_message(err) : "");
		hs_error_destroy(err);
		return 0;
	}
	const struct hs_notes *notes = &s->target->notes;
	for (unsigned n = 0; m && n < 100000; n++) {
		uint64_t gs[2];
		if (!hs_go_read(rt, m + o_g0, &gs[0], 8) || !hs_go_read(rt, m + o_gsig, &gs[1], 8))
			break;
		for (int k = 0; k < 2; k++) {
			uint64_t lo, hi;
			if (!gs[k] || !hs_go_read(rt, gs[k] + o_lo, &lo, 8) || !hs_go_read(rt, gs[k] + o_hi, &hi, 8) ||
			    hi <= lo)
				continue;
			for (size_t t = 0; t < notes->nthreads; t++) {
				uint64_t sp = notes->threads[t].regs[HS_REG_RSP];
				if (sp >= lo && sp < hi) {
					add(b, sp & ~UINT64_C(7), hi, HS_ROOT_STACK, NULL);
					b->r->ranges[b->r->n - 1].tid = notes->threads[t].tid;
					added++;
				}
			}
		}
		if (!hs_go_read(rt, m + o_link, &m, 8))
			break;
	}
	return added;
}

// Each live goroutine's stack from where it stopped, [sp, stack.hi) (the
// whole stack when sp is not in it), scanned conservatively.  True when
// every goroutine of allgs was read.
static bool add_goroutines(struct rb *b, struct hs_session *s, uint64_t *count)
{
	struct hs_error *err = hs_session_need_goroutines(s);
	if (err) {
		hs_diag_add(&s->diags, HS_DIAG_WARNING, "go", 0, "goroutine stacks are not roots: %s",
			    hs_error_message(err));
		hs_error_destroy(err);
		return false;
	}
	const struct hs_go_goroutines *l = s->goroutines;
	for (size_t i = 0; i < l->n; i++) {
		const struct hs_go_goroutine *g = &l->g[i];
		if (g->stack_hi <= g->stack_lo)
			continue;
		uint64_t from = g->sp >= g->stack_lo && g->sp < g->stack_hi ? g->sp : g->stack_lo;
		add(b, from & ~UINT64_C(7), g->stack_hi, HS_ROOT_STACK, NULL);
		if (b->r->n)
			b->r->ranges[b->r->n - 1].tid = g->tid;
		(*count)++;
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

struct hs_error *hs_go_roots_build(struct hs_session *s, struct hs_roots *ret, struct hs_go_mark *m)
{
	memset(ret, 0, sizeof(*ret));
	memset(m, 0, sizeof(*m));
	struct hs_gort *rt;
	HS_CHECK(hs_gort_open(s, &rt));
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
	m->stacks = add_goroutines(&b, s, &m->goroutines);
	m->m_stacks = add_m_stacks(&b, rt);
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

bool hs_go_stack_root_name(struct hs_session *s, uint64_t addr, char *buf, size_t len, uint64_t *goid)
{
	const struct hs_go_goroutines *l = s->go_rt ? s->goroutines : NULL;
	for (size_t i = 0; l && i < l->n; i++) {
		const struct hs_go_goroutine *g = &l->g[i];
		if (addr < g->stack_lo || addr >= g->stack_hi)
			continue;
		const char *fn = g->blocking < g->nframes && g->funcs ? g->funcs[g->blocking] : g->start_func;
		snprintf(buf, len, "goroutine %" PRIu64 "%s%s%s", g->goid, fn ? " (" : "", fn ? fn : "", fn ? ")" : "");
		*goid = g->goid;
		return true;
	}
	return false;
}
