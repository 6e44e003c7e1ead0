/* commands.h - the command table shared by the CLI and the GDB extension, and
 * the small argument parser every command uses.  A command reads its own
 * arguments, asks the session for the stages it needs, and renders text or
 * JSON through struct hs_out.  Commands never print elsewhere.
 */
#ifndef HS_COMMANDS_H
#define HS_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>
#include "output.h"
#include "session.h"

struct hs_cmd {
	struct hs_session *s;
	struct hs_out *out;
	bool json;
	int argc;
	const char *const *argv;
	int status;                 /* exit status for the front end (0, or 1) */
	const struct hs_command *cmd;   /* the table entry being run */
	/* Tests (tests/unit/test_commands.c): hs_cmd_parse only checks the
	 * command's parser against its table entry and returns HS_ERR_OTHER
	 * "probe" (or the mismatch). */
	bool probe;
	bool diagnostics_done;      /* hs_cmd_diagnostics ran (else hs_session_run adds them) */
};

/* One command: one entry of hs_commands[] (src/commands.c).  The CLI and the
 * GDB extension take everything from it (hs_command_table() in heapscope.h):
 * the usage and help they show, the options with their kinds and values (GDB
 * completes and checks them, hs_cmd_parse checks them), the positional
 * argument (GDB evaluates ADDR as an expression), and $hs_last. */
struct hs_command {
	const char *name;
	const char *usage;          /* "chunks [--used|--free] [--arena N] ..." */
	const char *summary;        /* one line */
	struct hs_error *(*run)(struct hs_cmd *c);
	/* Every option the command's hs_cmd_parse call takes, {0}-terminated
	 * (hs_cmd_parse checks that the two agree). */
	const struct hs_option_info *options;
	const char *argument;       /* "ADDR" when it takes one positional address */
	const char *last;           /* JSON array whose first "address" is $hs_last in GDB */
	const char *help;           /* a paragraph for `help heapscope NAME`, or NULL */
	const char *example;        /* "hs chunks --free", or NULL */
};

extern const struct hs_command hs_commands[];
extern const size_t hs_ncommands;
const struct hs_command *hs_command_find(const char *name);

enum hs_opt_kind { HS_OPT_FLAG, HS_OPT_U64, HS_OPT_STR };
struct hs_opt {
	const char *name;           /* "--min-size" */
	enum hs_opt_kind kind;
	void *value;                /* bool *, uint64_t *, const char ** */
};
/* Parse argv[1..] of the command: options from opts, the rest positional (up to
 * max_pos, count in *npos_ret).  U64 values accept 0x.., and K/M/G suffixes.
 * opts must name exactly the options of the command's table entry, with
 * matching kinds (FLAG: HS_OPTION_FLAG, U64: HS_OPTION_NUMBER, STR: the
 * others), and max_pos > 0 exactly when the entry has an argument; a
 * HS_OPTION_CHOICE value must be one of the entry's values. */
struct hs_error *hs_cmd_parse(struct hs_cmd *c, const struct hs_opt *opts,
			      const char **pos, size_t max_pos, size_t *npos_ret);
/* An ADDR argument: a number, SYMBOL[+OFF], &SYMBOL[+OFF] or *SYMBOL[+OFF]
 * (src/help.c); HS_ERR_USAGE naming what when it is none of those. */
struct hs_error *hs_cmd_address(struct hs_cmd *c, const char *text, const char *what, uint64_t *ret);
/* Parse an address or size ("0x55..", "4096", "1M"). */
struct hs_error *hs_parse_u64(const char *text, const char *what, uint64_t *ret);

/* Every JSON document begins the same way; its "diagnostics" are added just
 * before the top-level object closes unless the command placed them. */
void hs_cmd_json_begin(struct hs_cmd *c, const char *command);
/* Diagnostics: JSON "diagnostics" array, or text lines at the end.  Every
 * command's output carries them: hs_session_run adds them to text output
 * that did not, and JSON documents get them when they close. */
void hs_cmd_diagnostics(struct hs_cmd *c);

/* After a list --limit cut (or could have cut): JSON "LIST_total" and
 * "LIST_truncated" (keys of the object holding the LIST array); text
 * "  ... N more WHAT (--limit N)" when shown < total.  One contract for every
 * limited list (docs/json.md). */
void hs_cmd_limited(struct hs_cmd *c, const char *list, uint64_t shown, uint64_t total, const char *what);

/* Commands, one file per report. */
struct hs_error *hs_cmd_info(struct hs_cmd *c);
struct hs_error *hs_cmd_summary(struct hs_cmd *c);
struct hs_error *hs_cmd_arenas(struct hs_cmd *c);
struct hs_error *hs_cmd_chunks(struct hs_cmd *c);
struct hs_error *hs_cmd_bins(struct hs_cmd *c);
struct hs_error *hs_cmd_show(struct hs_cmd *c);
struct hs_error *hs_cmd_leaks(struct hs_cmd *c);
struct hs_error *hs_cmd_histogram(struct hs_cmd *c);
struct hs_error *hs_cmd_chain(struct hs_cmd *c);
struct hs_error *hs_cmd_refs(struct hs_cmd *c);
struct hs_error *hs_cmd_top(struct hs_cmd *c);
struct hs_error *hs_cmd_pools(struct hs_cmd *c);
struct hs_error *hs_cmd_goroutines(struct hs_cmd *c);
struct hs_error *hs_cmd_export(struct hs_cmd *c);
struct hs_error *hs_cmd_diff(struct hs_cmd *c);
struct hs_error *hs_cmd_report(struct hs_cmd *c);
struct hs_error *hs_cmd_maps(struct hs_cmd *c);
struct hs_error *hs_cmd_map(struct hs_cmd *c);
struct hs_error *hs_cmd_owners(struct hs_cmd *c);
/* Leaked and unreferenced totals (summary, leaks). */
void hs_report_leak_totals(struct hs_cmd *c);

/* "allocators": each allocator found, its version, where its layout came
 * from and its layout facts (report_heap.c; summary and info). */
void hs_cmd_json_allocators(struct hs_cmd *c);

#endif
