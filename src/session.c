/* session.c - see session.h: opening, options, and the lazily computed stages. */
#include <elfutils/libdwfl.h>
#include <inttypes.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "api_tables.h"
#include <time.h>
#include "commands.h"
#include "containers.h"
#include "dominators.h"
#include "expr.h"
#include "locals.h"
#include "go_goroutines.h"
#include "go_pools.h"
#include "graph.h"
#include "pools.h"
#include "progress.h"
#include "roots.h"
#include "session.h"
#include "go_rt.h"
#include "go_types.h"
#include "testhook.h"
#include "types.h"
#include "unwind.h"


const char *hs_version(void) { return HEAPSCOPE_VERSION; }
int hs_abi(void) { return HEAPSCOPE_ABI; }

// "name=value,name=value": values are numbers in C syntax (0x...).
static struct hs_error *parse_overrides(struct hs_session *s, const char *spec)
{
	if (!spec)
		return NULL;
	const char *p = spec;
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *eq = memchr(p, '=', len);
		if (!eq || eq == p || (size_t)(eq - p) >= sizeof(s->overrides[0].name))
			return hs_error_create(HS_ERR_USAGE, "bad override '%.*s': expected NAME=ADDRESS", (int)len, p);
		if (s->noverrides == HS_MAX_OVERRIDES)
			return hs_error_create(HS_ERR_USAGE, "too many overrides (at most %d)", HS_MAX_OVERRIDES);
		char *end;
		char num[64];
		size_t nlen = len - (eq + 1 - p);
		if (nlen == 0 || nlen >= sizeof(num))
			return hs_error_create(HS_ERR_USAGE, "bad value in override '%.*s'", (int)len, p);
		memcpy(num, eq + 1, nlen);
		num[nlen] = 0;
		uint64_t v = strtoull(num, &end, 0);
		if (*end)
			return hs_error_create(HS_ERR_USAGE, "bad value in override '%.*s': not a number", (int)len, p);
		if (!hs_walk_override_known(p, (size_t)(eq - p)))
			return hs_error_create(HS_ERR_USAGE, "unknown override '%.*s' (known: %s)", (int)(eq - p), p,
					       hs_walk_override_names());
		memcpy(s->overrides[s->noverrides].name, p, eq - p);
		s->overrides[s->noverrides].name[eq - p] = 0;
		s->overrides[s->noverrides++].value = v;
		p += len;
		if (*p == ',')
			p++;
	}
	return NULL;
}

bool hs_session_override(const struct hs_session *s, const char *name, uint64_t *ret)
{
	struct hs_walk_ctx ctx = { .overrides = s->overrides, .noverrides = s->noverrides };
	return hs_walk_override(&ctx, name, ret);
}

static char *dup_or_null(const char *s, bool *failed)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*failed = true;
	return d;
}

static struct hs_error *copy_pool_specs(struct hs_session *s, const struct hs_options *opts)
{
	size_t n = 0;
	while (opts->pools && opts->pools[n])
		n++;
	s->no_pool_detection = opts->no_pool_detection != 0;
	s->pool_specs = calloc(n + 1, sizeof(char *));
	if (!s->pool_specs)
		return &hs_error_nomem;
	for (size_t i = 0; i < n; i++) {
		HS_CHECK(hs_pool_spec_check(opts->pools[i]));
		if (!(s->pool_specs[i] = strdup(opts->pools[i])))
			return &hs_error_nomem;
		s->npool_specs = i + 1;
	}
	return NULL;
}

