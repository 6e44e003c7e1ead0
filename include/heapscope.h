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
	/* Application pools (docs/cli.md, "pools"): NULL-terminated --pool specs
	 * EXPR[:LINK], and whether to skip the detection of undeclared ones. */
	const char *const *pools;
	int no_pool_detection;
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

/* ---- Commands on a live process that write cores: capture and watch ------------
 *
 * "capture -o FILE ..." writes one core of process pid; "watch ... -o DIR"
 * polls its memory (RSS or its cgroup) and takes a core whenever a threshold
 * is crossed (docs/cli.md has both).  The library writes the cores and the
 * report (text or JSON through write); the front end stops and resumes the
 * process, since it owns ptrace: */
struct hs_live_ops {
	/* Stop every thread of pid (the library reads its registers and memory):
	 * 0 and the thread ids (valid until resume), or an errno. */
	int (*stop)(void *ctx, int pid, const int **tids_ret, size_t *ntids_ret);
	/* Let the process go; called after every stop, failed or not. */
	void (*resume)(void *ctx);
	/* The temporary file being written, NULL once it is named or removed: a
	 * front end that dies of a signal meanwhile removes it.  May be NULL. */
	void (*temp_file)(void *ctx, const char *path);
	/* A line for the user beside the output ("...; 2 cores taken"). May be NULL. */
	void (*message)(void *ctx, const char *text);
	void *ctx;
};
/* Is name a live command ("capture", "watch")? */
HS_PUBLIC int hs_live_command(const char *name);
/* Why pid cannot be stopped to be read, after the kernel said e (from
 * PTRACE_SEIZE, or 0 before trying): the whole message, "cannot stop pid N
 * (comm) to read it (...): " and what /proc and the kernel's settings tell (a
 * kernel thread, a zombie, a tracer's pid and name, kernel.yama.ptrace_scope,
 * another user); buf is always NUL-terminated.  Returns 1 when pid can never
 * be read (a kernel thread, a zombie: worth saying before trying), else 0. */
HS_PUBLIC int hs_pid_refusal(int pid, int e, char *buf, size_t len);
/* Run a live command (argv[0] is its name) on pid.  An error says why it
 * failed (no core was taken, or the last one failed: watch's JSON document is
 * still closed); *status_ret is 130 when watch was interrupted between polls
 * (hs_interrupt), else 0. */
HS_PUBLIC struct hs_error *hs_live_run(int pid, int argc, const char *const *argv, enum hs_format format,
				       hs_write_fn write, void *ctx, const struct hs_live_ops *ops,
				       int *status_ret);

/* ---- Facts and tables ---------------------------------------------------------
 *
 * Everything a front end needs to know besides the commands' output: what the
 * target is, which commands and options exist and which values they accept, the
 * names of block states, and what each error code means.  The CLI and the GDB
 * extension take all of it from here; neither keeps a copy.  Tables are static
 * (valid for the life of the process); facts belong to the session.
 */

/* The target, from the core's headers and notes or from /proc. */
struct hs_target_facts {
	const char *kind;               /* "core" or "live" */
	const char *path;               /* the core file, or "/proc/PID" */
	int pid;                        /* the process (the core's, or the live one) */
	uint64_t file_size;             /* the core's size in bytes; 0 for a live process */
	uint64_t missing_bytes;         /* dumped bytes that lie beyond the end of a truncated core */
	int truncated;                  /* missing_bytes != 0: results cover only what is there */
	size_t nthreads;
	const int *tids;                /* nthreads thread ids, in the target's order */
	size_t nfiles;
	const char *const *files;       /* the mapped files (NT_FILE), each once; NULL-terminated */
};
/* After a command walked the heap: why an allocator that is in the target was
 * not walked while others were (auto mode, e.g. an unsupported jemalloc beside
 * glibc), or NULL.  The results lack its blocks: the CLI exits 4. */
HS_PUBLIC const char *hs_session_heap_incomplete(struct hs_session *s);
/* Valid until the next call for this session, or until it is destroyed. */
HS_PUBLIC struct hs_error *hs_session_target_facts(struct hs_session *s,
						   const struct hs_target_facts **ret);

/* One loaded module (the executable, shared libraries, the vDSO). */
struct hs_module_facts {
	const char *name;               /* as the target names it */
	const char *path;               /* the ELF file used, or NULL when not found */
	const char *debug_path;         /* the separate debug file, or NULL */
	const char *build_id;           /* lowercase hex, "" when unknown */
	uint64_t start, end;            /* load range [start, end) */
	int is_main;                    /* the executable */
	int has_debuginfo;              /* DWARF found */
	int build_id_mismatch;          /* a file was found at path, with another build-id */
};
/* The modules (this loads symbols: the first call may take a moment).  The array
 * is valid until the session is destroyed. */
HS_PUBLIC struct hs_error *hs_session_modules(struct hs_session *s,
					      const struct hs_module_facts **ret, size_t *nret);
/* HS_ERR_TARGET when hs_options.exe was given and is not the program that wrote
 * the target (build-ids differ); NULL otherwise. */
HS_PUBLIC struct hs_error *hs_session_check_exe(struct hs_session *s);

