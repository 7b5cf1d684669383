"""Callbacks that do not keep their owner alive.

The event loop holds a connection as long as its socket is open, and the connection holds the
callbacks it was given. If those callbacks held the client, a client its owner forgot to close
would never be collected, never warn with ``ResourceWarning`` and keep its socket open for ever.
So the session hands the connection weak callbacks, and the client names itself in the session's
errors through a weak reference.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import ParamSpec, Protocol

__all__ = ["weak_callback", "weak_describer"]

_P = ParamSpec("_P")


class _Named(Protocol):
    @property
    def _name(self) -> str: ...


def weak_callback(method: Callable[_P, None]) -> Callable[_P, None]:
    """``method`` (a bound method) as a callback that does nothing once its object is gone."""
    ref = weakref.WeakMethod(method)

    def call(*args: _P.args, **kwargs: _P.kwargs) -> None:
        bound = ref()
        if bound is not None:
            bound(*args, **kwargs)

    return call


def weak_describer(owner: _Named, gone: str) -> Callable[[], str]:
    """How errors name ``owner`` (its ``_name``), without keeping it alive; ``gone`` once it is
    collected."""
    ref = weakref.ref(owner)

    def describe() -> str:
        alive = ref()
        return alive._name if alive is not None else gone

    return describe
