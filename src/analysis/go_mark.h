/* go_mark.h - the Go runtime's roots and pointer maps for the pointer graph
 * (see go_mark.c). */
#ifndef HS_GO_MARK_H
#define HS_GO_MARK_H

#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "go_rt.h"
#include "roots.h"

struct hs_diags;
struct hs_go_goroutines;

struct hs_go_mark {
	struct hs_gort *rt;            /* owned by the caller (hs_gort_close) */
	int (*pointer_bits)(const void *ctx, uint64_t addr, uint64_t size, uint64_t *bits);
	uint64_t global_words, finalizers, goroutines, signal_regs;
	bool stacks;                    /* goroutine stacks are among the roots */
};

/* What hs_go_roots_build reads (the session fills it in: session.c). */
struct hs_go_mark_input {
	struct hs_gort_input rt;        /* the runtime to open (go_rt.h) */
	struct hs_diags *diags;         /* why the goroutine stacks are not roots */
	/* The program's goroutines (go_goroutines.h; the session reads them
	 * once: hs_session_need_goroutines), asked after the globals and the
	 * finalizers: NULL with *ret set, or an error (a warning: the stacks
	 * are not roots, m->stacks false).  goroutines NULL: the same, without
	 * the warning. */
	struct hs_error *(*goroutines)(void *ctx, const struct hs_go_goroutines **ret);
	void *ctx;
};

/* The roots of the walked Go heap, and what the graph needs to scan it
 * precisely.  HS_ERR_NOT_FOUND when the heap has no Go allocator. */
struct hs_error *hs_go_roots_build(const struct hs_go_mark_input *in, struct hs_roots *ret, struct hs_go_mark *m);

/* The goroutine of l (NULL: none) whose stack (or saved registers) holds
 * addr, as "goroutine 17 (main.leakRecv)" (its blocking function, else the
 * one it runs); false when none does. */
bool hs_go_stack_root_name(const struct hs_go_goroutines *l, uint64_t addr, char *buf, size_t len, uint64_t *goid);

/* The function whose frame holds the stack word at addr (NULL: none
 * known), and in *precise whether the word is a live pointer slot by the
 * stack maps (false: a word scanned word by word, or none a root). */
const char *hs_go_stack_word(const struct hs_go_goroutines *l, uint64_t addr, bool *precise);

/* Is addr on the stack of a runtime goroutine of l (go_goroutines.h's
 * system)?  l NULL: no. */
bool hs_go_stack_root_system(const struct hs_go_goroutines *l, uint64_t addr);

#endif
