/* target.h - open what is analysed: an ELF core, a live process, or in-memory
 * images (tests).  The target owns the core's fd, its single mmap and its Elf *,
 * the segment table and the notes.  Never writes to the core or the process.
 */
#ifndef HS_TARGET_H
#define HS_TARGET_H

#include <libelf.h>
#include "memory.h"
#include "notes.h"

enum hs_target_kind { HS_TARGET_CORE, HS_TARGET_PID, HS_TARGET_BUFFERS };

struct hs_target {
	enum hs_target_kind kind;
	char *path;               /* the core's path, or "/proc/PID" */
	int fd;                   /* the core, or -1 */
	Elf *elf;                 /* the core's ELF (libelf, ELF_C_READ_MMAP), or NULL */
	const uint8_t *image;     /* the whole core file, mapped read-only */
	uint64_t file_size;
	uint64_t missing_bytes;   /* truncated core: dumped bytes that lie beyond EOF */
	int pid;                  /* live pid, or the core's pid */
	struct hs_memory mem;
	struct hs_notes notes;
};

/* Open an ELF core.  Fails with HS_ERR_TARGET (empty, not ELF, not a core, bad
 * header) or HS_ERR_PERMISSION.  A truncated core opens: the segments are cut at
 * EOF and missing_bytes says how much is gone. */
struct hs_error *hs_target_open_core(const char *path, struct hs_target **ret);
/* Open a live process whose threads the caller has stopped.  Threads' registers
 * come from ptrace (PTRACE_GETREGS) when the caller is the tracer; otherwise use
 * hs_target_set_regs. */
struct hs_error *hs_target_open_pid(int pid, struct hs_target **ret);
/* Tests: a target over the given memory (copied) and notes (moved). */
struct hs_error *hs_target_open_buffers(const struct hs_segment *segs, size_t nsegs,
					struct hs_target **ret);
/* Registers of a live thread, from the tracer (GDB). */
struct hs_error *hs_target_set_regs(struct hs_target *t, int tid, const uint64_t *regs, size_t n);
void hs_target_destroy(struct hs_target *t);

/* Fill each thread's stack_lo/stack_hi from its rsp and the segment table. */
void hs_target_compute_stacks(struct hs_target *t);

/* Up to len bytes of a small file (/proc/PID/...): how many were read, 0 on
 * any error. */
size_t hs_read_small_file(const char *path, char *buf, size_t len);

#endif