static struct hs_error *session_create(const struct hs_options *opts, struct hs_session **ret)
{
	static const struct hs_options defaults;
	if (!opts)
		opts = &defaults;
	struct hs_session *s = calloc(1, sizeof(*s));
	if (!s)
		return &hs_error_nomem;
	hs_diags_init(&s->diags);
	hs_heap_init(&s->heap);
	bool failed = false;
	s->exe = dup_or_null(opts->exe, &failed);
	s->sysroot = dup_or_null(opts->sysroot, &failed);
	s->allocator = dup_or_null(opts->allocator, &failed);
	size_t ndirs = 0;
	while (opts->debug_dirs && opts->debug_dirs[ndirs])
		ndirs++;
	s->debug_dirs = calloc(ndirs + 1, sizeof(char *));
	failed |= !s->debug_dirs;
	for (size_t i = 0; !failed && i < ndirs; i++)
		s->debug_dirs[i] = dup_or_null(opts->debug_dirs[i], &failed);
	if (failed) {
		hs_session_destroy(s);
		return &hs_error_nomem;
	}
	s->jobs = opts->jobs > 0 ? opts->jobs : 2;
	s->exact_pointers = opts->exact_pointers;
	s->sym_opts = (struct hs_symbols_options){
		.exe = s->exe, .sysroot = s->sysroot,
		.debug_dirs = (const char *const *)s->debug_dirs,
		.no_debuginfo = opts->no_debuginfo,
	};
	if (s->allocator && strcmp(s->allocator, "auto") && !hs_walker_named(s->allocator)) {
		struct hs_error *err = hs_error_create(HS_ERR_USAGE, "unknown allocator '%s': use %s or auto",
						       s->allocator, hs_walker_names());
		hs_session_destroy(s);
		return err;
	}
	struct hs_error *err = parse_overrides(s, opts->overrides);
	if (!err)
		err = copy_pool_specs(s, opts);
	if (err) {
		hs_session_destroy(s);
		return err;
	}
	*ret = s;
	return NULL;
}

struct hs_error *hs_session_open_core(const char *core_path, const struct hs_options *opts,
				      struct hs_session **ret)
{
	struct hs_session *s;
	HS_CHECK(session_create(opts, &s));
	struct hs_error *err = hs_target_open_core(core_path, &s->target);
	if (err) {
		hs_session_destroy(s);
		return err;
	}
	if (s->target->missing_bytes)
		hs_diag_add(&s->diags, HS_DIAG_WARNING, "core", 0,
			    "%s is truncated: %" PRIu64 " bytes of dumped memory lie beyond its end (%" PRIu64 " bytes); that memory reads as not dumped",
			    core_path, s->target->missing_bytes, s->target->file_size);
	*ret = s;
	return NULL;
}

struct hs_error *hs_session_open_pid(int pid, const struct hs_options *opts, struct hs_session **ret)
{
	struct hs_session *s;
	HS_CHECK(session_create(opts, &s));
	struct hs_error *err = hs_target_open_pid(pid, &s->target);
	if (err) {
		hs_session_destroy(s);
		return err;
	}
	*ret = s;
	return NULL;
}

struct hs_error *hs_session_set_thread_regs(struct hs_session *s, int tid, const uint64_t *regs,
					    size_t nregs)
{
	return hs_target_set_regs(s->target, tid, regs, nregs);
}

void hs_session_destroy(struct hs_session *s)
{
	if (!s)
		return;
	hs_api_facts_destroy(s->api_facts);
	hs_pools_destroy(s->pools);
	hs_error_destroy(s->pools_error);
	for (size_t i = 0; s->pool_specs && s->pool_specs[i]; i++)
		free(s->pool_specs[i]);
	free(s->pool_specs);
	hs_owners_destroy(s->owners);
	hs_containers_destroy(s->containers);
	hs_container_probes_destroy(s->probes);
	hs_go_goroutines_free(s->goroutines);
	hs_error_destroy(s->goroutines_error);
	hs_locals_destroy(s->locals);
	hs_frame_cache_destroy(s->frames);
	hs_dominators_destroy(s->dominators);
	hs_types_destroy(s->types);
	hs_analysis_destroy(s->analysis);
	hs_gort_close(s->go_rt);
	free(s->go_block_die);
	hs_error_destroy(s->analysis_error);
	hs_heap_deinit(&s->heap);
	for (size_t i = 0; i < s->ndesc; i++)
		hs_alloc_desc_deinit(&s->desc[i]);
	free(s->desc);
	hs_error_destroy(s->heap_error);
	hs_error_destroy(s->walk_failure);
	hs_symbols_destroy(s->symbols);
	hs_error_destroy(s->symbols_error);
	hs_target_destroy(s->target);
	hs_diags_deinit(&s->diags);
	for (size_t i = 0; s->debug_dirs && s->debug_dirs[i]; i++)
		free(s->debug_dirs[i]);
	free(s->debug_dirs);
	free(s->exe);
	free(s->sysroot);
	free(s->allocator);
	free(s);
}

// A stored error is handed out as a copy: the caller owns what it gets.
static struct hs_error *error_copy(const struct hs_error *err)
{
	if (err->is_static)
		return (struct hs_error *)err;
	struct hs_error *copy = hs_error_create(err->code, "%s", err->message);
	if (copy != &hs_error_nomem)
		copy->address = err->address;
	return copy;
}

