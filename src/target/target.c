/* target.c - see target.h. */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <unistd.h>
#include "decompress.h"
#include "paths.h"
#include "target.h"

static struct hs_target *target_alloc(enum hs_target_kind kind)
{
	struct hs_target *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->kind = kind;
	t->fd = -1;
	hs_memory_init(&t->mem);
	hs_notes_init(&t->notes);
	return t;
}

void hs_target_destroy(struct hs_target *t)
{
	if (!t)
		return;
	hs_memory_deinit(&t->mem);
	hs_notes_deinit(&t->notes);
	if (t->elf)
		elf_end(t->elf);
	if (t->fd >= 0)
		close(t->fd);
	free(t->path);
	free(t);
}

/* The end of the stack mapping holding sp.  A mapping split in several VMAs
 * (madvise, mprotect) is several segments, but adjacent segments may as well
 * be other mappings (a heap mmap'd right above a thread's stack), so the
 * stack runs on past its segment only to a mark known to be in it: a
 * thread's TCB (fs_base, at the top of a pthread stack) or, for the main
 * thread, AT_RANDOM's bytes and AT_EXECFN's string (at the top of [stack]),
 * through segments of the same protections without a gap. */
static uint64_t stack_end(const struct hs_target *t, const struct hs_thread *th,
			  const struct hs_segment *seg)
{
	uint64_t marks[3] = { th->regs[HS_REG_FS_BASE], hs_notes_auxv(&t->notes, AT_RANDOM),
			      hs_notes_auxv(&t->notes, AT_EXECFN) };
	uint64_t end = seg->end;
	for (size_t k = 0; k < 3; k++) {
		uint64_t m = marks[k];
		if (m < end)
			continue;
		const struct hs_segment *s = seg, *last = t->mem.segs + t->mem.nsegs - 1;
		while (s < last && s[1].start == s->end && s[1].flags == seg->flags && s->end <= m)
			s++;
		if (s->start <= m && m < s->end)
			end = s->end;
	}
	return end;
}

void hs_target_compute_stacks(struct hs_target *t)
{
	for (size_t i = 0; i < t->notes.nthreads; i++) {
		struct hs_thread *th = &t->notes.threads[i];
		uint64_t sp = th->regs[HS_REG_RSP];
		const struct hs_segment *seg = hs_memory_segment(&t->mem, sp);
		if (!seg) {
			th->stack_lo = th->stack_hi = 0;
			continue;
		}
		th->stack_lo = sp;
		th->stack_hi = stack_end(t, th, seg);
	}
}

// "an executable", ...; unknown types by number (buf >= 32).
static const char *elf_type_name(unsigned type, char *buf, size_t len)
{
	switch (type) {
	case ET_EXEC: return "an executable";
	case ET_DYN: return "a shared object or position-independent executable";
	case ET_REL: return "an object file";
	default:
		snprintf(buf, len, "an ELF file of type %u", type);
		return buf;
	}
}

// Mappings the process had that the core left out entirely (gcore omits
// read-only file mappings): known from NT_FILE, readable as NOT_DUMPED.
static struct hs_error *add_file_mappings(struct hs_target *t)
{
	for (size_t i = 0; i < t->notes.nfiles; i++) {
		const struct hs_mapped_file *f = &t->notes.files[i];
		struct hs_segment seg = {
			.start = f->start, .end = f->end, .flags = HS_SEG_R | HS_SEG_NOT_IN_CORE,
		};
		HS_CHECK(hs_memory_add(&t->mem, &seg));
	}
	return NULL;
}

// The data extents of [off, off + len) of the core file, one at a time:
// *at is moved to the next extent's start and its length returned (0: none
// left).  Without SEEK_DATA the whole rest counts as data.
static uint64_t next_data(const struct hs_target *t, uint64_t *at, uint64_t end)
{
	if (*at >= end)
		return 0;
	off_t d = lseek(t->fd, (off_t)*at, SEEK_DATA);
	if (d < 0)
		return errno == ENXIO ? 0 : end - *at;
	if ((uint64_t)d >= end)
		return 0;
	off_t h = lseek(t->fd, d, SEEK_HOLE);
	uint64_t stop = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
	*at = (uint64_t)d;
	return stop - (uint64_t)d;
}

