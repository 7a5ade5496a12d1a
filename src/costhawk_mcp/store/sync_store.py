"""Writes of provider sync: usage buckets, reported costs, key and project names, and sync state.

Pages from a provider admin API are written in short write transactions (one page, or the few
already waiting when the writer gets to them), each together with the sync state it advances, so a
sync killed at any point (even `kill -9`) keeps every page already committed and the next run
resumes from there. A page *replaces* the buckets it covers: rows are upserted on the full
dimension tuple (`INSERT OR REPLACE` on the primary key) and rows of those buckets that the page no
longer contains are deleted, so repeated or overlapping syncs never double count, and a bucket that
grew since the last sync is overwritten whole.

Usage pages are the bulk of a sync (hundreds of thousands of results), so they never become Python
rows. The adapter validates a page's body (structure and the type of every field it reads) and
hands it over as it came; DuckDB parses the bodies of a whole batch (`from_json` with the wire
format's structure, then `unnest`), normalises every result to the store's token convention,
derives its dimension key and its `extra` metrics, and sums results that repeat a dimension tuple
within a bucket, in statements that run without the GIL while the event loop fetches the next
pages. `usage_rows` gives the same rows back as `UsageRow`s, for tests and inspection. Cost pages
are small and carry money, so they stay exact `Decimal`s built in Python, staged as one JSON
document of columns.

Buckets are priced in SQL with the catalog's rates (`pricing_sql`), exactly like request logs and
`pricing_sql.reprice_all`: a bucket's tier comes from its batch flag and service tier, and its
long-context band is the one the provider reported.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
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
class RawUsage:
    """A usage page's body as the provider sent it, already validated by the adapter.

    `format` names its wire format (a key of `USAGE_FORMATS`); `results` is how many results its
    buckets hold, before any repeated dimension tuple is summed.
    """

    format: str
    body: str
    results: int


@dataclass(frozen=True)
class Page:
    """One page of one endpoint: every bucket it covers (empty ones too) and their rows."""

    provider: str
    endpoint: str
    kind: str  # "usage" or "cost"
    bucket_width: str
    buckets: list[tuple[datetime, datetime]]
    usage: RawUsage | None = None
    costs: list[CostRow] = field(default_factory=list)

    @property
    def usage_rows(self) -> int:
        """Usage results the page carries."""
        return self.usage.results if self.usage is not None else 0

    @property
    def rows(self) -> int:
        """Rows the page carries."""
        return self.usage_rows + len(self.costs)


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
    **dict.fromkeys(("page_no", "bucket_no", "result_no"), "INTEGER"),
}
_THREADS = 1
_PAGE_COLUMNS = (("provider", "VARCHAR"), ("endpoint", "VARCHAR"), ("bucket_width", "VARCHAR"))


def _columns(fields: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(name, DuckDB type) of a row type's fields, in order; unlisted names are VARCHAR."""
    return tuple((name, _TYPE_OF.get(name, "VARCHAR")) for name in fields)


_COST_COLUMNS = _columns(CostRow._fields)
_KEY_COLUMNS = _columns(ApiKeyRow._fields)
_PROJECT_COLUMNS = _columns(ProjectRow._fields)
_WINDOW_COLUMNS = _columns(
    ("page_no", "bucket_no", "provider", "endpoint", "bucket_width", "bucket_start", "bucket_end")
)
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode

