/* test_target.c - opening what is analysed: ELF cores (whole, truncated,
 * damaged, not cores at all), in-memory images, and a live process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <asm/prctl.h>
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include "roots.h"
#include "synth_core.h"
#include "target.h"

static char *tmpdir;

static int group_setup(void **state)
{
	(void)state;
	tmpdir = synth_core_mkdtemp();
	return tmpdir ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	if (tmpdir)
		synth_core_rmdir(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
	return 0;
}

/* Write sc as tmpdir/name; returns the malloc'd path. */
static char *write_core(struct synth_core *sc, const char *name)
{
	char *path = synth_core_path(tmpdir, name);
	assert_int_equal(synth_core_write(sc, path), 0);
	return path;
}

static struct hs_target *open_ok(const char *path)
{
	struct hs_target *t = NULL;
	struct hs_error *err = hs_target_open_core(path, &t);
	if (err)
		fail_msg("opening %s: %s", path, hs_error_message(err));
	assert_non_null(t);
	return t;
}

static void assert_fault(struct hs_error *err, enum hs_error_code code, uint64_t addr)
{
	assert_non_null(err);
	assert_int_equal(hs_error_code(err), code);
	assert_int_equal(err->address, addr);
	hs_error_destroy(err);
}

static void assert_pattern_at(struct hs_target *t, uint64_t addr, size_t len)
{
	uint8_t got[256], want[256];
	assert_true(len <= sizeof(got));
	synth_core_fill_pattern(addr, want, len);
	struct hs_error *err = hs_memory_read(&t->mem, addr, got, len);
	if (err)
		fail_msg("read 0x%llx: %s", (unsigned long long)addr, hs_error_message(err));
	assert_memory_equal(got, want, len);
}

static struct synth_core_thread thread_at(int32_t tid, uint64_t rsp)
{
	struct synth_core_thread th = { .tid = tid };
	for (int r = 0; r < SYNTH_CORE_NREGS; r++)
		th.regs[r] = (uint64_t)tid * 0x10000 + (uint64_t)r;
	th.regs[HS_REG_RSP] = rsp;
	return th;
}

/* A whole core, as a kernel writes it. */

#define EXE 0x555555554000ull
#define LIBC 0x7ffff7dd3000ull
#define STACK1 0x7ffffffde000ull
#define STACK2 0x7ffff7000000ull

static struct synth_core *process_core(void)
{
	struct synth_core *sc = synth_core_create();
	struct synth_core_thread t1 = thread_at(700, STACK1 + 0x1f00);
	struct synth_core_thread t2 = thread_at(703, STACK2 + 0x10);
	struct synth_core_thread t3 = thread_at(701, 0x10);   // rsp in no mapping
	t1.cursig = 6;
	const uint64_t auxv[][2] = { { AT_PAGESZ, 4096 }, { AT_ENTRY, EXE + 0x1060 } };
	const struct synth_core_file files[] = {
		{ EXE, EXE + 0x1000, 0, "/usr/bin/victim" },
		{ LIBC, LIBC + 0x155000, 0x26000, "/usr/lib/x86_64-linux-gnu/libc.so.6" },
	};
	synth_core_add_prstatus(sc, &t1);
	synth_core_add_prpsinfo(sc, 700, "victim", "/usr/bin/victim --leak 10 ");
	synth_core_add_siginfo(sc, 6, -6, 0);
	synth_core_add_auxv(sc, auxv, 2);
	synth_core_add_file_note(sc, 4096, files, 2);
	synth_core_add_prstatus(sc, &t2);
	synth_core_add_prstatus(sc, &t3);
	synth_core_add_load(sc, EXE, 0x1000, 0x1000, PF_R | PF_X, NULL);
	synth_core_add_load(sc, STACK2, 0x1000, 0x1000, PF_R | PF_W, NULL);
	synth_core_add_load(sc, STACK1, 0x21000, 0x21000, PF_R | PF_W, NULL);
	return sc;
}