struct hs_error *hs_session_need_symbols(struct hs_session *s)
{
	if (s->symbols)
		return NULL;
	if (!s->symbols_error)
		s->symbols_error = hs_symbols_create(s->target, &s->sym_opts, &s->diags, &s->symbols);
	return s->symbols_error ? error_copy(s->symbols_error) : NULL;
}

void hs_session_walk_ctx(struct hs_session *s, size_t w, struct hs_walk_ctx *ctx)
{
	const struct hs_notes *n = &s->target->notes;
	*ctx = (struct hs_walk_ctx){
		.walker = hs_walkers[w], .mem = &s->target->mem, .symbols = s->symbols,
		.threads = n->threads, .nthreads = n->nthreads, .files = n->files, .nfiles = n->nfiles,
		.notes = n, .target_path = s->target->path,
		.overrides = s->overrides, .noverrides = s->noverrides,
		.no_debuginfo = s->sym_opts.no_debuginfo, .state = hs_walker_state_ids(w),
		.diags = &s->diags, .jobs = s->jobs,
	};
	for (size_t d = 0; d < s->ndesc; d++)
		ctx->arena_base += (unsigned)s->desc[d].narenas;
}

static bool walker_chosen(const struct hs_session *s, const struct hs_walker *w)
{
	return !s->allocator || !strcmp(s->allocator, "auto") || !strcmp(s->allocator, w->name);
}

/* The blocks [first, last) counted and summed by where. */
struct where_part {
	const struct hs_block *blocks;
	size_t first, last;
	uint64_t count[HS_WHERE_MAX], bytes[HS_WHERE_MAX];
};

static void *count_by_where(void *arg)
{
	struct where_part *wp = arg;
	for (size_t k = wp->first; k < wp->last; k++) {
		unsigned id = hs_block_where(&wp->blocks[k]);
		wp->count[id]++;
		wp->bytes[id] += hs_block_size(&wp->blocks[k]);
	}
	return NULL;
}

/* Detect and walk one allocator: its description joins s->desc when found. */
static struct hs_error *walk_one(struct hs_session *s, size_t w)
{
	const struct hs_walker *wk = hs_walkers[w];
	struct hs_walk_ctx ctx;
	hs_session_walk_ctx(s, w, &ctx);
	HS_CHECK(HS_VEC_GROW(s->desc, s->capdesc, s->ndesc + 1));
	void *state = NULL;
	struct hs_error *err = wk->detect(&ctx, &state);
	if (!err) {
		struct hs_alloc_desc *d = &s->desc[s->ndesc];
		memset(d, 0, sizeof(*d));
		d->allocator = wk->name;
		size_t first_block = s->heap.n;
		err = wk->walk(&ctx, state, &s->heap, d);
		if (!err) {
			for (size_t a = 0; a < d->narenas; a++)
				d->arenas[a].allocator = wk->name;
			// This walker's blocks are the ones it appended: its totals,
			// for the allocator column of summary (mixed processes),
			// counted by where on two threads, then by the where's state.
			struct where_part parts[2] = { { s->heap.blocks, first_block, s->heap.n } };
			size_t np = s->jobs > 1 && s->heap.n - first_block >= 65536 ? 2 : 1;
			if (np == 2) {
				parts[1] = parts[0];
				parts[0].last = parts[1].first = first_block + (s->heap.n - first_block) / 2;
			}
			hs_run_parts(np, count_by_where, parts, sizeof(parts[0]));
			for (unsigned id = 0; id < HS_WHERE_MAX; id++) {
				const char *st = hs_where_state(id);
				struct hs_alloc_totals *t = !strcmp(st, "used") ? &d->in_use :
							    !strcmp(st, "free") ? &d->free : &d->meta;
				for (size_t k = 0; k < np; k++) {
					t->count += parts[k].count[id];
					t->bytes += parts[k].bytes[id];
				}
			}
			s->ndesc++;
		} else {
			hs_alloc_desc_deinit(d);
		}
	}
	if (wk->destroy)
		wk->destroy(state);
	return err;
}

/* Room for as many blocks as the dumped writable memory can hold chunks of
 * 32 bytes (glibc's smallest; other allocators' smaller ones grow the array
 * past it), up to 128 M: virtual memory, touched only as the walkers write.
 * The block array is then never moved while it fills. */
