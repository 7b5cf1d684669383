"""The store's file, without a gateway: opening and reading never wait for another program's write
transaction, a write waits for it at most the store's ``wait`` and a cancellation ends that wait
at once, the sync lock follows the file whatever the path, and a file that is no store, or a
full disk, is a `StoreError` saying so."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from pathlib import Path

import pytest

from aiomoomoo import ShortInterestStore, StoreBusyError, StoreError, StoreLockedError
from aiomoomoo.store import _schema
from aiomoomoo.store._file import Waiting, file_errors

from ._files import (
    AAPL,
    damage_versions,
    room_for,
    store_with_rows,
    write_rows,
    write_transaction,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return store_with_rows(tmp_path / "s.db")


@pytest.mark.parametrize("read_only", [False, True])
def test_opening_and_reading_do_not_wait_for_a_write_transaction(
    path: Path, read_only: bool
) -> None:
    # Before, opening took the write lock: 30 s of waiting, then "database is locked".
    with (
        write_transaction(path),
        ShortInterestStore(path, read_only=read_only, wait=0) as store,
    ):
        assert store.codes() == ["US.AAPL"]
        assert len(store.history("US.AAPL")) == 28
        assert store.summary()["rows"].tolist() == [28]


def test_a_write_waits_for_another_program_at_most_wait_then_says_why(path: Path) -> None:
    with ShortInterestStore(path) as store, write_transaction(path):
        waiting = Waiting(path, 0.2)
        with pytest.raises(StoreBusyError, match="another program holds a write transaction"):
            waiting.blocking(lambda: store._writer.record_outcome(AAPL, None))
    # Once it ends, the same write goes through.
    with ShortInterestStore(path) as store:
        Waiting(path, 0.2).blocking(lambda: store._writer.record_outcome(AAPL, None))
        assert store.summary()["last_synced"].notna().all()


@pytest.mark.anyio
async def test_a_cancellation_ends_a_writes_wait_at_once(path: Path) -> None:
    with ShortInterestStore(path) as store, write_transaction(path):
        # A wait far longer than the test: only the cancellation can end it.
        waiting = Waiting(path, 3600)
        task = asyncio.ensure_future(
            waiting.awaiting(lambda: store._writer.record_outcome(AAPL, None))
        )
        await asyncio.sleep(0.2)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_the_sync_lock_follows_the_file_not_the_name(path: Path) -> None:
    link = path.with_name("link.db")
    link.symlink_to(path.name)
    (path.parent / "sub").mkdir()
    other_spelling = path.parent / "sub" / ".." / path.name
    with ShortInterestStore(path) as store, store._lock:
        for name in (link, other_spelling):
            with (
                ShortInterestStore(name) as other,
                pytest.raises(StoreLockedError, match="another sync is running"),
            ):
                other._lock.acquire()


def test_read_only_creates_nothing_and_refuses_to_sync(tmp_path: Path, path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        ShortInterestStore(tmp_path / "none.db", read_only=True)
    assert not (tmp_path / "none.db").exists()
    with ShortInterestStore(path, read_only=True) as store:
        assert store.read_only
        with pytest.raises(ValueError, match="read_only=True"):
            asyncio.run(store.sync(None, ["US.AAPL"]))  # type: ignore[arg-type]


@pytest.mark.parametrize("read_only", [False, True])
def test_a_file_that_is_no_store_is_a_store_error(tmp_path: Path, read_only: bool) -> None:
    text = tmp_path / "codes.txt"
    text.write_text("US.AAPL\n" * 200)
    with pytest.raises(StoreError, match="not an SQLite file"):
        ShortInterestStore(text, read_only=read_only)
    with pytest.raises(StoreError, match="is a directory"):
        ShortInterestStore(tmp_path, read_only=read_only)
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE t (x)")
    if read_only:
        with pytest.raises(StoreError, match="not a store"):
            ShortInterestStore(other, read_only=True)


def test_wait_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="wait must be"):
        ShortInterestStore(tmp_path / "s.db", wait=-1)
    with pytest.raises(TypeError, match="wait must be"):
        ShortInterestStore(tmp_path / "s.db", wait="5")  # type: ignore[arg-type]
    assert not (tmp_path / "s.db").exists()


def test_a_full_disk_is_a_store_error_and_keeps_what_was_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file that may not grow past a few pages: SQLite answers as for a full disk (SQLITE_FULL).
    monkeypatch.setattr(_schema, "PRAGMAS", (*_schema.PRAGMAS, room_for(2, tmp_path)))
    path = tmp_path / "s.db"
    with (
        ShortInterestStore(path) as store,
        pytest.raises(StoreError, match=r"is full \(database or disk is full\): what was written"),
        file_errors(path),
    ):
        write_rows(store, months=12)
    monkeypatch.undo()
    with ShortInterestStore(path) as store:
        kept = len(store.history("US.AAPL"))
    assert kept % 28 == 0
    assert 0 < kept < 12 * 28


def test_damage_found_after_opening_is_a_store_error(path: Path) -> None:
    damage_versions(path)
    with ShortInterestStore(path) as store:
        assert store.codes() == ["US.AAPL"]
        with pytest.raises(StoreError, match="is damaged"):
            store.history("US.AAPL")
        # Read as the batches are taken, after the call returned: said the same way.
        with pytest.raises(StoreError, match="is damaged"):
            list(store.history_batches())


def test_batches_taken_after_the_store_closed_say_it_is_closed(path: Path) -> None:
    store = ShortInterestStore(path)
    batches = store.history_batches()
    store.close()
    with pytest.raises(ValueError, match="closed"):
        next(batches)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes read-only files"
)
def test_a_read_only_file_can_be_read_and_not_written(path: Path) -> None:
    path.chmod(0o444)
    with ShortInterestStore(path, read_only=True) as store:
        assert store.codes() == ["US.AAPL"]
    with (
        ShortInterestStore(path) as store,
        pytest.raises(StoreError, match="is read-only"),
        file_errors(path),
    ):
        write_rows(store)
