/* api_tables.c - the facts and tables of include/heapscope.h: the target's facts,
 * the modules, the command and option tables as front ends see them, session
 * options by name (struct hs_optset), the name lists and the error table.
 *
 * The CLI and the GDB extension read all of this through the public header, so
 * an option, a value or a command exists in one place (src/commands.c for the
 * commands, global_options[] below for the options before a command).
 */
#include <elf.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "api_tables.h"
#include "commands.h"
#include "error.h"
#include "paths.h"
#include "session.h"

/* Name lists. */

const char *hs_api_where_list[HS_WHERE_MAX + 1];   /* the state registry's names, in display order */
#define where_list hs_api_where_list
static const char *const state_list[] = { "used", "free", "meta", NULL };
static const char *allocator_list[64 + 2];       /* "auto", then the walker table's names */
static const char *register_list[HS_NREGS + 1];


static struct hs_command_info *command_infos;
static struct hs_option_info *option_infos;
static size_t ncommand_infos;

static void tables_init(void)
{
	for (size_t k = 0; k < hs_where_count(); k++)
		where_list[k] = hs_where_name(hs_where_at(k));
	size_t na = 0;
	allocator_list[na++] = "auto";
	for (size_t i = 0; i < hs_nwalkers && na + 1 < sizeof(allocator_list) / sizeof(allocator_list[0]); i++)
		allocator_list[na++] = hs_walkers[i]->name;
	for (unsigned r = 0; r < HS_NREGS; r++)
		register_list[r] = hs_reg_names[r];
	// The public view of src/commands.c's table.  Out of memory here leaves an
	// empty table, which every front end shows as "no commands".
	// The options, as front ends see them: each command's {0}-terminated
	// run of one array.
	size_t nopts = 0;
	for (size_t i = 0; i < hs_ncommands; i++)
		for (const struct hs_cmd_option *o = hs_commands[i].options; o && o->info.name; o++)
			nopts++;
	command_infos = calloc(hs_ncommands ? hs_ncommands : 1, sizeof(*command_infos));
	option_infos = calloc(nopts + hs_ncommands + 1, sizeof(*option_infos));
	if (!command_infos || !option_infos) {
		free(command_infos);
		free(option_infos);
		command_infos = NULL;
		option_infos = NULL;
		return;
	}
	struct hs_option_info *next = option_infos;
	for (size_t i = 0; i < hs_ncommands; i++) {
		const struct hs_command *c = &hs_commands[i];
		struct hs_command_info *ci = &command_infos[i];
		ci->name = c->name;
		ci->usage = c->usage;
		ci->summary = c->summary;
		ci->help = c->help ? c->help : "";
		ci->example = c->example;
		ci->argument = c->argument;
		ci->last = c->last;
		for (const struct hs_cmd_option *o = c->options; o && o->info.name; o++)
			next[ci->noptions++] = o->info;
		ci->options = c->options ? next : NULL;
		next += ci->noptions + 1;
	}
	ncommand_infos = hs_ncommands;
}

void hs_api_tables_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, tables_init);
}

const char *const *hs_where_names(void)
{
	hs_api_tables_init();
	return where_list;
}

const char *const *hs_state_names(void) { return state_list; }
const char *const *hs_allocator_names(void)
{
	hs_api_tables_init();
	return allocator_list;
}

const char *const *hs_register_names(void)
{
	hs_api_tables_init();
	return register_list;
}

const struct hs_command_info *hs_command_table(size_t *nret)
{
	hs_api_tables_init();
	*nret = ncommand_infos;
	return command_infos;
}

/* Global options: before the command on the command line, with any command in
 * GDB.  scope: "session" (hs_optset_set), "output" (--json), "front-end" (the
 * caller's: every front end accepts it), "cli" (the command line only). */