static void test_core_opens_with_process_threads_and_stacks(void **state)
{
	(void)state;
	struct synth_core *sc = process_core();
	char *path = write_core(sc, "process.core");
	struct hs_target *t = open_ok(path);
	assert_int_equal(t->kind, HS_TARGET_CORE);
	assert_string_equal(t->path, path);
	assert_int_equal(t->pid, 700);
	assert_int_equal(t->file_size, synth_core_full_size(sc));
	assert_int_equal(t->missing_bytes, 0);
	assert_string_equal(t->notes.fname, "victim");
	assert_string_equal(t->notes.psargs, "/usr/bin/victim --leak 10");
	assert_int_equal(t->notes.signo, 6);
	assert_int_equal(hs_notes_auxv(&t->notes, AT_ENTRY), EXE + 0x1060);

	assert_int_equal(t->notes.nthreads, 3);
	const struct hs_thread *th = t->notes.threads;
	assert_int_equal(th[0].tid, 700);
	assert_int_equal(th[0].signo, 6);
	assert_int_equal(th[0].regs[HS_REG_RIP], 700 * 0x10000 + HS_REG_RIP);
	assert_int_equal(th[0].stack_lo, STACK1 + 0x1f00);
	assert_int_equal(th[0].stack_hi, STACK1 + 0x21000);
	assert_int_equal(th[1].tid, 703);
	assert_int_equal(th[1].stack_lo, STACK2 + 0x10);
	assert_int_equal(th[1].stack_hi, STACK2 + 0x1000);
	assert_int_equal(th[2].tid, 701);
	assert_int_equal(th[2].stack_lo, 0);
	assert_int_equal(th[2].stack_hi, 0);

	// Three PT_LOADs and libc, known only from NT_FILE.
	assert_int_equal(t->mem.nsegs, 4);
	const struct hs_segment *s = hs_memory_segment(&t->mem, EXE + 0x10);
	assert_non_null(s);
	assert_int_equal(s->flags, HS_SEG_R | HS_SEG_X);
	assert_int_equal(s->filesz, 0x1000);
	assert_pattern_at(t, EXE + 0x10, 64);
	assert_pattern_at(t, STACK1 + 0x1f00, 256);
	hs_target_destroy(t);
	free(path);
	synth_core_destroy(sc);
}

static void test_mapping_only_in_nt_file_is_not_dumped(void **state)
{
	(void)state;
	struct synth_core *sc = process_core();
	char *path = write_core(sc, "nt_file_only.core");
	struct hs_target *t = open_ok(path);
	const struct hs_segment *s = hs_memory_segment(&t->mem, LIBC + 0x30000);
	assert_non_null(s);
	assert_int_equal(s->start, LIBC);
	assert_int_equal(s->end, LIBC + 0x155000);
	assert_int_equal(s->filesz, 0);
	assert_true(s->flags & HS_SEG_NOT_IN_CORE);
	uint64_t v;
	assert_fault(hs_memory_read_u64(&t->mem, LIBC + 0x30000, &v), HS_ERR_NOT_DUMPED, LIBC + 0x30000);
	// Between the libc record and the stacks: nothing at all.
	assert_fault(hs_memory_read_u64(&t->mem, LIBC + 0x155000, &v), HS_ERR_UNMAPPED, LIBC + 0x155000);
	assert_null(hs_memory_span(&t->mem, LIBC, 8));
	hs_target_destroy(t);
	free(path);
	synth_core_destroy(sc);
}

/* For tests that may fail with things allocated: the teardown frees them. */
struct owned {
	struct synth_core *sc;
	char *path;
	struct hs_target *t;
};

static int owned_setup(void **state)
{
	struct owned *o = calloc(1, sizeof(*o));
	if (!o)
		return -1;
	o->sc = synth_core_create();
	*state = o;
	return 0;
}

static int owned_teardown(void **state)
{
	struct owned *o = *state;
	hs_target_destroy(o->t);
	synth_core_destroy(o->sc);
	free(o->path);
	free(o);
	return 0;
}

// An NT_FILE record wider than a PT_LOAD inside it (a core writer that splits
// a mapping): the dumped bytes must stay readable.
static void test_nt_file_record_covering_a_load_keeps_its_bytes(void **state)
{
	struct owned *o = *state;
	const struct synth_core_file files[] = { { 0x10000, 0x14000, 0, "/lib/x.so" } };
	synth_core_add_file_note(o->sc, 1, files, 1);
	synth_core_add_load(o->sc, 0x11000, 0x1000, 0x1000, PF_R | PF_W, NULL);
	o->path = write_core(o->sc, "covering.core");
	o->t = open_ok(o->path);
	uint8_t b[8];
	assert_fault(hs_memory_read(&o->t->mem, 0x10ff8, b, 8), HS_ERR_NOT_DUMPED, 0x10ff8);
	struct hs_error *err = hs_memory_read(&o->t->mem, 0x11000, b, 8);
	if (err) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", hs_error_message(err));
		hs_error_destroy(err);
		fail_msg("dumped bytes at 0x11000 lost behind the NT_FILE record: %s", msg);
	}
	assert_pattern_at(o->t, 0x11000, 64);
	assert_pattern_at(o->t, 0x11fc0, 64);
	uint64_t v;
	assert_fault(hs_memory_read_u64(&o->t->mem, 0x12000, &v), HS_ERR_NOT_DUMPED, 0x12000);
}

