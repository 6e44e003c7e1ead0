"""Bad input (issue 2, item 11): each gives exit status 3 and one clear line on
stderr, never a crash, a traceback or a sanitizer report.  A truncated core is
the exception: `info` shows what is there, says it is truncated and how much is
missing, and records a diagnostic."""
import json
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import time
import unittest

import hslib


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="heapscope-bad-")
        os.chmod(cls.tmp, 0o755)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def assertRefused(self, args, status=3, runner=None):
        r = (runner or hslib.run)(args)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, status, r.describe())
        self.assertTrue(hslib.one_line(r.stderr), "stderr is not one line:\n" + r.describe())
        self.assertEqual(r.stdout.strip(), "", "a refused target printed on stdout:\n" + r.describe())
        return r

    def test_empty_file(self):
        self.assertRefused([self.write("empty", b""), "info"])

    def test_not_elf(self):
        self.assertRefused([self.write("text", b"this is not a core file\n" * 100), "info"])

    def test_elf_not_a_core(self):
        self.assertRefused(["/bin/true", "info"])

    def test_elf_header_only(self):
        with open(hslib.core("threads", "gdb"), "rb") as f:
            head = f.read(64)
        self.assertRefused([self.write("header-only", head), "info"])

    def test_wrong_exe(self):
        self.assertRefused(["--exe", "/bin/true", hslib.core("threads", "gdb"), "info"])

    def test_fifo_or_device_is_never_read(self):
        """A core, --exe, or a file the core names that is a FIFO or a device: a
        FIFO's open blocks until a writer comes (never, here), so each is refused
        or passed over at once.  (The timeout is the test: a hang fails it.)"""
        fifo = os.path.join(self.tmp, "fifo")
        os.mkfifo(fifo)
        zero = os.path.join(self.tmp, "zero")
        os.mknod(zero, 0o666 | stat.S_IFCHR, os.makedev(1, 5))
        core = hslib.core("threads", "gdb")
        for path in (fifo, zero):
            r = self.assertRefused([path, "summary"], runner=lambda a: hslib.run(a, timeout=30))
            self.assertEqual(r.stderr.strip(), "heapscope: %s is not a regular file" % path)
        for opt, path, kind in (("--exe", fifo, "regular file"), ("--exe", self.tmp, "regular file"),
                                ("--sysroot", zero, "directory"), ("--debug-dir", fifo, "directory")):
            r = self.assertRefused([opt, path, core, "summary"], status=2,
                                   runner=lambda a: hslib.run(a, timeout=30))
            self.assertIn("%s %s is not a %s" % (opt, path, kind), r.stderr)
        # The two paths swapped: a core given as --exe.
        r = self.assertRefused(["--exe", core, core, "summary"], status=2)
        self.assertIn("--exe %s is a core file, not the program" % core, r.stderr)
        # The program's path in the core (NT_FILE) made a FIFO's: libdwfl
        # opens it while listing the modules.
        leaks = hslib.core("leaks", "gdb")
        exe = os.path.join(os.path.dirname(leaks), "leaks").encode()
        with open(leaks, "rb") as f:
            data = f.read()
        self.assertIn(exe + b"\0", data)
        named = "/tmp/hs-fifo-%d-" % os.getpid()
        self.assertLess(len(named), len(exe), "the fixture's path is too short to stand in for")
        named += "f" * (len(exe) - len(named))
        os.mkfifo(named)
        self.addCleanup(os.unlink, named)
        patched = self.write("fifo-exe.core", data.replace(exe + b"\0", named.encode() + b"\0"))
        want = hslib.run_json([leaks, "summary"])
        r = hslib.run(["--json", patched, "summary"], timeout=60)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 0, r.describe())
        got = json.loads(r.stdout)
        self.assertEqual((got["allocator"], got["in_use"]), (want["allocator"], want["in_use"]))
        self.assertTrue(stat.S_ISFIFO(os.lstat(named).st_mode))

    def test_missing_pid(self):
        pid = 999999
        while os.path.exists("/proc/%d" % pid):
            pid += 1
        self.assertRefused(["--pid", str(pid), "info"])

    def test_pid_that_cannot_be_stopped_says_why(self):
        """A kernel thread is refused before trying (it has no user memory); a
        process another tracer holds names that tracer."""
        kthread = None
        for d in sorted(os.listdir("/proc"), key=lambda x: (len(x), x)):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    rest = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(rest[6]) & 0x00200000:   # PF_KTHREAD
                kthread = int(d)
                break
        self.assertIsNotNone(kthread, "no kernel thread in /proc (a PID namespace?)")
        with open("/proc/%d/comm" % kthread) as f:
            comm = f.read().strip()
        r = self.assertRefused(["--pid", str(kthread), "summary"])
        self.assertEqual(r.stderr.strip(), "heapscope: cannot read pid %d (%s): it is a kernel thread, "
                         "with no user memory to read" % (kthread, comm))
        sleeper = subprocess.Popen(["sleep", "60"])
        self.addCleanup(sleeper.wait)
        self.addCleanup(sleeper.kill)
        tracer = subprocess.Popen(["strace", "-p", str(sleeper.pid), "-o", os.devnull],
                                  stderr=subprocess.PIPE, text=True)
        self.addCleanup(tracer.wait)
        self.addCleanup(tracer.kill)
        tracer.stderr.readline()        # "strace: Process N attached"
        r = self.assertRefused(["--pid", str(sleeper.pid), "summary"])
        self.assertEqual(r.stderr.strip(), "heapscope: cannot stop pid %d (sleep) to read it (Operation not "
                         "permitted): pid %d (strace) is tracing it already; analyse it from that debugger "
                         "(hs in GDB), or once it lets go" % (sleeper.pid, tracer.pid))

    def test_pid_without_permission(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to start a process nobody may read")
        setpriv = shutil.which("setpriv")
        if not setpriv:
            self.skipTest("setpriv is not installed (util-linux)")
        # The unprivileged user must be able to run the binary.
        exe = os.path.join(self.tmp, "heapscope")
        shutil.copy(hslib.HEAPSCOPE, exe)
        os.chmod(exe, 0o755)
        sleeper = subprocess.Popen(["sleep", "60"])
        try:
            time.sleep(0.1)

            def as_nobody(args):
                proc = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                                       exe] + args, capture_output=True, text=True, timeout=30,
                                      errors="replace")
                return hslib.Result(args, proc)

            self.assertRefused(["--pid", str(sleeper.pid), "info"], runner=as_nobody)
            self.assertIsNone(sleeper.poll(), "the target process died")
            with open("/proc/%d/stat" % sleeper.pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            self.assertNotIn(state, ("t", "T"), "the target was left stopped")
        finally:
            sleeper.kill()
            sleeper.wait()

    def test_usage_error(self):
        r = hslib.run(["--no-such-option", hslib.core("threads", "gdb")])
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 2, r.describe())

    def truncated(self, kind):
        """Cut the threads core in half; info shows what is there (exit 0, or 3
        with the document still printed), says truncated, how much is missing,
        and records a diagnostic."""
        src = hslib.core("threads", kind)
        path = os.path.join(self.tmp, "truncated.%s.core" % kind)
        subprocess.run(["cp", "--sparse=always", src, path], check=True)
        size = os.path.getsize(src) // 2
        os.truncate(path, size)
        # What is missing: the dumped bytes (p_filesz) of segments, notes
        # too, that lie past EOF.
        missing = sum(max(0, min(filesz, off + filesz - size))
                      for _type, off, _vaddr, filesz, _memsz in hslib.program_headers(path))
        self.assertGreater(missing, 0)

        r = hslib.run(["--json", path, "info"])
        hslib.check_no_crash(r)
        self.assertIn(r.status, (0, 3), r.describe())
        self.assertTrue(hslib.one_line(r.stderr) or not r.stderr.strip(), r.describe())
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            self.fail("info on a truncated core must still show what is there:\n" + r.describe())
        t = doc["target"]
        self.assertIs(t["truncated"], True)
        self.assertEqual(t["missing_bytes"], missing)
        self.assertTrue(any("truncat" in d["message"] for d in doc["diagnostics"]),
                        "no diagnostic says truncated: %s" % doc["diagnostics"])
        return doc

    def test_truncated_kernel_core(self):
        # The kernel writes the notes first: the threads survive the cut.
        doc = self.truncated("kernel")
        want = sorted(t["tid"] for t in hslib.truth("threads", "kernel")["threads"])
        self.assertEqual(sorted(t["tid"] for t in doc["threads"]), want)

    def test_truncated_gdb_core(self):
        # gdb writes the notes last: they are gone with the second half.
        self.truncated("gdb")
