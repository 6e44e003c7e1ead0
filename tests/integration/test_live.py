"""Live processes (issue 5): `hs` under `gdb -p PID` and under `gdb PROGRAM`,
results fresh after the process ran, registers from GDB, the same documents as
the CLI on a gcore of the same stop; and `heapscope --pid PID`, including
SIGINT in mid-run.  After every run the process is running (not stopped, not
traced) and exits 0 when told to.

    BUILD=build python3 tests/integration/test_live.py [-v] [NAME_PATTERN...]

Python 3 stdlib only; needs gdb, gcc, $BUILD/heapscope, $BUILD/libheapscope.so
and the right to ptrace our own children.  The last line is "N passed, N failed".
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gdbutil  # noqa: E402
from gdbutil import CLI, cli, cli_json, need_build  # noqa: E402

# The fixture: COUNT list nodes of about SIZE bytes, then a loop that every
# tick frees and reallocates one of 64 kept blocks and every 5th tick leaks 24
# bytes; tick(i) is where breakpoints go, `ticks` the last tick.  A second
# thread allocates and frees.  It prints "ready" once the list is built and
# exits 0 on SIGUSR1.
LOOP_C = r"""
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
struct node { struct node *next; long n; };
static volatile sig_atomic_t done;
static void on_usr1(int s) { (void)s; done = 1; }
struct node *list;
void *keep[64];
volatile long ticks = -1;
__attribute__((noinline)) void tick(long n) { ticks = n; __asm__ volatile(""); }
static void *worker(void *a)
{
	(void)a;
	while (!done) {
		void *p = malloc(64);
		usleep(1000);
		free(p);
	}
	return NULL;
}
int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 0, size = argc > 2 ? atol(argv[2]) : 16;
	signal(SIGUSR1, on_usr1);
	for (long i = 0; i < count; i++) {
		struct node *x = malloc(size + (i % 4) * 16);
		x->next = list;
		x->n = i;
		list = x;
	}
	pthread_t t;
	pthread_create(&t, NULL, worker, NULL);
	printf("ready\n");
	fflush(stdout);
	for (long i = 0; !done; i++) {
		free(keep[i % 64]);
		keep[i % 64] = malloc(32 + (i % 8) * 16);
		if (i % 5 == 0) {
			void *volatile leak = malloc(24);
			leak = 0;
			(void)leak;
		}
		tick(i);
		usleep(2000);
	}
	pthread_join(t, NULL);
	return 0;
}
"""

tmpdir = gdbutil.Scratch("hs-test-live-")


def fixture_exe():
    exe = os.path.join(tmpdir(), "loop")
    return gdbutil.compile_once(exe, exe + ".c", LOOP_C, "-pthread")


class Process:
    """A running fixture, told to exit at the end."""

    def __init__(self, count=2000, size=16):
        need_build()
        self.exe = fixture_exe()
        self.p = subprocess.Popen([self.exe, str(count), str(size)], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        line = self.p.stdout.readline()
        if line.strip() != b"ready":
            self.p.kill()
            raise AssertionError("the fixture did not start: %r" % line)
        time.sleep(0.1)
        self.pid = self.p.pid

    def state(self):
        """The one-letter state in /proc/PID/stat, and the TracerPid."""
        with open("/proc/%d/stat" % self.pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open("/proc/%d/status" % self.pid) as f:
            tracer = int(re.search(r"^TracerPid:\s*(\d+)", f.read(), re.M).group(1))
        return state, tracer

    def assert_running(self, testcase, what):
        # A detach takes effect at once; give the scheduler a moment anyway.
        for _ in range(50):
            state, tracer = self.state()
            if state in "RSD" and tracer == 0:
                break
            time.sleep(0.02)
        testcase.assertIn(state, ("R", "S", "D"), "%s: the process is in state %s" % (what, state))
        testcase.assertEqual(tracer, 0, "%s: the process is still traced by %d" % (what, tracer))
        # And it makes progress: ticks advance (its CPU time or its state may not).
        testcase.assertIsNone(self.p.poll(), "%s: the process died" % what)

    def finish(self, testcase):
        os.kill(self.pid, signal.SIGUSR1)
        try:
            status = self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            testcase.fail("the process did not exit on SIGUSR1 (state %s)" % (self.state(),))
        testcase.assertEqual(status, 0, "the process exited with %s" % status)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.p.stdout.close()


# gdbutil's helper, and _hs_break_after (a breakpoint in tick() n ticks on),
# _hs_threads (each thread's pc and sp as GDB has them).
HELPER = gdbutil.HELPER + r'''
def _hs_break_after(n):
    gdb.execute("break tick if n > %d" % (int(gdb.parse_and_eval("ticks")) + n))
def _hs_threads(tag):
    inf = gdb.selected_inferior()
    sel = gdb.selected_thread()
    out = {}
    for th in inf.threads():
        th.switch()
        f = gdb.newest_frame()
        out[th.ptid[1]] = [int(f.read_register("pc")) & 0xffffffffffffffff,
                           int(f.read_register("sp")) & 0xffffffffffffffff]
    sel.switch()
    gdb.write("\n@@THREADS %s %s\n" % (tag, ";".join("%d:%d:%d" % (k, v[0], v[1]) for k, v in out.items())))
'''


class Session(gdbutil.Session):
    """gdbutil's session, and the @@THREADS lines: {tag: {tid: (pc, sp)}}."""

    def __init__(self, output, status):
        super().__init__(output, status)
        self.threads = {}
        for tag, text in re.findall(r"\n@@THREADS (\S+) (\S*)\n", output):
            self.threads[tag] = {int(a): (int(b), int(c)) for a, b, c in
                                 (x.split(":") for x in text.split(";") if x)}


