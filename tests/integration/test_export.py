"""export, diff, report, --progress and debuginfod (issue 16), on real cores.

Fixtures: leaks (cores/make-leak-cores.sh) and grow (cores/make-grow-cores.sh:
two cores of one process, at dump_one() and dump_two(), with the truth of what
grew in between; grow.stripped and grow.debug for debuginfod).
"""
import glob
import json
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request
import zlib

import hslib

GO = shutil.which("go")
CHROMIUM = shutil.which("chromium")
DEBUGINFOD = shutil.which("debuginfod")


def grow_core(which, kind):
    """grow.one/two.KIND.core (kernel: SkipTest when this machine makes none)."""
    if kind == "kernel":
        skipped = os.path.join(hslib.CORES, "kernel-cores.skipped")
        if os.path.exists(skipped):
            raise unittest.SkipTest("no kernel cores: " + open(skipped).read().strip())
    path = os.path.join(hslib.CORES, "grow.%s.%s.core" % (which, kind))
    if not os.path.exists(path):
        raise AssertionError("%s is missing (run BUILD=%s cores/make-grow-cores.sh)"
                             % (path, os.environ.get("BUILD", "build")))
    return path


def grow_truth(kind):
    name = "grow.kernel.truth.json" if kind == "kernel" else "grow.truth.json"
    with open(os.path.join(hslib.CORES, name)) as f:
        return json.load(f)


def run_ok(args, **kw):
    r = hslib.run(args, **kw)
    hslib.check_no_crash(r)
    if r.status != 0:
        raise AssertionError(r.describe())
    return r


def folded(core):
    """{stack: bytes} of `export --format folded`, checking every line's shape."""
    r = run_ok([core, "export", "--format", "folded"])
    stacks = {}
    for line in r.stdout.splitlines():
        stack, _, num = line.rpartition(" ")
        if not stack or not num.isdigit():
            raise AssertionError("bad folded line %r" % line)
        if stack in stacks:
            raise AssertionError("stack %r twice" % stack)
        stacks[stack] = int(num)
    return stacks


def totals(core):
    doc = hslib.run_json([core, "summary", "--leaks"])
    return doc["in_use"], doc["leaked"]


class Tmp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hs-export-")
        self.addCleanup(shutil.rmtree, self.tmp, True)


