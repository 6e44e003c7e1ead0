/* synth_core.c - see synth_core.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <unistd.h>
#include "synth_core.h"
#include "memory.h"
#include "synth_glibc.h"

_Static_assert(sizeof(elf_gregset_t) == SYNTH_CORE_NREGS * 8, "x86-64 elf_gregset_t");

struct synth_load {
	uint64_t vaddr, memsz, filesz;
	uint32_t pflags;
	uint8_t *data;              /* filesz bytes; NULL for a hole */
	uint64_t fixed_offset;      /* UINT64_MAX: laid out by the helper */
	uint64_t shift;             /* laid out at a page boundary + shift */
};

struct synth_note {
	char *name;
	uint32_t type;
	uint32_t claimed_descsz;    /* what the header says */
	uint8_t *desc;
	size_t descsz;              /* what is written */
};

struct synth_core {
	int elf_class;
	uint16_t type, machine;
	uint64_t entry;
	size_t note_align;
	struct synth_load *loads;
	size_t nloads, caploads;
	struct synth_note *notes;
	size_t nnotes;
	uint64_t truncate_at;       /* UINT64_MAX: not truncated */
};

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		abort();
	return p;
}

static void *xrealloc(void *p, size_t n, size_t size)
{
	p = realloc(p, (n ? n : 1) * size);
	if (!p)
		abort();
	return p;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

struct synth_core *synth_core_create(void)
{
	struct synth_core *c = xcalloc(1, sizeof(*c));
	c->elf_class = ELFCLASS64;
	c->type = ET_CORE;
	c->machine = EM_X86_64;
	c->note_align = 4;
	c->truncate_at = UINT64_MAX;
	return c;
}

void synth_core_destroy(struct synth_core *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nloads; i++)
		free(c->loads[i].data);
	for (size_t i = 0; i < c->nnotes; i++) {
		free(c->notes[i].name);
		free(c->notes[i].desc);
	}
	free(c->loads);
	free(c->notes);
	free(c);
}

void synth_core_set_elf(struct synth_core *c, int elf_class, uint16_t type, uint16_t machine)
{
	c->elf_class = elf_class;
	c->type = type;
	c->machine = machine;
}

void synth_core_set_entry(struct synth_core *c, uint64_t entry)
{
	c->entry = entry;
}

void synth_core_set_note_align(struct synth_core *c, size_t align)
{
	c->note_align = align == 8 ? 8 : 4;
}

uint8_t synth_core_pattern(uint64_t vaddr)
{
	// A multiplicative hash: neighbouring addresses and the same offset in
	// different segments get different bytes, so misplaced reads show.
	return (uint8_t)((vaddr * 0x9E3779B97F4A7C15ull) >> 56);
}

void synth_core_fill_pattern(uint64_t vaddr, void *buf, size_t len)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		p[i] = synth_core_pattern(vaddr + i);
}

size_t synth_core_add_load(struct synth_core *c, uint64_t vaddr, uint64_t memsz,
			   uint64_t filesz, uint32_t pflags, const void *data)
{
	if (c->nloads == c->caploads) {
		// Doubling: tests add tens of thousands of loads.
		c->caploads = c->caploads ? 2 * c->caploads : 16;
		c->loads = xrealloc(c->loads, c->caploads, sizeof(*c->loads));
	}
	struct synth_load *l = &c->loads[c->nloads];
	l->vaddr = vaddr;
	l->memsz = memsz;
	l->filesz = filesz;
	l->pflags = pflags;
	l->fixed_offset = UINT64_MAX;
	l->shift = 0;
	l->data = xcalloc(filesz, 1);
	if (data)
		memcpy(l->data, data, filesz);
	else
		synth_core_fill_pattern(vaddr, l->data, filesz);
	return c->nloads++;
}

size_t synth_core_add_load_at(struct synth_core *c, uint64_t vaddr, uint64_t memsz,
			      uint64_t filesz, uint32_t pflags, uint64_t off)
{
	size_t i = synth_core_add_load(c, vaddr, memsz, 0, pflags, NULL);
	c->loads[i].filesz = filesz;
	c->loads[i].fixed_offset = off;
	return i;
}

