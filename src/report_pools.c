/* report_pools.c - the pools command: every application pool, its free list
 * and what its pooled objects still hold (pools.h).
 *
 * A report is a model and two renderers: pools_model() chooses the rows and
 * sums the totals; pools_text() and pools_json() only format that model. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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
	return NULL;
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
	hs_json_ku64(o, "head", pool->head);
	hs_json_ku64(o, "link", pool->link);
	hs_json_kstr(o, "kind", pool->slab ? "slots" : "allocations");
	hs_json_ku64(o, "object_size", pool->object_size);
	hs_json_ku64(o, "count", pool->count);
	hs_json_ku64(o, "bytes", pool->bytes);
	hs_json_kbool(o, "declared", pool->declared);
	hs_json_kbool(o, "broken", pool->broken);
	hs_json_ku64(o, "polluted", pool->polluted);
	hs_json_ku64(o, "polluted_retained", pool->polluted_retained);
	if (list) {
		hs_json_key(o, "objects");
		hs_json_begin_array(o);
		for (size_t k = 0; k < pool->count && !o->stopped; k++) {
			const struct hs_pool_object *ob = &p->objs[pool->first + k];
			hs_json_begin_object(o);
			hs_json_ku64(o, "address", ob->address);
			hs_json_kbool(o, "polluted", ob->polluted);
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

static void pools_text(struct hs_cmd *c, const struct pools_model *m)
{
	struct hs_out *o = c->out;
	hs_out_printf(o, "  %-28s %-7s %-8s %-5s %6s %7s %10s %8s %10s\n", "ANCHOR", "THREAD", "FOUND", "LINK",
		      "SIZE", "COUNT", "BYTES", "POLLUTED", "RETAINED");
	for (size_t i = 0; i < m->n && !o->stopped; i++)
		text_pool(c, m->p, m->rows[i], m->list);
	char a[32], b[32];
	if (!m->n)
		hs_out_puts(o, "  (no pools: declare one with --pool EXPR[:LINK])\n");
	hs_out_printf(o, "%zu pool%s, %" PRIu64 " pooled objects (%s); %" PRIu64 " polluted, retaining %s (%" PRIu64 " bytes) that only pools keep alive\n",
		      m->n, m->n == 1 ? "" : "s", m->count, hs_fmt_size(m->bytes, a, sizeof(a)), m->polluted,
		      hs_fmt_size(m->retained, b, sizeof(b)), m->retained);
	hs_cmd_diagnostics(c);
}

struct hs_error *hs_cmd_pools(struct hs_cmd *c)
{
	bool list = false, declared = false, detected = false;
	const struct hs_opt opts[] = { { "--list", HS_OPT_FLAG, &list }, { "--declared", HS_OPT_FLAG, &declared },
				       { "--detected", HS_OPT_FLAG, &detected }, { 0 } };
	HS_CHECK(hs_cmd_parse(c, opts, NULL, 0, NULL));
	HS_CHECK(hs_session_need_heap(c->s));
	HS_CHECK(hs_session_go_unsupported(c->s, "pools", "(sync.Pool is not read yet)"));
	HS_CHECK(hs_session_need_pool_analysis(c->s));
	struct pools_model m;
	HS_CHECK(pools_model(c->s->pools, declared, detected, list, &m));
	if (c->json)
		pools_json(c, &m);
	else
		pools_text(c, &m);
	free(m.rows);
	return NULL;
}
