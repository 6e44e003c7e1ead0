/* heap_ends.c - thread arenas whose 64 MiB heaps are filled to their end.
 *
 * When a thread arena's heap is full, glibc's sysmalloc() starts a new heap
 * and closes the old one where its top chunk was.  What it writes there
 * depends on how many bytes R the old top had left (glibc 2.36 malloc.c,
 * "Setup fencepost and free the old top chunk"), old_size = (R - MINSIZE) & ~15:
 *   R = 48: old_size 16 < MINSIZE, so the whole old top becomes a filler: a
 *           0x20 chunk marked in use WITHOUT the NON_MAIN_ARENA bit (foot 0x20),
 *           then the size-0 end marker.  glibc's mallinfo counts it as used; it
 *           is no allocation (recorded as "internal", heapscope says "meta").
 *   R = 32: old_size 0: a 16-byte fencepost, then the end marker.
 *   R = 64: old_size 32 >= MINSIZE: a 16-byte fencepost and the end marker
 *           after a 0x20 chunk that _int_free() puts in the thread's tcache.
 * 3 thread arenas with 3 full heaps each (and a 4th current one), in 1 MiB
 * chunks (M_MMAP_THRESHOLD is raised so they come from the arena); the last
 * chunk of each heap is sized so that the old top has R bytes left, R taken
 * from ends[][] below (5 fillers in all).  A few chunks are leaked (their
 * address kept only complemented); leaked chunk 1 of each thread holds a
 * pointer to leaked chunk 2, so it is leaked but referenced.  The leak counts
 * go into the truth's notes: "leaked COUNT BYTES", "unreferenced COUNT BYTES".
 * Nothing else points anywhere: chunk contents are the zeros of fresh memory.
 */
#include "truth.h"
#include <semaphore.h>

#define NTHREADS 3
#define NHEAPS 3                /* full heaps per arena */
#define CHUNK ((size_t)1 << 20)
#define NLEAK 3                 /* leaked chunks per thread */
#define KEEP 256                /* chunks per thread: 3 heaps of ~64 */

static const unsigned ends[NTHREADS][NHEAPS] = {
	{ 48, 64, 48 },
	{ 48, 32, 48 },
	{ 64, 48, 32 },
};

static pthread_barrier_t hold;
static sem_t ready;
static void *keep[NTHREADS][KEEP];
static uintptr_t leaked_enc[NTHREADS][NLEAK];   /* ~p: anchors nothing */
static size_t nleaked, leaked_bytes, nunref, unref_bytes;

static void *chunk_of(size_t chunk)
{
	void *p = malloc(chunk - 8);
	if (!p)
		truth_die("malloc failed");
	truth_live(p);
	return p;
}

static uintptr_t heap_end_of(uintptr_t a)
{
	return (a & ~(TRUTH_HEAP_MAX - 1)) + TRUTH_HEAP_MAX;
}

