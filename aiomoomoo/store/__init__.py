"""The local short-interest dataset: an SQLite store kept current by `ShortInterestStore.sync`.

The store sits on top of the client library and uses only its public API and the paging and
many-symbol machinery; the client never imports it. Inside: ``_schema`` (the file format and
every SQL statement of the store's own), ``_format`` (format versions: creating, refusing,
migrating), ``_file`` (opening the file, waiting for other writers, what its errors mean),
``_write`` (the one writer), ``_read`` (the reads), ``_screen_sql`` (the SQL of screens and
changes), ``_arrow`` (Arrow tables and Parquet datasets), ``_args`` (argument checks), ``_plan``
(what a sync asks for, pure), ``_sync`` (the sync), ``_lock`` (one sync per file) and
``_store`` (the `ShortInterestStore` they make up).
"""

from ._plan import MarketOutlook, SyncPlan, next_due
from ._store import DEFAULT_WAIT, ShortInterestStore
from ._sync import MarketSync, SyncProgress, SyncReport

__all__ = [
    "DEFAULT_WAIT",
    "MarketOutlook",
    "MarketSync",
    "ShortInterestStore",
    "SyncPlan",
    "SyncProgress",
    "SyncReport",
    "next_due",
]
