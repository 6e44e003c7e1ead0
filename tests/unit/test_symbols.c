/* test_symbols.c - modules, symbols and DWARF of a real process: this one.
 *
 * The test reads its own process through libdwfl (/proc/self/maps needs no
 * ptrace), so every expected value is known in-process: libc's malloc, the build-id
 * of the libc file that is mapped, offsetof() of structs defined here.  The
 * libc DWARF facts are glibc 2.36's (Debian 12 libc6-dbg); those tests skip
 * when the debug file is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <gnu/libc-version.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbols.h"
#include "target.h"

/* A struct with every kind of member the DWARF helpers handle. */
struct test_inner {
	short s;
	unsigned char flags;
};

struct test_outer {
	long a;
	struct test_inner inner;
	union {
		int u;
		char uc;
	};
	unsigned int bf_lo : 3;
	unsigned int bf_hi : 6;
	unsigned int bf_next : 7;
};

typedef const struct test_outer test_outer_t;

struct test_outer hs_test_global;
test_outer_t *hs_test_global_ptr = &hs_test_global;
/* 64 KiB of bss: its end lies in anonymous memory past the file's mapping,
 * which is where libdwfl ends a live process's module. */
char hs_test_bss[64 * 1024];
extern char _end[];   /* the linker's: the end of the bss */

/* Symbols as hand-written assembly makes them, in a data section of their
 * own (hs_lbl_* are labels: global, no size; hs_loc_* local, sized):
 *   A: hs_lbl_a (global) at a local's start: libdwfl then never looks at
 *      the locals, and names A by the label, not by hs_loc_a;
 *   B: hs_lbl_b (global), then hs_loc_b (8 bytes) 8 bytes above it, then 16
 *      bytes of neither: the local's end is above the label, so libdwfl
 *      names none of those 16 bytes;
 *   C: hs_lbl_c (global), 16 bytes named by it. */
__asm__(".pushsection .data.hs_symbols_test, \"aw\"\n"
	".balign 64\n"
	".globl hs_lbl_a\n"
	"hs_lbl_a:\n"
	"hs_loc_a: .quad 0, 0\n"
	".size hs_loc_a, 16\n"
	".globl hs_lbl_b\n"
	"hs_lbl_b: .quad 0\n"
	"hs_loc_b: .quad 0\n"
	".size hs_loc_b, 8\n"
	".quad 0, 0\n"
	".globl hs_lbl_c\n"
	"hs_lbl_c: .quad 0, 0\n"
	".popsection\n");
extern char hs_lbl_a[], hs_lbl_b[], hs_lbl_c[];

struct fixture {
	struct hs_target target;   /* a live target, filled by hand: only kind and pid matter */
	struct hs_diags diags;
	struct hs_symbols *symbols;
};

static void close_self(struct fixture *f)
{
	hs_symbols_destroy(f->symbols);
	f->symbols = NULL;
	hs_diags_deinit(&f->diags);
	hs_diags_init(&f->diags);
}

/* (Re)open the symbols of this process; the teardown closes the last one even
 * when an assertion failed (a leaked Dwfl keeps files mapped here, and libdwfl
 * would then see them as modules of this process). */
static struct hs_symbols *open_self(struct fixture *f, const struct hs_symbols_options *o)
{
	close_self(f);
	f->target.kind = HS_TARGET_PID;
	f->target.pid = getpid();
	f->target.fd = -1;
	struct hs_error *err = hs_symbols_create(&f->target, o, &f->diags, &f->symbols);
	if (err)
		fail_msg("hs_symbols_create: %s", hs_error_message(err));
	return f->symbols;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	hs_diags_init(&f->diags);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	close_self(f);
	hs_diags_deinit(&f->diags);
	free(f);
	return 0;
}

/* libc's own malloc: &malloc is the sanitizer's under `make asan`. */
static uintptr_t libc_malloc(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	assert_non_null(libc);
	void *fn = dlsym(libc, "malloc");
	dlclose(libc);
	assert_non_null(fn);
	return (uintptr_t)fn;
}

