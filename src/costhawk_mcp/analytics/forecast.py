"""Spend forecasts with honest ranges.

The method, on daily UTC spend (`forecast_series`, pure and reused by bench/backtest_forecast.py):

1. **Weekday pattern**: multiplicative weekday indices, each the median over the history of a day's
   spend divided by the centred 7-day average around it, shrunk towards 1 by n/(n+0.25) for n
   observations (only one or two weeks of history bend the pattern less) and normalised to average
   1. Medians keep a spike from bending the pattern.
2. **Level and trend**: on the deseasonalised history, a Theil–Sen slope over the last 56 days
   (the median of all pairwise slopes, robust to spikes) and the level at the last day: the 20 %
   trimmed mean of the last 14 days, detrended (robust, yet less noisy than a median). The trend
   is damped (φ = 0.9 a day, so it adds at most about 9 days' worth of slope): spend rarely keeps
   growing in a straight line, and an undamped trend turns a busy week into a runaway forecast.
3. **Forecast**: (level + damped trend) × weekday index, never below zero.
4. **Range**: an 80 % range from the method's own errors. The method is re-fitted at every
   earlier origin of the same history (rolling origin) and its log errors
   ln((actual + ε) / (forecast + ε)) are collected per horizon. A day's range spans the 8th to
   92nd percentiles of the errors at nearby horizons, from origins with at least 21 days of
   training when there are enough; the total's range the 4th to 96th percentiles of the errors of
   multi-day totals from every origin. The percentiles are wider than 10/90 on purpose: errors of
   overlapping windows and nearby origins are correlated, so fewer independent errors back them,
   and bench/backtest_forecast.py showed plain 10th/90th percentiles holding only ~70–75 % of
   actual values; these hold ~80 % there. Beyond the horizons the history can test, ranges widen
   with the square root of the horizon. The total's range is never narrower than the daily
   ranges combined as independent errors (root of the sum of squares): a run of growth makes
   all of a total's backtest errors one sign, which left it one-sided. With too little history
   for a backtest (fewer than 10 errors), a wide fallback band is used and said so.

Per-group forecasts fit each group separately (the top groups by spend, the rest as 'other') and
are then scaled day by day so that they add up to the total's forecast.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import BaseModel, Field

from costhawk_mcp.analytics.common import DataSource, data_sources
from costhawk_mcp.analytics.window import parse_instant
from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.money import USD
from costhawk_mcp.store import coverage, spend_queries
from costhawk_mcp.store.facts import FactFilter
from costhawk_mcp.store.store import Store

Day = date  # a field named `date` shadows the type inside ForecastDay

GROUP_DIMENSIONS = ("provider", "model", "project", "api_key")
TOP_GROUPS = 5
MIN_HISTORY = 7
MIN_TRAIN = 14
DAILY_MIN_TRAIN = 21
TREND_WINDOW = 56
LEVEL_WINDOW = 14
LEVEL_TRIM = 0.2
TOTAL_TAIL = 0.04
DAILY_TAIL = 0.08
DAMPING = 0.9
SEASON_PRIOR = 0.25
MIN_ERRORS = 10
MAX_ORIGINS = 42
CENT = Decimal("0.01")

METHOD = (
    "weekday-seasonal robust level with a damped Theil–Sen trend: multiplicative weekday indices (medians of "
    "spend / centred 7-day average), Theil–Sen slope over the last 56 deseasonalised days, level = 20 % trimmed "
    "mean of the last 14, trend damped by 0.9 a day; ranges from the method's own rolling-origin backtest errors "
    "on the same history (days: 8th–92nd percentiles, totals: 4th–96th and at least the daily ranges combined as "
    "independent errors, which held ~80 % of actuals in backtests)"
)


@dataclass(frozen=True)
class Fit:
    """A fitted series: level at the last day, daily slope, weekday indices (Monday = 0)."""

    level: float
    slope: float
    season: tuple[float, ...]
    last_day: date

    def predict(self, h: int) -> float:
        """Spend on day last_day + h (h ≥ 1)."""
        damped = DAMPING * (1 - DAMPING**h) / (1 - DAMPING)
        day = self.last_day + timedelta(days=h)
        return max(0.0, (self.level + self.slope * damped) * self.season[day.weekday()])


def fit(values: list[float], first_day: date) -> Fit:
    """Fit the method to daily spend `values` starting on `first_day` (at least one value)."""
    n = len(values)
    last_day = first_day + timedelta(days=n - 1)
    season = _season(values, first_day)
    z = [v / season[(first_day + timedelta(days=i)).weekday()] for i, v in enumerate(values)]
    window = z[-TREND_WINDOW:]
    m = len(window)
    if m >= MIN_TRAIN:
        slopes = [(window[j] - window[i]) / (j - i) for i in range(m) for j in range(i + 1, m)]
        slope = statistics.median(slopes)
    else:
        slope = 0.0
    recent = window[-LEVEL_WINDOW:]
    k = len(recent)
    level = _center([v - slope * (i - (k - 1)) for i, v in enumerate(recent)])
    return Fit(level=max(level, 0.0), slope=slope, season=season, last_day=last_day)


def _center(values: list[float]) -> float:
    """A robust centre: the mean of the middle values (LEVEL_TRIM cut from each end)."""
    ordered = sorted(values)
    cut = int(len(ordered) * LEVEL_TRIM)
    kept = ordered[cut : len(ordered) - cut] or ordered
    return sum(kept) / len(kept)


def _season(values: list[float], first_day: date) -> tuple[float, ...]:
    ratios: dict[int, list[float]] = defaultdict(list)
    for t in range(3, len(values) - 3):
        around = sum(values[t - 3 : t + 4]) / 7
        if around > 0:
            ratios[(first_day + timedelta(days=t)).weekday()].append(values[t] / around)
    raw = []
    for w in range(7):
        found = ratios.get(w, [])
        if not found:
            raw.append(1.0)
            continue
        shrink = len(found) / (len(found) + SEASON_PRIOR)
        raw.append(1 + (statistics.median(found) - 1) * shrink)
    mean = sum(raw) / 7
    return tuple(r / mean for r in raw) if mean > 0 else tuple([1.0] * 7)


@dataclass(frozen=True)
class SeriesForecast:
    """Daily forecasts with ranges, and the total with its range."""

    days: list[date]
    expected: list[float]
    low: list[float]
    high: list[float]
    total: float
    total_low: float
    total_high: float
    errors_used: int
    backtest_mape_pct: float | None
    fallback: bool


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def forecast_series(values: list[float], first_day: date, horizon: int) -> SeriesForecast:
    """Forecast `horizon` days after the history `values` (daily spend from `first_day`)."""
    n = len(values)
    model = fit(values, first_day)
    expected = [model.predict(h) for h in range(1, horizon + 1)]
    days = [model.last_day + timedelta(days=h) for h in range(1, horizon + 1)]
    positive = [v for v in values if v > 0]
    eps = max(0.01, 0.01 * statistics.median(positive)) if positive else 0.01

    # Rolling-origin backtest on the same history.
    by_h: dict[int, list[float]] = defaultdict(list)
    totals: dict[int, list[float]] = defaultdict(list)
    ape: list[float] = []
    # Daily ranges learn from origins with at least DAILY_MIN_TRAIN days when there are enough of them
    # (errors of very short fits overstate a day's spread); totals learn from every origin.
    daily_min = DAILY_MIN_TRAIN if n - DAILY_MIN_TRAIN >= MIN_ERRORS else MIN_TRAIN
    for origin in range(max(MIN_TRAIN, n - MAX_ORIGINS), n):
        past = fit(values[:origin], first_day)
        ahead = values[origin : origin + horizon]
        run_actual = run_forecast = 0.0
        for k, actual in enumerate(ahead, start=1):
            guess = past.predict(k)
            if origin >= daily_min:
                by_h[k].append(math.log((actual + eps) / (guess + eps)))
            run_actual += actual
            run_forecast += guess
            totals[k].append(math.log((run_actual + eps) / (run_forecast + eps)))
            if k <= 7 and actual > 0:
                ape.append(abs(guess - actual) / actual)
    errors_used = sum(len(v) for v in by_h.values())
    tested = max((k for k, v in by_h.items() if len(v) >= MIN_ERRORS), default=0)
    lo_q, hi_q = DAILY_TAIL, 1 - DAILY_TAIL
    fallback = tested == 0
    low: list[float] = []
    high: list[float] = []
    for h, guess in enumerate(expected, start=1):
        if fallback:
            spread = 0.5 * math.sqrt(h / 7 + 1)
            q_lo, q_hi = -spread, spread
        else:
            k = min(h, tested)
            pool = [e for j in range(max(1, k - 3), min(tested, k + 3) + 1) for e in by_h[j]]
            widen = math.sqrt(h / tested) if h > tested else 1.0
            q_lo = min(0.0, _quantile(pool, lo_q)) * widen
            q_hi = max(0.0, _quantile(pool, hi_q)) * widen
        low.append(max(0.0, (guess + eps) * math.exp(q_lo) - eps))
        high.append(max(guess, (guess + eps) * math.exp(q_hi) - eps))
    total = sum(expected)
    tested_total = max((k for k, v in totals.items() if len(v) >= MIN_ERRORS and k <= horizon), default=0)
    if tested_total == 0:
        spread = 0.5 * math.sqrt(horizon / 7 + 1)
        t_lo, t_hi = -spread, spread
    else:
        widen = math.sqrt(horizon / tested_total) if horizon > tested_total else 1.0
        t_lo = min(0.0, _quantile(totals[tested_total], TOTAL_TAIL)) * widen
        t_hi = max(0.0, _quantile(totals[tested_total], 1 - TOTAL_TAIL)) * widen
    # A total's own backtest has few, overlapping windows, and one run of growth gives its errors all
    # one sign (a range on one side only, too narrow). So it is never narrower than the daily ranges
    # combined as independent errors (root of the sum of squares): on the generated series of
    # bench/backtest_forecast.py this brings the 14-day totals' coverage from 72-84 % to 81-86 %.
    below = math.sqrt(sum((e - lo) ** 2 for e, lo in zip(expected, low, strict=True)))
    above = math.sqrt(sum((hi - e) ** 2 for e, hi in zip(expected, high, strict=True)))
    total_low = min((total + eps) * math.exp(t_lo) - eps, total - below)
    total_high = max((total + eps) * math.exp(t_hi) - eps, total + above)
    return SeriesForecast(
        days=days,
        expected=expected,
        low=low,
        high=high,
        total=total,
        total_low=max(0.0, total_low),
        total_high=max(total, total_high),
        errors_used=errors_used,
        backtest_mape_pct=round(100 * statistics.fmean(ape), 2) if ape else None,
        fallback=fallback or tested_total == 0,
    )


class ForecastDay(BaseModel):
    """One forecast day."""

    date: Day
    expected_usd: USD
    low_usd: USD = Field(description="10th percentile (80 % range)")
    high_usd: USD = Field(description="90th percentile (80 % range)")


class ForecastTotal(BaseModel):
    """The whole horizon."""

    expected_usd: USD
    low_usd: USD = Field(description="lower end of the 80 % range of the horizon's total")
    high_usd: USD = Field(description="upper end of the 80 % range of the horizon's total")


class GroupForecast(BaseModel):
    """One group's forecast (scaled so that the groups add up to the total forecast)."""

    group: str = Field(description="the group's value; 'other' sums the groups beyond the top ones")
    history_spend_usd: USD = Field(description="the group's spend over the history window")
    total: ForecastTotal
    days: list[ForecastDay]


