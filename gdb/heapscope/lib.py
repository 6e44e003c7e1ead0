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

# enum hs_format (an argument of hs_session_run, like the prototypes below).
FORMAT_TEXT = 0
FORMAT_JSON = 1

ENV_VAR = "HEAPSCOPE_LIB"


class LibraryError(Exception):
    """A struct hs_error from the library: code, its name (HS_ERR_...) and message."""

    def __init__(self, code, name, message):
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message


class LoadError(Exception):
    """libheapscope.so is missing, cannot be loaded, or has another ABI."""


# The structures of include/heapscope.h's facts and tables, field for field.
class hs_option_info(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("kind", ctypes.c_int),
        ("metavar", ctypes.c_char_p),
        ("help", ctypes.c_char_p),
        ("values", ctypes.POINTER(ctypes.c_char_p)),
        ("scope", ctypes.c_char_p),
    ]


class hs_command_info(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("usage", ctypes.c_char_p),
        ("summary", ctypes.c_char_p),
        ("help", ctypes.c_char_p),
        ("example", ctypes.c_char_p),
        ("argument", ctypes.c_char_p),
        ("last", ctypes.c_char_p),
        ("noptions", ctypes.c_size_t),
        ("options", ctypes.POINTER(hs_option_info)),
    ]


class hs_target_facts(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_char_p),
        ("path", ctypes.c_char_p),
        ("pid", ctypes.c_int),
        ("file_size", ctypes.c_uint64),
        ("missing_bytes", ctypes.c_uint64),
        ("truncated", ctypes.c_int),
        ("nthreads", ctypes.c_size_t),
        ("tids", ctypes.POINTER(ctypes.c_int)),
        ("nfiles", ctypes.c_size_t),
        ("files", ctypes.POINTER(ctypes.c_char_p)),
    ]


class hs_error_info(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("meaning", ctypes.c_char_p),
        ("exit_open", ctypes.c_int),
        ("exit_run", ctypes.c_int),
    ]


# enum hs_option_kind -> how the extension reads the value.
OPTION_KINDS = {0: "FLAG", 1: "NUMBER", 2: "CHOICE", 3: "TEXT", 4: "PATH", 5: "ADDRESS"}

# typedef int (*hs_write_fn)(void *ctx, const char *buf, size_t len);
# buf is not NUL-terminated: take it as a plain pointer and copy len bytes.
WRITE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)

_STRINGS = ctypes.POINTER(ctypes.c_char_p)
_SIZE_P = ctypes.POINTER(ctypes.c_size_t)

_PROTOTYPES = (
    # name, restype, argtypes
    ("hs_error_code", ctypes.c_int, [ctypes.c_void_p]),
    ("hs_error_message", ctypes.c_char_p, [ctypes.c_void_p]),
    ("hs_error_destroy", None, [ctypes.c_void_p]),
    ("hs_session_open_core", ctypes.c_void_p,
     [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]),
    ("hs_session_open_pid", ctypes.c_void_p,
     [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]),
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
    ("hs_session_target_facts", ctypes.c_void_p,
     [ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(hs_target_facts))]),
    ("hs_command_table", ctypes.POINTER(hs_command_info), [_SIZE_P]),
    ("hs_global_option_table", ctypes.POINTER(hs_option_info), [_SIZE_P]),
    ("hs_optset_create", ctypes.c_void_p, [ctypes.POINTER(ctypes.c_void_p)]),
    ("hs_optset_set", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]),
    ("hs_optset_options", ctypes.c_void_p, [ctypes.c_void_p]),
    ("hs_optset_destroy", None, [ctypes.c_void_p]),
    ("hs_where_names", _STRINGS, []),
    ("hs_state_names", _STRINGS, []),
    ("hs_allocator_names", _STRINGS, []),
    ("hs_register_names", _STRINGS, []),
    ("hs_error_table", ctypes.POINTER(hs_error_info), [_SIZE_P]),
    ("hs_command_help", ctypes.c_char_p, [ctypes.c_char_p]),
    ("hs_suggest", ctypes.c_char_p, [ctypes.c_char_p, ctypes.c_char_p]),
)


def _text(b):
    return b.decode(errors="replace") if b is not None else None


def _strings(p):
    """A NULL-terminated char ** as a tuple of str."""
    out = []
    i = 0
    while p and p[i] is not None:
        out.append(_text(p[i]))
        i += 1
    return tuple(out)


class Option:
    """One entry of an option table (struct hs_option_info)."""

    def __init__(self, info):
        self.name = _text(info.name)
        self.kind = OPTION_KINDS.get(info.kind, "TEXT")
        self.metavar = _text(info.metavar)
        self.help = _text(info.help) or ""
        self.values = _strings(info.values) if info.values else None
        self.scope = _text(info.scope)

    def takes_value(self):
        return self.kind != "FLAG"


