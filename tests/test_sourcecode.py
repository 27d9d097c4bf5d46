"""The source checks its own shape: layers that never reach back, one importer of the
compiled core, a core that imports nothing above it, and an SDK that stays light.

Imports are read with ``ast`` from every module of the package, those inside functions
included (an import cycle at run time is still a cycle). The compiled core's sources
(``_core/*.pyx`` and the ``.pxd`` declarations) are read too, their ``import`` and
``cimport`` lines, so a compiled module is a node of the same graph. Imports under
``if TYPE_CHECKING:`` never run: the run-time graph leaves them out, a second graph
keeps them, and both must be free of cycles.
"""
import ast
import pathlib
import re
import subprocess
import sys

import pytest

import piopiy_fast

PACKAGE = pathlib.Path(piopiy_fast.__file__).parent
NAME = "piopiy_fast"
CORE = f"{NAME}._core"


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
# A compiled module: its .pyx source and its .pxd declarations, if any.
COMPILED: dict[str, list[pathlib.Path]] = {}
# (A wheel ships the .pxd declarations; the .pyx sources are in the project only.)
for source in sorted((PACKAGE / "_core").glob("*.pyx")) + sorted(
        (PACKAGE / "_core").glob("*.pxd")):
    COMPILED.setdefault(f"{CORE}.{source.stem}", []).append(source)
KNOWN = set(MODULES) | set(COMPILED)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _nodes(tree: ast.AST, type_only: bool):
    """Every node that can run, and those under ``if TYPE_CHECKING:`` when
    ``type_only``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child) and not type_only:
                stack.extend(child.orelse)
            else:
                stack.append(child)


def _resolved(name: str, targets: list[str]) -> set[str]:
    found = set()
    for target in targets:
        while target and target not in KNOWN and target.startswith(NAME + "."):
            target = target.rpartition(".")[0]  # a name inside a module: the module
        if target.startswith(NAME) and target in KNOWN and target != name:
            found.add(target)
    return found


def _import_targets(source: str, names: list[str]) -> list[str]:
    # "from pkg import mod" names a module; "from mod import name" does not.
    return [f"{source}.{alias}" if f"{source}.{alias}" in KNOWN else source
            for alias in names]


def python_imports(name: str, type_only: bool = False) -> set[str]:
    """The package modules the module ``name`` imports (resolved to module names): at
    run time, or also under ``if TYPE_CHECKING:`` when ``type_only``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = []
    for node in _nodes(ast.parse(path.read_text(), str(path)), type_only):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets += _import_targets(source, [alias.name for alias in node.names])
    return _resolved(name, targets)


_STRINGS = re.compile(r'""".*?"""|\'\'\'.*?\'\'\'', re.DOTALL)
_IMPORT_LINE = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<source>[\w.]+)[ \t]+c?import[ \t]+(?P<names>\([^)]*\)|[^\n]*)"
    r"|c?import[ \t]+(?P<modules>[^\n]*))", re.MULTILINE)


def cython_imports_in(text: str) -> list[str]:
    """The modules a Cython source's ``import``/``cimport`` lines name, wherever they
    are (inside functions too), docstrings and comments left out."""
    text = re.sub(r"#[^\n]*", "", _STRINGS.sub("", text))
    targets = []
    for match in _IMPORT_LINE.finditer(text):
        if match["source"]:
            names = match["names"].strip("()").replace("\n", " ").split(",")
            targets += _import_targets(
                match["source"], [n.split(" as ")[0].strip() for n in names if n.strip()])
        else:
            targets += [m.split(" as ")[0].strip() for m in match["modules"].split(",")]
    return targets


def compiled_imports(name: str) -> set[str]:
    """The package modules a compiled module's .pyx and .pxd import or cimport."""
    return _resolved(name, [t for path in COMPILED[name]
                            for t in cython_imports_in(path.read_text())])


def imports_of(name: str, type_only: bool = False) -> set[str]:
    if name in MODULES:
        found = python_imports(name, type_only)
        return found | (compiled_imports(name) if name in COMPILED else set())
    return compiled_imports(name)


GRAPH = {name: imports_of(name) for name in sorted(KNOWN)}
# Also the imports under ``if TYPE_CHECKING:``: a cycle there still ties two modules.
TYPE_GRAPH = {name: imports_of(name, type_only=True) for name in sorted(KNOWN)}


def test_the_package_has_the_layers_it_documents():
    for layer in ("sdk", "stream", "receiver", "receiver.transports", "audio", "simulator",
                  "cli"):
        assert f"{NAME}.{layer}" in MODULES, layer
    assert f"{NAME}.stream.wire" in MODULES


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components: each of more than one module is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in graph:
                continue
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycle_between_modules():
    assert find_cycles(GRAPH) == []


def test_no_import_cycle_even_through_type_only_imports():
    assert find_cycles(TYPE_GRAPH) == []


def test_the_type_only_graph_sees_type_checking_imports():
    # channel.py imports RingBuffer from audio only for its annotations
    assert f"{NAME}.audio" in TYPE_GRAPH[f"{NAME}.receiver.channel"]
    assert GRAPH[f"{NAME}.receiver.channel"] <= TYPE_GRAPH[f"{NAME}.receiver.channel"]


def test_the_compiled_core_imports_nothing_above_it():
    core = [name for name in KNOWN if name == CORE or name.startswith(CORE + ".")]
    upward = {name: sorted(t for t in TYPE_GRAPH[name] if not t.startswith(CORE))
              for name in core}
    assert {name: t for name, t in upward.items() if t} == {}