def run_gdb(steps, pid=None, exe=None, timeout=300):
    """steps: ("case", tag, cmd) | ("value", tag, expr) | ("threads", tag) | ("gdb", cmd)."""
    args = gdbutil.batch_args(tmpdir(), HELPER)
    if pid:
        args += ["-p", str(pid)]
    elif exe:
        args += [exe]
    for step in steps:
        if step[0] == "case":
            args += ["-ex", "python _hs_case(%r, %r)" % (step[1], step[2])]
        elif step[0] == "value":
            args += ["-ex", "python _hs_value(%r, %r)" % (step[1], step[2])]
        elif step[0] == "threads":
            args += ["-ex", "python _hs_threads(%r)" % step[1]]
        else:
            args += ["-ex", step[1]]
    return gdbutil.run_batch(args, timeout, Session)


def leaked_range(ticks):
    """Leaked blocks after tick(ticks): one every 5th tick from 0; the newest
    may still be held in a register or a stack slot, the next may be allocated."""
    n = ticks // 5 + 1
    return n - 1, n + 1


class GdbAttach(unittest.TestCase):
    """gdb -p PID: hs, continue to a later tick, hs again (fresh), detach."""

    def test_attach_continue_detach(self):
        proc = Process()
        self.addCleanup(proc.kill)
        s = run_gdb([
            ("value", "t1", "ticks"),
            ("case", "leaks1", "hs --json leaks"),
            ("case", "sum1", "hs --json summary"),
            ("case", "again1", "hs --json leaks"),
            ("gdb", "python _hs_break_after(100)"),
            ("gdb", "continue"),
            ("value", "t2", "n"),
            ("case", "leaks2", "hs --json leaks"),
            ("case", "sum2", "hs --json summary"),
            ("case", "text", "hs leaks"),
            ("gdb", "delete"),
            ("gdb", "detach"),
        ], pid=proc.pid)
        s.check_alive(self)
        t1, t2 = s.values["t1"], s.values["t2"]
        self.assertGreater(t2, t1 + 100)   # stopped in tick(n): n's blocks are allocated
        l1, l2 = s.json("leaks1")["leaked"]["count"], s.json("leaks2")["leaked"]["count"]
        lo, hi = leaked_range(t1)
        self.assertTrue(lo <= l1 <= hi, "at tick %d: %d leaked, expected %d..%d" % (t1, l1, lo, hi))
        lo, hi = leaked_range(t2)
        self.assertTrue(lo <= l2 <= hi, "at tick %d: %d leaked, expected %d..%d (stale cache?)" % (t2, l2, lo, hi))
        self.assertEqual(s.json("again1"), s.json("leaks1"))
        self.assertGreater(s.json("sum2")["in_use"]["count"], s.json("sum1")["in_use"]["count"])
        self.assertIn("leaked allocations", s.ok("text"))
        self.assertIn("[Inferior 1 (process %d) detached]" % proc.pid, s.output)
        proc.assert_running(self, "after gdb detached")
        proc.finish(self)

    def test_registers_and_selected_thread(self):
        proc = Process()
        self.addCleanup(proc.kill)
        s = run_gdb([
            ("gdb", "thread 2"),
            ("gdb", "frame 1"),
            ("case", "info", "hs --json info"),
            ("case", "which", "thread"),
            ("case", "frame", "frame"),
            ("threads", "gdb"),
            ("gdb", "detach"),
        ], pid=proc.pid)
        s.check_alive(self)
        info = s.json("info")
        self.assertEqual(info["target"]["kind"], "live")
        self.assertEqual(info["process"]["pid"], proc.pid)
        want = s.threads["gdb"]
        got = {t["tid"]: (t["pc"], t["sp"]) for t in info["threads"]}
        self.assertEqual(got, want, "thread pc/sp: the library's vs GDB's")
        self.assertIn("Current thread is 2", s.ok("which"))
        self.assertRegex(s.ok("frame"), r"^#1 ")
        proc.assert_running(self, "after gdb detached")
        proc.finish(self)


