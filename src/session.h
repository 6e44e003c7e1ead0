/* session.h - one analysis of one target: options, and every stage computed
 * once, lazily, and cached (symbols, the heap walk, later the graph).
 *
 * Invariants: target is never NULL after open.  symbols/heap are NULL until
 * their hs_session_need_*() succeeds once; a failed stage is recorded in
 * *_error and returned again without redoing the work.
 */
#ifndef HS_SESSION_H
#define HS_SESSION_H

#include <stdbool.h>
#include "clock.h"
#include "heapscope.h"
#include "alloc.h"
#include "diag.h"
#include "heap.h"
#include "symbols.h"
#include "target.h"
#include "walker.h"
#include "go_mark.h"

#define HS_MAX_OVERRIDES 16

struct hs_session {
	struct hs_target *target;
	struct hs_symbols_options sym_opts;
	char **debug_dirs;                /* owned copy, NULL-terminated */
	char *exe, *sysroot, *allocator;
	int jobs;
	bool exact_pointers;
	struct hs_walk_override overrides[HS_MAX_OVERRIDES];
	size_t noverrides;

	struct hs_diags diags;

	struct hs_symbols *symbols;
	struct hs_error *symbols_error;

	bool heap_done;
	struct hs_heap heap;
	struct hs_alloc_desc *desc;       /* one per allocator found, in walker-table order */
	size_t ndesc, capdesc;
	struct hs_error *heap_error;
	/* An allocator found but not walked while others were (auto mode: an
	 * unsupported jemalloc beside glibc): its results are missing, so the
	 * status is 4 although the command ran (hs_session_heap_incomplete). */
	struct hs_error *walk_failure;

	bool unwinder_attached, unwinder_ok;   /* hs_stack_frame_function: libdwfl's core unwinder */
	struct hs_frame_cache *frames;         /* and the threads' frames it found (roots.h) */
	struct hs_analysis *analysis;          /* graph.c: NULL until needed */
	struct hs_error *analysis_error;
	struct hs_dominators *dominators;      /* dominators.c: NULL until needed */
	struct hs_types *types;                /* types.c: a type per block; NULL until needed */

	struct hs_api_facts *api_facts;        /* api_tables.c: NULL until asked */
	/* pools.c: --pool specs (owned, NULL-terminated) and the pools found */
	char **pool_specs;
	size_t npool_specs;
	bool no_pool_detection;
	struct hs_pools *pools;
	struct hs_error *pools_error;
	hs_progress_fn progress_fn;            /* progress.c */
	void *progress_ctx;
	const char *progress_stage;
	uint64_t progress_total;
	/* Wall seconds per stage, in the order they first ran (--verbose). */
	struct hs_timings timings;
	struct hs_containers *containers;      /* containers.c: NULL until needed */
	struct hs_container_probes *probes;    /* the scan's for them, until they are found */
	struct hs_owners *owners;              /* owners.c: NULL until needed */
	struct hs_locals *locals;              /* locals.c: NULL until asked (hs_session_locals) */
	const char *command;                   /* the command being run (hs_session_run) */
	struct hs_gort *go_rt;                /* go_rt.c: the Go heap's runtime, with the analysis */
	struct hs_go_mark go_mark;             /* go_mark.c: its roots, counted */
	uint64_t *go_block_die;                /* go_types.c: per block its element type's DIE + 1 (bit 63: header) */
	struct hs_go_goroutines *goroutines;   /* go_goroutines.c: NULL until needed */
	struct hs_error *goroutines_error;
};

struct hs_error *hs_session_need_symbols(struct hs_session *s);
struct hs_error *hs_session_need_heap(struct hs_session *s);
struct hs_analysis;
/* The root set, pointer graph, reachability and leak classes (graph.h). */
struct hs_error *hs_session_need_analysis(struct hs_session *s);
/* Every goroutine of a Go program (go_goroutines.h), read once: stack
 * bounds for stack roots, states, wait reasons, stacks, channels waited on.
 * HS_ERR_HEAP with why on a target that is no Go program or whose
 * goroutines cannot be read. */
