"""The package's modules import one way: no cycle, however long, among ``aiomoomoo/*.py``; and
the wire and crypto layers below the message layer never import protobuf."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aiomoomoo"


def imported_modules(source: str, modules: set[str]) -> set[str]:
    """The package's own modules ``source`` imports, under ``TYPE_CHECKING`` too: a cycle that
    only the type checker sees still ties the two modules into one."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module is not None:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.startswith("aiomoomoo."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "aiomoomoo" and len(parts) > 1:
                    found.add(parts[1])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found & modules


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = {path.stem for path in package.glob("*.py") if path.stem != "__init__"}
    return {
        name: imported_modules((package / f"{name}.py").read_text(), modules) - {name}
        for name in modules
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that starts and ends at the same module, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for other in sorted(graph.get(name, ())):
            if state.get(other) == 1:
                return [*path[path.index(other) :], other]
            if other not in state and (cycle := visit(other)) is not None:
                return cycle
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)) is not None:
            return cycle
    return None


def test_the_checker_finds_a_cycle_and_the_direction_of_imports() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    modules = {"_wire", "_errors", "_client", "_many"}
    source = (
        "from typing import TYPE_CHECKING\nimport aiomoomoo._wire\nfrom ._errors import X\n"
        "if TYPE_CHECKING:\n    from ._client import Client\n"
    )
    assert imported_modules(source, modules) == {"_wire", "_errors", "_client"}


def test_the_package_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert {"_client", "_session", "_connection", "_options"} <= set(graph)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def imported_names(source: str, package: str = "aiomoomoo") -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, by absolute name, wherever the
    import statement is: a lazy import inside a function counts like one at the top."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = f"{package}.{base}" if base else package
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


#: The layers below the message layer: bytes, ciphers and errors, never protobuf.
PROTOBUF_FREE = ("_errors", "_security", "_wire", "_crypto")


def uses_protobuf(names: set[str]) -> set[str]:
    return {
        name
        for name in names
        if name.split(".")[0] == "google" or name.startswith("aiomoomoo._proto")
    }


def test_the_checker_sees_protobuf_imported_anywhere() -> None:
    lazy = (
        "def decrypt():\n    from google.protobuf.message import DecodeError\n"
        "    from ._proto import InitConnect_pb2\n"
    )
    assert uses_protobuf(imported_names(lazy)) == {
        "google.protobuf.message",
        "google.protobuf.message.DecodeError",
        "aiomoomoo._proto",
        "aiomoomoo._proto.InitConnect_pb2",
    }
    assert uses_protobuf(imported_names("from . import _proto\n")) == {"aiomoomoo._proto"}
    assert uses_protobuf(imported_names("import google.protobuf\nimport hashlib\n")) == {
        "google.protobuf"
    }
    assert uses_protobuf(imported_names("from ._errors import ProtocolError\n")) == set()


@pytest.mark.parametrize("module", PROTOBUF_FREE)
def test_the_layers_below_the_messages_never_import_protobuf(module: str) -> None:
    # The AES key InitConnect's reply names is read by the message layer and handed to the
    # crypto module; the wire and crypto layers stay bytes in, bytes out.
    source = (PACKAGE / f"{module}.py").read_text()
    assert uses_protobuf(imported_names(source)) == set()


# -- the layers: the client library at the top of the package, two applications on top of it --

#: The client library's own modules, one per file at the top of the package.
CORE = frozenset(
    f"aiomoomoo.{path.stem}" for path in PACKAGE.glob("*.py") if path.stem.startswith("_")
) - {"aiomoomoo.__init__", "aiomoomoo.__main__"}
#: What the store may use of the core: the client's public API (for its type), the walk, the
#: many-symbol runner and the plain helpers under them; never the connection machinery.
STORE_USES = frozenset(
    f"aiomoomoo.{name}"
    for name in (
        "_client",
        "_paging",
        "_many",
        "_errors",
        "_options",
        "_security",
        "_frames",
        "_quota",
        "_rows",
    )
)


def package_modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name), generated
    protobuf code left out."""
    modules: dict[str, Path] = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if "_proto" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def resolved_imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """``(module, at top level)`` for every module the module ``name`` at ``path`` imports,
    by absolute name; ``from x import y`` also yields ``x.y``, which may be a module. An import
    inside a function is not at top level; one under ``if TYPE_CHECKING`` is never executed and
    is left out."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.orelse:
                visit(statement, top)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, top) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            if node.module is not None:  # `from . import x` imports x, not the package anew
                found.append((base, top))
            found.extend((f"{base}.{alias.name}", top) for alias in node.names)
        inner = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(path.read_text()), True)
    return found


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__",):
        return "facade"
    if parts[1] in ("store", "cli", "testing"):
        return parts[1]
    return "core"


