/* cli.c - the heapscope command line.  Parses the global options, opens the
 * target (a core, or a live process it seizes and always releases), runs one
 * command through the library, and maps errors to exit statuses:
 * 0 done, 1 done and --fail-on-leaks found leaks, 2 usage, 3 the target cannot
 * be read, 4 the heap could not be reconstructed, 128+N stopped by signal N
 * (130 SIGINT, 143 SIGTERM, 129 SIGHUP).  With --json every failure still
 * prints one JSON document on stdout (hs_write_json_error).
 */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "heapscope.h"
#include "cli.h"

static const char usage_head[] =
"Usage: heapscope [OPTIONS] CORE [COMMAND [ARGS...]]\n"
"       heapscope [OPTIONS] --pid PID [COMMAND [ARGS...]]\n"
"\n"
"Post-mortem heap analysis of an ELF core file or a live process: where the\n"
"memory went, what leaked, and who holds it.  COMMAND defaults to summary.\n"
"\n"
"Options:\n";

/* "  --name META   help", continuation lines of help indented the same. */
static void usage_item(FILE *f, const char *left, const char *help)
{
	fprintf(f, "  %-21s ", left);
	for (const char *p = help; *p; p++) {
		fputc(*p, f);
		if (*p == '\n')
			fprintf(f, "  %-21s ", "");
	}
	fputc('\n', f);
}

static void usage(FILE *f)
{
	fputs(usage_head, f);
	size_t n;
	const struct hs_option_info *opts = hs_global_option_table(&n);
	for (size_t i = 0; i < n; i++) {
		char left[64];
		snprintf(left, sizeof(left), "%s%s%s", opts[i].name, opts[i].metavar ? " " : "",
			 opts[i].metavar ? opts[i].metavar : "");
		usage_item(f, left, opts[i].help);
	}
	fputs("  --help, --version\n", f);
	fputs("\nCommands:\n", f);
	const struct hs_command_info *cmds = hs_command_table(&n);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %-40s %s\n", cmds[i].usage, cmds[i].summary);
	hs_cli_live_usage(f);
	fputs("\nExit status: 0 done, 1 leaks found with --fail-on-leaks, 2 usage error,\n"
	      "3 the target cannot be read, 4 the heap could not be reconstructed,\n"
	      "128+N stopped by signal N (130 SIGINT, 143 SIGTERM).  With --json a failure\n"
	      "also prints one JSON error document on stdout.\n"
	      "Documentation: docs/cli.md, man heapscope.\n", f);
}

static int usage_error(const char *fmt, const char *arg);

/* heapscope help [CMD], heapscope CORE CMD --help: the library's text, the
 * one GDB's `help hs CMD` shows too. */
static int help(const char *name)
{
	if (!name) {
		usage(stdout);
		return 0;
	}
	const char *text = hs_command_help(name);
	if (!text) {
		const char *near = hs_suggest(name, NULL);
		char msg[256];
		snprintf(msg, sizeof(msg), "unknown command '%.100s'%s%s%s", name, near ? " (did you mean " : "",
			 near ? near : "", near ? "?)" : "");
		return usage_error("%s", msg);
	}
	fputs(text, stdout);
	fputs("\nGlobal options (--json, --exe, ...) go before CORE: see heapscope --help.\n", stdout);
	return 0;
}

/* --verbose: the wall seconds of each stage that ran, on stderr. */
static void print_timings(struct hs_session *s)
{
	const struct hs_stage_timing *t;
	size_t n;
	int jobs;
	hs_session_timings(s, &t, &n, &jobs);
	double total = 0;
	for (size_t i = 0; i < n; i++) {
		fprintf(stderr, "heapscope: %-13s %8.3f s\n", t[i].stage, t[i].seconds);
		total += t[i].seconds;
	}
	fprintf(stderr, "heapscope: %-13s %8.3f s (jobs %d)\n", "stages", total, jobs);
}

static int write_stdout(void *ctx, const char *buf, size_t len)
{
	(void)ctx;
	return fwrite(buf, 1, len, stdout) == len ? 0 : -1;
}