// Scans read 8-byte words in place, so a segment's bytes must lie at its
// addresses' alignment mod 8 (memory.h).  The kernel and gdb page-align
// both; a core whose p_offset and p_vaddr disagree gets its bytes copied
// into an anonymous mapping, only the file's data extents (holes stay
// untouched zero pages: no memory for a sparse segment).
static struct hs_error *align_segment(struct hs_target *t, struct hs_segment *seg)
{
	uint64_t skew = seg->start & 7;
	size_t len = (size_t)(seg->filesz + skew);
	void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return hs_error_errno(errno, "%s: cannot copy the segment at 0x%" PRIx64 " (%" PRIu64 " bytes)",
				      t->path, seg->start, seg->filesz);
	uint8_t *copy = (uint8_t *)map + skew;
	uint64_t at = seg->file_offset, end = seg->file_offset + seg->filesz, n;
	while ((n = next_data(t, &at, end))) {
		memcpy(copy + (at - seg->file_offset), t->image + at, n);
		at += n;
	}
	mprotect(map, len, PROT_READ);
	seg->owned = map;
	seg->owned_map = len;
	seg->data = copy;
	return NULL;
}

// The holes of the core file in [off, off + len): zeros that scans skip and
// nothing should fault in (kernel cores leave untouched pages as holes).
static struct hs_error *record_holes(struct hs_target *t, uint64_t off, uint64_t len)
{
	uint64_t at = off, end = off + len;
	while (at < end) {
		off_t h = lseek(t->fd, (off_t)at, SEEK_HOLE);
		if (h < 0 || (uint64_t)h >= end)
			break;
		off_t d = lseek(t->fd, h, SEEK_DATA);
		uint64_t stop = d < 0 ? t->file_size : (uint64_t)d;
		if (stop <= (uint64_t)h)
			break;
		HS_CHECK(hs_memory_add_hole(&t->mem, (uint64_t)h, stop));
		at = stop;
	}
	return NULL;
}

/* Ask for the core's mapping in huge pages.  The analysis reads blocks all
 * over the core (types, inference, containers follow pointers), and with
 * 4 KiB pages nearly every such read is also a TLB miss.  Where the kernel
 * and file system keep a file's page cache in large folios (ext4 and xfs on
 * Linux 6.x), a mapping advised so reads the file ahead in 2 MiB folios and
 * maps them by PMD; elsewhere the advice is ignored.  Pages already cached
 * keep the folios they were cached in. */
static void advise_huge(const uint8_t *image, size_t size)
{
#ifdef MADV_HUGEPAGE
	uintptr_t a = (uintptr_t)image & ~(uintptr_t)4095;
	(void)madvise((void *)a, size + ((uintptr_t)image - a), MADV_HUGEPAGE);
#else
	(void)image;
	(void)size;
#endif
}

static struct hs_error *core_segments(struct hs_target *t)
{
	size_t nph;
	if (elf_getphdrnum(t->elf, &nph) != 0)
		return hs_error_create(HS_ERR_TARGET, "%s: cannot read the program headers (%s): the core is damaged or truncated",
				       t->path, elf_errmsg(-1));
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(t->elf, i, &ph))
			return hs_error_create(HS_ERR_TARGET, "%s: program header %zu is unreadable", t->path, i);
		// Whatever lies beyond the end of the file is missing: keep what is there.
		uint64_t avail = 0;
		if (ph.p_offset < t->file_size)
			avail = t->file_size - ph.p_offset;
		uint64_t have = ph.p_filesz < avail ? ph.p_filesz : avail;
		if (ph.p_type == PT_LOAD || ph.p_type == PT_NOTE)
			t->missing_bytes += ph.p_filesz - have;
		if (ph.p_type == PT_NOTE && have) {
			struct hs_error *err = hs_notes_parse(&t->notes, t->image + ph.p_offset, have, ph.p_align);
			if (err && err->code != HS_ERR_TARGET)
				return err;
			hs_error_destroy(err);   // partial notes are still useful
		} else if (ph.p_type == PT_LOAD) {
			struct hs_segment seg = {
				.start = ph.p_vaddr, .end = ph.p_vaddr + ph.p_memsz,
				.filesz = have, .file_offset = ph.p_offset,
				.data = have ? t->image + ph.p_offset : NULL,
				.flags = ((ph.p_flags & PF_R) ? HS_SEG_R : 0) |
					 ((ph.p_flags & PF_W) ? HS_SEG_W : 0) |
					 ((ph.p_flags & PF_X) ? HS_SEG_X : 0),
			};
			if (have >= HS_HOLE_MIN && seg.end > seg.start)
				HS_CHECK(record_holes(t, ph.p_offset, have));
			if (have && ((ph.p_vaddr ^ ph.p_offset) & 7) && seg.end > seg.start)
				HS_CHECK(align_segment(t, &seg));
			struct hs_error *err = hs_memory_add(&t->mem, &seg);
			if (err) {
				hs_segment_release(&seg);
				return err;
			}
		}
	}
	HS_CHECK(add_file_mappings(t));
	return hs_memory_finish(&t->mem);
}

