/* grow.c - the diff fixture (issue 16): a heap that grows between two dump
 * points, by known types, sizes and owners.
 *
 *   grow TRUTH            stops at dump_one() and dump_two() (gdb breakpoints:
 *                         cores/make-grow-cores.sh writes grow.one/two.gdb.core)
 *   grow TRUTH abort      kernel cores: at dump_one() a forked child (same heap)
 *                         aborts in the directory "one"; at dump_two() it aborts
 *
 * Between the two points, exactly: +200 struct item on g_items, -10 struct
 * record from g_records, +4 struct big in g_bigs[], +7 leaked blobs (type
 * unknown: nothing typed points at them).  g_alt, made before both points,
 * is a chain of 50 alt_a -> alt_b pairs: 100 owner frames, more than export's
 * stacks keep (64).  The truth (usable sizes from
 * malloc_usable_size) is written just before dump_two(); fclose() frees
 * stdio's FILE and buffer again, so no used allocation of stdio is in either
 * core (free blocks are in no diff group).
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct item {
	long id;
	struct item *next;
	char payload[40];
};

struct record {
	int kind;
	double value;
	struct record *next;
};

struct big {
	long n;
	char data[992];
};

/* An owner chain of alternating types, deeper than export's 64 frames. */
struct alt_b;
struct alt_a {
	struct alt_b *next;
	long pad;
};
struct alt_b {
	struct alt_a *next;
	long pad[3];
};

struct item *g_items;
struct alt_a *g_alt;
struct record *g_records;
struct big *g_bigs[4];

static int kernel_mode;

#define NALT 50

static __attribute__((noinline)) void add_alt(void)
{
	struct alt_a **link = &g_alt;
	for (int i = 0; i < NALT; i++) {
		struct alt_a *a = calloc(1, sizeof(*a));
		struct alt_b *b = calloc(1, sizeof(*b));
		*link = a;
		a->next = b;
		link = &b->next;
	}
}

static __attribute__((noinline)) void add_items(int n)
{
	for (int i = 0; i < n; i++) {
		struct item *it = calloc(1, sizeof(*it));
		it->id = i;
		it->next = g_items;
		g_items = it;
	}
}

static __attribute__((noinline)) void add_records(int n)
{
	for (int i = 0; i < n; i++) {
		struct record *r = calloc(1, sizeof(*r));
		r->kind = i;
		r->next = g_records;
		g_records = r;
	}
}

static __attribute__((noinline)) void leak_blobs(int n)
{
	for (int i = 0; i < n; i++) {
		volatile char *p = malloc(108);
		memset((char *)p, 0x5a, 108);
		p = NULL;
	}
}

static __attribute__((noinline)) void scrub_stack(void)
{
	volatile char junk[4096];
	memset((char *)junk, 0, sizeof(junk));
}

__attribute__((noinline)) void dump_one(void)
{
	if (!kernel_mode)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		if (chdir("one") != 0)
			_exit(1);
		abort();
	}
	int status;
	waitpid(pid, &status, 0);
}

__attribute__((noinline)) void dump_two(void)
{
	if (kernel_mode)
		abort();
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	kernel_mode = argc > 2 && !strcmp(argv[2], "abort");
	// Sizes first: malloc_usable_size of one of each, freed again (the
	// tcache keeps them; free chunks are not in any diff group).
	void *probe[6] = { malloc(sizeof(struct item)), malloc(sizeof(struct record)), malloc(108),
			   malloc(sizeof(struct big)), malloc(sizeof(struct alt_a)), malloc(sizeof(struct alt_b)) };
	size_t us[6];
	for (int i = 0; i < 6; i++) {
		us[i] = malloc_usable_size(probe[i]);
		free(probe[i]);
		probe[i] = NULL;   // the next malloc of that size gets it again
	}
	add_alt();
	add_items(50);
	add_records(30);
	leak_blobs(5);
	scrub_stack();
	dump_one();
	add_items(200);
	for (int i = 0; i < 10; i++) {
		struct record *r = g_records;
		g_records = r->next;
		free(r);
	}
	for (int i = 0; i < 4; i++)
		g_bigs[i] = calloc(1, sizeof(struct big));
	leak_blobs(7);
	FILE *f = fopen(argv[1], "w");
	if (!f)
		return 1;
	fprintf(f, "{\n  \"groups\": [\n");
	fprintf(f, "    {\"type\": \"item\", \"size\": %zu, \"count_delta\": 200, \"bytes_delta\": %zu},\n", us[0], 200 * us[0]);
	fprintf(f, "    {\"type\": \"big\", \"size\": %zu, \"count_delta\": 4, \"bytes_delta\": %zu},\n", us[3], 4 * us[3]);
	fprintf(f, "    {\"type\": null, \"size\": %zu, \"count_delta\": 7, \"bytes_delta\": %zu},\n", us[2], 7 * us[2]);
	fprintf(f, "    {\"type\": \"record\", \"size\": %zu, \"count_delta\": -10, \"bytes_delta\": -%zu}\n", us[1], 10 * us[1]);
	fprintf(f, "  ],\n  \"sizes\": {\"item\": %zu, \"record\": %zu, \"blob\": %zu, \"big\": %zu},\n",
		us[0], us[1], us[2], us[3]);
	fprintf(f, "  \"alt\": {\"pairs\": %d, \"alt_a\": %zu, \"alt_b\": %zu},\n", NALT, us[4], us[5]);
	fprintf(f, "  \"two\": {\"item\": 250, \"record\": 20, \"big\": 4, \"blob\": 12},\n");
	fprintf(f, "  \"leaked\": {\"count_delta\": 7, \"bytes_delta\": %zu},\n", 7 * us[2]);
	fprintf(f, "  \"in_use\": {\"count_delta\": %d, \"bytes_delta\": %zd},\n", 200 - 10 + 4 + 7,
		(ssize_t)(200 * us[0] + 4 * us[3] + 7 * us[2]) - (ssize_t)(10 * us[1]));
	fprintf(f, "  \"owners\": [\n");
	fprintf(f, "    {\"owner\": \"globals;g_items\", \"count_delta\": 200, \"bytes_delta\": %zu},\n", 200 * us[0]);
	fprintf(f, "    {\"owner\": \"globals;g_bigs\", \"count_delta\": 4, \"bytes_delta\": %zu},\n", 4 * us[3]);
	fprintf(f, "    {\"owner\": \"[leaked]\", \"count_delta\": 7, \"bytes_delta\": %zu},\n", 7 * us[2]);
	fprintf(f, "    {\"owner\": \"globals;g_records\", \"count_delta\": -10, \"bytes_delta\": -%zu}\n", 10 * us[1]);
	fprintf(f, "  ]\n}\n");
	fclose(f);
	scrub_stack();
	dump_two();
	return 0;
}
