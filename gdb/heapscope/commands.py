"""commands - the `heapscope` prefix command (alias `hs`) and one subcommand per
CLI command, all from one table.

A subcommand parses its arguments (ADDR is a GDB expression, evaluated here and
passed to the library as 0x...), opens or reuses the inferior's session
(target.py), and runs the library's command on a worker thread so that GDB's
main thread stays free to page the output and to turn Ctrl-C into
hs_interrupt().  Only the main thread ever calls into gdb.
"""
import codecs
import json
import queue
import re
import signal
import threading

import gdb

from . import lib as hslib
from . import params
from . import target as hstarget

WHERE_VALUES = ("used", "mmapped", "large", "meta", "tcache", "fastbin", "unsorted", "smallbin",
                "largebin", "top", "slab", "extent", "pool", "unlisted")
ALLOCATORS = ("auto", "glibc", "jemalloc")

# An option's value: None (a flag), "N" (a number: 0x.., K/M/G suffixes),
# "ADDR" (a GDB expression), "PATH", "TEXT", or a tuple of the accepted words.
GLOBAL_OPTIONS = {
    "--json": None,
    "--exe": "PATH",
    "--sysroot": "PATH",
    "--debug-dir": "PATH",
    "--no-debuginfo": None,
    "--allocator": ALLOCATORS,
    "--main-arena": "ADDR",
    "--mp": "ADDR",
    "--glibc-version": "TEXT",
    "--override": "TEXT",
    "--jobs": "N",
    "--exact-pointers": None,
    "--quiet": None,
}

GLOBAL_HELP = """\
Options every subcommand takes (they override `set heapscope ...` for this command):
  --json                one JSON document instead of text (docs/json.md)
  --exe PATH            the executable (default: GDB's; for a core)
  --sysroot DIR         look for the core's files under DIR
  --debug-dir DIR       also look for separate debug info in DIR (repeatable)
  --no-debuginfo        ignore separate debug info (built-in layouts)
  --allocator NAME      glibc, jemalloc or auto
  --main-arena ADDR     glibc: the address of main_arena (a GDB expression)
  --mp ADDR             glibc: the address of mp_ (a GDB expression)
  --glibc-version X.Y   glibc: the version, when it cannot be read from libc
  --override NAME=ADDR  any address or value a walker needs
  --jobs N              threads for the pointer scan
  --exact-pointers      only pointers to the start of an allocation are references"""


class Spec:
    """One CLI command: usage as `heapscope --help` prints it, options, help."""

    def __init__(self, name, usage, summary, options=None, addr=False, last=None,
                 text="", example=""):
        self.name = name
        self.usage = usage
        self.summary = summary
        self.options = options or {}
        self.addr = addr            # takes one ADDR (a GDB expression)
        self.last = last            # JSON list whose first element's address is $hs_last
        self.text = text
        self.example = example


