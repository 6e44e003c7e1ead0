/* cli_live.c - heapscope --pid PID capture / watch: the commands that write
 * cores of a live process.  The library runs them (hs_live_run: it writes the
 * cores, decides when, and reports); this file stops the process (cli.c's
 * seizing) only while the library reads it, always lets it go, and turns
 * errors into exit statuses.  Like cli.c it includes only the public header.
 *
 * Exit statuses: 0 done; 2 usage; 3 nothing was captured (no such process, not
 * allowed to trace it, it exited meanwhile, or the core could not be written);
 * 130 interrupted.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "heapscope.h"
#include "cli.h"

static const char capture_usage[] =
	"capture -o FILE [--compress zstd] [--filter LIST] [--sync]";
static const char watch_usage[] =
	"watch (--rss-above SIZE | --cgroup DIR|auto --at PCT) -o DIR [--once] [--interval T] [--max-cores N] [--step SIZE] [--compress zstd] [--filter LIST] [--sync]";

bool hs_cli_live_command(const char *name)
{
	return hs_live_command(name);
}

void hs_cli_live_usage(FILE *f)
{
	fputs("\nCommands on a live process (with --pid), which write cores:\n", f);
	fprintf(f, "  %-40s %s\n", "capture -o FILE [--compress zstd]",
		"write a core of the process (stopped only while read)");
	fprintf(f, "  %-40s %s\n", "        [--filter LIST] [--sync]",
		"LIST: anon,shared,data,files,file-shared,elf-headers,all, +X/-X;");
	fprintf(f, "  %-40s %s\n", "", "--sync: on disk (fdatasync) before it is named");
	fprintf(f, "  %-40s %s\n", "watch (--rss-above SIZE | --cgroup DIR|auto",
		"poll memory; at the threshold take a core into DIR");
	fprintf(f, "  %-40s %s\n", "       --at PCT) -o DIR [--once]",
		"(named core.PID.TIME); re-armed after a further step");
	fprintf(f, "  %-40s %s\n", "       [--interval T] [--max-cores N] [--step SIZE]",
		"or a fall back; never more than N cores (default 3)");
}

static int live_error(struct hs_error *err)
{
	int status;
	switch (hs_error_code(err)) {
	case HS_ERR_USAGE: status = 2; break;
	case HS_ERR_INTERRUPTED: status = 130; break;
	default: status = 3; break;
	}
	fprintf(stderr, "heapscope: %s\n", hs_error_message(err));
	hs_error_destroy(err);
	return status;
}

// Each write goes out at once: watch reports every core as it is taken.
static int write_stdout(void *ctx, const char *buf, size_t len)
{
	(void)ctx;
	return fwrite(buf, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : -1;
}

static int stop(void *ctx, int pid, const int **tids_ret, size_t *ntids_ret)
{
	(void)ctx;
	int e = hs_cli_seize(pid);
	if (!e)
		*tids_ret = hs_cli_seized(ntids_ret);
	return e;
}

static void resume(void *ctx)
{
	(void)ctx;
	hs_cli_release();
}

static void temp_file(void *ctx, const char *path)
{
	(void)ctx;
	hs_cli_unlink_on_signal = path;
}

static void message(void *ctx, const char *text)
{
	(void)ctx;
	fprintf(stderr, "heapscope: %s\n", text);
}

int hs_cli_live(const char *pid_arg, int argc, char **argv, bool json)
{
	if (!pid_arg) {
		fprintf(stderr, "heapscope: %s works on a live process: heapscope --pid PID %s (see heapscope --help)\n",
			argv[0], !strcmp(argv[0], "capture") ? capture_usage : watch_usage);
		return 2;
	}
	char *end;
	long pid = strtol(pid_arg, &end, 10);
	if (*end || pid <= 0 || pid > 0x7fffffff) {
		fprintf(stderr, "heapscope: --pid takes a process id, not '%s' (see heapscope --help)\n", pid_arg);
		return 2;
	}
	if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
		fprintf(stderr, "heapscope: no process with pid %ld\n", pid);
		return 3;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);   // RLIMIT_FSIZE: a clean EFBIG, not death
	hs_cli_catch_signals();
	hs_interrupt_clear();
	const struct hs_live_ops ops = { stop, resume, temp_file, message, NULL };
	int status;
	struct hs_error *err = hs_live_run((int)pid, argc, (const char *const *)argv,
					   json ? HS_FORMAT_JSON : HS_FORMAT_TEXT, write_stdout, NULL, &ops, &status);
	return err ? live_error(err) : status;
}
