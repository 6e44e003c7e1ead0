/* report_html.c - `report [--html] [-o FILE]`: a one-page triage of a core.
 *
 * One model (struct report), three renderers: text, JSON and one
 * self-contained HTML file (inline CSS and SVG, no script, no network; print
 * CSS for paper).  Every string from the core (type names, symbols, paths) is
 * hostile: HTML escapes it, JSON escapes it, text prints it as is.
 *
 * Sections: the process and the core; where the memory went (in use, leaked,
 * free by list, allocator metadata: a stacked bar and a bar per type); the
 * allocator state (arenas); the top owners (root -> held bytes, from the
 * ownership stacks of export.h) and the top retainers (the largest retained
 * sizes at the top of the dominator tree, so a long list shows once); the leak
 * suspects with an example chain each (the dominator chain from the cluster
 * head); the biggest maps (by retained bytes) and the pools (by pooled
 * bytes); the diagnostics.
 *
 * On a Go heap the unreachable are garbage awaiting GC, never leaked: its
 * leak sections are the garbage by type (JSON "garbage_groups"), its owners
 * "[garbage]" (export.h).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "containers.h"
#include "dominators.h"
#include "export.h"
#include "graph.h"
#include "pools.h"
#include "types.h"

#define TOP_N 10
#define TOP_MAPS 5
#define CHAIN_MAX 8

struct rgroup { uint32_t type; uint64_t size, count, bytes; uint32_t example; };
struct rowner { uint32_t node; uint64_t count, bytes; };

struct report {
	struct hs_session *s;
	struct hs_stacks st;
	uint64_t used_count, used_bytes, free_count, free_bytes, meta_count, meta_bytes;
	uint64_t where_count[HS_WHERE_MAX], where_bytes[HS_WHERE_MAX];
	struct rgroup *types;        /* used, by type (top TOP_N by bytes) */
	size_t ntypes;
	struct rgroup *leaks;        /* leaked, by (type, size), with an example */
	size_t nleaks;
	struct rowner owners[TOP_N];
	size_t nowners;
	uint32_t retainers[TOP_N];
	size_t nretainers;
	/* the biggest containers by retained bytes, and the pools by pooled
	 * bytes; a stage that failed is said in its section, not hidden */
	const struct hs_container *maps[TOP_MAPS];
	size_t nmaps, maps_total;
	const struct hs_pool *pools[TOP_MAPS];
	size_t npools, pools_total;
	char maps_error[256], pools_error[256];
};

static int map_cmp(const void *x, const void *y)
{
	const struct hs_container *a = *(const struct hs_container *const *)x, *b = *(const struct hs_container *const *)y;
	if (a->retained != b->retained)
		return a->retained > b->retained ? -1 : 1;
	return (a->address > b->address) - (a->address < b->address);
}

static int pool_cmp(const void *x, const void *y)
{
	const struct hs_pool *a = *(const struct hs_pool *const *)x, *b = *(const struct hs_pool *const *)y;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return (a->anchor_address > b->anchor_address) - (a->anchor_address < b->anchor_address);
}

/* Keep the TOP_MAPS first of v[0, n) under cmp in top[] (insertion). */
static size_t keep_top(const void **top, const void *item, size_t ntop, int (*cmp)(const void *, const void *))
{
	size_t pos = ntop;
	while (pos > 0 && cmp(&item, &top[pos - 1]) < 0)
		pos--;
	if (pos >= TOP_MAPS)
		return ntop;
	if (ntop < TOP_MAPS)
		ntop++;
	memmove(&top[pos + 1], &top[pos], (ntop - 1 - pos) * sizeof(*top));
	top[pos] = item;
	return ntop;
}

static void stage_error(char *buf, size_t len, struct hs_error *err)
{
	snprintf(buf, len, "%s", err->message ? err->message : "failed");
	hs_error_destroy(err);
}

/* Maps and pools: an error of theirs (a corrupt container...) does not lose
 * the rest of the report. */
static struct hs_error *build_containers(struct report *r, struct hs_session *s)
{
	struct hs_error *err = hs_session_need_container_retained(s);
	if (err) {
		if (err->code == HS_ERR_INTERRUPTED || err == &hs_error_nomem)
			return err;
		stage_error(r->maps_error, sizeof(r->maps_error), err);
	} else {
		const struct hs_containers *cs = s->containers;
		r->maps_total = cs->n;
		for (size_t i = 0; i < cs->n; i++)
			r->nmaps = keep_top((const void **)r->maps, &cs->v[i], r->nmaps, map_cmp);
	}
	err = hs_session_need_pool_analysis(s);
	if (err) {
		if (err->code == HS_ERR_INTERRUPTED || err == &hs_error_nomem)
			return err;
		stage_error(r->pools_error, sizeof(r->pools_error), err);
	} else {
		const struct hs_pools *p = s->pools;
		r->pools_total = p->n;
		for (size_t i = 0; i < p->n; i++)
			r->npools = keep_top((const void **)r->pools, &p->pools[i], r->npools, pool_cmp);
	}
	return NULL;
}

static const char *rtype_name(const struct report *r, uint32_t t)
{
	return hs_types_name(r->s->types, t);
}

static int group_cmp(const void *x, const void *y)
{
	const struct rgroup *a = x, *b = y;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	return (a->size > b->size) - (a->size < b->size);
}

static int group_bytes_cmp(const void *x, const void *y)
{
	const struct rgroup *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return group_cmp(x, y);
}

