"""Spend queries: grouped totals, daily series, per-model cost components and single-request outliers.

Every query reads through `facts` (store/facts.py), so request logs and synced provider buckets are
never added together. Dimension and time-bucket expressions are constant fragments chosen from the
tables below; every value is a bound parameter.

A tool call scans its window once into a small TEMP table (`summary`, `history_scan`) and derives
every figure of its result from that table; only what cannot be summed (latency percentiles,
robust statistics of single requests) reads facts again.

The components split each priced fact's cost into its five token classes (uncached input, cache
reads, 5-minute and 1-hour cache writes, output) with the rates that priced it
(`pricing_sql.rate_join_sql`), so anomaly explanations can tell a price change from a change in how
much of the prompt hit the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from costhawk_mcp.store.coverage import (
    SCRATCH_COVERAGE_KEYS,
    SourceUse,
    Unpriced,
    scratch,
    source_use_in,
    unpriced_in,
)
from costhawk_mcp.store.db import Connection
from costhawk_mcp.store.facts import BANDED_CTE, RATES_OF_DAY, FactFilter, Sources, facts_cte, key_list_join
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
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None


@dataclass(frozen=True)
class PreviousGroup:
    """A group's spend in the span it is compared with."""

    keys: tuple[object, ...]
    key_name: str | None
    spend_usd: Decimal


@dataclass(frozen=True)
class SummaryScan:
    """What spend_summary reports about a window and the spans it compares with."""

    current: list[GroupTotals]  # the window's groups, and its total (`is_total`)
    previous: list[PreviousGroup]  # each group in its previous span (time buckets: the bucket before)
    previous_total: Decimal  # spend in the previous period of equal length
    sources: list[SourceUse]
    unpriced: Unpriced


_SUMMARY_SUMS = """
    sum(cost), sum(requests), sum(input_tokens), sum(cached_input_tokens), sum(cache_write_tokens),
    sum(output_tokens), coalesce(sum(requests) FILTER (WHERE is_unpriced), 0),
    coalesce(sum(requests) FILTER (WHERE source = 'request_logs'), 0), sum(latency_requests)"""

# max(name) over a group's facts, from per-(provider, key) parts: a fact's name is its logged one,
# else the provider's key list's (facts.py), so the largest is the larger of the logged maximum and
# the listed name when some fact had none.
_GROUP_NAME = "max(greatest(s.named_max, CASE WHEN s.unnamed THEN n.name END))"
_NAME_PARTS = ", max(key_name) AS named_max, bool_or(key_name IS NULL) AS unnamed"


def _key_exprs(dimensions: list[str], ts: str) -> list[str]:
    return [TIME_BUCKET_SQL[d].format(ts=ts) if d in TIME_BUCKET_SQL else DIMENSION_SQL[d] for d in dimensions]


def _grouping(count: int, with_total: bool) -> tuple[str, str, str]:
    """(select-list keys `k0, …`, the grouping flag, the GROUP BY clause) for `count` keys."""
    names = ", ".join(f"k{i}" for i in range(count))
    if with_total:
        return names, f"grouping({names})", f"GROUP BY GROUPING SETS (({names}), ())"
    return names, "0", f"GROUP BY {names}"