void synth_core_shift_load(struct synth_core *c, size_t index, uint64_t shift)
{
	if (index >= c->nloads || shift >= SYNTH_CORE_LOAD_ALIGN)
		abort();
	c->loads[index].shift = shift;
}

size_t synth_core_add_zero_load(struct synth_core *c, uint64_t vaddr, uint64_t memsz,
				uint64_t filesz, uint32_t pflags)
{
	size_t i = synth_core_add_load(c, vaddr, memsz, 0, pflags, NULL);
	free(c->loads[i].data);
	c->loads[i].data = NULL;
	c->loads[i].filesz = filesz;
	return i;
}

void synth_core_add_empty_loads(struct synth_core *c, uint64_t vaddr, uint64_t step, size_t n)
{
	for (size_t i = 0; i < n; i++)
		synth_core_add_load(c, vaddr + i * step, 0x1000, 0, PF_R | PF_W, NULL);
}

void synth_core_add_glibc(struct synth_core *c, const struct synth_glibc *g)
{
	for (size_t i = 0; i < g->nsegs; i++) {
		uint32_t f = g->segs[i].flags;
		uint32_t pf = ((f & HS_SEG_R) ? PF_R : 0) | ((f & HS_SEG_W) ? PF_W : 0) |
			      ((f & HS_SEG_X) ? PF_X : 0);
		synth_core_add_load(c, g->segs[i].start, g->segs[i].size, g->segs[i].size, pf,
				    g->segs[i].buf);
	}
	for (size_t i = 0; i < g->nthreads; i++) {
		struct synth_core_thread th = { .tid = g->threads[i].tid };
		memcpy(th.regs, g->threads[i].regs, sizeof(th.regs));
		synth_core_add_prstatus(c, &th);
	}
	if (g->nthreads)
		synth_core_add_prpsinfo(c, g->threads[0].tid, "synth", "synth --glibc");
}

void synth_core_add_note(struct synth_core *c, const char *name, uint32_t type,
			 const void *desc, size_t descsz)
{
	c->notes = xrealloc(c->notes, c->nnotes + 1, sizeof(*c->notes));
	struct synth_note *n = &c->notes[c->nnotes++];
	n->name = strdup(name);
	if (!n->name)
		abort();
	n->type = type;
	n->descsz = descsz;
	n->claimed_descsz = (uint32_t)descsz;
	n->desc = xcalloc(descsz, 1);
	if (desc)
		memcpy(n->desc, desc, descsz);
}

void synth_core_add_prstatus(struct synth_core *c, const struct synth_core_thread *th)
{
	struct elf_prstatus st;
	memset(&st, 0, sizeof(st));
	st.pr_pid = th->tid;
	st.pr_cursig = th->cursig;
	st.pr_info.si_signo = th->cursig;
	memcpy(&st.pr_reg, th->regs, sizeof(st.pr_reg));
	synth_core_add_note(c, "CORE", NT_PRSTATUS, &st, sizeof(st));
}

