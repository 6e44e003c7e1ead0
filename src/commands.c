/* commands.c - the command table, argument parsing, and hs_session_run. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api_tables.h"
#include "commands.h"

/* Options: each declared once, here, with the field of the command's struct
 * hs_NAME_opts (src/commands.h) that hs_cmd_parse fills. */
#define FLAG HS_FLAG
#define NUMBER HS_NUMBER
#define CHOICE HS_CHOICE
#define PATHOPT HS_PATH
#define OPTIONS HS_OPTIONS

static const char *const by_values[] = { "type", "size", "type+size", NULL };
static const char *const export_formats[] = { "pprof", "folded", NULL };

/* The commands, in --help order.  Adding one: docs/architecture.md. */
const struct hs_command hs_commands[] = {
	{ "info", "info", "process, threads, modules and the memory map by category", hs_cmd_info,
	  .help = "The target, its threads with their stacks, the modules with build-ids and\n"
		  "debug info, and every mapping by category.",
	  .example = "hs info" },
	{ "summary", "summary [--leaks]", "allocator, arenas, bytes in use and free; --leaks: and leaked (the default command)", hs_cmd_summary,
	  OPTIONS(summary, FLAG(summary, leaks, "--leaks", "also the leaked and unreferenced totals (the pointer graph)"),
		  FLAG(summary, no_leaks, "--no-leaks", "the walk alone (the default)")),
	  .help = "Bytes in use and free by where they sit; with --leaks also the leaked and\n"
		  "unreferenced totals from the pointer graph.",
	  .example = "hs summary --leaks" },
	{ "arenas", "arenas", "every arena with its heaps and totals", hs_cmd_arenas,
	  .example = "hs arenas" },
	{ "chunks", "chunks [--used|--free] [--arena N] [--where W] [--min-size N] [--limit N]",
	  "every allocation and free block (streams)", hs_cmd_chunks,
	  OPTIONS(chunks, FLAG(chunks, used, "--used", "allocations only"), FLAG(chunks, free_, "--free", "free blocks only"),
		  NUMBER(chunks, arena, "--arena", "N", "arena N only"),
		  NUMBER(chunks, min_size, "--min-size", "N", "blocks of at least N bytes"),
		  NUMBER(chunks, limit, "--limit", "N", "at most N blocks"),
		  CHOICE(chunks, where, "--where", "W", "only blocks where W says (the WHERE column)", hs_api_where_list)),
	  .last = "allocations",
	  .example = "hs chunks --used --min-size 1M" },
	{ "bins", "bins [--arena N]", "every free list: tcache, fastbins, bins", hs_cmd_bins,
	  OPTIONS(bins, NUMBER(bins, arena, "--arena", "N", "arena N only")),
	  .example = "hs bins --arena 0" },
	{ "show", "show ADDR [--bytes N]", "the block holding ADDR, with an annotated hexdump", hs_cmd_show,
	  OPTIONS(show, NUMBER(show, bytes, "--bytes", "N", "dump at most N bytes (default 256)")),
	  .argument = "ADDR",
	  .help = "ADDR is any address in the block (in GDB: any expression: a pointer, a\n"
		  "register, a symbol).",
	  .example = "hs show $rdi --bytes 64" },
	{ "leaks", "leaks [--list] [--limit N] [--min-size N] [--fail-on-leaks]",
	  "leaked allocations grouped by type and size", hs_cmd_leaks,
	  OPTIONS(leaks, FLAG(leaks, list, "--list", "list the leaked objects"),
		  NUMBER(leaks, limit, "--limit", "N", "at most N groups or objects"),
		  NUMBER(leaks, min_size, "--min-size", "N", "allocations of at least N bytes"),
		  FLAG(leaks, fail_on_leaks, "--fail-on-leaks", "exit status 1 (in GDB: an error) when anything leaked")),
	  .last = "objects",
	  .help = "Leaked: in use and unreachable from every root.  --list lists the objects;\n"
		  "--fail-on-leaks makes the command fail when there are any.",
	  .example = "hs leaks --list --limit 20" },
	{ "histogram", "histogram [--used|--leaked|--free] [--by type|size|type+size] [--limit N]",
	  "allocations grouped by type and size", hs_cmd_histogram,
	  OPTIONS(histogram, FLAG(histogram, used, "--used", "allocations in use"),
		  FLAG(histogram, leaked, "--leaked", "leaked allocations"),
		  FLAG(histogram, free_, "--free", "free blocks"),
		  CHOICE(histogram, by, "--by", "KEY", "group by type, size or both", by_values),
		  NUMBER(histogram, limit, "--limit", "N", "at most N rows (default 50; JSON: every row)")),
	  .example = "hs histogram --leaked --by type" },
	{ "chain", "chain ADDR [--max-hops N]", "a shortest reference chain from a root to ADDR", hs_cmd_chain,
	  OPTIONS(chain, NUMBER(chain, max_hops, "--max-hops", "N", "at most N lines of hops, the first and the last kept (default 20; 0: all)")),
	  .argument = "ADDR",
	  .help = "ADDR is any address in the block (in GDB: any expression).  Hops alike (the\n"
		  "same type and member, as down a linked list) are one line: 'x 9,999,997'.",
	  .example = "hs chain my_table->slots[3]" },
	{ "refs", "refs ADDR", "every root and allocation that points at ADDR", hs_cmd_refs,
	  .argument = "ADDR", .help = "ADDR is any address in the block (in GDB: any expression).",
	  .example = "hs refs $hs_last" },
	{ "top", "top [--limit N] [--depth N]", "the allocations that retain the most memory, as a tree of owners", hs_cmd_top,
	  OPTIONS(top, NUMBER(top, limit, "--limit", "N", "at most N objects (default 20), and N children of each"),
		  NUMBER(top, depth, "--depth", "N", "unfold N levels of what each keeps alive (default 0, at most 100)")),
	  .last = "objects",
	  .help = "The dominator tree: an allocation kept alive only through another is folded\n"
		  "under it (a list of 10 M nodes is one row); --depth N unfolds N levels.\n"
		  "OWNER is the root holding the row: a global, a thread's frame, TLS, a\n"
		  "register; 'shared: ...' when several roots reach it, '(leaked)' when none.",
	  .example = "hs top --limit 10 --depth 2" },
	{ "pools", "pools [--list] [--declared|--detected]",
	  "application object pools (free lists, Go sync.Pools): pooled objects, pollution", hs_cmd_pools,
	  OPTIONS(pools, FLAG(pools, list, "--list", "list every pooled object"),
		  FLAG(pools, declared, "--declared", "only pools given with --pool"),
		  FLAG(pools, detected, "--detected", "only pools found without a --pool spec")),
	  .last = "pools",
	  .help = "Free lists the program keeps itself: declared with --pool EXPR[:LINK], or\n"
		  "detected (docs/cli.md gives the rule); a Go program's sync.Pools, by\n"
		  "per-P cache and type.  polluted: pooled objects still pointing at heap\n"
		  "memory; polluted_retained: the bytes only they keep alive.",
	  .example = "hs pools --list" },
	{ "export", "export --format pprof|folded [-o FILE]",
	  "who holds the memory, as a pprof profile or folded stacks (flame graphs)", hs_cmd_export,
	  OPTIONS(export, CHOICE(export, format, "--format", "FORMAT", "pprof (gzipped profile.proto) or folded (flame graph lines)",
			 export_formats),
		  PATHOPT(export, file, "-o", "FILE", "write to FILE (atomically) instead of stdout"),
		  PATHOPT(export, file, "--output", "FILE", "the same as -o")),
	  .help = "Every allocation in use as a stack: the root holding it, the types of its\n"
		  "owners down the dominator tree, its own type.  Totals are the bytes in use.\n"
		  "On a Go heap the unreachable are [garbage] (awaiting GC), never [leaked].\n"
		  "In GDB give -o FILE for pprof (it is binary).",
	  .example = "hs export --format folded -o heap.folded" },
	{ "diff", "diff OLD-CORE [--limit N] [--force]",
	  "what grew since an older core of the same program, by type, owner and leaks", hs_cmd_diff,
	  OPTIONS(diff, FLAG(diff, force, "--force", "compare even when the build-ids differ"),
		  NUMBER(diff, limit, "--limit", "N", "at most N rows per table (default 20)")),
	  .argument = "OLD-CORE",
	  .help = "OLD-CORE is the file name of an older core of the same program (in GDB\n"
		  "too: it is not an expression).  Between two Go cores the unreachable are\n"
		  "garbage awaiting GC, never leaked.",
	  .example = "hs diff /var/cores/yesterday.core" },
	{ "report", "report [--html] [-o FILE]", "a one-page triage of the core (text, or one HTML file)", hs_cmd_report,
	  OPTIONS(report, FLAG(report, html, "--html", "one self-contained HTML page"),
		  PATHOPT(report, file, "-o", "FILE", "write to FILE (atomically) instead of stdout"),
		  PATHOPT(report, file, "--output", "FILE", "the same as -o")),
	  .help = "The process, where the memory went, the allocator, the top owners and\n"
		  "retainers, the leak suspects, the biggest maps and pools.  On a Go heap the\n"
		  "unreachable are garbage awaiting GC (the next GC frees it), never leaks.",
	  .example = "hs report --html -o triage.html" },
	{ "maps", "maps [--limit N]", "every hash map and tree: count, buckets, chains, bytes, retained", hs_cmd_maps,
	  OPTIONS(maps, NUMBER(maps, limit, "--limit", "N", "at most N containers")),
	  .last = "containers",
	  .help = "std::unordered_map/set (+multi), std::map/set (+multi), GHashTable and uthash\n"
		  "tables, found by their shape and named by DWARF when there is some; Go maps\n"
		  "(go1.19-1.23 buckets, go1.24 Swiss tables: overflow buckets, tombstones)\n"
		  "through their Go types, which need the executable's DWARF.",
	  .example = "hs maps" },
	{ "map", "map ADDR|ANCHOR [--limit N]", "one container's entries: keys, nodes, values", hs_cmd_map,
	  OPTIONS(map, NUMBER(map, limit, "--limit", "N", "at most N entries")),
	  .argument = "ADDR",
	  .help = "ADDR is the container itself (g_sessions) or a pointer to it (g_table, the\n"
		  "head of a uthash table); in GDB any expression, in the CLI an address or an\n"
		  "anchor as maps shows it (main.sessions, main.registry.ByID for Go).",
	  .example = "hs map g_sessions --limit 10" },
	{ "owners", "owners [--limit N]", "retained bytes per root (global, thread) and per container", hs_cmd_owners,
	  OPTIONS(owners, NUMBER(owners, limit, "--limit", "N", "at most N rows of each list (default 20; JSON: every row)")),
	  .example = "hs owners" },
	{ "goroutines", "goroutines [--list] [--limit N]",
	  "a Go program's goroutines grouped by wait reason, blocking function and stack", hs_cmd_goroutines,
	  OPTIONS(goroutines, FLAG(goroutines, list, "--list", "also every goroutine: id, state, stack bounds, thread, channels"),
		  NUMBER(goroutines, limit, "--limit", "N", "at most N groups (default: all)")),
	  .help = "Every goroutine of a Go core or process (runtime.allgs), grouped like pprof's\n"
		  "goroutine profile by (wait reason, blocking function, stack); the blocking\n"
		  "function is the first frame outside the runtime, sync, time and syscall;\n"
		  "[system] marks the runtime's own goroutines.  Ends with the goroutines blocked\n"
		  "for good and the channels they wait on.  Not a Go program: exit status 4.",
	  .example = "hs goroutines" },
};
const size_t hs_ncommands = sizeof(hs_commands) / sizeof(hs_commands[0]);

