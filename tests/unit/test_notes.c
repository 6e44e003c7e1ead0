/* test_notes.c - what a core's PT_NOTE segment says: threads and their
 * registers, mapped files (both NT_FILE page sizes), auxv, signal, command
 * line; and that malformed notes give errors, never crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <elf.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include "notes.h"
#include "synth_core.h"

/* Parse the notes of sc as hs_notes_parse sees them in a core: an exact-size
 * heap copy, so that ASan catches any read past the segment. */
static struct hs_error *parse(struct synth_core *sc, struct hs_notes *notes, size_t align)
{
	size_t len;
	uint8_t *buf = synth_core_notes_image(sc, &len);
	struct hs_error *err = hs_notes_parse(notes, buf, len, align);
	free(buf);
	return err;
}

static struct synth_core_thread thread_with_regs(int32_t tid, int16_t sig)
{
	struct synth_core_thread th = { .tid = tid, .cursig = sig };
	// Every register distinct and tied to the thread: a shifted copy shows.
	for (int r = 0; r < SYNTH_CORE_NREGS; r++)
		th.regs[r] = ((uint64_t)tid << 32) | (0x1000u + (uint64_t)r * 8);
	th.regs[HS_REG_RIP] = 0x555555554000ull + (uint64_t)tid;
	th.regs[HS_REG_RSP] = 0x7ffd00000000ull + (uint64_t)tid * 0x100;
	th.regs[HS_REG_FS_BASE] = 0x7f0000000000ull + (uint64_t)tid * 0x1000;
	return th;
}

static void assert_thread(const struct hs_thread *got, const struct synth_core_thread *want)
{
	assert_int_equal(got->tid, want->tid);
	assert_int_equal(got->signo, want->cursig);
	for (int r = 0; r < HS_NREGS; r++) {
		if (got->regs[r] != want->regs[r])
			fail_msg("thread %d register %s: got 0x%llx, want 0x%llx", want->tid,
				 hs_reg_names[r], (unsigned long long)got->regs[r],
				 (unsigned long long)want->regs[r]);
	}
}

static void test_threads_in_note_order_with_registers(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	struct synth_core_thread th[3] = {
		thread_with_regs(1200, 6), thread_with_regs(1202, 0), thread_with_regs(1201, 0),
	};
	// As the kernel writes them: first thread, process notes, then the others
	// each followed by their FP state ("CORE" NT_FPREGSET, "LINUX" XSTATE).
	uint8_t fp[512] = {0}, xstate[832] = {0};
	synth_core_add_prstatus(sc, &th[0]);
	synth_core_add_prpsinfo(sc, 1200, "worker", "./worker --threads 3");
	synth_core_add_note(sc, "CORE", NT_FPREGSET, fp, sizeof(fp));
	synth_core_add_note(sc, "LINUX", 0x202, xstate, sizeof(xstate));
	for (int i = 1; i < 3; i++) {
		synth_core_add_prstatus(sc, &th[i]);
		synth_core_add_note(sc, "CORE", NT_FPREGSET, fp, sizeof(fp));
		synth_core_add_note(sc, "LINUX", 0x202, xstate, sizeof(xstate));
	}
	struct hs_notes notes;
	hs_notes_init(&notes);
	assert_null(parse(sc, &notes, 4));
	assert_int_equal(notes.nthreads, 3);
	for (int i = 0; i < 3; i++)
		assert_thread(&notes.threads[i], &th[i]);
	assert_int_equal(notes.pid, 1200);
	assert_int_equal(notes.nfiles, 0);
	assert_int_equal(notes.have_siginfo, 0);
	hs_notes_deinit(&notes);
	assert_int_equal(notes.nthreads, 0);
	assert_null(notes.threads);
	synth_core_destroy(sc);
}

