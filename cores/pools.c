/* pools.c - a fixture with application object pools (issue 10), and lists
 * that are not pools.  Its truth (written before dump_here()) has, for each
 * list, the exact pooled addresses, which are polluted, and the bytes only
 * the pool keeps alive:
 *
 *   "pools": [{"anchor", "spec", "anchor_address", "thread", "link",
 *              "kind" (allocations|slots), "object_size", "detect", "broken",
 *              "objects": [address...], "polluted": [address...],
 *              "polluted_retained": bytes}]
 *   "not_pools": [{"anchor", "why"}]
 *
 * Pools: g_free_requests (intrusive, link 0, polluted: one buffer with a
 * child, one buffer alone, one buffer shared with a live request);
 * g_conn_pool.free_head (link at +8, "next_free"); t_spare_nodes (TLS, one
 * pool in each of three threads; empty in main); g_slab_free (free slots of
 * one 512-byte slab, stride 32; one slot polluted, one sharing).
 * Not pools unless declared: g_avail_workers (its workers are also in
 * g_worker_table), g_free_lru (doubly linked), g_cyclic_free (its list runs
 * 1 -> 2 -> 3 -> 2: declared, it counts 3 and is "broken").  Never:
 * g_job_queue (a live list; no pool name).
 *
 * No heap address is kept in static memory except in the lists themselves:
 * the truth records complemented addresses (~p), and the stack and scratch
 * registers are scrubbed before the dump.
 */
#include "leak_truth.h"

struct request { struct request *next; char *buf; size_t len; long id; };
struct conn { int fd; int state; struct conn *next_free; char *rbuf; };
struct conn_pool { long nfree; struct conn *free_head; };
struct tnode { struct tnode *next; long v[3]; };
struct slot { struct slot *next; char *data; long pad[2]; };
struct worker { struct worker *next; long id; };
struct lru { struct lru *next, *prev; long key; };
struct job { struct job *next; long id; char *payload; };

struct request *g_free_requests;
struct request *g_live_requests[5];
struct conn_pool g_conn_pool;
__thread struct tnode *t_spare_nodes;
struct slot *g_slab;
struct slot *g_slab_free;
struct worker *g_avail_workers;
struct worker *g_worker_table[4];
struct lru *g_free_lru;
struct job *g_job_queue;
struct worker *g_cyclic_free;

#define NTHREADS 3
#define MAXOBJ 64

/* The truth, complemented. */
struct pool_truth {
	const char *anchor, *spec, *kind;
	uintptr_t anchor_address;   /* complemented too (TLS: a heap-free address, but uniform) */
	int thread, detect, broken;
	size_t link, object_size;
	uintptr_t objs[MAXOBJ];
	size_t nobjs;
	uintptr_t polluted[MAXOBJ];
	size_t npolluted;
	size_t retained;
};
static struct pool_truth pt[16];
static size_t npt;
static pthread_mutex_t pt_lock = PTHREAD_MUTEX_INITIALIZER;

static __attribute__((noinline)) struct pool_truth *pool_truth(const char *anchor, const char *spec, const char *kind,
							       void *anchor_address, int thread, int detect, size_t link,
							       size_t object_size)
{
	pthread_mutex_lock(&pt_lock);
	struct pool_truth *t = &pt[npt++];
	pthread_mutex_unlock(&pt_lock);
	*t = (struct pool_truth){ .anchor = anchor, .spec = spec, .kind = kind,
				  .anchor_address = ~(uintptr_t)anchor_address, .thread = thread, .detect = detect,
				  .link = link, .object_size = object_size };
	return t;
}

static __attribute__((noinline)) void pooled(struct pool_truth *t, void *p)
{
	t->objs[t->nobjs++] = ~(uintptr_t)p;
}

static __attribute__((noinline)) void polluted(struct pool_truth *t, void *p)
{
	t->polluted[t->npolluted++] = ~(uintptr_t)p;
}

static __attribute__((noinline)) void *xmalloc(size_t n)
{
	void *p = calloc(1, n);
	if (!p)
		truth_die("out of memory");
	return p;
}

