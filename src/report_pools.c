/* report_pools.c - the pools command: every application pool, its free list
 * and what its pooled objects still hold (pools.h). */
#include <inttypes.h>
#include <stdio.h>
#include "commands.h"
#include "pools.h"

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

struct hs_error *hs_cmd_pools(struct hs_cmd *c)
{
	bool list = false, declared = false, detected = false;
	const struct hs_opt opts[] = { { "--list", HS_OPT_FLAG, &list }, { "--declared", HS_OPT_FLAG, &declared },
				       { "--detected", HS_OPT_FLAG, &detected }, { 0 } };
	HS_CHECK(hs_cmd_parse(c, opts, NULL, 0, NULL));
	HS_CHECK(hs_session_need_heap(c->s));
	HS_CHECK(hs_session_go_unsupported(c->s, "pools", "(sync.Pool is not read yet)"));
	HS_CHECK(hs_session_need_pool_analysis(c->s));
	const struct hs_pools *p = c->s->pools;
	struct hs_out *o = c->out;
	uint64_t count = 0, bytes = 0, npools = 0, npolluted = 0, retained = 0;
	bool filtered = declared || detected;
	if (c->json) {
		hs_cmd_json_begin(c, "pools");
		hs_json_key(o, "pools");
		hs_json_begin_array(o);
	} else {
		hs_out_printf(o, "  %-28s %-7s %-8s %-5s %6s %7s %10s %8s %10s\n", "ANCHOR", "THREAD", "FOUND", "LINK",
			      "SIZE", "COUNT", "BYTES", "POLLUTED", "RETAINED");
	}
	for (size_t i = 0; i < p->n && !o->stopped; i++) {
		const struct hs_pool *pool = &p->pools[i];
		if ((declared && !pool->declared) || (detected && pool->declared))
			continue;
		npools++;
		count += pool->count;
		bytes += pool->bytes;
		npolluted += pool->polluted;
		retained += pool->polluted_retained;
		if (c->json)
			json_pool(c, p, pool, list);
		else
			text_pool(c, p, pool, list);
	}
	// Unfiltered, what several pools retain is counted once.
	if (!filtered) {
		npolluted = p->polluted;
		retained = p->polluted_retained;
	}
	char a[32], b[32];
	if (c->json) {
		hs_json_end_array(o);
		hs_json_kcount(o, "pooled", count, bytes);
		hs_json_ku64(o, "polluted", npolluted);
		hs_json_ku64(o, "polluted_retained", retained);
		hs_cmd_diagnostics(c);
		hs_json_end_object(o);
		hs_json_done(o);
		return NULL;
	}
	if (!npools)
		hs_out_puts(o, "  (no pools: declare one with --pool EXPR[:LINK])\n");
	hs_out_printf(o, "%" PRIu64 " pool%s, %" PRIu64 " pooled objects (%s); %" PRIu64 " polluted, retaining %s (%" PRIu64 " bytes) that only pools keep alive\n",
		      npools, npools == 1 ? "" : "s", count, hs_fmt_size(bytes, a, sizeof(a)), npolluted,
		      hs_fmt_size(retained, b, sizeof(b)), retained);
	hs_cmd_diagnostics(c);
	return NULL;
}
