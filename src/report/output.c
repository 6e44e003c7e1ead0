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

static void out_raw(struct hs_out *o, const char *s, size_t len);

size_t hs_text_printable_len(const unsigned char *p, size_t n, bool newline_ok)
{
	unsigned c = p[0];
	if (c < 0x80)
		return (c >= 0x20 && c != 0x7f) || (c == '\n' && newline_ok) ? 1 : 0;
	// Well-formed UTF-8 (Unicode 15, table 3-7): no overlongs, no
	// surrogates, nothing above U+10FFFF.
	size_t len;
	unsigned lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	if (c == 0xc2 && p[1] < 0xa0)
		return 0;   // C1 controls (U+0080..U+009F): CSI is U+009B
	return len;
}

// Text: printable runs as they are, everything else as \xNN.
static void out_escaped(struct hs_out *o, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
	while (p < end) {
		size_t k = hs_text_printable_len(p, end - p, true);
		if (k) {
			p += k;
			continue;
		}
		out_raw(o, (const char *)run, p - run);
		char esc[8];
		snprintf(esc, sizeof(esc), "\\x%02x", *p);
		out_raw(o, esc, 4);
		run = ++p;
	}
	out_raw(o, (const char *)run, p - run);
}

char *hs_text_escape_dup(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(4 * n + 1), *q = out;
	if (!out)
		return NULL;
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		size_t k = hs_text_printable_len(p, end - p, false);
		if (k) {
			memcpy(q, p, k);
			q += k;
			p += k;
			continue;
		}
		q += sprintf(q, "\\x%02x", *p++);
	}
	*q = 0;
	return out;
}

void hs_out_write(struct hs_out *o, const char *s, size_t len)
{
	if (o->escape_text)
		out_escaped(o, s, len);
	else
		out_raw(o, s, len);
}

static void out_raw(struct hs_out *o, const char *s, size_t len)
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
	o->open[o->depth] = c;
}

static void json_close(struct hs_out *o, char c)
{
	if (c == '}' && o->depth == 1 && o->before_close) {
		void (*fn)(void *) = o->before_close;
		o->before_close = NULL;
		fn(o->before_close_ctx);
	}
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

// A JSON string: escapes for '"', '\\' and controls; each byte that is not
// part of well-formed UTF-8 becomes U+FFFD, so the document always is.
static void json_raw_string(struct hs_out *o, const char *str)
{
	const unsigned char *s = (const unsigned char *)str, *end = s + strlen(str), *run = s;
	out_raw(o, "\"", 1);
	while (s < end) {
		unsigned char c = *s;
		size_t k;
		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7f) {
			s++;
			continue;
		}
		if (c >= 0x80 && (k = hs_text_printable_len(s, end - s, false))) {
			s += k;
			continue;
		}
		out_raw(o, (const char *)run, s - run);
		char esc[8];
		// C1 controls (valid, but a terminal may act on them) as \u0080..
		if (c == 0xc2 && end - s >= 2 && s[1] >= 0x80 && s[1] < 0xa0) {
			snprintf(esc, sizeof(esc), "\\u%04x", s[1]);
			out_raw(o, esc, 6);
			s += 2;
			run = s;
			continue;
		}
		switch (c) {
		case '"': out_raw(o, "\\\"", 2); break;
		case '\\': out_raw(o, "\\\\", 2); break;
		case '\n': out_raw(o, "\\n", 2); break;
		case '\t': out_raw(o, "\\t", 2); break;
		default:
			if (c >= 0x80) {
				out_raw(o, "\\ufffd", 6);
			} else {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				out_raw(o, esc, 6);
			}
		}
		run = ++s;
	}
	out_raw(o, (const char *)run, s - run);
	out_raw(o, "\"", 1);
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

void hs_json_unwind(struct hs_out *o)
{
	if (o->after_key)
		hs_json_null(o);
	while (o->depth > 1)
		json_close(o, o->open[o->depth] == '[' ? ']' : '}');
}

void hs_json_done(struct hs_out *o)
{
	hs_out_write(o, "\n", 1);
	hs_out_flush(o);
}
