/* cli.h - what cli.c (options, seizing, the analysis commands) and cli_live.c
 * (capture and watch: commands on a live process that write cores) share.
 * Both are the heapscope program, not the library.
 */
#ifndef HS_CLI_H
#define HS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Seize every thread of pid (PTRACE_SEIZE + PTRACE_INTERRUPT): 0 or an errno.
 * hs_cli_release() lets every seized thread go; safe in a signal handler. */
int hs_cli_seize(int pid);
void hs_cli_release(void);
const int *hs_cli_seized(size_t *n);
/* SIGINT: hs_interrupt(); a second one, or SIGTERM/SIGHUP: release, unlink
 * hs_cli_unlink_on_signal if set, exit 130. */
void hs_cli_catch_signals(void);
extern const char *volatile hs_cli_unlink_on_signal;

/* cli_live.c */
bool hs_cli_live_command(const char *name);
int hs_cli_live(const char *pid_arg, int argc, char **argv, bool json);
void hs_cli_live_usage(FILE *f);

#endif
