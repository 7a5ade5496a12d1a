"""The usage store: the only code that writes SQL against the costhawk database.

`Store` owns a `Database` (see db.py for the multi-process strategy) and the pricing catalog. Before
the first operation it brings the file up to date: migrations, then the `rates` table and every
stored cost whenever the catalog's fingerprint differs from the one the costs were computed with.
Read methods live in the query modules beside this one and take a connection from `reading()`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

from costhawk_mcp.pricing.catalog import Catalog
from costhawk_mcp.store import pricing_sql
from costhawk_mcp.store.bulk import bulk_insert
from costhawk_mcp.store.db import Connection, Database, utcnow
from costhawk_mcp.store.migrations import LATEST, known_version, migrate

CATALOG_KEY = "catalog_fingerprint"


@dataclass(frozen=True)
class RequestRow:
    """One request in canonical form (see the import format in the README)."""

    request_id: str
    ts: datetime
    model: str
    provider: str | None = None
    api_key_id: str | None = None
    key_name: str | None = None
    project: str | None = None
    user_id: str | None = None
    query_id: str | None = None
    feature: str | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    batch: bool = False
    service_tier: str | None = None
    latency_ms: float | None = None
    status: str | None = None
    reported_cost_usd: Decimal | None = None


# Columns of a staging table that `merge_staged_requests` accepts, in RequestRow order, plus `line`.
STAGING_COLUMNS = """
    line BIGINT,
    request_id VARCHAR,
    ts TIMESTAMP,
    model VARCHAR,
    provider VARCHAR,
    api_key_id VARCHAR,
    key_name VARCHAR,
    project VARCHAR,
    user_id VARCHAR,
    query_id VARCHAR,
    feature VARCHAR,
    input_tokens BIGINT,
    cached_input_tokens BIGINT,
    cache_write_tokens BIGINT,
    cache_write_1h_tokens BIGINT,
    output_tokens BIGINT,
    batch BOOLEAN,
    service_tier VARCHAR,
    latency_ms DOUBLE,
    status VARCHAR,
    reported_cost_usd DECIMAL(38, 15)
