/* report_diff.c - `diff OLD`: what grew between an older core of the same
 * program and this one.  The old core is opened as a second session with the
 * options of this one (the public hs_session_open_core), analysed the same
 * way (on a thread of its own, while this one is analysed), and destroyed
 * before the command returns.
 *
 * Deltas are new minus old: per (type name, size) of the used allocations,
 * per owner (the root frames of export.h: "globals;g_items", "thread N;fn",
 * "[leaked]"), per map (containers by anchor: entries and retained bytes),
 * for the leaked set and for the whole heap.  Two Go cores say garbage
 * (awaiting GC) for leaked: "[garbage]", "(garbage) map".  Types are compared
 * by name (type ids are per session).  Different build-ids of the executables
 * are refused (the types and owners would not mean the same); --force turns
 * that into a warning.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "containers.h"
#include "export.h"
#include "graph.h"
#include "types.h"

struct delta {
	char *key;                  /* type name (NULL: unknown) or owner path */
	uint64_t size;              /* 0 for owners */
	int64_t count, bytes;
};

struct deltas {
	struct delta *v;
	size_t n, cap;
	bool nomem;
};

static void deltas_add(struct deltas *d, const char *key, uint64_t size, int64_t count, int64_t bytes)
{
	if (d->nomem)
		return;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct delta *g = realloc(d->v, cap * sizeof(*g));
		if (!g) {
			d->nomem = true;
			return;
		}
		d->v = g;
		d->cap = cap;
	}
	char *copy = key ? strdup(key) : NULL;
	if (key && !copy) {
		d->nomem = true;
		return;
	}
	d->v[d->n++] = (struct delta){ copy, size, count, bytes };
}

static void deltas_deinit(struct deltas *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].key);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static int key_cmp(const struct delta *a, const struct delta *b)
{
	if (!a->key != !b->key)
		return a->key ? 1 : -1;   // unknown first
	int c = a->key ? strcmp(a->key, b->key) : 0;
	if (c)
		return c;
	return (a->size > b->size) - (a->size < b->size);
}

static int delta_key_cmp(const void *x, const void *y) { return key_cmp(x, y); }

static int delta_growth_cmp(const void *x, const void *y)
{
	const struct delta *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes > b->bytes ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return key_cmp(a, b);
}

// Fold equal keys, drop what did not change, sort by growth.
static void deltas_finish(struct deltas *d)
{
	if (!d->n)
		return;   // (qsort must not be given a NULL array, even of none)
	qsort(d->v, d->n, sizeof(*d->v), delta_key_cmp);
	size_t out = 0;
	for (size_t i = 0; i < d->n; i++) {
		if (out && !key_cmp(&d->v[out - 1], &d->v[i])) {
			d->v[out - 1].count += d->v[i].count;
			d->v[out - 1].bytes += d->v[i].bytes;
			free(d->v[i].key);
		} else {
			d->v[out++] = d->v[i];
		}
	}
	size_t kept = 0;
	for (size_t i = 0; i < out; i++) {
		if (d->v[i].count || d->v[i].bytes)
			d->v[kept++] = d->v[i];
		else
			free(d->v[i].key);
	}
	d->n = kept;
	qsort(d->v, d->n, sizeof(*d->v), delta_growth_cmp);
}

struct side {
	uint64_t count, bytes, leaked_count, leaked_bytes;
	bool garbage;               /* a Go heap: the leaked_ counts are garbage's */
};

/* Counts per 64-bit key: open addressing, linear probing, doubling at half
 * full (deltas_finish sorts what it yields). */
struct fold {
	uint64_t *keys, *counts;    /* counts[i] == 0: an empty slot */
	size_t cap, n;
	bool nomem;
};

static size_t fold_slot(const struct fold *f, uint64_t key)
{
	size_t i = (size_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 20) & (f->cap - 1);
	while (f->counts[i] && f->keys[i] != key)
		i = (i + 1) & (f->cap - 1);
	return i;
}