void synth_core_add_prpsinfo(struct synth_core *c, int32_t pid, const char *fname,
			     const char *psargs)
{
	struct elf_prpsinfo ps;
	memset(&ps, 0, sizeof(ps));
	ps.pr_pid = pid;
	// As the kernel does: fixed-size fields, not necessarily NUL-terminated.
	size_t n = strlen(fname);
	memcpy(ps.pr_fname, fname, n < sizeof(ps.pr_fname) ? n : sizeof(ps.pr_fname));
	n = strlen(psargs);
	memcpy(ps.pr_psargs, psargs, n < sizeof(ps.pr_psargs) ? n : sizeof(ps.pr_psargs));
	synth_core_add_note(c, "CORE", NT_PRPSINFO, &ps, sizeof(ps));
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

void synth_core_add_siginfo(struct synth_core *c, int32_t signo, int32_t code, uint64_t addr)
{
	uint8_t si[128] = {0};      // siginfo_t: si_signo, si_errno, si_code, pad, si_addr
	put_u32(si, (uint32_t)signo);
	put_u32(si + 8, (uint32_t)code);
	put_u64(si + 16, addr);
	synth_core_add_note(c, "CORE", SYNTH_CORE_NT_SIGINFO, si, sizeof(si));
}

void synth_core_add_auxv(struct synth_core *c, const uint64_t (*pairs)[2], size_t n)
{
	uint8_t *d = xcalloc(n + 1, 16);
	for (size_t i = 0; i < n; i++) {
		put_u64(d + 16 * i, pairs[i][0]);
		put_u64(d + 16 * i + 8, pairs[i][1]);
	}
	synth_core_add_note(c, "CORE", NT_AUXV, d, (n + 1) * 16);
	free(d);
}

void synth_core_add_file_note(struct synth_core *c, uint64_t page_size,
			      const struct synth_core_file *files, size_t n)
{
	size_t size = 16 + 24 * n;
	for (size_t i = 0; i < n; i++)
		size += strlen(files[i].path) + 1;
	uint8_t *d = xcalloc(size, 1);
	put_u64(d, n);
	put_u64(d + 8, page_size);
	size_t names = 16 + 24 * n;
	for (size_t i = 0; i < n; i++) {
		put_u64(d + 16 + 24 * i, files[i].start);
		put_u64(d + 16 + 24 * i + 8, files[i].end);
		put_u64(d + 16 + 24 * i + 16, files[i].offset / page_size);
		size_t len = strlen(files[i].path) + 1;
		memcpy(d + names, files[i].path, len);
		names += len;
	}
	synth_core_add_note(c, "CORE", SYNTH_CORE_NT_FILE, d, size);
	free(d);
}

void synth_core_corrupt_last_note_descsz(struct synth_core *c, uint32_t descsz)
{
	if (c->nnotes)
		c->notes[c->nnotes - 1].claimed_descsz = descsz;
}

void synth_core_patch_last_note(struct synth_core *c, size_t off, const void *bytes, size_t n)
{
	if (!c->nnotes)
		return;
	struct synth_note *note = &c->notes[c->nnotes - 1];
	if (off > note->descsz || n > note->descsz - off)
		abort();   // a test asked for something this helper cannot do
	memcpy(note->desc + off, bytes, n);
}

void synth_core_truncate_at(struct synth_core *c, uint64_t len)
{
	c->truncate_at = len;
}

/* Layout. */

static size_t ehdr_size(const struct synth_core *c)
{
	return c->elf_class == ELFCLASS32 ? sizeof(Elf32_Ehdr) : sizeof(Elf64_Ehdr);
}

static size_t phdr_size(const struct synth_core *c)
{
	return c->elf_class == ELFCLASS32 ? sizeof(Elf32_Phdr) : sizeof(Elf64_Phdr);
}

static size_t nphdrs(const struct synth_core *c)
{
	return c->nloads + (c->nnotes ? 1 : 0);
}

// One note: header, name, padding, desc, padding; offsets relative to the
// note's start, which is aligned to a.
static size_t note_desc_offset(const struct synth_note *n, size_t a)
{
	return align_up(12 + strlen(n->name) + 1, a);
}

static size_t note_size(const struct synth_note *n, size_t a)
{
	return align_up(note_desc_offset(n, a) + n->descsz, a);
}

uint64_t synth_core_note_offset(const struct synth_core *c)
{
	return align_up(ehdr_size(c) + nphdrs(c) * phdr_size(c), 8);
}

uint64_t synth_core_note_size(const struct synth_core *c)
{
	uint64_t size = 0;
	for (size_t i = 0; i < c->nnotes; i++)
		size += note_size(&c->notes[i], c->note_align);
	return size;
}

uint64_t synth_core_load_offset(const struct synth_core *c, size_t index)
{
	if (index < c->nloads && c->loads[index].fixed_offset != UINT64_MAX)
		return c->loads[index].fixed_offset;
	uint64_t off = synth_core_note_offset(c) + synth_core_note_size(c);
	for (size_t i = 0; i < c->nloads; i++) {
		if (c->loads[i].fixed_offset != UINT64_MAX)
			continue;
		off = align_up(off, SYNTH_CORE_LOAD_ALIGN) + c->loads[i].shift;
		if (i == index)
			return off;
		off += c->loads[i].filesz;
	}
	return off;
}

uint64_t synth_core_full_size(const struct synth_core *c)
{
	uint64_t end = synth_core_note_offset(c) + synth_core_note_size(c);
	for (size_t i = 0; i < c->nloads; i++) {
		if (c->loads[i].fixed_offset != UINT64_MAX)
			continue;
		end = align_up(end, SYNTH_CORE_LOAD_ALIGN) + c->loads[i].shift + c->loads[i].filesz;
	}
	return end;
}

static void write_notes(const struct synth_core *c, uint8_t *out)
{
	size_t a = c->note_align, off = 0;
	for (size_t i = 0; i < c->nnotes; i++) {
		const struct synth_note *n = &c->notes[i];
		size_t namesz = strlen(n->name) + 1;
		put_u32(out + off, (uint32_t)namesz);
		put_u32(out + off + 4, n->claimed_descsz);
		put_u32(out + off + 8, n->type);
		memcpy(out + off + 12, n->name, namesz);
		memcpy(out + off + note_desc_offset(n, a), n->desc, n->descsz);
		off += note_size(n, a);
	}
}

static void write_ehdr(const struct synth_core *c, uint8_t *out)
{
	unsigned char ident[EI_NIDENT] = {
		ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, (unsigned char)c->elf_class,
		ELFDATA2LSB, EV_CURRENT, ELFOSABI_NONE,
	};
	if (c->elf_class == ELFCLASS32) {
		Elf32_Ehdr eh = {
			.e_type = c->type, .e_machine = c->machine, .e_version = EV_CURRENT,
			.e_entry = (Elf32_Addr)c->entry, .e_phoff = sizeof(Elf32_Ehdr),
			.e_ehsize = sizeof(Elf32_Ehdr), .e_phentsize = sizeof(Elf32_Phdr),
			.e_phnum = (Elf32_Half)nphdrs(c),
		};
		memcpy(eh.e_ident, ident, EI_NIDENT);
		memcpy(out, &eh, sizeof(eh));
		return;
	}
	Elf64_Ehdr eh = {
		.e_type = c->type, .e_machine = c->machine, .e_version = EV_CURRENT,
		.e_entry = c->entry, .e_phoff = sizeof(Elf64_Ehdr),
		.e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr),
		.e_phnum = (Elf64_Half)nphdrs(c),
	};
	memcpy(eh.e_ident, ident, EI_NIDENT);
	memcpy(out, &eh, sizeof(eh));
}