/* An intrusive free list of requests. */
static __attribute__((noinline)) void build_requests(void)
{
	struct pool_truth *t = pool_truth("g_free_requests", "g_free_requests:next", "allocations", &g_free_requests,
					  0, 1, 0, 0);
	struct request *r[12];
	for (int i = 0; i < 12; i++) {
		r[i] = xmalloc(sizeof(struct request));
		r[i]->id = 1000 + i;
	}
	t->object_size = malloc_usable_size(r[0]);
	char *shared = xmalloc(80);
	for (int i = 0; i < 5; i++) {
		g_live_requests[i] = r[i];
		r[i]->buf = i == 0 ? shared : xmalloc(24);
		r[i]->len = 24;
	}
	// Polluted: a buffer with a child; a buffer alone; the shared buffer.
	char *b5 = xmalloc(100);
	char *child = xmalloc(64);
	*(char **)b5 = child;
	r[5]->buf = b5;
	r[7]->buf = xmalloc(200);
	r[9]->buf = shared;
	t->retained = malloc_usable_size(b5) + malloc_usable_size(child) + malloc_usable_size(r[7]->buf);
	polluted(t, r[5]);
	polluted(t, r[7]);
	polluted(t, r[9]);
	// "Free" 5..11: push, so the list runs 11, 10, ..., 5.
	for (int i = 5; i < 12; i++) {
		r[i]->next = g_free_requests;
		g_free_requests = r[i];
	}
	for (int i = 11; i >= 5; i--)
		pooled(t, r[i]);
	explicit_bzero(r, sizeof(r));
}

/* A pool inside a global struct, the link at +8. */
static __attribute__((noinline)) void build_conns(void)
{
	struct pool_truth *t = pool_truth("g_conn_pool.free_head", "g_conn_pool.free_head:next_free", "allocations",
					  &g_conn_pool.free_head, 0, 1, 8, 0);
	for (int i = 0; i < 4; i++) {
		struct conn *c = xmalloc(sizeof(struct conn));
		c->fd = 3 + i;
		c->state = 2;
		c->next_free = g_conn_pool.free_head;
		g_conn_pool.free_head = c;
		g_conn_pool.nfree++;
		t->object_size = malloc_usable_size(c);
	}
	for (struct conn *c = g_conn_pool.free_head; c; c = c->next_free)
		pooled(t, c);
}

/* Free slots of one slab: slots 1, 3, 4, 6, 9, 10 of 16. */
static __attribute__((noinline)) void build_slab(void)
{
	struct pool_truth *t = pool_truth("g_slab_free", "g_slab_free:next", "slots", &g_slab_free, 0, 1, 0,
					  sizeof(struct slot));
	g_slab = xmalloc(16 * sizeof(struct slot));
	static const int free_slots[] = { 1, 3, 4, 6, 9, 10 };
	char *shared = xmalloc(40);
	for (int i = 0; i < 16; i++)
		g_slab[i].pad[0] = i;
	g_slab[0].data = xmalloc(32);
	g_slab[8].data = shared;
	for (size_t k = 0; k < sizeof(free_slots) / sizeof(free_slots[0]); k++) {
		struct slot *s = &g_slab[free_slots[k]];
		s->next = g_slab_free;
		g_slab_free = s;
	}
	g_slab[4].data = xmalloc(48);
	g_slab[9].data = shared;
	t->retained = malloc_usable_size(g_slab[4].data);
	polluted(t, &g_slab[4]);
	polluted(t, &g_slab[9]);
	for (struct slot *s = g_slab_free; s; s = s->next)
		pooled(t, s);
}

/* Not pools unless declared. */
static __attribute__((noinline)) void build_lists(void)
{
	struct pool_truth *t = pool_truth("g_avail_workers", "g_avail_workers", "allocations", &g_avail_workers, 0, 0,
					  0, 0);
	for (int i = 0; i < 4; i++) {
		struct worker *w = xmalloc(sizeof(struct worker));
		w->id = i;
		g_worker_table[i] = w;
		w->next = g_avail_workers;
		g_avail_workers = w;
		t->object_size = malloc_usable_size(w);
	}
	for (struct worker *w = g_avail_workers; w; w = w->next)
		pooled(t, w);

	t = pool_truth("g_free_lru", "g_free_lru:next", "allocations", &g_free_lru, 0, 0, 0, 0);
	for (int i = 0; i < 5; i++) {
		struct lru *l = xmalloc(sizeof(struct lru));
		l->key = i;
		l->next = g_free_lru;
		if (g_free_lru)
			g_free_lru->prev = l;
		g_free_lru = l;
		t->object_size = malloc_usable_size(l);
	}
	for (struct lru *l = g_free_lru; l; l = l->next)
		pooled(t, l);

	t = pool_truth("g_cyclic_free", "g_cyclic_free", "allocations", &g_cyclic_free, 0, 0, 0, 0);
	t->broken = 1;
	struct worker *c1 = xmalloc(sizeof(struct worker)), *c2 = xmalloc(sizeof(struct worker)),
		      *c3 = xmalloc(sizeof(struct worker));
	c1->next = c2;
	c2->next = c3;
	c3->next = c2;
	g_cyclic_free = c1;
	t->object_size = malloc_usable_size(c1);
	pooled(t, c1);
	pooled(t, c2);
	pooled(t, c3);
	c1 = c2 = c3 = NULL;

	for (int i = 0; i < 6; i++) {
		struct job *j = xmalloc(sizeof(struct job));
		j->id = i;
		j->payload = xmalloc(16);
		j->next = g_job_queue;
		g_job_queue = j;
	}
}

