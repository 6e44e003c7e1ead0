/* commands.c - the command table, argument parsing, and hs_session_run. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"

const struct hs_command hs_commands[] = {
	{ "info", "info", "process, threads, modules and the memory map by category", hs_cmd_info },
	{ "summary", "summary [--leaks]", "allocator, arenas, bytes in use and free; --leaks: and leaked (the default command)", hs_cmd_summary },
	{ "arenas", "arenas", "every arena with its heaps and totals", hs_cmd_arenas },
	{ "chunks", "chunks [--used|--free] [--arena N] [--where W] [--min-size N] [--limit N]",
	  "every allocation and free block (streams)", hs_cmd_chunks },
	{ "bins", "bins [--arena N]", "every free list: tcache, fastbins, bins", hs_cmd_bins },
	{ "show", "show ADDR [--bytes N]", "the block holding ADDR, with an annotated hexdump", hs_cmd_show },
	{ "leaks", "leaks [--list] [--limit N] [--min-size N] [--fail-on-leaks]",
	  "leaked allocations grouped by type and size", hs_cmd_leaks },
	{ "histogram", "histogram [--used|--leaked|--free] [--by type|size|type+size] [--limit N]",
	  "allocations grouped by type and size", hs_cmd_histogram },
	{ "chain", "chain ADDR", "a shortest reference chain from a root to ADDR", hs_cmd_chain },
	{ "refs", "refs ADDR", "every root and allocation that points at ADDR", hs_cmd_refs },
	{ "top", "top [--limit N]", "the allocations that retain the most memory", hs_cmd_top },
	{ "maps", "maps [--limit N]", "every hash map and tree: count, buckets, chains, bytes, retained", hs_cmd_maps },
	{ "map", "map ADDR|ANCHOR [--limit N]", "one container's entries: keys, nodes, values", hs_cmd_map },
	{ "owners", "owners [--limit N]", "retained bytes per root (global, thread) and per container", hs_cmd_owners },
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

struct hs_error *hs_cmd_parse(struct hs_cmd *c, const struct hs_opt *opts,
			      const char **pos, size_t max_pos, size_t *npos_ret)
{
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
		const struct hs_opt *o = opts;
		for (; o && o->name; o++)
			if (strlen(o->name) == nlen && !strncmp(o->name, arg, nlen))
				break;
		if (!o || !o->name)
			return hs_error_create(HS_ERR_USAGE, "%s: unknown option '%s'", c->argv[0], arg);
		if (o->kind == HS_OPT_FLAG) {
			if (eq)
				return hs_error_create(HS_ERR_USAGE, "%s: %s takes no value", c->argv[0], o->name);
			*(bool *)o->value = true;
			continue;
		}
		const char *val = eq ? eq + 1 : (i + 1 < c->argc ? c->argv[++i] : NULL);
		if (!val)
			return hs_error_create(HS_ERR_USAGE, "%s: %s needs a value", c->argv[0], o->name);
		if (o->kind == HS_OPT_STR)
			*(const char **)o->value = val;
		else
			HS_CHECK(hs_parse_u64(val, o->name, (uint64_t *)o->value));
	}
	if (npos_ret)
		*npos_ret = npos;
	else if (npos)
		return hs_error_create(HS_ERR_USAGE, "%s takes no arguments", c->argv[0]);
	return NULL;
}

void hs_cmd_json_begin(struct hs_cmd *c, const char *command)
{
	hs_json_begin_object(c->out);
	hs_json_ku64(c->out, "schema", 1);
	hs_json_kstr(c->out, "command", command);
}

static const char *diag_level_name(enum hs_diag_level l)
{
	return l == HS_DIAG_ERROR ? "error" : l == HS_DIAG_WARNING ? "warning" : "info";
}

void hs_cmd_diagnostics(struct hs_cmd *c)
{
	const struct hs_diags *d = &c->s->diags;
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

struct hs_error *hs_session_run(struct hs_session *s, int argc, const char *const *argv,
				enum hs_format format, hs_write_fn write, void *ctx, int *status_ret)
{
	static const char *const default_argv[] = { "summary", NULL };
	if (argc <= 0) {
		argc = 1;
		argv = default_argv;
	}
	const struct hs_command *cmd = hs_command_find(argv[0]);
	if (!cmd)
		return hs_error_create(HS_ERR_USAGE, "unknown command '%s' (see heapscope --help)", argv[0]);
	struct hs_out *out = malloc(sizeof(*out));
	if (!out)
		return &hs_error_nomem;
	hs_out_init(out, write, ctx);
	if (format == HS_FORMAT_JSON)
		out->indent = 2;
	struct hs_cmd c = { .s = s, .out = out, .json = format == HS_FORMAT_JSON,
			    .argc = argc, .argv = argv };
	hs_interrupt_clear();
	struct hs_error *err = cmd->run(&c);
	hs_out_flush(out);
	free(out);
	if (status_ret)
		*status_ret = c.status;
	return err;
}