struct hs_error *hs_target_open_core(const char *path, struct hs_target **ret)
{
	struct hs_error *err = NULL;
	struct hs_target *t = target_alloc(HS_TARGET_CORE);
	if (!t || !(t->path = strdup(path))) {
		free(t);
		return &hs_error_nomem;
	}
	t->fd = hs_open_regular(path);
	if (t->fd < 0) {
		err = errno == ENOENT ? hs_error_create(HS_ERR_TARGET, "%s: no such file", path)
		    : errno == EINVAL ? hs_error_create(HS_ERR_TARGET, "%s is not a regular file", path)
				      : hs_error_errno(errno, "cannot open %s", path);
		if (err->code == HS_ERR_OS)
			err->code = HS_ERR_TARGET;
		goto fail;
	}
	// A compressed core (.zst) is read through its decompressed copy.
	if ((err = hs_decompress_if_compressed(&t->fd, path)))
		goto fail;
	struct stat st;
	if (fstat(t->fd, &st) != 0) {
		err = hs_error_errno(errno, "cannot stat %s", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err = hs_error_create(HS_ERR_TARGET, "%s is not a regular file", path);
		goto fail;
	}
	t->file_size = st.st_size;
	if (st.st_size == 0) {
		err = hs_error_create(HS_ERR_TARGET, "%s is empty (0 bytes), not a core file", path);
		goto fail;
	}
	elf_version(EV_CURRENT);
	t->elf = elf_begin(t->fd, ELF_C_READ_MMAP, NULL);
	GElf_Ehdr eh;
	if (!t->elf || elf_kind(t->elf) != ELF_K_ELF || !gelf_getehdr(t->elf, &eh)) {
		err = hs_error_create(HS_ERR_TARGET, "%s is not an ELF file, so not a core file", path);
		goto fail;
	}
	if (eh.e_type != ET_CORE) {
		char tbuf[32];
		err = hs_error_create(HS_ERR_TARGET, "%s is %s, not a core file (give the core as the first argument, the program with --exe)",
				      path, elf_type_name(eh.e_type, tbuf, sizeof(tbuf)));
		goto fail;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
		err = hs_error_create(HS_ERR_TARGET, "%s is a core of another architecture (machine %u); heapscope reads x86-64 cores",
				      path, eh.e_machine);
		goto fail;
	}
	size_t size;
	t->image = (const uint8_t *)elf_rawfile(t->elf, &size);
	if (!t->image) {
		err = hs_error_create(HS_ERR_TARGET, "%s: cannot map the file (%s)", path, elf_errmsg(-1));
		goto fail;
	}
	advise_huge(t->image, size);
	if ((err = core_segments(t)))
		goto fail;
	t->pid = t->notes.pid;
	hs_target_compute_stacks(t);
	*ret = t;
	return NULL;
fail:
	hs_target_destroy(t);
	return err;
}

/* Live processes. */

static struct hs_error *pid_maps(struct hs_target *t)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", t->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return hs_error_errno(errno, "cannot read %s", path);
	char line[4096 + 256];
	struct hs_error *err = NULL;
	size_t nfiles = 0, cap = 0;
	while (fgets(line, sizeof(line), f)) {
		uint64_t start, end, offset;
		char perms[8];
		int name_at = 0;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %*s %n",
			   &start, &end, perms, &offset, &name_at) < 4)
			continue;
		char *name = line + name_at;
		name[strcspn(name, "\n")] = 0;
		struct hs_segment seg = {
			.start = start, .end = end,
			.flags = (perms[0] == 'r' ? HS_SEG_R : 0) | (perms[1] == 'w' ? HS_SEG_W : 0) |
				 (perms[2] == 'x' ? HS_SEG_X : 0),
		};
		// Unreadable mappings and [vvar] stay "not dumped": reading them fails.
		if (perms[0] == 'r' && strcmp(name, "[vvar]") != 0)
			seg.filesz = end - start;
		if ((err = hs_memory_add(&t->mem, &seg)))
			break;
		if (name[0] != '/')
			continue;
		if (nfiles == cap) {
			cap = cap ? cap * 2 : 64;
			struct hs_mapped_file *files = realloc(t->notes.files, cap * sizeof(*files));
			if (!files) {
				err = &hs_error_nomem;
				break;
			}
			t->notes.files = files;
		}
		struct hs_mapped_file *mf = &t->notes.files[nfiles];
		*mf = (struct hs_mapped_file){ start, end, offset, strdup(name) };
		if (!mf->path) {
			err = &hs_error_nomem;
			break;
		}
		t->notes.nfiles = ++nfiles;
	}
	fclose(f);
	if (err)
		return err;
	return hs_memory_finish(&t->mem);
}

