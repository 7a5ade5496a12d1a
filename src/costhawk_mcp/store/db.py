"""Opening the DuckDB file safely when several processes want it.

DuckDB lets one process hold a file for writing, or any number of processes hold it read-only,
never both. An assistant may start two servers, and a user may run `costhawk-mcp import` or `sync`
while they run. The strategy:

* **Short-lived connections.** Nothing keeps the file open between operations. Each query opens
  it read-only, runs, and closes; each write opens it read-write for one transaction and closes
  (DuckDB checkpoints on close, so the next reader does not replay a WAL).
* **Retry on lock.** An open that meets another process's lock is retried with exponential
  backoff and jitter for up to `lock_timeout` seconds (COSTHAWK_LOCK_TIMEOUT, default 30), then
  fails with `StoreBusy`, a clear message, never a corrupt file.
* **Writers first.** A writer that has to wait leaves a small intent file beside the database
  (`<db>.writer-waiting-<pid>-<thread>`); readers in any process wait while a live writer's intent
  exists, so constant reading cannot starve an import or a sync. Files of dead processes are ignored.
* **One mode at a time inside a process.** DuckDB refuses a read-write and a read-only connection
  to the same file in one process, so a readers-writer lock orders them: many readers together,
  or one writer alone.
* **Transactions.** A write is one transaction: it commits whole or not at all, so a killed
  import or sync loses nothing already committed and leaves nothing half-written.

`:memory:` (tests) uses one shared connection with a cursor per use.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from costhawk_mcp.errors import StoreBusy, StoreError

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger("costhawk_mcp.store")

Connection = Any  # duckdb.DuckDBPyConnection; duckdb ships no type stubs for strict mypy


class _ReadersWriterLock:
    """Many readers or one writer; a waiting writer stops new readers from starving it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._owner: int | None = None

    @contextmanager
    def read(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._writer and self._owner == me:  # a writer may read its own data
            yield
            return
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
            self._owner = threading.get_ident()
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._owner = None
                self._cond.notify_all()


def utcnow() -> datetime:
    """Now, as the naive UTC timestamp the schema stores."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


_INTENT_SUFFIX = ".writer-waiting-"
_STALE_INTENT_S = 120.0


def _writer_alive(intent: Path) -> bool:
    """True while the process that wrote an intent file runs (and the file is recent)."""
    try:
        pid = int(intent.read_text(encoding="utf-8"))
        fresh = time.time() - intent.stat().st_mtime < _STALE_INTENT_S
    except (OSError, ValueError):
        return False
    if not fresh:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_lock_error(exc: BaseException) -> bool:
    """True for DuckDB's 'another process holds the file' errors."""
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


class Database:
    """A DuckDB file (or `:memory:`) opened per operation, safely across threads and processes."""

    def __init__(
        self,
        path: str,
        *,
        lock_timeout: float = 30.0,
    ) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self._rw = _ReadersWriterLock()
        self._memory: Connection | None = None
        self._memory_lock = threading.RLock()

    @property
    def in_memory(self) -> bool:
        """True for the shared in-memory database used by tests."""
        return self.path == ":memory:"

    def exists(self) -> bool:
        """Whether the database already exists (an in-memory one always does)."""
        return self.in_memory or Path(self.path).exists()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection for one query or a few."""
        if self.in_memory:
            with self._memory_cursor() as cursor:
                yield cursor
            return
        with self._rw.read():
            conn = self._open(read_only=True)
            try:
                yield conn
            finally:
                conn.close()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write connection inside one transaction, committed when the block ends cleanly."""
        if self.in_memory:
            with self._memory_cursor() as cursor:
                cursor.execute("BEGIN TRANSACTION")
                try:
                    yield cursor
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            return
        with self._rw.write():
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = self._open(read_only=False)
            try:
                conn.execute("BEGIN TRANSACTION")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                conn.close()

    @contextmanager
    def _memory_cursor(self) -> Iterator[Connection]:
        import duckdb

        with self._memory_lock:
            if self._memory is None:
                self._memory = duckdb.connect(":memory:")
                self._memory.execute("SET TimeZone = 'UTC'")
            cursor = self._memory.cursor()
            cursor.execute("SET TimeZone = 'UTC'")
            try:
                yield cursor
            finally:
                cursor.close()

    def _open(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        import duckdb

        deadline = time.monotonic() + self.lock_timeout
        delay = 0.01
        attempts = 0
        intent: Path | None = None
        try:
            while True:
                attempts += 1
                if read_only:
                    self._yield_to_waiting_writers(deadline)
                try:
                    conn = duckdb.connect(self.path, read_only=read_only)
                    conn.execute("SET TimeZone = 'UTC'")
                    return conn
                except duckdb.IOException as exc:
                    if not is_lock_error(exc):
                        raise StoreError(_explain_open_error(self.path, exc)) from exc
                    if time.monotonic() >= deadline:
                        raise self._busy() from exc
                    if attempts == 1:
                        log.info("database %s is locked by another process; waiting", self.path)
                    if not read_only and intent is None:
                        intent = self._announce_writer()
                    time.sleep(min(delay, max(0.0, deadline - time.monotonic())) * random.uniform(0.5, 1.5))
                    delay = min(delay * 2, 0.5)
                except duckdb.Error as exc:
                    raise StoreError(_explain_open_error(self.path, exc)) from exc
        finally:
            if intent is not None:
                intent.unlink(missing_ok=True)

    def _busy(self) -> StoreBusy:
        return StoreBusy(
            f"the database {self.path} is busy: another costhawk process (a server, import or sync) "
            f"held it for {self.lock_timeout:g} s; try again when it finishes, or raise COSTHAWK_LOCK_TIMEOUT"
        )

    # Writers announce themselves so that a steady stream of readers in other processes (a busy HTTP
    # server, a polling client) cannot starve them: a reader that sees a live writer's intent file
    # waits for it before opening. DuckDB's own file lock has no such fairness.
    def _announce_writer(self) -> Path | None:
        intent = Path(f"{self.path}{_INTENT_SUFFIX}{os.getpid()}-{threading.get_ident()}")
        try:
            intent.write_text(str(os.getpid()), encoding="utf-8")
        except OSError:
            return None  # a read-only folder: fall back to plain retrying
        return intent

    def _yield_to_waiting_writers(self, deadline: float) -> None:
        folder, prefix = Path(self.path).parent, Path(self.path).name + _INTENT_SUFFIX
        while True:
            try:
                waiting = [p for p in folder.iterdir() if p.name.startswith(prefix) and _writer_alive(p)]
            except OSError:
                return
            if not waiting:
                return
            if time.monotonic() >= deadline:
                raise self._busy()
            time.sleep(0.02)

    def close(self) -> None:
        """Release the in-memory database (files are never held open)."""
        with self._memory_lock:
            if self._memory is not None:
                self._memory.close()
                self._memory = None


def _explain_open_error(path: str, exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "not a valid DuckDB database" in text or "Corrupt" in text or "checksum" in text.lower():
        return (
            f"{path} is not a readable costhawk database ({text}). Move it aside and run "
            "`costhawk-mcp import` or `sync` again to rebuild it, or point --db / COSTHAWK_DB elsewhere."
        )
    if "Permission denied" in text or "Read-only file system" in text:
        return f"cannot open {path}: permission denied; point --db / COSTHAWK_DB at a writable location"
    return f"cannot open the database {path}: {text}"
