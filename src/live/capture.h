/* capture.h - write an ELF core of a live process that the caller has stopped.
 *
 * The core has what heapscope's analysis needs and what gdb and eu-readelf
 * expect of a core: notes (NT_PRPSINFO; per thread NT_PRSTATUS with fs_base,
 * NT_PRFPREG, NT_X86_XSTATE and NT_SIGINFO when the thread stopped on a real
 * signal; NT_AUXV; NT_FILE; heapscope's own notes, see docs/cores.md) and one
 * PT_LOAD per mapping of the process.  A PT_LOAD whose p_filesz is 0 was left
 * out (read-only file mappings, PROT_NONE reservations, [vvar]); the filter
 * decides which mappings have their bytes in the core.  Untouched pages of
 * anonymous memory (pagemap: neither present nor swapped) are holes in the
 * file, not zeros written.
 *
 * Lifecycle: hs_capture_open() makes the output's temporary file (an unnamed
 * O_TMPFILE where the file system has it, else a hidden ".NAME.XXXXXX" next to
 * it) before anything is stopped; hs_capture_dump() reads the stopped process
 * and writes the core; the caller then resumes the process and calls
 * hs_capture_commit(), which syncs and gives the file its name atomically.
 * hs_capture_destroy() without a commit removes everything: a core is never
 * half-written under its name.  Never prints, never exits, never writes to the
 * process.  The caller must be the ptrace tracer of every thread (registers).
 */
#ifndef HS_CAPTURE_H
#define HS_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

/* What goes into the core (--filter). */
enum {
	HS_CAP_ANON = 1,          /* anonymous private memory: heap, arenas, stacks, TLS */
	HS_CAP_SHARED = 2,        /* anonymous shared memory (MAP_SHARED|MAP_ANONYMOUS, SysV shm) */
	HS_CAP_DATA = 4,          /* writable or modified private file mappings: .data, .bss, relro */
	HS_CAP_FILES = 8,         /* unmodified file mappings (text, rodata): the rest of each file */
	HS_CAP_FILE_SHARED = 16,  /* shared file mappings (mmapped data files) */
	HS_CAP_ELF_HEADERS = 32,  /* the first page of every ELF file mapping (build-ids) */
};
#define HS_CAP_DEFAULT (HS_CAP_ANON | HS_CAP_SHARED | HS_CAP_DATA | HS_CAP_ELF_HEADERS)
#define HS_CAP_ALL 63

enum hs_compress { HS_COMPRESS_NONE, HS_COMPRESS_ZSTD };

struct hs_capture_options {
	unsigned filter;          /* HS_CAP_*; 0 means HS_CAP_DEFAULT */
	enum hs_compress compress;
	int zstd_level;           /* 0: 1 (fastest) */
	bool sync;                /* fdatasync before naming the core (--sync) */
};

struct hs_capture_stats {
	uint64_t core_bytes;      /* size of the ELF core (before compression) */
	uint64_t file_bytes;      /* size of the file: the core's, or the compressed size */
	uint64_t written_bytes;   /* bytes actually written (a raw core's holes are not) */
	uint64_t dumped_bytes;    /* memory bytes in the core, holes included */
	uint64_t hole_bytes;      /* of those, untouched pages not read (holes) */
	uint64_t omitted_bytes;   /* mapped memory left out by the filter */
	uint64_t unreadable_pages;/* pages the kernel would not give (written as zeros) */
	size_t nthreads, nmappings, nloads;
};

struct hs_capture;

/* Parse a --filter list: names from the enum above ("anon", "shared", "data",
 * "files", "file-shared", "elf-headers"), "default", "all", each optionally
 * prefixed by + or - (relative to the default, when the list starts so). */
struct hs_error *hs_capture_parse_filter(const char *spec, unsigned *ret);
/* The filter as a comma-separated list of names, into buf. */
void hs_capture_filter_name(unsigned filter, char *buf, size_t len);

/* Create the temporary output for path (a directory that does not exist or
 * cannot be written fails here, before the process is stopped). */
struct hs_error *hs_capture_open(const char *path, const struct hs_capture_options *o,
				 struct hs_capture **ret);
/* Write the core of pid, whose threads tids[0..ntids) the caller has stopped
 * with ptrace (the main thread first, or anywhere).  Checks hs_interrupted()
 * between chunks (HS_ERR_INTERRUPTED).  A process that exits on the way fails
 * with HS_ERR_TARGET; a full disk with HS_ERR_OS.  Call once. */
struct hs_error *hs_capture_dump(struct hs_capture *c, int pid, const int *tids, size_t ntids);
/* After the process was resumed: flush, sync if asked (o->sync), and give the
 * core its name. */
struct hs_error *hs_capture_commit(struct hs_capture *c);
/* The temporary file's path when it has one (the fallback), else NULL: a signal
 * handler may unlink() it. */
const char *hs_capture_temp_path(const struct hs_capture *c);
const struct hs_capture_stats *hs_capture_stats(const struct hs_capture *c);
/* Remove the temporary file unless committed; free.  NULL is a no-op. */
void hs_capture_destroy(struct hs_capture *c);

#endif
