/* test_hostile.c - crafted cores through the public API: each fuzz finding of
 * issue 11 as the core that showed it, run through hs_session_open_core and
 * hs_session_run as the CLI does, text and JSON.  What must hold: the command
 * finishes, says what is wrong, and the numbers it gives are the true ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "heapscope.h"
#include "synth_core.h"
#include "synth_glibc.h"
#include "target.h"

#define LIBC      UINT64_C(0x7ffff7fa0000)
#define MAIN_HEAP UINT64_C(0x555555559000)
#define MMAPPED   UINT64_C(0x7ffff7000000)
#define FS_MAIN   UINT64_C(0x7ffff7d80000)
#define ANON      UINT64_C(0x7ffff6000000)

static char *tmpdir;

static int group_setup(void **state)
{
	(void)state;
	tmpdir = synth_core_mkdtemp();
	return tmpdir ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	if (tmpdir)
		synth_core_rmdir(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
	return 0;
}

struct capture { char *text; size_t len; };

static int capture_write(void *ctx, const char *buf, size_t len)
{
	struct capture *c = ctx;
	char *t = realloc(c->text, c->len + len + 1);
	if (!t)
		return 1;
	memcpy(t + c->len, buf, len);
	c->len += len;
	t[c->len] = 0;
	c->text = t;
	return 0;
}

struct run {
	struct hs_error *err;      /* of the command (opening must succeed) */
	char *out;                 /* everything written, NUL-terminated */
	size_t len;
};

static void run_free(struct run *r)
{
	hs_error_destroy(r->err);
	free(r->out);
}

/* Open path and run the command in argv (NULL-terminated). */
static struct run run_cmd(const char *path, bool json, const char *const *argv)
{
	struct hs_options opts = { .no_debuginfo = 1 };
	struct hs_session *s = NULL;
	struct hs_error *err = hs_session_open_core(path, &opts, &s);
	if (err)
		fail_msg("opening %s: %s", path, hs_error_message(err));
	int argc = 0;
	while (argv[argc])
		argc++;
	struct capture c = { 0 };
	int status = 0;
	struct run r = { 0 };
	r.err = hs_session_run(s, argc, argv, json ? HS_FORMAT_JSON : HS_FORMAT_TEXT, capture_write, &c, &status);
	hs_session_destroy(s);
	r.out = c.text ? c.text : strdup("");
	r.len = c.len;
	return r;
}

static char *write_core(struct synth_core *sc, const char *name)
{
	char *path = synth_core_path(tmpdir, name);
	assert_int_equal(synth_core_write(sc, path), 0);
	return path;
}

/* "key": N in a JSON document (the first one). */
static uint64_t json_u64(const char *doc, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = strstr(doc, pat);
	if (!p)
		fail_msg("no \"%s\" in %s", key, doc);
	return strtoull(p + strlen(pat), NULL, 10);
}

/* A small glibc process: libc's data, a main heap with a few chunks (one
 * freed to the tcache), an mmapped chunk, one thread. */
static void build_process(struct synth_glibc *g)
{
	struct synth_glibc_heap m;
	synth_glibc_init(g, 236);
	synth_glibc_libc(g, LIBC);
	synth_glibc_main_heap(g, MAIN_HEAP, 0x21000, &m);
	uint64_t tc = synth_glibc_tcache(g, &m);
	synth_glibc_chunk(g, &m, 0x30);
	uint64_t f = synth_glibc_chunk(g, &m, 0x30);
	synth_glibc_chunk(g, &m, 0x100);
	synth_glibc_finish_heap(g, &m);
	synth_glibc_tcache_put(g, tc, f);
	synth_glibc_mmapped(g, MMAPPED, 0x22000);
	synth_glibc_thread(g, 100, FS_MAIN, tc);
}

static struct synth_core *process_core(struct synth_glibc *g)
{
	build_process(g);
	struct synth_core *sc = synth_core_create();
	synth_core_add_glibc(sc, g);
	return sc;
}

static const char *const summary_argv[] = { "summary", NULL };

/* The clean process's summary, for comparison. */
static void clean_summary(uint64_t *used, uint64_t *used_bytes)
{
	struct synth_glibc *g = calloc(1, sizeof(*g));
	struct synth_core *sc = process_core(g);
	char *path = write_core(sc, "clean.core");
	struct run r = run_cmd(path, true, summary_argv);
	if (r.err)
		fail_msg("clean summary: %s", hs_error_message(r.err));
	const char *in_use = strstr(r.out, "\"in_use\"");
	assert_non_null(in_use);
	*used = json_u64(in_use, "count");
	*used_bytes = json_u64(in_use, "bytes");
	if (*used < 3)
		fail_msg("clean summary: %s", r.out);
	run_free(&r);
	free(path);
	synth_core_destroy(sc);
	synth_glibc_deinit(g);
	free(g);
}

/* Finding: an NT_FILE entry ending above 0xfffffffffffff000 wrapped the page
 * round-up in find_mmapped (SIGSEGV; an endless loop when it starts at 0). */
static void test_nt_file_entry_ending_at_the_top_of_the_address_space(void **state)
{
	(void)state;
	uint64_t want_used, want_bytes;
	clean_summary(&want_used, &want_bytes);
	static const uint64_t starts[] = { 0, MAIN_HEAP + 0x1000, MMAPPED - 0x1000 };
	for (size_t k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
		struct synth_glibc *g = calloc(1, sizeof(*g));
		struct synth_core *sc = process_core(g);
		struct synth_core_file f[] = {
			{ starts[k], UINT64_C(0xfffffffffffff800), 0, "/hostile" },
			{ UINT64_C(0xfffffffffffff001), UINT64_C(0xffffffffffffffff), 0, "/top" },
		};
		synth_core_add_file_note(sc, 4096, f, 2);
		char *path = write_core(sc, "ntfile_top.core");
		for (int json = 0; json < 2; json++) {
			static const char *const info_argv[] = { "info", NULL };
			struct run r = run_cmd(path, json, info_argv);
			assert_null(r.err);
			run_free(&r);
			r = run_cmd(path, json, summary_argv);
			if (r.err)
				fail_msg("summary with NT_FILE from 0x%" PRIx64 ": %s", starts[k], hs_error_message(r.err));
			if (json) {
				// The file mapping hides the mmapped chunk from the scan
				// (files are never mmapped chunks); the heap is whole.
				const char *in_use = strstr(r.out, "\"in_use\"");
				uint64_t used = json_u64(in_use, "count");
				assert_true(used == want_used || used == want_used - 1);
			}
			run_free(&r);
		}
		free(path);
		synth_core_destroy(sc);
		synth_glibc_deinit(g);
		free(g);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nt_file_entry_ending_at_the_top_of_the_address_space),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
