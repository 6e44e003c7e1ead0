/* output_check.h - the output contract both fuzz harnesses check (fuzz_core.c,
 * fuzz_go.c), aborting (a finding) when it breaks:
 *   - JSON output is one document of valid UTF-8 with "schema": 1, also
 *     when the command fails (then with an "error" member);
 *   - text output holds no byte a terminal acts on (controls but newline,
 *     DEL, C1 controls) and is valid UTF-8.
 * out_run() runs one command in text and in JSON and checks both; with
 * keep_json, the JSON document is kept there for the caller (freed by it). */
#ifndef HS_FUZZ_OUTPUT_CHECK_H
#define HS_FUZZ_OUTPUT_CHECK_H
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapscope.h"
#include "utf8_check.h"

struct out_buf { char *p; size_t len, cap; };

static inline int out_buf_write(void *ctx, const char *s, size_t n)
{
	struct out_buf *b = ctx;
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


static inline void out_check_text(const char *cmd, const struct out_buf *b)
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
static inline void out_check_json(const char *cmd, const struct out_buf *b, bool failed)
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

static inline void out_run(struct hs_session *s, const char *const *argv, int argc, struct out_buf *keep_json)
{
	for (int json = 0; json < 2; json++) {
		struct out_buf b = { 0 };
		int status = 0;
		struct hs_error *err = hs_session_run(s, argc, argv, json ? HS_FORMAT_JSON : HS_FORMAT_TEXT,
						      out_buf_write, &b, &status);
		if (json)
			out_check_json(argv[0], &b, err != NULL);
		else
			out_check_text(argv[0], &b);
		hs_error_destroy(err);
		if (json && keep_json && !keep_json->p) {
			*keep_json = b;
			continue;
		}
		free(b.p);
	}
}

#endif
