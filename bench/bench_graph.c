/* bench_graph.c - a realistic heap for `make bench`, with its truth.
 *
 * Usage: bench_graph COUNT TRUTH.json
 *
 * COUNT mallocs of 16..512 bytes (skewed small: 16 + 496 u^3, u uniform) made
 * by 4 threads, so 4 thread arenas whose heaps fill up to their 64 MiB end.
 * Every object's word 0 links it into one of 1,024 global lists (256 per
 * thread); objects of 32 bytes or more also hold 2 or 3 cross pointers (2.6 on
 * average, as the words allow) to earlier live objects of the same thread.
 * 5% of the objects are leaked, in clusters of 1..4: a chain from the cluster's
 * head (nothing points at it), whose members may also point into the live
 * graph.  Every other word is a small integer (never an address), the
 * bookkeeping lives in a mapping that is unmapped before the core is taken,
 * and the threads scrub their stacks and registers: the graph has exactly the
 * edges described, and the truth is exact:
 *   {"allocations", "requested", "usable",
 *    "leaked": {"count","bytes","requested"}, "unreferenced": {"count","bytes"},
 *    "sample": a live object deep in a list (for chain/refs)}
 * (bytes are malloc_usable_size sums).  Stops in dump_here(), where the bench
 * takes a core with gdb.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define THREADS 4
#define HEADS 1024
#define HEADS_PER_THREAD (HEADS / THREADS)

/* What DWARF says the objects are: heapscope types the graph from heads[]
 * (objects under 32 bytes are too small for a struct node and stay unknown). */
struct node {
	struct node *next;
	struct node *edge[3];
};
struct node *heads[HEADS];

struct tstate {
	int no;
	size_t count;
	uint64_t rng;
	void **live;            /* bookkeeping, in a private mapping */
	size_t nlive;
	uint64_t requested, usable, leaked, leaked_req, leaked_usable, unref, unref_usable;
	uintptr_t sample;
};

static pthread_barrier_t built, hold;

__attribute__((noinline)) void dump_here(void) { __asm__ volatile("" ::: "memory"); }

static uint64_t next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static double unit(uint64_t *s)
{
	return (double)(next(s) >> 11) / 9007199254740992.0;
}

static size_t pick_size(uint64_t *s)
{
	double u = unit(s);
	return 16 + (size_t)(496.0 * u * u * u);
}

/* A new object: every word a small integer. */
static void **new_object(struct tstate *t, size_t req)
{
	void **p = malloc(req);
	if (!p)
		abort();
	size_t nw = req / 8;
	for (size_t k = 0; k < nw; k++)
		p[k] = (void *)(uintptr_t)(k + 1);
	t->requested += req;
	t->usable += malloc_usable_size(p);
	return p;
}

static void cross_edges(struct tstate *t, void **p, size_t req)
{
	size_t nw = req / 8;
	if (req < 32 || !t->nlive)
		return;
	size_t k = unit(&t->rng) < 0.6 ? 3 : 2;
	if (k > nw - 1)
		k = nw - 1;
	for (size_t j = 0; j < k; j++)
		p[1 + j] = t->live[next(&t->rng) % t->nlive];
}

__attribute__((noinline)) static void build(struct tstate *t)
{
	size_t made = 0;
	while (made < t->count) {
		if (unit(&t->rng) < 0.05 / 2.425 && made + 1 < t->count) {
			/* a leaked cluster of 1..4 (mean 2.5: 5% of the objects) */
			size_t n = 1 + next(&t->rng) % 4;
			if (n > t->count - made)
				n = t->count - made;
			void **prev = NULL;
			for (size_t j = 0; j < n; j++) {
				size_t req = pick_size(&t->rng);
				void **p = new_object(t, req);
				cross_edges(t, p, req);     /* into the live graph */
				if (prev)
					prev[0] = p;
				else {
					t->unref++;
					t->unref_usable += malloc_usable_size(p);
				}
				t->leaked++;
				t->leaked_req += req;
				t->leaked_usable += malloc_usable_size(p);
				prev = p;
			}
			made += n;
			continue;
		}
		size_t req = pick_size(&t->rng);
		void **p = new_object(t, req);
		size_t h = t->no * HEADS_PER_THREAD + next(&t->rng) % HEADS_PER_THREAD;
		p[0] = heads[h];
		heads[h] = (struct node *)p;
		cross_edges(t, p, req);
		t->live[t->nlive++] = p;
		made++;
	}
	/* A sample: the object at the middle of the first list. */
	size_t depth = 0;
	for (void **q = (void **)heads[t->no * HEADS_PER_THREAD]; q; q = *q)
		depth++;
	void **q = (void **)heads[t->no * HEADS_PER_THREAD];
	for (size_t i = 0; i < depth / 2; i++)
		q = *q;
	t->sample = ~(uintptr_t)q;   /* complemented: no root */
}

