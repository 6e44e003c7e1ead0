"""target - which target GDB has (a core file or a live process), and one cached
library session per inferior.

A session is opened on first use and kept until GDB says the target may have
changed: the inferior ran (cont), exited, called a function (inferior_call),
had its memory or registers written (memory_changed, register_changed), or its
objfiles changed (new_objfile, clear_objfiles).  The cache key also holds the core path or pid
and the session options, so a different target or setting never reuses a
session.  All of this runs on GDB's main thread only.
"""
import os
import re
import struct

import gdb

from . import lib as hslib
from . import params


class Target:
    """What to open: kind "core" (path) or "live" (pid), and the executable."""

    def __init__(self, kind, inferior, path=None, pid=0, exe=None):
        self.kind = kind
        self.inferior = inferior
        self.path = path
        self.pid = pid
        self.exe = exe
        self.facts = core_facts(path) if kind == "core" else None

    def identity(self):
        return (self.kind, self.path, self.pid, self.exe)

    def describe(self):
        return self.path if self.kind == "core" else "process %d" % self.pid


def _core_path():
    """The core GDB has open: GDB 13 has no API for it, `info target` says it."""
    text = gdb.execute("info target", to_string=True)
    m = re.search(r"Local core dump file:\s*\n\s*`(.*)', file type", text)
    if m:
        return m.group(1)
    return None


def current():
    """The Target of the selected inferior; gdb.GdbError when there is none."""
    inf = gdb.selected_inferior()
    conn = getattr(inf, "connection", None)
    kind = conn.type if conn is not None else None
    exe = inf.progspace.filename if inf.progspace is not None else None
    if kind == "core":
        path = _core_path()
        if not path:
            raise gdb.GdbError("heapscope: GDB has a core open but `info target` does not name its file")
        if not os.path.exists(path):
            raise gdb.GdbError("heapscope: the core file %s is gone" % path)
        return Target("core", inf, path=os.path.abspath(path), exe=exe)
    if kind == "native" and inf.pid > 0:
        return Target("live", inf, pid=inf.pid, exe=exe)
    if kind in ("remote", "extended-remote"):
        raise gdb.GdbError("heapscope: %s targets are not supported: the library reads a core file or "
                           "/proc/PID/mem on this machine; write a core with `gcore` and open it, "
                           "or attach GDB locally" % kind)
    raise gdb.GdbError("heapscope: no core file and no live process: open a core (`core-file CORE`), "
                       "`run` the program, or `attach PID`")


class CoreFacts:
    """What the extension itself reads from a core's ELF headers (a few KiB):
    the bytes of PT_LOAD contents beyond the end of the file (the CLI exits 3
    on a truncated core; GDB gets an error after the partial results), and the
    files the core says were mapped (NT_FILE)."""

    def __init__(self, path):
        self.missing_bytes = 0
        self.mapped_files = set()
        try:
            with open(path, "rb") as f:
                self._read(f, os.fstat(f.fileno()).st_size)
        except (OSError, struct.error, ValueError):
            pass

    def _read(self, f, size):
        ehdr = f.read(64)
        if len(ehdr) < 64 or ehdr[:4] != b"\x7fELF" or ehdr[4] != 2 or ehdr[5] != 1:
            return
        e_phoff, = struct.unpack_from("<Q", ehdr, 32)
        e_phentsize, e_phnum = struct.unpack_from("<HH", ehdr, 54)
        if e_phentsize < 56 or e_phnum == 0:
            return
        f.seek(e_phoff)
        table = f.read(e_phentsize * e_phnum)
        notes = []
        for i in range(len(table) // e_phentsize):
            p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from(
                "<IIQQQQ", table, i * e_phentsize)
            if p_type == 1 and p_filesz and p_offset + p_filesz > size:
                self.missing_bytes += p_offset + p_filesz - max(p_offset, size)
            elif p_type == 4 and p_filesz <= 64 << 20:
                notes.append((p_offset, p_filesz))
        for offset, length in notes:
            f.seek(offset)
            self._notes(f.read(length))

    def _notes(self, data):
        pos = 0
        while pos + 12 <= len(data):
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            pos += 12 + ((namesz + 3) & ~3)
            desc = data[pos:pos + descsz]
            pos += (descsz + 3) & ~3
            if ntype == 0x46494c45 and len(desc) >= 16:     # NT_FILE
                count, = struct.unpack_from("<Q", desc, 0)
                names = desc[16 + 24 * count:].split(b"\0")
                self.mapped_files.update(os.fsdecode(n) for n in names[:count] if n)


_facts = {}


def core_facts(path):
    """CoreFacts of path, read again only when the file changes."""
    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns, st.st_ino)
    except OSError:
        return CoreFacts(path)
    if key not in _facts:
        _facts.clear()
        _facts[key] = CoreFacts(path)
    return _facts[key]


