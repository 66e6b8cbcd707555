"""The house's shape, checked from the source alone: every module of ivr/, menus/, routing/ and common/ is parsed with
`ast`, never imported, so this runs in milliseconds, needs no server and still speaks while an import is broken."""

from __future__ import annotations

import ast
import fnmatch
import functools
import itertools
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("ivr", "menus", "routing", "common")
# Top to bottom: a module may import its own layer or a lower one, never a higher one. Patterns are fnmatch's.
LAYERS = [
    ("entry points", ("ivr.app", "ivr.cli", "ivr.gunicorn_conf", "ivr.worker", "ivr.tools", "ivr.tools.*")),
    ("web layer", ("ivr.web", "ivr.web.*")),
    ("call flow", ("ivr.call", "ivr.call.*")),
    ("state, jobs, metrics, logs", ("ivr.state", "ivr.state.*", "ivr.metrics", "ivr.logs")),
    ("base", ("ivr.settings", "ivr.deployment", "ivr.clock", "ivr.privacy", "ivr")),
    ("pure rooms", ("menus", "menus.*", "routing", "routing.*", "common", "common.*")),
]
PURE_ROOM_IMPORTS = {"menus": {"menus", "common"}, "routing": {"routing", "common"}, "common": {"common"}}
IMPURE = {"flask", "werkzeug", "twilio", "redis", "rq", "structlog", "prometheus_client", "fakeredis", "gunicorn", "ivr"}
CLOCK_READS = ("datetime.now", "datetime.utcnow", "datetime.today", "date.today", "time.time", "time.monotonic",
               "time.perf_counter")
SETTINGS_MODULE = "ivr/settings.py"
ENV_WRITER = "ivr/gunicorn_conf.py"  # may only assign os.environ[...]: post_fork sets IVR_GUNICORN_MASTER for workers
TWILIO_HELPERS = {("twilio.request_validator", name) for name in ("compare", "add_port", "remove_port")}
TWIML_INTERNALS = {"verbs", "attrs"}
MAX_LINES = 400
VALIDATORS = {"model_validator", "field_validator"}
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True, eq=False)
class Module:
    name: str  # ivr/web/voice.py is ivr.web.voice; ivr/web/__init__.py is ivr.web
    path: str
    tree: ast.Module
    lines: int
    is_package: bool


@dataclass(frozen=True)
class Import:
    line: int
    target: str  # absolute
    names: tuple[str, ...]  # `from target import a, b`; () for `import target`
    type_checking: bool


def parse_all(files: dict[str, str]) -> dict[str, Module]:
    return {m.name: m for m in (Module(p.removesuffix(".py").removesuffix("/__init__").replace("/", "."), p,
                                       ast.parse(s, p), len(s.splitlines()), p.endswith("__init__.py"))
                                for p, s in files.items())}


@functools.cache
def project() -> dict[str, Module]:
    files = sorted(p for room in ROOMS for p in (ROOT / room).rglob("*.py"))
    return parse_all({p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in files})


def parents(name: str) -> list[str]:
    return list(itertools.accumulate(name.split(".")[:-1], lambda a, b: f"{a}.{b}"))


def dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


@functools.cache
def imports(mod: Module) -> list[Import]:
    """Every import statement anywhere in the file, relative ones made absolute."""
    guarded = {id(inner) for node in ast.walk(mod.tree) if isinstance(node, ast.If)
               and (dotted(node.test) or "").rpartition(".")[2] == "TYPE_CHECKING"
               for stmt in node.body for inner in ast.walk(stmt)}
    package = (mod.name if mod.is_package else mod.name.rpartition(".")[0]).split(".")
    found = []
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, a.name, (), id(node) in guarded) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) + 1 - node.level]) if node.level else ""
            target = ".".join(part for part in (base, node.module) if part)
            found.append(Import(node.lineno, target, tuple(a.name for a in node.names), id(node) in guarded))
    return sorted(found, key=lambda imp: imp.line)