static void test_overlapping_loads(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	uint8_t a[0x2000], b[0x2000];
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	synth_core_add_load(sc, 0x10000, 0x2000, 0x2000, PF_R, a);
	size_t ib = synth_core_add_load(sc, 0x11000, 0x2000, 0x2000, PF_R, b);
	char *path = write_core(sc, "overlap.core");
	struct hs_target *t = open_ok(path);
	assert_int_equal(t->mem.nsegs, 2);
	char c[2];
	assert_null(hs_memory_read(&t->mem, 0x11fff, c, 2));
	assert_int_equal(c[0], 'a');
	assert_int_equal(c[1], 'b');
	// The second segment now starts where the first ends, at its own bytes.
	assert_ptr_equal(hs_memory_span(&t->mem, 0x12000, 0x1000),
			 t->image + synth_core_load_offset(sc, ib) + 0x1000);
	assert_null(hs_memory_span(&t->mem, 0x12000, 0x1001));
	hs_target_destroy(t);
	free(path);
	synth_core_destroy(sc);
}

/* Truncated cores open, say how much is missing, and read what is there. */

static void test_truncated_core_opens_with_missing_bytes(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	struct synth_core_thread th = thread_at(10, 0x20100);
	synth_core_add_prstatus(sc, &th);
	synth_core_add_load(sc, 0x10000, 0x3000, 0x3000, PF_R | PF_W, NULL);
	size_t ib = synth_core_add_load(sc, 0x20000, 0x4000, 0x2000, PF_R | PF_W, NULL);
	synth_core_add_load(sc, 0x30000, 0x1000, 0x1000, PF_R | PF_W, NULL);
	uint64_t cut = synth_core_load_offset(sc, ib) + 0x800;
	synth_core_truncate_at(sc, cut);
	char *path = write_core(sc, "truncated.core");
	struct hs_target *t = open_ok(path);
	assert_int_equal(t->file_size, cut);
	// 0x1800 of the second segment's dump and all 0x1000 of the third.
	assert_int_equal(t->missing_bytes, 0x2800);
	assert_int_equal(t->notes.nthreads, 1);
	assert_int_equal(t->notes.threads[0].stack_hi, 0x24000);
	assert_pattern_at(t, 0x10000, 256);
	assert_pattern_at(t, 0x12f00, 256);
	assert_pattern_at(t, 0x207f8, 8);
	uint8_t b[16];
	assert_fault(hs_memory_read(&t->mem, 0x207f8, b, 16), HS_ERR_NOT_DUMPED, 0x20800);
	assert_fault(hs_memory_read(&t->mem, 0x21000, b, 8), HS_ERR_NOT_DUMPED, 0x21000);
	assert_fault(hs_memory_read(&t->mem, 0x30000, b, 8), HS_ERR_NOT_DUMPED, 0x30000);
	assert_int_equal(hs_memory_available(&t->mem, 0x20000), 0x800);
	assert_null(hs_memory_span(&t->mem, 0x207f8, 16));
	const struct hs_segment *s = hs_memory_segment(&t->mem, 0x30000);
	assert_non_null(s);
	assert_int_equal(s->end, 0x31000);
	assert_int_equal(s->filesz, 0);
	hs_target_destroy(t);
	free(path);
	synth_core_destroy(sc);
}

static void test_core_truncated_at_a_segment_boundary(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	synth_core_add_load(sc, 0x10000, 0x1000, 0x1000, PF_R, NULL);
	size_t ib = synth_core_add_load(sc, 0x20000, 0x3000, 0x3000, PF_R, NULL);
	synth_core_truncate_at(sc, synth_core_load_offset(sc, ib));
	char *path = write_core(sc, "truncated_boundary.core");
	struct hs_target *t = open_ok(path);
	assert_int_equal(t->missing_bytes, 0x3000);
	assert_pattern_at(t, 0x10ff8, 8);
	uint8_t b[8];
	assert_fault(hs_memory_read(&t->mem, 0x20000, b, 8), HS_ERR_NOT_DUMPED, 0x20000);
	hs_target_destroy(t);
	free(path);
	synth_core_destroy(sc);
}

static void test_core_truncated_in_its_notes(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	struct synth_core_thread a = thread_at(20, 0), b = thread_at(21, 0);
	synth_core_add_prstatus(sc, &a);
	synth_core_add_prstatus(sc, &b);
	synth_core_add_load(sc, 0x10000, 0x1000, 0x1000, PF_R, NULL);
	// One NT_PRSTATUS note is 12 + 8 + 336 bytes: cut 10 bytes into the second.
	uint64_t cut = synth_core_note_offset(sc) + 356 + 10;
	synth_core_truncate_at(sc, cut);
	char *path = write_core(sc, "truncated_notes.core");
	struct hs_target *t = open_ok(path);
	assert_int_equal(t->missing_bytes, 356 - 10 + 0x1000);
	assert_int_equal(t->notes.nthreads, 1);
	assert_int_equal(t->notes.threads[0].tid, 20);
	uint8_t x;
	assert_fault(hs_memory_read(&t->mem, 0x10000, &x, 1), HS_ERR_NOT_DUMPED, 0x10000);
	hs_target_destroy(t);
	free(path);
	synth_core_destroy(sc);
}

