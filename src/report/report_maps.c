/* report_maps.c - the containers (maps, map) and who owns the memory
 * (owners): reports over containers.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "containers.h"
#include "go_rt.h"
#include "graph.h"
#include "types.h"

static const struct { unsigned bit; const char *name, *text; } finding_names[] = {
	{ HS_FIND_DEGENERATE, "degenerate_hash", "degenerate hashing: a chain far longer than the load" },
	{ HS_FIND_SPARSE, "sparse_buckets", "a bucket array far larger than its elements (mass erase?)" },
	{ HS_FIND_MOST_OF_HEAP, "most_of_heap", "it retains most of the heap" },
	{ HS_FIND_CORRUPT, "corrupt", "broken: see the diagnostics" },
};

// A number already formatted, as the value of the key just written.
static void json_raw_number(struct hs_out *o, const char *text)
{
	hs_out_puts(o, text);
	o->after_key = false;
}

static double load_of(const struct hs_container *c)
{
	return c->buckets > 0 ? (double)c->count / (double)c->buckets : 0;
}

static int by_retained(const void *x, const void *y)
{
	const struct hs_container *a = *(const struct hs_container *const *)x, *b = *(const struct hs_container *const *)y;
	if (a->retained != b->retained)
		return a->retained > b->retained ? -1 : 1;
	return (a->address > b->address) - (a->address < b->address);
}

static void json_i64_or_null(struct hs_out *o, const char *key, int64_t v)
{
	hs_json_key(o, key);
	if (v < 0)
		hs_json_null(o);
	else
		hs_json_i64(o, v);
}

static void json_container(struct hs_cmd *c, const struct hs_container *k)
{
	struct hs_out *o = c->out;
	hs_json_kstr(o, "kind", k->kind_name);
	hs_json_kstr(o, "family", k->kind->family);
	hs_json_ku64(o, "address", k->address);
	hs_json_kstr(o, "anchor", k->anchor);
	hs_json_kbool(o, "leaked", k->anchor == NULL);
	hs_json_kstr(o, "key_type", k->key_type);
	hs_json_kstr(o, "value_type", k->value_type);
	hs_json_ku64(o, "count", k->count);
	json_i64_or_null(o, "buckets", k->buckets);
	json_i64_or_null(o, "max_chain", k->max_chain);
	json_i64_or_null(o, "height", k->height);
	hs_json_kstr(o, "layout", k->layout);
	json_i64_or_null(o, "overflow_buckets", k->overflow);
	json_i64_or_null(o, "tombstones", k->tombstones);
	json_i64_or_null(o, "tables", k->tables);
	hs_json_key(o, "load");
	if (k->buckets > 0) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%.3f", load_of(k));
		json_raw_number(o, buf);
	} else {
		hs_json_null(o);
	}
	hs_json_ku64(o, "blocks", k->nblocks);
	hs_json_ku64(o, "bytes", k->bytes);
	hs_json_ku64(o, "retained", k->retained);
	hs_json_key(o, "findings");
	hs_json_begin_array(o);
	for (size_t f = 0; f < sizeof(finding_names) / sizeof(finding_names[0]); f++)
		if (k->findings & finding_names[f].bit)
			hs_json_string(o, finding_names[f].name);
	hs_json_end_array(o);
}

static void type_text(const struct hs_container *k, char *buf, size_t len)
{
	if (k->kind == &hs_kind_gomap)
		snprintf(buf, len, "map[%s]%s", k->key_type ? k->key_type : "?", k->value_type ? k->value_type : "?");
	else if (k->key_type && k->value_type)
		snprintf(buf, len, "%s<%s, %s>", k->kind_name, k->key_type, k->value_type);
	else if (k->key_type)
		snprintf(buf, len, "%s<%s>", k->kind_name, k->key_type);
	else
		snprintf(buf, len, "%s", k->kind_name);
}

/* The maps model: every container, most retained first; limit bounds the
 * rows shown (hs_cmd_limited says how many were left out). */
struct maps_model {
	const struct hs_container **v;
	size_t n;
	uint64_t limit;
};