# ------------------------------------------------------------------------------ usage wire formats
# The fields of a usage result that the store reads, with their DuckDB types; a nested dict is a
# nested object. The adapters validate exactly these fields (a test keeps the two lists equal), with
# strict JSON types, so whatever passes validation is read here without any conversion of its own.
_TEXT, _COUNT, _FLAG = "VARCHAR", "BIGINT", "BOOLEAN"
OPENAI_RESULT_FIELDS: dict[str, str | dict[str, str]] = {
    **dict.fromkeys(
        ("project_id", "user_id", "api_key_id", "model", "service_tier", "size", "source", "context_level"), _TEXT
    ),
    "vector_store_id": _TEXT,
    "batch": _FLAG,
    **dict.fromkeys(
        (
            "input_tokens",
            "input_cached_tokens",
            "input_cache_write_tokens",
            "output_tokens",
            "input_audio_tokens",
            "input_cached_audio_tokens",
            "output_audio_tokens",
            "input_image_tokens",
            "input_cached_image_tokens",
            "output_image_tokens",
            "num_model_requests",
            "images",
            "characters",
            "seconds",
            "usage_bytes",
            "num_sessions",
            "num_requests",
        ),
        _COUNT,
    ),
}
# Every dimension of an Anthropic usage result: all are text, and all are part of its upsert key.
_ANTHROPIC_DIMS = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
    "account_id",
    "service_account_id",
    "speed",
)
ANTHROPIC_RESULT_FIELDS: dict[str, str | dict[str, str]] = {
    **dict.fromkeys(_ANTHROPIC_DIMS, _TEXT),
    **dict.fromkeys(("uncached_input_tokens", "cache_read_input_tokens", "output_tokens"), _COUNT),
    "cache_creation": {"ephemeral_5m_input_tokens": _COUNT, "ephemeral_1h_input_tokens": _COUNT},
    "server_tool_use": {"web_search_requests": _COUNT},
}

# Python's str.strip() whitespace, for tier names compared the way pricing.cost.service_tier does.
_WHITESPACE = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)"


def _tier_name(column: str) -> str:
    return f"lower(trim({column}, {_WHITESPACE}))"


def _nonzero(column: str) -> str:
    return f"coalesce({column}, 0)"


_TEXT_METRICS = frozenset(
    ("size", "source", "context_level", "vector_store_id", "inference_geo", "service_account_id", "speed")
)


def _extra_sql(metrics: Mapping[str, str]) -> str:
    """SQL for a JSON object of the metrics (name -> SQL expression) that are neither null, zero nor
    empty, keys sorted, or NULL when none is: the `extra` column."""
    parts = []
    for name in sorted(metrics):
        expr = metrics[name]
        # Counts are BIGINT and texts VARCHAR: one comparison each, the other kind never matches.
        if name in _TEXT_METRICS:
            parts.append(f"CASE WHEN {expr} <> '' THEN '\"{name}\":' || CAST(to_json({expr}) AS VARCHAR) END")
        else:
            parts.append(f"CASE WHEN {expr} <> 0 THEN '\"{name}\":' || CAST({expr} AS VARCHAR) END")
    return f"nullif('{{' || concat_ws(',', {', '.join(parts)}) || '}}', '{{}}')"


_OPENAI_DIMS = (
    "project_id",
    "user_id",
    "api_key_id",
    "model",
    "batch",
    "service_tier",
    "size",
    "source",
    "context_level",
    "vector_store_id",
)
_OPENAI_MODALITIES = (
    "input_audio_tokens",
    "input_cached_audio_tokens",
    "output_audio_tokens",
    "input_image_tokens",
    "input_cached_image_tokens",
    "output_image_tokens",
)
_OPENAI_OTHER_METRICS = (
    "input_tokens",
    "num_model_requests",
    "images",
    "characters",
    "seconds",
    "usage_bytes",
    "num_sessions",
    "num_requests",
    "size",
    "source",
    "context_level",
    "vector_store_id",
)


def _dims_key_sql(columns: Iterable[str]) -> str:
    """The upsert key of a result: the MD5 of its full dimension tuple as a JSON array (so a null, an
    empty string and `false` all differ). The dimensions have their own columns; the key only has to
    be unique per bucket and short, since the primary-key index is most of the cost of an upsert."""
    return f"md5(CAST(json_array({', '.join(columns)}) AS VARCHAR))"


