"""SQL behind the usage tools: spend per API key, cost per query, and model-swap re-pricing.

Each function scans `facts` (facts.py: synced buckets win over request logs per provider-day) once,
into a small TEMP table on the caller's read-only connection, and answers every part of its result
(rows, totals, data sources, unpriced usage) from that table. So ten million rows are read once per
tool call, and the figures of one result always come from the same snapshot. Values are bound
parameters; f-strings splice only the fixed fragments of this module and of facts.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from costhawk_mcp.store.coverage import SourceUse, Unpriced, scratch, source_use, source_use_in
from costhawk_mcp.store.db import Connection
from costhawk_mcp.store.facts import FactFilter, facts_cte, key_list_join


def _unpriced(conn: Connection, table: str, where: str = "true") -> Unpriced:
    """`coverage.unpriced` over a scratch table with model and unpriced (request count) columns.

    An unpriced row has no catalog id, so its `coalesce(model_id, model)` is the name as reported.
    """
    rows = conn.execute(
        f"SELECT model, sum(unpriced) FROM {table} WHERE {where} AND unpriced > 0 GROUP BY model ORDER BY 2 DESC, 1"
    ).fetchall()
    return Unpriced(requests=int(sum(r[1] for r in rows)), models=[str(r[0]) for r in rows])


# ---------------------------------------------------------------------------------------- keys
@dataclass(frozen=True)
class KeySpend:
    """One API key's spend in the window, and in the window of equal length before it."""

    provider: str
    api_key_id: str
    key_name: str | None
    project: str | None
    cost: Decimal | None
    requests: int
    unpriced_requests: int
    input_tokens: int
    output_tokens: int
    top_model: str | None
    previous_cost: Decimal | None


@dataclass(frozen=True)
class KeyReport:
    """The top keys of a window and the totals they are shares of."""

    keys: list[KeySpend]
    key_count: int
    total_cost: Decimal
    total_requests: int
    previous_total_cost: Decimal
    unattributed_cost: Decimal
    unattributed_requests: int
    sources: list[SourceUse]
    unpriced: Unpriced


