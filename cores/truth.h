/* truth.h - ground truth for fixture programs, written without touching the heap.
 *
 * A fixture builds a heap with known facts, records them here, calls
 * truth_write(argv[1]) and then dump_here(), where cores/make-cores.sh takes the
 * core.  Everything here lives in static storage and is written with snprintf()
 * into static buffers and write(2): no stdio FILE, no malloc, so recording the
 * truth never changes the heap it describes.
 *
 * Invariants: records are kept in static arrays (bounded; overflowing one aborts
 * the fixture before any core is taken); all recording functions may be called
 * from any thread (one mutex); truth_write() calls mallinfo2(), so a corruption
 * fixture must write its truth before it corrupts anything (mallinfo2 walks the
 * fastbins and would loop on a cycle).
 *
 * The JSON written (addresses and sizes as integers):
 *   {"fixture", "pid", "threads":[{"tid","stack_local","stack_mapping":[lo,hi]}],
 *    "live":[{"address","size","arena"}], "freed":[{"address","size","expect","arena"}],
 *    "internal":[{"address","size","what","arena"}], "meta":[{"address","size","what"}],
 *    "mallinfo2":{...}, "mmapped":[address...], "arenas":N,
 *    "corrupt":[{"address","what","accept":[[lo,hi]...],"involves":[address...]}],
 *    "notes":[string...]}
 * "arena" is 0 for main_arena, the malloc_state address (heap_info.ar_ptr) for a
 * thread arena, and -1 for an mmapped chunk.  "size" is malloc_usable_size() (for
 * a freed pointer: just before the free).  An "accept" range is where a
 * diagnostic about that corruption may point; "involves" lists truth addresses
 * whose own state the corruption makes uncertain.
 */
