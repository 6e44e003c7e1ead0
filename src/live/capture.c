/* capture.c - see capture.h.
 *
 * The core is laid out as the kernel lays out its own: the ELF header, the
 * program headers (PT_NOTE first, then one PT_LOAD per mapping in address
 * order), the notes, then the dumped bytes of each PT_LOAD at a page-aligned
 * offset.  The whole layout is computed before the first memory byte is read,
 * so the file can be streamed (zstd) and holes stay holes (raw).
 */
#include <dirent.h>
#include <elf.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
#include "capture.h"
#include "paths.h"
#include "session.h"

#define PAGE 4096ull
#define CHUNK (4u << 20)                 /* bytes read from the process at a time */
#define PAGEMAP_PRESENT (1ull << 63)
#define PAGEMAP_SWAPPED (1ull << 62)
#define PAGEMAP_FILE (1ull << 61)
#define XSTATE_MAX 16384
#define ZSTD_MT_MIN (64ull << 20)            /* compress on worker threads from this size */
/* heapscope's own notes (name "HEAPSCOPE"), documented in docs/cores.md. */
#define NT_HEAPSCOPE_CAPTURE 0x48530001u   /* "HS" 1 */
#define NT_HEAPSCOPE_BUILD_IDS 0x48530002u /* "HS" 2 */

static const struct { const char *name; unsigned bit; } filter_names[] = {
	{ "anon", HS_CAP_ANON }, { "shared", HS_CAP_SHARED }, { "data", HS_CAP_DATA },
	{ "files", HS_CAP_FILES }, { "file-shared", HS_CAP_FILE_SHARED },
	{ "elf-headers", HS_CAP_ELF_HEADERS },
};

struct hs_error *hs_capture_parse_filter(const char *spec, unsigned *ret)
{
	unsigned f = (spec[0] == '+' || spec[0] == '-') ? HS_CAP_DEFAULT : 0;
	char buf[256];
	if (strlen(spec) >= sizeof(buf))
		return hs_error_create(HS_ERR_USAGE, "--filter: '%s' is too long", spec);
	strcpy(buf, spec);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char op = (*tok == '+' || *tok == '-') ? *tok++ : '+';
		unsigned bit = 0;
		if (!strcmp(tok, "default"))
			bit = HS_CAP_DEFAULT;
		else if (!strcmp(tok, "all"))
			bit = HS_CAP_ALL;
		for (size_t i = 0; !bit && i < sizeof(filter_names) / sizeof(filter_names[0]); i++)
			if (!strcmp(tok, filter_names[i].name))
				bit = filter_names[i].bit;
		if (!bit)
			return hs_error_create(HS_ERR_USAGE,
					       "--filter: unknown kind '%s' (anon, shared, data, files, file-shared, elf-headers, default, all)",
					       tok);
		f = op == '-' ? f & ~bit : f | bit;
	}
	if (!f)
		return hs_error_create(HS_ERR_USAGE, "--filter '%s' leaves nothing to capture", spec);
	*ret = f;
	return NULL;
}

void hs_capture_filter_name(unsigned filter, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = 0;
	for (size_t i = 0; i < sizeof(filter_names) / sizeof(filter_names[0]); i++)
		if (filter & filter_names[i].bit)
			used += snprintf(buf + used, used < len ? len - used : 0, "%s%s",
					 used ? "," : "", filter_names[i].name);
}

/* The output: a raw file written with pwrite (holes skipped), or a zstd stream. */

struct hs_capture {
	char *path, *tmp_path;      /* tmp_path: the fallback's hidden name, else NULL */
	int fd;
	bool committed, dumped;
	struct hs_capture_options o;
	ZSTD_CCtx *z;
	uint8_t *zout;
	size_t zout_cap;
	uint64_t off;               /* logical offset in the core */
	struct hs_capture_stats stats;
};

static struct hs_error *write_all(struct hs_capture *c, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = off == UINT64_MAX ? write(c->fd, p, len) : pwrite(c->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : ENOSPC;
			return hs_error_errno(e, "cannot write %s (%" PRIu64 " bytes written)", c->path,
					      c->stats.written_bytes);
		}
		p += n;
		len -= n;
		c->stats.written_bytes += n;
		if (off != UINT64_MAX)
			off += n;
	}
	return NULL;
}

static struct hs_error *zstd_feed(struct hs_capture *c, const void *buf, size_t len, ZSTD_EndDirective end)
{
	ZSTD_inBuffer in = { buf, len, 0 };
	for (;;) {
		ZSTD_outBuffer out = { c->zout, c->zout_cap, 0 };
		size_t left = ZSTD_compressStream2(c->z, &out, &in, end);
		if (ZSTD_isError(left))
			return hs_error_create(HS_ERR_OTHER, "zstd: %s", ZSTD_getErrorName(left));
		if (out.pos)
			HS_CHECK(write_all(c, c->zout, out.pos, UINT64_MAX));
		if (end == ZSTD_e_end ? left == 0 : in.pos == in.size)
			return NULL;
	}
}