# The CLI's command table (src/commands.c), one entry a command.
# tests/integration/test_gdb.py checks it against `heapscope --help`.
COMMANDS = (
    Spec("info", "info", "process, threads, modules and the memory map by category",
         text="The target, its threads with their stacks, the modules with build-ids and\n"
              "debug info, and every mapping by category.",
         example="hs info"),
    Spec("summary", "summary [--leaks]",
         "allocator, arenas, bytes in use and free; --leaks: and leaked (the default command)",
         {"--leaks": None, "--no-leaks": None},
         text="Bytes in use and free by where they sit; with --leaks also the leaked and\n"
              "unreferenced totals from the pointer graph.",
         example="hs summary --leaks"),
    Spec("arenas", "arenas", "every arena with its heaps and totals",
         example="hs arenas"),
    Spec("chunks", "chunks [--used|--free] [--arena N] [--where W] [--min-size N] [--limit N]",
         "every allocation and free block (streams)",
         {"--used": None, "--free": None, "--arena": "N", "--where": WHERE_VALUES,
          "--min-size": "N", "--limit": "N"},
         last="allocations",
         text="W is one of: " + ", ".join(WHERE_VALUES) + ".",
         example="hs chunks --used --min-size 1M"),
    Spec("bins", "bins [--arena N]", "every free list: tcache, fastbins, bins",
         {"--arena": "N"}, example="hs bins --arena 0"),
    Spec("show", "show ADDR [--bytes N]", "the block holding ADDR, with an annotated hexdump",
         {"--bytes": "N"}, addr=True,
         text="ADDR is any GDB expression: a pointer, a register, a symbol.",
         example="hs show $rdi --bytes 64"),
    Spec("leaks", "leaks [--list] [--limit N] [--min-size N] [--fail-on-leaks]",
         "leaked allocations grouped by type and size",
         {"--list": None, "--limit": "N", "--min-size": "N", "--fail-on-leaks": None},
         last="objects",
         text="Leaked: in use and unreachable from every root.  --list lists the objects;\n"
              "--fail-on-leaks makes the command fail (a GDB error) when there are any.",
         example="hs leaks --list --limit 20"),
    Spec("histogram", "histogram [--used|--leaked|--free] [--by type|size|type+size] [--limit N]",
         "allocations grouped by type and size",
         {"--used": None, "--leaked": None, "--free": None, "--by": ("type", "size", "type+size"),
          "--limit": "N"},
         example="hs histogram --leaked --by type"),
    Spec("chain", "chain ADDR", "a shortest reference chain from a root to ADDR", addr=True,
         text="ADDR is any GDB expression.",
         example="hs chain my_table->slots[3]"),
    Spec("refs", "refs ADDR", "every root and allocation that points at ADDR", addr=True,
         text="ADDR is any GDB expression.",
         example="hs refs $hs_last"),
    Spec("top", "top [--limit N]", "the allocations that retain the most memory",
         {"--limit": "N"}, last="objects", example="hs top --limit 10"),
    Spec("maps", "maps [--limit N]",
         "every hash map and tree: count, buckets, chains, bytes, retained",
         {"--limit": "N"}, last="containers",
         text="std::unordered_map/set (+multi), std::map/set (+multi), GHashTable and uthash\n"
              "tables, found by their shape and named by DWARF when there is some.",
         example="hs maps"),
    Spec("map", "map ADDR|ANCHOR [--limit N]", "one container's entries: keys, nodes, values",
         {"--limit": "N"}, addr=True,
         text="ADDR is any GDB expression: the container itself (g_sessions), or a pointer\n"
              "to it (g_table, the head of a uthash table).",
         example="hs map g_sessions --limit 10"),
    Spec("owners", "owners [--limit N]",
         "retained bytes per root (global, thread) and per container",
         {"--limit": "N"}, example="hs owners"),
)

SPECS = {s.name: s for s in COMMANDS}

CONVENIENCE_HELP = """\
After a command, $hs_last holds an address (a void *):
  show, chain, refs: the value of ADDR;
  chunks, leaks --list, top, maps: the first address listed (unchanged when none is)."""


class Invocation:
    """A parsed command line: what to pass to the library, and session options."""

    def __init__(self):
        self.args = []          # the command's own arguments, for the library
        self.json = False
        self.session = {}       # hs_options overrides
        self.addr = None        # the evaluated ADDR
        self.has_limit = False


def _usage_error(spec, msg):
    name = spec.name if spec else ""
    usage = ("\nUsage: heapscope %s" % spec.usage) if spec else ""
    return gdb.GdbError("heapscope %s: %s%s" % (name, msg, usage))