#ifndef CORES_TRUTH_H
#define CORES_TRUTH_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* glibc before 2.33 (Debian 11's 2.31: the version matrix, make-matrix-cores.sh)
 * has mallinfo() only: the same fields, as int (the fixtures' heaps are small). */
#if defined(__GLIBC__) && !__GLIBC_PREREQ(2, 33)
struct truth_mallinfo2 {
	size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};
static inline struct truth_mallinfo2 truth_mallinfo2(void)
{
	struct mallinfo m = mallinfo();
	return (struct truth_mallinfo2){ (size_t)m.arena, (size_t)m.ordblks, (size_t)m.smblks, (size_t)m.hblks,
				   (size_t)m.hblkhd, (size_t)m.usmblks, (size_t)m.fsmblks, (size_t)m.uordblks,
				   (size_t)m.fordblks, (size_t)m.keepcost };
}
#define mallinfo2 truth_mallinfo2
#endif

/* glibc x86-64 facts the fixtures rely on (checked against gdb in cores/validate.py). */
#define TRUTH_HEAP_MAX ((uintptr_t)64 << 20)    /* HEAP_MAX_SIZE: 2 * DEFAULT_MMAP_THRESHOLD_MAX */
#define TRUTH_SIZE_BITS ((uintptr_t)7)
#define TRUTH_IS_MMAPPED ((uintptr_t)2)
#define TRUTH_NON_MAIN ((uintptr_t)4)

/* Not every fixture uses every helper. */
#define TRUTH_FN static __attribute__((unused))

#define TRUTH_MAX_REC 4096
#define TRUTH_MAX_THREADS 16
#define TRUTH_MAX_CORRUPT 8
#define TRUTH_MAX_NOTES 16

struct truth_rec {
	uintptr_t address;
	size_t size;
	intptr_t arena;
	char what[64];          /* expect / what */
};

struct truth_thread {
	int tid;
	uintptr_t stack_local, lo, hi;
};

struct truth_corrupt {
	uintptr_t address;
	char what[96];
	uintptr_t accept[4][2];
	int naccept;
	uintptr_t involves[8];
	int ninvolves;
};

static struct {
	pthread_mutex_t lock;
	const char *fixture;
	struct truth_rec live[TRUTH_MAX_REC], freed[TRUTH_MAX_REC];
	struct truth_rec internal[64], meta[64];
	uintptr_t mmapped[64];
	size_t nlive, nfreed, ninternal, nmeta, nmmapped;
	struct truth_thread threads[TRUTH_MAX_THREADS];
	size_t nthreads;
	struct truth_corrupt corrupt[TRUTH_MAX_CORRUPT];
	size_t ncorrupt;
	char notes[TRUTH_MAX_NOTES][160];
	size_t nnotes;
	int arenas;
	char out[1 << 20];      /* the JSON document */
	size_t outlen;
	char maps[1 << 18];     /* /proc/self/maps */
} truth = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The breakpoint make-cores.sh stops at; every fixture calls it once its heap
 * is ready and its truth is written. */
__attribute__((noinline, used)) void dump_here(void)
{
	__asm__ volatile("" ::: "memory");
}

TRUTH_FN void truth_die(const char *msg)
{
	static const char pre[] = "fixture: ";
	(void)!write(2, pre, sizeof(pre) - 1);
	(void)!write(2, msg, strlen(msg));
	(void)!write(2, "\n", 1);
	_exit(99);
}

TRUTH_FN int truth_gettid(void)
{
	return (int)gettid();
}

/* The size word of the chunk whose user pointer is p. */
TRUTH_FN uintptr_t truth_chunk_word(const void *p)
{
	return ((const uintptr_t *)p)[-1];
}

/* 0 for main_arena, the thread arena's address, or -1 for an mmapped chunk. */
TRUTH_FN intptr_t truth_arena_of(const void *p)
{
	uintptr_t w = truth_chunk_word(p);
	if (w & TRUTH_IS_MMAPPED)
		return -1;
	if (!(w & TRUTH_NON_MAIN))
		return 0;
	return (intptr_t)*(const uintptr_t *)((uintptr_t)p & ~(TRUTH_HEAP_MAX - 1));
}

TRUTH_FN void truth_set_name(const char *fixture)
{
	truth.fixture = fixture;
}

TRUTH_FN void truth_set_arenas(int n)
{
	truth.arenas = n;
}

TRUTH_FN struct truth_rec *truth_add(struct truth_rec *v, size_t *n, size_t cap)
{
	if (*n >= cap)
		truth_die("too many truth records");
	return &v[(*n)++];
}

/* A live allocation. */
TRUTH_FN void truth_live(void *p)
{
	pthread_mutex_lock(&truth.lock);
	struct truth_rec *r = truth_add(truth.live, &truth.nlive, TRUTH_MAX_REC);
	r->address = (uintptr_t)p;
	r->size = malloc_usable_size(p);
	r->arena = truth_arena_of(p);
	r->what[0] = 0;
	if (r->arena == -1) {
		if (truth.nmmapped >= 64)
			truth_die("too many mmapped chunks");
		truth.mmapped[truth.nmmapped++] = (uintptr_t)p;
	}
	pthread_mutex_unlock(&truth.lock);
}

/* Record p as freed (with where glibc puts it) and free it. */
TRUTH_FN void truth_free(void *p, const char *expect)
{
	pthread_mutex_lock(&truth.lock);
	struct truth_rec *r = truth_add(truth.freed, &truth.nfreed, TRUTH_MAX_REC);
	r->address = (uintptr_t)p;
	r->size = malloc_usable_size(p);
	r->arena = truth_arena_of(p);
	snprintf(r->what, sizeof(r->what), "%s", expect);
	pthread_mutex_unlock(&truth.lock);
	free(p);
}

/* Change the expected list of an already freed pointer (when a later malloc
 * sorts it out of the unsorted bin). */
TRUTH_FN void truth_expect(void *p, const char *expect)
{
	pthread_mutex_lock(&truth.lock);
	for (size_t i = 0; i < truth.nfreed; i++)
		if (truth.freed[i].address == (uintptr_t)p)
			snprintf(truth.freed[i].what, sizeof(truth.freed[i].what), "%s", expect);
	pthread_mutex_unlock(&truth.lock);
}

TRUTH_FN void truth_recf(struct truth_rec *v, size_t *n, size_t cap, uintptr_t p, size_t size,
		       const char *fmt, va_list ap)
{
	pthread_mutex_lock(&truth.lock);
	struct truth_rec *r = truth_add(v, n, cap);
	r->address = p;
	r->size = size;
	r->arena = truth_arena_of((void *)p);
	vsnprintf(r->what, sizeof(r->what), fmt, ap);
	pthread_mutex_unlock(&truth.lock);
}

/* A libc-internal used chunk (a thread's DTV, a heap's fencepost). */
__attribute__((format(printf, 3, 4)))
TRUTH_FN void truth_internal(uintptr_t p, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	truth_recf(truth.internal, &truth.ninternal, 64, p, size, fmt, ap);
	va_end(ap);
}

/* Allocator metadata in a chunk (a thread's tcache_perthread_struct). */
__attribute__((format(printf, 3, 4)))
TRUTH_FN void truth_meta(uintptr_t p, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	truth_recf(truth.meta, &truth.nmeta, 64, p, size, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2)))
TRUTH_FN void truth_note(const char *fmt, ...)
{
	if (truth.nnotes >= TRUTH_MAX_NOTES)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(truth.notes[truth.nnotes++], sizeof(truth.notes[0]), fmt, ap);
	va_end(ap);
}

