/* notes.c - see notes.h.  Every field read is bounds-checked: a core's notes
 * are hostile input like the rest of it. */
#include <elf.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include "notes.h"

const char *const hs_reg_names[HS_NREGS] = {
	"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
	"rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
	"gs_base", "ds", "es", "fs", "gs",
};

#define NT_FILE_TYPE 0x46494c45
#define NT_SIGINFO_TYPE 0x53494749
/* No more entries than this in one NT_FILE note (a process has < 1 M mappings). */
#define NT_FILE_MAX 4000000

void hs_notes_init(struct hs_notes *notes)
{
	memset(notes, 0, sizeof(*notes));
}

void hs_notes_deinit(struct hs_notes *notes)
{
	for (size_t i = 0; i < notes->nfiles; i++)
		free(notes->files[i].path);
	free(notes->files);
	free(notes->threads);
	free(notes->auxv);
	hs_notes_init(notes);
}

static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static struct hs_error *parse_prstatus(struct hs_notes *notes, const uint8_t *d, size_t n)
{
	if (n < offsetof(struct elf_prstatus, pr_reg) + HS_NREGS * 8)
		return hs_error_create(HS_ERR_TARGET, "NT_PRSTATUS note is %zu bytes, too short", n);
	struct hs_thread *th = realloc(notes->threads, (notes->nthreads + 1) * sizeof(*th));
	if (!th)
		return &hs_error_nomem;
	notes->threads = th;
	th += notes->nthreads++;
	memset(th, 0, sizeof(*th));
	th->tid = (int32_t)get_u32(d + offsetof(struct elf_prstatus, pr_pid));
	int16_t cursig;
	memcpy(&cursig, d + offsetof(struct elf_prstatus, pr_cursig), 2);
	th->signo = cursig;
	memcpy(th->regs, d + offsetof(struct elf_prstatus, pr_reg), HS_NREGS * 8);
	if (!notes->pid)
		notes->pid = th->tid;
	return NULL;
}

static void parse_prpsinfo(struct hs_notes *notes, const uint8_t *d, size_t n)
{
	if (n < sizeof(struct elf_prpsinfo))
		return;
	notes->pid = (int)get_u32(d + offsetof(struct elf_prpsinfo, pr_pid));
	memcpy(notes->fname, d + offsetof(struct elf_prpsinfo, pr_fname), 16);
	notes->fname[16] = 0;
	memcpy(notes->psargs, d + offsetof(struct elf_prpsinfo, pr_psargs), 80);
	notes->psargs[80] = 0;
	// The kernel keeps trailing spaces; drop them.
	for (size_t i = strlen(notes->psargs); i > 0 && notes->psargs[i - 1] == ' '; i--)
		notes->psargs[i - 1] = 0;
}

// gdb writes one NT_SIGINFO per thread; the first is the thread that stopped.
static void parse_siginfo(struct hs_notes *notes, const uint8_t *d, size_t n)
{
	if (n < 24 || notes->have_siginfo)
		return;
	notes->signo = (int)get_u32(d);
	notes->sig_code = (int)get_u32(d + 8);
	notes->sig_addr = get_u64(d + 16);
	notes->have_siginfo = 1;
}

struct hs_error *hs_notes_parse_auxv_raw(struct hs_notes *notes, const uint8_t *d, size_t n)
{
	size_t count = n / 16;
	struct hs_auxv *a = calloc(count ? count : 1, sizeof(*a));
	if (!a)
		return &hs_error_nomem;
	size_t k = 0;
	for (; k < count; k++) {
		a[k].type = get_u64(d + 16 * k);
		a[k].value = get_u64(d + 16 * k + 8);
		if (a[k].type == AT_NULL)
			break;
	}
	free(notes->auxv);
	notes->auxv = a;
	notes->nauxv = k;
	return NULL;
}

// NT_FILE: count, page_size, {start, end, pgoff}[count], then count paths.
// pgoff is in units of page_size: 4096 in kernel cores, 1 in gdb's.
static struct hs_error *parse_file(struct hs_notes *notes, const uint8_t *d, size_t n)
{
	if (n < 16)
		return hs_error_create(HS_ERR_TARGET, "NT_FILE note is %zu bytes, too short", n);
	uint64_t count = get_u64(d), page_size = get_u64(d + 8);
	if (count > NT_FILE_MAX || 16 + count * 24 > n)
		return hs_error_create(HS_ERR_TARGET, "NT_FILE note claims %llu files, more than its %zu bytes hold",
				       (unsigned long long)count, n);
	struct hs_mapped_file *files = calloc(count ? count : 1, sizeof(*files));
	if (!files)
		return &hs_error_nomem;
	const char *name = (const char *)d + 16 + count * 24, *end = (const char *)d + n;
	size_t k = 0;
	for (; k < count && name < end; k++) {
		const uint8_t *e = d + 16 + k * 24;
		size_t len = strnlen(name, end - name);
		files[k].start = get_u64(e);
		files[k].end = get_u64(e + 8);
		files[k].offset = get_u64(e + 16) * page_size;
		files[k].path = strndup(name, len);
		if (!files[k].path) {
			for (size_t j = 0; j < k; j++)
				free(files[j].path);
			free(files);
			return &hs_error_nomem;
		}
		name += len + 1;
	}
	for (size_t i = 0; i < notes->nfiles; i++)
		free(notes->files[i].path);
	free(notes->files);
	notes->files = files;
	notes->nfiles = k;
	return NULL;
}

struct hs_error *hs_notes_parse(struct hs_notes *notes, const uint8_t *buf, size_t len,
				size_t align)
{
	size_t a = align == 8 ? 8 : 4;
	size_t off = 0;
	while (off + 12 <= len) {
		uint32_t namesz = get_u32(buf + off), descsz = get_u32(buf + off + 4);
		uint32_t type = get_u32(buf + off + 8);
		// Name and descriptor are aligned from the start of the note (gABI;
		// libelf's ELF_T_NHDR8 for 8-byte aligned note segments).
		size_t name_off = off + 12;
		size_t desc_off = off + ((12 + (size_t)namesz + a - 1) & ~(a - 1));
		if (namesz > len || desc_off > len || descsz > len - desc_off)
			return hs_error_create(HS_ERR_TARGET, "a note at offset %zu runs past the end of its segment", off);
		const char *name = (const char *)buf + name_off;
		const uint8_t *desc = buf + desc_off;
		struct hs_error *err = NULL;
		if (namesz == 5 && !memcmp(name, "CORE", 5)) {
			switch (type) {
			case NT_PRSTATUS: err = parse_prstatus(notes, desc, descsz); break;
			case NT_PRPSINFO: parse_prpsinfo(notes, desc, descsz); break;
			case NT_AUXV: err = hs_notes_parse_auxv_raw(notes, desc, descsz); break;
			case NT_FILE_TYPE: err = parse_file(notes, desc, descsz); break;
			case NT_SIGINFO_TYPE: parse_siginfo(notes, desc, descsz); break;
			}
		}
		if (err)
			return err;
		off = desc_off + ((descsz + a - 1) & ~(a - 1));
	}
	return NULL;
}

uint64_t hs_notes_auxv(const struct hs_notes *notes, uint64_t type)
{
	for (size_t i = 0; i < notes->nauxv; i++)
		if (notes->auxv[i].type == type)
			return notes->auxv[i].value;
	return 0;
}
