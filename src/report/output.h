/* output.h - where a command writes: a write callback, with buffering, and a
 * streaming JSON writer and text helpers on top.
 *
 * Once the callback returns nonzero (a pager's "q", a closed pipe), out->stopped
 * is set and every later write is dropped; commands check it to stop early.
 */
#ifndef HS_OUTPUT_H
#define HS_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "heapscope.h"

struct hs_out {
	hs_write_fn write;
	void *ctx;
	bool stopped;
	/* Text for a terminal: every write is escaped (hs_text_printable_len). */
	bool escape_text;
	/* Called once, just before the top-level JSON object closes (the
	 * command layer adds the diagnostics there); then cleared. */
	void (*before_close)(void *ctx);
	void *before_close_ctx;
	char buf[8192];
	size_t len;
	/* JSON state */
	int depth;
	bool first[64];            /* no element yet at this depth */
	char open[64];             /* '{' or '[' at this depth */
	bool after_key;
	int indent;                /* 0: compact; else spaces per level */
};

void hs_out_init(struct hs_out *o, hs_write_fn write, void *ctx);
void hs_out_flush(struct hs_out *o);
void hs_out_write(struct hs_out *o, const char *s, size_t len);
void hs_out_puts(struct hs_out *o, const char *s);
void hs_out_printf(struct hs_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Bytes from the target (names, paths, command lines) are not trusted to be
 * text.  At p (n bytes left): the length of the next character when it is
 * printable, well-formed UTF-8 (1 to 4 bytes), or 0 when it must be escaped:
 * a C0 control (but '\n' when newline_ok), DEL, a C1 control (U+0080 to
 * U+009F), or a byte that is not part of well-formed UTF-8. */
size_t hs_text_printable_len(const unsigned char *p, size_t n, bool newline_ok);
/* A copy of s with every byte that hs_text_printable_len refuses written as
 * \xNN (malloc'd; NULL when out of memory). */
char *hs_text_escape_dup(const char *s);

/* Human sizes: "1.5 MiB" (buf >= 16). */
const char *hs_fmt_size(uint64_t bytes, char *buf, size_t len);

/* JSON: objects and arrays nest; keys are given before each value in objects. */
void hs_json_begin_object(struct hs_out *o);
void hs_json_end_object(struct hs_out *o);
void hs_json_begin_array(struct hs_out *o);
void hs_json_end_array(struct hs_out *o);
void hs_json_key(struct hs_out *o, const char *key);
/* NULL -> null.  Well-formed UTF-8 passes; each byte that is not part of it
 * becomes U+FFFD (docs/json.md), so the document is always valid UTF-8. */
void hs_json_string(struct hs_out *o, const char *s);
void hs_json_u64(struct hs_out *o, uint64_t v);
void hs_json_i64(struct hs_out *o, int64_t v);
void hs_json_bool(struct hs_out *o, bool v);
void hs_json_null(struct hs_out *o);
/* key + value shorthands */
void hs_json_kstr(struct hs_out *o, const char *key, const char *s);
void hs_json_ku64(struct hs_out *o, const char *key, uint64_t v);
void hs_json_ki64(struct hs_out *o, const char *key, int64_t v);
void hs_json_kbool(struct hs_out *o, const char *key, bool v);
/* key: {"count": count, "bytes": bytes} */
void hs_json_kcount(struct hs_out *o, const char *key, uint64_t count, uint64_t bytes);
/* Close every open container but the top-level object (a null for a key
 * left without a value): a failing command adds its "error" there. */
void hs_json_unwind(struct hs_out *o);
/* After the top-level value: a newline. */
void hs_json_done(struct hs_out *o);

#endif