def _gdb_param(name):
    try:
        return gdb.parameter(name)
    except (gdb.error, RuntimeError):
        return None


def session_options(target, overrides):
    """The options a session is opened with: settings, then per-command options."""
    debug_dirs = []
    gdb_dirs = _gdb_param("debug-file-directory") or ""
    debug_dirs += [d for d in gdb_dirs.split(os.pathsep) if d]
    debug_dirs += [d for d in (params.get("debug-directories") or "").split(os.pathsep) if d]
    sysroot = params.get("sysroot") or None
    if not sysroot:
        gdb_sysroot = _gdb_param("sysroot") or ""
        # "target:" (the default) and "" mean the local file system.
        if gdb_sysroot and not gdb_sysroot.startswith("target:") and os.path.isdir(gdb_sysroot):
            sysroot = gdb_sysroot
    exe = None
    if target.kind == "core" and target.exe:
        # GDB's executable, unless the core names that very file already (then
        # the library finds it as the CLI does, and the results are the same).
        if os.path.realpath(target.exe) not in target.facts.mapped_files:
            exe = target.exe
    o = {
        "exe": exe,
        "sysroot": sysroot,
        "debug_dirs": tuple(debug_dirs),
        "no_debuginfo": not params.get("debuginfo"),
        "allocator": None if params.get("allocator") == "auto" else params.get("allocator"),
        "jobs": params.get("jobs") or 0,
        "exact_pointers": bool(params.get("exact-pointers")),
        "overrides": params.get("overrides") or None,
        "pools": tuple((params.get("pools") or "").split()),
        "no_pool_detection": not params.get("pool-detection"),
    }
    for key, value in overrides.items():
        if key == "debug_dirs":
            o["debug_dirs"] = o["debug_dirs"] + tuple(value)
        elif key == "overrides":
            o["overrides"] = ",".join(x for x in (o["overrides"], value) if x)
        elif key == "pools":
            o["pools"] = o["pools"] + tuple(value)
        else:
            o[key] = value
    return o


class Entry:
    def __init__(self, key, handle, target):
        self.key = key
        self.handle = handle
        self.target = target
        self.missing_bytes = target.facts.missing_bytes if target.facts else 0


