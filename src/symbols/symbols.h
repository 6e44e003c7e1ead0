/* symbols.h - modules, symbols and DWARF types, through libdwfl/libdw.
 *
 * Built once per session from the target (core: dwfl_core_file_report; live:
 * dwfl_linux_proc_report).  Every module has its build-id, whether its ELF and
 * its debug info were found and where.  A file on disk whose build-id differs
 * from the one in the target is never used, and is reported (mismatch).
 * Lookups are single-threaded (libdw is not thread-safe): resolve up front.
 * Nothing here is thread-safe; one hs_symbols is used by one thread at a time.
 *
 * Ownership: hs_symbols owns the Dwfl, the modules array and every string in
 * it; module->symtab is private lazy state (symbol hash, DWARF index).
 */
#ifndef HS_SYMBOLS_H
#define HS_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gelf.h>
#include "error.h"
#include "diag.h"

struct hs_target;
struct hs_symtab;          /* per-module name -> symbol hash, built lazily */
struct hs_symbols_private;

struct hs_symbol {
	const char *name;      /* owned by libdwfl, valid for the session */
	uint64_t address;      /* relocated */
	uint64_t size;
	bool is_object;        /* STT_OBJECT / STT_TLS vs functions */
};

struct hs_module {
	char *name;            /* as the target names it (soname or path) */
	char *path;            /* the ELF file used, or NULL if not found */
	char *debug_path;      /* the separate debug file, or NULL */
	char *debug_copy;      /* its copy with plain DWARF that was read, or NULL (debug_cache.c) */
	uint64_t start, end;   /* load range */
	uint64_t bias;
	uint8_t build_id[64];
	size_t build_id_len;   /* 0: none known */
	char go_build_id[128]; /* without one: Go's linker's ID (.note.go.buildid), else "" */
	bool elf_found;
	bool debug_found;      /* DWARF available (in path or debug_path) */
	bool build_id_mismatch;/* a file was found at the path, with another build-id */
	char *mismatch_path;   /* that file */
	bool is_main;          /* the executable */
	void *dwfl_module;     /* Dwfl_Module * */
	struct hs_symtab *symtab;
};

/* id's len bytes as lowercase hex into buf (cut to fit cap, NUL-ended). */
void hs_build_id_hex(const uint8_t *id, size_t len, char *buf, size_t cap);

struct hs_symbols_options {
	const char *exe;
	const char *sysroot;
	const char *const *debug_dirs;   /* NULL-terminated, may be NULL */
	bool no_debuginfo;
};

struct hs_symbols {
	void *dwfl;            /* Dwfl * */
	struct hs_module *modules;  /* sorted by start */
	size_t nmodules;
	char *debuginfo_path;  /* the string libdwfl searches */
	bool no_debuginfo;
	bool exe_mismatch;     /* --exe differs from the target's main module */
	struct hs_symbols_private *priv;  /* callbacks and paths libdwfl keeps pointers to */
};

struct hs_error *hs_symbols_create(struct hs_target *t, const struct hs_symbols_options *o,
				   struct hs_diags *diags, struct hs_symbols **ret);
void hs_symbols_destroy(struct hs_symbols *s);

/* The module whose load range holds addr, or NULL. */
struct hs_module *hs_symbols_module_at(struct hs_symbols *s, uint64_t addr);
/* The module starting lowest above addr, or NULL. */
struct hs_module *hs_symbols_module_after(struct hs_symbols *s, uint64_t addr);
/* First module whose name or path's basename starts with prefix ("libc.so"), or NULL. */
struct hs_module *hs_symbols_module_named(struct hs_symbols *s, const char *prefix);
struct hs_module *hs_symbols_main_module(struct hs_symbols *s);

/* Symbol by exact name in one module (mod may be NULL: all modules, the main
 * one first).  HS_ERR_NOT_FOUND when absent. */
struct hs_error *hs_symbols_lookup(struct hs_symbols *s, struct hs_module *mod,
				   const char *name, struct hs_symbol *ret);
/* addr -> "symbol+0xoff" ("symbol" at offset 0; C++ names demangled, without
 * ABI tags), or "module+0xoff" when no
 * symbol covers it; returns false (and writes "") when no module holds addr. */
bool hs_symbols_describe(struct hs_symbols *s, uint64_t addr, char *buf, size_t len);
/* Could hs_symbols_addr_symbol(addr) name a vtable ("_ZTV...")?  False only
 * when no vtable symbol of addr's module covers it: a search of the module's
 * vtables by address, where libdwfl's answer reads every symbol. */
