/* report_goroutines.c - the goroutines command: every goroutine of a Go core
 * or process, grouped like pprof's goroutine profile by (state or wait
 * reason, blocking function, stack), and the goroutines blocked for good
 * as findings ("64 goroutines blocked in main.waitForever on chan receive
 * on channel 0x... (chan *main.Job)").
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "go_goroutines.h"

#define MAX_GROUP_CHANS 8      /* channels named per group; the rest counted */

struct gchan { uint64_t chan; const char *elem; uint64_t count; };

struct group {
	const struct hs_go_goroutine *first;   /* its sample stack */
	size_t count, nsystem;
	size_t *members;                        /* indexes in the list */
	struct gchan chans[MAX_GROUP_CHANS];
	size_t nchans, more_chans;
};

static const char *state_of(const struct hs_go_goroutine *g)
{
	return g->wait_reason ? g->wait_reason : g->status_name;
}

static const char *blocking_of(const struct hs_go_goroutine *g)
{
	return g->blocking < g->nframes ? g->funcs[g->blocking] : NULL;
}

static int str_cmp(const char *a, const char *b)
{
	return a == b ? 0 : !a ? -1 : !b ? 1 : strcmp(a, b);
}

// Same group: same state, same blocking function, same stack (by function).
static int key_cmp(const struct hs_go_goroutine *a, const struct hs_go_goroutine *b)
{
	int d = str_cmp(state_of(a), state_of(b));
	if (!d)
		d = str_cmp(blocking_of(a), blocking_of(b));
	if (!d)
		d = (a->nframes > b->nframes) - (a->nframes < b->nframes);
	for (size_t i = 0; !d && i < a->nframes; i++)
		d = str_cmp(a->funcs[i], b->funcs[i]);
	if (!d)
		d = (a->system > b->system) - (a->system < b->system);
	return d;
}

static const struct hs_go_goroutines *sort_list;

static int idx_cmp(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	int d = key_cmp(&sort_list->g[a], &sort_list->g[b]);
	return d ? d : (a > b) - (a < b);
}

static int group_cmp(const void *x, const void *y)
{
	const struct group *a = x, *b = y;
	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	return key_cmp(a->first, b->first);
}

static void add_chan(struct group *gr, const struct hs_go_wait *w)
{
	for (size_t i = 0; i < gr->nchans; i++)
		if (gr->chans[i].chan == w->chan) {
			gr->chans[i].count++;
			return;
		}
	if (gr->nchans == MAX_GROUP_CHANS) {
		gr->more_chans++;
		return;
	}
	gr->chans[gr->nchans++] = (struct gchan){ w->chan, w->elem_type, 1 };
}

static struct hs_error *make_groups(const struct hs_go_goroutines *l, struct group **ret, size_t *nret,
				    size_t **order_ret)
{
	size_t *order = malloc((l->n ? l->n : 1) * sizeof(*order));
	struct group *groups = calloc(l->n ? l->n : 1, sizeof(*groups));
	if (!order || !groups) {
		free(order);
		free(groups);
		return &hs_error_nomem;
	}
	for (size_t i = 0; i < l->n; i++)
		order[i] = i;
	sort_list = l;
	qsort(order, l->n, sizeof(*order), idx_cmp);
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct hs_go_goroutine *g = &l->g[order[i]];
		if (!n || key_cmp(groups[n - 1].first, g)) {
			groups[n].first = g;
			groups[n].members = &order[i];
			n++;
		}
		struct group *gr = &groups[n - 1];
		gr->count++;
		gr->nsystem += g->system;
		for (size_t k = 0; k < g->nwaits; k++)
			add_chan(gr, &g->waits[k]);
	}
	qsort(groups, n, sizeof(*groups), group_cmp);
	*ret = groups;
	*nret = n;
	*order_ret = order;
	return NULL;
}

// {address, elem_type[, goroutines]} of a channel waited on.
static void json_chan(struct hs_out *o, uint64_t chan, const char *elem, const uint64_t *goroutines)
{
	hs_json_begin_object(o);
	hs_json_ku64(o, "address", chan);
	hs_json_kstr(o, "elem_type", elem);
	if (goroutines)
		hs_json_ku64(o, "goroutines", *goroutines);
	hs_json_end_object(o);
}

// "channels": what a group waits on (counts: how many of it wait on each).
static void json_chans(struct hs_out *o, const struct group *gr, bool counts)
{
	hs_json_key(o, "channels");
	hs_json_begin_array(o);
	for (size_t k = 0; k < gr->nchans; k++)
		json_chan(o, gr->chans[k].chan, gr->chans[k].elem, counts ? &gr->chans[k].count : NULL);
	hs_json_end_array(o);
}