def summary(
    conn: Connection,
    f: FactFilter,
    dimensions: list[str],
    *,
    sources: Sources = "auto",
    row_previous: tuple[datetime, datetime],
    previous: tuple[datetime, datetime],
) -> SummaryScan:
    """Totals per combination of `dimensions` (at most one time bucket, else DIMENSION_SQL keys).

    `f` is the window; `row_previous` the span each row compares with (for a time bucket, the
    window moved back one bucket, each fact's bucket computed on its time moved forward so it lines
    up with the bucket after it); `previous` the period of equal length before the window.

    The window is scanned once into a TEMP table per UTC day, source, provider, unpriced model and
    dimension values, from which the groups, the total, the sources and the unpriced usage come.
    The spans compared with are scanned apart, for spend alone: each span is its own facts window
    (which source answers a provider-day cut by a span's edge depends on the span), and a union
    scan would push them through the window's wide grouping. Latency percentiles cannot be summed:
    the window's latency is read once more, only when any fact in it carries latency. API key
    names are looked up per group after aggregation (facts.py).
    """
    time_dim = next((d for d in dimensions if d in TIME_BUCKET_SQL), None)
    keyed = [d for d in dimensions if d not in TIME_BUCKET_SQL]
    named = "api_key" in keyed
    name_expr = _GROUP_NAME if named else "NULL"
    _, grouping, group = _grouping(len(dimensions), with_total=True)
    cte, params = facts_cte(f, sources)
    key_cols = "".join(f"{DIMENSION_SQL[d]} AS d_{d}, " for d in keyed)
    grouped = f"""{cte}
        SELECT {SCRATCH_COVERAGE_KEYS}, {key_cols}
               sum(cost_usd) AS cost, sum(requests) AS requests, sum(input_tokens) AS input_tokens,
               sum(cached_input_tokens) AS cached_input_tokens,
               sum(cache_write_tokens + cache_write_1h_tokens) AS cache_write_tokens,
               sum(output_tokens) AS output_tokens, count(latency_ms) AS latency_requests{_NAME_PARTS if named else ""}
        FROM facts
        GROUP BY ALL"""
    with scratch(conn, grouped, params) as t:
        exprs = [TIME_BUCKET_SQL[d].format(ts="s.day") if d in TIME_BUCKET_SQL else f"s.d_{d}" for d in dimensions]
        key_list = "".join(f"{k} AS k{i}, " for i, k in enumerate(exprs))
        name_join = key_list_join("s", "n", key_column="d_api_key") if named else ""
        rows = conn.execute(
            f"SELECT {key_list}{grouping}, {name_expr}, {_SUMMARY_SUMS} FROM {t} AS s {name_join} {group}"
        ).fetchall()
        uses = source_use_in(conn, t)
        unknown = unpriced_in(conn, t)
    n = len(dimensions)
    current = [
        GroupTotals(
            is_total=r[n] != 0,
            keys=() if r[n] != 0 else tuple(r[:n]),
            key_name=r[n + 1],
            spend_usd=_decimal(r[n + 2]),
            requests=int(r[n + 3] or 0),
            input_tokens=int(r[n + 4] or 0),
            cached_input_tokens=int(r[n + 5] or 0),
            cache_write_tokens=int(r[n + 6] or 0),
            output_tokens=int(r[n + 7] or 0),
            unpriced_requests=int(r[n + 8] or 0),
            logged_requests=int(r[n + 9] or 0),
            latency_requests=int(r[n + 10] or 0),
        )
        for r in rows
    ]
    if any(g.latency_requests for g in current if g.is_total):
        current = _with_latency(conn, f, dimensions, sources, current)

    # Each row's previous span; without a time bucket that is the previous period, whose total it gives too.
    shifted = f"(ts + {SHIFT_SQL[time_dim]})" if time_dim else "ts"
    before, previous_total = _previous_spend(
        conn, replace(f, start=row_previous[0], end=row_previous[1]), dimensions, sources, shifted, time_dim is None
    )
    if time_dim is not None:
        cte, params = facts_cte(replace(f, start=previous[0], end=previous[1]), sources)
        row = conn.execute(f"{cte} SELECT sum(cost_usd) FROM facts", params).fetchone()
        previous_total = _decimal(row[0] if row else None)
    return SummaryScan(current, before, previous_total, uses, unknown)


def _previous_spend(
    conn: Connection, f: FactFilter, dimensions: list[str], sources: Sources, ts: str, with_total: bool
) -> tuple[list[PreviousGroup], Decimal]:
    """Spend (and key name) per group of `dimensions` in `f`, time buckets computed on `ts`."""
    named = "api_key" in dimensions
    exprs = _key_exprs(dimensions, ts)
    inner = "".join(f"{k} AS k{i}, " for i, k in enumerate(exprs))
    names, grouping, group = _grouping(len(dimensions), with_total)
    cte, params = facts_cte(f, sources)
    if named:  # names need the provider of each key: summed per provider first
        i = dimensions.index("api_key")
        sql = f"""{cte},
        s AS (
            SELECT {inner}provider, sum(cost_usd) AS cost{_NAME_PARTS} FROM facts GROUP BY ALL
        )
        SELECT {names}, {grouping}, {_GROUP_NAME}, sum(cost)
        FROM s {key_list_join("s", "n", key_column=f"k{i}")}
        {group}"""
    else:
        sql = f"{cte} SELECT {inner}{grouping}, NULL, sum(cost_usd) FROM facts {group}"
    rows = conn.execute(sql, params).fetchall()
    n = len(dimensions)
    groups = [PreviousGroup(tuple(r[:n]), r[n + 1], _decimal(r[n + 2])) for r in rows if r[n] == 0]
    total = next((_decimal(r[n + 2]) for r in rows if r[n] != 0), Decimal(0))
    return groups, total


