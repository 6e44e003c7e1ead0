/* report_leaks.c - what the pointer graph answers: leaks, histogram, chain,
 * refs, top.  Every report reads the analysis (graph.h), types (types.h) and
 * dominators (dominators.h) computed once per session. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "containers.h"
#include "dominators.h"
#include "fields.h"
#include "go_mark.h"
#include "graph.h"
#include "pools.h"
#include "rtti.h"
#include "types.h"
#include "vec.h"

/* Groups of (type, size). */

struct group {
	uint32_t type; uint64_t size, count, bytes, heads;
	size_t sample;               /* a member to show: the first head, else the first */
};

enum group_by { BY_TYPE_SIZE, BY_TYPE, BY_SIZE };

static int group_key_cmp(const void *x, const void *y)
{
	const struct group *a = x, *b = y;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	return (a->size > b->size) - (a->size < b->size);
}

static int group_bytes_cmp(const void *x, const void *y)
{
	const struct group *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return group_key_cmp(x, y);
}

/* Which blocks a report takes. */
struct selection {
	enum { SEL_USED, SEL_FREE, SEL_LEAKED } set;
	uint64_t min_size;
};

static bool selected(const struct hs_session *s, const struct selection *sel, size_t i)
{
	const struct hs_block *b = &s->heap.blocks[i];
	if (hs_block_size(b) < sel->min_size)
		return false;
	switch (sel->set) {
	case SEL_USED: return hs_where_is_used(hs_block_where(b));
	case SEL_FREE: return hs_where_is_free(hs_block_where(b));
	default: return hs_node_leaked(s->analysis, i);
	}
}

/* Fold the selected blocks into groups by key in a hash table (open
 * addressing, doubled at half full): O(k), then sort the groups. */
static size_t group_slot(const struct group *t, size_t mask, uint32_t type, uint64_t size)
{
	size_t h = (size_t)(((uint64_t)type * 0x9e3779b97f4a7c15ull) ^ (size * 0xc2b2ae3d27d4eb4full));
	h = (h ^ (h >> 29)) & mask;
	while (t[h].count && (t[h].type != type || t[h].size != size))
		h = (h + 1) & mask;
	return h;
}

static struct hs_error *make_groups(struct hs_session *s, const struct selection *sel,
				    enum group_by by, struct group **ret, size_t *n_ret)
{
	const struct hs_analysis *a = s->analysis;
	const uint32_t *types = hs_types_ids(s->types);
	size_t cap = 1024, used = 0;
	struct group *t = calloc(cap, sizeof(*t));
	if (!t)
		return &hs_error_nomem;
	for (size_t i = 0; i < s->heap.n; i++) {
		if (!selected(s, sel, i))
			continue;
		uint64_t size = hs_block_size(&s->heap.blocks[i]);
		uint32_t type = by == BY_SIZE || !types ? 0 : types[i];
		uint64_t key_size = by == BY_TYPE ? 0 : size;
		size_t h = group_slot(t, cap - 1, type, key_size);
		if (!t[h].count) {
			if ((used + 1) * 2 > cap) {
				struct group *g = calloc(cap * 2, sizeof(*g));
				if (!g) {
					free(t);
					return &hs_error_nomem;
				}
				for (size_t j = 0; j < cap; j++)
					if (t[j].count)
						g[group_slot(g, cap * 2 - 1, t[j].type, t[j].size)] = t[j];
				free(t);
				t = g;
				cap *= 2;
				h = group_slot(t, cap - 1, type, key_size);
			}
			t[h] = (struct group){ .type = type, .size = key_size, .sample = i };
			used++;
		}
		bool head = a && hs_node_unreferenced(a, i);
		if (head && !t[h].heads)
			t[h].sample = i;
		t[h].count++;
		t[h].bytes += size;
		t[h].heads += head;
	}
	size_t out = 0;
	for (size_t j = 0; j < cap; j++)
		if (t[j].count)
			t[out++] = t[j];
	qsort(t, out, sizeof(*t), group_bytes_cmp);
	*ret = t;
	*n_ret = out;
	return NULL;
}

static const char *type_name(const struct hs_session *s, uint32_t id)
{
	return hs_types_name(s->types, id);
}

#define SAMPLE_WORDS 4
#define SAMPLE_FIELDS 4

// A word as the sample shows it: "0x5555557622e0 (node)", "0x2".
static void sample_word(struct hs_session *s, uint64_t v, char *buf, size_t len)
{
	ptrdiff_t k = v >= 4096 ? hs_heap_find(&s->heap, v) : -1;
	char sym[200];
	if (k >= 0) {
		const struct hs_block *b = &s->heap.blocks[k];
		const char *t = hs_where_is_used(hs_block_where(b)) ? hs_block_type(s->types, (size_t)k) : NULL;
		if (t)
			snprintf(buf, len, "0x%" PRIx64 " (%s)", v, t);
		else
			snprintf(buf, len, "0x%" PRIx64 " (? %" PRIu64 " bytes)", v, hs_block_size(b));
	} else if (v >= 4096 && s->symbols && hs_symbols_describe(s->symbols, v, sym, sizeof(sym))) {
		snprintf(buf, len, "0x%" PRIx64 " (%s)", v, sym);
	} else {
		snprintf(buf, len, "0x%" PRIx64, v);
	}
}

/* One member of a leak group, so it can be recognised: its address and its
 * first members (DWARF) or words. */
struct sample {
	uint64_t address, size;
	bool unreferenced;
	struct hs_field f[SAMPLE_FIELDS];
	size_t nf;
	uint64_t w[SAMPLE_WORDS];
	size_t nw;
	char wtext[SAMPLE_WORDS][256];  /* the words as text shows them (sample_word) */
};

static void sample_build(struct hs_session *s, size_t i, struct sample *m)
{
	const struct hs_block *b = &s->heap.blocks[i];
	m->address = b->address;
	m->size = hs_block_size(b);
	m->unreferenced = hs_node_unreferenced(s->analysis, i);
	m->nf = hs_block_fields(s, i, UINT64_MAX, m->f, SAMPLE_FIELDS);
	m->nw = 0;
	for (; m->nw < SAMPLE_WORDS && (m->nw + 1) * 8 <= m->size; m->nw++) {
		struct hs_error *err = hs_memory_read_u64(&s->target->mem, b->address + 8 * m->nw, &m->w[m->nw]);
		if (err) {
			hs_error_destroy(err);
			break;
		}
		sample_word(s, m->w[m->nw], m->wtext[m->nw], sizeof(m->wtext[m->nw]));
	}
}

static void sample_json(struct hs_out *o, const struct sample *m)
{
	hs_json_key(o, "sample");
	hs_json_begin_object(o);
	hs_json_ku64(o, "address", m->address);
	hs_json_kbool(o, "unreferenced", m->unreferenced);
	hs_json_key(o, "words");
	hs_json_begin_array(o);
	for (size_t k = 0; k < m->nw; k++)
		hs_json_u64(o, m->w[k]);
	hs_json_end_array(o);
	hs_json_fields(o, m->f, m->nf, false);
	hs_json_end_object(o);
}

static void sample_text(struct hs_out *o, const struct sample *m)
{
	hs_out_printf(o, "  %10s e.g. 0x%" PRIx64 ":", "", m->address);
	for (size_t k = 0; k < m->nf; k++)
		hs_out_printf(o, "%s .%s = %s", k ? "," : "", m->f[k].name, m->f[k].text);
	for (size_t k = 0; !m->nf && k < m->nw; k++)
		hs_out_printf(o, "%s %s", k ? "," : "", m->wtext[k]);
	uint64_t shown = m->nf ? m->f[m->nf - 1].offset + m->f[m->nf - 1].size : m->nw * 8;
	hs_out_printf(o, "%s\n", shown < m->size ? ", ..." : "");
}

/* The groups model (leaks, histogram): groups by key, most bytes first, at
 * most limit shown; leaks gives each shown group a sample. */
struct groups_model {
	struct group *g;
	size_t n;
	enum group_by by;
	uint64_t limit;
	struct sample *samples;      /* NULL, or one per shown group */
};

static struct hs_error *groups_model(struct hs_session *s, const struct selection *sel, enum group_by by,
				     uint64_t limit, bool samples, struct groups_model *m)
{
	*m = (struct groups_model){ .by = by, .limit = limit };
	HS_CHECK(make_groups(s, sel, by, &m->g, &m->n));
	if (!samples)
		return NULL;
	size_t shown = m->n < limit ? m->n : (size_t)limit;
	m->samples = malloc((shown ? shown : 1) * sizeof(*m->samples));
	if (!m->samples) {
		free(m->g);
		return &hs_error_nomem;
	}
	for (size_t i = 0; i < shown; i++)
		sample_build(s, m->g[i].sample, &m->samples[i]);
	return NULL;
}

static void groups_model_free(struct groups_model *m)
{
	free(m->g);
	free(m->samples);
}