/* What an option's value is. */
enum hs_option_kind {
	HS_OPTION_FLAG = 0,             /* no value */
	HS_OPTION_NUMBER,               /* 4096, 0x1000, 4K, 1M, 1G */
	HS_OPTION_CHOICE,               /* one of values[] */
	HS_OPTION_TEXT,                 /* free text the library checks */
	HS_OPTION_PATH,                 /* a file or directory */
	HS_OPTION_ADDRESS,              /* an address (in GDB: an expression) */
};

struct hs_option_info {
	const char *name;               /* "--where" */
	enum hs_option_kind kind;
	const char *metavar;            /* "W", "N", "PATH"; NULL for a flag */
	const char *help;               /* one line */
	const char *const *values;      /* HS_OPTION_CHOICE: the accepted values, NULL-terminated */
	/* Global options only: where the value goes.  "session" (struct hs_options),
	 * "output" (--json), or "front-end" (--pid, --quiet: the caller's business). */
	const char *scope;
};

struct hs_command_info {
	const char *name;               /* "chunks" */
	const char *usage;              /* "chunks [--used|--free] ..." */
	const char *summary;            /* one line */
	const char *help;               /* more text, "" when none */
	const char *example;            /* "hs chunks --free", or NULL */
	const char *argument;           /* the positional argument ("ADDR"), or NULL */
	/* JSON array whose first element's "address" is the command's last address
	 * (GDB's $hs_last), or NULL. */
	const char *last;
	size_t noptions;
	const struct hs_option_info *options;   /* noptions entries */
};

/* The commands hs_session_run knows, in --help order. */
HS_PUBLIC const struct hs_command_info *hs_command_table(size_t *nret);
/* One command's help: the same text for `heapscope help CMD`, `heapscope CORE
 * CMD --help` and GDB's `help hs CMD`; NULL for an unknown command. */
HS_PUBLIC const char *hs_command_help(const char *name);
/* "Did you mean": the command (command NULL, word not starting with '-'), the
 * global option (command NULL) or the option of command closest to word, when
 * it is close enough to be a typo; else NULL. */
HS_PUBLIC const char *hs_suggest(const char *word, const char *command);
/* The options before the command (CLI) or with any command (GDB). */
HS_PUBLIC const struct hs_option_info *hs_global_option_table(size_t *nret);

/* Session options built from global options by name, so that every front end
 * accepts exactly the same values: create a set, apply "--exe" "/bin/x",
 * "--no-debuginfo" NULL, ... (scope "session" in the table), then open a session
 * with hs_optset_options().  Set applies HS_ERR_USAGE to an unknown option or a
 * bad value ("--jobs 0", "--allocator tcmalloc", "--glibc-version 2").  The set
 * owns every string; destroy it after the session is open. */
struct hs_optset;
HS_PUBLIC struct hs_error *hs_optset_create(struct hs_optset **ret);
HS_PUBLIC struct hs_error *hs_optset_set(struct hs_optset *set, const char *name,
					 const char *value);
HS_PUBLIC const struct hs_options *hs_optset_options(struct hs_optset *set);
HS_PUBLIC void hs_optset_destroy(struct hs_optset *set);

/* Name lists, NULL-terminated. */
HS_PUBLIC const char *const *hs_where_names(void);     /* "used", ..., "free-unlisted" */
HS_PUBLIC const char *const *hs_state_names(void);     /* "used", "free", "meta" */
HS_PUBLIC const char *const *hs_allocator_names(void); /* "auto", "glibc", "jemalloc" */
/* The words of struct user_regs_struct, in order (hs_session_set_thread_regs). */
HS_PUBLIC const char *const *hs_register_names(void);

struct hs_error_info {
	enum hs_error_code code;
	const char *name;               /* "HS_ERR_USAGE" */
	const char *meaning;            /* one line */
	int exit_open;                  /* the CLI's exit status when opening the target fails */
	int exit_run;                   /* ... when a command fails */
};
HS_PUBLIC const struct hs_error_info *hs_error_table(size_t *nret);
/* The CLI's exit status for err (0 for NULL); opening: the target did not open. */
HS_PUBLIC int hs_error_exit_status(const struct hs_error *err, int opening);

HS_PUBLIC const char *hs_version(void);
HS_PUBLIC int hs_abi(void);

/* Progress of long work (the heap walk, the pointer scan, dominators, ...):
 * fn(ctx, stage, done, total) is called when a stage begins (done 0), now and
 * then while it runs, and when it ends (done == total, total 1 when the
 * amount of work was not known: total 0 meanwhile).  It runs on the thread of
 * the command; it must not call back into the session.  The library never
 * prints: drawing the progress is the front end's job.  fn NULL: none. */
typedef void (*hs_progress_fn)(void *ctx, const char *stage, uint64_t done, uint64_t total);
HS_PUBLIC void hs_session_set_progress(struct hs_session *s, hs_progress_fn fn, void *ctx);

/* How long each analysis stage took (wall seconds), in the order the stages
 * first ran in this session (--verbose), and the number of scan threads.
 * The array is the session's, valid until the session is destroyed. */
struct hs_stage_timing {
	const char *stage;              /* "walk", "index", "scan", "types", ... */
	double seconds;
};
HS_PUBLIC void hs_session_timings(const struct hs_session *s, const struct hs_stage_timing **ret,
				  size_t *nret, int *jobs_ret);

#ifdef __cplusplus
}
#endif
#endif /* HEAPSCOPE_H */
