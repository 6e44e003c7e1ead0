/* heapscope.h - the public C API of libheapscope.
 *
 * A session opens one target (an ELF core file or a live process), and runs
 * commands on it.  Every fallible function returns a struct hs_error * (NULL on
 * success) and writes its results to trailing out-parameters named ret.  An error
 * is owned by the caller and released with hs_error_destroy(); destroying NULL is
 * a no-op.  The library never prints and never exits: output goes through the
 * caller's hs_write_fn, and diagnostics are returned with the results.
 *
 * The ABI is plain C, with opaque handles, so that ctypes (the GDB extension) and
 * the CLI use the same entry points.
 */
#ifndef HEAPSCOPE_H
#define HEAPSCOPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HS_PUBLIC __attribute__((visibility("default")))

#define HEAPSCOPE_VERSION "0.1.0"
/* Bumped on any incompatible change of the functions below. */
#define HEAPSCOPE_ABI 1

struct hs_error;
struct hs_session;

/* Error codes; also the CLI's exit statuses map from them (see docs/cli.md). */
enum hs_error_code {
	HS_OK = 0,
	HS_ERR_NOMEM,        /* out of memory */
	HS_ERR_OS,           /* a system call failed (errno in the message) */
	HS_ERR_USAGE,        /* bad arguments or options */
	HS_ERR_TARGET,       /* the target cannot be read: not a core, truncated header, no such pid */
	HS_ERR_PERMISSION,   /* the target exists but may not be read */
	HS_ERR_NOT_DUMPED,   /* the memory existed in the process but is not in the core */
	HS_ERR_UNMAPPED,     /* the address is in no mapping at all */
	HS_ERR_NOT_FOUND,    /* a symbol, type, module or allocation was not found */
	HS_ERR_HEAP,         /* the heap could not be reconstructed */
	HS_ERR_INTERRUPTED,  /* hs_interrupt() was called */
	HS_ERR_OTHER,
};

HS_PUBLIC enum hs_error_code hs_error_code(const struct hs_error *err);
HS_PUBLIC const char *hs_error_message(const struct hs_error *err);
HS_PUBLIC void hs_error_destroy(struct hs_error *err);

/* Options for opening a session.  Zero-initialise, then set what you need. */
struct hs_options {
	const char *exe;             /* the executable, when the core's own path is not right */
	const char *sysroot;         /* prefix for every file path found in the core */
	const char *const *debug_dirs; /* NULL-terminated list of extra debug directories */
	int no_debuginfo;            /* ignore all separate debug info */
	const char *allocator;       /* "auto" (NULL), "glibc", "jemalloc" */
	int jobs;                    /* threads for scans; 0 = number of CPUs (max 2 by default) */
	int exact_pointers;          /* only pointers to the start of an allocation are edges */
	/* Address overrides for the allocator walkers ("main_arena=0x...,mp_=0x..."). */
	const char *overrides;
};

HS_PUBLIC struct hs_error *hs_session_open_core(const char *core_path,
						const struct hs_options *opts,
						struct hs_session **ret);
/* Open a live process.  The caller must have stopped every thread of it (the CLI
 * seizes them; GDB already has).  Memory is read from /proc/PID/mem. */
HS_PUBLIC struct hs_error *hs_session_open_pid(int pid, const struct hs_options *opts,
					       struct hs_session **ret);
HS_PUBLIC void hs_session_destroy(struct hs_session *s);

/* Replace the registers of the live process's threads (GDB supplies them).
 * regs is in the layout of struct user_regs_struct (27 words on x86-64). */
HS_PUBLIC struct hs_error *hs_session_set_thread_regs(struct hs_session *s, int tid,
						      const uint64_t *regs, size_t nregs);

typedef int (*hs_write_fn)(void *ctx, const char *buf, size_t len);

enum hs_format { HS_FORMAT_TEXT = 0, HS_FORMAT_JSON = 1 };

/* Run one command ("info", "summary", ...) with its own arguments, as the CLI
 * does.  argv[0] is the command name.  Output goes to write(ctx, ...); a nonzero
 * return from write stops the command (a pager's "q") without an error.
 * *status_ret gets the command's exit status (0, or 1 for --fail-on-leaks). */
HS_PUBLIC struct hs_error *hs_session_run(struct hs_session *s, int argc,
					  const char *const *argv, enum hs_format format,
					  hs_write_fn write, void *ctx, int *status_ret);

/* With HS_FORMAT_JSON, a command that fails still writes one JSON document:
 * what it wrote so far, closed, with an "error" member {code, message}, or a
 * document of its own {schema, command, error, diagnostics} (docs/json.md). */

/* The stable name of an error code in JSON error documents ("target", ...). */
HS_PUBLIC const char *hs_error_code_name(enum hs_error_code code);
/* Write a JSON error document {schema, command, error: {code, message}} for a
 * failure outside hs_session_run (opening the target, the front end's own
 * usage errors).  command may be NULL. */
HS_PUBLIC void hs_write_json_error(enum hs_error_code code, const char *message,
				   const char *command, hs_write_fn write, void *ctx);

/* Ask a running command to stop at its next check (safe from a signal handler
 * or another thread); the command returns HS_ERR_INTERRUPTED. */
HS_PUBLIC void hs_interrupt(void);
HS_PUBLIC void hs_interrupt_clear(void);

HS_PUBLIC const char *hs_version(void);
HS_PUBLIC int hs_abi(void);

#ifdef __cplusplus
}
#endif
#endif /* HEAPSCOPE_H */