static void groups_json(struct hs_cmd *c, const struct groups_model *m)
{
	struct hs_out *o = c->out;
	hs_json_key(o, "groups");
	hs_json_begin_array(o);
	for (size_t i = 0; i < m->n && i < m->limit && !o->stopped; i++) {
		const struct group *g = &m->g[i];
		const char *t = type_name(c->s, g->type);
		hs_json_begin_object(o);
		hs_json_kstr(o, "type", t);
		hs_json_type_name_info(o, t);
		hs_json_key(o, "size");
		if (m->by == BY_TYPE)
			hs_json_null(o);
		else
			hs_json_u64(o, g->size);
		hs_json_ku64(o, "count", g->count);
		hs_json_ku64(o, "bytes", g->bytes);
		if (m->samples) {
			hs_json_ku64(o, "unreferenced", g->heads);
			sample_json(o, &m->samples[i]);
		}
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_cmd_limited(c, "groups", m->limit, m->n, "groups");
}

static void groups_text(struct hs_cmd *c, const struct groups_model *m)
{
	struct hs_out *o = c->out;
	bool heads = m->samples != NULL;
	char sz[32];
	hs_out_printf(o, "  %10s %10s %12s %s  %s\n", "COUNT", "SIZE", "BYTES", heads ? "  HEADS" : "", "TYPE");
	for (size_t i = 0; i < m->n && i < m->limit && !o->stopped; i++) {
		const struct group *g = &m->g[i];
		const char *t = type_name(c->s, g->type);
		char size[24] = "*";
		if (m->by != BY_TYPE)
			snprintf(size, sizeof(size), "%" PRIu64, g->size);
		char h[24] = "";
		if (heads)
			snprintf(h, sizeof(h), "%7" PRIu64, g->heads);
		hs_out_printf(o, "  %10" PRIu64 " %10s %12s %s  %s\n", g->count, size,
			      hs_fmt_size(g->bytes, sz, sizeof(sz)), h, t ? t : m->by == BY_SIZE ? "" : "?");
		if (heads)
			sample_text(o, &m->samples[i]);
	}
	hs_cmd_limited(c, "groups", m->limit, m->n, "groups");
}

void hs_report_leak_totals(struct hs_cmd *c)
{
	const struct hs_analysis *a = c->s->analysis;
	char x[32], y[32];
	if (c->s->go_rt) {
		// Go: unreachable objects are garbage the next GC frees, not leaks.
		if (c->json)
			hs_json_kcount(c->out, "garbage", a->leaked_count, a->leaked_bytes);
		else
			hs_out_printf(c->out, "  %-22s %12" PRIu64 " %12s  %" PRIu64 "\n", "garbage awaiting GC",
				      a->leaked_count, hs_fmt_size(a->leaked_bytes, x, sizeof(x)), a->leaked_bytes);
		return;
	}
	if (c->json) {
		hs_json_kcount(c->out, "leaked", a->leaked_count, a->leaked_bytes);
		hs_json_kcount(c->out, "unreferenced", a->unref_count, a->unref_bytes);
		return;
	}
	hs_out_printf(c->out, "  %-22s %12" PRIu64 " %12s  %" PRIu64 "\n", "leaked", a->leaked_count,
		      hs_fmt_size(a->leaked_bytes, x, sizeof(x)), a->leaked_bytes);
	hs_out_printf(c->out, "    %-20s %12" PRIu64 " %12s  %" PRIu64 "\n", "unreferenced", a->unref_count,
		      hs_fmt_size(a->unref_bytes, y, sizeof(y)), a->unref_bytes);
}

/* What leaks shows: the totals, the groups with their samples and, with
 * --list, the leaked allocations (at most limit of total). */
struct leaks_model {
	bool go;                      /* a Go heap: unreachable is garbage awaiting GC, not leaked */
	uint64_t leaked_count, leaked_bytes, unref_count;
	struct groups_model groups;
	bool list;
	uint32_t *objects;
	size_t nobjects;
	uint64_t total;
};

static struct hs_error *leaks_model(struct hs_session *s, bool list, uint64_t limit, uint64_t min_size,
				    struct leaks_model *m)
{
	const struct hs_analysis *a = s->analysis;
	*m = (struct leaks_model){ .go = s->go_rt != NULL, .leaked_count = a->leaked_count, .leaked_bytes = a->leaked_bytes,
				   .unref_count = a->unref_count, .list = list };
	const struct selection sel = { SEL_LEAKED, min_size };
	HS_CHECK(groups_model(s, &sel, BY_TYPE_SIZE, list ? UINT64_MAX : limit, true, &m->groups));
	if (!list)
		return NULL;
	size_t cap = 0;
	for (size_t i = 0; i < s->heap.n; i++) {
		if (!selected(s, &sel, i) || m->total++ >= limit)
			continue;
		if (m->nobjects == cap) {
			cap = cap ? 2 * cap : 256;
			uint32_t *g = realloc(m->objects, cap * sizeof(*g));
			if (!g) {
				free(m->objects);
				groups_model_free(&m->groups);
				return &hs_error_nomem;
			}
			m->objects = g;
		}
		m->objects[m->nobjects++] = (uint32_t)i;
	}
	return NULL;
}

static void leaks_json(struct hs_cmd *c, const struct leaks_model *m)
{
	struct hs_session *s = c->s;
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "leaks");
	hs_report_leak_totals(c);
	groups_json(c, &m->groups);
	if (m->list) {
		hs_json_key(o, "objects");
		hs_json_begin_array(o);
		for (size_t k = 0; k < m->nobjects && !o->stopped; k++) {
			size_t i = m->objects[k];
			hs_json_begin_object(o);
			hs_json_ku64(o, "address", s->heap.blocks[i].address);
			hs_json_ku64(o, "size", hs_block_size(&s->heap.blocks[i]));
			hs_json_kbool(o, "unreferenced", hs_node_unreferenced(s->analysis, i));
			hs_json_kstr(o, "type", hs_block_type(s->types, i));
			hs_json_type_info(o, s->types, i);
			hs_json_end_object(o);
		}
		hs_json_end_array(o);
		hs_cmd_limited(c, "objects", m->nobjects, m->total, "objects");
	}
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
}

static void leaks_text(struct hs_cmd *c, const struct leaks_model *m)
{
	struct hs_session *s = c->s;
	struct hs_out *o = c->out;
	if (!m->leaked_count) {
		hs_out_printf(o, m->go ? "No garbage awaiting GC: every allocated Go object is reachable.\n"
				       : "No leaks found.\n");
		hs_cmd_diagnostics(c);
		return;
	}
	char x[32];
	if (m->go)
		hs_out_printf(o, "%" PRIu64 " Go objects, %s (%" PRIu64 " bytes), are unreachable: garbage awaiting GC "
			      "(the next GC frees them), not leaks\n\n", m->leaked_count,
			      hs_fmt_size(m->leaked_bytes, x, sizeof(x)), m->leaked_bytes);
	else
		hs_out_printf(o, "%" PRIu64 " leaked allocations, %s (%" PRIu64 " bytes); %" PRIu64
			      " of them unreferenced (cluster heads: fix these first)\n\n",
			      m->leaked_count, hs_fmt_size(m->leaked_bytes, x, sizeof(x)), m->leaked_bytes, m->unref_count);
	groups_text(c, &m->groups);
	if (m->list) {
		hs_out_printf(o, "\n  %-18s %10s %-5s %s\n", "ADDRESS", "SIZE", "HEAD", "TYPE");
		for (size_t k = 0; k < m->nobjects && !o->stopped; k++) {
			size_t i = m->objects[k];
			const char *t = hs_block_type(s->types, i);
			hs_out_printf(o, "  0x%016" PRIx64 " %10" PRIu64 " %-5s %s\n", s->heap.blocks[i].address,
				      hs_block_size(&s->heap.blocks[i]), hs_node_unreferenced(s->analysis, i) ? "yes" : "",
				      t ? t : "?");
		}
		hs_cmd_limited(c, "objects", m->nobjects, m->total, "objects");
	}
	hs_cmd_diagnostics(c);
}

struct hs_error *hs_cmd_leaks(struct hs_cmd *c)
{
	struct hs_leaks_opts opt = { .limit = UINT64_MAX };
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	HS_CHECK(hs_session_need_types(c->s));
	struct leaks_model m;
	HS_CHECK(leaks_model(c->s, opt.list, opt.limit, opt.min_size, &m));
	if (c->json)
		leaks_json(c, &m);
	else
		leaks_text(c, &m);
	if (opt.fail_on_leaks && m.leaked_count && !m.go)
		c->status = 1;
	groups_model_free(&m.groups);
	free(m.objects);
	return NULL;
}

struct hs_error *hs_cmd_histogram(struct hs_cmd *c)
{
	/* --limit not given: 50 rows of text, every row of JSON */
	struct hs_histogram_opts opt = { .by = "type+size", .limit = UINT64_MAX };
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	bool used = opt.used, leaked = opt.leaked, free_ = opt.free_;
	const char *by = opt.by;
	uint64_t limit = opt.limit;
	if (limit == UINT64_MAX && !c->json)
		limit = 50;
	enum group_by mode;
	if (!strcmp(by, "type"))
		mode = BY_TYPE;
	else if (!strcmp(by, "size"))
		mode = BY_SIZE;
	else if (!strcmp(by, "type+size"))
		mode = BY_TYPE_SIZE;
	else
		return hs_error_create(HS_ERR_USAGE, "histogram: --by takes type, size or type+size, not '%s'", by);
	if (used + leaked + free_ > 1)
		return hs_error_create(HS_ERR_USAGE, "histogram: give one of --used, --leaked, --free");
	HS_CHECK(hs_session_need_types(c->s));
	struct groups_model m;
	const struct selection sel = { leaked ? SEL_LEAKED : free_ ? SEL_FREE : SEL_USED, 0 };
	HS_CHECK(groups_model(c->s, &sel, mode, limit, false, &m));
	if (c->json) {
		hs_cmd_json_begin(c, "histogram");
		hs_json_kstr(c->out, "set", leaked ? "leaked" : free_ ? "free" : "used");
		hs_json_kstr(c->out, "by", by);
		groups_json(c, &m);
		hs_json_end_object(c->out);
		hs_json_done(c->out);
	} else {
		groups_text(c, &m);
	}
	groups_model_free(&m);
	return NULL;
}

/* Roots that point at a block, and chain/refs elements. */

static int kind_rank(enum hs_root_kind k)
{
	switch (k) {
	case HS_ROOT_GLOBAL: return 0;
	case HS_ROOT_TLS: return 1;
	case HS_ROOT_STACK: return 2;
	case HS_ROOT_REGISTER: return 3;
	default: return 4;
	}
}

struct root_ref {
	enum hs_root_kind kind;
	uint64_t word;               /* address of the root word (0 for a register) */
	int tid;
	int reg;                     /* register index, or -1 */
};

struct ref_list { struct root_ref *v; size_t n, cap; const struct hs_root_range *range; bool nomem; };

static void ref_list_add(struct ref_list *l, struct root_ref r)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct root_ref *g = realloc(l->v, cap * sizeof(*g));
		if (!g) {
			l->nomem = true;
			return;
		}
		l->v = g;
		l->cap = cap;
	}
	l->v[l->n++] = r;
}

static void on_root_word(uint64_t word, void *ctx)
{
	struct ref_list *l = ctx;
	ref_list_add(l, (struct root_ref){ l->range->kind, word, l->range->tid, -1 });
}

// Every root word and register that points into block target.
static struct hs_error *root_refs(struct hs_session *s, size_t target, struct ref_list *l)
{
	const struct hs_roots *roots = &s->analysis->roots;
	for (size_t r = 0; r < roots->n; r++) {
		l->range = &roots->ranges[r];
		hs_scan_for_target(s->analysis, &s->target->mem, roots->ranges[r].start, roots->ranges[r].end - roots->ranges[r].start, target,
				   on_root_word, l);
	}
	const struct hs_notes *notes = &s->target->notes;
	for (size_t t = 0; t < notes->nthreads; t++)
		for (int r = 0; r < HS_NREGS; r++)
			if (hs_addrmap_lookup(&s->analysis->map, notes->threads[t].regs[r]) == (ptrdiff_t)target)
				ref_list_add(l, (struct root_ref){ HS_ROOT_REGISTER, 0, notes->threads[t].tid, r });
	return l->nomem ? &hs_error_nomem : NULL;
}

