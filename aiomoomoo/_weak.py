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
from typing import ParamSpec, TypeVar

__all__ = ["weak_callback", "weak_describer"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def weak_callback(method: Callable[_P, None]) -> Callable[_P, None]:
    """``method`` (a bound method) as a callback that does nothing once its object is gone."""
    ref = weakref.WeakMethod(method)

    def call(*args: _P.args, **kwargs: _P.kwargs) -> None:
        bound = ref()
        if bound is not None:
            bound(*args, **kwargs)

    return call


def weak_describer(owner: _T, name: Callable[[_T], str], gone: str) -> Callable[[], str]:
    """How errors name ``owner``, ``name(owner)``, without keeping it alive; ``gone`` once it
    is collected. ``name`` must not hold ``owner`` itself (take it as its argument)."""
    ref = weakref.ref(owner)

    def describe() -> str:
        alive = ref()
        return name(alive) if alive is not None else gone

    return describe