/* Live processes: seize every thread, and release them on every way out. */

static int *seized;
static int *seized_sig;     /* a signal the thread was stopped delivering: given back on detach */
static volatile size_t nseized;
static volatile sig_atomic_t signals_seen;
static volatile sig_atomic_t first_signal;
static bool json;
static const char *command_name;   /* NULL until the command is known */

static void release_threads(void)
{
	for (size_t i = 0; i < nseized; i++)
		ptrace(PTRACE_DETACH, seized[i], NULL, (void *)(long)seized_sig[i]);
	nseized = 0;
}

static const char *signal_name(int sig)
{
	return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
}

// Async-signal-safe: write(2) and _exit only.
static void die_now(int sig)
{
	static const char a[] = "heapscope: stopped by ", b[] = " before the command finished\n";
	const char *name = signal_name(sig);
	release_threads();
	if (hs_cli_unlink_on_signal)
		unlink(hs_cli_unlink_on_signal);
	if (write(2, a, sizeof(a) - 1) < 0 || write(2, name, strlen(name)) < 0 || write(2, b, sizeof(b) - 1) < 0)
		_exit(128 + sig);
	_exit(128 + sig);
}

static void on_signal(int sig)
{
	// First signal: ask the analysis to stop, then release and leave
	// normally (exit 128 + the signal); SIGTERM and SIGHUP give it 2 s.
	// Second signal (or the 2 s are up): release right here (ptrace is a
	// plain system call) and leave.
	if (sig == SIGALRM)
		die_now(first_signal ? first_signal : SIGTERM);
	if (signals_seen++ == 0) {
		first_signal = sig;
		hs_interrupt();
		if (sig != SIGINT)
			alarm(2);
		return;
	}
	die_now(first_signal);
}

static bool already_seized(int tid)
{
	for (size_t i = 0; i < nseized; i++)
		if (seized[i] == tid)
			return true;
	return false;
}

static int seize_process(int pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	// Threads may be created while we stop the others: list until no new one.
	for (int round = 0; round < 100; round++) {
		DIR *dir = opendir(path);
		if (!dir)
			return errno;
		bool added = false;
		struct dirent *de;
		while ((de = readdir(dir))) {
			int tid = atoi(de->d_name);
			if (tid <= 0 || already_seized(tid))
				continue;
			int *grown = realloc(seized, (nseized + 1) * sizeof(int));
			if (grown)
				seized = grown;
			int *grown_sig = grown ? realloc(seized_sig, (nseized + 1) * sizeof(int)) : NULL;
			if (!grown_sig) {
				closedir(dir);
				return ENOMEM;
			}
			seized_sig = grown_sig;
			seized_sig[nseized] = 0;
			if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
				int e = errno;
				if (e == ESRCH)
					continue;   // the thread exited meanwhile
				closedir(dir);
				return e;
			}
			seized[nseized] = tid;
			nseized = nseized + 1;
			added = true;
			ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
			int status, r;
			while ((r = waitpid(tid, &status, __WALL)) < 0 && errno == EINTR)
				if (signals_seen)
					break;
			// Stopped delivering a signal (not by our interrupt): the signal
			// must not be lost when we let the thread go.
			if (r == tid && WIFSTOPPED(status) && (status >> 16) == 0)
				seized_sig[nseized - 1] = WSTOPSIG(status);
		}
		closedir(dir);
		if (!added)
			return 0;
	}
	return 0;
}

/* Progress on stderr: on a terminal one line redrawn in place (at most ten
 * times a second); otherwise (--progress) a line when a stage begins and one
 * when it ends. */
struct progress_state {
	bool tty, open;
	struct timespec begun, drawn;
};

