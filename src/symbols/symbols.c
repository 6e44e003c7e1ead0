/* symbols.c - modules, symbols and DWARF types through libdwfl/libdw (see symbols.h).
 *
 * Lifecycle: hs_symbols_create() reports every module of the target to libdwfl,
 * then asks each one for its ELF and DWARF once, so that every find_elf and
 * find_debuginfo callback runs inside create.  Per-module state (struct
 * hs_symtab) is built lazily on the first lookup: a name -> symbol hash table
 * over the module's best symbol table, and a name -> DIE index over the
 * top-level types and variables of its DWARF (that half, and the type, member
 * and variable lookups over it, are in symbols_dwarf.c; symtab.h is what the
 * two share).
 *
 * Not thread-safe: libdw handles are not, and the lazy tables are filled on
 * first use.  Resolve what a scan needs before starting threads.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "debug_cache.h"
#include "debuginfod.h"
#include "paths.h"
#include "rtti.h"
#include "symbols.h"
#include "symtab.h"
#include "target.h"
#include "vec.h"

// Bounds: a core is hostile input, and so are the files it names.
#define MAX_MODULES        16384
#define MODULE_SPAN_MAX    (UINT64_C(1) << 40)   /* a load range past this is not believed */
#define MAX_SYMBOLS        (1u << 24)   /* per module */
#define MAX_AUXV_BYTES     (64 * 1024)
#define MAX_MAP_LINES      (1u << 20)   /* /proc/PID/maps */
#define BUILD_ID_MAX       64

#define DEFAULT_DEBUG_PATH ":.debug:"
#define SYSTEM_DEBUG_DIR   "/usr/lib/debug"

/* What the libdwfl callbacks need; libdwfl keeps a pointer to cb. */
struct symbols_file {
	uint64_t start, end, offset;
	char *path;
};

struct debug_copy {
	uint8_t id[64];
	size_t idlen;
	char *path;
};

struct hs_symbols_private {
	Dwfl_Callbacks cb;
	char *sysroot;                 /* without trailing '/', NULL when none */
	struct symbols_file *files;    /* the target's mapped files (NT_FILE or maps) */
	size_t nfiles;
	struct debug_copy *copies;     /* debug files read from their copies (debug_cache.c) */
	size_t ncopies, capcopies;
	Elf *core_read;                /* the core as libdwfl lists its modules (core_for_listing) */
};

/* ---- small helpers ---- */

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

void hs_build_id_hex(const uint8_t *id, size_t len, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < len && o + 3 <= cap; i++, o += 2)
		snprintf(buf + o, cap - o, "%02x", id[i]);
}

static size_t next_pow2(size_t n)
{
	size_t c = 16;
	while (c < n)
		c <<= 1;
	return c;
}

/* The build-id note of an ELF file open on fd: 1 read, 0 none (or not ELF). */
static int fd_build_id(int fd, uint8_t *id, size_t cap, size_t *len_ret)
{
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return 0;
	int r = 0;
	const void *bits = NULL;
	if (elf_kind(elf) == ELF_K_ELF) {
		ssize_t n = dwelf_elf_gnu_build_id(elf, &bits);
		if (n > 0 && bits) {
			size_t len = (size_t)n < cap ? (size_t)n : cap;
			memcpy(id, bits, len);
			*len_ret = len;
			r = 1;
		}
	}
	elf_end(elf);
	return r;
}

/* 1: the regular file at path has build-id id; 0: it exists with none (or is not
 * ELF); -1: no regular file there. */
static int path_build_id(const char *path, uint8_t *id, size_t cap, size_t *len_ret)
{
	int fd = hs_open_regular(path);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	int r = fd_build_id(fd, id, cap, len_ret);
	close(fd);
	return r;
}

/* sysroot + path, malloc'ed; NULL on allocation failure. */
static char *join_sysroot(const char *sysroot, const char *path)
{
	char *out = NULL;
	if (asprintf(&out, "%s%s%s", sysroot, path[0] == '/' ? "" : "/", path) < 0)
		return NULL;
	return out;
}

/* The mapped file that holds addr; the mapping at file offset 0 wins. */
static const char *mapped_file_at(const struct hs_symbols_private *priv, uint64_t addr)
{
	const char *best = NULL;
	for (size_t i = 0; i < priv->nfiles; i++) {
		const struct symbols_file *f = &priv->files[i];
		if (addr < f->start || addr >= f->end || !f->path)
			continue;
		if (f->offset == 0)
			return f->path;
		if (!best)
			best = f->path;
	}
	return best;
}

/* ---- libdwfl callbacks ---- */

/* With --sysroot, the file a core names lives under the sysroot.  libdwfl 0.188
 * has no dwfl_set_sysroot and opens NT_FILE paths on the host while reporting
 * (rejecting those whose build-id differs), so offer the sysroot's copy here,
 * but only when its build-id is the module's: libdwfl would reject it and not
 * look further. */
static int open_in_sysroot(const struct hs_symbols_private *priv, Dwfl_Module *mod,
			   const char *modname, Dwarf_Addr base, char **file_name)
{
	const char *path = mapped_file_at(priv, base);
	if (!path && modname && modname[0] == '/')
		path = modname;
	if (!path)
		return -1;
	char *full = join_sysroot(priv->sysroot, path);
	if (!full)
		return -1;
	int fd = hs_open_regular(full);
	if (fd < 0) {
		free(full);
		return -1;
	}
	const unsigned char *want = NULL;
	GElf_Addr vaddr;
	int want_len = dwfl_module_build_id(mod, &want, &vaddr);
	if (want_len > 0) {
		uint8_t id[BUILD_ID_MAX];
		size_t len = 0;
		if (fd_build_id(fd, id, sizeof(id), &len) != 1 || len != (size_t)want_len ||
		    memcmp(id, want, len) != 0) {
			close(fd);
			free(full);
			return -1;
		}
	}
	free(*file_name);
	*file_name = full;
	return fd;
}

static int core_find_elf(Dwfl_Module *mod, void **userdata, const char *modname,
			 Dwarf_Addr base, char **file_name, Elf **elfp)
{
	const struct hs_symbols_private *priv = userdata ? *userdata : NULL;
	if (priv && priv->sysroot) {
		int fd = open_in_sysroot(priv, mod, modname, base, file_name);
		if (fd >= 0) {
			*elfp = NULL;
			return fd;
		}
	}
	return dwfl_build_id_find_elf(mod, userdata, modname, base, file_name, elfp);
}

/* --no-debuginfo: no separate debug file is ever opened.  The main files are
 * still found, so their .symtab/.dynsym (and DWARF, if not stripped) work. */
static int no_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			     Dwarf_Addr base, const char *file_name,
			     const char *debuglink_file, GElf_Word debuglink_crc,
			     char **debuginfo_file_name)
{
	(void)mod; (void)userdata; (void)modname; (void)base; (void)file_name;
	(void)debuglink_file; (void)debuglink_crc; (void)debuginfo_file_name;
	errno = 0;
	return -1;
}

/* Separate debug info, as libdwfl's standard search finds it, but for one
 * case.  A module with neither a file name nor a debug link (the vDSO, read
 * from the core) can only be found by its build ID: in the build-id
 * directories, or through debuginfod.  With DEBUGINFOD_URLS unset or empty,
 * libdebuginfod answers nothing (it does not read its cache either), yet
 * libdw (0.188) loads it, and the libraries it needs (libcurl, gnutls,
 * krb5...: about 14 ms), once a search it falls back on fails: the vDSO's,
 * in every core.  Then such a module is looked for in the build-id
 * directories alone. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  Dwarf_Addr base, const char *file_name,
			  const char *debuglink_file, GElf_Word debuglink_crc,
			  char **debuginfo_file_name)
{
	// A copy with the DWARF inflated, made by an earlier run (debug_cache.c):
	// named as the file it was made from, where a .gnu_debugaltlink is
	// looked for.
	struct hs_symbols_private *priv = userdata ? *userdata : NULL;
	const unsigned char *id;
	GElf_Addr at;
	int idlen = priv ? dwfl_module_build_id(mod, &id, &at) : 0;
	if (idlen > (int)sizeof(priv->copies[0].id))
		idlen = 0;
	if (idlen > 0 && !HS_VEC_GROW(priv->copies, priv->capcopies, priv->ncopies + 1)) {
		char *orig, *copy;
		int fd = hs_debug_cache_open(id, (size_t)idlen, &orig, &copy);
		if (fd >= 0) {
			struct debug_copy *c = &priv->copies[priv->ncopies++];
			memcpy(c->id, id, (size_t)idlen);
			c->idlen = (size_t)idlen;
			c->path = copy;
			free(*debuginfo_file_name);
			*debuginfo_file_name = orig;
			return fd;
		}
	}
	const char *urls = getenv("DEBUGINFOD_URLS");
	int fd;
	if (!file_name && !debuglink_file && !(urls && *urls))
		fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name,
						  debuglink_file, debuglink_crc, debuginfo_file_name);
	else
		fd = dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name,
						  debuglink_file, debuglink_crc, debuginfo_file_name);
	if (fd >= 0 && idlen > 0)
		hs_debug_cache_store(*debuginfo_file_name, id, (size_t)idlen);
	return fd;
}

/* ---- creation ---- */