// A data symbol as "name" or "name+8" (decimal: an offset into a variable),
// else module+0xoffset.
static bool root_symbol(struct hs_session *s, uint64_t addr, char *buf, size_t len)
{
	struct hs_symbol sym;
	uint64_t off;
	if (s->symbols && hs_symbols_addr_symbol(s->symbols, addr, &sym, &off)) {
		char name[256];
		hs_demangle(sym.name, name, sizeof(name));
		int n = snprintf(buf, len, "%s", name);
		if (off && n >= 0 && (size_t)n < len)
			snprintf(buf + n, len - (size_t)n, "+0x%" PRIx64, off);
		return true;
	}
	return s->symbols && hs_symbols_describe(s->symbols, addr, buf, len);
}

/* The rows of chain and refs (a root word, an allocation, a run of hops
 * alike, the hops --max-hops leaves out): each described (X_describe: what
 * the row says) and rendered by X_text or X_json. */

struct root_desc {
	const struct root_ref *r;
	bool have_sym, have_fn, go_stack, go_precise;
	char sym[256], fn[256], gname[256];
	const char *reg;             /* a register's name, or NULL */
	uint64_t goid;
};

static void root_describe(struct hs_session *s, const struct root_ref *r, struct root_desc *d)
{
	d->r = r;
	d->sym[0] = d->fn[0] = 0;
	d->have_sym = r->word && r->kind == HS_ROOT_GLOBAL && root_symbol(s, r->word, d->sym, sizeof(d->sym));
	d->have_fn = r->kind == HS_ROOT_STACK && hs_stack_frame_function(s, r->tid, r->word, d->fn, sizeof(d->fn));
	if (d->have_fn) {
		char mangled[sizeof(d->fn)];
		memcpy(mangled, d->fn, sizeof(d->fn));
		hs_demangle(mangled, d->fn, sizeof(d->fn));
	}
	d->reg = r->reg >= 0 ? hs_reg_names[r->reg] : NULL;
	// Go: a goroutine's stack, its frame, and whether a stack map or a
	// word-by-word scan made the word a root.
	d->goid = 0;
	d->go_precise = false;
	d->go_stack = r->kind == HS_ROOT_STACK && r->word && s->go_rt &&
		      hs_go_stack_root_name(s->goroutines, r->word, d->gname, sizeof(d->gname), &d->goid);
	if (d->go_stack) {
		const char *fn = hs_go_stack_word(s->goroutines, r->word, &d->go_precise);
		d->have_fn = fn != NULL;
		if (fn)
			snprintf(d->fn, sizeof(d->fn), "%s", fn);
	}
}

static void root_line_json(struct hs_out *o, const struct root_desc *d)
{
	const struct root_ref *r = d->r;
	hs_json_begin_object(o);
	hs_json_kstr(o, "kind", hs_root_kind_name(r->kind));
	if (d->go_stack) {
		hs_json_ku64(o, "goroutine", d->goid);
		hs_json_kbool(o, "stack_map", d->go_precise);
	}
	hs_json_key(o, "address");
	if (r->word)
		hs_json_u64(o, r->word);
	else
		hs_json_null(o);
	hs_json_kstr(o, "symbol", d->have_sym ? d->sym : NULL);
	hs_json_key(o, "thread");
	if (r->tid)
		hs_json_i64(o, r->tid);
	else
		hs_json_null(o);
	hs_json_kstr(o, "function", d->have_fn ? d->fn : NULL);
	hs_json_kstr(o, "register", d->reg);
	hs_json_end_object(o);
}

static void root_line_text(struct hs_out *o, const struct root_desc *d)
{
	const struct root_ref *r = d->r;
	hs_out_printf(o, "  %-8s ", hs_root_kind_name(r->kind));
	if (d->reg)
		hs_out_printf(o, "register %s of thread %d\n", d->reg, r->tid);
	else if (d->go_stack)
		hs_out_printf(o, "0x%" PRIx64 " in %s%s%s (%s)\n", r->word, d->gname, d->have_fn ? ", frame of " : "",
			      d->have_fn ? d->fn : "", d->go_precise ? "a live pointer by its stack map" :
			      "scanned conservatively");
	else if (r->kind == HS_ROOT_STACK || r->kind == HS_ROOT_TLS)
		hs_out_printf(o, "0x%" PRIx64 " in thread %d%s%s%s\n", r->word, r->tid,
			      d->have_fn ? " (frame of " : "", d->have_fn ? d->fn : "", d->have_fn ? ")" : "");
	else
		hs_out_printf(o, "0x%" PRIx64 "%s%s\n", r->word, d->have_sym ? " " : "", d->have_sym ? d->sym : "");
}

struct first_word { uint64_t word; bool found; };

static void on_first_word(uint64_t word, void *ctx)
{
	struct first_word *f = ctx;
	if (!f->found) {
		f->word = word;
		f->found = true;
	}
}

// The offset in block `from` of its first word that points into block `to`.
static int64_t pointer_offset(struct hs_session *s, size_t from, size_t to)
{
	const struct hs_block *b = &s->heap.blocks[from];
	struct first_word f = { 0 };
	hs_scan_for_target(s->analysis, &s->target->mem, b->address, hs_block_size(b), to, on_first_word, &f);
	return f.found ? (int64_t)(f.word - b->address) : -1;
}

// A hop through a pool: block i is a pooled object, or the pointer word at
// offset lies in a pooled slot.  The pool, or NULL.
static const struct hs_pool *hop_pool(struct hs_session *s, size_t i, int64_t offset)
{
	const struct hs_block *b = &s->heap.blocks[i];
	const struct hs_pool_object *o = hs_pools_find(s->pools, b->address + (offset > 0 ? (uint64_t)offset : 0));
	if (!o || (offset < 0 && !hs_pools_block_pooled(s->pools, &s->heap, i)))
		return NULL;
	return &s->pools->pools[o->pool];
}

struct alloc_desc {
	const struct hs_block *b;
	int64_t offset;              /* of the pointer word in it, or -1 */
	const struct hs_pool *pool;  /* a hop through a pool, or NULL */
	const char *type;
	bool have_field, have_entry;
	char field[128], entry[320];
};

static void alloc_describe(struct hs_session *s, size_t i, int64_t offset, struct alloc_desc *d)
{
	d->b = &s->heap.blocks[i];
	d->offset = offset;
	d->pool = hop_pool(s, i, offset);
	d->type = hs_block_type(s->types, i);
	d->have_field = offset >= 0 && hs_block_field(s, i, (uint64_t)offset, d->field, sizeof(d->field));
	d->have_entry = offset >= 0 ? hs_container_entry_name(s->containers, i, (uint64_t)offset, d->entry, sizeof(d->entry))
				    : hs_container_node_name(s->containers, i, d->entry, sizeof(d->entry));
	// A container's node is named by its key; its DWARF layout is the node base's.
	if (d->have_entry)
		d->have_field = false;
}

static void alloc_json(struct hs_out *o, const struct alloc_desc *d)
{
	hs_json_begin_object(o);
	hs_json_kstr(o, "kind", "allocation");
	hs_json_ku64(o, "address", d->b->address);
	hs_json_ku64(o, "size", hs_block_size(d->b));
	hs_json_key(o, "offset");
	if (d->offset >= 0)
		hs_json_i64(o, d->offset);
	else
		hs_json_null(o);
	hs_json_kstr(o, "type", d->type);
	hs_json_kstr(o, "field", d->have_field ? d->field : NULL);
	hs_json_kbool(o, "pooled", d->pool != NULL);
	hs_json_kstr(o, "pool", d->pool ? d->pool->anchor : NULL);
	hs_json_kstr(o, "entry", d->have_entry ? d->entry : NULL);
	hs_json_end_object(o);
}

static void alloc_text(struct hs_out *o, const struct alloc_desc *d)
{
	const char *t = d->type;
	hs_out_printf(o, "  %-8s 0x%" PRIx64 " (%" PRIu64 " bytes%s%s)", "alloc", d->b->address, hs_block_size(d->b),
		      t ? ", " : "", t ? t : "");
	if (d->offset >= 0)
		hs_out_printf(o, " +0x%" PRIx64 "%s%s", (uint64_t)d->offset, d->have_field ? " ." : "",
			      d->have_field ? d->field : "");
	if (d->pool)
		hs_out_printf(o, "  [pooled: %s]", d->pool->anchor);
	if (d->have_entry)
		hs_out_printf(o, " %s", d->entry);
	hs_out_puts(o, "\n");
}

static void json_block_ref(struct hs_cmd *c, const char *key, size_t i)
{
	const struct hs_block *b = &c->s->heap.blocks[i];
	unsigned w = hs_block_where(b);
	hs_json_key(c->out, key);
	hs_json_begin_object(c->out);
	hs_json_ku64(c->out, "address", b->address);
	hs_json_ku64(c->out, "size", hs_block_size(b));
	hs_json_kstr(c->out, "state", hs_where_state(w));
	hs_json_kstr(c->out, "where", hs_where_name(w));
	hs_json_kstr(c->out, "type", hs_block_type(c->s->types, i));
	hs_json_end_object(c->out);
}

// Pools label hops and objects; only a bad --pool stops the report.
static struct hs_error *need_pools(struct hs_cmd *c)
{
	struct hs_error *err = hs_session_need_pools(c->s);
	if (!err || err->code == HS_ERR_USAGE || err->code == HS_ERR_NOMEM || err->code == HS_ERR_INTERRUPTED)
		return err;
	hs_diag_add(&c->s->diags, HS_DIAG_WARNING, "pools", 0, "%s", hs_error_message(err));
	hs_error_destroy(err);
	return NULL;
}

static struct hs_error *target_block(struct hs_cmd *c, const char *what, void *opts, size_t size, size_t *ret,
				     uint64_t *addr_ret)
{
	const char *pos[1];
	size_t npos;
	HS_CHECK(hs_cmd_parse(c, opts, size, pos, 1, &npos));
	if (npos != 1)
		return hs_error_create(HS_ERR_USAGE, "%s needs an address: %s ADDR", what, what);
	uint64_t addr;
	HS_CHECK(hs_cmd_address(c, pos[0], what, &addr));
	HS_CHECK(hs_session_need_types(c->s));
	HS_CHECK(need_pools(c));
	ptrdiff_t k = hs_heap_find(&c->s->heap, addr);
	if (k < 0)
		return hs_error_create(HS_ERR_NOT_FOUND, "0x%" PRIx64 " is not inside any heap block (see: heapscope CORE show 0x%" PRIx64 ")",
				       addr, addr);
	*ret = (size_t)k;
	*addr_ret = addr;
	return NULL;
}