def evaluate_address(expr, what="ADDR"):
    """A GDB expression's value as an address (pointers, integers, arrays,
    functions, and objects by their address)."""
    try:
        v = gdb.parse_and_eval(expr)
        code = v.type.strip_typedefs().code
        if code in (gdb.TYPE_CODE_ARRAY, gdb.TYPE_CODE_FUNC) or (
                code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION) and v.address is not None):
            v = v.address
        elif code not in (gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_INT, gdb.TYPE_CODE_ENUM,
                          gdb.TYPE_CODE_BOOL, gdb.TYPE_CODE_CHAR, gdb.TYPE_CODE_REF,
                          gdb.TYPE_CODE_RVALUE_REF):
            raise gdb.GdbError("'%s' is a %s, not an address" % (expr, v.type))
        if v.type.strip_typedefs().code in (gdb.TYPE_CODE_REF, gdb.TYPE_CODE_RVALUE_REF):
            v = v.referenced_value().address
        return int(v) & 0xffffffffffffffff
    except gdb.MemoryError as e:
        raise gdb.GdbError("cannot evaluate %s '%s': %s" % (what, expr, e))
    except gdb.error as e:
        raise gdb.GdbError("cannot evaluate %s '%s': %s" % (what, expr, e))


def parse(spec, argv):
    """Split argv into session options, command options and ADDR."""
    inv = Invocation()
    options = dict(GLOBAL_OPTIONS)
    if spec:
        options.update(spec.options)
    positional = []
    i = 0
    done = False
    while i < len(argv):
        a = argv[i]
        i += 1
        if done or not a.startswith("--") or a == "-":
            positional.append(a)
            continue
        if a == "--":
            done = True
            continue
        name, eq, inline = a.partition("=")
        if name not in options:
            if spec is None:
                inv.args.append(a)      # a command this table does not know: the library decides
                continue
            raise _usage_error(spec, "unknown option '%s'" % a)
        kind = options[name]
        if kind is None:
            if eq:
                raise _usage_error(spec, "%s takes no value" % name)
            value = None
        elif eq:
            value = inline
        elif i < len(argv):
            value = argv[i]
            i += 1
        else:
            raise _usage_error(spec, "%s needs a value" % name)
        if isinstance(kind, tuple) and value not in kind:
            raise _usage_error(spec, "%s takes one of %s, not '%s'" % (name, ", ".join(kind), value))
        if name in GLOBAL_OPTIONS and not (spec and name in spec.options):
            _session_option(spec, inv, name, value)
            continue
        if name == "--limit":
            inv.has_limit = True
        inv.args.append(name if value is None else "%s=%s" % (name, value))
    if spec and spec.addr:
        if not positional:
            raise _usage_error(spec, "missing ADDR (a GDB expression)")
        expr = " ".join(positional)
        try:
            inv.addr = evaluate_address(expr)
        except gdb.GdbError as e:
            raise gdb.GdbError("heapscope %s: %s" % (spec.name, e))
        inv.args.insert(0, "0x%x" % inv.addr)
    else:
        inv.args.extend(positional)
    return inv


def _session_option(spec, inv, name, value):
    s = inv.session
    if name == "--json":
        inv.json = True
    elif name == "--exe":
        s["exe"] = value
    elif name == "--sysroot":
        s["sysroot"] = value
    elif name == "--debug-dir":
        s.setdefault("debug_dirs", []).append(value)
    elif name == "--no-debuginfo":
        s["no_debuginfo"] = True
    elif name == "--allocator":
        s["allocator"] = None if value == "auto" else value
    elif name == "--jobs":
        try:
            jobs = int(value, 0)
        except ValueError:
            jobs = 0
        if not 1 <= jobs <= 256:
            raise _usage_error(spec, "--jobs takes a number from 1 to 256, not '%s'" % value)
        s["jobs"] = jobs
    elif name == "--exact-pointers":
        s["exact_pointers"] = True
    elif name in ("--main-arena", "--mp"):
        addr = evaluate_address(value, name)
        item = "%s=0x%x" % ("mp_" if name == "--mp" else "main_arena", addr)
        s["overrides"] = ",".join(x for x in (s.get("overrides"), item) if x)
    elif name == "--glibc-version":
        m = re.fullmatch(r"(\d+)\.(\d+)", value)
        if not m:
            raise _usage_error(spec, "--glibc-version takes X.Y, like 2.36, not '%s'" % value)
        item = "glibc_version=%d" % (int(m.group(1)) * 100 + int(m.group(2)))
        s["overrides"] = ",".join(x for x in (s.get("overrides"), item) if x)
    elif name == "--override":
        s["overrides"] = ",".join(x for x in (s.get("overrides"), value) if x)
    # --quiet: diagnostics are part of the output in GDB; accepted for the CLI's sake.