static struct hs_error *out_write(struct hs_capture *c, const void *buf, size_t len)
{
	struct hs_error *err = c->z ? zstd_feed(c, buf, len, ZSTD_e_continue)
				    : write_all(c, buf, len, c->off);
	c->off += len;
	return err;
}

static const uint8_t zeros[64 << 10];

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (size_t i = 0; i < PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Memory bytes (whole pages at a page-aligned offset): a raw core leaves zero
 * pages as holes, as the kernel's cores do. */
static struct hs_error *out_memory(struct hs_capture *c, const uint8_t *buf, size_t len)
{
	if (c->z || len % PAGE || c->off % PAGE)
		return out_write(c, buf, len);
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && !page_is_zero(buf + j))
			j += PAGE;
		if (j > i)
			HS_CHECK(write_all(c, buf + i, j - i, c->off + i));
		while (j < len && page_is_zero(buf + j))
			j += PAGE;
		i = j;
	}
	c->off += len;
	return NULL;
}

static struct hs_error *out_zeros(struct hs_capture *c, uint64_t len)
{
	if (!c->z) {
		c->off += len;   // a hole: ftruncate at the end gives the size
		return NULL;
	}
	while (len) {
		size_t n = len < sizeof(zeros) ? len : sizeof(zeros);
		HS_CHECK(out_write(c, zeros, n));
		len -= n;
	}
	return NULL;
}

static struct hs_error *out_finish(struct hs_capture *c)
{
	if (c->z)
		return zstd_feed(c, NULL, 0, ZSTD_e_end);
	if (ftruncate(c->fd, (off_t)c->off) != 0)
		return hs_error_errno(errno, "cannot write %s", c->path);
	return NULL;
}

struct hs_error *hs_capture_open(const char *path, const struct hs_capture_options *o,
				 struct hs_capture **ret)
{
	struct hs_capture *c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		return &hs_error_nomem;
	}
	c->fd = -1;
	c->o = *o;
	if (!c->o.filter)
		c->o.filter = HS_CAP_DEFAULT;
	struct hs_error *err = NULL;
	char *copy = NULL;
	struct hs_outpath op;
	if ((err = hs_outpath(path, &op)))
		goto fail;
	free(c->path);
	c->path = op.file;   // a link's file: the link stays
	if (op.special) {
		// Never renamed over (/dev/null, we may be root); and the core
		// is written at offsets, which a pipe cannot take.
		err = hs_error_create(HS_ERR_USAGE, "%s is not a regular file (a device or a pipe); "
				      "-o takes the core's file name", path);
		goto fail;
	}
	copy = strdup(c->path);
	if (!copy) {
		err = &hs_error_nomem;
		goto fail;
	}
	const char *dir = dirname(copy);
	// Unnamed until committed: nothing is left behind whatever happens to us.
	c->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (c->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		char *base = basename(strcpy(copy, c->path));
		char *d = strdup(c->path);
		if (!d || asprintf(&c->tmp_path, "%s/.%s.XXXXXX", dirname(d), base) < 0) {
			free(d);
			c->tmp_path = NULL;
			err = &hs_error_nomem;
			goto fail;
		}
		free(d);
		c->fd = mkostemp(c->tmp_path, O_CLOEXEC);
		if (c->fd < 0) {
			free(c->tmp_path);
			c->tmp_path = NULL;
		}
	}
	if (c->fd < 0) {
		int e = errno;
		err = hs_error_errno(e, "cannot write a core in %s", dir);
		goto fail;
	}
	if (c->o.compress == HS_COMPRESS_ZSTD) {
		c->z = ZSTD_createCCtx();
		c->zout_cap = ZSTD_CStreamOutSize();
		c->zout = malloc(c->zout_cap);
		if (!c->z || !c->zout) {
			err = &hs_error_nomem;
			goto fail;
		}
		ZSTD_CCtx_setParameter(c->z, ZSTD_c_compressionLevel, c->o.zstd_level ? c->o.zstd_level : 1);
		ZSTD_CCtx_setParameter(c->z, ZSTD_c_checksumFlag, 1);
	}
	free(copy);
	*ret = c;
	return NULL;
fail:
	free(copy);
	hs_capture_destroy(c);
	return err;
}

const char *hs_capture_temp_path(const struct hs_capture *c)
{
	return c->tmp_path;
}

const struct hs_capture_stats *hs_capture_stats(const struct hs_capture *c)
{
	return &c->stats;
}

