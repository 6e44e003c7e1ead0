/* test_output.c - buffered output through the caller's callback, stopping
 * when the callback says so, the JSON writer, and human sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "output.h"
#include "utf8_check.h"

struct capture {
	char *text;            /* everything written, NUL-terminated */
	size_t len;
	size_t calls;
	size_t sizes[16];      /* length of each of the first calls */
	size_t stop_on_call;   /* return nonzero from this call on (1-based); 0: never */
};

static int capture_write(void *ctx, const char *buf, size_t len)
{
	struct capture *c = ctx;
	if (c->calls < 16)
		c->sizes[c->calls] = len;
	c->calls++;
	char *t = realloc(c->text, c->len + len + 1);
	if (!t)
		return 1;
	memcpy(t + c->len, buf, len);
	c->len += len;
	t[c->len] = 0;
	c->text = t;
	return c->stop_on_call && c->calls >= c->stop_on_call;
}

static int setup(void **state)
{
	struct capture *c = calloc(1, sizeof(*c));
	struct hs_out *o = calloc(1, sizeof(*o));
	if (!c || !o)
		return -1;
	c->text = calloc(1, 1);
	hs_out_init(o, capture_write, c);
	state[0] = o;
	return 0;
}

static int teardown(void **state)
{
	struct hs_out *o = *state;
	struct capture *c = o->ctx;
	free(c->text);
	free(c);
	free(o);
	return 0;
}

static struct hs_out *out_of(void **state) { return *state; }
static struct capture *cap_of(void **state) { return out_of(state)->ctx; }

static void test_writes_are_buffered_until_flush(void **state)
{
	struct hs_out *o = out_of(state);
	struct capture *c = cap_of(state);
	hs_out_puts(o, "hello, ");
	hs_out_write(o, "world!!!", 5);
	hs_out_printf(o, " %d %s %#x", 42, "x", 255);
	assert_int_equal(c->calls, 0);
	hs_out_flush(o);
	assert_int_equal(c->calls, 1);
	assert_string_equal(c->text, "hello, world 42 x 0xff");
	hs_out_flush(o);   // nothing buffered: no call
	assert_int_equal(c->calls, 1);
}

static void test_full_buffer_and_big_writes_keep_order(void **state)
{
	struct hs_out *o = out_of(state);
	struct capture *c = cap_of(state);
	size_t cap = sizeof(o->buf);
	char *fill = malloc(cap), *big = malloc(3 * cap);
	assert_non_null(fill);
	assert_non_null(big);
	memset(fill, 'f', cap);
	memset(big, 'B', 3 * cap);
	hs_out_write(o, fill, cap);        // exactly fills the buffer
	assert_int_equal(c->calls, 0);
	hs_out_write(o, "1", 1);           // does not fit: the buffer goes out first
	assert_int_equal(c->calls, 1);
	assert_int_equal(c->sizes[0], cap);
	hs_out_write(o, big, 3 * cap);     // bigger than the buffer: straight through
	assert_int_equal(c->calls, 3);
	assert_int_equal(c->sizes[1], 1);
	assert_int_equal(c->sizes[2], 3 * cap);
	hs_out_puts(o, "end");
	hs_out_flush(o);
	assert_int_equal(c->calls, 4);
	assert_int_equal(c->len, cap + 1 + 3 * cap + 3);
	assert_memory_equal(c->text, fill, cap);
	assert_int_equal(c->text[cap], '1');
	assert_memory_equal(c->text + cap + 1, big, 3 * cap);
	assert_string_equal(c->text + cap + 1 + 3 * cap, "end");
	free(fill);
	free(big);
}