static void fold_add(struct fold *f, uint64_t key)
{
	if (2 * (f->n + 1) > f->cap) {
		struct fold g = { .cap = f->cap ? 2 * f->cap : 1024, .n = f->n };
		g.keys = malloc(g.cap * sizeof(uint64_t));
		g.counts = calloc(g.cap, sizeof(uint64_t));
		if (!g.keys || !g.counts) {
			free(g.keys);
			free(g.counts);
			f->nomem = true;
			return;
		}
		for (size_t i = 0; i < f->cap; i++) {
			if (!f->counts[i])
				continue;
			size_t j = fold_slot(&g, f->keys[i]);
			g.keys[j] = f->keys[i];
			g.counts[j] = f->counts[i];
		}
		free(f->keys);
		free(f->counts);
		*f = g;
	}
	size_t i = fold_slot(f, key);
	if (!f->counts[i]) {
		f->keys[i] = key;
		f->n++;
	}
	f->counts[i]++;
}

// One core's maps: entries and retained bytes per anchor ("g_sessions");
// containers nothing anchors are summed per kind ("(leaked) uthash").  A
// container analysis that fails is a warning: the rest of the diff stands.
static struct hs_error *collect_maps(struct hs_session *s, int sign, struct deltas *maps)
{
	struct hs_error *err = hs_session_need_container_retained(s);
	if (err) {
		if (err->code == HS_ERR_INTERRUPTED || err == &hs_error_nomem)
			return err;
		hs_diag_add(&s->diags, HS_DIAG_WARNING, "diff", 0, "maps not compared: %s", err->message);
		hs_error_destroy(err);
		return NULL;
	}
	const struct hs_containers *cs = s->containers;
	char key[512];
	for (size_t i = 0; i < cs->n; i++) {
		const struct hs_container *k = &cs->v[i];
		if (k->anchor)
			snprintf(key, sizeof(key), "%s", k->anchor);
		else
			snprintf(key, sizeof(key), "(%s) %s", s->go_rt ? "garbage" : "leaked", k->kind_name);
		deltas_add(maps, key, 0, sign * (int64_t)k->count, sign * (int64_t)k->retained);
	}
	return maps->nomem ? &hs_error_nomem : NULL;
}

// One core's groups, owners and maps, added with sign (+1 new, -1 old).
static struct hs_error *collect(struct hs_session *s, int sign, struct deltas *groups, struct deltas *owners,
				struct deltas *maps, struct side *side)
{
	struct hs_stacks st;
	HS_CHECK(hs_session_need_types(s));
	HS_CHECK(hs_stacks_build_owners(s, &st));
	const struct hs_analysis *a = s->analysis;
	side->count = st.count;
	side->bytes = st.bytes;
	side->leaked_count = st.leaked_count;
	side->leaked_bytes = st.leaked_bytes;
	side->garbage = st.garbage;
	// (type, size) of every used allocation, counted in a hash table (a
	// million allocations are a few thousand keys: no sort of them all).
	struct fold f = { 0 };
	bool wide = false;
	const uint32_t *type = hs_types_ids(s->types);
	for (size_t i = 0; i < a->n && !f.nomem; i++) {
		if (!(a->flags[i] & HS_NODE_USED))
			continue;
		uint64_t t = type ? type[i] : 0, size = hs_block_size(&s->heap.blocks[i]);
		wide |= t >= (UINT64_C(1) << 24);
		fold_add(&f, t << 40 | size);
	}
	if (wide || f.nomem) {
		hs_stacks_deinit(&st);
		free(f.keys);
		free(f.counts);
		return f.nomem ? &hs_error_nomem : hs_error_create(HS_ERR_OTHER, "diff: more than 16 M distinct types");
	}
	for (size_t i = 0; i < f.cap; i++) {
		if (!f.counts[i])
			continue;
		uint32_t t = (uint32_t)(f.keys[i] >> 40);
		uint64_t size = f.keys[i] & HS_BLOCK_SIZE_MAX, n = f.counts[i];
		const char *name = hs_types_name(s->types, t);
		deltas_add(groups, name, size, sign * (int64_t)n, sign * (int64_t)(n * size));
	}
	free(f.keys);
	free(f.counts);
	// Owners: the stacks' owner nodes, each summing the nodes under it.
	uint64_t *oc = calloc(st.nnodes ? st.nnodes : 1, 2 * sizeof(uint64_t));
	if (!oc) {
		hs_stacks_deinit(&st);
		return &hs_error_nomem;
	}
	for (size_t m = 0; m < st.nnodes; m++) {
		oc[2 * st.nodes[m].owner] += st.nodes[m].count;
		oc[2 * st.nodes[m].owner + 1] += st.nodes[m].bytes;
	}
	char path[1024];
	for (size_t n = 0; n < st.nnodes; n++) {
		if (st.nodes[n].owner != n || !oc[2 * n])
			continue;
		hs_stacks_path(&st, (uint32_t)n, ";", path, sizeof(path));
		deltas_add(owners, path, 0, sign * (int64_t)oc[2 * n], sign * (int64_t)oc[2 * n + 1]);
	}
	free(oc);
	hs_stacks_deinit(&st);
	if (groups->nomem || owners->nomem)
		return &hs_error_nomem;
	return collect_maps(s, sign, maps);
}

