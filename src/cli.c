/* cli.c - the heapscope command line.  Parses the global options, opens the
 * target (a core, or a live process it seizes and always releases), runs one
 * command through the library, and maps errors to exit statuses:
 * 0 done, 1 done and --fail-on-leaks found leaks, 2 usage, 3 the target cannot
 * be read, 4 the heap could not be reconstructed, 130 interrupted.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>
#include "heapscope.h"
#include "cli.h"
#include "commands.h"
#include "symbols.h"

static const char usage_text[] =
"Usage: heapscope [OPTIONS] CORE [COMMAND [ARGS...]]\n"
"       heapscope [OPTIONS] --pid PID [COMMAND [ARGS...]]\n"
"\n"
"Post-mortem heap analysis of an ELF core file or a live process: where the\n"
"memory went, what leaked, and who holds it.  COMMAND defaults to summary.\n"
"\n"
"Options:\n"
"  --pid PID             analyse a live process (it is stopped while heapscope\n"
"                        reads it, and always resumed)\n"
"  --exe PATH            the executable, when the path in the core is wrong\n"
"  --sysroot DIR         look for the core's files under DIR\n"
"  --debug-dir DIR       also look for separate debug info in DIR (repeatable)\n"
"  --no-debuginfo        ignore all separate debug info (use built-in layouts)\n"
"  --exact-pointers      only pointers to the start of an allocation count\n"
"  --allocator NAME      glibc, jemalloc or auto (default)\n"
"  --main-arena ADDR     glibc: the address of main_arena\n"
"  --mp ADDR             glibc: the address of mp_\n"
"  --glibc-version X.Y   glibc: the version, when it cannot be read from libc\n"
"  --override NAME=ADDR  any address or value a walker needs (see docs/cli.md)\n"
"  --json                one JSON document on stdout (see docs/json.md)\n"
"  --jobs N              threads for scans (default 2)\n"
"  --quiet               no diagnostics on stderr\n"
"  --help, --version\n"
"\n"
"Commands:\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
	for (size_t i = 0; i < hs_ncommands; i++)
		fprintf(f, "  %-40s %s\n", hs_commands[i].usage, hs_commands[i].summary);
	hs_cli_live_usage(f);
	fputs("\nExit status: 0 done, 1 leaks found with --fail-on-leaks, 2 usage error,\n"
	      "3 the target cannot be read, 4 the heap could not be reconstructed.\n"
	      "Documentation: docs/cli.md, man heapscope.\n", f);
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

static void release_threads(void)
{
	for (size_t i = 0; i < nseized; i++)
		ptrace(PTRACE_DETACH, seized[i], NULL, (void *)(long)seized_sig[i]);
	nseized = 0;
}

static void on_signal(int sig)
{
	// First signal: ask the analysis to stop, then release normally.  Second:
	// release right here (ptrace is a plain system call) and leave.
	if (signals_seen++ == 0 && sig != SIGTERM) {
		hs_interrupt();
		return;
	}
	release_threads();
	if (hs_cli_unlink_on_signal)
		unlink(hs_cli_unlink_on_signal);
	_exit(130);
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
}

static int exit_status(const struct hs_error *err, bool opening)
{
	switch (hs_error_code(err)) {
	case HS_OK: return 0;
	case HS_ERR_USAGE: return 2;
	case HS_ERR_NOT_FOUND: return opening ? 3 : 2;
	case HS_ERR_HEAP: return 4;
	case HS_ERR_INTERRUPTED: return 130;
	case HS_ERR_NOT_DUMPED: case HS_ERR_UNMAPPED: return opening ? 3 : 2;
	default: return opening ? 3 : 4;
	}
}

static int fail(struct hs_error *err, bool opening)
{
	int status = exit_status(err, opening);
	fprintf(stderr, "heapscope: %s\n", hs_error_message(err));
	hs_error_destroy(err);
	return status;
}

static int usage_error(const char *fmt, const char *arg)
{
	fputs("heapscope: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (see heapscope --help)\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct hs_options opts = { 0 };
	const char *debug_dirs[65] = { 0 };
	size_t ndebug = 0;
	char overrides[2048] = "";
	bool json = false;
	const char *pid_arg = NULL;
	int i = 1;

	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
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
		if (!strcmp(a, "--json")) { json = true; continue; }
		if (!strcmp(a, "--no-debuginfo")) { opts.no_debuginfo = 1; continue; }
		if (!strcmp(a, "--exact-pointers")) { opts.exact_pointers = 1; continue; }
		if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) continue;
		// Every other option takes a value.
		if (!val)
			return usage_error("option %s needs a value", a);
		i++;
		if (!strcmp(a, "--exe")) opts.exe = val;
		else if (!strcmp(a, "--sysroot")) opts.sysroot = val;
		else if (!strcmp(a, "--debug-dir")) {
			if (ndebug == 64)
				return usage_error("too many --debug-dir options (%s)", "64 at most");
			debug_dirs[ndebug++] = val;
		} else if (!strcmp(a, "--allocator")) opts.allocator = val;
		else if (!strcmp(a, "--pid")) pid_arg = val;
		else if (!strcmp(a, "--jobs")) {
			char *end;
			long j = strtol(val, &end, 10);
			if (*end || j < 1 || j > 256)
				return usage_error("--jobs takes a number from 1 to 256, not '%s'", val);
			opts.jobs = (int)j;
		} else if (!strcmp(a, "--main-arena") || !strcmp(a, "--mp") || !strcmp(a, "--override") ||
			   !strcmp(a, "--glibc-version")) {
			char item[256];
			if (!strcmp(a, "--override")) {
				snprintf(item, sizeof(item), "%s", val);
			} else if (!strcmp(a, "--glibc-version")) {
				unsigned major, minor;
				if (sscanf(val, "%u.%u", &major, &minor) != 2)
					return usage_error("--glibc-version takes X.Y, like 2.36, not '%s'", val);
				snprintf(item, sizeof(item), "glibc_version=%u", major * 100 + minor);
			} else {
				snprintf(item, sizeof(item), "%s=%s", !strcmp(a, "--mp") ? "mp_" : "main_arena", val);
			}
			if (strlen(overrides) + strlen(item) + 2 > sizeof(overrides))
				return usage_error("too many overrides (%s)", a);
			if (overrides[0])
				strcat(overrides, ",");
			strcat(overrides, item);
		} else {
			return usage_error("unknown option '%s'", a);
		}
	}
	opts.debug_dirs = debug_dirs;
	opts.overrides = overrides[0] ? overrides : NULL;

	// capture and watch read the process their own way (cli_live.c).
	if (i < argc && hs_cli_live_command(argv[i]))
		return hs_cli_live(pid_arg, argc - i, argv + i, json);
	if (!pid_arg && i + 1 < argc && hs_cli_live_command(argv[i + 1]))
		return hs_cli_live(NULL, argc - i - 1, argv + i + 1, json);

	const char *core = NULL;
	if (!pid_arg) {
		if (i >= argc) {
			usage(stderr);
			return 2;
		}
		core = argv[i++];
	}
	signal(SIGPIPE, SIG_IGN);

	struct hs_session *s = NULL;
	struct hs_error *err;
	if (pid_arg) {
		char *end;
		long pid = strtol(pid_arg, &end, 10);
		if (*end || pid <= 0 || pid > 0x7fffffff)
			return usage_error("--pid takes a process id, not '%s'", pid_arg);
		if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
			fprintf(stderr, "heapscope: no process with pid %ld\n", pid);
			return 3;
		}
		struct sigaction sa = { .sa_handler = on_signal };
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		int e = seize_process((int)pid);
		if (e) {
			release_threads();
			fprintf(stderr, "heapscope: cannot stop pid %ld to read it (%s)%s\n", pid, strerror(e),
				e == EPERM ? ": run as its user or root, or check kernel.yama.ptrace_scope; "
					     "a process already under a debugger can be analysed from that debugger (hs in GDB)" : "");
			return 3;
		}
		err = hs_session_open_pid((int)pid, &opts, &s);
	} else {
		err = hs_session_open_core(core, &opts, &s);
	}
	if (err) {
		release_threads();
		return fail(err, true);
	}
	// A wrong --exe is fatal: its symbols would describe another program.
	if (opts.exe) {
		err = hs_session_need_symbols(s);
		hs_error_destroy(err);
		if (s->symbols && hs_symbols_exe_mismatch(s->symbols)) {
			fprintf(stderr, "heapscope: %s is not the program that wrote %s (build-ids differ); give the exact executable with --exe\n",
				opts.exe, core ? core : pid_arg);
			hs_session_destroy(s);
			release_threads();
			return 3;
		}
	}

	int status = 0;
	err = hs_session_run(s, argc - i, (const char *const *)argv + i,
			     json ? HS_FORMAT_JSON : HS_FORMAT_TEXT, write_stdout, NULL, &status);
	fflush(stdout);
	// A truncated core gives what is there, and says the target was not whole.
	uint64_t missing = s->target->missing_bytes;
	if (!err && missing) {
		fprintf(stderr, "heapscope: %s is truncated: %llu bytes of dumped memory are missing; "
			"the results above cover only the part that is there\n", core, (unsigned long long)missing);
		status = 3;
	}
	hs_session_destroy(s);
	release_threads();
	free(seized);
	free(seized_sig);
	if (err)
		return fail(err, false);
	return status;
}
