"""The package's modules import one way: no cycle, however long, among ``aiomoomoo/*.py``; and
the wire and crypto layers below the message layer never import protobuf."""

from __future__ import annotations

import ast
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