static const struct hs_option_info global_options[] = {
	{ "--pid", HS_OPTION_TEXT, "PID",
	  "analyse a live process (it is stopped while heapscope\nreads it, and always resumed)", NULL, "cli" },
	{ "--exe", HS_OPTION_PATH, "PATH", "the executable, when the path in the core is wrong", NULL, "session" },
	{ "--sysroot", HS_OPTION_PATH, "DIR", "look for the core's files under DIR", NULL, "session" },
	{ "--debug-dir", HS_OPTION_PATH, "DIR", "also look for separate debug info in DIR (repeatable)", NULL, "session" },
	{ "--no-debuginfo", HS_OPTION_FLAG, NULL, "ignore all separate debug info (use built-in layouts)", NULL, "session" },
	{ "--exact-pointers", HS_OPTION_FLAG, NULL, "only pointers to the start of an allocation count", NULL, "session" },
	{ "--allocator", HS_OPTION_CHOICE, "NAME", "whose heap to walk: an allocator's name or auto (default)", allocator_list, "session" },
	{ "--main-arena", HS_OPTION_ADDRESS, "ADDR", "glibc: the address of main_arena", NULL, "session" },
	{ "--mp", HS_OPTION_ADDRESS, "ADDR", "glibc: the address of mp_", NULL, "session" },
	{ "--glibc-version", HS_OPTION_TEXT, "X.Y", "glibc: the version, when it cannot be read from libc", NULL, "session" },
	{ "--override", HS_OPTION_TEXT, "NAME=ADDR", "any address or value a walker needs (see docs/cli.md)", NULL, "session" },
	{ "--json", HS_OPTION_FLAG, NULL, "one JSON document on stdout (see docs/json.md)", NULL, "output" },
	{ "--jobs", HS_OPTION_NUMBER, "N", "threads for scans (default 2)", NULL, "session" },
	{ "--quiet", HS_OPTION_FLAG, NULL, "no progress line on stderr (diagnostics stay in the output)", NULL, "front-end" },
	{ "--pool", HS_OPTION_TEXT, "EXPR[:LINK]",
	  "an application pool: EXPR holds its first free object\n(g_pool.free_head, slabclass[3].slots, a TLS variable),\n"
	  "LINK the next pointer's member or offset (default 0);\nrepeatable (see docs/cli.md, pools)", NULL, "session" },
	{ "--no-pool-detection", HS_OPTION_FLAG, NULL, "only the pools given with --pool", NULL, "session" },
	{ "--progress", HS_OPTION_FLAG, NULL,
	  "a progress line on stderr even when it is not a terminal\n(on a terminal it is on by default; never on stdout)",
	  NULL, "front-end" },
	{ "--verbose", HS_OPTION_FLAG, NULL, "how long each stage took, on stderr", NULL, "front-end" },
	/* New global options: append here, and give hs_optset_set a case if the
	 * scope is "session". */
};

const struct hs_option_info *hs_global_option_table(size_t *nret)
{
	hs_api_tables_init();   /* the --allocator values */
	*nret = sizeof(global_options) / sizeof(global_options[0]);
	return global_options;
}

/* struct hs_optset: struct hs_options and the strings it points to. */

#define OPTSET_MAX_DIRS 64

struct hs_optset {
	struct hs_options opts;
	char *exe, *sysroot, *allocator;
	char *dirs[OPTSET_MAX_DIRS + 1];
	size_t ndirs;
	char *pools[OPTSET_MAX_DIRS + 1];
	size_t npools;
	char *overrides;               /* "a=1,b=2" */
};

struct hs_error *hs_optset_create(struct hs_optset **ret)
{
	struct hs_optset *set = calloc(1, sizeof(*set));
	if (!set)
		return &hs_error_nomem;
	*ret = set;
	return NULL;
}

void hs_optset_destroy(struct hs_optset *set)
{
	if (!set)
		return;
	free(set->exe);
	free(set->sysroot);
	free(set->allocator);
	for (size_t i = 0; i < set->ndirs; i++)
		free(set->dirs[i]);
	for (size_t i = 0; i < set->npools; i++)
		free(set->pools[i]);
	free(set->overrides);
	free(set);
}

const struct hs_options *hs_optset_options(struct hs_optset *set)
{
	set->opts.exe = set->exe;
	set->opts.sysroot = set->sysroot;
	set->opts.allocator = set->allocator;
	set->opts.debug_dirs = (const char *const *)set->dirs;
	set->opts.overrides = set->overrides;
	set->opts.pools = set->npools ? (const char *const *)set->pools : NULL;
	return &set->opts;
}

static struct hs_error *replace(char **slot, const char *value)
{
	char *copy = strdup(value);
	if (!copy)
		return &hs_error_nomem;
	free(*slot);
	*slot = copy;
	return NULL;
}

