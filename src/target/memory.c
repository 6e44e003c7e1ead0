/* memory.c - see memory.h. */
#include <errno.h>
#include <stdio.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "memory.h"
#include "vec.h"

void hs_memory_init(struct hs_memory *mem)
{
	mem->segs = NULL;
	mem->nsegs = 0;
	mem->mem_fd = -1;
	mem->pid = 0;
	mem->gone = false;
	mem->holes = NULL;
	mem->nholes = 0;
	mem->retired = NULL;
	mem->nretired = mem->retired_cap = 0;
}

void hs_segment_release(struct hs_segment *seg)
{
	if (seg->owned_map)
		munmap(seg->owned, seg->owned_map);
	else
		free(seg->owned);
	seg->owned = NULL;
	seg->owned_map = 0;
}

void hs_memory_deinit(struct hs_memory *mem)
{
	for (size_t i = 0; i < mem->nsegs; i++)
		hs_segment_release(&mem->segs[i]);
	free(mem->segs);
	free(mem->holes);
	for (size_t i = 0; i < mem->nretired; i++)
		free(mem->retired[i]);
	free(mem->retired);
	if (mem->mem_fd >= 0)
		close(mem->mem_fd);
	hs_memory_init(mem);
}

struct hs_error *hs_memory_add(struct hs_memory *mem, const struct hs_segment *seg)
{
	if (seg->end <= seg->start)
		return NULL;
	// Grow by doubling; capacity is implied by powers of two of nsegs.
	size_t n = mem->nsegs;
	if ((n & (n - 1)) == 0) {
		size_t cap = n ? n * 2 : 16;
		struct hs_segment *segs = realloc(mem->segs, cap * sizeof(*segs));
		if (!segs)
			return &hs_error_nomem;
		mem->segs = segs;
	}
	mem->segs[n] = *seg;
	if (mem->segs[n].filesz > seg->end - seg->start)
		mem->segs[n].filesz = seg->end - seg->start;
	mem->nsegs = n + 1;
	return NULL;
}

static int segment_cmp(const void *a, const void *b)
{
	const struct hs_segment *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	// Dumped segments first, so that they win over NT_FILE-only records.
	return (x->filesz < y->filesz) - (x->filesz > y->filesz);
}

// Keep the table sorted and non-overlapping: of two overlapping segments the
// earlier keeps its bytes and the later is cut to what is left after it.
static void resolve_overlaps(struct hs_memory *mem)
{
	if (mem->nsegs)
		qsort(mem->segs, mem->nsegs, sizeof(*mem->segs), segment_cmp);
	size_t out = 0;
	for (size_t i = 0; i < mem->nsegs; i++) {
		struct hs_segment seg = mem->segs[i];
		if (out && seg.start < mem->segs[out - 1].end) {
			uint64_t cut = mem->segs[out - 1].end;
			if (seg.end <= cut) {
				hs_segment_release(&seg);
				continue;
			}
			uint64_t skip = cut - seg.start;
			seg.filesz = seg.filesz > skip ? seg.filesz - skip : 0;
			if (seg.data)
				seg.data += skip;
			seg.file_offset += skip;
			seg.start = cut;
		}
		mem->segs[out++] = seg;
	}
	mem->nsegs = out;
}

// Mappings known only from NT_FILE never hide bytes the core has: they fill
// the gaps between the dumped segments, nothing more.  Both lists are sorted
// and made disjoint first, then merged in one pass: O((n + m) log(n + m)),
// however many loads each record spans.
static int extra_cmp(const void *a, const void *b)
{
	const struct hs_segment *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	// The same start: the record given first wins (file_offset holds the
	// order while sorting, see below).
	return (x->file_offset > y->file_offset) - (x->file_offset < y->file_offset);
}

static size_t disjoint_extras(struct hs_segment *extra, size_t nextra)
{
	for (size_t i = 0; i < nextra; i++)
		extra[i].file_offset = i;
	if (nextra)
		qsort(extra, nextra, sizeof(*extra), extra_cmp);
	size_t out = 0;
	for (size_t i = 0; i < nextra; i++) {
		struct hs_segment e = extra[i];
		e.file_offset = 0;
		if (out && e.start < extra[out - 1].end) {
			if (e.end <= extra[out - 1].end)
				continue;
			e.start = extra[out - 1].end;
		}
		extra[out++] = e;
	}
	return out;
}

