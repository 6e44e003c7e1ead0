/* live.c - the commands on a live process that write cores: capture (one
 * core now) and watch (a core whenever memory crosses a threshold).  The
 * library writes the core (capture.c), decides when (watch.c) and reports
 * (text or JSON through the caller's hs_write_fn); the front end stops and
 * resumes the process (struct hs_live_ops: it owns ptrace) and maps errors to
 * exit statuses.  Declared in heapscope.h (hs_live_run).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "capture.h"
#include "clock.h"
#include "commands.h"
#include "output.h"
#include "watch.h"

/* /proc/PID/status's line "Key:\tvalue" as a number; -1 when absent. */
static long status_field(int pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	long v = -1;
	size_t klen = strlen(key);
	while (v < 0 && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':')
			v = strtol(line + klen + 1, NULL, 10);
	fclose(f);
	return v;
}

// /proc/PID/comm without its newline ("?" when unreadable).
static void pid_comm(int pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	FILE *f = fopen(path, "re");
	if (!f || !fgets(buf, (int)len, f))
		snprintf(buf, len, "?");
	if (f)
		fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	for (char *c = buf; *c; c++)    // the process names itself (prctl): no escapes to the terminal
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

// /proc/PID/stat's state letter and flags (its 3rd and 9th fields); false
// when unreadable.
static bool pid_stat(int pid, char *state, unsigned long *flags)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')');     // comm may hold spaces and ')'
	return p && sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", state, flags) == 2;
}

int hs_pid_refusal(int pid, int e, char *buf, size_t len)
{
	char comm[64], tcomm[64];
	pid_comm(pid, comm, sizeof(comm));
	int n = e ? snprintf(buf, len, "cannot stop pid %d (%s) to read it (%s)", pid, comm, strerror(e))
		  : snprintf(buf, len, "cannot read pid %d (%s)", pid, comm);
	size_t used = n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
	char state = 0;
	unsigned long flags = 0;
	if (pid_stat(pid, &state, &flags) && (flags & 0x00200000)) {   // PF_KTHREAD
		snprintf(buf + used, len - used, ": it is a kernel thread, with no user memory to read");
		return 1;
	}
	if (state == 'Z' || state == 'X') {
		snprintf(buf + used, len - used, ": it has exited (a zombie its parent has not reaped), "
			 "with no memory left to read");
		return 1;
	}
	if (e != EPERM)
		return 0;
	long tracer = status_field(pid, "TracerPid");
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	int scope = -1;
	if (f) {
		if (fscanf(f, "%d", &scope) != 1)
			scope = -1;
		fclose(f);
	}
	long uid = status_field(pid, "Uid");
	if (tracer > 0) {
		pid_comm((int)tracer, tcomm, sizeof(tcomm));
		snprintf(buf + used, len - used, ": pid %ld (%s) is tracing it already; analyse it from that debugger "
			 "(hs in GDB), or once it lets go", tracer, tcomm);
	} else if (scope == 3) {
		snprintf(buf + used, len - used, ": kernel.yama.ptrace_scope is 3, which lets no process be traced "
			 "until the machine restarts; take a core instead (docs/cores.md)");
	} else if (geteuid() != 0 && uid >= 0 && (uid_t)uid != geteuid()) {
		snprintf(buf + used, len - used, ": it runs as uid %ld; run heapscope as that user, or as root "
			 "(CAP_SYS_PTRACE)", uid);
	} else if (scope >= 1 && geteuid() != 0) {
		snprintf(buf + used, len - used, ": kernel.yama.ptrace_scope is %d; run heapscope as root "
			 "(or with CAP_SYS_PTRACE)", scope);
	} else {
		snprintf(buf + used, len - used, ": the kernel refused it (no tracer; a security module such as "
			 "SELinux or AppArmor, a container without CAP_SYS_PTRACE, or a process of another "
			 "user namespace)");
	}
	return 0;
}

struct capture_result {
	struct hs_capture_stats stats;
	double stopped, elapsed;
};

/* One core of pid into path: open the output first, stop the process, dump,
 * release it, then name the file. */