static double seconds_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void draw_progress(void *ctx, const char *stage, uint64_t done, uint64_t total)
{
	struct progress_state *ps = ctx;
	bool begin = done == 0, end = total && done >= total;
	if (begin)
		clock_gettime(CLOCK_MONOTONIC, &ps->begun);
	if (!ps->tty) {
		if (begin)
			fprintf(stderr, "heapscope: %s...\n", stage);
		else if (end)
			fprintf(stderr, "heapscope: %s done (%.2f s)\n", stage, seconds_since(&ps->begun));
		return;
	}
	if (!begin && !end && seconds_since(&ps->drawn) < 0.1)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ps->drawn);
	if (end) {
		// Erased: the command's output must not start on this line.
		fputs("\r\033[K", stderr);
		ps->open = false;
		return;
	}
	if (total)
		fprintf(stderr, "\r\033[Kheapscope: %s %3.0f%%", stage, 100.0 * (double)done / (double)total);
	else
		fprintf(stderr, "\r\033[Kheapscope: %s...", stage);
	ps->open = true;
}

/* For cli_live.c (capture, watch): the same seizing, the same release. */
const char *volatile hs_cli_unlink_on_signal;

int hs_cli_seize(int pid)
{
	return seize_process(pid);
}

void hs_cli_release(void)
{
	release_threads();
}

const int *hs_cli_seized(size_t *n)
{
	*n = nseized;
	return seized;
}

void hs_cli_catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
}

// A failure: the message on stderr, and with --json one error document on
// stdout (the library wrote it already when the command itself failed).
static int fail_code(enum hs_error_code code, int status, const char *message, bool doc_written)
{
	if (code == HS_ERR_INTERRUPTED && first_signal)
		fprintf(stderr, "heapscope: stopped by %s before the command finished\n", signal_name(first_signal));
	else
		fprintf(stderr, "heapscope: %s\n", message);
	if (json && !doc_written) {
		hs_write_json_error(code, message, command_name, write_stdout, NULL);
		fflush(stdout);
	}
	return status;
}

static int fail(struct hs_error *err, bool opening)
{
	int status = hs_error_exit_status(err, opening);
	if (hs_error_code(err) == HS_ERR_INTERRUPTED && first_signal)
		status = 128 + first_signal;
	fail_code(hs_error_code(err), status, hs_error_message(err), !opening);
	hs_error_destroy(err);
	return status;
}

static int usage_error(const char *fmt, const char *arg)
{
	char msg[1024], full[1100];
	snprintf(msg, sizeof(msg), fmt, arg);
	snprintf(full, sizeof(full), "%s (see heapscope --help)", msg);
	return fail_code(HS_ERR_USAGE, 2, full, false);
}

// The global option named name ("-q" is --quiet), or NULL.
static const struct hs_option_info *global_option(const char *name)
{
	if (!strcmp(name, "-q"))
		name = "--quiet";
	size_t n;
	const struct hs_option_info *opts = hs_global_option_table(&n);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(opts[i].name, name))
			return &opts[i];
	return NULL;
}

/* Global options given between CORE and the command ("heapscope core --jobs 1
 * leaks") moved before CORE, where run() reads them: argv permuted in place.
 * What follows the command word is the command's own. */
static void options_before_core(int argc, char **argv)
{
	int i = 1;
	while (i < argc && argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], "--")) {
		const struct hs_option_info *o = global_option(argv[i]);
		if (!o)
			return;   // run() says what is wrong with it
		if (!strcmp(o->name, "--pid"))
			return;   // no core
		i += o->kind == HS_OPTION_FLAG ? 1 : 2;
	}
	if (i >= argc || argv[i][0] == '-')
		return;
	int core = i++;
	while (i < argc && argv[i][0] == '-' && argv[i][1] && strcmp(argv[i], "--")) {
		// (An unknown one moves too: run() says what is wrong with it
		// as with any option; one without its value stays, run() says so.)
		const struct hs_option_info *o = global_option(argv[i]);
		if (o && !strcmp(o->name, "--pid"))
			return;
		int n = o && o->kind != HS_OPTION_FLAG ? 2 : 1;
		if (i + n > argc)
			return;
		// Rotate argv[core .. i + n) so that the option comes first.
		char *moved[2] = { argv[i], n == 2 ? argv[i + 1] : NULL };
		memmove(&argv[core + n], &argv[core], (size_t)(i - core) * sizeof(*argv));
		for (int k = 0; k < n; k++)
			argv[core + k] = moved[k];
		core += n;
		i += n;
	}
}