static struct hs_module *libc_module(struct hs_symbols *s)
{
	struct hs_module *m = hs_symbols_module_at(s, (uintptr_t)&gnu_get_libc_version);
	assert_non_null(m);
	assert_ptr_equal(m, hs_symbols_module_named(s, "libc.so"));
	return m;
}

/* What readelf -n says: the NT_GNU_BUILD_ID note, read here with plain libelf. */
static size_t file_build_id(const char *path, uint8_t *id, size_t cap)
{
	elf_version(EV_CURRENT);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	assert_non_null(elf);
	size_t len = 0;
	Elf_Scn *scn = NULL;
	while (!len && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		size_t off = 0, name_off, desc_off;
		GElf_Nhdr nh;
		while (d && off < d->d_size &&
		       (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    memcmp((char *)d->d_buf + name_off, "GNU", 4) == 0 && nh.n_descsz <= cap) {
				memcpy(id, (char *)d->d_buf + desc_off, nh.n_descsz);
				len = nh.n_descsz;
				break;
			}
		}
	}
	elf_end(elf);
	close(fd);
	return len;
}

static bool libc_debuginfo_installed(struct hs_module *libc)
{
	char path[PATH_MAX];
	int o = snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%02x/", libc->build_id[0]);
	for (size_t i = 1; i < libc->build_id_len; i++)
		o += snprintf(path + o, sizeof(path) - o, "%02x", libc->build_id[i]);
	snprintf(path + o, sizeof(path) - o, ".debug");
	return access(path, R_OK) == 0;
}

static void test_modules_and_build_ids(void **state)
{
	struct fixture *f = *state;
	struct hs_symbols *s = open_self(f, NULL);
	assert_true(s->nmodules >= 3);   // this test, libc, ld.so (+ libdw, libelf, vDSO)
	for (size_t i = 1; i < s->nmodules; i++)
		assert_true(s->modules[i - 1].start <= s->modules[i].start);

	struct hs_module *libc = libc_module(s);
	assert_true(libc->elf_found);
	assert_non_null(libc->path);
	Dl_info info;
	assert_true(dladdr((void *)&gnu_get_libc_version, &info) != 0);
	uint8_t id[64];
	size_t len = file_build_id(info.dli_fname, id, sizeof(id));
	assert_true(len >= 16);
	assert_int_equal(libc->build_id_len, len);
	assert_memory_equal(libc->build_id, id, len);
	assert_false(libc->build_id_mismatch);
	assert_false(libc->is_main);

	// The executable: AT_ENTRY lies in it.
	struct hs_module *main = hs_symbols_main_module(s);
	assert_non_null(main);
	assert_true(main->is_main);
	assert_ptr_equal(main, hs_symbols_module_at(s, (uintptr_t)&test_modules_and_build_ids));
	assert_null(hs_symbols_module_at(s, (uintptr_t)&f));   // the stack is no module
	assert_int_equal(f->diags.n, 0);
}

static void test_lookup_by_name(void **state)
{
	struct fixture *f = *state;
	struct hs_symbols *s = open_self(f, NULL);
	struct hs_symbol sym;

	// The executable only references it: the definition in libc wins.
	struct hs_error *err = hs_symbols_lookup(s, NULL, "gnu_get_libc_version", &sym);
	assert_null(err);
	assert_int_equal(sym.address, (uintptr_t)&gnu_get_libc_version);
	assert_false(sym.is_object);

	assert_null(hs_symbols_lookup(s, libc_module(s), "malloc", &sym));
	assert_int_equal(sym.address, libc_malloc());
	assert_false(sym.is_object);
	assert_true(sym.size > 0);

	// A data symbol of the executable itself.
	assert_null(hs_symbols_lookup(s, NULL, "hs_test_global", &sym));
	assert_int_equal(sym.address, (uintptr_t)&hs_test_global);
	assert_true(sym.is_object);
	assert_int_equal(sym.size, sizeof(hs_test_global));

	err = hs_symbols_lookup(s, NULL, "no_such_symbol_anywhere", &sym);
	assert_non_null(err);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	assert_non_null(strstr(hs_error_message(err), "no_such_symbol_anywhere"));
	hs_error_destroy(err);

	err = hs_symbols_lookup(s, libc_module(s), "no_such_symbol", &sym);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	assert_non_null(strstr(hs_error_message(err), "libc.so"));
	hs_error_destroy(err);
}

