/* report_heap.c - the heap walk's reports: summary, arenas, chunks, bins, show.
 * Allocator-neutral: everything comes from the heap index and the walkers'
 * hs_alloc_desc. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "fields.h"
#include "graph.h"
#include "pools.h"
#include "types.h"

static const char *arena_label(const struct hs_session *s, unsigned arena)
{
	// Arena indexes are global across allocators: desc[0]'s first, then desc[1]'s.
	for (size_t d = 0; d < s->ndesc; d++) {
		if (arena < s->desc[d].narenas)
			return s->desc[d].arenas[arena].label;
		arena -= s->desc[d].narenas;
	}
	return NULL;
}

static void json_arena(struct hs_out *o, unsigned arena)
{
	if (arena == HS_ARENA_NONE)
		hs_json_null(o);
	else
		hs_json_u64(o, arena);
}

struct totals { uint64_t count, bytes; };

/* Application pools (pools.h): a used block on a pool's free list is shown
 * with where "pool" (state used).  A bad --pool is the command's error; any
 * other failure to find pools is a finding. */
static struct hs_error *try_pools(struct hs_cmd *c)
{
	struct hs_error *err = hs_session_need_pools(c->s);
	if (!err || err->code == HS_ERR_USAGE || err->code == HS_ERR_NOMEM || err->code == HS_ERR_INTERRUPTED)
		return err;
	hs_diag_add(&c->s->diags, HS_DIAG_WARNING, "pools", 0, "%s", hs_error_message(err));
	hs_error_destroy(err);
	return NULL;
}

static unsigned block_where(const struct hs_session *s, size_t i)
{
	unsigned w = hs_block_where(&s->heap.blocks[i]);
	return hs_where_is_used(w) && hs_pools_block_pooled(s->pools, &s->heap, i) ? HS_WHERE_POOL : w;
}

static const char *where_state(unsigned w)
{
	return w == HS_WHERE_POOL ? "used" : hs_where_state(w);
}

static bool where_used(unsigned w)
{
	return w == HS_WHERE_POOL || hs_where_is_used(w);
}

static bool where_free(unsigned w)
{
	return w != HS_WHERE_POOL && hs_where_is_free(w);
}

struct heap_totals {
	struct totals used, free, meta;
	struct totals where[HS_WHERE_MAX];
};

static void heap_totals(const struct hs_heap *h, struct heap_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < h->n; i++) {
		unsigned w = hs_block_where(&h->blocks[i]);
		uint64_t size = hs_block_size(&h->blocks[i]);
		struct totals *k = hs_where_is_free(w) ? &t->free : hs_where_kind(w) == HS_STATE_META ? &t->meta : &t->used;
		k->count++;
		k->bytes += size;
		t->where[w].count++;
		t->where[w].bytes += size;
	}
}

// One line per state of this kind that has blocks, in display order.
static void print_where_totals(struct hs_out *o, const struct heap_totals *t, enum hs_state_kind kind)
{
	char b[32];
	for (size_t k = 0; k < hs_where_count(); k++) {
		unsigned w = hs_where_at(k);
		if (t->where[w].count && hs_where_kind(w) == kind)
			hs_out_printf(o, "    %-20s %12" PRIu64 " %12s  %" PRIu64 "\n", hs_where_name(w),
				      t->where[w].count, hs_fmt_size(t->where[w].bytes, b, sizeof(b)), t->where[w].bytes);
	}
}

static size_t total_arenas(const struct hs_session *s)
{
	size_t n = 0;
	for (size_t d = 0; d < s->ndesc; d++)
		n += s->desc[d].narenas;
	return n;
}

// --arena N names an arena that exists, or the command says which do.
static struct hs_error *check_arena(struct hs_cmd *c, uint64_t arena)
{
	size_t n = total_arenas(c->s);
	if (arena == UINT64_MAX || arena < n)
		return NULL;
	if (!n)
		return hs_error_create(HS_ERR_USAGE, "%s: no arena %" PRIu64 ": the heap has no arenas", c->argv[0], arena);
	return hs_error_create(HS_ERR_USAGE, "%s: no arena %" PRIu64 ": the heap has %zu (0 to %zu, see: arenas)",
			       c->argv[0], arena, n, n - 1);
}

static void json_totals(struct hs_out *o, const char *key, const struct totals *t)
{
	hs_json_kcount(o, key, t->count, t->bytes);
}