// Groups of the used (or leaked) blocks by type (by_size: and size), largest first.
static struct hs_error *make_groups(struct report *r, bool leaked, bool by_size, struct rgroup **ret, size_t *n_ret)
{
	const struct hs_session *s = r->s;
	const struct hs_analysis *a = s->analysis;
	size_t k = leaked ? a->leaked_count : a->used_count;
	struct rgroup *g = malloc((k ? k : 1) * sizeof(*g));
	if (!g)
		return &hs_error_nomem;
	size_t m = 0;
	const uint32_t *type = hs_types_ids(s->types);
	for (size_t i = 0; i < a->n && m < k; i++) {
		if (!(a->flags[i] & HS_NODE_USED) || (leaked && !hs_node_leaked(a, i)))
			continue;
		uint64_t size = hs_block_size(&s->heap.blocks[i]);
		g[m++] = (struct rgroup){ type ? type[i] : 0, by_size ? size : 0, 1, size, (uint32_t)i };
	}
	qsort(g, m, sizeof(*g), group_cmp);
	size_t out = 0;
	for (size_t i = 0; i < m; i++) {
		if (out && !group_cmp(&g[out - 1], &g[i])) {
			g[out - 1].count++;
			g[out - 1].bytes += g[i].bytes;
		} else {
			g[out++] = g[i];
		}
	}
	qsort(g, out, sizeof(*g), group_bytes_cmp);
	*ret = g;
	*n_ret = out;
	return NULL;
}

static int owner_cmp(const void *x, const void *y)
{
	const struct rowner *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	return (a->node > b->node) - (a->node < b->node);
}

static struct hs_error *build(struct report *r, struct hs_session *s)
{
	memset(r, 0, sizeof(*r));
	r->s = s;
	HS_CHECK(hs_stacks_build(s, &r->st));
	const struct hs_analysis *a = s->analysis;
	const struct hs_dominators *d = s->dominators;
	for (size_t i = 0; i < s->heap.n; i++) {
		const struct hs_block *b = &s->heap.blocks[i];
		unsigned w = hs_block_where(b);
		uint64_t size = hs_block_size(b);
		r->where_count[w]++;
		r->where_bytes[w] += size;
		if (hs_where_is_used(w)) {
			r->used_count++;
			r->used_bytes += size;
		} else if (hs_where_is_free(w)) {
			r->free_count++;
			r->free_bytes += size;
		} else {
			r->meta_count++;
			r->meta_bytes += size;
		}
	}
	HS_CHECK(make_groups(r, false, false, &r->types, &r->ntypes));
	HS_CHECK(make_groups(r, true, true, &r->leaks, &r->nleaks));
	// Owners: sum the stacks by owner node; keep the TOP_N largest.
	uint64_t *oc = calloc(r->st.nnodes ? r->st.nnodes : 1, 2 * sizeof(uint64_t));
	if (!oc)
		return &hs_error_nomem;
	for (size_t k = 0; k < r->st.nnodes; k++) {
		oc[2 * r->st.nodes[k].owner] += r->st.nodes[k].count;
		oc[2 * r->st.nodes[k].owner + 1] += r->st.nodes[k].bytes;
	}
	for (size_t k = 0; k < r->st.nnodes; k++) {
		if (r->st.nodes[k].owner != k || !oc[2 * k])
			continue;
		struct rowner o = { (uint32_t)k, oc[2 * k], oc[2 * k + 1] };
		if (r->nowners < TOP_N) {
			r->owners[r->nowners++] = o;
		} else if (owner_cmp(&o, &r->owners[TOP_N - 1]) < 0) {
			r->owners[TOP_N - 1] = o;
		} else {
			continue;
		}
		qsort(r->owners, r->nowners, sizeof(r->owners[0]), owner_cmp);
	}
	free(oc);
	// Retainers: the TOP_N largest retained sizes (insertion into a short
	// list) at the top of the dominator tree, so that a list of 1000 nodes
	// is its head, not its first ten nodes.
	for (size_t i = 0; i < a->n; i++) {
		if (!(a->flags[i] & HS_NODE_USED) || d->idom[i] < a->n)
			continue;
		size_t pos = r->nretainers;
		while (pos > 0 && d->retained[r->retainers[pos - 1]] < d->retained[i])
			pos--;
		if (pos >= TOP_N)
			continue;
		if (r->nretainers < TOP_N)
			r->nretainers++;
		memmove(&r->retainers[pos + 1], &r->retainers[pos], (r->nretainers - 1 - pos) * sizeof(uint32_t));
		r->retainers[pos] = (uint32_t)i;
	}
	return build_containers(r, s);
}

static void report_deinit(struct report *r)
{
	hs_stacks_deinit(&r->st);
	free(r->types);
	free(r->leaks);
}

// The dominator chain of block i from its top (the cluster head for a leak),
// at most CHAIN_MAX blocks: the head, then the last ones down to i.
static size_t chain_of(const struct report *r, uint32_t i, uint32_t *out, bool *cut)
{
	const struct hs_analysis *a = r->s->analysis;
	const struct hs_dominators *d = r->s->dominators;
	uint32_t up[CHAIN_MAX];
	size_t n = 0, total = 0;
	uint32_t v = i, top = i;
	while (v < a->n && total <= a->n) {
		if (n < CHAIN_MAX - 1)
			up[n++] = v;
		top = v;
		total++;
		v = d->idom[v];
	}
	*cut = total > CHAIN_MAX;
	size_t k = 0;
	if (total > n)
		out[k++] = top;
	while (n-- > 0)
		out[k++] = up[n];
	return k;
}

static const char *signal_name(int sig)
{
	const char *d = sig > 0 ? sigabbrev_np(sig) : NULL;
	return d ? d : "?";
}

/* text */

static const char *map_kind(const struct hs_container *k, char *buf, size_t len)
{
	if (k->key_type && k->value_type)
		snprintf(buf, len, "%s<%s, %s>", k->kind_name, k->key_type, k->value_type);
	else if (k->key_type)
		snprintf(buf, len, "%s<%s>", k->kind_name, k->key_type);
	else
		snprintf(buf, len, "%s", k->kind_name);
	return buf;
}