static struct hs_error *maps_model(const struct hs_containers *cs, uint64_t limit, struct maps_model *m)
{
	*m = (struct maps_model){ .n = cs->n, .limit = limit };
	m->v = malloc((cs->n ? cs->n : 1) * sizeof(*m->v));
	if (!m->v)
		return &hs_error_nomem;
	for (size_t i = 0; i < cs->n; i++)
		m->v[i] = &cs->v[i];
	qsort(m->v, cs->n, sizeof(*m->v), by_retained);
	return NULL;
}

static struct hs_error *need(struct hs_cmd *c)
{
	HS_CHECK(hs_session_need_types(c->s));
	HS_CHECK(hs_session_need_container_retained(c->s));
	// Go maps are found through the Go types DWARF gives their headers.
	if (c->s->go_rt && !c->s->go_rt->dwarf)
		hs_diag_add(&c->s->diags, HS_DIAG_WARNING, "maps", 0,
			    "Go maps are found through the executable's DWARF, and it has none (built with "
			    "-ldflags=-w?): no Go map is listed; summary, histogram, leaks, chain, refs, top and "
			    "goroutines still work");
	return NULL;
}

static void maps_json(struct hs_cmd *c, const struct maps_model *m)
{
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "maps");
	hs_json_key(o, "containers");
	hs_json_begin_array(o);
	for (size_t i = 0; i < m->n && i < m->limit && !o->stopped; i++) {
		hs_json_begin_object(o);
		json_container(c, m->v[i]);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_cmd_limited(c, "containers", m->limit, m->n, "containers");
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
}

static void maps_text(struct hs_cmd *c, const struct maps_model *m)
{
	struct hs_out *o = c->out;
	if (!m->n) {
		hs_out_printf(o, "No containers found.\n");
		hs_cmd_diagnostics(c);
		return;
	}
	hs_out_printf(o, "%zu containers\n\n  %-18s %8s %8s %6s %5s %11s %11s  %s\n", m->n, "ADDRESS", "COUNT",
		      "BUCKETS", "CHAIN", "LOAD", "BYTES", "RETAINED", "ANCHOR  KIND");
	for (size_t i = 0; i < m->n && i < m->limit && !o->stopped; i++) {
		const struct hs_container *k = m->v[i];
		char b[24] = "-", ch[24] = "-", ld[16] = "-", x[32], y[32], t[512];
		if (k->buckets >= 0)
			snprintf(b, sizeof(b), "%" PRId64, k->buckets);
		if (k->max_chain >= 0)
			snprintf(ch, sizeof(ch), "%" PRId64, k->max_chain);
		else if (k->height >= 0)
			snprintf(ch, sizeof(ch), "h%" PRId64, k->height);
		if (k->buckets > 0)
			snprintf(ld, sizeof(ld), "%.2f", load_of(k));
		type_text(k, t, sizeof(t));
		hs_out_printf(o, "  0x%016" PRIx64 " %8" PRIu64 " %8s %6s %5s %11s %11s  %s  %s\n", k->address, k->count, b,
			      ch, ld, hs_fmt_size(k->bytes, x, sizeof(x)), hs_fmt_size(k->retained, y, sizeof(y)),
			      k->anchor ? k->anchor : "(leaked)", t);
		if (k->layout && k->tables == 0)
			hs_out_printf(o, "%23s%s: %s, %" PRId64 " tombstones\n", "", k->layout,
				      k->buckets ? "one group (a small map)" : "no group yet", k->tombstones);
		else if (k->layout && k->tables >= 0)
			hs_out_printf(o, "%23s%s: %" PRId64 " group%s in %" PRId64 " table%s, %" PRId64 " tombstones\n", "",
				      k->layout, k->buckets, k->buckets == 1 ? "" : "s", k->tables, k->tables == 1 ? "" : "s",
				      k->tombstones);
		else if (k->layout)
			hs_out_printf(o, "%23s%s: %" PRId64 " bucket%s, %" PRId64 " overflow, %" PRId64 " tombstones\n", "",
				      k->layout, k->buckets, k->buckets == 1 ? "" : "s", k->overflow, k->tombstones);
		for (size_t f = 0; f < sizeof(finding_names) / sizeof(finding_names[0]); f++)
			if (k->findings & finding_names[f].bit)
				hs_out_printf(o, "%23s! %s\n", "", finding_names[f].text);
	}
	hs_cmd_limited(c, "containers", m->limit, m->n, "containers");
	hs_cmd_diagnostics(c);
}