/* "--debug-dir entries:" then the default ":.debug:/usr/lib/debug" (with the
 * system directory under the sysroot).  Relative directories are made absolute:
 * libdwfl looks for .build-id/ trees only in absolute entries. */
static struct hs_error *build_debuginfo_path(const struct hs_symbols_options *o,
					     const char *sysroot, char **ret)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return &hs_error_nomem;
	struct hs_error *err = NULL;
	for (size_t i = 0; o->debug_dirs && o->debug_dirs[i] && !err; i++) {
		const char *dir = o->debug_dirs[i];
		if (!dir[0])
			continue;
		if (strchr(dir, ':')) {
			err = hs_error_create(HS_ERR_USAGE,
					      "debug directory '%s' contains ':', which libdwfl cannot search", dir);
			break;
		}
		char *abs = NULL;
		if (dir[0] != '/') {
			abs = realpath(dir, NULL);
			if (!abs) {
				char cwd[PATH_MAX];
				if (getcwd(cwd, sizeof(cwd)) && asprintf(&abs, "%s/%s", cwd, dir) < 0)
					abs = NULL;
			}
		}
		fprintf(f, "%s:", abs ? abs : dir);
		free(abs);
	}
	fprintf(f, "%s%s%s", DEFAULT_DEBUG_PATH, sysroot ? sysroot : "", SYSTEM_DEBUG_DIR);
	if (fclose(f) != 0 || !buf) {
		free(buf);
		return err ? err : &hs_error_nomem;
	}
	if (err) {
		free(buf);
		return err;
	}
	*ret = buf;
	return NULL;
}

static struct hs_error *copy_mapped_files(struct hs_symbols_private *priv,
					  const struct hs_target *t)
{
	if (!t->notes.files || !t->notes.nfiles)
		return NULL;
	priv->files = calloc(t->notes.nfiles, sizeof(*priv->files));
	if (!priv->files)
		return &hs_error_nomem;
	for (size_t i = 0; i < t->notes.nfiles; i++) {
		const struct hs_mapped_file *mf = &t->notes.files[i];
		struct symbols_file *f = &priv->files[priv->nfiles];
		if (!mf->path)
			continue;
		f->path = strdup(mf->path);
		if (!f->path)
			return &hs_error_nomem;
		f->start = mf->start;
		f->end = mf->end;
		f->offset = mf->offset;
		priv->nfiles++;
	}
	return NULL;
}

static struct hs_error *make_private(const struct hs_target *t, const struct hs_symbols_options *o,
				     struct hs_symbols *s)
{
	struct hs_symbols_private *priv = calloc(1, sizeof(*priv));
	if (!priv)
		return &hs_error_nomem;
	s->priv = priv;
	if (o->sysroot && o->sysroot[0] && t->kind == HS_TARGET_CORE) {
		priv->sysroot = strdup(o->sysroot);
		if (!priv->sysroot)
			return &hs_error_nomem;
		size_t n = strlen(priv->sysroot);
		while (n > 0 && priv->sysroot[n - 1] == '/')
			priv->sysroot[--n] = '\0';
		if (n == 0) {   // "/" is no sysroot at all
			free(priv->sysroot);
			priv->sysroot = NULL;
		}
	}
	HS_CHECK(copy_mapped_files(priv, t));
	HS_CHECK(build_debuginfo_path(o, priv->sysroot, &s->debuginfo_path));
	priv->cb.debuginfo_path = &s->debuginfo_path;
	priv->cb.section_address = dwfl_offline_section_address;
	if (t->kind == HS_TARGET_CORE)
		priv->cb.find_elf = core_find_elf;
	else
		priv->cb.find_elf = dwfl_linux_proc_find_elf;
	priv->cb.find_debuginfo = o->no_debuginfo ? no_find_debuginfo
						  : find_debuginfo;
	return NULL;
}

struct fifo_guard {
	int *fd;
	size_t n, cap;
};
static void fifo_guard_begin(struct fifo_guard *g, struct hs_target *t);
static void fifo_guard_end(struct fifo_guard *g);

/* The core as dwfl_core_file_report reads it: read, not mapped.  Given the
 * mapped Elf, libdwfl 0.188 stretches every read of a segment over all the
 * contiguous segments after it ("already on hand anyway": core-file.c,
 * dwfl_elf_phdr_memory_callback), and it reads each segment once while it
 * looks for modules: quadratic in the segments.  A core of 30 k mappings
 * took 2.5 s to list, and the kernel's default limit is 65,530.  Read with
 * pread, each read stops at what it asked for.  The modules found are the
 * same, but for one kind: a module found only in the core, with no build-id
 * and more than a few KiB dumped, is no longer read from it (libdwfl's
 * core_file_read_eagerly).  (The unwinder reads neither: unwind.c.)  An
 * image with no file (tests) is listed from its mapped Elf. */
static Elf *core_for_listing(struct hs_symbols_private *priv, struct hs_target *t)
{
	if (!priv->core_read && t->fd >= 0)
		priv->core_read = elf_begin(t->fd, ELF_C_READ, NULL);
	return priv->core_read ? priv->core_read : t->elf;
}

static struct hs_error *report_modules(struct hs_symbols *s, struct hs_target *t,
				       const struct hs_symbols_options *o,
				       struct hs_diags *diags)
{
	Dwfl *dwfl = s->dwfl;
	dwfl_report_begin(dwfl);
	if (t->kind == HS_TARGET_CORE) {
		if (!t->elf) {
			dwfl_report_end(dwfl, NULL, NULL);
			return hs_error_create(HS_ERR_TARGET, "%s: the core is not open as ELF",
					       t->path ? t->path : "core");
		}
		struct fifo_guard guard;
		fifo_guard_begin(&guard, t);
		int n = dwfl_core_file_report(dwfl, core_for_listing(s->priv, t), o->exe);
		fifo_guard_end(&guard);
		if (n < 0 && diags)
			// Heuristic layouts may still find the heap: keep going with no modules.
			hs_diag_add(diags, HS_DIAG_WARNING, "symbols", 0,
				    "cannot list the modules of the core: %s; no symbols are available",
				    dwfl_errmsg(-1));
	} else {
		int r = dwfl_linux_proc_report(dwfl, t->pid);
		if (r != 0) {
			dwfl_report_end(dwfl, NULL, NULL);
			if (r > 0) {
				if (r == ENOENT || r == ESRCH)
					return hs_error_create(HS_ERR_TARGET, "process %d does not exist", t->pid);
				return hs_error_errno(r, "cannot read the modules of process %d", t->pid);
			}
			return hs_error_create(HS_ERR_TARGET, "cannot read the modules of process %d: %s",
					       t->pid, dwfl_errmsg(-1));
		}
	}
	if (dwfl_report_end(dwfl, NULL, NULL) != 0)
		return hs_error_create(HS_ERR_OTHER, "libdwfl: %s", dwfl_errmsg(-1));
	return NULL;
}

struct collect {
	Dwfl_Module **mods;
	size_t n, cap;
	bool nomem;
	struct hs_symbols_private *priv;
};

struct addr_range {
	uint64_t start, end;
};

