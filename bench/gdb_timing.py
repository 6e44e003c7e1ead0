#!/usr/bin/env python3
"""gdb_timing.py - the timing bounds that used to be assertions in make check
(issue 13: speed is measured by make bench only).  Run by bench/gdb_timing.sh.

  hs leaks in GDB within 2x the CLI's leaks + 0.5 s (500 k allocations)
  the pager's q gives the prompt back within 5 s
  heapscope --pid leaks: a SIGINT sent at some point of the run lands
      mid-analysis (exit 130) in at least one of 18 runs

Prints one line a check, "ok" or "FAILED"; the exit status is 1 if any failed.
"""
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import test_gdb  # noqa: E402
import test_live  # noqa: E402
from gdbutil import CLI, cli  # noqa: E402

failed = []


def report(name, ok, detail):
    print("%-44s %s  %s" % (name, "ok    " if ok else "FAILED", detail), flush=True)
    if not ok:
        failed.append(name)


def leaks_ratio(core, exe):
    def time_cli():
        t = time.monotonic()
        r = cli("--jobs", "2", core, "leaks")
        if r.returncode:
            raise SystemExit("heapscope leaks failed: %s" % r.stderr)
        return time.monotonic() - t
    best_cli = min(time_cli() for _ in range(3))
    script = os.path.join(test_gdb.tmpdir(), "time_hs.py")
    with open(script, "w") as f:
        f.write("import gdb, time\nts = []\n"
                "import heapscope.target\n"
                "for i in range(3):\n"
                "    heapscope.target.CACHE.drop()\n"   # a new session each time
                "    t = time.monotonic(); gdb.execute('hs leaks', to_string=True); ts.append(time.monotonic() - t)\n"
                "t = time.monotonic(); gdb.execute('hs leaks', to_string=True); cached = time.monotonic() - t\n"
                "gdb.write('@@TIME %f %f\\n' % (min(ts), cached))\n")
    s = test_gdb.run_gdb(before=["set heapscope jobs 2", "source " + script], core=core, exe=exe)
    m = re.search(r"@@TIME (\S+) (\S+)", s.output)
    if not m:
        report("hs leaks within 2x CLI + 0.5 s", False, "no timing: %s" % s.output[-500:])
        return
    hs, cached = float(m.group(1)), float(m.group(2))
    report("hs leaks within 2x CLI + 0.5 s", hs < best_cli * 2 + 0.5,
           "hs %.3f s (cached %.3f s), CLI %.3f s, ratio %.2f" % (hs, cached, best_cli, hs / best_cli))


def pager_quit(core, exe):
    t = test_gdb.Terminal("test_pager_quit_and_ctrl_c")
    try:
        t.spawn(core, exe, 20)
        t.send(b"hs chunks\n")
        t.expect(rb"--Type <RET> for more, q to quit")
        t0 = time.monotonic()
        t.send(b"q\n")
        t.expect(rb"\(gdb\) ", timeout=60)
        waited = time.monotonic() - t0
        report("pager q: prompt back within 5 s", waited < 5, "%.2f s" % waited)
    finally:
        t.doCleanups()


def sigint_midrun():
    proc = test_live.Process(count=500000, size=480)
    try:
        t = time.monotonic()
        r = cli("--pid", str(proc.pid), "leaks")
        full = time.monotonic() - t
        statuses = []
        for delay in (0.0, 0.01, 0.05, full * 0.3, full * 0.6, full * 0.9):
            for sigs in ((signal.SIGINT,), (signal.SIGINT, signal.SIGINT), (signal.SIGTERM,)):
                p = subprocess.Popen([CLI, "--pid", str(proc.pid), "leaks"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
                time.sleep(delay)
                for sig in sigs:
                    p.send_signal(sig)
                    time.sleep(0.005)
                p.wait(timeout=120)
                statuses.append(p.returncode)
        report("--pid: SIGINT lands mid-analysis (1 of 18)", r.returncode == 0 and 130 in statuses,
               "full run %.2f s; statuses %s" % (full, statuses))
    finally:
        proc.kill()


def main():
    core, exe = test_gdb.own_core(500000, 512)
    leaks_ratio(core, exe)
    pager_quit(core, exe)
    sigint_midrun()
    test_gdb.tmpdir.remove()
    test_live.tmpdir.remove()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