static void test_corrupt_note_keeps_what_came_before(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	struct synth_core_thread a = thread_at(30, 0x10010);
	synth_core_add_prstatus(sc, &a);
	synth_core_add_prpsinfo(sc, 30, "x", "x");
	synth_core_corrupt_last_note_descsz(sc, 0x7fffffff);
	synth_core_add_load(sc, 0x10000, 0x1000, 0x1000, PF_R, NULL);
	char *path = write_core(sc, "corrupt_note.core");
	struct hs_target *t = open_ok(path);
	assert_int_equal(t->notes.nthreads, 1);
	assert_int_equal(t->notes.threads[0].tid, 30);
	assert_int_equal(t->notes.threads[0].stack_lo, 0x10010);
	assert_int_equal(t->pid, 30);
	assert_pattern_at(t, 0x10000, 16);
	hs_target_destroy(t);
	free(path);
	synth_core_destroy(sc);
}

static void test_load_whose_end_wraps_is_harmless(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	synth_core_add_load(sc, 0xfffffffffffff000ull, 0x2000, 0x10, PF_R, NULL);
	synth_core_add_load(sc, 0x10000, 0x1000, 0x1000, PF_R, NULL);
	char *path = write_core(sc, "wrap.core");
	struct hs_target *t = open_ok(path);
	uint8_t b[32];
	struct hs_error *err = hs_memory_read(&t->mem, 0xfffffffffffffff0ull, b, 32);
	assert_non_null(err);
	hs_error_destroy(err);
	assert_pattern_at(t, 0x10000, 16);
	hs_target_destroy(t);
	free(path);
	synth_core_destroy(sc);
}

/* Bad input: each class fails with HS_ERR_TARGET and names the file. */

static void expect_target_error(const char *path, const char *what)
{
	struct hs_target *t = NULL;
	struct hs_error *err = hs_target_open_core(path, &t);
	if (!err)
		fail_msg("%s opened, but it is %s", path, what);
	assert_null(t);
	if (hs_error_code(err) != HS_ERR_TARGET || !strstr(hs_error_message(err), path) ||
	    !strstr(hs_error_message(err), what))
		fail_msg("%s: code %d, message \"%s\"; want HS_ERR_TARGET naming the file and saying \"%s\"",
			 path, hs_error_code(err), hs_error_message(err), what);
	hs_error_destroy(err);
}

static char *write_file(const char *name, const void *data, size_t len)
{
	char *path = synth_core_path(tmpdir, name);
	assert_int_equal(synth_core_write_bytes(path, data, len), 0);
	return path;
}

static void test_empty_file(void **state)
{
	(void)state;
	char *path = write_file("empty", "", 0);
	expect_target_error(path, "empty");
	free(path);
}

static void test_text_file(void **state)
{
	(void)state;
	const char text[] = "this is a text file, not a core\n";
	char *path = write_file("notes.txt", text, sizeof(text) - 1);
	expect_target_error(path, "not an ELF file");
	free(path);
	// Starts like ELF, but is too short for a header.
	path = write_file("elf_magic_only", "\177ELF\2\1\1", 7);
	expect_target_error(path, "not an ELF file");
	free(path);
}

/* A minimal static x86-64 executable, like /bin/true: exit(0). */
static struct synth_core *true_like_exec(uint16_t type)
{
	static const uint8_t code[] = {
		0xb8, 0x3c, 0x00, 0x00, 0x00,   // mov $60, %eax  (exit)
		0x31, 0xff,                     // xor %edi, %edi
		0x0f, 0x05,                     // syscall
	};
	struct synth_core *sc = synth_core_create();
	synth_core_set_elf(sc, ELFCLASS64, type, EM_X86_64);
	synth_core_set_entry(sc, 0x401000);
	synth_core_add_load(sc, 0x401000, sizeof(code), sizeof(code), PF_R | PF_X, code);
	return sc;
}