static int range_cmp(const void *a, const void *b)
{
	const struct addr_range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* The executable mappings of a live process; NULL with n 0 when unknown. */
static struct hs_error *proc_exec_ranges(int pid, struct addr_range **ret, size_t *n_ret)
{
	*ret = NULL;
	*n_ret = 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;   // libdwfl read it a moment ago; without it, filter nothing
	struct addr_range *r = NULL;
	size_t n = 0, cap = 0;
	char *line = NULL;
	size_t linecap = 0;
	struct hs_error *err = NULL;
	for (size_t lines = 0; lines < MAX_MAP_LINES && getline(&line, &linecap, f) > 0; lines++) {
		uint64_t start, end;
		char perms[8];
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s", &start, &end, perms) != 3 ||
		    !strchr(perms, 'x'))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			struct addr_range *nr = realloc(r, cap * sizeof(*r));
			if (!nr) {
				err = &hs_error_nomem;
				break;
			}
			r = nr;
		}
		r[n++] = (struct addr_range){ start, end };
	}
	free(line);
	fclose(f);
	if (err) {
		free(r);
		return err;
	}
	*ret = r;
	*n_ret = n;
	return NULL;
}

static bool overlaps_range(const struct addr_range *r, size_t n, uint64_t start, uint64_t end)
{
	// Ranges do not overlap each other: the first one ending after start decides.
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r[mid].end <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && r[lo].start < end;
}

/* Keep the modules that overlap one of ranges r[0..n) (sorted here), and the
 * vDSO by its name. */
static void keep_overlapping(struct collect *c, struct addr_range *r, size_t n)
{
	qsort(r, n, sizeof(*r), range_cmp);
	size_t kept = 0;
	for (size_t i = 0; i < c->n; i++) {
		Dwarf_Addr start = 0, end = 0;
		const char *name = dwfl_module_info(c->mods[i], NULL, &start, &end, NULL, NULL,
						    NULL, NULL);
		if ((name && starts_with(name, "[vdso")) || overlaps_range(r, n, start, end))
			c->mods[kept++] = c->mods[i];
	}
	c->n = kept;
}

/* A core's loaded objects are the dynamic linker's list: r_debug, which the
 * program's DT_DEBUG names, and its link_map entries (glibc's dlmopen
 * namespaces chained from r_version 2 on).  libdwfl also reports any ELF
 * file whose first page the core holds, such as one the process merely
 * mapped to read (a debugger's, a profiler's, this library's own: a copy
 * of libc.so.6 below the loaded one, whose main_arena is nothing).  A module is kept when an entry's dynamic section
 * (l_ld) lies in it; the program and the vDSO (which a static program's
 * list leaves out) always.  Without a list that reads whole
 * (a static program, a damaged core) every module is kept. */
#define MAX_LINK_MAP 8192

static bool core_read(struct hs_memory *mem, uint64_t addr, void *buf, size_t len)
{
	struct hs_error *err = hs_memory_read(mem, addr, buf, len);
	hs_error_destroy(err);
	return !err;
}

// The r_debug address in the program's dynamic section (its program headers
// where the auxv says), 0 when there is none.
static uint64_t core_r_debug(struct hs_target *t)
{
	uint64_t phdr = hs_notes_auxv(&t->notes, AT_PHDR), phnum = hs_notes_auxv(&t->notes, AT_PHNUM);
	if (!phdr || !phnum || phnum > 256 || hs_notes_auxv(&t->notes, AT_PHENT) != sizeof(Elf64_Phdr))
		return 0;
	uint64_t bias = 0, dyn = 0, dynsz = 0;
	bool have_bias = false;
	for (uint64_t i = 0; i < phnum; i++) {
		Elf64_Phdr ph;
		if (!core_read(&t->mem, phdr + i * sizeof(ph), &ph, sizeof(ph)))
			return 0;
		if (ph.p_type == PT_PHDR) {
			bias = phdr - ph.p_vaddr;
			have_bias = true;
		} else if (ph.p_type == PT_DYNAMIC) {
			dyn = ph.p_vaddr;
			dynsz = ph.p_memsz;
		}
	}
	if (!have_bias || !dyn)
		return 0;
	for (uint64_t off = 0; off + sizeof(Elf64_Dyn) <= dynsz && off < 4096 * sizeof(Elf64_Dyn);
	     off += sizeof(Elf64_Dyn)) {
		Elf64_Dyn d;
		if (!core_read(&t->mem, dyn + bias + off, &d, sizeof(d)) || d.d_tag == DT_NULL)
			return 0;
		if (d.d_tag == DT_DEBUG)
			return d.d_un.d_ptr;
	}
	return 0;
}

// Every l_ld of the link_map lists reached from r_debug rd, as one-byte
// ranges appended to *r (n, cap); false when a list does not read whole.
// With names, each l_name's address as well (one-byte ranges in names).
static bool core_link_map(struct hs_target *t, uint64_t rd, struct addr_range **r, size_t *n, size_t *cap,
			  struct addr_range **names, size_t *nnames, size_t *capnames)
{
	size_t entries = 0, first = *n;
	for (size_t ns = 0; rd && ns < 256; ns++) {
		int32_t version;
		uint64_t map, next = 0;
		if (!core_read(&t->mem, rd, &version, sizeof(version)) || version < 1 ||
		    !core_read(&t->mem, rd + 8, &map, sizeof(map)) ||
		    (version >= 2 && !core_read(&t->mem, rd + 40, &next, sizeof(next))))
			return false;
		for (; map; entries++) {
			uint64_t e[4];  // l_addr, l_name, l_ld, l_next
			if (entries >= MAX_LINK_MAP || !core_read(&t->mem, map, e, sizeof(e)))
				return false;
			struct hs_error *err = e[2] ? HS_VEC_PUSH(*r, *n, *cap, ((struct addr_range){ e[2], e[2] + 1 }))
						    : NULL;
			if (!err && names && e[1])
				err = HS_VEC_PUSH(*names, *nnames, *capnames, ((struct addr_range){ e[1], e[1] + 1 }));
			if (err) {
				hs_error_destroy(err);
				return false;
			}
			map = e[3];
		}
		rd = next;
	}
	return *n > first;
}

/* libdwfl 0.188 opens, on the host, every file the core names (NT_FILE) and
 * every link_map entry's l_name while it reports a core's modules (checking
 * build-ids), with a plain open(): a FIFO there, with no writer, blocks it for
 * ever.  For the while, this holds each FIFO named so open for writing too
 * (O_RDWR, which never blocks on Linux): libdwfl's open returns at once, and
 * its reads of a pipe fail (pread: ESPIPE), so the module gets no file from
 * there.  Nothing is written to the FIFO. */
static void fifo_hold(struct fifo_guard *g, const char *path)
{
	struct stat st;
	if (!path || path[0] != '/' || stat(path, &st) != 0 || !S_ISFIFO(st.st_mode))
		return;
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return;
	struct hs_error *err = HS_VEC_PUSH(g->fd, g->n, g->cap, fd);
	if (err) {
		hs_error_destroy(err);
		close(fd);
	}
}

static void fifo_guard_begin(struct fifo_guard *g, struct hs_target *t)
{
	*g = (struct fifo_guard){ 0 };
	for (size_t i = 0; i < t->notes.nfiles; i++)
		fifo_hold(g, t->notes.files[i].path);
	struct addr_range *r = NULL, *names = NULL;
	size_t n = 0, cap = 0, nnames = 0, capnames = 0;
	core_link_map(t, core_r_debug(t), &r, &n, &cap, &names, &nnames, &capnames);
	for (size_t i = 0; i < nnames; i++) {
		char name[PATH_MAX];
		size_t k = 0;
		for (; k + 1 < sizeof(name) && core_read(&t->mem, names[i].start + k, &name[k], 1) && name[k]; k++)
			;
		name[k] = 0;
		fifo_hold(g, name);
	}
	free(r);
	free(names);
}

static void fifo_guard_end(struct fifo_guard *g)
{
	for (size_t i = 0; i < g->n; i++)
		close(g->fd[i]);
	free(g->fd);
}

static struct hs_error *drop_unlisted(struct hs_target *t, struct collect *c)
{
	if (t->kind != HS_TARGET_CORE)
		return NULL;
	struct addr_range *r = NULL;
	size_t n = 0, cap = 0;
	bool listed = core_link_map(t, core_r_debug(t), &r, &n, &cap, NULL, NULL, NULL);
	// The program and the vDSO, listed or not.
	uint64_t at[2] = { hs_notes_auxv(&t->notes, AT_ENTRY), hs_notes_auxv(&t->notes, AT_SYSINFO_EHDR) };
	for (size_t k = 0; k < 2 && listed; k++) {
		struct hs_error *err = at[k] ? HS_VEC_PUSH(r, n, cap, ((struct addr_range){ at[k], at[k] + 1 })) : NULL;
		if (err) {
			free(r);
			return err;
		}
	}
	if (listed)
		keep_overlapping(c, r, n);
	free(r);
	return NULL;
}

