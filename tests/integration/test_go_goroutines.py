"""Go goroutines (issue 15, item 4): every goroutine as the runtime itself tells it, exactly.

The fixture, cores/go_goroutines/main.go (cores/make-go-cores.sh), leaks
goroutines the usual ways: 64 blocked on a channel receive
(main.waitForever), 20 on a send (main.sendForever), 10 in a select on two
channels (main.selectForever), 6 sending to a full buffered channel
(main.fillForever), 5 on a held sync.Mutex, 3 on a WaitGroup never done, 4
asleep.  Its truth: each pattern's function, count and channels (their
address as %p prints it, their element type), and runtime.Stack(all) once
every goroutine is parked: each goroutine's id, state or wait reason (the
runtime's own words for that version), frames and "created by".  Built with
go1.19 (DWARF; -ldflags=-w: built-in layout; -ldflags='-s -w': no symbols)
and go1.21-1.24, gdb cores (stopped in main.dump_here) and kernel cores
(GOTRACEBACK=crash, SIGABRT from main.main).

The checks are exact: the set of the program's goroutines (ids), each one's
state and wait reason, blocking function and creator against
runtime.Stack's; each pattern's group (count, function, channels and their
element types) and its finding line; the runtime's own goroutines marked
system and hidden from runtime.Stack as the runtime hides them; every stack
unwound down to runtime.goexit, the main goroutine's from its thread (gdb) or
its signal frame (the kernel core of the crash); the built-in layouts
(--no-debuginfo) give the same document as DWARF.  A core of another program
and the stripped binary are refused (exit 4) with why; damaged g structs,
sudog lists that loop and stacks whose frames point anywhere end in
findings, never a hang or a crash.  GDB's `hs goroutines` prints what the CLI
prints.

Run alone:  BUILD=build python3 tests/integration/test_go_goroutines.py
"""
import os
import re
import shutil
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hslib  # noqa: E402


def machinery(fn):
    """The runtime and the standard library's waiting primitives (the blocking
    function is the first frame past them: docs/cli.md)."""
    pkg = fn.split(".")[0] if not fn.startswith(("internal/", "runtime/")) else fn.split("/")[0]
    return pkg in ("runtime", "internal", "sync", "time", "syscall") or fn.startswith("sync/atomic.")


def parse_stacks(text):
    """runtime.Stack(all): {goid: (state, [functions], created_by)}."""
    out = {}
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        m = re.match(r"goroutine (\d+) \[([^\]]*)\]:", lines[0])
        assert m, lines[0]
        state = m.group(2).split(",")[0]
        funcs, created = [], None
        for line in lines[1:]:
            if line.startswith("\t"):
                continue
            if line.startswith("created by "):
                created = line[len("created by "):].split(" in goroutine ")[0]
                continue
            funcs.append(re.match(r"(.*)\(.*\)$", line).group(1))
        out[int(m.group(1))] = (state, funcs, created)
    return out


def blocking(funcs):
    for f in funcs:
        if not machinery(f):
            return f
    return None