static void test_elf_files_that_are_not_cores(void **state)
{
	(void)state;
	const struct { uint16_t type; const char *name, *what; } cases[] = {
		{ ET_EXEC, "true", "an executable" },
		{ ET_DYN, "lib.so", "shared object" },
		{ ET_REL, "x.o", "object file" },
		{ ET_NONE, "none", "an ELF file of type 0" },
		{ 0xfe00, "os", "an ELF file of type 65024" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct synth_core *sc = true_like_exec(cases[i].type);
		char *path = write_core(sc, cases[i].name);
		expect_target_error(path, cases[i].what);
		expect_target_error(path, "not a core file");
		// Issue 11: said "is not a core file, not a core file" once.
		struct hs_target *t = NULL;
		struct hs_error *err = hs_target_open_core(path, &t);
		const char *m = hs_error_message(err);
		const char *first = strstr(m, "not a core file");
		assert_non_null(first);
		assert_null(strstr(first + 1, "not a core file"));
		hs_error_destroy(err);
		free(path);
		synth_core_destroy(sc);
	}
}

static void test_cores_of_other_architectures(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	synth_core_set_elf(sc, ELFCLASS32, ET_CORE, EM_386);
	synth_core_add_note(sc, "CORE", NT_PRPSINFO, "0123456789abcdef", 16);
	synth_core_add_load(sc, 0x8048000, 0x1000, 0x1000, PF_R | PF_X, NULL);
	char *path = write_core(sc, "i386.core");
	expect_target_error(path, "architecture");
	free(path);
	synth_core_destroy(sc);

	sc = synth_core_create();
	synth_core_set_elf(sc, ELFCLASS64, ET_CORE, EM_AARCH64);
	struct synth_core_thread th = thread_at(1, 0);
	synth_core_add_prstatus(sc, &th);
	synth_core_add_load(sc, 0x400000, 0x1000, 0x1000, PF_R | PF_X, NULL);
	path = write_core(sc, "aarch64.core");
	expect_target_error(path, "architecture");
	free(path);
	synth_core_destroy(sc);
}

static void test_core_cut_inside_its_headers(void **state)
{
	(void)state;
	struct synth_core *sc = process_core();
	// In the ELF header.
	synth_core_truncate_at(sc, 40);
	char *path = write_core(sc, "cut_in_ehdr.core");
	expect_target_error(path, "not an ELF file");
	free(path);
	// In the program headers.
	synth_core_truncate_at(sc, sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + 10);
	path = write_core(sc, "cut_in_phdrs.core");
	expect_target_error(path, "program header");
	free(path);
	synth_core_destroy(sc);
}

static void test_paths_that_are_not_files(void **state)
{
	(void)state;
	char *path = synth_core_path(tmpdir, "does-not-exist.core");
	expect_target_error(path, "no such file");
	free(path);
	path = synth_core_path(tmpdir, "a-directory");
	assert_int_equal(mkdir(path, 0755), 0);
	expect_target_error(path, "not a regular file");
	free(path);
}

/* In-memory images. */

static void test_open_buffers_copies_and_sorts(void **state)
{
	(void)state;
	uint8_t hi[16], lo[32];
	memset(hi, 'h', sizeof(hi));
	memset(lo, 'l', sizeof(lo));
	struct hs_segment segs[] = {
		{ .start = 0x9000, .end = 0x9010, .filesz = 16, .data = hi, .flags = HS_SEG_R },
		{ .start = 0x1000, .end = 0x1040, .filesz = 32, .data = lo, .flags = HS_SEG_R | HS_SEG_W },
		{ .start = 0x5000, .end = 0x6000, .filesz = 0x1000, .data = NULL },   // no bytes
	};
	struct hs_target *t = NULL;
	assert_null(hs_target_open_buffers(segs, 3, &t));
	memset(lo, 'X', sizeof(lo));   // the target has its own copy
	assert_int_equal(t->kind, HS_TARGET_BUFFERS);
	assert_int_equal(t->mem.nsegs, 3);
	assert_int_equal(t->mem.segs[0].start, 0x1000);
	assert_int_equal(t->mem.segs[2].start, 0x9000);
	char buf[33] = {0};
	assert_null(hs_memory_read(&t->mem, 0x1000, buf, 32));
	assert_string_equal(buf, "llllllllllllllllllllllllllllllll");
	assert_fault(hs_memory_read(&t->mem, 0x101e, buf, 4), HS_ERR_NOT_DUMPED, 0x1020);
	assert_fault(hs_memory_read(&t->mem, 0x5000, buf, 1), HS_ERR_NOT_DUMPED, 0x5000);
	assert_fault(hs_memory_read(&t->mem, 0x9010, buf, 1), HS_ERR_UNMAPPED, 0x9010);
	assert_int_equal(t->notes.nthreads, 0);
	hs_target_destroy(t);
	hs_target_destroy(NULL);
}

static void test_set_regs_moves_the_stack(void **state)
{
	(void)state;
	struct synth_core *sc = process_core();
	char *path = write_core(sc, "set_regs.core");
	struct hs_target *t = open_ok(path);
	uint64_t regs[HS_NREGS] = {0};
	regs[HS_REG_RSP] = STACK2 + 0x800;
	assert_null(hs_target_set_regs(t, 701, regs, HS_NREGS));
	assert_int_equal(t->notes.threads[2].regs[HS_REG_RSP], STACK2 + 0x800);
	assert_int_equal(t->notes.threads[2].stack_lo, STACK2 + 0x800);
	assert_int_equal(t->notes.threads[2].stack_hi, STACK2 + 0x1000);
	struct hs_error *err = hs_target_set_regs(t, 999, regs, HS_NREGS);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	hs_error_destroy(err);
	hs_target_destroy(t);
	free(path);
	synth_core_destroy(sc);
}

/* A stack the core splits in several segments (madvise, mprotect, or a
 * rewritten program header table) is one root range, and so is other memory
 * split the same way: a variable across a cut lies in one range (locals.c
 * names only a variable inside one range of its thread). */
static void test_split_mapping_is_one_root_range(void **state)
{
	(void)state;
	const uint64_t stack = 0x7ffd00000000, other = 0x7f0000000000;
	struct synth_core *sc = synth_core_create();
	struct synth_core_thread th = thread_at(900, stack + 0x100);
	const uint64_t auxv[][2] = { { AT_PAGESZ, 4096 }, { AT_RANDOM, stack + 0x3f00 } };   // marks [stack]'s top
	synth_core_add_prstatus(sc, &th);
	synth_core_add_auxv(sc, auxv, 2);
	for (uint64_t k = 0; k < 4; k++)
		synth_core_add_load(sc, stack + k * 0x1000, 0x1000, 0x1000, PF_R | PF_W, NULL);
	synth_core_add_load(sc, other, 0x1000, 0x1000, PF_R | PF_W, NULL);
	synth_core_add_load(sc, other + 0x1000, 0x2000, 0x2000, PF_R | PF_W, NULL);
	synth_core_add_load(sc, other + 0x3000, 0x1000, 0x1000, PF_R, NULL);   // read-only: no root
	char *path = write_core(sc, "split_stack.core");
	struct hs_target *t = open_ok(path);
	assert_int_equal(t->notes.threads[0].stack_hi, stack + 0x4000);
	struct hs_roots r;
	const struct hs_roots_input in = { .mem = &t->mem, .notes = &t->notes };
	assert_null(hs_roots_build(&in, &r));
	assert_int_equal(r.n, 2);
	assert_int_equal(r.ranges[0].start, other);
	assert_int_equal(r.ranges[0].end, other + 0x3000);
	assert_int_equal(r.ranges[0].kind, HS_ROOT_MEMORY);
	assert_int_equal(r.ranges[1].start, stack + 0x100);
	assert_int_equal(r.ranges[1].end, stack + 0x4000);
	assert_int_equal(r.ranges[1].kind, HS_ROOT_STACK);
	assert_int_equal(r.ranges[1].tid, 900);
	assert_ptr_equal(hs_roots_find(&r, stack + 0x1ff8), &r.ranges[1]);
	assert_ptr_equal(hs_roots_find(&r, stack + 0x3ff8), &r.ranges[1]);
	assert_null(hs_roots_find(&r, stack + 0xf8));   // below sp: dead
	hs_roots_deinit(&r);
	hs_target_destroy(t);
	free(path);
	synth_core_destroy(sc);
}

/* A live process: a forked child with two threads, stopped with ptrace. */

#define LIVE_PARENT_VALUE 0x1111111111111111ull
#define LIVE_CHILD_VALUE 0x5eed0f1e5eed0f1eull
static volatile uint64_t live_marker = LIVE_PARENT_VALUE;
static char live_text[32] = "set by the parent";

struct live_report {
	int32_t tid;
	uint64_t fs_base;
	uint64_t stack_addr;     /* a local variable of the thread's */
};

struct live_child {
	pid_t pid;
	struct live_report rep[2];
	int seized[2];
};

static uint64_t live_fs_base(void)
{
	unsigned long fs = 0;
	syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
	return fs;
}

static void live_report_self(int fd)
{
	volatile int local = 1;
	struct live_report r = { gettid(), live_fs_base(), (uint64_t)(uintptr_t)&local };
	if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(2);
	// Stay in this frame, so that the local stays on the stack above rsp.
	for (;;)
		pause();
}

static void *live_thread(void *arg)
{
	live_report_self(*(int *)arg);
	return NULL;
}

static void live_child(int fd)
{
	live_marker = LIVE_CHILD_VALUE;
	strcpy(live_text, "set by the child");
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	// The main thread reports before it starts the second one, so the pipe
	// holds the main thread's report first.
	struct live_report r = { gettid(), live_fs_base(), 0 };
	volatile int local = 1;
	r.stack_addr = (uint64_t)(uintptr_t)&local;
	if (write(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(2);
	static int wfd;
	wfd = fd;
	pthread_t thr;
	if (pthread_create(&thr, NULL, live_thread, &wfd) != 0)
		_exit(3);
	for (;;)
		pause();
}

static int live_setup(void **state)
{
	struct live_child *c = calloc(1, sizeof(*c));
	int p[2];
	if (!c || pipe(p) != 0)
		return -1;
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		close(p[0]);
		live_child(p[1]);
		_exit(0);
	}
	close(p[1]);
	*state = c;
	for (int i = 0; i < 2; i++) {
		size_t done = 0;
		while (done < sizeof(c->rep[i])) {
			ssize_t r = read(p[0], (char *)&c->rep[i] + done, sizeof(c->rep[i]) - done);
			if (r <= 0) {
				close(p[0]);
				return -1;
			}
			done += (size_t)r;
		}
	}
	close(p[0]);
	return 0;
}

static int live_teardown(void **state)
{
	struct live_child *c = *state;
	if (!c)
		return 0;
	// Never leave the child stopped: detach every thread, then end it.
	for (int i = 0; i < 2; i++)
		if (c->seized[i])
			ptrace(PTRACE_DETACH, c->rep[i].tid, NULL, NULL);
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	free(c);
	return 0;
}

static int live_find_vvar(pid_t pid, uint64_t *ret)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int found = -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start;
		if (strstr(line, "[vvar]") && sscanf(line, "%llx-", &start) == 1) {
			*ret = start;
			found = 0;
		}
	}
	fclose(f);
	return found;
}