void hs_cmd_json_allocators(struct hs_cmd *c)
{
	struct hs_out *o = c->out;
	char name[64] = "";
	for (size_t d = 0; d < c->s->ndesc; d++)
		snprintf(name + strlen(name), sizeof(name) - strlen(name), "%s%s", d ? "+" : "",
			 c->s->desc[d].allocator);
	hs_json_kstr(o, "allocator", name);
	hs_json_key(o, "allocators");
	hs_json_begin_array(o);
	for (size_t d = 0; d < c->s->ndesc; d++) {
		const struct hs_alloc_desc *a = &c->s->desc[d];
		hs_json_begin_object(o);
		hs_json_kstr(o, "name", a->allocator);
		hs_json_kstr(o, "version", a->version);
		hs_json_kstr(o, "layout_source", a->layout_source);
		hs_json_ku64(o, "arenas", a->narenas);
		hs_json_kcount(o, "in_use", a->in_use.count, a->in_use.bytes);
		hs_json_kcount(o, "free", a->free.count, a->free.bytes);
		hs_json_kcount(o, "metadata", a->meta.count, a->meta.bytes);
		hs_json_key(o, "facts");
		hs_json_begin_object(o);
		for (size_t f = 0; f < a->nfacts; f++)
			hs_json_ku64(o, a->facts[f].name, a->facts[f].value);
		hs_json_end_object(o);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
}

static struct hs_error *need_heap(struct hs_cmd *c)
{
	return hs_session_need_heap(c->s);
}

// The leak classes, when the graph can be built; a failure is a finding.
static bool try_analysis(struct hs_cmd *c)
{
	struct hs_error *err = hs_session_need_types(c->s);
	if (!err)
		return true;
	hs_diag_add(&c->s->diags, HS_DIAG_WARNING, "graph", 0, "%s", hs_error_message(err));
	hs_error_destroy(err);
	return false;
}

// Several allocators in one process: each one's share, as walked.
static void print_allocator_totals(struct hs_out *o, const struct hs_session *s)
{
	char a[32], b[32], m[32];
	hs_out_printf(o, "\n  %-10s %10s %12s %10s %12s %12s\n", "ALLOCATOR", "IN USE", "BYTES", "FREE", "BYTES",
		      "METADATA");
	for (size_t d = 0; d < s->ndesc; d++) {
		const struct hs_alloc_desc *ad = &s->desc[d];
		hs_out_printf(o, "  %-10s %10" PRIu64 " %12s %10" PRIu64 " %12s %12s\n", ad->allocator, ad->in_use.count,
			      hs_fmt_size(ad->in_use.bytes, a, sizeof(a)), ad->free.count,
			      hs_fmt_size(ad->free.bytes, b, sizeof(b)), hs_fmt_size(ad->meta.bytes, m, sizeof(m)));
	}
}

/* What summary shows: totals by state and `where`, the pools' share, the
 * allocators as walked and, with --leaks, the leak classes. */
struct summary_model {
	struct heap_totals t;
	struct totals pooled, live;     /* pooled: on an application pool's free list;
	                                   live: in use and not pooled */
	const struct hs_pools *pools;   /* NULL: none computed */
	bool pollution;                 /* pools->polluted, polluted_retained are known */
	bool leaks;                     /* the analysis' leak totals are shown */
	bool go;                        /* a Go heap: its metadata states are named */
	const struct hs_alloc_desc *desc;
	size_t ndesc;
	const char *not_walked;         /* an allocator found but not walked, or NULL */
};

static void summary_model(const struct hs_session *s, bool leaks, bool pollution, struct summary_model *m)
{
	const struct hs_pools *pl = s->pools;
	*m = (struct summary_model){ .pooled = { pl ? pl->count : 0, pl ? pl->bytes : 0 }, .pools = pl,
				     .pollution = pollution, .leaks = leaks, .desc = s->desc, .ndesc = s->ndesc,
				     .not_walked = s->walk_failure ? s->walk_failure->message : NULL };
	heap_totals(&s->heap, &m->t);
	uint64_t pooled_blocks = 0;
	for (size_t k = 0; pl && k < pl->nobjs; k++)
		pooled_blocks += !pl->pools[pl->objs[k].pool].slab;
	m->live.count = m->t.used.count - pooled_blocks;
	m->live.bytes = m->t.used.bytes - m->pooled.bytes;
	for (size_t d = 0; d < s->ndesc; d++)
		m->go |= s->desc[d].allocator && !strcmp(s->desc[d].allocator, "go");
}

static void summary_json(struct hs_cmd *c, const struct summary_model *m)
{
	struct hs_out *o = c->out;
	const struct hs_pools *pl = m->pools;
	hs_cmd_json_begin(c, "summary");
	hs_cmd_json_allocators(c);
	hs_json_ku64(o, "arenas", total_arenas(c->s));
	json_totals(o, "in_use", &m->t.used);
	json_totals(o, "free", &m->t.free);
	json_totals(o, "metadata", &m->t.meta);
	json_totals(o, "pooled", &m->pooled);
	hs_json_ku64(o, "pools", pl ? pl->n : 0);
	json_totals(o, "live", &m->live);
	if (m->pollution) {
		hs_json_ku64(o, "polluted", pl->polluted);
		hs_json_ku64(o, "polluted_retained", pl->polluted_retained);
	}
	if (m->leaks)
		hs_report_leak_totals(c);
	hs_json_key(o, "by_where");
	hs_json_begin_array(o);
	for (size_t k = 0; k < hs_where_count(); k++) {
		unsigned w = hs_where_at(k);
		if (!m->t.where[w].count)
			continue;
		hs_json_begin_object(o);
		hs_json_kstr(o, "where", hs_where_name(w));
		hs_json_kstr(o, "state", hs_where_state(w));
		hs_json_ku64(o, "count", m->t.where[w].count);
		hs_json_ku64(o, "bytes", m->t.where[w].bytes);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
}

static void summary_text(struct hs_cmd *c, const struct summary_model *m)
{
	struct hs_out *o = c->out;
	const struct heap_totals *t = &m->t;
	const struct hs_pools *pl = m->pools;
	char a[32];
	for (size_t d = 0; d < m->ndesc; d++) {
		const struct hs_alloc_desc *ad = &m->desc[d];
		hs_out_printf(o, "Allocator:  %s %s, %zu arena%s (layout: %s)\n", ad->allocator, ad->version,
			      ad->narenas, ad->narenas == 1 ? "" : "s", ad->layout_source);
	}
	// Said first, not only among the diagnostics: the totals below lack it.
	if (m->not_walked)
		hs_out_printf(o, "Not walked: %s\n", m->not_walked);
	hs_out_printf(o, "\n  %-22s %12s %12s  %s\n", "", "COUNT", "BYTES", "EXACT");
	hs_out_printf(o, "  %-22s %12" PRIu64 " %12s  %" PRIu64 "\n", "in use", t->used.count,
		      hs_fmt_size(t->used.bytes, a, sizeof(a)), t->used.bytes);
	print_where_totals(o, t, HS_STATE_USED);
	hs_out_printf(o, "  %-22s %12" PRIu64 " %12s  %" PRIu64 "\n", "free", t->free.count,
		      hs_fmt_size(t->free.bytes, a, sizeof(a)), t->free.bytes);
	print_where_totals(o, t, HS_STATE_FREE);
	if (t->meta.count)
		hs_out_printf(o, "  %-22s %12" PRIu64 " %12s  %" PRIu64 "\n", "allocator metadata", t->meta.count,
			      hs_fmt_size(t->meta.bytes, a, sizeof(a)), t->meta.bytes);
	// A Go heap's metadata is goroutine stacks and runtime structs: named.
	if (m->go)
		print_where_totals(o, t, HS_STATE_META);
	if (m->pooled.count) {
		hs_out_printf(o, "\n  %-22s %12" PRIu64 " %12s  %" PRIu64 "   (%zu pool%s; see: pools)\n", "pooled (in use)",
			      m->pooled.count, hs_fmt_size(m->pooled.bytes, a, sizeof(a)), m->pooled.bytes, pl->n,
			      pl->n == 1 ? "" : "s");
		hs_out_printf(o, "  %-22s %12" PRIu64 " %12s  %" PRIu64 "\n", "live (in use - pooled)", m->live.count,
			      hs_fmt_size(m->live.bytes, a, sizeof(a)), m->live.bytes);
		if (m->pollution)
			hs_out_printf(o, "  %-22s %12" PRIu64 " %12s  %" PRIu64 "   (kept alive only by pooled objects)\n",
				      "polluted pooled", pl->polluted, hs_fmt_size(pl->polluted_retained, a, sizeof(a)),
				      pl->polluted_retained);
	}
	if (m->ndesc > 1)
		print_allocator_totals(o, c->s);
	if (m->leaks)
		hs_report_leak_totals(c);
	hs_cmd_diagnostics(c);
}

struct hs_error *hs_cmd_summary(struct hs_cmd *c)
{
	// The walk alone by default (DESIGN: summary needs only the walk);
	// --leaks adds the pointer graph's classes.
	struct hs_summary_opts opt = { 0 };
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	HS_CHECK(need_heap(c));
	HS_CHECK(try_pools(c));
	bool leaks = opt.leaks && !opt.no_leaks && try_analysis(c);
	// With the graph: what pooled objects alone keep alive.
	bool pollution = false;
	if (leaks && c->s->pools && c->s->pools->n) {
		struct hs_error *err = hs_session_need_pool_analysis(c->s);
		pollution = !err;
		if (err && (err->code == HS_ERR_NOMEM || err->code == HS_ERR_INTERRUPTED))
			return err;
		hs_error_destroy(err);
	}
	struct summary_model m;
	summary_model(c->s, leaks, pollution, &m);
	if (c->json)
		summary_json(c, &m);
	else
		summary_text(c, &m);
	return NULL;
}

/* arenas, chunks, bins: their models are the walkers' descriptions (struct
 * hs_alloc_desc: arenas, regions, free lists) and the heap index, read as
 * they are; a filter says which blocks a listing takes.  The renderers only
 * format them. */

static void arenas_text(struct hs_cmd *c)
{
	struct hs_out *o = c->out;
	char a[32], b[32], m[32];
	hs_out_printf(o, "  %-5s %-18s %-14s %10s %10s %10s %8s %8s %s\n", "INDEX", "ADDRESS", "NAME", "SYSTEM",
		      "IN USE", "FREE", "USED#", "FREE#", "THREADS");
	unsigned index = 0;
	for (size_t d = 0; d < c->s->ndesc; d++) {
		const struct hs_alloc_desc *ad = &c->s->desc[d];
		for (size_t i = 0; i < ad->narenas; i++, index++) {
			const struct hs_arena *ar = &ad->arenas[i];
			hs_out_printf(o, "  %-5u 0x%016" PRIx64 " %-14s %10s %10s %10s %8" PRIu64 " %8" PRIu64 " %d\n",
				      index, ar->address, ar->label, hs_fmt_size(ar->system_mem, m, sizeof(m)),
				      hs_fmt_size(ar->used_bytes, a, sizeof(a)),
				      hs_fmt_size(ar->free_bytes, b, sizeof(b)), ar->used_count, ar->free_count,
				      ar->nthreads);
			for (size_t r = 0; r < ad->nregions; r++)
				if (ad->regions[r].arena == i && ad->regions[r].kind == HS_REGION_HEAP)
					hs_out_printf(o, "        heap 0x%" PRIx64 "-0x%" PRIx64 " (%s)\n",
						      ad->regions[r].start, ad->regions[r].end,
						      hs_fmt_size(ad->regions[r].end - ad->regions[r].start, m, sizeof(m)));
		}
	}
	hs_cmd_diagnostics(c);
}

static void arenas_json(struct hs_cmd *c)
{
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "arenas");
	hs_cmd_json_allocators(c);
	hs_json_key(o, "arenas");
	hs_json_begin_array(o);
	unsigned index = 0;
	for (size_t d = 0; d < c->s->ndesc; d++) {
		const struct hs_alloc_desc *ad = &c->s->desc[d];
		for (size_t i = 0; i < ad->narenas; i++, index++) {
			const struct hs_arena *ar = &ad->arenas[i];
			hs_json_begin_object(o);
			hs_json_ku64(o, "index", index);
			hs_json_kstr(o, "allocator", ad->allocator);
			hs_json_ku64(o, "address", ar->address);
			hs_json_kstr(o, "name", ar->label);
			hs_json_ku64(o, "system_mem", ar->system_mem);
			hs_json_ku64(o, "top", hs_arena_fact(ar, "top"));
			hs_json_ku64(o, "top_size", hs_arena_fact(ar, "top_size"));
			hs_json_ki64(o, "threads", ar->nthreads);
			hs_json_kcount(o, "in_use", ar->used_count, ar->used_bytes);
			hs_json_kcount(o, "free", ar->free_count, ar->free_bytes);
			hs_json_key(o, "heaps");
			hs_json_begin_array(o);
			for (size_t r = 0; r < ad->nregions; r++) {
				if (ad->regions[r].arena != i || ad->regions[r].kind != HS_REGION_HEAP)
					continue;
				hs_json_begin_object(o);
				hs_json_ku64(o, "start", ad->regions[r].start);
				hs_json_ku64(o, "end", ad->regions[r].end);
				hs_json_end_object(o);
			}
			hs_json_end_array(o);
			hs_json_end_object(o);
		}
	}
	hs_json_end_array(o);
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
}

struct hs_error *hs_cmd_arenas(struct hs_cmd *c)
{
	HS_CHECK(hs_cmd_parse(c, NULL, 0, NULL, 0, NULL));
	HS_CHECK(need_heap(c));
	if (c->json)
		arenas_json(c);
	else
		arenas_text(c);
	return NULL;
}

static void json_block(struct hs_out *o, const struct hs_block *b, unsigned w)
{
	hs_json_begin_object(o);
	hs_json_ku64(o, "address", b->address);
	hs_json_ku64(o, "size", hs_block_size(b));
	hs_json_kstr(o, "state", where_state(w));
	hs_json_kstr(o, "where", hs_where_name(w));
	hs_json_key(o, "arena");
	json_arena(o, hs_block_arena(b));
	hs_json_end_object(o);
}

/* Which blocks chunks lists (its options), and where the listing is. */
struct chunks_filter {
	bool used, free_;
	uint64_t arena, min_size, limit;
	int where;                 /* -1: any */
	size_t next;               /* the next block to look at */
	uint64_t shown, total;     /* listed; matching (past --limit too) */
	bool interrupted;
};

// The next block to list (its index, its where in *w), or -1 at the end;
// blocks past the limit are counted in total, not returned.
static ptrdiff_t chunks_next(const struct hs_session *s, struct chunks_filter *f, unsigned *w)
{
	const struct hs_heap *h = &s->heap;
	for (; f->next < h->n; f->next++) {
		size_t i = f->next;
		if ((i & 0xffff) == 0 && hs_interrupted()) {
			f->interrupted = true;
			return -1;
		}
		const struct hs_block *b = &h->blocks[i];
		*w = block_where(s, i);
		if ((f->used && !where_used(*w)) || (f->free_ && !where_free(*w)) || hs_block_size(b) < f->min_size ||
		    (f->arena != UINT64_MAX && hs_block_arena(b) != f->arena) || (f->where >= 0 && (int)*w != f->where))
			continue;
		if (f->total++ >= f->limit)
			continue;
		f->shown++;
		f->next++;
		return (ptrdiff_t)i;
	}
	return -1;
}

static struct hs_error *chunks_text(struct hs_cmd *c, struct chunks_filter *f)
{
	struct hs_out *o = c->out;
	hs_out_printf(o, "  %-18s %12s %-6s %-13s %s\n", "ADDRESS", "SIZE", "STATE", "WHERE", "ARENA");
	unsigned w;
	for (ptrdiff_t i; !o->stopped && (i = chunks_next(c->s, f, &w)) >= 0;) {
		const struct hs_block *b = &c->s->heap.blocks[i];
		const char *label = arena_label(c->s, hs_block_arena(b));
		hs_out_printf(o, "  0x%016" PRIx64 " %12" PRIu64 " %-6s %-13s %s\n", b->address, hs_block_size(b),
			      where_state(w), hs_where_name(w), label ? label : "-");
	}
	if (f->interrupted)
		return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
	hs_cmd_limited(c, "allocations", f->shown, f->total, "blocks");
	if (!f->shown)
		hs_out_printf(o, "No blocks match.\n");
	else
		hs_out_printf(o, "%" PRIu64 " block%s\n", f->shown, f->shown == 1 ? "" : "s");
	hs_cmd_diagnostics(c);
	return NULL;
}

static struct hs_error *chunks_json(struct hs_cmd *c, struct chunks_filter *f)
{
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "chunks");
	hs_json_key(o, "allocations");
	hs_json_begin_array(o);
	unsigned w;
	for (ptrdiff_t i; !o->stopped && (i = chunks_next(c->s, f, &w)) >= 0;)
		json_block(o, &c->s->heap.blocks[i], w);
	if (f->interrupted)
		return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
	hs_json_end_array(o);
	hs_json_ku64(o, "count", f->shown);
	hs_cmd_limited(c, "allocations", f->shown, f->total, "blocks");
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
	return NULL;
}

