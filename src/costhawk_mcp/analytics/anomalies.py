"""Anomalies in spend, each explained in dollars.

Three kinds of finding:

* **Days** (`spend_spike` / `spend_drop`): per series (total, or each provider, model, API key or
  project) and UTC day, spend is compared with a robust, weekday-aware baseline from the 28 days
  before it (at least 7 days of history are needed). Weekday levels are partially pooled medians:
  the median of the same weekday, blended with the median of its day type (Monday–Friday or the
  weekend), blended with the overall median, each with weight n / (n + 1) for n days, so four
  Saturdays mostly speak for themselves and one Saturday leans on the weekend, never on a
  weekday-dominated overall median. Their ratios to their mean are the weekday factors; the
  expected spend is the day's factor × the median deseasonalised spend of the last 7 reference
  days, so growth is followed within a week. The scale is 1.4826 × the median absolute deviation
  of the reference days from factor × the window's deseasonalised median, never below 5 % of the
  expected spend nor below 1 % of the median daily total spend, so flat synthetic series do not
  turn cents into alarms. The score is the robust z = (observed − expected) / scale. Consecutive
  flagged days of one series in one direction are merged into one finding (a lasting shift is
  flagged until the recent level has caught up, about four days). A partial day (today) is only
  checked for spikes, against the full-day expectation.
* **Single requests** (`request_spike`, request logs only): a request whose cost is at least a
  multiple of the median cost of its (model, feature) group in the window, and whose robust z on
  log cost is above the threshold (groups of 20 or more requests; the log-scale is floored at 0.25).
* **Model drift** (`model_drift`): the share of a series' traffic per model over the last 7 scanned
  days against the 28 days before; flagged when the total variation distance (half the sum of the
  absolute share changes) passes the threshold. Its impact is the model-mix part of the change.

Every finding is explained by `decompose.decompose` (a Shapley split over volume, model mix, request
size, cache and price whose parts add up to the change exactly), against the baseline's own
composition: the pooled reference days rescaled to the expected spend (for days and drift), or the
group's average request rescaled to the median cost (for single requests).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from costhawk_mcp.analytics.common import DataSource, data_sources
from costhawk_mcp.analytics.decompose import (
    CLASS_LABELS,
    CLASSES,
    FACTORS,
    ModelUsage,
    Split,
    Usage,
    decompose,
    merge,
    per_request,
    q9,
)
from costhawk_mcp.analytics.window import MAX_DAYS, Period, make_period, parse_instant
from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.money import USD
from costhawk_mcp.store import spend_queries
from costhawk_mcp.store.facts import FactFilter
from costhawk_mcp.store.spend_queries import Components, OutlierRequest
from costhawk_mcp.store.store import Store

Day = date  # a field named `date` shadows the type inside Anomaly

DIMENSIONS = ("total", "provider", "model", "api_key", "project")
REFERENCE_DAYS = 28
MIN_HISTORY_DAYS = 7
WEEKDAY_PRIOR = 1  # pseudo-days pulling a median towards the broader level
MAD_TO_SIGMA = Decimal("1.4826")
RELATIVE_SCALE_FLOOR = Decimal("0.05")
ABSOLUTE_SCALE_FLOOR_SHARE = Decimal("0.01")
MIN_SCALE_USD = Decimal("0.000001")
DRIFT_RECENT_DAYS = 7
RECENT_LEVEL_DAYS = 7
DRIFT_MIN_UNITS = 50
SPIKE_MIN_GROUP = 20
SPIKE_LOG_FLOOR = 0.25
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Thresholds:
    """What `sensitivity` means."""

    level: str
    z: float
    request_multiple: Decimal
    drift_pct: float


LEVELS: dict[str, Thresholds] = {
    "low": Thresholds("low", 5.0, Decimal(10), 30.0),
    "medium": Thresholds("medium", 3.5, Decimal(5), 20.0),
    "high": Thresholds("high", 2.5, Decimal(3), 10.0),
}


def parse_sensitivity(value: str | float | int) -> Thresholds:
    """A level name, or a z threshold (the request multiple and drift threshold stay at medium's)."""
    if isinstance(value, bool):
        raise InvalidArgument("sensitivity", f"expected low, medium, high or a positive number, got {value!r}")
    if isinstance(value, str):
        name = value.strip().lower()
        if name in LEVELS:
            return LEVELS[name]
        try:
            value = float(name)
        except ValueError:
            raise InvalidArgument(
                "sensitivity", f"expected low, medium, high or a positive number, got {value!r}"
            ) from None
    z = float(value)
    if not 0 < z < 1000:
        raise InvalidArgument("sensitivity", f"a z threshold must be more than 0 and below 1000, got {value!r}")
    medium = LEVELS["medium"]
    return Thresholds(f"z ≥ {z:g}", z, medium.request_multiple, medium.drift_pct)


class SensitivityUsed(BaseModel):
    """The thresholds a finding had to pass."""

    level: str
    z_threshold: float = Field(description="days: |robust z| at least this; requests: robust z on log cost")
    request_multiple: float = Field(description="a single request must cost at least this × its group's median")
    drift_threshold_pct: float = Field(description="model drift: total variation of model shares, percent")


class ModelShare(BaseModel):
    """A model's share of the series' traffic, expected against observed."""

    model: str
    expected_share_pct: float
    observed_share_pct: float


class PriceMove(BaseModel):
    """An effective price per million tokens that differs between baseline and observation."""

    model: str
    token_class: str = Field(description="input, cached input, cache write, 1-hour cache write or output")
    expected_per_mtok_usd: float
    observed_per_mtok_usd: float


class Explanation(BaseModel):
    """The change against the baseline, split exactly into five parts (they sum to change_usd)."""

    change_usd: USD = Field(description="observed − expected, US dollars")
    volume_usd: USD = Field(description="more or fewer requests (or tokens, see volume_unit) of the same kind")
    mix_usd: USD = Field(description="traffic moving between cheaper and dearer models")
    size_usd: USD = Field(description="more or fewer input/output tokens per request")
    cache_usd: USD = Field(description="a different share of prompt tokens read from or written to the cache")
    price_usd: USD = Field(
        description="different prices per token: catalog price changes, or batch/priority/long-context mix"
    )
    volume_unit: str = Field(description="'requests', or 'tokens' when a source does not report request counts")
    expected_volume: float = Field(description="volume of the baseline rescaled to the expected spend")
    observed_volume: float
    volume_ratio: float | None = Field(description="observed_volume / expected_volume")
    model_shares: list[ModelShare] = Field(description="models whose share moved most, biggest move first")
    expected_cache_hit_pct: float | None = Field(description="cache reads as a percent of all prompt tokens")
    observed_cache_hit_pct: float | None
    expected_input_tokens_per_request: float | None
    observed_input_tokens_per_request: float | None
    expected_output_tokens_per_request: float | None
    observed_output_tokens_per_request: float | None
    price_moves: list[PriceMove]
    summary: str = Field(description="one line an assistant can quote")


class RequestDetail(BaseModel):
    """The request behind a request_spike."""

    request_id: str
    ts: datetime
    provider: str
    model: str
    api_key_id: str | None
    api_key_name: str | None
    project: str | None
    feature: str | None
    query_id: str | None
    user_id: str | None
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    group_requests: int = Field(description="requests of the same model and feature in the window")
    times_median: float = Field(description="cost / the group's median cost")


class Anomaly(BaseModel):
    """One finding with its explanation."""

    kind: Literal["spend_spike", "spend_drop", "request_spike", "model_drift"]
    date: Day = Field(description="first UTC day of the finding")
    last_date: Day = Field(description="last UTC day (equal to date for a single day or request)")
    days: int
    dimension: str
    dimension_value: str = Field(description="the series: 'total', or the provider, model, key id or project")
    dimension_label: str = Field(description="readable series name (API keys with their names)")
    observed_usd: USD
    expected_usd: USD
    impact_usd: USD = Field(
        description="dollars this finding accounts for: observed − expected, or for model_drift the mix part"
    )
    score: float = Field(
        description="days: robust z of the most extreme day (signed); requests: robust z on log cost; "
        "drift: total variation of model shares in percent"
    )
    partial_day: bool = Field(default=False, description="the last day is today and not over yet")
    request: RequestDetail | None = None
    explanation: Explanation


class AnomalyReport(BaseModel):
    """Anomalies in a window, largest impact first."""

    period: Period = Field(description="the scanned window")
    dimension: str
    sensitivity: SensitivityUsed
    method: str
    anomalies: list[Anomaly]
    omitted_anomalies: int = Field(description="findings beyond `limit`")
    series_scanned: int
    days_scored: int = Field(description="series-days compared with a baseline")
    days_without_baseline: int = Field(description="series-days skipped: fewer than 7 days of history before them")
    unpriced_requests: int
    unpriced_models: list[str]
    data_sources: list[DataSource]
    notes: list[str]


METHOD = (
    "Days: weekday factors from partially pooled medians of the 28 days before (same weekday → weekday/weekend "
    "→ overall, weights n/(n+1)); expected = the day's factor × the median deseasonalised spend of the last 7 of "
    "those days; scale = 1.4826 × MAD of the 28 days around their seasonal level, at least 5 % of expected; "
    "score = robust z; runs of flagged days are merged. Requests: robust z of log cost within (model, feature) and "
    "a minimum multiple of the median. Drift: total variation of model shares, last 7 days against the 28 before. "
    "Explanations: Shapley decomposition over volume, model mix, request size, cache and price (each factor's "
    "marginal effect averaged over all orders; parts sum exactly to the change), against the reference days' "
    "pooled composition rescaled to the expected spend."
)


@dataclass
class _Series:
    cost: dict[date, Decimal]
    usage: dict[date, Usage]


def _usage_row(c: Components) -> ModelUsage:
    u = ModelUsage()
    u.add(
        c.requests,
        {
            "uncached": c.uncached_tokens,
            "cached": c.cached_tokens,
            "write": c.write_tokens,
            "write_1h": c.write_1h_tokens,
            "output": c.output_tokens,
        },
        {
            "uncached": c.uncached_usd,
            "cached": c.cached_usd,
            "write": c.write_usd,
            "write_1h": c.write_1h_usd,
            "output": c.output_usd,
        },
        c.units_missing,
    )
    return u


def _median(values: list[Decimal]) -> Decimal:
    return Decimal(statistics.median(values)) if values else Decimal(0)


def _blend(values: list[Decimal], fallback: Decimal) -> Decimal:
    """The median of `values`, pulled towards `fallback` as if it were one more observation's worth."""
    if not values:
        return fallback
    w = Decimal(len(values)) / (len(values) + WEEKDAY_PRIOR)
    return w * _median(values) + (1 - w) * fallback


def _levels(reference: list[tuple[date, Decimal]]) -> dict[int, Decimal]:
    """The expected spend of each weekday (0 = Monday) from reference (day, spend) pairs.

    Partial pooling in two steps: the median of the same weekday is blended with the level of its
    day type (Monday–Friday or the weekend), which is itself blended with the overall median; each
    with weight n / (n + 1) for n days. With four weeks a Saturday is mostly its own median; with one
    week it leans on the weekend's, never on a weekday-dominated overall median.
    """
    overall = _median([v for _, v in reference])
    by_weekday: dict[int, list[Decimal]] = defaultdict(list)
    for d, v in reference:
        by_weekday[d.weekday()].append(v)
    weekend = [v for w in (5, 6) for v in by_weekday.get(w, [])]
    workweek = [v for w in range(5) for v in by_weekday.get(w, [])]
    by_type = {True: _blend(weekend, overall), False: _blend(workweek, overall)}
    return {w: _blend(by_weekday.get(w, []), by_type[w >= 5]) for w in range(7)}


@dataclass(frozen=True)
class _Baseline:
    """What a day is compared with: its expected spend and the scale of normal deviations."""

    expected: Decimal
    scale: Decimal


def _baseline(day: date, reference: list[tuple[date, Decimal]], floor: Decimal) -> _Baseline:
    """The weekday-aware robust expectation for `day`, following the recent level.

    Weekday factors come from the partially pooled levels of the whole reference window (each
    weekday's level over their mean); the level is the median of the last 7 reference days divided
    by their factors, so growth or decline shows up within a week instead of after half the window.
    The scale is 1.4826 × the median absolute deviation of the reference days from factor × the
    window's deseasonalised median, floored at 5 % of the expected spend and at `floor`.
    """
    levels = _levels(reference)
    mean = sum(levels.values(), Decimal(0)) / 7
    if mean <= 0:
        return _Baseline(Decimal(0), max(floor, MIN_SCALE_USD))
    factor = {w: level / mean for w, level in levels.items()}
    deseasoned = [(d, v / factor[d.weekday()]) for d, v in reference if factor[d.weekday()] > 0]
    latest = max(d for d, _ in reference)
    recent = [v for d, v in deseasoned if (latest - d).days < RECENT_LEVEL_DAYS]
    level = _median(recent) if recent else mean
    expected = factor[day.weekday()] * level
    window_level = _median([v for _, v in deseasoned]) if deseasoned else mean
    deviations = [abs(v - factor[d.weekday()] * window_level) for d, v in reference]
    scale = max(MAD_TO_SIGMA * _median(deviations), RELATIVE_SCALE_FLOOR * expected, floor)
    return _Baseline(expected, scale)


def detect_anomalies(
    store: Store,
    *,
    days: int = 30,
    dimension: str = "total",
    sensitivity: str | float = "medium",
    end: str | date | datetime | None = None,
    limit: int = 25,
    now: datetime | None = None,
) -> AnomalyReport:
    """Scan `days` UTC days before `end` for anomalous days, requests and model drift, each explained."""
    if dimension not in DIMENSIONS:
        raise InvalidArgument("dimension", f"unknown dimension {dimension!r}; allowed: {', '.join(DIMENSIONS)}")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= min(MAX_DAYS, 366):
        raise InvalidArgument("days", f"must be a whole number from 1 to 366, got {days!r}")
    if isinstance(limit, bool) or not 1 <= limit <= 200:
        raise InvalidArgument("limit", f"must be between 1 and 200, got {limit!r}")
    thresholds = parse_sensitivity(sensitivity)
    current = now or datetime.now(timezone.utc)
    stop = parse_instant(end, "end") if end is not None else current.astimezone(timezone.utc).replace(tzinfo=None)
    partial = stop.time() != time()  # the window ends inside a day: that day is not over
    last_full = stop.date() - timedelta(days=1)
    scan_start = last_full - timedelta(days=days - 1)
    history_start = scan_start - timedelta(days=REFERENCE_DAYS)
    period = make_period(datetime.combine(scan_start, time()), stop)
    scan = FactFilter(start=period.start, end=period.end)
    history = FactFilter(start=datetime.combine(history_start, time()), end=stop)

    with store.reading() as conn:
        # One scan of the history for whole days; single requests need their own (request logs only).
        days_seen = spend_queries.history_scan(conn, history, dimension, scan_start=scan_start)
        outliers = spend_queries.outlier_requests(
            conn,
            scan,
            min_group=SPIKE_MIN_GROUP,
            min_multiple=thresholds.request_multiple,
            min_score=thresholds.z,
            log_scale_floor=SPIKE_LOG_FLOOR,
            limit=limit,
        )
    components, first, names = days_seen.components, days_seen.first_day, days_seen.key_names
    uses, unpriced = days_seen.sources, days_seen.unpriced

    series: dict[str | None, _Series] = defaultdict(lambda: _Series({}, {}))
    totals: dict[date, Decimal] = defaultdict(Decimal)
    for c in components:
        s = series[c.series]
        s.cost[c.day] = s.cost.get(c.day, Decimal(0)) + c.cost_usd
        s.usage.setdefault(c.day, {})[c.model] = _usage_row(c)
        totals[c.day] += c.cost_usd

    notes: list[str] = []
    anomalies: list[Anomaly] = []
    scored = skipped = 0
    if first is not None:
        all_days = [first + timedelta(days=i) for i in range((stop.date() - first).days + 1)]
        floor = max(
            MIN_SCALE_USD, ABSOLUTE_SCALE_FLOOR_SHARE * _median([totals[d] for d in all_days if d <= last_full])
        )
        scan_days = [d for d in all_days if scan_start <= d <= last_full]
        if partial and stop.date() >= scan_start:
            scan_days.append(stop.date())
        for key, s in sorted(series.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
            found, n_scored, n_skipped = _scan_days(
                s, scan_days, first, stop.date() if partial else None, thresholds, floor
            )
            scored += n_scored
            skipped += n_skipped
            label = _label(dimension, key, names)
            anomalies.extend(_day_anomaly(run, s, dimension, key, label) for run in found)
            if dimension != "model":
                drift = _drift(s, scan_days, last_full, first, thresholds, dimension, key, label)
                if drift is not None:
                    anomalies.append(drift)
        if partial and stop.date() >= scan_start:
            notes.append(
                f"{stop.date().isoformat()} is not over (data through {stop.strftime('%H:%M')} UTC): it is only "
                "checked for spikes against a full day's expected spend"
            )
    else:
        notes.append("no usage in the window or the 28 days before it; import request logs or run a sync first")
    if skipped:
        notes.append(
            f"{skipped} series-days had fewer than {MIN_HISTORY_DAYS} days of history before them and were not scored"
        )
    anomalies.extend(_request_anomaly(o, dimension) for o in outliers)
    if dimension == "model":
        notes.append("model drift is not checked when each series is a single model")

    anomalies.sort(key=lambda a: (-abs(a.impact_usd), a.date, a.dimension_value, a.kind))
    return AnomalyReport(
        period=period,
        dimension=dimension,
        sensitivity=SensitivityUsed(
            level=thresholds.level,
            z_threshold=thresholds.z,
            request_multiple=float(thresholds.request_multiple),
            drift_threshold_pct=thresholds.drift_pct,
        ),
        method=METHOD,
        anomalies=anomalies[:limit],
        omitted_anomalies=max(0, len(anomalies) - limit),
        series_scanned=len(series),
        days_scored=scored,
        days_without_baseline=skipped,
        unpriced_requests=unpriced.requests,
        unpriced_models=unpriced.models,
        data_sources=data_sources(uses),
        notes=notes,
    )


@dataclass
class _Run:
    days: list[date]
    expected: list[Decimal]
    scores: list[float]
    direction: int
    reference: list[date]
    partial: bool


def _scan_days(
    s: _Series,
    scan_days: list[date],
    first: date,
    partial_day: date | None,
    thresholds: Thresholds,
    floor: Decimal,
) -> tuple[list[_Run], int, int]:
    runs: list[_Run] = []
    scored = skipped = 0
    previous: date | None = None
    for day in scan_days:
        ref_days = [day - timedelta(days=i) for i in range(1, REFERENCE_DAYS + 1) if day - timedelta(days=i) >= first]
        if len(ref_days) < MIN_HISTORY_DAYS:
            skipped += 1
            previous = None
            continue
        scored += 1
        reference = [(d, s.cost.get(d, Decimal(0))) for d in ref_days]
        base = _baseline(day, reference, floor)
        expected, scale = base.expected, base.scale
        observed = s.cost.get(day, Decimal(0))
        z = float((observed - expected) / scale)
        direction = 1 if z >= thresholds.z else -1 if z <= -thresholds.z else 0
        if day == partial_day and direction < 0:
            direction = 0
        if direction == 0:
            previous = None
            continue
        last = runs[-1] if runs else None
        if (
            last is not None
            and previous is not None
            and last.direction == direction
            and last.days[-1] == previous
            and day - previous == timedelta(days=1)
        ):
            last.days.append(day)
            last.expected.append(expected)
            last.scores.append(z)
            last.partial = day == partial_day
        else:
            runs.append(_Run([day], [expected], [z], direction, ref_days, day == partial_day))
        previous = day
    return runs, scored, skipped


def _label(dimension: str, key: str | None, names: Mapping[str, str]) -> str:
    if dimension == "total":
        return "total"
    if key is None:
        return {
            "provider": "(unknown provider)",
            "model": "(unknown model)",
            "api_key": "(no api key)",
            "project": "(no project)",
        }[dimension]
    if dimension == "api_key" and key in names:
        return f"{names[key]} ({key})"
    return key


def _day_anomaly(run: _Run, s: _Series, dimension: str, key: str | None, label: str) -> Anomaly:
    observed = sum((s.cost.get(d, Decimal(0)) for d in run.days), Decimal(0))
    expected = q9(sum(run.expected, Decimal(0)))
    base = merge(s.usage.get(d, {}) for d in run.reference)
    seen = merge(s.usage.get(d, {}) for d in run.days)
    split = decompose(base, seen, base_cost=expected, observed_cost=observed)
    when = run.days[0].isoformat() if len(run.days) == 1 else f"{run.days[0].isoformat()}…{run.days[-1].isoformat()}"
    peak = max(run.scores, key=abs)
    return Anomaly(
        kind="spend_spike" if run.direction > 0 else "spend_drop",
        date=run.days[0],
        last_date=run.days[-1],
        days=len(run.days),
        dimension=dimension,
        dimension_value=key if key is not None else "(none)",
        dimension_label=label,
        observed_usd=q9(observed),
        expected_usd=expected,
        impact_usd=split.change_usd,
        score=round(peak, 2),
        partial_day=run.partial,
        explanation=_explain(split, base, seen, f"on {when}" + ("" if dimension == "total" else f" for {label}")),
    )


def _drift(
    s: _Series,
    scan_days: list[date],
    last_full: date,
    first: date,
    thresholds: Thresholds,
    dimension: str,
    key: str | None,
    label: str,
) -> Anomaly | None:
    recent = [last_full - timedelta(days=i) for i in range(DRIFT_RECENT_DAYS)]
    recent = [d for d in recent if d in scan_days]
    if len(recent) < DRIFT_RECENT_DAYS:
        return None
    start = recent[-1]
    before = [start - timedelta(days=i) for i in range(1, REFERENCE_DAYS + 1) if start - timedelta(days=i) >= first]
    if len(before) < MIN_HISTORY_DAYS:
        return None
    base = merge(s.usage.get(d, {}) for d in before)
    seen = merge(s.usage.get(d, {}) for d in recent)
    uncounted = any(u.uncounted for u in (*base.values(), *seen.values()))
    base_shares = _shares(base, uncounted)
    seen_shares = _shares(seen, uncounted)
    if sum(_units(u, uncounted) for u in base.values()) < DRIFT_MIN_UNITS:
        return None
    if sum(_units(u, uncounted) for u in seen.values()) < DRIFT_MIN_UNITS:
        return None
    models = set(base_shares) | set(seen_shares)
    tvd = float(sum(abs(seen_shares.get(m, Decimal(0)) - base_shares.get(m, Decimal(0))) for m in models)) / 2 * 100
    if tvd < thresholds.drift_pct:
        return None
    observed = sum((s.cost.get(d, Decimal(0)) for d in recent), Decimal(0))
    base_total = sum((s.cost.get(d, Decimal(0)) for d in before), Decimal(0))
    expected = q9(base_total * len(recent) / len(before))
    split = decompose(base, seen, base_cost=expected, observed_cost=observed)
    return Anomaly(
        kind="model_drift",
        date=recent[-1],
        last_date=recent[0],
        days=len(recent),
        dimension=dimension,
        dimension_value=key if key is not None else "(none)",
        dimension_label=label,
        observed_usd=q9(observed),
        expected_usd=expected,
        impact_usd=split.parts["mix"],
        score=round(tvd, 2),
        explanation=_explain(
            split,
            base,
            seen,
            f"from model drift{'' if dimension == 'total' else ' for ' + label} over "
            f"{recent[-1].isoformat()}…{recent[0].isoformat()} against the 28 days before",
            typical="expected at the earlier mix's daily rate",
        ),
    )


def _units(u: ModelUsage, uncounted: bool) -> Decimal:
    return u.input_tokens + u.tokens["output"] if uncounted else u.requests


def _shares(usage: Usage, uncounted: bool) -> dict[str, Decimal]:
    total = sum((_units(u, uncounted) for u in usage.values()), Decimal(0))
    if not total:
        return {}
    return {m: _units(u, uncounted) / total for m, u in usage.items()}


def _request_anomaly(o: OutlierRequest, dimension: str) -> Anomaly:
    group = ModelUsage()
    group.add(
        o.group_requests,
        {
            "uncached": o.group_uncached_tokens,
            "cached": o.group_cached_tokens,
            "write": o.group_write_tokens,
            "write_1h": o.group_write_1h_tokens,
            "output": o.group_output_tokens,
        },
        {
            "uncached": o.group_uncached_usd,
            "cached": o.group_cached_usd,
            "write": o.group_write_usd,
            "write_1h": o.group_write_1h_usd,
            "output": o.group_output_usd,
        },
    )
    one = ModelUsage()
    one.add(
        1,
        {
            "uncached": o.uncached_tokens,
            "cached": o.cached_tokens,
            "write": o.write_tokens,
            "write_1h": o.write_1h_tokens,
            "output": o.output_tokens,
        },
        {
            "uncached": o.uncached_usd,
            "cached": o.cached_usd,
            "write": o.write_usd,
            "write_1h": o.write_1h_usd,
            "output": o.output_usd,
        },
    )
    base = per_request({o.model_id: group})
    seen = {o.model_id: one}
    split = decompose(base, seen, base_cost=o.group_median_usd, observed_cost=o.cost_usd, rescale="size")
    value = {
        "total": "total",
        "provider": o.provider,
        "model": o.model_id,
        "api_key": o.api_key_id,
        "project": o.project,
    }[dimension]
    label = value if value is not None else "(none)"
    if dimension == "api_key" and o.key_name and value is not None:
        label = f"{o.key_name} ({value})"
    where = f"on request {o.request_id} ({o.model_id}{', ' + o.feature if o.feature else ''}) at {o.ts.isoformat()}"
    return Anomaly(
        kind="request_spike",
        date=o.ts.date(),
        last_date=o.ts.date(),
        days=1,
        dimension=dimension,
        dimension_value=value if value is not None else "(none)",
        dimension_label=label,
        observed_usd=q9(o.cost_usd),
        expected_usd=q9(o.group_median_usd),
        impact_usd=split.change_usd,
        score=round(o.score, 2),
        request=RequestDetail(
            request_id=o.request_id,
            ts=o.ts,
            provider=o.provider,
            model=o.model,
            api_key_id=o.api_key_id,
            api_key_name=o.key_name,
            project=o.project,
            feature=o.feature,
            query_id=o.query_id,
            user_id=o.user_id,
            input_tokens=o.uncached_tokens + o.cached_tokens + o.write_tokens + o.write_1h_tokens,
            cached_input_tokens=o.cached_tokens,
            output_tokens=o.output_tokens,
            group_requests=o.group_requests,
            times_median=round(float(o.cost_usd / o.group_median_usd), 2) if o.group_median_usd else 0.0,
        ),
        explanation=_explain(split, base, seen, where, typical="median request"),
    )


# ---------------------------------------------------------------------------------------------- explanations


def _pct(part: Decimal, whole: Decimal) -> float | None:
    return round(float(part / whole * 100), 2) if whole else None


def _cache_hit(usage: Usage) -> float | None:
    cached = sum((u.tokens["cached"] for u in usage.values()), Decimal(0))
    prompt = sum((u.input_tokens for u in usage.values()), Decimal(0))
    return _pct(cached, prompt)


def _per_unit(usage: Usage, attr: Literal["input", "output"]) -> float | None:
    requests = sum((u.requests for u in usage.values()), Decimal(0))
    if not requests:
        return None
    tokens = sum(((u.input_tokens if attr == "input" else u.tokens["output"]) for u in usage.values()), Decimal(0))
    return round(float(tokens / requests), 1)


def _price_moves(base: Usage, seen: Usage) -> list[PriceMove]:
    moves: list[tuple[Decimal, PriceMove]] = []
    for model in sorted(set(base) & set(seen)):
        b, o = base[model], seen[model]
        for k in CLASSES:
            if not b.tokens[k] or not o.tokens[k]:
                continue
            rb = b.cost[k] / b.tokens[k] * MILLION
            ro = o.cost[k] / o.tokens[k] * MILLION
            if rb == ro or (rb and abs(ro - rb) / rb < Decimal("0.005")):
                continue
            weight = abs(ro - rb) * o.tokens[k]
            moves.append(
                (
                    weight,
                    PriceMove(
                        model=model,
                        token_class=CLASS_LABELS[k],
                        expected_per_mtok_usd=round(float(rb), 6),
                        observed_per_mtok_usd=round(float(ro), 6),
                    ),
                )
            )
    moves.sort(key=lambda m: -m[0])
    return [m for _, m in moves[:5]]


def usd_text(value: Decimal, *, signed: bool = False) -> str:
    """Dollars for a sentence: cents from $1 up, more digits below."""
    sign = ("+" if value >= 0 else "−") if signed else ("−" if value < 0 else "")
    amount = abs(value)
    if amount >= 1:
        text = f"{amount:,.2f}"
    elif amount >= Decimal("0.01"):
        text = f"{amount:.4f}"
    else:
        text = f"{amount:.6f}"
    return f"{sign}${text}"


def _explain(split: Split, base: Usage, seen: Usage, subject: str, typical: str = "expected") -> Explanation:
    """The structured explanation of a split, with a one-line summary."""
    uncounted = split.unit == "tokens"
    base_shares = _shares(base, uncounted)
    seen_shares = _shares(seen, uncounted)
    models = sorted(set(base_shares) | set(seen_shares))
    movers = sorted(
        models,
        key=lambda m: (-abs(seen_shares.get(m, Decimal(0)) - base_shares.get(m, Decimal(0))), m),
    )
    shares = [
        ModelShare(
            model=m,
            expected_share_pct=round(float(base_shares.get(m, Decimal(0)) * 100), 2),
            observed_share_pct=round(float(seen_shares.get(m, Decimal(0)) * 100), 2),
        )
        for m in movers[:5]
        if len(models) > 1
    ]
    ratio = float(split.observed_units / split.base_units) if split.base_units else None
    price_moves = _price_moves(base, seen)
    explanation = Explanation(
        change_usd=split.change_usd,
        volume_usd=split.parts["volume"],
        mix_usd=split.parts["mix"],
        size_usd=split.parts["size"],
        cache_usd=split.parts["cache"],
        price_usd=split.parts["price"],
        volume_unit=split.unit,
        expected_volume=round(float(split.base_units), 2),
        observed_volume=round(float(split.observed_units), 2),
        volume_ratio=round(ratio, 3) if ratio is not None else None,
        model_shares=shares,
        expected_cache_hit_pct=_cache_hit(base),
        observed_cache_hit_pct=_cache_hit(seen),
        expected_input_tokens_per_request=_per_unit(base, "input"),
        observed_input_tokens_per_request=_per_unit(seen, "input"),
        expected_output_tokens_per_request=_per_unit(base, "output"),
        observed_output_tokens_per_request=_per_unit(seen, "output"),
        price_moves=price_moves,
        summary="",
    )
    explanation.summary = _summary(split, explanation, subject, typical)
    return explanation


def _summary(split: Split, e: Explanation, subject: str, typical: str) -> str:
    details = {
        "volume": (
            f"{e.volume_unit} ×{e.volume_ratio:.2f}" if e.volume_ratio is not None else f"{e.volume_unit} from none"
        ),
        "mix": _mix_text(e),
        "size": _size_text(e),
        "cache": (
            f"cache hit rate {_p(e.expected_cache_hit_pct)}→{_p(e.observed_cache_hit_pct)}"
            if e.expected_cache_hit_pct is not None or e.observed_cache_hit_pct is not None
            else "cache writes"
        ),
        "price": _price_text(e),
    }
    labels = {"volume": "volume", "mix": "model mix", "size": "request size", "cache": "cache", "price": "price"}
    change = split.change_usd
    shown = [
        k
        for k in sorted(FACTORS, key=lambda k: -abs(split.parts[k]))
        if split.parts[k] and abs(split.parts[k]) >= max(abs(change) / 100, Decimal("0.000001"))
    ]
    parts = ", ".join(f"{usd_text(split.parts[k], signed=True)} {labels[k]} ({details[k]})" for k in shown)
    head = (
        f"{usd_text(change, signed=True)} {subject} ({typical} {usd_text(split.base_usd)}, "
        f"observed {usd_text(split.observed_usd)})"
    )
    return head + (f": {parts}" if parts else "")


def _p(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g} %"


def _mix_text(e: Explanation) -> str:
    if not e.model_shares:
        return "one model"
    top = e.model_shares[0]
    return f"{top.model} share {_p(top.expected_share_pct)}→{_p(top.observed_share_pct)}"


def _size_text(e: Explanation) -> str:
    pairs = [
        ("input", e.expected_input_tokens_per_request, e.observed_input_tokens_per_request),
        ("output", e.expected_output_tokens_per_request, e.observed_output_tokens_per_request),
    ]
    known = [(n, a, b) for n, a, b in pairs if a is not None and b is not None]
    if not known:
        return "tokens per request"
    name, a, b = max(known, key=lambda t: abs((t[2] or 0) - (t[1] or 0)) / max(t[1] or 1, 1))
    return f"{name} tokens/request {a:,.0f}→{b:,.0f}"


def _price_text(e: Explanation) -> str:
    if not e.price_moves:
        return "tier or long-context mix"
    m = e.price_moves[0]
    return f"{m.model} {m.token_class} ${m.expected_per_mtok_usd:g}→${m.observed_per_mtok_usd:g} per M tokens"