static void test_open_pid_of_stopped_child(void **state)
{
	struct live_child *c = *state;
	// Stop both threads as the CLI does.
	for (int i = 0; i < 2; i++) {
		pid_t tid = c->rep[i].tid;
		if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
			if (errno == EPERM)
				skip();   // ptrace is not allowed here (container policy)
			fail_msg("PTRACE_SEIZE %d: %s", (int)tid, strerror(errno));
		}
		c->seized[i] = 1;
		assert_int_equal(ptrace(PTRACE_INTERRUPT, tid, NULL, NULL), 0);
		int st;
		assert_int_equal(waitpid(tid, &st, __WALL), tid);
		assert_true(WIFSTOPPED(st));
	}
	assert_int_equal(c->rep[0].tid, c->pid);

	struct hs_target *t = NULL;
	struct hs_error *err = hs_target_open_pid(c->pid, &t);
	if (err)
		fail_msg("open pid %d: %s", (int)c->pid, hs_error_message(err));
	assert_int_equal(t->kind, HS_TARGET_PID);
	assert_int_equal(t->pid, c->pid);
	char want_path[32];
	snprintf(want_path, sizeof(want_path), "/proc/%d", (int)c->pid);
	assert_string_equal(t->path, want_path);

	// Threads: the main thread first, then the other; registers as ptrace
	// gives them; the stack from rsp to the end of its mapping.
	assert_int_equal(t->notes.nthreads, 2);
	for (int i = 0; i < 2; i++) {
		const struct hs_thread *th = &t->notes.threads[i];
		assert_int_equal(th->tid, c->rep[i].tid);
		struct user_regs_struct regs;
		assert_int_equal(ptrace(PTRACE_GETREGS, th->tid, NULL, &regs), 0);
		assert_memory_equal(th->regs, &regs, sizeof(th->regs));
		assert_int_equal(th->regs[HS_REG_FS_BASE], c->rep[i].fs_base);
		assert_int_equal(th->stack_lo, th->regs[HS_REG_RSP]);
		const struct hs_segment *s = hs_memory_segment(&t->mem, th->regs[HS_REG_RSP]);
		assert_non_null(s);
		assert_int_equal(th->stack_hi, s->end);
		assert_in_range(c->rep[i].stack_addr, th->stack_lo, th->stack_hi - 1);
	}
	assert_int_not_equal(t->notes.threads[0].regs[HS_REG_FS_BASE],
			     t->notes.threads[1].regs[HS_REG_FS_BASE]);

	// Memory is the child's: after fork the addresses are the same, the values not.
	uint64_t v = 0;
	assert_null(hs_memory_read(&t->mem, (uint64_t)(uintptr_t)&live_marker, &v, 8));
	assert_int_equal(v, LIVE_CHILD_VALUE);
	assert_int_equal(live_marker, LIVE_PARENT_VALUE);
	assert_null(hs_memory_read_u64(&t->mem, (uint64_t)(uintptr_t)&live_marker, &v));
	assert_int_equal(v, LIVE_CHILD_VALUE);
	char text[32];
	assert_null(hs_memory_read_string(&t->mem, (uint64_t)(uintptr_t)live_text, text, sizeof(text)));
	assert_string_equal(text, "set by the child");
	const uint8_t *p = hs_memory_span(&t->mem, (uint64_t)(uintptr_t)&live_marker, 8);
	assert_non_null(p);
	memcpy(&v, p, 8);
	assert_int_equal(v, LIVE_CHILD_VALUE);
	assert_fault(hs_memory_read(&t->mem, 0, &v, 8), HS_ERR_UNMAPPED, 0);
	uint64_t vvar;
	if (live_find_vvar(c->pid, &vvar) == 0)
		assert_fault(hs_memory_read(&t->mem, vvar, &v, 8), HS_ERR_NOT_DUMPED, vvar);

	// Process facts from /proc.
	assert_int_equal(t->notes.pid, c->pid);
	assert_int_equal(hs_notes_auxv(&t->notes, AT_PAGESZ), (uint64_t)sysconf(_SC_PAGESIZE));
	assert_int_equal(hs_notes_auxv(&t->notes, AT_ENTRY), getauxval(AT_ENTRY));
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = 0;
	int found = 0;
	for (size_t i = 0; i < t->notes.nfiles; i++)
		found |= !strcmp(t->notes.files[i].path, exe);
	assert_true(found);
	char comm[17] = {0};
	FILE *f = fopen("/proc/self/comm", "re");
	assert_non_null(f);
	assert_non_null(fgets(comm, sizeof(comm), f));
	fclose(f);
	comm[strcspn(comm, "\n")] = 0;
	assert_string_equal(t->notes.fname, comm);
	assert_true(strncmp(t->notes.psargs, program_invocation_name, strlen(t->notes.psargs)) == 0);
	assert_true(strlen(t->notes.psargs) > 0);
	hs_target_destroy(t);
}


