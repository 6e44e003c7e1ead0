/* test_watch.c - when watch takes a core: the threshold, the re-arm step and
 * the fall back, memory.events "max", cgroup v1 and v2 files written here; and
 * capture's --filter lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "capture.h"
#include "watch.h"

static char dir[] = "/tmp/hs-test-watch-XXXXXX";

static void put(const char *name, const char *fmt, unsigned long long v)
{
	char path[256], tmp[300];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fprintf(f, fmt, v);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0);
}

static void clear(void)
{
	const char *names[] = { "memory.current", "memory.max", "memory.events", "memory.usage_in_bytes",
				"memory.limit_in_bytes" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	clear();
	return rmdir(dir);
}

static bool poll_fires(struct hs_watch *w, const char **why)
{
	struct hs_watch_sample s;
	assert_null(hs_watch_poll(w, &s));
	if (s.fire)
		hs_watch_fired(w, &s);
	if (why)
		*why = s.why;
	return s.fire;
}

/* v2 at 80 % of 1000 MiB: T = 800 MiB, STEP = 80 MiB. */
static void test_v2_threshold_step_fallback(void **state)
{
	(void)state;
	clear();
	put("memory.max", "%llu\n", 1000ull << 20);
	put("memory.current", "%llu\n", 700ull << 20);
	put("memory.events", "low 0\nhigh 0\nmax %llu\noom 0\noom_kill 0\n", 5);
	struct hs_watch *w;
	assert_null(hs_watch_open_cgroup(getpid(), dir, 80, 0, &w));
	int version;
	assert_string_equal(hs_watch_cgroup_dir(w, &version), dir);
	assert_int_equal(version, 2);
	const char *why;
	assert_false(poll_fires(w, NULL));                 // past "max" events do not count
	put("memory.current", "%llu\n", 800ull << 20);
	assert_true(poll_fires(w, &why));                  // at the threshold
	assert_string_equal(why, "threshold");
	assert_false(poll_fires(w, NULL));                 // still there: once
	put("memory.current", "%llu\n", 879ull << 20);
	assert_false(poll_fires(w, NULL));                 // less than a step more
	put("memory.current", "%llu\n", 880ull << 20);
	assert_true(poll_fires(w, NULL));                  // a step above 800
	put("memory.current", "%llu\n", 950ull << 20);
	assert_false(poll_fires(w, NULL));                 // next: 960
	put("memory.current", "%llu\n", 721ull << 20);
	assert_false(poll_fires(w, NULL));                 // not yet below 720: still armed at 960
	put("memory.current", "%llu\n", 810ull << 20);
	assert_false(poll_fires(w, NULL));
	put("memory.current", "%llu\n", 719ull << 20);
	assert_false(poll_fires(w, NULL));                 // fell back: armed at 800 again
	put("memory.events", "low 0\nhigh 0\nmax %llu\noom 0\noom_kill 0\n", 6);
	assert_true(poll_fires(w, &why));                  // the limit was hit between polls
	assert_string_equal(why, "memory.max hit");
	put("memory.events", "low 0\nhigh 0\nmax %llu\noom 0\noom_kill 0\n", 7);
	assert_false(poll_fires(w, NULL));                 // not again until it fell back
	hs_watch_destroy(w);
}

static void test_v1_names_and_no_limit(void **state)
{
	(void)state;
	clear();
	put("memory.limit_in_bytes", "%llu\n", 9223372036854771712ull);
	put("memory.usage_in_bytes", "%llu\n", 1);
	struct hs_watch *w = NULL;
	struct hs_error *err = hs_watch_open_cgroup(getpid(), dir, 80, 0, &w);
	assert_non_null(err);
	assert_int_equal(hs_error_code(err), HS_ERR_USAGE);
	assert_non_null(strstr(hs_error_message(err), "has no memory limit"));
	hs_error_destroy(err);
	put("memory.limit_in_bytes", "%llu\n", 1000);
	assert_null(hs_watch_open_cgroup(getpid(), dir, 50, 100, &w));
	int version;
	hs_watch_cgroup_dir(w, &version);
	assert_int_equal(version, 1);
	assert_false(poll_fires(w, NULL));
	put("memory.usage_in_bytes", "%llu\n", 500);
	assert_true(poll_fires(w, NULL));
	put("memory.usage_in_bytes", "%llu\n", 599);
	assert_false(poll_fires(w, NULL));                 // --step 100: next at 600
	put("memory.usage_in_bytes", "%llu\n", 600);
	assert_true(poll_fires(w, NULL));
	clear();                                           // the cgroup went away
	struct hs_watch_sample s;
	err = hs_watch_poll(w, &s);
	assert_non_null(err);
	assert_int_equal(hs_error_code(err), HS_ERR_TARGET);
	hs_error_destroy(err);
	hs_watch_destroy(w);
}