const struct hs_command *hs_command_find(const char *name)
{
	for (size_t i = 0; i < hs_ncommands; i++)
		if (!strcmp(hs_commands[i].name, name))
			return &hs_commands[i];
	return NULL;
}

struct hs_error *hs_parse_u64(const char *text, const char *what, uint64_t *ret)
{
	char *end;
	if (!text || !*text || *text == '-')
		return hs_error_create(HS_ERR_USAGE, "%s: expected a number, got '%s'", what, text ? text : "");
	uint64_t v = strtoull(text, &end, 0);
	uint64_t mult = 1;
	if (*end && !end[1]) {
		switch (*end) {
		case 'k': case 'K': mult = 1ull << 10; end++; break;
		case 'm': case 'M': mult = 1ull << 20; end++; break;
		case 'g': case 'G': mult = 1ull << 30; end++; break;
		}
	}
	if (*end || end == text)
		return hs_error_create(HS_ERR_USAGE, "%s: expected a number, got '%s'", what, text);
	*ret = v * mult;
	return NULL;
}

static const struct hs_cmd_option *find_option(const struct hs_cmd_option *options, const char *arg, size_t nlen)
{
	for (const struct hs_cmd_option *o = options; o && o->info.name; o++)
		if (strlen(o->info.name) == nlen && !strncmp(o->info.name, arg, nlen))
			return o;
	return NULL;
}

