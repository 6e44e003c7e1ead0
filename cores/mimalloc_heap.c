/* mimalloc_heap.c - a mimalloc 2.0.9 heap with known facts, for the
 * mimalloc walker.
 *
 * Built by cores/make-mimalloc-cores.sh: linked with Debian's stripped
 * libmimalloc.so.2 (which replaces malloc for the whole process), and the
 * same executable stripped.  MI_VARIANT names the way.
 *
 * Four threads (main + 3 workers) build their heaps in phases separated by
 * barriers, so that no allocation happens after any free (a freed block is
 * never handed out again before the core is taken):
 *   1. allocate blocks of many sizes (8 B .. 256 KiB: small and medium pages),
 *      large ones (a page of one block) and a huge one (a segment of its
 *      own); the main thread also leaks a few clusters.
 *   2. free every other block; worker 1 also frees blocks the main thread
 *      allocated (remote frees: the page's thread_free list or the heap's
 *      delayed list), worker 2 frees 3000 small blocks of one size, worker 3
 *      then exits (its segments are abandoned).
 * Then the main thread writes the truth to argv[1] with write(2) and calls
 * dump_here(), where the core is taken (gdb), or abort()s when argv[2] is
 * "abort" (kernel core), or waits to be killed when it is "wait" (--pid).
 * Truth records keep addresses XOR TRUTH_MASK, so that they never look like
 * pointers to a conservative scan.
 *
 * Truth JSON: {"fixture","variant","pid","version","threads":[tid],
 *   "live":[{address,size,thread}], "freed":[{address,size,thread}],
 *   "leaked":[{address,size,unreferenced}]}
 * sizes are mi_usable_size() (malloc_usable_size), taken while live.
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
#include <sys/syscall.h>
#include <unistd.h>

#include <mimalloc.h>

#ifndef MI_VARIANT
#define MI_VARIANT "unknown"
#endif

#define NTHREADS 4
#define MAX_REC 16384
#define TRUTH_MASK ((uintptr_t)0xa5a5a5a5a5a5a5a5ull)

struct rec {
	uintptr_t enc;              /* address ^ TRUTH_MASK */
	size_t size;
	int thread;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec live[MAX_REC], freed[MAX_REC], leaked[64];
static size_t nlive, nfreed, nleaked;
static int tids[NTHREADS];
static void *anchors[MAX_REC];     /* live objects are reachable from here */
static size_t nanchors;
static void *remote[16];           /* main allocates, worker 1 frees */
static pthread_barrier_t allocated_all, freed_all;

static char out[1 << 21];
static size_t outlen;

