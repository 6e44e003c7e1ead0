/* test_export.c - the pprof encoder (decoded back here with a small protobuf
 * reader: gzip, string table, sample types, samples leaf first, locations and
 * functions), stack paths, and files written atomically. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "export.h"

/* Three frames, three stacks: "globals" -> "g_list" -> "node" (2 x 24 bytes),
 * and "[leaked]" -> "? (40 bytes)" (1 x 40, leaked). */
static void make_stacks(struct hs_stacks *st)
{
	memset(st, 0, sizeof(*st));
	static char *frames[] = { "globals", "g_list", "node", "[leaked]", "? (40 bytes)" };
	st->frames = frames;
	st->nframes = 5;
	static struct hs_stack_node nodes[] = {
		{ HS_STACK_NONE, 0, 1, 0, 0, 0, 0, 0 },
		{ 0, 1, 2, 1, 0, 0, 0, 0 },
		{ 1, 2, 3, 1, 2, 48, 0, 0 },
		{ HS_STACK_NONE, 3, 1, 3, 0, 0, 0, 0 },
		{ 3, 4, 2, 3, 1, 40, 1, 40 },
	};
	st->nodes = nodes;
	st->nnodes = 5;
}

/* A protobuf reader: fields of one message. */
struct field { unsigned num, wire; uint64_t v; const uint8_t *p; size_t len; };

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

static size_t fields(const uint8_t *p, size_t len, struct field *out, size_t max)
{
	const uint8_t *end = p + len;
	size_t n = 0;
	while (p < end) {
		uint64_t key;
		assert_true(varint(&p, end, &key));
		struct field f = { (unsigned)(key >> 3), (unsigned)(key & 7), 0, NULL, 0 };
		if (f.wire == 0) {
			assert_true(varint(&p, end, &f.v));
		} else {
			assert_int_equal(f.wire, 2);
			uint64_t l;
			assert_true(varint(&p, end, &l));
			assert_true(l <= (uint64_t)(end - p));
			f.p = p;
			f.len = (size_t)l;
			p += l;
		}
		assert_true(n < max);
		out[n++] = f;
	}
	return n;
}

static uint64_t field_u(const struct field *f, size_t n, unsigned num)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].num == num && f[i].wire == 0)
			return f[i].v;
	return UINT64_MAX;
}

static size_t packed(const struct field *f, uint64_t *out, size_t max)
{
	const uint8_t *p = f->p, *end = f->p + f->len;
	size_t n = 0;
	while (p < end && n < max)
		assert_true(varint(&p, end, &out[n++]));
	return n;
}

