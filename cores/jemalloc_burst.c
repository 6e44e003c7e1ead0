/* jemalloc_burst.c - a healthy jemalloc heap just after a burst of frees.
 *
 * The heap a redis core shows seconds after keys were deleted: slabs emptied
 * by the thousand, their pages dirty extents whose rtree elements still hold
 * the old slab bit and size class (jemalloc rewrites neither when a slab is
 * freed: only the state), and some of them reused as large allocations whose
 * last page keeps that stale element.  A walker must accept all of it, with
 * no warning and exact counts.  Runs against jemalloc 5.2.x and 5.3.x (only
 * mallctl() is used, weakly bound: the fixture is built with and without
 * jemalloc linked in, and for other Debian releases' libraries).
 *
 *   1. keep: 64 objects of a few classes (small and large), allocated first;
 *   2. burst: 20,000 x 4 KiB (one-page slabs of one region each) and
 *      20,000 x 80 bytes (five-page slabs), all freed again, then the
 *      thread's tcache flushed: every one of those slabs is emptied;
 *   3. reuse: 200 x 16 KiB (a 20 KiB large extent: five pages, the size of a
 *      freed 80-byte slab, so some land exactly on one).
 * Then the truth is written to argv[1] and dump_here() is called, where the
 * core is taken (gdb), or abort() when argv[2] is "abort" (kernel core).
 *
 * Truth JSON: {"fixture","version","pid","live":[{address,size}],
 *   "freed":[{address,size}] (burst pointers not live again),
 *   "mallctl":{"allocated","active"}}.  Addresses are kept XOR TRUTH_MASK until
 *   written (no stale pointer to a freed object stays in the program's memory).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
	__attribute__((weak));

#define NBURST 20000
#define NKEEP 64
#define NREUSE 200
#define TRUTH_MASK ((uintptr_t)0xa5a5a5a5a5a5a5a5ull)

static uintptr_t burst4k[NBURST], burst80[NBURST];
static void *keep[NKEEP], *reuse[NREUSE];
static size_t keep_size[NKEEP];
static char out[4 << 20];
static size_t outlen;

__attribute__((noinline, used)) void dump_here(void)
{
	__asm__ volatile("" ::: "memory");
}

static void die(const char *msg)
{
	(void)!write(2, "jemalloc_burst: ", 16);
	(void)!write(2, msg, strlen(msg));
	(void)!write(2, "\n", 1);
	_exit(99);
}

static void cat(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void cat(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + outlen, sizeof(out) - outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(out) - outlen)
		die("truth buffer full");
	outlen += (size_t)n;
}

static void *alloc(size_t size)
{
	void *p = malloc(size);
	if (!p)
		die("malloc failed");
	memset(p, 0x22, size);
	return p;
}

static size_t ctl_size(const char *name)
{
	size_t v = 0, sz = sizeof(v);
	if (mallctl(name, &v, &sz, NULL, 0))
		die("mallctl failed");
	return v;
}

static int is_live(uintptr_t p)
{
	for (size_t i = 0; i < NKEEP; i++)
		if ((uintptr_t)keep[i] == p)
			return 1;
	for (size_t i = 0; i < NREUSE; i++)
		if ((uintptr_t)reuse[i] == p)
			return 1;
	return 0;
}

static void freed_list(const uintptr_t *v, size_t size, int *first)
{
	for (size_t i = 0; i < NBURST; i++) {
		uintptr_t p = v[i] ^ TRUTH_MASK;
		if (is_live(p))
			continue;
		cat("%s\n{\"address\":%lu,\"size\":%zu}", *first ? "" : ",", (unsigned long)p, size);
		*first = 0;
	}
}

int main(int argc, char **argv)
{
	static const size_t keep_sizes[] = { 24, 100, 640, 3000, 40000, 300000 };
	if (argc < 2)
		die("usage: jemalloc_burst TRUTH.json [abort]");
	if (!mallctl)
		die("jemalloc is not loaded (mallctl missing)");
	for (size_t i = 0; i < NKEEP; i++) {
		keep[i] = alloc(keep_sizes[i % 6]);
		keep_size[i] = malloc_usable_size(keep[i]);
	}
	for (size_t i = 0; i < NBURST; i++) {
		void *a = alloc(4096), *b = alloc(80);
		burst4k[i] = (uintptr_t)a ^ TRUTH_MASK;
		burst80[i] = (uintptr_t)b ^ TRUTH_MASK;
	}
	for (size_t i = 0; i < NBURST; i++) {
		free((void *)(burst4k[i] ^ TRUTH_MASK));
		free((void *)(burst80[i] ^ TRUTH_MASK));
	}
	if (mallctl("thread.tcache.flush", NULL, NULL, NULL, 0))
		die("thread.tcache.flush failed");
	for (size_t i = 0; i < NREUSE; i++)
		reuse[i] = alloc(16384);
	// Leave the tcache empty again: every freed object is in a slab or extent.
	if (mallctl("thread.tcache.flush", NULL, NULL, NULL, 0))
		die("thread.tcache.flush failed");

	const char *version = NULL;
	size_t vsz = sizeof(version);
	uint64_t epoch = 1;
	size_t esz = sizeof(epoch);
	if (mallctl("version", &version, &vsz, NULL, 0) || mallctl("epoch", &epoch, &esz, &epoch, sizeof(epoch)))
		die("mallctl version/epoch failed");
	size_t allocated = ctl_size("stats.allocated"), active = ctl_size("stats.active");
	cat("{\"fixture\":\"jemalloc_burst\",\n\"version\":\"%s\",\n\"pid\":%d,\n\"live\":[", version, (int)getpid());
	for (size_t i = 0; i < NKEEP; i++)
		cat("%s\n{\"address\":%lu,\"size\":%zu}", i ? "," : "", (unsigned long)keep[i], keep_size[i]);
	for (size_t i = 0; i < NREUSE; i++)
		cat(",\n{\"address\":%lu,\"size\":%zu}", (unsigned long)reuse[i], malloc_usable_size(reuse[i]));
	cat("],\n\"freed\":[");
	int first = 1;
	freed_list(burst4k, 4096, &first);
	freed_list(burst80, 80, &first);
	cat("],\n\"mallctl\":{\"allocated\":%zu,\"active\":%zu}}\n", allocated, active);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, out, outlen) != (ssize_t)outlen || close(fd))
		die("cannot write the truth");
	dump_here();
	if (argc > 2 && strcmp(argv[2], "abort") == 0)
		abort();
	return 0;
}