static int run(int argc, char **argv, struct hs_optset *set)
{
	bool quiet = false, progress = false, verbose = false;
	const char *pid_arg = NULL;
	int i = 1;

	// --json anywhere among the options: even a usage error gets a document.
	for (int k = 1; k < argc && argv[k][0] == '-'; k++)
		if (!strcmp(argv[k], "--json"))
			json = true;

	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--version")) {
			printf("heapscope %s\n", hs_version());
			return 0;
		}
		const struct hs_option_info *o = global_option(a);
		if (!o) {
			const char *near = hs_suggest(a, NULL);
			if (!near)
				return usage_error("unknown option '%s'", a);
			char msg[256];
			snprintf(msg, sizeof(msg), "unknown option '%.100s' (did you mean %s?)", a, near);
			return usage_error("%s", msg);
		}
		const char *val = NULL;
		if (o->kind != HS_OPTION_FLAG) {
			if (i + 1 >= argc)
				return usage_error("option %s needs a value", a);
			val = argv[++i];
		}
		// A path that is not there would be quietly useless: say so now.
		if (o->kind == HS_OPTION_PATH && !strcmp(o->scope, "session") && access(val, F_OK) != 0) {
			char msg[1024];
			snprintf(msg, sizeof(msg), "%s %.900s: %s", o->name, val, strerror(errno));
			return usage_error("%s", msg);
		}
		if (!strcmp(o->scope, "session")) {
			struct hs_error *err = hs_optset_set(set, o->name, val);
			if (err) {
				usage_error("%s", hs_error_message(err));
				hs_error_destroy(err);
				return 2;
			}
		} else if (!strcmp(o->name, "--json")) {
			json = true;
		} else if (!strcmp(o->name, "--pid")) {
			pid_arg = val;
		} else if (!strcmp(o->name, "--quiet")) {
			// Diagnostics go with the output already; --quiet only hides progress.
			quiet = true;
		} else if (!strcmp(o->name, "--progress")) {
			progress = true;
		} else if (!strcmp(o->name, "--verbose")) {
			verbose = true;
		}
	}
	const struct hs_options *opts = hs_optset_options(set);

	// heapscope help [CMD]: no core needed.
	if (i < argc && !strcmp(argv[i], "help"))
		return help(i + 1 < argc ? argv[i + 1] : NULL);
	// heapscope CORE CMD ... --help: the command's help, without reading CORE.
	int cmd_at = pid_arg ? i : i + 1;
	if (cmd_at < argc && !strcmp(argv[cmd_at], "help"))
		return help(cmd_at + 1 < argc ? argv[cmd_at + 1] : NULL);
	for (int k = cmd_at + 1; k < argc && strcmp(argv[k], "--"); k++)
		if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h"))
			return help(argv[cmd_at]);

	// capture and watch read the process their own way (cli_live.c).
	if (i < argc && hs_cli_live_command(argv[i]))
		return hs_cli_live(pid_arg, argc - i, argv + i, json);
	if (!pid_arg && i + 1 < argc && hs_cli_live_command(argv[i + 1]))
		return hs_cli_live(NULL, argc - i - 1, argv + i + 1, json);

	const char *core = NULL;
	if (!pid_arg) {
		if (i >= argc) {
			if (json)
				return usage_error("no core file given%s", "");
			usage(stderr);
			return 2;
		}
		core = argv[i++];
	}
	command_name = i < argc ? argv[i] : "summary";
	if (command_name[0] == '-' && global_option(command_name))
		return usage_error("option %s needs a value", command_name);
	signal(SIGPIPE, SIG_IGN);
	// The first SIGINT/SIGTERM/SIGHUP stops the analysis (exit 128+N); with
	// --pid, every way out lets the process go.
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);

	struct hs_session *s = NULL;
	struct hs_error *err;
	if (pid_arg) {
		char *end;
		long pid = strtol(pid_arg, &end, 10);
		if (*end || pid <= 0 || pid > 0x7fffffff)
			return usage_error("--pid takes a process id, not '%s'", pid_arg);
		char msg[512];
		if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
			snprintf(msg, sizeof(msg), "no process with pid %ld", pid);
			return fail_code(HS_ERR_TARGET, 3, msg, false);
		}
		if (hs_pid_refusal((int)pid, 0, msg, sizeof(msg)))
			return fail_code(HS_ERR_TARGET, 3, msg, false);   // a zombie, a kernel thread
		int e = seize_process((int)pid);
		if (e) {
			release_threads();
			if (e == ESRCH)
				snprintf(msg, sizeof(msg), "pid %ld exited while heapscope was stopping it", pid);
			else if (hs_pid_refusal((int)pid, e, msg, sizeof(msg)))
				e = ESRCH;   // it exited meanwhile (a zombie now): not a permission
			return fail_code(e == EPERM ? HS_ERR_PERMISSION : HS_ERR_TARGET, 3, msg, false);
		}
		err = hs_session_open_pid((int)pid, opts, &s);
	} else {
		err = hs_session_open_core(core, opts, &s);
	}
	if (!err) {
		// A wrong --exe is fatal: its symbols would describe another program.
		err = hs_session_check_exe(s);
		if (err) {
			hs_session_destroy(s);
			s = NULL;
		}
	}
	if (err) {
		release_threads();
		return fail(err, true);
	}

	struct progress_state ps = { .tty = isatty(STDERR_FILENO) };
	if (!quiet && (progress || ps.tty))
		hs_session_set_progress(s, draw_progress, &ps);
	int status = 0;
	err = hs_session_run(s, argc - i, (const char *const *)argv + i,
			     json ? HS_FORMAT_JSON : HS_FORMAT_TEXT, write_stdout, NULL, &status);
	fflush(stdout);
	if (ps.open)
		fputs("\r\033[K", stderr);
	if (verbose)
		print_timings(s);
	// A truncated core gives what is there, and says the target was not whole.
	const struct hs_target_facts *facts = NULL;
	struct hs_error *ferr = hs_session_target_facts(s, &facts);
	if (!err && !ferr && facts->truncated) {
		fprintf(stderr, "heapscope: %s is truncated: %llu bytes of dumped memory are missing; "
			"the results above cover only the part that is there\n", core,
			(unsigned long long)facts->missing_bytes);
		status = 3;
	}
	hs_error_destroy(ferr);
	// An allocator found but not walked beside others: what is shown is
	// true but not the whole heap (exit 4, as when it is the only one).
	const char *incomplete = err ? NULL : hs_session_heap_incomplete(s);
	if (incomplete) {
		fprintf(stderr, "heapscope: the heap is incomplete: %s\n", incomplete);
		if (status < 4)
			status = 4;
	}
	hs_session_destroy(s);
	release_threads();
	if (err)
		return fail(err, false);
	// Asked to stop, but the command finished (or its output was cut): the
	// signal still decides the status.
	if (first_signal) {
		fprintf(stderr, "heapscope: stopped by %s before the command finished\n", signal_name(first_signal));
		return 128 + first_signal;
	}
	return status;
}

int main(int argc, char **argv)
{
	// Every block from 4 MiB gets a mapping of its own, as the analysis's
	// arrays need to be on huge pages (vec.c): glibc otherwise raises its
	// threshold to the size of each such block freed, up to 32 MiB, and
	// serves later arrays from the heap in small pages.  (Only here: the
	// library inside gdb leaves gdb's allocator alone.)
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	struct hs_optset *set;
	struct hs_error *err = hs_optset_create(&set);
	if (err)
		return fail(err, true);
	options_before_core(argc, argv);
	int status = run(argc, argv, set);
	hs_optset_destroy(set);
	free(seized);
	free(seized_sig);
	return status;
}
