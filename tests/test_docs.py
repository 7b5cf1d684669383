"""The documentation pages include the runnable examples, no include line is broken, and the
site loads nothing from the web (no fonts, scripts or stylesheets from other hosts)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


# What makes a browser fetch from another host while showing a page: a script, a stylesheet, a
# font, a preconnect, an image or a frame. Plain links (<a href>) are only followed when clicked.
REMOTE_LOAD = re.compile(
    r"<(?:script|img|iframe|source|audio|video|embed)\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//"
    r"|<link\b(?=[^>]*\brel\s*=\s*[\"']?(?:stylesheet|preconnect|preload|prefetch|modulepreload"
    r"|dns-prefetch|icon))[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//"
    r"|@import\s+(?:url\()?[\"']?(?:https?:)?//|url\(\s*[\"']?(?:https?:)?//"
    r"|fonts\.(?:googleapis|gstatic)\.com"
    # mkdocs-material's own script fetches mermaid from unpkg.com for any page with a diagram
    # (its only other remote fetch, a ResizeObserver polyfill, is for browsers without one).
    r"|```\s*mermaid|class=[\"'][^\"']*\bmermaid\b",
    re.IGNORECASE,
)


def remote_loads(text: str) -> list[str]:
    return [match.group(0) for match in REMOTE_LOAD.finditer(text)]


def test_the_remote_load_check_sees_what_a_browser_would_fetch() -> None:
    loads = [
        '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">',
        '<link rel="preconnect" href="https://fonts.gstatic.com" crossorigin>',
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>',
        "<script src=//unpkg.com/x.js></script>",
        "@import url('https://example.org/a.css');",
        "body { background: url(https://example.org/a.png) }",
        "```mermaid\ngraph LR; a-->b\n```",
        '<pre class="mermaid"><code>graph LR</code></pre>',
    ]
    assert all(remote_loads(text) for text in loads), [t for t in loads if not remote_loads(t)]
    local = [
        '<a href="https://anyio.readthedocs.io/en/stable/threads.html">anyio</a>',
        '<link rel="stylesheet" href="../assets/stylesheets/main.css">',
        '<script src="../assets/javascripts/bundle.js"></script>',
        '<img src="benchmarks.png" alt="">',
    ]
    assert not [text for text in local if remote_loads(text)]


def test_the_site_config_loads_no_fonts_or_scripts_from_the_web() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    # mkdocs-material fetches Google Fonts unless the theme's font is false.
    theme = config.split("\ntheme:\n", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"^  font: false$", theme, re.M), "theme.font must be false"
    for key in ("extra_javascript", "extra_css"):
        for entry in re.findall(rf"^{key}:\n((?:\s+- .*\n)+)", config, re.M):
            assert "//" not in entry, f"{key} loads from the web: {entry}"
    pages = {page.name: page.read_text(encoding="utf-8") for page in DOCS.glob("*.md")}
    assert {name: remote_loads(text) for name, text in pages.items() if remote_loads(text)} == {}


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="needs the docs extra (mkdocs-material)"
)
def test_the_built_site_loads_nothing_from_the_web(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    pages = [*site.rglob("*.html"), *site.rglob("*.css")]
    assert len(pages) > 10
    found = {
        str(page.relative_to(site)): loads
        for page in pages
        if (loads := remote_loads(page.read_text(encoding="utf-8")))
    }
    assert found == {}


# -- pages whose every code block runs -------------------------------------------------------

#: Pages whose ```python blocks, and ``$ aiomoomoo ...`` lines in ```console blocks, run in
#: order in one namespace, in a directory holding a store named short.db.
RUN_PAGES = ("elsewhere.md",)
FENCE = re.compile(r"^```(?P<lang>\w+)\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", RUN_PAGES)
def test_every_recipe_on_the_page_runs(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shlex

    from aiomoomoo.cli import main

    from .store._stores import mixed

    mixed(tmp_path / "short.db")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    blocks = list(FENCE.finditer((DOCS / page).read_text(encoding="utf-8")))
    for number, block in enumerate(blocks):
        lang, body = block["lang"], block["body"]
        if lang == "python":
            exec(compile(body, f"{page}, block {number}", "exec"), namespace)
            continue
        assert lang == "console", f"{page}, block {number}: a {lang} block cannot be run"
        commands = [line for line in body.splitlines() if line.startswith("$ aiomoomoo ")]
        assert commands, f"{page}, block {number}: no $ aiomoomoo line to run"
        for line in commands:
            assert main(shlex.split(line)[2:]) == 0, line
    capsys.readouterr()