class GoroutinesCore:
    name = kind = None
    extra = ()
    layout = "DWARF"

    def setUp(self):
        self.core = hslib.go_core(self.name, self.kind)
        self.truth = hslib.truth(self.name, self.kind)
        self.doc = hslib.run_json(list(self.extra) + [self.core, "goroutines", "--list"], timeout=120)
        self.gs = {g["goid"]: g for g in self.doc["goroutines"]}
        self.stacks = parse_stacks(self.truth["stacks"])

    def test_version_and_layout(self):
        self.assertEqual(self.doc["go_version"], self.truth["go_version"])
        self.assertTrue(self.doc["layout"].startswith(self.layout), self.doc["layout"])
        self.assertEqual(self.doc["unwinder"], "pclntab frame sizes")
        self.assertEqual((self.doc["dead"], self.doc["unreadable"]), (0, 0))
        self.assertEqual(self.doc["diagnostics"], [])

    def test_the_programs_goroutines_are_runtime_stacks(self):
        user = {g["goid"] for g in self.doc["goroutines"] if not g["system"]}
        self.assertEqual(user, set(self.stacks))
        self.assertEqual(self.doc["total"], len(self.doc["goroutines"]))
        self.assertEqual(self.doc["system"], self.doc["total"] - len(self.stacks))

    def test_each_goroutine_state_function_and_creator(self):
        for goid, (state, funcs, created) in self.stacks.items():
            g = self.gs[goid]
            if goid == 1:
                continue   # main: running, checked below
            if state == "syscall":
                # In the kernel, on its thread's stack: the thread's
                # registers; in a kernel core the crash signalled every
                # thread: the ones its signal frame saved.
                self.assertEqual((g["status"], g["wait_reason"]), ("syscall", None), goid)
                self.assertEqual(g["registers"], "signal" if self.kind == "kernel" else "thread", goid)
                self.assertIn("thread", g)
            else:
                self.assertEqual(g["status"], "waiting", goid)
                self.assertEqual(g["wait_reason"], state, goid)
                self.assertEqual(g["registers"], "sched", goid)
            self.assertEqual(g["function"], blocking(funcs), goid)
            self.assertEqual(g["created_by"], created, goid)
            self.assertIsNone(g["stack_cut"], goid)

    def test_system_goroutines_are_the_runtimes(self):
        for g in self.doc["goroutines"]:
            if g["system"]:
                self.assertTrue(g["start_function"].startswith("runtime."), g)
                self.assertNotIn(g["goid"], self.stacks)

    def test_every_stack_ends_in_goexit_within_its_bounds(self):
        for g in self.doc["goroutines"]:
            self.assertLess(g["stack_lo"], g["stack_hi"], g["goid"])
            self.assertTrue(g["stack_lo"] <= g["sp"] < g["stack_hi"], g["goid"])
            self.assertIsNone(g["stack_cut"], g)
            self.assertEqual(g["stack"][-1]["function"], "runtime.goexit", g["goid"])
            self.assertTrue(all(f["function"] for f in g["stack"]), g["goid"])

    def test_main_goroutine_from_its_thread(self):
        main = self.gs[1]
        self.assertFalse(main["system"])
        funcs = [f["function"] for f in main["stack"]]
        self.assertEqual(funcs[-3:], ["main.main", "runtime.main", "runtime.goexit"])
        if self.kind == "gdb":
            self.assertEqual((main["status"], main["registers"]), ("running", "thread"))
            self.assertEqual(funcs[0], "main.dump_here")
            self.assertIn("thread", main)
        elif self.kind == "pid":
            # Waiting in a raw nanosleep that keeps the P: running, in the kernel.
            self.assertEqual((main["status"], main["registers"]), ("running", "thread"))
            self.assertEqual(funcs[-4:-3], ["syscall.RawSyscall"])
        elif main["registers"] == "signal":
            # The crash taken on main's own thread: its registers are the
            # signal frame's.  Either the SIGABRT main.main sent itself
            # (syscall.Kill), or the runtime's crash went on from another
            # thread and raised it on main's while main spun in its `for {}`
            # -- possibly right inside an asynchronous preemption, before
            # asyncPreempt had called asyncPreempt2 (seen once in CI).
            self.assertEqual(main["status"], "running")
            self.assertIn("thread", main)
            if "syscall.Kill" not in funcs:
                self.assertIn(funcs[:-3], ([], ["runtime.asyncPreempt"]), funcs)
        else:
            # Taken on another thread while main spun in its `for {}`: the
            # crash preempted main (its frames go through asyncPreempt).
            self.assertEqual((main["status"], main["registers"]), ("runnable", "sched"))
            self.assertEqual(funcs[:3], ["runtime.asyncPreempt2", "runtime.asyncPreempt", "main.main"])

    def test_groups_are_the_patterns(self):
        groups = {(g["function"], g["count"]): g for g in self.doc["groups"] if not g["system"]}
        for p in self.truth["patterns"]:
            g = groups.get((p["function"], p["count"]))
            self.assertIsNotNone(g, "no group of %d in %s: %s" % (p["count"], p["function"],
                                                                  [(k, v["count"]) for k, v in groups.items()]))
            want = sorted((int(c["address"], 16), c["elem"], p["count"]) for c in (p["channels"] or []))
            got = sorted((c["address"], c["elem_type"], c["goroutines"]) for c in g["channels"])
            self.assertEqual(got, want, p["function"])
            states = {self.stacks[i][0] for i in g["goids"]}
            self.assertEqual(states, {g["wait_reason"] or g["status"]}, p["function"])
            self.assertEqual(len(g["goids"]), p["count"])
        # The findings: exactly the patterns (main runs; the runtime's are system).
        blocked = sorted((b["function"], b["count"], b["wait_reason"] or b["status"],
                          sorted((c["address"], c["elem_type"]) for c in b["channels"])) for b in self.doc["blocked"])
        want = []
        for p in self.truth["patterns"]:
            goid = next(i for i, st in self.stacks.items() if blocking(st[1]) == p["function"])
            want.append((p["function"], p["count"], self.stacks[goid][0],
                         sorted((int(c["address"], 16), c["elem"]) for c in (p["channels"] or []))))
        self.assertEqual(blocked, sorted(want))
        self.assertEqual(self.doc["groups_total"], len(self.doc["groups"]))
        self.assertEqual(sum(g["count"] for g in self.doc["groups"]), self.doc["total"])

    def test_text_findings(self):
        r = hslib.run(list(self.extra) + [self.core, "goroutines"], timeout=120)
        self.assertEqual(r.status, 0, r.describe())
        lines = r.stdout.split("Blocked goroutines (leaked if nothing will wake them):\n")[1].split("\n")
        for p in self.truth["patterns"]:
            goid = next(i for i, s in self.stacks.items() if blocking(s[1]) == p["function"])
            line = "  %d goroutines blocked in %s on %s" % (p["count"], p["function"], self.stacks[goid][0])
            if p["channels"]:
                line += " on channel%s " % ("s" if len(p["channels"]) > 1 else "")
                line += ", ".join("%s (chan %s)" % (c["address"], c["elem"]) for c in p["channels"])
            self.assertIn(line, lines)


