/* memory.h - the target's address space: address -> bytes.
 *
 * A segment table sorted by start address, non-overlapping.  For a core, each
 * PT_LOAD is a segment whose dumped part [start, start + filesz) points into the
 * core file mapped once (zero-copy); [start + filesz, end) existed in the process
 * but was not dumped.  Mappings that the process had (NT_FILE) but the core left
 * out entirely are segments with filesz 0.  For a live process, data is read from
 * /proc/PID/mem on demand and cached per segment.
 *
 * Alignment: data - start is a multiple of 8 (a word at an 8-aligned address
 * is an aligned load); segments whose core bytes do not allow it are copied.
 *
 * Reads are checked: a read of bytes that were not dumped fails with
 * HS_ERR_NOT_DUMPED, a read of an address in no segment with HS_ERR_UNMAPPED,
 * never with zeros; a live process that exited meanwhile fails every read it
 * could not serve with HS_ERR_TARGET.  Reads that cross segment boundaries are split.
 *
 * Adjacent segments: the kernel splits one mapping into several VMAs when part
 * of it is madvise'd or mprotect'ed (Go's heap arenas with transparent huge
 * pages), and a core has a PT_LOAD each.  Their bytes follow one another in
 * the core file, so hs_memory_span() and seg->span serve an allocation across
 * the boundary in place; a live target reads such a run into one buffer.
 */
#ifndef HS_MEMORY_H
#define HS_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

enum {
	HS_SEG_R = 1, HS_SEG_W = 2, HS_SEG_X = 4,
	HS_SEG_NOT_IN_CORE = 8,   /* known from NT_FILE / maps only, no PT_LOAD */
};

struct hs_segment {
	uint64_t start, end;      /* [start, end): the mapping in the process */
	uint64_t filesz;          /* bytes of it that are readable (dumped) */
	uint64_t file_offset;     /* offset of the dumped bytes in the core file */
	const uint8_t *data;      /* the dumped bytes, NULL until loaded (live) */
	uint64_t span;            /* bytes at data that read as [start, start + span):
				   * filesz, or more when the next segments' bytes
				   * follow at data + filesz (one mapping the kernel
				   * split, by madvise or mprotect, in two VMAs) */
	uint32_t flags;           /* HS_SEG_* */
	uint8_t *owned;           /* our copy of the bytes (freed with the memory) */
	size_t owned_map;         /* owned is an anonymous mapping of this size (else malloc'd) */
};

/* [start, end) of the core file that is a hole (the file is sparse): it
 * reads as zeros and costs nothing until touched.  Kept in file offsets, so
 * that segments that overlap or were cut still find exactly their own. */
struct hs_hole { uint64_t start, end; };

struct hs_memory {
	struct hs_segment *segs;
	size_t nsegs;
	int mem_fd;               /* live: /proc/PID/mem, else -1 */
	int pid;                  /* live: the process (to tell "exited" from "unreadable") */
	bool gone;                /* live: the process exited while we read it */
	struct hs_hole *holes;    /* sorted, disjoint, each >= HS_HOLE_MIN */
	size_t nholes;
	uint8_t **retired;        /* live: buffers of segments read again as part of a
				   * run (what was read from them may still be held) */
	size_t nretired, retired_cap;
};
#define HS_HOLE_MIN (UINT64_C(1) << 16)

void hs_memory_init(struct hs_memory *mem);
void hs_memory_deinit(struct hs_memory *mem);
/* Free a segment's own copy of its bytes (owned), if any. */
void hs_segment_release(struct hs_segment *seg);
/* Add a segment (any order); call hs_memory_finish() before reads. */
struct hs_error *hs_memory_add(struct hs_memory *mem, const struct hs_segment *seg);
/* Sort; merge nothing; drop exact duplicates. */
struct hs_error *hs_memory_finish(struct hs_memory *mem);

/* The segment containing addr, or NULL. */
const struct hs_segment *hs_memory_segment(const struct hs_memory *mem, uint64_t addr);

struct hs_error *hs_memory_read(struct hs_memory *mem, uint64_t addr, void *buf, size_t len);
struct hs_error *hs_memory_read_u64(struct hs_memory *mem, uint64_t addr, uint64_t *ret);
struct hs_error *hs_memory_read_u32(struct hs_memory *mem, uint64_t addr, uint32_t *ret);
/* Read a NUL-terminated string of at most max-1 bytes into buf. */
struct hs_error *hs_memory_read_string(struct hs_memory *mem, uint64_t addr, char *buf, size_t max);

/* Zero-copy view of [addr, addr + len) if it lies in the dumped part of one
 * segment; NULL otherwise (then use hs_memory_read, which splits and explains).
 * For a live target this loads the segment once (not thread-safe: call
 * hs_memory_load_all() before a multi-threaded scan). */
const uint8_t *hs_memory_span(struct hs_memory *mem, uint64_t addr, size_t len);
/* The lowest address >= addr whose byte is dumped (UINT64_MAX: none). */
uint64_t hs_memory_next_dumped(const struct hs_memory *mem, uint64_t addr);
/* The end of the mapping holding addr, through the segments that follow it
 * without a gap (one mapping split in VMAs); addr when it is in none. */
uint64_t hs_memory_mapping_end(const struct hs_memory *mem, uint64_t addr);
/* Bytes readable from addr to the end of its segment's dumped part (0 if none). */
uint64_t hs_memory_available(const struct hs_memory *mem, uint64_t addr);
struct hs_error *hs_memory_load_all(struct hs_memory *mem);
/* Is every dumped segment in memory (hs_memory_span then never loads one,
 * and threads may share it)? */
bool hs_memory_loaded(const struct hs_memory *mem);
/* Record that the core file's bytes [start, end) are a hole (cores:
 * target.c); any order, call hs_memory_finish() after. */
struct hs_error *hs_memory_add_hole(struct hs_memory *mem, uint64_t start, uint64_t end);
/* Bulk scans skip what cannot hold a pointer or a header: the end of the
 * known hole holding addr, or addr itself when it is in none. */
uint64_t hs_memory_skip_hole(const struct hs_memory *mem, uint64_t addr);
/* Dumped bytes from addr up to the next hole or the end of its segment's
 * dumped part: 0 when addr is in a hole or not dumped. */
uint64_t hs_memory_data_run(const struct hs_memory *mem, uint64_t addr);
/* The next run of [addr, end) worth a bulk scan: dumped bytes outside holes
 * (zeros that cost nothing until touched).  Returns its start and *len_ret
 * bytes (> 0), or UINT64_MAX when nothing is left. */
uint64_t hs_memory_next_scan_run(const struct hs_memory *mem, uint64_t addr, uint64_t end, uint64_t *len_ret);
/* Map the dumped bytes of every writable segment into our page tables in one
 * go (cores): a bulk scan then takes no page fault per 64 KiB.  Best effort. */
void hs_memory_prefault_writable(struct hs_memory *mem);
/* Has the live process pid exited (no such process, or a zombie whose
 * memory is gone)? */
bool hs_process_exited(int pid);
bool hs_process_is_kernel_thread(int pid);

#endif