/* libdwfl reports every file a live process maps: also data files, and ELF files
 * it merely reads (a debugger's, or this library's own when the target is this
 * process).  Only files with code mapped are loaded modules; the vDSO is one. */
static struct hs_error *drop_unloaded(const struct hs_target *t, struct collect *c)
{
	if (t->kind != HS_TARGET_PID)
		return NULL;
	struct addr_range *r;
	size_t n;
	HS_CHECK(proc_exec_ranges(t->pid, &r, &n));
	if (n)
		keep_overlapping(c, r, n);
	free(r);
	return NULL;
}

static int collect_module(Dwfl_Module *mod, void **userdata, const char *name,
			  Dwarf_Addr start, void *arg)
{
	(void)name; (void)start;
	struct collect *c = arg;
	*userdata = c->priv;   // core_find_elf reads the sysroot and mapped files from here
	if (c->n == c->cap) {
		if (c->cap >= MAX_MODULES)
			return DWARF_CB_ABORT;
		size_t cap = c->cap ? c->cap * 2 : 32;
		Dwfl_Module **mods = realloc(c->mods, cap * sizeof(*mods));
		if (!mods) {
			c->nomem = true;
			return DWARF_CB_ABORT;
		}
		c->mods = mods;
		c->cap = cap;
	}
	c->mods[c->n++] = mod;
	return DWARF_CB_OK;
}

static bool same_build_id(const struct hs_module *m, const uint8_t *id, size_t len)
{
	return len == m->build_id_len && memcmp(id, m->build_id, len) == 0;
}

/* Go's linker writes no GNU build-id before go1.24 but its own: a note
 * named "Go" (its size 4 with padding), type 4, in .note.go.buildid, whose text is the ID
 * ("actionID/contentID").  Into buf ("" when none, or not printable). */
static void go_build_id(Elf *elf, char *buf, size_t cap)
{
	buf[0] = 0;
	size_t shstrndx;
	if (!elf || elf_getshdrstrndx(elf, &shstrndx) != 0)
		return;
	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn));) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
		const char *name = sh && sh->sh_type == SHT_NOTE ? elf_strptr(elf, shstrndx, sh->sh_name) : NULL;
		if (!name || strcmp(name, ".note.go.buildid"))
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		GElf_Nhdr nh;
		size_t name_off, desc_off;
		if (!d || !gelf_getnote(d, 0, &nh, &name_off, &desc_off) || nh.n_type != 4 || nh.n_namesz < 3 || nh.n_namesz > 4 ||
		    memcmp((const char *)d->d_buf + name_off, "Go", 3) || !nh.n_descsz || nh.n_descsz >= cap)
			return;
		const char *desc = (const char *)d->d_buf + desc_off;
		for (size_t i = 0; i < nh.n_descsz; i++)
			if (desc[i] < 0x21 || desc[i] > 0x7e)
				return;
		memcpy(buf, desc, nh.n_descsz);
		buf[nh.n_descsz] = 0;
		return;
	}
}

static struct hs_error *fill_module(struct hs_symbols *s, Dwfl_Module *dm, struct hs_module *m)
{
	m->dwfl_module = dm;
	m->symtab = calloc(1, sizeof(*m->symtab));
	if (!m->symtab)
		return &hs_error_nomem;
	m->symtab->mod = dm;

	// getelf first: the build-id of a module is only known after it.
	Dwarf_Addr bias = 0, dwbias = 0;
	Elf *elf = dwfl_module_getelf(dm, &bias);
	Dwarf *dw = dwfl_module_getdwarf(dm, &dwbias);
	const char *name = NULL, *mainfile = NULL, *debugfile = NULL;
	Dwarf_Addr start = 0, end = 0;
	name = dwfl_module_info(dm, NULL, &start, &end, NULL, NULL, &mainfile, &debugfile);
	m->name = strdup(name ? name : "?");
	if (!m->name)
		return &hs_error_nomem;
	m->start = start;
	m->end = end;
	m->bias = elf ? bias : 0;
	// libdwfl ends a live process's module where its file mapping ends; the
	// bss past it (anonymous memory) is the module's too: its load segments say.
	size_t nph = 0;
	if (!elf || elf_getphdrnum(elf, &nph) != 0)
		nph = 0;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr mem, *ph = gelf_getphdr(elf, (int)i, &mem);
		if (!ph || ph->p_type != PT_LOAD)
			continue;
		uint64_t lo = ph->p_vaddr + bias, hi = lo + ph->p_memsz;
		if (lo >= start && hi > lo && hi > m->end && hi - start < MODULE_SPAN_MAX)
			m->end = hi;
	}
	m->elf_found = elf != NULL;
	m->debug_found = dw != NULL;

	const unsigned char *bits = NULL;
	GElf_Addr vaddr;
	int len = dwfl_module_build_id(dm, &bits, &vaddr);
	if (len > 0 && bits) {
		m->build_id_len = (size_t)len < BUILD_ID_MAX ? (size_t)len : BUILD_ID_MAX;
		memcpy(m->build_id, bits, m->build_id_len);
	} else {
		go_build_id(elf, m->go_build_id, sizeof(m->go_build_id));
	}

	if (mainfile) {
		m->path = strdup(mainfile);
		if (!m->path)
			return &hs_error_nomem;
	} else if (elf) {
		// libdwfl opened the mapped file itself while reporting (after checking
		// its build-id), or built the ELF from core memory (vDSO, or no file).
		// Name the file only when it is the one with the module's build-id.
		// A file without a build-id (Go's linker writes none) is the module's
		// when the module has none either: libdwfl opened that very file.
		const char *mapped = mapped_file_at(s->priv, start);
		uint8_t id[BUILD_ID_MAX];
		size_t idlen = 0;
		int r = mapped ? path_build_id(mapped, id, sizeof(id), &idlen) : -1;
		if ((r == 1 && (m->build_id_len == 0 || same_build_id(m, id, idlen))) ||
		    (r == 0 && m->build_id_len == 0)) {
			m->path = strdup(mapped);
			if (!m->path)
				return &hs_error_nomem;
		}
	}
	if (dw && debugfile) {
		m->debug_path = strdup(debugfile);
		if (!m->debug_path)
			return &hs_error_nomem;
		for (size_t i = 0; i < s->priv->ncopies && m->build_id_len; i++) {
			const struct debug_copy *dc = &s->priv->copies[i];
			if (dc->idlen == m->build_id_len && !memcmp(dc->id, m->build_id, dc->idlen)) {
				m->debug_copy = strdup(dc->path);
				if (!m->debug_copy)
					return &hs_error_nomem;
				break;
			}
		}
	} else if (dw && dwarf_getelf(dw) != elf) {
		// Separate DWARF libdwfl found without naming it: debuginfod's cache.
		m->debug_path = hs_debuginfod_cached(m->build_id, m->build_id_len);
	}
	return NULL;
}

