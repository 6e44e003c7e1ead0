/* report_pools.c - the pools command: every application pool, its free list
 * and what its pooled objects still hold (pools.h).
 *
 * A report is a model and two renderers: pools_model() chooses the rows and
 * sums the totals; pools_text() and pools_json() only format that model. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "pools.h"

/* What the pools command shows, text or JSON. */
struct pools_model {
	const struct hs_pools *p;
	const struct hs_pool **rows;  /* the pools shown (--declared, --detected), in order */
	size_t n;
	bool list;                    /* --list: each pool's objects too */
	uint64_t count, bytes;        /* pooled objects of the rows */
	uint64_t polluted, retained;  /* unfiltered: what several pools retain counted once */
};

static int sync_pool_cmp(const void *x, const void *y)
{
	const struct hs_pool *a = *(const struct hs_pool *const *)x, *b = *(const struct hs_pool *const *)y;
	uint64_t ka = a->bytes + a->polluted_retained, kb = b->bytes + b->polluted_retained;
	if (ka != kb)
		return ka > kb ? -1 : 1;
	return strcmp(a->anchor, b->anchor);
}

static const char *const cache_names[HS_POOL_NCACHES] = { "private", "shared", "victim" };

static struct hs_error *pools_model(const struct hs_pools *p, bool declared, bool detected, bool list,
				    struct pools_model *m)
{
	*m = (struct pools_model){ .p = p, .list = list };
	m->rows = malloc((p->n ? p->n : 1) * sizeof(*m->rows));
	if (!m->rows)
		return &hs_error_nomem;
	for (size_t i = 0; i < p->n; i++) {
		const struct hs_pool *pool = &p->pools[i];
		if ((declared && !pool->declared) || (detected && pool->declared))
			continue;
		m->rows[m->n++] = pool;
		m->count += pool->count;
		m->bytes += pool->bytes;
		m->polluted += pool->polluted;
		m->retained += pool->polluted_retained;
	}
	if (!declared && !detected) {
		m->polluted = p->polluted;
		m->retained = p->polluted_retained;
	}
	// A Go program's sync.Pools (they follow any declared pool): what each
	// keeps alive, most first.
	size_t k = 0;
	while (k < m->n && !m->rows[k]->sync_pool)
		k++;
	qsort(m->rows + k, m->n - k, sizeof(*m->rows), sync_pool_cmp);
	return NULL;
}

// A sync.Pool's caches and types.
static void json_sync_pool(struct hs_out *o, const struct hs_pool *pool)
{
	hs_json_ku64(o, "procs", pool->procs);
	hs_json_ku64(o, "victim_procs", pool->victim_procs);
	for (int k = 0; k < HS_POOL_NCACHES; k++)
		hs_json_kcount(o, cache_names[k], pool->cache_count[k], pool->cache_bytes[k]);
	hs_json_key(o, "types");
	hs_json_begin_array(o);
	for (size_t k = 0; k < pool->ntypes; k++) {
		hs_json_begin_object(o);
		hs_json_kstr(o, "type", pool->types[k].name);
		hs_json_ku64(o, "count", pool->types[k].count);
		hs_json_ku64(o, "bytes", pool->types[k].bytes);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
}

static void json_pool(struct hs_cmd *c, const struct hs_pools *p, const struct hs_pool *pool, bool list)
{
	struct hs_out *o = c->out;
	hs_json_begin_object(o);
	hs_json_kstr(o, "anchor", pool->anchor);
	hs_json_ku64(o, "anchor_address", pool->anchor_address);
	hs_json_key(o, "thread");
	if (pool->tid)
		hs_json_i64(o, pool->tid);
	else
		hs_json_null(o);
	hs_json_key(o, "head");
	if (pool->sync_pool)
		hs_json_null(o);
	else
		hs_json_u64(o, pool->head);
	hs_json_key(o, "link");
	if (pool->sync_pool)
		hs_json_null(o);
	else
		hs_json_u64(o, pool->link);
	hs_json_kstr(o, "kind", pool->sync_pool ? "sync.Pool" : pool->slab ? "slots" : "allocations");
	hs_json_ku64(o, "object_size", pool->object_size);
	hs_json_ku64(o, "count", pool->count);
	hs_json_ku64(o, "bytes", pool->bytes);
	hs_json_kbool(o, "declared", pool->declared);
	hs_json_kbool(o, "broken", pool->broken);
	hs_json_ku64(o, "polluted", pool->polluted);
	hs_json_ku64(o, "polluted_retained", pool->polluted_retained);
	if (pool->sync_pool)
		json_sync_pool(o, pool);
	if (list) {
		hs_json_key(o, "objects");
		hs_json_begin_array(o);
		for (size_t k = 0; k < pool->count && !o->stopped; k++) {
			const struct hs_pool_object *ob = &p->objs[pool->first + k];
			hs_json_begin_object(o);
			hs_json_ku64(o, "address", ob->address);
			hs_json_kbool(o, "polluted", ob->polluted);
			if (pool->sync_pool) {
				hs_json_ku64(o, "size", ob->size);
				hs_json_kstr(o, "type", pool->types[ob->type].name);
				hs_json_kstr(o, "cache", cache_names[ob->cache]);
				hs_json_ku64(o, "p", ob->proc);
			}
			hs_json_end_object(o);
		}
		hs_json_end_array(o);
	}
	hs_json_end_object(o);
}

static void text_pool(struct hs_cmd *c, const struct hs_pools *p, const struct hs_pool *pool, bool list)
{
	struct hs_out *o = c->out;
	char thread[16] = "-", bytes[32], ret[32], link[24];
	if (pool->tid)
		snprintf(thread, sizeof(thread), "%d", pool->tid);
	snprintf(link, sizeof(link), "+%" PRIu64, pool->link);
	hs_out_printf(o, "  %-28s %-7s %-8s %-5s %6" PRIu64 " %7" PRIu64 " %10s %8" PRIu64 " %10s%s\n", pool->anchor,
		      thread, pool->declared ? "declared" : "detected", link, pool->object_size, pool->count,
		      hs_fmt_size(pool->bytes, bytes, sizeof(bytes)), pool->polluted,
		      hs_fmt_size(pool->polluted_retained, ret, sizeof(ret)),
		      pool->broken ? "  BROKEN (see diagnostics)" : pool->slab ? "  slots" : "");
	for (size_t k = 0; list && k < pool->count && !o->stopped; k++) {
		const struct hs_pool_object *ob = &p->objs[pool->first + k];
		hs_out_printf(o, "      0x%016" PRIx64 "%s\n", ob->address, ob->polluted ? "  polluted" : "");
	}
}

static void pools_json(struct hs_cmd *c, const struct pools_model *m)
{
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "pools");
	hs_json_key(o, "pools");
	hs_json_begin_array(o);
	for (size_t i = 0; i < m->n && !o->stopped; i++)
		json_pool(c, m->p, m->rows[i], m->list);
	hs_json_end_array(o);
	hs_json_kcount(o, "pooled", m->count, m->bytes);
	hs_json_ku64(o, "polluted", m->polluted);
	hs_json_ku64(o, "polluted_retained", m->retained);
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
}

