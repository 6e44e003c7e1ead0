/* corrupt_tcache_count.c - a tcache counts[] entry that says more than the
 * list holds.
 *
 * 3 chunks of 0x50 are freed into the main thread's tcache (bin 3, counts[3]
 * == 3).  After the truth is written counts[3] is set to 5; the list itself is
 * intact and still ends after 3 entries.  tcache_perthread_struct in 2.36:
 * uint16_t counts[64] then tcache_entry *entries[64].
 */
#include "corrupt_common.h"

int main(int argc, char **argv)
{
	const char *path = truth_path(argc, argv);
	void *p[3];
	baseline_begin("corrupt_tcache_count");
	for (int i = 0; i < 3; i++) {
		p[i] = malloc(0x48);
		baseline_alloc(0x18);
	}
	baseline_end();
	for (int i = 0; i < 3; i++)
		truth_free(p[i], "tcache");

	uintptr_t tcache = truth.meta[0].address;
	uint16_t *count = (uint16_t *)tcache + (0x50 - 0x20) / 16;
	struct truth_corrupt *c = truth_corrupt((uintptr_t)count,
						"tcache counts[3] says 5, the list holds 3");
	truth_corrupt_accept(c, tcache - 16, tcache + 0x288);
	truth_write(path);
	if (*count != 3)
		truth_die("tcache counts[3] is not 3");
	*count = 5;
	dump_here();
	truth_finish(argc, argv);
	return 0;
}
