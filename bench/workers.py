"""The measuring side's plumbing: one worker process per client, driven over a pipe by :mod:`run`.

Each client lives in a process of its own, so ``time.process_time()`` there is that client's CPU
and nothing else's: not the lean server's (another process), not the other clients' (idle in
their own processes, blocked on their pipes, while this one runs), not the orchestrator's. The
official SDK is imported only in its worker and aiomoomoo's workers never import it.

``Worker("official")``, ``Worker("aiomoomoo")`` (asyncio's event loop) and
``Worker("aiomoomoo-uvloop")`` hold a :class:`runner_official.OfficialRunner` or a
:class:`runner_ours.OursRunner`; ``worker.call("pages", n=1000)`` runs that method there.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["KINDS", "Worker"]


def _official() -> Any:
    from runner_official import OfficialRunner

    return OfficialRunner()


def _ours(loop: str) -> Callable[[], Any]:
    def make() -> Any:
        from runner_ours import OursRunner

        return OursRunner(loop)

    return make


_RUNNERS: dict[str, Callable[[], Any]] = {
    "official": _official,
    "aiomoomoo": _ours("asyncio"),
    "aiomoomoo-uvloop": _ours("uvloop"),
}
KINDS = tuple(_RUNNERS)


def _serve(control: multiprocessing.connection.Connection, kind: str) -> None:
    try:
        runner = _RUNNERS[kind]()
        control.send(("ok", None))
    except BaseException:
        control.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            method, kwargs = control.recv()
        except EOFError:
            break
        if method == "exit":
            runner.close()
            control.send(("ok", None))
            break
        try:
            result = getattr(runner, method)(**kwargs)
        except BaseException:
            control.send(("error", traceback.format_exc()))
        else:
            control.send(("ok", result))


class Worker:
    """A child process holding one client; ``call("pages", n=1000)`` runs a method there."""

    def __init__(self, kind: str) -> None:
        if kind not in _RUNNERS:
            raise ValueError(f"unknown worker kind {kind!r}; one of {', '.join(_RUNNERS)}")
        context = multiprocessing.get_context("spawn")
        self.kind = kind
        self._control, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, kind), name=f"bench-{kind}")
        self.process.start()
        child.close()
        self._reply()

    def _reply(self) -> Any:
        status, value = self._control.recv()
        if status != "ok":
            raise RuntimeError(f"{self.kind} worker failed:\n{value}")
        return value

    def call(self, method: str, **kwargs: Any) -> Any:
        self._control.send((method, kwargs))
        return self._reply()

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(EOFError, BrokenPipeError, OSError, RuntimeError):
                self.call("exit")
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        self._control.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
