/* go_goroutines.h - every goroutine of a Go program (go1.19, go1.21-1.24,
 * linux/amd64), read from runtime.allgs: state, wait reason (the runtime's
 * own strings), stack bounds, the unwound stack with function names, what it
 * waits on (channels from g.waiting's sudogs).
 *
 * Reading needs the executable's ELF symbols (runtime.allgs); every field is
 * looked up in its DWARF by name, with the go1.19-1.24 rows of
 * /work/shared/reference/go-runtime.md as the fallback for a binary built
 * with -ldflags=-w.  Stacks are unwound the runtime's way, by frame sizes
 * from .gopclntab's pcsp tables (read from the executable: a kernel core
 * leaves it out), and by frame pointers when the executable is not at hand.
 * Function names come from .gopclntab (the runtime's own), else .symtab.
 * What of a stack is a root is what the runtime's own garbage collector
 * scans: each frame's live pointer slots by its stack maps (the locals and
 * arguments bitmaps of pclntab's funcdata at the frame's pc) and the stack
 * objects they reach; word by word where no map can be trusted.
 *
 * Every list read from the target is bounded (allgs length, sudog chains,
 * frames); a goroutine whose g cannot be read is counted in unreadable.
 */
#ifndef HS_GO_GOROUTINES_H
#define HS_GO_GOROUTINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "walker.h"

#define HS_GO_MAX_FRAMES 100
#define HS_GO_MAX_WAITS 64
#define HS_GO_SIGNAL_REGS 23     /* a ucontext's gregs (x86-64) */

enum hs_go_gstatus {   /* runtime/runtime2.go, the same in every version read */
	HS_G_IDLE, HS_G_RUNNABLE, HS_G_RUNNING, HS_G_SYSCALL, HS_G_WAITING, HS_G_MORIBUND, HS_G_DEAD,
	HS_G_ENQUEUE, HS_G_COPYSTACK, HS_G_PREEMPTED,
};

struct hs_go_wait {
	uint64_t chan;               /* the *hchan a sudog of g.waiting names */
	const char *elem_type;       /* its element's Go type ("*main.Job"), or NULL */
};

struct hs_go_stack_range {
	uint64_t start, end;
	bool precise;
};

struct hs_go_goroutine {
	uint64_t g;                  /* the runtime.g */
	uint64_t goid, parent_goid;  /* parent_goid: 0 before go1.21 */
	unsigned status;             /* atomicstatus without _Gscan */
	const char *status_name;     /* "waiting", as the runtime's gStatusStrings */
	unsigned waitreason;
	const char *wait_reason;     /* runtime.waitReasonStrings[waitreason] when waiting, else NULL */
	int64_t waitsince;
	uint64_t stack_lo, stack_hi; /* [lo, hi): the goroutine's stack */
	/* Where the unwind started (also where a stack scan starts: [sp, hi)):
	 * "sched" (g.sched, a parked goroutine), "syscall" (syscallsp/pc),
	 * "thread" (the registers of the thread running it, tid), "signal"
	 * (its registers in the signal frame of the thread that crashed). */
	uint64_t sp, pc, bp;
	const char *regs_from;
	uint64_t regs_at;            /* "signal": where the kernel saved its general
					registers (HS_GO_SIGNAL_REGS words), else 0 */
	int tid;                     /* the thread running it (m.curg), 0 none */
	uint64_t startpc, gopc;      /* the function it runs; the `go` statement */
	const char *start_func, *created_by;   /* names, NULL unknown */
	bool system;                 /* start function in package runtime */
	uint64_t *frames;            /* PCs, innermost first (at most HS_GO_MAX_FRAMES) */
	const char **funcs;          /* their function names (NULL unknown) */
	size_t nframes;
	const char *unwind_stop;     /* why the unwind stopped short, or NULL */
	size_t blocking;             /* index of the first frame outside the runtime and
					the standard library's waiting primitives; nframes: none */
	struct hs_go_wait *waits;    /* at most HS_GO_MAX_WAITS */
	size_t nwaits;
	uint64_t *sps;               /* each frame's sp, as frames */
	/* The words of the stack the garbage collector scans, ascending and
	 * apart: precise ranges are live pointer slots by the executable's stack
	 * maps (and of the stack objects they reach); the others are scanned
	 * word by word, where there is no map to trust (no executable, a frame
	 * a signal stopped, an unwind cut short). */
	struct hs_go_stack_range *live;
	size_t nlive;
};

struct hs_go_goroutines {
	char version[32];            /* "go1.24.4", "" unknown */
	char layout[96];             /* where the offsets came from */
	const char *names;           /* "pclntab", "symtab", "none": function names' source */
	const char *unwinder;        /* "pclntab frame sizes" or "frame pointers" */
	struct hs_go_goroutine *g;   /* allgs order, dead ones left out */
	size_t n;
	uint64_t nallgs, ndead, unreadable;
	/* private */
	struct hs_go_rt *rt;
};

/* Reads every goroutine (HS_ERR_NOT_FOUND: not a Go program; HS_ERR_HEAP:
 * a Go program whose goroutines cannot be read, with why).  Findings go to
 * ctx's diagnostics.  Free with hs_go_goroutines_free. */
struct hs_error *hs_go_goroutines_list(struct hs_walk_ctx *ctx, struct hs_go_goroutines **ret);
void hs_go_goroutines_free(struct hs_go_goroutines *l);
/* The function name of pc (a return address: looked up at pc - 1 when
 * ret_addr), or NULL. */
const char *hs_go_func_name(struct hs_go_goroutines *l, uint64_t pc, bool ret_addr);

#endif