struct hs_error *hs_cmd_chunks(struct hs_cmd *c)
{
	struct hs_chunks_opts opt = { .arena = UINT64_MAX, .limit = UINT64_MAX };
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	struct chunks_filter f = { .used = opt.used, .free_ = opt.free_, .arena = opt.arena, .min_size = opt.min_size,
				   .limit = opt.limit, .where = -1 };
	if (opt.where) {
		f.where = hs_where_by_name(opt.where);
		if (f.where < 0)
			return hs_error_create(HS_ERR_USAGE, "chunks: unknown --where '%s' (used, mmapped, tcache, fastbin, unsorted, smallbin, largebin, top, ...)", opt.where);
	}
	HS_CHECK(need_heap(c));
	HS_CHECK(check_arena(c, f.arena));
	HS_CHECK(try_pools(c));
	return c->json ? chunks_json(c, &f) : chunks_text(c, &f);
}

/* bins: every free list of every allocator (--arena: of one arena), with
 * the arena numbering across allocators (an allocator's arena a is
 * base + a). */
struct bin_row {
	const struct hs_alloc_desc *ad;
	const struct hs_freelist *l;
	unsigned arena;
};

static struct hs_error *bins_model(const struct hs_session *s, uint64_t arena, struct bin_row **ret, size_t *nret)
{
	size_t n = 0, cap = 0;
	for (size_t d = 0; d < s->ndesc; d++)
		cap += s->desc[d].nlists;
	struct bin_row *rows = malloc((cap ? cap : 1) * sizeof(*rows));
	if (!rows)
		return &hs_error_nomem;
	unsigned base = 0;
	for (size_t d = 0; d < s->ndesc; d++) {
		const struct hs_alloc_desc *ad = &s->desc[d];
		for (size_t i = 0; i < ad->nlists; i++) {
			const struct hs_freelist *l = &ad->lists[i];
			unsigned global = l->arena == HS_ARENA_NONE ? HS_ARENA_NONE : base + l->arena;
			if (arena == UINT64_MAX || global == arena)
				rows[n++] = (struct bin_row){ ad, l, global };
		}
		base += ad->narenas;
	}
	*ret = rows;
	*nret = n;
	return NULL;
}

