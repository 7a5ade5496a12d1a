"""Budgets: set, list and delete them, and see where each stands in its current UTC calendar period.

A budget's period is the UTC calendar month, ISO week (Monday to Sunday) or day containing the
moment of evaluation. Spend is read through `facts` with the budget's scope as the filter. Levels
(50, 80, 100 %) are crossed on the first day whose cumulative spend since the period start reaches
them. The projection is deliberately simple and stated in every result: spent so far plus the
average daily spend of the last 7 days (fewer when the data is younger) times the days left.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from costhawk_mcp.analytics.spend import add_months, normalize_provider_filter
from costhawk_mcp.analytics.window import EARLIEST, parse_instant
from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.money import USD, pct
from costhawk_mcp.store import budgets as budget_store
from costhawk_mcp.store import coverage, spend_queries
from costhawk_mcp.store.budgets import ORG_SCOPE_ID, BudgetRow
from costhawk_mcp.store.db import Connection
from costhawk_mcp.store.facts import FactFilter
from costhawk_mcp.store.store import Store

SCOPES = ("org", "provider", "project", "api_key")
PERIODS = ("month", "week", "day")
LEVELS = (50, 80, 100)
RUN_RATE_DAYS = 7
MAX_AMOUNT = Decimal("1e12")
MIN_AMOUNT = Decimal("0.01")  # one cent: anything smaller is shown, and stored, as a $0.00 budget
PROJECTION_METHOD = (
    "spent so far + run rate × days left, where the run rate is the average daily spend of the last 7 days "
    "before the moment of evaluation (fewer days when the scope's data is younger)"
)


class Budget(BaseModel):
    """A stored budget."""

    budget_id: int
    scope: str = Field(description="org, provider, project or api_key")
    scope_id: str | None = Field(description="the provider, project or API key id (null for org)")
    period: str = Field(description="month, week or day (UTC calendar; weeks start on Monday)")
    amount_usd: USD
    label: str = Field(description="readable, e.g. 'project search: $500.00 per month'")
    created_at: datetime
    updated_at: datetime


class BudgetSet(BaseModel):
    """The budget after set_budget."""

    budget: Budget
    created: bool = Field(description="false when an existing budget for this scope and period was updated")
    previous_amount_usd: USD | None = Field(description="the amount before this update (null when created)")
    notes: list[str]


class BudgetList(BaseModel):
    """Every budget."""

    budgets: list[Budget]


class DeletedBudget(BaseModel):
    """What delete_budget removed."""

    deleted: Budget


class LevelCrossing(BaseModel):
    """One alert level of a budget."""

    level_pct: int
    threshold_usd: USD
    crossed_on: date | None = Field(description="UTC day cumulative spend reached the level; null if not yet")


class BudgetStatus(BaseModel):
    """Where one budget stands in its current period."""

    budget: Budget
    period_start: date
    period_end: date = Field(description="first day after the period (exclusive)")
    days_elapsed: float = Field(description="days of the period before as_of")
    days_left: float = Field(description="days from as_of to the period end")
    spent_usd: USD = Field(description="priced spend from period start to as_of")
    remaining_usd: USD = Field(description="amount − spent (negative when over)")
    used_pct: float | None
    levels: list[LevelCrossing]
    run_rate_usd_per_day: USD = Field(description="average daily spend over the run-rate window")
    run_rate_days: float = Field(description="days the run rate is averaged over")
    projected_usd: USD = Field(description="projected spend at period end")
    projected_pct: float | None
    projection_method: str
    runs_out_on: date | None = Field(
        description="UTC day the budget is used up at the run rate (the day it was used up, if it already is); "
        "null when that is after the period end"
    )
    status: Literal["on_track", "at_risk", "exceeded"] = Field(
        description="exceeded: spent ≥ amount; at_risk: the projection passes the amount; else on_track"
    )
    unpriced_requests: int = Field(description="requests in scope this period whose cost is unknown (not counted)")
    notes: list[str]


class BudgetStatusReport(BaseModel):
    """Every budget's status."""

    as_of: datetime = Field(description="the moment of evaluation, UTC")
    budgets: list[BudgetStatus]
    notes: list[str]