# Output: colour, the pager, the worker thread.

_SGR = {"black": 30, "red": 31, "green": 32, "yellow": 33, "blue": 34, "magenta": 35,
        "cyan": 36, "white": 37}
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,16}\b")
_HEADER = re.compile(r"^\s*[A-Z][A-Z#\-]+(\s+[A-Z][A-Z#\-]+)+\s*$")


def _style_code(setting, fallback):
    try:
        colour = gdb.parameter("style %s foreground" % setting)
    except (gdb.error, RuntimeError):
        colour = fallback
    n = _SGR.get(colour)
    return "\x1b[%dm" % n if n else ""


class Styler:
    """Colours whole lines of text output: addresses, table headers, diagnostics."""

    def __init__(self):
        self.address = _style_code("address", "blue")
        self.warning = "\x1b[33m"
        self.error = "\x1b[31m"
        self.pending = ""

    def line(self, text):
        if _HEADER.match(text):
            return "\x1b[1m%s\x1b[0m" % text
        stripped = text.lstrip()
        if stripped.startswith("warning ") or stripped.startswith("error "):
            code = self.error if stripped.startswith("error") else self.warning
            word = stripped.split(" ", 1)[0]
            text = text.replace(word, "%s%s\x1b[0m" % (code, word), 1)
        if self.address:
            text = _ADDRESS.sub(lambda m: "%s%s\x1b[0m" % (self.address, m.group(0)), text)
        return text

    def feed(self, text):
        text = self.pending + text
        head, sep, self.pending = text.rpartition("\n")
        if not sep:
            self.pending = head
            return ""
        return "\n".join(self.line(l) for l in head.split("\n")) + "\n"

    def flush(self):
        rest, self.pending = self.pending, ""
        return self.line(rest) if rest else ""


def use_colour(from_tty, json_output):
    if json_output:
        return False
    setting = params.get("color")
    if setting == "on":
        return True
    if setting == "off":
        return False
    try:
        return bool(from_tty) and bool(gdb.parameter("style enabled"))
    except (gdb.error, RuntimeError):
        return False


_DONE = object()
_BLOCKED = [getattr(signal, n) for n in ("SIGINT", "SIGCHLD", "SIGALRM", "SIGWINCH", "SIGPROF",
                                         "SIGTERM", "SIGQUIT", "SIGHUP") if hasattr(signal, n)]


class Interrupted(Exception):
    pass


def run_library(library, handle, argv, fmt, sink):
    """Run one library command on a worker thread; sink(bytes) on this (GDB's
    main) thread gets the output.  Returns (status, stopped): stopped when the
    sink raised KeyboardInterrupt (the pager's q) or gdb.error.  Raises
    Interrupted on Ctrl-C, lib.LibraryError for a library error."""
    q = queue.Queue(maxsize=64)
    stop = threading.Event()
    result = {}

    def write(data):
        while not stop.is_set():
            try:
                q.put(data, timeout=0.1)
                return False
            except queue.Full:
                continue
        return True

    def work():
        # GDB's signals belong to GDB's main thread; the library's scan threads
        # inherit this mask.
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
        except (AttributeError, OSError, ValueError):
            pass
        try:
            result["status"] = library.run(handle, argv, fmt, write)
        except BaseException as e:    # handed to the main thread
            result["error"] = e
        finally:
            q.put(_DONE)

    worker = threading.Thread(target=work, name="heapscope", daemon=True)
    interrupted = False
    stopped = False
    worker.start()
    while True:
        try:
            if interrupted:
                library.interrupt()   # again: the command may have cleared it as it began
            try:
                item = q.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _DONE:
                break
            if stop.is_set():
                continue
            try:
                sink(item)
            except (KeyboardInterrupt, gdb.error):
                stop.set()
                stopped = True
        except KeyboardInterrupt:
            interrupted = True
            stop.set()
            library.interrupt()
    worker.join()
    err = result.get("error")
    if interrupted:
        raise Interrupted()
    if err is not None:
        if isinstance(err, hslib.LibraryError) and err.code == hslib.HS_ERR_INTERRUPTED:
            raise Interrupted()
        raise err
    return result.get("status", 0), stopped


