/* jemalloc_heap.c - a jemalloc 5.3 heap with known facts, for the jemalloc walker.
 *
 * One source, built several ways by cores/make-jemalloc-cores.sh (see
 * cores/jemalloc.mk): linked with Debian's libjemalloc.a (static, je_ symbols),
 * the same binary stripped, linked with the stripped libjemalloc.so.2, and a
 * plain program run with LD_PRELOAD=libjemalloc.so.2.  JE_VARIANT names the way.
 *
 * Four threads (main + 3 workers, each on its own arena) build their heaps in
 * three phases separated by barriers, so that no allocation happens after any
 * free (a freed region is never handed out again before the core is taken):
 *   1. allocate: small classes 8..14336, tcache-able large (16 KiB..32 KiB),
 *      large (40 KiB..1 MiB) and huge (>= opt.oversize_threshold, 8 MiB: the
 *      huge arena) objects; a few leaked clusters and a few glibc objects
 *      (__libc_malloc, some freed again) in the main thread.
 *   2. free every other small object, then thread.tcache.flush: those regions
 *      go back to their slabs ("slab"), or with their slab to the arena when the
 *      flush emptied it ("extent").
 *   3. free a few objects of each class again, which stay in the thread's tcache
 *      ("tcache"); larger ones go straight to the arena ("extent").  Worker 1
 *      also frees objects the main thread allocated (remote frees: its tcache).
 * Then the main thread takes the statistics (mallctl, then malloc_stats_print
 * with a write callback into a static buffer), writes the truth to argv[1] and
 * calls dump_here(), where the core is taken (gdb), or abort()s when argv[2] is
 * "abort" (kernel core).
 *
 * Nothing here allocates after phase 1 except malloc_stats_print's own 64 KiB
 * buffer (freed again before dump_here; recorded as "stats_print_buffer").
 * Truth records keep addresses XOR TRUTH_MASK, so that they never look like
 * pointers to a conservative scan (leaked objects must stay unreachable).
 *
 * Truth JSON: {"fixture","variant","pid","version","threads":[{tid,arena}],
 *   "live":[{address,size,arena,thread}], "freed":[{address,size,arena,thread,
 *   expect}] (expect: "tcache", "extent", or "slab|extent"),
 *   "leaked":[{address,size,unreferenced}], "glibc_live":[{address,size}],
 *   "glibc_freed":[{address,size}] (glibc's own heap, through __libc_malloc:
 *   the process uses both allocators), "mallctl":{allocated,active,
 *   metadata,resident,mapped,retained,tcache_bytes}, "stats_print_buffer",
 *   "malloc_stats": the document malloc_stats_print("J...") wrote}.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef JE_VARIANT
#define JE_VARIANT "unknown"
#endif

/* Weak: the LD_PRELOAD variant is linked without jemalloc; ld.so binds these
 * to the preloaded library at start-up. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
	__attribute__((weak));
extern void malloc_stats_print(void (*write_cb)(void *, const char *), void *opaque,
			       const char *opts) __attribute__((weak));

#define NTHREADS 4
#define MAX_REC 8192
#define TRUTH_MASK ((uintptr_t)0xa5a5a5a5a5a5a5a5ull)

struct rec {
	uintptr_t enc;              /* address ^ TRUTH_MASK */
	size_t size;
	int arena, thread;
	const char *expect;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec live[MAX_REC], freed[MAX_REC], leaked[64];
static size_t nlive, nfreed, nleaked;
static struct { int tid; unsigned arena; } threads[NTHREADS];
/* Live objects are reachable from here (a root), like a program's globals. */
static void *anchors[MAX_REC];
static size_t nanchors;
/* glibc's own malloc, called directly: the process has both heaps in use. */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);
static const size_t glibc_sizes[] = { 24, 100, 1000, 5000, 200000 };
#define NGLIBC (sizeof(glibc_sizes) / sizeof(glibc_sizes[0]))
static void *glibc_kept[NGLIBC];
static struct { uintptr_t enc; size_t size; } glibc_live[NGLIBC], glibc_freed[2];
/* Objects the main thread allocates and worker 1 frees (remote frees). */
static void *remote[8];
static pthread_barrier_t allocated_all, freed_all;