void hs_capture_destroy(struct hs_capture *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	if (!c->committed && c->tmp_path)
		unlink(c->tmp_path);
	ZSTD_freeCCtx(c->z);
	free(c->zout);
	free(c->tmp_path);
	free(c->path);
	free(c);
}

struct hs_error *hs_capture_commit(struct hs_capture *c)
{
	if (!c->dumped)
		return hs_error_create(HS_ERR_OTHER, "nothing was captured into %s", c->path);
	// The name comes only after every byte was written, so no reader ever
	// sees a half-written core under it.  Waiting for the disk as well
	// (fdatasync) would cost more than the capture itself on a large heap,
	// and only matters if the machine goes down right after: --sync.
	if (c->o.sync && fdatasync(c->fd) != 0)
		return hs_error_errno(errno, "cannot write %s", c->path);
	if (c->tmp_path) {
		if (rename(c->tmp_path, c->path) != 0)
			return hs_error_errno(errno, "cannot name the core %s", c->path);
	} else {
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", c->fd);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, c->path, AT_SYMLINK_FOLLOW) != 0) {
			if (errno != EEXIST)
				return hs_error_errno(errno, "cannot name the core %s", c->path);
			// Replace an older file atomically: link under a hidden name, rename.
			char *tmp;
			if (asprintf(&tmp, "%s.heapscope-%d", c->path, (int)getpid()) < 0)
				return &hs_error_nomem;
			unlink(tmp);
			int r = linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW);
			if (r == 0 && (r = rename(tmp, c->path)) != 0)
				unlink(tmp);
			int e = errno;
			free(tmp);
			if (r != 0)
				return hs_error_errno(e, "cannot name the core %s", c->path);
		}
	}
	c->committed = true;
	return NULL;
}

/* The process's mappings, from /proc/PID/smaps (for "Anonymous:" and VmFlags). */

enum dump { DUMP_NONE, DUMP_FIRST_PAGE, DUMP_ALL };

struct mapping {
	uint64_t start, end, offset;
	char perms[5];
	uint64_t inode;
	char *name;                 /* "" for anonymous */
	uint64_t anon_kb;           /* smaps "Anonymous:" (modified private pages) */
	bool dontdump;              /* VmFlags dd: MADV_DONTDUMP */
	enum dump dump;
	bool holes;                 /* private anonymous: untouched pages are zeros */
	uint64_t file_offset;       /* of the dumped bytes in the core */
	uint64_t filesz;
};

struct proc {
	int pid;
	int mem_fd, pagemap_fd;
	struct mapping *maps;
	size_t nmaps;
	uint8_t *buf;               /* CHUNK bytes */
	uint64_t *pm;               /* CHUNK / PAGE pagemap entries */
};

static void proc_deinit(struct proc *p)
{
	for (size_t i = 0; i < p->nmaps; i++)
		free(p->maps[i].name);
	free(p->maps);
	free(p->buf);
	free(p->pm);
	if (p->mem_fd >= 0)
		close(p->mem_fd);
	if (p->pagemap_fd >= 0)
		close(p->pagemap_fd);
}

static struct hs_error *gone_error(int pid)
{
	return hs_error_create(HS_ERR_TARGET, "pid %d exited during the capture; no core was written", pid);
}

static struct hs_error *read_maps(struct proc *p)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/smaps", p->pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		// A killed process: its /proc files vanish (ENOENT) or refuse (ESRCH).
		int e = errno;
		if (e == ENOENT || e == ESRCH || hs_process_exited(p->pid))
			return gone_error(p->pid);
		return hs_error_errno(e, "cannot read %s", path);
	}
	char line[4096 + 256];
	size_t cap = 0;
	struct hs_error *err = NULL;
	struct mapping *m = NULL;
	while (fgets(line, sizeof(line), f)) {
		uint64_t start, end, offset, inode;
		char perms[8];
		int name_at = 0;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*x:%*x %" SCNu64 " %n",
			   &start, &end, perms, &offset, &inode, &name_at) >= 5 && name_at) {
			if (p->nmaps == cap) {
				cap = cap ? cap * 2 : 256;
				struct mapping *grown = realloc(p->maps, cap * sizeof(*grown));
				if (!grown) {
					err = &hs_error_nomem;
					break;
				}
				p->maps = grown;
			}
			m = &p->maps[p->nmaps];
			memset(m, 0, sizeof(*m));
			m->start = start;
			m->end = end;
			m->offset = offset;
			m->inode = inode;
			snprintf(m->perms, sizeof(m->perms), "%.4s", perms);
			char *name = line + name_at;
			name[strcspn(name, "\n")] = 0;
			if (!(m->name = strdup(name))) {
				err = &hs_error_nomem;
				break;
			}
			p->nmaps++;
		} else if (m && !strncmp(line, "Anonymous:", 10)) {
			m->anon_kb = strtoull(line + 10, NULL, 10);
		} else if (m && !strncmp(line, "VmFlags:", 8)) {
			m->dontdump = strstr(line + 8, " dd") != NULL;
		}
	}
	if (!err && ferror(f))
		err = hs_error_errno(errno, "cannot read %s", path);
	fclose(f);
	if (!err && p->nmaps == 0)
		// Only a kernel thread lives without memory; anything else is exiting.
		err = hs_process_is_kernel_thread(p->pid)
			? hs_error_create(HS_ERR_TARGET, "pid %d is a kernel thread: it has no memory to capture", p->pid)
			: gone_error(p->pid);
	return err;
}