# The store columns of a usage result (UsageRow without the bucket), as SQL over the result `r`.
_RESULT_COLUMNS = UsageRow._fields[2:]
_OPENAI_TIER = (
    f"CASE WHEN coalesce(r.batch, false) THEN 'batch' WHEN {_tier_name('r.service_tier')} IN ('priority', 'flex') "
    f"THEN {_tier_name('r.service_tier')} ELSE 'standard' END"
)
_OPENAI_TOKENS: dict[str, str] = {
    "dims_key": _dims_key_sql(f"r.{d}" for d in _OPENAI_DIMS),
    "project_id": "r.project_id",
    "workspace_id": "NULL",
    "api_key_id": "r.api_key_id",
    "user_id": "r.user_id",
    "model": "r.model",
    "batch": "r.batch",
    "service_tier": "r.service_tier",
    "tier": _OPENAI_TIER,
    "context_window": "NULL",
    "long_context": "false",
    "requests": "r.num_model_requests",
    # input_tokens counts cached and cache-write tokens already; never let the parts exceed it
    "input_tokens": (
        f"greatest({_nonzero('r.input_tokens')}, "
        f"{_nonzero('r.input_cached_tokens')} + {_nonzero('r.input_cache_write_tokens')})"
    ),
    "cached_input_tokens": _nonzero("r.input_cached_tokens"),
    "cache_write_tokens": _nonzero("r.input_cache_write_tokens"),
    "cache_write_1h_tokens": "0",
    "output_tokens": _nonzero("r.output_tokens"),
    "extra": _extra_sql({name: f"r.{name}" for name in _OPENAI_MODALITIES}),
}
_OPENAI_OTHER: dict[str, str] = {
    **dict.fromkeys(_RESULT_COLUMNS, "NULL"),
    "dims_key": _OPENAI_TOKENS["dims_key"],
    "project_id": "r.project_id",
    "api_key_id": "r.api_key_id",
    "user_id": "r.user_id",
    "model": "r.model",
    "tier": "'standard'",
    "long_context": "false",
    **dict.fromkeys(
        ("input_tokens", "cached_input_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens"), "0"
    ),
    "extra": _extra_sql({name: f"r.{name}" for name in _OPENAI_OTHER_METRICS}),
}
_ANTHROPIC_TIER = (
    f"CASE {_tier_name('r.service_tier')} WHEN 'batch' THEN 'batch' WHEN 'priority' THEN 'priority' "
    "WHEN 'priority_on_demand' THEN 'priority' WHEN 'flex' THEN 'flex' WHEN 'flex_discount' THEN 'flex' "
    "ELSE 'standard' END"
)
_WRITE_5M, _WRITE_1H = "r.cache_creation.ephemeral_5m_input_tokens", "r.cache_creation.ephemeral_1h_input_tokens"
_ANTHROPIC: dict[str, str] = {
    "dims_key": _dims_key_sql(f"r.{d}" for d in _ANTHROPIC_DIMS),
    "project_id": "NULL",
    "workspace_id": "r.workspace_id",
    "api_key_id": "r.api_key_id",
    "user_id": "r.account_id",
    "model": "r.model",
    "batch": "lower(r.service_tier) = 'batch'",
    "service_tier": "r.service_tier",
    "tier": _ANTHROPIC_TIER,
    "context_window": "r.context_window",
    "long_context": "coalesce(r.context_window = '200k-1M', false)",
    "requests": "NULL",
    # the store's input_tokens: uncached + cache reads + both cache writes
    "input_tokens": (
        f"{_nonzero('r.uncached_input_tokens')} + {_nonzero('r.cache_read_input_tokens')} "
        f"+ {_nonzero(_WRITE_5M)} + {_nonzero(_WRITE_1H)}"
    ),
    "cached_input_tokens": _nonzero("r.cache_read_input_tokens"),
    "cache_write_tokens": _nonzero(_WRITE_5M),
    "cache_write_1h_tokens": _nonzero(_WRITE_1H),
    "output_tokens": _nonzero("r.output_tokens"),
    "extra": _extra_sql(
        {
            "web_search_requests": "r.server_tool_use.web_search_requests",
            "inference_geo": "r.inference_geo",
            "service_account_id": "r.service_account_id",
            "speed": "r.speed",
        }
    ),
}