static void bins_text(struct hs_cmd *c, const struct bin_row *rows, size_t n)
{
	struct hs_out *o = c->out;
	char a[32];
	hs_out_printf(o, "  %-9s %-9s %-14s %-8s %5s %10s %8s %8s %12s  %s\n", "ALLOCATOR", "KIND", "ARENA", "THREAD",
		      "BIN", "CHUNKSIZE", "COUNT", "DECLARED", "BYTES", "");
	for (size_t i = 0; i < n; i++) {
		const struct hs_freelist *l = rows[i].l;
		const char *label = rows[i].arena == HS_ARENA_NONE ? "-" : arena_label(c->s, rows[i].arena);
		char thread[16] = "-", declared[24] = "-";
		if (l->tid)
			snprintf(thread, sizeof(thread), "%d", l->tid);
		if (l->declared >= 0)
			snprintf(declared, sizeof(declared), "%" PRId64, l->declared);
		hs_out_printf(o, "  %-9s %-9s %-14s %-8s %5d %#10" PRIx64 " %8" PRIu64 " %8s %12s  %s\n",
			      rows[i].ad->allocator, hs_where_name(l->where), label ? label : "?", thread, l->index,
			      l->chunk_size, l->count, declared, hs_fmt_size(l->bytes, a, sizeof(a)),
			      l->broken ? "BROKEN (see diagnostics)" :
			      (l->declared >= 0 && (uint64_t)l->declared != l->count) ? "COUNT MISMATCH" : "");
	}
	hs_cmd_diagnostics(c);
}