// A global option after the command is a common slip: say where it goes.
static struct hs_error *unknown_option(struct hs_cmd *c, const char *arg, size_t nlen)
{
	char name[64];
	snprintf(name, sizeof(name), "%.*s", (int)nlen, arg);
	size_t n;
	const struct hs_option_info *g = hs_global_option_table(&n);
	for (size_t k = 0; k < n; k++)
		if (!strcmp(g[k].name, name))
			return hs_error_create(HS_ERR_USAGE, "%s: %s is a global option: put it before CORE "
					       "(heapscope %s CORE %s ...)", c->argv[0], name, name, c->argv[0]);
	const char *near = hs_suggest(name, c->cmd ? c->cmd->name : NULL);
	if (near)
		return hs_error_create(HS_ERR_USAGE, "%s: unknown option '%s' (did you mean %s?)", c->argv[0], arg, near);
	return hs_error_create(HS_ERR_USAGE, "%s: unknown option '%s' (see heapscope help %s)", c->argv[0], arg,
			       c->argv[0]);
}

struct hs_error *hs_cmd_parse(struct hs_cmd *c, void *opts, size_t size,
			      const char **pos, size_t max_pos, size_t *npos_ret)
{
	const struct hs_command *cmd = c->cmd;
	if (cmd && size != cmd->opts_size)
		return hs_error_create(HS_ERR_OTHER, "%s: its parser fills a struct of %zu bytes, its entry in src/commands.c "
				       "names one of %zu (struct hs_%s_opts)", cmd->name, size, cmd->opts_size, cmd->name);
	if (cmd && (max_pos > 0) != (cmd->argument != NULL))
		return hs_error_create(HS_ERR_OTHER, "%s: src/commands.c and its parser disagree about the argument",
				       cmd->name);
	if (c->probe)
		return hs_error_create(HS_ERR_OTHER, "probe");
	return hs_cmd_parse_with(c, cmd ? cmd->options : NULL, opts, pos, max_pos, npos_ret);
}

