/* test_tables.c - the facts-and-tables API: every command's parser agrees with
 * its entry in src/commands.c (its options struct, the argument), the public tables
 * are complete and NULL-terminated, session options by name accept and refuse
 * what the CLI documents, and errors map to the documented exit statuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api_tables.h"
#include "commands.h"
#include "error.h"

/* Each command, run in probe mode, reaches hs_cmd_parse first and stops there:
 * "probe" when it parses into the options struct its table entry names and
 * agrees on the argument, the mismatch otherwise. */
static void test_every_parser_matches_its_entry(void **state)
{
	(void)state;
	for (size_t i = 0; i < hs_ncommands; i++) {
		const struct hs_command *cmd = &hs_commands[i];
		const char *argv[] = { cmd->name, NULL };
		struct hs_cmd c = { .argc = 1, .argv = argv, .cmd = cmd, .probe = true };
		struct hs_error *err = cmd->run(&c);
		if (!err || strcmp(hs_error_message(err), "probe"))
			fail_msg("command %s: %s", cmd->name, err ? hs_error_message(err) : "did not parse its arguments first");
		hs_error_destroy(err);
	}
}

/* A command parsing into another struct than its entry names, or
 * disagreeing about the argument, is caught before anything is parsed. */
static struct hs_error *run_nothing(struct hs_cmd *c) { (void)c; return NULL; }

struct hs_x_opts { uint64_t limit; bool all; };

static void test_mismatch_is_caught(void **state)
{
	(void)state;
	const struct hs_command cmd = { "x", "x", "x", run_nothing,
		HS_OPTIONS(x, HS_NUMBER(x, limit, "--limit", "N", ""), HS_FLAG(x, all, "--all", "")) };
	const char *argv[] = { "x", "--limit", "3", "--all", NULL };
	struct hs_cmd c = { .argc = 4, .argv = argv, .cmd = &cmd };
	struct hs_x_opts opt = { 0 };
	uint64_t other = 0;
	struct hs_error *err = hs_cmd_parse(&c, &other, sizeof(other), NULL, 0, NULL);
	assert_int_equal(hs_error_code(err), HS_ERR_OTHER);
	assert_non_null(strstr(hs_error_message(err), "struct hs_x_opts"));
	hs_error_destroy(err);
	assert_int_equal(other, 0);
	const char *pos[1];
	size_t npos;
	err = hs_cmd_parse(&c, &opt, sizeof(opt), pos, 1, &npos);   // no argument declared
	assert_int_equal(hs_error_code(err), HS_ERR_OTHER);
	hs_error_destroy(err);
	assert_int_equal(opt.limit, 0);
	assert_null(hs_cmd_parse(&c, &opt, sizeof(opt), NULL, 0, NULL));
	assert_int_equal(opt.limit, 3);
	assert_true(opt.all);
}

/* Every kind lands in its field; a CHOICE value outside the table is a usage
 * error naming the values. */
static void test_choice_values_checked(void **state)
{
	(void)state;
	const struct hs_command *cmd = hs_command_find("chunks");
	assert_non_null(cmd);
	struct hs_chunks_opts opt = { .arena = 7 };
	const char *bad[] = { "chunks", "--where", "unlisted", NULL };
	struct hs_cmd c = { .argc = 3, .argv = bad, .cmd = cmd };
	struct hs_error *err = hs_cmd_parse(&c, &opt, sizeof(opt), NULL, 0, NULL);
	assert_int_equal(hs_error_code(err), HS_ERR_USAGE);
	assert_non_null(strstr(hs_error_message(err), "free-unlisted"));
	hs_error_destroy(err);
	assert_null(opt.where);
	const char *good[] = { "chunks", "--where=free-unlisted", "--free", "--min-size", "1K", "--limit=0x10", NULL };
	c = (struct hs_cmd){ .argc = 6, .argv = good, .cmd = cmd };
	assert_null(hs_cmd_parse(&c, &opt, sizeof(opt), NULL, 0, NULL));
	assert_string_equal(opt.where, "free-unlisted");
	assert_true(opt.free_);
	assert_false(opt.used);
	assert_int_equal(opt.min_size, 1024);
	assert_int_equal(opt.limit, 16);
	assert_int_equal(opt.arena, 7);    /* not given: the default stays */
}

static size_t count(const char *const *list)
{
	size_t n = 0;
	while (list[n])
		n++;
	return n;
}