// "stack": [{pc, function}...] and "stack_cut" of goroutine g.
static void json_stack(struct hs_out *o, const struct hs_go_goroutine *g)
{
	hs_json_key(o, "stack");
	hs_json_begin_array(o);
	for (size_t i = 0; i < g->nframes; i++) {
		hs_json_begin_object(o);
		hs_json_ku64(o, "pc", g->frames[i]);
		hs_json_kstr(o, "function", g->funcs[i]);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_json_kstr(o, "stack_cut", g->unwind_stop);
}

static void json_goroutine(struct hs_out *o, const struct hs_go_goroutine *g, bool stack)
{
	hs_json_begin_object(o);
	hs_json_ku64(o, "goid", g->goid);
	hs_json_ku64(o, "address", g->g);
	hs_json_kstr(o, "status", g->status_name);
	hs_json_kstr(o, "wait_reason", g->wait_reason);
	hs_json_ki64(o, "waitsince", g->waitsince);
	hs_json_kstr(o, "function", blocking_of(g));
	hs_json_kbool(o, "system", g->system);
	hs_json_kstr(o, "start_function", g->start_func);
	hs_json_ku64(o, "startpc", g->startpc);
	hs_json_kstr(o, "created_by", g->created_by);
	hs_json_ku64(o, "gopc", g->gopc);
	if (g->parent_goid)
		hs_json_ku64(o, "parent_goid", g->parent_goid);
	hs_json_ku64(o, "stack_lo", g->stack_lo);
	hs_json_ku64(o, "stack_hi", g->stack_hi);
	hs_json_ku64(o, "sp", g->sp);
	hs_json_kstr(o, "registers", g->regs_from);
	if (g->tid)
		hs_json_ki64(o, "thread", g->tid);
	hs_json_key(o, "channels");
	hs_json_begin_array(o);
	for (size_t i = 0; i < g->nwaits; i++)
		json_chan(o, g->waits[i].chan, g->waits[i].elem_type, NULL);
	hs_json_end_array(o);
	if (stack)
		json_stack(o, g);
	hs_json_end_object(o);
}

/* The leaked-goroutine findings: the program's own parked goroutines by
 * (wait reason, blocking function, channels), whatever their stacks (a
 * recursion of any depth that ends in the same receive is one finding). */
struct finding { const struct group *gr; size_t count; };

static bool blocked(const struct group *gr)
{
	const struct hs_go_goroutine *g = gr->first;
	return !g->system && (g->status == HS_G_WAITING || g->status == HS_G_SYSCALL) && blocking_of(g);
}

static int chan_cmp(const void *x, const void *y)
{
	const struct gchan *a = x, *b = y;
	return (a->chan > b->chan) - (a->chan < b->chan);
}

static int finding_key_cmp(const struct group *a, const struct group *b)
{
	int d = str_cmp(state_of(a->first), state_of(b->first));
	if (!d)
		d = str_cmp(blocking_of(a->first), blocking_of(b->first));
	if (!d)
		d = (a->nchans > b->nchans) - (a->nchans < b->nchans);
	if (!d)
		d = (a->more_chans > b->more_chans) - (a->more_chans < b->more_chans);
	for (size_t i = 0; !d && i < a->nchans; i++)   // chans sorted by address
		d = chan_cmp(&a->chans[i], &b->chans[i]);
	return d;
}

static int finding_sort(const void *x, const void *y)
{
	const struct finding *a = x, *b = y;
	int d = finding_key_cmp(a->gr, b->gr);
	return d ? d : (a->gr > b->gr) - (a->gr < b->gr);
}

static int finding_by_count(const void *x, const void *y)
{
	const struct finding *a = x, *b = y;
	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	return (a->gr > b->gr) - (a->gr < b->gr);   // groups are in output order
}

// The findings, largest first (*nret of them; NULL when none or no memory).
static struct finding *make_findings(struct group *groups, size_t ngroups, size_t *nret)
{
	struct finding *f = malloc((ngroups ? ngroups : 1) * sizeof(*f));
	size_t n = 0;
	*nret = 0;
	if (!f)
		return NULL;
	for (size_t i = 0; i < ngroups; i++) {
		qsort(groups[i].chans, groups[i].nchans, sizeof(groups[i].chans[0]), chan_cmp);
		if (blocked(&groups[i]))
			f[n++] = (struct finding){ &groups[i], groups[i].count };
	}
	qsort(f, n, sizeof(*f), finding_sort);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m && !finding_key_cmp(f[m - 1].gr, f[i].gr))
			f[m - 1].count += f[i].count;
		else
			f[m++] = f[i];
	}
	qsort(f, m, sizeof(*f), finding_by_count);
	*nret = m;
	return f;
}