static void test_long_printf(void **state)
{
	struct hs_out *o = out_of(state);
	struct capture *c = cap_of(state);
	char arg[2000];
	memset(arg, 'a', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = 0;
	hs_out_printf(o, "<%s|%d>", arg, 7);
	hs_out_flush(o);
	assert_int_equal(c->len, 1 + 1999 + 3);
	assert_int_equal(c->text[0], '<');
	assert_memory_equal(c->text + 1, arg, 1999);
	assert_string_equal(c->text + 2000, "|7>");
}

static void test_output_stops_once_callback_says_so(void **state)
{
	struct hs_out *o = out_of(state);
	struct capture *c = cap_of(state);
	c->stop_on_call = 1;
	hs_out_puts(o, "first");
	assert_false(o->stopped);
	hs_out_flush(o);
	assert_true(o->stopped);
	assert_int_equal(c->calls, 1);
	// Nothing reaches the callback any more, however it is written.
	hs_out_puts(o, "second");
	hs_out_printf(o, "%s", "third");
	char *big = calloc(1, 3 * sizeof(o->buf));
	assert_non_null(big);
	hs_out_write(o, big, 3 * sizeof(o->buf));
	free(big);
	hs_json_begin_array(o);
	hs_json_u64(o, 1);
	hs_json_end_array(o);
	hs_json_done(o);
	hs_out_flush(o);
	assert_int_equal(c->calls, 1);
	assert_string_equal(c->text, "first");
	assert_true(o->stopped);
}

static void test_stop_on_a_direct_big_write(void **state)
{
	struct hs_out *o = out_of(state);
	struct capture *c = cap_of(state);
	c->stop_on_call = 2;
	hs_out_puts(o, "small");
	char *big = calloc(1, 2 * sizeof(o->buf));
	assert_non_null(big);
	hs_out_write(o, big, 2 * sizeof(o->buf));   // call 1: "small", call 2: big, stop
	assert_true(o->stopped);
	hs_out_write(o, big, 2 * sizeof(o->buf));
	hs_out_puts(o, "more");
	hs_out_flush(o);
	assert_int_equal(c->calls, 2);
	free(big);
}

/* JSON */

static const char *json_of(void **state)
{
	hs_json_done(out_of(state));
	return cap_of(state)->text;
}

static void write_sample(struct hs_out *o)
{
	hs_json_begin_object(o);
	hs_json_ku64(o, "a", 1);
	hs_json_key(o, "b");
	hs_json_begin_array(o);
	hs_json_u64(o, 1);
	hs_json_i64(o, -2);
	hs_json_bool(o, true);
	hs_json_null(o);
	hs_json_string(o, "s");
	hs_json_end_array(o);
	hs_json_key(o, "c");
	hs_json_begin_object(o);
	hs_json_end_object(o);
	hs_json_key(o, "d");
	hs_json_begin_array(o);
	hs_json_begin_object(o);
	hs_json_kbool(o, "x", false);
	hs_json_ki64(o, "y", -7);
	hs_json_end_object(o);
	hs_json_begin_object(o);
	hs_json_end_object(o);
	hs_json_begin_array(o);
	hs_json_end_array(o);
	hs_json_end_array(o);
	hs_json_kstr(o, "e", "last");
	hs_json_end_object(o);
}

static void test_json_nesting_and_commas(void **state)
{
	write_sample(out_of(state));
	assert_string_equal(json_of(state),
		"{\"a\":1,\"b\":[1,-2,true,null,\"s\"],\"c\":{},"
		"\"d\":[{\"x\":false,\"y\":-7},{},[]],\"e\":\"last\"}\n");
}

static void test_json_indent(void **state)
{
	struct hs_out *o = out_of(state);
	o->indent = 2;
	write_sample(o);
	assert_string_equal(json_of(state),
		"{\n"
		"  \"a\": 1,\n"
		"  \"b\": [\n"
		"    1,\n"
		"    -2,\n"
		"    true,\n"
		"    null,\n"
		"    \"s\"\n"
		"  ],\n"
		"  \"c\": {},\n"
		"  \"d\": [\n"
		"    {\n"
		"      \"x\": false,\n"
		"      \"y\": -7\n"
		"    },\n"
		"    {},\n"
		"    []\n"
		"  ],\n"
		"  \"e\": \"last\"\n"
		"}\n");
}

static void test_json_top_level_values(void **state)
{
	struct hs_out *o = out_of(state);
	hs_json_begin_array(o);
	hs_json_end_array(o);
	hs_json_done(o);
	hs_json_string(o, "x");
	hs_json_done(o);
	assert_string_equal(cap_of(state)->text, "[]\n\"x\"\n");
}

static void test_json_escaping(void **state)
{
	struct hs_out *o = out_of(state);
	hs_json_begin_object(o);
	hs_json_kstr(o, "quote\"key", "say \"hi\"");
	hs_json_kstr(o, "path", "C:\\dir\\file");
	hs_json_kstr(o, "ws", "a\nb\tc\rd");
	hs_json_kstr(o, "ctl", "\x01\x1f\x7f");
	hs_json_kstr(o, "utf8", "caf\xc3\xa9 \xe2\x86\x92");
	hs_json_kstr(o, "empty", "");
	hs_json_end_object(o);
	assert_string_equal(json_of(state),
		"{\"quote\\\"key\":\"say \\\"hi\\\"\","
		"\"path\":\"C:\\\\dir\\\\file\","
		"\"ws\":\"a\\nb\\tc\\u000dd\","
		"\"ctl\":\"\\u0001\\u001f\\u007f\","
		"\"utf8\":\"caf\xc3\xa9 \xe2\x86\x92\","
		"\"empty\":\"\"}\n");
}

static void test_json_null_strings(void **state)
{
	struct hs_out *o = out_of(state);
	hs_json_begin_object(o);
	hs_json_kstr(o, "path", NULL);
	hs_json_key(o, "list");
	hs_json_begin_array(o);
	hs_json_string(o, NULL);
	hs_json_string(o, "x");
	hs_json_string(o, NULL);
	hs_json_end_array(o);
	hs_json_end_object(o);
	assert_string_equal(json_of(state), "{\"path\":null,\"list\":[null,\"x\",null]}\n");
}

static void test_json_number_limits(void **state)
{
	struct hs_out *o = out_of(state);
	hs_json_begin_array(o);
	hs_json_u64(o, 0);
	hs_json_u64(o, UINT64_MAX);
	hs_json_i64(o, INT64_MIN);
	hs_json_i64(o, INT64_MAX);
	hs_json_end_array(o);
	assert_string_equal(json_of(state),
		"[0,18446744073709551615,-9223372036854775808,9223372036854775807]\n");
}

static void test_json_longer_than_the_buffer(void **state)
{
	struct hs_out *o = out_of(state);
	hs_json_begin_array(o);
	for (int i = 0; i < 5000; i++)
		hs_json_u64(o, (uint64_t)i);
	hs_json_end_array(o);
	const char *text = json_of(state);
	assert_true(cap_of(state)->calls > 1);
	// "[0,1,...,4999]\n": 10 + 90*2 + 900*3 + 4000*4 digits, 4999 commas, 3 more.
	assert_int_equal(strlen(text), 10 + 180 + 2700 + 16000 + 4999 + 3);
	assert_memory_equal(text, "[0,1,2,", 7);
	assert_string_equal(text + strlen(text) - 11, "4998,4999]\n");
}

static void test_fmt_size(void **state)
{
	(void)state;
	const struct { uint64_t bytes; const char *want; } cases[] = {
		{ 0, "0 B" }, { 1, "1 B" }, { 1023, "1023 B" },
		{ 1024, "1.00 KiB" }, { 1536, "1.50 KiB" }, { 10 * 1024, "10.0 KiB" },
		{ 100 * 1024, "100 KiB" }, { 1023 * 1024, "1023 KiB" },
		{ 1ull << 20, "1.00 MiB" }, { 3ull << 19, "1.50 MiB" }, { 1ull << 30, "1.00 GiB" },
		{ 5ull << 40, "5.00 TiB" }, { 1ull << 50, "1024 TiB" },
		{ UINT64_MAX, "16777216 TiB" },
	};
	char buf[32];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = hs_fmt_size(cases[i].bytes, buf, sizeof(buf));
		assert_ptr_equal(got, buf);
		assert_string_equal(got, cases[i].want);
	}
	// A short buffer is cut, never overrun.
	char small[5];
	memset(small, 'z', sizeof(small));
	hs_fmt_size(1536, small, 4);
	assert_string_equal(small, "1.5");
	assert_int_equal(small[4], 'z');
}