class Cache:
    """One open library session per inferior number."""

    def __init__(self):
        self.library = None
        self.entries = {}

    def lib(self):
        if self.library is None:
            try:
                self.library = hslib.load()
            except hslib.LoadError as e:
                raise gdb.GdbError("heapscope: %s" % e)
        return self.library

    def drop(self, inferior_num=None):
        """Forget the session of one inferior, or of all."""
        nums = list(self.entries) if inferior_num is None else [inferior_num]
        for n in nums:
            e = self.entries.pop(n, None)
            if e is not None and self.library is not None:
                self.library.destroy(e.handle)

    def drop_live(self):
        for n in [n for n, e in self.entries.items() if e.target.kind == "live"]:
            self.drop(n)

    def session(self, target, overrides):
        """The cached session for target with these options, or a new one."""
        opts = session_options(target, overrides)
        key = (target.identity(), tuple(sorted(opts.items())))
        num = target.inferior.num
        e = self.entries.get(num)
        if e is not None and e.key == key:
            return e
        self.drop(num)
        library = self.lib()
        if target.kind == "live":
            _check_stopped(target.inferior)
        copts, keep = hslib.make_options(**opts)
        try:
            if target.kind == "core":
                handle = library.open_core(target.path, copts)
            else:
                handle = library.open_pid(target.pid, copts)
        except hslib.LibraryError as err:
            raise gdb.GdbError("heapscope: cannot open %s: %s" % (target.describe(), err.message))
        del keep
        e = Entry(key, handle, target)
        if target.kind == "live":
            try:
                _feed_registers(library, handle, target.inferior)
            except BaseException:
                library.destroy(handle)
                raise
        self.entries[num] = e
        return e


def _check_stopped(inf):
    for th in inf.threads():
        if th.is_valid() and th.is_running():
            raise gdb.GdbError("heapscope: thread %d of process %d is running: stop every thread "
                               "first (`interrupt -a` in non-stop mode)" % (th.num, inf.pid))


def _register_value(frame, name):
    try:
        v = frame.read_register(name)
    except (gdb.error, ValueError):
        return 0
    try:
        return int(v) & 0xffffffffffffffff
    except (gdb.error, TypeError, ValueError):
        try:
            return int(v.cast(gdb.lookup_type("long"))) & 0xffffffffffffffff
        except (gdb.error, TypeError, ValueError):
            return 0


def _feed_registers(library, handle, inf):
    """Give the library every thread's registers as GDB sees them, and put the
    selected thread and frame back afterwards."""
    selected_thread = gdb.selected_thread()
    try:
        selected_frame = gdb.selected_frame()
    except gdb.error:
        selected_frame = None
    try:
        for th in inf.threads():
            if not th.is_valid():
                continue
            th.switch()
            frame = gdb.newest_frame()
            regs = [_register_value(frame, name) for name in hslib.REGISTER_NAMES]
            tid = th.ptid[1] or th.ptid[0]
            try:
                library.set_thread_regs(handle, tid, regs)
            except hslib.LibraryError as err:
                # A thread GDB knows and /proc does not (it just exited): its
                # registers cannot be roots any more.
                if err.code != hslib.HS_ERR_NOT_FOUND:
                    raise gdb.GdbError("heapscope: thread %d: %s" % (tid, err.message))
    finally:
        if selected_thread is not None and selected_thread.is_valid():
            selected_thread.switch()
            if selected_frame is not None and selected_frame.is_valid():
                try:
                    selected_frame.select()
                except gdb.error:
                    pass


CACHE = Cache()


def _on_cont(event):
    # Any resume of a live process invalidates what was read from it.
    CACHE.drop_live()


def _on_exited(event):
    inf = getattr(event, "inferior", None)
    CACHE.drop(inf.num if inf is not None else None)


def _on_objfiles(event):
    CACHE.drop()


def _on_memory_or_call(event):
    # The selected inferior's memory or registers changed (a write, a function
    # called in it): read it again next time.
    CACHE.drop(gdb.selected_inferior().num)


def _on_inferior_deleted(event):
    CACHE.drop(event.inferior.num)


def _on_exiting(event):
    CACHE.drop()


def connect_events():
    ev = gdb.events
    ev.cont.connect(_on_cont)
    ev.exited.connect(_on_exited)
    ev.new_objfile.connect(_on_objfiles)
    ev.clear_objfiles.connect(_on_objfiles)
    ev.memory_changed.connect(_on_memory_or_call)
    ev.inferior_call.connect(_on_memory_or_call)
    ev.register_changed.connect(_on_memory_or_call)
    for name, fn in (("inferior_deleted", _on_inferior_deleted), ("gdb_exiting", _on_exiting)):
        if hasattr(ev, name):
            getattr(ev, name).connect(fn)
