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
    """True while the process that wrote an intent file runs (and the file is recent).

    The file of a writer that no longer exists (killed while it waited) is removed: nobody else would.
    """
    try:
        pid = int(intent.read_text(encoding="utf-8"))
        fresh = time.time() - intent.stat().st_mtime < _STALE_INTENT_S
    except (OSError, ValueError):
        return False  # (a file being written is empty for a moment: ignored, never removed)
    if os.name != "posix":  # os.kill(pid, 0) only probes on POSIX
        return fresh
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        intent.unlink(missing_ok=True)
        return False
    except PermissionError:
        return fresh
    return fresh


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
        self._complete_seen = False  # a read checked the file's length once (every write checks)

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
                if not self._complete_seen:
                    self._check_complete(conn)
                    self._complete_seen = True
                yield conn
            except Exception as exc:
                damage = self._damage(exc)
                if damage is None:
                    raise
                raise damage from exc
            finally:
                _quietly(conn.close)

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
            self._make_folder()
            conn = self._open(read_only=False)
            try:
                try:
                    self._check_complete(conn)  # never write into a file that is missing blocks
                    conn.execute("BEGIN TRANSACTION")
                    try:
                        yield conn
                    except BaseException:
                        _quietly(lambda: conn.execute("ROLLBACK"))  # a failed ROLLBACK must not hide why
                        raise
                    conn.execute("COMMIT")
                except Exception as exc:
                    damage = self._damage(exc)
                    if damage is None:
                        raise
                    raise damage from exc
            finally:
                _quietly(conn.close)

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

    def _make_folder(self) -> None:
        folder = Path(self.path).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder {folder} for the database {self.path}: {exc.strerror or exc}; "
                "point --db / COSTHAWK_DB at a writable location"
            ) from exc

    def _check_complete(self, conn: Connection) -> None:
        """Refuse a file cut short (an interrupted copy, a full disk): DuckDB opens it and only fails
        when a query reaches a missing block, and would meanwhile write into it.

        Only the blocks in use are counted: DuckDB trims free blocks off the end of the file, so the
        file may be shorter than `total_blocks` says, but never shorter than its used blocks.
        """
        block_size, used = conn.execute(
            "SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = current_database()"
        ).fetchone()
        expected = _BLOCK_START + int(used) * int(block_size)
        try:
            actual = os.path.getsize(self.path)
        except OSError:
            return  # gone since it was opened: the next statement says so
        if used and actual < expected:
            raise StoreError(
                _explain_open_error(
                    self.path,
                    f"the file has {actual:,} bytes, less than the {expected:,} its blocks in use need",
                    damaged=True,
                )
            )

    def _damage(self, exc: BaseException) -> StoreError | None:
        """A clear StoreError when `exc` (or what it was raised while handling) says the file itself is
        unusable: damaged, truncated, unwritable or out of space. None for anything else (a bug)."""
        import duckdb

        seen: BaseException | None = exc
        for _ in range(5):  # a failed statement's error is often the context of a later "transaction aborted"
            if seen is None or isinstance(seen, StoreError):
                return None
            if isinstance(seen, duckdb.Error):
                text = str(seen)
                about_file = isinstance(seen, (duckdb.IOException, duckdb.FatalException)) and self.path in text
                if about_file or any(mark in text for mark in _DAMAGE_MARKS):
                    return StoreError(_explain_open_error(self.path, seen))
            seen = seen.__cause__ or seen.__context__
        return None

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


# DuckDB's file header and its two database headers precede the first block of a database file.
_BLOCK_START = 3 * 4096

# Error texts that mean the database file itself is damaged, whatever the statement was.
_DAMAGE_MARKS = (
    "Corrupt database file",
    "checksum",
    "Could not read enough bytes",
    "not a valid DuckDB database",
    "database has been invalidated",
)


def _quietly(action: Any) -> None:
    """Run a cleanup step whose own failure must not replace the error being raised."""
    try:
        action()
    except Exception as exc:  # the original error (or a clean exit) matters more
        log.debug("cleanup failed: %s", exc)


def _explain_open_error(path: str, exc: Exception | str, *, damaged: bool = False) -> str:
    """One line saying what is wrong with the database file and what to do about it."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    lowered = text.lower()
    if Path(path).is_dir():
        return (
            f"{path} is a directory, not a costhawk database file; point --db / COSTHAWK_DB at a file "
            "(it is created when missing), or move the directory away"
        )
    if damaged or any(mark.lower() in lowered for mark in _DAMAGE_MARKS) or "corrupt" in lowered:
        what = "not a DuckDB file at all" if "not a valid DuckDB database" in text else "damaged or truncated"
        return (
            f"{path} is not a readable costhawk database: it is {what} ({text}). Move it aside (keep it if you "
            "want to inspect it) and run `costhawk-mcp import` or `sync` again to rebuild it, or point --db / "
            "COSTHAWK_DB elsewhere."
        )
    if "permission denied" in lowered or "read-only file system" in lowered:
        return f"cannot open {path}: permission denied; fix its permissions or point --db / COSTHAWK_DB at a writable location"
    if "no space left" in lowered:
        return f"cannot write {path}: no space left on the device; nothing was written, free some space and try again"
    return f"cannot use the database {path}: {text}"
