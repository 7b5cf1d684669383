"""Our protobuf schema: the generated modules are fresh and match the official SDK's wire format."""

from __future__ import annotations

import importlib
import importlib.resources
import shutil
import signal
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor

from aiomoomoo._proto import (
    InitConnect_pb2,
    KeepAlive_pb2,
    Notify_pb2,
    Qot_Common_pb2,
    Qot_GetShortInterest_pb2,
)

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
GENERATED = ROOT / "aiomoomoo" / "_proto"


def protoc_gen_mypy() -> str:
    """Path of mypy-protobuf's plugin, preferring the one installed next to this interpreter."""
    plugin = shutil.which("protoc-gen-mypy", path=sysconfig.get_path("scripts")) or shutil.which(
        "protoc-gen-mypy"
    )
    if plugin is None:
        pytest.fail("protoc-gen-mypy not found: install the test extra (mypy-protobuf)")
    return plugin


def test_generated_modules_are_up_to_date(tmp_path: Path) -> None:
    protoc: Any = importlib.import_module("grpc_tools.protoc")
    include = importlib.resources.files("grpc_tools") / "_proto"
    sources = sorted(str(path) for path in PROTO_ROOT.rglob("*.proto"))
    assert sources, f"no .proto files under {PROTO_ROOT}"

    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--plugin=protoc-gen-mypy={protoc_gen_mypy()}",
            f"--python_out={tmp_path}",
            f"--mypy_out={tmp_path}",
            *sources,
        ]
    )
    assert status == 0, "protoc failed; see its output above"

    fresh_dir = tmp_path / "aiomoomoo" / "_proto"
    fresh = {path.name: path for path in fresh_dir.iterdir()}
    committed = {path.name: path for path in GENERATED.glob("*_pb2.py*")}
    assert sorted(committed) == sorted(fresh), "generated modules missing or orphaned"
    stale = [
        name for name in sorted(fresh) if fresh[name].read_bytes() != committed[name].read_bytes()
    ]
    assert not stale, f"stale generated modules {stale}: run `nox -s proto` and commit the result"


def official_module(name: str) -> ModuleType:
    """Import ``moomoo.common.pb.<name>``, undoing the SIGINT handler that importing moomoo sets."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        return importlib.import_module(f"moomoo.common.pb.{name}")
    finally:
        signal.signal(signal.SIGINT, previous)


FieldShape = tuple[str, int, int, int, object, str | None]


def label(field: FieldDescriptor) -> int:
    # protobuf 7 dropped FieldDescriptor.label; the label survives as these two flags.
    if field.is_repeated:
        return FieldDescriptor.LABEL_REPEATED
    if field.is_required:
        return FieldDescriptor.LABEL_REQUIRED
    return FieldDescriptor.LABEL_OPTIONAL


def field_shape(field: FieldDescriptor) -> FieldShape:
    """What decides a field's bytes on the wire, minus the package names that differ by design."""
    referenced = field.message_type or field.enum_type
    return (
        field.name,
        field.number,
        field.type,
        label(field),
        field.default_value if field.has_default_value else None,
        referenced.name if referenced is not None else None,
    )


def assert_same_message(ours: Descriptor, theirs: Descriptor, seen: set[str]) -> None:
    """Compare field by field, following message-typed fields into the messages they name."""
    if ours.full_name in seen:
        return
    seen.add(ours.full_name)
    assert ours.name == theirs.name
    ours_fields = [field_shape(f) for f in sorted(ours.fields, key=lambda f: f.number)]
    their_fields = [field_shape(f) for f in sorted(theirs.fields, key=lambda f: f.number)]
    assert ours_fields == their_fields, f"{ours.full_name} differs from {theirs.full_name}"
    for field in ours.fields:
        if field.message_type is not None:
            their_type = theirs.fields_by_number[field.number].message_type
            assert their_type is not None
            assert_same_message(field.message_type, their_type, seen)


def assert_same_file(ours: FileDescriptor, theirs: FileDescriptor) -> None:
    assert sorted(ours.message_types_by_name) == sorted(theirs.message_types_by_name)
    seen: set[str] = set()
    for name, message in ours.message_types_by_name.items():
        assert_same_message(message, theirs.message_types_by_name[name], seen)


@pytest.mark.parametrize(
    ("ours", "official_name"),
    [
        (InitConnect_pb2, "InitConnect_pb2"),
        (KeepAlive_pb2, "KeepAlive_pb2"),
        (Qot_GetShortInterest_pb2, "Qot_GetShortInterest_pb2"),
    ],
)
def test_whole_file_matches_official_schema(ours: ModuleType, official_name: str) -> None:
    assert_same_file(ours.DESCRIPTOR, official_module(official_name).DESCRIPTOR)


@pytest.mark.parametrize(
    ("ours", "official_name", "message"),
    [
        (Notify_pb2, "Notify_pb2", "S2C"),
        (Qot_Common_pb2, "Qot_Common_pb2", "Security"),
    ],
)
def test_message_matches_official_schema(
    ours: ModuleType, official_name: str, message: str
) -> None:
    """Files we only partly copy: the messages we use, and every message they contain."""
    theirs = official_module(official_name).DESCRIPTOR.message_types_by_name[message]
    assert_same_message(ours.DESCRIPTOR.message_types_by_name[message], theirs, set())
