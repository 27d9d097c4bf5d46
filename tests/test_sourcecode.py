"""The source checks its own shape: layers that never reach back, one importer of the
compiled core, and an SDK that stays light.

Imports are read with ``ast`` from every module of the package, those inside functions
included (an import cycle at run time is still a cycle), those under
``if TYPE_CHECKING:`` excluded (they never run).
"""
import ast
import pathlib
import subprocess
import sys

import pytest

import piopiy_fast

PACKAGE = pathlib.Path(piopiy_fast.__file__).parent
NAME = "piopiy_fast"


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST):
    """Every node that can run, skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def imports_of(name: str) -> set[str]:
    """The package modules ``name`` imports at run time (resolved to module names)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # "from pkg import mod" names a module; "from mod import name" does not.
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES
                       else source for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES and target.startswith(NAME + "."):
                target = target.rpartition(".")[0]  # a compiled module: its package
            if target.startswith(NAME) and target in MODULES and target != name:
                found.add(target)
            elif target.startswith(f"{NAME}._core"):
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def test_the_package_has_the_layers_it_documents():
    for layer in ("sdk", "receiver", "receiver.transports", "audio", "simulator", "cli"):
        assert f"{NAME}.{layer}" in MODULES, layer
    assert f"{NAME}.wire" in MODULES


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


def test_the_cycle_check_finds_a_cycle():
    fake = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": set()}
    assert find_cycles(fake) == [["a", "b", "c"]]
    # and the graph it checks is the package's, read from the source
    assert f"{NAME}.wire" in GRAPH[f"{NAME}.sdk.actions"]


def test_only_the_audio_layer_imports_the_compiled_core():
    outside = {name: sorted(t for t in targets if t.startswith(f"{NAME}._core"))
               for name, targets in GRAPH.items()
               if not name.startswith(f"{NAME}.audio") and not name.startswith(f"{NAME}._core")}
    assert {name: t for name, t in outside.items() if t} == {}
    assert any(t.startswith(f"{NAME}._core") for t in GRAPH[f"{NAME}.audio"])


def test_the_sdk_and_the_wire_never_import_the_receiver_or_audio():
    for name, targets in GRAPH.items():
        if name.startswith((f"{NAME}.sdk", f"{NAME}.wire", f"{NAME}.errors", f"{NAME}.signing")):
            heavy = [t for t in targets
                     if t.startswith((f"{NAME}.receiver", f"{NAME}.audio", f"{NAME}._core",
                                      f"{NAME}.simulator", f"{NAME}.cli"))]
            assert heavy == [], name


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
        f"{NAME}.receiver.call": "one call: counters, format changes, events and controls",
        f"{NAME}.receiver.server": "the server: lifecycle, admission, sessions, totals",
        f"{NAME}.receiver.transports.picows": "one transport: frames to messages, backlog",
        f"{NAME}.receiver.workers": "the supervisor and the worker ends of one pipe protocol",
    }
    long = {name for name, path in MODULES.items()
            if len(path.read_text().splitlines()) > 350}
    assert long <= set(cohesive), sorted(long - set(cohesive))