def _budget(row: BudgetRow) -> Budget:
    scope_id = row.scope_id if row.scope != "org" else None
    what = "organisation" if row.scope == "org" else f"{row.scope.replace('_', ' ')} {scope_id}"
    return Budget(
        budget_id=row.budget_id,
        scope=row.scope,
        scope_id=scope_id,
        period=row.period,
        amount_usd=row.amount_usd,
        label=f"{what}: ${row.amount_usd:,.2f} per {row.period}",
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _scope_filter(scope: str, scope_id: str, start: datetime, end: datetime) -> FactFilter:
    if scope == "provider":
        return FactFilter(start=start, end=end, provider=scope_id)
    if scope == "project":
        return FactFilter(start=start, end=end, project=scope_id)
    if scope == "api_key":
        return FactFilter(start=start, end=end, api_key_id=scope_id)
    return FactFilter(start=start, end=end)


def _validate(scope: str, scope_id: str | None, amount_usd: Decimal, period: str) -> tuple[str, str, Decimal, str]:
    scope = scope.strip().lower() if isinstance(scope, str) else scope
    if scope not in SCOPES:
        raise InvalidArgument("scope", f"unknown scope {scope!r}; allowed: {', '.join(SCOPES)}")
    period = period.strip().lower() if isinstance(period, str) else period
    if period not in PERIODS:
        raise InvalidArgument("period", f"unknown period {period!r}; allowed: {', '.join(PERIODS)}")
    try:
        amount = Decimal(str(amount_usd))
    except ArithmeticError:
        raise InvalidArgument("amount_usd", f"expected a number of dollars, got {amount_usd!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidArgument("amount_usd", f"must be more than 0, got {amount_usd}")
    if amount < MIN_AMOUNT:
        raise InvalidArgument("amount_usd", f"must be at least {MIN_AMOUNT} (one cent), got {amount_usd}")
    if amount > MAX_AMOUNT:
        raise InvalidArgument("amount_usd", f"must be at most {MAX_AMOUNT:,.0f}, got {amount_usd}")
    if scope == "org":
        if scope_id not in (None, ""):
            raise InvalidArgument("scope_id", "an org budget covers everything; leave scope_id out")
        return scope, ORG_SCOPE_ID, amount, period
    if scope_id is None or not scope_id.strip():
        raise InvalidArgument("scope_id", f"required for a {scope} budget (the {scope.replace('_', ' ')} id)")
    clean = scope_id.strip()
    if scope == "provider":
        clean = normalize_provider_filter(clean) or clean
    return scope, clean, amount, period


def set_budget(
    store: Store, *, scope: str, scope_id: str | None, amount_usd: Decimal, period: str = "month"
) -> BudgetSet:
    """Create or update the budget of a scope and period."""
    scope, scope_id, amount, period = _validate(scope, scope_id, amount_usd, period)
    with store.writing() as conn:
        before = next(
            (
                b
                for b in budget_store.list_budgets(conn)
                if (b.scope, b.scope_id, b.period) == (scope, scope_id, period)
            ),
            None,
        )
        row, created = budget_store.upsert_budget(conn, scope, scope_id, period, amount)
    notes: list[str] = []
    if scope != "org":
        with store.reading() as conn:
            seen = spend_queries.first_day(conn, _scope_filter(scope, scope_id, EARLIEST, _now()))
        if seen is None:
            notes.append(
                f"no usage recorded yet for {scope.replace('_', ' ')} {scope_id!r}; check the spelling against "
                "spend_summary if you expected some"
            )
    return BudgetSet(
        budget=_budget(row),
        created=created,
        previous_amount_usd=None if before is None else before.amount_usd,
        notes=notes,
    )


def list_budgets(store: Store) -> BudgetList:
    """Every stored budget."""
    with store.reading() as conn:
        rows = budget_store.list_budgets(conn)
    return BudgetList(budgets=[_budget(r) for r in rows])


def delete_budget(store: Store, budget_id: int) -> DeletedBudget:
    """Delete a budget by id; an unknown id is an error naming the field."""
    if isinstance(budget_id, bool) or not isinstance(budget_id, int):
        raise InvalidArgument("budget_id", f"expected a budget id number, got {budget_id!r}")
    with store.writing() as conn:
        removed = budget_store.delete_budget(conn, budget_id)
    if removed is None:
        raise InvalidArgument("budget_id", f"no budget has id {budget_id}; list_budgets shows the ids")
    return DeletedBudget(deleted=_budget(removed))


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def parse_as_of(as_of: str | date | datetime | None, now: datetime | None = None) -> datetime:
    """The moment of evaluation: now, an instant, or the end of a given UTC day."""
    if as_of is None:
        current = now or datetime.now(timezone.utc)
        return current.astimezone(timezone.utc).replace(tzinfo=None) if current.tzinfo else current
    moment = parse_instant(as_of, "as_of")
    day_only = (isinstance(as_of, date) and not isinstance(as_of, datetime)) or (
        isinstance(as_of, str) and "T" not in as_of.upper() and " " not in as_of.strip() and len(as_of.strip()) <= 10
    )
    return moment + timedelta(days=1) if day_only else moment


def period_bounds(period: str, moment: datetime) -> tuple[date, date]:
    """The UTC calendar period containing the instant just before `moment`."""
    anchor = (moment - timedelta(microseconds=1)).date()
    if period == "day":
        return anchor, anchor + timedelta(days=1)
    if period == "week":
        start = anchor - timedelta(days=anchor.weekday())
        return start, start + timedelta(days=7)
    start = anchor.replace(day=1)
    return start, add_months(datetime.combine(start, time()), 1).date()


def budget_status(
    store: Store, *, as_of: str | date | datetime | None = None, now: datetime | None = None
) -> BudgetStatusReport:
    """Every budget's spend, levels crossed, projection and run-out date in its current period."""
    moment = parse_as_of(as_of, now)
    with store.reading() as conn:
        rows = budget_store.list_budgets(conn)
        statuses = [_status(conn, row, moment) for row in rows]
    notes = [] if rows else ["no budgets yet; create one with set_budget"]
    return BudgetStatusReport(as_of=moment, budgets=statuses, notes=notes)


def _status(conn: Connection, row: BudgetRow, moment: datetime) -> BudgetStatus:
    start_day, end_day = period_bounds(row.period, moment)
    start = datetime.combine(start_day, time())
    end = datetime.combine(end_day, time())
    stop = min(moment, end)
    in_period = _scope_filter(row.scope, row.scope_id, start, stop)
    daily = spend_queries.daily_spend(conn, in_period, "total")
    spent = sum((v for _, _, v in daily), Decimal(0))
    amount = row.amount_usd

    levels: list[LevelCrossing] = []
    for level in LEVELS:
        threshold = amount * level / 100
        running = Decimal(0)
        crossed: date | None = None
        for day, _, value in daily:
            running += value
            if running >= threshold:
                crossed = day
                break
        levels.append(LevelCrossing(level_pct=level, threshold_usd=threshold, crossed_on=crossed))

    notes: list[str] = []
    first = spend_queries.first_day(conn, _scope_filter(row.scope, row.scope_id, EARLIEST, moment))
    window_start = moment - timedelta(days=RUN_RATE_DAYS)
    rate_days = Decimal(RUN_RATE_DAYS)
    if first is not None and datetime.combine(first, time()) > window_start:
        window_start = datetime.combine(first, time())
        rate_days = Decimal(str((moment - window_start).total_seconds())) / 86400
        notes.append(f"the scope's data starts on {first.isoformat()}: the run rate averages {rate_days:.2f} days")
    recent = spend_queries.total_spend(conn, _scope_filter(row.scope, row.scope_id, window_start, moment))
    rate = recent / rate_days if rate_days > 0 else Decimal(0)
    days_left = Decimal(str(max(0.0, (end - moment).total_seconds()))) / 86400
    elapsed = Decimal(str(max(0.0, (stop - start).total_seconds()))) / 86400
    projected = spent + rate * days_left
    if spent >= amount:
        runs_out = levels[-1].crossed_on
    elif rate > 0 and (amount - spent) / rate < days_left:  # compared first: a tiny rate would overflow a date
        runs_out = (moment + timedelta(days=float((amount - spent) / rate))).date()
    else:
        runs_out = None
    if first is None:
        notes.append("no usage recorded for this scope yet")
    unpriced = coverage.unpriced(conn, in_period)
    if unpriced.requests:
        notes.append(
            f"{unpriced.requests} requests of unpriced models ({', '.join(unpriced.models)}) are not in spent_usd"
        )
    status: Literal["on_track", "at_risk", "exceeded"] = (
        "exceeded" if spent >= amount else "at_risk" if projected > amount else "on_track"
    )
    return BudgetStatus(
        budget=_budget(row),
        period_start=start_day,
        period_end=end_day,
        days_elapsed=round(float(elapsed), 4),
        days_left=round(float(days_left), 4),
        spent_usd=spent,
        remaining_usd=amount - spent,
        used_pct=pct(spent, amount),
        levels=levels,
        run_rate_usd_per_day=rate.quantize(Decimal("1e-9")),
        run_rate_days=round(float(rate_days), 4),
        projected_usd=projected.quantize(Decimal("1e-9")),
        projected_pct=pct(projected, amount),
        projection_method=PROJECTION_METHOD,
        runs_out_on=runs_out,
        status=status,
        unpriced_requests=unpriced.requests,
        notes=notes,
    )
