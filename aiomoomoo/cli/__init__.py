"""The ``aiomoomoo`` command line: ``short-interest``, ``simulate`` and the store commands."""

from ._main import main

__all__ = ["main"]
