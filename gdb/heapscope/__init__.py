"""heapscope - the GDB extension: heap analysis of the core or live process GDB
has, through libheapscope.so (ctypes).

    source /path/to/gdb/heapscope.py

adds the `heapscope` command (alias `hs`) and `set/show heapscope` settings.
Modules: lib (the library and every ctypes prototype), params (settings),
target (core or live process, the per-inferior session cache), commands (the
subcommands, made from the library's command table; argument parsing, output).
Nothing here knows a command, an option value, an error code or a register
name: the library's tables (include/heapscope.h, "Facts and tables") say.  register() is idempotent.
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
    # The commands, their options and values come from the library's tables.
    try:
        library = load_library()
    except gdb.GdbError as e:
        library = None
        if check_library:
            # Say at load time what is wrong with the library, not at the first command.
            gdb.write("warning: %s\n" % e, gdb.STDERR)
    params.register(library.allocator_names if library else None)
    commands.register()
    target.connect_events()
    _registered = True
