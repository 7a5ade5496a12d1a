"""Read queries behind savings_opportunities, selfhost_breakeven and spend_chart.

Every query is an aggregate over the `facts` CTE (see facts.py: per provider-day, synced buckets
win over request logs), so these figures never add the two sources together.

A *workload* is what a team can act on: the request's feature when it has one, else its API key,
else "untagged" traffic. Rows are grouped by workload, model, UTC day, pricing tier and context
band, because a price depends on all four and a sum of requests is priced as one usage only when
they share them. The context band of a request-log row is decided here from its own input size and
the model's long-context threshold in the `rates` table (the same rule the bulk pricing uses);
provider buckets carry the band the provider reported.

Per-request shapes (percentiles, 5-minute cache windows, hours of day) exist only in request logs;
those columns are NULL or zero for traffic known only from synced buckets, and the analytics say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from costhawk_mcp.store.coverage import (
    SCRATCH_COVERAGE_KEYS,
    SourceUse,
    Unpriced,
    scratch,
    source_use_in,
    unpriced_in,
)
from costhawk_mcp.store.db import Connection
from costhawk_mcp.store.facts import BANDED_CTE, FactFilter, facts_cte, key_list_join

# A prompt cache written in one of these UTC windows is taken to be warm for the rest of it:
# Anthropic's default cache lifetime, and the low end of OpenAI's 5-10 minutes of inactivity.
CACHE_WARM_SECONDS = 300

# Workloads of the priced facts, each with its context band (facts.BANDED_CTE).
_UNIT_KIND = (
    "CASE WHEN feature IS NOT NULL THEN 'feature' WHEN api_key_id IS NOT NULL THEN 'api_key' ELSE 'untagged' END"
)
_BANDED = (
    BANDED_CTE
    + f""",
banded AS (
    SELECT *, {_UNIT_KIND} AS unit_kind, coalesce(feature, api_key_id, '') AS unit
    FROM banded_facts
    WHERE model_id IS NOT NULL AND cost_usd IS NOT NULL
)"""
)

_SLICES = """
SELECT unit_kind, unit, model_id, day, tier, lc,
    sum(requests), sum(input_tokens), sum(cached_input_tokens), sum(cache_write_tokens),
    sum(cache_write_1h_tokens), sum(output_tokens), sum(cost_usd),
    coalesce(sum(requests) FILTER (WHERE source = 'request_logs'), 0)