def key_spend(conn: Connection, f: FactFilter, *, current_start: datetime, limit: int) -> KeyReport:
    """Spend per (provider, api_key_id) in [current_start, f.end), with [f.start, current_start) beside it.

    Rows without a key id are not a key: they are totals (`unattributed_*`). A key's project and top
    model are the ones with most of its spend (most requests when nothing is priced).
    """
    cte, params = facts_cte(f)
    grouped = f"""{cte}
        SELECT source, provider, day, api_key_id, coalesce(model_id, model) AS model, project,
               ts >= ? AS cur,
               sum(cost_usd) AS cost,
               sum(requests) AS requests,
               coalesce(sum(requests) FILTER (WHERE cost_usd IS NULL), 0) AS unpriced,
               sum(input_tokens) AS input_tokens,
               sum(output_tokens) AS output_tokens,
               arg_max(key_name, ts) FILTER (WHERE key_name IS NOT NULL) AS key_name,
               max(ts) FILTER (WHERE key_name IS NOT NULL) AS named_at,
               arg_max_null(key_name, ts) AS last_name,
               max(ts) AS last_at
        FROM facts
        GROUP BY ALL"""
    with scratch(conn, grouped, [*params, current_start]) as t:
        rows = conn.execute(
            f"""
            WITH k AS (
                SELECT s.provider, s.api_key_id,
                       sum(cost) FILTER (WHERE cur) AS cost,
                       coalesce(sum(requests) FILTER (WHERE cur), 0) AS requests,
                       coalesce(sum(unpriced) FILTER (WHERE cur), 0) AS unpriced,
                       coalesce(sum(input_tokens) FILTER (WHERE cur), 0) AS input_tokens,
                       coalesce(sum(output_tokens) FILTER (WHERE cur), 0) AS output_tokens,
                       sum(cost) FILTER (WHERE NOT cur) AS previous_cost,
                       -- The latest fact's name, a logged one before the provider's key list (facts.py).
                       CASE WHEN any_value(n.name) IS NOT NULL
                            THEN coalesce(arg_max_null(last_name, last_at), any_value(n.name))
                            ELSE arg_max(key_name, named_at) END AS key_name
                FROM {t} AS s {key_list_join("s", "n")} WHERE s.api_key_id IS NOT NULL
                GROUP BY s.provider, s.api_key_id
                HAVING bool_or(cur)
            ),
            by_model AS (
                SELECT provider, api_key_id, model, sum(cost) AS cost, sum(requests) AS requests
                FROM {t} WHERE cur AND api_key_id IS NOT NULL GROUP BY ALL
            ),
            by_project AS (
                SELECT provider, api_key_id, project, sum(cost) AS cost, sum(requests) AS requests
                FROM {t} WHERE cur AND api_key_id IS NOT NULL GROUP BY ALL
            ),
            tops AS (
                SELECT m.provider, m.api_key_id,
                       first(m.model ORDER BY m.cost DESC NULLS LAST, m.requests DESC, m.model) AS top_model
                FROM by_model AS m GROUP BY ALL
            ),
            homes AS (
                SELECT p.provider, p.api_key_id,
                       first(p.project ORDER BY p.cost DESC NULLS LAST, p.requests DESC, p.project NULLS LAST)
                           AS project
                FROM by_project AS p GROUP BY ALL
            )
            SELECT k.provider, k.api_key_id, k.key_name, h.project, k.cost, k.requests, k.unpriced,
                   k.input_tokens, k.output_tokens, tops.top_model, k.previous_cost
            FROM k
            LEFT JOIN tops USING (provider, api_key_id)
            LEFT JOIN homes AS h USING (provider, api_key_id)
            ORDER BY k.cost DESC NULLS LAST, k.requests DESC, k.provider, k.api_key_id
            LIMIT ?
            """,
            [limit],
        ).fetchall()
        totals = conn.execute(
            f"""
            SELECT sum(cost) FILTER (WHERE cur), sum(requests) FILTER (WHERE cur),
                   sum(cost) FILTER (WHERE NOT cur),
                   sum(cost) FILTER (WHERE cur AND api_key_id IS NULL),
                   sum(requests) FILTER (WHERE cur AND api_key_id IS NULL),
                   count(DISTINCT (provider, api_key_id)) FILTER (WHERE cur AND api_key_id IS NOT NULL)
            FROM {t}
            """
        ).fetchone()
        sources = source_use_in(conn, t, "cur")
        unpriced = _unpriced(conn, t, "cur")
    return KeyReport(
        keys=[
            KeySpend(
                provider=r[0],
                api_key_id=r[1],
                key_name=r[2],
                project=r[3],
                cost=r[4],
                requests=int(r[5]),
                unpriced_requests=int(r[6]),
                input_tokens=int(r[7]),
                output_tokens=int(r[8]),
                top_model=r[9],
                previous_cost=r[10],
            )
            for r in rows
        ],
        key_count=int(totals[5] or 0),
        total_cost=totals[0] or Decimal(0),
        total_requests=int(totals[1] or 0),
        previous_total_cost=totals[2] or Decimal(0),
        unattributed_cost=totals[3] or Decimal(0),
        unattributed_requests=int(totals[4] or 0),
        sources=sources,
        unpriced=unpriced,
    )


# ------------------------------------------------------------------------------------- queries
# How far outside the window a query's other calls are looked up. A query belongs to the window
# holding its first call and counts all its calls, as long as it lasts less than this.
QUERY_SPAN_LIMIT = timedelta(days=1)


@dataclass(frozen=True)
class QueryStats:
    """Cost per query over a window (request logs only)."""

    queries: int
    priced_queries: int
    unpriced_queries: int
    without_id: int
    calls: int
    calls_outside_window: int
    total_cost: Decimal
    p50: Decimal | None
    p95: Decimal | None
    p99: Decimal | None


@dataclass(frozen=True)
class FeatureCost:
    """Queries of one feature (a query's feature is that of its first call naming one)."""

    feature: str | None
    queries: int
    priced_queries: int
    total_cost: Decimal


@dataclass(frozen=True)
class QueryCost:
    """One query: its calls' summed cost and tokens."""

    query_id: str | None
    request_id: str | None
    first_ts: datetime
    cost: Decimal
    calls: int
    models: list[str]
    input_tokens: int
    output_tokens: int
    feature: str | None


@dataclass(frozen=True)
class Call:
    """One request of a query."""

    request_id: str
    ts: datetime
    provider: str
    model: str
    model_id: str | None
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    output_tokens: int
    tier: str
    cost: Decimal | None
    latency_ms: float | None
    status: str | None
    feature: str | None


