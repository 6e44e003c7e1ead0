"""heapscope.py - load the heapscope GDB extension:

    (gdb) source /usr/local/share/heapscope/gdb/heapscope.py

or that line in ~/.config/gdb/gdbinit.  The package gdb/heapscope/ sits next
to this file; libheapscope.so is taken from $HEAPSCOPE_LIB, else build/ of a
source checkout, else the install prefix's lib/, else the dynamic loader's
search (docs/gdb.md).  Sourcing twice is harmless.
"""
import os
import sys

_here = os.path.dirname(os.path.abspath(os.path.realpath(__file__)))
if _here not in sys.path:
    sys.path.insert(0, _here)

# No __pycache__ in the source tree or the install prefix (often read-only).
_write_bytecode = sys.dont_write_bytecode
sys.dont_write_bytecode = True
try:
    import heapscope  # noqa: E402  (the package beside this file)
finally:
    sys.dont_write_bytecode = _write_bytecode

heapscope.register()
