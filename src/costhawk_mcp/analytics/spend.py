"""Spend summary: spend, tokens, requests and latency per time bucket or dimension, with change figures.

Every figure reads through `facts` (request logs and synced provider usage, never both for the same
provider-day). Rows compare with their own previous span: a time bucket with the bucket before it
(the day, ISO week or calendar month before, over the same part of it when the window cuts the
bucket), any other group with the same group over the previous period of equal length. Totals
compare with the previous period of equal length.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from costhawk_mcp.analytics.common import DataSource, data_sources
from costhawk_mcp.analytics.window import Period, resolve_window
from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.money import USD, pct
from costhawk_mcp.pricing.catalog import PROVIDER_ALIASES, Catalog
from costhawk_mcp.store import spend_queries
from costhawk_mcp.store.facts import FactFilter, Sources
from costhawk_mcp.store.spend_queries import GroupTotals, PreviousGroup
from costhawk_mcp.store.store import Store

TIME_DIMENSIONS = ("day", "week", "month")
KEY_DIMENSIONS = ("provider", "model", "api_key", "project", "feature")
GROUP_BY = (*TIME_DIMENSIONS, *KEY_DIMENSIONS)
MAX_DIMENSIONS = 3
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_NONE_LABELS = {
    "provider": "(unknown provider)",
    "model": "(unknown model)",
    "api_key": "(no api key)",
    "project": "(no project)",
    "feature": "(no feature)",
}


class SpendRow(BaseModel):
    """One group: spend, usage, latency and the change against its previous span."""

    label: str = Field(description="the group's values, readable, e.g. '2026-11-23 · gpt-4o'")
    period_start: date | None = Field(default=None, description="time groups: first UTC day of the bucket")
    period_end: date | None = Field(default=None, description="time groups: UTC day after the bucket (exclusive)")
    partial: bool | None = Field(
        default=None, description="time groups: true when the window covers only part of the bucket"
    )
    provider: str | None = None
    model: str | None = Field(default=None, description="catalog model id (the reported name when unpriced)")
    api_key_id: str | None = None
    api_key_name: str | None = None
    project: str | None = None
    feature: str | None = None
    spend_usd: USD = Field(description="priced spend; unpriced requests are not in it (see unpriced_requests)")
    share_pct: float | None = Field(description="share of the period's total spend, percent")
    requests: int
    input_tokens: int = Field(description="all prompt tokens, cache reads and writes included")
    cached_input_tokens: int = Field(description="prompt tokens read from the provider's cache")
    cache_write_tokens: int = Field(description="prompt tokens written to the cache (5-minute and 1-hour)")
    output_tokens: int
    input_tokens_per_request: float | None
    cached_input_tokens_per_request: float | None
    output_tokens_per_request: float | None
    cost_per_request_usd: USD | None = Field(description="spend_usd / priced requests")
    unpriced_requests: int = Field(description="requests whose model has no catalog price (cost unknown)")
    latency_p50_ms: float | None = Field(description="median latency; null when no request log carries latency")
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    latency_requests: int = Field(description="requests the latency percentiles are computed from")
    previous_spend_usd: USD = Field(description="spend of the same group in its previous span")
    change_usd: USD = Field(description="spend_usd − previous_spend_usd")
    change_pct: float | None = Field(description="change_usd as a percent of previous_spend_usd; null when that is 0")


class SpendTotals(BaseModel):
    """The whole period, against the previous period of equal length."""

    spend_usd: USD
    requests: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    input_tokens_per_request: float | None
    cached_input_tokens_per_request: float | None
    output_tokens_per_request: float | None
    cost_per_request_usd: USD | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    latency_requests: int
    previous_spend_usd: USD = Field(description="spend in previous_period")
    change_usd: USD
    change_pct: float | None = Field(description="null when the previous period had no spend")


class SpendSummary(BaseModel):
    """Spend grouped by time and/or dimension, with shares and change figures."""

    period: Period
    previous_period: Period = Field(description="the period of equal length just before, for the totals' change")
    group_by: list[str]
    row_comparison: str = Field(description="what each row's previous_spend_usd covers")
    rows: list[SpendRow]
    omitted_rows: int = Field(description="groups beyond `limit`, left out of rows (they are in totals)")
    omitted_spend_usd: USD
    totals: SpendTotals
    unpriced_requests: int
    unpriced_models: list[str]
    data_sources: list[DataSource]
    notes: list[str]


def parse_group_by(group_by: str | Sequence[str]) -> list[str]:
    """The grouping dimensions: one name, a comma-separated string or a list; at most one time bucket."""
    raw = [group_by] if isinstance(group_by, str) else list(group_by)
    names: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise InvalidArgument("group_by", f"expected dimension names, got {item!r}")
        names.extend(part.strip().lower() for part in item.split(",") if part.strip())
    if not names:
        raise InvalidArgument("group_by", f"give at least one of: {', '.join(GROUP_BY)}")
    for name in names:
        if name not in GROUP_BY:
            raise InvalidArgument("group_by", f"unknown dimension {name!r}; allowed: {', '.join(GROUP_BY)}")
    if len(set(names)) != len(names):
        raise InvalidArgument("group_by", f"a dimension is repeated in {names}")
    if sum(n in TIME_DIMENSIONS for n in names) > 1:
        raise InvalidArgument("group_by", "use at most one of day, week, month")
    if len(names) > MAX_DIMENSIONS:
        raise InvalidArgument("group_by", f"at most {MAX_DIMENSIONS} dimensions, got {len(names)}")
    return names


def normalize_provider_filter(provider: str | None) -> str | None:
    """A provider name as the store writes it (known aliases mapped, others lower-cased)."""
    if provider is None:
        return None
    key = provider.strip().lower()
    if not key:
        raise InvalidArgument("provider", "must not be empty")
    return PROVIDER_ALIASES.get(key, key)


def resolve_model_filter(catalog: Catalog, model: str | None) -> str | None:
    """A model filter as a catalog id when the catalog knows the name, else as written."""
    if model is None:
        return None
    if not model.strip():
        raise InvalidArgument("model", "must not be empty")
    entry = catalog.find(model)
    return entry.model if entry is not None else model.strip()


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` moved by whole calendar months, the day clamped to the month's end (as DuckDB does)."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    next_first = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_first - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def bucket_end(start: date, unit: str) -> date:
    """The first day after the UTC calendar bucket starting on `start`."""
    if unit == "day":
        return start + timedelta(days=1)
    if unit == "week":
        return start + timedelta(days=7)
    return add_months(datetime.combine(start, datetime.min.time()), 1).date()


def _shift_back(moment: datetime, unit: str) -> datetime:
    if unit == "month":
        return add_months(moment, -1)
    return moment - timedelta(days=1 if unit == "day" else 7)


def _bucket_start(moment: datetime, unit: str) -> date:
    day = moment.date()
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _per_request(tokens: int, requests: int) -> float | None:
    return round(tokens / requests, 2) if requests else None


def spend_summary(
    store: Store,
    catalog: Catalog,
    *,
    group_by: str | Sequence[str],
    start: str | date | datetime | None = None,
    end: str | date | datetime | None = None,
    days: float | None = None,
    provider: str | None = None,
    project: str | None = None,
    api_key_id: str | None = None,
    model: str | None = None,
    feature: str | None = None,
    limit: int = DEFAULT_LIMIT,
    now: datetime | None = None,
) -> SpendSummary:
    """Spend per group over a window, with shares, per-request figures, latency and change figures."""
    dims = parse_group_by(group_by)
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument("limit", f"must be between 1 and {MAX_LIMIT}, got {limit!r}")
    period = resolve_window(start, end, days, now=now)
    previous = period.previous()
    time_dim = next((d for d in dims if d in TIME_DIMENSIONS), None)
    f = FactFilter(
        start=period.start,
        end=period.end,
        provider=normalize_provider_filter(provider),
        project=project,
        api_key_id=api_key_id,
        model=resolve_model_filter(catalog, model),
        feature=feature,
    )
    sources: Sources = "request_logs" if "feature" in dims else "auto"
    if time_dim is not None:
        row_previous = (_shift_back(period.start, time_dim), _shift_back(period.end, time_dim))
    else:
        row_previous = (previous.start, previous.end)
    with store.reading() as conn:
        # One scan of the window and the spans it compares with (plus one of latency, when any).
        scan = spend_queries.summary(
            conn, f, dims, sources=sources, row_previous=row_previous, previous=(previous.start, previous.end)
        )
    current, before, uses, unpriced = scan.current, scan.previous, scan.sources, scan.unpriced

    total = next((g for g in current if g.is_total), None)
    total_spend = total.spend_usd if total else Decimal(0)
    prev_total = scan.previous_total
    previous_by_key = {g.keys: g for g in before}
    current_by_key = {g.keys: g for g in current if not g.is_total}
    keys = list(current_by_key)
    if time_dim is None:  # a group that stopped spending still shows, at zero
        keys += [k for k in previous_by_key if k not in current_by_key]
    if time_dim is not None and dims == [time_dim]:
        bucket = _bucket_start(period.start, time_dim)
        last = period.end - timedelta(microseconds=1)
        while _midnight(bucket) <= last:
            if (bucket,) not in current_by_key:
                keys.append((bucket,))
            bucket = bucket_end(bucket, time_dim)

    rows = [
        _row(dims, key, current_by_key.get(key), previous_by_key.get(key), total_spend, period, time_dim)
        for key in keys
    ]
    if dims == [time_dim]:
        # A plain time series keeps its most recent buckets; any other grouping its biggest groups.
        rows.sort(key=lambda r: r.period_start or date.min, reverse=True)
    else:
        rows.sort(key=lambda r: (-r.spend_usd, -r.previous_spend_usd, r.label))
    kept, omitted = rows[:limit], rows[limit:]
    if time_dim is not None:
        kept.sort(key=lambda r: (r.period_start or date.min, -r.spend_usd, r.label))

    totals = _totals(total, prev_total)
    notes = _notes(dims, time_dim, rows, total, sources)
    return SpendSummary(
        period=period,
        previous_period=previous,
        group_by=dims,
        row_comparison=_comparison(time_dim, previous),
        rows=kept,
        omitted_rows=len(omitted),
        omitted_spend_usd=sum((r.spend_usd for r in omitted), Decimal(0)),
        totals=totals,
        unpriced_requests=unpriced.requests,
        unpriced_models=unpriced.models,
        data_sources=data_sources(uses),
        notes=notes,
    )


def _comparison(time_dim: str | None, previous: Period) -> str:
    if time_dim is None:
        return (
            f"the same group from {previous.start.isoformat()} to {previous.end.isoformat()} "
            "(the previous period of equal length)"
        )
    unit = {"day": "day", "week": "ISO week", "month": "calendar month"}[time_dim]
    return f"the same group in the {unit} before each row's bucket, over the same part of it"


def _row(
    dims: list[str],
    key: tuple[object, ...],
    now: GroupTotals | None,
    before: PreviousGroup | None,
    total_spend: Decimal,
    period: Period,
    time_dim: str | None,
) -> SpendRow:
    values: dict[str, object] = {}
    labels: list[str] = []
    for dim, value in zip(dims, key, strict=True):
        if dim in TIME_DIMENSIONS:
            assert isinstance(value, date)
            end = bucket_end(value, dim)
            values["period_start"] = value
            values["period_end"] = end
            values["partial"] = _midnight(value) < period.start or _midnight(end) > period.end
            labels.append(value.isoformat() if dim != "month" else value.strftime("%Y-%m"))
            continue
        text = None if value is None else str(value)
        values["api_key_id" if dim == "api_key" else dim] = text
        label = text if text is not None else _NONE_LABELS[dim]
        if dim == "api_key":
            name = (now.key_name if now else None) or (before.key_name if before else None)
            values["api_key_name"] = name
            if name and text is not None:
                label = f"{name} ({text})"
        labels.append(label)
    spend = now.spend_usd if now else Decimal(0)
    prev = before.spend_usd if before else Decimal(0)
    return SpendRow(
        label=" · ".join(labels),
        **values,  # type: ignore[arg-type]
        **_figures(now, prev),
        share_pct=pct(spend, total_spend),
        unpriced_requests=now.unpriced_requests if now else 0,
    )


def _figures(g: GroupTotals | None, previous_spend: Decimal) -> dict[str, Any]:
    """What a row and the totals both show of a group: spend, usage, latency and the change."""
    spend = g.spend_usd if g else Decimal(0)
    requests = g.requests if g else 0
    priced = requests - (g.unpriced_requests if g else 0)
    return {
        "spend_usd": spend,
        "requests": requests,
        "input_tokens": g.input_tokens if g else 0,
        "cached_input_tokens": g.cached_input_tokens if g else 0,
        "cache_write_tokens": g.cache_write_tokens if g else 0,
        "output_tokens": g.output_tokens if g else 0,
        "input_tokens_per_request": _per_request(g.input_tokens, requests) if g else None,
        "cached_input_tokens_per_request": _per_request(g.cached_input_tokens, requests) if g else None,
        "output_tokens_per_request": _per_request(g.output_tokens, requests) if g else None,
        "cost_per_request_usd": spend / priced if priced > 0 else None,
        "latency_p50_ms": g.latency_p50_ms if g else None,
        "latency_p95_ms": g.latency_p95_ms if g else None,
        "latency_p99_ms": g.latency_p99_ms if g else None,
        "latency_requests": g.latency_requests if g else 0,
        "previous_spend_usd": previous_spend,
        "change_usd": spend - previous_spend,
        "change_pct": pct(spend - previous_spend, previous_spend),
    }


def _totals(total: GroupTotals | None, previous_spend: Decimal) -> SpendTotals:
    return SpendTotals(**_figures(total, previous_spend))


def _notes(
    dims: list[str], time_dim: str | None, rows: list[SpendRow], total: GroupTotals | None, sources: Sources
) -> list[str]:
    notes: list[str] = []
    if sources == "request_logs":
        notes.append(
            "grouped by feature: only imported request logs carry features, so synced provider usage is left out"
        )
    if total is not None and total.requests:
        if total.latency_requests == 0:
            notes.append(
                "latency is null: no request in the period carries latency (synced provider usage never does; "
                "request logs only when they include latency_ms)"
            )
        elif total.latency_requests < total.requests:
            notes.append(
                f"latency percentiles cover {total.latency_requests} of {total.requests} requests: only imported "
                "request logs with latency_ms carry latency, synced provider usage does not"
            )
    if time_dim is not None and any(r.partial for r in rows):
        notes.append(
            "rows marked partial cover only the part of their bucket inside the window, and compare with the "
            "same part of the bucket before"
        )
    return notes