/* Read [addr, addr+len) of the process into buf.  Pages the kernel will not
 * give are zeros (counted); a process that is gone is an error. */
static struct hs_error *proc_read(struct proc *p, struct hs_capture *c, uint64_t addr, uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		struct iovec local = { buf + done, len - done };
		struct iovec remote = { (void *)(uintptr_t)(addr + done), len - done };
		ssize_t n = process_vm_readv(p->pid, &local, 1, &remote, 1, 0);
		if (n > 0) {
			done += n;
			continue;
		}
		if (n < 0 && errno == ESRCH)
			return gone_error(p->pid);
		// One page through /proc/PID/mem (it reads what process_vm_readv may
		// not), else zeros.
		size_t page = PAGE - ((addr + done) & (PAGE - 1));
		if (page > len - done)
			page = len - done;
		ssize_t r = pread(p->mem_fd, buf + done, page, (off_t)(addr + done));
		if (r <= 0) {
			if (hs_process_exited(p->pid))
				return gone_error(p->pid);
			memset(buf + done, 0, page);
			c->stats.unreadable_pages++;
			r = page;
		}
		done += r;
	}
	return NULL;
}

static bool is_anonymous(const struct mapping *m)
{
	return m->inode == 0 && m->name[0] != '/';
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

/* What of this mapping goes into the core. */
static enum dump decide(struct proc *p, struct hs_capture *c, struct mapping *m)
{
	unsigned f = c->o.filter;
	bool shared = m->perms[3] == 's';
	if (m->perms[0] != 'r' || m->dontdump || !strcmp(m->name, "[vvar]") || !strcmp(m->name, "[vsyscall]"))
		return DUMP_NONE;   // PROT_NONE reservations, MADV_DONTDUMP, no bytes to read
	if (!strcmp(m->name, "[vdso]"))
		return DUMP_ALL;    // the kernel always dumps it; libdwfl reads the vDSO from it
	if (shared) {
		// Shared memory with no file behind it (shm, memfd, deleted files) is
		// anonymous shared memory, as for the kernel's coredump_filter.
		bool anon = m->inode == 0 || !strncmp(m->name, "/SYSV", 5) || !strncmp(m->name, "/dev/zero", 9) ||
			    !strncmp(m->name, "/memfd:", 7) || ends_with(m->name, " (deleted)");
		return (f & (anon ? HS_CAP_SHARED : HS_CAP_FILE_SHARED)) ? DUMP_ALL : DUMP_NONE;
	}
	if (is_anonymous(m)) {
		m->holes = true;
		return (f & HS_CAP_ANON) ? DUMP_ALL : DUMP_NONE;
	}
	// Private file mappings: written to (data, bss, relro) or as in the file.
	if (m->perms[1] == 'w' || m->anon_kb)
		return (f & HS_CAP_DATA) ? DUMP_ALL : DUMP_NONE;
	if (f & HS_CAP_FILES)
		return DUMP_ALL;
	if ((f & HS_CAP_ELF_HEADERS) && m->offset == 0) {
		uint8_t magic[4];
		struct iovec local = { magic, 4 }, remote = { (void *)(uintptr_t)m->start, 4 };
		if (process_vm_readv(p->pid, &local, 1, &remote, 1, 0) == 4 && !memcmp(magic, ELFMAG, SELFMAG))
			return DUMP_FIRST_PAGE;
	}
	return DUMP_NONE;
}

/* Notes. */

struct notes {
	uint8_t *buf;
	size_t len, cap;
};

static struct hs_error *note_add(struct notes *n, const char *name, uint32_t type, const void *desc, size_t dlen)
{
	size_t namesz = strlen(name) + 1;
	size_t need = 12 + ((namesz + 3) & ~3ul) + ((dlen + 3) & ~3ul);
	if (n->len + need > n->cap) {
		size_t cap = (n->cap ? n->cap * 2 : 16384) + need;
		uint8_t *grown = realloc(n->buf, cap);
		if (!grown)
			return &hs_error_nomem;
		n->buf = grown;
		n->cap = cap;
	}
	uint8_t *p = n->buf + n->len;
	memset(p, 0, need);
	uint32_t hdr[3] = { (uint32_t)namesz, (uint32_t)dlen, type };
	memcpy(p, hdr, 12);
	memcpy(p + 12, name, namesz);
	if (dlen)
		memcpy(p + 12 + ((namesz + 3) & ~3ul), desc, dlen);
	n->len += need;
	return NULL;
}

/* Fields of /proc/PID[/task/TID]/stat after the command name: [0] is the state. */
static int stat_fields(const char *path, char *buf, size_t cap, char **fields, int max)
{
	size_t n = hs_read_small_file(path, buf, cap - 1);
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	if (!rp)
		return 0;
	int k = 0;
	char *save = NULL;
	for (char *t = strtok_r(rp + 1, " \n", &save); t && k < max; t = strtok_r(NULL, " \n", &save))
		fields[k++] = t;
	return k;
}

static uint64_t status_hex(const char *status, const char *key)
{
	const char *at = strstr(status, key);
	return at ? strtoull(at + strlen(key), NULL, 16) : 0;
}

static struct timeval ticks_tv(const char *field)
{
	long hz = sysconf(_SC_CLK_TCK);
	unsigned long long t = field ? strtoull(field, NULL, 10) : 0;
	if (hz <= 0)
		hz = 100;
	return (struct timeval){ .tv_sec = t / hz, .tv_usec = (t % hz) * 1000000 / hz };
}

static struct hs_error *thread_notes(struct notes *n, int pid, int tid, const char **stat_pid)
{
	struct elf_prstatus pr;
	memset(&pr, 0, sizeof(pr));
	struct user_regs_struct regs;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &regs) != 0) {
		// A thread we stopped leaves its stop only by dying (SIGKILL).
		if (errno == ESRCH || hs_process_exited(pid))
			return gone_error(pid);
		return hs_error_errno(errno, "cannot read the registers of thread %d", tid);
	}
	memcpy(&pr.pr_reg, &regs, sizeof(pr.pr_reg) < sizeof(regs) ? sizeof(pr.pr_reg) : sizeof(regs));
	// A real signal being delivered is worth NT_SIGINFO; our own stop is not.
	siginfo_t si;
	bool have_si = ptrace(PTRACE_GETSIGINFO, tid, NULL, &si) == 0 && si.si_signo > 0 &&
		       !(si.si_signo == SIGTRAP && (si.si_code >> 8) != 0);
	if (have_si) {
		pr.pr_info.si_signo = si.si_signo;
		pr.pr_info.si_code = si.si_code;
		pr.pr_info.si_errno = si.si_errno;
		pr.pr_cursig = (short)si.si_signo;
	}
	char path[96], buf[4096], status[4096];
	char *f[20] = { 0 };
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	stat_fields(path, buf, sizeof(buf), f, 20);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	size_t sn = hs_read_small_file(path, status, sizeof(status) - 1);
	status[sn] = 0;
	pr.pr_pid = tid;
	pr.pr_ppid = stat_pid[0] ? atoi(stat_pid[0]) : 0;
	pr.pr_pgrp = stat_pid[1] ? atoi(stat_pid[1]) : 0;
	pr.pr_sid = stat_pid[2] ? atoi(stat_pid[2]) : 0;
	pr.pr_sigpend = status_hex(status, "\nSigPnd:") | status_hex(status, "\nShdPnd:");
	pr.pr_sighold = status_hex(status, "\nSigBlk:");
	pr.pr_utime = ticks_tv(f[11]);
	pr.pr_stime = ticks_tv(f[12]);
	struct user_fpregs_struct fp;
	bool have_fp = ptrace(PTRACE_GETFPREGS, tid, NULL, &fp) == 0;
	pr.pr_fpvalid = have_fp;
	HS_CHECK(note_add(n, "CORE", NT_PRSTATUS, &pr, sizeof(pr)));
	if (have_fp)
		HS_CHECK(note_add(n, "CORE", NT_PRFPREG, &fp, sizeof(fp)));
	static uint8_t xstate[XSTATE_MAX];
	struct iovec iov = { xstate, sizeof(xstate) };
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) == 0 && iov.iov_len)
		HS_CHECK(note_add(n, "LINUX", NT_X86_XSTATE, xstate, iov.iov_len));
	if (have_si)
		HS_CHECK(note_add(n, "CORE", NT_SIGINFO, &si, sizeof(si)));
	return NULL;
}

