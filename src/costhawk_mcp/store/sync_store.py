"""Writes of provider sync: usage buckets, reported costs, key and project names, and sync state.

Pages from a provider admin API are written in short write transactions (one page, or the few
already waiting when the writer gets to them), each together with the sync state it advances, so a
sync killed at any point (even `kill -9`) keeps every page already committed and the next run
resumes from there. A page *replaces* the buckets it covers: rows are upserted on the full
dimension tuple (`INSERT OR REPLACE` on the primary key) and rows of those buckets that the page no
longer contains are deleted, so repeated or overlapping syncs never double count, and a bucket that
grew since the last sync is overwritten whole.

Rows reach DuckDB as one JSON document of columns that DuckDB unpacks itself (`from_json` +
`unnest`) into a staging table, then one statement upserts them all: binding rows one by one
(`executemany`) is two orders of magnitude slower. Buckets are priced in SQL with the catalog's
rates (`pricing_sql`), exactly like request logs and `pricing_sql.reprice_all`: a bucket's tier
comes from its batch flag and service tier, and its long-context band is the one the provider
reported.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from costhawk_mcp.store import pricing_sql
from costhawk_mcp.store.db import Connection, utcnow
from costhawk_mcp.store.store import Store


class UsageRow(NamedTuple):
    """One result of a provider usage bucket, normalised to the store's token convention.

    `input_tokens` is every prompt token (uncached + cache reads + cache writes); the cache counts
    are parts of it. Usage kinds that are not priced per token (images, audio, tool calls, storage)
    keep all their token columns at zero, `requests` empty and their own metrics in `extra`.
    (A named tuple: a sync builds hundreds of thousands of these.)
    """

    bucket_start: datetime
    bucket_end: datetime
    dims_key: str
    project_id: str | None = None
    workspace_id: str | None = None
    api_key_id: str | None = None
    user_id: str | None = None
    model: str | None = None
    batch: bool | None = None
    service_tier: str | None = None
    tier: str = "standard"
    context_window: str | None = None
    long_context: bool = False
    requests: int | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    extra: str | None = None


class CostRow(NamedTuple):
    """One line of a provider's cost report, in US dollars."""

    bucket_start: datetime
    bucket_end: datetime
    dims_key: str
    amount_usd: Decimal
    project_id: str | None = None
    workspace_id: str | None = None
    api_key_id: str | None = None
    line_item: str | None = None
    description: str | None = None
    cost_type: str | None = None
    model: str | None = None
    token_type: str | None = None
    service_tier: str | None = None
    context_window: str | None = None
    quantity: float | None = None