static struct hs_error *add_override(struct hs_optset *set, const char *item)
{
	char *joined;
	if (asprintf(&joined, "%s%s%s", set->overrides ? set->overrides : "",
		     set->overrides ? "," : "", item) < 0)
		return &hs_error_nomem;
	free(set->overrides);
	set->overrides = joined;
	return NULL;
}

static const struct hs_option_info *global_option(const char *name)
{
	for (size_t i = 0; i < sizeof(global_options) / sizeof(global_options[0]); i++)
		if (!strcmp(global_options[i].name, name))
			return &global_options[i];
	return NULL;
}

// A path option's value, if it is there, is of its kind: --exe a regular
// file (a FIFO would block libdwfl's open for ever) and no core (the two
// paths swapped: libdwfl would take the core for the program), the others
// directories.
static struct hs_error *path_kind(const char *name, const char *value, bool dir)
{
	struct stat st;
	if (stat(value, &st) != 0)
		return NULL;
	if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		return hs_error_create(HS_ERR_USAGE, "%s %s is not a %s", name, value,
				       dir ? "directory" : "regular file");
	Elf64_Ehdr eh;
	int fd = dir ? -1 : hs_open_regular(value);
	bool core = fd >= 0 && read(fd, &eh, sizeof(eh)) == (ssize_t)sizeof(eh) &&
		    !memcmp(eh.e_ident, ELFMAG, SELFMAG) && eh.e_type == ET_CORE;
	if (fd >= 0)
		close(fd);
	if (core)
		return hs_error_create(HS_ERR_USAGE, "%s %s is a core file, not the program: "
				       "heapscope [--exe PROGRAM] CORE [COMMAND]", name, value);
	return NULL;
}

struct hs_error *hs_optset_set(struct hs_optset *set, const char *name, const char *value)
{
	const struct hs_option_info *o = global_option(name);
	if (!o || strcmp(o->scope, "session"))
		return hs_error_create(HS_ERR_USAGE, "unknown option '%s'", name);
	if (o->kind == HS_OPTION_FLAG) {
		if (value)
			return hs_error_create(HS_ERR_USAGE, "%s takes no value", name);
	} else if (!value) {
		return hs_error_create(HS_ERR_USAGE, "option %s needs a value", name);
	}
	if (!strcmp(name, "--no-debuginfo")) {
		set->opts.no_debuginfo = 1;
	} else if (!strcmp(name, "--exact-pointers")) {
		set->opts.exact_pointers = 1;
	} else if (!strcmp(name, "--exe")) {
		HS_CHECK(path_kind(name, value, false));
		return replace(&set->exe, value);
	} else if (!strcmp(name, "--sysroot")) {
		HS_CHECK(path_kind(name, value, true));
		return replace(&set->sysroot, value);
	} else if (!strcmp(name, "--debug-dir")) {
		HS_CHECK(path_kind(name, value, true));
		if (set->ndirs == OPTSET_MAX_DIRS)
			return hs_error_create(HS_ERR_USAGE, "too many --debug-dir options (%d at most)", OPTSET_MAX_DIRS);
		HS_CHECK(replace(&set->dirs[set->ndirs], value));
		set->ndirs++;
	} else if (!strcmp(name, "--pool")) {
		if (set->npools == OPTSET_MAX_DIRS)
			return hs_error_create(HS_ERR_USAGE, "too many --pool options (%d at most)", OPTSET_MAX_DIRS);
		HS_CHECK(replace(&set->pools[set->npools], value));
		set->npools++;
	} else if (!strcmp(name, "--no-pool-detection")) {
		set->opts.no_pool_detection = 1;
	} else if (!strcmp(name, "--allocator")) {
		if (!hs_option_value_ok(o, value))
			return hs_error_create(HS_ERR_USAGE, "unknown allocator '%s': use %s or auto", value,
					       hs_walker_names());
		return replace(&set->allocator, value);
	} else if (!strcmp(name, "--jobs")) {
		uint64_t jobs;
		struct hs_error *err = hs_parse_u64(value, name, &jobs);
		hs_error_destroy(err);
		if (err || jobs < 1 || jobs > 256)
			return hs_error_create(HS_ERR_USAGE, "--jobs takes a number from 1 to 256, not '%s'", value);
		set->opts.jobs = (int)jobs;
	} else if (!strcmp(name, "--main-arena") || !strcmp(name, "--mp")) {
		uint64_t addr;
		HS_CHECK(hs_parse_u64(value, name, &addr));
		char item[64];
		snprintf(item, sizeof(item), "%s=0x%" PRIx64, !strcmp(name, "--mp") ? "mp_" : "main_arena", addr);
		return add_override(set, item);
	} else if (!strcmp(name, "--glibc-version")) {
		unsigned major, minor;
		int end = 0;
		if (sscanf(value, "%u.%u%n", &major, &minor, &end) != 2 || value[end] || major > 99 || minor > 99)
			return hs_error_create(HS_ERR_USAGE, "--glibc-version takes X.Y, like 2.36, not '%s'", value);
		char item[64];
		snprintf(item, sizeof(item), "glibc_version=%u", major * 100 + minor);
		return add_override(set, item);
	} else if (!strcmp(name, "--override")) {
		const char *eq = strchr(value, '=');
		if (!eq || eq == value || !eq[1])
			return hs_error_create(HS_ERR_USAGE, "bad override '%s': expected NAME=ADDRESS", value);
		return add_override(set, value);
	} else {
		return hs_error_create(HS_ERR_OTHER, "global option %s has scope \"session\" but no case in hs_optset_set", name);
	}
	return NULL;
}