@dataclass(frozen=True)
class _Format:
    fields: Mapping[str, str | dict[str, str]]
    columns: Mapping[str, str]


USAGE_FORMATS: dict[str, _Format] = {
    "openai_tokens": _Format(OPENAI_RESULT_FIELDS, _OPENAI_TOKENS),
    "openai_other": _Format(OPENAI_RESULT_FIELDS, _OPENAI_OTHER),
    "anthropic": _Format(ANTHROPIC_RESULT_FIELDS, _ANTHROPIC),
}
"""Usage wire formats: OpenAI completions and embeddings (priced tokens), the other OpenAI kinds
(metrics in `extra`), and Anthropic's messages usage report."""


def _results_sql(fmt: _Format) -> str:
    """SELECT of every result of the bound page bodies, in the store's columns, keyed by page,
    bucket and position (from two bound lists: page numbers and bodies)."""
    structure = json.dumps({"data": [{"results": [fmt.fields]}]}, separators=(",", ":"))
    columns = ", ".join(f"{fmt.columns[name]} AS {name}" for name in _RESULT_COLUMNS)
    return f"""
        WITH pages AS (SELECT unnest(?::INTEGER[]) AS page_no, unnest(?::VARCHAR[]) AS body),
        docs AS (SELECT page_no, from_json(body, '{structure}').data AS data FROM pages),
        buckets AS (SELECT page_no, unnest(data) AS b, generate_subscripts(data, 1) - 1 AS bucket_no FROM docs),
        results AS (
            SELECT page_no, bucket_no, unnest(b.results) AS r, generate_subscripts(b.results, 1) AS result_no
            FROM buckets
        )
        SELECT page_no, bucket_no, result_no, {columns} FROM results
    """


_STAGED_RESULT_COLUMNS = ("page_no", "bucket_no", "result_no", *_RESULT_COLUMNS)
_SUMMED = (
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
)