@dataclass(frozen=True)
class Page:
    """One page of one endpoint: every bucket it covers (empty ones too) and their rows."""

    provider: str
    endpoint: str
    kind: str  # "usage" or "cost"
    bucket_width: str
    buckets: list[tuple[datetime, datetime]]
    usage: list[UsageRow] = field(default_factory=list)
    costs: list[CostRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows the page carries."""
        return len(self.usage) + len(self.costs)


class ApiKeyRow(NamedTuple):
    """An API key's name and the provider's own redacted hint (never key material)."""

    api_key_id: str
    name: str | None
    redacted_hint: str | None
    project_id: str | None = None
    workspace_id: str | None = None
    status: str | None = None
    created_at: datetime | None = None


class ProjectRow(NamedTuple):
    """An OpenAI project or an Anthropic workspace."""

    project_id: str
    name: str | None
    kind: str
    status: str | None = None


@dataclass(frozen=True)
class SyncStateRow:
    """What `sync_state` says about one provider endpoint."""

    provider: str
    endpoint: str
    covered_from: datetime | None
    covered_to: datetime | None
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None


# DuckDB type of every field of the row types above (a field name means the same everywhere).
_TYPE_OF = {
    **dict.fromkeys(("bucket_start", "bucket_end", "created_at"), "TIMESTAMP"),
    **dict.fromkeys(
        ("requests", "input_tokens", "cached_input_tokens", "cache_write_tokens", "cache_write_1h_tokens"), "BIGINT"
    ),
    "output_tokens": "BIGINT",
    "batch": "BOOLEAN",
    "long_context": "BOOLEAN",
    "amount_usd": "DECIMAL(38, 15)",
    "quantity": "DOUBLE",
}
_PAGE_COLUMNS = (("provider", "VARCHAR"), ("endpoint", "VARCHAR"), ("bucket_width", "VARCHAR"))


def _columns(fields: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(name, DuckDB type) of a row type's fields, in order; unlisted names are VARCHAR."""
    return tuple((name, _TYPE_OF.get(name, "VARCHAR")) for name in fields)


_USAGE_COLUMNS = _columns(UsageRow._fields)
_COST_COLUMNS = _columns(CostRow._fields)
_KEY_COLUMNS = _columns(ApiKeyRow._fields)
_PROJECT_COLUMNS = _columns(ProjectRow._fields)
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _timestamps(values: Iterable[object]) -> list[object]:
    """ISO text of each datetime (a page repeats few distinct bucket times, so each is formatted once)."""
    cache: dict[object, str] = {}
    out: list[object] = []
    for value in values:
        if not isinstance(value, datetime):
            out.append(None)
            continue
        text = cache.get(value)
        if text is None:
            text = cache[value] = value.isoformat(sep=" ")
        out.append(text)
    return out


def _stage(
    conn: Connection,
    name: str,
    columns: Sequence[tuple[str, str]],
    parts: Sequence[tuple[tuple[str, ...], Sequence[tuple[object, ...]]]],
) -> None:
    """Create temp table `name` from `parts`: (leading constant values, rows holding the other columns).

    The rows go to DuckDB as one JSON document of columns in a temporary file, which DuckDB's own
    JSON reader unpacks far faster than Python can bind values.
    """
    data: dict[str, list[object]] = {f"c{i}": [] for i in range(len(columns))}
    for constants, rows in parts:
        lead = len(constants)
        for i, value in enumerate(constants):
            data[f"c{i}"].extend([value] * len(rows))
        if not rows:
            continue
        for i, column in enumerate(zip(*rows, strict=True), start=lead):
            kind = columns[i][1]
            if kind == "TIMESTAMP":
                data[f"c{i}"].extend(_timestamps(column))
            elif kind.startswith("DECIMAL"):
                data[f"c{i}"].extend(None if v is None else str(v) for v in column)
            else:
                data[f"c{i}"].extend(column)
    spec = ", ".join(f"'c{i}': '{kind}[]'" for i, (_, kind) in enumerate(columns))
    unpack = ", ".join(f"unnest(c{i}) AS {column}" for i, (column, _) in enumerate(columns))
    fd, path = tempfile.mkstemp(prefix="costhawk-stage-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(_ENCODE(data))
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {unpack} FROM read_json(?, columns={{{spec}}})", [path]
        )
    finally:
        Path(path).unlink(missing_ok=True)


def _merge_duplicates(rows: list[UsageRow]) -> list[UsageRow]:
    """Sum rows that share a bucket and dimension tuple (a provider should not send them; if it does,
    they are separate traffic, and an upsert would keep only the last)."""
    seen: dict[tuple[datetime, str], UsageRow] = {}
    for row in rows:
        key = (row.bucket_start, row.dims_key)
        prior = seen.get(key)
        if prior is None:
            seen[key] = row
            continue
        requests = (
            None if prior.requests is None and row.requests is None else (prior.requests or 0) + (row.requests or 0)
        )
        seen[key] = prior._replace(
            requests=requests,
            input_tokens=prior.input_tokens + row.input_tokens,
            cached_input_tokens=prior.cached_input_tokens + row.cached_input_tokens,
            cache_write_tokens=prior.cache_write_tokens + row.cache_write_tokens,
            cache_write_1h_tokens=prior.cache_write_1h_tokens + row.cache_write_1h_tokens,
            output_tokens=prior.output_tokens + row.output_tokens,
        )
    return list(seen.values())


def _merge_cost_duplicates(rows: list[CostRow]) -> list[CostRow]:
    seen: dict[tuple[datetime, str], CostRow] = {}
    for row in rows:
        key = (row.bucket_start, row.dims_key)
        prior = seen.get(key)
        if prior is None:
            seen[key] = row
        else:
            quantity = (
                None if prior.quantity is None and row.quantity is None else (prior.quantity or 0) + (row.quantity or 0)
            )
            seen[key] = prior._replace(amount_usd=prior.amount_usd + row.amount_usd, quantity=quantity)
    return list(seen.values())


def _unique(rows: list[UsageRow] | list[CostRow]) -> bool:
    return len({(r.bucket_start, r.dims_key) for r in rows}) == len(rows)


@dataclass(frozen=True)
class Names:
    """One provider's API key names and projects (or workspaces)."""

    provider: str
    keys: Sequence[ApiKeyRow]
    projects: Sequence[ProjectRow]


Outcome = tuple[str, str, str | None]
"""(provider, endpoint, error or None) at the end of a sync."""


def write_batch(
    store: Store, pages: Sequence[Page] = (), names: Sequence[Names] = (), outcomes: Sequence[Outcome] = ()
) -> None:
    """Write pages, names and endpoint outcomes in one short transaction.

    Each page replaces the buckets it covers and advances its endpoint's covered window. The
    runner passes whatever arrived since its last write (bounded in rows and in time): opening the
    database costs far more than writing a page, and a transaction commits whole or not at all.
    """
    pages = [page for page in pages if page.buckets]
    if not (pages or names or outcomes):
        return
    with store.writing() as conn:
        if not store.db.in_memory:
            # This connection lives for one transaction; on small statements DuckDB's parallelism costs
            # more CPU than it saves, and the event loop is parsing the next page meanwhile.
            conn.execute("SET threads = 1")
        try:
            usage = [page for page in pages if page.kind == "usage"]
            costs = [page for page in pages if page.kind != "usage"]
            if usage:
                _write_usage(conn, store, usage)
            if costs:
                _write_costs(conn, costs)
            if pages:
                _advance_state(conn, pages)
            for item in names:
                _write_names(conn, item)
            _mark_done(conn, outcomes)
        finally:
            staged = conn.execute(
                "SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name LIKE 'staged_%'"
            ).fetchall()
            for (table,) in staged:
                conn.execute(f"DROP TABLE {table}")


def _stage_windows(conn: Connection, pages: Iterable[Page]) -> None:
    """The buckets each page covers: the rows stored in them are replaced by the page's."""
    rows = [(p.provider, p.endpoint, p.bucket_width, start) for p in pages for start, _ in p.buckets]
    _stage(conn, "staged_windows", (*_PAGE_COLUMNS, ("bucket_start", "TIMESTAMP")), [((), rows)])


def _write_usage(conn: Connection, store: Store, pages: list[Page]) -> None:
    parts = [
        (
            (page.provider, page.endpoint, page.bucket_width),
            page.usage if _unique(page.usage) else _merge_duplicates(page.usage),
        )
        for page in pages
    ]
    _stage(conn, "staged_buckets", (*_PAGE_COLUMNS, *_USAGE_COLUMNS), parts)
    models = {r.model for _, rows in parts for r in rows if r.model is not None}
    pricing_sql.resolve_models(conn, store.catalog, sorted(models))
    _stage_windows(conn, pages)
    conn.execute(
        """
        DELETE FROM usage_buckets AS u
        WHERE EXISTS (SELECT 1 FROM staged_windows AS w
                      WHERE w.provider = u.provider AND w.endpoint = u.endpoint
                        AND w.bucket_width = u.bucket_width AND w.bucket_start = u.bucket_start)
          AND NOT EXISTS (SELECT 1 FROM staged_buckets AS s
                          WHERE s.provider = u.provider AND s.endpoint = u.endpoint
                            AND s.bucket_width = u.bucket_width AND s.bucket_start = u.bucket_start
                            AND s.dims_key = u.dims_key)
        """
    )
    join = pricing_sql.rate_join_sql("q", "p", long_context="q.long_context")
    conn.execute(
        f"""
        INSERT OR REPLACE INTO usage_buckets (
            provider, endpoint, bucket_width, bucket_start, bucket_end, dims_key, project_id, workspace_id,
            api_key_id, user_id, model, model_id, batch, service_tier, tier, context_window, long_context,
            requests, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_1h_tokens,
            output_tokens, extra, cost_usd, synced_at)
        WITH q AS (
            SELECT s.*, s.bucket_start AS ts, m.model_id
            FROM staged_buckets AS s LEFT JOIN model_map AS m ON m.raw_model = s.model
        )
        SELECT q.provider, q.endpoint, q.bucket_width, q.bucket_start, q.bucket_end, q.dims_key, q.project_id,
               q.workspace_id, q.api_key_id, q.user_id, q.model, q.model_id, q.batch, q.service_tier, q.tier,
               q.context_window, q.long_context, q.requests, q.input_tokens, q.cached_input_tokens,
               q.cache_write_tokens, q.cache_write_1h_tokens, q.output_tokens, q.extra::JSON,
               {pricing_sql.cost_sql("q", "p")}, ?
        FROM q LEFT JOIN rates AS p ON {join}
        """,
        [utcnow()],
    )


def _write_costs(conn: Connection, pages: list[Page]) -> None:
    parts = [
        ((page.provider,), page.costs if _unique(page.costs) else _merge_cost_duplicates(page.costs)) for page in pages
    ]
    _stage(conn, "staged_costs", (*_PAGE_COLUMNS[:1], *_COST_COLUMNS), parts)
    _stage_windows(conn, pages)
    conn.execute(
        """
        DELETE FROM provider_costs AS c
        WHERE EXISTS (SELECT 1 FROM staged_windows AS w
                      WHERE w.provider = c.provider AND w.bucket_start = c.bucket_start)
          AND NOT EXISTS (SELECT 1 FROM staged_costs AS s
                          WHERE s.provider = c.provider AND s.bucket_start = c.bucket_start
                            AND s.dims_key = c.dims_key)
        """
    )
    names = ", ".join(column for column, _ in _COST_COLUMNS)
    conn.execute(
        f"INSERT OR REPLACE INTO provider_costs (provider, {names}, synced_at) "
        f"SELECT provider, {names}, ? FROM staged_costs",
        [utcnow()],
    )


def _advance_state(conn: Connection, pages: Iterable[Page]) -> None:
    """Widen each endpoint's covered window to include the buckets its pages covered."""
    spans: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for page in pages:
        start = min(s for s, _ in page.buckets)
        end = max(e for _, e in page.buckets)
        key = (page.provider, page.endpoint)
        if key in spans:
            start, end = min(start, spans[key][0]), max(end, spans[key][1])
        spans[key] = (start, end)
    now = utcnow()
    for (provider, endpoint), (start, end) in spans.items():
        conn.execute(
            """
            INSERT INTO sync_state (provider, endpoint, covered_from, covered_to, last_attempt_at)
            VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (provider, endpoint) DO UPDATE SET
                covered_from = least(coalesce(sync_state.covered_from, excluded.covered_from), excluded.covered_from),
                covered_to = greatest(coalesce(sync_state.covered_to, excluded.covered_to), excluded.covered_to),
                last_attempt_at = excluded.last_attempt_at
            """,
            [provider, endpoint, start, end, now],
        )


def _write_names(conn: Connection, item: Names) -> None:
    """Upsert a provider's API key names and projects (or workspaces)."""
    now = utcnow()
    if item.keys:
        _stage(conn, "staged_keys", _KEY_COLUMNS, [((), item.keys)])
        columns = ", ".join(column for column, _ in _KEY_COLUMNS)
        conn.execute(
            f"INSERT OR REPLACE INTO api_keys (provider, {columns}, updated_at) "
            f"SELECT ?, {columns}, ? FROM staged_keys QUALIFY row_number() OVER (PARTITION BY api_key_id) = 1",
            [item.provider, now],
        )
    if item.projects:
        _stage(conn, "staged_projects", _PROJECT_COLUMNS, [((), item.projects)])
        columns = ", ".join(column for column, _ in _PROJECT_COLUMNS)
        conn.execute(
            f"INSERT OR REPLACE INTO projects (provider, {columns}, updated_at) "
            f"SELECT ?, {columns}, ? FROM staged_projects QUALIFY row_number() OVER (PARTITION BY project_id) = 1",
            [item.provider, now],
        )


def _mark_done(conn: Connection, outcomes: Sequence[Outcome]) -> None:
    """Record outcomes: success clears the last error; failure keeps the last success time and
    records the (key-free) message."""
    now = utcnow()
    for provider, endpoint, error in outcomes:
        if error is None:
            conn.execute(
                "INSERT INTO sync_state (provider, endpoint, last_success_at, last_attempt_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (provider, endpoint) DO UPDATE SET "
                "last_success_at = excluded.last_success_at, last_attempt_at = excluded.last_attempt_at, "
                "last_error = NULL",
                [provider, endpoint, now, now],
            )
        else:
            conn.execute(
                "INSERT INTO sync_state (provider, endpoint, last_attempt_at, last_error) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (provider, endpoint) DO UPDATE SET last_attempt_at = excluded.last_attempt_at, "
                "last_error = excluded.last_error",
                [provider, endpoint, now, error],
            )


def sync_states(store: Store, provider: str | None = None) -> list[SyncStateRow]:
    """Every endpoint's sync state (of one provider, or all), by provider and endpoint."""
    if not store.db.exists():
        return []
    with store.reading() as conn:
        rows = conn.execute(
            "SELECT provider, endpoint, covered_from, covered_to, last_success_at, last_attempt_at, last_error "
            "FROM sync_state WHERE ? IS NULL OR provider = ? ORDER BY provider, endpoint",
            [provider, provider],
        ).fetchall()
    return [SyncStateRow(*row) for row in rows]
