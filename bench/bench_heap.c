/* bench_heap.c - a process with a large, known heap for `make bench`.
 * Usage: bench_heap COUNT SIZE [leaky]: COUNT allocations of SIZE bytes (sizes
 * vary a little around SIZE), linked in a list from a global, one in 16 freed.
 * Stops in dump_here() where the bench takes a core with gdb. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node { struct node *next; size_t n; };
struct node *head;

__attribute__((noinline)) void dump_here(void) { __asm__ volatile(""); }

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	size_t count = strtoull(argv[1], NULL, 0), size = strtoull(argv[2], NULL, 0);
	struct node **all = malloc(count * sizeof(*all));
	for (size_t i = 0; i < count; i++) {
		size_t sz = size + (i % 7) * 16;
		struct node *n = malloc(sz < sizeof(*n) ? sizeof(*n) : sz);
		memset(n, 0x5a, sizeof(*n) + 8 < sz ? sizeof(*n) + 8 : sizeof(*n));
		n->n = i;
		n->next = head;
		head = n;
		all[i] = n;
	}
	for (size_t i = 0; i < count; i += 16)
		all[i]->n = ~(size_t)0;
	free(all);
	dump_here();
	return 0;
}