TRUTH_FN struct truth_corrupt *truth_corrupt(uintptr_t address, const char *what)
{
	if (truth.ncorrupt >= TRUTH_MAX_CORRUPT)
		truth_die("too many corruption records");
	struct truth_corrupt *c = &truth.corrupt[truth.ncorrupt++];
	c->address = address;
	snprintf(c->what, sizeof(c->what), "%s", what);
	return c;
}

TRUTH_FN void truth_corrupt_accept(struct truth_corrupt *c, uintptr_t lo, uintptr_t hi)
{
	if (c->naccept < 4) {
		c->accept[c->naccept][0] = lo;
		c->accept[c->naccept][1] = hi;
		c->naccept++;
	}
}

TRUTH_FN void truth_corrupt_involves(struct truth_corrupt *c, uintptr_t p)
{
	if (c->ninvolves < 8)
		c->involves[c->ninvolves++] = p;
}

/* Find the /proc/self/maps line containing addr. */
TRUTH_FN int truth_mapping_of(uintptr_t addr, uintptr_t *lo, uintptr_t *hi)
{
	int fd = open("/proc/self/maps", O_RDONLY);
	if (fd < 0)
		return -1;
	size_t len = 0;
	ssize_t r;
	while (len < sizeof(truth.maps) - 1 &&
	       (r = read(fd, truth.maps + len, sizeof(truth.maps) - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	truth.maps[len] = 0;
	for (char *line = truth.maps; *line;) {
		char *end;
		uintptr_t a = strtoull(line, &end, 16);
		uintptr_t b = strtoull(end + 1, &end, 16);
		if (a <= addr && addr < b) {
			*lo = a;
			*hi = b;
			return 0;
		}
		char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	return -1;
}

/* Called by each thread (main included) with the address of one of its locals. */
TRUTH_FN void truth_thread(void *stack_local)
{
	uintptr_t lo = 0, hi = 0;
	pthread_mutex_lock(&truth.lock);
	if (truth.nthreads >= TRUTH_MAX_THREADS)
		truth_die("too many threads");
	if (truth_mapping_of((uintptr_t)stack_local, &lo, &hi))
		truth_die("stack not found in /proc/self/maps");
	struct truth_thread *t = &truth.threads[truth.nthreads++];
	t->tid = truth_gettid();
	t->stack_local = (uintptr_t)stack_local;
	t->lo = lo;
	t->hi = hi;
	pthread_mutex_unlock(&truth.lock);
}

/* The calling (non-main) thread's DTV: tcbhead_t.dtv (at %fs:8) points at
 * dtv[1] of the array allocate_dtv() got from calloc(), i.e. 16 bytes into it.
 * dtv[0].counter holds dtv_length; the chunk holds (dtv_length + 2) entries. */
TRUTH_FN void truth_thread_dtv(int thread_no)
{
	uintptr_t dtv;
	__asm__("mov %%fs:8, %0" : "=r"(dtv));
	uintptr_t p = dtv - 16;
	size_t usable = malloc_usable_size((void *)p);
	size_t want = (((const size_t *)p)[0] + 2) * 16;
	if (usable < want || usable >= want + 32)
		truth_die("the DTV is not where tcbhead_t.dtv says");
	truth_internal(p, usable, "dtv of thread %d", thread_no);
}

/* The calling thread's tcache_perthread_struct, found from the thread's first
 * allocation first: tcache_init() allocates the 0x290 chunk right before it.
 * Call with the pointer the thread's very first malloc() returned. */
TRUTH_FN void truth_thread_tcache(void *first, int thread_no)
{
	uintptr_t p = (uintptr_t)first - 0x290;
	if (malloc_usable_size((void *)p) != 0x288 || (truth_chunk_word((void *)p) & ~TRUTH_SIZE_BITS) != 0x290)
		truth_die("the tcache is not right before the thread's first chunk");
	truth_meta(p, 0x288, "tcache of thread %d", thread_no);
}

/* The chunk header right after the chunk of p (the top chunk when p was the
 * last chunk carved from its heap). */
TRUTH_FN uintptr_t truth_after_chunk(const void *p)
{
	return (uintptr_t)p - 16 + (truth_chunk_word(p) & ~TRUTH_SIZE_BITS);
}

TRUTH_FN void truth_cat(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
TRUTH_FN void truth_cat(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(truth.out + truth.outlen, sizeof(truth.out) - truth.outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(truth.out) - truth.outlen)
		truth_die("truth document too large");
	truth.outlen += (size_t)n;
}

/* Strings in the document are the fixture's own plain ASCII, never quoted. */
TRUTH_FN void truth_recs(const char *key, const struct truth_rec *v, size_t n, const char *strkey)
{
	truth_cat(",\n\"%s\":[", key);
	for (size_t i = 0; i < n; i++) {
		truth_cat("%s\n {\"address\":%lu,\"size\":%lu,\"arena\":%ld", i ? "," : "",
			  (unsigned long)v[i].address, (unsigned long)v[i].size, (long)v[i].arena);
		if (strkey)
			truth_cat(",\"%s\":\"%s\"", strkey, v[i].what);
		truth_cat("}");
	}
	truth_cat("]");
}

/* Write the truth document to path (mallinfo2() taken now). */
/* Write the JSON built with truth_cat() to path, with plain write(2). */
TRUTH_FN void truth_save(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		truth_die("cannot create the truth file");
	for (size_t off = 0; off < truth.outlen;) {
		ssize_t w = write(fd, truth.out + off, truth.outlen - off);
		if (w <= 0)
			truth_die("cannot write the truth file");
		off += (size_t)w;
	}
	close(fd);
}

TRUTH_FN void truth_write(const char *path)
{
	struct mallinfo2 mi = mallinfo2();
	pthread_mutex_lock(&truth.lock);
	truth.outlen = 0;
	truth_cat("{\"fixture\":\"%s\",\n\"pid\":%d,\n\"arenas\":%d,\n\"threads\":[",
		  truth.fixture, (int)getpid(), truth.arenas);
	for (size_t i = 0; i < truth.nthreads; i++) {
		const struct truth_thread *t = &truth.threads[i];
		truth_cat("%s\n {\"tid\":%d,\"stack_local\":%lu,\"stack_mapping\":[%lu,%lu]}",
			  i ? "," : "", t->tid, (unsigned long)t->stack_local,
			  (unsigned long)t->lo, (unsigned long)t->hi);
	}
	truth_cat("]");
	truth_recs("live", truth.live, truth.nlive, NULL);
	truth_recs("freed", truth.freed, truth.nfreed, "expect");
	truth_recs("internal", truth.internal, truth.ninternal, "what");
	truth_recs("meta", truth.meta, truth.nmeta, "what");
	truth_cat(",\n\"mmapped\":[");
	for (size_t i = 0; i < truth.nmmapped; i++)
		truth_cat("%s%lu", i ? "," : "", (unsigned long)truth.mmapped[i]);
	truth_cat("],\n\"mallinfo2\":{\"arena\":%zu,\"ordblks\":%zu,\"smblks\":%zu,\"hblks\":%zu,"
		  "\"hblkhd\":%zu,\"usmblks\":%zu,\"fsmblks\":%zu,\"uordblks\":%zu,"
		  "\"fordblks\":%zu,\"keepcost\":%zu}",
		  mi.arena, mi.ordblks, mi.smblks, mi.hblks, mi.hblkhd, mi.usmblks, mi.fsmblks,
		  mi.uordblks, mi.fordblks, mi.keepcost);
	truth_cat(",\n\"corrupt\":[");
	for (size_t i = 0; i < truth.ncorrupt; i++) {
		const struct truth_corrupt *c = &truth.corrupt[i];
		truth_cat("%s\n {\"address\":%lu,\"what\":\"%s\",\"accept\":[", i ? "," : "",
			  (unsigned long)c->address, c->what);
		for (int j = 0; j < c->naccept; j++)
			truth_cat("%s[%lu,%lu]", j ? "," : "", (unsigned long)c->accept[j][0],
				  (unsigned long)c->accept[j][1]);
		truth_cat("],\"involves\":[");
		for (int j = 0; j < c->ninvolves; j++)
			truth_cat("%s%lu", j ? "," : "", (unsigned long)c->involves[j]);
		truth_cat("]}");
	}
	truth_cat("],\n\"notes\":[");
	for (size_t i = 0; i < truth.nnotes; i++)
		truth_cat("%s\"%s\"", i ? "," : "", truth.notes[i]);
	truth_cat("]}\n");

	truth_save(path);
	pthread_mutex_unlock(&truth.lock);
}

/* After dump_here(): "abort" as argv[2] makes the kernel write a core; "wait"
 * says "ready" on stdout and waits, heap and threads as they are, until killed
 * (live captures: tests/integration/test_capture.py). */
TRUTH_FN void truth_finish(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[2], "abort") == 0)
		abort();
	if (argc > 2 && strcmp(argv[2], "wait") == 0) {
		if (write(1, "ready\n", 6) != 6)
			_exit(1);
		for (;;)
			pause();
	}
}

TRUTH_FN const char *truth_path(int argc, char **argv)
{
	if (argc < 2)
		truth_die("usage: FIXTURE TRUTH.json [abort|wait]");
	return argv[1];
}

#endif