class BacktestFigures(BaseModel):
    """How the method did on this history (rolling origin, refitted at each origin)."""

    errors_used: int = Field(description="forecast errors (origin × horizon) the ranges come from")
    mape_1_to_7_days_pct: float | None = Field(description="mean absolute percentage error, horizons 1–7 days")
    fallback_range: bool = Field(description="true when the history was too short and a wide default range was used")


class ForecastResult(BaseModel):
    """Projected spend: per day and in total, low/expected/high, optionally per group."""

    as_of: date = Field(description="first forecast day; history ends the day before")
    horizon_days: int
    history_start: date | None
    history_end: date | None
    history_spend_usd: USD
    last_7_days_spend_usd: USD
    method: str
    interval: str
    total: ForecastTotal
    days: list[ForecastDay]
    backtest: BacktestFigures
    group_by: str | None
    groups: list[GroupForecast]
    unpriced_requests: int
    unpriced_models: list[str]
    data_sources: list[DataSource]
    notes: list[str]


def _usd(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)


def _days_out(f: SeriesForecast, scale: list[float] | None = None) -> list[ForecastDay]:
    k = scale or [1.0] * len(f.days)
    return [
        ForecastDay(date=d, expected_usd=_usd(e * s), low_usd=_usd(lo * s), high_usd=_usd(hi * s))
        for d, e, lo, hi, s in zip(f.days, f.expected, f.low, f.high, k, strict=True)
    ]


