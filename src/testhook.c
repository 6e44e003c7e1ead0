/* testhook.c - see testhook.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "error.h"
#include "session.h"
#include "testhook.h"

struct hs_error *hs_test_hold(const char *stage)
{
	const char *spec = getenv("HEAPSCOPE_TEST_HOLD");
	if (!spec)
		return NULL;
	size_t n = strlen(stage);
	if (strncmp(spec, stage, n) || spec[n] != ':' || !spec[n + 1])
		return NULL;
	static int held;    // once a process: later runs go through
	if (held++)
		return NULL;
	int fd = open(spec + n + 1, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return hs_error_errno(errno, "HEAPSCOPE_TEST_HOLD: cannot create %s", spec + n + 1);
	close(fd);
	const struct timespec tick = { 0, 2 * 1000 * 1000 };
	for (int i = 0; i < 60000; i++) {
		if (hs_interrupted())
			return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
		nanosleep(&tick, NULL);
	}
	return hs_error_create(HS_ERR_OTHER, "HEAPSCOPE_TEST_HOLD: %s was held 120 s and never interrupted", stage);
}

// Is the environment variable name set to "1"?
static bool flag_set(const char *name)
{
	const char *v = getenv(name);
	return v && !strcmp(v, "1");
}

bool hs_test_no_threads(void)
{
	return flag_set("HEAPSCOPE_TEST_NO_THREADS");
}

bool hs_test_small_splits(void)
{
	return flag_set("HEAPSCOPE_TEST_SMALL_SPLITS");
}

bool hs_test_dominator_buckets(void)
{
	return flag_set("HEAPSCOPE_TEST_DOMINATOR_BUCKETS");
}

bool hs_test_probe_after_scan(void)
{
	return flag_set("HEAPSCOPE_TEST_PROBE_AFTER_SCAN");
}