static void test_address_to_symbol(void **state)
{
	struct fixture *f = *state;
	struct hs_symbols *s = open_self(f, NULL);
	char buf[128];

	// "malloc+0x3", or an alias at the same address (__libc_malloc).
	uintptr_t fn = libc_malloc();
	assert_true(hs_symbols_describe(s, fn + 3, buf, sizeof(buf)));
	char *plus = strrchr(buf, '+');
	assert_non_null(plus);
	assert_string_equal(plus, "+0x3");
	*plus = '\0';
	struct hs_symbol sym;
	assert_null(hs_symbols_lookup(s, libc_module(s), buf, &sym));
	assert_int_equal(sym.address, fn);

	uint64_t off = 0;
	assert_true(hs_symbols_addr_symbol(s, fn + 3, &sym, &off));
	assert_int_equal(off, 3);
	assert_int_equal(sym.address, fn);

	assert_true(hs_symbols_describe(s, (uintptr_t)&hs_test_global, buf, sizeof(buf)));
	assert_string_equal(buf, "hs_test_global");
	assert_true(hs_symbols_describe(s, (uintptr_t)&hs_test_global.inner, buf, sizeof(buf)));
	assert_string_equal(buf, "hs_test_global+0x8");

	// The bss is the executable's, also past its file mapping (the last byte
	// of it lies there, whatever the layout).
	struct hs_module *main = hs_symbols_main_module(s);
	assert_non_null(main);
	assert_ptr_equal(hs_symbols_module_at(s, (uintptr_t)&hs_test_bss[sizeof(hs_test_bss) - 1]), main);
	assert_ptr_equal(hs_symbols_module_at(s, (uintptr_t)_end - 1), main);
	assert_true(hs_symbols_describe(s, (uintptr_t)&hs_test_bss[sizeof(hs_test_bss) - 1], buf, sizeof(buf)));
	assert_string_equal(buf, "hs_test_bss+0xffff");

	// No module holds a stack address.
	assert_false(hs_symbols_describe(s, (uintptr_t)buf, buf, sizeof(buf)));
	assert_string_equal(buf, "");
}

/* hs_symbols_maybe_vtable against libdwfl's own answer: wherever
 * hs_symbols_addr_symbol names a vtable, the filter says "maybe"; outside
 * every vtable it says no.  libstdc++ is loaded here (libdw needs it). */
static void test_maybe_vtable(void **state)
{
	struct fixture *f = *state;
	struct hs_symbols *s = open_self(f, NULL);
	struct hs_module *cxx = hs_symbols_module_named(s, "libstdc++.so");
	assert_non_null(cxx);
	struct hs_symbol vt;
	assert_null(hs_symbols_lookup(s, cxx, "_ZTVSt9exception", &vt));
	assert_true(vt.size >= 24);
	assert_true(hs_symbols_maybe_vtable(s, vt.address + 16));
	assert_true(hs_symbols_maybe_vtable(s, vt.address + vt.size - 1));
	assert_false(hs_symbols_maybe_vtable(s, libc_malloc()));
	assert_false(hs_symbols_maybe_vtable(s, (uintptr_t)&hs_test_global));
	assert_false(hs_symbols_maybe_vtable(s, 0x10));
	// Every word of 256 KiB around it: where libdwfl names a vtable, maybe;
	// some words are in none.
	size_t named = 0, outside = 0;
	for (uint64_t a = vt.address - 128 * 1024; a < vt.address + 128 * 1024; a += 8) {
		struct hs_symbol sym;
		uint64_t off;
		bool in_vt = hs_symbols_addr_symbol(s, a, &sym, &off) && !strncmp(sym.name, "_ZTV", 4) &&
			     (!sym.size || off < sym.size);
		bool maybe = hs_symbols_maybe_vtable(s, a);
		if (in_vt && !maybe)
			fail_msg("0x%" PRIx64 " is in %s+0x%" PRIx64 " but not a vtable to the filter", a, sym.name, off);
		named += in_vt;
		outside += !maybe;
	}
	assert_true(named > 16);
	assert_true(outside > 16);
}