/* Issue 11: --json was not valid UTF-8 when the core held other bytes (a
 * kernel core of "программа" cuts pr_fname at 15 bytes, mid-character).
 * Each byte that is not part of well-formed UTF-8 becomes U+FFFD. */
static void test_json_is_valid_utf8_whatever_the_bytes(void **state)
{
	struct hs_out *o = out_of(state);
	hs_json_begin_object(o);
	hs_json_kstr(o, "cut", "\xd0\xbf\xd1\x80\xd0\xbe\xd0\xb3\xd1\x80\xd0\xb0\xd0\xbc\xd0");
	hs_json_kstr(o, "overlong", "\xc0\xaf");
	hs_json_kstr(o, "surrogate", "\xed\xa0\x80");
	hs_json_kstr(o, "too_big", "\xf4\x90\x80\x80");
	hs_json_kstr(o, "lone", "a\x80" "b\xff");
	hs_json_kstr(o, "c1", "\xc2\x9b" "2J");
	hs_json_kstr(o, "emoji", "\xf0\x9f\x98\x80");
	hs_json_end_object(o);
	assert_string_equal(json_of(state),
		"{\"cut\":\"\xd0\xbf\xd1\x80\xd0\xbe\xd0\xb3\xd1\x80\xd0\xb0\xd0\xbc\\ufffd\","
		"\"overlong\":\"\\ufffd\\ufffd\","
		"\"surrogate\":\"\\ufffd\\ufffd\\ufffd\","
		"\"too_big\":\"\\ufffd\\ufffd\\ufffd\\ufffd\","
		"\"lone\":\"a\\ufffdb\\ufffd\","
		"\"c1\":\"\\u009b2J\","
		"\"emoji\":\"\xf0\x9f\x98\x80\"}\n");
	// Every string of 1 to 3 bytes from a mixed alphabet: always valid.
	static const unsigned char alpha[] = { 'a', '"', '\\', 0x01, 0x7f, 0x80, 0xbf, 0xc2, 0xc3,
					       0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x9f };
	const size_t na = sizeof(alpha);
	for (size_t i = 0; i < na * na * na; i++) {
		unsigned char str[4] = { alpha[i % na], alpha[i / na % na], alpha[i / na / na], 0 };
		struct capture *c = cap_of(state);
		c->len = 0;
		c->text[0] = 0;
		hs_json_string(o, (const char *)str);
		hs_out_flush(o);
		if (!valid_utf8((const unsigned char *)c->text, c->len))
			fail_msg("not UTF-8 for %02x %02x %02x", str[0], str[1], str[2]);
	}
}