/* chain ADDR */

// A shortest path from the roots, preferring better root kinds on ties: BFS
// seeded rank by rank.  path_ret gets target ... first (reversed).
static struct hs_error *path_from_roots(struct hs_session *s, size_t target, uint32_t **path_ret, size_t *len_ret)
{
	const struct hs_analysis *a = s->analysis;
	size_t n = a->n;
	uint8_t *rank = hs_array_new(n, 1);
	uint32_t *parent = hs_array_new(n, sizeof(uint32_t)), *queue = hs_array_new(n, sizeof(uint32_t));
	if (!rank || !parent || !queue) {
		free(rank);
		free(parent);
		free(queue);
		return &hs_error_nomem;
	}
	memset(rank, 0xff, n);
	const struct hs_roots *roots = &a->roots;
	for (size_t r = 0; r < roots->n; r++) {
		uint8_t k = (uint8_t)kind_rank(roots->ranges[r].kind);
		uint64_t p = (roots->ranges[r].start + 7) & ~UINT64_C(7);
		while (p + 8 <= roots->ranges[r].end) {
			const uint8_t *bytes = hs_memory_span(&s->target->mem, p, 8);
			if (!bytes)
				break;
			uint64_t stop = p + hs_memory_available(&s->target->mem, p);
			if (stop > roots->ranges[r].end)
				stop = roots->ranges[r].end;
			for (; p + 8 <= stop; p += 8, bytes += 8) {
				uint64_t v;
				memcpy(&v, bytes, 8);
				ptrdiff_t t = hs_addrmap_lookup(&a->map, v);
				if (t >= 0 && k < rank[t])
					rank[t] = k;
			}
		}
	}
	const struct hs_notes *notes = &s->target->notes;
	for (size_t t = 0; t < notes->nthreads; t++)
		for (int r = 0; r < HS_NREGS; r++) {
			ptrdiff_t b = hs_addrmap_lookup(&a->map, notes->threads[t].regs[r]);
			if (b >= 0 && kind_rank(HS_ROOT_REGISTER) < rank[b])
				rank[b] = (uint8_t)kind_rank(HS_ROOT_REGISTER);
		}
	size_t head = 0, tail = 0;
	for (int k = 0; k <= 4; k++)
		for (size_t i = 0; i < n; i++)
			if (rank[i] == k) {
				parent[i] = UINT32_MAX;
				queue[tail++] = (uint32_t)i;
			}
	// rank doubles as "visited" from here: 0xfe marks nodes reached through edges.
	bool found = rank[target] != 0xff;
	while (head < tail && !found) {
		uint32_t v = queue[head++];
		for (uint32_t e = a->fwd_off[v]; e < a->fwd_off[v + 1] && !found; e++) {
			uint32_t w = a->fwd[e];
			if (rank[w] != 0xff)
				continue;
			rank[w] = 0xfe;
			parent[w] = v;
			queue[tail++] = w;
			found = w == target;
		}
	}
	size_t len = 0;
	if (found)
		for (uint32_t v = (uint32_t)target; v != UINT32_MAX; v = parent[v])
			queue[len++] = v;
	free(rank);
	free(parent);
	*path_ret = queue;
	*len_ret = len;
	return NULL;
}

// For a leaked target: the nearest cluster head above it, by reverse BFS.
static struct hs_error *path_from_head(struct hs_session *s, size_t target, uint32_t **path_ret, size_t *len_ret)
{
	struct hs_analysis *a = s->analysis;
	HS_CHECK(hs_analysis_need_reverse(a));
	size_t n = a->n;
	uint32_t *toward = hs_array_new(n, sizeof(uint32_t)), *queue = hs_array_new(n, sizeof(uint32_t));
	uint8_t *seen = hs_array_zeroed(n, 1);
	if (!toward || !queue || !seen) {
		free(toward);
		free(queue);
		free(seen);
		return &hs_error_nomem;
	}
	size_t head = 0, tail = 0;
	queue[tail++] = (uint32_t)target;
	seen[target] = 1;
	toward[target] = UINT32_MAX;
	ptrdiff_t found = -1;
	while (head < tail && found < 0) {
		uint32_t v = queue[head++];
		if (hs_node_unreferenced(a, v)) {
			found = v;
			break;
		}
		for (uint32_t e = a->rev_off[v]; e < a->rev_off[v + 1]; e++) {
			uint32_t u = a->rev[e];
			if (seen[u])
				continue;
			seen[u] = 1;
			toward[u] = v;
			queue[tail++] = u;
		}
	}
	size_t len = 0;
	if (found >= 0) {
		// Walk head -> target, then reverse into the path's order (target first).
		for (uint32_t v = (uint32_t)found; v != UINT32_MAX; v = toward[v])
			queue[len++] = v;
		for (size_t i = 0; i < len / 2; i++) {
			uint32_t t = queue[i];
			queue[i] = queue[len - 1 - i];
			queue[len - 1 - i] = t;
		}
	}
	free(toward);
	free(seen);
	*path_ret = queue;
	*len_ret = len;
	return NULL;
}

// 9999997 as "9,999,997".
static void fmt_thousands(uint64_t v, char *buf, size_t len)
{
	char digits[24];
	int n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
	size_t j = 0;
	for (int i = 0; i < n && j + 2 < len; i++) {
		if (i && (n - i) % 3 == 0)
			buf[j++] = ',';
		buf[j++] = digits[i];
	}
	buf[j] = 0;
}

/* A chain's lines: a hop, or a run of hops alike (same type, or size when the
 * type is unknown, same pointer offset, pool and container) collapsed into one. */
struct chain_line {
	size_t k;                    /* the first hop's index in the path (root side is len - 1) */
	size_t count;                /* hops in it: 1, or a run */
	uint64_t bytes, min_size, max_size;
	int64_t offset;
};

struct chain_lines { struct chain_line *v; size_t n, cap; bool nomem; };

static void lines_add(struct chain_lines *l, struct chain_line x)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct chain_line *g = realloc(l->v, cap * sizeof(*g));
		if (!g) {
			l->nomem = true;
			return;
		}
		l->v = g;
		l->cap = cap;
	}
	l->v[l->n++] = x;
}

struct hop_key { uint64_t what; int64_t offset; const void *pool; uint32_t container; bool typed; };

static struct hop_key hop_key(struct hs_session *s, size_t i, int64_t offset)
{
	const uint32_t *type = hs_types_ids(s->types);
	uint32_t t = type ? type[i] : 0;
	const struct hs_containers *cs = s->containers;
	return (struct hop_key){ t ? t : hs_block_size(&s->heap.blocks[i]), offset, hop_pool(s, i, offset),
				 cs && cs->owner ? cs->owner[i] : 0, t != 0 };
}

static bool same_key(const struct hop_key *x, const struct hop_key *y)
{
	// A container's nodes are named one by one (their keys): never a run.
	return x->what == y->what && x->offset == y->offset && x->pool == y->pool && x->typed == y->typed &&
	       !x->container && !y->container;
}

// Hops path[len-1] (held by the root) .. path[0] (the target) as lines: the
// first and the last hop on lines of their own, runs of 3 or more alike in
// between as one line each.
static void chain_collapse(struct hs_session *s, const uint32_t *path, size_t len, struct chain_lines *l)
{
	struct chain_line run = { 0 };
	struct hop_key key = { 0 };
	for (size_t k = len; k-- > 0 && !l->nomem;) {
		if ((k & 0xffff) == 0 && hs_interrupted())
			return;
		int64_t off = k ? pointer_offset(s, path[k], path[k - 1]) : -1;
		uint64_t size = hs_block_size(&s->heap.blocks[path[k]]);
		struct chain_line one = { k, 1, size, size, size, off };
		bool middle = k && k + 1 < len;
		struct hop_key hk = middle ? hop_key(s, path[k], off) : (struct hop_key){ 0 };
		if (run.count && middle && same_key(&key, &hk)) {
			run.count++;
			run.bytes += size;
			run.min_size = size < run.min_size ? size : run.min_size;
			run.max_size = size > run.max_size ? size : run.max_size;
			continue;
		}
		// The run so far ends here.
		if (run.count >= 3) {
			lines_add(l, run);
		} else {
			for (size_t j = 0; j < run.count; j++) {
				size_t kk = run.k - j;
				uint64_t sz = hs_block_size(&s->heap.blocks[path[kk]]);
				lines_add(l, (struct chain_line){ kk, 1, sz, sz, sz, pointer_offset(s, path[kk], path[kk - 1]) });
			}
		}
		run.count = 0;
		if (middle) {
			run = one;
			key = hk;
		} else {
			lines_add(l, one);
		}
	}
}

struct run_desc {
	const struct chain_line *r;
	uint64_t first, last;        /* the addresses of its first and last hop */
	const char *type;
	bool have_field;
	char field[128];
	const struct hs_pool *pool;
};

static void run_describe(struct hs_session *s, const uint32_t *path, const struct chain_line *r, struct run_desc *d)
{
	size_t first = path[r->k], last = path[r->k + 1 - r->count];
	d->r = r;
	d->first = s->heap.blocks[first].address;
	d->last = s->heap.blocks[last].address;
	d->type = hs_block_type(s->types, first);
	d->have_field = r->offset >= 0 && hs_block_field(s, first, (uint64_t)r->offset, d->field, sizeof(d->field));
	d->pool = hop_pool(s, first, r->offset);
}

static void run_json(struct hs_out *o, const struct run_desc *d)
{
	const struct chain_line *r = d->r;
	hs_json_begin_object(o);
	hs_json_kstr(o, "kind", "run");
	hs_json_ku64(o, "count", r->count);
	hs_json_ku64(o, "first", d->first);
	hs_json_ku64(o, "last", d->last);
	hs_json_ku64(o, "bytes", r->bytes);
	hs_json_ku64(o, "min_size", r->min_size);
	hs_json_ku64(o, "max_size", r->max_size);
	hs_json_ki64(o, "offset", r->offset);
	hs_json_kstr(o, "type", d->type);
	hs_json_kstr(o, "field", d->have_field ? d->field : NULL);
	hs_json_kbool(o, "pooled", d->pool != NULL);
	hs_json_kstr(o, "pool", d->pool ? d->pool->anchor : NULL);
	hs_json_end_object(o);
}