static void reserve_blocks(struct hs_session *s)
{
	const struct hs_memory *mem = &s->target->mem;
	uint64_t bytes = 0;
	for (size_t i = 0; i < mem->nsegs; i++)
		if ((mem->segs[i].flags & HS_SEG_W) && !(mem->segs[i].flags & HS_SEG_NOT_IN_CORE))
			bytes += mem->segs[i].filesz;
	uint64_t n = bytes / 32;
	if (n > (UINT64_C(1) << 27))
		n = UINT64_C(1) << 27;
	if (n >= (UINT64_C(1) << 18))
		(void)hs_heap_reserve(&s->heap, (size_t)n);
}

static struct hs_error *heap_walk(struct hs_session *s)
{
	double t0 = hs_now();
	struct hs_error *err = hs_session_need_symbols(s);
	if (err) {
		// Walkers can work from the core alone; say that symbols are missing.
		hs_diag_add(&s->diags, HS_DIAG_WARNING, "symbols", 0, "%s", hs_error_message(err));
		hs_error_destroy(err);
	}
	hs_session_time(s, "symbols", t0);
	t0 = hs_now();
	hs_memory_prefault_writable(&s->target->mem);
	reserve_blocks(s);
	struct hs_error *first_failure = NULL;
	for (size_t i = 0; i < hs_nwalkers; i++) {
		const struct hs_walker *w = hs_walkers[i];
		if (!walker_chosen(s, w))
			continue;
		err = walk_one(s, i);
		if (err && err->code == HS_ERR_NOT_FOUND && !(s->allocator && !strcmp(s->allocator, w->name))) {
			hs_error_destroy(err);
			continue;
		}
		if (err) {
			if (err->code == HS_ERR_NOMEM || err->code == HS_ERR_INTERRUPTED) {
				hs_error_destroy(first_failure);
				return err;
			}
			if (!first_failure) {
				first_failure = err;
			} else {
				hs_error_destroy(err);
			}
		}
	}
	size_t dropped = 0;
	hs_session_time(s, "walk", t0);
	t0 = hs_now();
	HS_CHECK(hs_heap_finish(&s->heap, &dropped));
	hs_session_time(s, "index", t0);
	if (dropped)
		hs_diag_add(&s->diags, HS_DIAG_ERROR, "heap", 0,
			    "%zu blocks overlapped others and were left out of the index", dropped);
	if (s->ndesc == 0) {
		if (first_failure)
			return first_failure;
		return hs_error_create(HS_ERR_HEAP, "no known allocator's heap was found in %s (looked for: %s)",
				       s->target->path, hs_walker_titles());
	}
	if (first_failure) {
		hs_diag_add(&s->diags, HS_DIAG_ERROR, "heap", first_failure->address, "%s", first_failure->message);
		hs_error_destroy(s->walk_failure);
		s->walk_failure = first_failure;
	}
	return NULL;
}

void hs_session_time(struct hs_session *s, const char *stage, double since)
{
	hs_timings_add(&s->timings, stage, since);
}

void hs_session_timings(const struct hs_session *s, const struct hs_stage_timing **ret, size_t *nret,
			int *jobs_ret)
{
	*ret = s->timings.v;
	*nret = s->timings.n;
	*jobs_ret = s->jobs;
}

const char *hs_session_heap_incomplete(struct hs_session *s)
{
	return s->heap_done && s->walk_failure ? s->walk_failure->message : NULL;
}

struct hs_error *hs_session_need_heap(struct hs_session *s)
{
	if (!s->heap_done) {
		hs_progress_begin(s, "walk", 0);
		s->heap_error = heap_walk(s);
		hs_progress_end(s);
		// An interruption is not a result: the next command tries again.
		if (s->heap_error && s->heap_error->code == HS_ERR_INTERRUPTED) {
			struct hs_error *err = s->heap_error;
			s->heap_error = NULL;
			for (size_t i = 0; i < s->ndesc; i++)
				hs_alloc_desc_deinit(&s->desc[i]);
			s->ndesc = 0;
			hs_heap_deinit(&s->heap);
			hs_heap_init(&s->heap);
			return err;
		}
		s->heap_done = true;
	}
	return s->heap_error ? error_copy(s->heap_error) : NULL;
}