def edges(mod: Module, mods: dict[str, Module]) -> list[tuple[Import, str]]:
    """(import, module it names): `from a import b` names a.b when that module exists, else a."""
    named = ((imp, f"{imp.target}.{n}" if f"{imp.target}.{n}" in mods else imp.target) for imp in imports(mod)
             for n in imp.names or [""])
    return list(dict.fromkeys(named))


def import_graph(mods: dict[str, Module]) -> dict[str, dict[str, str]]:
    """module -> project module whose code the import runs -> path:line of the import (TYPE_CHECKING ones left out)."""
    graph: dict[str, dict[str, str]] = {name: {} for name in mods}
    for mod in mods.values():
        # Importing a.b.c runs a.b's __init__ (and a's) first, so it is also an edge to those packages. Not to the
        # importer's own packages: Python imported them before the importer started, so menus.menu importing its
        # sibling menus.lines does not run menus/__init__ again, and counting it would make a false cycle with an
        # __init__ that re-exports menus.menu. A direct `from menus import HOME` in menus.menu still counts.
        own = {*parents(mod.name), mod.name} if mod.is_package else set(parents(mod.name))
        for imp, target in edges(mod, mods):
            for dst in [] if imp.type_checking else [target, *(p for p in parents(target) if p not in own)]:
                if dst in mods and dst != mod.name:
                    graph[mod.name].setdefault(dst, f"{mod.path}:{imp.line}")
    return graph


def cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """The shortest cycle through each import edge that lies on one, each cycle once, as [a, b, ..., a]."""
    found = {}
    for a, b in ((src, dst) for src in graph for dst in graph[src]):
        paths, queue = {b: [a, b]}, deque([b])  # breadth first from b back to a
        while queue and a not in paths:
            for nxt in graph[node := queue.popleft()]:
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
        if a in paths:
            loop = paths[a][:-1]
            start = loop.index(min(loop))
            found[tuple(loop[start:] + loop[:start])] = [*loop[start:], *loop[:start], loop[start]]
    return sorted(found.values())


def layer(name: str) -> int | None:
    return next((i for i, (_, pats) in enumerate(LAYERS) if any(fnmatch.fnmatchcase(name, p) for p in pats)), None)


@functools.cache
def references(mod: Module) -> list[tuple[ast.expr, str]]:
    """(node, full name) of each name or attribute chain, import aliases undone: dt.datetime.now -> datetime.*."""
    aliases = {}
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname})
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    chains = [(n, name) for n in ast.walk(mod.tree) if isinstance(n, ast.Name | ast.Attribute) and (name := dotted(n))]
    return [(n, aliases.get(head, head) + dot + rest) for n, name in chains for head, dot, rest in [name.partition(".")]]


def is_clock_read(name: str) -> bool:
    return any(name == read or name.endswith("." + read) for read in CLOCK_READS)


def defined(mod: Module) -> set[str] | None:
    """Names bound at the module's top level; None when a star import or __getattr__ makes them unknowable."""
    names = set()
    for node in (n for stmt in mod.tree.body for n in ([stmt] if isinstance(stmt, DEFS) else ast.walk(stmt))):
        if isinstance(node, DEFS):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
    return None if names & {"*", "__getattr__"} else names


def report(problems: list[str]) -> str:
    return "\n".join(["", *sorted(set(problems), key=lambda s: [int(t) if t.isdigit() else t for t in
                                                               re.split(r"(\d+)", s)])])


def test_project_imports_name_modules_that_exist() -> None:
    """A module moved without its importers being updated is named here, instead of slipping past the layer check."""
    mods, bad = project(), []
    packages = {p for name in mods for p in parents(name)}  # with or without __init__.py
    for mod, imp in ((m, i) for m in mods.values() for i in imports(m) if i.target.partition(".")[0] in ROOMS):
        if imp.target not in mods and not (imp.names and imp.target in packages):
            bad.append(f"{mod.path}:{imp.line} imports {imp.target}, which does not exist")
            continue
        known = defined(mods[imp.target]) if imp.target in mods else set()  # no __init__.py: submodules only
        bad += [f"{mod.path}:{imp.line} imports {n} from {imp.target}, which has no such name or module"
                for n in imp.names if known is not None and n not in known and f"{imp.target}.{n}" not in packages
                and f"{imp.target}.{n}" not in mods]
    assert not bad, report(bad)


