"""`info --json` on the 4-thread fixture against its truth (issue 2, item 10)."""
import json
import os
import struct
import subprocess
import tempfile
import unittest

import hslib


class InfoCase:
    kind = None

    def setUp(self):
        self.core = hslib.core("threads", self.kind)
        self.truth = hslib.truth("threads", self.kind)

    def info(self, *opts):
        return hslib.run_json(list(opts) + [self.core, "info"])

    def libc(self, doc):
        libcs = [m for m in doc["modules"]
                 if os.path.basename(m.get("path") or m.get("name") or "") == "libc.so.6"]
        self.assertEqual(len(libcs), 1, "libc.so.6 among modules: %s"
                         % [m.get("path") for m in doc["modules"]])
        return libcs[0]

    def test_command_and_target(self):
        doc = self.info()
        self.assertEqual(doc["command"], "info")
        t = doc["target"]
        self.assertEqual(t["kind"], "core")
        self.assertEqual(t["size"], os.path.getsize(self.core))
        self.assertIs(t["truncated"], False)
        self.assertEqual(t["missing_bytes"], 0)

    def test_process(self):
        p = self.info()["process"]
        self.assertEqual(p["pid"], self.truth["pid"])
        # The kernel's prpsinfo keeps 80 bytes of the command line: a prefix is right.
        truth_file = "threads.kernel.truth.json" if self.kind == "kernel" else "threads.truth.json"
        want = "%s %s" % (os.path.join(hslib.CORES, "threads"), os.path.join(hslib.CORES, truth_file))
        if self.kind == "kernel":
            want += " abort"
        got = p["command_line"]
        self.assertTrue(got and want.startswith(got.rstrip()) and len(got.rstrip()) >= min(len(want), 79),
                        "command_line %r, the fixture ran %r" % (got, want))
        # abort() -> SIGABRT; gdb's core records the breakpoint's SIGTRAP.
        self.assertEqual(p["signal"], 6 if self.kind == "kernel" else 5)

    def test_thread_ids(self):
        doc = self.info()
        got = sorted(t["tid"] for t in doc["threads"])
        want = sorted(t["tid"] for t in self.truth["threads"])
        self.assertEqual(len(want), 4)
        self.assertEqual(got, want)

    def test_stack_ranges(self):
        doc = self.info()
        by_tid = {t["tid"]: t for t in doc["threads"]}
        for tt in self.truth["threads"]:
            t = by_tid.get(tt["tid"])
            self.assertIsNotNone(t, "thread %d not listed" % tt["tid"])
            st = t["stack"]
            self.assertLessEqual(st["start"], tt["stack_local"],
                                 "thread %d: stack %#x-%#x misses its local %#x"
                                 % (tt["tid"], st["start"], st["end"], tt["stack_local"]))
            self.assertLess(tt["stack_local"], st["end"])
            self.assertEqual(st["end"], tt["stack_mapping"][1],
                             "thread %d: stack end %#x, /proc/self/maps says %#x"
                             % (tt["tid"], st["end"], tt["stack_mapping"][1]))
            self.assertGreaterEqual(st["start"], tt["stack_mapping"][0])
            self.assertEqual(st["size"], st["end"] - st["start"])
            self.assertTrue(st["start"] <= t["sp"] < st["end"], "sp outside the stack")

    def test_stack_mappings_categorised(self):
        doc = self.info()
        for tt in self.truth["threads"]:
            maps = [m for m in doc["mappings"] if m["start"] <= tt["stack_local"] < m["end"]]
            self.assertEqual(len(maps), 1, "mappings holding thread %d's stack" % tt["tid"])
            self.assertEqual(maps[0]["category"], "stack")

    def test_category_totals(self):
        doc = self.info()
        tot = {}
        for m in doc["mappings"]:
            c = tot.setdefault(m["category"], [0, 0])
            c[0] += 1
            c[1] += m["end"] - m["start"]
        got = {c["category"]: [c["count"], c["bytes"]] for c in doc["categories"]}
        self.assertEqual(got, tot)

    def test_libc_build_id(self):
        libc = self.libc(self.info())
        self.assertEqual(libc["build_id"], hslib.libc_build_id())
        self.assertIs(libc["elf_found"], True)
        self.assertIs(libc["build_id_mismatch"], False)

    def test_libc_debuginfo_found(self):
        libc = self.libc(self.info())
        self.assertIs(libc["debuginfo_found"], True)
        self.assertTrue(libc["debuginfo_path"], "debuginfo_path is empty")

    def test_libc_no_debuginfo(self):
        libc = self.libc(self.info("--no-debuginfo"))
        self.assertIs(libc["debuginfo_found"], False)
        self.assertIsNone(libc["debuginfo_path"])
        self.assertEqual(libc["build_id"], hslib.libc_build_id())

    def test_debuginfod_only_with_urls(self):
        # Every module with a file has its debug info here; the vDSO has a
        # build ID but neither a file nor a debug link.  Without
        # DEBUGINFOD_URLS libdebuginfod can answer nothing, and libdw is not
        # to load it (with libcurl, gnutls, krb5...) for the vDSO.
        for m in self.info()["modules"]:
            if m.get("path"):
                self.assertIs(m["debuginfo_found"], True, m)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEBUGINFOD_")}
        env["LD_DEBUG"] = "files"

        def loaded(env):
            r = subprocess.run([hslib.HEAPSCOPE, self.core, "summary"], env=env, capture_output=True,
                               text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            return "libdebuginfod" in r.stderr
        self.assertFalse(loaded(env))
        # A server named (nobody listens on the port): the vDSO is asked of it.
        with tempfile.TemporaryDirectory() as cache:
            self.assertTrue(loaded(dict(env, DEBUGINFOD_URLS="http://127.0.0.1:%d" % hslib.free_port(),
                                        DEBUGINFOD_CACHE_PATH=cache, DEBUGINFOD_TIMEOUT="10")))

    def test_text_output(self):
        r = hslib.run([self.core, "info"])
        self.assertEqual(r.status, 0, r.describe())
        hslib.check_no_crash(r)
        for tt in self.truth["threads"]:
            self.assertIn(str(tt["tid"]), r.stdout)


class MappedElfCase:
    """cores/mapped_elf.c maps its libc.so.6 and its executable whole, as libdwfl
    maps what it reads, where libdwfl would report them as modules (the core
    holds them, nothing overlaps): only the loaded objects are modules."""
    kind = None

    def test_loaded_objects_only(self):
        core = hslib.core("mapped_elf", self.kind)
        mods = hslib.run_json([core, "info"])["modules"]
        names = [os.path.basename(m.get("path") or m.get("name") or "") for m in mods]
        self.assertEqual(names.count("libc.so.6"), 1, names)
        self.assertEqual(names.count("mapped_elf"), 1, names)
        self.assertEqual([n for n, m in zip(names, mods) if m["main"]], ["mapped_elf"])
        self.assertIn("ld-linux-x86-64.so.2", names)
        self.assertEqual(hslib.run_json([core, "summary"])["allocator"], "glibc")

    def test_allocator_words_are_not_an_allocator(self):
        # Its .rodata names tcmalloc and jemalloc as heapscope's does (their
        # message words, no version string, no code): glibc alone, no error,
        # with and without debug info.
        core = hslib.core("mapped_elf", self.kind)
        for extra in ([], ["--no-debuginfo"]):
            r = hslib.run(["--json"] + extra + [core, "summary"])
            self.assertEqual(r.status, 0, r.describe())
            out = json.loads(r.stdout)
            self.assertEqual(out["allocator"], "glibc")
            self.assertEqual([d for d in out.get("diagnostics", []) if d["level"] != "info"], [], extra)

    def test_damaged_link_map(self):
        # The list loops, or leads off the core: it is not used, every ELF
        # image stays a module (the copy of libc.so.6 too), and nothing hangs.
        core = hslib.core("mapped_elf", self.kind)
        notes = hslib.truth("mapped_elf", self.kind)["notes"]
        r_map = int([n for n in notes if n.startswith("r_map ")][0].split()[1], 16)
        at = hslib.file_offset(hslib.load_segments(core), r_map + 24)     # its first entry's l_next
        with open(core, "rb") as f:
            data = f.read()
        with tempfile.TemporaryDirectory() as tmp:
            for value in (r_map, 0x10):
                bad = bytearray(data)
                struct.pack_into("<Q", bad, at, value)
                path = os.path.join(tmp, "damaged.core")
                with open(path, "wb") as f:
                    f.write(bad)
                r = hslib.run(["--json", path, "info"])
                self.assertEqual(r.status, 0, r.describe())
                hslib.check_no_crash(r)
                names = [os.path.basename(m.get("path") or m.get("name") or "")
                         for m in json.loads(r.stdout)["modules"]]
                self.assertEqual(names.count("libc.so.6"), 2, (hex(value), names))


def elf_sections(path):
    """[(name, flags, size)] of an ELF64 little-endian file's sections."""
    with open(path, "rb") as f:
        data = f.read()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    heads = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = heads[shstrndx][4]
    out = []
    for h in heads:
        end = data.index(b"\0", strtab + h[0])
        out.append((data[strtab + h[0]:end].decode(), h[2], h[5]))
    return out


class DebugCache(unittest.TestCase):
    """libc6-dbg's DWARF is compressed: the first run leaves a copy with it
    inflated (HEAPSCOPE_CACHE_DIR/debug/BUILD-ID.debug, and BUILD-ID.from
    naming the file it was made from), later runs read the copy; the results
    never change, and a copy that is stale, damaged or not there is not used."""

    def run_env(self, env, *args):
        full = dict(os.environ)
        full.pop("HEAPSCOPE_CACHE_DIR", None)
        full.pop("XDG_CACHE_HOME", None)
        full.update(env)
        r = subprocess.run([hslib.HEAPSCOPE, "--json"] + list(args), capture_output=True, text=True,
                           timeout=120, env=full)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def libc(self, doc):
        return [m for m in doc["modules"] if os.path.basename(m.get("path") or "") == "libc.so.6"][0]

    def results(self, env, core):
        return [self.run_env(env, core, *cmd) for cmd in (("summary", "--leaks"), ("histogram",), ("top",))]

    def test_copy_written_then_read(self):
        core = hslib.core("leaks", "gdb")
        with tempfile.TemporaryDirectory() as tmp:
            env = {"HEAPSCOPE_CACHE_DIR": tmp, "HOME": tmp}
            plain = self.results({"HEAPSCOPE_CACHE_DIR": "", "HOME": tmp}, core)
            self.assertEqual(os.listdir(tmp), [], "an empty HEAPSCOPE_CACHE_DIR writes nothing")
            first = self.run_env(env, core, "info")
            libc = self.libc(first)
            orig, bid = libc["debuginfo_path"], libc["build_id"]
            self.assertTrue(orig and os.path.exists(orig), libc)
            self.assertIsNone(libc["debuginfo_copy"], "the run that writes the copy reads the file")
            copy = os.path.join(tmp, "debug", bid + ".debug")
            compressed = {n: size for n, flags, size in elf_sections(orig) if flags & 0x800}
            self.assertIn(".debug_info", compressed, "libc6-dbg's DWARF is compressed")
            plain_secs = {n: (flags, size) for n, flags, size in elf_sections(copy)}
            for name in compressed:
                self.assertFalse(plain_secs[name][0] & 0x800, name)
            self.assertGreater(plain_secs[".debug_info"][1], compressed[".debug_info"])
            with open(os.path.join(tmp, "debug", bid + ".from")) as f:
                self.assertTrue(f.read().rstrip("\n").endswith(" " + orig))
            second = self.libc(self.run_env(env, core, "info"))
            self.assertEqual((second["debuginfo_path"], second["debuginfo_copy"]), (orig, copy))
            self.assertEqual(self.results(env, core), plain)
            text = subprocess.run([hslib.HEAPSCOPE, core, "info"], capture_output=True, text=True, timeout=120,
                                  env=dict(os.environ, HEAPSCOPE_CACHE_DIR=tmp)).stdout
            self.assertIn("read from its copy " + copy, text)

            # Stale (the file it was made from changed): not read, made again.
            side = os.path.join(tmp, "debug", bid + ".from")
            with open(side) as f:
                size, rest = f.read().split(" ", 1)
            with open(side, "w") as f:
                f.write("%d %s" % (int(size) + 1, rest))
            self.assertIsNone(self.libc(self.run_env(env, core, "info"))["debuginfo_copy"])
            self.assertEqual(self.libc(self.run_env(env, core, "info"))["debuginfo_copy"], copy)
            # Damaged (garbage, then another file's build-id): not read, made again.
            for junk in (b"\x7fELF garbage" * 100, open(hslib.HEAPSCOPE, "rb").read()):
                with open(copy, "wb") as f:
                    f.write(junk)
                self.assertIsNone(self.libc(self.run_env(env, core, "info"))["debuginfo_copy"])
                self.assertEqual(self.results(env, core), plain)
                self.assertEqual(self.libc(self.run_env(env, core, "info"))["debuginfo_copy"], copy)
            # Gone: made again.
            os.unlink(copy)
            self.assertEqual(self.results(env, core), plain)
            self.assertEqual(self.libc(self.run_env(env, core, "info"))["debuginfo_copy"], copy)

    def test_default_places_and_no_place(self):
        core = hslib.core("threads", "kernel")
        with tempfile.TemporaryDirectory() as tmp:
            xdg, home = os.path.join(tmp, "xdg"), os.path.join(tmp, "home")
            os.mkdir(home)
            self.run_env({"XDG_CACHE_HOME": xdg, "HOME": home}, core, "summary")
            self.assertTrue(os.listdir(os.path.join(xdg, "heapscope", "debug")))
            self.assertEqual(os.listdir(home), [])
            self.run_env({"HOME": home}, core, "summary")
            self.assertTrue(os.listdir(os.path.join(home, ".cache", "heapscope", "debug")))
            # Nowhere to write: the run is the same, without a copy.
            blocked = os.path.join(tmp, "file")
            open(blocked, "w").close()
            doc = self.run_env({"HEAPSCOPE_CACHE_DIR": os.path.join(blocked, "sub")}, core, "info")
            self.assertIsNone(self.libc(doc)["debuginfo_copy"])


class MappedElfGdbCore(MappedElfCase, unittest.TestCase):
    kind = "gdb"


class MappedElfKernelCore(MappedElfCase, unittest.TestCase):
    kind = "kernel"


class InfoGdbCore(InfoCase, unittest.TestCase):
    kind = "gdb"


class InfoKernelCore(InfoCase, unittest.TestCase):
    kind = "kernel"