bool hs_session_heap_is_go(const struct hs_session *s)
{
	for (size_t i = 0; i < s->ndesc; i++)
		if (s->desc[i].allocator && !strcmp(s->desc[i].allocator, "go"))
			return true;
	return false;
}

// The Go heap's graph is built from Go's own roots with its pointer maps
// (go_mark.c).  The commands that need only what it types (histogram, show)
// have it; every other one needs every root, and has it once the roots are
// complete (hs_session_go_reach_unsupported, checked when built).  Each of
// them calls an unreachable Go object garbage awaiting GC, never leaked.
static struct hs_error *go_command_check(struct hs_session *s, bool built)
{
	static const char *const typed[] = { "histogram", "show", NULL };
	if (!built || !hs_session_heap_is_go(s))
		return NULL;
	for (size_t i = 0; s->command && typed[i]; i++)
		if (!strcmp(s->command, typed[i]))
			return NULL;
	return hs_session_go_reach_unsupported(s);
}

bool hs_session_go_reach_ok(const struct hs_session *s)
{
	return !hs_session_heap_is_go(s) || (s->analysis && s->go_mark.stacks && s->ndesc == 1);
}

struct hs_error *hs_session_go_reach_unsupported(struct hs_session *s)
{
	if (hs_session_go_reach_ok(s))
		return NULL;
	return hs_session_go_unsupported(s, "reachability",
					 s->ndesc > 1 ? "(leaks, chain, refs, top, owners, report, export, diff) beside another "
					 "allocator (cgo): the C heap's roots are not joined to Go's yet (and an "
					 "unreachable Go object is garbage awaiting GC, not a leak)" :
					 "(leaks, chain, refs, top, owners, report, export, diff): heapscope does not mark from Go's "
					 "goroutine stacks yet, and an unreachable Go object is garbage awaiting GC, not "
					 "a leak");
}

struct hs_error *hs_session_need_goroutines(struct hs_session *s)
{
	if (s->goroutines)
		return NULL;
	if (s->goroutines_error)
		return error_copy(s->goroutines_error);
	HS_CHECK(hs_session_need_symbols(s));
	size_t w = 0;
	while (w < hs_nwalkers && strcmp(hs_walkers[w]->name, "go"))
		w++;
	struct hs_walk_ctx ctx;
	hs_session_walk_ctx(s, w < hs_nwalkers ? w : 0, &ctx);
	struct hs_error *err = hs_go_goroutines_list(&ctx, &s->goroutines);
	if (err && err->code == HS_ERR_NOT_FOUND) {
		struct hs_error *e = hs_error_create(HS_ERR_HEAP, "goroutines: %s: not a Go program (goroutines are read "
						     "from Go cores and processes)", hs_error_message(err));
		hs_error_destroy(err);
		err = e;
	}
	if (!err || err->code == HS_ERR_INTERRUPTED || err->is_static)
		return err;
	s->goroutines_error = err;
	return error_copy(err);
}

// What the Go modules read to open the runtime (go_rt.h).
static struct hs_gort_input gort_input(struct hs_session *s)
{
	return (struct hs_gort_input){
		.mem = &s->target->mem, .heap = &s->heap, .symbols = s->symbols,
		.desc = s->desc, .ndesc = s->ndesc, .no_debuginfo = s->sym_opts.no_debuginfo,
	};
}

// go_mark.c's goroutines: the goroutines stage, read once.
static struct hs_error *mark_goroutines(void *ctx, const struct hs_go_goroutines **ret)
{
	struct hs_session *s = ctx;
	HS_CHECK(hs_session_need_goroutines(s));
	*ret = s->goroutines;
	return NULL;
}

struct hs_error *hs_session_go_unsupported(struct hs_session *s, const char *what, const char *why)
{
	for (size_t i = 0; i < s->ndesc; i++)
		if (s->desc[i].allocator && !strcmp(s->desc[i].allocator, "go"))
			return hs_error_create(HS_ERR_HEAP, "%s is not supported for Go heaps yet %s; summary, info, "
					       "arenas, bins, chunks, show and histogram work (docs/go.md)", what, why);
	return NULL;
}

// The containers' probes of the scan: used up, or partial.
static void drop_probes(struct hs_session *s)
{
	hs_container_probes_destroy(s->probes);
	s->probes = NULL;
}

