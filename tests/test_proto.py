"""Our protobuf schema: the generated modules are fresh and match the official SDK's wire format."""

from __future__ import annotations

import importlib
import importlib.util
import pickle
import signal
from pathlib import Path
from types import ModuleType

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


def load_generator() -> ModuleType:
    """``proto/generate.py``, which writes aiomoomoo/_proto; it needs the ``proto`` extra."""
    pytest.importorskip(
        "grpc_tools.protoc",
        reason="the pinned generator (proto extra) needs protobuf 7; `nox -s tests` installs it",
    )
    spec = importlib.util.spec_from_file_location("generate", PROTO_ROOT / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_modules_are_up_to_date(tmp_path: Path) -> None:
    generator = load_generator()
    assert generator.sources(), f"no .proto files under {PROTO_ROOT}"
    written = generator.generate(tmp_path)
    fresh = {path.name: path for path in written}
    committed = {path.name: path for path in GENERATED.glob("*_pb2.py*")}
    assert sorted(committed) == sorted(fresh), "generated modules missing or orphaned"
    stale = [
        name for name in sorted(fresh) if fresh[name].read_bytes() != committed[name].read_bytes()
    ]
    assert not stale, f"stale generated modules {stale}: run `nox -s proto` and commit the result"


def test_every_proto_file_has_a_module_that_loads_on_this_runtime() -> None:
    """Each .proto under proto/ has a module; it builds its types on whatever protobuf is here."""
    names = sorted(path.relative_to(PROTO_ROOT) for path in PROTO_ROOT.rglob("*.proto"))
    assert names
    for name in names:
        module = importlib.import_module(
            ".".join(name.with_name(f"{name.stem}_pb2").with_suffix("").parts)
        )
        assert module.DESCRIPTOR.name == name.as_posix()
        for message_name, message in module.DESCRIPTOR.message_types_by_name.items():
            cls = getattr(module, message_name)
            assert cls.DESCRIPTOR is message
            assert cls.__module__ == module.__name__
            assert type(cls.FromString(cls().SerializePartialToString())) is cls
        for enum_name, enum in module.DESCRIPTOR.enum_types_by_name.items():
            for value in enum.values:
                assert getattr(module, value.name) == value.number
                assert getattr(module, enum_name).Name(value.number) == value.name


def test_messages_pickle_and_name_their_module() -> None:
    reply = Qot_GetShortInterest_pb2.Response(retType=0, retMsg="ok")
    assert pickle.loads(pickle.dumps(reply)) == reply
    assert repr(type(reply)) == ("<class 'aiomoomoo._proto.Qot_GetShortInterest_pb2.Response'>")


def official_module(name: str) -> ModuleType:
    """Import ``moomoo.common.pb.<name>``, undoing the SIGINT handler that importing moomoo sets."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        return importlib.import_module(f"moomoo.common.pb.{name}")
    finally:
        signal.signal(signal.SIGINT, previous)


FieldShape = tuple[str, int, int, int, object, str | None]


def label(field: FieldDescriptor) -> int:
    # protobuf 7 dropped FieldDescriptor.label for these two flags, which protobuf 4.25 lacks.
    if not hasattr(field, "is_repeated"):
        return int(getattr(field, "label"))  # noqa: B009 (not in protobuf 7's stubs)
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
