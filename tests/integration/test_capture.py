"""heapscope --pid PID capture / watch (issue 17), and .zst cores read transparently.

Live fixture processes (cores/*.c run with "wait": they write their truth, stop
where the fixture cores are dumped, say "ready" and wait) are captured, and:

* the glibc walk of the capture matches the program's truth exactly (the checks of
  test_glibc.py), jemalloc's likewise (test_jemalloc.py's), the leak fixtures'
  leaked set is the truth's;
* every analysis command gives the same JSON on the capture as on a gcore of the
  same stopped process, raw and --compress zstd;
* gdb and eu-readelf accept the capture;
* faults: a process that exits mid-capture, one we may not trace, a full disk
  (a 1 MiB tmpfs in a private mount namespace, and RLIMIT_FSIZE), an unwritable
  or missing directory, SIGINT/SIGTERM/SIGKILL of heapscope at many moments:
  a clear message, the exit status, no file under the final name (nor a
  temporary one), and the process running (never left stopped or traced);
* watch: a process whose RSS grows, and cgroup v1 and v2 files the test writes,
  each firing exactly once with --once; the re-arm step; memory.events "max".

    BUILD=build python3 tests/integration/test_capture.py [-v] [PATTERN...]
"""
import json
import os
import random
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gdbutil  # noqa: E402
import hslib  # noqa: E402
import test_glibc  # noqa: E402
import test_jemalloc  # noqa: E402

tmpdir = gdbutil.Scratch("hs-test-capture-")
# Every command compared between a capture and a gcore of the same stop.
TWIN_COMMANDS = (["summary", "--leaks"], ["arenas"], ["chunks"], ["bins"], ["leaks", "--list"],
                 ["histogram"], ["histogram", "--leaked", "--by", "size"], ["top"])


def fixture_exe(name):
    exe = os.path.join(hslib.CORES, name)
    if not os.path.exists(exe):
        raise AssertionError("%s is not built (make cores)" % exe)
    return exe