struct hs_error *hs_session_need_analysis(struct hs_session *s)
{
	if (s->analysis)
		return go_command_check(s, true);
	if (s->analysis_error)
		return error_copy(s->analysis_error);
	HS_CHECK(hs_session_need_heap(s));
	HS_CHECK(hs_test_hold("analysis"));
	hs_progress_begin(s, "scan", 0);
	struct hs_roots roots;
	double t0 = hs_now();
	bool go = hs_session_heap_is_go(s);
	hs_gort_close(s->go_rt);
	s->go_rt = NULL;
	const struct hs_roots_input rin = {
		.mem = &s->target->mem, .notes = &s->target->notes, .symbols = s->symbols,
		.desc = s->desc, .ndesc = s->ndesc,
	};
	const struct hs_go_mark_input gin = {
		.rt = gort_input(s), .diags = &s->diags, .goroutines = mark_goroutines, .ctx = s,
	};
	struct hs_error *err = go ? hs_go_roots_build(&gin, &roots, &s->go_mark) : hs_roots_build(&rin, &roots);
	s->go_rt = s->go_mark.rt;
	hs_session_time(s, "roots", t0);
	// The containers' shape probes ride along with the scan (C heaps: Go's
	// containers are found by their Go types); nearly every command that
	// builds the graph goes on to the types, which find the containers.
	// (Made anew for each try: an interrupted scan's are partial.)
	drop_probes(s);
	if (!err && !go && !hs_test_probe_after_scan()) {
		const struct hs_containers_input pin = {
			.heap = &s->heap, .mem = &s->target->mem, .symbols = s->symbols, .jobs = s->jobs,
		};
		s->probes = hs_container_probes_create(&pin);
	}
	if (!err) {
		const struct hs_graph_input in = {
			.heap = &s->heap, .mem = &s->target->mem, .notes = &s->target->notes,
			.modules = s->symbols ? s->symbols->modules : NULL,
			.nmodules = s->symbols ? s->symbols->nmodules : 0,
			.jobs = s->jobs, .exact_pointers = s->exact_pointers,
			.diags = &s->diags, .timings = &s->timings,
			.pointer_bits = s->go_mark.pointer_bits, .pointer_ctx = s->go_rt,
			.visitor = s->probes ? hs_container_probes_visitor(s->probes) : NULL,
		};
		err = hs_analysis_create(&in, &roots, &s->analysis);
	}
	if (err)
		drop_probes(s);
	hs_progress_end(s);
	if (!err)
		return go_command_check(s, true);
	if (err->code == HS_ERR_INTERRUPTED || err->is_static)
		return err;
	s->analysis_error = err;
	return error_copy(err);
}

struct hs_error *hs_session_need_dominators(struct hs_session *s)
{
	if (s->dominators)
		return NULL;
	HS_CHECK(hs_session_need_analysis(s));
	double t0 = hs_now();
	hs_progress_begin(s, "dominators", 0);
	struct hs_error *err = hs_dominators_create(s->analysis, &s->heap, &s->dominators);
	hs_progress_end(s);
	if (!err)
		hs_session_time(s, "dominators", t0);
	return err;
}

// Containers name their nodes and elements (containers.c); only running
// out of memory stops the types.
static struct hs_error *types_containers(struct hs_session *s)
{
	double t0 = hs_now();
	struct hs_error *err = hs_session_need_containers(s);
	hs_session_time(s, "containers", t0);
	if (err && err->code == HS_ERR_NOMEM)
		return err;
	if (err)
		hs_diag_add(&s->diags, HS_DIAG_WARNING, "containers", 0, "%s", hs_error_message(err));
	hs_error_destroy(err);
	return NULL;
}

// go_types.c's pools: the pools stage (their objects are typed by their interface values).
static struct hs_error *go_types_pools(void *ctx, const struct hs_pools **ret)
{
	struct hs_session *s = ctx;
	HS_CHECK(hs_session_need_pools(s));
	*ret = s->pools;
	return NULL;
}