// "on channel 0xc000068060 (chan *main.Job)", "on channels A (chan T), B (chan U)"
static void text_chans(struct hs_out *o, const struct group *gr)
{
	if (!gr->nchans)
		return;
	hs_out_printf(o, " on channel%s", gr->nchans + gr->more_chans > 1 ? "s" : "");
	for (size_t i = 0; i < gr->nchans; i++) {
		hs_out_printf(o, "%s 0x%" PRIx64, i ? "," : "", gr->chans[i].chan);
		if (gr->chans[i].elem)
			hs_out_printf(o, " (chan %s)", gr->chans[i].elem);
	}
	if (gr->more_chans)
		hs_out_printf(o, " and %zu more", gr->more_chans);
}

static void text_group(struct hs_out *o, const struct group *gr)
{
	const struct hs_go_goroutine *g = gr->first;
	const char *fn = blocking_of(g);
	hs_out_printf(o, "%zu goroutine%s: %s in %s%s", gr->count, gr->count == 1 ? "" : "s", state_of(g),
		      fn ? fn : "(no function outside the runtime)", g->system ? " [system]" : "");
	if (g->created_by)
		hs_out_printf(o, " (created by %s)", g->created_by);
	hs_out_puts(o, "\n");
	for (size_t i = 0; i < g->nframes; i++)
		hs_out_printf(o, "  %c %#018" PRIx64 "  %s\n", i == g->blocking ? '>' : ' ', g->frames[i],
			      g->funcs[i] ? g->funcs[i] : "?");
	if (g->unwind_stop)
		hs_out_printf(o, "    (stack cut: %s)\n", g->unwind_stop);
	if (gr->nchans) {
		hs_out_puts(o, "   ");
		text_chans(o, gr);
		hs_out_puts(o, "\n");
	}
	hs_out_puts(o, "\n");
}

static void text_goroutine(struct hs_out *o, const struct hs_go_goroutine *g)
{
	const char *fn = blocking_of(g);
	hs_out_printf(o, "goroutine %" PRIu64 " [%s]%s g=0x%" PRIx64 " stack [0x%" PRIx64 ", 0x%" PRIx64 ") %s",
		      g->goid, state_of(g), g->system ? " [system]" : "", g->g, g->stack_lo, g->stack_hi,
		      fn ? fn : "-");
	if (g->tid)
		hs_out_printf(o, " thread %d", g->tid);
	for (size_t i = 0; i < g->nwaits; i++)
		hs_out_printf(o, "%s0x%" PRIx64 "%s%s%s", i ? ", " : " on ", g->waits[i].chan,
			      g->waits[i].elem_type ? " (chan " : "", g->waits[i].elem_type ? g->waits[i].elem_type : "",
			      g->waits[i].elem_type ? ")" : "");
	hs_out_puts(o, "\n");
}

/* What the goroutines command shows, for its two renderers. */
struct goroutines_model {
	const struct hs_go_goroutines *l;
	struct group *groups;          /* largest first */
	size_t ngroups, shown;         /* shown: the first groups, --limit */
	size_t *order;                 /* goroutine indices, grouped */
	struct finding *findings;      /* blocked groups of the program's own goroutines */
	size_t nfindings;
	size_t nsystem;
	bool list;                     /* --list: every goroutine too */
};

static struct hs_error *goroutines_model(const struct hs_go_goroutines *l, bool list, uint64_t limit,
					 struct goroutines_model *m)
{
	*m = (struct goroutines_model){ .l = l, .list = list };
	HS_CHECK(make_groups(l, &m->groups, &m->ngroups, &m->order));
	m->findings = make_findings(m->groups, m->ngroups, &m->nfindings);
	if (!m->findings) {
		free(m->groups);
		free(m->order);
		return &hs_error_nomem;
	}
	for (size_t i = 0; i < l->n; i++)
		m->nsystem += l->g[i].system;
	m->shown = limit && limit < m->ngroups ? (size_t)limit : m->ngroups;
	return NULL;
}

static void goroutines_model_free(struct goroutines_model *m)
{
	free(m->findings);
	free(m->groups);
	free(m->order);
}