# Every CLI command but info (it names the target), with arguments.
TWIN_COMMANDS = (
    "summary", "arenas", "chunks", "chunks --free", "bins", "show ADDR_SHOW", "leaks",
    "leaks --list", "histogram", "histogram --leaked --by size", "chain ADDR_CHAIN",
    "refs ADDR_REFS", "top",
)
EXPRS = {"ADDR_SHOW": "list", "ADDR_CHAIN": "(char *)list->next->next + 8", "ADDR_REFS": "list->next"}


class LiveTwins(unittest.TestCase):
    """At one stop: hs on the live process equals the CLI on a gcore of that stop."""

    def test_live_equals_core(self):
        proc = Process(count=5000)
        self.addCleanup(proc.kill)
        core = os.path.join(tmpdir(), "live.core")
        steps = [("gdb", "python _hs_break_after(20)"), ("gdb", "continue"),
                 ("gdb", "gcore " + core)]
        steps += [("value", k, v) for k, v in EXPRS.items()]
        for i, cmd in enumerate(TWIN_COMMANDS):
            for k, v in EXPRS.items():
                cmd = cmd.replace(k, v)
            steps.append(("case", "c%d" % i, "hs --json " + cmd))
        steps += [("gdb", "delete"), ("gdb", "detach")]
        s = run_gdb(steps, pid=proc.pid)
        s.check_alive(self)
        proc.assert_running(self, "after gdb detached")
        for i, cmd in enumerate(TWIN_COMMANDS):
            for k in EXPRS:
                cmd = cmd.replace(k, "0x%x" % s.values[k])
            with self.subTest(cmd=cmd):
                diff, got, want = gdbutil.doc_diff(s.json("c%d" % i), cli_json(core, *cmd.split()))
                self.assertFalse(diff, "hs %s (live) and the CLI on its gcore differ in %s:\n%s\n%s" % (
                    cmd, diff, got, want))
        proc.finish(self)


class GdbRun(unittest.TestCase):
    """gdb PROGRAM, run to a breakpoint: hs; continue; hs; call malloc; hs."""

    def test_run_under_gdb(self):
        need_build()
        exe = fixture_exe()
        s = run_gdb([
            ("gdb", "break tick"),
            ("gdb", "run 3000"),
            ("case", "sum1", "hs --json summary"),
            ("value", "t1", "n"),
            ("gdb", "continue 50"),
            ("value", "t2", "n"),
            ("case", "sum2", "hs --json summary"),
            ("case", "leaks2", "hs --json leaks"),
            ("gdb", "call (void *)malloc(100000)"),
            ("case", "sum3", "hs --json summary"),
            ("gdb", "set var *(long *)&ticks = 7"),
            ("case", "cont", "hs --json chain list"),
            ("gdb", "kill"),
            ("case", "gone", "hs summary"),
        ], exe=exe)
        s.check_alive(self)
        self.assertEqual(s.values["t2"] - s.values["t1"], 50)
        c1, c2, c3 = (s.json(t)["in_use"]["count"] for t in ("sum1", "sum2", "sum3"))
        self.assertGreaterEqual(c1, 3000)
        self.assertGreaterEqual(c2, c1 + 9, "10 more leaks after 50 ticks (a stale cache?)")
        lo, hi = leaked_range(s.values["t2"])
        self.assertTrue(lo <= s.json("leaks2")["leaked"]["count"] <= hi)
        # A function called in the inferior drops the cache: the new block is there.
        self.assertEqual(c3, c2 + 1)
        self.assertEqual(s.json("sum3")["in_use"]["bytes"] - s.json("sum2")["in_use"]["bytes"],
                         100008)
        self.assertTrue(s.json("cont")["anchored"])
        self.assertIn("no core file and no live process", s.results["gone"][2] or "")


