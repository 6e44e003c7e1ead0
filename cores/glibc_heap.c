/* glibc_heap.c - a glibc heap with every kind of block, each where we expect it.
 *
 * main_arena and 3 thread arenas (each thread allocates while the earlier ones
 * are alive and attached, so each gets a new arena); thread 3's arena grows
 * past 64 MiB into a second heap; 4 mmapped chunks; in main_arena and in
 * thread 1's arena every free list is populated: tcache, fastbin, unsorted,
 * smallbin, largebin.  Live guard chunks separate every freed chunk, so nothing
 * coalesces.  Why each freed chunk is where "expect" says (glibc 2.36
 * malloc.c): see populate_free_lists().
 */
#include "truth.h"
#include <semaphore.h>

#define NTHREADS 3
#define GUARD_REQ 0x18          /* chunk 0x20: never freed */
#define TCACHE_REQ 0x88         /* chunk 0x90 */
#define FAST_REQ 0x28           /* chunk 0x30: a fastbin size (<= global_max_fast 0x80) */
#define SMALL_REQ 0x108         /* chunk 0x110: a smallbin size, also a tcache size */
#define SORT_REQ 0x4008         /* chunk 0x4010: larger than every free chunk */
#define BIG_CHUNK 0x19010       /* ~100 KiB: below the 128 KiB mmap threshold */
#define BIG_TOTAL ((size_t)70 << 20)

static pthread_barrier_t hold;
static sem_t ready;

static void *guarded(size_t req)
{
	void *p = malloc(req);
	truth_live(malloc(GUARD_REQ));
	return p;
}

/* In the calling thread's arena and tcache (both fresh for these sizes):
 *  - 4 chunks of 0x90 freed: the tcache bin holds < 7, so _int_free puts them
 *    in the tcache.
 *  - 7 chunks of 0x110 freed fill that tcache bin; 2 more go to _int_free's
 *    unsorted bin (not fast, neighbours in use).  Same for the large chunks
 *    (0x1010, 0x1110 -> largebin 99, 0x1410 -> 101; beyond tcache).  Then a
 *    malloc of 0x4008 (a large request: no tcache; have_fastchunks is still 0
 *    so no malloc_consolidate) walks the unsorted bin: no exact fit, so every
 *    chunk is sorted into its small or large bin; no bin holds a chunk >= 0x4010,
 *    so it is carved from top and the sorted chunks stay in their bins.
 *  - then 0x510 and 0x810 chunks freed go to the unsorted bin (not tcache, not
 *    fast, < FASTBIN_CONSOLIDATION_THRESHOLD so no consolidation), and no malloc
 *    follows in this arena.
 *  - finally 10 chunks of 0x30: the first 7 fill the tcache bin, the next 3 go
 *    to the fastbin (free never consolidates fastbins for a small chunk).
 */
static void populate_free_lists(void)
{
	static const size_t large_req[] = { 0x1008, 0x1108, 0x1408 };
	static const size_t unsorted_req[] = { 0x508, 0x808 };
	void *tc[4], *fast[10], *small_fill[7], *small[2], *large[3], *unsorted[2];

	for (int i = 0; i < 4; i++)
		tc[i] = guarded(TCACHE_REQ);
	for (int i = 0; i < 10; i++)
		fast[i] = guarded(FAST_REQ);
	for (int i = 0; i < 7; i++)
		small_fill[i] = guarded(SMALL_REQ);
	for (int i = 0; i < 2; i++)
		small[i] = guarded(SMALL_REQ);
	for (int i = 0; i < 3; i++)
		large[i] = guarded(large_req[i]);
	for (int i = 0; i < 2; i++)
		unsorted[i] = guarded(unsorted_req[i]);

	for (int i = 0; i < 4; i++)
		truth_free(tc[i], "tcache");
	for (int i = 0; i < 7; i++)
		truth_free(small_fill[i], "tcache");
	for (int i = 0; i < 2; i++)
		truth_free(small[i], "smallbin");
	for (int i = 0; i < 3; i++)
		truth_free(large[i], "largebin");
	truth_live(malloc(SORT_REQ));
	for (int i = 0; i < 2; i++)
		truth_free(unsorted[i], "unsorted");
	for (int i = 0; i < 10; i++)
		truth_free(fast[i], i < 7 ? "tcache" : "fastbin");
}

