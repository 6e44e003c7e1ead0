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
	char buf[8192];
	size_t len;
	/* JSON state */
	int depth;
	bool first[64];            /* no element yet at this depth */
	bool after_key;
	int indent;                /* 0: compact; else spaces per level */
};

void hs_out_init(struct hs_out *o, hs_write_fn write, void *ctx);
void hs_out_flush(struct hs_out *o);
void hs_out_write(struct hs_out *o, const char *s, size_t len);
void hs_out_puts(struct hs_out *o, const char *s);
void hs_out_printf(struct hs_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Human sizes: "1.5 MiB" (buf >= 16). */
const char *hs_fmt_size(uint64_t bytes, char *buf, size_t len);

/* JSON: objects and arrays nest; keys are given before each value in objects. */
void hs_json_begin_object(struct hs_out *o);
void hs_json_end_object(struct hs_out *o);
void hs_json_begin_array(struct hs_out *o);
void hs_json_end_array(struct hs_out *o);
void hs_json_key(struct hs_out *o, const char *key);
void hs_json_string(struct hs_out *o, const char *s);   /* NULL -> null */
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
/* After the top-level value: a newline. */
void hs_json_done(struct hs_out *o);

#endif