static struct hs_error *place_unloaded(struct hs_memory *mem, struct hs_segment *extra, size_t nextra)
{
	nextra = disjoint_extras(extra, nextra);
	// The dumped segments are sorted and disjoint (resolve_overlaps); the
	// gap pieces are appended after them, so index them, never point.
	size_t nloaded = mem->nsegs, k = 0;
	for (size_t i = 0; i < nextra; i++) {
		uint64_t p = extra[i].start, end = extra[i].end;
		while (p < end) {
			while (k < nloaded && mem->segs[k].end <= p)
				k++;
			if (k < nloaded && mem->segs[k].start <= p) {
				p = mem->segs[k].end;
				continue;
			}
			uint64_t stop = k < nloaded && mem->segs[k].start < end ? mem->segs[k].start : end;
			struct hs_segment gap = extra[i];
			gap.start = p;
			gap.end = stop;
			gap.filesz = 0;
			gap.data = NULL;
			HS_CHECK(hs_memory_add(mem, &gap));
			p = stop;
		}
	}
	return NULL;
}

struct hs_error *hs_memory_add_hole(struct hs_memory *mem, uint64_t start, uint64_t end)
{
	if (end <= start || end - start < HS_HOLE_MIN)
		return NULL;
	size_t n = mem->nholes;
	if ((n & (n - 1)) == 0) {
		struct hs_hole *h = realloc(mem->holes, (n ? n * 2 : 16) * sizeof(*h));
		if (!h)
			return &hs_error_nomem;
		mem->holes = h;
	}
	mem->holes[n] = (struct hs_hole){ start, end };
	mem->nholes = n + 1;
	return NULL;
}

static int hole_cmp(const void *a, const void *b)
{
	const struct hs_hole *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

static void finish_holes(struct hs_memory *mem)
{
	if (!mem->nholes)
		return;
	qsort(mem->holes, mem->nholes, sizeof(*mem->holes), hole_cmp);
	size_t out = 0;
	for (size_t i = 0; i < mem->nholes; i++) {
		if (out && mem->holes[i].start <= mem->holes[out - 1].end) {
			if (mem->holes[i].end > mem->holes[out - 1].end)
				mem->holes[out - 1].end = mem->holes[i].end;
			continue;
		}
		mem->holes[out++] = mem->holes[i];
	}
	mem->nholes = out;
}

static uint64_t data_run(const struct hs_memory *mem, const struct hs_segment *seg, uint64_t addr);

// The hole of the file holding offset off, or NULL.
static const struct hs_hole *hole_at(const struct hs_memory *mem, uint64_t off)
{
	size_t lo = 0, hi = mem->nholes;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mem->holes[mid].end <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < mem->nholes && mem->holes[lo].start <= off ? &mem->holes[lo] : NULL;
}

uint64_t hs_memory_skip_hole(const struct hs_memory *mem, uint64_t addr)
{
	if (!mem->nholes)
		return addr;
	const struct hs_segment *seg = hs_memory_segment(mem, addr);
	if (!seg || !seg->data || addr - seg->start >= seg->filesz)
		return addr;
	const struct hs_hole *h = hole_at(mem, seg->file_offset + (addr - seg->start));
	if (!h)
		return addr;
	uint64_t rest = h->end - (seg->file_offset + (addr - seg->start));
	uint64_t dumped = seg->filesz - (addr - seg->start);
	return addr + (rest < dumped ? rest : dumped);
}

uint64_t hs_memory_data_run(const struct hs_memory *mem, uint64_t addr)
{
	const struct hs_segment *seg = hs_memory_segment(mem, addr);
	if (!seg || !seg->data || addr - seg->start >= seg->filesz)
		return 0;
	if (hs_memory_skip_hole(mem, addr) != addr)
		return 0;
	return data_run(mem, seg, addr);
}

// Bytes from addr on that are not in a hole (up to the segment's dumped end).
static uint64_t data_run(const struct hs_memory *mem, const struct hs_segment *seg, uint64_t addr)
{
	uint64_t off = seg->file_offset + (addr - seg->start);
	uint64_t dumped = seg->filesz - (addr - seg->start);
	size_t lo = 0, hi = mem->nholes;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mem->holes[mid].start <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < mem->nholes && mem->holes[lo].start - off < dumped)
		return mem->holes[lo].start - off;
	return dumped;
}

/* seg->span: a segment wholly dumped whose bytes the next segment's follow in
 * place (the same file run, or one live buffer) reads on into it. */
static void link_spans(struct hs_memory *mem)
{
	for (size_t i = mem->nsegs; i-- > 0;) {
		struct hs_segment *seg = &mem->segs[i], *next = seg + 1;
		seg->span = seg->data ? seg->filesz : 0;
		if (seg->data && i + 1 < mem->nsegs && seg->filesz == seg->end - seg->start &&
		    next->start == seg->end && next->data == seg->data + seg->filesz)
			seg->span += next->span;
	}
}

