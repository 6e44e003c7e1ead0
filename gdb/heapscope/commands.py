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

CONVENIENCE_HELP = """\
After a command, $hs_last holds an address (a void *):
  show, chain, refs: the value of ADDR;
  chunks, leaks --list, top, maps: the first address listed (unchanged when none is)."""


def _library():
    return hstarget.CACHE.lib()


def global_options():
    """The library's global options a GDB command takes: {name: lib.Option}
    (not the command line's own, like --pid)."""
    return {n: o for n, o in _library().global_options.items() if o.scope != "cli"}


def global_help():
    lines = ["Options every subcommand takes (they override `set heapscope ...` for this command):"]
    for o in global_options().values():
        left = o.name + (" " + o.metavar if o.metavar else "")
        helptext = o.help.replace("\n", " ")
        if o.kind == "ADDRESS":
            helptext += " (a GDB expression)"
        lines.append("  %-21s %s" % (left, helptext))
    return "\n".join(lines)


class Invocation:
    """A parsed command line: what to pass to the library, and session options."""

    def __init__(self):
        self.args = []          # the command's own arguments, for the library
        self.json = False
        self.session = []       # [(global option, value)] for the session
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
    """Split argv into session options, command options and ADDR.  Which options
    exist and take values is the library's table; the library checks values."""
    inv = Invocation()
    glob = global_options()
    options = dict(glob)
    if spec:
        options.update(spec.options)
    positional = []
    session = []
    i = 0
    done = False
    while i < len(argv):
        a = argv[i]
        i += 1
        # Options are --long, or a short one the table names (-o).
        if done or a == "-" or not (a.startswith("--") or a.partition("=")[0] in options):
            positional.append(a)
            continue
        if a == "--":
            done = True
            continue
        name, eq, inline = a.partition("=")
        opt = options.get(name)
        if opt is None:
            if spec is None:
                inv.args.append(a)      # a command this table does not know: the library decides
                continue
            near = _library().suggest(name, spec.name) or (_library().suggest(name) if name in glob or name.startswith("--") else None)
            if near and near not in ("--help", "--version") and (near in options or near in glob):
                raise _usage_error(spec, "unknown option '%s' (did you mean %s?)" % (a, near))
            raise _usage_error(spec, "unknown option '%s'" % a)
        if not opt.takes_value():
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
        if opt.values is not None and value not in opt.values:
            raise _usage_error(spec, "%s takes one of %s, not '%s'" % (name, ", ".join(opt.values), value))
        if name in glob and not (spec and name in spec.options):
            if opt.scope == "output":
                inv.json = True
            elif opt.scope == "session":
                if opt.kind == "ADDRESS":
                    value = "0x%x" % evaluate_address(value, name)
                session.append((name, value))
            # scope "front-end" (--quiet): diagnostics are part of the output in GDB.
            continue
        if name == "--limit":
            inv.has_limit = True
        inv.args.append(name if value is None else "%s=%s" % (name, value))
    if session:
        try:
            _library().check_options(session)
        except hslib.LibraryError as err:
            raise _usage_error(spec, err.message)
        inv.session = session
    if spec and spec.argument and spec.argument != "ADDR":
        # A file name (diff OLD-CORE): passed as it is, not evaluated.
        if len(positional) != 1:
            raise _usage_error(spec, "expected one %s" % spec.argument)
        inv.args.insert(0, positional[0])
    elif spec and spec.argument:
        if not positional:
            raise _usage_error(spec, "missing %s (a GDB expression)" % spec.argument)
        expr = " ".join(positional)
        try:
            inv.addr = evaluate_address(expr)
        except gdb.GdbError as e:
            raise gdb.GdbError("heapscope %s: %s" % (spec.name, e))
        inv.args.insert(0, "0x%x" % inv.addr)
    else:
        inv.args.extend(positional)
    return inv


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
        if isinstance(err, hslib.LibraryError) and err.name == "HS_ERR_INTERRUPTED":
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
    if err.name == "HS_ERR_USAGE":
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

    if (name == "export" and "--format=pprof" in inv.args and not inv.json
            and not any(a.startswith(("-o=", "--output=")) for a in inv.args)):
        raise _usage_error(spec, "the pprof profile is binary: give -o FILE")
    styler = Styler() if use_colour(from_tty, inv.json) else None
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def sink(data):
        text = decoder.decode(data).replace("\0", "\\0")   # gdb.write takes no NUL
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
    if spec.argument == "ADDR":
        _set_last(inv.addr)
        return
    if spec.argument:
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
    try:
        options = global_options()
    except gdb.GdbError:
        return []
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
    if prev in options and options[prev].takes_value():
        opt = options[prev]
        if opt.values is not None:
            return tails(opt.values)
        if opt.kind == "PATH":
            return gdb.COMPLETE_FILENAME
        if opt.kind == "ADDRESS":
            return gdb.COMPLETE_EXPRESSION
        return []
    if current.startswith("-"):
        return tails(options)
    if spec and spec.argument == "ADDR":
        return gdb.COMPLETE_EXPRESSION
    if spec and spec.argument:
        return gdb.COMPLETE_FILENAME
    return tails(options)


def _doc(spec):
    # The library's text, the same as `heapscope help NAME`; then GDB's own parts.
    lines = [_library().command_help(spec.name).rstrip("\n")]
    if spec.argument == "ADDR":
        lines += ["", "In GDB, ADDR is any expression: hs show p is the block p points at; "
                  "hs show p + 8 is GDB's pointer arithmetic (8 elements of *p, not 8 bytes)."]
    if spec.argument == "ADDR" or spec.last:
        lines += ["", CONVENIENCE_HELP]
    lines += ["", global_help()]
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
        glob = global_options()
        lead = []
        while argv and argv[0].startswith("--"):
            opt = argv.pop(0)
            lead.append(opt)
            o = glob.get(opt.partition("=")[0])
            if o is not None and o.takes_value() and "=" not in opt and argv:
                lead.append(argv.pop(0))
        if not argv:
            name, rest = "summary", []
        else:
            name, rest = argv[0], argv[1:]
        spec = _specs().get(name)
        execute(spec, name, " ".join(_quote(a) for a in lead + rest), from_tty)


def _quote(a):
    if a and not re.search(r"[\s'\"\\]", a):
        return a
    return "'" + a.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _specs():
    return {c.name: c for c in _library().commands}


def register():
    """The prefix command always; one subcommand per command of the library's
    table when the library loads (else `heapscope` says why it does not)."""
    HeapscopePrefix()
    try:
        commands = _library().commands
    except gdb.GdbError:
        commands = []
    for spec in commands:
        _make_subcommand(spec)
    try:
        gdb.execute("alias hs = heapscope", to_string=True)
    except gdb.error:
        pass    # already there