static void test_public_tables(void **state)
{
	(void)state;
	size_t n;
	const struct hs_command_info *cmds = hs_command_table(&n);
	assert_int_equal(n, hs_ncommands);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(cmds[i].name);
		assert_non_null(cmds[i].usage);
		assert_non_null(cmds[i].help);
		assert_int_equal(strncmp(cmds[i].usage, cmds[i].name, strlen(cmds[i].name)), 0);
		for (size_t k = 0; k < cmds[i].noptions; k++) {
			const struct hs_option_info *o = &cmds[i].options[k];
			assert_int_equal(o->name[0], '-');
			assert_true((o->kind == HS_OPTION_FLAG) == (o->metavar == NULL));
			assert_true((o->kind == HS_OPTION_CHOICE) == (o->values != NULL));
			if (o->values)
				assert_true(count(o->values) > 0);
		}
	}
	const char *const *where = hs_where_names();
	/* the registry's display order is the order of the old closed enum */
	static const char *const expect[] = { "used", "mmapped", "large", "meta", "segment", "stack-span",
					      "span-tail", "arena-meta", "span-struct", "mcache", "tcache", "fastbin",
					      "unsorted", "smallbin", "largebin", "top", "slab", "extent",
					      "thread-cache", "transfer-cache", "central", "page-free", "page-returned",
					      "free-list", "local-free", "thread-free", "delayed-free", "span-free",
					      "uncarved", "free-slot", "idle-pages", "pool", "free-unlisted", NULL };
	assert_int_equal(count(where), count(expect));
	for (size_t i = 0; expect[i]; i++)
		assert_string_equal(where[i], expect[i]);
	assert_int_equal(count(hs_state_names()), 3);
	assert_int_equal(count(hs_register_names()), HS_NREGS);
	assert_string_equal(hs_register_names()[19], "rsp");
	assert_int_equal(count(hs_allocator_names()), 6);
	const struct hs_option_info *g = hs_global_option_table(&n);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(g[i].scope);
		assert_true((g[i].kind == HS_OPTION_FLAG) == (g[i].metavar == NULL));
	}
	const struct hs_error_info *e = hs_error_table(&n);
	assert_int_equal(n, HS_ERR_OTHER + 1);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(e[i].code, i);
}

static void test_exit_statuses(void **state)
{
	(void)state;
	assert_int_equal(hs_error_exit_status(NULL, 0), 0);
	struct { enum hs_error_code code; int open, run; } want[] = {
		{ HS_ERR_USAGE, 2, 2 }, { HS_ERR_TARGET, 3, 4 }, { HS_ERR_HEAP, 4, 4 },
		{ HS_ERR_INTERRUPTED, 130, 130 }, { HS_ERR_NOT_FOUND, 3, 2 }, { HS_ERR_UNMAPPED, 3, 2 },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct hs_error *err = hs_error_create(want[i].code, "x");
		assert_int_equal(hs_error_exit_status(err, 1), want[i].open);
		assert_int_equal(hs_error_exit_status(err, 0), want[i].run);
		hs_error_destroy(err);
	}
}

static void expect_usage(struct hs_optset *set, const char *name, const char *value)
{
	struct hs_error *err = hs_optset_set(set, name, value);
	if (hs_error_code(err) != HS_ERR_USAGE)
		fail_msg("%s %s: accepted", name, value ? value : "(flag)");
	hs_error_destroy(err);
}

static void test_optset(void **state)
{
	(void)state;
	struct hs_optset *set;
	assert_null(hs_optset_create(&set));
	assert_null(hs_optset_set(set, "--exe", "/bin/true"));
	assert_null(hs_optset_set(set, "--exe", "/bin/false"));
	assert_null(hs_optset_set(set, "--debug-dir", "/a"));
	assert_null(hs_optset_set(set, "--debug-dir", "/b"));
	assert_null(hs_optset_set(set, "--no-debuginfo", NULL));
	assert_null(hs_optset_set(set, "--allocator", "jemalloc"));
	assert_null(hs_optset_set(set, "--jobs", "3"));
	assert_null(hs_optset_set(set, "--main-arena", "0x1000"));
	assert_null(hs_optset_set(set, "--mp", "4096"));
	assert_null(hs_optset_set(set, "--glibc-version", "2.36"));
	assert_null(hs_optset_set(set, "--override", "tcache=0x10"));
	expect_usage(set, "--jobs", "0");
	expect_usage(set, "--jobs", "257");
	expect_usage(set, "--jobs", "two");
	expect_usage(set, "--allocator", "hoard");
	expect_usage(set, "--glibc-version", "2");
	expect_usage(set, "--glibc-version", "2.36x");
	expect_usage(set, "--override", "novalue");
	expect_usage(set, "--main-arena", "main_arena");
	expect_usage(set, "--no-debuginfo", "yes");
	expect_usage(set, "--exe", NULL);
	expect_usage(set, "--json", NULL);          // not a session option
	expect_usage(set, "--bogus", "1");
	const struct hs_options *o = hs_optset_options(set);
	assert_string_equal(o->exe, "/bin/false");
	assert_string_equal(o->debug_dirs[0], "/a");
	assert_string_equal(o->debug_dirs[1], "/b");
	assert_null(o->debug_dirs[2]);
	assert_int_equal(o->no_debuginfo, 1);
	assert_string_equal(o->allocator, "jemalloc");
	assert_int_equal(o->jobs, 3);
	assert_string_equal(o->overrides, "main_arena=0x1000,mp_=0x1000,glibc_version=236,tcache=0x10");
	hs_optset_destroy(set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_parser_matches_its_entry),
		cmocka_unit_test(test_mismatch_is_caught),
		cmocka_unit_test(test_choice_values_checked),
		cmocka_unit_test(test_public_tables),
		cmocka_unit_test(test_exit_statuses),
		cmocka_unit_test(test_optset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
