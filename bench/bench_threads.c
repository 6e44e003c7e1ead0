/* bench_threads.c - a process of many threads, each stopped 20 frames deep
 * with a heap pointer in every frame: stack roots for report to name, one
 * unwinding per thread.  bench/mappings.sh dumps it at dump_here().
 * Usage: bench_threads [THREADS] */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_barrier_t ready;

__attribute__((noinline)) void dump_here(void)
{
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static int deep(int d)
{
	void *volatile keep = malloc(64 + d);
	if (d == 0) {
		pthread_barrier_wait(&ready);
		pause();
	}
	int r = deep(d - 1) + 1;
	__asm__ volatile("" : : "r"(keep) : "memory");
	return r;
}

static void *run(void *arg)
{
	(void)arg;
	deep(20);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 300;
	pthread_barrier_init(&ready, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++) {
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 256 << 10);
		if (pthread_create(&t, &a, run, NULL) != 0)
			return 1;
	}
	pthread_barrier_wait(&ready);
	dump_here();
	return 0;
}