class FoldedCase(Tmp):
    def check_sums(self, core):
        stacks = folded(core)
        in_use, leaked = totals(core)
        self.assertEqual(sum(stacks.values()), in_use["bytes"])
        self.assertEqual(sum(v for k, v in stacks.items() if k.split(";")[0] == "[leaked]"), leaked["bytes"])
        return stacks

    def test_folded_sums_leaks_gdb(self):
        self.check_frames_leaks("gdb")

    def test_folded_sums_leaks_kernel(self):
        self.check_frames_leaks("kernel")

    def check_frames_leaks(self, kind):
        core = hslib.core("leaks", kind)
        truth = hslib.truth("leaks", kind)["leaks"]
        stacks = self.check_sums(core)
        objs = truth["objects"]
        # Every leaked truth object is under [leaked]; they are all that is.
        self.assertEqual(sum(v for k, v in stacks.items() if k.startswith("[leaked]")),
                         sum(o["size"] for o in objs if o["leaked"]))
        # g_chain -> a -> b -> target: one frame "node" (equal frames fold).
        chain = sum(o["size"] for o in objs if o["label"].startswith("chain "))
        self.assertEqual(stacks.get("globals;g_chain;node"), chain, sorted(stacks))
        # TLS of main: thread TID;TLS;tls_obj.
        self.assertTrue(any(k.startswith("thread ") and k.endswith(";TLS;tls_obj") for k in stacks), sorted(stacks))
        tids = {t["tid"] for t in hslib.truth("leaks", kind)["threads"]}
        held = [k for k in stacks if k.split(";")[1:2] == ["hold_on_stack"]]
        self.assertTrue(held, sorted(stacks))
        self.assertTrue(all(int(k.split(";")[0].split()[1]) in tids for k in held), held)

    def test_folded_grow_owners_exact(self):
        for kind in ("gdb", "kernel"):
            with self.subTest(kind=kind):
                try:
                    core = grow_core("two", kind)
                except unittest.SkipTest:
                    continue
                t = grow_truth(kind)
                stacks = self.check_sums(core)
                self.assertEqual(stacks["globals;g_items;item"], t["two"]["item"] * t["sizes"]["item"])
                self.assertEqual(stacks["globals;g_records;record"], t["two"]["record"] * t["sizes"]["record"])
                self.assertEqual(stacks["globals;g_bigs;big"], t["two"]["big"] * t["sizes"]["big"])
                # 100 alternating owners: stacks stop at 64 frames, the rest under [deeper].
                alt = {k: v for k, v in stacks.items() if k.startswith("globals;g_alt;")}
                self.assertEqual(sum(alt.values()), t["alt"]["pairs"] * (t["alt"]["alt_a"] + t["alt"]["alt_b"]))
                self.assertEqual(max(len(k.split(";")) for k in stacks), 64)
                deepest = [k for k in alt if len(k.split(";")) == 64]
                self.assertEqual(len(deepest), 1)
                self.assertTrue(deepest[0].endswith(";alt_b;alt_a;[deeper]"), deepest[0][-60:])
                self.assertEqual(len(alt), 62)       # depths 3..64, one stack each

    def test_folded_to_file_is_stdout(self):
        core = grow_core("two", "gdb")
        out = os.path.join(self.tmp, "heap.folded")
        r = run_ok([core, "export", "--format", "folded", "-o", out])
        self.assertIn("wrote " + out, r.stdout)
        with open(out) as f:
            self.assertEqual(f.read(), run_ok([core, "export", "--format", "folded"]).stdout)
        self.assertEqual(os.listdir(self.tmp), ["heap.folded"])   # no temporary file left

    def test_export_usage(self):
        core = grow_core("two", "gdb")
        for args in ([core, "export"], [core, "export", "--format", "svg"],
                     ["--json", core, "export", "--format", "folded"]):
            r = hslib.run(args)
            self.assertEqual(r.status, 2, r.describe())
            self.assertIn("export", r.stderr)

    def test_output_is_never_renamed_over_a_device_or_a_pipe(self):
        """-o names a device, a FIFO or a link: a device or a FIFO is written in
        place, never replaced by a renamed file (root running `-o /dev/null` once
        made /dev/null a regular file); a link's file is replaced, the link stays.
        The devices are made here (mknod: CI runs as root), never the machine's."""
        core = grow_core("two", "gdb")
        want = run_ok([core, "export", "--format", "folded"]).stdout
        null, full = os.path.join(self.tmp, "null"), os.path.join(self.tmp, "full")
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        for cmd in (["export", "--format", "folded"], ["export", "--format", "pprof"], ["report"],
                    ["report", "--html"]):
            r = run_ok([core] + cmd + ["-o", null])
            self.assertIn("wrote " + null, r.stdout)
            self.assertTrue(stat.S_ISCHR(os.lstat(null).st_mode), "%s: %s is no longer a device" % (cmd, null))
            r = hslib.run([core] + cmd + ["-o", full])
            self.assertEqual((r.status, r.stderr.strip()),
                             (4, "heapscope: cannot write %s: No space left on device" % full), r.describe())
            self.assertTrue(stat.S_ISCHR(os.lstat(full).st_mode), "%s: %s is no longer a device" % (cmd, full))
        self.assertEqual(sorted(os.listdir(self.tmp)), ["full", "null"])   # no temporary file left
        # A FIFO: its reader gets the whole profile.
        fifo = os.path.join(self.tmp, "pipe")
        os.mkfifo(fifo)
        got = []
        reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
        reader.start()
        run_ok([core, "export", "--format", "folded", "-o", fifo])
        reader.join(60)
        self.assertEqual(got, [want])
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        # A link to a file: the file gets the profile, the link stays a link.
        real, link = os.path.join(self.tmp, "real.folded"), os.path.join(self.tmp, "link.folded")
        with open(real, "w") as f:
            f.write("old")
        os.symlink("real.folded", link)
        run_ok([core, "export", "--format", "folded", "-o", link])
        self.assertEqual(os.readlink(link), "real.folded")
        with open(real) as f:
            self.assertEqual(f.read(), want)
        self.assertEqual(sorted(os.listdir(self.tmp)), ["full", "link.folded", "null", "pipe", "real.folded"])
        r = hslib.run([core, "export", "--format", "folded", "-o", self.tmp])
        self.assertEqual((r.status, r.stderr.strip()),
                         (2, "heapscope: %s is a directory; -o takes a file name" % self.tmp), r.describe())
        r = hslib.run([core, "report", "-o", ""])
        self.assertEqual((r.status, r.stderr.strip()),
                         (2, "heapscope: -o takes a file name, not an empty one"), r.describe())

    def test_export_unwritable(self):
        core = grow_core("two", "gdb")
        r = hslib.run([core, "export", "--format", "folded", "-o", "/nonexistent-dir/x.folded"])
        self.assertNotEqual(r.status, 0)
        self.assertIn("/nonexistent-dir/x.folded", r.stderr)
        hslib.check_no_crash(r)


