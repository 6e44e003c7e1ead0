/* make_seeds.c - the fuzzer's seed cores, written with the unit tests' own
 * builders (tests/unit/synth_core.c, synth_glibc.c): small glibc processes
 * with every free list, a thread arena, mmapped chunks, notes of every kind,
 * and the shapes of the issue 11 findings.  Usage: make_seeds DIR */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "memory.h"
#include "synth_core.h"
#include "synth_glibc.h"

#define LIBC      UINT64_C(0x7ffff7fa0000)
#define MAIN_HEAP UINT64_C(0x555555559000)
#define ARENA1    UINT64_C(0x7ffff0000000)
#define MMAPPED   UINT64_C(0x7ffff7000000)
#define FS_MAIN   UINT64_C(0x7ffff7d80000)
#define FS_THR    UINT64_C(0x7ffff7580000)

static void process(struct synth_glibc *g, bool thread_arena)
{
	struct synth_glibc_heap m, t;
	synth_glibc_init(g, 236);
	synth_glibc_libc(g, LIBC);
	synth_glibc_main_heap(g, MAIN_HEAP, 0x3000, &m);
	uint64_t tc = synth_glibc_tcache(g, &m);
	uint64_t keep = synth_glibc_chunk(g, &m, 0x30);
	uint64_t c[6];
	for (int i = 0; i < 6; i++)
		c[i] = synth_glibc_chunk(g, &m, i < 2 ? 0x30 : 0x110);
	// a used chunk that points at another (an edge in the graph)
	synth_glibc_w64(g, keep + 16, c[1] + 16);
	synth_glibc_finish_heap(g, &m);
	synth_glibc_tcache_put(g, tc, c[0]);
	synth_glibc_fastbin_put(g, 0, c[1]);
	synth_glibc_bin_put(g, 0, c[3], true);
	synth_glibc_mmapped(g, MMAPPED, 0x2000);
	synth_glibc_thread(g, 100, FS_MAIN, tc);
	if (thread_arena) {
		synth_glibc_thread_arena(g, ARENA1, 0x3000, &t);
		uint64_t tc1 = synth_glibc_tcache(g, &t);
		synth_glibc_chunk(g, &t, 0x40);
		uint64_t f = synth_glibc_chunk(g, &t, 0x40);
		synth_glibc_finish_heap(g, &t);
		synth_glibc_tcache_put(g, tc1, f);
		synth_glibc_thread(g, 101, FS_THR, tc1);
	}
}

static void write_seed(struct synth_core *sc, const char *dir, const char *name)
{
	char *path = synth_core_path(dir, name);
	if (synth_core_write(sc, path) != 0) {
		perror(path);
		exit(1);
	}
	free(path);
	synth_core_destroy(sc);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_seeds DIR\n");
		return 2;
	}
	const char *dir = argv[1];
	for (int variant = 0; variant < 6; variant++) {
		struct synth_glibc *g = calloc(1, sizeof(*g));
		process(g, variant != 0);
		struct synth_core *sc = synth_core_create();
		if (variant == 5)
			synth_core_set_note_align(sc, 8);
		synth_core_add_glibc(sc, g);
		const char *name = "plain.core";
		if (variant >= 2) {
			struct synth_core_file files[] = {
				{ LIBC - 0x1000, LIBC, 0x1f000, "/lib/x86_64-linux-gnu/libc.so.6" },
				{ MAIN_HEAP - 0x2000, MAIN_HEAP, 0, "/usr/bin/pr\xd0\xbe\xd0" },
				{ UINT64_C(0x7ffff7fc0000), UINT64_C(0x7ffff7fc2000), 0, "/lib64/ld-linux-x86-64.so.2" },
			};
			synth_core_add_file_note(sc, 4096, files, 3);
			const uint64_t auxv[][2] = { { 6, 4096 }, { 9, MAIN_HEAP - 0x1000 } };
			synth_core_add_auxv(sc, auxv, 2);
			synth_core_add_siginfo(sc, 11, 1, 0xdead);
			synth_core_add_prpsinfo(sc, 100, "\xd0\xbf\xd1\x80\xd0\xbe\xd0\xb3\xd1\x80\xd0\xb0\xd0\xbc\xd0",
						"./prog \x1b[2J arg");
			name = "notes.core";
		}
		if (variant == 1)
			name = "arenas.core";
		if (variant == 3) {
			for (size_t i = 0; i < g->nsegs; i++)
				synth_core_shift_load(sc, i, 4 + 8 * i);
			name = "misaligned.core";
		}
		if (variant == 4) {
			synth_core_add_empty_loads(sc, UINT64_C(0x10000000), 0x2000, 8);
			struct synth_core_file f = { UINT64_C(0x10000000), UINT64_C(0x10010000), 0, "/x" };
			synth_core_add_file_note(sc, 1, &f, 1);
			name = "empty_loads.core";
		}
		if (variant == 5)
			name = "notes8.core";
		write_seed(sc, dir, name);
		synth_glibc_deinit(g);
		free(g);
	}
	return 0;
}