static char out[1 << 20];
static size_t outlen;
static char stats[1 << 18];
static size_t statslen;

static const size_t small_sizes[] = {
	8, 16, 32, 48, 64, 80, 100, 128, 160, 192, 256, 320, 448, 512, 640, 1000,
	1280, 2048, 3000, 4096, 5120, 8192, 10240, 14336,
};
static const size_t tcache_large_sizes[] = { 16384, 20000, 28000, 32768 };
static const size_t large_sizes[] = { 40000, 100000, 1 << 20 };
static const size_t huge_size = 9 << 20;

#define NSMALL (sizeof(small_sizes) / sizeof(small_sizes[0]))
#define SLAB_PAIRS 8      /* per small class: 8 kept, 8 freed in phase 2 */
#define TCACHE_FREES 3    /* per small class: 3 kept, 3 freed in phase 3 */

__attribute__((noinline, used)) void dump_here(void)
{
	__asm__ volatile("" ::: "memory");
}

static void die(const char *msg)
{
	static const char pre[] = "jemalloc fixture: ";
	(void)!write(2, pre, sizeof(pre) - 1);
	(void)!write(2, msg, strlen(msg));
	(void)!write(2, "\n", 1);
	_exit(99);
}

static unsigned arena_of(void *p)
{
	unsigned ind = 0;
	size_t sz = sizeof(ind);
	if (mallctl("arenas.lookup", &ind, &sz, &p, sizeof(p)))
		die("arenas.lookup failed");
	return ind;
}

static struct rec *add(struct rec *v, size_t *n, size_t cap, void *p, int thread)
{
	if (*n >= cap)
		die("too many truth records");
	struct rec *r = &v[(*n)++];
	r->enc = (uintptr_t)p ^ TRUTH_MASK;
	r->size = malloc_usable_size(p);
	r->arena = (int)arena_of(p);
	r->thread = thread;
	r->expect = NULL;
	return r;
}

/* Allocate and fill (stale bytes must not look like pointers). */
static void *alloc(size_t size)
{
	char *p = malloc(size);
	if (!p)
		die("malloc failed");
	memset(p, 0x11, size < (256u << 10) ? size : (256u << 10));
	return p;
}

static void keep(void *p, int thread)
{
	pthread_mutex_lock(&lock);
	add(live, &nlive, MAX_REC, p, thread);
	if (nanchors >= MAX_REC)
		die("too many anchors");
	anchors[nanchors++] = p;
	pthread_mutex_unlock(&lock);
}

static void release(void *p, int thread, const char *expect)
{
	pthread_mutex_lock(&lock);
	add(freed, &nfreed, MAX_REC, p, thread)->expect = expect;
	pthread_mutex_unlock(&lock);
	free(p);
}

/* Leaked clusters: a chain head -> child -> grandchild (only the head is
 * unreferenced), a large object, and a two-object cycle (both leaked, neither
 * unreferenced).  Pointers to them survive only XOR-ed in the truth. */
static void leak_one(void *p, int unreferenced)
{
	pthread_mutex_lock(&lock);
	add(leaked, &nleaked, 64, p, 0)->expect = unreferenced ? "unreferenced" : "leaked";
	pthread_mutex_unlock(&lock);
}

/* glibc's usable size from its chunk header (size | flags; IS_MMAPPED = 2). */
static size_t glibc_usable(const void *p)
{
	uintptr_t w = ((const uintptr_t *)p)[-1];
	return (w & ~(uintptr_t)7) - ((w & 2) ? 16 : 8);
}