struct hs_error *hs_cmd_maps(struct hs_cmd *c)
{
	struct hs_maps_opts opt = { .limit = UINT64_MAX };
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	uint64_t limit = opt.limit;
	HS_CHECK(need(c));
	struct maps_model m;
	HS_CHECK(maps_model(c->s->containers, limit, &m));
	if (c->json)
		maps_json(c, &m);
	else
		maps_text(c, &m);
	free(m.v);
	return NULL;
}

/* map ADDR|ANCHOR */

static const struct hs_container *find_container(struct hs_session *s, const char *arg)
{
	const struct hs_containers *cs = s->containers;
	for (size_t i = 0; i < cs->n; i++)
		if (cs->v[i].anchor && !strcmp(cs->v[i].anchor, arg))
			return &cs->v[i];
	uint64_t addr;
	struct hs_error *err = hs_parse_u64(arg, "map", &addr);
	if (err) {
		hs_error_destroy(err);
		return NULL;
	}
	for (size_t i = 0; i < cs->n; i++)
		if (cs->v[i].address == addr || cs->v[i].handle == addr)
			return &cs->v[i];
	return NULL;
}

/* The model of map: the container (find_container) and its entries, each
 * described by map_entry_describe as hs_container_entries walks them (a map
 * may hold millions: they stream), then rendered by map_entry_text or
 * map_entry_json under map_text's or map_json's header. */
struct map_entry {
	uint64_t node, key, value;   /* value: a pointer to a heap block, or 0 */
	char key_text[256];
	bool key_str;                /* key_text is a string (quoted), else a number */
	const char *value_type;      /* the type of the block value points at, or NULL */
	bool have_value_text, value_str;
	char value_text[256];        /* an inline value, when value is 0 */
};

static void map_entry_describe(struct hs_session *s, const struct hs_container *k, uint64_t node, uint64_t key,
			       uint64_t key_len, uint64_t value, struct map_entry *e)
{
	e->node = node;
	e->key = key;
	hs_container_key_text(s->containers, k, key, key_len, e->key_text, sizeof(e->key_text), &e->key_str);
	e->value = hs_container_entry_value(s->containers, k, key, value);
	e->value_str = false;
	e->have_value_text = !e->value && hs_container_value_text(s->containers, k, node, key, e->value_text, sizeof(e->value_text),
								   &e->value_str);
	e->value_type = NULL;
	if (e->value) {
		ptrdiff_t b = hs_heap_find(&s->heap, e->value);
		e->value_type = b >= 0 ? hs_block_type(s->types, (size_t)b) : NULL;
	}
}

static void map_entry_json(struct hs_out *o, const struct map_entry *e)
{
	const char *text = e->key_text;
	hs_json_begin_object(o);
	hs_json_key(o, "key");
	if (e->key_str)
		hs_json_string(o, text);
	else
		json_raw_number(o, text[0] == '0' && text[1] == 'x' ? "null" : text);
	hs_json_ku64(o, "key_address", e->key);
	hs_json_ku64(o, "node", e->node);
	hs_json_key(o, "value");
	if (e->value)
		hs_json_u64(o, e->value);
	else
		hs_json_null(o);
	hs_json_kstr(o, "value_type", e->value_type);
	if (e->have_value_text) {
		hs_json_key(o, "value_text");
		if (e->value_str)
			hs_json_string(o, e->value_text);
		else
			json_raw_number(o, e->value_text[0] == '?' ? "null" : e->value_text);
	}
	hs_json_end_object(o);
}

