/* output.c - see output.h. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "output.h"

void hs_out_init(struct hs_out *o, hs_write_fn write, void *ctx)
{
	memset(o, 0, sizeof(*o));
	o->write = write;
	o->ctx = ctx;
	o->first[0] = true;
}

void hs_out_flush(struct hs_out *o)
{
	if (o->len && !o->stopped && o->write(o->ctx, o->buf, o->len))
		o->stopped = true;
	o->len = 0;
}

void hs_out_write(struct hs_out *o, const char *s, size_t len)
{
	if (o->stopped)
		return;
	if (o->len + len > sizeof(o->buf)) {
		hs_out_flush(o);
		if (len > sizeof(o->buf)) {
			if (!o->stopped && o->write(o->ctx, s, len))
				o->stopped = true;
			return;
		}
	}
	memcpy(o->buf + o->len, s, len);
	o->len += len;
}

void hs_out_puts(struct hs_out *o, const char *s)
{
	hs_out_write(o, s, strlen(s));
}

void hs_out_printf(struct hs_out *o, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		hs_out_write(o, small, n);
		return;
	}
	char *big = NULL;
	va_start(ap, fmt);
	n = vasprintf(&big, fmt, ap);
	va_end(ap);
	if (n >= 0) {
		hs_out_write(o, big, n);
		free(big);
	}
}

const char *hs_fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	double v = bytes;
	int u = 0;
	// Switch unit before the number would print as 1024.
	while (v >= 1023.5 && u < 4) {
		v /= 1024;
		u++;
	}
	// Pick the precision from the value as it will be rounded ("10.0", not "10.00").
	snprintf(buf, len, v < 9.995 ? "%.2f %s" : v < 99.95 ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

/* JSON */

static void json_newline(struct hs_out *o)
{
	if (!o->indent)
		return;
	hs_out_write(o, "\n", 1);
	for (int i = 0; i < o->depth * o->indent; i++)
		hs_out_write(o, " ", 1);
}

// Before any value: a comma when it is not the first element of its container
// (keys already wrote theirs).
static void json_value_prefix(struct hs_out *o)
{
	if (o->after_key) {
		o->after_key = false;
		return;
	}
	if (o->depth > 0) {
		if (!o->first[o->depth])
			hs_out_write(o, ",", 1);
		json_newline(o);
	}
	o->first[o->depth] = false;
}

static void json_open(struct hs_out *o, char c)
{
	json_value_prefix(o);
	hs_out_write(o, &c, 1);
	if (o->depth < 63)
		o->depth++;
	o->first[o->depth] = true;
}

static void json_close(struct hs_out *o, char c)
{
	bool empty = o->first[o->depth];
	if (o->depth > 0)
		o->depth--;
	if (!empty)
		json_newline(o);
	hs_out_write(o, &c, 1);
}

void hs_json_begin_object(struct hs_out *o) { json_open(o, '{'); }
void hs_json_end_object(struct hs_out *o) { json_close(o, '}'); }
void hs_json_begin_array(struct hs_out *o) { json_open(o, '['); }
void hs_json_end_array(struct hs_out *o) { json_close(o, ']'); }

static void json_raw_string(struct hs_out *o, const char *s)
{
	hs_out_write(o, "\"", 1);
	const char *run = s;
	for (; *s; s++) {
		unsigned char c = *s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		hs_out_write(o, run, s - run);
		char esc[8];
		switch (c) {
		case '"': hs_out_write(o, "\\\"", 2); break;
		case '\\': hs_out_write(o, "\\\\", 2); break;
		case '\n': hs_out_write(o, "\\n", 2); break;
		case '\t': hs_out_write(o, "\\t", 2); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			hs_out_write(o, esc, 6);
		}
		run = s + 1;
	}
	hs_out_write(o, run, s - run);
	hs_out_write(o, "\"", 1);
}

void hs_json_key(struct hs_out *o, const char *key)
{
	if (!o->first[o->depth])
		hs_out_write(o, ",", 1);
	json_newline(o);
	o->first[o->depth] = false;
	json_raw_string(o, key);
	hs_out_write(o, o->indent ? ": " : ":", o->indent ? 2 : 1);
	o->after_key = true;
}

void hs_json_string(struct hs_out *o, const char *s)
{
	if (!s) {
		hs_json_null(o);
		return;
	}
	json_value_prefix(o);
	json_raw_string(o, s);
}

void hs_json_u64(struct hs_out *o, uint64_t v)
{
	json_value_prefix(o);
	hs_out_printf(o, "%" PRIu64, v);
}

void hs_json_i64(struct hs_out *o, int64_t v)
{
	json_value_prefix(o);
	hs_out_printf(o, "%" PRId64, v);
}

void hs_json_bool(struct hs_out *o, bool v)
{
	json_value_prefix(o);
	hs_out_puts(o, v ? "true" : "false");
}

void hs_json_null(struct hs_out *o)
{
	json_value_prefix(o);
	hs_out_puts(o, "null");
}

void hs_json_kstr(struct hs_out *o, const char *key, const char *s) { hs_json_key(o, key); hs_json_string(o, s); }
void hs_json_ku64(struct hs_out *o, const char *key, uint64_t v) { hs_json_key(o, key); hs_json_u64(o, v); }
void hs_json_ki64(struct hs_out *o, const char *key, int64_t v) { hs_json_key(o, key); hs_json_i64(o, v); }
void hs_json_kbool(struct hs_out *o, const char *key, bool v) { hs_json_key(o, key); hs_json_bool(o, v); }

void hs_json_kcount(struct hs_out *o, const char *key, uint64_t count, uint64_t bytes)
{
	hs_json_key(o, key);
	hs_json_begin_object(o);
	hs_json_ku64(o, "count", count);
	hs_json_ku64(o, "bytes", bytes);
	hs_json_end_object(o);
}

void hs_json_done(struct hs_out *o)
{
	hs_out_write(o, "\n", 1);
	hs_out_flush(o);
}