@dataclass(frozen=True)
class QueryReport:
    """Everything cost_per_query answers, from one scan."""

    stats: QueryStats
    by_feature: list[FeatureCost]
    feature_count: int
    most_expensive: list[QueryCost]
    calls: list[Call]
    sources: list[SourceUse]
    unpriced: Unpriced


def query_costs(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    query_id: str | None,
    feature: str | None,
    model: str | None,
    limit: int,
    feature_limit: int,
    call_limit: int,
) -> QueryReport:
    """Per-query cost in [start, end) from request logs.

    A request without a query id is a query of one call. A query is counted in the window of its
    first call, with all its calls up to QUERY_SPAN_LIMIT beyond either edge. `feature` keeps queries
    whose feature is that; `model` keeps queries with at least one call of that model (model id or
    name as reported), with all their calls. Queries with an unpriced call are counted but left out
    of every cost figure.
    """
    wide = FactFilter(start=start - QUERY_SPAN_LIMIT, end=end + QUERY_SPAN_LIMIT, query_id=query_id)
    cte, params = facts_cte(wide, "request_logs")
    having = ["min(ts) >= ?", "min(ts) < ?"]
    having_params: list[object] = [start, end]
    if feature is not None:
        having.append("arg_min(feature, ts) FILTER (WHERE feature IS NOT NULL) = ?")
        having_params.append(feature)
    if model is not None:
        having.append("bool_or(model_id = ? OR model = ?)")
        having_params.extend([model, model])
    per_query = f"""{cte}
        SELECT query_id, CASE WHEN query_id IS NULL THEN request_id END AS request_id,
               min(ts) AS first_ts,
               max(ts) AS last_ts,
               count(*) AS calls,
               count(*) FILTER (WHERE ts < ? OR ts >= ?) AS calls_outside,
               sum(cost_usd) AS cost,
               count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced,
               list(model) FILTER (WHERE cost_usd IS NULL) AS unpriced_models,  -- DISTINCT here is 3x slower
               sum(input_tokens) AS input_tokens,
               sum(output_tokens) AS output_tokens,
               arg_min(feature, ts) FILTER (WHERE feature IS NOT NULL) AS feature
        FROM facts
        GROUP BY query_id, CASE WHEN query_id IS NULL THEN request_id END
        HAVING {" AND ".join(having)}"""
    with scratch(conn, per_query, [*params, start, end, *having_params]) as t:
        s = conn.execute(
            f"""
            SELECT count(*), count(*) FILTER (WHERE unpriced = 0), count(*) FILTER (WHERE unpriced > 0),
                   count(*) FILTER (WHERE query_id IS NULL), sum(calls), sum(calls_outside),
                   sum(cost) FILTER (WHERE unpriced = 0),
                   quantile_disc(cost, [0.5, 0.95, 0.99]) FILTER (WHERE unpriced = 0)
            FROM {t}
            """
        ).fetchone()
        quantiles = s[7] or [None, None, None]
        stats = QueryStats(
            queries=int(s[0]),
            priced_queries=int(s[1]),
            unpriced_queries=int(s[2]),
            without_id=int(s[3]),
            calls=int(s[4] or 0),
            calls_outside_window=int(s[5] or 0),
            total_cost=s[6] or Decimal(0),
            p50=quantiles[0],
            p95=quantiles[1],
            p99=quantiles[2],
        )
        features = conn.execute(
            f"""
            SELECT feature, count(*), count(*) FILTER (WHERE unpriced = 0), sum(cost) FILTER (WHERE unpriced = 0),
                   count(*) OVER ()
            FROM {t} GROUP BY feature
            ORDER BY 4 DESC NULLS LAST, 2 DESC, feature NULLS LAST
            LIMIT ?
            """,
            [feature_limit],
        ).fetchall()
        top = conn.execute(
            f"""
            SELECT query_id, request_id, first_ts, cost, calls, input_tokens, output_tokens, feature, last_ts
            FROM {t} WHERE unpriced = 0
            ORDER BY cost DESC, calls DESC, first_ts, query_id NULLS LAST, request_id
            LIMIT ?
            """,
            [limit],
        ).fetchall()
        unpriced_rows = conn.execute(
            f"""
            SELECT m, count(*) FROM (SELECT unnest(unpriced_models) AS m FROM {t} WHERE unpriced > 0)
            GROUP BY m ORDER BY 2 DESC, 1
            """
        ).fetchall()
        unpriced_calls = conn.execute(f"SELECT coalesce(sum(unpriced), 0) FROM {t}").fetchone()[0]
        calls: list[Call] = []
        sources: list[SourceUse] = []
        if query_id is None:
            sources = source_use(conn, FactFilter(start=start, end=end), "request_logs")
        elif stats.queries:
            # One query: its calls lie between its first and last, which zone maps find in a row group or two.
            first, last = conn.execute(f"SELECT min(first_ts), max(last_ts) FROM {t}").fetchone()
            after = last + timedelta(microseconds=1)
            calls = _calls(conn, query_id, first, after, call_limit)
            sources = source_use(conn, FactFilter(start=first, end=after, query_id=query_id), "request_logs")
    models = {(r[0], r[1]): _models_of(conn, r[0], r[1], r[2], r[8]) for r in top}
    return QueryReport(
        stats=stats,
        by_feature=[FeatureCost(r[0], int(r[1]), int(r[2]), r[3] or Decimal(0)) for r in features],
        feature_count=int(features[0][4]) if features else 0,
        most_expensive=[
            QueryCost(
                query_id=r[0],
                request_id=r[1],
                first_ts=r[2],
                cost=r[3],
                calls=int(r[4]),
                models=models[(r[0], r[1])],
                input_tokens=int(r[5]),
                output_tokens=int(r[6]),
                feature=r[7],
            )
            for r in top
        ],
        calls=calls,
        sources=sources,
        unpriced=Unpriced(requests=int(unpriced_calls), models=[str(r[0]) for r in unpriced_rows]),
    )