FROM banded
GROUP BY unit_kind, unit, model_id, day, tier, lc
ORDER BY unit_kind, unit, model_id, day, tier, lc
"""

# Request-log traffic per CACHE_WARM_SECONDS-long UTC window, for the chosen workloads and models: the
# number of windows with traffic bounds the prompt-cache cold starts (a cache written in a window is
# still warm for the rest of it). `?` is a list of 'unit_kind<US>unit<US>model_id' keys.
_CACHE_WINDOWS = f"""
, windows AS (
    SELECT DISTINCT unit_kind, unit, model_id, day, tier, lc, epoch_ms(ts) // {CACHE_WARM_SECONDS * 1000} AS w
    FROM banded
    WHERE source = 'request_logs' AND list_contains(?, unit_kind || chr(31) || unit || chr(31) || model_id)
)
SELECT unit_kind, unit, model_id, day, tier, lc, count(*)
FROM windows
GROUP BY unit_kind, unit, model_id, day, tier, lc
"""

_EXTENT = """
SELECT min(ts), max(ts), coalesce(sum(requests), 0), sum(cost_usd)
FROM facts
"""

# How each spend_chart grouping names a row; constant SQL fragments, never user text. An API key
# is named after aggregation (facts.py): summed per day, provider, key and logged name (`s`) first.
CHART_GROUPS: dict[str, str] = {
    "model": "coalesce(model_id, model)",
    "api_key": "coalesce(s.key_name, k.name, s.api_key_id, '(no key)')",
    "provider": "provider",
    "project": "coalesce(project, '(no project)')",
}


@dataclass(frozen=True)
class UsageSlice:
    """Token sums of one workload on one model, UTC day, pricing tier and context band."""

    unit_kind: str
    unit: str
    model_id: str
    day: date
    tier: str
    long_context: bool
    requests: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    output_tokens: int
    cost_usd: Decimal
    log_requests: int


SliceKey = tuple[str, str, str, date, str, bool]


def slice_key(s: UsageSlice) -> SliceKey:
    """What identifies a slice: workload, model, day, tier and band."""
    return (s.unit_kind, s.unit, s.model_id, s.day, s.tier, s.long_context)


@dataclass(frozen=True)
class WorkloadModelShape:
    """Per-request shape of one workload on one model (percentiles from request logs only)."""

    unit_kind: str
    unit: str
    model_id: str
    requests: int
    batch_requests: int
    log_requests: int
    log_days: int
    p10_input_tokens: int | None
    p50_output_tokens: int | None
    p90_output_tokens: int | None
    max_request_tokens: int | None
    base_requests: int
    base_input_tokens: int
    base_output_tokens: int
    long_context_requests: int
    p50_long_context_input_tokens: int | None
    max_long_context_input_tokens: int | None
    threshold_tokens: int | None
    hours: tuple[int, ...]
    keys: list[str]


@dataclass(frozen=True)
class WorkloadProfile:
    """How one workload sends its traffic: volume, Batch API share, days and hours (UTC)."""

    unit_kind: str
    unit: str
    requests: int
    batch_requests: int
    log_requests: int
    log_days: int
    keys: list[str]
    hours: tuple[int, ...]


@dataclass(frozen=True)
class Extent:
    """First and last usage in a window, its requests and priced spend (None when nothing is priced)."""

    first: datetime | None
    last: datetime | None
    requests: int
    cost_usd: Decimal | None


def _run(conn: Connection, f: FactFilter, tail: str, *, banded: bool = True) -> list[Any]:
    cte, params = facts_cte(f)
    rows: list[Any] = conn.execute(cte + (_BANDED if banded else "") + tail, params).fetchall()
    return rows


def extent(conn: Connection, f: FactFilter) -> Extent:
    """When usage in the window starts and ends, with its request count and priced spend."""
    row = _run(conn, f, _EXTENT, banded=False)[0]
    return Extent(
        first=row[0],
        last=row[1],
        requests=int(row[2]),
        cost_usd=row[3],
    )


def _slice(r: Any) -> UsageSlice:
    return UsageSlice(
        unit_kind=str(r[0]),
        unit=str(r[1]),
        model_id=str(r[2]),
        day=r[3],
        tier=str(r[4]),
        long_context=bool(r[5]),
        requests=int(r[6]),
        input_tokens=int(r[7]),
        cached_input_tokens=int(r[8]),
        cache_write_tokens=int(r[9]),
        cache_write_1h_tokens=int(r[10]),
        output_tokens=int(r[11]),
        cost_usd=Decimal(r[12]),
        log_requests=int(r[13]),
    )


def usage_slices(conn: Connection, f: FactFilter) -> list[UsageSlice]:
    """Priced usage grouped by workload, model, day, tier and context band."""
    return [_slice(r) for r in _run(conn, f, _SLICES)]


def _named(names: dict[tuple[str, str], str], provider: str, key_id: str, logged: str | None) -> str:
    """A key's name as a fact shows it: the logged one, else the provider's list, else the id."""
    if logged is not None:
        return logged
    return names.get((provider, key_id), key_id)


def cache_windows(conn: Connection, f: FactFilter, workloads: list[tuple[str, str, str]]) -> dict[SliceKey, int]:
    """Per slice of the given (unit_kind, unit, model_id) workloads: UTC windows with request-log traffic."""
    if not workloads:
        return {}
    keys = [f"{kind}\x1f{unit}\x1f{model}" for kind, unit, model in workloads]
    cte, params = facts_cte(f)
    rows: list[Any] = conn.execute(cte + _BANDED + _CACHE_WINDOWS, [*params, keys]).fetchall()
    return {(str(r[0]), str(r[1]), str(r[2]), r[3], str(r[4]), bool(r[5])): int(r[6]) for r in rows}


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class WindowScan:
    """Everything savings_opportunities reads about a window."""

    extent: Extent
    slices: list[UsageSlice]
    shapes: list[WorkloadModelShape]
    sources: list[SourceUse]
    unpriced: Unpriced


# One row per workload, model, UTC day, tier, band, Batch flag, source, provider and unpriced model:
# the sums of every slice, shape and coverage figure (percentiles and key names aside).
_WINDOW = f"""
SELECT {_UNIT_KIND} AS unit_kind, coalesce(feature, api_key_id, '') AS unit, model_id, tier, lc, batch,
    {SCRATCH_COVERAGE_KEYS},
    sum(requests) AS requests, sum(input_tokens) AS input_tokens, sum(cached_input_tokens) AS cached_input_tokens,
    sum(cache_write_tokens) AS cache_write_tokens, sum(cache_write_1h_tokens) AS cache_write_1h_tokens,
    sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd, min(ts) AS first_ts, max(ts) AS last_ts,
    max(input_tokens + output_tokens) AS max_tokens, max(input_tokens) AS max_input,
    max(threshold_tokens) AS threshold_tokens
