"""hslib - what the integration tests share: the CLI, the fixture cores, their truth.

The fixture cores come from cores/make-cores.sh (make check runs it first):
$BUILD/cores/NAME.gdb.core with NAME.truth.json, and NAME.kernel.core with
NAME.kernel.truth.json.  The CLI is $BUILD/heapscope.  A missing CLI or a
missing core, gdb's or the kernel's, is a failure (something is not built, or
the machine cannot make kernel cores: cores/lib.sh says how to fix it).
"""
import glob
import json
import os
import re
import socket
import struct
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
HEAPSCOPE = os.path.join(BUILD, "heapscope")
CORES = os.path.realpath(os.path.join(BUILD, "cores"))
KINDS = ("gdb", "kernel")
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"

# Words a sanitizer, a crash or a Python front end would leave on stderr.
CRASH_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
               "runtime error:", "Traceback", "Segmentation fault", "core dumped")


class Result:
    def __init__(self, args, proc):
        self.args = args
        self.status = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def describe(self):
        return "heapscope %s: exit %s\nstderr: %s\nstdout: %s" % (
            " ".join(self.args), self.status, self.stderr.strip()[:2000], self.stdout[:1000])


def run(args, timeout=120):
    """Run the CLI with args; a timeout is a test failure, not a hang."""
    if not os.access(HEAPSCOPE, os.X_OK):
        raise AssertionError("%s is not built (run make)" % HEAPSCOPE)
    try:
        proc = subprocess.run([HEAPSCOPE] + list(args), capture_output=True, text=True,
                              timeout=timeout, errors="replace")
    except subprocess.TimeoutExpired:
        raise AssertionError("heapscope %s did not finish within %d s" % (" ".join(args), timeout))
    return Result(args, proc)


_cache = {}


def run_json(args, timeout=120, expect_status=0):
    """Run the CLI with --json prepended; return the parsed document (cached)."""
    key = (tuple(args), timeout)
    if key not in _cache:
        _cache[key] = run(["--json"] + list(args), timeout)
    r = _cache[key]
    if expect_status is not None and r.status != expect_status:
        raise AssertionError("expected exit %d\n%s" % (expect_status, r.describe()))
    check_no_crash(r)
    try:
        doc = json.loads(r.stdout)
    except ValueError as e:
        raise AssertionError("stdout is not one JSON document (%s)\n%s" % (e, r.describe()))
    if doc.get("schema") != 1:
        raise AssertionError("the document has no \"schema\": 1\n%s" % r.describe())
    return doc


def json_result(args, timeout=120):
    """The Result of the cached run_json(args, timeout) run (its stderr)."""
    run_json(args, timeout, expect_status=None)
    return _cache[(tuple(args), timeout)]


def check_no_crash(r):
    for mark in CRASH_MARKS:
        if mark in r.stderr:
            raise AssertionError("stderr shows a crash (%r)\n%s" % (mark, r.describe()))


def core(name, kind):
    """Path of a fixture core; a missing one is a failure (gdb and kernel alike)."""
    path = os.path.join(CORES, "%s.%s.core" % (name, kind))
    if not os.path.exists(path):
        raise AssertionError("%s is missing (run BUILD=%s cores/make-cores.sh)"
                             % (path, os.environ.get("BUILD", "build")))
    return path


def glibc_fixtures():
    """The fixtures cores/make-cores.sh builds: cores/*.c that include truth.h."""
    names = []
    for path in sorted(glob.glob(os.path.join(ROOT, "cores", "*.c"))):
        with open(path) as f:
            text = f.read()
        if '#include "truth.h"' in text or '#include "corrupt_common.h"' in text:
            names.append(os.path.basename(path)[:-2])
    return names


def truth(name, kind):
    suffix = ".kernel.truth.json" if kind == "kernel" else ".truth.json"
    with open(os.path.join(CORES, name + suffix)) as f:
        return json.load(f)


def libc_build_id():
    """The build-id of the installed libc, as readelf -n prints it."""
    out = subprocess.run(["readelf", "-n", LIBC], capture_output=True, text=True).stdout
    m = re.search(r"Build ID:\s*([0-9a-fA-F]+)", out)
    if not m:
        raise AssertionError("readelf -n %s printed no build-id" % LIBC)
    return m.group(1).lower()


def hexes(text):
    return [int(h, 16) for h in re.findall(r"0x[0-9a-fA-F]+", text)]


def one_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return len(lines) == 1


def raw_program_headers(f):
    """The ELF header (64 bytes, a bytearray) of the open file f and its program
    headers as (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz,
    p_align) tuples."""
    f.seek(0)
    eh = bytearray(f.read(64))
    phoff, = struct.unpack_from("<Q", eh, 32)
    phentsize, phnum = struct.unpack_from("<HH", eh, 54)
    f.seek(phoff)
    ph = f.read(phentsize * phnum)
    return eh, [struct.unpack_from("<IIQQQQQQ", ph, i * phentsize) for i in range(phnum)]


def program_headers(path):
    """[(p_type, offset, vaddr, filesz, memsz)] of every program header of an
    ELF file (a core: notes and loads)."""
    with open(path, "rb") as f:
        _eh, rows = raw_program_headers(f)
    return [(p_type, off, vaddr, filesz, memsz)
            for p_type, _flags, off, vaddr, _pa, filesz, memsz, _al in rows]


def load_segments(path):
    """[(vaddr, memsz, offset, filesz)] of a core's PT_LOAD headers (for tests
    that corrupt a copy of a core at an address)."""
    return [(vaddr, memsz, off, filesz)
            for p_type, off, vaddr, filesz, memsz in program_headers(path) if p_type == 1]


def free_port():
    """A local TCP port nobody listens on (just now)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def file_offset(segs, addr):
    for vaddr, _memsz, off, filesz in segs:
        if vaddr <= addr < vaddr + filesz:
            return off + addr - vaddr
    raise AssertionError("0x%x is not dumped in the core" % addr)


# The Go releases the Go fixtures are built with: "" (Debian 12's go1.19)
# and go1.21-1.24 (cores/make-go-cores.sh names them go12N_...).
GO_VERSIONS = ("", "121", "122", "123", "124")


def go_core(name, kind):
    """core(), with what to run when a Go fixture core is missing."""
    try:
        return core(name, kind)
    except AssertionError:
        raise AssertionError("%s.%s.core is missing (run make cores, or BUILD=%s cores/make-go-cores.sh)"
                             % (name, kind, os.path.relpath(BUILD, ROOT)))
