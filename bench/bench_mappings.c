/* bench_mappings.c - a process of many mappings and many stack roots: 30 k
 * one-page mappings (alternate pages made read-only, so that no two merge)
 * and 100 k heap pointers in one array on main's stack.  bench/mappings.sh
 * dumps it at dump_here().  Usage: bench_mappings [MAPPINGS [POINTERS]] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

__attribute__((noinline)) void dump_here(void **p, size_t n)
{
	__asm__ volatile("" : : "r"(p), "r"(n) : "memory");
}

int main(int argc, char **argv)
{
	size_t maps = argc > 1 ? strtoul(argv[1], NULL, 0) : 30000;
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 0) : 100000;
	size_t pg = 4096;
	char *base = mmap(NULL, maps * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t i = 0; i < maps; i++) {
		base[i * pg] = 1;
		if (i % 2 && mprotect(base + i * pg, pg, PROT_READ) != 0) {
			perror("mprotect");
			return 1;
		}
	}
	void **p = __builtin_alloca(n * sizeof(*p));
	for (size_t i = 0; i < n; i++)
		p[i] = malloc(32 + i % 200);
	dump_here(p, n);
	return 0;
}