static const size_t sizes[] = {
	8, 16, 24, 32, 48, 64, 80, 100, 128, 200, 256, 384, 512, 1000, 1024, 2048,
	3000, 4096, 8192, 10000, 20000, 32768, 65536, 100000, 200000, 262144,
};
static const size_t large_sizes[] = { 300000, 1 << 20, 3 << 20, 20 << 20 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
#define NLARGE (sizeof(large_sizes) / sizeof(large_sizes[0]))
#define PAIRS 6
#define OVERFLOW 3000

__attribute__((noinline, used)) void dump_here(void)
{
	__asm__ volatile("" ::: "memory");
}

static void die(const char *msg)
{
	static const char pre[] = "mimalloc fixture: ";
	(void)!write(2, pre, sizeof(pre) - 1);
	(void)!write(2, msg, strlen(msg));
	(void)!write(2, "\n", 1);
	_exit(99);
}

static void add(struct rec *v, size_t *n, size_t cap, void *p, int thread)
{
	if (*n >= cap)
		die("too many truth records");
	struct rec *r = &v[(*n)++];
	r->enc = (uintptr_t)p ^ TRUTH_MASK;
	r->size = malloc_usable_size(p);
	r->thread = thread;
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

static void release(void *p, int thread)
{
	pthread_mutex_lock(&lock);
	add(freed, &nfreed, MAX_REC, p, thread);
	pthread_mutex_unlock(&lock);
	free(p);
}

static void leak_one(void *p, int unreferenced)
{
	pthread_mutex_lock(&lock);
	add(leaked, &nleaked, 64, p, unreferenced);
	pthread_mutex_unlock(&lock);
}

/* Leaked clusters: head -> child -> grandchild (only the head unreferenced),
 * a large object, and a two-object cycle (leaked, neither unreferenced). */
__attribute__((noinline)) static void make_leaks(void)
{
	void **head = alloc(64), **child = alloc(200), **grandchild = alloc(4000);
	head[0] = child;
	child[0] = grandchild;
	leak_one(head, 1);
	leak_one(child, 0);
	leak_one(grandchild, 0);
	leak_one(alloc(400000), 1);
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
	void *kept[NSIZES][PAIRS], *gone[NSIZES][PAIRS];
	void *lkept[NLARGE], *lgone[NLARGE];
	void *many[OVERFLOW];
};

static struct plan plans[NTHREADS];

static void *run(void *arg)
{
	int t = (int)(intptr_t)arg;
	struct plan *pl = &plans[t];
	tids[t] = (int)syscall(SYS_gettid);
	for (size_t c = 0; c < NSIZES; c++)
		for (int i = 0; i < PAIRS; i++) {
			pl->kept[c][i] = alloc(sizes[c] + (size_t)t);
			pl->gone[c][i] = alloc(sizes[c] + (size_t)t);
		}
	for (size_t c = 0; c < NLARGE; c++) {
		pl->lkept[c] = alloc(large_sizes[c]);
		pl->lgone[c] = alloc(large_sizes[c]);
	}
	if (t == 2 || t == 3)
		for (int i = 0; i < OVERFLOW; i++)
			pl->many[i] = alloc(64);
	if (t == 0) {
		for (int i = 0; i < 16; i++)
			remote[i] = alloc(96);
		make_leaks();
		scrub_stack();
	}
	for (size_t c = 0; c < NSIZES; c++)
		for (int i = 0; i < PAIRS; i++)
			keep(pl->kept[c][i], t);
	for (size_t c = 0; c < NLARGE; c++)
		keep(pl->lkept[c], t);
	pthread_barrier_wait(&allocated_all);

	for (size_t c = 0; c < NSIZES; c++)
		for (int i = 0; i < PAIRS; i++)
			release(pl->gone[c][i], t);
	for (size_t c = 0; c < NLARGE; c++)
		release(pl->lgone[c], t);
	if (t == 1)
		for (int i = 0; i < 16; i++)
			release(remote[i], t);
	if (t == 2 || t == 3)
		for (int i = 0; i < OVERFLOW; i++)
			release(pl->many[i], t);
	if (t == 3)
		return NULL;
	pthread_barrier_wait(&freed_all);
	// Workers 1 and 2 stay, with their heaps, until the end.
	while (t != 0)
		pause();
	return NULL;
}

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + outlen, sizeof(out) - outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(out) - outlen)
		die("truth buffer full");
	outlen += (size_t)n;
}

static void emit_recs(const char *name, const struct rec *v, size_t n, const char *third)
{
	emit("\"%s\":[", name);
	for (size_t i = 0; i < n; i++)
		emit("%s{\"address\":%lu,\"size\":%zu,\"%s\":%d}", i ? "," : "",
		     (unsigned long)(v[i].enc ^ TRUTH_MASK), v[i].size, third, v[i].thread);
	emit("],");
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: mimalloc_heap TRUTH.json [abort|wait]");
	pthread_t th[NTHREADS];
	pthread_barrier_init(&allocated_all, NULL, NTHREADS);
	pthread_barrier_init(&freed_all, NULL, NTHREADS - 1);
	for (int t = 1; t < NTHREADS; t++)
		if (pthread_create(&th[t], NULL, run, (void *)(intptr_t)t))
			die("pthread_create failed");
	run((void *)0);
	// Worker 3 has exited: its segments are abandoned.
	pthread_join(th[3], NULL);

	emit("{\"fixture\":\"mimalloc_heap\",\"variant\":\"%s\",\"pid\":%d,\"version\":%d,\"threads\":[",
	     MI_VARIANT, (int)getpid(), mi_version());
	for (int t = 0; t < NTHREADS; t++)
		emit("%s%d", t ? "," : "", tids[t]);
	emit("],");
	emit_recs("live", live, nlive, "thread");
	emit_recs("freed", freed, nfreed, "thread");
	emit_recs("leaked", leaked, nleaked, "unreferenced");
	outlen--;   // the last record list's ','
	emit("}\n");
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, out, outlen) != (ssize_t)outlen || close(fd))
		die("cannot write the truth");
	dump_here();
	if (argc > 2 && !strcmp(argv[2], "abort"))
		abort();
	// "wait": stay, heap unchanged, for --pid (the test kills us).
	while (argc > 2 && !strcmp(argv[2], "wait"))
		pause();
	// Workers 1 and 2 still wait; the process ends here.
	_exit(0);
}
