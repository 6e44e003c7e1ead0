/* fuzz_core.c - libFuzzer harness over the public API (include/heapscope.h).
 *
 * Each input is a core file.  It is written to a memfd and opened by path
 * (/proc/self/fd/N) with hs_session_open_core, as the CLI opens a core; then
 * every command runs on it, in text and in JSON.  Beyond "no crash, no hang,
 * no sanitizer report", the harness checks the output contract
 * (output_check.h) and aborts (a finding) when it breaks.
 * show/chain/refs/map get the address of the first allocation that chunks
 * reported, else a fixed one.  The Go readers are fuzzed by fuzz_go.c.
 *
 * Build and run: make fuzz (FUZZ_SECONDS=120 by default; docs/fuzzing.md).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "heapscope.h"
#include "output_check.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fd < 0) {
		fd = memfd_create("core", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	struct hs_options opts = { .no_debuginfo = 1, .jobs = 1 };
	struct hs_session *s = NULL;
	struct hs_error *err = hs_session_open_core(path, &opts, &s);
	if (err) {
		struct out_buf b = { 0 };
		hs_write_json_error(hs_error_code(err), hs_error_message(err), "summary", out_buf_write, &b);
		out_check_json("open", &b, true);
		free(b.p);
		hs_error_destroy(err);
		return 0;
	}
	static const char *const simple[][2] = {
		{ "info" }, { "summary" }, { "arenas" }, { "chunks" }, { "bins" },
		{ "leaks" }, { "histogram" }, { "top" }, { "goroutines" }, { "maps" },
		{ "pools" }, { "owners" },
	};
	struct out_buf chunks = { 0 };
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		out_run(s, simple[i], 1, !strcmp(simple[i][0], "chunks") ? &chunks : NULL);
	uint64_t addr = 0x1000;
	const char *a = chunks.p ? strstr(chunks.p, "\"address\": ") : NULL;
	if (a)
		addr = strtoull(a + 11, NULL, 10);
	free(chunks.p);
	char addr_text[32];
	snprintf(addr_text, sizeof(addr_text), "0x%" PRIx64, addr);
	static const char *const with_addr[] = { "show", "chain", "refs", "map" };
	for (size_t i = 0; i < 4; i++) {
		const char *argv[] = { with_addr[i], addr_text, NULL };
		out_run(s, argv, 2, NULL);
	}
	const char *leaks_list[] = { "leaks", "--list", NULL };
	out_run(s, leaks_list, 2, NULL);
	hs_session_destroy(s);
	return 0;
}