static int module_cmp(const void *a, const void *b)
{
	const struct hs_module *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* AT_ENTRY from the notes, or for a live process from /proc/PID/auxv. */
static uint64_t target_entry(const struct hs_target *t)
{
	for (size_t i = 0; t->notes.auxv && i < t->notes.nauxv; i++)
		if (t->notes.auxv[i].type == AT_ENTRY)
			return t->notes.auxv[i].value;
	if (t->kind != HS_TARGET_PID)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/auxv", t->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	uint64_t entry = 0, pair[2];
	for (size_t off = 0; off < MAX_AUXV_BYTES; off += sizeof(pair)) {
		if (read(fd, pair, sizeof(pair)) != (ssize_t)sizeof(pair) || pair[0] == AT_NULL)
			break;
		if (pair[0] == AT_ENTRY) {
			entry = pair[1];
			break;
		}
	}
	close(fd);
	return entry;
}

static void mark_main(struct hs_symbols *s, const struct hs_target *t,
		      const struct hs_symbols_options *o, Dwfl_Module *first)
{
	uint64_t entry = target_entry(t);
	struct hs_module *main = NULL;
	if (entry)
		main = hs_symbols_module_at(s, entry);
	for (size_t i = 0; !main && o->exe && i < s->nmodules; i++)
		if (s->modules[i].path && strcmp(s->modules[i].path, o->exe) == 0)
			main = &s->modules[i];
	// libdwfl reports the executable first (link_map order).
	for (size_t i = 0; !main && i < s->nmodules; i++)
		if (s->modules[i].dwfl_module == first)
			main = &s->modules[i];
	if (main)
		main->is_main = true;
}

/* A file on disk at the module's path whose build-id differs from the target's:
 * libdwfl refuses it; say so, and make sure nothing names it as the module's. */
static struct hs_error *check_mismatch(struct hs_symbols *s, const struct hs_target *t,
				       const struct hs_symbols_options *o,
				       struct hs_module *m, struct hs_diags *diags)
{
	if (m->build_id_len == 0)
		return NULL;
	bool is_exe = m->is_main && o->exe;
	char *owned = NULL;
	const char *path;
	if (is_exe) {
		path = o->exe;
	} else {
		path = mapped_file_at(s->priv, m->start);
		if (!path && m->name[0] == '/')
			path = m->name;
		if (!path)
			return NULL;
		if (s->priv->sysroot) {
			owned = join_sysroot(s->priv->sysroot, path);
			if (!owned)
				return &hs_error_nomem;
			path = owned;
		}
	}
	uint8_t id[BUILD_ID_MAX];
	size_t len = 0;
	int r = path_build_id(path, id, sizeof(id), &len);
	if (r < 0 || (r == 1 && same_build_id(m, id, len))) {
		free(owned);
		return NULL;
	}
	m->build_id_mismatch = true;
	m->mismatch_path = owned ? owned : strdup(path);
	if (!m->mismatch_path)
		return &hs_error_nomem;
	if (m->path && strcmp(m->path, m->mismatch_path) == 0) {
		free(m->path);
		m->path = NULL;
	}
	if (is_exe)
		s->exe_mismatch = true;
	char ondisk[2 * BUILD_ID_MAX + 1], want[2 * BUILD_ID_MAX + 1];
	hs_build_id_hex(id, r == 1 ? len : 0, ondisk, sizeof(ondisk));
	hs_build_id_hex(m->build_id, m->build_id_len, want, sizeof(want));
	if (diags)
		hs_diag_add(diags, HS_DIAG_WARNING, "symbols", m->start,
			    "%s: build-id %s differs from the %s's %s (the file was rebuilt or replaced); its symbols are not used",
			    m->mismatch_path, r == 1 ? ondisk : "(none)",
			    t->kind == HS_TARGET_CORE ? "core" : "process", want);
	return NULL;
}

static struct hs_error *symbols_fill(struct hs_symbols *s, struct hs_target *t,
				     const struct hs_symbols_options *o, struct hs_diags *diags)
{
	HS_CHECK(make_private(t, o, s));
	s->dwfl = dwfl_begin(&s->priv->cb);
	if (!s->dwfl)
		return hs_error_create(HS_ERR_OTHER, "libdwfl: %s", dwfl_errmsg(-1));
	HS_CHECK(report_modules(s, t, o, diags));

	struct collect c = { .priv = s->priv };
	struct hs_error *err = NULL;
	dwfl_getmodules(s->dwfl, collect_module, &c, 0);
	if (c.nomem) {
		free(c.mods);
		return &hs_error_nomem;
	}
	err = drop_unloaded(t, &c);
	if (!err)
		err = drop_unlisted(t, &c);
	if (err) {
		free(c.mods);
		return err;
	}
	if (c.n >= MAX_MODULES && diags)
		hs_diag_add(diags, HS_DIAG_WARNING, "symbols", 0,
			    "more than %d modules; the rest are ignored", MAX_MODULES);
	s->modules = calloc(c.n ? c.n : 1, sizeof(*s->modules));
	if (!s->modules) {
		free(c.mods);
		return &hs_error_nomem;
	}
	for (size_t i = 0; i < c.n && !err; i++) {
		s->nmodules = i + 1;
		err = fill_module(s, c.mods[i], &s->modules[i]);
	}
	Dwfl_Module *first = c.n ? c.mods[0] : NULL;
	free(c.mods);
	if (err)
		return err;
	qsort(s->modules, s->nmodules, sizeof(*s->modules), module_cmp);
	for (size_t i = 1; i < s->nmodules; i++)   // a bss never runs into the next module
		if (s->modules[i - 1].end > s->modules[i].start &&
		    s->modules[i - 1].start < s->modules[i].start)
			s->modules[i - 1].end = s->modules[i].start;
	mark_main(s, t, o, first);
	for (size_t i = 0; i < s->nmodules; i++)
		HS_CHECK(check_mismatch(s, t, o, &s->modules[i], diags));
	return NULL;
}

struct hs_error *hs_symbols_create(struct hs_target *t, const struct hs_symbols_options *o,
				   struct hs_diags *diags, struct hs_symbols **ret)
{
	static const struct hs_symbols_options defaults;
	if (!t || !ret)
		return hs_error_create(HS_ERR_USAGE, "hs_symbols_create: no target");
	if (!o)
		o = &defaults;
	elf_version(EV_CURRENT);
	struct hs_symbols *s = calloc(1, sizeof(*s));
	if (!s)
		return &hs_error_nomem;
	s->no_debuginfo = o->no_debuginfo;
	if (t->kind == HS_TARGET_BUFFERS) {
		// In-memory test images have no files: an empty table.
		*ret = s;
		return NULL;
	}
	struct hs_error *err = symbols_fill(s, t, o, diags);
	if (err) {
		hs_symbols_destroy(s);
		return err;
	}
	*ret = s;
	return NULL;
}

static void symtab_destroy(struct hs_symtab *st)
{
	if (!st)
		return;
	free(st->syms);
	free(st->dies);
	free(st->vtables);
	free(st->asyms);
	free(st->zglob);
	free(st->zloc);
	free(st->secs);
	free(st);
}

void hs_symbols_destroy(struct hs_symbols *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nmodules; i++) {
		struct hs_module *m = &s->modules[i];
		free(m->name);
		free(m->path);
		free(m->debug_path);
		free(m->mismatch_path);
		free(m->debug_copy);
		symtab_destroy(m->symtab);
	}
	free(s->modules);
	if (s->dwfl)
		dwfl_end(s->dwfl);
	if (s->priv) {
		for (size_t i = 0; i < s->priv->nfiles; i++)
			free(s->priv->files[i].path);
		free(s->priv->files);
		for (size_t i = 0; i < s->priv->ncopies; i++)
			free(s->priv->copies[i].path);
		free(s->priv->copies);
		free(s->priv->sysroot);
		if (s->priv->core_read)
			elf_end(s->priv->core_read);
		free(s->priv);
	}
	free(s->debuginfo_path);
	free(s);
}

bool hs_symbols_exe_mismatch(struct hs_symbols *s)
{
	return s && s->exe_mismatch;
}

/* ---- modules ---- */

// The number of modules starting at or before addr (they are sorted by start).
static size_t modules_upto(const struct hs_symbols *s, uint64_t addr)
{
	return addr == UINT64_MAX ? s->nmodules : HS_LOWER_BOUND(s->modules, s->nmodules, start, addr + 1);
}

struct hs_module *hs_symbols_module_at(struct hs_symbols *s, uint64_t addr)
{
	if (!s)
		return NULL;
	size_t k = modules_upto(s, addr);
	return k && addr < s->modules[k - 1].end ? &s->modules[k - 1] : NULL;
}

struct hs_module *hs_symbols_module_after(struct hs_symbols *s, uint64_t addr)
{
	if (!s)
		return NULL;
	size_t k = modules_upto(s, addr);
	return k < s->nmodules ? &s->modules[k] : NULL;
}

struct hs_module *hs_symbols_module_named(struct hs_symbols *s, const char *prefix)
{
	for (size_t i = 0; s && prefix && i < s->nmodules; i++) {
		struct hs_module *m = &s->modules[i];
		if (starts_with(m->name, prefix) || starts_with(base_name(m->name), prefix) ||
		    (m->path && starts_with(base_name(m->path), prefix)))
			return m;
	}
	return NULL;
}