def _calls(conn: Connection, query_id: str, start: datetime, end: datetime, limit: int) -> list[Call]:
    """One query's calls. Queries live only in request logs, so this reads them directly (with status)."""
    rows = conn.execute(
        """
        SELECT request_id, ts, provider, model, model_id, input_tokens, cached_input_tokens, cache_write_tokens,
               cache_write_1h_tokens, output_tokens, tier, cost_usd, latency_ms, status, feature
        FROM requests WHERE query_id = ? AND ts >= ? AND ts < ?
        ORDER BY ts, request_id LIMIT ?
        """,
        [query_id, start, end, limit],
    ).fetchall()
    return [
        Call(
            request_id=r[0],
            ts=r[1],
            provider=r[2],
            model=r[3],
            model_id=r[4],
            input_tokens=int(r[5]),
            cached_input_tokens=int(r[6]),
            cache_write_tokens=int(r[7]),
            cache_write_1h_tokens=int(r[8]),
            output_tokens=int(r[9]),
            tier=r[10],
            cost=r[11],
            latency_ms=r[12],
            status=r[13],
            feature=r[14],
        )
        for r in rows
    ]


def _models_of(
    conn: Connection, query_id: str | None, request_id: str | None, first: datetime, last: datetime
) -> list[str]:
    """The models (catalog ids, else as reported) of one ranked query.

    Looked up per query between its first and last call, so the scan touches a row group or two;
    collecting model lists for every query in the main aggregation costs seconds at 10M rows.
    """
    key, value = ("query_id", query_id) if query_id is not None else ("request_id", request_id)
    rows = conn.execute(
        f"""
        SELECT DISTINCT coalesce(model_id, model) AS m FROM requests
        WHERE ts >= ? AND ts <= ? AND {key} = ? ORDER BY m
        """,
        [first, last, value],
    ).fetchall()
    return [str(r[0]) for r in rows]


# ----------------------------------------------------------------------------------------- swap
@dataclass(frozen=True)
class Band:
    """A token ratio target/source as `num / den`, so size tests stay exact: `tokens × num > limit × den`."""

    num: Decimal
    den: Decimal


@dataclass(frozen=True)
class SwapGroup:
    """Traffic of the source model priced alike on the target: one day, tier and long-context band."""

    source: str
    provider: str
    day: date
    tier: str
    long_context: tuple[bool, bool, bool]  # at the expected, low and high ratio
    requests: int
    request_log_requests: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    output_tokens: int
    cost: Decimal