/* Wait (bounded) until pid is a zombie: exited, not reaped. */
static bool wait_zombie(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 2000; i++) {
		char buf[512] = { 0 };
		FILE *f = fopen(path, "re");
		if (f) {
			size_t n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = 0;
			const char *p = strrchr(buf, ')');
			if (p && p[1] == ' ' && p[2] == 'Z')
				return true;
		}
		usleep(5000);
	}
	return false;
}

/* Issue 11: a zombie pid was reported as "Operation not permitted ... run as
 * root" (to root).  It has exited: say so. */
static void test_open_pid_of_zombie(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_true(wait_zombie(pid));
	struct hs_target *t = NULL;
	struct hs_error *err = hs_target_open_pid(pid, &t);
	assert_non_null(err);
	assert_null(t);
	assert_int_equal(hs_error_code(err), HS_ERR_TARGET);
	assert_non_null(strstr(hs_error_message(err), "has exited"));
	assert_null(strstr(hs_error_message(err), "root"));
	hs_error_destroy(err);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* Issue 11: a live process that died while being read reported its memory
 * as "not dumped".  It exited: every read it cannot serve says so. */
static void test_process_that_exits_while_read(void **state)
{
	(void)state;
	live_marker = LIVE_PARENT_VALUE;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	struct hs_target *t = NULL;
	struct hs_error *err = hs_target_open_pid(pid, &t);
	if (err)
		fail_msg("open pid %d: %s", (int)pid, hs_error_message(err));
	kill(pid, SIGKILL);
	assert_true(wait_zombie(pid));
	uint64_t v;
	err = hs_memory_read(&t->mem, (uint64_t)(uintptr_t)&live_marker, &v, 8);
	assert_non_null(err);
	assert_int_equal(hs_error_code(err), HS_ERR_TARGET);
	assert_non_null(strstr(hs_error_message(err), "exited while heapscope was reading it"));
	hs_error_destroy(err);
	err = hs_memory_load_all(&t->mem);
	assert_non_null(err);
	assert_int_equal(hs_error_code(err), HS_ERR_TARGET);
	hs_error_destroy(err);
	hs_target_destroy(t);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void test_open_pid_of_missing_process(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	// pid has exited and been reaped: no such process.
	struct hs_target *t = NULL;
	struct hs_error *err = hs_target_open_pid(pid, &t);
	assert_non_null(err);
	assert_null(t);
	assert_int_equal(hs_error_code(err), HS_ERR_TARGET);
	char num[16];
	snprintf(num, sizeof(num), "%d", (int)pid);
	assert_non_null(strstr(hs_error_message(err), num));
	hs_error_destroy(err);
	const int bad[] = { 0, -1, 0x7fffffff };
	for (size_t i = 0; i < 3; i++) {
		err = hs_target_open_pid(bad[i], &t);
		assert_int_equal(hs_error_code(err), HS_ERR_TARGET);
		assert_null(t);
		hs_error_destroy(err);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_opens_with_process_threads_and_stacks),
		cmocka_unit_test(test_mapping_only_in_nt_file_is_not_dumped),
		cmocka_unit_test_setup_teardown(test_nt_file_record_covering_a_load_keeps_its_bytes,
						owned_setup, owned_teardown),
		cmocka_unit_test(test_overlapping_loads),
		cmocka_unit_test(test_truncated_core_opens_with_missing_bytes),
		cmocka_unit_test(test_core_truncated_at_a_segment_boundary),
		cmocka_unit_test(test_core_truncated_in_its_notes),
		cmocka_unit_test(test_corrupt_note_keeps_what_came_before),
		cmocka_unit_test(test_load_whose_end_wraps_is_harmless),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_text_file),
		cmocka_unit_test(test_elf_files_that_are_not_cores),
		cmocka_unit_test(test_cores_of_other_architectures),
		cmocka_unit_test(test_core_cut_inside_its_headers),
		cmocka_unit_test(test_paths_that_are_not_files),
		cmocka_unit_test(test_open_buffers_copies_and_sorts),
		cmocka_unit_test(test_set_regs_moves_the_stack),
		cmocka_unit_test(test_split_mapping_is_one_root_range),
		cmocka_unit_test_setup_teardown(test_open_pid_of_stopped_child, live_setup, live_teardown),
		cmocka_unit_test(test_open_pid_of_missing_process),
		cmocka_unit_test(test_open_pid_of_zombie),
		cmocka_unit_test(test_process_that_exits_while_read),
	};
	return cmocka_run_group_tests_name("target", tests, group_setup, group_teardown);
}