static void bins_json(struct hs_cmd *c, const struct bin_row *rows, size_t n)
{
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "bins");
	hs_json_key(o, "lists");
	hs_json_begin_array(o);
	for (size_t i = 0; i < n; i++) {
		const struct hs_freelist *l = rows[i].l;
		hs_json_begin_object(o);
		hs_json_kstr(o, "allocator", rows[i].ad->allocator);
		hs_json_kstr(o, "kind", hs_where_name(l->where));
		hs_json_key(o, "arena");
		json_arena(o, rows[i].arena);
		hs_json_ki64(o, "thread", l->tid);
		hs_json_ku64(o, "owner", l->owner);
		hs_json_ki64(o, "index", l->index);
		hs_json_ku64(o, "chunk_size", l->chunk_size);
		hs_json_ku64(o, "count", l->count);
		hs_json_ku64(o, "bytes", l->bytes);
		hs_json_key(o, "declared");
		if (l->declared < 0)
			hs_json_null(o);
		else
			hs_json_i64(o, l->declared);
		hs_json_kbool(o, "broken", l->broken);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
}

struct hs_error *hs_cmd_bins(struct hs_cmd *c)
{
	struct hs_bins_opts opt = { .arena = UINT64_MAX };
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	uint64_t arena = opt.arena;
	HS_CHECK(need_heap(c));
	HS_CHECK(check_arena(c, arena));
	struct bin_row *rows;
	size_t n;
	HS_CHECK(bins_model(c->s, arena, &rows, &n));
	if (c->json)
		bins_json(c, rows, n);
	else
		bins_text(c, rows, n);
	free(rows);
	return NULL;
}