static void write_phdr(const struct synth_core *c, uint8_t *out, const Elf64_Phdr *ph)
{
	if (c->elf_class == ELFCLASS32) {
		Elf32_Phdr p32 = {
			.p_type = ph->p_type, .p_offset = (Elf32_Off)ph->p_offset,
			.p_vaddr = (Elf32_Addr)ph->p_vaddr, .p_filesz = (Elf32_Word)ph->p_filesz,
			.p_memsz = (Elf32_Word)ph->p_memsz, .p_flags = ph->p_flags,
			.p_align = (Elf32_Word)ph->p_align,
		};
		memcpy(out, &p32, sizeof(p32));
	} else {
		memcpy(out, ph, sizeof(*ph));
	}
}

// The PT_LOAD headers at ph_out, and (with_data) their bytes into out.
static void write_loads(const struct synth_core *c, uint8_t *out, uint8_t *ph_out, bool with_data)
{
	uint64_t off = synth_core_note_offset(c) + synth_core_note_size(c);
	for (size_t i = 0; i < c->nloads; i++) {
		const struct synth_load *l = &c->loads[i];
		uint64_t at = l->fixed_offset;
		if (at == UINT64_MAX) {
			at = off = align_up(off, SYNTH_CORE_LOAD_ALIGN) + l->shift;
			off += l->filesz;
		}
		Elf64_Phdr ph = {
			.p_type = PT_LOAD, .p_flags = l->pflags,
			.p_offset = at, .p_vaddr = l->vaddr,
			.p_filesz = l->filesz, .p_memsz = l->memsz, .p_align = SYNTH_CORE_LOAD_ALIGN,
		};
		write_phdr(c, ph_out, &ph);
		ph_out += phdr_size(c);
		if (with_data && l->data && l->fixed_offset == UINT64_MAX)
			memcpy(out + at, l->data, l->filesz);
	}
}