/* Fill heaps until NHEAPS are closed; returns how many chunks keep[] holds. */
__attribute__((noinline)) static size_t fill(int no, void *first)
{
	size_t nkeep = 0;
	int nleak = 0;
	uintptr_t top = truth_after_chunk(first);
	for (int h = 0; h < NHEAPS; h++) {
		unsigned r = ends[no - 1][h];
		for (;;) {
			size_t room = heap_end_of(top) - top;
			size_t chunk = room >= CHUNK + r + 32 ? CHUNK : room - r;
			if (nkeep >= KEEP - 2)
				truth_die("keep[] is too small");
			void *p = chunk_of(chunk);
			if ((uintptr_t)p - 16 != top)
				truth_die("a chunk was not carved from top");
			top = truth_after_chunk(p);
			// The second chunk of every heap leaks (on heaps 0..NLEAK-1).
			if (nkeep % 64 == 1 && nleak < NLEAK && !leaked_enc[no - 1][nleak])
				leaked_enc[no - 1][nleak++] = ~(uintptr_t)p;
			else
				keep[no - 1][nkeep] = p;
			nkeep++;
			if (chunk != CHUNK)
				break;
		}
		if (heap_end_of(top) - top != r)
			truth_die("the old top does not have the planned size");
		uintptr_t old_top = top;
		// This malloc cannot grow the full heap: sysmalloc starts a new one.
		void *p = chunk_of(CHUNK);
		if (heap_end_of((uintptr_t)p) == heap_end_of(old_top))
			truth_die("no new heap");
		keep[no - 1][nkeep++] = p;
		top = truth_after_chunk(p);
		if (r == 48) {
			if (truth_chunk_word((void *)(old_top + 16)) != 0x21)
				truth_die("no filler chunk at the end of the old heap");
			truth_internal(old_top + 16, 24, "filler at the end of heap %d of thread %d", h, no);
			truth.internal[truth.ninternal - 1].arena = truth_arena_of(p);
		} else if (r == 64) {
			// The old top's first 0x20 bytes went to this thread's tcache.
			pthread_mutex_lock(&truth.lock);
			struct truth_rec *f = truth_add(truth.freed, &truth.nfreed, TRUTH_MAX_REC);
			f->address = old_top + 16;
			f->size = 24;
			f->arena = truth_arena_of((void *)f->address);
			snprintf(f->what, sizeof(f->what), "tcache");
			pthread_mutex_unlock(&truth.lock);
		}
	}
	// Leaked chunk 0 points at leaked chunk 1: 1 is leaked but referenced.
	*(uintptr_t *)~leaked_enc[no - 1][0] = ~leaked_enc[no - 1][1];
	pthread_mutex_lock(&truth.lock);
	for (int i = 0; i < nleak; i++) {
		size_t usable = malloc_usable_size((void *)~leaked_enc[no - 1][i]);
		nleaked++;
		leaked_bytes += usable;
		if (i != 1) {
			nunref++;
			unref_bytes += usable;
		}
	}
	pthread_mutex_unlock(&truth.lock);
	return nkeep;
}

/* Overwrite the dead stack where fill() and malloc ran. */
__attribute__((noinline)) static void scrub_stack(void)
{
	volatile char buf[32 << 10];
	memset((char *)buf, 0, sizeof(buf));
	__asm__ volatile("" ::"r"(buf) : "memory");
}

static void *worker(void *arg)
{
	int no = (int)(intptr_t)arg;
	int local = no;
	truth_thread(&local);
	void *first = malloc(0x18);
	truth_thread_tcache(first, no);
	truth_live(first);
	keep[no - 1][KEEP - 1] = first;
	fill(no, first);
	truth_thread_dtv(no);
	scrub_stack();
	__asm__ volatile("xor %%eax, %%eax; xor %%ecx, %%ecx; xor %%edx, %%edx; xor %%esi, %%esi;"
			 "xor %%edi, %%edi; xor %%r8d, %%r8d; xor %%r9d, %%r9d; xor %%r10d, %%r10d;"
			 "xor %%r11d, %%r11d"
			 ::: "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
	sem_post(&ready);
	pthread_barrier_wait(&hold);
	return NULL;
}

/* truth.h keeps the recorded addresses in static memory, which is a root:
 * once the document is written, complement them so they anchor nothing. */
static void hide_truth_addresses(void)
{
	for (size_t i = 0; i < truth.nlive; i++)
		truth.live[i].address = ~truth.live[i].address;
	for (size_t i = 0; i < truth.nfreed; i++)
		truth.freed[i].address = ~truth.freed[i].address;
	for (size_t i = 0; i < truth.ninternal; i++)
		truth.internal[i].address = ~truth.internal[i].address;
	for (size_t i = 0; i < truth.nmeta; i++)
		truth.meta[i].address = ~truth.meta[i].address;
}

int main(int argc, char **argv)
{
	const char *path = truth_path(argc, argv);
	int local = 0;
	truth_set_name("heap_ends");
	if (!mallopt(M_MMAP_THRESHOLD, 4 << 20))
		truth_die("mallopt failed");
	void *first = malloc(24);
	truth_thread_tcache(first, 0);
	truth_live(first);
	pthread_t t[NTHREADS];
	sem_init(&ready, 0, 0);
	pthread_barrier_init(&hold, NULL, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++) {
		if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)(i + 1)))
			truth_die("pthread_create failed");
		sem_wait(&ready);
	}
	truth_thread(&local);
	truth_set_arenas(1 + NTHREADS);
	truth_note("leaked %zu %zu", nleaked, leaked_bytes);
	truth_note("unreferenced %zu %zu", nunref, unref_bytes);
	truth_write(path);
	hide_truth_addresses();
	dump_here();
	truth_finish(argc, argv);
	pthread_barrier_wait(&hold);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	(void)first;
	return 0;
}
