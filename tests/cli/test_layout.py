"""The command line's imports: the simulator (`aiomoomoo.testing`) is loaded only inside the
code paths of ``--demo`` and ``simulate``, never when a CLI module is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import aiomoomoo.cli

CLI = Path(aiomoomoo.cli.__file__).parent


def imported_at_import_time(tree: ast.Module) -> set[str]:
    """What the module imports when it is imported: not in functions (run later), not in
    ``if TYPE_CHECKING:`` blocks (never run)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def test_no_cli_module_imports_the_simulator_at_import_time() -> None:
    modules = sorted(CLI.glob("*.py"))
    assert len(modules) > 5
    for path in modules:
        imported = imported_at_import_time(ast.parse(path.read_text(encoding="utf-8")))
        testing = {name for name in imported if name.lstrip(".").split(".")[0] == "testing"}
        testing |= {name for name in imported if name.startswith("aiomoomoo.testing")}
        assert not testing, f"{path.name} imports {testing} when imported"


def test_only_demo_and_simulate_import_it_at_all() -> None:
    importers = {
        path.name
        for path in CLI.glob("*.py")
        if "..testing import" in path.read_text(encoding="utf-8")
    }
    # _args only for the simulate command's --quota, _gateway for --demo.
    assert importers == {"_args.py", "_gateway.py", "_simulate.py"}


def test_the_checker_sees_a_top_level_import() -> None:
    tree = ast.parse(
        "from ..testing import Quota\n"
        "if TYPE_CHECKING:\n    from ..testing import OpenDSimulator\n"
        "def later():\n    from ..testing import load_histories\n"
        "class Later:\n    def run(self):\n        import aiomoomoo.testing\n"
        "    import aiomoomoo._client\n"
    )
    assert imported_at_import_time(tree) == {"..testing", "aiomoomoo._client"}
