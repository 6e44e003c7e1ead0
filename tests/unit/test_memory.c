/* test_memory.c - the segment table: which addresses give bytes, which give
 * NOT_DUMPED, which UNMAPPED, and that spans point into the mapped core. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "memory.h"
#include "synth_core.h"
#include "target.h"

/* The core used by most tests:
 *
 *   0x400000 +0x2000  rw-   first 0x1000 dumped, the rest not
 *   0x600000 +0x1000  r--   dumped  } adjacent
 *   0x601000 +0x1000  rw-   dumped  }
 *   0x700000 +0x1000  r-x   dumped, starts with "hello, core"
 *   0x800000 +0x2000  rw-   first 0x1000 dumped, all 'x' (no NUL)
 *   0x900000 +0x1000  r--   nothing dumped (p_filesz 0)
 *
 * Everything else is unmapped. */
#define PART 0x400000u
#define ADJ1 0x600000u
#define ADJ2 0x601000u
#define TEXT 0x700000u
#define XS 0x800000u
#define NONE 0x900000u

struct fixture {
	char *dir;
	char *path;
	struct synth_core *sc;
	struct hs_target *t;
	size_t text_index;
	size_t adj1_index;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || !(f->dir = synth_core_mkdtemp()))
		return -1;
	f->path = synth_core_path(f->dir, "mem.core");
	f->sc = synth_core_create();
	struct synth_core_thread th = { .tid = 4242 };
	th.regs[19] = ADJ2 + 0x800;   // rsp
	synth_core_add_prstatus(f->sc, &th);
	synth_core_add_load(f->sc, PART, 0x2000, 0x1000, PF_R | PF_W, NULL);
	f->adj1_index = synth_core_add_load(f->sc, ADJ1, 0x1000, 0x1000, PF_R, NULL);
	synth_core_add_load(f->sc, ADJ2, 0x1000, 0x1000, PF_R | PF_W, NULL);
	uint8_t text[0x1000];
	synth_core_fill_pattern(TEXT, text, sizeof(text));
	memcpy(text, "hello, core", 12);
	f->text_index = synth_core_add_load(f->sc, TEXT, 0x1000, 0x1000, PF_R | PF_X, text);
	uint8_t xs[0x1000];
	memset(xs, 'x', sizeof(xs));
	synth_core_add_load(f->sc, XS, 0x2000, 0x1000, PF_R | PF_W, xs);
	synth_core_add_load(f->sc, NONE, 0x1000, 0, PF_R, NULL);
	if (synth_core_write(f->sc, f->path) != 0)
		return -1;
	struct hs_error *err = hs_target_open_core(f->path, &f->t);
	if (err) {
		print_error("open %s: %s\n", f->path, hs_error_message(err));
		hs_error_destroy(err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (!f)
		return 0;
	hs_target_destroy(f->t);
	synth_core_destroy(f->sc);
	if (f->dir)
		synth_core_rmdir(f->dir);
	free(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static struct hs_memory *mem_of(void **state)
{
	return &((struct fixture *)*state)->t->mem;
}

/* Assert that err is a fault of the given code at addr, and free it. */
static void assert_fault(struct hs_error *err, enum hs_error_code code, uint64_t addr)
{
	assert_non_null(err);
	assert_int_equal(hs_error_code(err), code);
	assert_int_equal(err->address, addr);
	hs_error_destroy(err);
}

static void test_dumped_bytes_are_read(void **state)
{
	uint8_t got[64], want[64];
	synth_core_fill_pattern(PART + 0x10, want, sizeof(want));
	assert_null(hs_memory_read(mem_of(state), PART + 0x10, got, sizeof(got)));
	assert_memory_equal(got, want, sizeof(got));
	// The last dumped byte.
	synth_core_fill_pattern(PART + 0xfff, want, 1);
	assert_null(hs_memory_read(mem_of(state), PART + 0xfff, got, 1));
	assert_int_equal(got[0], want[0]);
}

static void test_read_u64_and_u32(void **state)
{
	uint8_t want[8];
	uint64_t v64, w64;
	uint32_t v32, w32;
	synth_core_fill_pattern(PART + 0x123, want, 8);
	memcpy(&w64, want, 8);
	memcpy(&w32, want, 4);
	assert_null(hs_memory_read_u64(mem_of(state), PART + 0x123, &v64));
	assert_int_equal(v64, w64);
	assert_null(hs_memory_read_u32(mem_of(state), PART + 0x123, &v32));
	assert_int_equal(v32, w32);
	// A word across the two adjacent segments comes from both.
	uint8_t b[8];
	synth_core_fill_pattern(ADJ2 - 3, b, 8);
	memcpy(&w64, b, 8);
	assert_null(hs_memory_read_u64(mem_of(state), ADJ2 - 3, &v64));
	assert_int_equal(v64, w64);
	// A word across the end of the dumped part fails at the first missing byte.
	assert_fault(hs_memory_read_u64(mem_of(state), PART + 0xffc, &v64),
		     HS_ERR_NOT_DUMPED, PART + 0x1000);
	assert_fault(hs_memory_read_u32(mem_of(state), 0x10, &v32), HS_ERR_UNMAPPED, 0x10);
}

static void test_read_straddling_filesz_is_not_dumped(void **state)
{
	uint8_t buf[32];
	assert_fault(hs_memory_read(mem_of(state), PART + 0xff0, buf, sizeof(buf)),
		     HS_ERR_NOT_DUMPED, PART + 0x1000);
	// Inside the part that was not dumped, and at its last byte.
	assert_fault(hs_memory_read(mem_of(state), PART + 0x1800, buf, 8),
		     HS_ERR_NOT_DUMPED, PART + 0x1800);
	assert_fault(hs_memory_read(mem_of(state), PART + 0x1fff, buf, 1),
		     HS_ERR_NOT_DUMPED, PART + 0x1fff);
	// A segment with nothing dumped.
	assert_fault(hs_memory_read(mem_of(state), NONE + 0x10, buf, 8),
		     HS_ERR_NOT_DUMPED, NONE + 0x10);
}

static void test_unmapped_addresses(void **state)
{
	uint8_t buf[16];
	assert_fault(hs_memory_read(mem_of(state), 0, buf, 1), HS_ERR_UNMAPPED, 0);
	assert_fault(hs_memory_read(mem_of(state), 0x500000, buf, 8), HS_ERR_UNMAPPED, 0x500000);
	// Just past the end of a segment (its end is exclusive).
	assert_fault(hs_memory_read(mem_of(state), PART + 0x2000, buf, 8),
		     HS_ERR_UNMAPPED, PART + 0x2000);
	assert_fault(hs_memory_read(mem_of(state), UINT64_MAX - 7, buf, 8),
		     HS_ERR_UNMAPPED, UINT64_MAX - 7);
	// A read that runs off the second adjacent segment into the gap fails
	// where the gap starts, not where the read started.
	assert_fault(hs_memory_read(mem_of(state), ADJ2 + 0xff8, buf, 16),
		     HS_ERR_UNMAPPED, ADJ2 + 0x1000);
}

static void test_read_across_adjacent_segments_is_split(void **state)
{
	uint8_t got[0x40], want[0x40];
	synth_core_fill_pattern(ADJ1 + 0xfe0, want, sizeof(want));
	memset(got, 0, sizeof(got));
	assert_null(hs_memory_read(mem_of(state), ADJ1 + 0xfe0, got, sizeof(got)));
	assert_memory_equal(got, want, sizeof(got));
	// Both segments whole, in one read.
	uint8_t *big = malloc(0x2000), *wbig = malloc(0x2000);
	assert_non_null(big);
	assert_non_null(wbig);
	synth_core_fill_pattern(ADJ1, wbig, 0x2000);
	assert_null(hs_memory_read(mem_of(state), ADJ1, big, 0x2000));
	assert_memory_equal(big, wbig, 0x2000);
	free(big);
	free(wbig);
}

static void test_zero_length_read_succeeds_anywhere(void **state)
{
	uint8_t b;
	assert_null(hs_memory_read(mem_of(state), ADJ1, &b, 0));
	assert_null(hs_memory_read(mem_of(state), 0x500000, &b, 0));
}

static void test_span_is_zero_copy(void **state)
{
	struct fixture *f = *state;
	struct hs_memory *mem = mem_of(state);
	uint64_t text_off = synth_core_load_offset(f->sc, f->text_index);
	const uint8_t *p = hs_memory_span(mem, TEXT, 12);
	// The span is the mapped core itself, not a copy.
	assert_ptr_equal(p, f->t->image + text_off);
	assert_string_equal((const char *)p, "hello, core");
	p = hs_memory_span(mem, TEXT + 0x100, 0xf00);
	assert_ptr_equal(p, f->t->image + text_off + 0x100);
	uint64_t adj1_off = synth_core_load_offset(f->sc, f->adj1_index);
	assert_ptr_equal(hs_memory_span(mem, ADJ1 + 0xff8, 8), f->t->image + adj1_off + 0xff8);
}

static void test_span_that_cannot_be_one_piece_is_null(void **state)
{
	struct hs_memory *mem = mem_of(state);
	assert_null(hs_memory_span(mem, PART + 0xff8, 16));      // into the undumped part
	assert_null(hs_memory_span(mem, PART + 0x1000, 1));      // in the undumped part
	assert_null(hs_memory_span(mem, NONE, 1));               // nothing dumped
	assert_null(hs_memory_span(mem, 0x500000, 1));           // unmapped
	assert_null(hs_memory_span(mem, TEXT + 0x10, SIZE_MAX)); // absurd length
}

/* One mapping the kernel split in two VMAs (madvise, mprotect): two PT_LOADs
 * whose bytes follow one another in the file.  An allocation across the
 * boundary is one zero-copy span, as if the mapping were whole. */
static void test_span_across_adjacent_segments_in_one_file_run(void **state)
{
	struct fixture *f = *state;
	struct hs_memory *mem = mem_of(state);
	uint64_t adj1_off = synth_core_load_offset(f->sc, f->adj1_index);
	const uint8_t *p = hs_memory_span(mem, ADJ1 + 0xff8, 16);
	assert_ptr_equal(p, f->t->image + adj1_off + 0xff8);
	uint8_t want[16];
	synth_core_fill_pattern(ADJ1 + 0xff8, want, sizeof(want));
	assert_memory_equal(p, want, sizeof(want));
	assert_non_null(hs_memory_span(mem, ADJ1, 0x2000));
	const struct hs_segment *seg = hs_memory_segment(mem, ADJ1);
	assert_int_equal(seg->span, 0x2000);
	assert_int_equal(seg->filesz, 0x1000);
	assert_int_equal(hs_memory_segment(mem, ADJ2)->span, 0x1000);
	assert_null(hs_memory_span(mem, ADJ1, 0x2001));          // into the gap after
}

/* Adjacent in memory, not in the file: no span across (the bytes after the
 * first segment's are another's); reads still split. */
static void test_adjacent_segments_apart_in_the_file_are_no_span(void **state)
{
	(void)state;
	char *dir = synth_core_mkdtemp();
	assert_non_null(dir);
	char *path = synth_core_path(dir, "apart.core");
	struct synth_core *sc = synth_core_create();
	struct synth_core_thread th = { .tid = 7 };
	synth_core_add_prstatus(sc, &th);
	synth_core_add_load(sc, 0x10000, 0x1000, 0x1000, PF_R | PF_W, NULL);
	synth_core_add_load(sc, 0x20000, 0x1000, 0x1000, PF_R | PF_W, NULL);   // between them in the file
	size_t second = synth_core_add_load(sc, 0x11000, 0x1000, 0x1000, PF_R | PF_W, NULL);
	synth_core_add_load(sc, 0x30000, 0x2000, 0x1000, PF_R | PF_W, NULL);   // partly dumped
	synth_core_add_load(sc, 0x32000, 0x1000, 0x1000, PF_R | PF_W, NULL);   // follows it in the file
	assert_int_equal(synth_core_write(sc, path), 0);
	struct hs_target *t = NULL;
	assert_null(hs_target_open_core(path, &t));
	struct hs_memory *mem = &t->mem;
	assert_null(hs_memory_span(mem, 0x10ff8, 16));
	assert_int_equal(hs_memory_segment(mem, 0x10000)->span, 0x1000);
	assert_non_null(hs_memory_span(mem, 0x11000, 8));
	assert_ptr_equal(hs_memory_span(mem, 0x11000, 8),
			 t->image + synth_core_load_offset(sc, second));
	uint8_t got[16], want[16];
	synth_core_fill_pattern(0x10ff8, want, 8);
	synth_core_fill_pattern(0x11000, want + 8, 8);
	assert_null(hs_memory_read(mem, 0x10ff8, got, 16));
	assert_memory_equal(got, want, 16);
	// Not wholly dumped: what follows in the file is not the next mapping's.
	assert_int_equal(hs_memory_segment(mem, 0x30000)->span, 0x1000);
	assert_null(hs_memory_span(mem, 0x30ff8, 16));
	hs_target_destroy(t);
	synth_core_destroy(sc);
	synth_core_rmdir(dir);
	free(dir);
	free(path);
}

/* A live process's mapping split in two VMAs (MADV_NOHUGEPAGE on its second
 * half) is read into one buffer: a span across the boundary. */
static void test_live_adjacent_mappings_are_one_span(void **state)
{
	(void)state;
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *map = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(map != MAP_FAILED);
	for (long i = 0; i < 4 * page; i++)
		map[i] = (uint8_t)(i * 7 + 1);
	// Two VMAs for certain: the second half read-only.
	assert_int_equal(mprotect(map + 2 * page, 2 * page, PROT_READ), 0);
	// /proc/self/maps has them as two mappings, so the live target two segments.
	struct hs_target *t = NULL;
	assert_null(hs_target_open_pid(getpid(), &t));
	uint64_t a = (uint64_t)(uintptr_t)map;
	const struct hs_segment *t1 = hs_memory_segment(&t->mem, a), *t2 = hs_memory_segment(&t->mem, a + 2 * page);
	assert_non_null(t1);
	assert_non_null(t2);
	assert_ptr_not_equal(t1, t2);
	assert_int_equal(t1->end, a + 2 * page);
	hs_target_destroy(t);
	// Loaded (hs_memory_load_all) as the live target loads them; just these
	// two: the whole of this process may hold huge reservations (a
	// sanitizer's shadow memory) that nobody should read.
	struct hs_memory mem;
	hs_memory_init(&mem);
	mem.mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	assert_true(mem.mem_fd >= 0);
	mem.pid = getpid();
	struct hs_segment s1 = { .start = a, .end = a + 2 * page, .filesz = 2 * page, .flags = HS_SEG_R | HS_SEG_W };
	struct hs_segment s2 = { .start = a + 2 * page, .end = a + 4 * page, .filesz = 2 * page, .flags = HS_SEG_R };
	assert_null(hs_memory_add(&mem, &s1));
	assert_null(hs_memory_add(&mem, &s2));
	assert_null(hs_memory_finish(&mem));
	assert_null(hs_memory_load_all(&mem));
	const uint8_t *p = hs_memory_span(&mem, a + 2 * page - 8, 16);
	assert_non_null(p);
	assert_memory_equal(p, map + 2 * page - 8, 16);
	assert_int_equal(hs_memory_segment(&mem, a)->span, 4 * page);
	assert_int_equal(hs_memory_segment(&mem, a + 2 * page)->span, 2 * page);
	hs_memory_deinit(&mem);

	// A read before hs_memory_load_all loaded one of them on its own (a Go
	// heap's runtime structures are read before the scan): the run is read
	// again, into one buffer, and what the early read returned stays valid.
	for (int early = 0; early < 3; early++) {
		hs_memory_init(&mem);
		mem.mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
		assert_true(mem.mem_fd >= 0);
		mem.pid = getpid();
		assert_null(hs_memory_add(&mem, &s1));
		assert_null(hs_memory_add(&mem, &s2));
		assert_null(hs_memory_finish(&mem));
		const uint8_t *e1 = early & 1 ? NULL : hs_memory_span(&mem, a + 8, 8);
		const uint8_t *e2 = early >= 1 ? hs_memory_span(&mem, a + 3 * page, 8) : NULL;
		assert_null(hs_memory_span(&mem, a + 2 * page - 8, 16));   // not yet one span
		assert_null(hs_memory_load_all(&mem));
		p = hs_memory_span(&mem, a + 2 * page - 8, 16);
		assert_non_null(p);
		assert_memory_equal(p, map + 2 * page - 8, 16);
		assert_int_equal(hs_memory_segment(&mem, a)->span, 4 * page);
		if (e1)
			assert_memory_equal(e1, map + 8, 8);
		if (e2)
			assert_memory_equal(e2, map + 3 * page, 8);
		// Loaded once more: nothing changes.
		assert_null(hs_memory_load_all(&mem));
		assert_ptr_equal(hs_memory_span(&mem, a + 2 * page - 8, 16), p);
		hs_memory_deinit(&mem);
	}
	munmap(map, 4 * page);
}

static void test_available_counts_to_end_of_dumped_part(void **state)
{
	struct hs_memory *mem = mem_of(state);
	assert_int_equal(hs_memory_available(mem, PART), 0x1000);
	assert_int_equal(hs_memory_available(mem, PART + 0xff0), 0x10);
	assert_int_equal(hs_memory_available(mem, PART + 0x1000), 0);
	assert_int_equal(hs_memory_available(mem, PART + 0x1fff), 0);
	// Per segment: an adjacent segment does not extend it.
	assert_int_equal(hs_memory_available(mem, ADJ1 + 0x800), 0x800);
	assert_int_equal(hs_memory_available(mem, NONE), 0);
	assert_int_equal(hs_memory_available(mem, 0x500000), 0);
}

static void test_segment_lookup_and_flags(void **state)
{
	struct hs_memory *mem = mem_of(state);
	assert_int_equal(mem->nsegs, 6);
	const struct hs_segment *s = hs_memory_segment(mem, TEXT);
	assert_non_null(s);
	assert_int_equal(s->start, TEXT);
	assert_int_equal(s->end, TEXT + 0x1000);
	assert_int_equal(s->filesz, 0x1000);
	assert_int_equal(s->flags, HS_SEG_R | HS_SEG_X);
	assert_ptr_equal(hs_memory_segment(mem, TEXT + 0xfff), s);
	assert_null(hs_memory_segment(mem, TEXT + 0x1000));
	assert_null(hs_memory_segment(mem, TEXT - 1));
	s = hs_memory_segment(mem, PART + 0x1fff);
	assert_non_null(s);
	assert_int_equal(s->start, PART);
	assert_int_equal(s->end, PART + 0x2000);
	assert_int_equal(s->filesz, 0x1000);
	assert_int_equal(s->flags, HS_SEG_R | HS_SEG_W);
	s = hs_memory_segment(mem, NONE);
	assert_non_null(s);
	assert_int_equal(s->filesz, 0);
	// Sorted, non-overlapping.
	for (size_t i = 1; i < mem->nsegs; i++)
		assert_true(mem->segs[i - 1].end <= mem->segs[i].start);
}

static void test_read_string(void **state)
{
	struct hs_memory *mem = mem_of(state);
	char buf[64];
	assert_null(hs_memory_read_string(mem, TEXT, buf, sizeof(buf)));
	assert_string_equal(buf, "hello, core");
	// Cut to max - 1 bytes.
	assert_null(hs_memory_read_string(mem, TEXT, buf, 6));
	assert_string_equal(buf, "hello");
	// A string running into memory that was not dumped: what was read, and why it stopped.
	struct hs_error *err = hs_memory_read_string(mem, XS + 0xffc, buf, sizeof(buf));
	assert_string_equal(buf, "xxxx");
	assert_fault(err, HS_ERR_NOT_DUMPED, XS + 0x1000);
}

/* The segment table on plain buffers. */

static uint8_t buf_a[0x2000], buf_b[0x2000];

static void fill_buffers(void)
{
	memset(buf_a, 'a', sizeof(buf_a));
	memset(buf_b, 'b', sizeof(buf_b));
}

static void add(struct hs_memory *mem, uint64_t start, uint64_t end, uint64_t filesz,
		const uint8_t *data)
{
	struct hs_segment seg = { .start = start, .end = end, .filesz = filesz, .data = data };
	assert_null(hs_memory_add(mem, &seg));
}

static char byte_at(struct hs_memory *mem, uint64_t addr)
{
	char c = 0;
	struct hs_error *err = hs_memory_read(mem, addr, &c, 1);
	if (err) {
		hs_error_destroy(err);
		return '?';
	}
	return c;
}

static void test_overlapping_segments_are_cut(void **state)
{
	(void)state;
	fill_buffers();
	struct hs_memory mem;
	hs_memory_init(&mem);
	// Added out of order: [0x3000, 0x5000) b, [0x2000, 0x4000) a.
	add(&mem, 0x3000, 0x5000, 0x2000, buf_b);
	add(&mem, 0x2000, 0x4000, 0x2000, buf_a);
	assert_null(hs_memory_finish(&mem));
	assert_int_equal(mem.nsegs, 2);
	assert_int_equal(mem.segs[0].start, 0x2000);
	assert_int_equal(mem.segs[0].end, 0x4000);
	assert_int_equal(mem.segs[1].start, 0x4000);
	assert_int_equal(mem.segs[1].end, 0x5000);
	assert_int_equal(mem.segs[1].filesz, 0x1000);
	assert_ptr_equal(mem.segs[1].data, buf_b + 0x1000);
	assert_int_equal(byte_at(&mem, 0x3fff), 'a');
	assert_int_equal(byte_at(&mem, 0x4000), 'b');
	assert_int_equal(byte_at(&mem, 0x4fff), 'b');
	assert_int_equal(byte_at(&mem, 0x5000), '?');
	hs_memory_deinit(&mem);
}

static void test_duplicate_and_contained_segments_are_dropped(void **state)
{
	(void)state;
	fill_buffers();
	struct hs_memory mem;
	hs_memory_init(&mem);
	add(&mem, 0x1000, 0x3000, 0x2000, buf_a);
	add(&mem, 0x1000, 0x3000, 0x2000, buf_a);
	add(&mem, 0x1800, 0x2000, 0x800, buf_b);
	assert_null(hs_memory_finish(&mem));
	assert_int_equal(mem.nsegs, 1);
	assert_int_equal(byte_at(&mem, 0x1900), 'a');
	hs_memory_deinit(&mem);
}

static void test_dumped_segment_wins_at_same_start(void **state)
{
	(void)state;
	fill_buffers();
	for (int order = 0; order < 2; order++) {
		struct hs_memory mem;
		hs_memory_init(&mem);
		if (order)
			add(&mem, 0x1000, 0x2000, 0, NULL);
		add(&mem, 0x1000, 0x2000, 0x1000, buf_a);
		if (!order)
			add(&mem, 0x1000, 0x2000, 0, NULL);
		assert_null(hs_memory_finish(&mem));
		assert_int_equal(mem.nsegs, 1);
		assert_int_equal(byte_at(&mem, 0x1800), 'a');
		hs_memory_deinit(&mem);
	}
}

static void test_empty_segments_are_ignored_and_filesz_clamped(void **state)
{
	(void)state;
	fill_buffers();
	struct hs_memory mem;
	hs_memory_init(&mem);
	add(&mem, 0x1000, 0x1000, 0, NULL);
	add(&mem, 0x3000, 0x2000, 0, NULL);
	add(&mem, 0x4000, 0x4800, 0x2000, buf_a);   // filesz > size
	// Enough segments to make the table grow several times.
	for (uint64_t i = 0; i < 100; i++)
		add(&mem, 0x100000 + i * 0x1000, 0x100000 + i * 0x1000 + 0x800, 0x800, buf_b);
	assert_null(hs_memory_finish(&mem));
	assert_int_equal(mem.nsegs, 101);
	assert_int_equal(mem.segs[0].filesz, 0x800);
	assert_int_equal(hs_memory_available(&mem, 0x4000), 0x800);
	assert_int_equal(byte_at(&mem, 0x1000), '?');
	assert_int_equal(byte_at(&mem, 0x100000 + 99 * 0x1000 + 0x7ff), 'b');
	assert_int_equal(byte_at(&mem, 0x100000 + 99 * 0x1000 + 0x800), '?');
	hs_memory_deinit(&mem);
}

/* NT_FILE-only records fill the gaps between dumped segments: checked
 * against the plain rule, address by address, on random tables (loads and
 * records overlapping each other every which way). */
static void test_unloaded_records_fill_gaps_exactly(void **state)
{
	(void)state;
	srand(11);
	for (int round = 0; round < 200; round++) {
		struct hs_segment loads[8], recs[8];
		size_t nl = rand() % 8, nr = 1 + rand() % 7;
		struct hs_memory mem;
		hs_memory_init(&mem);
		for (size_t i = 0; i < nl; i++) {
			uint64_t a = 0x10000 + (rand() % 64) * 0x1000;
			loads[i] = (struct hs_segment){ .start = a, .end = a + (1 + rand() % 8) * 0x1000,
							.flags = HS_SEG_R | HS_SEG_W };
			assert_null(hs_memory_add(&mem, &loads[i]));
		}
		for (size_t i = 0; i < nr; i++) {
			uint64_t a = 0x10000 + (rand() % 72) * 0x1000;
			recs[i] = (struct hs_segment){ .start = a, .end = a + (1 + rand() % 24) * 0x1000,
						       .flags = HS_SEG_R | HS_SEG_NOT_IN_CORE };
			assert_null(hs_memory_add(&mem, &recs[i]));
		}
		assert_null(hs_memory_finish(&mem));
		for (size_t i = 1; i < mem.nsegs; i++)
			assert_true(mem.segs[i - 1].end <= mem.segs[i].start);
		for (uint64_t a = 0x10000; a < 0x10000 + 100 * 0x1000; a += 0x800) {
			bool in_load = false, in_rec = false;
			for (size_t i = 0; i < nl; i++)
				in_load |= loads[i].start <= a && a < loads[i].end;
			for (size_t i = 0; i < nr; i++)
				in_rec |= recs[i].start <= a && a < recs[i].end;
			const struct hs_segment *seg = hs_memory_segment(&mem, a);
			if (in_load) {
				assert_non_null(seg);
				assert_int_equal(seg->flags & HS_SEG_NOT_IN_CORE, 0);
			} else if (in_rec) {
				assert_non_null(seg);
				assert_int_equal(seg->flags & HS_SEG_NOT_IN_CORE, HS_SEG_NOT_IN_CORE);
			} else {
				assert_null(seg);
			}
		}
		hs_memory_deinit(&mem);
	}
}

/* Fuzz finding (issue 11): 16 NT_FILE records over 60,000 empty PT_LOADs
 * took a minute (the gap search was quadratic).  The table must come out
 * exact: every load where it was, every gap between them a record's. */
static void test_many_records_over_many_empty_loads(void **state)
{
	(void)state;
	enum { NLOADS = 60000, NRECS = 16 };
	const uint64_t base = 0x10000000, step = 0x2000;
	char *dir = synth_core_mkdtemp();
	char *path = synth_core_path(dir, "many.core");
	struct synth_core *sc = synth_core_create();
	synth_core_add_empty_loads(sc, base, step, NLOADS);
	struct synth_core_file files[NRECS];
	char names[NRECS][32];
	for (int i = 0; i < NRECS; i++) {
		snprintf(names[i], sizeof(names[i]), "/lib%d.so", i);
		files[i] = (struct synth_core_file){ base + i * 0x1000, base + NLOADS * step, 0, names[i] };
	}
	synth_core_add_file_note(sc, 4096, files, NRECS);
	assert_int_equal(synth_core_write(sc, path), 0);
	struct hs_target *t = NULL;
	struct hs_error *err = hs_target_open_core(path, &t);
	assert_null(err);
	assert_int_equal(t->mem.nsegs, 2 * NLOADS);
	for (size_t i = 0; i < t->mem.nsegs; i++) {
		const struct hs_segment *seg = &t->mem.segs[i];
		assert_int_equal(seg->start, base + i * 0x1000);
		assert_int_equal(seg->end, seg->start + 0x1000);
		assert_int_equal(seg->filesz, 0);
		assert_int_equal(!!(seg->flags & HS_SEG_NOT_IN_CORE), i % 2);
	}
	hs_target_destroy(t);
	synth_core_destroy(sc);
	synth_core_rmdir(dir);
	free(path);
	free(dir);
}

/* The segment of an address, found by search, against a walk of the table:
 * tables of 1 to 70 segments, adjacent and apart, and every start, end and
 * gap around them. */
static void test_segment_search(void **state)
{
	(void)state;
	uint64_t x = 11;
	for (size_t n = 1; n <= 70; n++) {
		struct hs_memory mem;
		hs_memory_init(&mem);
		uint64_t a = 0x10000;
		for (size_t i = 0; i < n; i++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t len = 0x1000 * (1 + (x >> 40) % 4), gap = (x >> 33) % 3 ? 0x1000 * ((x >> 50) % 3) : 0;
			struct hs_segment seg = { .start = a, .end = a + len, .flags = HS_SEG_R };
			assert_null(hs_memory_add(&mem, &seg));
			a += len + gap;
		}
		assert_null(hs_memory_finish(&mem));
		for (uint64_t v = 0; v < a + 0x2000; v += 0x800) {
			const uint64_t probe[] = { v, v + 1, v - 1 };
			for (size_t q = 0; q < 3; q++) {
				const struct hs_segment *want = NULL;
				for (size_t i = 0; i < mem.nsegs && !want; i++)
					if (mem.segs[i].start <= probe[q] && probe[q] < mem.segs[i].end)
						want = &mem.segs[i];
				assert_ptr_equal(hs_memory_segment(&mem, probe[q]), want);
			}
		}
		hs_memory_deinit(&mem);
	}
}

int main(void)
{
	const struct CMUnitTest core_tests[] = {
		cmocka_unit_test(test_dumped_bytes_are_read),
		cmocka_unit_test(test_read_u64_and_u32),
		cmocka_unit_test(test_read_straddling_filesz_is_not_dumped),
		cmocka_unit_test(test_unmapped_addresses),
		cmocka_unit_test(test_read_across_adjacent_segments_is_split),
		cmocka_unit_test(test_zero_length_read_succeeds_anywhere),
		cmocka_unit_test(test_span_is_zero_copy),
		cmocka_unit_test(test_span_that_cannot_be_one_piece_is_null),
		cmocka_unit_test(test_span_across_adjacent_segments_in_one_file_run),
		cmocka_unit_test(test_adjacent_segments_apart_in_the_file_are_no_span),
		cmocka_unit_test(test_live_adjacent_mappings_are_one_span),
		cmocka_unit_test(test_available_counts_to_end_of_dumped_part),
		cmocka_unit_test(test_segment_lookup_and_flags),
		cmocka_unit_test(test_read_string),
	};
	const struct CMUnitTest table_tests[] = {
		cmocka_unit_test(test_segment_search),
		cmocka_unit_test(test_overlapping_segments_are_cut),
		cmocka_unit_test(test_duplicate_and_contained_segments_are_dropped),
		cmocka_unit_test(test_dumped_segment_wins_at_same_start),
		cmocka_unit_test(test_empty_segments_are_ignored_and_filesz_clamped),
		cmocka_unit_test(test_unloaded_records_fill_gaps_exactly),
		cmocka_unit_test(test_many_records_over_many_empty_loads),
	};
	int failed = cmocka_run_group_tests_name("memory (core)", core_tests, setup, teardown);
	failed += cmocka_run_group_tests_name("memory (table)", table_tests, NULL, NULL);
	return failed ? 1 : 0;
}
