/* debug_cache.c - decompressed copies of separate debug files.
 *
 * Debian's libc6-dbg (and the dbgsym packages dh_strip makes) store their
 * DWARF sections compressed (SHF_COMPRESSED, zlib), and libdw inflates every
 * one of them when it opens the file: for libc's 4 MiB debug file, 10 MiB
 * inflated and written to fresh memory, half of a run on a small core.  The
 * first run that opens such a file leaves a copy of it with those sections
 * stored plain in the cache directory, named by its build-id; later runs give
 * libdwfl the copy (the file name it reports stays the original's).
 *
 * The copy is the original file byte for byte, then each compressed
 * section's inflated bytes, then a new section header table pointing at
 * them (the ELF header's e_shoff changed): every offset the file had
 * (program headers, the other sections, extended numbering in section 0)
 * stays true.  It is written to a temporary name and renamed: a reader sees
 * a whole copy or none, and runs that write it at once each write their own.
 * A copy is used only when it is a regular file of this user whose build-id
 * is the one asked for; anything else is written again.
 */
#include "debug_cache.h"
#include "paths.h"
#include "symbols.h"

#include <dirent.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Below this many inflated bytes a copy saves too little to keep. */
#define COPY_MIN_GAIN (1u << 20)
/* Inflated sections larger than this are not copied. */
#define COPY_MAX_BYTES (1ull << 30)
/* The copies together: past this, the oldest go. */
#define CACHE_MAX_BYTES (2ull << 30)

char *hs_debug_cache_dir(void)
{
	char *dir = NULL;
	const char *env = getenv("HEAPSCOPE_CACHE_DIR");
	if (env) {
		if (!*env || asprintf(&dir, "%s/debug", env) < 0)
			return NULL;
		return dir;
	}
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int n;
	if (xdg && xdg[0] == '/')
		n = asprintf(&dir, "%s/heapscope/debug", xdg);
	else if (home && home[0] == '/')
		n = asprintf(&dir, "%s/.cache/heapscope/debug", home);
	else
		return NULL;
	return n < 0 ? NULL : dir;
}

static char *copy_path(const char *dir, const uint8_t *id, size_t idlen)
{
	char hex[2 * 64 + 1];
	hs_build_id_hex(id, idlen, hex, sizeof(hex));
	char *path;
	return asprintf(&path, "%s/%s.debug", dir, hex) < 0 ? NULL : path;
}

// Is fd an ELF file of this user's whose build-id is id?
static bool copy_matches(int fd, const uint8_t *id, size_t idlen)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
		return false;
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e)
		return false;
	const void *bid;
	ssize_t n = elf_kind(e) == ELF_K_ELF ? dwelf_elf_gnu_build_id(e, &bid) : -1;
	bool ok = n == (ssize_t)idlen && !memcmp(bid, id, idlen);
	elf_end(e);
	return ok;
}

static bool write_all(int fd, const void *buf, size_t len, off_t at)
{
	const char *p = buf;
	while (len) {
		ssize_t w = pwrite(fd, p, len, at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		len -= (size_t)w;
		at += w;
	}
	return true;
}

/* Whether a copy of e is worth making: a 64-bit file of this machine's byte
 * order whose compressed sections are all zlib (what libelf inflates) and
 * inflate to COPY_MIN_GAIN..COPY_MAX_BYTES. */
static bool worth_a_copy(Elf *e)
{
	size_t size, shnum;
	const unsigned char *ident = (const unsigned char *)elf_rawfile(e, &size);
	if (!ident || size < sizeof(Elf64_Ehdr) || ident[EI_CLASS] != ELFCLASS64 ||
	    ident[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB) ||
	    elf_getshdrnum(e, &shnum) != 0 || shnum == 0 || shnum > 65536)
		return false;
	uint64_t inflated = 0;
	for (size_t i = 1; i < shnum; i++) {
		Elf_Scn *scn = elf_getscn(e, i);
		GElf_Shdr sh;
		GElf_Chdr ch;
		if (!scn || !gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_COMPRESSED) || sh.sh_type == SHT_NOBITS)
			continue;
		if (!gelf_getchdr(scn, &ch) || ch.ch_type != ELFCOMPRESS_ZLIB)
			return false;
		inflated += ch.ch_size;
	}
	return inflated >= COPY_MIN_GAIN && inflated <= COPY_MAX_BYTES;
}