struct old_job {
	struct hs_session *s;
	struct side *side;
	struct deltas groups, owners, maps;
	struct hs_error *err;
};

static void *old_main(void *arg)
{
	struct old_job *job = arg;
	job->err = collect(job->s, -1, &job->groups, &job->owners, &job->maps, job->side);
	return NULL;
}

static bool main_build_id(struct hs_session *s, char *buf, size_t len)
{
	struct hs_error *err = hs_session_need_symbols(s);
	hs_error_destroy(err);
	struct hs_module *m = s->symbols ? hs_symbols_main_module(s->symbols) : NULL;
	if (m && !m->build_id_len && m->go_build_id[0]) {
		snprintf(buf, len, "%s", m->go_build_id);   // Go's own, before go1.24
		return true;
	}
	if (!m || !m->build_id_len)
		return false;
	size_t w = 0;
	for (size_t i = 0; i < m->build_id_len && w + 3 <= len; i++)
		w += (size_t)snprintf(buf + w, len - w, "%02x", m->build_id[i]);
	return true;
}

// The options this session was opened with, for the old core.
static struct hs_error *open_like(struct hs_session *s, const char *path, struct hs_session **ret)
{
	char overrides[2048] = "";
	size_t w = 0;
	for (size_t i = 0; i < s->noverrides && w < sizeof(overrides); i++)
		w += (size_t)snprintf(overrides + w, sizeof(overrides) - w, "%s%s=0x%" PRIx64, i ? "," : "",
				      s->overrides[i].name, s->overrides[i].value);
	if (w >= sizeof(overrides))
		return hs_error_create(HS_ERR_USAGE, "diff: too many overrides");
	struct hs_options o = {
		.exe = s->exe, .sysroot = s->sysroot, .debug_dirs = (const char *const *)s->debug_dirs,
		.no_debuginfo = s->sym_opts.no_debuginfo, .allocator = s->allocator, .jobs = s->jobs,
		.exact_pointers = s->exact_pointers, .overrides = s->noverrides ? overrides : NULL,
	};
	struct hs_error *err = hs_session_open_core(path, &o, ret);
	if (err) {
		// (The older core is a target too: status 3 when it cannot be read.)
		if (!err->is_static)
			err->at_open = true;
		return err;
	}
	hs_session_set_progress(*ret, s->progress_fn, s->progress_ctx);
	return NULL;
}

/* What diff shows, for its two renderers: the two cores, their totals, and
 * the changes by type and size, by owner and by map, largest first. */
struct diff_model {
	const char *new_path, *old_path;
	char id_new[140], id_old[140];
	bool have_new, have_old;
	struct side sn, so;
	struct deltas groups, owners, maps;
	uint64_t limit;
};

static void diff_model_free(struct diff_model *m)
{
	deltas_deinit(&m->groups);
	deltas_deinit(&m->owners);
	deltas_deinit(&m->maps);
}