struct hs_module *hs_symbols_main_module(struct hs_symbols *s)
{
	for (size_t i = 0; s && i < s->nmodules; i++)
		if (s->modules[i].is_main)
			return &s->modules[i];
	return NULL;
}

/* ---- symbols by name ---- */

/* Definitions with an address, of a real type, global beat the rest. */
static uint8_t sym_rank(const GElf_Sym *sym, uint64_t addr)
{
	int type = GELF_ST_TYPE(sym->st_info), bind = GELF_ST_BIND(sym->st_info);
	uint8_t rank = 0;
	if (addr != 0)
		rank |= 4;
	if (type == STT_OBJECT || type == STT_FUNC || type == STT_TLS ||
	    type == STT_GNU_IFUNC || type == STT_COMMON)
		rank |= 2;
	if (bind == STB_GLOBAL || bind == STB_WEAK || bind == STB_GNU_UNIQUE)
		rank |= 1;
	return rank;
}

static void sym_insert(struct hs_symtab *st, const char *name, uint32_t hash,
		       const GElf_Sym *sym, uint64_t addr)
{
	uint8_t rank = sym_rank(sym, addr);
	for (size_t i = hash & st->sym_mask;; i = (i + 1) & st->sym_mask) {
		struct sym_slot *slot = &st->syms[i];
		if (!slot->name) {
			*slot = (struct sym_slot){
				.name = name, .address = addr, .size = sym->st_size,
				.hash = hash, .rank = rank, .type = GELF_ST_TYPE(sym->st_info),
			};
			st->sym_count++;
			return;
		}
		if (slot->hash == hash && strcmp(slot->name, name) == 0) {
			if (rank > slot->rank) {
				slot->address = addr;
				slot->size = sym->st_size;
				slot->rank = rank;
				slot->type = GELF_ST_TYPE(sym->st_info);
			}
			return;
		}
	}
}

/* One pass over the table libdwfl picked (.symtab of the main or the debug
 * file, MiniDebugInfo, or .dynsym), local symbols included. */
static struct hs_error *symtab_build(struct hs_symtab *st)
{
	if (st->syms_built)
		return NULL;
	int n = dwfl_module_getsymtab(st->mod);
	st->nsyms = n;
	if (n <= 0) {
		st->syms_built = true;
		return NULL;
	}
	size_t count = (size_t)n < MAX_SYMBOLS ? (size_t)n : MAX_SYMBOLS;
	size_t cap = next_pow2(2 * count);
	st->syms = calloc(cap, sizeof(*st->syms));
	if (!st->syms)
		return &hs_error_nomem;
	st->sym_mask = cap - 1;
	for (size_t i = 0; i < count; i++) {
		GElf_Sym sym;
		GElf_Addr addr = 0;
		GElf_Word shndx = SHN_UNDEF;
		Elf *elf = NULL;
		Dwarf_Addr bias = 0;
		const char *name = dwfl_module_getsym_info(st->mod, (int)i, &sym, &addr, &shndx,
							   &elf, &bias);
		if (!name || !name[0] || shndx == SHN_UNDEF)
			continue;   // an undefined reference says nothing about where it is
		int type = GELF_ST_TYPE(sym.st_info);
		if (type == STT_SECTION || type == STT_FILE)
			continue;
		sym_insert(st, name, hash_name(name), &sym, addr);
	}
	st->syms_built = true;
	return NULL;
}

static const struct sym_slot *sym_find(const struct hs_symtab *st, const char *name)
{
	if (!st->syms)
		return NULL;
	uint32_t hash = hash_name(name);
	for (size_t i = hash & st->sym_mask;; i = (i + 1) & st->sym_mask) {
		const struct sym_slot *slot = &st->syms[i];
		if (!slot->name)
			return NULL;
		if (slot->hash == hash && strcmp(slot->name, name) == 0)
			return slot;
	}
}

static void sym_fill(const struct sym_slot *slot, struct hs_symbol *ret)
{
	ret->name = slot->name;
	ret->address = slot->address;
	ret->size = slot->size;
	ret->is_object = slot->type == STT_OBJECT || slot->type == STT_TLS ||
			 slot->type == STT_COMMON;
}

struct hs_error *symbols_module_symbol(struct hs_module *m, const char *name,
				       const struct sym_slot **ret)
{
	*ret = NULL;
	if (!m->symtab)
		return NULL;
	HS_CHECK(symtab_build(m->symtab));
	*ret = sym_find(m->symtab, name);
	return NULL;
}

/* Why a module knows less than it could: for messages, "" when nothing is amiss. */
const char *symbols_module_why(const struct hs_module *m)
{
	if (m->build_id_mismatch)
		return " (the file on disk has another build-id)";
	if (!m->elf_found)
		return " (its ELF file was not found)";
	return "";
}

static struct hs_error *not_found_in(const struct hs_module *m, const char *name)
{
	const char *why = symbols_module_why(m);
	if (!why[0] && (!m->symtab || m->symtab->nsyms <= 0))
		why = " (it has no symbol table)";
	else if (!why[0] && !m->debug_found)
		why = " (no debug info: only its own symbol table was searched)";
	return hs_error_create(HS_ERR_NOT_FOUND, "symbol '%s' not found in module %s%s",
			       name, m->name, why);
}

struct hs_error *hs_symbols_lookup(struct hs_symbols *s, struct hs_module *mod,
				   const char *name, struct hs_symbol *ret)
{
	if (!name || !name[0])
		return hs_error_create(HS_ERR_USAGE, "empty symbol name");
	const struct sym_slot *slot;
	if (mod) {
		HS_CHECK(symbols_module_symbol(mod, name, &slot));
		if (!slot)
			return not_found_in(mod, name);
		sym_fill(slot, ret);
		return NULL;
	}
	// The main module first, then the others by address; a definition with an
	// address wins over an address-less one in an earlier module.
	struct hs_module *main = hs_symbols_main_module(s);
	const struct sym_slot *best = NULL;
	if (main) {
		HS_CHECK(symbols_module_symbol(main, name, &slot));
		if (slot && slot->address)
			goto found_slot;
		best = slot;
	}
	for (size_t i = 0; s && i < s->nmodules; i++) {
		if (&s->modules[i] == main)
			continue;
		HS_CHECK(symbols_module_symbol(&s->modules[i], name, &slot));
		if (slot && slot->address)
			goto found_slot;
		if (slot && !best)
			best = slot;
	}
	if (!best)
		return hs_error_create(HS_ERR_NOT_FOUND, "symbol '%s' not found in any of the %zu modules",
				       name, s ? s->nmodules : 0);
	slot = best;
found_slot:
	sym_fill(slot, ret);
	return NULL;
}

/* ---- address -> symbol ---- */

/* Address -> symbol without libdwfl's pass over the whole table
 * (dwfl_module_addrinfo reads every symbol: tens of microseconds a call).
 * The answer is libdwfl's own: among the sized symbols that contain the
 * address, the globals first and the locals only when no global does, the
 * same choice in table order (nearer start, else stronger binding, else
 * smaller size).  What this cannot decide as libdwfl would (no sized symbol
 * of the first pass holds the address and the table has sizeless symbols,
 * whose choice depends on the sections; function descriptors; relocatable
 * files) is left to libdwfl. */
struct addr_sym {
	uint64_t lo, end, maxend;      /* maxend: the most end of this and those before */
	uint64_t maxend_g, maxend_l;   /* the same over the globals, the locals (asyms) */
	uint64_t size;
	const char *name;              /* owned by libdwfl */
	uint32_t index;                /* in the table: libdwfl's order */
	uint8_t bind, type;            /* binding rank (global 3, weak 2, local 1) and STT_* */
};
#define ADDR_WALK_MAX 4096              /* symbols stepped back over in one query */

static int addr_sym_cmp(const void *x, const void *y)
{
	const struct addr_sym *a = x, *b = y;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return (a->index > b->index) - (a->index < b->index);
}

// Sort by start and raise each maxend to the most of those before it.
static void addr_syms_finish(struct addr_sym *v, size_t n)
{
	if (n < 2)
		return;
	qsort(v, n, sizeof(*v), addr_sym_cmp);
	for (size_t k = 1; k < n; k++)
		if (v[k].maxend < v[k - 1].maxend)
			v[k].maxend = v[k - 1].maxend;
}

