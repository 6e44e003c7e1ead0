/* synth_glibc.h - synthetic glibc ptmalloc heaps for unit tests.
 *
 * Builds the memory of a process in plain buffers the way glibc would leave
 * it: libc's data with mp_ and main_arena, the sbrk heap, thread arenas in
 * 64 MiB-aligned heaps (several per arena, with the fenceposts glibc leaves),
 * mmapped chunks, tcaches reachable from static TLS, and every free list.  It
 * records the truth for each chunk (user address, usable size, where, arena)
 * as it goes, so a test builds, walks, and compares.
 *
 * The struct offsets here are derived from glibc's struct definitions on
 * their own, not taken from src/alloc/glibc_layouts.c, so that the table is tested
 * rather than repeated.
 */
#ifndef SYNTH_GLIBC_H
#define SYNTH_GLIBC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "heap.h"
#include "notes.h"

struct hs_session;

#define SYNTH_GLIBC_MAX_SEGS 32
#define SYNTH_GLIBC_MAX_TRUTH 8192
#define SYNTH_GLIBC_MAX_THREADS 8

struct synth_glibc_truth {
	uint64_t user;             /* user address */
	uint64_t usable;
	enum hs_where where;
	unsigned arena;            /* unused: compare() derives the ring index from the heap */
};

struct synth_glibc_heap {
	uint64_t start, end;       /* the heap's bytes */
	uint64_t cur;              /* next chunk goes here */
	uint64_t arena;            /* malloc_state address */
	unsigned arena_index;
	bool main;
};

struct synth_glibc {
	unsigned version;          /* 227, 231, 235, 239, ... */
	/* the layout facts of that version */
	bool have_fastchunks, safe_linking, key_is_pointer, mp_new;
	unsigned tc_width, hi_size;
	unsigned ms_fastbins, ms_top, ms_bins, ms_next, ms_attached, ms_system_mem, ms_size;
	unsigned mp_n_mmaps, mp_sbrk_base, mp_tcache_bins, mp_tcache_max, mp_tcache_count, mp_size;

	struct { uint64_t start, size; uint8_t *buf; uint32_t flags; } segs[SYNTH_GLIBC_MAX_SEGS];
	size_t nsegs;
	struct synth_glibc_truth truth[SYNTH_GLIBC_MAX_TRUTH];
	size_t ntruth;
	struct hs_thread threads[SYNTH_GLIBC_MAX_THREADS];
	size_t nthreads;
	uint64_t libc_base, main_arena, mp;
	uint64_t arenas[16];       /* ring order */
	unsigned narenas;
};

void synth_glibc_init(struct synth_glibc *g, unsigned version);
void synth_glibc_deinit(struct synth_glibc *g);

/* A zeroed segment [start, start + size) with HS_SEG_* flags. */
uint8_t *synth_glibc_segment(struct synth_glibc *g, uint64_t start, uint64_t size, uint32_t flags);
void synth_glibc_w64(struct synth_glibc *g, uint64_t addr, uint64_t v);
uint64_t synth_glibc_r64(struct synth_glibc *g, uint64_t addr);

/* libc's writable data at base with mp_ and an initialised main_arena. */
void synth_glibc_libc(struct synth_glibc *g, uint64_t base);
/* The sbrk heap [start, start + size) of the main arena (mp_.sbrk_base = start). */
void synth_glibc_main_heap(struct synth_glibc *g, uint64_t start, uint64_t size,
			   struct synth_glibc_heap *h);
/* A new arena in a new 64 MiB-aligned heap at base, linked into the ring. */
void synth_glibc_thread_arena(struct synth_glibc *g, uint64_t base, uint64_t size,
			      struct synth_glibc_heap *h);
/* Grow h's arena into a new heap at base: closes h as glibc's sysmalloc does
 * (fenceposts, the old top freed to the unsorted bin) and makes *next current. */
void synth_glibc_next_heap(struct synth_glibc *g, struct synth_glibc_heap *h, uint64_t base,
			   uint64_t size, struct synth_glibc_heap *next);
/* An in-use chunk of chunk size csize; returns the chunk address. */
uint64_t synth_glibc_chunk(struct synth_glibc *g, struct synth_glibc_heap *h, uint64_t csize);
/* The rest of h becomes the top chunk of its arena. */
void synth_glibc_finish_heap(struct synth_glibc *g, struct synth_glibc_heap *h);

/* A tcache_perthread_struct chunk in h; returns its user address. */
uint64_t synth_glibc_tcache(struct synth_glibc *g, struct synth_glibc_heap *h);
/* free() paths: into a tcache, a fastbin, or a bin (unsorted, or the small /
 * large bin of its size) of the arena at index ai. */
void synth_glibc_tcache_put(struct synth_glibc *g, uint64_t tcache, uint64_t chunk);
void synth_glibc_fastbin_put(struct synth_glibc *g, unsigned ai, uint64_t chunk);
void synth_glibc_bin_put(struct synth_glibc *g, unsigned ai, uint64_t chunk, bool unsorted);
/* An mmapped chunk of size bytes at addr (its own segment); counts in mp_. */
void synth_glibc_mmapped(struct synth_glibc *g, uint64_t addr, uint64_t size);
/* A thread whose static TLS (below fs_base) holds a pointer to tcache (0: none). */
void synth_glibc_thread(struct synth_glibc *g, int32_t tid, uint64_t fs_base, uint64_t tcache);

/* Layout offsets for tests that corrupt things by hand. */
uint64_t synth_glibc_tcache_count_addr(struct synth_glibc *g, uint64_t tcache, unsigned bin);
uint64_t synth_glibc_fastbin_addr(struct synth_glibc *g, unsigned ai, unsigned bin);
struct synth_glibc_truth *synth_glibc_truth_of(struct synth_glibc *g, uint64_t chunk);

/* A session over the built memory (and threads), ready for a walker. */
struct hs_session *synth_glibc_session(struct synth_glibc *g);
void synth_glibc_override(struct hs_session *s, const char *name, uint64_t value);

/* Compare the walked index with the truth: returns the number of mismatches
 * (each printed to stderr); skip lists chunks that need not match. */
size_t synth_glibc_compare(const struct synth_glibc *g, const struct hs_heap *heap,
			   const uint64_t *skip, size_t nskip);

#endif
