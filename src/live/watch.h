/* watch.h - when to take a core of a live process: its RSS, or its cgroup's
 * memory against the cgroup's limit, polled cheaply (one small /proc or
 * cgroupfs read per poll), with the re-arm rule that keeps a growing process
 * from filling the disk with cores.
 *
 * The rule (docs/cli.md): armed at the threshold T; a poll at or above the
 * armed level fires (so does a rise of cgroup v2's memory.events "max" count:
 * the limit was hit between two polls).  After a capture at usage U the next
 * level is max(U, T) + STEP (it grew by a further step); when usage falls below
 * T - STEP, having been at or above it since that core, the level is T again (it
 * fell back).  A "max" event fires only while armed at T.  STEP defaults to T / 10.
 *
 * Never prints; the front end runs the loop and takes the cores.
 */
#ifndef HS_WATCH_H
#define HS_WATCH_H

#include <stdbool.h>
#include <stdint.h>
#include "error.h"

struct hs_watch;

struct hs_watch_sample {
	uint64_t usage;            /* RSS, or the cgroup's memory.current / usage_in_bytes */
	uint64_t limit;            /* the cgroup's limit (0 for RSS) */
	uint64_t threshold;        /* T in bytes */
	uint64_t level;            /* the armed level: a poll at or above it fires */
	uint64_t max_events;       /* cgroup v2 memory.events "max" (0 otherwise) */
	uint64_t oom_kills;        /* cgroup v2 memory.events "oom_kill" */
	bool fire;
	const char *why;           /* when fire: "threshold", "memory.max hit" */
};

/* RSS of pid (/proc/PID/statm) against threshold bytes; step 0 = threshold / 10. */
struct hs_error *hs_watch_open_rss(int pid, uint64_t threshold, uint64_t step, struct hs_watch **ret);
/* The cgroup in dir (or "auto": pid's own, from /proc/PID/cgroup) at pct percent
 * of its limit.  v2 (memory.current, memory.max, memory.events) or v1
 * (memory.usage_in_bytes, memory.limit_in_bytes), whichever dir holds.
 * A cgroup with no limit fails (HS_ERR_USAGE). */
struct hs_error *hs_watch_open_cgroup(int pid, const char *dir, double pct, uint64_t step,
				      struct hs_watch **ret);
/* The cgroup directory watched and its version (1 or 2); NULL, 0 for RSS. */
const char *hs_watch_cgroup_dir(const struct hs_watch *w, int *version_ret);
/* One poll.  HS_ERR_TARGET when the process (RSS) or the cgroup files are gone. */
struct hs_error *hs_watch_poll(struct hs_watch *w, struct hs_watch_sample *ret);
/* A core was taken at this sample: move the level up by a step. */
void hs_watch_fired(struct hs_watch *w, const struct hs_watch_sample *s);
void hs_watch_destroy(struct hs_watch *w);

/* Parse "1.5", "500ms", "2s", "1m" into seconds. */
struct hs_error *hs_parse_seconds(const char *text, const char *what, double *ret);

#endif