def _stage_usage(conn: Connection, pages: Sequence[Page]) -> None:
    """Stage the usage rows of `pages` in `staged_buckets`, and their buckets in `staged_windows`.

    Results that repeat a dimension tuple within a bucket are summed (a provider should not send
    them; if it does, they are separate traffic, and an upsert would keep only the last). A bucket
    that two pages of the batch both cover is taken from the later page.
    """
    _stage_windows(conn, pages)
    by_format: dict[str, tuple[list[int], list[str]]] = {}
    for page_no, page in enumerate(pages):
        if page.usage is not None:
            numbers, bodies = by_format.setdefault(page.usage.format, ([], []))
            numbers.append(page_no)
            bodies.append(page.usage.body)
    # One statement per format: DuckDB plans a UNION ALL of these far worse than the parts.
    columns = ", ".join(f"{name} {_TYPE_OF.get(name, 'VARCHAR')}" for name in _STAGED_RESULT_COLUMNS)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE staged_results ({columns})")
    for name, (numbers, bodies) in by_format.items():
        conn.execute(f"INSERT INTO staged_results {_results_sql(USAGE_FORMATS[name])}", [numbers, bodies])
    # Within a bucket, a dimension key fixes every dimension column; `extra` is the first result's.
    kept = [c for c in _RESULT_COLUMNS if c not in ("dims_key", "extra", *_SUMMED)]
    conn.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE staged_buckets AS
        SELECT w.provider, w.endpoint, w.bucket_width, w.bucket_start, w.bucket_end, s.dims_key,
               {", ".join(f"first(s.{c}) AS {c}" for c in kept)}, first(s.extra ORDER BY s.result_no) AS extra,
               {", ".join(f"CAST(sum(s.{c}) AS BIGINT) AS {c}" for c in _SUMMED)},
               min(w.page_no) AS page_no, min(w.bucket_no) AS bucket_no, min(s.result_no) AS result_no
        FROM staged_results AS s JOIN staged_windows AS w USING (page_no, bucket_no)
        GROUP BY w.provider, w.endpoint, w.bucket_width, w.bucket_start, w.bucket_end, s.dims_key
        """
    )


def usage_rows(pages: Sequence[Page]) -> list[UsageRow]:
    """The usage rows the store makes of `pages`, in page order: exactly what a write would upsert
    (for tests and inspection; runs on a private in-memory database)."""
    import duckdb

    conn = duckdb.connect(":memory:")
    try:
        conn.execute("SET TimeZone = 'UTC'")
        _stage_usage(conn, [page for page in pages if page.kind == "usage"])
        columns = ", ".join(UsageRow._fields)
        rows = conn.execute(
            f"SELECT {columns} FROM staged_buckets ORDER BY page_no, bucket_no, result_no, dims_key"
        ).fetchall()
    finally:
        conn.close()
    return [UsageRow(*row) for row in rows]


# ------------------------------------------------------------------------------ staging helpers
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


def _merge_cost_duplicates(rows: list[CostRow]) -> list[CostRow]:
    """Sum cost lines that share a bucket and dimension tuple (separate charges, not one to replace)."""
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


def _unique(rows: list[CostRow]) -> bool:
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
            # This connection lives for one transaction, and the event loop needs the other core to
            # fetch and validate the next pages meanwhile.
            conn.execute(f"SET threads = {_THREADS}")
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
            if store.db.in_memory:  # a file's connection closes right after, and its temp tables with it
                staged = conn.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name LIKE 'staged_%'"
                ).fetchall()
                for (table,) in staged:
                    conn.execute(f"DROP TABLE {table}")


def _stage_windows(conn: Connection, pages: Sequence[Page]) -> None:
    """The buckets each page covers (the rows stored in them are replaced by the page's), numbered
    by page and position; a bucket covered twice is the later page's."""
    latest: dict[tuple[str, str, str, datetime], tuple[int, int, datetime]] = {}
    for page_no, page in enumerate(pages):
        for bucket_no, (start, end) in enumerate(page.buckets):
            latest[(page.provider, page.endpoint, page.bucket_width, start)] = (page_no, bucket_no, end)
    rows = [
        (page_no, bucket_no, provider, endpoint, width, start, end)
        for (provider, endpoint, width, start), (page_no, bucket_no, end) in latest.items()
    ]
    _stage(conn, "staged_windows", _WINDOW_COLUMNS, [((), rows)])


def _write_usage(conn: Connection, store: Store, pages: list[Page]) -> None:
    _stage_usage(conn, pages)
    models = [
        r[0] for r in conn.execute("SELECT DISTINCT model FROM staged_buckets WHERE model IS NOT NULL").fetchall()
    ]
    pricing_sql.resolve_models(conn, store.catalog, sorted(models))
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
    # One statement for every endpoint of the batch (each statement costs its planning).
    conn.execute(
        """
        INSERT INTO sync_state (provider, endpoint, covered_from, covered_to, last_attempt_at)
        SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::TIMESTAMP[]), unnest(?::TIMESTAMP[]), ?
        ON CONFLICT (provider, endpoint) DO UPDATE SET
            covered_from = least(coalesce(sync_state.covered_from, excluded.covered_from), excluded.covered_from),
            covered_to = greatest(coalesce(sync_state.covered_to, excluded.covered_to), excluded.covered_to),
            last_attempt_at = excluded.last_attempt_at
        """,
        [
            [provider for provider, _ in spans],
            [endpoint for _, endpoint in spans],
            [start for start, _ in spans.values()],
            [end for _, end in spans.values()],
            utcnow(),
        ],
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
