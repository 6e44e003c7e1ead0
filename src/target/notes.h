/* notes.h - what a core's PT_NOTE segments say: threads, mapped files, auxv,
 * signal, command line.  For a live process the same structures are filled
 * from /proc and ptrace (target.c).
 */
#ifndef HS_NOTES_H
#define HS_NOTES_H

#include <stddef.h>
#include <stdint.h>
#include <gelf.h>
#include "error.h"

/* Index of a register in regs[]: the order of struct user_regs_struct (x86-64),
 * which is also elf_gregset_t's. */
enum {
	HS_REG_R15, HS_REG_R14, HS_REG_R13, HS_REG_R12, HS_REG_RBP, HS_REG_RBX,
	HS_REG_R11, HS_REG_R10, HS_REG_R9, HS_REG_R8, HS_REG_RAX, HS_REG_RCX,
	HS_REG_RDX, HS_REG_RSI, HS_REG_RDI, HS_REG_ORIG_RAX, HS_REG_RIP, HS_REG_CS,
	HS_REG_EFLAGS, HS_REG_RSP, HS_REG_SS, HS_REG_FS_BASE, HS_REG_GS_BASE,
	HS_REG_DS, HS_REG_ES, HS_REG_FS, HS_REG_GS,
	HS_NREGS
};
extern const char *const hs_reg_names[HS_NREGS];

struct hs_thread {
	int32_t tid;
	int signo;                 /* pr_cursig */
	uint64_t regs[HS_NREGS];
	/* Filled by target.c from the memory map: the mapping that holds rsp. */
	uint64_t stack_lo, stack_hi;   /* [rsp, end of its mapping); 0, 0 when unknown */
};

struct hs_mapped_file {
	uint64_t start, end;       /* [start, end) */
	uint64_t offset;           /* file offset in bytes (page_size already applied) */
	char *path;
};

struct hs_auxv { uint64_t type, value; };

struct hs_notes {
	struct hs_thread *threads;
	size_t nthreads;
	struct hs_mapped_file *files;
	size_t nfiles;
	struct hs_auxv *auxv;
	size_t nauxv;
	int pid;                   /* from prpsinfo or the first thread */
	char fname[17];            /* prpsinfo pr_fname */
	char psargs[81];           /* prpsinfo pr_psargs (command line, truncated by the kernel) */
	int signo, sig_code;        /* NT_SIGINFO; 0 when absent */
	uint64_t sig_addr;
	int have_siginfo;
};

void hs_notes_init(struct hs_notes *notes);
void hs_notes_deinit(struct hs_notes *notes);
/* Parse one PT_NOTE segment's bytes [buf, buf+len) (x86-64 layouts).  Unknown
 * notes are skipped; malformed ones end the parse of that segment with an error
 * that the caller may record as a diagnostic. */
struct hs_error *hs_notes_parse(struct hs_notes *notes, const uint8_t *buf, size_t len,
				size_t align);
/* Replace the auxv with the raw Elf64_auxv_t array [d, d+n). */
struct hs_error *hs_notes_parse_auxv_raw(struct hs_notes *notes, const uint8_t *d, size_t n);
uint64_t hs_notes_auxv(const struct hs_notes *notes, uint64_t type);  /* 0 if absent */

#endif