@dataclass(frozen=True)
class SwapTraffic:
    """The source model's traffic in a window, grouped by what changes the target's price."""

    groups: list[SwapGroup]
    over_window: tuple[int, int, int]  # request-log requests above the target's context window, per ratio
    sources: list[SourceUse]
    unpriced: Unpriced


def swap_traffic(
    conn: Connection,
    f: FactFilter,
    *,
    bands: tuple[Band, Band, Band],
    threshold: int | None,
    context_window: int | None,
) -> SwapTraffic:
    """Token sums of the facts matching `f` (its model: the source), per day, tier and target band.

    For request logs, each request's input tokens × ratio is compared with the target's
    long-context threshold, and its input + output tokens × ratio with the target's context window,
    at the expected, low and high ratio. Provider buckets hold only sums: they are never
    long-context on the target and never counted over its window.
    """
    cte, params = facts_cte(f)
    lc_sql: list[str] = []
    over_sql: list[str] = []
    band_params: list[object] = []
    over_params: list[object] = []
    for band in bands:
        lc_sql.append(
            "coalesce(source = 'request_logs' AND input_tokens * CAST(? AS DECIMAL(18, 6))"
            " > CAST(? AS DECIMAL(38, 6)), false)"
        )
        band_params.extend([band.num, None if threshold is None else threshold * band.den])
        over_sql.append(
            "coalesce(sum(requests) FILTER (WHERE source = 'request_logs'"
            " AND (input_tokens + output_tokens) * CAST(? AS DECIMAL(18, 6)) > CAST(? AS DECIMAL(38, 6))), 0)"
        )
        over_params.extend([band.num, None if context_window is None else context_window * band.den])
    grouped = f"""{cte}
        SELECT source, provider, day, tier, coalesce(model_id, model) AS model,
               {lc_sql[0]} AS lc_expected, {lc_sql[1]} AS lc_low, {lc_sql[2]} AS lc_high,
               cost_usd IS NULL AS is_unpriced,
               sum(requests) AS requests,
               coalesce(sum(requests) FILTER (WHERE source = 'request_logs'), 0) AS request_log_requests,
               coalesce(sum(requests) FILTER (WHERE cost_usd IS NULL), 0) AS unpriced,
               sum(input_tokens) AS input_tokens, sum(cached_input_tokens) AS cached_input_tokens,
               sum(cache_write_tokens) AS cache_write_tokens, sum(cache_write_1h_tokens) AS cache_write_1h_tokens,
               sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost,
               {over_sql[0]} AS over_expected, {over_sql[1]} AS over_low, {over_sql[2]} AS over_high
        FROM facts
        GROUP BY ALL"""
    with scratch(conn, grouped, [*params, *band_params, *over_params]) as t:
        rows = conn.execute(
            f"""
            SELECT source, provider, day, tier, lc_expected, lc_low, lc_high, sum(requests), sum(request_log_requests),
                   sum(input_tokens), sum(cached_input_tokens), sum(cache_write_tokens), sum(cache_write_1h_tokens),
                   sum(output_tokens), sum(cost)
            FROM {t} WHERE NOT is_unpriced
            GROUP BY ALL ORDER BY day, source, provider, tier, lc_expected, lc_low, lc_high
            """
        ).fetchall()
        over = conn.execute(
            f"SELECT coalesce(sum(over_expected), 0), coalesce(sum(over_low), 0), coalesce(sum(over_high), 0) FROM {t}"
        ).fetchone()
        sources = source_use_in(conn, t)
        unpriced = _unpriced(conn, t)
    return SwapTraffic(
        groups=[
            SwapGroup(
                source=r[0],
                provider=r[1],
                day=r[2],
                tier=r[3],
                long_context=(bool(r[4]), bool(r[5]), bool(r[6])),
                requests=int(r[7] or 0),
                request_log_requests=int(r[8] or 0),
                input_tokens=int(r[9]),
                cached_input_tokens=int(r[10]),
                cache_write_tokens=int(r[11]),
                cache_write_1h_tokens=int(r[12]),
                output_tokens=int(r[13]),
                cost=r[14],
            )
            for r in rows
        ],
        over_window=(int(over[0]), int(over[1]), int(over[2])),
        sources=sources,
        unpriced=unpriced,
    )