static void test_pid_comes_from_first_thread_without_prpsinfo(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	struct synth_core_thread a = thread_with_regs(77, 11), b = thread_with_regs(78, 0);
	synth_core_add_prstatus(sc, &a);
	synth_core_add_prstatus(sc, &b);
	struct hs_notes notes;
	hs_notes_init(&notes);
	assert_null(parse(sc, &notes, 4));
	assert_int_equal(notes.pid, 77);
	assert_int_equal(notes.nthreads, 2);
	assert_int_equal(notes.threads[0].signo, 11);
	hs_notes_deinit(&notes);
	synth_core_destroy(sc);
}

static void test_prpsinfo_gives_command_line(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	// The kernel pads psargs with a trailing space; fname fills all 16 bytes.
	synth_core_add_prpsinfo(sc, 31337, "exactly16chars!!", "/usr/bin/victim -x --size 4096 ");
	struct hs_notes notes;
	hs_notes_init(&notes);
	assert_null(parse(sc, &notes, 4));
	assert_int_equal(notes.pid, 31337);
	assert_string_equal(notes.fname, "exactly16chars!!");
	assert_string_equal(notes.psargs, "/usr/bin/victim -x --size 4096");
	hs_notes_deinit(&notes);
	synth_core_destroy(sc);
}

static void test_siginfo(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	synth_core_add_siginfo(sc, 11, 2, 0xdeadbeef0ull);
	struct hs_notes notes;
	hs_notes_init(&notes);
	assert_null(parse(sc, &notes, 4));
	assert_int_equal(notes.have_siginfo, 1);
	assert_int_equal(notes.signo, 11);
	assert_int_equal(notes.sig_code, 2);
	assert_int_equal(notes.sig_addr, 0xdeadbeef0ull);
	hs_notes_deinit(&notes);
	synth_core_destroy(sc);
}

static void test_auxv(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	const uint64_t auxv[][2] = {
		{ AT_SYSINFO_EHDR, 0x7ffff7fc1000 }, { AT_PAGESZ, 4096 },
		{ AT_PHDR, 0x555555554040 }, { AT_BASE, 0x7ffff7fc3000 },
		{ AT_ENTRY, 0x555555555060 }, { AT_EXECFN, 0x7fffffffefc8 },
	};
	synth_core_add_auxv(sc, auxv, 6);
	struct hs_notes notes;
	hs_notes_init(&notes);
	assert_null(parse(sc, &notes, 4));
	assert_int_equal(notes.nauxv, 6);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(notes.auxv[i].type, auxv[i][0]);
		assert_int_equal(notes.auxv[i].value, auxv[i][1]);
	}
	assert_int_equal(hs_notes_auxv(&notes, AT_ENTRY), 0x555555555060);
	assert_int_equal(hs_notes_auxv(&notes, AT_BASE), 0x7ffff7fc3000);
	assert_int_equal(hs_notes_auxv(&notes, AT_HWCAP), 0);
	hs_notes_deinit(&notes);
	synth_core_destroy(sc);
}

static const struct synth_core_file files[] = {
	{ 0x555555554000, 0x555555555000, 0, "/usr/bin/victim" },
	{ 0x555555555000, 0x555555556000, 0x1000, "/usr/bin/victim" },
	{ 0x7ffff7dd3000, 0x7ffff7f28000, 0x26000, "/usr/lib/x86_64-linux-gnu/libc.so.6" },
	{ 0x7ffff7fc5000, 0x7ffff7fc6000, 0x7fffff000, "/a path with spaces/lib.so" },
};

static void assert_files(const struct hs_notes *notes)
{
	assert_int_equal(notes->nfiles, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(notes->files[i].start, files[i].start);
		assert_int_equal(notes->files[i].end, files[i].end);
		assert_int_equal(notes->files[i].offset, files[i].offset);
		assert_string_equal(notes->files[i].path, files[i].path);
	}
}