struct hs_go_goroutines;
struct hs_error *hs_session_need_goroutines(struct hs_session *s);
/* A type per block (types.h) in s->types: certain types, the containers'
 * names for their nodes (containers.h), then inferred types; needs the
 * analysis.  Idempotent. */
struct hs_error *hs_session_need_types(struct hs_session *s);
/* The program's containers (containers.h) in s->containers: found, named,
 * their nodes and elements typed; hs_session_need_types runs it between the
 * certain and the inferred types. */
struct hs_error *hs_session_need_containers(struct hs_session *s);
/* The containers and how each is reached (anchors); and then their retained
 * bytes and findings. */
struct hs_error *hs_session_need_container_anchors(struct hs_session *s);
struct hs_error *hs_session_need_container_retained(struct hs_session *s);
/* The name of the member at byte offset off of block i ("next",
 * "entries[3]"), when its type is known with its members (DWARF, or the Go
 * runtime's types); false otherwise. */
bool hs_block_field(struct hs_session *s, size_t i, uint64_t off, char *buf, size_t len);
struct hs_dominators;
/* The dominator tree and retained sizes (dominators.h) in s->dominators. */
struct hs_error *hs_session_need_dominators(struct hs_session *s);
struct hs_owners;
/* Retained bytes per root (containers.h) in s->owners; needs the types and
 * the containers' anchors. */
struct hs_error *hs_session_need_owners(struct hs_session *s);
/* Declared and detected pools (pools.h) in s->pools; then their pollution
 * (needs the graph when there are pooled objects). */
struct hs_error *hs_session_need_pools(struct hs_session *s);
struct hs_error *hs_session_need_pool_analysis(struct hs_session *s);
/* HS_ERR_HEAP "WHAT is not supported for Go heaps yet WHY; ... work" when the
 * walked heap (hs_session_need_heap first) has the Go runtime's; else NULL. */
struct hs_error *hs_session_go_unsupported(struct hs_session *s, const char *what, const char *why);
/* HS_ERR_HEAP when the heap is Go's and reachability from its roots is not
 * complete yet (goroutine stacks missing); else NULL. */
struct hs_error *hs_session_go_reach_unsupported(struct hs_session *s);
bool hs_session_go_reach_ok(const struct hs_session *s);
/* Is one of the walked heaps the Go runtime's? */
bool hs_session_heap_is_go(const struct hs_session *s);
/* The function whose frame holds stack address addr of thread tid (cores,
 * not Go: libdwfl's unwinder, attached once, roots.c's hs_stack_frame_unwind);
 * false when unknown. */
bool hs_stack_frame_function(struct hs_session *s, int tid, uint64_t addr, char *buf, size_t len);
/* The program's local and TLS variables (locals.h), created on the first ask
 * once the graph's roots are there (a variable is named only inside them);
 * NULL before, or on no memory. */
struct hs_locals *hs_session_locals(struct hs_session *s);
struct hs_expr_result;
/* An expression over the program's variables (expr.h: "g_pool.free_head"),
 * loading the symbols when it names one. */
struct hs_error *hs_session_expr_eval(struct hs_session *s, const char *text, struct hs_expr_result *ret);
/* The context walker w (an index in hs_walkers) sees: the target, symbols,
 * options, and this session's diagnostics; arena_base follows the
 * allocators already described. */
void hs_session_walk_ctx(struct hs_session *s, size_t w, struct hs_walk_ctx *ctx);
/* A user override ("main_arena") if given. */
bool hs_session_override(const struct hs_session *s, const char *name, uint64_t *ret);
/* Adds now - since (hs_now, clock.h) to stage's time (a static name:
 * "walk", "scan", ...). */
void hs_session_time(struct hs_session *s, const char *stage, double since);

#endif