// How many of v (finished) start at or before addr.
static size_t addr_syms_upto(const struct addr_sym *v, size_t n, uint64_t addr)
{
	return addr == UINT64_MAX ? n : HS_LOWER_BOUND(v, n, lo, addr + 1);
}

static uint8_t binding_rank(const GElf_Sym *sym)
{
	switch (GELF_ST_BIND(sym->st_info)) {
	case STB_GLOBAL: return 3;
	case STB_WEAK: return 2;
	case STB_LOCAL: return 1;
	default: return 0;
	}
}

/* A symbol without a size: libdwfl names an address by the nearest one
 * below it only when no sized symbol holds the address, and only one in
 * the address's section (or, for an absolute one, at the address). */
struct zero_sym {
	uint64_t value;
	const char *name;              /* owned by libdwfl */
	uint32_t index;                /* in the table */
	uint8_t type;                  /* STT_* */
	bool abs;                      /* its section index is SHN_ABS or another reserved one */
};

static int zero_sym_cmp(const void *x, const void *y)
{
	const struct zero_sym *a = x, *b = y;
	if (a->value != b->value)
		return a->value < b->value ? -1 : 1;
	return (a->index > b->index) - (a->index < b->index);
}

/* An allocated section of the module's main file, where the module put it:
 * libdwfl's "same section" test looks addresses up among these. */
struct sec_range {
	uint64_t start, end;
	size_t ndx;
};

static int sec_range_cmp(const void *x, const void *y)
{
	const struct sec_range *a = x, *b = y;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	// Of sections starting at one address (.tbss and the section after it)
	// the one ending first, then the first in the file, as libdwfl 0.188
	// orders them (checked against dwfl_module_address_section on every
	// library here): which one an address is in then depends on it.
	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	return (a->ndx > b->ndx) - (a->ndx < b->ndx);
}

// st->secs from the main file elf (its sections moved by bias); false on no
// memory or an unreadable section header (libdwfl then finds no section).
static bool sections_index(struct hs_symtab *st, Elf *elf, Dwarf_Addr bias)
{
	size_t cap = 0;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
		if (!sh)
			return false;
		if (!(sh->sh_flags & SHF_ALLOC))
			continue;
		struct sec_range r = { sh->sh_addr + bias, sh->sh_addr + bias + sh->sh_size, elf_ndxscn(scn) };
		struct hs_error *err = HS_VEC_PUSH(st->secs, st->nsecs, cap, r);
		if (err) {
			hs_error_destroy(err);
			return false;
		}
	}
	if (st->nsecs > 1)
		qsort(st->secs, st->nsecs, sizeof(*st->secs), sec_range_cmp);
	return true;
}

// The section index libdwfl finds addr in (its binary search, a section's
// end counted in it unless the next one starts there), SHN_UNDEF for none.
static size_t section_of(const struct hs_symtab *st, uint64_t addr)
{
	size_t l = 0, u = st->nsecs;
	while (l < u) {
		size_t i = (l + u) / 2;
		if (addr < st->secs[i].start) {
			u = i;
		} else if (addr > st->secs[i].end) {
			l = i + 1;
		} else {
			if (addr == st->secs[i].end && i + 1 < st->nsecs && addr == st->secs[i + 1].start)
				i++;
			return st->secs[i].ndx;
		}
	}
	return SHN_UNDEF;
}

static void addr_index(struct hs_symtab *st)
{
	st->addr_state = -1;
	Dwarf_Addr bias;
	Elf *elf = dwfl_module_getelf(st->mod, &bias);
	GElf_Ehdr eh;
	if (!elf || !gelf_getehdr(elf, &eh) || eh.e_type == ET_REL ||
	    (eh.e_machine != EM_X86_64 && eh.e_machine != EM_AARCH64))
		return;   // (relocation, function descriptors: libdwfl's business)
	int n = dwfl_module_getsymtab(st->mod);
	st->first_global = dwfl_module_getsymtab_first_global(st->mod);
	if ((n > 0 && (size_t)n > MAX_SYMBOLS) || st->first_global < 0)
		return;
	if (n > 1) {
		st->asyms = malloc((size_t)n * sizeof(*st->asyms));
		if (!st->asyms)
			return;
	}
	size_t capg = 0, capl = 0;
	for (int i = 1; i < n; i++) {   // (libdwfl never looks at entry 0)
		GElf_Sym sym;
		GElf_Addr addr = 0;
		GElf_Word shndx = SHN_UNDEF;
		const char *name = dwfl_module_getsym_info(st->mod, i, &sym, &addr, &shndx, NULL, NULL);
		int type = GELF_ST_TYPE(sym.st_info);
		if (!name || !name[0] || sym.st_shndx == SHN_UNDEF || type == STT_SECTION || type == STT_FILE ||
		    type == STT_TLS)
			continue;
		if (!sym.st_size) {
			st->sizeless = true;
			bool global = st->first_global == 0 || i >= st->first_global;
			struct zero_sym z = { addr, name, (uint32_t)i, (uint8_t)type, shndx >= SHN_LORESERVE };
			struct hs_error *err = global ? HS_VEC_PUSH(st->zglob, st->nzglob, capg, z)
						      : HS_VEC_PUSH(st->zloc, st->nzloc, capl, z);
			if (err) {
				hs_error_destroy(err);
				return;
			}
			continue;
		}
		uint64_t end = addr + sym.st_size < addr ? UINT64_MAX : addr + sym.st_size;
		st->asyms[st->nasyms++] = (struct addr_sym){ .lo = addr, .end = end, .maxend = end,
							      .size = sym.st_size, .name = name, .index = (uint32_t)i,
							      .bind = binding_rank(&sym), .type = (uint8_t)type };
	}
	addr_syms_finish(st->asyms, st->nasyms);
	uint64_t mg = 0, ml = 0;
	for (size_t k = 0; k < st->nasyms; k++) {
		struct addr_sym *x = &st->asyms[k];
		if (st->first_global == 0 || (int)x->index >= st->first_global)
			mg = x->end > mg ? x->end : mg;
		else
			ml = x->end > ml ? x->end : ml;
		x->maxend_g = mg;
		x->maxend_l = ml;
	}
	if (!sections_index(st, elf, bias))
		return;
	if (st->nzglob > 1)
		qsort(st->zglob, st->nzglob, sizeof(*st->zglob), zero_sym_cmp);
	if (st->nzloc > 1)
		qsort(st->zloc, st->nzloc, sizeof(*st->zloc), zero_sym_cmp);
	st->addr_state = 1;
}

static int index_cmp(const void *x, const void *y)
{
	const struct addr_sym *a = *(const struct addr_sym *const *)x, *b = *(const struct addr_sym *const *)y;
	return (a->index > b->index) - (a->index < b->index);
}

// libdwfl's choice among the sized symbols holding the address, in table order.
static const struct addr_sym *addr_choose(const struct addr_sym **c, size_t n)
{
	qsort(c, n, sizeof(*c), index_cmp);
	const struct addr_sym *best = NULL;
	for (size_t k = 0; k < n; k++) {
		const struct addr_sym *x = c[k];
		if (!best || best->lo < x->lo || best->bind < x->bind)
			best = x;
		else if (best->lo == x->lo && ((best->size > x->size && best->bind <= x->bind) ||
					       (best->size >= x->size && best->bind < x->bind)))
			best = x;
	}
	return best;
}

/* What names an address: a sized symbol or one without a size. */
struct addr_hit {
	const char *name;
	uint64_t lo, size;
	uint8_t type;
};

static int hit_of(const struct addr_sym *x, struct addr_hit *ret)
{
	*ret = (struct addr_hit){ x->name, x->lo, x->size, x->type };
	return 1;
}

// The last symbol without a size at or below addr in v (by address, then
// table order): the nearest, or NULL.
static const struct zero_sym *zero_below(const struct zero_sym *v, size_t n, uint64_t addr)
{
	size_t k = addr == UINT64_MAX ? n : HS_LOWER_BOUND(v, n, value, addr + 1);
	return k ? &v[k - 1] : NULL;
}

/* Of v's symbols at exactly `at` (at most addr), the last in table order
 * that libdwfl may name addr by: in addr's section, or (absolute) at addr.
 * NULL for none; *many when there were too many to look at. */