static void glibc_heap(void)
{
	for (size_t i = 0; i < NGLIBC; i++) {
		glibc_kept[i] = __libc_malloc(glibc_sizes[i]);
		if (!glibc_kept[i])
			die("__libc_malloc failed");
		memset(glibc_kept[i], 0x22, glibc_sizes[i]);
		glibc_live[i].enc = (uintptr_t)glibc_kept[i] ^ TRUTH_MASK;
		glibc_live[i].size = glibc_usable(glibc_kept[i]);
	}
	for (int i = 0; i < 2; i++) {
		void *p = __libc_malloc(i ? 40 : 24);
		if (!p)
			die("__libc_malloc failed");
		glibc_freed[i].enc = (uintptr_t)p ^ TRUTH_MASK;
		glibc_freed[i].size = glibc_usable(p);
		__libc_free(p);
	}
}

__attribute__((noinline)) static void make_leaks(void)
{
	void **head = alloc(64), **child = alloc(200), **grandchild = alloc(4000);
	head[0] = child;
	child[0] = grandchild;
	leak_one(head, 1);
	leak_one(child, 0);
	leak_one(grandchild, 0);
	leak_one(alloc(100000), 1);
	void **a = alloc(48), **b = alloc(48);
	a[0] = b;
	b[0] = a;
	leak_one(a, 0);
	leak_one(b, 0);
}

/* Overwrite the stack below us, where make_leaks() left its locals. */
__attribute__((noinline)) static void scrub_stack(void)
{
	volatile char buf[16384];
	memset((char *)buf, 0, sizeof(buf));
}

struct plan {
	void *slab_kept[NSMALL][SLAB_PAIRS], *slab_freed[NSMALL][SLAB_PAIRS];
	void *tc_kept[NSMALL][TCACHE_FREES], *tc_freed[NSMALL][TCACHE_FREES];
	void *ltc[4][4];           /* tcache-able large: [0..1] kept, [2..3] freed */
	void *large[3][3];         /* [0..1] kept, [2] freed */
	void *huge[2];             /* [0] kept, [1] freed (or NULL) */
};

static void phase_allocate(struct plan *pl, int t)
{
	for (size_t c = 0; c < NSMALL; c++) {
		for (int i = 0; i < SLAB_PAIRS; i++) {
			pl->slab_kept[c][i] = alloc(small_sizes[c]);
			pl->slab_freed[c][i] = alloc(small_sizes[c]);
		}
		for (int i = 0; i < TCACHE_FREES; i++) {
			pl->tc_kept[c][i] = alloc(small_sizes[c]);
			pl->tc_freed[c][i] = alloc(small_sizes[c]);
		}
	}
	for (int c = 0; c < 4; c++)
		for (int i = 0; i < 4; i++)
			pl->ltc[c][i] = alloc(tcache_large_sizes[c]);
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < 3; i++)
			pl->large[c][i] = alloc(large_sizes[c]);
	pl->huge[0] = pl->huge[1] = NULL;
	if (t <= 1)
		pl->huge[0] = alloc(huge_size);
	if (t == 0)
		pl->huge[1] = alloc(huge_size);
	for (size_t c = 0; c < NSMALL; c++) {
		for (int i = 0; i < SLAB_PAIRS; i++)
			keep(pl->slab_kept[c][i], t);
		for (int i = 0; i < TCACHE_FREES; i++)
			keep(pl->tc_kept[c][i], t);
	}
	for (int c = 0; c < 4; c++)
		for (int i = 0; i < 2; i++)
			keep(pl->ltc[c][i], t);
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < 2; i++)
			keep(pl->large[c][i], t);
	if (pl->huge[0])
		keep(pl->huge[0], t);
}

static void phase_free_to_slabs(struct plan *pl, int t)
{
	for (size_t c = 0; c < NSMALL; c++)
		for (int i = 0; i < SLAB_PAIRS; i++)
			release(pl->slab_freed[c][i], t, "slab|extent");
	if (mallctl("thread.tcache.flush", NULL, NULL, NULL, 0))
		die("thread.tcache.flush failed");
}

