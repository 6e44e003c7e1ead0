/* symbols_elf.c - a module's own ELF file (symbols.h, "ELF files"): the
 * program headers, sections, symbol tables and relocations of the file on
 * disk, mapped read-only once.  Walkers that need more than libdwfl's view
 * (a stripped module's .rodata, its TLS segment, its TPOFF relocations, the
 * code of a function) read it through these calls, never with libelf.
 */
#include <fcntl.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "memory.h"
#include "paths.h"
#include "symbols.h"

struct hs_elf_file {
	int fd;
	Elf *elf;
	const uint8_t *image;
	size_t size;
	uint64_t bias;
};

void hs_elf_close(struct hs_elf_file *f)
{
	if (!f)
		return;
	if (f->elf)
		elf_end(f->elf);
	if (f->image)
		munmap((void *)f->image, f->size);
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

struct hs_elf_file *hs_elf_open(const char *path, uint64_t bias)
{
	if (!path)
		return NULL;
	struct hs_elf_file *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	elf_version(EV_CURRENT);
	f->fd = hs_open_regular(path);
	struct stat st;
	if (f->fd < 0 || fstat(f->fd, &st) || st.st_size <= 0)
		goto fail;
	f->size = (size_t)st.st_size;
	void *img = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, f->fd, 0);
	if (img == MAP_FAILED)
		goto fail;
	f->image = img;
	f->elf = elf_memory((char *)img, f->size);
	GElf_Ehdr eh;
	if (!f->elf || elf_kind(f->elf) != ELF_K_ELF || !gelf_getehdr(f->elf, &eh))
		goto fail;
	f->bias = bias;
	return f;
fail:
	hs_elf_close(f);
	return NULL;
}

uint64_t hs_elf_bias(const struct hs_elf_file *f) { return f->bias; }

const uint8_t *hs_elf_image(const struct hs_elf_file *f, uint64_t *len)
{
	*len = f->size;
	return f->image;
}

size_t hs_elf_nphdrs(const struct hs_elf_file *f)
{
	size_t n = 0;
	if (elf_getphdrnum(f->elf, &n))
		return 0;
	return n;
}

bool hs_elf_phdr(const struct hs_elf_file *f, size_t i, GElf_Phdr *ret)
{
	return gelf_getphdr(f->elf, (int)i, ret) != NULL;
}

bool hs_elf_phdr_of_type(const struct hs_elf_file *f, uint32_t type, GElf_Phdr *ret)
{
	bool found = false;
	GElf_Phdr ph;
	for (size_t i = 0; i < hs_elf_nphdrs(f); i++)
		if (hs_elf_phdr(f, i, &ph) && ph.p_type == type) {
			*ret = ph;
			found = true;
		}
	return found;
}

const uint8_t *hs_elf_at(const struct hs_elf_file *f, uint64_t vaddr, uint64_t len)
{
	GElf_Phdr ph;
	for (size_t i = 0; i < hs_elf_nphdrs(f); i++) {
		if (!hs_elf_phdr(f, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr <= ph.p_filesz &&
		    len <= ph.p_filesz - (vaddr - ph.p_vaddr) &&
		    ph.p_offset + (vaddr - ph.p_vaddr) + len <= f->size)
			return f->image + ph.p_offset + (vaddr - ph.p_vaddr);
	}
	return NULL;
}

bool hs_elf_symbol(const struct hs_elf_file *f, const char *name, GElf_Sym *ret)
{
	for (int pass = 0; pass < 2; pass++) {
		Elf_Scn *scn = NULL;
		while ((scn = elf_nextscn(f->elf, scn))) {
			GElf_Shdr sh;
			if (!gelf_getshdr(scn, &sh) || sh.sh_type != (pass ? SHT_DYNSYM : SHT_SYMTAB) ||
			    !sh.sh_entsize)
				continue;
			Elf_Data *d = elf_getdata(scn, NULL);
			size_t n = sh.sh_size / sh.sh_entsize;
			for (size_t i = 0; d && i < n; i++) {
				GElf_Sym sym;
				if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
					continue;
				const char *nm = elf_strptr(f->elf, sh.sh_link, sym.st_name);
				if (nm && !strcmp(nm, name)) {
					*ret = sym;
					return true;
				}
			}
		}
	}
	return false;
}

const uint8_t *hs_elf_section(const struct hs_elf_file *f, const char *name, uint64_t *len)
{
	size_t shstrndx;
	if (elf_getshdrstrndx(f->elf, &shstrndx))
		return NULL;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(f->elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		const char *nm = elf_strptr(f->elf, shstrndx, sh.sh_name);
		if (nm && !strcmp(nm, name) && sh.sh_offset <= f->size && sh.sh_size <= f->size - sh.sh_offset) {
			*len = sh.sh_size;
			return f->image + sh.sh_offset;
		}
	}
	return NULL;
}

bool hs_elf_each_rela(const struct hs_elf_file *f, uint32_t type,
		      bool (*fn)(void *arg, const GElf_Rela *r), void *arg)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(f->elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rela r;
			if (gelf_getrela(d, (int)i, &r) && GELF_R_TYPE(r.r_info) == type && fn(arg, &r))
				return true;
		}
	}
	return false;
}

bool hs_elf_read_image(struct hs_memory *mem, const struct hs_elf_file *f, uint64_t addr, void *buf, size_t len)
{
	const uint8_t *p = hs_memory_span(mem, addr, len);
	if (!p) {
		struct hs_error *err = hs_memory_read(mem, addr, buf, len);   // across segments
		if (!err)
			return true;
		hs_error_destroy(err);
		p = f ? hs_elf_at(f, addr - hs_elf_bias(f), len) : NULL;
	}
	if (p)
		memcpy(buf, p, len);
	return p != NULL;
}