static void run_text(struct hs_out *o, const struct run_desc *d)
{
	const struct chain_line *r = d->r;
	const char *t = d->type;
	char sizes[64], x[32];
	if (r->min_size == r->max_size)
		snprintf(sizes, sizeof(sizes), "%" PRIu64 " bytes", r->min_size);
	else
		snprintf(sizes, sizeof(sizes), "%" PRIu64 "..%" PRIu64 " bytes", r->min_size, r->max_size);
	hs_out_printf(o, "  %-8s 0x%" PRIx64 " .. 0x%" PRIx64 " (%s%s%s) %s0x%" PRIx64 "%s%s", "alloc",
		      d->first, d->last, sizes, t ? ", " : "", t ? t : "",
		      r->offset < 0 ? "-" : "+", r->offset < 0 ? -(uint64_t)r->offset : (uint64_t)r->offset,
		      d->have_field ? " ." : "", d->have_field ? d->field : "");
	if (d->pool)
		hs_out_printf(o, "  [pooled: %s]", d->pool->anchor);
	char count[32];
	fmt_thousands(r->count, count, sizeof(count));
	hs_out_printf(o, "  x %s (%s)\n", count, hs_fmt_size(r->bytes, x, sizeof(x)));
}

// The hops --max-hops leaves out: hops in lines.
static void elided_json(struct hs_out *o, size_t hops, size_t lines)
{
	hs_json_begin_object(o);
	hs_json_kstr(o, "kind", "elided");
	hs_json_ku64(o, "hops", hops);
	hs_json_ku64(o, "lines", lines);
	hs_json_end_object(o);
}

static void elided_text(struct hs_out *o, size_t hops, size_t lines)
{
	char n[32];
	fmt_thousands(hops, n, sizeof(n));
	hs_out_printf(o, "  ... %s hop%s in %zu line%s not shown (--max-hops N)\n", n, hops == 1 ? "" : "s",
		      lines, lines == 1 ? "" : "s");
}

/* chain ADDR: the model (chain_model: the target, the path to it, its lines
 * and the root word), then chain_text or chain_json. */
struct chain_model {
	size_t target;               /* the block */
	uint64_t asked;              /* the address given */
	bool used, anchored, go;
	uint32_t *path;              /* path[len - 1] (held by the root) .. path[0] (the target) */
	size_t len;
	bool have_root;
	struct root_ref root;        /* the root word of the first hop */
	struct chain_lines lines;
	/* --max-hops N: lines [0, head) and [lines.n - tail, lines.n) are shown,
	 * the elided ones (elided_hops hops) in between said in one line. */
	size_t head, tail, elided, elided_hops;
};

static void chain_model_free(struct chain_model *m)
{
	free(m->lines.v);
	free(m->path);
}

static struct hs_error *chain_model(struct hs_session *s, size_t target, uint64_t asked, uint64_t max_hops,
				    struct chain_model *m)
{
	const struct hs_analysis *a = s->analysis;
	*m = (struct chain_model){ .target = target, .asked = asked, .go = s->go_rt != NULL, .root = { .reg = -1 } };
	m->used = a->flags[target] & HS_NODE_USED;
	m->anchored = m->used && (a->flags[target] & HS_NODE_REACHABLE);
	if (m->anchored)
		HS_CHECK(path_from_roots(s, target, &m->path, &m->len));
	else if (m->used)
		HS_CHECK(path_from_head(s, target, &m->path, &m->len));
	if (m->anchored && m->len) {
		struct ref_list refs = { 0 };
		struct hs_error *err = root_refs(s, m->path[m->len - 1], &refs);
		if (err) {
			free(refs.v);
			return err;
		}
		for (size_t i = 0; i < refs.n; i++)
			if (!m->have_root || kind_rank(refs.v[i].kind) < kind_rank(m->root.kind)) {
				m->root = refs.v[i];
				m->have_root = true;
			}
		free(refs.v);
	}
	chain_collapse(s, m->path, m->len, &m->lines);
	if (m->lines.nomem)
		return &hs_error_nomem;
	if (hs_interrupted())
		return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
	size_t n = m->lines.n;
	m->head = n;
	if (max_hops && n > max_hops) {
		m->tail = max_hops / 2;
		m->head = max_hops - m->tail;
		if (!m->head)
			m->head = 1;
		if (!m->tail && max_hops > 1)
			m->tail = 1;
	}
	if (n - m->tail > m->head) {
		m->elided = n - m->tail - m->head;
		for (size_t j = m->head; j < n - m->tail; j++)
			m->elided_hops += m->lines.v[j].count;
	}
	return NULL;
}

/* A chain's rows, rendered as text or JSON: the formatters. */
struct chain_fmt {
	void (*root)(struct hs_out *o, const struct root_desc *d);
	void (*elided)(struct hs_out *o, size_t hops, size_t lines);
	void (*run)(struct hs_out *o, const struct run_desc *d);
	void (*alloc)(struct hs_out *o, const struct alloc_desc *d);
};
static const struct chain_fmt chain_text_fmt = { root_line_text, elided_text, run_text, alloc_text };
static const struct chain_fmt chain_json_fmt = { root_line_json, elided_json, run_json, alloc_json };

// The root line, then each hop (runs collapsed, the middle elided).
static void chain_rows(struct hs_session *s, struct hs_out *o, const struct chain_model *m,
		       const struct chain_fmt *f)
{
	if (m->have_root) {
		struct root_desc d;
		root_describe(s, &m->root, &d);
		f->root(o, &d);
	}
	for (size_t j = 0; j < m->lines.n && !o->stopped; j++) {
		if (j == m->head && m->elided) {
			f->elided(o, m->elided_hops, m->elided);
			j += m->elided - 1;
			continue;
		}
		const struct chain_line *l = &m->lines.v[j];
		if (l->count > 1) {
			struct run_desc d;
			run_describe(s, m->path, l, &d);
			f->run(o, &d);
		} else {
			struct alloc_desc d;
			alloc_describe(s, m->path[l->k], l->offset, &d);
			f->alloc(o, &d);
		}
	}
}

static void chain_text(struct hs_cmd *c, const struct chain_model *m)
{
	struct hs_session *s = c->s;
	struct hs_out *o = c->out;
	uint64_t addr = s->heap.blocks[m->target].address;
	size_t len = m->len;
	char hops[32];
	fmt_thousands(len, hops, sizeof(hops));
	if (!m->used) {
		hs_out_printf(o, "0x%" PRIx64 " is a free block (%s): nothing keeps it, it is not an allocation\n",
			      addr, hs_where_name(hs_block_where(&s->heap.blocks[m->target])));
	} else if (m->anchored) {
		hs_out_printf(o, "0x%" PRIx64 " is anchored; a shortest chain from a root (%s hop%s):\n",
			      addr, hops, len == 1 ? "" : "s");
	} else if (m->go) {
		// Go: no root reaches it, so the next GC frees it.
		if (len)
			hs_out_printf(o, "0x%" PRIx64 " is unreachable: garbage awaiting GC (not a leak); the chain from "
				      "its cluster head (%s hop%s):\n", addr, hops, len == 1 ? "" : "s");
		else
			hs_out_printf(o, "0x%" PRIx64 " is unreachable: garbage awaiting GC (not a leak), in a cycle\n",
				      addr);
	} else if (len) {
		hs_out_printf(o, "0x%" PRIx64 " is LEAKED; the chain from its cluster head (unreferenced, %s hop%s):\n",
			      addr, hops, len == 1 ? "" : "s");
	} else {
		hs_out_printf(o, "0x%" PRIx64 " is LEAKED in a cycle: no root and no unreferenced head reaches it\n",
			      addr);
	}
	chain_rows(s, o, m, &chain_text_fmt);
}

static void chain_json(struct hs_cmd *c, const struct chain_model *m)
{
	struct hs_session *s = c->s;
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "chain");
	hs_json_ku64(o, "target", m->asked);
	json_block_ref(c, "allocation", m->target);
	hs_json_kbool(o, "anchored", m->anchored);
	hs_json_ku64(o, "hops", m->len);
	hs_json_key(o, "chain");
	hs_json_begin_array(o);
	chain_rows(s, o, m, &chain_json_fmt);
	hs_json_end_array(o);
	hs_json_end_object(o);
	hs_json_done(o);
}

struct hs_error *hs_cmd_chain(struct hs_cmd *c)
{
	size_t target = 0;
	uint64_t asked = 0;
	struct hs_chain_opts opt = { .max_hops = 20 };
	HS_CHECK(target_block(c, "chain", &opt, sizeof(opt), &target, &asked));
	struct chain_model m;
	struct hs_error *err = chain_model(c->s, target, asked, opt.max_hops, &m);
	if (!err) {
		if (c->json)
			chain_json(c, &m);
		else
			chain_text(c, &m);
	}
	chain_model_free(&m);
	return err;
}

/* refs ADDR: the model (refs_model: the target, the root words holding it,
 * and its referrers, visited one at a time by refs_referrers: there may be
 * millions), then refs_text or refs_json. */
struct refs_model {
	struct hs_session *s;
	size_t target;
	uint64_t asked;
	bool used, anchored, go;
	struct ref_list roots;
};

static struct hs_error *refs_model(struct hs_session *s, size_t target, uint64_t asked, struct refs_model *m)
{
	struct hs_analysis *a = s->analysis;
	*m = (struct refs_model){ .s = s, .target = target, .asked = asked, .go = s->go_rt != NULL };
	HS_CHECK(hs_analysis_need_reverse(a));
	m->used = a->flags[target] & HS_NODE_USED;
	m->anchored = a->flags[target] & HS_NODE_REACHABLE;
	return root_refs(s, target, &m->roots);
}

// Each referrer word in an allocation (block, offset), until stop says so;
// the graph keeps no self-edges, so a block's pointers into itself are
// referrers all the same.  The number visited.
struct referrer_ctx {
	const struct refs_model *m;
	size_t from;
	uint64_t base;
	size_t found;
	void (*fn)(const struct refs_model *m, size_t block, int64_t offset, void *ctx);
	void *ctx;
};

static void on_referrer_word(uint64_t word, void *ctx)
{
	struct referrer_ctx *x = ctx;
	x->found++;
	x->fn(x->m, x->from, (int64_t)(word - x->base), x->ctx);
}

static size_t refs_referrers(const struct refs_model *m, const bool *stop,
			     void (*fn)(const struct refs_model *m, size_t block, int64_t offset, void *ctx), void *ctx)
{
	struct hs_session *s = m->s;
	const struct hs_analysis *a = s->analysis;
	size_t count = 0, target = m->target;
	for (uint32_t e = a->rev_off[target]; e <= a->rev_off[target + 1] && !*stop; e++) {
		size_t from = e < a->rev_off[target + 1] ? a->rev[e] : target;
		struct referrer_ctx x = { m, from, s->heap.blocks[from].address, 0, fn, ctx };
		hs_scan_for_target(s->analysis, &s->target->mem, x.base, hs_block_size(&s->heap.blocks[from]), target,
				   on_referrer_word, &x);
		count += x.found;
	}
	return count;
}

