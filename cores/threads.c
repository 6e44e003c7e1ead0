/* threads.c - the demo and `info` fixture: main and 3 threads, all alive at the
 * dump, each blocked on a barrier; a few allocations in each thread's arena.
 */
#include "truth.h"
#include <semaphore.h>

#define NTHREADS 3

static pthread_barrier_t hold;   /* workers wait here until after the dump */
static sem_t ready;

static void *worker(void *arg)
{
	int no = (int)(intptr_t)arg;
	int local = no;
	truth_thread(&local);
	// The first malloc of a thread creates its arena and its tcache.
	void *first = malloc(40 + 16 * no);
	truth_thread_tcache(first, no);
	truth_live(first);
	truth_live(malloc(1000 * no));
	truth_thread_dtv(no);
	sem_post(&ready);
	pthread_barrier_wait(&hold);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *path = truth_path(argc, argv);
	static void *keep[4];
	int local = 0;
	truth_set_name("threads");
	keep[0] = malloc(24);
	truth_thread_tcache(keep[0], 0);
	keep[1] = malloc(100);
	keep[2] = malloc(5000);
	keep[3] = calloc(10, 32);
	for (int i = 0; i < 4; i++)
		truth_live(keep[i]);
	truth_thread(&local);

	pthread_t t[NTHREADS];
	sem_init(&ready, 0, 0);
	pthread_barrier_init(&hold, NULL, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++) {
		if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)(i + 1)))
			truth_die("pthread_create failed");
		// One at a time: each thread's first malloc runs while the earlier
		// threads are alive and attached, so each gets a new arena.
		sem_wait(&ready);
	}
	truth_set_arenas(1 + NTHREADS);
	truth_write(path);
	dump_here();
	truth_finish(argc, argv);
	pthread_barrier_wait(&hold);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	return 0;
}
