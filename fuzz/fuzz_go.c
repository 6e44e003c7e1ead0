/* fuzz_go.c - libFuzzer harness for the Go runtime readers, over the public
 * API (include/heapscope.h).
 *
 * A Go core is tens of megabytes: too big to be a fuzzer input, and a random
 * one is no Go process.  So the inputs here are patches to real Go cores
 * (the fixtures' kernel cores, named in HS_FUZZ_GO_CORES, colon-separated):
 * the runtime's own structures, damaged in place.  An input is
 *
 *	byte 0          which base core (modulo their number)
 *	then records    u8 segment selector, u32 offset (little endian),
 *	                u8 length (1..16), the bytes to write
 *
 * Each record writes into one PT_LOAD segment's bytes in the file: the
 * selector picks the segment among the writable ones (the runtime's data
 * and bss, the heap arenas, the off-heap structures, stacks), the offset is
 * taken modulo its size.  The patched core lives in a memfd, opened by path
 * as the CLI opens a core; after the commands, the original bytes are put
 * back, so one copy of each base is written once.
 *
 * Every Go command runs in text and JSON, with the output contract of
 * fuzz_core.c (one JSON document of UTF-8 with "schema": 1 and an "error"
 * member on failure; text without terminal controls): summary, arenas,
 * histogram, top, leaks, goroutines, goroutines --list, maps, map on the
 * first map `maps` reports, pools, owners, report, export --format folded,
 * and show/chain/refs on the first block of `top`.  (Not diff: a second
 * session of each input, analysed twice more, would halve the inputs run;
 * its ownership stacks are report's.)
 *
 * Build and run: make fuzz (docs/fuzzing.md).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "heapscope.h"
#include "output_check.h"

#define MAX_BASES 4
#define MAX_SEGS 512
#define MAX_PATCHES 64

struct seg { uint64_t off, size; };

struct base {
	int fd;
	char path[64];
	struct seg segs[MAX_SEGS];
	size_t nsegs;
};

static struct base bases[MAX_BASES];
static size_t nbases;

// Copy the core at src into a memfd and list its writable loaded segments.
static void load_base(const char *src)
{
	if (nbases == MAX_BASES)
		return;
	int in = open(src, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (in < 0 || fstat(in, &st) != 0) {
		fprintf(stderr, "fuzz_go: %s: cannot open (HS_FUZZ_GO_CORES)\n", src);
		exit(1);
	}
	struct base *b = &bases[nbases];
	b->fd = memfd_create("go-core", MFD_CLOEXEC);
	if (b->fd < 0)
		abort();
	char *m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, in, 0);
	if (m == MAP_FAILED || (size_t)st.st_size < sizeof(Elf64_Ehdr))
		abort();
	for (off_t done = 0; done < st.st_size;) {
		ssize_t n = pwrite(b->fd, m + done, st.st_size - done, done);
		if (n <= 0)
			abort();
		done += n;
	}
	const Elf64_Ehdr *eh = (const void *)m;
	for (unsigned i = 0; i < eh->e_phnum && b->nsegs < MAX_SEGS; i++) {
		uint64_t at = eh->e_phoff + (uint64_t)i * sizeof(Elf64_Phdr);
		if (at + sizeof(Elf64_Phdr) > (uint64_t)st.st_size)
			break;
		Elf64_Phdr ph;
		memcpy(&ph, m + at, sizeof(ph));
		if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_W) || ph.p_filesz == 0 ||
		    ph.p_offset + ph.p_filesz > (uint64_t)st.st_size)
			continue;
		b->segs[b->nsegs++] = (struct seg){ ph.p_offset, ph.p_filesz };
	}
	munmap(m, st.st_size);
	close(in);
	if (b->nsegs == 0) {
		fprintf(stderr, "fuzz_go: %s: no writable PT_LOAD segment\n", src);
		exit(1);
	}
	snprintf(b->path, sizeof(b->path), "/proc/self/fd/%d", b->fd);
	nbases++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *list = getenv("HS_FUZZ_GO_CORES");
	if (!list || !*list) {
		fprintf(stderr, "fuzz_go: set HS_FUZZ_GO_CORES to Go cores (colon-separated)\n");
		exit(1);
	}
	char *copy = strdup(list), *save = NULL;
	for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save))
		load_base(p);
	free(copy);
	return 0;
}

// The text of the first value of KEY (written with its opening quote for a
// string) in a JSON document, or "".
static void first_value(const struct out_buf *b, const char *key, char *dst, size_t n)
{
	dst[0] = 0;
	const char *p = b->p ? strstr(b->p, key) : NULL;
	if (!p)
		return;
	p += strlen(key);
	if (*p == '"')
		p++;
	size_t i = 0;
	while (p[i] && p[i] != '"' && p[i] != ',' && p[i] != '}' && i + 1 < n) {
		dst[i] = p[i];
		i++;
	}
	dst[i] = 0;
}

struct patch { uint64_t off; uint8_t len; uint8_t old[16]; };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || nbases == 0)
		return 0;
	struct base *b = &bases[data[0] % nbases];
	struct patch patches[MAX_PATCHES];
	size_t np = 0;
	for (size_t i = 1; i + 6 <= size && np < MAX_PATCHES;) {
		const struct seg *sg = &b->segs[data[i] % b->nsegs];
		uint32_t off;
		memcpy(&off, data + i + 1, 4);
		uint8_t len = data[i + 5] % 16 + 1;
		i += 6;
		if (i + len > size)
			len = (uint8_t)(size - i);
		if (len == 0 || len > sg->size)
			break;
		struct patch *pt = &patches[np];
		pt->off = sg->off + off % (sg->size - len + 1);
		pt->len = len;
		if (pread(b->fd, pt->old, len, pt->off) != len || pwrite(b->fd, data + i, len, pt->off) != len)
			abort();
		np++;
		i += len;
	}

	struct hs_options opts = { .no_debuginfo = 1, .jobs = 1 };
	struct hs_session *s = NULL;
	struct hs_error *err = hs_session_open_core(b->path, &opts, &s);
	if (err) {
		struct out_buf o = { 0 };
		hs_write_json_error(hs_error_code(err), hs_error_message(err), "summary", out_buf_write, &o);
		out_check_json("open", &o, true);
		free(o.p);
		hs_error_destroy(err);
	} else {
		static const char *const simple[][2] = {
			{ "summary" }, { "arenas" }, { "histogram" }, { "leaks" }, { "goroutines" },
			{ "pools" }, { "owners" }, { "report" },
		};
		for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
			out_run(s, simple[i], 1, NULL);
		const char *gl[] = { "goroutines", "--list", NULL };
		out_run(s, gl, 2, NULL);
		const char *ex[] = { "export", "--format", "folded", NULL };
		out_run(s, ex, 3, NULL);

		char name[256], addr[32];
		struct out_buf maps = { 0 }, top = { 0 };
		const char *maps_argv[] = { "maps", NULL };
		out_run(s, maps_argv, 1, &maps);
		first_value(&maps, "\"address\": ", addr, sizeof(addr));
		first_value(&maps, "\"anchor\": \"", name, sizeof(name));
		if (addr[0]) {
			char hex[32];
			snprintf(hex, sizeof(hex), "0x%" PRIx64, (uint64_t)strtoull(addr, NULL, 10));
			const char *m1[] = { "map", hex, NULL };
			out_run(s, m1, 2, NULL);
		}
		if (name[0]) {
			const char *m2[] = { "map", name, NULL };
			out_run(s, m2, 2, NULL);
		}
		const char *top_argv[] = { "top", NULL };
		out_run(s, top_argv, 1, &top);
		first_value(&top, "\"address\": ", addr, sizeof(addr));
		if (addr[0]) {
			char hex[32];
			snprintf(hex, sizeof(hex), "0x%" PRIx64, (uint64_t)strtoull(addr, NULL, 10));
			static const char *const with_addr[] = { "show", "chain", "refs" };
			for (size_t i = 0; i < 3; i++) {
				const char *argv[] = { with_addr[i], hex, NULL };
				out_run(s, argv, 2, NULL);
			}
		}
		free(maps.p);
		free(top.p);
		hs_session_destroy(s);
	}
	// Put the base back, last patch first (patches may overlap).
	while (np-- > 0)
		if (pwrite(b->fd, patches[np].old, patches[np].len, patches[np].off) != patches[np].len)
			abort();
	return 0;
}