struct referrer_out { struct hs_out *o; const struct chain_fmt *f; };

static void referrer_row(const struct refs_model *m, size_t block, int64_t offset, void *ctx)
{
	const struct referrer_out *r = ctx;
	struct alloc_desc d;
	alloc_describe(m->s, block, offset, &d);
	r->f->alloc(r->o, &d);
}

// The root words holding the target, then its referrers; how many rows.
static size_t refs_rows(struct hs_out *o, const struct refs_model *m, const struct chain_fmt *f)
{
	for (size_t i = 0; i < m->roots.n; i++) {
		struct root_desc d;
		root_describe(m->s, &m->roots.v[i], &d);
		f->root(o, &d);
	}
	struct referrer_out r = { o, f };
	return m->roots.n + refs_referrers(m, &o->stopped, referrer_row, &r);
}

static void refs_text(struct hs_cmd *c, const struct refs_model *m)
{
	struct hs_out *o = c->out;
	const struct hs_block *b = &c->s->heap.blocks[m->target];
	hs_out_printf(o, "Referrers of 0x%" PRIx64 " (%" PRIu64 " bytes, %s):\n", b->address, hs_block_size(b),
		      !m->used ? "free" : m->anchored ? "anchored" : m->go ? "garbage awaiting GC" : "leaked");
	if (!refs_rows(o, m, &chain_text_fmt))
		hs_out_puts(o, "  (none)\n");
}

static void refs_json(struct hs_cmd *c, const struct refs_model *m)
{
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "refs");
	hs_json_ku64(o, "target", m->asked);
	json_block_ref(c, "allocation", m->target);
	hs_json_kbool(o, "anchored", m->anchored);
	hs_json_key(o, "referrers");
	hs_json_begin_array(o);
	refs_rows(o, m, &chain_json_fmt);
	hs_json_end_array(o);
	hs_json_end_object(o);
	hs_json_done(o);
}

struct hs_error *hs_cmd_refs(struct hs_cmd *c)
{
	size_t target = 0;
	uint64_t asked = 0;
	HS_CHECK(target_block(c, "refs", NULL, 0, &target, &asked));
	struct refs_model m;
	struct hs_error *err = refs_model(c->s, target, asked, &m);
	if (!err) {
		if (c->json)
			refs_json(c, &m);
		else
			refs_text(c, &m);
	}
	free(m.roots.v);
	return err;
}

/* top: the dominator tree, biggest first.  The rows are the children of
 * the virtual root (dominators.h): everything below one of them is what it
 * alone keeps alive, so it is folded under it (a list of 10 M nodes is one
 * row); --depth N unfolds N levels.  Each row says its owner: the root
 * holding its top-level row. */

static int top_cmp(const void *x, const void *y, void *ctx)
{
	const uint64_t *retained = ctx;
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	if (retained[a] != retained[b])
		return retained[a] > retained[b] ? -1 : 1;
	return (a > b) - (a < b);
}

// Keep the k best of v[0..n) (by top_cmp), sorted, in v[0..k'); returns k'.
// A bounded heap when k is small against n: O(n log k), not a sort of all.
static size_t select_top(uint32_t *v, size_t n, size_t k, const uint64_t *retained)
{
	if (!k)
		return 0;
	if (k >= n || n < 4 * k + 64) {
		qsort_r(v, n, sizeof(*v), top_cmp, (void *)retained);
		return k < n ? k : n;
	}
	// v[0..k) is a heap whose root is the worst kept.
	for (size_t i = 0; i < n; i++) {
		size_t size = i < k ? i : k;
		uint32_t x = v[i];
		if (i >= k) {
			if (top_cmp(&x, &v[0], (void *)retained) >= 0)
				continue;
			size--;       // replace the root: sift x down from the top
			size_t p = 0;
			for (;;) {
				size_t c = 2 * p + 1;
				if (c > size)
					break;
				if (c + 1 <= size && top_cmp(&v[c + 1], &v[c], (void *)retained) > 0)
					c++;
				if (top_cmp(&v[c], &x, (void *)retained) <= 0)
					break;
				v[p] = v[c];
				p = c;
			}
			v[p] = x;
			continue;
		}
		size_t p = size;  // push x: sift up
		while (p && top_cmp(&v[(p - 1) / 2], &x, (void *)retained) < 0) {
			v[p] = v[(p - 1) / 2];
			p = (p - 1) / 2;
		}
		v[p] = x;
	}
	qsort_r(v, k, sizeof(*v), top_cmp, (void *)retained);
	return k;
}

enum owner_kind { OWNER_ROOT, OWNER_SHARED, OWNER_LEAKED, OWNER_UNKNOWN };

#define OWNER_CELL 40          /* the widest OWNER column of top's text */
struct top_owner {
	enum owner_kind kind;
	struct root_ref root;        /* OWNER_ROOT: the best root word (kind_rank, then address) */
	bool have_root;
	uint32_t via[3];             /* OWNER_SHARED: rooted top-level rows reaching it (their roots name it) */
	size_t nvia, more_via;
	char name[320];
	char cell[OWNER_CELL + 1];   /* name as top's OWNER column shows it (owner_cell) */
};

struct top_row {
	uint32_t block;
	uint32_t depth;
	uint32_t first_child, nchildren;     /* rows */
	uint64_t more_children, more_bytes;  /* children not shown, what they retain */
	uint32_t owner;                      /* index into owners (its top-level row's) */
	int64_t via_offset;                  /* the dominator's word pointing at it, or -1 */
	bool unfolded;                       /* within --depth: its children are listed */
};

static int u32_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return (a > b) - (a < b);
}

// The best root word of each block in want[0..nwant) (sorted): one pass over
// the root ranges and the registers.
static void pick_roots_of(struct hs_session *s, const uint32_t *want, size_t nwant, struct top_owner *ret)
{
	const struct hs_analysis *a = s->analysis;
	const struct hs_roots *roots = &a->roots;
	for (size_t r = 0; r < roots->n && nwant; r++) {
		const struct hs_root_range *rg = &roots->ranges[r];
		uint64_t p = (rg->start + 7) & ~UINT64_C(7);
		while (p + 8 <= rg->end) {
			uint64_t len, q = hs_memory_next_scan_run(&s->target->mem, p, rg->end, &len);
			if (q == UINT64_MAX)
				break;
			uint64_t stop = q + len;
			p = (q + 7) & ~UINT64_C(7);
			const uint8_t *base = p + 8 <= stop ? hs_memory_span(&s->target->mem, p, stop - p) : NULL;
			if (!base) {
				p = stop;
				continue;
			}
			for (uint64_t w = p; w + 8 <= stop; w += 8) {
				uint64_t v;
				memcpy(&v, base + (w - p), 8);
				if (v < a->map.lo || v >= a->map.hi)
					continue;
				ptrdiff_t t = hs_addrmap_lookup(&a->map, v);
				uint32_t key = (uint32_t)t;
				const uint32_t *hit = t < 0 ? NULL : bsearch(&key, want, nwant, sizeof(*want), u32_cmp);
				if (!hit)
					continue;
				struct top_owner *o = &ret[hit - want];
				if (!o->have_root || kind_rank(rg->kind) < kind_rank(o->root.kind)) {
					o->root = (struct root_ref){ rg->kind, w, rg->tid, -1 };
					o->have_root = true;
				}
			}
			p = stop;
		}
	}
	const struct hs_notes *notes = &s->target->notes;
	for (size_t t = 0; t < notes->nthreads; t++)
		for (int r = 0; r < HS_NREGS; r++) {
			ptrdiff_t b = hs_addrmap_lookup(&a->map, notes->threads[t].regs[r]);
			uint32_t key = (uint32_t)b;
			const uint32_t *hit = b < 0 ? NULL : bsearch(&key, want, nwant, sizeof(*want), u32_cmp);
			if (!hit)
				continue;
			struct top_owner *o = &ret[hit - want];
			if (!o->have_root || kind_rank(HS_ROOT_REGISTER) < kind_rank(o->root.kind)) {
				o->root = (struct root_ref){ HS_ROOT_REGISTER, 0, notes->threads[t].tid, r };
				o->have_root = true;
			}
		}
}

// A root as people say it: "g_table", "g_registry+8", "thread 4242 hold_on_stack()",
// "thread 4242 TLS", "thread 4242 register r12".
static void root_text(struct hs_session *s, const struct root_ref *r, char *buf, size_t len)
{
	char what[300];
	switch (r->kind) {
	case HS_ROOT_GLOBAL:
		if (!root_symbol(s, r->word, what, sizeof(what)))
			snprintf(what, sizeof(what), "global 0x%" PRIx64, r->word);
		snprintf(buf, len, "%s", what);
		return;
	case HS_ROOT_STACK: {
		char fn[256];
		uint64_t goid;
		if (s->go_rt && r->word && hs_go_stack_root_name(s->goroutines, r->word, buf, len, &goid))
			return;
		if (hs_stack_frame_function(s, r->tid, r->word, fn, sizeof(fn))) {
			hs_demangle(fn, what, sizeof(what));
			snprintf(buf, len, "thread %d %s()", r->tid, what);
		} else {
			snprintf(buf, len, "thread %d stack", r->tid);
		}
		return;
	}
	case HS_ROOT_TLS:
		snprintf(buf, len, "thread %d TLS", r->tid);
		return;
	case HS_ROOT_REGISTER:
		snprintf(buf, len, "thread %d register %s", r->tid,
			 r->reg >= 0 && r->reg < HS_NREGS ? hs_reg_names[r->reg] : "?");
		return;
	default:
		snprintf(buf, len, "memory 0x%" PRIx64, r->word);
		return;
	}
}

// The top-level row above block v (climbing the dominator tree), or UINT32_MAX
// past the step budget.
static uint32_t top_ancestor(const struct hs_dominators *d, uint32_t v, size_t *budget)
{
	while (d->idom[v] < d->n) {
		if (!(*budget)--)
			return UINT32_MAX;
		v = d->idom[v];
	}
	return v;
}

/* The rooted top-level rows that reach the shared top-level row b, into
 * o->via (up to 3; o->more_via counts further ones, "and more") and pushed on
 * *want.  Each referrer of b lies under some top-level row; a rooted one is
 * an owner, a shared one is searched the same way (breadth first: the
 * nearest owners first), each row once, within *budget steps.  True on no
 * memory. */
