"""Developer and CI tasks: ``nox -s tests``, ``lint``, ``mypy``, ``docs``, ``proto``, ``bench``,
``mutate`` (the core modules) and ``mutate-store`` (the store and the sync).

Compatibility sessions: ``nox -s protobuf-4`` (and ``-5``, ``-6``, ``-7``) run the suite on the
newest release of that protobuf major; ``nox -s oldest`` runs it on the oldest release of every
runtime dependency that pyproject.toml allows; ``nox -s tests -P 3.12`` picks another Python.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
GENERATED = Path("aiomoomoo", "_proto")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# Pinned: its configuration keys and its mutants' names change between major versions.
MUTMUT = "mutmut==3.8.1"

nox.options.error_on_missing_interpreters = True
nox.options.error_on_external_run = True
nox.options.sessions = ["tests", "lint", "mypy", "docs"]
# uv when it is installed next to nox (much faster installs), virtualenv otherwise.
nox.options.default_venv_backend = "uv|virtualenv"

#: The newest release line of each protobuf major that aiomoomoo supports.
PROTOBUF_MAJORS = {
    "4": "protobuf>=4.25,<5",
    "5": "protobuf>=5.29,<6",
    "6": "protobuf>=6.33,<7",
    "7": "protobuf>=7,<8",
}
#: The extras whose floors ``oldest`` pins too: what the suite exercises besides the core.
OLDEST_EXTRAS = ("crypto", "parquet", "aiolimiter")


#: Printed before a compatibility run, so its log says what it really ran on.
SHOW_VERSIONS = (
    "import importlib.metadata as m, sys; print(sys.version.split()[0], *(f'{n}=={m.version(n)}' "
    "for n in ('protobuf', 'pandas', 'numpy', 'pyarrow', 'anyio', 'cryptography', 'aiolimiter')))"
)


def install(session: nox.Session, *extras: str, constraints: Path | None = None) -> None:
    """Install aiomoomoo in editable mode with the given extras into the session's venv."""
    spec = f".[{','.join(extras)}]" if extras else "."
    options = ["-c", str(constraints)] if constraints else []
    session.install("-e", spec, *options)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite on the newest dependencies; arguments after ``--`` go to pytest."""
    install(session, "test", "proto")
    session.run("pytest", *session.posargs)


def _protobuf_session(major: str, requirement: str) -> None:
    @nox.session(name=f"protobuf-{major}")
    def run(session: nox.Session) -> None:
        # The proto extra (grpcio-tools) needs protobuf 7, so the staleness test skips here;
        # `tests` runs it.
        session.install("-e", ".[test]", requirement)
        session.run("python", "-c", SHOW_VERSIONS)
        session.run("pytest", *session.posargs)

    run.__doc__ = f"Run the test suite with {requirement}."


for _major, _requirement in PROTOBUF_MAJORS.items():
    _protobuf_session(_major, _requirement)


def floors() -> list[str]:
    """``name==floor`` for every runtime dependency and ``OLDEST_EXTRAS`` entry in pyproject.toml.

    Every such requirement must state a floor (``>=``); one without is an error, so a new
    dependency cannot slip in untested against its oldest allowed release.
    """
    project = PYPROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in OLDEST_EXTRAS:
        requirements += project["optional-dependencies"][extra]
    pins: dict[str, str] = {}
    for requirement in requirements:
        found = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^]]*\])?\s*[^;]*?>=\s*([^,;\s]+)", requirement)
        if found is None:
            raise ValueError(f"{requirement!r} in pyproject.toml states no floor (>=)")
        name, floor = found.groups()
        pins[name.lower()] = floor
    return [f"{name}=={floor}" for name, floor in sorted(pins.items())]


@nox.session(python="3.11")
def oldest(session: nox.Session) -> None:
    """Run the test suite on the oldest release of every dependency pyproject.toml allows.

    The floors of the runtime dependencies and of the extras the suite uses are pinned with a
    constraints file; the test tools themselves resolve as usual. Python 3.11 is the floor too.
    """
    constraints = Path(session.create_tmp(), "floors.txt")
    constraints.write_text("\n".join(floors()) + "\n", encoding="utf-8")
    session.log("floors: " + ", ".join(floors()))
    install(session, "test", *OLDEST_EXTRAS, constraints=constraints)
    session.run("python", "-c", SHOW_VERSIONS)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check lint and formatting with ruff (which formats the Python in docs/*.md too)."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def mypy(session: nox.Session) -> None:
    """Type-check the package, the tests and this file (paths come from pyproject.toml)."""
    install(session, "test", "lint", "crypto", "parquet", "proto")
    session.run("mypy", *session.posargs)


@nox.session
def proto(session: nox.Session) -> None:
    """Regenerate aiomoomoo/_proto from every proto/**/*.proto and fail if it was stale."""
    install(session, "proto")
    # Delete first so a module whose .proto was removed shows up as a difference too.
    for stale in (ROOT / GENERATED).glob("*_pb2.py*"):
        stale.unlink()
    session.chdir(ROOT)
    session.run("python", "proto/generate.py")

    diff = subprocess.run(["git", "diff", "--exit-code", "--", str(GENERATED)], cwd=ROOT)
    if diff.returncode not in (0, 1):
        session.error(f"git diff failed with exit code {diff.returncode}")
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "--", str(GENERATED)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if diff.returncode != 0 or untracked:
        new = f"; new files not in git: {', '.join(untracked)}" if untracked else ""
        session.error(
            f"the generated modules in {GENERATED} were out of date with proto/ and have been "
            f"regenerated{new}. Review the changes and commit them."
        )


#: A pymdownx.snippets marker left in a built page: the include was not carried out.
UNEXPANDED_SNIPPET = re.compile(r"-\s*-\s*8\s*(?:<|&lt;)\s*-\s*-")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site; any warning, missing include or unexpanded one fails it."""
    install(session, "docs")
    site = ROOT / "site"
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site), *session.posargs)
    broken = sorted(
        str(page.relative_to(site))
        for page in site.rglob("*.html")
        # Without the tags: highlighted code splits the marker into one <span> per token.
        if UNEXPANDED_SNIPPET.search(re.sub(r"<[^>]*>", "", page.read_text(encoding="utf-8")))
    )
    if broken:
        session.error(f"pages show a snippet marker instead of the included file: {broken}")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark against the official client; writes docs/benchmarks.md and docs/benchmarks.png.

    ``nox -s bench -- --quick`` is a smoke test of the harness and writes bench/out/ instead.
    """
    install(session, "test", "parquet", "bench")
    session.run("python", "bench/run.py", *session.posargs)


def run_mutmut(session: nox.Session) -> None:
    """Run mutmut with the session's arguments in the current directory; list the survivors
    after a full run (after a partial one this would also list every mutant it did not try)."""
    session.run("mutmut", "run", "--max-children", "2", *session.posargs)
    if not session.posargs:
        session.run("mutmut", "results")


@nox.session
def mutate(session: nox.Session) -> None:
    """Mutation testing of the core modules with mutmut; not part of CI (it takes minutes).

    Which modules and which tests are in ``[tool.mutmut]`` of pyproject.toml. Arguments after
    ``--`` go to ``mutmut run``, e.g. ``nox -s mutate -- "aiomoomoo._frames*"`` for one module.
    A full run lists the survivors at the end; ``mutmut show NAME`` shows one.
    """
    install(session, "test")
    session.install(MUTMUT)
    run_mutmut(session)


@nox.session(name="mutate-store")
def mutate_store(session: nox.Session) -> None:
    """Mutation testing of the store and the sync, configured in ``[tool.mutmut-store]``.

    mutmut reads only ``[tool.mutmut]`` of the pyproject.toml where it runs, so this runs it in
    a working copy (``.nox/mutate-store/tmp/work``) of the package and the tests whose
    pyproject.toml has the store's table under that name; its ``mutants/`` stays there between
    runs, apart from the core run's. Arguments after ``--`` go to ``mutmut run``, as for
    ``mutate``; ``mutmut show NAME``, run in that directory, shows a survivor.
    """
    if "mutmut-store" not in PYPROJECT["tool"]:
        session.error("pyproject.toml has no [tool.mutmut-store] table")
    install(session, "test")
    session.install(MUTMUT)
    work = Path(session.create_tmp(), "work")
    work.mkdir(exist_ok=True)
    for tree in ("aiomoomoo", "tests"):
        shutil.rmtree(work / tree, ignore_errors=True)
        shutil.copytree(
            ROOT / tree, work / tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    text = text.replace("\n[tool.mutmut]\n", "\n[tool.mutmut-core]\n")
    text = text.replace("\n[tool.mutmut-store]\n", "\n[tool.mutmut]\n")
    (work / "pyproject.toml").write_text(text, encoding="utf-8")
    session.chdir(work)
    run_mutmut(session)