/* Thread 3: ~70 MiB in ~100 KiB chunks, so its arena needs a second heap.  The
 * last chunk of the first heap is sized so that the old top is left with 48
 * bytes: sysmalloc() then cannot free a remainder (48 - MINSIZE rounds to 16 <
 * MINSIZE) and only writes fenceposts: a 0x20 chunk marked in use (the internal
 * chunk recorded below) and a size-0 header in the heap's last 16 bytes. */
static void grow_past_one_heap(void *first)
{
	void *last = first;
	size_t total = 0;
	uintptr_t fencepost = 0;
	while (total < BIG_TOTAL) {
		uintptr_t top = truth_after_chunk(last);
		uintptr_t room = (top & ~(TRUTH_HEAP_MAX - 1)) + TRUTH_HEAP_MAX - top;
		// Once the first heap is full, the rest goes to the second heap.
		size_t chunk = fencepost || room >= BIG_CHUNK + 80 ? BIG_CHUNK : room - 48;
		void *p = malloc(chunk - 8);
		if (!p)
			truth_die("malloc failed");
		if (fencepost == 0 && chunk != BIG_CHUNK)
			fencepost = truth_after_chunk(p);
		truth_live(p);
		total += malloc_usable_size(p);
		last = p;
	}
	if (!fencepost || (truth_chunk_word((void *)(fencepost + 16)) & ~(uintptr_t)1) != 0x20)
		truth_die("the first heap did not end with the expected fencepost");
	truth_internal(fencepost + 16, 24, "fencepost at the end of heap 1 of thread 3");
	// The fencepost's header has no NON_MAIN_ARENA bit: take the arena from heap_info.
	truth.internal[truth.ninternal - 1].arena = truth_arena_of(first);
}

static void *worker(void *arg)
{
	int no = (int)(intptr_t)arg;
	int local = no;
	truth_thread(&local);
	void *first = malloc(0x18);
	truth_thread_tcache(first, no);
	truth_live(first);
	if (no == 1) {
		populate_free_lists();
	} else if (no == 2) {
		void *t[3];
		for (int i = 0; i < 3; i++)
			t[i] = guarded(0x38);
		truth_live(malloc(3 << 19));  // mmapped from a thread: no arena
		for (int i = 0; i < 3; i++)
			truth_free(t[i], "tcache");
	} else {
		grow_past_one_heap(first);
	}
	truth_thread_dtv(no);
	sem_post(&ready);
	pthread_barrier_wait(&hold);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *path = truth_path(argc, argv);
	int local = 0;
	truth_set_name("glibc_heap");
	void *first = malloc(24);
	truth_thread_tcache(first, 0);
	truth_live(first);
	truth_live(malloc(100));
	truth_live(calloc(10, 32));
	truth_live(malloc(3000));
	for (int i = 0; i < 3; i++)
		truth_live(malloc(1 << 20));

	// Threads first: pthread_create() callocs each thread's DTV in main_arena,
	// which would take chunks out of main_arena's bins if they were populated.
	pthread_t t[NTHREADS];
	sem_init(&ready, 0, 0);
	pthread_barrier_init(&hold, NULL, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++) {
		if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)(i + 1)))
			truth_die("pthread_create failed");
		sem_wait(&ready);
	}
	populate_free_lists();
	truth_thread(&local);
	truth_set_arenas(1 + NTHREADS);
	truth_write(path);
	dump_here();
	truth_finish(argc, argv);
	pthread_barrier_wait(&hold);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	return 0;
}