static bool shared_via(struct hs_session *s, uint32_t b, struct top_owner *o, size_t *budget, uint32_t **want,
		       size_t *nwant, size_t *cap)
{
	const struct hs_analysis *a = s->analysis;
	enum { SEARCH_ROWS = 256 };
	uint32_t seen[SEARCH_ROWS];
	size_t nseen = 0;
	seen[nseen++] = b;
	for (size_t q = 0; q < nseen && o->nvia + o->more_via < 4; q++) {
		uint32_t x = seen[q];
		for (uint32_t e = a->rev_off[x]; e < a->rev_off[x + 1]; e++) {
			uint32_t p = a->rev[e];
			if (!(a->flags[p] & HS_NODE_REACHABLE))
				continue;
			uint32_t t = top_ancestor(s->dominators, p, budget);
			if (t == UINT32_MAX)
				return false;
			bool dup = false;
			for (size_t j = 0; j < nseen && !dup; j++)
				dup = seen[j] == t;
			if (dup || nseen == SEARCH_ROWS)
				continue;
			seen[nseen++] = t;
			if (!(a->flags[t] & HS_NODE_ROOTED))
				continue;   // shared too: its own referrers, in turn
			if (o->nvia == 3) {
				o->more_via++;
				continue;
			}
			o->via[o->nvia++] = t;
			if (HS_VEC_PUSH(*want, *nwant, *cap, t))
				return true;
		}
	}
	return false;
}

// name cut to the OWNER column: "..." for what does not fit.
static void owner_cell(const char *name, char cell[OWNER_CELL + 1])
{
	size_t n = strlen(name);
	if (n <= OWNER_CELL)
		memcpy(cell, name, n + 1);
	else
		snprintf(cell, OWNER_CELL + 1, "%.*s...", OWNER_CELL - 3, name);
}

// A shared owner's cell: as many of its roots as fit whole, the others
// "and more" (the name itself, in JSON, has them all).
static void shared_cell(struct top_owner *o, char texts[][300], size_t ntexts)
{
	static const char more[] = " and more";
	size_t used = (size_t)snprintf(o->cell, sizeof(o->cell), "shared:"), j = 0;
	for (; j < ntexts; j++) {
		size_t add = strlen(texts[j]) + (j ? 2 : 1);
		bool last = j + 1 == ntexts && !o->more_via;
		if (used + add + (last ? 0 : sizeof(more) - 1) > OWNER_CELL)
			break;
		used += (size_t)snprintf(o->cell + used, sizeof(o->cell) - used, "%s %s", j ? "," : "", texts[j]);
	}
	if (!j)
		owner_cell(o->name, o->cell);   // not even one whole
	else if (j < ntexts || o->more_via)
		snprintf(o->cell + used, sizeof(o->cell) - used, "%s", more);
}

// Owners of the top-level rows: a root for rooted ones; for one reached from
// several roots (no single root dominates it) the rows whose roots reach it.
static struct hs_error *top_owners(struct hs_session *s, const uint32_t *rows, size_t nrows, struct top_owner *own)
{
	struct hs_analysis *a = s->analysis;
	size_t budget = 4 * a->n + 1024;   // climbing: linear in the heap at most
	// The blocks whose roots are wanted: the rooted rows and the rows the
	// shared ones are reached through (up to 3 each), in any order.  (Room
	// from the start: never NULL for qsort and bsearch below.)
	size_t nwant = 0, cap = 0;
	uint32_t *want = NULL;
	if (HS_VEC_GROW(want, cap, nrows + 16))
		return &hs_error_nomem;
	for (size_t k = 0; k < nrows; k++) {
		uint32_t b = rows[k];
		memset(&own[k], 0, sizeof(own[k]));
		if (!(a->flags[b] & HS_NODE_REACHABLE)) {
			own[k].kind = OWNER_LEAKED;
			continue;
		}
		if (a->flags[b] & HS_NODE_ROOTED) {
			own[k].kind = OWNER_ROOT;
			if (HS_VEC_PUSH(want, nwant, cap, b)) {
				free(want);
				return &hs_error_nomem;
			}
			continue;
		}
		own[k].kind = OWNER_SHARED;
		if (shared_via(s, b, &own[k], &budget, &want, &nwant, &cap)) {
			free(want);
			return &hs_error_nomem;
		}
	}
	qsort(want, nwant, sizeof(*want), u32_cmp);
	size_t u = 0;
	for (size_t i = 0; i < nwant; i++)
		if (!u || want[u - 1] != want[i])
			want[u++] = want[i];
	nwant = u;
	struct top_owner *picks = calloc(nwant ? nwant : 1, sizeof(*picks));
	if (!picks) {
		free(want);
		return &hs_error_nomem;
	}
	pick_roots_of(s, want, nwant, picks);
	// A word of "other memory" that a data symbol covers is a global all the
	// same (a capture may not tell the module's writable pages apart).
	struct hs_symbol sym;
	uint64_t off;
	for (size_t i = 0; i < nwant; i++)
		if (picks[i].have_root && picks[i].root.kind == HS_ROOT_MEMORY && s->symbols &&
		    hs_symbols_addr_symbol(s->symbols, picks[i].root.word, &sym, &off))
			picks[i].root.kind = HS_ROOT_GLOBAL;
	for (size_t k = 0; k < nrows; k++) {
		struct top_owner *o = &own[k];
		if (o->kind == OWNER_LEAKED) {
			snprintf(o->name, sizeof(o->name), "%s", s->go_rt ? "(garbage awaiting GC)" : "(leaked)");
		} else if (o->kind == OWNER_ROOT) {
			uint32_t key = rows[k];
			const uint32_t *hit = bsearch(&key, want, nwant, sizeof(*want), u32_cmp);
			if (hit && picks[hit - want].have_root) {
				o->root = picks[hit - want].root;
				o->have_root = true;
				root_text(s, &o->root, o->name, sizeof(o->name));
			} else {
				o->kind = OWNER_UNKNOWN;
				snprintf(o->name, sizeof(o->name), "(a root)");
			}
		} else {
			// Each root once (two rows may have the same: one frame's words).
			char texts[3][300];
			size_t ntexts = 0;
			for (size_t j = 0; j < o->nvia; j++) {
				char *one = texts[ntexts];
				snprintf(one, sizeof(texts[0]), "(a root)");
				const uint32_t *hit = bsearch(&o->via[j], want, nwant, sizeof(*want), u32_cmp);
				if (hit && picks[hit - want].have_root)
					root_text(s, &picks[hit - want].root, one, sizeof(texts[0]));
				bool dup = false;
				for (size_t x = 0; x < ntexts && !dup; x++)
					dup = !strcmp(texts[x], one);
				ntexts += !dup;
			}
			size_t used = (size_t)snprintf(o->name, sizeof(o->name), "shared:");
			for (size_t j = 0; j < ntexts && used < sizeof(o->name); j++)
				used += (size_t)snprintf(o->name + used, sizeof(o->name) - used, "%s %s", j ? "," : "",
							 texts[j]);
			if (o->more_via && used < sizeof(o->name))
				snprintf(o->name + used, sizeof(o->name) - used, " and more");
			if (!o->nvia)
				snprintf(o->name, sizeof(o->name), "(several roots)");
			else
				shared_cell(o, texts, ntexts);
		}
		if (!o->cell[0])
			owner_cell(o->name, o->cell);
	}
	free(picks);
	free(want);
	return NULL;
}

// Children of the dominator tree as CSR: kids[koff[v] .. koff[v + 1]).
static struct hs_error *dominator_children(const struct hs_dominators *d, uint32_t **koff_ret, uint32_t **kids_ret)
{
	size_t n = d->n;
	uint32_t *koff = hs_array_zeroed(n + 2, sizeof(uint32_t)), *kids = hs_array_new(n, sizeof(uint32_t));
	if (!koff || !kids) {
		free(koff);
		free(kids);
		return &hs_error_nomem;
	}
	for (size_t i = 0; i < n; i++)
		if (d->idom[i] < n)
			koff[d->idom[i] + 2]++;
	for (size_t v = 0; v < n; v++)
		koff[v + 2] += koff[v + 1];
	for (size_t i = 0; i < n; i++)
		if (d->idom[i] < n)
			kids[koff[d->idom[i] + 1]++] = (uint32_t)i;
	*koff_ret = koff;
	*kids_ret = kids;
	return NULL;
}

struct top {
	struct top_row *rows;
	size_t nrows, cap;
	struct top_owner *owners;
	size_t ntop;                 /* top-level rows: rows[0..ntop) */
	uint64_t total, more_bytes;  /* top-level candidates; what the unshown ones retain */
	uint32_t maxdepth;
};

static bool top_add(struct top *t, struct top_row r)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct top_row *g = realloc(t->rows, cap * sizeof(*g));
		if (!g)
			return false;
		t->rows = g;
		t->cap = cap;
	}
	t->rows[t->nrows++] = r;
	if (r.depth > t->maxdepth)
		t->maxdepth = r.depth;
	return true;
}

static struct hs_error *top_build(struct hs_session *s, uint64_t limit, uint64_t depth, struct top *t)
{
	const struct hs_analysis *a = s->analysis;
	const struct hs_dominators *dom = s->dominators;
	size_t n = a->n, k = 0;
	uint32_t *cand = hs_array_new(n, sizeof(uint32_t));
	if (!cand)
		return &hs_error_nomem;
	for (size_t i = 0; i < n; i++)
		if ((a->flags[i] & HS_NODE_USED) && dom->idom[i] == n)
			cand[k++] = (uint32_t)i;
	t->total = k;
	size_t shown = select_top(cand, k, limit, dom->retained);
	for (size_t j = shown; j < k; j++)
		t->more_bytes += dom->retained[cand[j]];
	for (size_t j = 0; j < shown; j++)
		if (!top_add(t, (struct top_row){ .block = cand[j], .owner = (uint32_t)j, .via_offset = -1 }))
			goto nomem;
	t->ntop = shown;
	t->owners = calloc(shown ? shown : 1, sizeof(*t->owners));
	if (!t->owners)
		goto nomem;
	struct hs_error *err = top_owners(s, cand, shown, t->owners);
	if (err) {
		free(cand);
		return err;
	}
	if (depth && shown) {
		uint32_t *koff, *kids;
		err = dominator_children(dom, &koff, &kids);
		if (err) {
			free(cand);
			return err;
		}
		// Level by level: the rows of one level are [lo, hi).
		for (size_t lo = 0, hi = t->nrows, d = 1; d <= depth && lo < hi; lo = hi, hi = t->nrows, d++) {
			for (size_t r = lo; r < hi; r++) {
				uint32_t b = t->rows[r].block;
				size_t nk = koff[b + 1] - koff[b];
				memcpy(cand, kids + koff[b], nk * sizeof(uint32_t));
				size_t ns = select_top(cand, nk, limit, dom->retained);
				t->rows[r].unfolded = true;
				t->rows[r].first_child = (uint32_t)t->nrows;
				t->rows[r].nchildren = (uint32_t)ns;
				t->rows[r].more_children = nk - ns;
				for (size_t j = ns; j < nk; j++)
					t->rows[r].more_bytes += dom->retained[cand[j]];
				for (size_t j = 0; j < ns; j++) {
					struct top_row c = { .block = cand[j], .depth = (uint32_t)d, .owner = t->rows[r].owner,
							     .via_offset = pointer_offset(s, b, cand[j]) };
					if (!top_add(t, c)) {
						free(koff);
						free(kids);
						goto nomem;
					}
				}
			}
		}
		free(koff);
		free(kids);
	}
	free(cand);
	return NULL;
nomem:
	free(cand);
	return &hs_error_nomem;
}

