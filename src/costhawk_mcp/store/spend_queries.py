"""Spend queries: grouped totals, daily series, per-model cost components and single-request outliers.

Every query reads through `facts` (store/facts.py), so request logs and synced provider buckets are
never added together. Dimension and time-bucket expressions are constant fragments chosen from the
tables below; every value is a bound parameter.

The component query splits each priced fact's cost into its five token classes (uncached input,
cache reads, 5-minute and 1-hour cache writes, output) by joining the `rates` table with the same
join that priced the row (`pricing_sql.rate_join_sql`), so anomaly explanations can tell a price
change from a change in how much of the prompt hit the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from costhawk_mcp.store.db import Connection
from costhawk_mcp.store.facts import FactFilter, Sources, facts_cte
from costhawk_mcp.store.pricing_sql import rate_join_sql

# Grouping expressions over `facts` (a model groups under its catalog id when it has one).
DIMENSION_SQL: dict[str, str] = {
    "provider": "provider",
    "model": "coalesce(model_id, model)",
    "api_key": "api_key_id",
    "project": "project",
    "feature": "feature",
}

# UTC calendar buckets (ISO weeks start on Monday), over a timestamp expression.
TIME_BUCKET_SQL: dict[str, str] = {
    "day": "CAST(date_trunc('day', {ts}) AS DATE)",
    "week": "CAST(date_trunc('week', {ts}) AS DATE)",
    "month": "CAST(date_trunc('month', {ts}) AS DATE)",
}

# How far back "the previous bucket" of each time grouping lies (added to ts before bucketing).
SHIFT_SQL: dict[str, str] = {"day": "INTERVAL 1 DAY", "week": "INTERVAL 7 DAY", "month": "INTERVAL 1 MONTH"}

_UNCACHED = "(f.input_tokens - f.cached_input_tokens - f.cache_write_tokens - f.cache_write_1h_tokens)"
# A request row's long-context band follows from its own size; a synced bucket says which band it was.
_CLASS_TOKEN_EXPRS = [
    _UNCACHED,
    "f.cached_input_tokens",
    "f.cache_write_tokens",
    "f.cache_write_1h_tokens",
    "f.output_tokens",
]
_CLASS_COST_EXPRS = [
    f"{_UNCACHED} * p.r_input",
    "f.cached_input_tokens * p.r_cached",
    "f.cache_write_tokens * p.r_cache_write",
    "f.cache_write_1h_tokens * p.r_cache_write_1h",
    "f.output_tokens * p.r_output",
]
_CLASS_TOKENS = ", ".join(_CLASS_TOKEN_EXPRS)
_CLASS_COSTS = ", ".join(_CLASS_COST_EXPRS)
_BAND = (
    "CASE WHEN f.source = 'provider_usage' THEN f.long_context "
    "ELSE (p.threshold_tokens IS NOT NULL AND f.input_tokens > p.threshold_tokens) END"
)


def _decimal(value: object) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


@dataclass(frozen=True)
class GroupTotals:
    """Aggregates of one group of facts (or of all of them: `is_total`)."""

    is_total: bool
    keys: tuple[object, ...]
    key_name: str | None
    spend_usd: Decimal
    requests: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    unpriced_requests: int
    logged_requests: int
    latency_requests: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None


def grouped_totals(
    conn: Connection,
    f: FactFilter,
    dimensions: list[str],
    *,
    sources: Sources = "auto",
    time_shift: str | None = None,
    with_total: bool = False,
) -> list[GroupTotals]:
    """Totals per combination of `dimensions` (time buckets and/or DIMENSION_SQL keys).

    With `time_shift` (a SHIFT_SQL key), each fact's time bucket is computed on `ts` moved forward by
    that much, so a query over the window moved back lines up every row with its previous bucket.
    With `with_total`, the same scan also returns the grand total (`is_total`), by grouping sets.
    """
    ts = f"(ts + {SHIFT_SQL[time_shift]})" if time_shift else "ts"
    keys = [TIME_BUCKET_SQL[d].format(ts=ts) if d in TIME_BUCKET_SQL else DIMENSION_SQL[d] for d in dimensions]
    names = ", ".join(f"k{i}" for i in range(len(keys)))
    key_list = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
    if not keys:
        group, grouping = "", "1, "
    elif with_total:
        group, grouping = f"GROUP BY GROUPING SETS (({names}), ())", f"grouping({names}), "
    else:
        group, grouping = f"GROUP BY {names}", "0, "
    cte, params = facts_cte(f, sources)
    rows = conn.execute(
        f"""{cte}
        SELECT {key_list}{grouping}
            max(key_name),
            sum(cost_usd), sum(requests), sum(input_tokens), sum(cached_input_tokens),
            sum(cache_write_tokens + cache_write_1h_tokens), sum(output_tokens),
            coalesce(sum(requests) FILTER (WHERE cost_usd IS NULL), 0),
            coalesce(sum(requests) FILTER (WHERE source = 'request_logs'), 0),
            count(latency_ms),
            quantile_cont(latency_ms, [0.5, 0.95, 0.99])
        FROM facts
        {group}""",
        params,
    ).fetchall()
    n = len(keys)
    out = []
    for row in rows:
        is_total = row[n] != 0
        r = row[:n] + row[n + 1 :]
        lat = r[n + 10]
        out.append(
            GroupTotals(
                is_total=is_total,
                keys=() if is_total else tuple(r[:n]),
                key_name=r[n],
                spend_usd=_decimal(r[n + 1]),
                requests=int(r[n + 2] or 0),
                input_tokens=int(r[n + 3] or 0),
                cached_input_tokens=int(r[n + 4] or 0),
                cache_write_tokens=int(r[n + 5] or 0),
                output_tokens=int(r[n + 6] or 0),
                unpriced_requests=int(r[n + 7] or 0),
                logged_requests=int(r[n + 8] or 0),
                latency_requests=int(r[n + 9] or 0),
                latency_p50_ms=float(lat[0]) if lat and lat[0] is not None else None,
                latency_p95_ms=float(lat[1]) if lat and lat[1] is not None else None,
                latency_p99_ms=float(lat[2]) if lat and lat[2] is not None else None,
            )
        )
    return out


def series_sql(dimension: str) -> str:
    """The series key of an anomaly or forecast dimension ('total' is one series)."""
    return "'total'" if dimension == "total" else DIMENSION_SQL[dimension]


@dataclass(frozen=True)
class Components:
    """Priced usage of one model in one series on one day, split by token class.

    `units_missing` counts facts with tokens but no request count (synced buckets of providers that
    do not report requests), so callers know whether requests can measure volume.
    """

    day: date
    series: str | None
    model: str
    requests: int
    uncached_tokens: int
    cached_tokens: int
    write_tokens: int
    write_1h_tokens: int
    output_tokens: int
    uncached_usd: Decimal
    cached_usd: Decimal
    write_usd: Decimal
    write_1h_usd: Decimal
    output_usd: Decimal
    cost_usd: Decimal
    units_missing: int


def daily_components(conn: Connection, f: FactFilter, dimension: str, *, sources: Sources = "auto") -> list[Components]:
    """Per UTC day, series and model: requests, tokens and cost of each token class (priced facts only)."""
    cte, params = facts_cte(f, sources)
    join = rate_join_sql("f", "p", long_context=_BAND)
    rows = conn.execute(
        f"""{cte}
        SELECT f.day, {_qualified(dimension)}, f.model_id,
            sum(f.requests),
            sum({_UNCACHED}), sum(f.cached_input_tokens), sum(f.cache_write_tokens), sum(f.cache_write_1h_tokens),
            sum(f.output_tokens),
            sum({_UNCACHED} * p.r_input), sum(f.cached_input_tokens * p.r_cached),
            sum(f.cache_write_tokens * p.r_cache_write), sum(f.cache_write_1h_tokens * p.r_cache_write_1h),
            sum(f.output_tokens * p.r_output),
            sum(f.cost_usd),
            count(*) FILTER (WHERE f.requests = 0 AND f.input_tokens + f.output_tokens > 0)
        FROM facts AS f JOIN rates AS p ON {join}
        WHERE f.cost_usd IS NOT NULL
        GROUP BY ALL
        ORDER BY 1, 2, 3""",
        params,
    ).fetchall()
    return [
        Components(
            day=r[0],
            series=None if r[1] is None else str(r[1]),
            model=str(r[2]),
            requests=int(r[3] or 0),
            uncached_tokens=int(r[4] or 0),
            cached_tokens=int(r[5] or 0),
            write_tokens=int(r[6] or 0),
            write_1h_tokens=int(r[7] or 0),
            output_tokens=int(r[8] or 0),
            uncached_usd=_decimal(r[9]),
            cached_usd=_decimal(r[10]),
            write_usd=_decimal(r[11]),
            write_1h_usd=_decimal(r[12]),
            output_usd=_decimal(r[13]),
            cost_usd=_decimal(r[14]),
            units_missing=int(r[15] or 0),
        )
        for r in rows
    ]


def _qualified(dimension: str) -> str:
    if dimension == "total":
        return "'total'"
    return "coalesce(f.model_id, f.model)" if dimension == "model" else f"f.{DIMENSION_SQL[dimension]}"


def daily_spend(
    conn: Connection, f: FactFilter, dimension: str, *, sources: Sources = "auto"
) -> list[tuple[date, str | None, Decimal]]:
    """Priced spend per UTC day and series (days without priced spend are absent)."""
    cte, params = facts_cte(f, sources)
    rows = conn.execute(
        f"""{cte}
        SELECT day, {series_sql(dimension)}, sum(cost_usd)
        FROM facts WHERE cost_usd IS NOT NULL
        GROUP BY ALL ORDER BY 1, 2""",
        params,
    ).fetchall()
    return [(r[0], None if r[1] is None else str(r[1]), _decimal(r[2])) for r in rows]


def first_day(conn: Connection, f: FactFilter, *, sources: Sources = "auto") -> date | None:
    """The first UTC day with any usage (priced or not) under `f`, or None."""
    cte, params = facts_cte(f, sources)
    row = conn.execute(f"{cte} SELECT min(day) FROM facts", params).fetchone()
    return None if row is None else row[0]


def total_spend(conn: Connection, f: FactFilter, *, sources: Sources = "auto") -> Decimal:
    """Priced spend under `f`."""
    cte, params = facts_cte(f, sources)
    row = conn.execute(f"{cte} SELECT sum(cost_usd) FROM facts", params).fetchone()
    return _decimal(row[0] if row else None)


@dataclass(frozen=True)
class OutlierRequest:
    """One request that cost far more than typical for its model and feature, with its group's profile."""

    request_id: str
    ts: datetime
    provider: str
    model: str
    model_id: str
    api_key_id: str | None
    key_name: str | None
    project: str | None
    feature: str | None
    query_id: str | None
    user_id: str | None
    uncached_tokens: int
    cached_tokens: int
    write_tokens: int
    write_1h_tokens: int
    output_tokens: int
    uncached_usd: Decimal
    cached_usd: Decimal
    write_usd: Decimal
    write_1h_usd: Decimal
    output_usd: Decimal
    cost_usd: Decimal
    score: float
    group_requests: int
    group_median_usd: Decimal
    group_uncached_tokens: int
    group_cached_tokens: int
    group_write_tokens: int
    group_write_1h_tokens: int
    group_output_tokens: int
    group_uncached_usd: Decimal
    group_cached_usd: Decimal
    group_write_usd: Decimal
    group_write_1h_usd: Decimal
    group_output_usd: Decimal