static const struct zero_sym *zero_at(const struct hs_symtab *st, const struct zero_sym *v, size_t n,
				      uint64_t at, uint64_t addr, bool *many)
{
	size_t k = at == UINT64_MAX ? n : HS_LOWER_BOUND(v, n, value, at + 1), steps = 0;
	size_t here = SIZE_MAX;         /* addr's section, once asked */
	for (; k-- > 0 && v[k].value == at;) {
		if (++steps > ADDR_WALK_MAX) {
			*many = true;
			return NULL;
		}
		if (v[k].abs) {
			if (v[k].value == addr)
				return &v[k];
			continue;
		}
		if (here == SIZE_MAX)
			here = section_of(st, addr);
		if (section_of(st, v[k].value) == here)
			return &v[k];
	}
	return NULL;
}

static int zero_hit(const struct zero_sym *z, struct addr_hit *ret)
{
	*ret = (struct addr_hit){ z->name, z->value, 0, z->type };
	return 1;
}

/* 1 and *ret: the symbol; 0: none (libdwfl would say so too); -1: ask libdwfl.
 *
 * libdwfl (dwfl_module_addrinfo) looks through the globals in table order,
 * then, unless a sized global holds the address or a global without a size
 * is at it, the locals.  A sized symbol holding it wins (addr_choose).  Else
 * one without a size, in the address's section, at or below it and at or
 * above the end of every symbol below it (min_label): of the globals when
 * the locals are not searched, else of both, the last in table order.  As
 * each symbol's end counts, that is one at M, the most end of the symbols
 * searched at or below the address (one without a size ends where it is). */
static int addr_lookup(struct hs_symtab *st, uint64_t addr, struct addr_hit *ret)
{
	if (!st->addr_state)
		addr_index(st);
	if (st->addr_state < 0)
		return -1;
	// The symbols holding addr: back from the last starting at or before
	// it, while any before may still reach past it.
	const struct addr_sym *glob[64], *loc[64];
	size_t ng = 0, nl = 0, steps = 0;
	size_t upto = addr_syms_upto(st->asyms, st->nasyms, addr);
	for (size_t k = upto; k-- > 0 && st->asyms[k].maxend > addr;) {
		const struct addr_sym *x = &st->asyms[k];
		if (++steps > ADDR_WALK_MAX)
			return -1;
		if (x->end <= addr)
			continue;
		bool global = st->first_global == 0 || (int)x->index >= st->first_global;
		if (global ? ng == 64 : nl == 64)
			return -1;
		if (global)
			glob[ng++] = x;
		else
			loc[nl++] = x;
	}
	if (ng)
		return hit_of(addr_choose(glob, ng), ret);
	bool locals = st->first_global > 1;
	if (!st->sizeless) {
		if (locals && nl)
			return hit_of(addr_choose(loc, nl), ret);
		return 0;
	}
	bool many = false;
	uint64_t m = upto ? st->asyms[upto - 1].maxend_g : 0;
	const struct zero_sym *z = zero_below(st->zglob, st->nzglob, addr);
	if (z && z->value > m)
		m = z->value;
	const struct zero_sym *zg = zero_at(st, st->zglob, st->nzglob, m, addr, &many);
	if (many)
		return -1;
	if (zg && zg->value == addr)
		locals = false;         // (libdwfl then skips the locals)
	if (!locals)
		return zg ? zero_hit(zg, ret) : 0;
	if (nl)
		return hit_of(addr_choose(loc, nl), ret);
	if (upto && st->asyms[upto - 1].maxend_l > m)
		m = st->asyms[upto - 1].maxend_l;
	z = zero_below(st->zloc, st->nzloc, addr);
	if (z && z->value > m)
		m = z->value;
	const struct zero_sym *zl = zero_at(st, st->zloc, st->nzloc, m, addr, &many);
	if (many)
		return -1;
	if (zl)
		return zero_hit(zl, ret);
	return zg && zg->value == m ? zero_hit(zg, ret) : 0;
}

size_t hs_symbols_section_of(struct hs_module *m, uint64_t addr)
{
	struct hs_symtab *st = m->symtab;
	if (st && !st->addr_state)
		addr_index(st);
	return st && st->addr_state > 0 ? section_of(st, addr) : SHN_UNDEF;
}

bool hs_symbols_addr_symbol(struct hs_symbols *s, uint64_t addr, struct hs_symbol *ret,
			    uint64_t *offset_ret)
{
	// Our module table, not dwfl_addrmodule(): that one also answers for
	// addresses past the last module, and knows the modules dropped above.
	struct hs_module *m = hs_symbols_module_at(s, addr);
	if (!m || !m->elf_found)
		return false;
	struct addr_hit as;
	int known = m->symtab ? addr_lookup(m->symtab, addr, &as) : -1;
	if (known == 0)
		return false;
	if (known > 0) {
		ret->name = as.name;
		ret->address = as.lo;
		ret->size = as.size;
		ret->is_object = as.type == STT_OBJECT || as.type == STT_TLS || as.type == STT_COMMON;
		if (offset_ret)
			*offset_ret = addr - as.lo;
		return true;
	}
	Dwfl_Module *dm = m->dwfl_module;
	GElf_Off off = 0;
	GElf_Sym sym;
	GElf_Word shndx;
	Elf *elf;
	Dwarf_Addr bias;
	const char *name = dwfl_module_addrinfo(dm, addr, &off, &sym, &shndx, &elf, &bias);
	if (!name || !name[0])
		return false;
	int type = GELF_ST_TYPE(sym.st_info);
	ret->name = name;
	ret->address = addr - off;
	ret->size = sym.st_size;
	ret->is_object = type == STT_OBJECT || type == STT_TLS || type == STT_COMMON;
	if (offset_ret)
		*offset_ret = off;
	return true;
}

// The module's vtable symbols as ranges (addr_syms_finish: one search
// answers "inside any?").  A vtable without a size stands for the rest of
// the module; without memory for the ranges, so does every address.
static void vtables_build(struct hs_module *m)
{
	struct hs_symtab *st = m->symtab;
	st->vtables_built = true;
	int n = dwfl_module_getsymtab(st->mod);
	size_t count = n > 0 ? ((size_t)n < MAX_SYMBOLS ? (size_t)n : MAX_SYMBOLS) : 0, cap = 0;
	for (size_t i = 1; i < count; i++) {
		GElf_Sym sym;
		GElf_Addr addr = 0;
		GElf_Word shndx = SHN_UNDEF;
		const char *name = dwfl_module_getsym_info(st->mod, (int)i, &sym, &addr, &shndx, NULL, NULL);
		if (!name || strncmp(name, "_ZTV", 4) || shndx == SHN_UNDEF)
			continue;
		if (HS_VEC_GROW(st->vtables, cap, st->nvtables + 1)) {
			st->vtables_all = true;
			return;
		}
		uint64_t hi = sym.st_size && addr + sym.st_size > addr ? addr + sym.st_size : UINT64_MAX;
		st->vtables[st->nvtables++] = (struct addr_sym){ .lo = addr, .end = hi, .maxend = hi, .index = (uint32_t)i };
	}
	addr_syms_finish(st->vtables, st->nvtables);
}

bool hs_symbols_maybe_vtable(struct hs_symbols *s, uint64_t addr)
{
	struct hs_module *m = hs_symbols_module_at(s, addr);
	if (!m || !m->elf_found || !m->symtab)
		return false;
	struct hs_symtab *st = m->symtab;
	if (!st->vtables_built)
		vtables_build(m);
	if (st->vtables_all)
		return true;
	size_t k = addr_syms_upto(st->vtables, st->nvtables, addr);
	return k > 0 && st->vtables[k - 1].maxend > addr;
}

bool hs_symbols_describe(struct hs_symbols *s, uint64_t addr, char *buf, size_t len)
{
	if (!buf || len == 0)
		return false;
	buf[0] = '\0';
	struct hs_symbol sym;
	uint64_t off = 0;
	if (hs_symbols_addr_symbol(s, addr, &sym, &off)) {
		// C++ names as people write them: "vtable for Blob", "g_sessions".
		char name[512];
		hs_demangle(sym.name, name, sizeof(name));
		if (off)
			snprintf(buf, len, "%s+0x%" PRIx64, name, off);
		else
			snprintf(buf, len, "%s", name);
		return true;
	}
	struct hs_module *m = hs_symbols_module_at(s, addr);
	if (!m)
		return false;
	snprintf(buf, len, "%s+0x%" PRIx64, base_name(m->name), addr - m->start);
	return true;
}
