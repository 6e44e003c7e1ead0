/* corrupt_fastbin_cycle.c - a fastbin whose list loops.
 *
 * 7 chunks of 0x30 fill the tcache bin, 3 more (A, B, C, freed in that order)
 * go to the 0x30 fastbin: head C -> B -> A -> NULL.  After the truth is written,
 * A's fd is pointed back at C (safe-linked like glibc does: (&fd >> 12) ^ C),
 * so the list is C -> B -> A -> C -> ...
 */
#include "corrupt_common.h"

int main(int argc, char **argv)
{
	const char *path = truth_path(argc, argv);
	void *p[10];
	baseline_begin("corrupt_fastbin_cycle");
	for (int i = 0; i < 10; i++) {
		p[i] = malloc(0x28);
		baseline_alloc(0x18);
	}
	baseline_end();
	for (int i = 0; i < 10; i++)
		truth_free(p[i], i < 7 ? "tcache" : "fastbin");

	uintptr_t a = (uintptr_t)p[7], b = (uintptr_t)p[8], cc = (uintptr_t)p[9];
	struct truth_corrupt *c = truth_corrupt(a, "fastbin 0x30 loops: A->fd points back to C");
	truth_corrupt_accept(c, a - 16, a + 1);
	truth_corrupt_accept(c, b - 16, b + 1);
	truth_corrupt_accept(c, cc - 16, cc + 1);
	truth_corrupt_involves(c, a);
	truth_corrupt_involves(c, b);
	truth_corrupt_involves(c, cc);
	truth_write(path);
	// fastbin fd links chunk headers; the user pointer is where fd lives.
	*(uintptr_t *)a = (a >> 12) ^ (cc - 16);
	dump_here();
	truth_finish(argc, argv);
	return 0;
}