struct hs_error *hs_cmd_parse_with(struct hs_cmd *c, const struct hs_cmd_option *options, void *opts,
				   const char **pos, size_t max_pos, size_t *npos_ret)
{
	hs_api_tables_init();
	size_t npos = 0;
	bool options_done = false;
	for (int i = 1; i < c->argc; i++) {
		const char *arg = c->argv[i];
		if (!options_done && !strcmp(arg, "--")) {
			options_done = true;
			continue;
		}
		if (options_done || arg[0] != '-' || !arg[1]) {
			if (npos == max_pos)
				return hs_error_create(HS_ERR_USAGE, "%s: unexpected argument '%s'", c->argv[0], arg);
			pos[npos++] = arg;
			continue;
		}
		// --name=value or --name value
		const char *eq = strchr(arg, '=');
		size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
		const struct hs_cmd_option *o = find_option(options, arg, nlen);
		if (!o)
			return unknown_option(c, arg, nlen);
		const struct hs_option_info *t = &o->info;
		void *field = (char *)opts + o->offset;
		if (t->kind == HS_OPTION_FLAG) {
			if (eq)
				return hs_error_create(HS_ERR_USAGE, "%s: %s takes no value", c->argv[0], t->name);
			*(bool *)field = true;
			continue;
		}
		const char *val = eq ? eq + 1 : (i + 1 < c->argc ? c->argv[++i] : NULL);
		if (!val)
			return hs_error_create(HS_ERR_USAGE, "%s: %s needs a value", c->argv[0], t->name);
		if (!hs_option_value_ok(t, val)) {
			char list[512] = "";
			for (size_t k = 0; t->values[k]; k++) {
				size_t len = strlen(list);
				snprintf(list + len, sizeof(list) - len, "%s%s", k ? ", " : "", t->values[k]);
			}
			return hs_error_create(HS_ERR_USAGE, "%s: %s takes one of %s, not '%s'", c->argv[0], t->name, list, val);
		}
		if (t->kind == HS_OPTION_NUMBER)
			HS_CHECK(hs_parse_u64(val, t->name, (uint64_t *)field));
		else
			*(const char **)field = val;
	}
	if (npos_ret)
		*npos_ret = npos;
	else if (npos)
		return hs_error_create(HS_ERR_USAGE, "%s takes no arguments", c->argv[0]);
	return NULL;
}

