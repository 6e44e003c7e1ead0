/* help.c - the text a user reads when asking for help or getting a name wrong:
 * one command's help (the same text for `heapscope help CMD`, `heapscope CORE
 * CMD --help` and GDB's `help hs CMD`), "did you mean" suggestions, and the
 * ADDR syntax every command with an address argument accepts.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api_tables.h"
#include "commands.h"
#include "expr.h"
#include "memory.h"
#include "target.h"

/* Built once per command, kept for the life of the process (reachable). */
static char *help_texts[64];

static void write_option(FILE *f, const struct hs_option_info *o)
{
	char left[64];
	snprintf(left, sizeof(left), "%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
	fprintf(f, "  %-21s %s\n", left, o->help);
	if (o->kind == HS_OPTION_CHOICE && o->values) {
		fprintf(f, "  %-21s %s:", "", o->metavar);
		for (size_t k = 0; o->values[k]; k++)
			fprintf(f, "%s %s", k ? "," : "", o->values[k]);
		fputc('\n', f);
	}
}

// The GDB-only parts of an example: expressions the command line cannot take.
static bool gdb_only(const char *example)
{
	return strpbrk(example, "$[") || strstr(example, "->");
}

static char *build_help(const struct hs_command *cmd)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	fprintf(f, "%c%s.\n\n", cmd->summary[0] >= 'a' && cmd->summary[0] <= 'z' ? cmd->summary[0] - 'a' + 'A' :
		cmd->summary[0], cmd->summary + 1);
	fprintf(f, "Usage: heapscope [GLOBAL OPTIONS] CORE %s\n", cmd->usage);
	fprintf(f, "       (gdb) hs %s\n", cmd->usage);
	if (cmd->help)
		fprintf(f, "\n%s\n", cmd->help);
	if (cmd->argument && !strcmp(cmd->argument, "ADDR"))
		fputs("\nADDR on the command line: a number (0x55d0c8a012a0), SYMBOL[+OFF] (the\n"
		      "symbol's address, as show and chain print it: g_table+0x10), &SYMBOL (the\n"
		      "same) or *SYMBOL[+OFF] (the pointer stored at SYMBOL, plus OFF).\n", f);
	if (cmd->options && cmd->options[0].info.name) {
		fputs("\nOptions:\n", f);
		for (const struct hs_cmd_option *o = cmd->options; o->info.name; o++)
			write_option(f, &o->info);
	}
	const char *ex = cmd->example;
	char fallback[64];
	if (!ex) {
		snprintf(fallback, sizeof(fallback), "hs %s", cmd->name);
		ex = fallback;
	}
	fprintf(f, "\nExample: %s\n", ex);
	if (!gdb_only(ex) && !strncmp(ex, "hs ", 3))
		fprintf(f, "         heapscope CORE %s\n", ex + 3);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

const char *hs_command_help(const char *name)
{
	hs_api_tables_init();   /* the --where values */
	for (size_t i = 0; i < hs_ncommands && i < sizeof(help_texts) / sizeof(help_texts[0]); i++) {
		if (strcmp(hs_commands[i].name, name))
			continue;
		if (!help_texts[i])
			help_texts[i] = build_help(&hs_commands[i]);
		return help_texts[i];
	}
	return NULL;
}

/* Optimal string alignment distance: a swap of two letters counts one. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return 99;
	size_t d[41][41];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

struct best { const char *name; size_t dist; bool tie; size_t prefixes; const char *prefix; };

static void consider(struct best *b, const char *word, const char *cand)
{
	size_t wl = strlen(word);
	if (wl >= 3 && !strncmp(cand, word, wl) && cand[wl]) {
		b->prefixes++;
		b->prefix = cand;
	}
	size_t d = edit_distance(word, cand);
	if (d < b->dist) {
		b->name = cand;
		b->dist = d;
		b->tie = false;
	} else if (d == b->dist) {
		b->tie = true;
	}
}

static const char *pick(const struct best *b, const char *word)
{
	// Close enough to be a typo: at most 2 edits, and fewer than half the word.
	size_t wl = strlen(word);
	if (b->name && !b->tie && b->dist <= 2 && b->dist * 2 < wl)
		return b->name;
	if (b->prefixes == 1)
		return b->prefix;
	return NULL;
}

const char *hs_suggest(const char *word, const char *command)
{
	struct best b = { .dist = 99 };
	if (!word)
		return NULL;
	if (command) {
		const struct hs_command *cmd = hs_command_find(command);
		for (const struct hs_cmd_option *o = cmd ? cmd->options : NULL; o && o->info.name; o++)
			consider(&b, word, o->info.name);
	} else if (word[0] == '-') {
		size_t n;
		const struct hs_option_info *g = hs_global_option_table(&n);
		for (size_t i = 0; i < n; i++)
			consider(&b, word, g[i].name);
		consider(&b, word, "--help");
		consider(&b, word, "--version");
	} else {
		for (size_t i = 0; i < hs_ncommands; i++)
			consider(&b, word, hs_commands[i].name);
		consider(&b, word, "help");
	}
	return pick(&b, word);
}

/* ADDR: a number, SYMBOL[+OFF] or &SYMBOL[+OFF] (where SYMBOL is), or
 * *SYMBOL[+OFF] (the pointer stored at SYMBOL, plus OFF).  SYMBOL is what
 * expr.c resolves: a global or static variable (a member path with DWARF). */
struct hs_error *hs_cmd_address(struct hs_cmd *c, const char *text, const char *what, uint64_t *ret)
{
	if (text[0] >= '0' && text[0] <= '9')
		return hs_parse_u64(text, what, ret);
	bool deref = text[0] == '*', addr_of = text[0] == '&';
	const char *name = text + (deref || addr_of);
	while (*name == ' ')
		name++;
	char buf[256];
	uint64_t off = 0;
	bool minus = false;
	const char *sign = strrchr(name, '+');
	const char *m = strrchr(name, '-');
	// "a->b" is a member step, not a minus.
	if (m && m[1] != '>' && (!sign || m > sign)) {
		sign = m;
		minus = true;
	}
	size_t nlen = sign ? (size_t)(sign - name) : strlen(name);
	while (nlen && name[nlen - 1] == ' ')
		nlen--;
	if (!nlen || nlen >= sizeof(buf))
		return hs_error_create(HS_ERR_USAGE, "%s: expected an address (a number, SYMBOL[+OFF], &SYMBOL or *SYMBOL), got '%s'",
				       what, text);
	memcpy(buf, name, nlen);
	buf[nlen] = 0;
	if (sign) {
		const char *o = sign + 1;
		while (*o == ' ')
			o++;
		struct hs_error *err = hs_parse_u64(o, what, &off);
		if (err) {
			hs_error_destroy(err);
			return hs_error_create(HS_ERR_USAGE, "%s: '%s': the offset after %c must be a number", what, text,
					       minus ? '-' : '+');
		}
	}
	struct hs_expr_result r;
	struct hs_error *err = hs_session_expr_eval(c->s, buf, &r);
	if (err) {
		struct hs_error *e2 = hs_error_create(HS_ERR_USAGE, "%s: '%s' is not an address or a symbol (%s)", what, text,
						      hs_error_message(err));
		hs_error_destroy(err);
		return e2;
	}
	if (r.n != 1) {
		hs_expr_result_deinit(&r);
		return hs_error_create(HS_ERR_USAGE, "%s: '%s' has one location per thread (a TLS variable): give the address",
				       what, buf);
	}
	uint64_t a = r.locs[0].address;
	hs_expr_result_deinit(&r);
	if (deref)
		HS_CHECK(hs_memory_read_u64(&c->s->target->mem, a, &a));
	*ret = minus ? a - off : a + off;
	return NULL;
}