def _with_latency(
    conn: Connection, f: FactFilter, dimensions: list[str], sources: Sources, groups: list[GroupTotals]
) -> list[GroupTotals]:
    """The groups with their latency percentiles (exact: from the window's facts, not from sums)."""
    names, _, group = _grouping(len(dimensions), with_total=True)
    key_list = "".join(f"{k} AS k{i}, " for i, k in enumerate(_key_exprs(dimensions, "ts")))
    cte, params = facts_cte(f, sources)
    rows = conn.execute(
        f"""{cte}
        SELECT {key_list}grouping({names}), quantile_cont(latency_ms, [0.5, 0.95, 0.99])
        FROM facts WHERE latency_ms IS NOT NULL
        {group}""",
        params,
    ).fetchall()
    n = len(dimensions)
    found = {(r[n] != 0, () if r[n] != 0 else tuple(r[:n])): r[n + 1] for r in rows}
    out = []
    for g in groups:
        lat = found.get((g.is_total, g.keys))
        if not lat:
            out.append(g)
            continue
        out.append(
            replace(
                g,
                latency_p50_ms=float(lat[0]) if lat[0] is not None else None,
                latency_p95_ms=float(lat[1]) if lat[1] is not None else None,
                latency_p99_ms=float(lat[2]) if lat[2] is not None else None,
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


@dataclass(frozen=True)
class HistoryScan:
    """What detect_anomalies reads about whole days, from one scan of its history."""

    components: list[Components]
    first_day: date | None  # the first day with any usage, priced or not
    key_names: dict[str, str]  # API key id → name (dimension api_key only)
    sources: list[SourceUse]  # of the scanned days (from `scan_start`)
    unpriced: Unpriced  # of the scanned days


# Token classes over a table of sums (`s`) and the rates joined to it (`p`).
_SUM_CLASSES = ("uncached", "cached", "write", "write_1h", "output")
_SUM_RATES = ("r_input", "r_cached", "r_cache_write", "r_cache_write_1h", "r_output")
_FACT_CLASSES = (
    "input_tokens - cached_input_tokens - cache_write_tokens - cache_write_1h_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
)
_CLASS_SUMS = ", ".join(f"sum({e}) AS {c}" for e, c in zip(_FACT_CLASSES, _SUM_CLASSES, strict=True))
_SUMMED_TOKENS = ", ".join(f"sum(s.{c})" for c in _SUM_CLASSES)
_SUMMED_COSTS = ", ".join(f"sum(s.{c} * p.{r})" for c, r in zip(_SUM_CLASSES, _SUM_RATES, strict=True))


def history_scan(conn: Connection, history: FactFilter, dimension: str, *, scan_start: date) -> HistoryScan:
    """Per UTC day, series and model: requests, tokens and cost of each token class (priced facts).

    One scan of the history into a TEMP table per day, series, model, tier and long-context band
    (plus source, provider and unpriced model, for the coverage figures), then the `rates` of each
    group: a class's cost is its summed tokens × the rate in force, exactly the sum of the per-fact
    products, without joining rates to ten million rows. The first day, the sources and unpriced
    usage of the scanned days (from `scan_start`) and API key names come from the same table.
    """
    named = dimension == "api_key"
    name_aggs = ", api_key_id, max(key_name) AS named_max, bool_or(key_name IS NULL) AS unnamed" if named else ""
    cte, params = facts_cte(history)
    grouped = f"""{cte}{BANDED_CTE}
        SELECT {series_sql(dimension)} AS series, {SCRATCH_COVERAGE_KEYS}, model_id, tier, lc,
               sum(requests) AS requests, {_CLASS_SUMS}, sum(cost_usd) AS cost,
               count(*) FILTER (WHERE requests = 0 AND input_tokens + output_tokens > 0) AS units_missing{name_aggs}
        FROM banded_facts
        GROUP BY ALL"""
    with scratch(conn, grouped, params) as t:
        rows = conn.execute(
            f"""
            SELECT s.day, s.series, s.model_id, sum(s.requests), {_SUMMED_TOKENS}, {_SUMMED_COSTS},
                   sum(s.cost), sum(s.units_missing)
            FROM {t} AS s JOIN {RATES_OF_DAY.format(s="s", p="p")}
            WHERE NOT s.is_unpriced
            GROUP BY ALL
            ORDER BY 1, 2, 3"""
        ).fetchall()
        first = conn.execute(f"SELECT min(day) FROM {t}").fetchone()
        names: dict[str, str] = {}
        if named:
            found = conn.execute(
                f"""
                SELECT s.api_key_id, max(greatest(s.named_max, CASE WHEN s.unnamed THEN n.name END)) AS name
                FROM {t} AS s {key_list_join("s", "n")}
                WHERE s.api_key_id IS NOT NULL GROUP BY 1 HAVING name IS NOT NULL"""
            ).fetchall()
            names = {str(r[0]): str(r[1]) for r in found}
        uses = source_use_in(conn, t, "day >= ?", [scan_start])
        unknown = unpriced_in(conn, t, "day >= ?", [scan_start])
    return HistoryScan(
        components=[
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
        ],
        first_day=first[0] if first else None,
        key_names=names,
        sources=uses,
        unpriced=unknown,
    )


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

    Medians need every request, so this reads the window's request logs: once for the groups' typical
    cost, once for the requests far above it (rates and key names joined to those few only), and,
    when any were found, once more for their groups' pooled composition (summed per day, tier and
    band before the rates are joined).
    """
    cte, params = facts_cte(f, "request_logs")
    # 1. Each group's typical cost.
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
    # 2. The requests far above their group's typical cost, then their own cost per token class.
    found = conn.execute(
        f"""{cte},{group_cte},
        found AS (
            SELECT f.*, (ln(CAST(f.cost_usd AS DOUBLE)) - g.mlc) / g.scale AS z, g.n, g.med, g.fk
            FROM facts AS f
            JOIN g ON g.model_id = f.model_id AND g.fk = coalesce(f.feature, '')
            WHERE f.cost_usd >= ? * g.med AND (ln(CAST(f.cost_usd AS DOUBLE)) - g.mlc) / g.scale >= ?
            ORDER BY f.cost_usd - g.med DESC, f.ts, f.request_id
            LIMIT ?
        )
        SELECT f.request_id, f.ts, f.provider, f.model, f.model_id, f.api_key_id, coalesce(f.key_name, k.name),
               f.project, f.feature, f.query_id, f.user_id, {_CLASS_TOKENS}, {_CLASS_COSTS}, f.cost_usd,
               f.z, f.n, f.med, f.fk
        FROM found AS f
        JOIN rates AS p ON {join}
        {key_list_join("f", "k")}
        ORDER BY f.cost_usd - f.med DESC, f.ts, f.request_id""",
        [*params, *group_values, min_multiple, min_score, limit],
    ).fetchall()
    if not found:
        return []
    # 3. The pooled composition of the groups those requests belong to.
    wanted = sorted({(r[4], r[25]) for r in found})
    pooled = conn.execute(
        f"""{cte},
        g AS (SELECT unnest(?::VARCHAR[]) AS model_id, unnest(?::VARCHAR[]) AS fk),
        thresholds AS (
            SELECT DISTINCT model, valid_from, valid_to, threshold_tokens FROM rates WHERE threshold_tokens IS NOT NULL
        ),
        s AS (
            SELECT f.model_id, g.fk, f.day, f.tier, coalesce(f.input_tokens > t.threshold_tokens, false) AS lc,
                   {_CLASS_SUMS}
            FROM facts AS f
            JOIN g ON g.model_id = f.model_id AND g.fk = coalesce(f.feature, '')
            LEFT JOIN thresholds AS t ON t.model = f.model_id AND f.ts >= t.valid_from AND f.ts < t.valid_to
            WHERE f.cost_usd > 0
            GROUP BY ALL
        )
        SELECT s.model_id, s.fk, {_SUMMED_TOKENS}, {_SUMMED_COSTS}
        FROM s JOIN {RATES_OF_DAY.format(s="s", p="p")}
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