static void test_nt_file_page_size_4096_and_1_give_same_offsets(void **state)
{
	(void)state;
	uint64_t page_sizes[] = { 4096, 1 };
	for (int i = 0; i < 2; i++) {
		struct synth_core *sc = synth_core_create();
		synth_core_add_file_note(sc, page_sizes[i], files, 4);
		struct hs_notes notes;
		hs_notes_init(&notes);
		assert_null(parse(sc, &notes, 4));
		assert_files(&notes);
		hs_notes_deinit(&notes);
		synth_core_destroy(sc);
	}
}

static void test_nt_file_claiming_more_entries_than_bytes_fails(void **state)
{
	(void)state;
	// 4 entries in 207 bytes: 9 entries need 16 + 9 * 24 = 232 bytes.  The
	// third would wrap 16 + count * 24 around to 24 without the size limit.
	uint64_t counts[] = { 9, 1000, 0x0aaaaaaaaaaaaaabull, UINT64_MAX };
	for (int i = 0; i < 4; i++) {
		struct synth_core *sc = synth_core_create();
		synth_core_add_file_note(sc, 4096, files, 4);
		synth_core_patch_last_note(sc, 0, &counts[i], 8);
		struct hs_notes notes;
		hs_notes_init(&notes);
		struct hs_error *err = parse(sc, &notes, 4);
		assert_non_null(err);
		assert_int_equal(hs_error_code(err), HS_ERR_TARGET);
		assert_non_null(strstr(hs_error_message(err), "NT_FILE"));
		assert_int_equal(notes.nfiles, 0);
		hs_error_destroy(err);
		hs_notes_deinit(&notes);
		synth_core_destroy(sc);
	}
}

static void test_nt_file_with_fewer_names_than_entries(void **state)
{
	(void)state;
	// Two entries, but the name area holds one name and no more bytes.
	uint8_t d[16 + 48 + 3] = {0};
	uint64_t v[] = { 2, 4096, 0x1000, 0x2000, 1, 0x3000, 0x4000, 2 };
	memcpy(d, v, sizeof(v));
	memcpy(d + 64, "/a", 3);
	struct synth_core *sc = synth_core_create();
	synth_core_add_note(sc, "CORE", SYNTH_CORE_NT_FILE, d, sizeof(d));
	struct hs_notes notes;
	hs_notes_init(&notes);
	assert_null(parse(sc, &notes, 4));
	assert_int_equal(notes.nfiles, 1);
	assert_string_equal(notes.files[0].path, "/a");
	assert_int_equal(notes.files[0].offset, 4096);
	hs_notes_deinit(&notes);
	synth_core_destroy(sc);
}

static void test_note_running_past_segment_fails_and_keeps_earlier_notes(void **state)
{
	(void)state;
	uint32_t claims[] = { 0x10000, 0xfffffff0u, UINT32_MAX };
	for (int i = 0; i < 3; i++) {
		struct synth_core *sc = synth_core_create();
		struct synth_core_thread th = thread_with_regs(500, 0);
		synth_core_add_prstatus(sc, &th);
		synth_core_add_siginfo(sc, 6, -6, 0);
		synth_core_corrupt_last_note_descsz(sc, claims[i]);
		struct hs_notes notes;
		hs_notes_init(&notes);
		struct hs_error *err = parse(sc, &notes, 4);
		assert_non_null(err);
		assert_int_equal(hs_error_code(err), HS_ERR_TARGET);
		hs_error_destroy(err);
		assert_int_equal(notes.nthreads, 1);
		assert_int_equal(notes.threads[0].tid, 500);
		assert_int_equal(notes.have_siginfo, 0);
		hs_notes_deinit(&notes);
		synth_core_destroy(sc);
	}
}

static void test_huge_namesz_fails(void **state)
{
	(void)state;
	uint8_t buf[64] = {0};
	uint32_t hdr[3] = { 0xfffffffdu, 4, NT_PRSTATUS };
	memcpy(buf, hdr, sizeof(hdr));
	struct hs_notes notes;
	hs_notes_init(&notes);
	struct hs_error *err = hs_notes_parse(&notes, buf, sizeof(buf), 4);
	assert_non_null(err);
	assert_int_equal(hs_error_code(err), HS_ERR_TARGET);
	hs_error_destroy(err);
	hs_notes_deinit(&notes);
}

