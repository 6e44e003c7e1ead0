/* synth_core.h - test helper: writes synthetic ELF files, mostly x86-64 cores.
 *
 * A test describes the core it needs (PT_LOAD segments with chosen vaddr,
 * memsz, filesz, flags and bytes; notes: NT_PRSTATUS per thread, NT_PRPSINFO,
 * NT_SIGINFO, NT_AUXV, NT_FILE with page_size 4096 or 1, arbitrary notes) and
 * how to damage it (truncate the file, patch a note's header or bytes, another
 * ELF class/type/machine).  The helper lays the file out deterministically and
 * tells the test where each part landed, so that tests can assert exact
 * offsets and exact missing byte counts.
 *
 * Layout: Elf64_Ehdr (or Elf32_Ehdr), the program headers (PT_NOTE first when
 * there are notes, then the PT_LOADs in the order they were added), the note
 * segment (aligned to the note alignment), then each PT_LOAD's dumped bytes at
 * the next multiple of 4096.
 *
 * Invariants: a struct synth_core owns copies of everything given to it; it
 * never returns NULL (allocation failure aborts: this is test code);
 * synth_core_destroy(NULL) is a no-op.  Every non-static symbol is prefixed
 * synth_core_ because this file is linked into every unit test binary.
 */
#ifndef SYNTH_CORE_H
#define SYNTH_CORE_H

#include <stddef.h>
#include <stdint.h>

#define SYNTH_CORE_NREGS 27          /* elf_gregset_t on x86-64 */
#define SYNTH_CORE_LOAD_ALIGN 4096   /* file alignment of PT_LOAD data */
#define SYNTH_CORE_NT_FILE 0x46494c45
#define SYNTH_CORE_NT_SIGINFO 0x53494749

struct synth_core;

struct synth_core_thread {
	int32_t tid;
	int16_t cursig;
	uint64_t regs[SYNTH_CORE_NREGS];   /* struct user_regs_struct order */
};

struct synth_core_file {
	uint64_t start, end;
	uint64_t offset;       /* in bytes; written as offset / page_size */
	const char *path;
};

struct synth_core *synth_core_create(void);
void synth_core_destroy(struct synth_core *c);

/* ELF header fields; the default is ELFCLASS64, ET_CORE, EM_X86_64.  With
 * ELFCLASS32 the headers are written as Elf32_Ehdr/Elf32_Phdr. */
void synth_core_set_elf(struct synth_core *c, int elf_class, uint16_t type, uint16_t machine);
void synth_core_set_entry(struct synth_core *c, uint64_t entry);
/* 4 (the kernel's and gdb's) or 8 (gABI 8-byte notes, laid out as libelf's
 * ELF_T_NHDR8 reads them); also the PT_NOTE's p_align. */
void synth_core_set_note_align(struct synth_core *c, size_t align);

/* A PT_LOAD.  data holds filesz bytes; NULL means synth_core_pattern bytes.
 * pflags is PF_R | PF_W | PF_X.  Returns the segment's index (0, 1, ...). */
size_t synth_core_add_load(struct synth_core *c, uint64_t vaddr, uint64_t memsz,
			   uint64_t filesz, uint32_t pflags, const void *data);

/* Notes, written in the order they are added (name "CORE" unless said). */
void synth_core_add_prstatus(struct synth_core *c, const struct synth_core_thread *th);
void synth_core_add_prpsinfo(struct synth_core *c, int32_t pid, const char *fname,
			     const char *psargs);
void synth_core_add_siginfo(struct synth_core *c, int32_t signo, int32_t code, uint64_t addr);
/* n (type, value) pairs; an AT_NULL entry is appended. */
void synth_core_add_auxv(struct synth_core *c, const uint64_t (*pairs)[2], size_t n);
/* NT_FILE with the given page_size (4096: kernel, 1: gdb). */
void synth_core_add_file_note(struct synth_core *c, uint64_t page_size,
			      const struct synth_core_file *files, size_t n);
void synth_core_add_note(struct synth_core *c, const char *name, uint32_t type,
			 const void *desc, size_t descsz);

/* A PT_LOAD whose p_offset is off (not laid out by the helper): the bytes at
 * [off, off + filesz) of the file, which the test provides with another
 * segment or leaves beyond EOF.  Useful for vaddr/offset misalignment and
 * for segments that share bytes.  Returns the segment's index. */
size_t synth_core_add_load_at(struct synth_core *c, uint64_t vaddr, uint64_t memsz,
			      uint64_t filesz, uint32_t pflags, uint64_t off);
/* Lay load index out at a page boundary + shift (shift < 4096) in the file,
 * so that its p_offset and p_vaddr may disagree mod 8. */
void synth_core_shift_load(struct synth_core *c, size_t index, uint64_t shift);
/* A PT_LOAD of filesz zero bytes written as a hole (the file is sparse: it
 * takes no disk space and synth_core_image never materialises it; only
 * synth_core_write can write such a core). */
size_t synth_core_add_zero_load(struct synth_core *c, uint64_t vaddr, uint64_t memsz,
				uint64_t filesz, uint32_t pflags);
/* n empty PT_LOADs (filesz 0, memsz 0x1000) at vaddr, vaddr + step, ... */
void synth_core_add_empty_loads(struct synth_core *c, uint64_t vaddr, uint64_t step, size_t n);

/* A synthetic glibc process (synth_glibc.h): each segment a PT_LOAD, each
 * thread an NT_PRSTATUS, and an NT_PRPSINFO for the first thread. */
struct synth_glibc;
void synth_core_add_glibc(struct synth_core *c, const struct synth_glibc *g);

/* Damage.  The last note added claims descsz bytes in its header while its
 * bytes (and so the layout) stay as they were. */
void synth_core_corrupt_last_note_descsz(struct synth_core *c, uint32_t descsz);
/* Overwrite n bytes of the last note's desc at offset off (within the desc). */
void synth_core_patch_last_note(struct synth_core *c, size_t off, const void *bytes, size_t n);
/* The file ends after len bytes (no effect when len >= the full size). */
void synth_core_truncate_at(struct synth_core *c, uint64_t len);

/* Where things land in the file (before truncation). */
uint64_t synth_core_note_offset(const struct synth_core *c);
uint64_t synth_core_note_size(const struct synth_core *c);
uint64_t synth_core_load_offset(const struct synth_core *c, size_t index);
uint64_t synth_core_full_size(const struct synth_core *c);

/* The whole file (truncation applied), malloc'd; the caller frees. */
uint8_t *synth_core_image(const struct synth_core *c, size_t *len_ret);
/* Just the note segment's bytes, malloc'd with exactly *len_ret bytes (so
 * that ASan sees any read past them); the caller frees. */
uint8_t *synth_core_notes_image(const struct synth_core *c, size_t *len_ret);
/* Write the file; 0 on success, -1 with errno. */
int synth_core_write(const struct synth_core *c, const char *path);

/* The bytes a PT_LOAD added with data == NULL holds at vaddr. */
uint8_t synth_core_pattern(uint64_t vaddr);
void synth_core_fill_pattern(uint64_t vaddr, void *buf, size_t len);

/* Files and directories for tests. */
char *synth_core_mkdtemp(void);                               /* malloc'd path */
char *synth_core_path(const char *dir, const char *name);     /* malloc'd dir/name */
int synth_core_write_bytes(const char *path, const void *data, size_t len);
/* Remove the files in dir, then dir itself (not recursive). */
int synth_core_rmdir(const char *dir);

#endif