/* Write the copy of e (worth_a_copy) to fd; false when a step fails. */
static bool write_copy(Elf *e, int fd)
{
	size_t size, shnum;
	const char *image = elf_rawfile(e, &size);
	if (!image || elf_getshdrnum(e, &shnum) != 0)
		return false;
	Elf64_Shdr *shdrs = calloc(shnum, sizeof(*shdrs));
	if (!shdrs)
		return false;
	bool ok = write_all(fd, image, size, 0);
	uint64_t at = size;
	for (size_t i = 0; ok && i < shnum; i++) {
		Elf_Scn *scn = elf_getscn(e, i);
		GElf_Shdr sh;
		if (!scn || !gelf_getshdr(scn, &sh)) {
			ok = false;
			break;
		}
		shdrs[i] = (Elf64_Shdr){ sh.sh_name, sh.sh_type, sh.sh_flags, sh.sh_addr, sh.sh_offset,
					 sh.sh_size, sh.sh_link, sh.sh_info, sh.sh_addralign, sh.sh_entsize };
		if (!i || !(sh.sh_flags & SHF_COMPRESSED) || sh.sh_type == SHT_NOBITS)
			continue;
		GElf_Chdr ch;
		if (!gelf_getchdr(scn, &ch) || elf_compress(scn, 0, 0) < 0) {
			ok = false;
			break;
		}
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d || d->d_size != ch.ch_size || (ch.ch_size && !d->d_buf)) {
			ok = false;
			break;
		}
		uint64_t align = ch.ch_addralign > 1 ? ch.ch_addralign : 1;
		if (align & (align - 1) || align > 4096) {
			ok = false;
			break;
		}
		at = (at + align - 1) & ~(align - 1);
		ok = write_all(fd, d->d_buf, d->d_size, (off_t)at);
		shdrs[i].sh_flags &= ~(uint64_t)SHF_COMPRESSED;
		shdrs[i].sh_offset = at;
		shdrs[i].sh_size = d->d_size;
		shdrs[i].sh_addralign = ch.ch_addralign;
		at += d->d_size;
	}
	at = (at + 7) & ~(uint64_t)7;
	Elf64_Off shoff = at;
	ok = ok && write_all(fd, shdrs, shnum * sizeof(*shdrs), (off_t)at) &&
	     write_all(fd, &shoff, sizeof(shoff), (off_t)offsetof(Elf64_Ehdr, e_shoff));
	free(shdrs);
	return ok;
}

/* Keep the copies under CACHE_MAX_BYTES: the least recently written go
 * first, never `keep` (the one just written). */
static void trim(const char *dir, const char *keep)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct entry { char name[NAME_MAX + 1]; time_t mtime; off_t size; } *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;
	const char *keep_name = strrchr(keep, '/') ? strrchr(keep, '/') + 1 : keep;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		size_t len = strlen(de->d_name);
		struct stat st;
		if (len < 7 || strcmp(de->d_name + len - 6, ".debug") || fstatat(dirfd(d), de->d_name, &st, 0) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		total += (uint64_t)st.st_size;
		if (!strcmp(de->d_name, keep_name))
			continue;
		if (n == cap) {
			size_t c = cap ? 2 * cap : 16;
			struct entry *g = realloc(v, c * sizeof(*g));
			if (!g)
				break;
			v = g;
			cap = c;
		}
		snprintf(v[n].name, sizeof(v[n].name), "%s", de->d_name);
		v[n].mtime = st.st_mtime;
		v[n++].size = st.st_size;
	}
	while (total > CACHE_MAX_BYTES && n) {
		size_t old = 0;
		for (size_t i = 1; i < n; i++)
			if (v[i].mtime < v[old].mtime)
				old = i;
		if (unlinkat(dirfd(d), v[old].name, 0) == 0) {
			total -= (uint64_t)v[old].size;
			char side[NAME_MAX + 1];
			snprintf(side, sizeof(side), "%.*s.from", (int)(strlen(v[old].name) - strlen(".debug")),
				 v[old].name);
			unlinkat(dirfd(d), side, 0);
		}
		v[old] = v[--n];
	}
	free(v);
	closedir(d);
}