FROM banded_facts
GROUP BY ALL
"""

_PRICED = "model_id IS NOT NULL AND NOT is_unpriced"

_WINDOW_SHAPES = f"""
SELECT unit_kind, unit, model_id,
    sum(requests),
    coalesce(sum(requests) FILTER (WHERE batch), 0),
    coalesce(sum(requests) FILTER (WHERE source = 'request_logs'), 0),
    count(DISTINCT day) FILTER (WHERE source = 'request_logs'),
    max(max_tokens) FILTER (WHERE source = 'request_logs' AND NOT lc),
    coalesce(sum(requests) FILTER (WHERE NOT lc), 0),
    coalesce(sum(input_tokens) FILTER (WHERE NOT lc), 0),
    coalesce(sum(output_tokens) FILTER (WHERE NOT lc), 0),
    coalesce(sum(requests) FILTER (WHERE lc), 0),
    max(max_input) FILTER (WHERE source = 'request_logs' AND lc),
    max(threshold_tokens),
    list(DISTINCT provider) FILTER (WHERE source = 'provider_usage' AND unit_kind = 'api_key')
FROM {{t}}
WHERE {_PRICED}
GROUP BY unit_kind, unit, model_id
ORDER BY unit_kind, unit, model_id
"""

# What cannot be summed: prompt and output percentiles, hours of day, and which keys (with the names
# the logs gave them) carried each workload, from the window's priced request logs.
_LOG_SHAPES = """
SELECT unit_kind, unit, model_id,
    quantile_disc(input_tokens, 0.1),
    quantile_disc(output_tokens, [0.5, 0.9]) FILTER (WHERE NOT lc),
    quantile_disc(input_tokens, 0.5) FILTER (WHERE lc),
    histogram(hour(ts)),
    list(DISTINCT {'provider': provider, 'id': api_key_id, 'name': key_name}) FILTER (WHERE api_key_id IS NOT NULL)