static struct hs_error *psinfo_note(struct notes *n, int pid, char **f)
{
	struct elf_prpsinfo ps;
	memset(&ps, 0, sizeof(ps));
	char path[64], buf[4096];
	if (f[0]) {
		const char *states = "RSDTZW";
		const char *at = strchr(states, f[0][0]);
		ps.pr_sname = f[0][0];
		ps.pr_state = at ? (char)(at - states) : 0;
		ps.pr_zomb = f[0][0] == 'Z';
	}
	ps.pr_ppid = f[1] ? atoi(f[1]) : 0;
	ps.pr_pgrp = f[2] ? atoi(f[2]) : 0;
	ps.pr_sid = f[3] ? atoi(f[3]) : 0;
	ps.pr_flag = f[6] ? strtoul(f[6], NULL, 10) : 0;
	ps.pr_nice = f[16] ? (char)atoi(f[16]) : 0;
	ps.pr_pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	size_t sn = hs_read_small_file(path, buf, sizeof(buf) - 1);
	buf[sn] = 0;
	const char *uid = strstr(buf, "\nUid:"), *gid = strstr(buf, "\nGid:");
	ps.pr_uid = uid ? (unsigned)strtoul(uid + 5, NULL, 10) : 0;
	ps.pr_gid = gid ? (unsigned)strtoul(gid + 5, NULL, 10) : 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	size_t cn = hs_read_small_file(path, buf, sizeof(ps.pr_fname));
	for (size_t i = 0; i < cn && buf[i] != '\n'; i++)
		ps.pr_fname[i] = buf[i];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	size_t an = hs_read_small_file(path, buf, sizeof(ps.pr_psargs) - 1);
	for (size_t i = 0; i < an; i++)
		ps.pr_psargs[i] = buf[i] ? buf[i] : ' ';
	for (size_t i = an; i > 0 && ps.pr_psargs[i - 1] == ' '; i--)
		ps.pr_psargs[i - 1] = 0;
	return note_add(n, "CORE", NT_PRPSINFO, &ps, sizeof(ps));
}