def test_no_import_cycle() -> None:
    """No module needs a late import to dodge a cycle, and importing any one of them first works."""
    graph = import_graph(project())
    found = [f"{' -> '.join(c)}   ({', '.join(graph[a][b] for a, b in itertools.pairwise(c))})" for c in cycles(graph)]
    assert not found, report(found)


def test_imports_run_one_way_down_the_layers() -> None:
    """Entry points -> web -> call flow -> state -> base -> pure rooms; a reviewer never sees a loader import a view."""
    mods = project()
    bad = [f"add {name} to a layer in tests/test_layout.py" for name in mods if layer(name) is None]
    for mod in mods.values():
        for imp, target in edges(mod, mods):
            src, dst = layer(mod.name), layer(target)
            room, other = mod.name.partition(".")[0], target.partition(".")[0]
            if src is not None and dst is not None and (dst < src or (
                    room in PURE_ROOM_IMPORTS and other in PURE_ROOM_IMPORTS and other not in PURE_ROOM_IMPORTS[room])):
                bad.append(f"{mod.path}:{imp.line} {mod.name} ({LAYERS[src][0]}) imports {target} ({LAYERS[dst][0]})")
    assert not bad, report(bad)


def test_pure_rooms_stay_pure() -> None:
    """menus/, routing/ and common/ decide from their arguments alone: no web, Redis, metrics or ivr, no clock read."""
    bad = []
    for mod in (m for m in project().values() if m.name.partition(".")[0] in PURE_ROOM_IMPORTS):
        bad += [f"{mod.path}:{i.line} imports {i.target}" for i in imports(mod) if i.target.split(".")[0] in IMPURE]
        bad += [f"{mod.path}:{node.lineno} reads the clock: {name}" for node, name in references(mod)
                if is_clock_read(name)]
    assert not bad, report(bad)


def test_settings_come_from_one_place() -> None:
    """The environment is read in ivr/settings.py alone, so no command needs a made-up variable just to start."""
    bad = []
    for mod in (m for m in project().values() if m.path != SETTINGS_MODULE):
        writes = {id(node.value) for node in ast.walk(mod.tree) if mod.path == ENV_WRITER
                  and isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)}
        bad += [f"{mod.path}:{node.lineno} uses {name}" for node, name in references(mod)
                if name in ("os.environ", "os.getenv") and id(node) not in writes]
        bad += [f"{mod.path}:{imp.line} imports os.{n}" for imp in imports(mod) if imp.target == "os"
                for n in imp.names if n in ("environ", "getenv")]
    assert not bad, report(bad)


def test_twilio_public_api_only() -> None:
    """A twilio upgrade cannot break the webhooks through a private helper or a TwiML node's internals."""
    bad = []
    for mod in project().values():
        twilio = [imp for imp in imports(mod) if imp.target.partition(".")[0] == "twilio"]
        bad += [f"{mod.path}:{imp.line} imports {full}" for imp in twilio for name in imp.names or ("",)
                if (full := f"{imp.target}.{name}".rstrip(".")) and ((imp.target, name) in TWILIO_HELPERS
                                                                   or any(p.startswith("_") for p in full.split(".")))]
        # An approximation: .verbs and .attrs are plain attribute names, so any use of them in a file that imports
        # TwiML's node class is taken to reach into nodes (.value and .name are too common to check this way).
        if any(imp.target == "twilio.twiml" and (not imp.names or "TwiML" in imp.names) for imp in twilio):
            bad += [f"{mod.path}:{node.lineno} .{node.attr} of a TwiML node" for node in ast.walk(mod.tree)
                    if isinstance(node, ast.Attribute) and node.attr in TWIML_INTERNALS]
    assert not bad, report(bad)


def test_modules_stay_short() -> None:
    """A reader meets no module over 400 lines unless its docstring says why it is long."""
    bad = [f"{m.path}: {m.lines} lines" for m in project().values()
           if m.lines > MAX_LINES and not re.search(r"\blong\b", ast.get_docstring(m.tree) or "", re.IGNORECASE)]
    assert not bad, report(bad)