struct hs_error *hs_memory_finish(struct hs_memory *mem)
{
	finish_holes(mem);
	size_t nextra = 0;
	for (size_t i = 0; i < mem->nsegs; i++)
		nextra += (mem->segs[i].flags & HS_SEG_NOT_IN_CORE) != 0;
	struct hs_segment *extra = NULL;
	if (nextra) {
		extra = malloc(nextra * sizeof(*extra));
		if (!extra)
			return &hs_error_nomem;
		size_t out = 0, e = 0;
		for (size_t i = 0; i < mem->nsegs; i++) {
			if (mem->segs[i].flags & HS_SEG_NOT_IN_CORE)
				extra[e++] = mem->segs[i];
			else
				mem->segs[out++] = mem->segs[i];
		}
		mem->nsegs = out;
	}
	resolve_overlaps(mem);
	struct hs_error *err = place_unloaded(mem, extra, nextra);
	free(extra);
	if (err)
		return err;
	resolve_overlaps(mem);
	link_spans(mem);
	return NULL;
}

/* The first segment ending after addr, if it holds addr.  The analysis asks
 * for blocks' segments in no order (the types' and inference's queues): a
 * search whose steps depend only on the number of segments, each a
 * conditional move, where a branch would be mispredicted at every other
 * step. */
const struct hs_segment *hs_memory_segment(const struct hs_memory *mem, uint64_t addr)
{
	if (!mem->nsegs)
		return NULL;
	// The answer is in [s, s + len]: s + len means none.
	const struct hs_segment *s = mem->segs;
	size_t len = mem->nsegs;
	while (len > 1) {
		size_t half = len / 2;
		s = s[half - 1].end > addr ? s : s + half;
		len -= half;
	}
	if (s->end <= addr)
		s++;
	if (s < mem->segs + mem->nsegs && s->start <= addr)
		return s;
	return NULL;
}

// Has the live process exited (gone, or a zombie: its memory is released)?
/* Read the state letter and the flags of /proc/PID/stat; false when the
 * process is gone altogether. */
static bool process_stat(int pid, char *state, unsigned long *flags)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	const char *close_paren = strrchr(buf, ')');
	*state = 0;
	*flags = 0;
	// ") S ppid pgrp session tty_nr tpgid flags"
	if (!close_paren || sscanf(close_paren + 1, " %c %*d %*d %*d %*d %*d %lu", state, flags) < 1)
		return false;
	return true;
}

#define PF_EXITING_FLAG 0x00000004ul    /* the kernel's PF_EXITING */
#define PF_KTHREAD_FLAG 0x00200000ul    /* the kernel's PF_KTHREAD */

/* Gone, a zombie, or on its way out: a SIGKILLed process drops its memory
 * (exit_mm) before it turns zombie, and in between it reads as running. */
bool hs_process_exited(int pid)
{
	char state;
	unsigned long flags;
	if (!process_stat(pid, &state, &flags))
		return true;
	return state == 'Z' || state == 'X' || (flags & PF_EXITING_FLAG);
}

bool hs_process_is_kernel_thread(int pid)
{
	char state;
	unsigned long flags;
	return process_stat(pid, &state, &flags) && (flags & PF_KTHREAD_FLAG);
}

static struct hs_error *gone_error(const struct hs_memory *mem, uint64_t addr)
{
	struct hs_error *err = hs_error_create(HS_ERR_TARGET,
		"process %d exited while heapscope was reading it (memory at 0x%" PRIx64 " is gone)", mem->pid, addr);
	if (err != &hs_error_nomem)
		err->address = addr;
	return err;
}