bool hs_symbols_maybe_vtable(struct hs_symbols *s, uint64_t addr);
/* The symbol containing addr (objects and functions), with offset. */
bool hs_symbols_addr_symbol(struct hs_symbols *s, uint64_t addr, struct hs_symbol *ret,
			    uint64_t *offset_ret);
/* Tests: the section of module m's main file that addr is in as libdwfl
 * finds it (dwfl_module_address_section's answer, which decides whether a
 * label may name addr), SHN_UNDEF for none or no index. */
size_t hs_symbols_section_of(struct hs_module *m, uint64_t addr);

/* DWARF helpers, in the module's debug info (HS_ERR_NOT_FOUND when the module has
 * none or the name is absent).  Struct names are without "struct ". */
struct hs_error *hs_dwarf_struct_size(struct hs_module *mod, const char *struct_name,
				      uint64_t *ret);
/* Member path may be nested with dots ("bins" or "mutex.lock"); bit offset is 0
 * for non-bitfields.  A bitfield starts at bit *bit_ret (0..7, from the least
 * significant bit on little-endian targets) of byte *byte_ret.  struct_name may
 * also be a typedef name ("heap_info"). */
struct hs_error *hs_dwarf_member_offset(struct hs_module *mod, const char *struct_name,
					const char *member, uint64_t *byte_ret,
					uint32_t *bit_ret);
/* The size in bytes of the member's type (the last one of a dotted path). */
struct hs_error *hs_dwarf_member_size(struct hs_module *mod, const char *struct_name,
				      const char *member, uint64_t *ret);
/* A global (or static) variable's relocated address, from DW_AT_location, or
 * from the module's ELF symbol table when DWARF lacks it (or is absent). */
struct hs_error *hs_dwarf_variable(struct hs_module *mod, const char *name, uint64_t *addr_ret);

/* --- ELF files (symbols_elf.c) ---------------------------------------- *
 * A module's own ELF file on disk, mapped read-only: for what libdwfl does not
 * give (a stripped module's .rodata, PT_TLS, TPOFF relocations, code bytes).
 * Addresses in it are unrelocated: add hs_elf_bias().  The only ELF reader
 * outside symbols.c and target.c. */
struct hs_elf_file;
/* NULL when path is NULL, unreadable or not an ELF file. */
struct hs_elf_file *hs_elf_open(const char *path, uint64_t bias);
void hs_elf_close(struct hs_elf_file *f);
uint64_t hs_elf_bias(const struct hs_elf_file *f);
const uint8_t *hs_elf_image(const struct hs_elf_file *f, uint64_t *len);   /* the whole file */
size_t hs_elf_nphdrs(const struct hs_elf_file *f);
bool hs_elf_phdr(const struct hs_elf_file *f, size_t i, GElf_Phdr *ret);
/* The last program header of that type (PT_TLS): false when none. */
bool hs_elf_phdr_of_type(const struct hs_elf_file *f, uint32_t type, GElf_Phdr *ret);
/* File bytes behind [vaddr, vaddr + len) of a PT_LOAD, or NULL. */
const uint8_t *hs_elf_at(const struct hs_elf_file *f, uint64_t vaddr, uint64_t len);
struct hs_memory;
/* len bytes of a module's image at (relocated) addr into buf: from the
 * target's memory, else from its file f (a kernel core leaves read-only
 * segments out: type descriptors, names, pclntab).  False when neither has
 * them all. */
bool hs_elf_read_image(struct hs_memory *mem, const struct hs_elf_file *f, uint64_t addr, void *buf, size_t len);
/* A defined symbol by name from .symtab, then .dynsym (st_value unrelocated). */
bool hs_elf_symbol(const struct hs_elf_file *f, const char *name, GElf_Sym *ret);
/* The bytes of the section named name, or NULL. */
const uint8_t *hs_elf_section(const struct hs_elf_file *f, const char *name, uint64_t *len);
/* fn on every RELA entry of that type (R_X86_64_TPOFF64) until it returns
 * true; returns whether one did. */
bool hs_elf_each_rela(const struct hs_elf_file *f, uint32_t type,
		      bool (*fn)(void *arg, const GElf_Rela *r), void *arg);

/* True when --exe was given and its build-id differs from the target's main
 * module (a "symbols" warning says which files). */
bool hs_symbols_exe_mismatch(struct hs_symbols *s);

#endif