static void text_containers(struct hs_out *o, const struct report *r)
{
	char x[32], y[32], t[512];
	hs_out_printf(o, "\nBiggest maps (%zu containers; `maps` lists them all)\n", r->maps_total);
	if (r->maps_error[0])
		hs_out_printf(o, "  not available: %s\n", r->maps_error);
	else if (!r->nmaps)
		hs_out_printf(o, "  none found\n");
	for (size_t i = 0; i < r->nmaps; i++) {
		const struct hs_container *k = r->maps[i];
		hs_out_printf(o, "  %12s retained %8" PRIu64 " entries %12s own  %s  %s\n",
			      hs_fmt_size(k->retained, x, sizeof(x)), k->count, hs_fmt_size(k->bytes, y, sizeof(y)),
			      k->anchor ? k->anchor : r->st.garbage ? "(garbage)" : "(leaked)", map_kind(k, t, sizeof(t)));
	}
	hs_out_printf(o, "\nPools (%zu; `pools` for all and the polluted objects)\n", r->pools_total);
	if (r->pools_error[0])
		hs_out_printf(o, "  not available: %s\n", r->pools_error);
	else if (!r->npools)
		hs_out_printf(o, "  none found (declare one with --pool EXPR[:LINK])\n");
	for (size_t i = 0; i < r->npools; i++) {
		const struct hs_pool *p = r->pools[i];
		char th[32] = "";
		if (p->tid)
			snprintf(th, sizeof(th), " (thread %d)", p->tid);
		hs_out_printf(o, "  %12s pooled %8" PRIu64 " objects, %" PRIu64 " polluted  %s%s%s\n",
			      hs_fmt_size(p->bytes, x, sizeof(x)), p->count, p->polluted, p->anchor, th,
			      p->broken ? "  BROKEN" : "");
	}
}

static void text_report(struct hs_cmd *c, struct report *r)
{
	struct hs_out *o = c->out;
	struct hs_session *s = r->s;
	const struct hs_analysis *a = s->analysis;
	const struct hs_dominators *d = s->dominators;
	const struct hs_notes *nt = &s->target->notes;
	char x[32], y[32], path[1024];
	struct hs_module *m = s->symbols ? hs_symbols_main_module(s->symbols) : NULL;
	hs_out_printf(o, "heapscope report: %s\n\n", s->target->path);
	hs_out_printf(o, "Process\n  pid %d, %zu thread%s, command %s\n", nt->pid, nt->nthreads, nt->nthreads == 1 ? "" : "s",
		      nt->psargs[0] ? nt->psargs : nt->fname);
	if (m)
		hs_out_printf(o, "  executable %s\n", m->path ? m->path : m->name);
	if (nt->have_siginfo)
		hs_out_printf(o, "  signal %d (SIG%s) at 0x%" PRIx64 "\n", nt->signo, signal_name(nt->signo), nt->sig_addr);
	hs_out_printf(o, "  core %s, %s\n", hs_fmt_size(s->target->file_size, x, sizeof(x)),
		      s->target->missing_bytes ? "TRUNCATED" : "complete");
	hs_out_printf(o, "\nWhere the memory went\n");
	hs_out_printf(o, "  in use     %10" PRIu64 " allocations %12s\n", r->used_count, hs_fmt_size(r->used_bytes, x, sizeof(x)));
	hs_out_printf(o, "    %-8s %10" PRIu64 " allocations %12s%s\n", r->st.garbage ? "garbage" : "leaked", a->leaked_count,
		      hs_fmt_size(a->leaked_bytes, x, sizeof(x)), r->st.garbage ? "  (awaiting GC: the next GC frees it)" : "");
	hs_out_printf(o, "  free       %10" PRIu64 " blocks      %12s\n", r->free_count, hs_fmt_size(r->free_bytes, x, sizeof(x)));
	for (size_t k = 0; k < hs_where_count(); k++) {
		unsigned w = hs_where_at(k);
		if (r->where_count[w] && hs_where_is_free(w))
			hs_out_printf(o, "    %-8s %10" PRIu64 " blocks      %12s\n", hs_where_name(w), r->where_count[w],
				      hs_fmt_size(r->where_bytes[w], x, sizeof(x)));
	}
	if (r->meta_count)
		hs_out_printf(o, "  metadata   %10" PRIu64 " blocks      %12s\n", r->meta_count, hs_fmt_size(r->meta_bytes, x, sizeof(x)));
	hs_out_printf(o, "\n  Largest types in use:\n");
	for (size_t i = 0; i < r->ntypes && i < TOP_N; i++) {
		const char *t = rtype_name(r, r->types[i].type);
		hs_out_printf(o, "  %12s %8" PRIu64 "  %s\n", hs_fmt_size(r->types[i].bytes, x, sizeof(x)), r->types[i].count,
			      t ? t : "?");
	}
	hs_out_printf(o, "\nAllocator\n");
	for (size_t d = 0; d < s->ndesc; d++) {
		const struct hs_alloc_desc *ad = &s->desc[d];
		hs_out_printf(o, "  %s %s (layout: %s)\n", ad->allocator, ad->version, ad->layout_source);
		for (size_t i = 0; i < ad->narenas; i++)
			hs_out_printf(o, "    %-16s used %12s  free %12s  system %12s\n", ad->arenas[i].label,
				      hs_fmt_size(ad->arenas[i].used_bytes, x, sizeof(x)),
				      hs_fmt_size(ad->arenas[i].free_bytes, y, sizeof(y)),
				      ad->arenas[i].system_mem ? hs_fmt_size(ad->arenas[i].system_mem, path, sizeof(path)) : "?");
	}
	hs_out_printf(o, "\nTop owners (root -> what it holds)\n");
	for (size_t i = 0; i < r->nowners; i++) {
		hs_stacks_path(&r->st, r->owners[i].node, " > ", path, sizeof(path));
		hs_out_printf(o, "  %12s %8" PRIu64 "  %s\n", hs_fmt_size(r->owners[i].bytes, x, sizeof(x)), r->owners[i].count, path);
	}
	hs_out_printf(o, "\nTop retainers (top of the dominator tree: what freeing one object would free)\n");
	for (size_t i = 0; i < r->nretainers; i++) {
		uint32_t b = r->retainers[i];
		const char *t = hs_block_type(s->types, b);
		hs_out_printf(o, "  %12s  0x%" PRIx64 " %s%s\n", hs_fmt_size(d->retained[b], x, sizeof(x)), s->heap.blocks[b].address,
			      t ? t : "?", !hs_node_leaked(a, b) ? "" : r->st.garbage ? " GARBAGE" : " LEAKED");
	}
	hs_out_printf(o, r->st.garbage ? "\nGarbage awaiting GC (unreachable: the next GC frees it, not a leak)\n" :
		      "\nLeak suspects\n");
	if (!r->nleaks)
		hs_out_printf(o, r->st.garbage ? "  none: every Go object is reachable from a root\n" :
			      "  none: every allocation is reachable from a root\n");
	for (size_t i = 0; i < r->nleaks && i < TOP_N; i++) {
		const struct rgroup *g = &r->leaks[i];
		const char *t = rtype_name(r, g->type);
		hs_out_printf(o, "  %12s %8" PRIu64 " x %" PRIu64 " bytes  %s\n", hs_fmt_size(g->bytes, x, sizeof(x)), g->count,
			      g->size, t ? t : "?");
		uint32_t ch[CHAIN_MAX];
		bool cut;
		size_t n = chain_of(r, g->example, ch, &cut);
		hs_out_puts(o, "      e.g.");
		for (size_t k = 0; k < n; k++) {
			const char *ct = hs_block_type(s->types, ch[k]);
			hs_out_printf(o, "%s 0x%" PRIx64 " (%s, %" PRIu64 " bytes)%s", k ? " ->" : "", s->heap.blocks[ch[k]].address,
				      ct ? ct : "?", hs_block_size(&s->heap.blocks[ch[k]]), k == 0 && cut ? " -> ..." : "");
		}
		hs_out_puts(o, "\n");
	}
	text_containers(o, r);
	hs_cmd_diagnostics(c);
}