/* hs_symbols_addr_symbol(a) against dwfl_module_addrinfo(m, a) (a in m):
 * a failure when they differ; true when libdwfl names a, *sizeless counting
 * the names without a size. */
static bool same_as_libdwfl(struct hs_symbols *s, struct hs_module *m, uint64_t a, size_t *sizeless)
{
	GElf_Off off = 0;
	GElf_Sym sym;
	const char *want = dwfl_module_addrinfo(m->dwfl_module, a, &off, &sym, NULL, NULL, NULL);
	struct hs_symbol got;
	uint64_t goff = 0;
	bool have = hs_symbols_addr_symbol(s, a, &got, &goff);
	if (!want || !want[0]) {
		if (have)
			fail_msg("%s 0x%" PRIx64 ": libdwfl names none, we %s", m->name, a, got.name);
		return false;
	}
	if (!have || strcmp(got.name, want) || goff != off || got.size != sym.st_size)
		fail_msg("%s 0x%" PRIx64 ": libdwfl %s+0x%" PRIx64 " (%" PRIu64 " bytes), we %s+0x%" PRIx64, m->name, a,
			 want, (uint64_t)off, (uint64_t)sym.st_size, have ? got.name : "-", goff);
	*sizeless += !sym.st_size;
	return true;
}

// Near a symbol without a size (k: which of its neighbours), or an allocated
// section's edge, of module m; false when none was found.
static bool near_sizeless_or_section(struct hs_module *m, int n, int k, uint64_t *seed, uint64_t *a)
{
	static const int64_t step[] = { 0, 1, 7, 64, -1, 4096 };
	if (k % 2 == 0) {
		for (int tries = 0; tries < 64 && n > 1; tries++) {
			*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
			GElf_Sym sym;
			GElf_Addr addr = 0;
			const char *name = dwfl_module_getsym_info(m->dwfl_module, 1 + (int)((*seed >> 33) % (uint64_t)(n - 1)),
								   &sym, &addr, NULL, NULL, NULL);
			if (name && name[0] && !sym.st_size && sym.st_shndx != SHN_UNDEF) {
				*a = addr + (uint64_t)step[(k / 2) % 6];
				return true;
			}
		}
		return false;
	}
	Dwarf_Addr bias;
	Elf *elf = dwfl_module_getelf(m->dwfl_module, &bias);
	size_t nsec = 0;
	if (!elf || elf_getshdrnum(elf, &nsec) != 0 || nsec < 2)
		return false;
	*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
	GElf_Shdr mem, *sh = gelf_getshdr(elf_getscn(elf, 1 + (*seed >> 33) % (nsec - 1)), &mem);
	if (!sh || !(sh->sh_flags & SHF_ALLOC))
		return false;
	static const int64_t edge[] = { -1, 0, 1 };
	*a = bias + sh->sh_addr + ((k / 2) % 2 ? sh->sh_size : 0) + (uint64_t)edge[(k / 4) % 3];
	return true;
}

/* hs_symbols_addr_symbol answers as dwfl_module_addrinfo does, at every
 * symbol's edges, near symbols without a size (assembly labels, _init:
 * libdwfl names an address by one only in the address's section, when no
 * sized symbol holds it and no symbol below it reaches past it), at
 * sections' edges, and at addresses all over each module of this process. */