static void map_entry_text(struct hs_out *o, const struct map_entry *e)
{
	char k[280];
	snprintf(k, sizeof(k), e->key_str ? "\"%s\"" : "%s", e->key_text);
	hs_out_printf(o, "  %-28s 0x%016" PRIx64, k, e->node);
	if (e->value)
		hs_out_printf(o, "  0x%016" PRIx64 " %s", e->value, e->value_type ? e->value_type : "?");
	else if (e->have_value_text)
		hs_out_printf(o, e->value_str ? "  \"%s\"" : "  %s", e->value_text);
	hs_out_puts(o, "\n");
}

struct listing {
	struct hs_session *s;
	const struct hs_container *k;
	struct hs_out *o;
	void (*render)(struct hs_out *o, const struct map_entry *e);
};

static void on_entry(struct hs_cwalk *cw, uint64_t node, uint64_t key, uint64_t key_len, uint64_t value)
{
	struct listing *l = cw->ctx;
	struct map_entry e;
	map_entry_describe(l->s, l->k, node, key, key_len, value, &e);
	l->render(l->o, &e);
}

static struct hs_error *map_text(struct hs_cmd *c, const struct hs_container *k, uint64_t limit)
{
	struct hs_out *o = c->out;
	char t[512], x[32], y[32];
	type_text(k, t, sizeof(t));
	hs_out_printf(o, "%s %s at 0x%" PRIx64 ": %" PRIu64 " entries, %s own, %s retained\n\n",
		      k->anchor ? k->anchor : "(leaked)", t, k->address, k->count,
		      hs_fmt_size(k->bytes, x, sizeof(x)), hs_fmt_size(k->retained, y, sizeof(y)));
	hs_out_printf(o, "  %-28s %-18s  %-18s %s\n", "KEY", "NODE", "VALUE", "TYPE");
	struct listing l = { c->s, k, o, map_entry_text };
	HS_CHECK(hs_container_entries(c->s->containers, k, on_entry, &l, limit));
	hs_cmd_limited(c, "entries", limit, k->count, "entries");
	hs_cmd_diagnostics(c);
	return NULL;
}

static struct hs_error *map_json(struct hs_cmd *c, const struct hs_container *k, uint64_t limit)
{
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "map");
	hs_json_key(o, "container");
	hs_json_begin_object(o);
	json_container(c, k);
	hs_json_end_object(o);
	hs_json_key(o, "entries");
	hs_json_begin_array(o);
	struct listing l = { c->s, k, o, map_entry_json };
	HS_CHECK(hs_container_entries(c->s->containers, k, on_entry, &l, limit));
	hs_json_end_array(o);
	hs_cmd_limited(c, "entries", limit, k->count, "entries");
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
	return NULL;
}

struct hs_error *hs_cmd_map(struct hs_cmd *c)
{
	struct hs_map_opts opt = { .limit = UINT64_MAX };
	const char *pos[1];
	size_t npos;
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), pos, 1, &npos));
	if (npos != 1)
		return hs_error_create(HS_ERR_USAGE, "map needs a container: map ADDR|ANCHOR (see: maps)");
	HS_CHECK(need(c));
	const struct hs_container *k = find_container(c->s, pos[0]);
	if (!k)
		return hs_error_create(HS_ERR_NOT_FOUND, "no container at or named '%s' (see: maps)", pos[0]);
	return c->json ? map_json(c, k, opt.limit) : map_text(c, k, opt.limit);
}

/* owners: the roots by what each alone retains, then the containers (the
 * maps model); the shared and leaked lines come from the owners stage and
 * the graph. */
struct owners_model {
	const struct hs_owners *ow;   /* most retained first */
	uint64_t limit;               /* roots and containers shown */
	uint64_t leaked_count, leaked_bytes;
	struct maps_model maps;
};