/* show ADDR: a model (show_model: what the address is, the block's facts and
 * fields, and its words, read one at a time by show_next_word: --bytes may be
 * large, so the words stream), then show_text or show_json. */

// What a word points at: a heap block (with its type), or a symbol.
static void describe_word(struct hs_session *s, uint64_t v, char *buf, size_t len, ptrdiff_t *block_ret)
{
	buf[0] = 0;
	*block_ret = -1;
	if (v < 4096)
		return;
	ptrdiff_t k = hs_heap_find(&s->heap, v);
	if (k >= 0) {
		const struct hs_block *b = &s->heap.blocks[k];
		*block_ret = k;
		const char *t = s->analysis && hs_where_is_used(hs_block_where(b)) ? hs_block_type(s->types, (size_t)k) : NULL;
		snprintf(buf, len, "-> %s block 0x%" PRIx64 "+0x%" PRIx64 "%s%s", hs_where_name(hs_block_where(b)),
			 b->address, v - b->address, t ? ", " : "", t ? t : "");
		return;
	}
	if (s->symbols)
		hs_symbols_describe(s->symbols, v, buf, len);
}

#define SHOW_FIELDS 256

struct show_model {
	struct hs_session *s;
	uint64_t addr;
	const struct hs_block *b;       /* the block holding addr, or NULL */
	size_t k;                       /* its index */
	/* Not in a block: its symbol, whether it is mapped, and its place. */
	bool sym, mapped;
	char symbol[256];
	struct hs_place place;
	char place_to[256];             /* what the word there points at, or "" */
	/* In a block. */
	uint64_t size;                  /* usable; a pooled slot: its end from the block's start */
	unsigned w;
	const struct hs_pool_object *po;    /* the pooled object, or NULL */
	const struct hs_pool *pool;
	const char *label;              /* the arena's name, or NULL */
	bool graph, go, go_reach;
	const char *type;
	struct hs_field *fields;        /* DWARF members (the graph's types), nfields */
	size_t nfields;
	/* The words dumped: offsets [first, dump), 8 bytes each. */
	uint64_t first, dump;
	uint64_t next;                  /* show_next_word's next offset */
	struct hs_error *read_error;    /* the read that ended the words early, at read_error_off */
	uint64_t read_error_off;
};

// One word of the dump: its value and what it points at (a glibc free-list
// link decoded).
struct show_word {
	uint64_t offset, value;
	bool linked;
	uint64_t link;
	char desc[320];                 /* "" when it points at nothing known */
};

static struct hs_error *show_model(struct hs_cmd *c, uint64_t addr, uint64_t max_bytes, struct show_model *m)
{
	struct hs_session *s = c->s;
	*m = (struct show_model){ .s = s, .addr = addr };
	ptrdiff_t k = hs_heap_find(&s->heap, addr);
	m->b = k >= 0 ? &s->heap.blocks[k] : NULL;
	if (!m->b) {
		m->sym = s->symbols && hs_symbols_describe(s->symbols, addr, m->symbol, sizeof(m->symbol));
		m->mapped = hs_memory_segment(&s->target->mem, addr) != NULL;
		// Words there are described with the heap's types when the graph is there.
		try_analysis(c);
		hs_place_of(s, addr, &m->place);
		if (m->place.readable)
			hs_describe_pointer(s, m->place.value, m->place_to, sizeof(m->place_to));
		return NULL;
	}
	m->k = (size_t)k;
	HS_CHECK(try_pools(c));
	m->size = hs_block_size(m->b);
	m->w = block_where(s, m->k);
	m->po = hs_pools_find(s->pools, addr);
	m->pool = m->po ? &s->pools->pools[m->po->pool] : NULL;
	m->label = arena_label(s, hs_block_arena(m->b));
	m->dump = m->size < max_bytes ? m->size : max_bytes;
	m->graph = try_analysis(c);
	m->type = m->graph ? hs_block_type(s->types, m->k) : NULL;
	m->go = s->go_rt != NULL;
	m->go_reach = m->go && hs_session_go_reach_ok(s);
	if (m->graph && (m->fields = malloc(SHOW_FIELDS * sizeof(*m->fields))))
		m->nfields = hs_block_fields(s, m->k, max_bytes, m->fields, SHOW_FIELDS);
	// A pooled slot is dumped from its own start (offsets stay the block's).
	if (m->pool && m->pool->slab) {
		m->first = m->po->address - m->b->address;
		m->dump = m->po->size < max_bytes ? m->po->size : max_bytes;
		m->size = m->first + m->po->size;
		m->dump += m->first;
	}
	m->next = m->first;
	return NULL;
}

static void show_model_free(struct show_model *m)
{
	free(m->fields);
	hs_error_destroy(m->read_error);
}

// The next word of the dump; false at the end, or when it cannot be read
// (then m->read_error says why).
static bool show_next_word(struct show_model *m, uint64_t *off_ret, uint64_t *v_ret)
{
	if (m->read_error || m->next + 8 > m->dump)
		return false;
	struct hs_error *err = hs_memory_read_u64(&m->s->target->mem, m->b->address + m->next, v_ret);
	if (err) {
		m->read_error = err;
		m->read_error_off = m->next;
		return false;
	}
	*off_ret = m->next;
	m->next += 8;
	return true;
}

