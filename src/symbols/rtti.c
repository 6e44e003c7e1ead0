/* rtti.c - see rtti.h. */
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include "rtti.h"
#include "memory.h"
#include "symbols.h"

extern char *__cxa_demangle(const char *mangled, char *out, size_t *len, int *status);

/* Itanium C++ ABI, x86-64 (no magic offsets elsewhere). */
enum {
	VPTR_TYPEINFO = -8,          /* vptr[-1]: &type_info */
	VPTR_OFFSET_TO_TOP = -16,    /* vptr[-2]: offset to the complete object */
	TYPEINFO_NAME = 8,           /* type_info::__name */
	MAX_OFFSET_TO_TOP = 1 << 20,
	MAX_MANGLED = 512,
};

// Drop "[abi:cxx11]" and the like: they say how, not what.
static void drop_abi_tags(char *s)
{
	char *p;
	while ((p = strstr(s, "[abi:"))) {
		char *end = strchr(p, ']');
		if (!end)
			break;
		memmove(p, end + 1, strlen(end + 1) + 1);
	}
}

const char *hs_demangle(const char *name, char *buf, size_t len)
{
	if (!len)
		return buf;
	if (!name) {
		buf[0] = 0;
		return buf;
	}
	if (name[0] == '_' && name[1] == 'Z') {
		int status = -1;
		char *d = __cxa_demangle(name, NULL, NULL, &status);
		if (d && status == 0) {
			drop_abi_tags(d);
			snprintf(buf, len, "%s", d);
			free(d);
			return buf;
		}
		free(d);
	}
	snprintf(buf, len, "%s", name);
	return buf;
}

static bool in_module(struct hs_symbols *sy, uint64_t addr)
{
	return sy && hs_symbols_module_at(sy, addr) != NULL;
}

// A mangled type name: [A-Za-z0-9_$.] only, starts with a digit or N/S/St
// (a leading '*' marks a type local to its translation unit).
static bool plausible_mangled(const char *p)
{
	if (*p == '*')
		p++;
	if (!*p || !(('0' <= *p && *p <= '9') || *p == 'N' || *p == 'S' || *p == 'Z'))
		return false;
	for (; *p; p++)
		if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
		      *p == '_' || *p == '$' || *p == '.'))
			return false;
	return true;
}

// A string in a module's read-only data: from the core when it was dumped,
// else from the module's file (kernel cores leave .rodata out).
static bool read_module_string(struct hs_symbols *sy, struct hs_memory *mem, uint64_t addr, char *buf,
			       size_t max)
{
	struct hs_error *err = hs_memory_read_string(mem, addr, buf, max);
	if (!err)
		return true;
	hs_error_destroy(err);
	struct hs_module *mod = hs_symbols_module_at(sy, addr);
	Dwarf_Addr bias;
	Elf *elf = mod && mod->dwfl_module ? dwfl_module_getelf(mod->dwfl_module, &bias) : NULL;
	size_t n;
	if (!elf || elf_getphdrnum(elf, &n))
		return false;
	uint64_t vaddr = addr - bias;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || vaddr < ph.p_vaddr ||
		    vaddr - ph.p_vaddr >= ph.p_filesz)
			continue;
		uint64_t off = vaddr - ph.p_vaddr, avail = ph.p_filesz - off;
		size_t want = avail < max - 1 ? (size_t)avail : max - 1;
		Elf_Data *d = elf_getdata_rawchunk(elf, (int64_t)(ph.p_offset + off), want, ELF_T_BYTE);
		if (!d || !d->d_buf)
			return false;
		memcpy(buf, d->d_buf, want);
		buf[want] = 0;
		return strlen(buf) < want;   // a terminated string
	}
	return false;
}

bool hs_rtti_class_name(struct hs_symbols *sy, struct hs_memory *mem, uint64_t vptr, char *buf, size_t len)
{
	uint64_t ti, top, vt_of_ti, name_ptr;
	if ((vptr & 7) || !in_module(sy, vptr) || !in_module(sy, vptr + VPTR_OFFSET_TO_TOP))
		return false;
	struct hs_error *err = hs_memory_read_u64(mem, vptr + VPTR_TYPEINFO, &ti);
	if (!err)
		err = hs_memory_read_u64(mem, vptr + VPTR_OFFSET_TO_TOP, &top);
	if (!err && (!ti || (ti & 7) || !in_module(sy, ti)))
		err = hs_error_create(HS_ERR_NOT_FOUND, "no type_info");
	if (!err)
		err = hs_memory_read_u64(mem, ti, &vt_of_ti);
	if (!err)
		err = hs_memory_read_u64(mem, ti + TYPEINFO_NAME, &name_ptr);
	if (err) {
		hs_error_destroy(err);
		return false;
	}
	// offset-to-top is 0 or minus the offset of a base subobject.
	int64_t otp = (int64_t)top;
	if (otp > 0 || otp < -MAX_OFFSET_TO_TOP || (otp & 7))
		return false;
	// type_info's own vptr points into libstdc++'s (or a static copy's)
	// __class_type_info vtable; its name string lives in some module too.
	if (!in_module(sy, vt_of_ti) || !in_module(sy, name_ptr))
		return false;
	char mangled[MAX_MANGLED + 3] = "_Z";
	if (!read_module_string(sy, mem, name_ptr, mangled + 2, MAX_MANGLED))
		return false;
	const char *m = mangled + 2;
	if (!plausible_mangled(m))
		return false;
	if (*m == '*')
		m++;
	int status = -1;
	// A type name demangles on its own ("7Derived" -> "Derived").
	char *d = __cxa_demangle(m, NULL, NULL, &status);
	if (!d || status != 0) {
		free(d);
		return false;
	}
	drop_abi_tags(d);
	snprintf(buf, len, "%s", d);
	free(d);
	return true;
}
