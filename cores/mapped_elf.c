/* mapped_elf.c - a program that maps ELF files it only reads, as a debugger
 * or a profiler does: the file of its own libc.so.6 and its own executable,
 * mapped as libdwfl maps what it reads.  mmap places them below the loaded libc, and the core holds
 * their first pages (ELF headers), so libdwfl reports each as a module: a
 * second libc.so.6 before the loaded one, whose main_arena would be
 * nothing.  heapscope keeps only the dynamic linker's list of loaded
 * objects and walks the loaded libc's arena exactly.
 *
 * Such a tool names the allocators it knows in its messages, as heapscope
 * does: its .rodata holds the words a stripped allocator's strings start
 * with ("gperftools ", tcmalloc's "Bytes in thread cache freelists",
 * "<jemalloc>") without any allocator's code or version string.  They must
 * not be taken for an allocator linked into it.
 */
#include "truth.h"
#include <link.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char libc_path[PATH_MAX];

static const char *const allocator_words[] = {
	"gperftools ", "Bytes in thread cache freelists", "<jemalloc>", "mimalloc: ",
};

static int find_libc(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	const char *slash = strrchr(info->dlpi_name, '/');
	if (slash && strncmp(slash + 1, "libc.so", 7) == 0) {
		snprintf(libc_path, sizeof(libc_path), "%s", info->dlpi_name);
		return 1;
	}
	return 0;
}

/* The whole file, private and writable as libdwfl has libelf map the files
 * it reads (ELF_C_READ_MMAP_PRIVATE), and one page of it written (the same
 * byte back): a private mapping with a page of its own is dumped whole, by
 * the kernel and by gdb, as the one libelf wrote was. */
static void *map_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		truth_die("cannot open a file to map");
	// Room after it for the span its segments would have when loaded:
	// libdwfl reports no module that overlaps another.
	size_t room = (size_t)st.st_size + (8u << 20);
	void *p = mmap(NULL, room, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED ||
	    mmap(p, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0) != p)
		truth_die("cannot map a file");
	close(fd);
	volatile char *c = p;
	c[0] = c[0];
	return p;
}

int main(int argc, char **argv)
{
	const char *path = truth_path(argc, argv);
	static void *keep[6], *mapped[2];
	int local = 0;
	truth_set_name("mapped_elf");
	dl_iterate_phdr(find_libc, NULL);
	if (!libc_path[0])
		truth_die("libc.so not among the loaded objects");
	mapped[0] = map_file(libc_path);
	mapped[1] = map_file("/proc/self/exe");
	// The first malloc creates the thread's tcache right before its chunk.
	keep[0] = malloc(24);
	truth_thread_tcache(keep[0], 0);
	for (int i = 1; i < 6; i++)
		keep[i] = malloc(40 + 120 * (size_t)i);
	for (int i = 0; i < 6; i++)
		truth_live(keep[i]);
	truth_thread(&local);
	truth_set_arenas(1);
	// The dynamic linker's list, for the tests that damage it.
	truth_note("r_map %#lx", (unsigned long)_r_debug.r_map);
	truth_note("allocator words %zu", strlen(allocator_words[argc % 4]));
	truth_write(path);
	dump_here();
	truth_finish(argc, argv);
	return mapped[0] == mapped[1];
}