static void test_short_prstatus_fails(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	uint8_t small[100] = {0};
	synth_core_add_note(sc, "CORE", NT_PRSTATUS, small, sizeof(small));
	struct hs_notes notes;
	hs_notes_init(&notes);
	struct hs_error *err = parse(sc, &notes, 4);
	assert_non_null(err);
	assert_int_equal(hs_error_code(err), HS_ERR_TARGET);
	assert_int_equal(notes.nthreads, 0);
	hs_error_destroy(err);
	hs_notes_deinit(&notes);
	synth_core_destroy(sc);
}

static void test_unknown_and_foreign_notes_are_skipped(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	struct synth_core_thread th = thread_with_regs(9, 0);
	uint8_t junk[37];
	memset(junk, 0xa5, sizeof(junk));
	synth_core_add_note(sc, "GNU", NT_PRSTATUS, junk, sizeof(junk));     // not "CORE"
	synth_core_add_note(sc, "CORE", 0x4242, junk, sizeof(junk));         // unknown type
	synth_core_add_note(sc, "COREX", NT_PRSTATUS, junk, 5);              // not "CORE" either
	synth_core_add_note(sc, "LINUX", NT_PRSTATUS, junk, 0);              // empty desc
	synth_core_add_prstatus(sc, &th);
	struct hs_notes notes;
	hs_notes_init(&notes);
	assert_null(parse(sc, &notes, 4));
	assert_int_equal(notes.nthreads, 1);
	assert_thread(&notes.threads[0], &th);
	hs_notes_deinit(&notes);
	synth_core_destroy(sc);
}

static void test_empty_segment_has_no_notes(void **state)
{
	(void)state;
	struct hs_notes notes;
	hs_notes_init(&notes);
	uint8_t b[11] = {0};
	assert_null(hs_notes_parse(&notes, b, 0, 4));
	assert_null(hs_notes_parse(&notes, b, sizeof(b), 4));   // shorter than a header
	assert_int_equal(notes.nthreads, 0);
	assert_int_equal(notes.nfiles, 0);
	hs_notes_deinit(&notes);
}

/* For tests that may fail with things allocated: the teardown frees them. */
struct owned {
	struct synth_core *sc;
	struct hs_notes notes;
};

static int owned_setup(void **state)
{
	struct owned *o = calloc(1, sizeof(*o));
	if (!o)
		return -1;
	o->sc = synth_core_create();
	hs_notes_init(&o->notes);
	*state = o;
	return 0;
}

static int owned_teardown(void **state)
{
	struct owned *o = *state;
	hs_notes_deinit(&o->notes);
	synth_core_destroy(o->sc);
	free(o);
	return 0;
}

// gABI 8-byte aligned notes, laid out as libelf's ELF_T_NHDR8 (gelf_getnote)
// reads them: the desc starts at the next multiple of 8 after the name, counted
// from the note's start (24 for "CORE", 16 for "GNU").
static void test_notes_aligned_to_8(void **state)
{
	struct owned *o = *state;
	struct synth_core *sc = o->sc;
	synth_core_set_note_align(sc, 8);
	struct synth_core_thread a = thread_with_regs(31, 0), b = thread_with_regs(32, 0);
	synth_core_add_prstatus(sc, &a);
	synth_core_add_file_note(sc, 1, files, 4);
	synth_core_add_prstatus(sc, &b);

	// The layout is libelf's: gelf_getnote finds the three descs where we put them.
	size_t len;
	uint8_t *buf = synth_core_notes_image(sc, &len);
	elf_version(EV_CURRENT);
	Elf_Data d = { .d_buf = buf, .d_type = ELF_T_NHDR8, .d_size = len, .d_version = EV_CURRENT };
	GElf_Nhdr nh;
	size_t off = 0, name_off, desc_off, n = 0, first_desc = 0;
	uint32_t types[4] = {0};
	int32_t tid = 0;
	while (off < len && n < 4 && (off = gelf_getnote(&d, off, &nh, &name_off, &desc_off)) > 0) {
		if (n == 0) {
			first_desc = desc_off;
			memcpy(&tid, buf + desc_off + offsetof(struct elf_prstatus, pr_pid), 4);
		}
		types[n++] = nh.n_type;
	}
	free(buf);
	assert_int_equal(n, 3);
	assert_int_equal(types[0], NT_PRSTATUS);
	assert_int_equal(types[1], SYNTH_CORE_NT_FILE);
	assert_int_equal(types[2], NT_PRSTATUS);
	assert_int_equal(first_desc, 24);
	assert_int_equal(tid, 31);

	struct hs_error *err = parse(sc, &o->notes, 8);
	if (err) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", hs_error_message(err));
		hs_error_destroy(err);
		fail_msg("8-aligned notes: %s", msg);
	}
	assert_int_equal(o->notes.nthreads, 2);
	assert_thread(&o->notes.threads[0], &a);
	assert_thread(&o->notes.threads[1], &b);
	assert_files(&o->notes);
}

