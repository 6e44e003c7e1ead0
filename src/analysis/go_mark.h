/* go_mark.h - the Go runtime's roots and pointer maps for the pointer graph
 * (see go_mark.c). */
#ifndef HS_GO_MARK_H
#define HS_GO_MARK_H

#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "roots.h"

struct hs_session;
struct hs_gort;

struct hs_go_mark {
	struct hs_gort *rt;            /* owned by the caller (hs_gort_close) */
	int (*pointer_bits)(const void *ctx, uint64_t addr, uint64_t size, uint64_t *bits);
	uint64_t global_words, finalizers, goroutines, signal_regs;
	bool stacks;                    /* goroutine stacks are among the roots */
};

/* The roots of the session's Go heap, and what the graph needs to scan it
 * precisely.  HS_ERR_NOT_FOUND when the heap has no Go allocator. */
struct hs_error *hs_go_roots_build(struct hs_session *s, struct hs_roots *ret, struct hs_go_mark *m);

/* The goroutine whose stack (or saved registers) holds addr, as "goroutine 17 (main.leakRecv)"
 * (its blocking function, else the one it runs); false when none does. */
bool hs_go_stack_root_name(struct hs_session *s, uint64_t addr, char *buf, size_t len, uint64_t *goid);

/* Is addr on the stack of a runtime goroutine (go_goroutines.h's system)? */
bool hs_go_stack_root_system(struct hs_session *s, uint64_t addr);

#endif