static bool is_file_mapping(const struct mapping *m)
{
	return m->name[0] == '/' && m->inode != 0;
}

static struct hs_error *file_note(struct notes *n, const struct proc *p)
{
	size_t count = 0, names = 0;
	for (size_t i = 0; i < p->nmaps; i++)
		if (is_file_mapping(&p->maps[i])) {
			count++;
			names += strlen(p->maps[i].name) + 1;
		}
	size_t len = 16 + count * 24 + names;
	uint8_t *d = malloc(len);
	if (!d)
		return &hs_error_nomem;
	uint64_t hdr[2] = { count, PAGE };
	memcpy(d, hdr, 16);
	uint8_t *e = d + 16, *s = d + 16 + count * 24;
	for (size_t i = 0; i < p->nmaps; i++) {
		const struct mapping *m = &p->maps[i];
		if (!is_file_mapping(m))
			continue;
		uint64_t ent[3] = { m->start, m->end, m->offset / PAGE };
		memcpy(e, ent, 24);
		e += 24;
		size_t k = strlen(m->name) + 1;
		memcpy(s, m->name, k);
		s += k;
	}
	struct hs_error *err = note_add(n, "CORE", NT_FILE, d, len);
	free(d);
	return err;
}

/* The build-id of the file behind a mapping: the mapped file itself
 * (/proc/PID/map_files) when we may open it, else the path. */
static size_t mapping_build_id(int pid, const struct mapping *m, uint8_t *id, size_t cap)
{
	char path[128];
	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start, m->end);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open(m->name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t len = 0;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_kind(elf) == ELF_K_ELF) {
		const void *bits;
		ssize_t r = dwelf_elf_gnu_build_id(elf, &bits);
		if (r > 0 && (size_t)r <= cap) {
			memcpy(id, bits, r);
			len = r;
		}
	}
	elf_end(elf);
	close(fd);
	return len;
}

/* NT_HEAPSCOPE_BUILD_IDS: "START END BUILD-ID PATH\n" for the first mapping of
 * every ELF file; NT_HEAPSCOPE_CAPTURE: "key=value\n" lines. */
static struct hs_error *heapscope_notes(struct notes *n, const struct proc *p, const struct hs_capture *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return &hs_error_nomem;
	elf_version(EV_CURRENT);
	for (size_t i = 0; i < p->nmaps; i++) {
		const struct mapping *m = &p->maps[i];
		if (!is_file_mapping(m) || m->offset != 0 || (i && p->maps[i - 1].inode == m->inode &&
							      !strcmp(p->maps[i - 1].name, m->name)))
			continue;
		uint8_t id[64];
		size_t idlen = mapping_build_id(p->pid, m, id, sizeof(id));
		if (!idlen)
			continue;
		fprintf(f, "%" PRIx64 " %" PRIx64 " ", m->start, m->end);
		for (size_t k = 0; k < idlen; k++)
			fprintf(f, "%02x", id[k]);
		fprintf(f, " %s\n", m->name);
	}
	fclose(f);
	struct hs_error *err = note_add(n, "HEAPSCOPE", NT_HEAPSCOPE_BUILD_IDS, text, len + 1);
	free(text);
	if (err)
		return err;
	char filter[128], when[32];
	hs_capture_filter_name(c->o.filter, filter, sizeof(filter));
	time_t now = time(NULL);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	char info[512];
	int k = snprintf(info, sizeof(info), "tool=heapscope %s\nfilter=%s\ntime=%s\npid=%d\n",
			 hs_version(), filter, when, p->pid);
	return note_add(n, "HEAPSCOPE", NT_HEAPSCOPE_CAPTURE, info, (size_t)k + 1);
}