"""


# The SQL type of each staging column, in order.
STAGING_TYPES: tuple[str, ...] = tuple(
    line.strip().rstrip(",").split(None, 1)[1] for line in STAGING_COLUMNS.strip().splitlines()
)


@dataclass(frozen=True)
class MergeResult:
    """What a merge of staged requests did."""

    import_id: int
    inserted: int
    duplicates: int


class Store:
    """Usage data in one DuckDB file, priced with one catalog."""

    def __init__(self, db: Database, catalog: Catalog) -> None:
        self.db = db
        self.catalog = catalog
        self._ready = False
        self._ready_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def ensure_ready(self) -> None:
        """Migrate and reprice if needed; cheap after the first call in a process."""
        with self._ready_lock:
            if not self._ready:
                if not self._up_to_date():
                    with self.db.write() as conn:
                        self._prepare(conn)
                self._ready = True

    def _up_to_date(self) -> bool:
        if not self.db.exists():
            return False
        with self.db.read() as conn:
            if known_version(conn, self.db.path) != LATEST:  # a newer costhawk's file is refused here
                return False
            row = conn.execute("SELECT value FROM meta WHERE key = ?", [CATALOG_KEY]).fetchone()
        return row is not None and row[0] == self.catalog.fingerprint

    def _prepare(self, conn: Connection, *, known: bool = False) -> None:
        """Migrate and reprice inside a write transaction. `known`: this process prepared the file
        before, so its tables exist and one cheap query tells whether anything changed since."""
        if known:
            state = conn.execute(
                "SELECT (SELECT max(version) FROM schema_migrations), (SELECT value FROM meta WHERE key = ?)",
                [CATALOG_KEY],
            ).fetchone()
            if state[0] == LATEST and state[1] == self.catalog.fingerprint:
                return
        migrate(conn, self.db.path)
        row = conn.execute("SELECT value FROM meta WHERE key = ?", [CATALOG_KEY]).fetchone()
        if row is None or row[0] != self.catalog.fingerprint:
            pricing_sql.refresh_rates(conn, self.catalog)
            pricing_sql.remap_models(conn, self.catalog)
            pricing_sql.reprice_all(conn)
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [CATALOG_KEY, self.catalog.fingerprint])

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only connection to an up-to-date store."""
        self.ensure_ready()
        with self.db.read() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction on an up-to-date store (re-checked inside the lock)."""
        self.ensure_ready()
        known = self.db.exists()  # a file deleted under a running server is prepared afresh
        with self.db.write() as conn:
            self._prepare(conn, known=known)
            yield conn

    # ------------------------------------------------------------------ metadata
    def get_meta(self, key: str) -> str | None:
        """A value from the `meta` table (None when unset or the file does not exist yet)."""
        if not self.db.exists():
            return None
        with self.reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Record a value in the `meta` table."""
        with self.writing() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    # ------------------------------------------------------------------ requests
    def insert_requests(self, rows: Sequence[RequestRow], *, source: str = "api") -> MergeResult:
        """Add a few requests (tests, the demo); bulk files go through the importer's staging path."""
        names = [f.name for f in fields(RequestRow)]
        with self.writing() as conn:
            conn.execute(f"CREATE TEMP TABLE staged_requests ({STAGING_COLUMNS})")
            try:
                bulk_insert(
                    conn,
                    "staged_requests",
                    STAGING_TYPES,
                    [(i + 1, *(getattr(r, n) for n in names)) for i, r in enumerate(rows)],
                )
                import_id = self.start_import(conn, source=source, fmt="rows", sha256=None)
                result = self.merge_staged_requests(conn, "staged_requests", import_id)
                self.finish_import(conn, result, lines_read=len(rows), rejected=0)
            finally:
                conn.execute("DROP TABLE IF EXISTS staged_requests")
        return result

    def start_import(self, conn: Connection, *, source: str, fmt: str, sha256: str | None) -> int:
        """Record an import and return its id (inside the caller's write transaction)."""
        import_id = int(conn.execute("SELECT nextval('import_ids')").fetchone()[0])
        conn.execute(
            "INSERT INTO imports (import_id, source, format, sha256, started_at) VALUES (?, ?, ?, ?, ?)",
            [import_id, source, fmt, sha256, utcnow()],
        )
        return import_id

    def finish_import(self, conn: Connection, result: MergeResult, *, lines_read: int, rejected: int) -> None:
        """Record an import's outcome."""
        conn.execute(
            "UPDATE imports SET finished_at = ?, lines_read = ?, inserted = ?, duplicates = ?, rejected = ? "
            "WHERE import_id = ?",
            [utcnow(), lines_read, result.inserted, result.duplicates, rejected, result.import_id],
        )

    def merge_staged_requests(
        self, conn: Connection, staging: str, import_id: int, *, unique: bool = False
    ) -> MergeResult:
        """Insert valid staged requests that are not stored yet, priced at the price of their day.

        `staging` is a table (or a qualified attached table) with STAGING_COLUMNS, already
        validated and normalised. The first line wins among duplicates inside it; a request id
        already stored is a duplicate and changes nothing, so re-importing a file is a no-op.
        `unique=True` promises one row per request id (the caller removed repeats outside the
        write lock), which skips the costly first-line-wins pass over every column.
        """
        first_line_wins = "" if unique else "QUALIFY row_number() OVER (PARTITION BY s.request_id ORDER BY s.line) = 1"
        staged, max_tokens = conn.execute(
            f"SELECT count(*), max(input_tokens + cached_input_tokens + cache_write_tokens + cache_write_1h_tokens "
            f"+ output_tokens) FROM {staging}"
        ).fetchone()
        models = [r[0] for r in conn.execute(f"SELECT DISTINCT model FROM {staging}").fetchall()]
        pricing_sql.resolve_models(conn, self.catalog, models)
        tier = pricing_sql.tier_sql("s.batch", "s.service_tier")
        if pricing_sql.integer_pricing_exact(conn, max_tokens):  # the same cents, 20x cheaper arithmetic
            rates, cost = pricing_sql.INTEGER_RATES, pricing_sql.integer_cost_sql("q", "p")
        else:
            rates, cost = "rates", pricing_sql.cost_sql("q", "p")
        conn.execute(
            f"""
            INSERT INTO requests
            WITH fresh AS (
                SELECT s.* FROM {staging} AS s
                WHERE NOT EXISTS (SELECT 1 FROM requests AS r WHERE r.request_id = s.request_id)
                {first_line_wins}
            ),
            q AS (
                SELECT s.*, m.model_id, m.provider AS catalog_provider, {tier} AS tier
                FROM fresh AS s LEFT JOIN model_map AS m ON m.raw_model = s.model
            )
            SELECT q.request_id, q.ts, coalesce({pricing_sql.provider_sql("q.provider")}, q.catalog_provider, 'unknown'),
                   q.model, q.model_id,
                   q.api_key_id, q.key_name, q.project, q.user_id, q.query_id, q.feature,
                   q.input_tokens, q.cached_input_tokens, q.cache_write_tokens, q.cache_write_1h_tokens,
                   q.output_tokens, q.batch, q.service_tier, q.tier, q.latency_ms, q.status,
                   q.reported_cost_usd, {cost}, ?
            FROM q
            LEFT JOIN {rates} AS p ON {pricing_sql.rate_join_sql("q", "p")}
            """,
            [import_id],
        )
        inserted = int(conn.execute("SELECT count(*) FROM requests WHERE import_id = ?", [import_id]).fetchone()[0])
        return MergeResult(import_id=import_id, inserted=inserted, duplicates=int(staged) - inserted)