static void phase_free_to_tcache(struct plan *pl, int t)
{
	for (size_t c = 0; c < NSMALL; c++)
		for (int i = 0; i < TCACHE_FREES; i++)
			release(pl->tc_freed[c][i], t, "tcache");
	for (int c = 0; c < 4; c++)
		for (int i = 2; i < 4; i++)
			release(pl->ltc[c][i], t, "tcache");
	for (int c = 0; c < 3; c++)
		release(pl->large[c][2], t, "extent");
	if (pl->huge[1])
		release(pl->huge[1], t, "extent");
	if (t == 1)
		for (int i = 0; i < 8; i++)
			release(remote[i], t, "tcache");
}

static void thread_start(int t)
{
	threads[t].tid = (int)gettid();
	/* The first allocation binds the thread to its arena. */
	void *first = alloc(24);
	threads[t].arena = arena_of(first);
	keep(first, t);
}

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	static struct plan plans[NTHREADS];
	struct plan *pl = &plans[t];
	thread_start(t);
	phase_allocate(pl, t);
	pthread_barrier_wait(&allocated_all);
	phase_free_to_slabs(pl, t);
	phase_free_to_tcache(pl, t);
	pthread_barrier_wait(&freed_all);
	/* Stay alive (with a tcache in TLS) until the process ends. */
	for (;;)
		pause();
	return NULL;
}

static void cat(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void cat(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + outlen, sizeof(out) - outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(out) - outlen)
		die("truth document too large");
	outlen += (size_t)n;
}

static void recs(const char *key, const struct rec *v, size_t n, const char *strkey)
{
	cat(",\n\"%s\":[", key);
	for (size_t i = 0; i < n; i++) {
		cat("%s\n {\"address\":%lu,\"size\":%zu,\"arena\":%d,\"thread\":%d", i ? "," : "",
		    (unsigned long)(v[i].enc ^ TRUTH_MASK), v[i].size, v[i].arena, v[i].thread);
		if (strkey)
			cat(",\"%s\":\"%s\"", strkey, v[i].expect);
		cat("}");
	}
	cat("]");
}

static void stats_write(void *opaque, const char *s)
{
	(void)opaque;
	size_t n = strlen(s);
	if (statslen + n >= sizeof(stats))
		die("malloc_stats_print output too large");
	memcpy(stats + statslen, s, n);
	statslen += n;
	stats[statslen] = 0;
}

static size_t ctl_size(const char *name)
{
	size_t v = 0, sz = sizeof(v);
	if (mallctl(name, &v, &sz, NULL, 0))
		die(name);
	return v;
}