uint8_t *synth_core_image(const struct synth_core *c, size_t *len_ret)
{
	size_t full = synth_core_full_size(c);
	uint8_t *out = xcalloc(full, 1);
	write_ehdr(c, out);
	uint8_t *ph_out = out + ehdr_size(c);
	if (c->nnotes) {
		Elf64_Phdr ph = {
			.p_type = PT_NOTE, .p_offset = synth_core_note_offset(c),
			.p_filesz = synth_core_note_size(c), .p_align = c->note_align,
		};
		write_phdr(c, ph_out, &ph);
		ph_out += phdr_size(c);
		write_notes(c, out + ph.p_offset);
	}
	write_loads(c, out, ph_out, true);
	*len_ret = full < c->truncate_at ? full : c->truncate_at;
	return out;
}

uint8_t *synth_core_notes_image(const struct synth_core *c, size_t *len_ret)
{
	size_t len = synth_core_note_size(c);
	uint8_t *out = xcalloc(len, 1);
	write_notes(c, out);
	*len_ret = len;
	return out;
}

int synth_core_write_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	const uint8_t *p = data;
	size_t done = 0;
	while (done < len) {
		ssize_t r = write(fd, p + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		done += (size_t)r;
	}
	return close(fd);
}

static bool has_holes(const struct synth_core *c)
{
	for (size_t i = 0; i < c->nloads; i++)
		if (!c->loads[i].data && c->loads[i].filesz)
			return true;
	return false;
}

// A core with holes: the headers, notes and every load's bytes written where
// they go, the holes left unwritten, the length set with ftruncate.
static int write_sparse(const struct synth_core *c, const char *path)
{
	uint64_t head = synth_core_note_offset(c) + synth_core_note_size(c);
	uint8_t *h = xcalloc(head, 1);
	write_ehdr(c, h);
	uint8_t *ph_out = h + ehdr_size(c);
	if (c->nnotes) {
		Elf64_Phdr ph = {
			.p_type = PT_NOTE, .p_offset = synth_core_note_offset(c),
			.p_filesz = synth_core_note_size(c), .p_align = c->note_align,
		};
		write_phdr(c, ph_out, &ph);
		ph_out += phdr_size(c);
		write_notes(c, h + ph.p_offset);
	}
	write_loads(c, NULL, ph_out, false);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int r = fd < 0 ? -1 : 0;
	if (!r && pwrite(fd, h, head, 0) != (ssize_t)head)
		r = -1;
	for (size_t i = 0; !r && i < c->nloads; i++) {
		const struct synth_load *l = &c->loads[i];
		if (l->data && l->filesz && l->fixed_offset == UINT64_MAX &&
		    pwrite(fd, l->data, l->filesz, (off_t)synth_core_load_offset(c, i)) != (ssize_t)l->filesz)
			r = -1;
	}
	uint64_t full = synth_core_full_size(c);
	if (!r && ftruncate(fd, (off_t)(full < c->truncate_at ? full : c->truncate_at)) != 0)
		r = -1;
	if (fd >= 0 && close(fd) != 0)
		r = -1;
	free(h);
	return r;
}

int synth_core_write(const struct synth_core *c, const char *path)
{
	if (has_holes(c))
		return write_sparse(c, path);
	size_t len;
	uint8_t *img = synth_core_image(c, &len);
	int r = synth_core_write_bytes(path, img, len);
	free(img);
	return r;
}

char *synth_core_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char *tmpl;
	if (asprintf(&tmpl, "%s/heapscope-test-XXXXXX", base && *base ? base : "/tmp") < 0)
		abort();
	if (!mkdtemp(tmpl)) {
		free(tmpl);
		return NULL;
	}
	return tmpl;
}

char *synth_core_path(const char *dir, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

int synth_core_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *p = synth_core_path(dir, de->d_name);
		if (unlink(p) != 0)
			rmdir(p);
		free(p);
	}
	closedir(d);
	return rmdir(dir);
}