bool hs_option_value_ok(const struct hs_option_info *o, const char *value)
{
	if (o->kind != HS_OPTION_CHOICE || !o->values)
		return true;
	for (size_t i = 0; o->values[i]; i++)
		if (!strcmp(o->values[i], value))
			return true;
	return false;
}

/* Errors and the CLI's exit statuses: 0 done, 1 --fail-on-leaks found leaks,
 * 2 usage, 3 the target cannot be read, 4 the heap could not be
 * reconstructed, 130 interrupted. */
static const struct hs_error_info error_table[] = {
	{ HS_OK, "HS_OK", "success", 0, 0 },
	{ HS_ERR_NOMEM, "HS_ERR_NOMEM", "out of memory", 3, 4 },
	{ HS_ERR_OS, "HS_ERR_OS", "a system call failed", 3, 4 },
	{ HS_ERR_USAGE, "HS_ERR_USAGE", "bad arguments or options", 2, 2 },
	{ HS_ERR_TARGET, "HS_ERR_TARGET", "the target cannot be read", 3, 4 },
	{ HS_ERR_PERMISSION, "HS_ERR_PERMISSION", "the target exists but may not be read", 3, 4 },
	{ HS_ERR_NOT_DUMPED, "HS_ERR_NOT_DUMPED", "the memory existed in the process but is not in the core", 3, 2 },
	{ HS_ERR_UNMAPPED, "HS_ERR_UNMAPPED", "the address is in no mapping at all", 3, 2 },
	{ HS_ERR_NOT_FOUND, "HS_ERR_NOT_FOUND", "a symbol, type, module or allocation was not found", 3, 2 },
	{ HS_ERR_HEAP, "HS_ERR_HEAP", "the heap could not be reconstructed", 4, 4 },
	{ HS_ERR_INTERRUPTED, "HS_ERR_INTERRUPTED", "interrupted (hs_interrupt)", 130, 130 },
	{ HS_ERR_OTHER, "HS_ERR_OTHER", "another error", 3, 4 },
};

const struct hs_error_info *hs_error_table(size_t *nret)
{
	*nret = sizeof(error_table) / sizeof(error_table[0]);
	return error_table;
}

int hs_error_exit_status(const struct hs_error *err, int opening)
{
	enum hs_error_code code = hs_error_code(err);
	if (err && err->at_open)
		opening = 1;
	for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
		if (error_table[i].code == code)
			return opening ? error_table[i].exit_open : error_table[i].exit_run;
	return opening ? 3 : 4;
}

/* Facts of one session, made on first use and freed with the session. */

struct hs_api_facts {
	struct hs_target_facts target;
	int *tids;
	const char **files;
	bool have_target;
	struct hs_module_facts *modules;
	char (*build_ids)[129];
	size_t nmodules;
	bool have_modules;
};