size_t hs_read_small_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t done = 0;
	while (done < len) {
		ssize_t r = read(fd, buf + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		done += r;
	}
	close(fd);
	return done;
}

static struct hs_error *pid_process_info(struct hs_target *t)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", t->pid);
	size_t n = hs_read_small_file(path, buf, sizeof(t->notes.psargs) - 1);
	for (size_t i = 0; i < n; i++)
		t->notes.psargs[i] = buf[i] ? buf[i] : ' ';
	t->notes.psargs[n] = 0;
	for (size_t i = n; i > 0 && t->notes.psargs[i - 1] == ' '; i--)
		t->notes.psargs[i - 1] = 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", t->pid);
	n = hs_read_small_file(path, t->notes.fname, sizeof(t->notes.fname) - 1);
	t->notes.fname[n] = 0;
	t->notes.fname[strcspn(t->notes.fname, "\n")] = 0;
	snprintf(path, sizeof(path), "/proc/%d/auxv", t->pid);
	n = hs_read_small_file(path, buf, sizeof(buf));
	t->notes.pid = t->pid;
	return n ? hs_notes_parse_auxv_raw(&t->notes, (const uint8_t *)buf, n) : NULL;
}

static int tid_cmp(const void *a, const void *b)
{
	const struct hs_thread *x = a, *y = b;
	return (x->tid > y->tid) - (x->tid < y->tid);
}

static struct hs_error *pid_threads(struct hs_target *t)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", t->pid);
	DIR *dir = opendir(path);
	if (!dir)
		return hs_error_errno(errno, "cannot list the threads in %s", path);
	struct dirent *de;
	struct hs_error *err = NULL;
	while ((de = readdir(dir))) {
		int tid = atoi(de->d_name);
		if (tid <= 0)
			continue;
		struct hs_thread *th = realloc(t->notes.threads, (t->notes.nthreads + 1) * sizeof(*th));
		if (!th) {
			err = &hs_error_nomem;
			break;
		}
		t->notes.threads = th;
		th += t->notes.nthreads++;
		memset(th, 0, sizeof(*th));
		th->tid = tid;
		// Registers: only the tracer can read them.  When we are not (GDB is),
		// the front end supplies them with hs_target_set_regs.
		struct user_regs_struct regs;
		if (ptrace(PTRACE_GETREGS, tid, NULL, &regs) == 0)
			memcpy(th->regs, &regs, sizeof(th->regs));
	}
	closedir(dir);
	if (t->notes.nthreads)
		qsort(t->notes.threads, t->notes.nthreads, sizeof(*t->notes.threads), tid_cmp);
	// The main thread first, as in a core.
	for (size_t i = 0; i < t->notes.nthreads; i++) {
		if (t->notes.threads[i].tid == t->pid && i) {
			struct hs_thread main = t->notes.threads[i];
			memmove(t->notes.threads + 1, t->notes.threads, i * sizeof(main));
			t->notes.threads[0] = main;
		}
	}
	return err;
}