// mkdir -p, each new directory private to this user.
static bool make_dirs(const char *dir)
{
	char *p = strdup(dir);
	if (!p)
		return false;
	bool ok = true;
	for (char *s = p + 1; ok; s++) {
		if (*s && *s != '/')
			continue;
		char c = *s;
		*s = '\0';
		ok = mkdir(p, 0700) == 0 || errno == EEXIST;
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return ok;
}

/* The sidecar of a copy: "SIZE MTIME_SEC MTIME_NSEC PATH" of the file it
 * was made from. */
static char *sidecar_path(const char *copy)
{
	char *p;
	return asprintf(&p, "%.*s.from", (int)(strlen(copy) - strlen(".debug")), copy) < 0 ? NULL : p;
}

int hs_debug_cache_open(const uint8_t *id, size_t idlen, char **orig_ret, char **copy_ret)
{
	*orig_ret = *copy_ret = NULL;
	if (idlen < 8 || idlen > 64)
		return -1;
	char *dir = hs_debug_cache_dir();
	char *path = dir ? copy_path(dir, id, idlen) : NULL;
	char *side = path ? sidecar_path(path) : NULL;
	free(dir);
	int fd = -1;
	FILE *f = side ? fopen(side, "re") : NULL;
	char orig[PATH_MAX + 1];
	long long size, sec, nsec;
	struct stat st;
	// The file it was made from must be there still, unchanged.
	if (f && fscanf(f, "%lld %lld %lld %4096[^\n]", &size, &sec, &nsec, orig) == 4 && orig[0] == '/' &&
	    stat(orig, &st) == 0 && st.st_size == size && st.st_mtim.tv_sec == sec && st.st_mtim.tv_nsec == nsec) {
		fd = hs_open_regular(path);
		if (fd >= 0 && !copy_matches(fd, id, idlen)) {
			close(fd);
			fd = -1;
		}
	}
	if (f)
		fclose(f);
	free(side);
	if (fd >= 0) {
		*orig_ret = strdup(orig);
		*copy_ret = path;
		if (!*orig_ret) {
			free(path);
			*copy_ret = NULL;
			close(fd);
			return -1;
		}
		return fd;
	}
	free(path);
	return -1;
}

void hs_debug_cache_store(const char *orig, const uint8_t *id, size_t idlen)
{
	if (!orig || orig[0] != '/' || idlen < 8 || idlen > 64)
		return;
	char *dir = hs_debug_cache_dir();
	char *path = dir ? copy_path(dir, id, idlen) : NULL;
	char *side = path ? sidecar_path(path) : NULL;
	char *tmp = NULL, *stmp = NULL;
	int fd = -1;
	Elf *e = NULL;
	struct stat st;
	// Most debug files are not compressed: nothing is created for them.
	if (!side || (fd = open(orig, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF || !worth_a_copy(e) || !make_dirs(dir) ||
	    asprintf(&tmp, "%s.XXXXXX", path) < 0 || asprintf(&stmp, "%s.XXXXXX", side) < 0)
		goto out;
	int tfd = mkostemp(tmp, O_CLOEXEC);
	if (tfd < 0)
		goto out;
	bool ok = write_copy(e, tfd) && copy_matches(tfd, id, idlen);
	close(tfd);
	// The copy first, then the sidecar that makes it used.
	int sfd = ok ? mkostemp(stmp, O_CLOEXEC) : -1;
	FILE *sf = sfd >= 0 ? fdopen(sfd, "w") : NULL;
	if (sfd >= 0 && !sf)
		close(sfd);
	if (sf) {
		ok = fprintf(sf, "%lld %lld %lld %s\n", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
			     (long long)st.st_mtim.tv_nsec, orig) > 0;
		ok = fclose(sf) == 0 && ok;
	} else {
		ok = false;
	}
	if (ok && rename(tmp, path) == 0 && rename(stmp, side) == 0)
		trim(dir, path);
	unlink(tmp);    // (gone when renamed)
	unlink(stmp);
out:
	if (e)
		elf_end(e);
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(stmp);
	free(side);
	free(path);
	free(dir);
}