/* Threads: a per-thread cache of nodes each. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int ready, done;

static __attribute__((noinline)) void build_thread_pool(int no)
{
	struct pool_truth *t = pool_truth("t_spare_nodes", "t_spare_nodes", "allocations", &t_spare_nodes,
					  truth_gettid(), 1, 0, 0);
	for (int i = 0; i < no + 1; i++) {
		struct tnode *n = xmalloc(sizeof(struct tnode));
		n->v[0] = no;
		n->next = t_spare_nodes;
		t_spare_nodes = n;
		t->object_size = malloc_usable_size(n);
	}
	for (struct tnode *n = t_spare_nodes; n; n = n->next)
		pooled(t, n);
}

static void *thread_main(void *arg)
{
	int no = (int)(intptr_t)arg;
	int local;
	truth_thread(&local);
	build_thread_pool(no);
	lt_scrub_stack();
	pthread_mutex_lock(&lock);
	ready++;
	pthread_cond_broadcast(&cond);
	while (!done)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	return NULL;
}

static __attribute__((noinline)) void write_truth(const char *path)
{
	truth_write(path);
	// truth_write() wrote the base document: reopen it and append ours.
	truth.outlen--;               // the final newline
	truth.outlen--;               // the closing brace
	truth_cat(",\n\"pools\":[");
	for (size_t i = 0; i < npt; i++) {
		const struct pool_truth *t = &pt[i];
		truth_cat("%s\n {\"anchor\":\"%s\",\"spec\":\"%s\",\"kind\":\"%s\",\"anchor_address\":%lu,\"thread\":%d,"
			  "\"detect\":%s,\"broken\":%s,\"link\":%zu,\"object_size\":%zu,\"polluted_retained\":%zu,\"objects\":[",
			  i ? "," : "", t->anchor, t->spec, t->kind, (unsigned long)~t->anchor_address, t->thread,
			  t->detect ? "true" : "false", t->broken ? "true" : "false", t->link, t->object_size, t->retained);
		for (size_t k = 0; k < t->nobjs; k++)
			truth_cat("%s%lu", k ? "," : "", (unsigned long)~t->objs[k]);
		truth_cat("],\"polluted\":[");
		for (size_t k = 0; k < t->npolluted; k++)
			truth_cat("%s%lu", k ? "," : "", (unsigned long)~t->polluted[k]);
		truth_cat("]}");
	}
	truth_cat("],\n\"not_pools\":[{\"anchor\":\"g_job_queue\",\"why\":\"a live list\"}]}\n");
	truth_save(path);
}

int main(int argc, char **argv)
{
	const char *path = truth_path(argc, argv);
	int local;
	truth_set_name("pools");
	truth_thread(&local);
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		if (pthread_create(&th[i], NULL, thread_main, (void *)(intptr_t)(i + 1)))
			truth_die("pthread_create failed");
	pthread_mutex_lock(&lock);
	while (ready < NTHREADS)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	build_requests();
	build_conns();
	build_slab();
	build_lists();
	pool_truth("t_spare_nodes", "t_spare_nodes", "allocations", &t_spare_nodes, truth_gettid(), 0, 0, 0);
	write_truth(path);
	lt_scrub_stack();
	LT_CLEAR_REGS();
	dump_here();
	truth_finish(argc, argv);
	pthread_mutex_lock(&lock);
	done = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	return 0;
}
