"""One view of spend from two sources that must never be added together.

Imported request logs and provider-synced usage buckets describe the same traffic. For each
provider and UTC day, totals come from synced buckets when any exist for that provider-day and
from request logs otherwise. Per-query and per-feature figures exist only in request logs, so a
question about features or queries reads request logs alone.

`facts_cte` returns a `WITH facts AS (...)` clause whose rows share one shape, so every analysis is
a plain aggregate over `facts`. All filter values are bound parameters.

Columns of `facts`: source ('request_logs' | 'provider_usage'), ts, day, provider, model (as
reported), model_id (catalog id, NULL when unpriced), api_key_id, key_name, project, feature,
query_id, user_id, requests, input_tokens (all prompt tokens), cached_input_tokens,
cache_write_tokens, cache_write_1h_tokens, output_tokens, batch, tier, long_context, cost_usd
(NULL when unpriced), latency_ms (request logs only), reported_cost_usd.

`key_name` is the name a request log gave its key (NULL for synced buckets). The provider's key
list (`api_keys`) is not joined per fact: names are needed only for display, and that join cost
about 30 % of a scan of ten million rows. A fact's name is `coalesce(key_name, <api_keys name>)`
for its (provider, api_key_id); queries aggregate first, keeping enough per group to apply that
rule exactly (e.g. max(key_name) and whether any fact had none), then `key_list_join` the result.

A bucket counts in a window when its start lies in the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Sources = Literal["auto", "request_logs"]


@dataclass(frozen=True)
class FactFilter:
    """Which facts a question is about. None means no filter."""

    start: datetime
    end: datetime
    provider: str | None = None
    project: str | None = None
    api_key_id: str | None = None
    model: str | None = None
    feature: str | None = None
    query_id: str | None = None

    @property
    def needs_request_logs(self) -> bool:
        """Features and queries exist only in request logs."""
        return self.feature is not None or self.query_id is not None


_REQUEST_COLUMNS = """
    'request_logs' AS source, r.ts, CAST(r.ts AS DATE) AS day, r.provider, r.model, r.model_id,
    r.api_key_id, r.key_name, r.project, r.feature, r.query_id, r.user_id,
    1::BIGINT AS requests, r.input_tokens, r.cached_input_tokens, r.cache_write_tokens,
    r.cache_write_1h_tokens, r.output_tokens, r.batch, r.tier,
    false AS long_context, r.cost_usd, r.latency_ms, r.reported_cost_usd, r.request_id
"""

_BUCKET_COLUMNS = """
    'provider_usage' AS source, b.bucket_start AS ts, CAST(b.bucket_start AS DATE) AS day, b.provider,
    b.model, b.model_id, b.api_key_id, NULL::VARCHAR AS key_name,
    coalesce(p.name, b.project_id, b.workspace_id) AS project, NULL::VARCHAR AS feature,
    NULL::VARCHAR AS query_id, b.user_id, coalesce(b.requests, 0) AS requests, b.input_tokens,
    b.cached_input_tokens, b.cache_write_tokens, b.cache_write_1h_tokens, b.output_tokens,
    coalesce(b.batch, false) AS batch, b.tier, b.long_context, b.cost_usd, NULL::DOUBLE AS latency_ms,
    NULL::DECIMAL(38, 15) AS reported_cost_usd, NULL::VARCHAR AS request_id