static void test_addr_symbol_is_libdwfl_s(void **state)
{
	struct fixture *f = *state;
	struct hs_symbols *s = open_self(f, NULL);
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	size_t asked = 0, named = 0, sizeless = 0;
	for (size_t i = 0; i < s->nmodules; i++) {
		struct hs_module *m = &s->modules[i];
		if (!m->elf_found || m->end <= m->start)
			continue;
		int n = dwfl_module_getsymtab(m->dwfl_module);
		for (int k = 0; k < 4800; k++) {
			uint64_t a;
			if (k >= 2400) {
				if (!near_sizeless_or_section(m, n, k, &seed, &a))
					continue;
			} else if (k < 1200 && n > 1) {
				// A symbol's start, last byte or end.
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				GElf_Sym sym;
				GElf_Addr addr = 0;
				if (!dwfl_module_getsym_info(m->dwfl_module, 1 + (int)((seed >> 33) % (uint64_t)(n - 1)), &sym,
							     &addr, NULL, NULL, NULL))
					continue;
				a = addr + (k % 3 == 0 ? 0 : k % 3 == 1 ? (sym.st_size ? sym.st_size - 1 : 1) : sym.st_size);
			} else {
				seed = seed * 6364136223846793005ull + 1442695040888963407ull;
				a = m->start + (seed >> 20) % (m->end - m->start);
			}
			if (hs_symbols_module_at(s, a) != m)
				continue;
			asked++;
			named += same_as_libdwfl(s, m, a, &sizeless);
		}
	}
	assert_true(asked > 10000);
	assert_true(named > asked / 4);
	assert_true(sizeless > 100);
}

/* Which section an address is in, as libdwfl finds it, at every allocated
 * section's edges in every module of this process: sections starting at one
 * address (.tbss beside .tdata or .init_array, in libc and libstdc++) are
 * ordered as libdwfl orders them, by end, then by index. */
static void test_section_of_is_libdwfl_s(void **state)
{
	struct fixture *f = *state;
	struct hs_symbols *s = open_self(f, NULL);
	size_t asked = 0, shared = 0;
	for (size_t i = 0; i < s->nmodules; i++) {
		struct hs_module *m = &s->modules[i];
		Dwarf_Addr bias;
		Elf *elf = m->elf_found && dwfl_module_getsymtab(m->dwfl_module) > 0 ?
			   dwfl_module_getelf(m->dwfl_module, &bias) : NULL;
		Elf_Scn *scn = NULL;
		uint64_t last_start = 0;
		while (elf && (scn = elf_nextscn(elf, scn)) != NULL) {
			GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
			if (!sh || !(sh->sh_flags & SHF_ALLOC))
				continue;
			shared += sh->sh_addr == last_start;
			last_start = sh->sh_addr;
			for (int e = 0; e < 2; e++)
				for (int64_t d = -2; d <= 2; d++) {
					uint64_t a = bias + sh->sh_addr + (e ? sh->sh_size : 0) + (uint64_t)d;
					Dwarf_Addr q = a, b;
					Elf_Scn *want = dwfl_module_address_section(m->dwfl_module, &q, &b);
					size_t got = hs_symbols_section_of(m, a);
					if (got != (want ? elf_ndxscn(want) : SHN_UNDEF))
						fail_msg("%s 0x%" PRIx64 ": libdwfl section %zu, we %zu", m->name, a,
							 want ? elf_ndxscn(want) : (size_t)0, got);
					asked++;
				}
		}
	}
	assert_true(asked > 1000);
	assert_true(shared > 0);
}