static void test_not_a_cgroup_and_bad_pct(void **state)
{
	(void)state;
	clear();
	struct hs_watch *w = NULL;
	struct hs_error *err = hs_watch_open_cgroup(getpid(), dir, 80, 0, &w);
	assert_non_null(strstr(hs_error_message(err), "not a cgroup with the memory controller"));
	hs_error_destroy(err);
	err = hs_watch_open_cgroup(getpid(), dir, 120, 0, &w);
	assert_int_equal(hs_error_code(err), HS_ERR_USAGE);
	hs_error_destroy(err);
}

static void test_rss_of_ourselves(void **state)
{
	(void)state;
	struct hs_watch *w;
	assert_null(hs_watch_open_rss(getpid(), 1ull << 50, 0, &w));
	struct hs_watch_sample s;
	assert_null(hs_watch_poll(w, &s));
	assert_false(s.fire);
	assert_true(s.usage > 0);
	hs_watch_destroy(w);
	assert_null(hs_watch_open_rss(getpid(), 4096, 0, &w));
	assert_true(poll_fires(w, NULL));
	hs_watch_destroy(w);
}

static void test_seconds(void **state)
{
	(void)state;
	double v;
	assert_null(hs_parse_seconds("500ms", "--interval", &v));
	assert_true(v > 0.4999 && v < 0.5001);
	assert_null(hs_parse_seconds("2", "--interval", &v));
	assert_true(v == 2);
	assert_null(hs_parse_seconds("1m", "--interval", &v));
	assert_true(v == 60);
	const char *bad[] = { "", "0", "-1s", "soon", "5h", "2ss" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hs_error *err = hs_parse_seconds(bad[i], "--interval", &v);
		assert_non_null(err);
		hs_error_destroy(err);
	}
}

static void test_filter(void **state)
{
	(void)state;
	unsigned f;
	char name[128];
	assert_null(hs_capture_parse_filter("default", &f));
	assert_int_equal(f, HS_CAP_DEFAULT);
	hs_capture_filter_name(f, name, sizeof(name));
	assert_string_equal(name, "anon,shared,data,elf-headers");
	assert_null(hs_capture_parse_filter("+files", &f));
	assert_int_equal(f, HS_CAP_DEFAULT | HS_CAP_FILES);
	assert_null(hs_capture_parse_filter("-shared,-elf-headers", &f));
	assert_int_equal(f, HS_CAP_ANON | HS_CAP_DATA);
	assert_null(hs_capture_parse_filter("anon", &f));
	assert_int_equal(f, HS_CAP_ANON);
	assert_null(hs_capture_parse_filter("all", &f));
	assert_int_equal(f, HS_CAP_ALL);
	const char *bad[] = { "heap", "-all", "anon,,bogus" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hs_error *err = hs_capture_parse_filter(bad[i], &f);
		assert_non_null(err);
		assert_int_equal(hs_error_code(err), HS_ERR_USAGE);
		hs_error_destroy(err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v2_threshold_step_fallback),
		cmocka_unit_test(test_v1_names_and_no_limit),
		cmocka_unit_test(test_not_a_cgroup_and_bad_pct),
		cmocka_unit_test(test_rss_of_ourselves),
		cmocka_unit_test(test_seconds),
		cmocka_unit_test(test_filter),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
