/* test_expr.c - the expression syntax of expr.h: NAME(.m|->m|[i])* or an
 * address, and its errors with their column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include "expr.h"

static void test_expr_parse(void **state)
{
	(void)state;
	struct hs_expr e;
	assert_null(hs_expr_parse("g_pool", &e));
	assert_string_equal(e.name, "g_pool");
	assert_int_equal(e.nsteps, 0);
	hs_expr_deinit(&e);

	assert_null(hs_expr_parse("slabclass[3].slots", &e));
	assert_string_equal(e.name, "slabclass");
	assert_int_equal(e.nsteps, 2);
	assert_int_equal(e.steps[0].kind, HS_STEP_INDEX);
	assert_int_equal(e.steps[0].index, 3);
	assert_int_equal(e.steps[1].kind, HS_STEP_MEMBER);
	assert_string_equal(e.steps[1].member, "slots");
	hs_expr_deinit(&e);

	assert_null(hs_expr_parse("app::g->free_list[0x10].head", &e));
	assert_string_equal(e.name, "app::g");
	assert_int_equal(e.nsteps, 3);
	assert_int_equal(e.steps[0].kind, HS_STEP_ARROW);
	assert_string_equal(e.steps[0].member, "free_list");
	assert_int_equal(e.steps[1].index, 16);
	hs_expr_deinit(&e);

	assert_null(hs_expr_parse("0x7fff1000", &e));
	assert_null(e.name);
	assert_int_equal(e.address, 0x7fff1000);
	hs_expr_deinit(&e);
}

static void expect_bad(const char *text, const char *words)
{
	struct hs_expr e;
	struct hs_error *err = hs_expr_parse(text, &e);
	assert_non_null(err);
	assert_int_equal(hs_error_code(err), HS_ERR_USAGE);
	if (!strstr(hs_error_message(err), words))
		fail_msg("'%s': '%s' does not say '%s'", text, hs_error_message(err), words);
	hs_error_destroy(err);
}

static void test_expr_errors(void **state)
{
	(void)state;
	expect_bad("", "column 1: expected a variable name");
	expect_bad("g.", "column 3: expected a member name");
	expect_bad("g[", "column 3: expected an index");
	expect_bad("g[3", "column 4: expected ']'");
	expect_bad("g[-1]", "expected an index");
	expect_bad("g+8", "column 2: expected '.', '->' or '['");
	expect_bad("0x10.next", "an address takes no members");
	expect_bad("g->", "expected a member name");
	expect_bad("1g", "expected an address or a variable name");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expr_parse),
		cmocka_unit_test(test_expr_errors),
	};
	return cmocka_run_group_tests_name("expr", tests, NULL, NULL);
}
