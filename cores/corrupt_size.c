/* corrupt_size.c - a smashed chunk size field in the middle of the main heap.
 *
 * Chunk V, in the middle of the live chunks, gets its size word overwritten
 * with "AAAAAAAA" (as a string overflow from the chunk before would do) after
 * the truth is written.  Everything else is intact: the chunks before V and
 * after it, the tcache and the unsorted bin.
 */
#include "corrupt_common.h"

int main(int argc, char **argv)
{
	const char *path = truth_path(argc, argv);
	baseline_begin("corrupt_size");
	unsigned char *v = baseline_alloc(0x88);
	baseline_end();

	struct truth_corrupt *c = truth_corrupt((uintptr_t)v, "chunk size field smashed");
	truth_corrupt_accept(c, (uintptr_t)v - 16, (uintptr_t)v + 1);
	truth_corrupt_involves(c, (uintptr_t)v);
	truth_write(path);
	memset(v - 8, 'A', 8);
	dump_here();
	truth_finish(argc, argv);
	return 0;
}