def make_cases():
    cases = [("go%s_goroutines" % v if v else "go_goroutines", kind, (), "DWARF")
             for v in hslib.GO_VERSIONS for kind in ("gdb", "kernel")]
    cases += [("go_goroutines_nodwarf", "kernel", (), "built-in go1.19"),
              ("go_goroutines", "kernel", ("--no-debuginfo",), "built-in go1.19"),
              ("go124_goroutines", "kernel", ("--no-debuginfo",), "built-in go1.24"),
              ("go122_goroutines", "gdb", ("--no-debuginfo",), "built-in go1.22")]
    for name, kind, extra, layout in cases:
        cls = type("TestGoroutines_%s_%s%s" % (name, kind, "_nodebuginfo" if extra else ""),
                   (GoroutinesCore, unittest.TestCase),
                   {"name": name, "kind": kind, "extra": extra, "layout": layout})
        globals()[cls.__name__] = cls


make_cases()


class TestGoroutinesPid(GoroutinesCore, unittest.TestCase):
    """--pid on the running fixture (go1.24, waiting in a raw system call
    with async preemption off): the same checks."""
    kind = "pid"
    proc = tmpdir = None

    @classmethod
    def setUpClass(cls):
        import subprocess
        import time
        exe = os.path.join(hslib.CORES, "go124_goroutines")
        if not os.access(exe, os.X_OK):
            raise AssertionError("%s is missing (run make cores)" % exe)
        cls.tmpdir = tempfile.mkdtemp(prefix="hs-gor-pid-")
        cls.path = os.path.join(cls.tmpdir, "truth.json")
        cls.proc = subprocess.Popen([exe, cls.path, "wait"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=dict(os.environ, GODEBUG="asyncpreemptoff=1"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and cls.proc.poll() is None:
            if os.path.exists(cls.path):
                with open(cls.path) as f:
                    if f.read().endswith("}\n"):
                        break
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        if cls.proc:
            cls.proc.kill()
            cls.proc.wait()
        shutil.rmtree(cls.tmpdir, ignore_errors=True)

    def setUp(self):
        import json
        self.assertIsNone(self.proc.poll(), "the fixture exited")
        with open(self.path) as f:
            self.truth = json.load(f)
        self.doc = hslib.run_json(["--pid", str(self.proc.pid), "goroutines", "--list"], timeout=120)
        self.gs = {g["goid"]: g for g in self.doc["goroutines"]}
        self.stacks = parse_stacks(self.truth["stacks"])
        self.core = None
        self.extra = ("--pid", str(self.proc.pid))

    def test_text_findings(self):
        self.core = self.extra[1]
        self.extra = ("--pid",)
        GoroutinesCore.test_text_findings(self)


class TestGoroutinesRefused(unittest.TestCase):
    def test_stripped_binary_says_what_is_missing(self):
        core = hslib.go_core("go_goroutines_stripped", "kernel")
        truth = hslib.truth("go_goroutines_stripped", "kernel")
        r = hslib.run([core, "goroutines"], timeout=60)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("without a symbol table", r.stderr)
        self.assertIn("runtime.allgs cannot be found", r.stderr)
        self.assertIn(truth["go_version"], r.stderr)
        self.assertEqual(r.stdout, "")

    def test_not_a_go_program(self):
        core = hslib.core("leaks", "gdb")
        r = hslib.run([core, "goroutines"], timeout=60)
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("not a Go program", r.stderr)
        self.assertEqual(r.stdout, "")
        doc = hslib.run_json([core, "goroutines"], expect_status=4)
        self.assertIn("not a Go program", doc["error"]["message"])

    def test_other_version_is_said(self):
        """A release heapscope was not checked on (a copy of the executable
        whose version says go1.20): read by DWARF names, with a warning;
        without DWARF, refused by name."""
        src = hslib.go_core("go_goroutines", "kernel")
        exe_path = os.path.realpath(os.path.join(hslib.CORES, "go_goroutines"))
        with open(exe_path, "rb") as f:
            exe = f.read()
        d = "/tmp/hsgor%d" % os.getpid()
        d += "v" * (len(exe_path) - len(d) - len("/go_goroutines"))
        os.makedirs(d, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="hs-gor-")
        try:
            other = d + "/go_goroutines"
            with open(other, "wb") as f:
                f.write(exe.replace(b"go1.19.", b"go1.20."))
            with open(src, "rb") as f:
                core = f.read()
            self.assertIn(exe_path.encode(), core)
            dst = os.path.join(tmp, "other.core")
            with open(dst, "wb") as f:
                f.write(core.replace(exe_path.encode(), other.encode()))
            doc = hslib.run_json([dst, "goroutines"], timeout=60)
            r = hslib.run(["--no-debuginfo", dst, "goroutines"], timeout=60)
        finally:
            shutil.rmtree(d, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertEqual(doc["go_version"], "go1.20.8")
        self.assertIn("go1.20.8 is not a Go release heapscope was checked on",
                      " ".join(x["message"] for x in doc["diagnostics"]))
        self.assertEqual(doc["total"], hslib.run_json([src, "goroutines"])["total"])
        self.assertEqual(r.status, 4, r.describe())
        self.assertIn("go1.20.8 without DWARF (--no-debuginfo)", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_same_document_from_the_built_in_layout(self):
        for name in ("go_goroutines", "go124_goroutines"):
            core = hslib.go_core(name, "kernel")
            a = hslib.run_json([core, "goroutines", "--list"], timeout=120)
            b = hslib.run_json(["--no-debuginfo", core, "goroutines", "--list"], timeout=120)
            a.pop("layout"), b.pop("layout")
            self.assertEqual(a, b, name)


class TestGoroutinesHostile(unittest.TestCase):
    """Damaged goroutine structures: findings, never a hang or a crash."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hs-gor-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def copy(self, name, kind, writes):
        src = hslib.go_core(name, kind)
        segs = hslib.load_segments(src)
        with open(src, "rb") as f:
            data = bytearray(f.read())
        for addr, word in writes(lambda a: struct.unpack("<Q", data[hslib.file_offset(segs, a):][:8])[0]):
            off = hslib.file_offset(segs, addr)
            data[off:off + 8] = struct.pack("<Q", word)
        self.n = getattr(self, "n", 0) + 1
        dst = os.path.join(self.tmp, "d%d.core" % self.n)
        with open(dst, "wb") as f:
            f.write(data)
        return dst

    def run_ok(self, core):
        r = hslib.json_result([core, "goroutines", "--list"], timeout=60)
        hslib.check_no_crash(r)
        self.assertEqual(r.status, 0, r.describe())
        return hslib.run_json([core, "goroutines", "--list"], timeout=60)

    def test_sudog_list_that_loops(self):
        # go1.19: g.waiting at 328, sudog.waitlink at 64 (go-runtime.md).
        doc = hslib.run_json([hslib.go_core("go_goroutines", "gdb"), "goroutines", "--list"])
        g = next(g for g in doc["goroutines"] if g["function"] == "main.selectForever")

        def writes(read):
            sg = read(g["address"] + 328)
            return [(sg + 64, sg)]
        d = self.run_ok(self.copy("go_goroutines", "gdb", writes))
        self.assertIn("loops", " ".join(x["message"] for x in d["diagnostics"]))
        got = next(x for x in d["goroutines"] if x["goid"] == g["goid"])
        self.assertEqual(len(got["channels"]), 1)

    def test_frames_that_point_anywhere(self):
        doc = hslib.run_json([hslib.go_core("go_goroutines", "gdb"), "goroutines", "--list"])
        gs = [g for g in doc["goroutines"] if g["function"] == "main.waitForever"][:4]

        def writes(read):
            # sched.sp at 56, sched.pc at 64: off the stack, at its top, at
            # a return address slot that holds itself, a pc in no function.
            return [(gs[0]["address"] + 56, 0x1000), (gs[1]["address"] + 56, gs[1]["stack_hi"] - 8),
                    (gs[2]["address"] + 64, 0x10), (gs[3]["address"] + 56, gs[3]["stack_lo"])]
        d = self.run_ok(self.copy("go_goroutines", "gdb", writes))
        cut = {x["goid"]: x["stack_cut"] for x in d["goroutines"]}
        for g in gs:
            self.assertIsNotNone(cut[g["goid"]], g["goid"])
        self.assertEqual(sum(1 for x in d["goroutines"] if x["stack_cut"]), 4)

    def test_absurd_allgs(self):
        import subprocess
        nm = subprocess.run(["nm", os.path.join(hslib.CORES, "go_goroutines")], stdout=subprocess.PIPE,
                            text=True).stdout
        allgs = int(re.search(r"^([0-9a-f]+) . runtime\.allgs$", nm, re.M).group(1), 16)
        for writes, want in (([(allgs + 8, 1 << 40), (allgs + 16, 1 << 40)], "not a list heapscope can believe"),
                             ([(allgs, 0x1000)], "is not in the core")):
            dst = self.copy("go_goroutines", "gdb", lambda read: writes)
            r = hslib.run([dst, "goroutines"], timeout=60)
            hslib.check_no_crash(r)
            self.assertEqual(r.status, 4, r.describe())
            self.assertIn(want, r.stderr)
            self.assertEqual(r.stdout, "")

    def test_random_damage_to_g_structs(self):
        import random
        src = hslib.go_core("go_goroutines", "kernel")
        doc = hslib.run_json([src, "goroutines", "--list"])
        gaddrs = [g["address"] for g in doc["goroutines"]]
        rng = random.Random(4)
        for round_ in range(10):
            def writes(read):
                return [(rng.choice(gaddrs) + 8 * rng.randrange(392 // 8),
                         rng.choice((0, 1, 0x1000, 1 << 40, rng.getrandbits(64), 0xc000000000 + 8 * rng.randrange(1 << 16))))
                        for _ in range(rng.choice((1, 8, 64)))]
            dst = self.copy("go_goroutines", "kernel", writes)
            r = hslib.run(["--json", dst, "goroutines", "--list"], timeout=60)
            hslib.check_no_crash(r)
            self.assertIn(r.status, (0, 4), r.describe())
            self.assertTrue(r.stdout.endswith("}\n"), r.describe())


class TestGoroutinesGdbTwin(unittest.TestCase):
    """GDB's `hs goroutines` prints what the CLI prints."""

    def twin(self, name):
        import gdbutil
        gdbutil.need_build()
        core = hslib.go_core(name, "gdb")
        exe = os.path.join(hslib.CORES, name)
        tmp = tempfile.mkdtemp(prefix="hs-gor-gdb-")
        try:
            args = gdbutil.batch_args(tmp) + ["-ex", "file " + exe, "-ex", "core-file " + core]
            for tag, cmd in (("text", "hs goroutines"), ("json", "hs --json goroutines --list")):
                args += ["-ex", "python _hs_case(%r, %r)" % (tag, cmd)]
            s = gdbutil.run_batch(args, 300)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        s.check_alive(self)
        self.assertEqual(s.ok("text").strip(), gdbutil.cli(core, "goroutines").stdout.strip())
        got, want = s.json("json"), gdbutil.cli_json(core, "goroutines", "--list")
        self.assertEqual(got, want, gdbutil.doc_diff(got, want)[0])

    def test_go_1_19(self):
        self.twin("go_goroutines")

    def test_go_1_24(self):
        self.twin("go124_goroutines")


if __name__ == "__main__":
    import gdbutil
    sys.exit(gdbutil.main(sys.modules[__name__], gdbutil.Scratch("hs-gor-")))