struct hs_error *hs_target_open_pid(int pid, struct hs_target **ret)
{
	struct hs_error *err;
	if (pid <= 0)
		return hs_error_create(HS_ERR_TARGET, "%d is not a process id", pid);
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return hs_error_create(HS_ERR_TARGET, "no process with pid %d", pid);
	if (hs_process_exited(pid))
		return hs_error_create(HS_ERR_TARGET, "pid %d has exited (a zombie its parent has not reaped): it has no memory left to read", pid);
	struct hs_target *t = target_alloc(HS_TARGET_PID);
	if (!t)
		return &hs_error_nomem;
	t->pid = pid;
	if (asprintf(&t->path, "/proc/%d", pid) < 0) {
		t->path = NULL;
		err = &hs_error_nomem;
		goto fail;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	t->mem.mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	t->mem.pid = pid;
	if (t->mem.mem_fd < 0) {
		int e = errno;
		if (e == ENOENT)
			err = hs_error_create(HS_ERR_TARGET, "no process with pid %d", pid);
		else if (e == EACCES || e == EPERM)
			err = hs_error_create(HS_ERR_PERMISSION,
					      "not allowed to read the memory of pid %d (%s): run as its user or root, or check kernel.yama.ptrace_scope",
					      pid, strerror(e));
		else
			err = hs_error_errno(e, "cannot open %s", path);
		goto fail;
	}
	if ((err = pid_maps(t)) || (err = pid_process_info(t)) || (err = pid_threads(t)))
		goto fail;
	hs_target_compute_stacks(t);
	*ret = t;
	return NULL;
fail:
	if (err->code == HS_ERR_OS)
		err->code = HS_ERR_TARGET;
	hs_target_destroy(t);
	return err;
}

struct hs_error *hs_target_set_regs(struct hs_target *t, int tid, const uint64_t *regs, size_t n)
{
	for (size_t i = 0; i < t->notes.nthreads; i++) {
		struct hs_thread *th = &t->notes.threads[i];
		if (th->tid != tid)
			continue;
		memcpy(th->regs, regs, (n < HS_NREGS ? n : HS_NREGS) * 8);
		hs_target_compute_stacks(t);
		return NULL;
	}
	return hs_error_create(HS_ERR_NOT_FOUND, "no thread %d in process %d", tid, t->pid);
}

struct hs_error *hs_target_open_buffers(const struct hs_segment *segs, size_t nsegs,
					struct hs_target **ret)
{
	struct hs_target *t = target_alloc(HS_TARGET_BUFFERS);
	if (!t || !(t->path = strdup("<memory>"))) {
		free(t);
		return &hs_error_nomem;
	}
	struct hs_error *err = NULL;
	for (size_t i = 0; i < nsegs && !err; i++) {
		struct hs_segment seg = segs[i];
		seg.owned = NULL;
		seg.owned_map = 0;
		if (seg.filesz && seg.data) {
			// At the addresses' alignment mod 8 (memory.h).
			seg.owned = malloc(seg.filesz + 8);
			if (!seg.owned) {
				err = &hs_error_nomem;
				break;
			}
			memcpy(seg.owned + (seg.start & 7), seg.data, seg.filesz);
			seg.data = seg.owned + (seg.start & 7);
		} else {
			seg.filesz = 0;
			seg.data = NULL;
		}
		err = hs_memory_add(&t->mem, &seg);
		if (err)
			free(seg.owned);
	}
	if (!err)
		err = hs_memory_finish(&t->mem);
	if (err) {
		hs_target_destroy(t);
		return err;
	}
	*ret = t;
	return NULL;
}