// pread a live segment's bytes to buf: how many it gave.
static uint64_t read_live(struct hs_memory *mem, const struct hs_segment *seg, uint8_t *buf)
{
	uint64_t done = 0;
	while (done < seg->filesz) {
		ssize_t r = pread(mem->mem_fd, buf + done, seg->filesz - done, (off_t)(seg->start + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		done += r;
	}
	return done;
}

// Live targets: read a whole segment from /proc/PID/mem once.  A mapping that
// cannot be read (guard pages, [vvar]) becomes filesz 0: "not dumped".
static void segment_load(struct hs_memory *mem, struct hs_segment *seg)
{
	if (seg->data || mem->mem_fd < 0 || seg->filesz == 0)
		return;
	uint8_t *buf = malloc(seg->filesz);
	if (!buf)
		return;
	uint64_t done = read_live(mem, seg, buf);
	if (done == 0) {
		free(buf);
		if (hs_process_exited(mem->pid))
			mem->gone = true;   // not "not dumped": nothing is left to read
		else
			seg->filesz = 0;
		return;
	}
	seg->filesz = done;
	seg->owned = buf;
	seg->data = buf;
	seg->span = done;
}

static bool segment_whole(const struct hs_segment *seg)
{
	return seg->filesz && seg->filesz == seg->end - seg->start;
}

// Keep a live segment's own buffer until the memory goes: what was read from
// it may still be held.  False when out of memory.
static bool segment_retire(struct hs_memory *mem, struct hs_segment *seg)
{
	if (!seg->owned)
		return true;
	if (HS_VEC_GROW(mem->retired, mem->retired_cap, mem->nretired + 1))
		return false;
	mem->retired[mem->nretired++] = seg->owned;
	seg->owned = NULL;
	return true;
}

/* Every segment read once, before a multi-threaded scan.  A live process's
 * adjacent mappings (one that madvise or mprotect split) go into one buffer,
 * owned by the run's first segment, so that an allocation across the
 * boundary is one span, as in a core: also when a read before this one
 * loaded part of the run on its own (then read again). */
struct hs_error *hs_memory_load_all(struct hs_memory *mem)
{
	for (size_t i = 0; i < mem->nsegs;) {
		struct hs_segment *first = &mem->segs[i];
		size_t j = i + 1;
		uint64_t len = first->filesz;
		bool together = true;   // the run's bytes already follow one another
		if (mem->mem_fd >= 0 && segment_whole(first))
			while (j < mem->nsegs && mem->segs[j].start == mem->segs[j - 1].end &&
			       segment_whole(&mem->segs[j]) && len < (UINT64_C(1) << 32)) {
				together &= mem->segs[j - 1].data &&
					    mem->segs[j].data == mem->segs[j - 1].data + mem->segs[j - 1].filesz;
				len += mem->segs[j].filesz;
				j++;
			}
		if (j > i + 1 && together) {
			i = j;
			continue;
		}
		uint8_t *buf = j > i + 1 ? malloc(len) : NULL;
		bool retired = true;
		for (size_t k = i; buf && k < j && retired; k++)
			retired = segment_retire(mem, &mem->segs[k]);
		if (!buf || !retired) {
			free(buf);
			segment_load(mem, first);    // one segment, or no memory for the run
			if (mem->gone)
				return gone_error(mem, first->start);
			i++;
			continue;
		}
		first->owned = buf;
		for (uint8_t *at = buf; i < j; i++) {
			struct hs_segment *seg = &mem->segs[i];
			uint64_t size = seg->filesz, done = read_live(mem, seg, at);
			if (done == 0 && hs_process_exited(mem->pid)) {
				mem->gone = true;
				return gone_error(mem, seg->start);
			}
			seg->filesz = done;
			seg->data = done ? at : NULL;
			at += size;
		}
	}
	link_spans(mem);
	return NULL;
}

bool hs_memory_loaded(const struct hs_memory *mem)
{
	for (size_t i = 0; i < mem->nsegs; i++)
		if (mem->segs[i].filesz && !mem->segs[i].data)
			return false;
	return true;
}

const uint8_t *hs_memory_span(struct hs_memory *mem, uint64_t addr, size_t len)
{
	struct hs_segment *seg = (struct hs_segment *)hs_memory_segment(mem, addr);
	if (!seg)
		return NULL;
	if (!seg->data)
		segment_load(mem, seg);
	uint64_t off = addr - seg->start;
	if (!seg->data || off > seg->span || len > seg->span - off)
		return NULL;
	return seg->data + off;
}

uint64_t hs_memory_next_dumped(const struct hs_memory *mem, uint64_t addr)
{
	size_t lo = 0, hi = mem->nsegs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mem->segs[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < mem->nsegs; lo++) {
		const struct hs_segment *seg = &mem->segs[lo];
		uint64_t from = addr > seg->start ? addr : seg->start;
		if (from - seg->start < seg->filesz)
			return from;
	}
	return UINT64_MAX;
}

uint64_t hs_memory_mapping_end(const struct hs_memory *mem, uint64_t addr)
{
	const struct hs_segment *seg = hs_memory_segment(mem, addr);
	if (!seg)
		return addr;
	const struct hs_segment *last = mem->segs + mem->nsegs - 1;
	while (seg < last && seg[1].start == seg->end)
		seg++;
	return seg->end;
}

uint64_t hs_memory_available(const struct hs_memory *mem, uint64_t addr)
{
	const struct hs_segment *seg = hs_memory_segment(mem, addr);
	if (!seg || addr - seg->start >= seg->filesz)
		return 0;
	return seg->filesz - (addr - seg->start);
}

struct hs_error *hs_memory_read(struct hs_memory *mem, uint64_t addr, void *buf, size_t len)
{
	uint8_t *out = buf;
	while (len) {
		struct hs_segment *seg = (struct hs_segment *)hs_memory_segment(mem, addr);
		if (!seg)
			return hs_error_fault(HS_ERR_UNMAPPED, addr);
		if (!seg->data)
			segment_load(mem, seg);
		uint64_t off = addr - seg->start;
		if (!seg->data && mem->gone)
			return gone_error(mem, addr);
		if (!seg->data || off >= seg->filesz)
			return hs_error_fault(HS_ERR_NOT_DUMPED, addr);
		uint64_t n = seg->filesz - off;
		if (n > len)
			n = len;
		memcpy(out, seg->data + off, n);
		out += n;
		addr += n;
		len -= n;
	}
	return NULL;
}

struct hs_error *hs_memory_read_u64(struct hs_memory *mem, uint64_t addr, uint64_t *ret)
{
	const uint8_t *p = hs_memory_span(mem, addr, 8);
	if (p) {
		memcpy(ret, p, 8);
		return NULL;
	}
	return hs_memory_read(mem, addr, ret, 8);
}

struct hs_error *hs_memory_read_u32(struct hs_memory *mem, uint64_t addr, uint32_t *ret)
{
	const uint8_t *p = hs_memory_span(mem, addr, 4);
	if (p) {
		memcpy(ret, p, 4);
		return NULL;
	}
	return hs_memory_read(mem, addr, ret, 4);
}

struct hs_error *hs_memory_read_string(struct hs_memory *mem, uint64_t addr, char *buf, size_t max)
{
	if (!max)
		return NULL;
	size_t i = 0;
	for (; i + 1 < max; i++) {
		char c;
		struct hs_error *err = hs_memory_read(mem, addr + i, &c, 1);
		if (err) {
			buf[i] = 0;
			return err;
		}
		buf[i] = c;
		if (!c)
			return NULL;
	}
	buf[i] = 0;
	return NULL;
}

void hs_memory_prefault_writable(struct hs_memory *mem)
{
#ifdef MADV_POPULATE_READ
	static const uint64_t page = 4096;
	for (size_t i = 0; i < mem->nsegs; i++) {
		const struct hs_segment *seg = &mem->segs[i];
		if (!(seg->flags & HS_SEG_W) || !seg->data || seg->owned || seg->filesz < 16 * page)
			continue;
		// Only what the file holds: a hole is zeros that cost nothing
		// until touched, and scans skip it.
		uint64_t p = seg->start, end = seg->start + seg->filesz;
		while (p < end) {
			uint64_t skip = hs_memory_skip_hole(mem, p);
			if (skip != p) {
				p = skip;
				continue;
			}
			uint64_t stop = p + data_run(mem, seg, p);
			uintptr_t a = (uintptr_t)(seg->data + (p - seg->start)) & ~(uintptr_t)(page - 1);
			uintptr_t b = (uintptr_t)(seg->data + (stop - seg->start)) & ~(uintptr_t)(page - 1);
			// Fails on kernels before 5.14 (EINVAL): then pages fault in as read.
			if (b > a)
				madvise((void *)a, b - a, MADV_POPULATE_READ);
			p = stop;
		}
	}
#else
	(void)mem;
#endif
}

uint64_t hs_memory_next_scan_run(const struct hs_memory *mem, uint64_t addr, uint64_t end, uint64_t *len_ret)
{
	while (addr < end) {
		const struct hs_segment *seg = hs_memory_segment(mem, addr);
		if (!seg || addr - seg->start >= seg->filesz) {
			uint64_t next = hs_memory_next_dumped(mem, addr);
			addr = next > addr ? next : addr + 1;
			continue;
		}
		uint64_t skip = hs_memory_skip_hole(mem, addr);
		if (skip != addr) {
			addr = skip;
			continue;
		}
		uint64_t run = seg->filesz - (addr - seg->start);
		if (seg->data && mem->nholes)
			run = data_run(mem, seg, addr);
		*len_ret = run < end - addr ? run : end - addr;
		return addr;
	}
	return UINT64_MAX;
}
