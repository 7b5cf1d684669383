"""The sync lock: one sync at a time per store file, across processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType
from typing import IO

from .._errors import StoreLockedError

__all__ = ["FileLock"]


class FileLock:
    """An exclusive lock on ``<store>.lock``, held by one sync; the OS drops it if we die.

    Used as a context manager, or through `acquire` and `release`. A lock already held (by
    this process or another) raises `StoreLockedError` naming the holder's pid.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock at once, or raise `StoreLockedError`."""
        file = open(self._path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
        try:
            _lock_file(file)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise StoreLockedError(
                f"another sync is running on {self._path.with_suffix('')} ({holder}); "
                "wait for it to finish, or run the syncs one after the other"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()}")
        file.flush()
        self._file = file

    def release(self) -> None:
        """Let the lock go (nothing happens if it is not held)."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _lock_file(file: IO[str]) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
        return
    import fcntl

    # flock, not fcntl locks: two opens in one process conflict too, so two stores on one
    # file in one program are refused the same way as two programs.
    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