static void show_describe(const struct show_model *m, uint64_t off, uint64_t v, struct show_word *wd)
{
	struct hs_session *s = m->s;
	char what[256];
	ptrdiff_t target;
	uint64_t link, to_block = 0;
	wd->offset = off;
	wd->value = v;
	wd->linked = hs_free_link(s, m->k, m->b->address + off, v, &link, &to_block);
	wd->link = link;
	describe_word(s, wd->linked ? link + to_block : v, what, sizeof(what), &target);
	if (!wd->linked)
		snprintf(wd->desc, sizeof(wd->desc), "%s", what);
	else if (!link)
		snprintf(wd->desc, sizeof(wd->desc), "safe-linked: 0x0 (the end of the list)");
	else
		snprintf(wd->desc, sizeof(wd->desc), "safe-linked: %s0x%" PRIx64 " %s", to_block ? "chunk " : "", link, what);
}

static void show_place_text(struct hs_out *o, const struct show_model *m)
{
	const struct hs_place *p = &m->place;
	if (!p->end)
		return;
	hs_out_printf(o, "  %s: %s\n", p->kind, p->what);
	hs_out_printf(o, "  mapping 0x%" PRIx64 "-0x%" PRIx64 " %s%s%s\n", p->start, p->end, p->perms[0] ? p->perms : "",
		      p->mapping[0] ? " " : "", p->mapping[0] ? p->mapping : (p->perms[0] ? "" : "(not in the core)"));
	if (p->readable)
		hs_out_printf(o, "  the word at 0x%" PRIx64 ": 0x%" PRIx64 "%s%s\n", m->addr & ~UINT64_C(7), p->value,
			      m->place_to[0] ? " " : "", m->place_to);
	else
		hs_out_printf(o, "  its bytes are not in the core\n");
}

static void show_word_text(struct hs_out *o, const struct show_model *m, uint64_t off, uint64_t v)
{
	struct show_word wd;
	show_describe(m, off, v, &wd);
	char ascii[9];
	for (int j = 0; j < 8; j++) {
		unsigned char ch = (v >> (8 * j)) & 0xff;
		ascii[j] = ch >= 0x20 && ch < 0x7f ? (char)ch : '.';
	}
	ascii[8] = 0;
	hs_out_printf(o, "  +0x%04" PRIx64 "  %016" PRIx64 "  %s  %s\n", off, v, ascii, wd.desc);
}

// The end of a run of words equal to the one before: one is shown as it is,
// more as one line.
static void squeeze_end(struct hs_out *o, const struct show_model *m, uint64_t *same, uint64_t last_off, uint64_t v)
{
	if (*same == 1)
		show_word_text(o, m, last_off, v);
	else if (*same > 1)
		hs_out_printf(o, "  *        (%" PRIu64 " more words the same, to +0x%04" PRIx64 ")\n", *same, last_off);
	*same = 0;
}

static void show_text(struct hs_cmd *c, struct show_model *m)
{
	struct hs_out *o = c->out;
	const struct hs_analysis *an = c->s->analysis;
	if (!m->b) {
		hs_out_printf(o, "0x%" PRIx64 " is not in any heap block%s%s; %s\n", m->addr, m->sym ? ": " : "",
			      m->sym ? m->symbol : "", m->mapped ? "it is mapped in the target" : "it is not mapped in the target");
		show_place_text(o, m);
		return;
	}
	size_t k = m->k;
	unsigned w = m->w;
	hs_out_printf(o, "0x%" PRIx64 " is %s 0x%" PRIx64 " + 0x%" PRIx64 "\n", m->addr,
		      where_free(w) ? "in the free block" : "in the allocation", m->b->address, m->addr - m->b->address);
	hs_out_printf(o, "  size %" PRIu64 " (usable), state %s, where %s, arena %s\n", hs_block_size(m->b),
		      where_free(w) ? "free" : hs_where_kind(w) == HS_STATE_META ? "allocator metadata" : "used",
		      hs_where_name(w), m->label ? m->label : "-");
	if (m->pool) {
		char thread[24] = "";
		if (m->pool->tid)
			snprintf(thread, sizeof(thread), " (thread %d)", m->pool->tid);
		hs_out_printf(o, "  pooled: %s 0x%" PRIx64 " (%" PRIu64 " bytes) on the free list of pool %s%s\n",
			      m->pool->slab ? "the slot" : "the object", m->po->address, m->po->size, m->pool->anchor, thread);
	}
	if (m->graph && m->go && (an->flags[k] & HS_NODE_USED))
		hs_out_printf(o, "  %stype %s\n", !m->go_reach ? "" : (an->flags[k] & HS_NODE_REACHABLE) ? "reachable, " :
			      "garbage awaiting GC (unreachable), ", m->type ? m->type : "? (not typed)");
	else if (m->graph && (an->flags[k] & HS_NODE_USED))
		hs_out_printf(o, "  %s%s, type %s\n", (an->flags[k] & HS_NODE_REACHABLE) ? "anchored" : "LEAKED",
			      hs_node_unreferenced(an, k) ? " (unreferenced: a cluster head)" : "",
			      m->type ? m->type : "?");
	for (size_t j = 0; j < m->nfields && !o->stopped; j++)
		hs_out_printf(o, "  +0x%04" PRIx64 "  .%s = %s\n", m->fields[j].offset, m->fields[j].name, m->fields[j].text);
	// A run of equal words (two or more after the first) is one line, as
	// hexdump does.
	uint64_t prev = 0, same = 0, same_off = 0, off, v;
	while (!o->stopped && show_next_word(m, &off, &v)) {
		if (off > m->first && v == prev) {
			same++;
			same_off = off;
			continue;
		}
		squeeze_end(o, m, &same, same_off, prev);
		show_word_text(o, m, off, v);
		prev = v;
	}
	if (m->read_error)
		hs_out_printf(o, "  +0x%04" PRIx64 "  %s\n", m->read_error_off, hs_error_message(m->read_error));
	squeeze_end(o, m, &same, same_off, prev);
	if (m->dump < m->size)
		hs_out_printf(o, "  ... %" PRIu64 " more bytes%s (--bytes N)\n", m->size - m->dump, m->first ? " of the slot" : "");
}

