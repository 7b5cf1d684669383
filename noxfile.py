"""Developer and CI tasks: ``nox -s tests``, ``lint``, ``mypy``, ``docs``, ``proto``, ``bench``,
``mutate``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PROTO_ROOT = ROOT / "proto"
GENERATED = Path("aiomoomoo", "_proto")
# Must match the versions pinned in the "test" extra and recorded in the generated files.
PROTO_TOOLS = ("grpcio-tools==1.85.1", "mypy-protobuf==5.1.0")
# Pinned: its configuration keys and its mutants' names change between major versions.
MUTMUT = "mutmut==3.8.1"

nox.options.error_on_missing_interpreters = True
nox.options.error_on_external_run = True
nox.options.sessions = ["tests", "lint", "mypy", "docs"]


def install(session: nox.Session, *extras: str) -> None:
    """Install aiomoomoo in editable mode with the given extras into the session's venv."""
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite; arguments after ``--`` go to pytest."""
    install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check lint and formatting with ruff."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def mypy(session: nox.Session) -> None:
    """Type-check the package, the tests and this file (paths come from pyproject.toml)."""
    install(session, "test", "lint", "crypto", "parquet")
    session.run("mypy", *session.posargs)


@nox.session
def proto(session: nox.Session) -> None:
    """Regenerate aiomoomoo/_proto from proto/ and fail if the committed files were stale."""
    session.install(*PROTO_TOOLS)
    sources = sorted(str(path.relative_to(ROOT)) for path in PROTO_ROOT.rglob("*.proto"))
    if not sources:
        session.error(f"no .proto files under {PROTO_ROOT}")
    # Delete first so a module whose .proto was removed shows up as a difference too.
    for stale in (ROOT / GENERATED).glob("*_pb2.py*"):
        stale.unlink()
    session.chdir(ROOT)
    session.run(
        "python",
        "-m",
        "grpc_tools.protoc",
        "-I",
        "proto",
        "--python_out=.",
        "--mypy_out=.",
        *sources,
    )

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


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site; any warning fails the build."""
    install(session, "docs")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark against the official client; writes docs/benchmarks.md and docs/benchmarks.png.

    ``nox -s bench -- --quick`` is a smoke test of the harness and writes bench/out/ instead.
    """
    install(session, "test", "parquet", "bench")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def mutate(session: nox.Session) -> None:
    """Mutation testing of the core modules with mutmut; not part of CI (it takes minutes).

    Which modules and which tests are in ``[tool.mutmut]`` of pyproject.toml. Arguments after
    ``--`` go to ``mutmut run``, e.g. ``nox -s mutate -- "aiomoomoo._frames*"`` for one module.
    The survivors are listed at the end; ``mutmut show NAME`` shows one.
    """
    install(session, "test")
    session.install(MUTMUT)
    session.run("mutmut", "run", "--max-children", "2", *session.posargs)
    session.run("mutmut", "results")