def forecast_spend(
    store: Store,
    *,
    horizon_days: int = 30,
    group_by: str | None = None,
    history_days: int = 56,
    as_of: str | date | datetime | None = None,
    now: datetime | None = None,
) -> ForecastResult:
    """Forecast daily and total spend for `horizon_days` from `as_of` (default today, UTC)."""
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or not 1 <= horizon_days <= 365:
        raise InvalidArgument("horizon_days", f"must be a whole number from 1 to 365, got {horizon_days!r}")
    if isinstance(history_days, bool) or not isinstance(history_days, int) or not 14 <= history_days <= 366:
        raise InvalidArgument("history_days", f"must be a whole number from 14 to 366, got {history_days!r}")
    if group_by is not None and group_by not in GROUP_DIMENSIONS:
        raise InvalidArgument("group_by", f"unknown dimension {group_by!r}; allowed: {', '.join(GROUP_DIMENSIONS)}")
    if as_of is None:
        current = now or datetime.now(timezone.utc)
        start_day = (current.astimezone(timezone.utc) if current.tzinfo else current).date()
    else:
        start_day = parse_instant(as_of, "as_of").date()
    history_from = start_day - timedelta(days=history_days)
    window = FactFilter(start=datetime.combine(history_from, time()), end=datetime.combine(start_day, time()))
    with store.reading() as conn:
        total_rows = spend_queries.daily_spend(conn, window, "total")
        group_rows = spend_queries.daily_spend(conn, window, group_by) if group_by else []
        first = spend_queries.first_day(conn, window)
        uses = coverage.source_use(conn, window)
        unpriced = coverage.unpriced(conn, window)

    notes: list[str] = []
    empty_total = ForecastTotal(expected_usd=Decimal(0), low_usd=Decimal(0), high_usd=Decimal(0))
    if first is None or (start_day - first).days < MIN_HISTORY:
        notes.append(
            f"too little history: forecasts need at least {MIN_HISTORY} days of usage before {start_day.isoformat()}"
            + ("" if first is None else f" (data starts on {first.isoformat()})")
        )
        return ForecastResult(
            as_of=start_day,
            horizon_days=horizon_days,
            history_start=first,
            history_end=start_day - timedelta(days=1) if first else None,
            history_spend_usd=sum((v for _, _, v in total_rows), Decimal(0)),
            last_7_days_spend_usd=Decimal(0),
            method=METHOD,
            interval="80 % (10th to 90th percentile)",
            total=empty_total,
            days=[],
            backtest=BacktestFigures(errors_used=0, mape_1_to_7_days_pct=None, fallback_range=True),
            group_by=group_by,
            groups=[],
            unpriced_requests=unpriced.requests,
            unpriced_models=unpriced.models,
            data_sources=data_sources(uses),
            notes=notes,
        )

    span = (start_day - first).days
    history = [first + timedelta(days=i) for i in range(span)]
    totals_by_day = {d: v for d, _, v in total_rows}
    series = [float(totals_by_day.get(d, Decimal(0))) for d in history]
    result = forecast_series(series, first, horizon_days)
    if result.fallback:
        notes.append("the history is too short for a backtest of every horizon: part of the range is a wide default")
    if span < TREND_WINDOW:
        notes.append(f"only {span} days of history: the trend is {'estimated' if span >= MIN_TRAIN else 'not used'}")
    notes.append(f"the first forecast day is {start_day.isoformat()} (a whole UTC day, including any spend so far)")

    groups: list[GroupForecast] = []
    if group_by:
        per_group: dict[str, dict[date, Decimal]] = defaultdict(dict)
        for d, key, v in group_rows:
            per_group["(none)" if key is None else key][d] = v
        ranked = sorted(per_group, key=lambda g: (-sum(per_group[g].values()), g))
        top = ranked[:TOP_GROUPS]
        rest = ranked[TOP_GROUPS:]
        named = {g: per_group[g] for g in top}
        if rest:
            other: dict[date, Decimal] = defaultdict(Decimal)
            for g in rest:
                for d, v in per_group[g].items():
                    other[d] += v
            named["other"] = dict(other)
            notes.append(f"'other' sums {len(rest)} smaller groups")
        fits = {
            g: forecast_series([float(values.get(d, Decimal(0))) for d in history], first, horizon_days)
            for g, values in named.items()
        }
        sums = [sum(f.expected[i] for f in fits.values()) for i in range(horizon_days)]
        scale_by_day = [(result.expected[i] / s) if s > 0 else 0.0 for i, s in enumerate(sums)]
        for g, f in fits.items():
            days_out = _days_out(f, scale_by_day)
            scaled_total = sum(e * s for e, s in zip(f.expected, scale_by_day, strict=True))
            ratio = scaled_total / f.total if f.total > 0 else 0.0
            groups.append(
                GroupForecast(
                    group=g,
                    history_spend_usd=sum(named[g].values(), Decimal(0)),
                    total=ForecastTotal(
                        expected_usd=_usd(scaled_total),
                        low_usd=_usd(f.total_low * ratio),
                        high_usd=_usd(f.total_high * ratio),
                    ),
                    days=days_out,
                )
            )
        notes.append("group forecasts are fitted per group, then scaled day by day to add up to the total forecast")

    return ForecastResult(
        as_of=start_day,
        horizon_days=horizon_days,
        history_start=first,
        history_end=history[-1],
        history_spend_usd=sum((v for _, _, v in total_rows), Decimal(0)),
        last_7_days_spend_usd=sum((totals_by_day.get(d, Decimal(0)) for d in history[-7:]), Decimal(0)),
        method=METHOD,
        interval="80 % (10th to 90th percentile)",
        total=ForecastTotal(
            expected_usd=_usd(result.total), low_usd=_usd(result.total_low), high_usd=_usd(result.total_high)
        ),
        days=_days_out(result),
        backtest=BacktestFigures(
            errors_used=result.errors_used,
            mape_1_to_7_days_pct=result.backtest_mape_pct,
            fallback_range=result.fallback,
        ),
        group_by=group_by,
        groups=groups,
        unpriced_requests=unpriced.requests,
        unpriced_models=unpriced.models,
        data_sources=data_sources(uses),
        notes=notes,
    )