class Command:
    """One command of the library's table (struct hs_command_info)."""

    def __init__(self, info):
        self.name = _text(info.name)
        self.usage = _text(info.usage)
        self.summary = _text(info.summary)
        self.help = _text(info.help) or ""
        self.example = _text(info.example)
        self.argument = _text(info.argument)
        self.last = _text(info.last)
        self.options = {}
        for i in range(info.noptions):
            o = Option(info.options[i])
            self.options[o.name] = o


class TargetFacts:
    """struct hs_target_facts, copied."""

    def __init__(self, f):
        self.kind = _text(f.kind)
        self.path = _text(f.path)
        self.pid = f.pid
        self.file_size = f.file_size
        self.missing_bytes = f.missing_bytes
        self.truncated = bool(f.truncated)
        self.tids = tuple(f.tids[i] for i in range(f.nthreads))
        self.files = tuple(_text(f.files[i]) for i in range(f.nfiles))


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
    """The loaded library, with Python-level wrappers; its tables, read once."""

    def __init__(self, dll, path):
        self.dll = dll
        self.path = path
        self.version = dll.hs_version().decode(errors="replace")
        n = ctypes.c_size_t()
        table = dll.hs_error_table(ctypes.byref(n))
        self.errors = {}            # "HS_ERR_USAGE" -> code
        self.error_names = {}       # code -> "HS_ERR_USAGE"
        for i in range(n.value):
            name = _text(table[i].name)
            self.errors[name] = table[i].code
            self.error_names[table[i].code] = name
        table = dll.hs_command_table(ctypes.byref(n))
        self.commands = [Command(table[i]) for i in range(n.value)]
        table = dll.hs_global_option_table(ctypes.byref(n))
        self.global_options = {}
        for i in range(n.value):
            o = Option(table[i])
            self.global_options[o.name] = o
        self.where_names = _strings(dll.hs_where_names())
        self.state_names = _strings(dll.hs_state_names())
        self.allocator_names = _strings(dll.hs_allocator_names())
        self.register_names = _strings(dll.hs_register_names())

    def command_help(self, name):
        """The command's help: the text of `heapscope help NAME` (None: no such command)."""
        text = self.dll.hs_command_help(name.encode())
        return text.decode(errors="replace") if text is not None else None

    def suggest(self, word, command=None):
        """The name closest to a misspelt word (a command, a global option, or
        an option of command), or None."""
        near = self.dll.hs_suggest(word.encode(), command.encode() if command else None)
        return near.decode() if near is not None else None

    def _check(self, err):
        """Raise LibraryError for a non-NULL struct hs_error *, releasing it."""
        if not err:
            return
        code = self.dll.hs_error_code(err)
        msg = self.dll.hs_error_message(err)
        self.dll.hs_error_destroy(err)
        raise LibraryError(code, self.error_names.get(code, "HS_ERR_OTHER"),
                           msg.decode(errors="replace") if msg else "error %d" % code)

    def open(self, kind, where, options):
        """Open a session on a core (where: its path) or a live process (its pid).
        options: [(name, value or None)] global options of scope "session", in
        order; a bad one raises LibraryError (HS_ERR_USAGE)."""
        optset = ctypes.c_void_p()
        self._check(self.dll.hs_optset_create(ctypes.byref(optset)))
        try:
            for name, value in options:
                self._check(self.dll.hs_optset_set(
                    optset, name.encode(), None if value is None else os.fsencode(value)))
            opts = self.dll.hs_optset_options(optset)
            handle = ctypes.c_void_p()
            if kind == "core":
                self._check(self.dll.hs_session_open_core(os.fsencode(where), opts,
                                                          ctypes.byref(handle)))
            else:
                self._check(self.dll.hs_session_open_pid(int(where), opts, ctypes.byref(handle)))
            return handle.value
        finally:
            self.dll.hs_optset_destroy(optset)

    def check_options(self, options):
        """Raise LibraryError when an option or value would be refused."""
        optset = ctypes.c_void_p()
        self._check(self.dll.hs_optset_create(ctypes.byref(optset)))
        try:
            for name, value in options:
                self._check(self.dll.hs_optset_set(
                    optset, name.encode(), None if value is None else os.fsencode(value)))
        finally:
            self.dll.hs_optset_destroy(optset)

    def target_facts(self, session):
        facts = ctypes.POINTER(hs_target_facts)()
        self._check(self.dll.hs_session_target_facts(session, ctypes.byref(facts)))
        return TargetFacts(facts.contents)

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