class Live:
    """A fixture program run with "wait"; its truth; killed at the end."""

    def __init__(self, name, env=None):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="live-%s-" % name, dir=tmpdir())
        self.truth_path = os.path.join(self.dir, "truth.json")
        self.p = subprocess.Popen([fixture_exe(name), self.truth_path, "wait"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, start_new_session=True,
                                  env=dict(os.environ, **(env or {})))
        line = self.p.stdout.readline()
        if line.strip() != b"ready":
            self.kill()
            raise AssertionError("%s did not get ready: %r" % (name, line))
        self.pid = self.p.pid
        time.sleep(0.2)   # the threads settle in their waits

    def truth(self):
        with open(self.truth_path) as f:
            return json.load(f)

    def state(self):
        with open("/proc/%d/stat" % self.pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open("/proc/%d/status" % self.pid) as f:
            tracer = [int(l.split()[1]) for l in f if l.startswith("TracerPid:")][0]
        return state, tracer

    def assert_running(self, tc, what):
        for _ in range(100):
            state, tracer = self.state()
            if state in "RSD" and tracer == 0:
                break
            time.sleep(0.02)
        tc.assertIsNone(self.p.poll(), "%s: the process died" % what)
        tc.assertIn(state, ("R", "S", "D"), "%s: the process is in state %s" % (what, state))
        tc.assertEqual(tracer, 0, "%s: the process is still traced by %d" % (what, tracer))

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.p.stdout.close()


def capture(pid, out, *extra, timeout=300):
    return hslib.run(["--pid", str(pid), "capture", "-o", out] + list(extra), timeout=timeout)


def gcore(pid, out):
    r = subprocess.run(["gcore", "-o", out, str(pid)], capture_output=True, text=True, timeout=300)
    path = "%s.%d" % (out, pid)
    if r.returncode != 0 or not os.path.exists(path):
        raise AssertionError("gcore failed: %s" % r.stderr[-2000:])
    return path


_captures = {}


def captured(name, compress=False, env=None):
    """(core path, truth) of one capture of fixture name, made once."""
    key = (name, compress)
    if key not in _captures:
        live = Live(name, env)
        try:
            core = os.path.join(live.dir, "capture.core" + (".zst" if compress else ""))
            r = capture(live.pid, core, *(["--compress", "zstd"] if compress else []))
            if r.status != 0:
                raise AssertionError(r.describe())
            _captures[key] = (core, live.truth())
        finally:
            live.kill()
    return _captures[key]


# --- the capture against the programs' truth --------------------------------------------------

class CapturedGlibc(test_glibc.GlibcWalkCase):
    compress = False

    def setUp(self):
        self.core, self.truth = captured(self.fixture, self.compress)


for _fixture in ("glibc_heap", "threads"):
    for _z in (False, True):
        _name = "CaptureWalk_%s%s" % (_fixture, "_zstd" if _z else "")
        globals()[_name] = type(_name, (CapturedGlibc, unittest.TestCase), {"fixture": _fixture, "compress": _z})
_name = "CaptureWalk_glibc_heap_NoDebuginfo"
globals()[_name] = type(_name, (CapturedGlibc, unittest.TestCase),
                        {"fixture": "glibc_heap", "opts": ("--no-debuginfo",)})


class CapturedJemalloc(test_jemalloc.JemallocCore):
    def setUp(self):
        self.core, self.truth = captured(self.name)


for _variant in ("jemalloc_static", "jemalloc_dynamic"):
    _name = "CaptureJemalloc_%s" % _variant
    globals()[_name] = type(_name, (CapturedJemalloc, unittest.TestCase), {"name": _variant, "kind": "gdb"})


class CaptureLeaks(unittest.TestCase):
    """The leak fixtures: the leaked set of the capture is the truth's."""

    def check(self, name):
        core, truth = captured(name)
        doc = hslib.run_json([core, "leaks", "--list", "--limit", "1000000"])
        got = {o["address"] for o in doc["objects"]}
        want = {o["address"] for o in truth["leaks"]["objects"] if o["leaked"]}
        self.assertEqual(sorted(got - want), [], "leaked in the capture, not in the truth")
        self.assertEqual(sorted(want - got), [], "leaked in the truth, not in the capture")
        heads = {o["address"] for o in doc["objects"] if o["unreferenced"]}
        self.assertEqual(heads, {o["address"] for o in truth["leaks"]["objects"] if o["unreferenced"]})

    def test_leaks(self):
        self.check("leaks")

    def test_leaks_cpp(self):
        self.check("leaks_cpp")


# --- the capture against gcore of the same stop ---------------------------------------------------

class Twins(unittest.TestCase):
    """SIGSTOP the process; gcore it, capture it (raw and zstd); SIGCONT.
    Every command gives the same JSON on all three (info names the target)."""

    def twins(self, name):
        live = Live(name)
        self.addCleanup(live.kill)
        d = live.dir
        os.kill(live.pid, signal.SIGSTOP)
        g = gcore(live.pid, os.path.join(d, "gcore"))
        r = capture(live.pid, os.path.join(d, "c.core"))
        self.assertEqual(r.status, 0, r.describe())
        z = capture(live.pid, os.path.join(d, "c.core.zst"), "--compress", "zstd", "--filter", "default")
        self.assertEqual(z.status, 0, z.describe())
        # A stopped process stays stopped: we let it go, not continue it.
        self.assertEqual(live.state(), ("T", 0))
        os.kill(live.pid, signal.SIGCONT)
        live.assert_running(self, "after SIGCONT")
        for cmd in TWIN_COMMANDS:
            want = hslib.run_json([g] + cmd)
            for core in (os.path.join(d, "c.core"), os.path.join(d, "c.core.zst")):
                with self.subTest(cmd=" ".join(cmd), core=os.path.basename(core)):
                    got = hslib.run_json([core] + cmd)
                    if cmd[0] == "top":
                        # The capture leaves read-only file mappings out: without --exe
                        # the modules are not known, so the owners have no symbols.
                        for doc in (got, want):
                            for x in doc.get("objects", []):
                                x.pop("owner", None)
                    diff, a, b = gdbutil.doc_diff(got, want)
                    self.assertFalse(diff, "%s on the capture and on gcore differ in %s:\n%s\n%s" % (
                        " ".join(cmd), diff, a, b))
        # Much smaller than gcore's: read-only file mappings and reservations are left out.
        self.assertLess(os.path.getsize(os.path.join(d, "c.core.zst")), os.path.getsize(g) / 4)
        return d

    def test_threads(self):
        self.twins("threads")

    def test_glibc_heap(self):
        self.twins("glibc_heap")

    def test_leaks_cpp(self):
        self.twins("leaks_cpp")

    def test_jemalloc_dynamic(self):
        self.twins("jemalloc_dynamic")


class CoreFormat(unittest.TestCase):
    """gdb and eu-readelf accept a capture; its notes are what heapscope needs."""

    @classmethod
    def setUpClass(cls):
        cls.core, cls.truth = captured("threads")

    def test_eu_readelf(self):
        r = subprocess.run(["eu-readelf", "-h", "-l", "-n", self.core], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        for word in ("CORE (Core file)", "PRPSINFO", "PRSTATUS", "FPREGSET", "AUXV", "FILE", "HEAPSCOPE"):
            self.assertIn(word, r.stdout)
        self.assertEqual(r.stdout.count("PRSTATUS"), len(self.truth["threads"]))

    def test_gdb(self):
        exe = fixture_exe("threads")
        r = subprocess.run(["gdb", "-batch", "-nx", "-iex", "set debuginfod enabled off", exe, self.core,
                            "-ex", "info threads", "-ex", "bt"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        tids = [t["tid"] for t in self.truth["threads"]]
        for tid in tids:
            self.assertIn("LWP %d" % tid, r.stdout)
        self.assertIn("in main", r.stdout)

    def test_info_threads_and_stacks(self):
        doc = hslib.run_json([self.core, "info"])
        self.assertEqual(sorted(t["tid"] for t in doc["threads"]), sorted(t["tid"] for t in self.truth["threads"]))
        libc = [m for m in doc["modules"] if "libc.so" in (m.get("name") or "")]
        self.assertTrue(libc and libc[0]["build_id"] == hslib.libc_build_id(), libc)

    def test_build_id_note(self):
        r = subprocess.run(["eu-readelf", "--notes", self.core], capture_output=True, text=True)
        self.assertIn("HEAPSCOPE", r.stdout)
        with open(self.core, "rb") as f:
            data = f.read(1 << 20)
        self.assertIn(hslib.libc_build_id().encode() + b" /", data, "the libc build-id line")
        self.assertIn(b"tool=heapscope ", data)
        self.assertIn(b"filter=anon,shared,data,elf-headers", data)

    def test_filter_all_keeps_files(self):
        live = Live("threads")
        self.addCleanup(live.kill)
        core = os.path.join(live.dir, "all.core")
        r = hslib.run(["--json", "--pid", str(live.pid), "capture", "-o", core, "--filter", "all"])
        self.assertEqual(r.status, 0, r.describe())
        doc = json.loads(r.stdout)
        self.assertEqual(doc["filter"], "anon,shared,data,files,file-shared,elf-headers")
        d = hslib.run_json(["--pid", str(live.pid), "capture", "-o", core + "2"], expect_status=0)
        self.assertLess(d["dumped_bytes"], doc["dumped_bytes"])
        self.assertEqual(hslib.run_json([core, "summary"]), hslib.run_json([core + "2", "summary"]))
        r = hslib.run(["--pid", str(live.pid), "capture", "-o", core + "3", "--filter", "bogus"])
        self.assertEqual(r.status, 2)
        self.assertIn("unknown kind 'bogus'", r.stderr)

    def test_sync_waits_for_the_disk_and_changes_nothing_else(self):
        live = Live("threads")
        self.addCleanup(live.kill)
        core = os.path.join(live.dir, "sync.core")
        d = hslib.run_json(["--pid", str(live.pid), "capture", "-o", core, "--sync"], expect_status=0)
        self.assertIs(d["sync"], True)
        plain = hslib.run_json(["--pid", str(live.pid), "capture", "-o", core + "2"], expect_status=0)
        self.assertIs(plain["sync"], False)
        self.assertEqual(d["core_bytes"], plain["core_bytes"])
        self.assertEqual(hslib.run_json([core, "summary"]), hslib.run_json([core + "2", "summary"]))


# --- compressed cores ---------------------------------------------------------------------------

class Zstd(unittest.TestCase):
    """.zst is found by its magic number; gdb's own cores compressed by zstd(1)."""

    def test_zstd_cli_compressed_gdb_core(self):
        if not shutil.which("zstd"):
            raise AssertionError("zstd is not installed (scripts/deps.sh check)")
        src = hslib.core("threads", "gdb")
        z = os.path.join(tmpdir(), "threads.gdb.core.zst")
        renamed = os.path.join(tmpdir(), "no-suffix")
        subprocess.run(["zstd", "-q", "-f", "-1", src, "-o", z], check=True)
        shutil.copy(z, renamed)
        for cmd in (["summary"], ["chunks"], ["leaks", "--list"]):
            want = hslib.run_json([src] + cmd)
            self.assertEqual(hslib.run_json([z] + cmd), want)
            self.assertEqual(hslib.run_json([renamed] + cmd), want)

    def test_stream_without_size_and_truncated(self):
        src = hslib.core("threads", "gdb")
        z = os.path.join(tmpdir(), "streamed.zst")
        with open(src, "rb") as f, open(z, "wb") as out:
            subprocess.run(["zstd", "-q", "-1", "-c", "-"], stdin=f, stdout=out, check=True)
        self.assertEqual(hslib.run_json([z, "summary"]), hslib.run_json([src, "summary"]))
        # Cut short: what is there, then exit 3 (a truncated core).
        cut = os.path.join(tmpdir(), "cut.zst")
        with open(z, "rb") as f:
            data = f.read()
        with open(cut, "wb") as f:
            f.write(data[:len(data) * 2 // 3])
        r = hslib.run([cut, "info"])
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 3, r.describe())
        self.assertIn("truncated", r.stderr)

    def test_damaged(self):
        core, _ = captured("threads", compress=True)
        with open(core, "rb") as f:
            data = bytearray(f.read())
        for i in range(200, len(data) - 16, max(1, len(data) // 50)):
            data[i] ^= 0x55
        bad = os.path.join(tmpdir(), "damaged.zst")
        with open(bad, "wb") as f:
            f.write(data)
        r = hslib.run([bad, "summary"])
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 3, r.describe())
        self.assertIn("damaged zstd file", r.stderr)

    def test_xz_and_lz4_cores(self):
        # .xz and .lz4 (with and without the size in their headers: from a
        # file or from a pipe) give what the plain core gives; cut short, the
        # part that is there (exit 3, truncated); damaged, a clear error.
        for tool in ("xz", "lz4"):
            if not shutil.which(tool):
                raise AssertionError("%s is not installed (scripts/deps.sh check)" % tool)
        src = hslib.core("threads", "gdb")
        d = tmpdir()
        made = {}
        for tool, ext in (("xz", "xz"), ("lz4", "lz4")):
            sized, piped = os.path.join(d, "threads." + ext), os.path.join(d, "piped-" + ext)
            with open(sized, "wb") as out:
                subprocess.run([tool, "-q", "-1", "-c", src], stdout=out, check=True)
            with open(src, "rb") as f, open(piped, "wb") as out:
                subprocess.run([tool, "-q", "-1", "-c"], stdin=f, stdout=out, check=True)
            made[ext] = (sized, piped)
        for cmd in (["summary"], ["chunks"], ["leaks", "--list"]):
            want = hslib.run_json([src] + cmd)
            for sized, piped in made.values():
                self.assertEqual(hslib.run_json([sized] + cmd), want, sized)
                self.assertEqual(hslib.run_json([piped] + cmd), want, piped)
        for ext, (sized, _) in made.items():
            with open(sized, "rb") as f:
                data = f.read()
            cut = os.path.join(d, "cut." + ext)
            with open(cut, "wb") as f:
                f.write(data[:len(data) * 2 // 3])
            r = hslib.run([cut, "info"])
            hslib.check_no_crash(r)
            self.assertEqual(r.status, 3, r.describe())
            self.assertIn("truncated", r.stderr)
            bad = bytearray(data)
            for i in range(200, len(bad) - 16, max(1, len(bad) // 50)):
                bad[i] ^= 0x55
            damaged = os.path.join(d, "damaged." + ext)
            with open(damaged, "wb") as f:
                f.write(bad)
            r = hslib.run([damaged, "summary"])
            hslib.check_no_crash(r)
            self.assertEqual(r.status, 3, r.describe())
            self.assertIn("is a damaged %s file" % ext, r.stderr)

    def test_too_big_for_memory_and_tmpdir(self):
        # A frame claiming 1 PiB: refused with the sizes and the way out.
        import struct
        frame = struct.pack("<IB", 0xFD2FB528, 0xE0) + struct.pack("<Q", 1 << 50) + b"\x01\x00\x00"
        path = os.path.join(tmpdir(), "huge.zst")
        with open(path, "wb") as f:
            f.write(frame)
        r = hslib.run([path, "info"])
        self.assertEqual(r.status, 3, r.describe())
        self.assertIn("decompresses to 1024.0 TiB", r.stderr)
        self.assertIn("zstd -d", r.stderr)


# --- faults -------------------------------------------------------------------------------------

def grower_exe():
    """A process that allocates and touches MB megabytes in steps, then waits."""
    exe = os.path.join(tmpdir(), "grower")
    return gdbutil.compile_once(exe, exe + ".c", r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	long total = atol(argv[1]), step = atol(argv[2]), pause_ms = atol(argv[3]);
	static char *keep[100000];
	long n = 0;
	printf("ready\n");
	fflush(stdout);
	for (long mb = 0; mb < total; mb += step) {
		for (long k = 0; k < step; k++) {
			keep[n] = malloc(1 << 20);
			memset(keep[n], (int)(n & 0x7f) + 1, 1 << 20);
			n++;
		}
		usleep(pause_ms * 1000);
	}
	printf("grown\n");
	fflush(stdout);
	for (;;)
		pause();
}
""")


class Grower:
    def __init__(self, total_mb, step_mb=1, pause_ms=0, wait_grown=True):
        self.p = subprocess.Popen([grower_exe(), str(total_mb), str(step_mb), str(pause_ms)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        assert self.p.stdout.readline().strip() == b"ready"
        if wait_grown:
            assert self.p.stdout.readline().strip() == b"grown"
        self.pid = self.p.pid

    state = Live.state
    assert_running = Live.assert_running

    def kill(self):
        Live.kill(self)


class Faults(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="faults-", dir=tmpdir())

    def assertNothingWritten(self, d=None):
        self.assertEqual(os.listdir(d or self.dir), [], "files left behind")

    def test_process_exits_mid_capture(self):
        g = Grower(400)
        self.addCleanup(g.kill)
        out = os.path.join(self.dir, "x.core")
        p = subprocess.Popen([hslib.HEAPSCOPE, "--pid", str(g.pid), "capture", "-o", out],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Killed once heapscope has it stopped: the capture of 400 MB is under way.
        end = time.monotonic() + 30
        while g.state()[1] != p.pid and p.poll() is None and time.monotonic() < end:
            time.sleep(0.001)
        os.kill(g.pid, signal.SIGKILL)
        _, err = p.communicate(timeout=60)
        g.p.wait()
        self.assertEqual(p.returncode, 3, err)
        self.assertRegex(err, r"^heapscope: pid \d+ exited during the capture; no core was written\n$")
        self.assertFalse(os.path.exists(out))
        self.assertNothingWritten()

    def test_pid_we_may_not_trace(self):
        setpriv = shutil.which("setpriv")
        if os.geteuid() != 0 or not setpriv:
            raise AssertionError("needs root and setpriv (util-linux) to run as nobody")
        live = Live("threads")
        self.addCleanup(live.kill)
        # Somewhere nobody may run the binary and write the core.
        d = tempfile.mkdtemp(prefix="hs-nobody-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o777)
        exe = os.path.join(d, "heapscope")
        shutil.copy(hslib.HEAPSCOPE, exe)
        os.chmod(exe, 0o755)
        out = os.path.join(d, "out")
        os.mkdir(out)
        os.chmod(out, 0o777)
        r = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", exe, "--pid",
                            str(live.pid), "capture", "-o", os.path.join(out, "x.core")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("cannot stop pid %d (threads) to read it (Operation not permitted): it runs as uid 0; "
                      "run heapscope as that user, or as root (CAP_SYS_PTRACE)" % live.pid, r.stderr)
        self.assertNothingWritten(out)
        live.assert_running(self, "after a refused capture")

    def test_no_such_pid_and_usage(self):
        pid = 4000000
        while os.path.exists("/proc/%d" % pid):
            pid += 1
        r = capture(pid, os.path.join(self.dir, "x"))
        self.assertEqual((r.status, r.stderr.strip()), (3, "heapscope: no process with pid %d" % pid))
        live = Live("threads")
        self.addCleanup(live.kill)
        for args, msg in ((["capture"], "capture needs -o FILE"),
                          (["capture", "-o", "x", "--compress", "gzip"], "--compress takes zstd or none"),
                          (["capture", "-o", self.dir], "is a directory"),
                          (["capture", "-o", ""], "-o takes a file name, not an empty one"),
                          (["watch", "-o", self.dir], "watch needs one of --rss-above"),
                          (["watch", "--rss-above", "1M", "-o", self.dir, "--interval", "soon"], "--interval takes")):
            r = hslib.run(["--pid", str(live.pid)] + args)
            self.assertEqual(r.status, 2, r.describe())
            self.assertIn(msg, r.stderr)
        r = hslib.run([hslib.core("threads", "gdb"), "capture", "-o", "x"])
        self.assertEqual(r.status, 2)
        self.assertIn("works on a live process", r.stderr)
        self.assertNothingWritten()

    def test_device_pipe_and_link(self):
        """-o naming a device or a FIFO is refused (a core is written at offsets;
        and renaming it over /dev/null as root would break the machine: the
        device here is made by mknod, never the machine's); a link to a file
        has the file replaced and stays a link."""
        live = Live("threads")
        self.addCleanup(live.kill)
        null, fifo = os.path.join(self.dir, "null"), os.path.join(self.dir, "pipe")
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mkfifo(fifo)
        for path in (null, fifo):
            r = capture(live.pid, path)
            self.assertEqual((r.status, r.stderr.strip()),
                             (2, "heapscope: %s is not a regular file (a device or a pipe); "
                                 "-o takes the core's file name" % path), r.describe())
        self.assertTrue(stat.S_ISCHR(os.lstat(null).st_mode))
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        real, link = os.path.join(self.dir, "real.core"), os.path.join(self.dir, "link.core")
        with open(real, "w") as f:
            f.write("old")
        os.symlink("real.core", link)
        r = capture(live.pid, link)
        self.assertEqual(r.status, 0, r.describe())
        self.assertEqual(os.readlink(link), "real.core")
        d = hslib.run_json([link, "summary"])
        self.assertEqual(d["allocator"], "glibc", d)
        self.assertEqual(sorted(os.listdir(self.dir)), ["link.core", "null", "pipe", "real.core"])
        live.assert_running(self, "after the captures")

    def test_unwritable_directory(self):
        live = Live("threads")
        self.addCleanup(live.kill)
        r = capture(live.pid, os.path.join(self.dir, "missing", "x.core"))
        self.assertEqual(r.status, 3, r.describe())
        self.assertIn("cannot write a core in %s/missing" % self.dir, r.stderr)
        # Read-only: a read-only bind mount in a private mount namespace (root ignores modes).
        ro = os.path.join(self.dir, "ro")
        os.mkdir(ro)
        r = subprocess.run(["unshare", "-m", "sh", "-c",
                            'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" --pid "$3" capture -o "$1/x.core"',
                            "sh", ro, hslib.HEAPSCOPE, str(live.pid)], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("Read-only file system", r.stderr)
        w = hslib.run(["--pid", str(live.pid), "watch", "--rss-above", "1G", "-o", os.path.join(self.dir, "nope")])
        self.assertEqual(w.status, 3, w.describe())
        self.assertIn("cannot write cores into", w.stderr)
        self.assertEqual(os.listdir(ro), [])
        live.assert_running(self, "after failed captures")

    def full_disk(self, runner):
        g = Grower(32)
        self.addCleanup(g.kill)
        r = runner(g.pid)
        self.assertEqual(r.returncode, 3, r.stderr)
        g.assert_running(self, "after a full disk")
        return r

    def test_full_tmpfs(self):
        d = os.path.join(self.dir, "small")
        os.mkdir(d)
        script = ('mount -t tmpfs -o size=1m tmpfs "$1" && "$2" --pid "$3" capture -o "$1/x.core"; s=$?; '
                  'ls -A "$1"; exit $s')
        r = self.full_disk(lambda pid: subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", d, hslib.HEAPSCOPE,
                                                       str(pid)], capture_output=True, text=True, timeout=120))
        self.assertIn("No space left on device", r.stderr)
        self.assertEqual(r.stdout.strip(), "", "files left on the full file system")

    def test_rlimit_fsize(self):
        out = os.path.join(self.dir, "x.core")

        def limited():
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        r = self.full_disk(lambda pid: subprocess.run([hslib.HEAPSCOPE, "--pid", str(pid), "capture", "-o", out],
                                                      capture_output=True, text=True, timeout=120,
                                                      preexec_fn=limited))
        self.assertIn("File too large", r.stderr)
        self.assertNothingWritten()

    def test_signals_and_sigkill_at_random_moments(self):
        g = Grower(300)
        self.addCleanup(g.kill)
        out = os.path.join(self.dir, "x.core")
        rng = random.Random(17)
        t0 = time.monotonic()
        r = capture(g.pid, out)
        full = time.monotonic() - t0
        self.assertEqual(r.status, 0, r.describe())
        os.unlink(out)
        statuses = []
        for i in range(24):
            sig = (signal.SIGKILL, signal.SIGINT, signal.SIGTERM)[i % 3]
            delay = rng.uniform(0, full * 1.2)
            p = subprocess.Popen([hslib.HEAPSCOPE, "--pid", str(g.pid), "capture", "-o", out],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(delay)
            p.send_signal(sig)
            _, err = p.communicate(timeout=60)
            statuses.append(p.returncode)
            what = "%s at %.3f s" % (signal.Signals(sig).name, delay)
            g.assert_running(self, what)
            # -SIGINT/-SIGTERM: the signal came before heapscope set its handlers.
            self.assertIn(p.returncode, (0, 130, -signal.SIGKILL, -signal.SIGINT, -signal.SIGTERM),
                          "%s: exit %s %s" % (what, p.returncode, err))
            if p.returncode == 0:
                self.assertTrue(os.path.exists(out))
                os.unlink(out)
            elif p.returncode == -signal.SIGKILL and os.path.exists(out):
                # Killed after the core was named (between the rename and
                # exit): the core is whole, since it is named only when done.
                r = hslib.run([out, "info"])
                self.assertEqual(r.status, 0, "%s: a core left behind is not whole: %s" % (what, r.stderr))
                os.unlink(out)
                self.assertNothingWritten()
            else:
                self.assertNothingWritten()
        self.assertIn(-signal.SIGKILL, statuses)
        self.assertIn(130, statuses, "no capture was interrupted (a full capture takes %.2f s)" % full)
        sys.stderr.write("[capture of 300 MB: %.2f s; statuses %s] " % (full, statuses))


    def test_no_signal_lost(self):
        # Queued (real-time) signals sent all through 30 captures: every one is
        # delivered (a thread stopped delivering a signal gets it back on detach).
        exe = os.path.join(tmpdir(), "counter")
        gdbutil.compile_once(exe, exe + ".c", r"""
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static volatile sig_atomic_t n;
static void count(int s) { (void)s; n++; }
static void report(int s) { (void)s; printf("%d\n", (int)n); fflush(stdout); _exit(0); }
int main(void)
{
	signal(SIGRTMIN, count);
	signal(SIGUSR2, report);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
""")
        p = subprocess.Popen([exe], stdout=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        import threading
        sent, stop = [0], []

        def send():
            while not stop:
                os.kill(p.pid, signal.SIGRTMIN)
                sent[0] += 1
                time.sleep(0.0003)
        t = threading.Thread(target=send)
        t.start()
        try:
            for _ in range(30):
                r = capture(p.pid, os.path.join(self.dir, "s.core"))
                self.assertEqual(r.status, 0, r.describe())
        finally:
            stop.append(1)
            t.join()
        time.sleep(0.2)
        os.kill(p.pid, signal.SIGUSR2)
        self.assertEqual(int(p.stdout.readline()), sent[0], "signals lost during captures")


# --- watch --------------------------------------------------------------------------------------

class Watch(unittest.TestCase):
    def setUp(self):
        self.out = tempfile.mkdtemp(prefix="watch-", dir=tmpdir())

    def start(self, pid, *args):
        return subprocess.Popen([hslib.HEAPSCOPE, "--json", "--pid", str(pid), "watch", "-o", self.out,
                                 "--interval", "50ms"] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, p, timeout=60):
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("watch did not end")
        self.assertEqual(p.returncode, 0, err)
        return json.loads(out)

    def cores(self):
        return sorted(f for f in os.listdir(self.out))

    def wait_cores(self, p, n, timeout=30):
        end = time.monotonic() + timeout
        while len(self.cores()) < n and p.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        if len(self.cores()) < n:
            p.kill()
            out, err = p.communicate()
            self.fail("watch took %d cores, not %d: %s %s" % (len(self.cores()), n, out, err))

    def test_rss_of_a_growing_process_once(self):
        g = Grower(160, step_mb=4, pause_ms=30, wait_grown=False)
        self.addCleanup(g.kill)
        p = self.start(g.pid, "--rss-above", "64M", "--once")
        doc = self.finish(p)
        self.assertEqual(doc["ended"], "once")
        self.assertEqual(len(doc["captures"]), 1)
        c = doc["captures"][0]
        self.assertGreaterEqual(c["usage"], 64 << 20)
        self.assertEqual(self.cores(), [os.path.basename(c["file"])])
        self.assertRegex(c["file"], r"/core\.%d\.\d{8}T\d{6}Z$" % g.pid)
        s = hslib.run_json([c["file"], "summary"])
        self.assertGreaterEqual(s["in_use"]["bytes"], 50 << 20)
        g.assert_running(self, "after watch")

    def cgroup(self, version, usage, limit, max_events=0):
        d = os.path.join(self.out + ".cg")
        os.makedirs(d, exist_ok=True)
        files = {2: ("memory.current", "memory.max"), 1: ("memory.usage_in_bytes", "memory.limit_in_bytes")}
        cur, lim = files[version]
        for name, value in ((lim, limit), (cur, usage)):
            with open(os.path.join(d, name + ".new"), "w") as f:
                f.write("%s\n" % value)
            os.rename(os.path.join(d, name + ".new"), os.path.join(d, name))
        if version == 2:
            with open(os.path.join(d, "memory.events.new"), "w") as f:
                f.write("low 0\nhigh 0\nmax %d\noom 0\noom_kill 0\n" % max_events)
            os.rename(os.path.join(d, "memory.events.new"), os.path.join(d, "memory.events"))
        return d

    def cgroup_once(self, version):
        live = Live("threads")
        self.addCleanup(live.kill)
        d = self.cgroup(version, 100 << 20, 1000 << 20)
        p = self.start(live.pid, "--cgroup", d, "--at", "80", "--once")
        time.sleep(0.5)
        self.assertEqual(self.cores(), [], "fired below the threshold")
        self.cgroup(version, 850 << 20, 1000 << 20)
        doc = self.finish(p)
        self.assertEqual([c["reason"] for c in doc["captures"]], ["threshold"])
        self.assertEqual(doc["captures"][0]["usage"], 850 << 20)
        self.assertEqual(doc["captures"][0]["threshold"], 800 << 20)
        self.assertEqual(doc["cgroup"], d)
        self.assertEqual(len(self.cores()), 1)
        live.assert_running(self, "after watch")
        s = hslib.run_json([doc["captures"][0]["file"], "summary"])
        self.assertEqual((s["allocator"], s["arenas"]), ("glibc", live.truth()["arenas"]))

    def test_cgroup_v2_once(self):
        self.cgroup_once(2)

    def test_cgroup_v1_once(self):
        self.cgroup_once(1)

    def test_rearm_step_and_max_cores(self):
        live = Live("threads")
        self.addCleanup(live.kill)
        d = self.cgroup(2, 850 << 20, 1000 << 20)
        p = self.start(live.pid, "--cgroup", d, "--at", "80", "--max-cores", "3")
        self.wait_cores(p, 1)
        time.sleep(0.4)
        self.cgroup(2, 900 << 20, 1000 << 20)      # less than a step (80 MiB) more: nothing
        time.sleep(0.4)
        self.assertEqual(len(self.cores()), 1)
        self.cgroup(2, 940 << 20, 1000 << 20)      # a step above 850: the second core
        self.wait_cores(p, 2)
        time.sleep(0.3)
        self.cgroup(2, 600 << 20, 1000 << 20)      # fell back below 800 - 80: armed at 800 again
        time.sleep(0.4)
        self.assertEqual(len(self.cores()), 2)
        self.cgroup(2, 700 << 20, 1000 << 20, max_events=1)   # the limit was hit between polls
        doc = self.finish(p)
        self.assertEqual([c["reason"] for c in doc["captures"]], ["threshold", "threshold", "memory.max hit"])
        self.assertEqual(doc["ended"], "max-cores")
        self.assertEqual(len(self.cores()), 3)
        live.assert_running(self, "after watch")

    def test_process_exit_ends_watch(self):
        g = Grower(1)
        p = self.start(g.pid, "--rss-above", "100G")
        time.sleep(0.3)
        g.kill()
        doc = self.finish(p)
        self.assertEqual((doc["ended"], doc["captures"]), ("gone", []))

    def test_cgroup_without_limit_and_auto(self):
        live = Live("threads")
        self.addCleanup(live.kill)
        d = self.cgroup(2, 1, "max")
        r = hslib.run(["--pid", str(live.pid), "watch", "--cgroup", d, "--at", "80", "-o", self.out])
        self.assertEqual(r.status, 2, r.describe())
        self.assertIn("has no memory limit (memory.max is max)", r.stderr)
        r = hslib.run(["--pid", str(live.pid), "watch", "--cgroup", self.out, "--at", "80", "-o", self.out])
        self.assertEqual(r.status, 2)
        self.assertIn("not a cgroup with the memory controller", r.stderr)
        # auto reads /proc/PID/cgroup and our mountinfo (read only): it names the
        # process's cgroup, whether or not that has a limit.
        with open("/proc/%d/cgroup" % live.pid) as f:
            lines = [l.strip().split(":", 2) for l in f]
        v1 = [l[2] for l in lines if "memory" in l[1].split(",")]
        v2 = [l[2] for l in lines if l[0] == "0" and not l[1]]
        with open("/proc/self/mountinfo") as f:
            mounts = [(l.split()[3:5], l.split(" - ")[1].split()) for l in f]
        if v1:
            mnt = [m for m, (fs, _, opts) in mounts if fs == "cgroup" and "memory" in opts.split(",")]
        else:
            mnt = [m for m, (fs, _, _) in mounts if fs == "cgroup2"]
        cg = (v1 or v2 or [None])[0]
        if not cg or not mnt:
            self.skipTest("no memory cgroup mounted here")
        root, point = mnt[0]
        path = cg[len(root):] if root != "/" and cg.startswith(root) else cg
        want = point + (path if path != "/" else "")
        p = subprocess.Popen([hslib.HEAPSCOPE, "--pid", str(live.pid), "watch", "--cgroup", "auto", "--at", "100",
                              "-o", self.out, "--interval", "1s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        self.assertIn(p.returncode, (2, 130, 0), err)
        self.assertIn(want, out + err)


def tearDownModule():
    tmpdir.remove()


if __name__ == "__main__":
    sys.exit(gdbutil.main(sys.modules[__name__], tmpdir))
