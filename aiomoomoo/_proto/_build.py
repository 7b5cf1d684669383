"""Build a generated module's message classes at import, from its serialized file descriptor.

protoc's own Python output checks at import that the protobuf runtime is at least as new as the
protoc that wrote it, and protobuf supports such code only within one major version. The modules
in this package instead carry only the serialized ``FileDescriptorProto`` (written by
``proto/generate.py``) and build their classes here through the runtime's public API
(``descriptor_pool``, ``message_factory.GetMessageClass``), which every protobuf from 4.25 to 7.x
has, so aiomoomoo installs beside whatever protobuf the rest of a stack needs.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FileDescriptor
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper


def _name_class(cls: type, module: str, qualname: str, descriptor: Descriptor) -> None:
    """Give a built class the module and name a generated one has, so reprs and pickles work."""
    cls.__module__ = module
    cls.__qualname__ = qualname
    for name, nested in descriptor.nested_types_by_name.items():
        _name_class(getattr(cls, name), module, f"{qualname}.{name}", nested)


def build_file(namespace: dict[str, Any], serialized: bytes) -> FileDescriptor:
    """Add one ``.proto`` file to the default pool and put its types into ``namespace``.

    ``namespace`` is the calling module's ``globals()``; the names put there are the ones protoc's
    Python output defines and the committed ``.pyi`` stub declares: each top-level message class,
    each top-level enum as a wrapper with ``Name``/``Value``, and each enum value as an ``int``.
    The files it imports must already be in the pool (the generated module imports them first).
    """
    file = descriptor_pool.Default().AddSerializedFile(serialized)
    module = str(namespace["__name__"])
    for name, enum in file.enum_types_by_name.items():
        namespace[name] = EnumTypeWrapper(enum)
        for value in enum.values:
            namespace[value.name] = value.number
    for name, message in file.message_types_by_name.items():
        cls = message_factory.GetMessageClass(message)
        _name_class(cls, module, name, message)
        namespace[name] = cls
    return file
