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
};

struct hs_command {
	const char *name;
	const char *usage;          /* "chunks [--used|--free] [--arena N] ..." */
	const char *summary;        /* one line */
	struct hs_error *(*run)(struct hs_cmd *c);
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
 * max_pos, count in *npos_ret).  U64 values accept 0x.., and K/M/G suffixes. */
struct hs_error *hs_cmd_parse(struct hs_cmd *c, const struct hs_opt *opts,
			      const char **pos, size_t max_pos, size_t *npos_ret);
/* Parse an address or size ("0x55..", "4096", "1M"). */
struct hs_error *hs_parse_u64(const char *text, const char *what, uint64_t *ret);

/* Every JSON document begins the same way. */
void hs_cmd_json_begin(struct hs_cmd *c, const char *command);
/* Diagnostics: JSON "diagnostics" array, or text lines at the end. */
void hs_cmd_diagnostics(struct hs_cmd *c);

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
struct hs_error *hs_cmd_maps(struct hs_cmd *c);
struct hs_error *hs_cmd_map(struct hs_cmd *c);
struct hs_error *hs_cmd_owners(struct hs_cmd *c);
/* Leaked and unreferenced totals (summary, leaks). */
void hs_report_leak_totals(struct hs_cmd *c);

#endif