def collect(library, handle, argv):
    """Run a command in JSON and return the parsed document (not shown)."""
    chunks = []
    status, _ = run_library(library, handle, argv, hslib.FORMAT_JSON, chunks.append)
    return json.loads(b"".join(chunks).decode("utf-8", errors="replace"))


def _set_last(addr):
    void_p = gdb.lookup_type("void").pointer()
    gdb.set_convenience_variable("hs_last", gdb.Value(addr).cast(void_p))


def _error_text(spec, name, err):
    """A library error as GDB should say it: in GDB's terms, not the CLI's."""
    msg = err.message
    # The library words some messages for the command line.
    msg = msg.replace("heapscope CORE ", "heapscope ").replace("see heapscope --help", "see `help heapscope`")
    if msg.startswith(name + ": "):
        msg = msg[len(name) + 2:]
    if err.code == hslib.HS_ERR_USAGE:
        if spec is None:
            return "heapscope: %s" % msg
        return "heapscope %s: %s\nUsage: heapscope %s (see `help heapscope %s`)" % (
            name, msg, spec.usage, name)
    return "heapscope %s: %s" % (name, msg)


def execute(spec, name, arg, from_tty):
    """Run subcommand name (spec None: not in the table, passed through)."""
    argv = gdb.string_to_argv(arg)
    inv = parse(spec, argv)
    limit = params.limit()
    if limit is not None and spec and "--limit" in spec.options and not inv.has_limit:
        if spec.name != "leaks" or "--list" in inv.args:
            inv.args.append("--limit=%d" % limit)
    tgt = hstarget.current()
    entry = hstarget.CACHE.session(tgt, inv.session)
    library = hstarget.CACHE.lib()
    argv_lib = [name] + inv.args

    styler = Styler() if use_colour(from_tty, inv.json) else None
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def sink(data):
        text = decoder.decode(data)
        if styler:
            text = styler.feed(text)
        if text:
            gdb.write(text)

    try:
        status, stopped = run_library(library, entry.handle, argv_lib,
                                      hslib.FORMAT_JSON if inv.json else hslib.FORMAT_TEXT, sink)
        if not stopped:
            tail = decoder.decode(b"", final=True)
            if styler:
                tail = styler.feed(tail) + styler.flush()
            if tail:
                gdb.write(tail)
    except Interrupted:
        gdb.write("\n")
        raise gdb.GdbError("heapscope %s: interrupted" % name)
    except hslib.LibraryError as err:
        raise gdb.GdbError(_error_text(spec, name, err))
    if stopped:
        return
    _update_last(spec, inv, library, entry, argv_lib)
    if entry.missing_bytes:
        raise gdb.GdbError("heapscope: %s is truncated: %d bytes of dumped memory are missing; the "
                           "results above cover only the part that is there"
                           % (entry.target.path, entry.missing_bytes))
    if status == 1:
        raise gdb.GdbError("heapscope %s: leaks found (--fail-on-leaks)" % name)


def _update_last(spec, inv, library, entry, argv_lib):
    if spec is None:
        return
    if spec.addr:
        _set_last(inv.addr)
        return
    if not spec.last or (spec.name == "leaks" and "--list" not in inv.args):
        return
    # A second, hidden pass in JSON over the cached session: the first object.
    args = [a for a in argv_lib if not a.startswith("--limit") and a != "--fail-on-leaks"]
    args.append("--limit=1")
    try:
        doc = collect(library, entry.handle, args)
    except (Interrupted, hslib.LibraryError, ValueError):
        return
    items = doc.get(spec.last) or []
    if items and isinstance(items[0], dict) and "address" in items[0]:
        _set_last(items[0]["address"])