def outlier_requests(
    conn: Connection,
    f: FactFilter,
    *,
    min_group: int,
    min_multiple: Decimal,
    min_score: float,
    log_scale_floor: float,
    limit: int,
) -> list[OutlierRequest]:
    """Requests costing at least `min_multiple` × their group's median and `min_score` robust z above it.

    Groups are (catalog model, feature) with at least `min_group` priced requests in the window. The
    score is a robust z on log cost: (ln cost − median ln cost) / max(1.4826 × MAD of ln cost,
    `log_scale_floor`). Largest excess over the median first. Request logs only.
    """
    cte, params = facts_cte(f, "request_logs")
    # 1. Each group's typical cost (one pass, no pricing join).
    groups = conn.execute(
        f"""{cte},
        r AS (
            SELECT model_id, coalesce(feature, '') AS fk, cost_usd, ln(CAST(cost_usd AS DOUBLE)) AS lc
            FROM facts WHERE cost_usd > 0
        )
        SELECT model_id, fk, count(*), median(lc), greatest(1.4826 * mad(lc), ?), CAST(median(cost_usd) AS VARCHAR)
        FROM r GROUP BY model_id, fk HAVING count(*) >= ?""",
        [*params, log_scale_floor, min_group],
    ).fetchall()
    if not groups:
        return []
    group_values = [[g[i] for g in groups] for i in range(6)]
    group_cte = """
        g AS (
            SELECT unnest(?::VARCHAR[]) AS model_id, unnest(?::VARCHAR[]) AS fk, unnest(?::BIGINT[]) AS n,
                   unnest(?::DOUBLE[]) AS mlc, unnest(?::DOUBLE[]) AS scale,
                   CAST(unnest(?::VARCHAR[]) AS DECIMAL(38, 15)) AS med
        )"""
    join = rate_join_sql("f", "p", long_context=_BAND)
    # 2. The requests far above their group's typical cost, with their own cost per token class.
    found = conn.execute(
        f"""{cte},{group_cte}
        SELECT f.request_id, f.ts, f.provider, f.model, f.model_id, f.api_key_id, f.key_name, f.project,
               f.feature, f.query_id, f.user_id, {_CLASS_TOKENS}, {_CLASS_COSTS}, f.cost_usd,
               (ln(CAST(f.cost_usd AS DOUBLE)) - g.mlc) / g.scale AS z, g.n, g.med, g.fk
        FROM facts AS f
        JOIN g ON g.model_id = f.model_id AND g.fk = coalesce(f.feature, '')
        JOIN rates AS p ON {join}
        WHERE f.cost_usd >= ? * g.med AND (ln(CAST(f.cost_usd AS DOUBLE)) - g.mlc) / g.scale >= ?
        ORDER BY f.cost_usd - g.med DESC, f.ts, f.request_id
        LIMIT ?""",
        [*params, *group_values, min_multiple, min_score, limit],
    ).fetchall()
    if not found:
        return []
    # 3. The pooled composition of the groups those requests belong to.
    wanted = sorted({(r[4], r[25]) for r in found})
    pooled = conn.execute(
        f"""{cte},
        g AS (SELECT unnest(?::VARCHAR[]) AS model_id, unnest(?::VARCHAR[]) AS fk)
        SELECT f.model_id, g.fk, {", ".join(f"sum({c})" for c in _CLASS_TOKEN_EXPRS + _CLASS_COST_EXPRS)}
        FROM facts AS f
        JOIN g ON g.model_id = f.model_id AND g.fk = coalesce(f.feature, '')
        JOIN rates AS p ON {join}
        WHERE f.cost_usd > 0
        GROUP BY 1, 2""",
        [*params, [w[0] for w in wanted], [w[1] for w in wanted]],
    ).fetchall()
    profile = {(r[0], r[1]): r[2:] for r in pooled}
    rows = [(*r[:25], *profile[(r[4], r[25])]) for r in found]
    return [
        OutlierRequest(
            request_id=str(r[0]),
            ts=r[1],
            provider=str(r[2]),
            model=str(r[3]),
            model_id=str(r[4]),
            api_key_id=r[5],
            key_name=r[6],
            project=r[7],
            feature=r[8],
            query_id=r[9],
            user_id=r[10],
            uncached_tokens=int(r[11]),
            cached_tokens=int(r[12]),
            write_tokens=int(r[13]),
            write_1h_tokens=int(r[14]),
            output_tokens=int(r[15]),
            uncached_usd=_decimal(r[16]),
            cached_usd=_decimal(r[17]),
            write_usd=_decimal(r[18]),
            write_1h_usd=_decimal(r[19]),
            output_usd=_decimal(r[20]),
            cost_usd=_decimal(r[21]),
            score=float(r[22]),
            group_requests=int(r[23]),
            group_median_usd=_decimal(r[24]),
            group_uncached_tokens=int(r[25]),
            group_cached_tokens=int(r[26]),
            group_write_tokens=int(r[27]),
            group_write_1h_tokens=int(r[28]),
            group_output_tokens=int(r[29]),
            group_uncached_usd=_decimal(r[30]),
            group_cached_usd=_decimal(r[31]),
            group_write_usd=_decimal(r[32]),
            group_write_1h_usd=_decimal(r[33]),
            group_output_usd=_decimal(r[34]),
        )
        for r in rows
    ]


def key_names(conn: Connection, f: FactFilter, *, sources: Sources = "auto") -> dict[str, str]:
    """API key id → name, for the keys seen under `f` that have a name."""
    cte, params = facts_cte(f, sources)
    rows = conn.execute(
        f"{cte} SELECT api_key_id, max(key_name) FROM facts WHERE api_key_id IS NOT NULL AND key_name IS NOT NULL "
        "GROUP BY 1",
        params,
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}