static struct hs_error *capture_one(const struct hs_live_ops *ops, int pid, const char *path,
				    const struct hs_capture_options *o, struct capture_result *ret)
{
	struct hs_capture *c;
	double t0 = hs_now();
	HS_CHECK(hs_capture_open(path, o, &c));
	if (ops->temp_file)
		ops->temp_file(ops->ctx, hs_capture_temp_path(c));
	double t1 = hs_now();
	struct hs_error *err = NULL;
	const int *tids;
	size_t n;
	int e = ops->stop(ops->ctx, pid, &tids, &n);
	if (e) {
		ops->resume(ops->ctx);
		if (e == ESRCH || e == ENOENT)
			err = hs_error_create(HS_ERR_TARGET, "no process with pid %d", pid);
		else {
			char why[512];
			hs_pid_refusal(pid, e, why, sizeof(why));
			err = hs_error_create(HS_ERR_PERMISSION, "%s", why);
		}
	} else {
		err = hs_capture_dump(c, pid, tids, n);
		ops->resume(ops->ctx);
	}
	double t2 = hs_now();
	if (!err)
		err = hs_capture_commit(c);
	if (!err) {
		ret->stats = *hs_capture_stats(c);
		ret->stopped = t2 - t1;
		ret->elapsed = hs_now() - t0;
	}
	if (ops->temp_file)
		ops->temp_file(ops->ctx, NULL);
	hs_capture_destroy(c);
	return err;
}

static void report_text(struct hs_out *out, int pid, const char *path, const struct capture_result *r)
{
	char a[16], b[16], d[16], f[16];
	const struct hs_capture_stats *s = &r->stats;
	hs_out_printf(out, "captured pid %d (%zu threads, %zu mappings) into %s\n", pid, s->nthreads, s->nmappings, path);
	hs_out_printf(out, "  memory in the core  %s (%s of it untouched pages, left as holes)\n",
		      hs_fmt_size(s->dumped_bytes, a, sizeof(a)), hs_fmt_size(s->hole_bytes, b, sizeof(b)));
	hs_out_printf(out, "  left out            %s (read-only file mappings, reservations)\n",
		      hs_fmt_size(s->omitted_bytes, d, sizeof(d)));
	hs_out_printf(out, "  file                %s (%s written; core %s)\n", hs_fmt_size(s->file_bytes, f, sizeof(f)),
		      hs_fmt_size(s->written_bytes, b, sizeof(b)), hs_fmt_size(s->core_bytes, a, sizeof(a)));
	hs_out_printf(out, "  process stopped     %.3f s (%.3f s in all)\n", r->stopped, r->elapsed);
	if (s->unreadable_pages)
		hs_out_printf(out, "  unreadable pages    %" PRIu64 " (written as zeros)\n", s->unreadable_pages);
}

static void report_json_fields(struct hs_out *out, int pid, const char *path, const struct hs_capture_options *o,
			       const struct capture_result *r)
{
	char filter[128];
	hs_capture_filter_name(o->filter ? o->filter : HS_CAP_DEFAULT, filter, sizeof(filter));
	const struct hs_capture_stats *s = &r->stats;
	hs_json_ku64(out, "pid", pid);
	hs_json_kstr(out, "file", path);
	hs_json_kstr(out, "compress", o->compress == HS_COMPRESS_ZSTD ? "zstd" : NULL);
	hs_json_kstr(out, "filter", filter);
	hs_json_kbool(out, "sync", o->sync);
	hs_json_ku64(out, "threads", s->nthreads);
	hs_json_ku64(out, "mappings", s->nmappings);
	hs_json_ku64(out, "core_bytes", s->core_bytes);
	hs_json_ku64(out, "file_bytes", s->file_bytes);
	hs_json_ku64(out, "written_bytes", s->written_bytes);
	hs_json_ku64(out, "dumped_bytes", s->dumped_bytes);
	hs_json_ku64(out, "hole_bytes", s->hole_bytes);
	hs_json_ku64(out, "omitted_bytes", s->omitted_bytes);
	hs_json_ku64(out, "unreadable_pages", s->unreadable_pages);
	hs_json_ku64(out, "stopped_us", (uint64_t)(r->stopped * 1e6));
	hs_json_ku64(out, "elapsed_us", (uint64_t)(r->elapsed * 1e6));
}