static void goroutines_json(struct hs_cmd *c, const struct goroutines_model *m)
{
	struct hs_out *o = c->out;
	hs_cmd_json_begin(c, "goroutines");
	hs_json_kstr(o, "go_version", m->l->version);
	hs_json_kstr(o, "layout", m->l->layout);
	hs_json_kstr(o, "unwinder", m->l->unwinder);
	hs_json_kstr(o, "names", m->l->names);
	hs_json_ku64(o, "total", m->l->n);
	hs_json_ku64(o, "system", m->nsystem);
	hs_json_ku64(o, "dead", m->l->ndead);
	hs_json_ku64(o, "unreadable", m->l->unreadable);
	hs_json_key(o, "groups");
	hs_json_begin_array(o);
	for (size_t i = 0; i < m->shown && !o->stopped; i++) {
		const struct group *gr = &m->groups[i];
		const struct hs_go_goroutine *g = gr->first;
		hs_json_begin_object(o);
		hs_json_ku64(o, "count", gr->count);
		hs_json_kstr(o, "status", g->status_name);
		hs_json_kstr(o, "wait_reason", g->wait_reason);
		hs_json_kstr(o, "function", blocking_of(g));
		hs_json_kbool(o, "system", g->system);
		hs_json_kstr(o, "start_function", g->start_func);
		hs_json_kstr(o, "created_by", g->created_by);
		json_stack(o, g);
		json_chans(o, gr, true);
		hs_json_ku64(o, "channels_more", gr->more_chans);
		hs_json_key(o, "goids");
		hs_json_begin_array(o);
		for (size_t k = 0; k < gr->count; k++)
			hs_json_u64(o, m->l->g[gr->members[k]].goid);
		hs_json_end_array(o);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	hs_json_ku64(o, "groups_total", m->ngroups);
	hs_json_kbool(o, "groups_truncated", m->shown < m->ngroups);
	hs_json_key(o, "blocked");
	hs_json_begin_array(o);
	for (size_t i = 0; i < m->nfindings && !o->stopped; i++) {
		const struct group *gr = m->findings[i].gr;
		hs_json_begin_object(o);
		hs_json_ku64(o, "count", m->findings[i].count);
		hs_json_kstr(o, "status", gr->first->status_name);
		hs_json_kstr(o, "wait_reason", gr->first->wait_reason);
		hs_json_kstr(o, "function", blocking_of(gr->first));
		json_chans(o, gr, false);
		hs_json_end_object(o);
	}
	hs_json_end_array(o);
	if (m->list) {
		hs_json_key(o, "goroutines");
		hs_json_begin_array(o);
		for (size_t i = 0; i < m->l->n && !o->stopped; i++)
			json_goroutine(o, &m->l->g[i], true);
		hs_json_end_array(o);
	}
	hs_cmd_diagnostics(c);
	hs_json_end_object(o);
	hs_json_done(o);
}

static void goroutines_text(struct hs_cmd *c, const struct goroutines_model *m)
{
	struct hs_out *o = c->out;
	hs_out_printf(o, "%zu goroutine%s (%zu system) in %s, %zu group%s; stacks by %s, names from %s "
		      "(layout: %s)\n\n", m->l->n, m->l->n == 1 ? "" : "s", m->nsystem,
		      m->l->version[0] ? m->l->version : "a Go program", m->ngroups, m->ngroups == 1 ? "" : "s",
		      m->l->unwinder, m->l->names, m->l->layout);
	for (size_t i = 0; i < m->shown && !o->stopped; i++)
		text_group(o, &m->groups[i]);
	if (m->shown < m->ngroups)
		hs_out_printf(o, "  ... %zu more groups (--limit N)\n\n", m->ngroups - m->shown);
	// The findings: the program's own goroutines parked for good.
	if (m->nfindings)
		hs_out_puts(o, "Blocked goroutines (leaked if nothing will wake them):\n");
	for (size_t i = 0; i < m->nfindings && !o->stopped; i++) {
		const struct group *gr = m->findings[i].gr;
		hs_out_printf(o, "  %zu goroutine%s blocked in %s on %s", m->findings[i].count,
			      m->findings[i].count == 1 ? "" : "s", blocking_of(gr->first), state_of(gr->first));
		text_chans(o, gr);
		hs_out_puts(o, "\n");
	}
	if (m->list) {
		hs_out_puts(o, m->nfindings ? "\n" : "");
		for (size_t i = 0; i < m->l->n && !o->stopped; i++)
			text_goroutine(o, &m->l->g[i]);
	}
	hs_cmd_diagnostics(c);
}

struct hs_error *hs_cmd_goroutines(struct hs_cmd *c)
{
	struct hs_goroutines_opts opt = { 0 };
	HS_CHECK(hs_cmd_parse(c, &opt, sizeof(opt), NULL, 0, NULL));
	HS_CHECK(hs_session_need_goroutines(c->s));
	struct goroutines_model m;
	HS_CHECK(goroutines_model(c->s->goroutines, opt.list, opt.limit, &m));
	if (c->json)
		goroutines_json(c, &m);
	else
		goroutines_text(c, &m);
	goroutines_model_free(&m);
	return NULL;
}