def pprof_raw(path, home):
    env = dict(os.environ, HOME=home, PPROF_TMPDIR=home)
    p = subprocess.run([GO, "tool", "pprof", "-raw", path], capture_output=True, text=True, env=env, timeout=120)
    if p.returncode != 0:
        raise AssertionError("go tool pprof -raw failed: %s" % p.stderr)
    lines = p.stdout.splitlines()
    samples, locations = [], {}
    section = None
    for i, line in enumerate(lines):
        if line in ("Samples:", "Locations", "Mappings"):
            section = line
            continue
        if section == "Samples:" and ":" in line and line.strip()[0].isdigit():
            values, _, locs = line.partition(":")
            samples.append(([int(v) for v in values.split()], [int(x) for x in locs.split()]))
        elif section == "Locations" and line.strip() and line.strip()[0].isdigit():
            num, _, rest = line.strip().partition(": ")
            # "0x0 M=1 NAME :0 s=0()"
            name = rest.split(" M=1 ", 1)[1].rsplit(" :0 ", 1)[0]
            locations[int(num)] = name
    return p.stdout, samples, locations


class PprofCase(Tmp):
    def setUp(self):
        super().setUp()
        if not GO:
            raise AssertionError("go is not installed (scripts/deps.sh check installs golang-go)")

    def check(self, core):
        out = os.path.join(self.tmp, "heap.pb.gz")
        run_ok([core, "export", "--format", "pprof", "-o", out])
        with open(out, "rb") as f:
            data = f.read()
        self.assertEqual(data[:2], b"\x1f\x8b")       # gzip
        text, samples, locations = pprof_raw(out, self.tmp)
        self.assertIn("inuse_objects/count inuse_space/bytes[dflt] leaked_objects/count leaked_space/bytes", text)
        in_use, leaked = totals(core)
        sums = [sum(s[0][k] for s in samples) for k in range(4)]
        self.assertEqual(sums, [in_use["count"], in_use["bytes"], leaked["count"], leaked["bytes"]])
        # The same stacks as folded (root first there, leaf first in pprof).
        stacks = {}
        for values, locs in samples:
            stacks[";".join(locations[x] for x in reversed(locs))] = values[1]
        self.assertEqual(stacks, folded(core))
        # stdout gives the same bytes.
        r = subprocess.run([hslib.HEAPSCOPE, core, "export", "--format", "pprof"], capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout, data)
        return stacks

    def test_pprof_leaks_gdb(self):
        stacks = self.check(hslib.core("leaks", "gdb"))
        self.assertIn("globals;g_chain;node", stacks)
        self.assertTrue(any(k.startswith("[leaked]") for k in stacks))

    def test_pprof_grow_kernel(self):
        self.check(grow_core("two", "kernel"))

    def test_pprof_grow_gdb_top(self):
        core = grow_core("two", "gdb")
        t = grow_truth("gdb")
        stacks = self.check(core)
        self.assertEqual(stacks["globals;g_items;item"], t["two"]["item"] * t["sizes"]["item"])
        out = os.path.join(self.tmp, "heap.pb.gz")
        env = dict(os.environ, HOME=self.tmp, PPROF_TMPDIR=self.tmp)
        p = subprocess.run([GO, "tool", "pprof", "-top", "-nodefraction=0", out], capture_output=True, text=True,
                           env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Type: inuse_space", p.stdout)
        # g_items holds nothing itself (flat 0) and all its items (cum).
        self.assertRegex(p.stdout, r"\n\s*0\s+0%%\s+\S+\s+%dB\s+[\d.]+%%\s+g_items\n"
                         % (t["two"]["item"] * t["sizes"]["item"]))

    def test_export_json_summary(self):
        core = grow_core("two", "gdb")
        out = os.path.join(self.tmp, "heap.pb.gz")
        doc = hslib.run_json([core, "export", "--format", "pprof", "-o", out])
        in_use, leaked = totals(core)
        self.assertEqual(doc["command"], "export")
        self.assertEqual(doc["file"], out)
        self.assertEqual(doc["in_use"], in_use)
        self.assertEqual(doc["leaked"], leaked)
        self.assertTrue(os.path.getsize(out) > 0)


def without_zero(groups):
    return sorted((g["type"] or "", g["size"], g["count_delta"], g["bytes_delta"]) for g in groups)


class DiffCase(Tmp):
    def check(self, kind):
        new, old = grow_core("two", kind), grow_core("one", kind)
        t = grow_truth(kind)
        doc = hslib.run_json([new, "diff", old])
        self.assertEqual(doc["command"], "diff")
        self.assertEqual(doc["groups"], t["groups"])           # exact, and sorted by growth
        self.assertEqual(doc["leaked"], t["leaked"])
        self.assertEqual(doc["in_use"], t["in_use"])
        self.assertEqual(doc["owners"], t["owners"])
        self.assertEqual(doc["maps"], [])                       # the grow fixture has no containers
        self.assertEqual(doc["new_build_id"], doc["old_build_id"])
        # The other way round: every delta negated.
        back = hslib.run_json([old, "diff", new])
        self.assertEqual(without_zero(back["groups"]),
                         without_zero([dict(g, count_delta=-g["count_delta"], bytes_delta=-g["bytes_delta"])
                                       for g in t["groups"]]))
        # Text: the same numbers.
        r = run_ok([new, "diff", old])
        self.assertIn("in use  %+d allocations, %+d bytes" % (t["in_use"]["count_delta"], t["in_use"]["bytes_delta"]),
                      r.stdout)
        self.assertRegex(r.stdout, r"\+200\s+%d\s+\+%d\s+item\n" % (t["sizes"]["item"], 200 * t["sizes"]["item"]))
        self.assertRegex(r.stdout, r"\+200\s+\+%d\s+globals;g_items\n" % (200 * t["sizes"]["item"]))

    def test_diff_gdb(self):
        self.check("gdb")

    def test_diff_kernel(self):
        self.check("kernel")

    def test_diff_same_core_is_empty(self):
        core = grow_core("two", "gdb")
        doc = hslib.run_json([core, "diff", core])
        self.assertEqual(doc["groups"], [])
        self.assertEqual(doc["owners"], [])
        self.assertEqual(doc["maps"], [])
        self.assertEqual(doc["in_use"], {"count_delta": 0, "bytes_delta": 0})

    def folded_owners(self, core):
        """Bytes per owner from export's folded stacks (the full dominator
        tree): an owner is a stack's root frames, two for a global or a
        thread ("globals;g_x", "thread 42;main"), else one ("[leaked]")."""
        out = os.path.join(self.tmp, "f.txt")
        run_ok([core, "export", "--format", "folded", "-o", out])
        owners = {}
        with open(out) as f:
            for line in f:
                stack, size = line.rstrip("\n").rsplit(" ", 1)
                frames = stack.split(";")
                k = 2 if frames[0] == "globals" or frames[0].startswith("thread ") else 1
                key = ";".join(frames[:k])
                owners[key] = owners.get(key, 0) + int(size)
        return owners

    def test_diff_owners_are_the_dominator_trees(self):
        # diff finds owners from the top level of the dominator tree alone;
        # export builds the whole tree.  On cores with globals, threads,
        # leaked clusters pointing into the live graph, pools and containers,
        # diff against another program's core must give export's owner
        # bytes, the other core's subtracted.
        base = grow_core("one", "gdb")
        theirs = self.folded_owners(base)
        for name, kind in (("leaks", "gdb"), ("leaks", "kernel"), ("leaks_cpp", "gdb"), ("maps_cpp", "kernel"),
                           ("pools", "gdb"), ("threads", "gdb"), ("glibc_heap", "kernel")):
            core = hslib.core(name, kind)
            ours = self.folded_owners(core)
            want = {k: ours.get(k, 0) - theirs.get(k, 0) for k in set(ours) | set(theirs)}
            want = {k: v for k, v in want.items() if v}
            doc = hslib.run_json([core, "diff", "--force", base])
            got = {o["owner"]: o["bytes_delta"] for o in doc["owners"] if o["bytes_delta"]}
            self.assertEqual(got, want, "%s %s" % (name, kind))

    def test_diff_maps(self):
        # Per-map growth: the containers fixture against a core without any
        # (another program, so --force): every map grows by its whole count
        # and retained bytes, as the fixture's truth and `maps` say; the
        # other way round, it shrinks by as much.
        new, old = hslib.core("maps_cpp", "gdb"), grow_core("one", "gdb")
        doc = hslib.run_json([new, "diff", "--force", old])
        got = {m["map"]: (m["count_delta"], m["bytes_delta"]) for m in doc["maps"]}
        truth = hslib.truth("maps_cpp", "gdb")
        for t in truth["containers"]:
            if t["anchor"] and not t["anchor"].startswith("thread "):
                self.assertEqual(got[t["anchor"]], (t["count"], t["retained"]), t["anchor"])
        want = {}
        for m in hslib.run_json([new, "maps"])["containers"]:
            key = m["anchor"] if m["anchor"] else "(leaked) " + m["kind"]
            c, b = want.get(key, (0, 0))
            want[key] = (c + m["count"], b + m["retained"])
        self.assertEqual(got, {k: v for k, v in want.items() if v != (0, 0)})
        self.assertEqual([m["bytes_delta"] for m in doc["maps"]],
                         sorted((m["bytes_delta"] for m in doc["maps"]), reverse=True))
        back = hslib.run_json([old, "diff", "--force", new])
        self.assertEqual({m["map"]: (-m["count_delta"], -m["bytes_delta"]) for m in back["maps"]}, got)
        text = run_ok([new, "diff", "--force", old]).stdout
        sessions = truth["containers"][0]
        self.assertRegex(text, r"\+%d\s+\+%d\s+g_sessions\n" % (sessions["count"], sessions["retained"]))

    def test_diff_other_program_refused(self):
        new, other = grow_core("two", "gdb"), hslib.core("leaks", "gdb")
        r = hslib.run([new, "diff", other])
        self.assertEqual(r.status, 2, r.describe())
        self.assertIn("different programs", r.stderr)
        doc = hslib.run_json([new, "diff", "--force", other])
        self.assertTrue(any("DIFFERENT PROGRAMS" in d["message"] for d in doc["diagnostics"]))

    def test_diff_usage(self):
        core = grow_core("two", "gdb")
        r = hslib.run([core, "diff"])
        self.assertEqual(r.status, 2, r.describe())
        # An older core that cannot be read: status 3, as for the newer one
        # (not 4, the heap's).
        for bad in ("/nonexistent.core", "/dev/null", __file__):
            r = hslib.run([core, "diff", bad])
            hslib.check_no_crash(r)
            self.assertEqual(r.status, 3, r.describe())
            self.assertIn(bad, r.stderr)
            r = hslib.run([bad, "summary"])
            self.assertEqual(r.status, 3, r.describe())


def png_is_not_blank(path, testcase):
    """Decode the PNG's IDAT stream (zlib) and check it has real content."""
    with open(path, "rb") as f:
        data = f.read()
    testcase.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
    pos, idat = 8, b""
    width = height = 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    testcase.assertGreater(width, 500)
    testcase.assertGreater(height, 500)
    # A blank page compresses to a few distinct bytes; a rendered report has
    # text, tables and coloured bars.
    testcase.assertGreater(len(set(raw)), 100)


class ReportCase(Tmp):
    def test_report_text(self):
        core = hslib.core("leaks", "gdb")
        r = run_ok([core, "report"])
        for section in ("Process", "Where the memory went", "Allocator", "Top owners (", "Top retainers (",
                        "Leak suspects"):
            self.assertIn("\n" + section, r.stdout)
        self.assertIn("globals > g_big", r.stdout)

    def test_report_json(self):
        core = hslib.core("leaks", "gdb")
        doc = hslib.run_json([core, "report"])
        in_use, leaked = totals(core)
        self.assertEqual(doc["in_use"], in_use)
        self.assertEqual(doc["leaked"], leaked)
        self.assertEqual(sum(s["bytes"] for s in doc["leak_suspects"]), leaked["bytes"])
        self.assertEqual(doc["owners"][0]["owner"], "globals;g_big")
        for s in doc["leak_suspects"]:
            self.assertTrue(s["chain"])
            self.assertEqual(s["chain"][-1]["size"], s["size"])

    def test_report_maps_and_pools(self):
        # The biggest maps and the pools: the top of what `maps` and `pools` say.
        core = hslib.core("maps_cpp", "gdb")
        doc = hslib.run_json([core, "report"])
        maps = hslib.run_json([core, "maps"])["containers"]
        self.assertEqual(doc["maps_total"], len(maps))
        want = sorted(maps, key=lambda m: (-m["retained"], m["address"]))[:5]
        self.assertEqual([(m["address"], m["retained"], m["count"], m["anchor"]) for m in doc["maps"]],
                         [(m["address"], m["retained"], m["count"], m["anchor"]) for m in want])
        text = run_ok([core, "report"]).stdout
        self.assertIn("\nBiggest maps (%d containers" % len(maps), text)
        self.assertIn("g_sessions  std::unordered_map<std::string, Session*>", text)
        # The report's diagnostics (the fixture's corrupt containers) are said once.
        self.assertEqual(text.count("\nDiagnostics ("), 1, text)
        core = hslib.core("pools", "gdb")
        doc = hslib.run_json([core, "report"])
        pools = hslib.run_json([core, "pools"])["pools"]
        self.assertEqual(doc["pools_total"], len(pools))
        self.assertTrue(pools)
        want = sorted(pools, key=lambda p: (-p["bytes"], p["anchor_address"]))[:5]
        self.assertEqual([(p["anchor"], p["thread"], p["count"], p["bytes"], p["polluted"]) for p in doc["pools"]],
                         [(p["anchor"], p["thread"], p["count"], p["bytes"], p["polluted"]) for p in want])
        self.assertEqual(doc["maps"], [])
        text = run_ok([core, "report"]).stdout
        self.assertIn("\nPools (%d;" % len(pools), text)

    def test_report_html_chromium(self):
        if not CHROMIUM:
            raise AssertionError("chromium is not installed (scripts/deps.sh check installs it)")
        # A hostile core name: the page must show it escaped.
        hostile = os.path.join(self.tmp, "<b>x&y'\"<b>.core")
        os.symlink(hslib.core("leaks", "gdb"), hostile)
        page = os.path.join(self.tmp, "report.html")
        r = run_ok([hostile, "report", "--html", "-o", page])
        self.assertIn("wrote", r.stdout)
        with open(page) as f:
            html = f.read()
        self.assertNotIn("<b>x&y", html)
        self.assertIn("&lt;b&gt;x&amp;y&#39;&quot;&lt;b&gt;.core", html)
        for needle in ("http://", "https://", "<script", "<link", "@import"):
            self.assertNotIn(needle, html)
        self.assertIn("@media print", html)
        profile = os.path.join(self.tmp, "chromium-profile")
        os.mkdir(profile)
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--user-data-dir=" + profile]
        url = "file://" + page
        dom = subprocess.run([CHROMIUM] + flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        for needle in ('id="process"', 'id="memory"', 'id="allocator"', 'id="owners"', 'id="leaks"',
                       'id="diagnostics"', 'id="maps"', "Leak suspects", "g_big", "tnode", "<svg", "<rect"):
            self.assertIn(needle, dom.stdout)
        png = os.path.join(self.tmp, "report.png")
        shot = subprocess.run([CHROMIUM] + flags + ["--window-size=1100,2400", "--screenshot=" + png, url],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(shot.returncode, 0, shot.stderr[-2000:])
        png_is_not_blank(png, self)
        pdf = os.path.join(self.tmp, "report.pdf")
        printed = subprocess.run([CHROMIUM] + flags + ["--print-to-pdf=" + pdf, "--no-pdf-header-footer", url],
                                 capture_output=True, text=True, timeout=120)
        self.assertEqual(printed.returncode, 0, printed.stderr[-2000:])
        with open(pdf, "rb") as f:
            self.assertEqual(f.read(5), b"%PDF-")


class ProgressCase(unittest.TestCase):
    def test_progress_on_stderr_only(self):
        core = grow_core("two", "gdb")
        plain = hslib.run(["--json", core, "report"])
        forced = hslib.run(["--json", "--progress", core, "report"])
        self.assertEqual(plain.status, 0, plain.describe())
        self.assertEqual(forced.status, 0, forced.describe())
        self.assertEqual(forced.stdout, plain.stdout)
        self.assertNotIn("heapscope:", plain.stderr)     # stderr is not a terminal here
        for stage in ("walk", "scan", "dominators", "ownership"):
            self.assertIn("heapscope: %s...\n" % stage, forced.stderr)
            self.assertRegex(forced.stderr, r"heapscope: %s done \([\d.]+ s\)\n" % stage)
        quiet = hslib.run(["--json", "--progress", "--quiet", core, "report"])
        self.assertNotIn("heapscope: walk", quiet.stderr)


class DebuginfodCase(Tmp):
    def test_debuginfod_fetches_debug_info(self):
        if not DEBUGINFOD:
            raise AssertionError("debuginfod is not installed (scripts/deps.sh check installs it)")
        stripped = os.path.join(hslib.CORES, "grow.stripped")
        debug = os.path.join(hslib.CORES, "grow.debug")
        core = os.path.join(hslib.CORES, "grow.stripped.two.gdb.core")
        for p in (stripped, debug, core):
            if not os.path.exists(p):
                raise AssertionError("%s is missing (run cores/make-grow-cores.sh)" % p)
        build_id = hslib.run_json([core, "info"])["modules"]
        main = [m for m in build_id if m["main"]][0]
        self.assertFalse(main["debuginfo_found"])      # no DWARF without the server
        before = hslib.run_json([core, "histogram"])
        self.assertTrue(all(g["type"] is None for g in before["groups"]))
        serve = os.path.join(self.tmp, "serve")
        os.mkdir(serve)
        shutil.copy(debug, serve)
        port = hslib.free_port()
        log = open(os.path.join(self.tmp, "debuginfod.log"), "w")
        server = subprocess.Popen([DEBUGINFOD, "-F", "-p", str(port), "-d", os.path.join(self.tmp, "db.sqlite"),
                                   "-t", "0", "-g", "0", serve], stdout=log, stderr=subprocess.STDOUT)
        try:
            url = "http://127.0.0.1:%d" % port
            ready = False
            for _ in range(300):    # until it has indexed grow.debug (bounded: 30 s)
                try:
                    with urllib.request.urlopen("%s/buildid/%s/debuginfo" % (url, main["build_id"]), timeout=5) as u:
                        ready = u.status == 200
                except OSError:
                    pass
                if ready:
                    break
                time.sleep(0.1)
            self.assertTrue(ready, "debuginfod did not serve %s" % main["build_id"])
            cache = os.path.join(self.tmp, "cache")
            env = dict(os.environ, DEBUGINFOD_URLS=url, DEBUGINFOD_CACHE_PATH=cache, DEBUGINFOD_TIMEOUT="30")
            p = subprocess.run([hslib.HEAPSCOPE, "--json", core, "histogram"], capture_output=True, text=True,
                               env=env, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            fetched = os.path.join(cache, main["build_id"], "debuginfo")
            self.assertTrue(os.path.exists(fetched), glob.glob(cache + "/*/*"))
            with open(fetched, "rb") as a, open(debug, "rb") as b:
                self.assertEqual(a.read(), b.read())
            # Types are exact now: DWARF gives them by the typed globals.
            t = grow_truth("gdb")
            groups = {(g["type"], g["size"]): g["count"] for g in json.loads(p.stdout)["groups"]}
            self.assertEqual(groups[("item", t["sizes"]["item"])], t["two"]["item"])
            self.assertEqual(groups[("record", t["sizes"]["record"])], t["two"]["record"])
            self.assertEqual(groups[("big", t["sizes"]["big"])], t["two"]["big"])
            info = subprocess.run([hslib.HEAPSCOPE, "--json", core, "info"], capture_output=True, text=True,
                                  env=env, timeout=120)
            mod = [m for m in json.loads(info.stdout)["modules"] if m["main"]][0]
            self.assertTrue(mod["debuginfo_found"])
            self.assertEqual(mod["debuginfo_path"], fetched)
            # --no-debuginfo asks nobody.
            cache2 = os.path.join(self.tmp, "cache2")
            env2 = dict(env, DEBUGINFOD_CACHE_PATH=cache2)
            p = subprocess.run([hslib.HEAPSCOPE, "--no-debuginfo", "--json", core, "histogram"], capture_output=True,
                               text=True, env=env2, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertFalse(os.path.exists(os.path.join(cache2, main["build_id"])))
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