struct hs_capture_opts {
	const char *out, *compress, *filter;
	bool sync;
	struct hs_capture_options co;
};

/* The live commands' options (not in the command table: the CLI alone runs
 * them, and checks their values below); help: the CLI's text. */
static const struct hs_cmd_option capture_opts[] = {
	HS_PATH(capture, out, "-o", "FILE", NULL), HS_PATH(capture, out, "--output", "FILE", NULL),
	HS_TEXT(capture, compress, "--compress", "zstd|none", NULL), HS_TEXT(capture, filter, "--filter", "LIST", NULL),
	HS_FLAG(capture, sync, "--sync", NULL),
	{ { 0 } },
};

static struct hs_error *capture_options(struct hs_capture_opts *lo)
{
	if (lo->compress) {
		if (!strcmp(lo->compress, "zstd"))
			lo->co.compress = HS_COMPRESS_ZSTD;
		else if (strcmp(lo->compress, "none"))
			return hs_error_create(HS_ERR_USAGE, "--compress takes zstd or none, not '%s'", lo->compress);
	}
	if (lo->filter)
		HS_CHECK(hs_capture_parse_filter(lo->filter, &lo->co.filter));
	lo->co.sync = lo->sync;
	return NULL;
}

static struct hs_error *cmd_capture(int pid, int argc, const char *const *argv, struct hs_out *out, bool json,
				     const struct hs_live_ops *ops)
{
	struct hs_capture_opts lo = { 0 };
	struct hs_cmd c = { .argc = argc, .argv = argv };
	HS_CHECK(hs_cmd_parse_with(&c, capture_opts, &lo, NULL, 0, NULL));
	if (!lo.out)
		return hs_error_create(HS_ERR_USAGE, "capture needs -o FILE");
	HS_CHECK(capture_options(&lo));
	struct capture_result r;
	HS_CHECK(capture_one(ops, pid, lo.out, &lo.co, &r));
	if (!json) {
		report_text(out, pid, lo.out, &r);
		return NULL;
	}
	hs_json_begin_object(out);
	hs_json_ku64(out, "schema", 1);
	hs_json_kstr(out, "version", hs_version());
	hs_json_kstr(out, "command", "capture");
	report_json_fields(out, pid, lo.out, &lo.co, &r);
	hs_json_key(out, "diagnostics");     /* none: failures are errors here */
	hs_json_begin_array(out);
	hs_json_end_array(out);
	hs_json_end_object(out);
	hs_json_done(out);
	return NULL;
}

/* watch */

static bool sleep_interruptible(double seconds)
{
	struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		if (hs_interrupted())
			return false;
	return !hs_interrupted();
}

static int core_name(char *buf, size_t cap, const char *dir, int pid, bool zstd)
{
	char when[32];
	time_t t = time(NULL);
	strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", gmtime(&t));
	int n = snprintf(buf, cap, "%s/core.%d.%s%s", dir, pid, when, zstd ? ".zst" : "");
	struct stat st;
	for (int k = 1; k < 1000 && stat(buf, &st) == 0; k++)
		n = snprintf(buf, cap, "%s/core.%d.%s.%d%s", dir, pid, when, k, zstd ? ".zst" : "");
	return n;
}

struct hs_watch_opts {
	const char *rss, *cgroup, *at, *interval, *step, *max_cores;
	bool once;
	struct hs_capture_opts lo;
};

