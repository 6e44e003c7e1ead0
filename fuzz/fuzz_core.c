/* fuzz_core.c - libFuzzer harness over the public API (include/heapscope.h).
 *
 * Each input is a core file.  It is written to a memfd and opened by path
 * (/proc/self/fd/N) with hs_session_open_core, as the CLI opens a core; then
 * every command runs on it, in text and in JSON.  Beyond "no crash, no hang,
 * no sanitizer report", the harness checks the output contract and aborts
 * (a finding) when it breaks:
 *   - JSON output is one document of valid UTF-8 with "schema": 1, also
 *     when the command fails (then with an "error" member);
 *   - text output holds no byte a terminal acts on (controls but newline,
 *     DEL, C1 controls) and is valid UTF-8.
 * show/chain/refs get the address of the first allocation that chunks
 * reported, else a fixed one.
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
#include "utf8_check.h"

struct buf { char *p; size_t len, cap; };

static int buf_write(void *ctx, const char *s, size_t n)
{
	struct buf *b = ctx;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return 1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}


static void check_text(const char *cmd, const struct buf *b)
{
	const unsigned char *p = (const unsigned char *)b->p;
	for (size_t i = 0; i < b->len; i++) {
		if ((p[i] < 0x20 && p[i] != '\n') || p[i] == 0x7f ||
		    (p[i] == 0xc2 && i + 1 < b->len && p[i + 1] >= 0x80 && p[i + 1] < 0xa0)) {
			fprintf(stderr, "%s: text output holds byte 0x%02x at %zu\n", cmd, p[i], i);
			abort();
		}
	}
	if (!valid_utf8(p, b->len)) {
		fprintf(stderr, "%s: text output is not UTF-8\n", cmd);
		abort();
	}
}

// One JSON document: balanced, a single top-level object, "schema": 1.
static void check_json(const char *cmd, const struct buf *b, bool failed)
{
	if (!valid_utf8((const unsigned char *)b->p, b->len)) {
		fprintf(stderr, "%s --json: not UTF-8\n", cmd);
		abort();
	}
	if (b->len < 3 || b->p[0] != '{' || strcmp(b->p + b->len - 2, "}\n") || !strstr(b->p, "\"schema\": 1")) {
		fprintf(stderr, "%s --json: not one document: [%.*s]\n", cmd, (int)(b->len < 400 ? b->len : 400), b->p ? b->p : "");
		abort();
	}
	int depth = 0;
	bool in_str = false;
	for (size_t i = 0; i < b->len; i++) {
		char c = b->p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
			else if ((unsigned char)c < 0x20) {
				fprintf(stderr, "%s --json: raw control 0x%02x in a string\n", cmd, c);
				abort();
			}
			continue;
		}
		if (c == '"')
			in_str = true;
		else if (c == '{' || c == '[')
			depth++;
		else if ((c == '}' || c == ']') && (--depth < 0 || (depth == 0 && i != b->len - 2))) {
			fprintf(stderr, "%s --json: unbalanced or two documents\n", cmd);
			abort();
		}
	}
	if (depth != 0 || in_str) {
		fprintf(stderr, "%s --json: unbalanced\n", cmd);
		abort();
	}
	if (failed && !strstr(b->p, "\"error\": {")) {
		fprintf(stderr, "%s --json failed without an error member\n", cmd);
		abort();
	}
}

static void run(struct hs_session *s, const char *const *argv, int argc, struct buf *chunks_json)
{
	for (int json = 0; json < 2; json++) {
		struct buf b = { 0 };
		int status = 0;
		struct hs_error *err = hs_session_run(s, argc, argv, json ? HS_FORMAT_JSON : HS_FORMAT_TEXT,
						      buf_write, &b, &status);
		if (json)
			check_json(argv[0], &b, err != NULL);
		else
			check_text(argv[0], &b);
		hs_error_destroy(err);
		if (json && chunks_json && !chunks_json->p) {
			*chunks_json = b;
			continue;
		}
		free(b.p);
	}
}

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
		struct buf b = { 0 };
		hs_write_json_error(hs_error_code(err), hs_error_message(err), "summary", buf_write, &b);
		check_json("open", &b, true);
		free(b.p);
		hs_error_destroy(err);
		return 0;
	}
	static const char *const simple[][2] = {
		{ "info" }, { "summary" }, { "arenas" }, { "chunks" }, { "bins" },
		{ "leaks" }, { "histogram" }, { "top" }, { "goroutines" },
	};
	struct buf chunks = { 0 };
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
		run(s, simple[i], 1, !strcmp(simple[i][0], "chunks") ? &chunks : NULL);
	uint64_t addr = 0x1000;
	const char *a = chunks.p ? strstr(chunks.p, "\"address\": ") : NULL;
	if (a)
		addr = strtoull(a + 11, NULL, 10);
	free(chunks.p);
	char addr_text[32];
	snprintf(addr_text, sizeof(addr_text), "0x%" PRIx64, addr);
	static const char *const with_addr[] = { "show", "chain", "refs" };
	for (size_t i = 0; i < 3; i++) {
		const char *argv[] = { with_addr[i], addr_text, NULL };
		run(s, argv, 2, NULL);
	}
	const char *leaks_list[] = { "leaks", "--list", NULL };
	run(s, leaks_list, 2, NULL);
	hs_session_destroy(s);
	return 0;
}