FROM banded
WHERE source = 'request_logs'
GROUP BY unit_kind, unit, model_id
"""


def window_scan(conn: Connection, f: FactFilter) -> WindowScan:
    """Slices, per-workload shapes, extent, sources and unpriced usage of a window.

    One scan of facts into a TEMP table of sums per workload, model, day, tier, band, Batch flag,
    source and provider answers all but the percentiles, hours and key names, which a second pass
    over the window's request logs adds (skipped when the window has none). Key names are looked up
    in the provider's key list after aggregation (facts.py).
    """
    cte, params = facts_cte(f)
    with scratch(conn, cte + BANDED_CTE + _WINDOW, params) as t:
        first, last, requests, spend = conn.execute(
            f"SELECT min(first_ts), max(last_ts), coalesce(sum(requests), 0), sum(cost_usd) FROM {t}"
        ).fetchone()
        slice_rows: list[Any] = conn.execute(
            f"""
            SELECT unit_kind, unit, model_id, day, tier, lc,
                sum(requests), sum(input_tokens), sum(cached_input_tokens), sum(cache_write_tokens),
                sum(cache_write_1h_tokens), sum(output_tokens), sum(cost_usd),
                coalesce(sum(requests) FILTER (WHERE source = 'request_logs'), 0)
            FROM {t} WHERE {_PRICED}
            GROUP BY unit_kind, unit, model_id, day, tier, lc
            ORDER BY unit_kind, unit, model_id, day, tier, lc
            """
        ).fetchall()
        shape_rows: list[Any] = conn.execute(_WINDOW_SHAPES.format(t=t)).fetchall()
        uses = source_use_in(conn, t)
        unknown = unpriced_in(conn, t)
    logs: dict[tuple[str, str, str], Any] = {}
    if any(r[5] for r in shape_rows):
        logs = {(str(r[0]), str(r[1]), str(r[2])): r[3:] for r in _run(conn, f, _LOG_SHAPES)}
    listed = conn.execute("SELECT provider, api_key_id, name FROM api_keys WHERE name IS NOT NULL").fetchall()
    names = {(str(r[0]), str(r[1])): str(r[2]) for r in listed}
    shapes = []
    for r in shape_rows:
        key = (str(r[0]), str(r[1]), str(r[2]))
        log = logs.get(key)
        hours = [0] * 24
        output: list[Any] = [None, None]
        keys: set[str] = set()
        for provider in r[14] or []:  # synced usage of an API key workload: that key
            keys.add(_named(names, str(provider), key[1], None))
        if log is not None:
            for hour, count in (log[3] or {}).items():
                hours[int(hour)] = int(count)
            output = log[1] or [None, None]
            for k in log[4] or []:
                keys.add(_named(names, str(k["provider"]), str(k["id"]), k["name"]))
        shapes.append(
            WorkloadModelShape(
                unit_kind=key[0],
                unit=key[1],
                model_id=key[2],
                requests=int(r[3]),
                batch_requests=int(r[4]),
                log_requests=int(r[5]),
                log_days=int(r[6]),
                p10_input_tokens=_opt_int(log[0]) if log is not None else None,
                p50_output_tokens=_opt_int(output[0]),
                p90_output_tokens=_opt_int(output[1]),
                max_request_tokens=_opt_int(r[7]),
                base_requests=int(r[8]),
                base_input_tokens=int(r[9]),
                base_output_tokens=int(r[10]),
                long_context_requests=int(r[11]),
                p50_long_context_input_tokens=_opt_int(log[2]) if log is not None else None,
                max_long_context_input_tokens=_opt_int(r[12]),
                threshold_tokens=_opt_int(r[13]),
                hours=tuple(hours),
                keys=sorted(keys),
            )
        )
    return WindowScan(
        extent=Extent(first=first, last=last, requests=int(requests), cost_usd=spend),
        slices=[_slice(r) for r in slice_rows],
        shapes=shapes,
        sources=uses,
        unpriced=unknown,
    )


def workload_profiles(shapes: list[WorkloadModelShape]) -> list[WorkloadProfile]:
    """Per workload, summed over its models (no query: `log_days` is the most of any one model)."""
    profiles: dict[tuple[str, str], WorkloadProfile] = {}
    for s in shapes:
        key = (s.unit_kind, s.unit)
        seen = profiles.get(key)
        if seen is None:
            profiles[key] = WorkloadProfile(
                s.unit_kind, s.unit, s.requests, s.batch_requests, s.log_requests, s.log_days, list(s.keys), s.hours
            )
            continue
        profiles[key] = WorkloadProfile(
            s.unit_kind,
            s.unit,
            seen.requests + s.requests,
            seen.batch_requests + s.batch_requests,
            seen.log_requests + s.log_requests,
            max(seen.log_days, s.log_days),
            sorted(set(seen.keys) | set(s.keys)),
            tuple(a + b for a, b in zip(seen.hours, s.hours, strict=True)),
        )
    return list(profiles.values())


def daily_spend(conn: Connection, f: FactFilter, group_by: str) -> list[tuple[date, str, Decimal, int]]:
    """Priced spend per UTC day and group (`group_by` is a CHART_GROUPS key): (day, group, usd, requests)."""
    expr = CHART_GROUPS[group_by]
    if group_by == "api_key":
        tail = f"""
        , per_key AS (
            SELECT day, provider, api_key_id, key_name, sum(cost_usd) AS usd, sum(requests) AS requests
            FROM facts WHERE cost_usd IS NOT NULL GROUP BY ALL
        )
        SELECT day, {expr} AS grp, sum(usd), sum(requests)
        FROM per_key AS s {key_list_join("s", "k")}
        GROUP BY day, grp
        ORDER BY day, grp
        """
    else:
        tail = f"""
        SELECT day, {expr} AS grp, sum(cost_usd), sum(requests)
        FROM facts
        WHERE cost_usd IS NOT NULL
        GROUP BY day, grp
        ORDER BY day, grp
        """
    return [(r[0], str(r[1]), Decimal(r[2]), int(r[3])) for r in _run(conn, f, tail, banded=False)]