"""


def key_list_join(table: str, alias: str = "k", key_column: str = "api_key_id") -> str:
    """The provider's key list joined to an aggregated table with provider and key id columns.

    `{alias}.name` is then the name each fact of that key without a logged name stands for.
    Arguments are constant SQL names, never user text.
    """
    return (
        f"LEFT JOIN api_keys AS {alias}"
        f" ON {alias}.provider = {table}.provider AND {alias}.api_key_id = {table}.{key_column}"
    )


# Appended to a `facts_cte` clause: `banded_facts`, every fact with its long-context band `lc` and the
# threshold deciding it. A synced bucket carries the band its provider reported; a request is
# long-context when its input exceeds the threshold of the model's price period at its time (the
# rule of the bulk pricing in pricing_sql.py). Price periods start and end at UTC midnight, so a
# fact's rates depend only on (model_id, day, tier, lc): aggregate on those, then join `rates`.
BANDED_CTE = """,
thresholds AS (
    SELECT DISTINCT model, valid_from, valid_to, threshold_tokens FROM rates WHERE threshold_tokens IS NOT NULL
),
banded_facts AS (
    SELECT f.*,
        CASE WHEN f.source = 'provider_usage' THEN coalesce(f.long_context, false)
             ELSE coalesce(f.input_tokens > t.threshold_tokens, false) END AS lc,
        t.threshold_tokens
    FROM facts AS f
    LEFT JOIN thresholds AS t ON t.model = f.model_id AND f.ts >= t.valid_from AND f.ts < t.valid_to
)"""

# The `rates` row of an aggregated table `{s}` with model_id, day, tier and lc columns.
RATES_OF_DAY = (
    "rates AS {p} ON {p}.model = {s}.model_id AND {s}.day >= {p}.valid_from AND {s}.day < {p}.valid_to"
    " AND {p}.tier = {s}.tier AND {p}.long_context = {s}.lc"
)


# Request logs of a provider-day that has synced buckets are left out. An ANTI JOIN, not a correlated
# NOT EXISTS: DuckDB plans the latter as a delim join that copies every request row (7x slower at 10M).
_SYNCED_ANTI_JOIN = """
        ANTI JOIN synced_days AS d ON d.provider = r.provider AND d.day = CAST(r.ts AS DATE)"""


def _conditions(f: FactFilter, row: str, project_expr: str, *, request_logs: bool) -> tuple[str, list[object]]:
    conds: list[str] = []
    params: list[object] = []
    if f.provider is not None:
        conds.append(f"{row}.provider = ?")
        params.append(f.provider)
    if f.project is not None:
        conds.append(f"{project_expr} = ?")
        params.append(f.project)
    if f.api_key_id is not None:
        conds.append(f"{row}.api_key_id = ?")
        params.append(f.api_key_id)
    if f.model is not None:
        conds.append(f"({row}.model_id = ? OR {row}.model = ?)")
        params.extend([f.model, f.model])
    if request_logs and f.feature is not None:
        conds.append(f"{row}.feature = ?")
        params.append(f.feature)
    if request_logs and f.query_id is not None:
        conds.append(f"{row}.query_id = ?")
        params.append(f.query_id)
    return "".join(f" AND {c}" for c in conds), params


def facts_cte(f: FactFilter, sources: Sources = "auto") -> tuple[str, list[object]]:
    """The `WITH facts AS (...)` clause for a filter, and its parameters in order."""
    request_where, request_params = _conditions(f, "r", "r.project", request_logs=True)

    def request_part(synced_join: str = "") -> str:
        return f"""
        SELECT {_REQUEST_COLUMNS}
        FROM requests AS r{synced_join}
        WHERE r.ts >= ? AND r.ts < ?{request_where}"""

    if sources == "request_logs" or f.needs_request_logs:
        return f"WITH facts AS ({request_part()}\n)", [f.start, f.end, *request_params]

    project = "coalesce(p.name, b.project_id, b.workspace_id)"
    bucket_where, bucket_params = _conditions(f, "b", project, request_logs=False)
    sql = f"""
    WITH chosen AS (
        -- Per provider, endpoint and day, daily buckets win over hourly ones of the same traffic.
        -- Rows without tokens or requests are usage kinds not priced per token (images, audio, tool
        -- calls, storage; their metrics are in `extra`): they are not token spend.
        SELECT b.* FROM usage_buckets AS b
        WHERE b.bucket_start >= ? AND b.bucket_start < ?
          AND (b.input_tokens > 0 OR b.output_tokens > 0 OR coalesce(b.requests, 0) > 0)
        QUALIFY b.bucket_width = CASE WHEN bool_or(b.bucket_width = '1d')
            OVER (PARTITION BY b.provider, b.endpoint, CAST(b.bucket_start AS DATE)) THEN '1d' ELSE b.bucket_width END
    ),
    synced_days AS (SELECT DISTINCT provider, CAST(bucket_start AS DATE) AS day FROM chosen),
    facts AS (
        {request_part(_SYNCED_ANTI_JOIN)}
        UNION ALL
        SELECT {_BUCKET_COLUMNS}
        FROM chosen AS b
        LEFT JOIN projects AS p ON p.provider = b.provider AND p.project_id = coalesce(b.project_id, b.workspace_id)
        WHERE true{bucket_where}
    )"""
    return sql, [f.start, f.end, f.start, f.end, *request_params, *bucket_params]
