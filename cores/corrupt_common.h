/* corrupt_common.h - the intact part of the corruption fixtures' heaps.
 *
 * A single-threaded main_arena heap: the tcache, 16 live chunks of assorted
 * sizes filled with a byte pattern that looks like no chunk header, two chunks
 * in the 0xa0 tcache bin and one in the unsorted bin, each between live guards.
 * The fixture adds its own chunks in the middle (baseline_begin ... its part ...
 * baseline_end), writes the truth, then corrupts.
 */
#ifndef CORES_CORRUPT_COMMON_H
#define CORES_CORRUPT_COMMON_H
#include "truth.h"

static void *baseline_live[16];

static void *baseline_alloc(size_t req)
{
	void *p = malloc(req);
	memset(p, 0x5a, req);
	truth_live(p);
	return p;
}

static void baseline_begin(const char *name)
{
	static int local;
	truth_set_name(name);
	void *first = malloc(24);
	truth_thread_tcache(first, 0);
	truth_live(first);
	for (int i = 0; i < 8; i++)
		baseline_live[i] = baseline_alloc(0x18 + 0x48 * (size_t)i);
	truth_thread(&local);
	truth_set_arenas(1);
}

static void baseline_end(void)
{
	void *tc[2], *unsorted;
	for (int i = 8; i < 16; i++)
		baseline_live[i] = baseline_alloc(0x18 + 0x48 * (size_t)i);
	for (int i = 0; i < 2; i++) {
		tc[i] = malloc(0x98);
		baseline_alloc(0x18);
	}
	unsorted = malloc(0x508);
	baseline_alloc(0x18);
	for (int i = 0; i < 2; i++)
		truth_free(tc[i], "tcache");
	truth_free(unsorted, "unsorted");
}
#endif
