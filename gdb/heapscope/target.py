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


def _gdb_param(name):
    try:
        return gdb.parameter(name)
    except (gdb.error, RuntimeError):
        return None


def session_options(overrides):
    """The global options a session is opened with, [(name, value)] in order:
    GDB's own settings, then `set heapscope ...`, then the command's options
    (overrides, [(name, value)]).  The library checks every value."""
    o = []
    for d in (_gdb_param("debug-file-directory") or "").split(os.pathsep):
        if d:
            o.append(("--debug-dir", d))
    for d in (params.get("debug-directories") or "").split(os.pathsep):
        if d:
            o.append(("--debug-dir", d))
    sysroot = params.get("sysroot") or None
    if not sysroot:
        gdb_sysroot = _gdb_param("sysroot") or ""
        # "target:" (the default) and "" mean the local file system.
        if gdb_sysroot and not gdb_sysroot.startswith("target:") and os.path.isdir(gdb_sysroot):
            sysroot = gdb_sysroot
    if sysroot:
        o.append(("--sysroot", sysroot))
    if not params.get("debuginfo"):
        o.append(("--no-debuginfo", None))
    allocator = params.get("allocator")
    if allocator and allocator != "auto":
        o.append(("--allocator", allocator))
    if params.get("jobs"):
        o.append(("--jobs", str(params.get("jobs"))))
    if params.get("exact-pointers"):
        o.append(("--exact-pointers", None))
    for item in (params.get("overrides") or "").split(","):
        if item.strip():
            o.append(("--override", item.strip()))
    for spec in (params.get("pools") or "").split():
        o.append(("--pool", spec))
    if params.get("pool-detection") is False:
        o.append(("--no-pool-detection", None))
    return o + list(overrides)


class Entry:
    def __init__(self, key, handle, target, facts):
        self.key = key
        self.handle = handle
        self.target = target
        self.facts = facts              # lib.TargetFacts
        self.missing_bytes = facts.missing_bytes


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
        """The cached session for target with these options ([(name, value)]),
        or a new one."""
        opts = session_options(overrides)
        key = (target.identity(), tuple(opts))
        num = target.inferior.num
        e = self.entries.get(num)
        if e is not None and e.key == key:
            return e
        self.drop(num)
        library = self.lib()
        if target.kind == "live":
            _check_stopped(target.inferior)
        handle = self._open(library, target, opts)
        try:
            facts = library.target_facts(handle)
            if (target.kind == "core" and target.exe and not any(n == "--exe" for n, _ in opts)
                    and os.path.realpath(target.exe) not in facts.files):
                # GDB's executable, unless the core names that very file (then
                # the library finds it as the CLI does, and the results are the same).
                library.destroy(handle)
                handle = None
                handle = self._open(library, target, opts + [("--exe", target.exe)])
                facts = library.target_facts(handle)
            if target.kind == "live":
                _feed_registers(library, handle, target.inferior)
        except hslib.LibraryError as err:
            library.destroy(handle)
            raise gdb.GdbError("heapscope: cannot open %s: %s" % (target.describe(), err.message))
        except BaseException:
            library.destroy(handle)
            raise
        e = Entry(key, handle, target, facts)
        self.entries[num] = e
        return e

    @staticmethod
    def _open(library, target, opts):
        try:
            return library.open(target.kind, target.path if target.kind == "core" else target.pid, opts)
        except hslib.LibraryError as err:
            raise gdb.GdbError("heapscope: cannot open %s: %s" % (target.describe(), err.message))


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
            regs = [_register_value(frame, name) for name in library.register_names]
            tid = th.ptid[1] or th.ptid[0]
            try:
                library.set_thread_regs(handle, tid, regs)
            except hslib.LibraryError as err:
                # A thread GDB knows and /proc does not (it just exited): its
                # registers cannot be roots any more.
                if err.name != "HS_ERR_NOT_FOUND":
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
