/* watch.c - see watch.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "watch.h"

/* cgroup v1 says "no limit" with a huge number (PAGE_COUNTER_MAX pages). */
#define V1_UNLIMITED (1ull << 62)

struct hs_watch {
	int pid;
	int version;               /* 0: RSS; 1, 2: cgroup */
	char *dir;
	int usage_fd;              /* RSS: /proc/PID/statm, kept open */
	double pct;
	uint64_t fixed_threshold;  /* RSS */
	uint64_t step_opt;
	uint64_t level;            /* 0: at the threshold */
	bool have_events;          /* last_max_events was read once */
	bool seen_high;            /* usage was at or above T - STEP since the last core */
	uint64_t last_max_events;
	long page_size;
};

void hs_watch_destroy(struct hs_watch *w)
{
	if (!w)
		return;
	if (w->usage_fd >= 0)
		close(w->usage_fd);
	free(w->dir);
	free(w);
}

static struct hs_watch *watch_alloc(int pid, uint64_t step)
{
	struct hs_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->pid = pid;
	w->usage_fd = -1;
	w->step_opt = step;
	w->page_size = sysconf(_SC_PAGESIZE);
	return w;
}

/* Read a small file from the start (the fd stays open: one pread per poll). */
static ssize_t pread_text(int fd, char *buf, size_t cap)
{
	ssize_t n;
	do
		n = pread(fd, buf, cap - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

struct hs_error *hs_watch_open_rss(int pid, uint64_t threshold, uint64_t step, struct hs_watch **ret)
{
	if (!threshold)
		return hs_error_create(HS_ERR_USAGE, "--rss-above needs a size above 0");
	struct hs_watch *w = watch_alloc(pid, step);
	if (!w)
		return &hs_error_nomem;
	w->fixed_threshold = threshold;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	w->usage_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (w->usage_fd < 0) {
		int e = errno;
		hs_watch_destroy(w);
		return e == ENOENT ? hs_error_create(HS_ERR_TARGET, "no process with pid %d", pid)
				   : hs_error_errno(e, "cannot read %s", path);
	}
	*ret = w;
	return NULL;
}

static int open_in(const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -1;
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* A cgroup file, opened at each poll: three syscalls, and a cgroup that was
 * removed and made again is followed. */
static ssize_t read_cg(const struct hs_watch *w, const char *name, char *buf, size_t cap)
{
	int fd = open_in(w->dir, name);
	if (fd < 0)
		return -1;
	ssize_t n = pread_text(fd, buf, cap);
	close(fd);
	return n;
}

/* The limit in the cgroup's limit file; 0 when there is none. */
static struct hs_error *read_limit(struct hs_watch *w, uint64_t *ret)
{
	char buf[64];
	if (read_cg(w, w->version == 2 ? "memory.max" : "memory.limit_in_bytes", buf, sizeof(buf)) <= 0)
		return hs_error_create(HS_ERR_TARGET, "cannot read the limit of cgroup %s", w->dir);
	if (!strncmp(buf, "max", 3)) {
		*ret = 0;
		return NULL;
	}
	char *end;
	uint64_t v = strtoull(buf, &end, 10);
	if (end == buf)
		return hs_error_create(HS_ERR_TARGET, "cgroup %s: the limit reads '%.20s', not a number", w->dir, buf);
	*ret = v >= V1_UNLIMITED ? 0 : v;
	return NULL;
}

static bool has_file(const char *dir, const char *name)
{
	int fd = open_in(dir, name);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

static struct hs_error *open_cgroup_dir(struct hs_watch *w, const char *dir)
{
	free(w->dir);
	if (!(w->dir = strdup(dir)))
		return &hs_error_nomem;
	if (has_file(dir, "memory.current"))
		w->version = 2;
	else if (has_file(dir, "memory.usage_in_bytes"))
		w->version = 1;
	else
		return hs_error_create(HS_ERR_USAGE,
				       "%s is not a cgroup with the memory controller (no memory.current, no memory.usage_in_bytes)",
				       dir);
	if (!has_file(dir, w->version == 2 ? "memory.max" : "memory.limit_in_bytes"))
		return hs_error_create(HS_ERR_USAGE, "cgroup %s has no %s", dir,
				       w->version == 2 ? "memory.max" : "memory.limit_in_bytes");
	return NULL;
}

/* Where the cgroup hierarchy that holds pid's memory controller is mounted,
 * from our mountinfo: v2 ("cgroup2") or v1 ("cgroup" with "memory"). */
static bool cgroup_mount(int version, char *root, char *mnt, size_t cap)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char r[1024], m[1024], type[64], opts[1024];
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %1023s %1023s", r, m) != 2 ||
		    sscanf(dash + 3, "%63s %*s %1023s", type, opts) != 2)
			continue;
		bool v1mem = !strcmp(type, "cgroup") && (strstr(opts, ",memory") || !strncmp(opts, "memory", 6));
		if ((version == 2 && !strcmp(type, "cgroup2")) || (version == 1 && v1mem)) {
			snprintf(root, cap, "%s", r);
			snprintf(mnt, cap, "%s", m);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* pid's memory cgroup directory, from /proc/PID/cgroup. */
static struct hs_error *find_cgroup(int pid, char *dir, size_t cap, int *version_ret)
{
	char path[64], line[4096];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? hs_error_create(HS_ERR_TARGET, "no process with pid %d", pid)
				       : hs_error_errno(errno, "cannot read %s", path);
	char v1[PATH_MAX] = "", v2[PATH_MAX] = "";
	bool have_v1 = false, have_v2 = false;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c1 = *c2 = 0;
		const char *ctrl = c1 + 1, *cg = c2 + 1;
		if (!strcmp(line, "0") && !*ctrl) {
			snprintf(v2, sizeof(v2), "%s", cg);
			have_v2 = true;
		}
		for (char *save = NULL, *t = strtok_r((char *)ctrl, ",", &save); t; t = strtok_r(NULL, ",", &save))
			if (!strcmp(t, "memory")) {
				snprintf(v1, sizeof(v1), "%s", cg);
				have_v1 = true;
			}
	}
	fclose(f);
	char root[1024], mnt[1024];
	int version = have_v1 ? 1 : 2;
	const char *cg = have_v1 ? v1 : v2;
	if ((!have_v1 && !have_v2) || !cgroup_mount(version, root, mnt, sizeof(root)))
		return hs_error_create(HS_ERR_USAGE, "cannot find the memory cgroup of pid %d (%s); give --cgroup DIR",
				       pid, have_v1 || have_v2 ? "its hierarchy is not mounted here" : "none in /proc/PID/cgroup");
	// A cgroup namespace or a bind mount shows a subtree: strip the mount's root.
	size_t rl = strlen(root);
	if (strcmp(root, "/") && !strncmp(cg, root, rl) && (cg[rl] == '/' || !cg[rl]))
		cg += rl;
	if (snprintf(dir, cap, "%s%s", mnt, strcmp(cg, "/") ? cg : "") >= (int)cap)
		return hs_error_create(HS_ERR_USAGE, "the cgroup path of pid %d is too long; give --cgroup DIR", pid);
	*version_ret = version;
	return NULL;
}

struct hs_error *hs_watch_open_cgroup(int pid, const char *dir, double pct, uint64_t step,
				      struct hs_watch **ret)
{
	if (!(pct > 0 && pct <= 100))
		return hs_error_create(HS_ERR_USAGE, "--at takes a percentage from 0 to 100, not %g", pct);
	struct hs_watch *w = watch_alloc(pid, step);
	if (!w)
		return &hs_error_nomem;
	w->pct = pct;
	struct hs_error *err = NULL;
	char found[PATH_MAX];
	bool automatic = !strcmp(dir, "auto");
	if (automatic) {
		int version;
		if ((err = find_cgroup(pid, found, sizeof(found), &version)))
			goto fail;
		dir = found;
	}
	if ((err = open_cgroup_dir(w, dir)))
		goto fail;
	uint64_t limit;
	if ((err = read_limit(w, &limit)))
		goto fail;
	// auto: the limit may be set higher up (a pod's limit on its parent).
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", w->dir);
	for (char *slash; !limit && automatic && (slash = strrchr(parent, '/')) && slash != parent;) {
		*slash = 0;
		struct hs_watch *up = watch_alloc(pid, step);
		if (!up) {
			err = &hs_error_nomem;
			goto fail;
		}
		up->pct = pct;
		struct hs_error *e = open_cgroup_dir(up, parent);
		if (!e)
			e = read_limit(up, &limit);
		if (e) {
			hs_error_destroy(e);
			hs_watch_destroy(up);
			limit = 0;
			break;
		}
		if (limit) {
			hs_watch_destroy(w);
			w = up;
		} else {
			hs_watch_destroy(up);
		}
	}
	if (!limit) {
		err = hs_error_create(HS_ERR_USAGE,
				      "cgroup %s has no memory limit (%s): --at needs one; use --rss-above SIZE",
				      w->dir, w->version == 2 ? "memory.max is max" : "memory.limit_in_bytes says unlimited");
		goto fail;
	}
	*ret = w;
	return NULL;
fail:
	hs_watch_destroy(w);
	return err;
}

const char *hs_watch_cgroup_dir(const struct hs_watch *w, int *version_ret)
{
	*version_ret = w->version;
	return w->dir;
}

static uint64_t event_count(const char *text, const char *key)
{
	size_t k = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, k) && p[k] == ' ')
			return strtoull(p + k + 1, NULL, 10);
	return 0;
}

struct hs_error *hs_watch_poll(struct hs_watch *w, struct hs_watch_sample *ret)
{
	struct hs_watch_sample s = { 0 };
	char buf[512];
	ssize_t got = w->version == 0 ? pread_text(w->usage_fd, buf, sizeof(buf))
				       : read_cg(w, w->version == 2 ? "memory.current" : "memory.usage_in_bytes", buf, sizeof(buf));
	if (got <= 0) {
		if (w->version == 0)
			return hs_error_create(HS_ERR_TARGET, "pid %d exited", w->pid);
		return hs_error_create(HS_ERR_TARGET, "cannot read the memory usage of cgroup %s (removed?)", w->dir);
	}
	if (w->version == 0) {
		unsigned long long size, resident;
		if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
			return hs_error_create(HS_ERR_TARGET, "pid %d: /proc/PID/statm reads '%.40s'", w->pid, buf);
		s.usage = resident * (uint64_t)w->page_size;
		s.threshold = w->fixed_threshold;
	} else {
		s.usage = strtoull(buf, NULL, 10);
		HS_CHECK(read_limit(w, &s.limit));
		if (!s.limit)
			return hs_error_create(HS_ERR_TARGET, "cgroup %s no longer has a memory limit", w->dir);
		s.threshold = (uint64_t)((double)s.limit * w->pct / 100.0);
		if (w->version == 2 && read_cg(w, "memory.events", buf, sizeof(buf)) > 0) {
			s.max_events = event_count(buf, "max");
			s.oom_kills = event_count(buf, "oom_kill");
		}
	}
	uint64_t step = w->step_opt ? w->step_opt : s.threshold / 10;
	if (step == 0)
		step = 1;
	// Fell back (from at least T - STEP since the last core, to below it):
	// armed at the threshold again.
	bool high = s.usage + step >= s.threshold;
	if (w->level && high)
		w->seen_high = true;
	if (w->level && !high && w->seen_high)
		w->level = 0;
	s.level = w->level ? w->level : s.threshold;
	if (s.usage >= s.level) {
		s.fire = true;
		s.why = "threshold";
	} else if (w->have_events && s.max_events > w->last_max_events && !w->level) {
		// The limit was hit between two polls (the first poll only counts).
		s.fire = true;
		s.why = "memory.max hit";
	}
	w->have_events = true;
	w->last_max_events = s.max_events;
	*ret = s;
	return NULL;
}

void hs_watch_fired(struct hs_watch *w, const struct hs_watch_sample *s)
{
	uint64_t step = w->step_opt ? w->step_opt : s->threshold / 10;
	if (step == 0)
		step = 1;
	w->level = (s->usage > s->threshold ? s->usage : s->threshold) + step;
	w->seen_high = s->usage + step >= s->threshold;
}

struct hs_error *hs_parse_seconds(const char *text, const char *what, double *ret)
{
	char *end;
	double v = strtod(text, &end);
	double mult = 1;
	if (!strcmp(end, "ms"))
		mult = 0.001;
	else if (!strcmp(end, "s") || !*end)
		mult = 1;
	else if (!strcmp(end, "m"))
		mult = 60;
	else
		end = NULL;
	if (!end || end == text || !(v > 0) || v * mult > 86400)
		return hs_error_create(HS_ERR_USAGE, "%s takes a duration like 500ms, 2s or 1m, not '%s'", what, text);
	*ret = v * mult;
	return NULL;
}
