"""The composition root: settings plus the lazily opened catalog and store for one server."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from costhawk_mcp.config import Settings
from costhawk_mcp.pricing.catalog import Catalog, load_catalog
from costhawk_mcp.store.db import Database
from costhawk_mcp.store.store import Store


@dataclass
class App:
    """What every handler needs. Heavy things load on first use so the server starts fast."""

    settings: Settings
    _catalog: Catalog | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def catalog(self) -> Catalog:
        """The pricing catalog (the user's own, if `pricing update` wrote one)."""
        if self._catalog is None:
            with self._lock:
                if self._catalog is None:
                    self._catalog = load_catalog(self.settings.user_catalog_path)
        return self._catalog

    @property
    def store(self) -> Store:
        """The usage store; the file is opened per operation, never held (see store/db.py)."""
        if self._store is None:
            catalog = self.catalog
            with self._lock:
                if self._store is None:
                    db = Database(self.settings.db_path, lock_timeout=self.settings.lock_timeout_s)
                    self._store = Store(db, catalog)
        return self._store
