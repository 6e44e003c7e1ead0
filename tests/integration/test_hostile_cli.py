"""The CLI's side of issue 11 (hostile input, output hygiene): a JSON error
document on stdout whenever --json fails, exit 128+N with a message when a
signal stops heapscope, and a zombie called a zombie.  The crafted cores of
the fuzz findings are in tests/unit/test_hostile.c."""
import fcntl
import json
import os
import signal
import subprocess
import termios
import time
import unittest

import hslib

F_GETPIPE_SZ = 1032
F_SETPIPE_SZ = 1031


class JsonErrors(unittest.TestCase):
    def error_doc(self, args, status, code):
        r = hslib.run(["--json"] + args)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, status, r.describe())
        doc = json.loads(r.stdout)          # exactly one document, or this raises
        self.assertEqual(doc["schema"], 1)
        self.assertEqual(doc["error"]["code"], code, r.describe())
        self.assertTrue(doc["error"]["message"])
        self.assertTrue(hslib.one_line(r.stderr), r.describe())
        return doc

    def test_missing_core(self):
        self.error_doc(["/nonexistent/core", "summary"], 3, "target")

    def test_not_a_core(self):
        self.error_doc(["/bin/true", "info"], 3, "target")

    def test_unknown_option(self):
        self.error_doc(["--bogus", "x"], 2, "usage")

    def test_usage_error_of_a_command_has_diagnostics(self):
        doc = self.error_doc([hslib.core("threads", "gdb"), "show"], 2, "usage")
        self.assertEqual(doc["command"], "show")
        self.assertIn("diagnostics", doc)

    def test_unknown_command(self):
        self.error_doc([hslib.core("threads", "gdb"), "nosuchcommand"], 2, "usage")

    def test_address_in_no_block(self):
        doc = self.error_doc([hslib.core("threads", "gdb"), "chain", "0x10"], 2, "not_found")
        self.assertEqual(doc["command"], "chain")


class Signals(unittest.TestCase):
    def test_sigterm_says_so_and_exits_143(self):
        """heapscope blocked writing to a full pipe gets SIGTERM: it says why it
        stopped and exits 128 + 15 (it exited 130 without a word)."""
        core = hslib.core("glibc_heap", "gdb")
        rfd, wfd = os.pipe()
        fcntl.fcntl(wfd, F_SETPIPE_SZ, 4096)
        size = fcntl.fcntl(wfd, F_GETPIPE_SZ)
        proc = subprocess.Popen([hslib.HEAPSCOPE, core, "chunks"], stdout=wfd,
                                stderr=subprocess.PIPE)
        os.close(wfd)
        try:
            # Wait (bounded) until the pipe is full: heapscope is in write().
            buf = bytearray(4)
            for _ in range(1200):
                fcntl.ioctl(rfd, termios.FIONREAD, buf)
                if int.from_bytes(buf, "little") >= size or proc.poll() is not None:
                    break
                time.sleep(0.05)
            self.assertIsNone(proc.poll(), "heapscope finished before the pipe filled")
            proc.send_signal(signal.SIGTERM)
            with os.fdopen(rfd, "rb") as r:
                r.read()
            rfd = None
            err = proc.stderr.read().decode(errors="replace")
            status = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if rfd is not None:
                os.close(rfd)
        self.assertEqual(status, 143, err)
        self.assertIn("stopped by SIGTERM", err)


class Zombie(unittest.TestCase):
    def test_zombie_pid_is_called_a_zombie(self):
        """Root was told "Operation not permitted ... run as root" for a zombie."""
        child = subprocess.Popen(["true"])
        try:
            for _ in range(400):
                with open("/proc/%d/stat" % child.pid) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
                time.sleep(0.01)
            else:
                self.fail("the child did not become a zombie")
            r = hslib.run(["--json", "--pid", str(child.pid), "summary"])
            hslib.check_no_crash(r)
            self.assertEqual(r.status, 3, r.describe())
            self.assertIn("has exited", r.stderr)
            self.assertNotIn("root", r.stderr)
            self.assertEqual(json.loads(r.stdout)["error"]["code"], "target")
        finally:
            child.wait()


if __name__ == "__main__":
    unittest.main()