def complete_args(spec, text, word):
    """Completion of a subcommand's arguments: options, their values, ADDR.

    GDB breaks words at '-', so word may be the tail of the token being typed:
    candidates are matched against the whole token and returned as tails."""
    options = dict(GLOBAL_OPTIONS)
    if spec:
        options.update(spec.options)
    words = text.split()
    current = ""
    if text and not text[-1].isspace() and words:
        current = words.pop()       # the token being completed
    word = word or ""
    cut = len(current) - len(word) if current.endswith(word) else 0

    def tails(candidates):
        return sorted(c[cut:] for c in candidates if c.startswith(current))

    prev = words[-1] if words else None
    if prev in options and options[prev] is not None:
        kind = options[prev]
        if isinstance(kind, tuple):
            return tails(kind)
        if kind == "PATH":
            return gdb.COMPLETE_FILENAME
        if kind == "ADDR":
            return gdb.COMPLETE_EXPRESSION
        return []
    if current.startswith("-"):
        return tails(options)
    if spec and spec.addr:
        return gdb.COMPLETE_EXPRESSION
    return tails(options)


def _doc(spec):
    lines = ["%s." % (spec.summary[0].upper() + spec.summary[1:]), "",
             "Usage: heapscope %s [OPTIONS]" % spec.usage]
    if spec.text:
        lines += ["", spec.text]
    lines += ["", "Example: %s" % spec.example if spec.example else "Example: hs %s" % spec.name]
    if spec.addr or spec.last:
        lines += ["", CONVENIENCE_HELP]
    lines += ["", GLOBAL_HELP]
    return "\n".join(lines)


def _make_subcommand(spec):
    def __init__(self):
        gdb.Command.__init__(self, "heapscope " + spec.name, gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        self.dont_repeat()
        execute(spec, spec.name, arg, from_tty)

    def complete(self, text, word):
        return complete_args(spec, text, word)

    cls = type("Heapscope_" + spec.name, (gdb.Command,), {
        "__doc__": _doc(spec), "__init__": __init__, "invoke": invoke, "complete": complete})
    return cls()


class HeapscopePrefix(gdb.Command):
    """Heap analysis of the core or live process GDB has (heapscope; alias hs).

    Usage: heapscope SUBCOMMAND [OPTIONS] [ARGS]
    Without SUBCOMMAND: summary.  Every subcommand of the heapscope command line
    is here, with the same options and `--json`; ADDR arguments are GDB
    expressions (`hs chain my_table->slots[3]`, `hs show $rdi`).

    Examples:
      hs summary
      hs leaks --list
      hs chain $hs_last

    Settings: `show heapscope`, `set heapscope jobs 2`, `help set heapscope`.
    Output goes through GDB's pager (q stops it); Ctrl-C interrupts an analysis.
    After a command, $hs_last holds an address: the ADDR of show, chain and refs;
    the first address listed by chunks, leaks --list and top."""

    def __init__(self):
        super().__init__("heapscope", gdb.COMMAND_DATA, gdb.COMPLETE_COMMAND, prefix=True)

    def invoke(self, arg, from_tty):
        self.dont_repeat()
        argv = gdb.string_to_argv(arg)
        # Global options before the subcommand (hs --json summary), as in the CLI.
        lead = []
        while argv and argv[0].startswith("--"):
            opt = argv.pop(0)
            lead.append(opt)
            if GLOBAL_OPTIONS.get(opt.partition("=")[0]) is not None and "=" not in opt and argv:
                lead.append(argv.pop(0))
        if not argv:
            name, rest = "summary", []
        else:
            name, rest = argv[0], argv[1:]
        spec = SPECS.get(name)
        execute(spec, name, " ".join(_quote(a) for a in lead + rest), from_tty)


def _quote(a):
    if a and not re.search(r"[\s'\"\\]", a):
        return a
    return "'" + a.replace("\\", "\\\\").replace("'", "\\'") + "'"


def register():
    HeapscopePrefix()
    for spec in COMMANDS:
        _make_subcommand(spec)
    try:
        gdb.execute("alias hs = heapscope", to_string=True)
    except gdb.error:
        pass    # already there
