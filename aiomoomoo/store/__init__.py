"""The local short-interest dataset: an SQLite store kept current by `ShortInterestStore.sync`.

The store sits on top of the client library and uses only its public API and the paging and
many-symbol machinery; the client never imports it.
"""

from ._plan import SyncPlan
from ._store import ShortInterestStore
from ._sync import SyncProgress, SyncReport, next_due

__all__ = ["ShortInterestStore", "SyncPlan", "SyncProgress", "SyncReport", "next_due"]