static const struct hs_cmd_option watch_opts[] = {
	HS_PATH(watch, lo.out, "-o", "DIR", NULL), HS_PATH(watch, lo.out, "--output", "DIR", NULL),
	HS_TEXT(watch, rss, "--rss-above", "SIZE", NULL), HS_PATH(watch, cgroup, "--cgroup", "DIR", NULL),
	HS_TEXT(watch, at, "--at", "PCT", NULL), HS_TEXT(watch, interval, "--interval", "T", NULL),
	HS_TEXT(watch, step, "--step", "SIZE", NULL), HS_TEXT(watch, max_cores, "--max-cores", "N", NULL),
	HS_FLAG(watch, once, "--once", NULL),
	HS_TEXT(watch, lo.compress, "--compress", "zstd|none", NULL), HS_TEXT(watch, lo.filter, "--filter", "LIST", NULL),
	HS_FLAG(watch, lo.sync, "--sync", NULL),
	{ { 0 } },
};

static struct hs_error *watch_open(int pid, struct hs_watch_opts *a, struct hs_watch **w)
{
	uint64_t step = 0;
	if (a->step)
		HS_CHECK(hs_parse_u64(a->step, "--step", &step));
	if (!a->rss == !a->cgroup)
		return hs_error_create(HS_ERR_USAGE, "watch needs one of --rss-above SIZE or --cgroup DIR --at PCT");
	if (a->rss) {
		uint64_t size;
		HS_CHECK(hs_parse_u64(a->rss, "--rss-above", &size));
		return hs_watch_open_rss(pid, size, step, w);
	}
	if (!a->at)
		return hs_error_create(HS_ERR_USAGE, "--cgroup needs --at PCT (a percentage of the cgroup's limit)");
	char *end;
	double pct = strtod(a->at, &end);
	if (end == a->at || (*end && strcmp(end, "%")))
		return hs_error_create(HS_ERR_USAGE, "--at takes a percentage like 80, not '%s'", a->at);
	return hs_watch_open_cgroup(pid, a->cgroup, pct, step, w);
}

static struct hs_error *check_dir(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return hs_error_errno(errno, "cannot write cores into %s", dir);
	if (!S_ISDIR(st.st_mode))
		return hs_error_create(HS_ERR_USAGE, "%s is not a directory; watch -o takes the directory for the cores", dir);
	if (access(dir, W_OK | X_OK) != 0)
		return hs_error_errno(errno, "cannot write cores into %s", dir);
	return NULL;
}