/* Issue 11: text printed terminal escapes from the core raw.  In text mode
 * every control, C1 control and bad byte is written \xNN. */
static void test_text_escapes_what_a_terminal_would_act_on(void **state)
{
	struct hs_out *o = out_of(state);
	o->escape_text = true;
	hs_out_printf(o, "name %s\n", "\x1b]0;pwned\x07\x1b[2J\r");
	hs_out_printf(o, "%s|%s|%s\n", "caf\xc3\xa9", "\xc2\x9b" "1m", "\xd0\xbc\xd0");
	hs_out_puts(o, "tab\there\x7f\n");
	hs_out_flush(o);
	assert_string_equal(cap_of(state)->text,
		"name \\x1b]0;pwned\\x07\\x1b[2J\\x0d\n"
		"caf\xc3\xa9|\\xc2\\x9b1m|\xd0\xbc\\xd0\n"
		"tab\\x09here\\x7f\n");
	char *e = hs_text_escape_dup("one\nline\x1b");
	assert_string_equal(e, "one\\x0aline\\x1b");
	free(e);
}

static void add_note(void *ctx)
{
	hs_json_kstr(ctx, "note", "added");
}

/* The hook that puts the diagnostics into every command's document runs
 * once, right before the top-level object closes; unwinding closes what a
 * failing command left open. */
static void test_json_close_hook_and_unwind(void **state)
{
	struct hs_out *o = out_of(state);
	o->before_close = add_note;
	o->before_close_ctx = o;
	hs_json_begin_object(o);
	hs_json_key(o, "a");
	hs_json_begin_array(o);
	hs_json_begin_object(o);
	hs_json_key(o, "pending");
	hs_json_unwind(o);
	hs_json_kstr(o, "error", "x");
	hs_json_end_object(o);
	hs_json_done(o);
	assert_string_equal(cap_of(state)->text,
		"{\"a\":[{\"pending\":null}],\"error\":\"x\",\"note\":\"added\"}\n");
	assert_null(o->before_close);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_writes_are_buffered_until_flush),
		T(test_full_buffer_and_big_writes_keep_order),
		T(test_long_printf),
		T(test_output_stops_once_callback_says_so),
		T(test_stop_on_a_direct_big_write),
		T(test_json_nesting_and_commas),
		T(test_json_indent),
		T(test_json_top_level_values),
		T(test_json_escaping),
		T(test_json_null_strings),
		T(test_json_number_limits),
		T(test_json_longer_than_the_buffer),
		T(test_json_is_valid_utf8_whatever_the_bytes),
		T(test_text_escapes_what_a_terminal_would_act_on),
		T(test_json_close_hook_and_unwind),
		cmocka_unit_test(test_fmt_size),
	};
#undef T
	return cmocka_run_group_tests_name("output", tests, NULL, NULL);
}