@pytest.mark.skipif(not any((PACKAGE / "_core").glob("*.pyx")),
                    reason="the .pyx sources are in the project, not in an installed wheel")
def test_the_compiled_sources_are_read_imports_and_cimports():
    for module in ("codec", "resample", "ringbuffer", "ingest", "framesink", "readers"):
        assert any(p.suffix == ".pyx" for p in COMPILED[f"{CORE}.{module}"]), module
    # cimports, from the .pyx and from the .pxd
    assert {f"{CORE}.resample", f"{CORE}.ringbuffer", f"{CORE}.codec"} <= GRAPH[f"{CORE}.ingest"]
    assert f"{CORE}.ingest" in GRAPH[f"{CORE}.framesink"]
    # and an import inside a function, which the core once had, is seen
    old = ('''"""import nothing.from_a_docstring"""\n'''
           "from piopiy_fast._core.resample cimport (\n    PF_RS_BLOCK, Resampler,\n)\n"
           "def __init__(self):\n"
           "    # import nothing.from_a_comment\n"
           "    from piopiy_fast.audio import filters\n"
           "from piopiy_fast.errors import FrameError, PiopiyValidationError\n")
    assert _resolved(f"{CORE}.ingest", cython_imports_in(old)) == {
        f"{CORE}.resample", f"{NAME}.audio.filters", f"{NAME}.errors"}


def test_the_cycle_check_finds_a_cycle():
    fake = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": set()}
    assert find_cycles(fake) == [["a", "b", "c"]]
    # and the graph it checks is the package's, read from the source
    assert f"{NAME}.stream.wire" in GRAPH[f"{NAME}.sdk.actions"]


def test_only_the_audio_layer_imports_the_compiled_core():
    outside = {name: sorted(t for t in targets if t.startswith(f"{NAME}._core"))
               for name, targets in GRAPH.items()
               if not name.startswith(f"{NAME}.audio") and not name.startswith(f"{NAME}._core")}
    assert {name: t for name, t in outside.items() if t} == {}
    assert any(t.startswith(f"{NAME}._core") for t in GRAPH[f"{NAME}.audio"])


def test_the_sdk_and_the_wire_never_import_the_receiver_or_audio():
    for name, targets in GRAPH.items():
        if name.startswith((f"{NAME}.sdk", f"{NAME}.stream.wire", f"{NAME}.errors",
                            f"{NAME}.signing")):
            heavy = [t for t in targets
                     if t.startswith((f"{NAME}.receiver", f"{NAME}.audio", f"{NAME}._core",
                                      f"{NAME}.simulator", f"{NAME}.cli"))]
            assert heavy == [], name


# What does I/O: an event loop, sockets, WebSocket libraries, the receiver itself.
IO_MODULES = ("asyncio", "socket", "ssl", "websockets", "picows", "uvloop", "selectors")


def test_the_stream_core_does_no_io():
    """The Piopiy stream (wire, events, layout, the call state machine, replies) is
    tested with bytes: nothing in it reaches for a socket, a loop or the receiver."""
    for name, path in MODULES.items():
        if not name.startswith(f"{NAME}.stream"):
            continue
        assert not [t for t in GRAPH[name] if t.startswith(f"{NAME}.receiver")], name
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and not node.level}
        assert imported.isdisjoint(IO_MODULES), (name, imported & set(IO_MODULES))


def _modules_loaded_by(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("names", [
    "RestClient", "Action, StreamAction", "SignedURL", "parse_stream_webhook", "PiopiyError"])
def test_the_sdk_loads_neither_numpy_nor_a_websocket_library(names):
    loaded = _modules_loaded_by(f"from piopiy_fast import {names}")
    assert {"numpy", "scipy", "websockets", "picows", "uvloop"} & loaded == set()
    assert f"{NAME}.sdk" in loaded or names in ("SignedURL", "PiopiyError")


def test_the_receiver_does_load_them():
    # The same probe sees the heavy modules when they are imported: it can fail.
    assert "numpy" in _modules_loaded_by("from piopiy_fast import StreamServer")
    assert "websockets" in _modules_loaded_by("from piopiy_fast import Simulator")


def test_every_public_name_imports_from_the_top():
    code = ("import piopiy_fast\n"
            "missing = [n for n in piopiy_fast.__all__ if getattr(piopiy_fast, n, None) is None]\n"
            "assert not missing, missing\n"
            "assert sorted(dir(piopiy_fast)) == sorted(set(dir(piopiy_fast)))\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError):
        piopiy_fast.NoSuchName  # noqa: B018


def test_modules_stay_small_or_say_why():
    # A module past 350 lines is one cohesive thing, named in this table with the reason.
    cohesive = {
        f"{NAME}.sdk.actions": "the PCMO builders: one method per official action",
        f"{NAME}.stream.call": "one call's stream: identity, the format's hold, ingest, counters",
        f"{NAME}.receiver.call": "one call as the application sees it: readers, events, waits",
        f"{NAME}.integrations.pipecat": "one serializer: Pipecat frames to and from the stream",
        f"{NAME}.bus.nats": "one bus: the stream's set-up, publishing, and the outage handling",
        f"{NAME}.receiver.server": "the server: lifecycle, admission, sessions, totals",
        f"{NAME}.receiver.transports.picows": "one transport: frames to messages, backlog",
        f"{NAME}.receiver.workers": "the supervisor and the worker ends of one pipe protocol",
    }
    long = {name for name, path in MODULES.items()
            if len(path.read_text().splitlines()) > 350}
    assert long <= set(cohesive), sorted(long - set(cohesive))