def imports_of(module: str) -> list[tuple[str, bool]]:
    modules = package_modules()
    return [
        (name, top)
        for name, top in resolved_imports(module, modules[module])
        if name.split(".")[0] == "aiomoomoo"
    ]


def test_the_resolver_follows_relative_imports_from_subpackages(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\nfrom .._paging import walk\nfrom . import _plan\n"
        "if TYPE_CHECKING:\n    from ..cli import main\n"
        "def demo():\n    from ..testing import OpenDSimulator\n"
    )
    path = tmp_path / "_sync.py"
    path.write_text(source)
    found = resolved_imports("aiomoomoo.store._sync", path)
    assert ("aiomoomoo._paging.walk", True) in found
    assert ("aiomoomoo.store._plan", True) in found
    assert ("aiomoomoo.testing", False) in found
    assert not any(name.startswith("aiomoomoo.cli") for name, _ in found)
    assert layer_of("aiomoomoo.store._sync") == "store"
    assert layer_of("aiomoomoo._client") == "core"
    assert layer_of("aiomoomoo") == "facade"


def test_the_core_never_imports_the_applications_or_the_simulator() -> None:
    for module in package_modules():
        if layer_of(module) != "core":
            continue
        wrong = {name for name, _ in imports_of(module) if layer_of(name) != "core"}
        assert not wrong, f"{module} imports {sorted(wrong)}"


def test_the_simulator_never_imports_the_applications() -> None:
    for module in package_modules():
        if layer_of(module) == "testing":
            wrong = {n for n, _ in imports_of(module) if layer_of(n) in ("store", "cli")}
            assert not wrong, f"{module} imports {sorted(wrong)}"


def test_the_store_uses_only_the_client_api_the_walk_and_the_runner() -> None:
    for module in package_modules():
        if layer_of(module) != "store":
            continue
        for name, _ in imports_of(module):
            layer = layer_of(name)
            if layer == "store":
                continue
            assert layer == "core", f"{module} imports {name}"
            owner = ".".join(name.split(".")[:2])
            assert owner in STORE_USES, f"{module} imports {name}: not the store's to use"


def test_the_command_line_imports_the_simulator_only_lazily() -> None:
    for module in package_modules():
        if layer_of(module) != "cli":
            continue
        for name, top in imports_of(module):
            assert not (top and layer_of(name) == "testing"), f"{module} imports {name} at once"
            if layer_of(name) == "store":
                # The store's public face, not its internals.
                assert name.split(".")[2:3] in ([], *([n] for n in _public("store"))), (
                    f"{module} imports {name}"
                )


def _public(package: str) -> list[str]:
    source = (PACKAGE / package / "__init__.py").read_text()
    names = ast.literal_eval(source.split("__all__ = ", 1)[1].split("\n\n", 1)[0])
    return list(names)


def test_no_cycle_among_all_the_modules_of_the_package() -> None:
    modules = package_modules()
    graph = {
        module: {
            name
            for name, _ in resolved_imports(module, path)
            if name in modules and name != module and modules[name].name != "__init__.py"
        }
        for module, path in modules.items()
        if path.name != "__init__.py"
    }
    assert "aiomoomoo.store._sync" in graph
    assert any(module.startswith("aiomoomoo.cli.") for module in graph)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_a_command_that_needs_no_simulator_does_not_load_it() -> None:
    code = (
        "import runpy, sys\n"
        "sys.argv = ['aiomoomoo', 'short-interest', '--help']\n"
        "try:\n    runpy.run_module('aiomoomoo', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('aiomoomoo.testing')), "
        "file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--rate-limit" in done.stdout
    assert done.stderr.strip() == "[]"


def test_only_the_message_layer_imports_protobuf() -> None:
    # Replies leave _messages as plain values (_rows): paging, frames, the many-symbol runner, the
    # store and the CLI never see a protobuf message. The simulator speaks protobuf on purpose.
    sources = [
        path
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in ("testing", "_proto")
    ]
    assert {"_rows", "_frames", "_paging", "_many"} <= {path.stem for path in sources}
    users = {
        str(path.relative_to(PACKAGE))
        for path in sources
        if uses_protobuf(imported_names(path.read_text()))
    }
    assert users == {"_messages.py"}