static void write_truth(const char *path, const char *fixture)
{
	const char *version = NULL;
	size_t sz = sizeof(version);
	uint64_t epoch = 1;
	size_t esz = sizeof(epoch);
	if (mallctl("version", &version, &sz, NULL, 0) ||
	    mallctl("epoch", &epoch, &esz, &epoch, sizeof(epoch)))
		die("mallctl version/epoch failed");
	size_t allocated = ctl_size("stats.allocated"), active = ctl_size("stats.active");
	size_t metadata = ctl_size("stats.metadata"), resident = ctl_size("stats.resident");
	size_t mapped = ctl_size("stats.mapped"), retained = ctl_size("stats.retained");
	char name[64];
	snprintf(name, sizeof(name), "stats.arenas.%d.tcache_bytes", 4096); /* MALLCTL_ARENAS_ALL */
	size_t tcache_bytes = ctl_size(name);
	/* General info, merged arena stats; no per-arena, bin, large, mutex or
	 * extent tables.  It allocates (and frees) its own 64 KiB buffer. */
	malloc_stats_print(stats_write, NULL, "Jablxeh");

	cat("{\"fixture\":\"%s\",\n\"variant\":\"%s\",\n\"pid\":%d,\n\"version\":\"%s\",\n\"threads\":[",
	    fixture, JE_VARIANT, (int)getpid(), version);
	for (int t = 0; t < NTHREADS; t++)
		cat("%s\n {\"tid\":%d,\"arena\":%u}", t ? "," : "", threads[t].tid, threads[t].arena);
	cat("]");
	recs("live", live, nlive, NULL);
	recs("freed", freed, nfreed, "expect");
	cat(",\n\"leaked\":[");
	for (size_t i = 0; i < nleaked; i++)
		cat("%s\n {\"address\":%lu,\"size\":%zu,\"unreferenced\":%s}", i ? "," : "",
		    (unsigned long)(leaked[i].enc ^ TRUTH_MASK), leaked[i].size,
		    strcmp(leaked[i].expect, "unreferenced") ? "false" : "true");
	cat("],\n\"glibc_live\":[");
	for (size_t i = 0; i < NGLIBC; i++)
		cat("%s{\"address\":%lu,\"size\":%zu}", i ? "," : "",
		    (unsigned long)(glibc_live[i].enc ^ TRUTH_MASK), glibc_live[i].size);
	cat("],\n\"glibc_freed\":[");
	for (size_t i = 0; i < 2; i++)
		cat("%s{\"address\":%lu,\"size\":%zu}", i ? "," : "",
		    (unsigned long)(glibc_freed[i].enc ^ TRUTH_MASK), glibc_freed[i].size);
	cat("],\n\"mallctl\":{\"allocated\":%zu,\"active\":%zu,\"metadata\":%zu,\"resident\":%zu,"
	    "\"mapped\":%zu,\"retained\":%zu,\"tcache_bytes\":%zu},\n\"stats_print_buffer\":65536,\n"
	    "\"malloc_stats\":%s}\n",
	    allocated, active, metadata, resident, mapped, retained, tcache_bytes,
	    statslen ? stats : "null");

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("cannot create the truth file");
	for (size_t off = 0; off < outlen;) {
		ssize_t w = write(fd, out + off, outlen - off);
		if (w <= 0)
			die("cannot write the truth file");
		off += (size_t)w;
	}
	close(fd);
}

static void discard(void *opaque, const char *s)
{
	(void)opaque;
	(void)s;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: jemalloc_heap TRUTH.json [abort|wait]");
	if (!mallctl || !malloc_stats_print)
		die("jemalloc is not loaded (LD_PRELOAD=libjemalloc.so.2 for the preload variant)");
	const char *fixture = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	// Warm up the statistics once: their first use allocates (jemalloc
	// 5.2.1: one 32-byte object), which must not take a freed object out of
	// a tcache when write_truth() reads them at the end.
	uint64_t epoch = 1;
	size_t esz = sizeof(epoch);
	if (mallctl("epoch", &epoch, &esz, &epoch, sizeof(epoch)))
		die("mallctl epoch failed");
	malloc_stats_print(discard, NULL, "J");
	static struct plan main_plan;
	pthread_barrier_init(&allocated_all, NULL, NTHREADS);
	pthread_barrier_init(&freed_all, NULL, NTHREADS);
	thread_start(0);
	for (int i = 0; i < 8; i++)
		remote[i] = alloc(i < 4 ? 96 : 640);
	pthread_t tids[NTHREADS];
	for (int t = 1; t < NTHREADS; t++)
		if (pthread_create(&tids[t], NULL, worker, (void *)(intptr_t)t))
			die("pthread_create failed");
	phase_allocate(&main_plan, 0);
	glibc_heap();
	make_leaks();
	scrub_stack();
	pthread_barrier_wait(&allocated_all);
	phase_free_to_slabs(&main_plan, 0);
	phase_free_to_tcache(&main_plan, 0);
	pthread_barrier_wait(&freed_all);
	memset(remote, 0, sizeof(remote));
	write_truth(argv[1], fixture);
	dump_here();
	if (argc > 2 && strcmp(argv[2], "abort") == 0)
		abort();
	// "wait": stay as dumped, for live captures (tests/integration/test_capture.py).
	if (argc > 2 && strcmp(argv[2], "wait") == 0) {
		if (write(1, "ready\n", 6) != 6)
			_exit(1);
		for (;;)
			pause();
	}
	return 0;
}