void hs_api_facts_destroy(struct hs_api_facts *f)
{
	if (!f)
		return;
	free(f->tids);
	free(f->files);
	free(f->modules);
	free(f->build_ids);
	free(f);
}

static struct hs_error *facts_of(struct hs_session *s, struct hs_api_facts **ret)
{
	if (!s->api_facts) {
		s->api_facts = calloc(1, sizeof(*s->api_facts));
		if (!s->api_facts)
			return &hs_error_nomem;
	}
	*ret = s->api_facts;
	return NULL;
}

struct hs_error *hs_session_target_facts(struct hs_session *s, const struct hs_target_facts **ret)
{
	struct hs_api_facts *f;
	HS_CHECK(facts_of(s, &f));
	const struct hs_target *t = s->target;
	const struct hs_notes *n = &t->notes;
	// Threads can be replaced (hs_session_set_thread_regs): always remade.
	int *tids = malloc((n->nthreads ? n->nthreads : 1) * sizeof(int));
	const char **files = malloc((n->nfiles + 1) * sizeof(char *));
	if (!tids || !files) {
		free(tids);
		free(files);
		return &hs_error_nomem;
	}
	for (size_t i = 0; i < n->nthreads; i++)
		tids[i] = n->threads[i].tid;
	size_t nf = 0;
	for (size_t i = 0; i < n->nfiles; i++) {
		const char *p = n->files[i].path;
		if (!p || !*p)
			continue;
		bool seen = false;
		for (size_t j = 0; j < nf && !seen; j++)
			seen = !strcmp(files[j], p);
		if (!seen)
			files[nf++] = p;
	}
	files[nf] = NULL;
	free(f->tids);
	free(f->files);
	f->tids = tids;
	f->files = files;
	f->target = (struct hs_target_facts){
		.kind = t->kind == HS_TARGET_PID ? "live" : "core",
		.path = t->path,
		.pid = t->kind == HS_TARGET_PID ? t->pid : (n->pid ? n->pid : t->pid),
		.file_size = t->kind == HS_TARGET_CORE ? t->file_size : 0,
		.missing_bytes = t->missing_bytes,
		.truncated = t->missing_bytes != 0,
		.nthreads = n->nthreads,
		.tids = tids,
		.nfiles = nf,
		.files = files,
	};
	*ret = &f->target;
	return NULL;
}

struct hs_error *hs_session_modules(struct hs_session *s, const struct hs_module_facts **ret,
				    size_t *nret)
{
	struct hs_api_facts *f;
	HS_CHECK(facts_of(s, &f));
	if (!f->have_modules) {
		HS_CHECK(hs_session_need_symbols(s));
		const struct hs_symbols *sym = s->symbols;
		size_t n = sym->nmodules;
		f->modules = calloc(n ? n : 1, sizeof(*f->modules));
		f->build_ids = calloc(n ? n : 1, sizeof(*f->build_ids));
		if (!f->modules || !f->build_ids) {
			free(f->modules);
			free(f->build_ids);
			f->modules = NULL;
			f->build_ids = NULL;
			return &hs_error_nomem;
		}
		for (size_t i = 0; i < n; i++) {
			const struct hs_module *m = &sym->modules[i];
			char *hex = f->build_ids[i];
			hs_build_id_hex(m->build_id, m->build_id_len, hex, sizeof(f->build_ids[i]));
			f->modules[i] = (struct hs_module_facts){
				.name = m->name, .path = m->path, .debug_path = m->debug_path,
				.build_id = hex, .start = m->start, .end = m->end,
				.is_main = m->is_main, .has_debuginfo = m->debug_found,
				.build_id_mismatch = m->build_id_mismatch,
			};
		}
		f->nmodules = n;
		f->have_modules = true;
	}
	*ret = f->modules;
	*nret = f->nmodules;
	return NULL;
}

struct hs_error *hs_session_check_exe(struct hs_session *s)
{
	if (!s->exe)
		return NULL;
	struct hs_error *err = hs_session_need_symbols(s);
	hs_error_destroy(err);
	if (s->symbols && hs_symbols_exe_mismatch(s->symbols))
		return hs_error_create(HS_ERR_TARGET, "%s is not the program that wrote %s (build-ids differ); "
				       "give the exact executable with --exe", s->exe,
				       s->target->path);
	return NULL;
}
