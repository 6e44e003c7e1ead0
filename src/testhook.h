/* testhook.h - a test-only hold, so that tests can interrupt a stage for sure.
 *
 * With HEAPSCOPE_TEST_HOLD=STAGE:PATH in the environment, the first time the
 * named stage ("analysis") starts, hs_test_hold() creates the file PATH (the
 * test waits for it) and then waits until hs_interrupt() is called: it returns
 * HS_ERR_INTERRUPTED, as the stage itself would.  It gives up after 120 s with
 * HS_ERR_OTHER, so a test that never signals fails instead of hanging.  Without
 * the variable it returns NULL at once.
 */
#ifndef HS_TESTHOOK_H
#define HS_TESTHOOK_H

#include <stdbool.h>

struct hs_error *hs_test_hold(const char *stage);

/* With HEAPSCOPE_TEST_NO_THREADS=1 in the environment, true: no thread is
 * started where one could fail to start (hs_run_parts runs every part on the
 * calling thread, as when pthread_create fails), so that tests cover that. */
bool hs_test_no_threads(void);

/* With HEAPSCOPE_TEST_SMALL_SPLITS=1 in the environment, true: the type
 * stages cut their work into pieces of a few queue entries or blocks
 * (instead of thousands), so that a small fixture goes through every round
 * of their two-thread pipelines; and the tables that grow as they fill (Go
 * types by runtime type, containers by address) start at a few slots, so
 * that a small fixture grows them. */
bool hs_test_small_splits(void);

/* With HEAPSCOPE_TEST_DOMINATOR_BUCKETS=1 in the environment, true: the
 * dominators take Lengauer-Tarjan's buckets at once, as they do when the
 * walks up the dominator tree grow too long (dominators.c), so that tests
 * cover that way too. */
bool hs_test_dominator_buckets(void);

/* With HEAPSCOPE_TEST_PROBE_AFTER_SCAN=1 in the environment, true: the
 * containers stage probes the heap's blocks itself, in a pass of its own,
 * instead of riding along with the scan (hs_container_probes), so that
 * tests compare the two. */
bool hs_test_probe_after_scan(void);

#endif