// Every prefix of a valid note segment, each in an exact-size buffer: errors
// are fine, crashes and reads past the end are not (run under ASan).
static void test_every_truncation_of_notes_is_safe(void **state)
{
	(void)state;
	struct synth_core *sc = synth_core_create();
	struct synth_core_thread th = thread_with_regs(1, 0);
	const uint64_t auxv[][2] = { { AT_PAGESZ, 4096 } };
	synth_core_add_prstatus(sc, &th);
	synth_core_add_prpsinfo(sc, 1, "a", "a b");
	synth_core_add_siginfo(sc, 6, 0, 0);
	synth_core_add_auxv(sc, auxv, 1);
	synth_core_add_file_note(sc, 4096, files, 4);
	size_t len;
	uint8_t *full = synth_core_notes_image(sc, &len);
	size_t complete = 0;
	for (size_t cut = 0; cut <= len; cut++) {
		uint8_t *buf = malloc(cut ? cut : 1);
		assert_non_null(buf);
		memcpy(buf, full, cut);
		struct hs_notes notes;
		hs_notes_init(&notes);
		struct hs_error *err = hs_notes_parse(&notes, buf, cut, 4);
		if (!err && notes.nfiles == 4)
			complete++;
		hs_error_destroy(err);
		hs_notes_deinit(&notes);
		free(buf);
	}
	// Only the whole segment, and the segment without the 1 byte that pads
	// the last note (NT_FILE, 207 bytes of desc), have every file.
	assert_int_equal(len % 4, 0);
	assert_int_equal(complete, 2);
	free(full);
	synth_core_destroy(sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_in_note_order_with_registers),
		cmocka_unit_test(test_pid_comes_from_first_thread_without_prpsinfo),
		cmocka_unit_test(test_prpsinfo_gives_command_line),
		cmocka_unit_test(test_siginfo),
		cmocka_unit_test(test_auxv),
		cmocka_unit_test(test_nt_file_page_size_4096_and_1_give_same_offsets),
		cmocka_unit_test(test_nt_file_claiming_more_entries_than_bytes_fails),
		cmocka_unit_test(test_nt_file_with_fewer_names_than_entries),
		cmocka_unit_test(test_note_running_past_segment_fails_and_keeps_earlier_notes),
		cmocka_unit_test(test_huge_namesz_fails),
		cmocka_unit_test(test_short_prstatus_fails),
		cmocka_unit_test(test_unknown_and_foreign_notes_are_skipped),
		cmocka_unit_test(test_empty_segment_has_no_notes),
		cmocka_unit_test_setup_teardown(test_notes_aligned_to_8, owned_setup, owned_teardown),
		cmocka_unit_test(test_every_truncation_of_notes_is_safe),
	};
	return cmocka_run_group_tests_name("notes", tests, NULL, NULL);
}
