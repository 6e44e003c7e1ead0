"""lib - libheapscope.so through ctypes: finding it, checking its ABI, and every
prototype of include/heapscope.h in one place.

Nothing else in the extension touches ctypes function objects: the rest of the
package calls the small wrappers at the end of this file, which turn a
struct hs_error * into a LibraryError and release it.
"""
import ctypes
import ctypes.util
import os

# Must equal HEAPSCOPE_ABI in include/heapscope.h.
ABI = 1

# enum hs_error_code
HS_OK = 0
HS_ERR_NOMEM = 1
HS_ERR_OS = 2
HS_ERR_USAGE = 3
HS_ERR_TARGET = 4
HS_ERR_PERMISSION = 5
HS_ERR_NOT_DUMPED = 6
HS_ERR_UNMAPPED = 7
HS_ERR_NOT_FOUND = 8
HS_ERR_HEAP = 9
HS_ERR_INTERRUPTED = 10
HS_ERR_OTHER = 11

# enum hs_format
FORMAT_TEXT = 0
FORMAT_JSON = 1

# The number of words in struct user_regs_struct on x86-64, in its order.
REGISTER_NAMES = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
                  "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
                  "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs")

ENV_VAR = "HEAPSCOPE_LIB"


class LibraryError(Exception):
    """A struct hs_error from the library: code and message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class LoadError(Exception):
    """libheapscope.so is missing, cannot be loaded, or has another ABI."""


class hs_options(ctypes.Structure):
    _fields_ = [
        ("exe", ctypes.c_char_p),
        ("sysroot", ctypes.c_char_p),
        ("debug_dirs", ctypes.POINTER(ctypes.c_char_p)),
        ("no_debuginfo", ctypes.c_int),
        ("allocator", ctypes.c_char_p),
        ("jobs", ctypes.c_int),
        ("exact_pointers", ctypes.c_int),
        ("overrides", ctypes.c_char_p),
        ("pools", ctypes.POINTER(ctypes.c_char_p)),
        ("no_pool_detection", ctypes.c_int),
    ]


# typedef int (*hs_write_fn)(void *ctx, const char *buf, size_t len);
# buf is not NUL-terminated: take it as a plain pointer and copy len bytes.
WRITE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)

_PROTOTYPES = (
    # name, restype, argtypes
    ("hs_error_code", ctypes.c_int, [ctypes.c_void_p]),
    ("hs_error_message", ctypes.c_char_p, [ctypes.c_void_p]),
    ("hs_error_destroy", None, [ctypes.c_void_p]),
    ("hs_session_open_core", ctypes.c_void_p,
     [ctypes.c_char_p, ctypes.POINTER(hs_options), ctypes.POINTER(ctypes.c_void_p)]),
    ("hs_session_open_pid", ctypes.c_void_p,
     [ctypes.c_int, ctypes.POINTER(hs_options), ctypes.POINTER(ctypes.c_void_p)]),
    ("hs_session_destroy", None, [ctypes.c_void_p]),
    ("hs_session_set_thread_regs", ctypes.c_void_p,
     [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_uint64), ctypes.c_size_t]),
    ("hs_session_run", ctypes.c_void_p,
     [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
      WRITE_FN, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]),
    ("hs_interrupt", None, []),
    ("hs_interrupt_clear", None, []),
    ("hs_version", ctypes.c_char_p, []),
    ("hs_abi", ctypes.c_int, []),
)


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def candidates():
    """Where libheapscope.so is looked for, in order (also shown when none loads)."""
    pkg = _package_dir()
    out = []
    env = os.environ.get(ENV_VAR)
    if env:
        out.append(env)
    # A source checkout: gdb/heapscope/ -> build/libheapscope.so.
    build = os.environ.get("BUILD", "build")
    out.append(os.path.normpath(os.path.join(pkg, "..", "..", build, "libheapscope.so")))
    if build != "build":
        out.append(os.path.normpath(os.path.join(pkg, "..", "..", "build", "libheapscope.so")))
    # make install: $(PREFIX)/share/heapscope/gdb/heapscope/ -> $(PREFIX)/lib.
    prefix = os.path.normpath(os.path.join(pkg, "..", "..", "..", ".."))
    out.append(os.path.join(prefix, "lib", "libheapscope.so.1"))
    out.append(os.path.join(prefix, "lib", "libheapscope.so"))
    found = ctypes.util.find_library("heapscope")
    if found:
        out.append(found)
    return out


def _declare(dll):
    missing = []
    for name, restype, argtypes in _PROTOTYPES:
        try:
            fn = getattr(dll, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    return missing


def load():
    """Load the first usable library; LoadError says what was tried and why not."""
    tried = []
    for path in candidates():
        # Bare names (find_library) go to the dynamic loader's search path.
        if os.sep in path and not os.path.exists(path):
            tried.append("%s: not there" % path)
            continue
        try:
            dll = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s: %s" % (path, e))
            continue
        if not hasattr(dll, "hs_abi"):
            tried.append("%s: not a libheapscope (no hs_abi)" % path)
            continue
        dll.hs_abi.restype = ctypes.c_int
        dll.hs_abi.argtypes = []
        abi = dll.hs_abi()
        if abi != ABI:
            dll.hs_version.restype = ctypes.c_char_p
            version = dll.hs_version().decode(errors="replace") if hasattr(dll, "hs_version") else "?"
            raise LoadError(
                "%s (heapscope %s) has ABI %d, but this GDB extension needs ABI %d: "
                "use the extension installed with that library (or rebuild: make all), "
                "or point %s at a matching libheapscope.so" % (path, version, abi, ABI, ENV_VAR))
        missing = _declare(dll)
        if missing:
            raise LoadError("%s lacks %s: rebuild it (make all)" % (path, ", ".join(missing)))
        return Library(dll, path)
    raise LoadError("libheapscope.so was not found; build it (make all), install it "
                    "(make install), or set %s=/path/to/libheapscope.so before sourcing. Tried:\n  %s"
                    % (ENV_VAR, "\n  ".join(tried)))


class Library:
    """The loaded library, with Python-level wrappers."""

    def __init__(self, dll, path):
        self.dll = dll
        self.path = path
        self.version = dll.hs_version().decode(errors="replace")

    def _check(self, err):
        """Raise LibraryError for a non-NULL struct hs_error *, releasing it."""
        if not err:
            return
        code = self.dll.hs_error_code(err)
        msg = self.dll.hs_error_message(err)
        self.dll.hs_error_destroy(err)
        raise LibraryError(code, msg.decode(errors="replace") if msg else "error %d" % code)

    def open_core(self, path, opts):
        handle = ctypes.c_void_p()
        self._check(self.dll.hs_session_open_core(os.fsencode(path), ctypes.byref(opts),
                                                  ctypes.byref(handle)))
        return handle.value

    def open_pid(self, pid, opts):
        handle = ctypes.c_void_p()
        self._check(self.dll.hs_session_open_pid(int(pid), ctypes.byref(opts),
                                                 ctypes.byref(handle)))
        return handle.value

    def destroy(self, session):
        if session:
            self.dll.hs_session_destroy(session)

    def set_thread_regs(self, session, tid, regs):
        arr = (ctypes.c_uint64 * len(regs))(*[r & 0xffffffffffffffff for r in regs])
        self._check(self.dll.hs_session_set_thread_regs(session, int(tid), arr, len(regs)))

    def run(self, session, argv, fmt, write):
        """Run one command; write(bytes) -> bool (True stops).  Returns the status.

        Called from any thread: ctypes drops the GIL for the call and takes it
        again for each write callback."""
        def callback(_ctx, buf, length):
            try:
                return 1 if write(ctypes.string_at(buf, length)) else 0
            except BaseException:    # never let an exception unwind through C
                return 1
        cb = WRITE_FN(callback)
        encoded = [os.fsencode(a) for a in argv]
        arr = (ctypes.c_char_p * (len(encoded) + 1))(*encoded, None)
        status = ctypes.c_int(0)
        self._check(self.dll.hs_session_run(session, len(encoded), arr, fmt, cb, None,
                                            ctypes.byref(status)))
        return status.value

    def interrupt(self):
        self.dll.hs_interrupt()

    def interrupt_clear(self):
        self.dll.hs_interrupt_clear()


def make_options(exe=None, sysroot=None, debug_dirs=(), no_debuginfo=False, allocator=None,
                 jobs=0, exact_pointers=False, overrides=None, pools=(), no_pool_detection=False):
    """A struct hs_options and the buffers it points into (keep both alive while
    the session opens; the library copies what it keeps)."""
    keep = []

    def cstr(s):
        if s is None or s == "":
            return None
        b = os.fsencode(s)
        keep.append(b)
        return b

    opts = hs_options()
    opts.exe = cstr(exe)
    opts.sysroot = cstr(sysroot)
    dirs = [os.fsencode(d) for d in debug_dirs if d]
    arr = (ctypes.c_char_p * (len(dirs) + 1))(*dirs, None)
    keep.append(dirs)
    keep.append(arr)
    opts.debug_dirs = ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p))
    opts.no_debuginfo = 1 if no_debuginfo else 0
    opts.allocator = cstr(allocator)
    opts.jobs = int(jobs or 0)
    opts.exact_pointers = 1 if exact_pointers else 0
    opts.overrides = cstr(overrides)
    specs = [os.fsencode(p) for p in pools if p]
    parr = (ctypes.c_char_p * (len(specs) + 1))(*specs, None)
    keep.append(specs)
    keep.append(parr)
    opts.pools = ctypes.cast(parr, ctypes.POINTER(ctypes.c_char_p))
    opts.no_pool_detection = 1 if no_pool_detection else 0
    return opts, keep