static struct hs_error *cmd_watch(int pid, int argc, const char *const *argv, struct hs_out *out, bool json,
				   const struct hs_live_ops *ops, int *status_ret)
{
	struct hs_watch_opts a = { 0 };
	struct hs_cmd c = { .argc = argc, .argv = argv };
	struct hs_error *err = hs_cmd_parse_with(&c, watch_opts, &a, NULL, 0, NULL);
	double interval = 1;
	uint64_t max_cores = 3;
	if (!err && !a.lo.out)
		err = hs_error_create(HS_ERR_USAGE, "watch needs -o DIR (where the cores go)");
	if (!err && a.interval)
		err = hs_parse_seconds(a.interval, "--interval", &interval);
	if (!err && a.max_cores && !(err = hs_parse_u64(a.max_cores, "--max-cores", &max_cores)) && !max_cores)
		err = hs_error_create(HS_ERR_USAGE, "--max-cores takes a number above 0");
	if (!err)
		err = capture_options(&a.lo);
	if (err)
		return err;
	if (a.once)
		max_cores = 1;
	struct hs_watch *w = NULL;
	if ((err = check_dir(a.lo.out)) || (err = watch_open(pid, &a, &w)))
		return err;

	int version;
	const char *cg = hs_watch_cgroup_dir(w, &version);
	if (!json) {
		if (cg)
			hs_out_printf(out, "watching pid %d: cgroup v%d %s at %s%% of its limit, every %g s\n", pid, version, cg,
				      a.at, interval);
		else
			hs_out_printf(out, "watching pid %d: RSS at or above %s, every %g s\n", pid, a.rss, interval);
		hs_out_flush(out);
	}
	if (json) {
		hs_json_begin_object(out);
		hs_json_ku64(out, "schema", 1);
		hs_json_kstr(out, "version", hs_version());
		hs_json_kstr(out, "command", "watch");
		hs_json_ku64(out, "pid", pid);
		hs_json_kstr(out, "cgroup", cg);
		hs_json_key(out, "captures");
		hs_json_begin_array(out);
	}
	uint64_t taken = 0;
	struct hs_error *failed = NULL;
	*status_ret = 0;
	const char *ended = "interrupted";
	for (;;) {
		struct hs_watch_sample s;
		if ((err = hs_watch_poll(w, &s))) {
			// The process (or its cgroup) is gone: the watch is over.
			if (!json && ops->message) {
				char msg[600];
				snprintf(msg, sizeof(msg), "%s; %" PRIu64 " core%s taken", hs_error_message(err), taken,
					 taken == 1 ? "" : "s");
				ops->message(ops->ctx, msg);
			}
			hs_error_destroy(err);
			ended = "gone";
			break;
		}
		if (s.fire) {
			char path[4096], u[16], l[16], f[16];
			core_name(path, sizeof(path), a.lo.out, pid, a.lo.co.compress == HS_COMPRESS_ZSTD);
			struct capture_result r;
			if ((err = capture_one(ops, pid, path, &a.lo.co, &r))) {
				failed = err;
				ended = "error";
				break;
			}
			taken++;
			hs_watch_fired(w, &s);
			if (json) {
				hs_json_begin_object(out);
				hs_json_kstr(out, "reason", s.why);
				hs_json_ku64(out, "usage", s.usage);
				hs_json_ku64(out, "limit", s.limit);
				hs_json_ku64(out, "threshold", s.threshold);
				report_json_fields(out, pid, path, &a.lo.co, &r);
				hs_json_end_object(out);
				hs_out_flush(out);
			} else {
				hs_out_printf(out, "%s: %s (usage %s%s%s): captured %s (%s, process stopped %.3f s)\n",
					      s.why, cg ? "cgroup" : "RSS", hs_fmt_size(s.usage, u, sizeof(u)),
					      s.limit ? " of " : "", s.limit ? hs_fmt_size(s.limit, l, sizeof(l)) : "", path,
					      hs_fmt_size(r.stats.file_bytes, f, sizeof(f)), r.stopped);
				hs_out_flush(out);
			}
			if (taken >= max_cores) {
				ended = a.once ? "once" : "max-cores";
				break;
			}
		}
		if (!sleep_interruptible(interval)) {
			*status_ret = 130;
			break;
		}
	}
	if (json) {
		hs_json_end_array(out);
		hs_json_kstr(out, "ended", ended);
		hs_json_key(out, "diagnostics");     /* none: failures are errors here */
		hs_json_begin_array(out);
		hs_json_end_array(out);
		hs_json_end_object(out);
		hs_json_done(out);
	} else if (!strcmp(ended, "max-cores")) {
		hs_out_printf(out, "%" PRIu64 " cores taken (--max-cores): done\n", taken);
	}
	hs_watch_destroy(w);
	return failed;
}

struct hs_error *hs_live_run(int pid, int argc, const char *const *argv, enum hs_format format, hs_write_fn write,
			     void *ctx, const struct hs_live_ops *ops, int *status_ret)
{
	*status_ret = 0;
	if (argc < 1 || !hs_live_command(argv[0]))
		return hs_error_create(HS_ERR_USAGE, "not a live command: %s", argc < 1 ? "(none)" : argv[0]);
	if (!ops || !ops->stop || !ops->resume)
		return hs_error_create(HS_ERR_USAGE, "%s needs the front end to stop the process (hs_live_ops)", argv[0]);
	struct hs_out out;
	hs_out_init(&out, write, ctx);
	out.indent = 2;
	bool json = format == HS_FORMAT_JSON;
	struct hs_error *err = !strcmp(argv[0], "capture") ? cmd_capture(pid, argc, argv, &out, json, ops)
							   : cmd_watch(pid, argc, argv, &out, json, ops, status_ret);
	hs_out_flush(&out);
	return err;
}

int hs_live_command(const char *name)
{
	return name && (!strcmp(name, "capture") || !strcmp(name, "watch"));
}