// Both cores analysed at the same time: the old one on a thread of its own
// (sessions share no state; libdw handles are per session).
static struct hs_error *diff_model(struct hs_session *s, const char *old_path, bool force, uint64_t limit,
				   struct diff_model *m)
{
	*m = (struct diff_model){ .new_path = s->target->path, .old_path = old_path, .limit = limit };
	struct hs_session *old = NULL;
	HS_CHECK(open_like(s, old_path, &old));
	m->have_new = main_build_id(s, m->id_new, sizeof(m->id_new));
	m->have_old = main_build_id(old, m->id_old, sizeof(m->id_old));
	if (m->have_new && m->have_old && strcmp(m->id_new, m->id_old)) {
		if (!force) {
			hs_session_destroy(old);
			return hs_error_create(HS_ERR_USAGE,
					       "diff: %s and %s are cores of different programs (executable build-ids %s and %s); "
					       "--force compares them anyway", s->target->path, old_path, m->id_new, m->id_old);
		}
		hs_diag_add(&s->diags, HS_DIAG_WARNING, "diff", 0,
			    "DIFFERENT PROGRAMS: executable build-ids %s (new) and %s (old) differ; types and owners may not correspond",
			    m->id_new, m->id_old);
	} else if (!m->have_new || !m->have_old) {
		hs_diag_add(&s->diags, HS_DIAG_WARNING, "diff", 0,
			    "the executable's build-id is unknown in %s: cannot check both cores are of the same program",
			    !m->have_new ? s->target->path : old_path);
	}
	struct old_job job = { .s = old, .side = &m->so };
	hs_session_set_progress(old, NULL, NULL);   // one progress line: the new core's
	pthread_t thread;
	bool threaded = pthread_create(&thread, NULL, old_main, &job) == 0;
	struct hs_error *err = collect(s, 1, &m->groups, &m->owners, &m->maps, &m->sn);
	if (threaded)
		pthread_join(thread, NULL);
	else
		old_main(&job);
	if (!err && job.err)
		err = job.err;
	else
		hs_error_destroy(job.err);
	for (size_t i = 0; !err && i < job.groups.n; i++)
		deltas_add(&m->groups, job.groups.v[i].key, job.groups.v[i].size, job.groups.v[i].count,
			   job.groups.v[i].bytes);
	for (size_t i = 0; !err && i < job.owners.n; i++)
		deltas_add(&m->owners, job.owners.v[i].key, 0, job.owners.v[i].count, job.owners.v[i].bytes);
	for (size_t i = 0; !err && i < job.maps.n; i++)
		deltas_add(&m->maps, job.maps.v[i].key, 0, job.maps.v[i].count, job.maps.v[i].bytes);
	deltas_deinit(&job.groups);
	deltas_deinit(&job.owners);
	deltas_deinit(&job.maps);
	if (!err && (m->groups.nomem || m->owners.nomem || m->maps.nomem))
		err = &hs_error_nomem;
	if (!err) {
		// The old core's own findings, said once here.
		for (size_t i = 0; i < old->diags.n; i++)
			if (old->diags.items[i].level != HS_DIAG_INFO)
				hs_diag_add(&s->diags, old->diags.items[i].level, "old core", old->diags.items[i].address, "%s",
					    old->diags.items[i].message);
	}
	hs_session_destroy(old);
	if (err) {
		diff_model_free(m);
		return err;
	}
	deltas_finish(&m->groups);
	deltas_finish(&m->owners);
	deltas_finish(&m->maps);
	return NULL;
}

enum delta_kind { BY_TYPE, BY_OWNER, BY_MAP };