struct hs_error *hs_session_need_types(struct hs_session *s)
{
	HS_CHECK(hs_session_need_analysis(s));
	if (s->types)
		return NULL;
	struct hs_analysis *a = s->analysis;
	struct hs_types *t = hs_types_create(a->n);
	if (!t)
		return &hs_error_nomem;
	const struct hs_types_input in = {
		.a = a, .heap = &s->heap, .mem = &s->target->mem, .notes = &s->target->notes,
		.symbols = s->symbols, .jobs = s->jobs,
	};
	double t0 = hs_now();
	if (s->go_rt) {
		// The Go heap: by Go's own types (go_types.c); C's rules do not apply.
		const struct hs_go_types_input gin = {
			.rt = s->go_rt, .a = a, .heap = &s->heap, .mem = &s->target->mem,
			.pools = go_types_pools, .ctx = s,
		};
		hs_go_types(&gin, t, &s->go_block_die);
		hs_session_time(s, "types", t0);
		s->types = t;
		return types_containers(s);
	}
	hs_types_certain(&in, t);
	hs_session_time(s, "types", t0);
	s->types = t;
	HS_CHECK(types_containers(s));
	t0 = hs_now();
	hs_types_infer(&in, t);
	hs_session_time(s, "infer", t0);
	return NULL;
}

bool hs_block_field(struct hs_session *s, size_t i, uint64_t off, char *buf, size_t len)
{
	if (s->go_rt)
		return hs_go_block_field(s->go_rt, s->analysis, &s->heap, s->go_block_die, i, off, buf, len);
	return hs_types_block_field(s->types, i, off, buf, len);
}

static bool containers_block_field(void *ctx, size_t b, uint64_t off, char *buf, size_t len)
{
	return hs_block_field(ctx, b, off, buf, len);
}

static bool containers_global_field(void *ctx, const char *var, uint64_t off, char *buf, size_t len)
{
	const struct hs_session *s = ctx;
	return hs_go_global_field(s->go_rt, var, off, buf, len);
}

// libdwfl's unwinder over the core, attached once (a core with symbols
// only), reading the core through the target (unwind.h says why).
static bool session_unwinder(void *ctx)
{
	struct hs_session *s = ctx;
	if (!s->unwinder_attached) {
		s->unwinder_attached = true;
		s->unwinder_ok = hs_unwind_attach(s->symbols->dwfl, s->target->elf, &s->target->mem,
						  &s->target->notes);
	}
	return s->unwinder_ok;
}

struct hs_locals *hs_session_locals(struct hs_session *s)
{
	if (!s->locals && s->analysis) {
		const struct hs_locals_input in = {
			.mem = &s->target->mem, .notes = &s->target->notes, .symbols = s->symbols,
			.roots = &s->analysis->roots, .ctx = s,
			.unwinder = s->target->kind == HS_TARGET_CORE ? session_unwinder : NULL,
		};
		s->locals = hs_locals_create(&in);
	}
	return s->locals;
}

bool hs_stack_frame_function(struct hs_session *s, int tid, uint64_t addr, char *buf, size_t len)
{
	// A Go program's stack roots are goroutine stacks, not the threads'
	// (go_mark.c names them by goroutine).
	if (!s->symbols || s->target->kind != HS_TARGET_CORE || !s->symbols->dwfl || s->go_rt)
		return false;
	return session_unwinder(s) &&
	       hs_stack_frame_unwind(s->symbols->dwfl, s->symbols, &s->frames, tid, addr, buf, len);
}

static bool containers_frame_function(void *ctx, int tid, uint64_t addr, char *buf, size_t len)
{
	return hs_stack_frame_function(ctx, tid, addr, buf, len);
}

struct hs_error *hs_session_need_containers(struct hs_session *s)
{
	if (s->containers)
		return NULL;
	HS_CHECK(hs_session_need_analysis(s));
	const struct hs_containers_input in = {
		.a = s->analysis, .heap = &s->heap, .mem = &s->target->mem, .symbols = s->symbols,
		.types = s->types, .diags = &s->diags, .go_rt = s->go_rt, .go_block_die = s->go_block_die,
		.locals = hs_session_locals(s), .probes = s->probes, .jobs = s->jobs,
		.ctx = s, .block_field = containers_block_field, .global_field = containers_global_field,
		.frame_function = containers_frame_function,
	};
	struct hs_error *err = hs_containers_create(&in, &s->containers);
	drop_probes(s);
	return err;
}

struct hs_error *hs_session_need_container_anchors(struct hs_session *s)
{
	HS_CHECK(hs_session_need_containers(s));
	return hs_containers_need_anchors(s->containers);
}

struct hs_error *hs_session_need_container_retained(struct hs_session *s)
{
	HS_CHECK(hs_session_need_containers(s));
	return hs_containers_need_retained(s->containers);
}