static void show_place_json(struct hs_out *o, const struct show_model *m)
{
	const struct hs_place *p = &m->place;
	hs_json_key(o, "place");
	hs_json_begin_object(o);
	hs_json_kstr(o, "kind", p->kind);
	hs_json_kstr(o, "what", p->what);
	hs_json_key(o, "mapping");
	if (p->end) {
		hs_json_begin_object(o);
		hs_json_ku64(o, "start", p->start);
		hs_json_ku64(o, "end", p->end);
		hs_json_kstr(o, "perms", p->perms[0] ? p->perms : NULL);
		hs_json_kstr(o, "file", p->mapping[0] ? p->mapping : NULL);
		hs_json_end_object(o);
	} else {
		hs_json_null(o);
	}
	hs_json_key(o, "thread");
	if (p->tid)
		hs_json_i64(o, p->tid);
	else
		hs_json_null(o);
	hs_json_key(o, "value");
	if (p->readable)
		hs_json_u64(o, p->value);
	else
		hs_json_null(o);
	hs_json_kstr(o, "points_to", m->place_to[0] ? m->place_to : NULL);
	hs_json_end_object(o);
}

static void show_json(struct hs_cmd *c, struct show_model *m)
{
	struct hs_out *o = c->out;
	struct hs_session *s = c->s;
	const struct hs_analysis *an = s->analysis;
	hs_cmd_json_begin(c, "show");
	hs_json_ku64(o, "address", m->addr);
	hs_json_key(o, "allocation");
	if (!m->b) {
		hs_json_null(o);
		hs_json_kstr(o, "symbol", m->sym ? m->symbol : NULL);
		hs_json_kbool(o, "mapped", m->mapped);
		show_place_json(o, m);
		hs_json_end_object(o);
		hs_json_done(o);
		return;
	}
	size_t k = m->k;
	json_block(o, m->b, m->w);
	hs_json_ku64(o, "offset", m->addr - m->b->address);
	hs_json_key(o, "pool");
	if (m->pool) {
		hs_json_begin_object(o);
		hs_json_kstr(o, "anchor", m->pool->anchor);
		hs_json_key(o, "thread");
		if (m->pool->tid)
			hs_json_i64(o, m->pool->tid);
		else
			hs_json_null(o);
		hs_json_ku64(o, "object", m->po->address);
		hs_json_ku64(o, "object_size", m->po->size);
		hs_json_kbool(o, "slot", m->pool->slab);
		hs_json_end_object(o);
	} else {
		hs_json_null(o);
	}
	hs_json_kstr(o, "arena_name", m->label);
	if (m->graph && !m->go) {
		hs_json_kbool(o, "anchored", (an->flags[k] & HS_NODE_REACHABLE) != 0);
		hs_json_kbool(o, "leaked", hs_node_leaked(an, k));
		hs_json_kbool(o, "unreferenced", hs_node_unreferenced(an, k));
	} else if (m->graph && m->go_reach) {
		// Go: unreachable is garbage awaiting GC, never a leak.
		hs_json_kbool(o, "anchored", (an->flags[k] & HS_NODE_REACHABLE) != 0);
		hs_json_kbool(o, "garbage", hs_node_leaked(an, k));
	}
	hs_json_kstr(o, "type", m->type);
	hs_json_type_info(o, s->types, k);
	if (m->graph)
		hs_json_fields(o, m->fields, m->nfields, true);
	hs_json_key(o, "words");
	hs_json_begin_array(o);
	uint64_t off, v;
	while (!o->stopped && show_next_word(m, &off, &v)) {
		struct show_word wd;
		show_describe(m, off, v, &wd);
		hs_json_begin_object(o);
		hs_json_ku64(o, "offset", wd.offset);
		hs_json_ku64(o, "value", wd.value);
		hs_json_kstr(o, "points_to", wd.desc[0] ? wd.desc : NULL);
		if (wd.linked)
			hs_json_ku64(o, "decoded", wd.link);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_json_end_object(o);
	hs_json_done(o);
}

struct hs_error *hs_cmd_show(struct hs_cmd *c)
{
	struct hs_show_opts opt = { .bytes = 256 };
	const char *pos[1];
	size_t npos;
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), pos, 1, &npos));
	if (npos != 1)
		return hs_error_create(HS_ERR_USAGE, "show needs an address: show ADDR");
	uint64_t addr;
	HS_CHECK(hs_cmd_address(c, pos[0], "show", &addr));
	HS_CHECK(need_heap(c));
	struct show_model m;
	struct hs_error *err = show_model(c, addr, opt.bytes, &m);
	if (!err) {
		if (c->json)
			show_json(c, &m);
		else
			show_text(c, &m);
	}
	show_model_free(&m);
	return err;
}