static void owners_json(struct hs_cmd *c, const struct owners_model *m)
{
	struct hs_out *o = c->out;
	const struct hs_owners *ow = m->ow;
	hs_cmd_json_begin(c, "owners");
	hs_json_key(o, "roots");
	hs_json_begin_array(o);
	for (size_t i = 0; i < ow->n && i < m->limit && !o->stopped; i++) {
		hs_json_begin_object(o);
		hs_json_kstr(o, "name", ow->v[i].name);
		hs_json_kstr(o, "kind", ow->v[i].kind);
		hs_json_ku64(o, "retained", ow->v[i].retained);
		hs_json_ku64(o, "count", ow->v[i].count);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_cmd_limited(c, "roots", m->limit, ow->n, "roots");
	hs_json_kcount(o, "shared", ow->shared_count, ow->shared_bytes);
	hs_json_kcount(o, "leaked", m->leaked_count, m->leaked_bytes);
	hs_json_key(o, "containers");
	hs_json_begin_array(o);
	for (size_t i = 0; i < m->maps.n && i < m->limit && !o->stopped; i++) {
		const struct hs_container *k = m->maps.v[i];
		hs_json_begin_object(o);
		hs_json_kstr(o, "anchor", k->anchor);
		hs_json_kstr(o, "kind", k->kind_name);
		hs_json_ku64(o, "address", k->address);
		hs_json_ku64(o, "count", k->count);
		hs_json_ku64(o, "bytes", k->bytes);
		hs_json_ku64(o, "retained", k->retained);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_cmd_limited(c, "containers", m->limit, m->maps.n, "containers");
	hs_json_end_object(o);
	hs_json_done(o);
}

static void owners_text(struct hs_cmd *c, const struct owners_model *m)
{
	struct hs_out *o = c->out;
	const struct hs_owners *ow = m->ow;
	char x[32], y[32];
	hs_out_printf(o, "Retained by each root (what would go away with it alone):\n\n  %12s %10s  %-9s %s\n",
		      "RETAINED", "COUNT", "KIND", "OWNER");
	for (size_t i = 0; i < ow->n && i < m->limit && !o->stopped; i++)
		hs_out_printf(o, "  %12s %10" PRIu64 "  %-9s %s\n", hs_fmt_size(ow->v[i].retained, x, sizeof(x)),
			      ow->v[i].count, ow->v[i].kind, ow->v[i].name);
	hs_cmd_limited(c, "roots", m->limit, ow->n, "roots");
	hs_out_printf(o, "  %12s %10" PRIu64 "  %-9s %s\n", hs_fmt_size(ow->shared_bytes, x, sizeof(x)),
		      ow->shared_count, "", "(shared: reached from several roots)");
	hs_out_printf(o, "  %12s %10" PRIu64 "  %-9s %s\n", hs_fmt_size(m->leaked_bytes, x, sizeof(x)),
		      m->leaked_count, "", c->s->go_rt ? "(garbage awaiting GC: no root)" : "(leaked: no root)");
	hs_out_printf(o, "\nRetained by each container:\n\n  %12s %10s  %s\n", "RETAINED", "ENTRIES", "CONTAINER");
	for (size_t i = 0; i < m->maps.n && i < m->limit && !o->stopped; i++) {
		const struct hs_container *k = m->maps.v[i];
		char t[512];
		type_text(k, t, sizeof(t));
		hs_out_printf(o, "  %12s %10" PRIu64 "  %s holds %s in %" PRIu64 " entries (%s)\n",
			      hs_fmt_size(k->retained, x, sizeof(x)), k->count, k->anchor ? k->anchor : "(leaked)",
			      hs_fmt_size(k->retained, y, sizeof(y)), k->count, t);
	}
	hs_cmd_limited(c, "containers", m->limit, m->maps.n, "containers");
	if (!m->maps.n)
		hs_out_printf(o, "  No containers found.\n");
}

struct hs_error *hs_cmd_owners(struct hs_cmd *c)
{
	struct hs_owners_opts opt = { .limit = UINT64_MAX };   /* not given: 20 rows of text, every row of JSON */
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	uint64_t limit = opt.limit;
	if (limit == UINT64_MAX && !c->json)
		limit = 20;
	HS_CHECK(need(c));
	HS_CHECK(hs_session_need_owners(c->s));
	const struct hs_analysis *a = c->s->analysis;
	struct owners_model m = { .ow = c->s->owners, .limit = limit, .leaked_count = a->leaked_count,
				  .leaked_bytes = a->leaked_bytes };
	HS_CHECK(maps_model(c->s->containers, limit, &m.maps));
	if (c->json)
		owners_json(c, &m);
	else
		owners_text(c, &m);
	free(m.maps.v);
	return NULL;
}