// A Go heap's stack roots are goroutines; its other root memory, finalizers.
static bool owners_root_name(void *ctx, const struct hs_root_range *r, uint64_t p, char *buf, size_t len,
			     const char **kind)
{
	struct hs_session *s = ctx;
	uint64_t goid;
	if (r->kind == HS_ROOT_STACK && hs_go_stack_root_name(s->go_rt ? s->goroutines : NULL, p, buf, len, &goid)) {
		*kind = "goroutine";
		return true;
	}
	if (r->kind == HS_ROOT_MEMORY) {
		snprintf(buf, len, "finalizers");
		*kind = "finalizer";
		return true;
	}
	return false;
}

static bool owners_weak_root(void *ctx, const struct hs_root_range *r)
{
	const struct hs_session *s = ctx;
	return r->kind == HS_ROOT_STACK && hs_go_stack_root_system(s->go_rt ? s->goroutines : NULL, r->start);
}

struct hs_error *hs_session_need_owners(struct hs_session *s)
{
	if (s->owners)
		return NULL;
	HS_CHECK(hs_session_need_types(s));
	HS_CHECK(hs_session_need_container_anchors(s));
	const struct hs_owners_input in = {
		.a = s->analysis, .heap = &s->heap, .mem = &s->target->mem, .notes = &s->target->notes,
		.symbols = s->symbols, .containers = s->containers,
		.root_name = s->go_rt ? owners_root_name : NULL, .ctx = s,
		.weak_root = s->go_rt ? owners_weak_root : NULL,
	};
	return hs_owners_create(&in, &s->owners);
}

static struct hs_error *expr_symbols(void *ctx, struct hs_symbols **ret)
{
	struct hs_session *s = ctx;
	HS_CHECK(hs_session_need_symbols(s));
	*ret = s->symbols;
	return NULL;
}

struct hs_error *hs_session_expr_eval(struct hs_session *s, const char *text, struct hs_expr_result *ret)
{
	const struct hs_expr_input in = {
		.mem = &s->target->mem, .notes = &s->target->notes, .diags = &s->diags,
		.ctx = s, .symbols = expr_symbols,
	};
	return hs_expr_eval(&in, text, ret);
}

static struct hs_error *pools_eval(void *ctx, const char *expr, struct hs_expr_result *ret)
{
	return hs_session_expr_eval(ctx, expr, ret);
}

static struct hs_error *pools_graph(void *ctx, struct hs_analysis **ret)
{
	struct hs_session *s = ctx;
	HS_CHECK(hs_session_need_analysis(s));
	*ret = s->analysis;
	return NULL;
}

static struct hs_error *pools_go(void *ctx, struct hs_pools *p)
{
	struct hs_session *s = ctx;
	const struct hs_go_pools_input in = { .rt = gort_input(s), .diags = &s->diags };
	return hs_go_pools_read(&in, p);
}

struct hs_error *hs_session_need_pools(struct hs_session *s)
{
	if (s->pools)
		return NULL;
	if (s->pools_error)
		return hs_error_create(s->pools_error->code, "%s", s->pools_error->message);
	HS_CHECK(hs_session_need_heap(s));
	struct hs_pools_input in = {
		.heap = &s->heap, .mem = &s->target->mem, .notes = &s->target->notes,
		.symbols = s->symbols, .diags = &s->diags,
		.specs = s->pool_specs, .nspecs = s->npool_specs, .detect = !s->no_pool_detection,
		.ctx = s, .eval = pools_eval, .graph = pools_graph,
	};
	// A Go heap's pools are its sync.Pools: the C rule (a global heading a
	// free list) would take a Go list for one.
	bool go = hs_session_heap_is_go(s);
	in.detect = in.detect && !go;
	in.more = go ? pools_go : NULL;
	struct hs_error *err = hs_pools_create(&in, &s->pools);
	if (err && !err->is_static && err->code != HS_ERR_INTERRUPTED) {
		s->pools_error = err;
		return hs_error_create(err->code, "%s", err->message);
	}
	return err;
}

struct hs_error *hs_session_need_pool_analysis(struct hs_session *s)
{
	HS_CHECK(hs_session_need_pools(s));
	struct hs_pools *p = s->pools;
	if (p->analysed)
		return NULL;
	if (!p->nobjs) {
		p->analysed = true;
		return NULL;
	}
	HS_CHECK(hs_session_need_analysis(s));
	return hs_pools_analyse(p, s->analysis, &s->heap, &s->target->mem);
}