static void json_deltas(struct hs_cmd *c, const char *key, const struct deltas *d, enum delta_kind kind,
			uint64_t limit)
{
	struct hs_out *o = c->out;
	hs_json_key(o, key);
	hs_json_begin_array(o);
	for (size_t i = 0; i < d->n && i < limit; i++) {
		hs_json_begin_object(o);
		hs_json_kstr(o, kind == BY_TYPE ? "type" : kind == BY_OWNER ? "owner" : "map", d->v[i].key);
		if (kind == BY_TYPE)
			hs_json_ku64(o, "size", d->v[i].size);
		hs_json_ki64(o, "count_delta", d->v[i].count);
		hs_json_ki64(o, "bytes_delta", d->v[i].bytes);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_cmd_limited(c, key, limit, d->n, "rows");
}

static void text_deltas(struct hs_cmd *c, const char *key, const struct deltas *d, enum delta_kind kind,
			uint64_t limit)
{
	struct hs_out *o = c->out;
	bool groups = kind == BY_TYPE;
	if (groups)
		hs_out_printf(o, "\nBy type and size (largest growth first):\n  %12s %10s %14s  %s\n", "COUNT", "SIZE",
			      "BYTES", "TYPE");
	else if (kind == BY_OWNER)
		hs_out_printf(o, "\nBy owner (root -> what it holds):\n  %12s %14s  %s\n", "COUNT", "BYTES", "OWNER");
	else
		hs_out_printf(o, "\nBy map (entries, retained bytes):\n  %12s %14s  %s\n", "ENTRIES", "RETAINED", "MAP");
	for (size_t i = 0; i < d->n && i < limit && !o->stopped; i++) {
		if (groups)
			hs_out_printf(o, "  %+12" PRId64 " %10" PRIu64 " %+14" PRId64 "  %s\n", d->v[i].count, d->v[i].size,
				      d->v[i].bytes, d->v[i].key ? d->v[i].key : "?");
		else
			hs_out_printf(o, "  %+12" PRId64 " %+14" PRId64 "  %s\n", d->v[i].count, d->v[i].bytes, d->v[i].key);
	}
	if (!d->n)
		hs_out_puts(o, "  (no change)\n");
	else
		hs_cmd_limited(c, key, limit, d->n, "rows");
}

static void json_delta(struct hs_out *o, const char *key, int64_t count, int64_t bytes)
{
	hs_json_key(o, key);
	hs_json_begin_object(o);
	hs_json_ki64(o, "count_delta", count);
	hs_json_ki64(o, "bytes_delta", bytes);
	hs_json_end_object(o);
}

static void diff_json(struct hs_cmd *c, const struct diff_model *m)
{
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "diff");
	hs_json_kstr(o, "new", m->new_path);
	hs_json_kstr(o, "old", m->old_path);
	hs_json_kstr(o, "new_build_id", m->have_new ? m->id_new : NULL);
	hs_json_kstr(o, "old_build_id", m->have_old ? m->id_old : NULL);
	json_delta(o, "in_use", (int64_t)m->sn.count - (int64_t)m->so.count, (int64_t)m->sn.bytes - (int64_t)m->so.bytes);
	json_delta(o, m->sn.garbage && m->so.garbage ? "garbage" : "leaked", (int64_t)m->sn.leaked_count - (int64_t)m->so.leaked_count,
		   (int64_t)m->sn.leaked_bytes - (int64_t)m->so.leaked_bytes);
	hs_json_kcount(o, "new_in_use", m->sn.count, m->sn.bytes);
	hs_json_kcount(o, "old_in_use", m->so.count, m->so.bytes);
	json_deltas(c, "groups", &m->groups, BY_TYPE, m->limit);
	json_deltas(c, "owners", &m->owners, BY_OWNER, m->limit);
	json_deltas(c, "maps", &m->maps, BY_MAP, m->limit);
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
}

static void diff_text(struct hs_cmd *c, const struct diff_model *m)
{
	struct hs_out *o = c->out;
	char x[32], y[32];
	hs_out_printf(o, "%s (new) against %s (old):\n", m->new_path, m->old_path);
	hs_out_printf(o, "  in use  %+" PRId64 " allocations, %+" PRId64 " bytes (%s -> %s)\n",
		      (int64_t)m->sn.count - (int64_t)m->so.count, (int64_t)m->sn.bytes - (int64_t)m->so.bytes,
		      hs_fmt_size(m->so.bytes, x, sizeof(x)), hs_fmt_size(m->sn.bytes, y, sizeof(y)));
	hs_out_printf(o, "  %s  %+" PRId64 " allocations, %+" PRId64 " bytes (%s -> %s)\n",
		      m->sn.garbage && m->so.garbage ? "garbage awaiting GC" : "leaked",
		      (int64_t)m->sn.leaked_count - (int64_t)m->so.leaked_count,
		      (int64_t)m->sn.leaked_bytes - (int64_t)m->so.leaked_bytes,
		      hs_fmt_size(m->so.leaked_bytes, x, sizeof(x)), hs_fmt_size(m->sn.leaked_bytes, y, sizeof(y)));
	text_deltas(c, "groups", &m->groups, BY_TYPE, m->limit);
	text_deltas(c, "owners", &m->owners, BY_OWNER, m->limit);
	text_deltas(c, "maps", &m->maps, BY_MAP, m->limit);
	hs_cmd_diagnostics(c);
}

struct hs_error *hs_cmd_diff(struct hs_cmd *c)
{
	struct hs_diff_opts opt = { .limit = UINT64_MAX };
	const char *pos[1];
	size_t npos;
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), pos, 1, &npos));
	bool force = opt.force;
	uint64_t limit = opt.limit;
	if (npos != 1)
		return hs_error_create(HS_ERR_USAGE, "diff needs the older core: heapscope NEW-CORE diff OLD-CORE");
	if (limit == UINT64_MAX && !c->json)
		limit = 20;
	struct diff_model m;
	HS_CHECK(diff_model(c->s, pos[0], force, limit, &m));
	if (c->json)
		diff_json(c, &m);
	else
		diff_text(c, &m);
	diff_model_free(&m);
	return NULL;
}
