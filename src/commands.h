/* commands.h - the command table shared by the CLI and the GDB extension, and
 * the small argument parser every command uses.  A command reads its own
 * arguments, asks the session for the stages it needs, and renders text or
 * JSON through struct hs_out.  Commands never print elsewhere.
 */
#ifndef HS_COMMANDS_H
#define HS_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
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
	/* Tests (tests/unit/test_tables.c): hs_cmd_parse only checks the
	 * command's call against its table entry and returns HS_ERR_OTHER
	 * "probe" (or the mismatch). */
	bool probe;
	bool diagnostics_done;      /* hs_cmd_diagnostics ran (else hs_session_run adds them) */
};

/* An option of a command, declared once, in the command's entry in
 * src/commands.c: what front ends see (info: name, kind, metavar, help,
 * values) and where hs_cmd_parse puts its value: the field at offset in the
 * command's options struct (below).  The field's type follows the kind: bool
 * for HS_OPTION_FLAG, uint64_t for HS_OPTION_NUMBER, const char * for the
 * others; HS_FLAG/HS_NUMBER/... check it when they compile. */
struct hs_cmd_option {
	struct hs_option_info info;
	size_t offset;
};

#define HS_OPT_FIELD(cmd, field, type) \
	_Generic(((struct hs_##cmd##_opts *)0)->field, type: offsetof(struct hs_##cmd##_opts, field))
#define HS_FLAG(cmd, field, name, help) \
	{ { name, HS_OPTION_FLAG, NULL, help, NULL, NULL }, HS_OPT_FIELD(cmd, field, bool) }
#define HS_NUMBER(cmd, field, name, meta, help) \
	{ { name, HS_OPTION_NUMBER, meta, help, NULL, NULL }, HS_OPT_FIELD(cmd, field, uint64_t) }
#define HS_CHOICE(cmd, field, name, meta, help, values) \
	{ { name, HS_OPTION_CHOICE, meta, help, (const char *const *)(values), NULL }, \
	  HS_OPT_FIELD(cmd, field, const char *) }
#define HS_TEXT(cmd, field, name, meta, help) \
	{ { name, HS_OPTION_TEXT, meta, help, NULL, NULL }, HS_OPT_FIELD(cmd, field, const char *) }
#define HS_PATH(cmd, field, name, meta, help) \
	{ { name, HS_OPTION_PATH, meta, help, NULL, NULL }, HS_OPT_FIELD(cmd, field, const char *) }
/* The options of command cmd ({0}-terminated) and the size of its struct
 * hs_CMD_opts, in a struct hs_command initializer. */
#define HS_OPTIONS(cmd, ...) \
	.options = (const struct hs_cmd_option[]){ __VA_ARGS__, { { 0 } } }, \
	.opts_size = sizeof(struct hs_##cmd##_opts)

/* Each command's options struct: hs_cmd_parse fills the fields its entry's
 * options name; the command sets the defaults before.  A new option is a
 * field here and one HS_FLAG/HS_NUMBER/... in the entry. */
struct hs_summary_opts { bool leaks, no_leaks; };
struct hs_chunks_opts { bool used, free_; uint64_t arena, min_size, limit; const char *where; };
struct hs_bins_opts { uint64_t arena; };
struct hs_show_opts { uint64_t bytes; };
struct hs_leaks_opts { bool list, fail_on_leaks; uint64_t limit, min_size; };
struct hs_histogram_opts { bool used, leaked, free_; const char *by; uint64_t limit; };
struct hs_chain_opts { uint64_t max_hops; };
struct hs_top_opts { uint64_t limit, depth; };
struct hs_pools_opts { bool list, declared, detected; };
struct hs_export_opts { const char *format, *file; };
struct hs_diff_opts { bool force; uint64_t limit; };
struct hs_report_opts { bool html; const char *file; };
struct hs_maps_opts { uint64_t limit; };
struct hs_map_opts { uint64_t limit; };
struct hs_owners_opts { uint64_t limit; };
struct hs_goroutines_opts { bool list; uint64_t limit; };

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
	/* Every option of the command, {0}-terminated, and the size of the
	 * struct hs_NAME_opts they fill (HS_OPTIONS sets both); none: NULL, 0. */
	const struct hs_cmd_option *options;
	size_t opts_size;
	const char *argument;       /* "ADDR" when it takes one positional address */
	const char *last;           /* JSON array whose first "address" is $hs_last in GDB */
	const char *help;           /* a paragraph for `help heapscope NAME`, or NULL */
	const char *example;        /* "hs chunks --free", or NULL */
};

extern const struct hs_command hs_commands[];
extern const size_t hs_ncommands;
const struct hs_command *hs_command_find(const char *name);

/* Parse argv[1..] of the command into opts (its struct hs_NAME_opts, size
 * bytes, defaults already set), by the options of its table entry; the rest
 * is positional (up to max_pos, count in *npos_ret).  NUMBER values accept
 * 0x.., and K/M/G suffixes; a CHOICE value must be one of the option's
 * values.  opts must be the struct the entry names (size: its size; NULL, 0
 * when it has no options), and max_pos > 0 exactly when the entry has an
 * argument: else HS_ERR_OTHER, before anything is parsed. */
struct hs_error *hs_cmd_parse(struct hs_cmd *c, void *opts, size_t size,
			      const char **pos, size_t max_pos, size_t *npos_ret);
/* The same with options outside the command table (the live commands,
 * src/live/live.c, whose c->cmd is NULL). */
struct hs_error *hs_cmd_parse_with(struct hs_cmd *c, const struct hs_cmd_option *options, void *opts,
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