/* JSON */

static void json_block(struct hs_out *o, struct hs_session *s, uint32_t b)
{
	hs_json_begin_object(o);
	hs_json_ku64(o, "address", s->heap.blocks[b].address);
	hs_json_ku64(o, "size", hs_block_size(&s->heap.blocks[b]));
	hs_json_kstr(o, "type", hs_block_type(s->types, b));
	hs_json_end_object(o);
}

static void json_report(struct hs_cmd *c, struct report *r)
{
	struct hs_out *o = c->out;
	struct hs_session *s = r->s;
	const struct hs_analysis *a = s->analysis;
	const struct hs_dominators *d = s->dominators;
	const struct hs_notes *nt = &s->target->notes;
	char path[1024];
	hs_cmd_json_begin(c, "report");
	hs_json_kstr(o, "core", s->target->path);
	hs_json_key(o, "process");
	hs_json_begin_object(o);
	hs_json_ki64(o, "pid", nt->pid);
	hs_json_ku64(o, "threads", nt->nthreads);
	hs_json_kstr(o, "command", nt->psargs[0] ? nt->psargs : nt->fname);
	hs_json_key(o, "signal");
	if (nt->have_siginfo)
		hs_json_i64(o, nt->signo);
	else
		hs_json_null(o);
	hs_json_end_object(o);
	hs_json_kcount(o, "in_use", r->used_count, r->used_bytes);
	hs_json_kcount(o, "free", r->free_count, r->free_bytes);
	hs_json_kcount(o, "metadata", r->meta_count, r->meta_bytes);
	hs_report_leak_totals(c);
	hs_json_key(o, "types");
	hs_json_begin_array(o);
	for (size_t i = 0; i < r->ntypes && i < TOP_N; i++) {
		hs_json_begin_object(o);
		hs_json_kstr(o, "type", rtype_name(r, r->types[i].type));
		hs_json_ku64(o, "count", r->types[i].count);
		hs_json_ku64(o, "bytes", r->types[i].bytes);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_json_key(o, "owners");
	hs_json_begin_array(o);
	for (size_t i = 0; i < r->nowners; i++) {
		hs_stacks_path(&r->st, r->owners[i].node, ";", path, sizeof(path));
		hs_json_begin_object(o);
		hs_json_kstr(o, "owner", path);
		hs_json_ku64(o, "count", r->owners[i].count);
		hs_json_ku64(o, "bytes", r->owners[i].bytes);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_json_key(o, "retainers");
	hs_json_begin_array(o);
	for (size_t i = 0; i < r->nretainers; i++) {
		uint32_t b = r->retainers[i];
		hs_json_begin_object(o);
		hs_json_ku64(o, "address", s->heap.blocks[b].address);
		hs_json_ku64(o, "size", hs_block_size(&s->heap.blocks[b]));
		hs_json_ku64(o, "retained", d->retained[b]);
		hs_json_kstr(o, "type", hs_block_type(s->types, b));
		hs_json_kbool(o, r->st.garbage ? "garbage" : "leaked", hs_node_leaked(a, b));
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_json_key(o, r->st.garbage ? "garbage_groups" : "leak_suspects");
	hs_json_begin_array(o);
	for (size_t i = 0; i < r->nleaks && i < TOP_N; i++) {
		const struct rgroup *g = &r->leaks[i];
		hs_json_begin_object(o);
		hs_json_kstr(o, "type", rtype_name(r, g->type));
		hs_json_ku64(o, "size", g->size);
		hs_json_ku64(o, "count", g->count);
		hs_json_ku64(o, "bytes", g->bytes);
		uint32_t ch[CHAIN_MAX];
		bool cut;
		size_t n = chain_of(r, g->example, ch, &cut);
		hs_json_kbool(o, "chain_cut", cut);
		hs_json_key(o, "chain");
		hs_json_begin_array(o);
		for (size_t k = 0; k < n; k++)
			json_block(o, s, ch[k]);
		hs_json_end_array(o);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_json_key(o, "maps");
	if (r->maps_error[0]) {
		hs_json_null(o);
	} else {
		hs_json_begin_array(o);
		for (size_t i = 0; i < r->nmaps; i++) {
			const struct hs_container *k = r->maps[i];
			hs_json_begin_object(o);
			hs_json_ku64(o, "address", k->address);
			hs_json_kstr(o, "kind", k->kind_name);
			hs_json_kstr(o, "anchor", k->anchor);
			hs_json_kstr(o, "key_type", k->key_type);
			hs_json_kstr(o, "value_type", k->value_type);
			hs_json_ku64(o, "count", k->count);
			hs_json_ku64(o, "bytes", k->bytes);
			hs_json_ku64(o, "retained", k->retained);
			hs_json_end_object(o);
		}
		hs_json_end_array(o);
	}
	hs_json_ku64(o, "maps_total", r->maps_total);
	hs_json_kstr(o, "maps_error", r->maps_error[0] ? r->maps_error : NULL);
	hs_json_key(o, "pools");
	if (r->pools_error[0]) {
		hs_json_null(o);
	} else {
		hs_json_begin_array(o);
		for (size_t i = 0; i < r->npools; i++) {
			const struct hs_pool *p = r->pools[i];
			hs_json_begin_object(o);
			hs_json_kstr(o, "anchor", p->anchor);
			hs_json_key(o, "thread");
			if (p->tid)
				hs_json_i64(o, p->tid);
			else
				hs_json_null(o);
			hs_json_ku64(o, "count", p->count);
			hs_json_ku64(o, "bytes", p->bytes);
			hs_json_ku64(o, "polluted", p->polluted);
			hs_json_ku64(o, "polluted_retained", p->polluted_retained);
			hs_json_kbool(o, "broken", p->broken);
			hs_json_end_object(o);
		}
		hs_json_end_array(o);
	}
	hs_json_ku64(o, "pools_total", r->pools_total);
	hs_json_kstr(o, "pools_error", r->pools_error[0] ? r->pools_error : NULL);
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
}

/* HTML */

static void html_text(struct hs_out *o, const char *s)
{
	if (!s)
		return;
	const char *p = s;
	for (; *p; p++) {
		const char *rep = NULL;
		switch (*p) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default:
			if ((uint8_t)*p < 0x20 || *p == 0x7f)
				rep = "?";
		}
		if (rep) {
			hs_out_write(o, s, (size_t)(p - s));
			hs_out_puts(o, rep);
			s = p + 1;
		}
	}
	hs_out_write(o, s, (size_t)(p - s));
}

static const char html_head[] =
"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n"
"<title>heapscope report: ";

static const char html_style[] =
"</title>\n<style>\n"
"body{font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",sans-serif;color:#1d2330;background:#f4f5f7;margin:0}\n"
"main{max-width:1040px;margin:0 auto;padding:24px}\n"
"h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 10px;border-bottom:2px solid #d8dce3;padding-bottom:4px}\n"
".sub{color:#5b6474;margin:0 0 18px;word-break:break-all}\n"
"section{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:14px 18px;margin:0 0 16px;break-inside:avoid}\n"
".cards{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:12px}\n"
".card{flex:1 1 150px;border:1px solid #d8dce3;border-radius:5px;padding:8px 12px}\n"
".card b{display:block;font-size:19px}.card span{color:#5b6474;font-size:12px}\n"
".leak b{color:#b3261e}\n"
"table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eceef2;vertical-align:top}\n"
"th{font-size:12px;color:#5b6474;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
"code,.mono{font-family:ui-monospace,\"DejaVu Sans Mono\",monospace;font-size:12.5px;word-break:break-all}\n"
".chain{color:#5b6474;font-size:12.5px}.tag{color:#b3261e;font-weight:600}\n"
".diag-error{color:#b3261e}.diag-warning{color:#8a5a00}\n"
"svg text{font:12px system-ui,sans-serif;fill:#1d2330}\n"
".legend span{display:inline-block;margin-right:14px;font-size:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}\n"
".hook{color:#5b6474;font-style:italic}\n"
"@media print{body{background:#fff;font-size:11px}main{max-width:none;padding:0}"
"section{border:none;border-top:1px solid #999;border-radius:0;padding:8px 0;margin:0 0 8px}"
"a{color:inherit;text-decoration:none}}\n"
"@page{margin:14mm}\n"
"</style>\n</head>\n<body>\n<main>\n";

static void html_card(struct hs_out *o, const char *cls, const char *big, const char *small)
{
	hs_out_printf(o, "<div class=\"card %s\"><b>", cls);
	html_text(o, big);
	hs_out_puts(o, "</b><span>");
	html_text(o, small);
	hs_out_puts(o, "</span></div>\n");
}

struct part { const char *label; uint64_t bytes; const char *color; };

// One horizontal bar split in parts, with a legend.
static void svg_stacked(struct hs_out *o, const struct part *p, size_t n)
{
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += p[i].bytes;
	hs_out_puts(o, "<svg role=\"img\" aria-label=\"memory by state\" viewBox=\"0 0 1000 34\" width=\"100%\" "
		       "preserveAspectRatio=\"none\" style=\"height:34px\">\n");
	double x = 0;
	for (size_t i = 0; i < n && total; i++) {
		double w = 1000.0 * (double)p[i].bytes / (double)total;
		if (w <= 0)
			continue;
		hs_out_printf(o, "<rect x=\"%.2f\" y=\"0\" width=\"%.2f\" height=\"34\" fill=\"%s\"><title>", x, w, p[i].color);
		html_text(o, p[i].label);
		hs_out_printf(o, ": %" PRIu64 " bytes</title></rect>\n", p[i].bytes);
		x += w;
	}
	hs_out_puts(o, "</svg>\n<div class=\"legend\">");
	char sz[32];
	for (size_t i = 0; i < n; i++) {
		if (!p[i].bytes)
			continue;
		hs_out_printf(o, "<span><i style=\"background:%s\"></i>", p[i].color);
		html_text(o, p[i].label);
		hs_out_printf(o, " %s</span>", hs_fmt_size(p[i].bytes, sz, sizeof(sz)));
	}
	hs_out_puts(o, "</div>\n");
}

// A bar per type in use, largest first.
static void svg_types(struct hs_out *o, struct report *r)
{
	size_t n = r->ntypes < TOP_N ? r->ntypes : TOP_N;
	if (!n)
		return;
	uint64_t max = r->types[0].bytes ? r->types[0].bytes : 1;
	unsigned rowh = 22, h = (unsigned)n * rowh + 4;
	hs_out_printf(o, "<svg role=\"img\" aria-label=\"largest types in use\" viewBox=\"0 0 1000 %u\" width=\"100%%\">\n", h);
	char sz[32];
	for (size_t i = 0; i < n; i++) {
		const char *t = rtype_name(r, r->types[i].type);
		double w = 600.0 * (double)r->types[i].bytes / (double)max;
		unsigned y = (unsigned)i * rowh + 2;
		hs_out_printf(o, "<text x=\"0\" y=\"%u\" dominant-baseline=\"middle\">", y + rowh / 2);
		char label[64];
		snprintf(label, sizeof(label), "%s", t ? t : "?");
		if (t && strlen(t) >= sizeof(label))
			memcpy(label + sizeof(label) - 4, "...", 4);
		html_text(o, label);
		hs_out_printf(o, "</text><rect x=\"300\" y=\"%u\" width=\"%.2f\" height=\"%u\" fill=\"%s\"/>"
			      "<text x=\"%.2f\" y=\"%u\" dominant-baseline=\"middle\">%s (%" PRIu64 ")</text>\n",
			      y + 3, w < 1 ? 1 : w, rowh - 6, t ? "#3b6fb6" : "#8c96a8", 306 + (w < 1 ? 1 : w), y + rowh / 2,
			      hs_fmt_size(r->types[i].bytes, sz, sizeof(sz)), r->types[i].count);
	}
	hs_out_puts(o, "</svg>\n");
}

static void html_block(struct hs_out *o, struct hs_session *s, uint32_t b)
{
	const char *t = hs_block_type(s->types, b);
	hs_out_printf(o, "<code>0x%" PRIx64 "</code> ", s->heap.blocks[b].address);
	html_text(o, t ? t : "?");
	hs_out_printf(o, " (%" PRIu64 " bytes)", hs_block_size(&s->heap.blocks[b]));
}

static void html_report(struct hs_cmd *c, struct hs_out *o, struct report *r)
{
	struct hs_session *s = r->s;
	const struct hs_analysis *a = s->analysis;
	const struct hs_notes *nt = &s->target->notes;
	char x[32], y[32], z[64], path[1024];
	struct hs_module *m = s->symbols ? hs_symbols_main_module(s->symbols) : NULL;
	hs_out_puts(o, html_head);
	html_text(o, s->target->path);
	hs_out_puts(o, html_style);
	hs_out_puts(o, "<h1>heapscope report</h1>\n<p class=\"sub\">");
	html_text(o, s->target->path);
	hs_out_printf(o, " &middot; heapscope %s</p>\n", HEAPSCOPE_VERSION);

	hs_out_puts(o, "<section id=\"process\"><h2>Process and core</h2>\n<table>\n");
	hs_out_printf(o, "<tr><th>pid</th><td>%d</td><th>threads</th><td>%zu</td></tr>\n", nt->pid, nt->nthreads);
	hs_out_puts(o, "<tr><th>command</th><td colspan=\"3\" class=\"mono\">");
	html_text(o, nt->psargs[0] ? nt->psargs : nt->fname);
	hs_out_puts(o, "</td></tr>\n<tr><th>executable</th><td colspan=\"3\" class=\"mono\">");
	html_text(o, m ? (m->path ? m->path : m->name) : "?");
	if (m && m->build_id_len) {
		hs_out_puts(o, " (build-id ");
		for (size_t i = 0; i < m->build_id_len; i++)
			hs_out_printf(o, "%02x", m->build_id[i]);
		hs_out_puts(o, ")");
	}
	hs_out_puts(o, "</td></tr>\n");
	if (nt->have_siginfo)
		hs_out_printf(o, "<tr><th>signal</th><td colspan=\"3\">%d (SIG%s) at <code>0x%" PRIx64 "</code></td></tr>\n",
			      nt->signo, signal_name(nt->signo), nt->sig_addr);
	hs_out_printf(o, "<tr><th>core</th><td colspan=\"3\">%s (%" PRIu64 " bytes)%s</td></tr>\n</table>\n</section>\n",
		      hs_fmt_size(s->target->file_size, x, sizeof(x)), s->target->file_size,
		      s->target->missing_bytes ? " <span class=\"tag\">TRUNCATED</span>" : "");

	hs_out_puts(o, "<section id=\"memory\"><h2>Where the memory went</h2>\n<div class=\"cards\">\n");
	snprintf(z, sizeof(z), "%" PRIu64 " allocations", r->used_count);
	html_card(o, "", hs_fmt_size(r->used_bytes, x, sizeof(x)), "in use");
	html_card(o, "", z, "live allocations");
	snprintf(z, sizeof(z), "%" PRIu64 " %s", a->leaked_count, r->st.garbage ? "objects of garbage awaiting GC" : "allocations");
	html_card(o, r->st.garbage ? "" : "leak", hs_fmt_size(a->leaked_bytes, x, sizeof(x)), z);
	html_card(o, "", hs_fmt_size(r->free_bytes, y, sizeof(y)), "free in the allocator");
	hs_out_puts(o, "</div>\n");
	static const char *const free_colors[] = { "#8fbf6a", "#b8d68f", "#f0c36d", "#e8a25b", "#d98c5f", "#c9d1dc",
						    "#a3c4a0", "#dfe7b8", "#cfb6e0", "#e06b6b" };
	struct part parts[4 + HS_WHERE_MAX];
	size_t np = 0, nfree = 0;
	parts[np++] = (struct part){ r->st.garbage ? "reachable" : "anchored", r->used_bytes - a->leaked_bytes, "#3b6fb6" };
	parts[np++] = r->st.garbage ? (struct part){ "garbage awaiting GC", a->leaked_bytes, "#c9a227" } :
			      (struct part){ "leaked", a->leaked_bytes, "#b3261e" };
	for (size_t k = 0; k < hs_where_count(); k++) {
		unsigned w = hs_where_at(k);
		if (!hs_where_is_free(w))
			continue;
		parts[np++] = (struct part){ hs_where_name(w), r->where_bytes[w],
					     free_colors[nfree++ % (sizeof(free_colors) / sizeof(free_colors[0]))] };
	}
	parts[np++] = (struct part){ "allocator metadata", r->meta_bytes, "#6d7686" };
	svg_stacked(o, parts, np);
	hs_out_puts(o, "<h3>Largest types in use</h3>\n");
	svg_types(o, r);
	hs_out_puts(o, "</section>\n");

	hs_out_puts(o, "<section id=\"allocator\"><h2>Allocator</h2>\n");
	for (size_t d = 0; d < s->ndesc; d++) {
		const struct hs_alloc_desc *ad = &s->desc[d];
		hs_out_puts(o, "<p><b>");
		html_text(o, ad->allocator);
		hs_out_puts(o, " ");
		html_text(o, ad->version);
		hs_out_puts(o, "</b> &middot; layout: ");
		html_text(o, ad->layout_source);
		hs_out_puts(o, "</p>\n<table><tr><th>arena</th><th>used</th><th>free</th><th>from the system</th></tr>\n");
		for (size_t i = 0; i < ad->narenas; i++) {
			hs_out_puts(o, "<tr><td>");
			html_text(o, ad->arenas[i].label);
			hs_out_printf(o, "</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td></tr>\n",
				      hs_fmt_size(ad->arenas[i].used_bytes, x, sizeof(x)),
				      hs_fmt_size(ad->arenas[i].free_bytes, y, sizeof(y)),
				      ad->arenas[i].system_mem ? hs_fmt_size(ad->arenas[i].system_mem, z, sizeof(z)) : "?");
		}
		hs_out_puts(o, "</table>\n");
	}
	hs_out_puts(o, "</section>\n");

	hs_out_puts(o, "<section id=\"owners\"><h2>Top owners</h2>\n<table><tr><th>held</th><th>allocations</th><th>root &rarr; owner</th></tr>\n");
	for (size_t i = 0; i < r->nowners; i++) {
		hs_stacks_path(&r->st, r->owners[i].node, " \x01 ", path, sizeof(path));
		hs_out_printf(o, "<tr><td class=\"n\">%s</td><td class=\"n\">%" PRIu64 "</td><td class=\"mono\">",
			      hs_fmt_size(r->owners[i].bytes, x, sizeof(x)), r->owners[i].count);
		// \x01 marks the separators (html_text turns control bytes into '?').
		for (char *p = path, *q; p; p = q) {
			q = strchr(p, '\x01');
			if (q)
				*q++ = 0;
			html_text(o, p);
			if (q)
				hs_out_puts(o, "&rarr;");
		}
		hs_out_puts(o, "</td></tr>\n");
	}
	hs_out_puts(o, "</table>\n<h3>Top retainers</h3>\n<table><tr><th>retained</th><th>size</th><th>object</th></tr>\n");
	for (size_t i = 0; i < r->nretainers; i++) {
		uint32_t b = r->retainers[i];
		hs_out_printf(o, "<tr><td class=\"n\">%s</td><td class=\"n\">%" PRIu64 "</td><td>", hs_fmt_size(s->dominators->retained[b], x, sizeof(x)),
			      hs_block_size(&s->heap.blocks[b]));
		html_block(o, s, b);
		hs_out_printf(o, "%s</td></tr>\n", !hs_node_leaked(a, b) ? "" : r->st.garbage ? " <span class=\"tag\">garbage</span>" :
			      " <span class=\"tag\">leaked</span>");
	}
	hs_out_puts(o, "</table>\n</section>\n");

	hs_out_puts(o, r->st.garbage ? "<section id=\"leaks\"><h2>Garbage awaiting GC</h2>\n<p>Unreachable Go objects: the "
		    "next GC frees them; they are not leaks.</p>\n" : "<section id=\"leaks\"><h2>Leak suspects</h2>\n");
	if (!r->nleaks)
		hs_out_puts(o, r->st.garbage ? "<p>None: every Go object is reachable from a root.</p>\n" :
			    "<p>None: every allocation is reachable from a root.</p>\n");
	else
		hs_out_puts(o, "<table><tr><th>bytes</th><th>count</th><th>size</th><th>type, and an example chain from its cluster head</th></tr>\n");
	for (size_t i = 0; i < r->nleaks && i < TOP_N; i++) {
		const struct rgroup *g = &r->leaks[i];
		const char *t = rtype_name(r, g->type);
		hs_out_printf(o, "<tr><td class=\"n\">%s</td><td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64 "</td><td>",
			      hs_fmt_size(g->bytes, x, sizeof(x)), g->count, g->size);
		html_text(o, t ? t : "?");
		uint32_t ch[CHAIN_MAX];
		bool cut;
		size_t n = chain_of(r, g->example, ch, &cut);
		hs_out_puts(o, "<div class=\"chain\">");
		for (size_t k = 0; k < n; k++) {
			if (k)
				hs_out_puts(o, " &rarr; ");
			html_block(o, s, ch[k]);
			if (k == 0 && cut)
				hs_out_puts(o, " &rarr; &hellip;");
		}
		hs_out_puts(o, "</div></td></tr>\n");
	}
	if (r->nleaks)
		hs_out_puts(o, "</table>\n");
	hs_out_puts(o, "</section>\n");

	hs_out_printf(o, "<section id=\"maps\"><h2>Biggest maps and pools</h2>\n<p>%zu containers, %zu pools "
		      "(<code>maps</code> and <code>pools</code> list them all).</p>\n", r->maps_total, r->pools_total);
	if (r->maps_error[0]) {
		hs_out_puts(o, "<p>Maps not available: ");
		html_text(o, r->maps_error);
		hs_out_puts(o, "</p>\n");
	} else if (r->nmaps) {
		hs_out_puts(o, "<table><tr><th>retained</th><th>entries</th><th>own bytes</th><th>anchor</th><th>kind</th></tr>\n");
		for (size_t i = 0; i < r->nmaps; i++) {
			const struct hs_container *k = r->maps[i];
			char t[512];
			hs_out_printf(o, "<tr><td class=\"n\">%s</td><td class=\"n\">%" PRIu64 "</td><td class=\"n\">%s</td><td class=\"mono\">",
				      hs_fmt_size(k->retained, x, sizeof(x)), k->count, hs_fmt_size(k->bytes, y, sizeof(y)));
			html_text(o, k->anchor ? k->anchor : r->st.garbage ? "(garbage)" : "(leaked)");
			hs_out_puts(o, "</td><td class=\"mono\">");
			html_text(o, map_kind(k, t, sizeof(t)));
			hs_out_puts(o, "</td></tr>\n");
		}
		hs_out_puts(o, "</table>\n");
	}
	if (r->pools_error[0]) {
		hs_out_puts(o, "<p>Pools not available: ");
		html_text(o, r->pools_error);
		hs_out_puts(o, "</p>\n");
	} else if (r->npools) {
		hs_out_puts(o, "<table><tr><th>pooled</th><th>objects</th><th>polluted</th><th>pool</th></tr>\n");
		for (size_t i = 0; i < r->npools; i++) {
			const struct hs_pool *p = r->pools[i];
			hs_out_printf(o, "<tr><td class=\"n\">%s</td><td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64 "</td><td class=\"mono\">",
				      hs_fmt_size(p->bytes, x, sizeof(x)), p->count, p->polluted);
			html_text(o, p->anchor);
			if (p->tid)
				hs_out_printf(o, " (thread %d)", p->tid);
			hs_out_printf(o, "%s</td></tr>\n", p->broken ? " <span class=\"tag\">broken</span>" : "");
		}
		hs_out_puts(o, "</table>\n");
	}
	hs_out_puts(o, "</section>\n");

	const struct hs_diags *d = &s->diags;
	hs_out_puts(o, "<section id=\"diagnostics\"><h2>Diagnostics</h2>\n");
	size_t shown = 0;
	for (size_t i = 0; i < d->n; i++) {
		const struct hs_diag *g = &d->items[i];
		if (g->level == HS_DIAG_INFO)
			continue;
		if (!shown++)
			hs_out_puts(o, "<ul>\n");
		hs_out_printf(o, "<li class=\"diag-%s\"><b>%s</b> ", g->level == HS_DIAG_ERROR ? "error" : "warning",
			      g->level == HS_DIAG_ERROR ? "error" : "warning");
		html_text(o, g->stage);
		if (g->address)
			hs_out_printf(o, " <code>0x%" PRIx64 "</code>", g->address);
		hs_out_puts(o, ": ");
		html_text(o, g->message);
		hs_out_puts(o, "</li>\n");
	}
	if (shown)
		hs_out_printf(o, "</ul>\n%s", d->dropped ? "<p>... and more (see --json)</p>\n" : "");
	else
		hs_out_puts(o, "<p>No warnings: the heap was walked without findings.</p>\n");
	hs_out_puts(o, "</section>\n</main>\n</body>\n</html>\n");
	(void)c;
}

struct hs_error *hs_cmd_report(struct hs_cmd *c)
{
	struct hs_report_opts opt = { 0 };
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	bool html = opt.html;
	const char *file = opt.file;
	if (c->json && html && !file)
		return hs_error_create(HS_ERR_USAGE, "report --html --json needs -o FILE (stdout gets the JSON summary)");
	struct report r;
	struct hs_error *err = build(&r, c->s);
	if (err) {
		report_deinit(&r);
		return err;
	}
	struct hs_outfile f;
	struct hs_cmd fc = *c;
	if (file) {
		if ((err = hs_outfile_open(&f, file))) {
			report_deinit(&r);
			return err;
		}
		fc.out = &f.out;
		if (c->json)
			fc.out->indent = 2;
	}
	if (html) {
		fc.json = false;
		html_report(&fc, fc.out, &r);
		// The page has its own diagnostics section: nothing after </html>.
		c->diagnostics_done = true;
	}
	else if (c->json)
		json_report(&fc, &r);
	else
		text_report(&fc, &r);
	// The copy said the diagnostics (into the file, or to stdout): once.
	if (fc.diagnostics_done && !file)
		c->diagnostics_done = true;
	if (file) {
		err = hs_outfile_commit(&f);
		if (!err && c->json) {
			hs_cmd_json_begin(c, "report");
			hs_json_kstr(c->out, "file", file);
			hs_json_kstr(c->out, "format", html ? "html" : "json");
			hs_json_end_object(c->out);
			hs_json_done(c->out);
		} else if (!err) {
			hs_out_printf(c->out, "wrote %s\n", file);
		}
	}
	report_deinit(&r);
	return err;
}
