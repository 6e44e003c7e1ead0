"""params - `set heapscope ...` / `show heapscope ...`: the settings, as gdb.Parameters.

Each setting is one entry of SETTINGS; session_options() and the commands read
them through get().  GDB 13 has no parameter prefix class, so the `set heapscope`
and `show heapscope` prefixes are plain prefix commands made first; the `show`
one lists every setting.
"""
import gdb

# name, type, enum values (or None), default, doc (first line: the set/show doc)
SETTINGS = (
    ("jobs", gdb.PARAM_ZUINTEGER, None, 0,
     "Threads for the pointer scan (0: the library's default, 2).",
     "Like the CLI's --jobs N."),
    ("exact-pointers", gdb.PARAM_BOOLEAN, None, False,
     "Whether only pointers to the start of an allocation count as references.",
     "Off (the default): interior pointers count too.  Like the CLI's --exact-pointers."),
    ("debuginfo", gdb.PARAM_BOOLEAN, None, True,
     "Whether separate debug info is used for allocator layouts.",
     "Off is the CLI's --no-debuginfo: built-in layouts and heuristics only."),
    # The values are the library's (hs_allocator_names()); free text when it is missing.
    ("allocator", gdb.PARAM_ENUM, "ALLOCATORS", "auto",
     "Which allocator's heap to reconstruct.",
     "auto (the default) detects it.  Like the CLI's --allocator."),
    ("sysroot", gdb.PARAM_OPTIONAL_FILENAME, None, "",
     "The directory the core's file paths are looked up under.",
     "Empty (the default): GDB's own `set sysroot` when it names a local directory."),
    ("debug-directories", gdb.PARAM_STRING_NOESCAPE, None, "",
     "Extra directories with separate debug info, separated by ':'.",
     "GDB's `debug-file-directory` is always searched as well.  Like the CLI's --debug-dir."),
    ("overrides", gdb.PARAM_STRING_NOESCAPE, None, "",
     "Address overrides for the allocator walkers: NAME=ADDR,NAME=ADDR.",
     "For example main_arena=0x7ffff7fa6c60,mp_=0x7ffff7fa6340.  Like the CLI's --override."),
    ("limit", gdb.PARAM_ZUINTEGER_UNLIMITED, None, -1,
     "The default --limit of chunks, leaks --list, histogram and top.",
     "unlimited (the default) leaves each command's own default.  An explicit --limit wins."),
    ("pools", gdb.PARAM_STRING_NOESCAPE, None, "",
     "Application pools to report: SPEC [SPEC...], each EXPR[:LINK].",
     "EXPR holds the first free object's address (g_pool.free_head, slabclass[3].slots, a\n"
     "TLS variable: one pool per thread); LINK is the next pointer's member or byte offset\n"
     "(default 0).  Like the CLI's --pool, once per SPEC."),
    ("pool-detection", gdb.PARAM_BOOLEAN, None, True,
     "Whether undeclared pools are detected by the rule of docs/cli.md.",
     "Off is the CLI's --no-pool-detection."),
    ("color", gdb.PARAM_ENUM, ["auto", "on", "off"], "auto",
     "Whether heapscope's text output is coloured (colour).",
     "auto: when GDB styling is on (`set style enabled`) and the output is a terminal."),
)

_params = {}
_good = {}     # the last accepted value of each setting


class _SetPrefix(gdb.Command):
    """Set heapscope settings.

    Usage: set heapscope SETTING VALUE
    See `show heapscope` for every setting and its value."""

    def __init__(self):
        super().__init__("set heapscope", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, prefix=True)


class _ShowPrefix(gdb.Command):
    """Show heapscope settings.

    Usage: show heapscope [SETTING]
    Without SETTING, every setting is shown."""

    def __init__(self):
        super().__init__("show heapscope", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, prefix=True)

    def invoke(self, arg, from_tty):
        self.dont_repeat()
        if arg.strip():
            raise gdb.GdbError("show heapscope: no setting '%s' (see `help show heapscope`)" % arg.strip())
        for name, *_ in SETTINGS:
            gdb.write("%s: %s\n" % (name, format_value(name)))


def format_value(name):
    v = get(name)
    kind = [s[1] for s in SETTINGS if s[0] == name][0]
    if kind == gdb.PARAM_BOOLEAN:
        return "on" if v else "off"
    if kind == gdb.PARAM_ZUINTEGER_UNLIMITED and (v is None or v < 0):
        return "unlimited"
    if v is None or v == "":
        return '""'
    return str(v)


def _check(name, value):
    """Why value is not a usable setting of name, or None.  Out-of-range values
    are refused here, not ignored later."""
    import os
    if name == "jobs" and value is not None and value > 256:
        return "heapscope jobs takes 0 (the library's default) to 256, not %d" % value
    if name == "sysroot" and value and not os.path.isdir(value):
        return "heapscope sysroot: no directory %s" % value
    if name == "debug-directories" and value:
        for d in value.split(os.pathsep):
            if d and not os.path.isdir(d):
                return "heapscope debug-directories: no directory %s" % d
    if name == "overrides" and value:
        for item in value.split(","):
            key, eq, val = item.strip().partition("=")
            if not key or not eq or not val:
                return "heapscope overrides: '%s' is not NAME=ADDR" % item.strip()
    return None


def _make_parameter(name, kind, values, default, doc, more):
    def get_set_string(self):
        why = _check(name, self.value)
        if why:
            # GDB has stored the value already: put the last good one back.
            self.value = _good.get(name, default)
            raise gdb.GdbError(why)
        _good[name] = self.value
        return ""

    def get_show_string(self, svalue):
        return "heapscope %s is %s." % (name, svalue)

    cls = type("HeapscopeParam_" + name.replace("-", "_"), (gdb.Parameter,), {
        "__doc__": "%s\n%s" % (doc, more),
        "set_doc": "Set " + doc[0].lower() + doc[1:],
        "show_doc": "Show " + doc[0].lower() + doc[1:],
        "get_set_string": get_set_string,
        "get_show_string": get_show_string,
    })
    if values is not None:
        p = cls("heapscope " + name, gdb.COMMAND_DATA, kind, values)
    else:
        p = cls("heapscope " + name, gdb.COMMAND_DATA, kind)
    p.value = default
    return p


def register(allocators=None):
    """allocators: the library's allocator names, or None when it did not load."""
    _SetPrefix()
    _ShowPrefix()
    for name, kind, values, default, doc, more in SETTINGS:
        if values == "ALLOCATORS":
            if allocators:
                values = list(allocators)
            else:
                kind, values = gdb.PARAM_STRING, None
        _params[name] = _make_parameter(name, kind, values, default, doc, more)


def get(name):
    p = _params.get(name)
    if p is None:
        return [s[3] for s in SETTINGS if s[0] == name][0]
    return p.value


def limit():
    """The limit setting, or None for unlimited."""
    v = get("limit")
    if v is None or v < 0:
        return None
    return v