void hs_cmd_limited(struct hs_cmd *c, const char *list, uint64_t shown, uint64_t total, const char *what)
{
	if (shown > total)
		shown = total;
	if (c->json) {
		char key[64];
		snprintf(key, sizeof(key), "%s_total", list);
		hs_json_ku64(c->out, key, total);
		snprintf(key, sizeof(key), "%s_truncated", list);
		hs_json_kbool(c->out, key, shown < total);
	} else if (shown < total && !c->out->stopped) {
		hs_out_printf(c->out, "  ... %" PRIu64 " more %s (--limit N)\n", total - shown, what);
	}
}

static void diagnostics_before_close(void *ctx)
{
	struct hs_cmd *c = ctx;
	if (!c->diagnostics_done)
		hs_cmd_diagnostics(c);
}

void hs_cmd_json_begin(struct hs_cmd *c, const char *command)
{
	c->out->before_close = diagnostics_before_close;
	c->out->before_close_ctx = c;
	hs_json_begin_object(c->out);
	hs_json_ku64(c->out, "schema", 1);
	hs_json_kstr(c->out, "version", hs_version());
	hs_json_kstr(c->out, "command", command);
}

static const char *diag_level_name(enum hs_diag_level l)
{
	return l == HS_DIAG_ERROR ? "error" : l == HS_DIAG_WARNING ? "warning" : "info";
}

void hs_cmd_diagnostics(struct hs_cmd *c)
{
	const struct hs_diags *d = &c->s->diags;
	c->diagnostics_done = true;
	if (c->json) {
		hs_json_key(c->out, "diagnostics");
		hs_json_begin_array(c->out);
		for (size_t i = 0; i < d->n; i++) {
			hs_json_begin_object(c->out);
			hs_json_kstr(c->out, "level", diag_level_name(d->items[i].level));
			hs_json_kstr(c->out, "stage", d->items[i].stage);
			hs_json_ku64(c->out, "address", d->items[i].address);
			hs_json_kstr(c->out, "message", d->items[i].message);
			hs_json_end_object(c->out);
		}
		hs_json_end_array(c->out);
		if (d->dropped)
			hs_json_ku64(c->out, "diagnostics_dropped", d->dropped);
		return;
	}
	// Text shows findings; how things were found (info) is for --json.
	size_t shown = 0;
	for (size_t i = 0; i < d->n; i++)
		shown += d->items[i].level != HS_DIAG_INFO;
	if (!shown)
		return;
	hs_out_printf(c->out, "\nDiagnostics (%zu):\n", shown + d->dropped);
	for (size_t i = 0; i < d->n; i++) {
		const struct hs_diag *g = &d->items[i];
		if (g->level == HS_DIAG_INFO)
			continue;
		hs_out_printf(c->out, "  %-7s %-8s ", diag_level_name(g->level), g->stage);
		if (g->address)
			hs_out_printf(c->out, "0x%" PRIx64 ": ", g->address);
		hs_out_printf(c->out, "%s\n", g->message);
	}
	if (d->dropped)
		hs_out_printf(c->out, "  ... and %zu more\n", d->dropped);
}