class CliPid(unittest.TestCase):
    """heapscope --pid PID: analyses and always lets the process go."""

    def test_pid_commands(self):
        proc = Process()
        self.addCleanup(proc.kill)
        for cmd in (["summary"], ["--json", "leaks"], ["info"], ["chunks", "--limit", "5"],
                    ["top", "--limit", "3"], ["bins"], ["histogram"], ["arenas"]):
            r = cli("--pid", str(proc.pid), *cmd)
            self.assertEqual(r.returncode, 0, "heapscope --pid %d %s: %s" % (proc.pid, " ".join(cmd), r.stderr))
            proc.assert_running(self, "after heapscope --pid %s" % " ".join(cmd))
        doc = json.loads(cli("--json", "--pid", str(proc.pid), "leaks").stdout)
        self.assertGreater(doc["leaked"]["count"], 0)
        proc.finish(self)

    def test_pid_sigint_interrupts_the_analysis(self):
        # The analysis holds at its start until interrupted (HEAPSCOPE_TEST_HOLD,
        # src/testhook.h) and creates the file when it does: SIGINT lands
        # mid-analysis every time, and the CLI must say so, exit 130 and let go.
        proc = Process()
        self.addCleanup(proc.kill)
        for sigs in ((signal.SIGINT,), (signal.SIGINT, signal.SIGINT)):
            ready = os.path.join(tmpdir(), "hold.ready")
            if os.path.exists(ready):
                os.unlink(ready)
            env = dict(os.environ, HEAPSCOPE_TEST_HOLD="analysis:" + ready)
            p = subprocess.Popen([CLI, "--pid", str(proc.pid), "leaks"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env)
            self.addCleanup(p.kill)
            wait_for_file(self, ready, p)
            for sig in sigs:
                p.send_signal(sig)
            try:
                out, err = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                self.fail("heapscope --pid did not stop after %s" % (sigs,))
            self.assertEqual(p.returncode, 130, err)
            if len(sigs) == 1:
                self.assertEqual(err.decode().strip(), "heapscope: stopped by SIGINT before the command finished")
                self.assertNotIn(b"leaked", out)
            proc.assert_running(self, "after %s mid-analysis" % "+".join(signal.Signals(x).name for x in sigs))
        proc.finish(self)

    def test_core_sigint_interrupts_the_analysis(self):
        # The same on a core (no process to release).
        proc = Process()
        self.addCleanup(proc.kill)
        core = os.path.join(tmpdir(), "loop.core")
        r = subprocess.run(["gcore", "-o", core, str(proc.pid)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
        core = "%s.%d" % (core, proc.pid)
        self.assertTrue(os.path.exists(core), "gcore wrote no core (exit %d)" % r.returncode)
        proc.finish(self)
        ready = os.path.join(tmpdir(), "hold-core.ready")
        if os.path.exists(ready):
            os.unlink(ready)
        env = dict(os.environ, HEAPSCOPE_TEST_HOLD="analysis:" + ready)
        p = subprocess.Popen([CLI, core, "leaks"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.addCleanup(p.kill)
        wait_for_file(self, ready, p)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
        self.assertEqual((p.returncode, err.decode().strip()), (130, "heapscope: stopped by SIGINT before the command finished"))
        # Without the hold the same command completes.
        self.assertEqual(cli(core, "leaks").returncode, 0)

    def test_pid_signals_at_any_time_release(self):
        # A heap large enough that leaks takes a while: signals land in the seize,
        # the walk, the graph or the output (where, make bench counts); the process
        # must be let go each time.
        proc = Process(count=200000, size=480)
        self.addCleanup(proc.kill)
        for delay in (0.0, 0.01, 0.05, 0.2):
            for sigs in ((signal.SIGINT,), (signal.SIGINT, signal.SIGINT), (signal.SIGTERM,)):
                p = subprocess.Popen([CLI, "--pid", str(proc.pid), "leaks"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
                time.sleep(delay)
                for sig in sigs:
                    p.send_signal(sig)
                    time.sleep(0.005)
                try:
                    _, err = p.communicate(timeout=120)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    self.fail("heapscope --pid did not stop after %s" % (sigs,))
                # 128 + the signal (130 SIGINT, 143 SIGTERM; docs/cli.md), with a
                # message; -N when it lands before heapscope set its handlers.
                self.assertIn(p.returncode, (0, 130, 143, -signal.SIGINT, -signal.SIGTERM),
                              "exit %s: %s" % (p.returncode, err[-500:]))
                if p.returncode in (130, 143):
                    self.assertIn(b"heapscope: stopped by SIG", err)
                proc.assert_running(self, "after %s at %.2f s into heapscope --pid" % (
                    "+".join(signal.Signals(x).name for x in sigs), delay))
        proc.finish(self)


def wait_for_file(testcase, path, p, timeout=120):
    """Until path exists (a hang guard, not a timing); p must not exit first."""
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if p.poll() is not None:
            testcase.fail("heapscope exited (%s) before the analysis started: %s"
                          % (p.returncode, p.stderr.read().decode(errors="replace")[-500:]))
        if time.monotonic() > end:
            testcase.fail("%s did not appear in %d s" % (path, timeout))
        time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(gdbutil.main(sys.modules[__name__], tmpdir))
