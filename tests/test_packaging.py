"""What installing aiomoomoo brings in: only the dependencies it uses."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

from packaging.requirements import Requirement


def runtime_requirements() -> dict[str, Requirement]:
    requirements = [Requirement(line) for line in importlib.metadata.requires("aiomoomoo") or []]
    return {
        r.name.lower(): r
        for r in requirements
        if r.marker is None or r.marker.evaluate({"extra": ""})  # not only with an extra
    }


def test_aiolimiter_is_an_extra_and_never_imported() -> None:
    assert "aiolimiter" not in runtime_requirements()
    extras = importlib.metadata.metadata("aiomoomoo").get_all("Provides-Extra") or []
    assert "aiolimiter" in extras
    code = (
        "import sys, aiomoomoo, aiomoomoo.testing, aiomoomoo.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiolimiter'))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert imported == "[]"


def test_protobuf_is_not_pinned_to_one_major() -> None:
    protobuf = runtime_requirements()["protobuf"]
    for version in ("4.25.0", "5.29.6", "6.33.6", "7.36.2"):
        assert protobuf.specifier.contains(version), (protobuf, version)
