"""heapscope - the GDB extension: heap analysis of the core or live process GDB
has, through libheapscope.so (ctypes).

    source /path/to/gdb/heapscope.py

adds the `heapscope` command (alias `hs`) and `set/show heapscope` settings.
Modules: lib (the library and every ctypes prototype), params (settings),
target (core or live process, the per-inferior session cache), commands (the
command table, argument parsing, output).  register() is idempotent.
"""
import gdb

from . import commands, params, target

__all__ = ["register", "load_library"]

_registered = False


def load_library():
    """The loaded libheapscope (gdb.GdbError if it is missing or another ABI)."""
    return target.CACHE.lib()


def register(check_library=True):
    global _registered
    if _registered:
        return
    params.register()
    commands.register()
    target.connect_events()
    _registered = True
    if check_library:
        # Say at load time what is wrong with the library, not at the first command.
        try:
            load_library()
        except gdb.GdbError as e:
            gdb.write("warning: %s\n" % e, gdb.STDERR)