/* The hand-written symbols above: what libdwfl says, and so do we. */
static void test_addr_symbol_labels(void **state)
{
	struct fixture *f = *state;
	struct hs_symbols *s = open_self(f, NULL);
	const struct { const char *at; uint64_t off; const char *want; } cases[] = {
		{ hs_lbl_a, 0, "hs_lbl_a" }, { hs_lbl_a, 8, "hs_loc_a" },
		{ hs_lbl_b, 0, "hs_lbl_b" }, { hs_lbl_b, 8, "hs_loc_b" }, { hs_lbl_b, 16, NULL },
		{ hs_lbl_b, 24, NULL }, { hs_lbl_c, 0, "hs_lbl_c" }, { hs_lbl_c, 8, "hs_lbl_c" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t a = (uint64_t)(uintptr_t)cases[i].at + cases[i].off;
		struct hs_module *m = hs_symbols_module_at(s, a);
		assert_non_null(m);
		size_t sizeless = 0;
		struct hs_symbol got;
		bool named = same_as_libdwfl(s, m, a, &sizeless);
		assert_int_equal(named, cases[i].want != NULL);
		assert_int_equal(hs_symbols_addr_symbol(s, a, &got, NULL), named);
		if (named)
			assert_string_equal(got.name, cases[i].want);
	}
}

/* The same over whole sections, every 8 bytes (and each section's last
 * bytes and the next one's first), of the modules with few symbols: there
 * an address is often in no sized symbol, and the nearest symbol without a
 * size below it may be in another section (_DYNAMIC, __init_array_end,
 * __bss_start, _end) or end where another symbol starts. */
static void test_addr_symbol_is_libdwfl_s_everywhere(void **state)
{
	struct fixture *f = *state;
	struct hs_symbols *s = open_self(f, NULL);
	size_t asked = 0, sizeless = 0;
	for (size_t i = 0; i < s->nmodules; i++) {
		struct hs_module *m = &s->modules[i];
		int n = m->elf_found ? dwfl_module_getsymtab(m->dwfl_module) : -1;
		Dwarf_Addr bias;
		Elf *elf = n > 0 ? dwfl_module_getelf(m->dwfl_module, &bias) : NULL;
		Elf_Scn *scn = NULL;
		while (elf && (scn = elf_nextscn(elf, scn)) != NULL) {
			GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
			if (!sh || !(sh->sh_flags & SHF_ALLOC))
				continue;
			// (Of a big section, its first and last 2 KiB, or 16 bytes in
			// a module of many symbols; byte by byte at its edges, where
			// sections starting at one address (.tbss beside .init_array)
			// decide which one an address is in.)
			uint64_t lo = bias + sh->sh_addr, hi = lo + sh->sh_size, edge = n < 8000 ? 2048 : 16;
			for (uint64_t a = lo - 8; a <= hi + 8; a += a < lo + 8 || a + 8 >= hi ? 1 : 8) {
				if (a >= lo + edge && a + edge < hi)
					a = hi - edge;
				if (hs_symbols_module_at(s, a) != m)
					continue;
				asked++;
				same_as_libdwfl(s, m, a, &sizeless);
			}
		}
	}
	assert_true(asked > 10000);
	assert_true(sizeless > 100);
}

static void test_dwarf_of_this_program(void **state)
{
	struct fixture *f = *state;
	struct hs_symbols *s = open_self(f, NULL);
	struct hs_module *main = hs_symbols_main_module(s);
	assert_non_null(main);
	assert_true(main->debug_found);

	uint64_t v, byte;
	uint32_t bit;
	assert_null(hs_dwarf_struct_size(main, "test_outer", &v));
	assert_int_equal(v, sizeof(struct test_outer));
	assert_null(hs_dwarf_struct_size(main, "struct test_outer", &v));
	assert_int_equal(v, sizeof(struct test_outer));
	// through a const-qualified typedef
	assert_null(hs_dwarf_struct_size(main, "test_outer_t", &v));
	assert_int_equal(v, sizeof(struct test_outer));

	assert_null(hs_dwarf_member_offset(main, "test_outer", "inner.flags", &byte, &bit));
	assert_int_equal(byte, offsetof(struct test_outer, inner.flags));
	assert_int_equal(bit, 0);
	// a member of an anonymous union
	assert_null(hs_dwarf_member_offset(main, "test_outer", "uc", &byte, &bit));
	assert_int_equal(byte, offsetof(struct test_outer, uc));
	// bitfields: 3 bits, then 6 (bit 3 of byte 16), then 7 (bit 9 = byte 17, bit 1)
	assert_null(hs_dwarf_member_offset(main, "test_outer", "bf_lo", &byte, &bit));
	assert_int_equal(byte * 8 + bit, 16 * 8);
	assert_null(hs_dwarf_member_offset(main, "test_outer", "bf_hi", &byte, &bit));
	assert_int_equal(byte, 16);
	assert_int_equal(bit, 3);
	assert_null(hs_dwarf_member_offset(main, "test_outer_t", "bf_next", &byte, &bit));
	assert_int_equal(byte, 17);
	assert_int_equal(bit, 1);

	struct hs_error *err = hs_dwarf_member_offset(main, "test_outer", "inner.nope", &byte, &bit);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	assert_non_null(strstr(hs_error_message(err), "nope"));
	hs_error_destroy(err);
	err = hs_dwarf_member_offset(main, "test_outer", "a.b", &byte, &bit);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	hs_error_destroy(err);
	err = hs_dwarf_struct_size(main, "no_such_struct", &v);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	assert_non_null(strstr(hs_error_message(err), "no_such_struct"));
	hs_error_destroy(err);

	assert_null(hs_dwarf_variable(main, "hs_test_global", &v));
	assert_int_equal(v, (uintptr_t)&hs_test_global);
	assert_null(hs_dwarf_variable(main, "hs_test_global_ptr", &v));
	assert_int_equal(v, (uintptr_t)&hs_test_global_ptr);
	err = hs_dwarf_variable(main, "no_such_variable", &v);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	hs_error_destroy(err);
}

static void test_dwarf_of_glibc(void **state)
{
	struct fixture *f = *state;
	struct hs_symbols *s = open_self(f, NULL);
	struct hs_module *libc = libc_module(s);
	if (!libc_debuginfo_installed(libc))
		skip();
	assert_true(libc->debug_found);
	assert_non_null(libc->debug_path);

	uint64_t v, byte;
	uint32_t bit;
	assert_null(hs_dwarf_struct_size(libc, "malloc_state", &v));
	assert_int_equal(v, 2200);
	assert_null(hs_dwarf_member_offset(libc, "malloc_state", "top", &byte, &bit));
	assert_int_equal(byte, 96);
	assert_null(hs_dwarf_member_offset(libc, "malloc_state", "next", &byte, &bit));
	assert_int_equal(byte, 2160);
	assert_null(hs_dwarf_member_offset(libc, "malloc_state", "system_mem", &byte, &bit));
	assert_int_equal(byte, 2184);
	assert_null(hs_dwarf_struct_size(libc, "heap_info", &v));   // a typedef
	assert_int_equal(v, 48);
	assert_null(hs_dwarf_member_offset(libc, "malloc_chunk", "mchunk_size", &byte, &bit));
	assert_int_equal(byte, 8);

	// main_arena is a local symbol: in the debug file's .symtab, and in DWARF.
	struct hs_symbol sym;
	assert_null(hs_symbols_lookup(s, libc, "main_arena", &sym));
	assert_true(sym.is_object);
	assert_int_equal(sym.size, 2200);
	assert_null(hs_dwarf_variable(libc, "main_arena", &v));
	assert_int_equal(v, sym.address);
	assert_true(v >= libc->start && v < libc->end);
}

static void test_no_debuginfo(void **state)
{
	struct fixture *f = *state;
	struct hs_symbols_options o = { .no_debuginfo = true };
	struct hs_symbols *s = open_self(f, &o);
	struct hs_module *libc = libc_module(s);
	assert_true(libc->elf_found);
	assert_false(libc->debug_found);
	assert_null(libc->debug_path);

	uint64_t v;
	struct hs_error *err = hs_dwarf_struct_size(libc, "malloc_state", &v);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	assert_non_null(strstr(hs_error_message(err), "libc.so"));
	hs_error_destroy(err);
	err = hs_dwarf_variable(libc, "main_arena", &v);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	hs_error_destroy(err);

	// .dynsym of the main file still answers.
	struct hs_symbol sym;
	assert_null(hs_symbols_lookup(s, libc, "malloc", &sym));
	assert_int_equal(sym.address, libc_malloc());
	err = hs_symbols_lookup(s, libc, "main_arena", &sym);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	hs_error_destroy(err);

	// DWARF inside a main file is not separate debug info.
	assert_null(hs_dwarf_struct_size(hs_symbols_main_module(s), "test_outer", &v));
}

static void test_debuginfo_path(void **state)
{
	struct fixture *f = *state;
	const char *dirs[] = { "/opt/dbg", "/srv/debug", NULL };
	struct hs_symbols_options o = { .debug_dirs = dirs };
	struct hs_symbols *s = open_self(f, &o);
	assert_string_equal(s->debuginfo_path, "/opt/dbg:/srv/debug::.debug:/usr/lib/debug");

	s = open_self(f, NULL);
	assert_string_equal(s->debuginfo_path, ":.debug:/usr/lib/debug");
}

static void test_exe_mismatch(void **state)
{
	struct fixture *f = *state;
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';

	struct hs_symbols_options o = { .exe = self };
	struct hs_symbols *s = open_self(f, &o);
	assert_false(hs_symbols_exe_mismatch(s));
	assert_false(hs_symbols_main_module(s)->build_id_mismatch);
	assert_int_equal(f->diags.n, 0);

	// Another program given as the executable.
	const char *other = access("/usr/bin/true", R_OK) == 0 ? "/usr/bin/true" : "/bin/true";
	o.exe = other;
	s = open_self(f, &o);
	assert_true(hs_symbols_exe_mismatch(s));
	struct hs_module *main = hs_symbols_main_module(s);
	assert_true(main->build_id_mismatch);
	assert_string_equal(main->mismatch_path, other);
	assert_int_equal(f->diags.n, 1);
	assert_int_equal(f->diags.items[0].level, HS_DIAG_WARNING);
	assert_string_equal(f->diags.items[0].stage, "symbols");
	assert_non_null(strstr(f->diags.items[0].message, other));
	assert_non_null(strstr(f->diags.items[0].message, "differs from the process's"));
	assert_non_null(strstr(f->diags.items[0].message, "its symbols are not used"));
}

static void test_buffers_target_has_no_modules(void **state)
{
	(void)state;
	struct hs_target t;
	memset(&t, 0, sizeof(t));
	t.kind = HS_TARGET_BUFFERS;
	t.fd = -1;
	struct hs_symbols *s = NULL;
	assert_null(hs_symbols_create(&t, NULL, NULL, &s));
	assert_non_null(s);
	assert_int_equal(s->nmodules, 0);
	assert_null(hs_symbols_main_module(s));
	assert_null(hs_symbols_module_at(s, 0x1000));
	assert_null(hs_symbols_module_named(s, "libc"));
	struct hs_symbol sym;
	struct hs_error *err = hs_symbols_lookup(s, NULL, "main_arena", &sym);
	assert_int_equal(hs_error_code(err), HS_ERR_NOT_FOUND);
	hs_error_destroy(err);
	char buf[32] = "x";
	assert_false(hs_symbols_describe(s, 0x1000, buf, sizeof(buf)));
	assert_string_equal(buf, "");
	assert_false(hs_symbols_exe_mismatch(s));
	hs_symbols_destroy(s);
	hs_symbols_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_modules_and_build_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_by_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_to_symbol, setup, teardown),
		cmocka_unit_test_setup_teardown(test_maybe_vtable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_symbol_is_libdwfl_s, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_symbol_is_libdwfl_s_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_symbol_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_section_of_is_libdwfl_s, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dwarf_of_this_program, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dwarf_of_glibc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_debuginfo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debuginfo_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exe_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffers_target_has_no_modules, setup, teardown),
	};
	return cmocka_run_group_tests_name("symbols", tests, NULL, NULL);
}
