"""The documentation pages include the runnable examples, and no include line is broken."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# Anything that looks like a pymdownx.snippets marker, however a formatter respaced it
# (ruff once rewrote `--8<-- "x"` as `--8 < --"x"`, and mkdocs showed that line as code).
LOOSE = re.compile(r"-\s*-\s*8\s*<\s*-\s*-")
# The one form the docs use: the marker alone on its line, then a quoted path.
CANONICAL = re.compile(r'^\s*--8<-- "(?P<path>[^"]+)"$')


def snippet_lines() -> list[tuple[str, str]]:
    return [
        (f"{page.name}:{number}", line)
        for page in sorted(DOCS.glob("*.md"))
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if LOOSE.search(line)
    ]


def test_every_include_line_is_well_formed_and_names_a_file() -> None:
    lines = snippet_lines()
    assert lines, "no snippet includes found in docs/"
    mangled = [where for where, line in lines if not CANONICAL.match(line)]
    assert not mangled, f"mangled snippet includes at {mangled}"
    missing = [
        where
        for where, line in lines
        if not (ROOT / CANONICAL.match(line)["path"]).is_file()  # type: ignore[index]
    ]
    assert not missing, f"includes naming no file at {missing}"


def test_every_example_is_shown_in_the_docs() -> None:
    included = {
        CANONICAL.match(line)["path"]  # type: ignore[index]
        for _, line in snippet_lines()
        if CANONICAL.match(line)
    }
    examples = {path.relative_to(ROOT).as_posix() for path in (ROOT / "examples").glob("*.py")}
    assert examples <= included, f"examples not shown in docs/: {sorted(examples - included)}"
