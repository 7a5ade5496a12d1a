"""Daily spend as a stacked bar chart (PNG), with the numbers an assistant needs beside it.

matplotlib is imported only when a chart is drawn, with the headless Agg backend, and through its
object-oriented API (a `Figure` per call, never pyplot's global state), so concurrent tool calls
in worker threads cannot draw into each other's figures.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import BaseModel, Field

from costhawk_mcp.analytics.common import DataSource, data_sources
from costhawk_mcp.analytics.window import Period, resolve_window
from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.money import USD, pct
from costhawk_mcp.store import coverage, savings_queries
from costhawk_mcp.store.facts import FactFilter
from costhawk_mcp.store.store import Store

GroupBy = Literal["model", "api_key", "provider", "project"]
OTHER = "other"
MAX_TOP = 10
WIDTH_PX = 1000
HEIGHT_PX = 500
DPI = 100


class ChartGroup(BaseModel):
    """One stacked series: a top group, or 'other' for the rest."""

    name: str
    total_usd: USD
    share_pct: float | None


class ChartDay(BaseModel):
    """One bar: a UTC day's priced spend."""

    day: date
    total_usd: USD


class ChartImage(BaseModel):
    """The PNG sent beside this summary."""

    format: Literal["png"] = "png"
    width_px: int
    height_px: int
    bytes: int


class ChartSummary(BaseModel):
    """The chart's numbers: total, groups, daily totals, peak day, and what was left out."""

    period: Period
    group_by: GroupBy
    days: int = Field(description="UTC days on the x axis")
    total_usd: USD = Field(description="priced spend in the window")
    groups: list[ChartGroup] = Field(description="the stacked series, largest first, 'other' last")
    top_group: str | None
    top_group_usd: USD | None
    peak_day: date | None
    peak_day_usd: USD | None
    daily: list[ChartDay]
    image: ChartImage | None = Field(description="null when there is nothing to draw")
    summary: str = Field(description="the same figures as one paragraph")
    unpriced_requests: int = Field(description="requests left out because their model has no price")
    unpriced_models: list[str]
    data_sources: list[DataSource]


def usd_text(amount: Decimal) -> str:
    """Dollars for people: cents from a dollar up, four decimals below (halves rounded up, as on invoices)."""
    places = Decimal("0.01") if abs(amount) >= 1 else Decimal("0.0001")
    return f"${amount.quantize(places, rounding=ROUND_HALF_UP):,}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _group_by(value: str) -> GroupBy:
    for known in ("model", "api_key", "provider", "project"):
        if value == known:
            return known
    raise InvalidArgument("group_by", f"must be one of model, api_key, provider, project; got {value!r}")


_GROUP_WORDS = {"model": "model", "api_key": "API key", "provider": "provider", "project": "project"}