static struct hs_error *build_notes(struct notes *n, struct proc *p, struct hs_capture *c,
				    const int *tids, size_t ntids)
{
	char path[64], buf[4096];
	char *f[20] = { 0 };
	snprintf(path, sizeof(path), "/proc/%d/stat", p->pid);
	if (stat_fields(path, buf, sizeof(buf), f, 20) < 4)
		return gone_error(p->pid);
	HS_CHECK(psinfo_note(n, p->pid, f));
	const char *ids[3] = { f[1], f[2], f[3] };
	// The main thread first: gdb and libdwfl take the first as the process.
	for (size_t pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < ntids; i++)
			if ((tids[i] == p->pid) == (pass == 0))
				HS_CHECK(thread_notes(n, p->pid, tids[i], ids));
	c->stats.nthreads = ntids;
	char auxv[8192];
	snprintf(path, sizeof(path), "/proc/%d/auxv", p->pid);
	size_t an = hs_read_small_file(path, auxv, sizeof(auxv));
	if (an)
		HS_CHECK(note_add(n, "CORE", NT_AUXV, auxv, an));
	HS_CHECK(file_note(n, p));
	return heapscope_notes(n, p, c);
}

/* Memory. */

static struct hs_error *dump_plain(struct proc *p, struct hs_capture *c, uint64_t addr, uint64_t len)
{
	while (len) {
		if (hs_interrupted())
			return hs_error_create(HS_ERR_INTERRUPTED, "interrupted");
		size_t n = len < CHUNK ? len : CHUNK;
		HS_CHECK(proc_read(p, c, addr, p->buf, n));
		HS_CHECK(out_memory(c, p->buf, n));
		addr += n;
		len -= n;
	}
	return NULL;
}

/* Private anonymous memory: pages never touched (neither present nor swapped
 * out) are zeros; they become holes instead of being read. */
static struct hs_error *dump_anon(struct proc *p, struct hs_capture *c, uint64_t addr, uint64_t len)
{
	while (len) {
		size_t n = len < CHUNK ? len : CHUNK;
		size_t pages = n / PAGE;
		ssize_t r = pread(p->pagemap_fd, p->pm, pages * 8, (off_t)(addr / PAGE * 8));
		if (r != (ssize_t)(pages * 8))
			return dump_plain(p, c, addr, len);   // no pagemap: read everything
		for (size_t i = 0; i < pages;) {
			bool data = p->pm[i] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED);
			size_t j = i + 1;
			while (j < pages && ((p->pm[j] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) != 0) == data)
				j++;
			uint64_t a = addr + i * PAGE, l = (j - i) * PAGE;
			if (data) {
				HS_CHECK(dump_plain(p, c, a, l));
			} else {
				HS_CHECK(out_zeros(c, l));
				c->stats.hole_bytes += l;
			}
			i = j;
		}
		addr += n;
		len -= n;
	}
	return NULL;
}

static struct hs_error *write_headers(struct hs_capture *c, struct proc *p, const struct notes *n,
				      uint64_t notes_off, size_t nphdr, bool xnum)
{
	size_t hlen = sizeof(Elf64_Ehdr) + nphdr * sizeof(Elf64_Phdr) + (xnum ? sizeof(Elf64_Shdr) : 0);
	uint8_t *h = calloc(1, hlen);
	if (!h)
		return &hs_error_nomem;
	Elf64_Ehdr *eh = (Elf64_Ehdr *)h;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh->e_type = ET_CORE;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = xnum ? PN_XNUM : (Elf64_Half)nphdr;
	if (xnum) {
		// More than 65534 mappings: the count lives in section header 0.
		eh->e_shoff = sizeof(Elf64_Ehdr) + nphdr * sizeof(Elf64_Phdr);
		eh->e_shentsize = sizeof(Elf64_Shdr);
		eh->e_shnum = 1;
		Elf64_Shdr *sh = (Elf64_Shdr *)(h + eh->e_shoff);
		sh->sh_info = (Elf64_Word)nphdr;
	}
	Elf64_Phdr *ph = (Elf64_Phdr *)(h + sizeof(Elf64_Ehdr));
	ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = notes_off, .p_filesz = n->len, .p_align = 4 };
	for (size_t i = 0; i < p->nmaps; i++) {
		const struct mapping *m = &p->maps[i];
		ph[1 + i] = (Elf64_Phdr){
			.p_type = PT_LOAD, .p_offset = m->file_offset, .p_vaddr = m->start,
			.p_filesz = m->filesz, .p_memsz = m->end - m->start, .p_align = PAGE,
			.p_flags = (m->perms[0] == 'r' ? PF_R : 0) | (m->perms[1] == 'w' ? PF_W : 0) |
				   (m->perms[2] == 'x' ? PF_X : 0),
		};
	}
	struct hs_error *err = out_write(c, h, hlen);
	free(h);
	if (err)
		return err;
	HS_CHECK(out_zeros(c, notes_off - c->off));
	return out_write(c, n->buf, n->len);
}