def missing_docstrings(mod: Module) -> list[str]:
    bad = [] if ast.get_docstring(mod.tree) or not mod.is_package else [f"{mod.path}:1 (package docstring)"]
    for node in (n for n in mod.tree.body if isinstance(n, DEFS) and not n.name.startswith("_")):
        bad += [] if ast.get_docstring(node) else [f"{mod.path}:{node.lineno} {node.name}"]
        bad += [f"{mod.path}:{m.lineno} {node.name}.{m.name}" for m in getattr(node, "body", [])
                if isinstance(node, ast.ClassDef) and isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                and not m.name.startswith("_") and not ast.get_docstring(m) and not any(  # pydantic validators exempt
                    (dotted(d.func if isinstance(d, ast.Call) else d) or "").rpartition(".")[2] in VALIDATORS
                    for d in m.decorator_list)]
    return bad


def test_public_names_have_docstrings() -> None:
    """A newcomer reading any public class, function, method, view or package finds a docstring saying what it is for."""
    bad = [line for mod in project().values() for line in missing_docstrings(mod)]
    assert not bad, report(bad)


def test_import_collector_finds_relative_nested_and_type_checking_imports() -> None:
    """The checks above see imports in functions and under TYPE_CHECKING, and resolve relative ones."""
    mod = parse_all({"pkg/sub/mod.py": "from typing import TYPE_CHECKING\nfrom . import sib\nfrom ..other import x\n"
                     "if TYPE_CHECKING:\n    import pkg.typed\ndef f():\n    import pkg.late\n"})["pkg.sub.mod"]
    assert [(i.line, i.target, i.names, i.type_checking) for i in imports(mod)] == [
        (1, "typing", ("TYPE_CHECKING",), False), (2, "pkg.sub", ("sib",), False), (3, "pkg.other", ("x",), False),
        (5, "pkg.typed", (), True), (7, "pkg.late", (), False)]


def test_cycle_finder_sees_a_two_module_cycle() -> None:
    """A cycle is reported once, from its smallest module; a module merely importing into it is not part of it."""
    assert cycles({"b": {"a": ""}, "a": {"b": ""}, "c": {"a": ""}}) == [["a", "b", "a"]]
    assert cycles({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": "", "d": ""}, "d": {}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b": ""}, "b": {"c": ""}, "c": {"d": ""}, "d": {}}) == []


def test_sibling_import_is_no_import_of_own_package_init() -> None:
    """An __init__ re-exporting its submodules is no cycle; a submodule importing a name from its __init__ is."""
    files = {"pkg/__init__.py": "from pkg.menu import HOME\n", "pkg/menu.py": "from pkg import lines\nHOME = 1\n",
             "pkg/lines.py": "", "app.py": "import pkg.menu\nfrom typing import TYPE_CHECKING\n"
             "if TYPE_CHECKING:\n    import pkg.lines\n"}
    graph = import_graph(parse_all(files))
    assert (cycles(graph), graph["app"]) == ([], {"pkg.menu": "app.py:1", "pkg": "app.py:1"})
    files["pkg/menu.py"] = "from pkg import HOME\n"
    assert cycles(import_graph(parse_all(files))) == [["pkg", "pkg.menu", "pkg"]]


def test_clock_reads_are_seen_through_import_aliases() -> None:
    """`dt.datetime.now()` and a bare `time()` from `from time import time` both count as clock reads."""
    mod = parse_all({"m.py": "import datetime as dt\nfrom time import time\ndt.datetime.now()\ntime()\nx.now()\n"})["m"]
    assert sorted(name for _, name in references(mod) if is_clock_read(name)) == ["datetime.datetime.now", "time.time"]


def test_every_folder_of_code_is_a_package_the_wheel_ships() -> None:
    """An installed service (a wheel, not this checkout) has every module: each folder of code has an __init__.py,
    so pyproject's package discovery finds it."""
    folders = {p.parent for room in ROOMS for p in (ROOT / room).rglob("*.py")}
    bare = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists())
    assert bare == [], report(bare)