const char *hs_error_code_name(enum hs_error_code code)
{
	static const char *const names[] = {
		[HS_OK] = "ok", [HS_ERR_NOMEM] = "nomem", [HS_ERR_OS] = "os", [HS_ERR_USAGE] = "usage",
		[HS_ERR_TARGET] = "target", [HS_ERR_PERMISSION] = "permission",
		[HS_ERR_NOT_DUMPED] = "not_dumped", [HS_ERR_UNMAPPED] = "unmapped",
		[HS_ERR_NOT_FOUND] = "not_found", [HS_ERR_HEAP] = "heap",
		[HS_ERR_INTERRUPTED] = "interrupted", [HS_ERR_OTHER] = "other",
	};
	return (unsigned)code < sizeof(names) / sizeof(names[0]) && names[code] ? names[code] : "other";
}

static void json_error_member(struct hs_out *o, enum hs_error_code code, const char *message)
{
	hs_json_key(o, "error");
	hs_json_begin_object(o);
	hs_json_kstr(o, "code", hs_error_code_name(code));
	hs_json_kstr(o, "message", message);
	hs_json_end_object(o);
}

// A failed command still leaves one JSON document: its own, closed where it
// stopped, with an "error" member; or a new one when it wrote nothing.
static void json_error(struct hs_cmd *c, const char *command, const struct hs_error *err)
{
	struct hs_out *o = c->out;
	if (o->depth == 0 && !o->first[0])
		return;   // the document was whole before the error
	if (o->depth == 0)
		hs_cmd_json_begin(c, command);
	hs_json_unwind(o);
	json_error_member(o, hs_error_code(err), hs_error_message(err));
	hs_json_end_object(o);
	hs_json_done(o);
}

void hs_write_json_error(enum hs_error_code code, const char *message, const char *command,
			 hs_write_fn write, void *ctx)
{
	struct hs_out *o = malloc(sizeof(*o));
	if (!o)
		return;
	hs_out_init(o, write, ctx);
	o->indent = 2;
	hs_json_begin_object(o);
	hs_json_ku64(o, "schema", 1);
	hs_json_kstr(o, "version", hs_version());
	if (command)
		hs_json_kstr(o, "command", command);
	char *clean = hs_text_escape_dup(message ? message : "");
	json_error_member(o, code, clean ? clean : "out of memory");
	free(clean);
	// Nothing was analysed: no findings, but the member every document has.
	hs_json_key(o, "diagnostics");
	hs_json_begin_array(o);
	hs_json_end_array(o);
	hs_json_end_object(o);
	hs_json_done(o);
	free(o);
}

struct hs_error *hs_session_run(struct hs_session *s, int argc, const char *const *argv,
				enum hs_format format, hs_write_fn write, void *ctx, int *status_ret)
{
	static const char *const default_argv[] = { "summary", NULL };
	if (argc <= 0) {
		argc = 1;
		argv = default_argv;
	}
	const struct hs_command *cmd = hs_command_find(argv[0]);
	if (!cmd) {
		const char *near = hs_suggest(argv[0], NULL);
		struct hs_error *err = near && argv[0][0] != '-' ?
			hs_error_create(HS_ERR_USAGE, "unknown command '%s' (did you mean %s?)", argv[0], near) :
			hs_error_create(HS_ERR_USAGE, "unknown command '%s' (see heapscope --help)", argv[0]);
		if (format == HS_FORMAT_JSON)
			hs_write_json_error(err->code, err->message, NULL, write, ctx);
		return err;
	}
	struct hs_out *out = malloc(sizeof(*out));
	if (!out)
		return &hs_error_nomem;
	hs_out_init(out, write, ctx);
	if (format == HS_FORMAT_JSON)
		out->indent = 2;
	out->escape_text = format != HS_FORMAT_JSON;
	struct hs_cmd c = { .s = s, .out = out, .json = format == HS_FORMAT_JSON,
			    .argc = argc, .argv = argv, .cmd = cmd };
	hs_interrupt_clear();
	s->command = cmd->name;
	struct hs_error *err = cmd->run(&c);
	s->command = NULL;
	// Every command's output carries the diagnostics: JSON documents get them
	// as they close; text gets them here, also when the heap could not be
	// reconstructed (they say why), not after a usage error.
	if (c.json && err)
		json_error(&c, cmd->name, err);
	else if (!c.json && !c.diagnostics_done && (!err || err->code == HS_ERR_HEAP))
		hs_cmd_diagnostics(&c);
	hs_out_flush(out);
	free(out);
	if (status_ret)
		*status_ret = c.status;
	return err;
}