struct hs_error *hs_capture_dump(struct hs_capture *c, int pid, const int *tids, size_t ntids)
{
	struct proc p = { .pid = pid, .mem_fd = -1, .pagemap_fd = -1 };
	struct notes n = { 0 };
	struct hs_error *err = NULL;
	char path[64];
	if (c->dumped)
		return hs_error_create(HS_ERR_OTHER, "a capture writes one core");
	c->dumped = true;
	p.buf = malloc(CHUNK);
	p.pm = malloc(CHUNK / PAGE * 8);
	if (!p.buf || !p.pm) {
		err = &hs_error_nomem;
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	p.mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p.mem_fd < 0) {
		int e = errno;
		err = e == ENOENT || e == ESRCH || hs_process_exited(pid) ? gone_error(pid)
								  : hs_error_errno(e, "cannot open %s", path);
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	p.pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if ((err = read_maps(&p)))
		goto out;
	for (size_t i = 0; i < p.nmaps; i++) {
		struct mapping *m = &p.maps[i];
		m->dump = decide(&p, c, m);
		m->filesz = m->dump == DUMP_ALL ? m->end - m->start : m->dump == DUMP_FIRST_PAGE ? PAGE : 0;
	}
	if ((err = build_notes(&n, &p, c, tids, ntids)))
		goto out;

	// Layout: headers, notes, then each dumped mapping at a page boundary.
	size_t nphdr = 1 + p.nmaps;
	bool xnum = nphdr >= PN_XNUM;
	uint64_t off = sizeof(Elf64_Ehdr) + nphdr * sizeof(Elf64_Phdr) + (xnum ? sizeof(Elf64_Shdr) : 0);
	uint64_t notes_off = (off + 7) & ~7ull;
	off = (notes_off + n.len + PAGE - 1) & ~(PAGE - 1);
	for (size_t i = 0; i < p.nmaps; i++) {
		struct mapping *m = &p.maps[i];
		m->file_offset = m->filesz ? off : 0;
		off += m->filesz;
		c->stats.dumped_bytes += m->filesz;
		c->stats.omitted_bytes += (m->end - m->start) - m->filesz;
		c->stats.nloads += m->filesz != 0;
	}
	c->stats.core_bytes = off;
	c->stats.nmappings = p.nmaps;
	if (c->z) {
		ZSTD_CCtx_setPledgedSrcSize(c->z, off);
		// Workers compress while we read the process; starting them costs more
		// than it saves on a small core (ignored by a single-threaded libzstd).
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		if (c->stats.dumped_bytes >= ZSTD_MT_MIN && cpus > 1)
			ZSTD_CCtx_setParameter(c->z, ZSTD_c_nbWorkers, cpus > 4 ? 4 : (int)cpus);
	}
	if ((err = write_headers(c, &p, &n, notes_off, nphdr, xnum)))
		goto out;
	for (size_t i = 0; i < p.nmaps && !err; i++) {
		struct mapping *m = &p.maps[i];
		if (!m->filesz)
			continue;
		if (m->file_offset > c->off && (err = out_zeros(c, m->file_offset - c->off)))
			break;
		err = m->holes && p.pagemap_fd >= 0 ? dump_anon(&p, c, m->start, m->filesz)
						    : dump_plain(&p, c, m->start, m->filesz);
	}
	if (!err)
		err = out_finish(c);
	c->stats.file_bytes = c->z ? c->stats.written_bytes : c->off;
out:
	// Whatever failed, a process that died meanwhile is the reason to give.
	if (err && err != &hs_error_nomem && err->code != HS_ERR_INTERRUPTED && err->code != HS_ERR_TARGET &&
	    hs_process_exited(pid)) {
		hs_error_destroy(err);
		err = gone_error(pid);
	}
	free(n.buf);
	proc_deinit(&p);
	return err;
}