/* Overwrite the dead part of the stack where build() ran. */
__attribute__((noinline)) static void scrub_stack(void)
{
	volatile char buf[64 << 10];
	memset((char *)buf, 0, sizeof(buf));
	__asm__ volatile("" ::"r"(buf) : "memory");
}

static void *worker(void *arg)
{
	struct tstate *t = arg;
	build(t);
	scrub_stack();
	__asm__ volatile("xor %%eax, %%eax; xor %%ecx, %%ecx; xor %%edx, %%edx; xor %%esi, %%esi;"
			 "xor %%edi, %%edi; xor %%r8d, %%r8d; xor %%r9d, %%r9d; xor %%r10d, %%r10d;"
			 "xor %%r11d, %%r11d; xor %%ebx, %%ebx; xor %%r12d, %%r12d; xor %%r13d, %%r13d;"
			 "xor %%r14d, %%r14d; xor %%r15d, %%r15d"
			 ::: "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "rbx", "r12",
			 "r13", "r14", "r15", "memory");
	pthread_barrier_wait(&built);
	pthread_barrier_wait(&hold);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_graph COUNT TRUTH.json\n");
		return 2;
	}
	size_t count = strtoull(argv[1], NULL, 0);
	static struct tstate ts[THREADS];
	pthread_t tid[THREADS];
	pthread_barrier_init(&built, NULL, THREADS + 1);
	pthread_barrier_init(&hold, NULL, THREADS + 1);
	for (int i = 0; i < THREADS; i++) {
		ts[i].no = i;
		ts[i].count = count / THREADS + (i < (int)(count % THREADS));
		ts[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
		ts[i].live = mmap(NULL, ts[i].count * sizeof(void *), PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (ts[i].live == MAP_FAILED)
			return 1;
	}
	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&tid[i], NULL, worker, &ts[i]))
			return 1;
	pthread_barrier_wait(&built);
	uint64_t req = 0, usable = 0, lk = 0, lk_req = 0, lk_usable = 0, un = 0, un_usable = 0;
	for (int i = 0; i < THREADS; i++) {
		munmap(ts[i].live, ts[i].count * sizeof(void *));
		req += ts[i].requested;
		usable += ts[i].usable;
		lk += ts[i].leaked;
		lk_req += ts[i].leaked_req;
		lk_usable += ts[i].leaked_usable;
		un += ts[i].unref;
		un_usable += ts[i].unref_usable;
	}
	static char doc[1024];
	int len = snprintf(doc, sizeof(doc),
			   "{\"allocations\": %zu, \"requested\": %llu, \"usable\": %llu,\n"
			   " \"leaked\": {\"count\": %llu, \"bytes\": %llu, \"requested\": %llu},\n"
			   " \"unreferenced\": {\"count\": %llu, \"bytes\": %llu},\n"
			   " \"sample\": %llu}\n",
			   count, (unsigned long long)req, (unsigned long long)usable,
			   (unsigned long long)lk, (unsigned long long)lk_usable, (unsigned long long)lk_req,
			   (unsigned long long)un, (unsigned long long)un_usable,
			   (unsigned long long)~ts[0].sample);
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, doc, (size_t)len) != len || close(fd))
		return 1;
	dump_here();
	if (argc > 3)
		abort();
	pthread_barrier_wait(&hold);
	for (int i = 0; i < THREADS; i++)
		pthread_join(tid[i], NULL);
	return 0;
}