static void json_owner(struct hs_cmd *c, const struct top_owner *ow)
{
	struct hs_out *o = c->out;
	struct hs_session *s = c->s;
	static const char *const kinds[] = { [OWNER_SHARED] = "shared", [OWNER_LEAKED] = "leaked",
					     [OWNER_UNKNOWN] = "root" };
	const struct root_ref *r = ow->have_root ? &ow->root : NULL;
	hs_json_key(o, "owner");
	hs_json_begin_object(o);
	hs_json_kstr(o, "kind", r ? hs_root_kind_name(r->kind) : kinds[ow->kind]);
	hs_json_kstr(o, "name", ow->name);
	hs_json_key(o, "address");
	if (r && r->word)
		hs_json_u64(o, r->word);
	else
		hs_json_null(o);
	char sym[256], fn[256], dfn[256];
	bool have_sym = r && r->kind == HS_ROOT_GLOBAL && root_symbol(s, r->word, sym, sizeof(sym));
	bool have_fn = r && r->kind == HS_ROOT_STACK && hs_stack_frame_function(s, r->tid, r->word, fn, sizeof(fn));
	if (have_fn)
		hs_demangle(fn, dfn, sizeof(dfn));
	hs_json_kstr(o, "symbol", have_sym ? sym : NULL);
	hs_json_key(o, "thread");
	if (r && r->tid)
		hs_json_i64(o, r->tid);
	else
		hs_json_null(o);
	hs_json_kstr(o, "function", have_fn ? dfn : NULL);
	hs_json_kstr(o, "register", r && r->reg >= 0 && r->reg < HS_NREGS ? hs_reg_names[r->reg] : NULL);
	hs_json_end_object(o);
}

static const char *row_state(struct hs_session *s, uint32_t i)
{
	if (hs_node_leaked(s->analysis, i))
		return s->go_rt ? "garbage" : "leaked";
	return hs_pools_block_pooled(s->pools, &s->heap, i) ? "pooled" : "anchored";
}

static void json_row(struct hs_cmd *c, const struct top *t, size_t r)
{
	struct hs_out *o = c->out;
	struct hs_session *s = c->s;
	const struct hs_analysis *a = s->analysis;
	const struct hs_dominators *d = s->dominators;
	const struct top_row *row = &t->rows[r];
	uint32_t i = row->block;
	char field[128];
	bool have_field = row->via_offset >= 0 && row->depth &&
			  hs_block_field(s, s->dominators->idom[i], (uint64_t)row->via_offset, field, sizeof(field));
	hs_json_begin_object(o);
	hs_json_ku64(o, "address", s->heap.blocks[i].address);
	hs_json_ku64(o, "size", hs_block_size(&s->heap.blocks[i]));
	hs_json_ku64(o, "retained", d->retained[i]);
	hs_json_ku64(o, "retained_count", d->retained_count[i]);
	hs_json_kbool(o, "leaked", hs_node_leaked(a, i));
	hs_json_kbool(o, "pooled", hs_pools_block_pooled(s->pools, &s->heap, i));
	hs_json_kstr(o, "type", hs_block_type(s->types, i));
	hs_json_type_info(o, s->types, i);
	json_owner(c, &t->owners[row->owner]);
	if (row->depth) {
		hs_json_key(o, "via_offset");
		if (row->via_offset >= 0)
			hs_json_i64(o, row->via_offset);
		else
			hs_json_null(o);
		hs_json_kstr(o, "via_field", have_field ? field : NULL);
	}
}

static void text_row(struct hs_cmd *c, const struct top *t, size_t r, int addr_width, int owner_width)
{
	struct hs_session *s = c->s;
	const struct hs_dominators *d = s->dominators;
	const struct top_row *row = &t->rows[r];
	uint32_t i = row->block;
	char y[32], addr[96], via[160] = "";
	snprintf(addr, sizeof(addr), "%*s0x%016" PRIx64, (int)(2 * row->depth), "", s->heap.blocks[i].address);
	if (row->depth && row->via_offset >= 0) {
		char field[128];
		if (hs_block_field(s, d->idom[i], (uint64_t)row->via_offset, field, sizeof(field)))
			snprintf(via, sizeof(via), "  (via .%s)", field);
		else
			snprintf(via, sizeof(via), "  (via +0x%" PRIx64 ")", (uint64_t)row->via_offset);
	}
	const char *type = hs_block_type(s->types, i);
	// An allocation's own size exact (as chunks, leaks, histogram), sums in units.
	hs_out_printf(c->out, "  %-*s %10" PRIu64 " %10s %10" PRIu32 " %-8s %-*s %s%s\n", addr_width, addr,
		      hs_block_size(&s->heap.blocks[i]), hs_fmt_size(d->retained[i], y, sizeof(y)),
		      d->retained_count[i], row_state(s, i), owner_width, t->owners[row->owner].cell, type ? type : "?", via);
}

static void text_more(struct hs_cmd *c, uint32_t depth, uint64_t more, uint64_t bytes, const char *what)
{
	char x[32];
	hs_out_printf(c->out, "  %*s... %" PRIu64 " more %s retaining %s (--limit N)\n", (int)(2 * depth), "", more,
		      what, hs_fmt_size(bytes, x, sizeof(x)));
}

// Rows in tree order (a row, then its children), without recursion.
/* The top model is struct top (top_build): the rows, each unfolded one
 * followed by its children; the renderers walk that tree, depth first. */
struct top_frame { size_t row, next; };

static void top_json(struct hs_cmd *c, const struct top *t, uint64_t depth)
{
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "top");
	hs_json_ku64(o, "total", t->total);
	hs_json_kbool(o, "truncated", t->ntop < t->total);
	hs_json_ku64(o, "objects_total", t->total);
	hs_json_kbool(o, "objects_truncated", t->ntop < t->total);
	hs_json_ku64(o, "depth", depth);
	hs_json_key(o, "objects");
	hs_json_begin_array(o);
	struct top_frame *stack = malloc((t->maxdepth + 2) * sizeof(*stack));
	for (size_t k = 0; stack && k < t->ntop && !o->stopped; k++) {
		size_t sp = 0;
		stack[sp++] = (struct top_frame){ k, 0 };
		json_row(c, t, k);
		while (sp && !o->stopped) {
			struct top_frame *f = &stack[sp - 1];
			const struct top_row *row = &t->rows[f->row];
			if (f->next == 0 && row->unfolded) {
				hs_json_key(o, "children");
				hs_json_begin_array(o);
			}
			if (f->next < row->nchildren) {
				size_t child = row->first_child + f->next++;
				json_row(c, t, child);
				stack[sp++] = (struct top_frame){ child, 0 };
				continue;
			}
			if (row->unfolded) {
				hs_json_end_array(o);
				hs_json_ku64(o, "children_more", row->more_children);
			}
			hs_json_end_object(o);
			sp--;
		}
	}
	free(stack);
	hs_json_end_array(o);
	hs_json_end_object(o);
	hs_json_done(o);
}

static void top_text(struct hs_cmd *c, const struct top *t)
{
	struct hs_out *o = c->out;
	hs_out_printf(o, "The allocations that keep the most memory alive; what one keeps alone is folded\n"
			 "under it (the dominator tree; --depth N unfolds N levels).\n\n");
	int owner_width = 5;
	for (size_t k = 0; k < t->ntop; k++) {
		int w = (int)strlen(t->owners[k].cell);
		if (w > owner_width)
			owner_width = w;
	}
	int addr_width = 18 + 2 * (int)t->maxdepth;
	hs_out_printf(o, "  %-*s %10s %10s %10s %-8s %-*s %s\n", addr_width, "ADDRESS", "SIZE", "RETAINED", "OBJECTS",
		      "STATE", owner_width, "OWNER", "TYPE");
	struct top_frame *stack = malloc((t->maxdepth + 2) * sizeof(*stack));
	for (size_t k = 0; stack && k < t->ntop && !o->stopped; k++) {
		size_t sp = 0;
		stack[sp++] = (struct top_frame){ k, 0 };
		text_row(c, t, k, addr_width, owner_width);
		while (sp && !o->stopped) {
			struct top_frame *f = &stack[sp - 1];
			const struct top_row *row = &t->rows[f->row];
			if (f->next < row->nchildren) {
				size_t child = row->first_child + f->next++;
				text_row(c, t, child, addr_width, owner_width);
				stack[sp++] = (struct top_frame){ child, 0 };
				continue;
			}
			if (row->more_children)
				text_more(c, row->depth + 1, row->more_children, row->more_bytes,
					  row->more_children == 1 ? "child" : "children");
			sp--;
		}
	}
	free(stack);
	if (t->ntop < t->total)
		text_more(c, 0, t->total - t->ntop, t->more_bytes, "objects");
}

#define TOP_MAX_DEPTH 100

struct hs_error *hs_cmd_top(struct hs_cmd *c)
{
	struct hs_top_opts opt = { .limit = 20 };
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	uint64_t limit = opt.limit, depth = opt.depth;
	// Each level nests the JSON once more: readers (Python's json among
	// them) stop at about a thousand.
	if (depth > TOP_MAX_DEPTH)
		return hs_error_create(HS_ERR_USAGE, "top: --depth takes a number from 0 to %d, not %" PRIu64,
				       TOP_MAX_DEPTH, depth);
	HS_CHECK(hs_session_need_types(c->s));
	HS_CHECK(hs_session_need_dominators(c->s));
	HS_CHECK(need_pools(c));
	struct hs_session *s = c->s;
	struct top t = { 0 };
	struct hs_error *err = top_build(s, limit, depth, &t);
	if (err) {
		free(t.rows);
		free(t.owners);
		return err;
	}
	if (c->json)
		top_json(c, &t, depth);
	else
		top_text(c, &t);
	free(t.rows);
	free(t.owners);
	return NULL;
}