def spend_chart(
    store: Store,
    *,
    start: str | None = None,
    end: str | None = None,
    days: float | None = None,
    group_by: str = "model",
    top: int = 5,
    now: datetime | None = None,
) -> tuple[ChartSummary, bytes | None]:
    """The summary and the PNG (None when the window has no priced spend)."""
    grouping = _group_by(group_by)
    if isinstance(top, bool) or not 1 <= top <= MAX_TOP:
        raise InvalidArgument("top", f"must be between 1 and {MAX_TOP}, got {top!r}")
    current_time = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    period = resolve_window(start, end, days, now=current_time)
    f = FactFilter(start=period.start, end=period.end)
    with store.reading() as conn:
        rows = savings_queries.daily_spend(conn, f, grouping)
        uses = coverage.source_use(conn, f)
        unpriced = coverage.unpriced(conn, f)

    first = period.start.date()
    last = (period.end - timedelta(microseconds=1)).date()
    axis = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    totals: dict[str, Decimal] = {}
    for _, name, usd, _ in rows:
        totals[name] = totals.get(name, Decimal(0)) + usd
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    shown = ranked[:top]
    rest = ranked[top:]
    series_names = shown + ([OTHER] if rest else [])
    index = {day: i for i, day in enumerate(axis)}
    series = {name: [Decimal(0)] * len(axis) for name in series_names}
    for day, name, usd, _ in rows:
        series[name if name in shown else OTHER][index[day]] += usd
    daily = [sum((series[name][i] for name in series_names), Decimal(0)) for i in range(len(axis))]
    total = sum(daily, Decimal(0))
    groups = [
        ChartGroup(
            name=name, total_usd=sum(series[name], Decimal(0)), share_pct=pct(sum(series[name], Decimal(0)), total)
        )
        for name in series_names
    ]

    word = _GROUP_WORDS[grouping]
    span = f"{first.isoformat()} – {last.isoformat()} (UTC)"
    partial = [
        label
        for label, cut in (("first", period.start), ("last", period.end))
        if cut != datetime.combine(cut.date(), datetime.min.time())
    ]
    partial_note = (
        f" The {' and '.join(partial)} day{'s are' if len(partial) > 1 else ' is'} partial." if partial else ""
    )
    left_out = (
        f" {_count(unpriced.requests, 'request')} on models without a price ({', '.join(unpriced.models[:5])}) "
        f"{'is' if unpriced.requests == 1 else 'are'} not included."
        if unpriced.requests
        else ""
    )
    if total == 0:
        text = f"No priced spend between {span}; nothing to chart.{left_out}"
        return (
            ChartSummary(
                period=period,
                group_by=grouping,
                days=len(axis),
                total_usd=Decimal(0),
                groups=[],
                top_group=None,
                top_group_usd=None,
                peak_day=None,
                peak_day_usd=None,
                daily=[ChartDay(day=d, total_usd=v) for d, v in zip(axis, daily, strict=True)],
                image=None,
                summary=text,
                unpriced_requests=unpriced.requests,
                unpriced_models=unpriced.models,
                data_sources=data_sources(uses),
            ),
            None,
        )
    peak = max(range(len(axis)), key=lambda i: (daily[i], -i))
    top_name = shown[0]
    text = (
        f"Daily spend by {word}, {span}: {usd_text(total)} in total over {len(axis)} days. "
        f"Top {word}: {top_name} with {usd_text(totals[top_name])} ({pct(totals[top_name], total)} %). "
        f"Peak day: {axis[peak].isoformat()} with {usd_text(daily[peak])}."
        + (
            f" {_count(len(rest), f'smaller {word} group')} {'is' if len(rest) == 1 else 'are'} stacked as '{OTHER}'."
            if rest
            else ""
        )
        + partial_note
        + left_out
    )
    png = render_png(axis, [(name, series[name]) for name in series_names], title=f"Daily LLM spend by {word}, {span}")
    return (
        ChartSummary(
            period=period,
            group_by=grouping,
            days=len(axis),
            total_usd=total,
            groups=groups,
            top_group=top_name,
            top_group_usd=totals[top_name],
            peak_day=axis[peak],
            peak_day_usd=daily[peak],
            daily=[ChartDay(day=d, total_usd=v) for d, v in zip(axis, daily, strict=True)],
            image=ChartImage(width_px=WIDTH_PX, height_px=HEIGHT_PX, bytes=len(png)),
            summary=text,
            unpriced_requests=unpriced.requests,
            unpriced_models=unpriced.models,
            data_sources=data_sources(uses),
        ),
        png,
    )


def render_png(axis: list[date], series: list[tuple[str, list[Decimal]]], *, title: str) -> bytes:
    """A WIDTH_PX × HEIGHT_PX stacked bar chart of daily USD per series."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bottom = [0.0] * len(axis)
    colors = matplotlib.colormaps["tab10"].colors  # type: ignore[attr-defined]
    handles = []
    half = 0.4  # bars are 0.8 days wide
    for i, (name, values) in enumerate(series):
        heights = [float(v) for v in values]
        color = "#b0b0b0" if name == OTHER else colors[i % len(colors)]
        # One collection per series, not a patch per bar: a year of days draws in a fraction of the time.
        bars = [
            [(x - half, b), (x - half, b + h), (x + half, b + h), (x + half, b)]
            for x, (b, h) in enumerate(zip(bottom, heights, strict=True))
            if h > 0
        ]
        ax.add_collection(PolyCollection(bars, facecolors=color, edgecolors="none"))
        handles.append(Patch(facecolor=color, label=name))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_title(title, fontsize=11)
    ax.set_ylabel("USD per day")
    top = max(bottom, default=0.0)
    decimals = 0 if top >= 100 else 2 if top >= 1 else 4
    ax.set_ylim(0, top * 1.08 if top > 0 else 1)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:,.{decimals}f}"))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, integer=True))
    day_format = "%b %d" if not axis or axis[0].year == axis[-1].year else "%Y-%m-%d"
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda v, _: axis[int(v)].strftime(day_format) if 0 <= int(v) < len(axis) else "")
    )
    ax.set_xlim(-0.6, len(axis) - 0.4)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