static void test_pprof_roundtrip(void **state)
{
	(void)state;
	struct hs_stacks st;
	make_stacks(&st);
	struct hs_pprof_info info = { { "a comment", NULL } };
	uint8_t *gz;
	size_t gzlen;
	assert_null(hs_pprof_encode(&st, &info, &gz, &gzlen));
	assert_int_equal(gz[0], 0x1f);
	assert_int_equal(gz[1], 0x8b);
	uint8_t *raw = malloc(1 << 16);
	z_stream z = { 0 };
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = gz;
	z.avail_in = (uInt)gzlen;
	z.next_out = raw;
	z.avail_out = 1 << 16;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	size_t len = z.total_out;
	inflateEnd(&z);

	static struct field top[512];
	size_t n = fields(raw, len, top, 512);
	const char *strings[64];
	size_t nstr = 0, nsamples = 0, nloc = 0, nfunc = 0, ntypes = 0;
	for (size_t i = 0; i < n; i++) {
		if (top[i].num == 6) {
			char *s = strndup((const char *)top[i].p, top[i].len);
			strings[nstr++] = s;
		}
	}
	assert_string_equal(strings[0], "");
	uint64_t dflt = field_u(top, n, 14);
	assert_true(dflt < nstr);
	assert_string_equal(strings[dflt], "inuse_space");
	const char *want_types[][2] = { { "inuse_objects", "count" }, { "inuse_space", "bytes" },
					{ "leaked_objects", "count" }, { "leaked_space", "bytes" } };
	for (size_t i = 0; i < n; i++) {
		struct field sub[16];
		size_t m;
		switch (top[i].num) {
		case 1:
			m = fields(top[i].p, top[i].len, sub, 16);
			assert_true(ntypes < 4);
			assert_string_equal(strings[field_u(sub, m, 1)], want_types[ntypes][0]);
			assert_string_equal(strings[field_u(sub, m, 2)], want_types[ntypes][1]);
			ntypes++;
			break;
		case 2: {
			m = fields(top[i].p, top[i].len, sub, 16);
			uint64_t locs[8] = { 0 }, vals[8] = { 0 };
			size_t nl = 0, nv = 0;
			for (size_t k = 0; k < m; k++) {
				if (sub[k].num == 1)
					nl = packed(&sub[k], locs, 8);
				if (sub[k].num == 2)
					nv = packed(&sub[k], vals, 8);
			}
			assert_int_equal(nv, 4);
			// Location id = frame + 1, leaf first.
			if (nsamples == 0) {
				assert_int_equal(nl, 3);
				assert_int_equal(locs[0], 3);
				assert_int_equal(locs[1], 2);
				assert_int_equal(locs[2], 1);
				assert_int_equal(vals[0], 2);
				assert_int_equal(vals[1], 48);
				assert_int_equal(vals[2], 0);
				assert_int_equal(vals[3], 0);
			} else {
				assert_int_equal(nl, 2);
				assert_int_equal(locs[0], 5);
				assert_int_equal(locs[1], 4);
				assert_int_equal(vals[0], 1);
				assert_int_equal(vals[1], 40);
				assert_int_equal(vals[2], 1);
				assert_int_equal(vals[3], 40);
			}
			nsamples++;
			break;
		}
		case 4:
			m = fields(top[i].p, top[i].len, sub, 16);
			assert_int_equal(field_u(sub, m, 1), nloc + 1);
			assert_int_equal(field_u(sub, m, 2), 1);    // the one mapping
			nloc++;
			break;
		case 5:
			m = fields(top[i].p, top[i].len, sub, 16);
			assert_int_equal(field_u(sub, m, 1), nfunc + 1);
			assert_string_equal(strings[field_u(sub, m, 2)], st.frames[nfunc]);
			assert_int_equal(field_u(sub, m, 3), UINT64_MAX);   // no system_name: no demangling
			nfunc++;
			break;
		}
	}
	assert_int_equal(ntypes, 4);
	assert_int_equal(nsamples, 2);      // nodes with allocations only
	assert_int_equal(nloc, 5);
	assert_int_equal(nfunc, 5);
	assert_string_equal(strings[field_u(top, n, 13)], "a comment");
	for (size_t i = 0; i < nstr; i++)
		free((void *)strings[i]);
	free(raw);
	free(gz);
}

static void test_stacks_path(void **state)
{
	(void)state;
	struct hs_stacks st;
	make_stacks(&st);
	char buf[64];
	hs_stacks_path(&st, 2, ";", buf, sizeof(buf));
	assert_string_equal(buf, "globals;g_list;node");
	hs_stacks_path(&st, 4, " > ", buf, sizeof(buf));
	assert_string_equal(buf, "[leaked] > ? (40 bytes)");
	hs_stacks_path(&st, 2, ";", buf, 10);      // cut, still terminated
	assert_true(strlen(buf) < 10);
}

static size_t entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_outfile(void **state)
{
	(void)state;
	char dir[] = "/tmp/hs-outfile-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/out.txt", dir);
	struct hs_outfile f;
	assert_null(hs_outfile_open(&f, path));
	hs_out_puts(&f.out, "hello\n");
	assert_int_equal(access(path, F_OK), -1);     // not there before the commit
	assert_null(hs_outfile_commit(&f));
	FILE *in = fopen(path, "r");
	assert_non_null(in);
	char line[32] = "";
	assert_non_null(fgets(line, sizeof(line), in));
	fclose(in);
	assert_string_equal(line, "hello\n");
	assert_int_equal(entries(dir), 1);
	// An aborted file leaves the old one and no temporary.
	assert_null(hs_outfile_open(&f, path));
	hs_out_puts(&f.out, "other\n");
	hs_outfile_abort(&f);
	assert_int_equal(entries(dir), 1);
	in = fopen(path, "r");
	assert_non_null(fgets(line, sizeof(line), in));
	fclose(in);
	assert_string_equal(line, "hello\n");
	// A directory that does not exist: an error naming the file.
	char bad[160];
	snprintf(bad, sizeof(bad), "%s/no/such/file", dir);
	struct hs_error *err = hs_outfile_open(&f, bad);
	assert_non_null(err);
	assert_non_null(strstr(hs_error_message(err), "no/such/file"));
	hs_error_destroy(err);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pprof_roundtrip),
		cmocka_unit_test(test_stacks_path),
		cmocka_unit_test(test_outfile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