// A Go program's sync.Pool: its objects by cache and by type.
static void text_sync_pool(struct hs_cmd *c, const struct hs_pools *p, const struct hs_pool *pool, bool list)
{
	struct hs_out *o = c->out;
	char bytes[32], ret[32], types[256] = "";
	size_t used = 0;
	for (size_t k = 0; k < pool->ntypes && used < sizeof(types); k++)
		used += (size_t)snprintf(types + used, sizeof(types) - used, "%s%s", k ? ", " : "", pool->types[k].name);
	hs_out_printf(o, "  %-28s %7" PRIu64 " %10s %10s %8" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 "  %s%s\n",
		      pool->anchor, pool->count, hs_fmt_size(pool->bytes, bytes, sizeof(bytes)),
		      hs_fmt_size(pool->polluted_retained, ret, sizeof(ret)), pool->polluted,
		      pool->cache_count[HS_POOL_PRIVATE], pool->cache_count[HS_POOL_SHARED],
		      pool->cache_count[HS_POOL_VICTIM], types, pool->broken ? "  BROKEN (see diagnostics)" : "");
	for (size_t k = 0; list && k < pool->count && !o->stopped; k++) {
		const struct hs_pool_object *ob = &p->objs[pool->first + k];
		hs_out_printf(o, "      0x%016" PRIx64 " %8" PRIu64 "  %-7s P%-4" PRIu32 " %s%s\n", ob->address, ob->size,
			      cache_names[ob->cache], ob->proc, pool->types[ob->type].name, ob->polluted ? "  polluted" : "");
	}
}

static void pools_text(struct hs_cmd *c, const struct pools_model *m)
{
	struct hs_out *o = c->out;
	size_t nsync = 0;
	for (size_t i = 0; i < m->n; i++)
		nsync += m->rows[i]->sync_pool;
	if (m->n > nsync || (!m->n && !hs_session_heap_is_go(c->s)))
		hs_out_printf(o, "  %-28s %-7s %-8s %-5s %6s %7s %10s %8s %10s\n", "ANCHOR", "THREAD", "FOUND", "LINK",
			      "SIZE", "COUNT", "BYTES", "POLLUTED", "RETAINED");
	for (size_t i = 0; i < m->n && !o->stopped; i++)
		if (!m->rows[i]->sync_pool)
			text_pool(c, m->p, m->rows[i], m->list);
	if (nsync)
		hs_out_printf(o, "%s  %-28s %7s %10s %10s %8s %7s %7s %7s  %s\n", m->n > nsync ? "\n" : "", "SYNC.POOL",
			      "COUNT", "BYTES", "RETAINED", "POLLUTED", "PRIVATE", "SHARED", "VICTIM", "TYPES");
	for (size_t i = 0; i < m->n && !o->stopped; i++)
		if (m->rows[i]->sync_pool)
			text_sync_pool(c, m->p, m->rows[i], m->list);
	char a[32], b[32];
	if (!m->n)
		hs_out_puts(o, hs_session_heap_is_go(c->s) ? "  (no sync.Pool holds anything)\n" :
			    "  (no pools: declare one with --pool EXPR[:LINK])\n");
	hs_out_printf(o, "%zu pool%s, %" PRIu64 " pooled objects (%s); %" PRIu64 " polluted, retaining %s (%" PRIu64 " bytes) that only pools keep alive\n",
		      m->n, m->n == 1 ? "" : "s", m->count, hs_fmt_size(m->bytes, a, sizeof(a)), m->polluted,
		      hs_fmt_size(m->retained, b, sizeof(b)), m->retained);
	hs_cmd_diagnostics(c);
}

struct hs_error *hs_cmd_pools(struct hs_cmd *c)
{
	struct hs_pools_opts opt = { 0 };
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	HS_CHECK(hs_session_need_heap(c->s));
	HS_CHECK(hs_session_need_pool_analysis(c->s));
	struct pools_model m;
	HS_CHECK(pools_model(c->s->pools, opt.declared, opt.detected, opt.list, &m));
	if (c->json)
		pools_json(c, &m);
	else
		pools_text(c, &m);
	free(m.rows);
	return NULL;
}
