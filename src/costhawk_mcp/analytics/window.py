"""Time windows shared by every usage tool: `start`/`end` (UTC, end exclusive) or `days`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from pydantic import BaseModel, Field

from costhawk_mcp.errors import InvalidArgument

DEFAULT_DAYS = 30
MAX_DAYS = 3660
EARLIEST = datetime(2000, 1, 1)
LATEST = datetime(2200, 1, 1)


class Period(BaseModel):
    """The window a result covers: [start, end) in UTC."""

    start: datetime = Field(description="inclusive, UTC")
    end: datetime = Field(description="exclusive, UTC")
    days: float = Field(description="length in days")

    @property
    def length(self) -> timedelta:
        """The window's length."""
        return self.end - self.start

    def previous(self) -> Period:
        """The window of equal length just before this one (for change figures)."""
        return make_period(self.start - self.length, self.start)


def make_period(start: datetime, end: datetime) -> Period:
    """A Period from naive-UTC bounds."""
    return Period(start=start, end=end, days=round((end - start).total_seconds() / 86400, 4))


def parse_instant(value: str | date | datetime, field: str) -> datetime:
    """An ISO date or datetime as naive UTC; a date means its midnight UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    else:
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise InvalidArgument(
                field,
                f"expected an ISO date or datetime such as 2026-11-01 or 2026-11-01T12:00:00Z, got {value!r}",
            ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    if not EARLIEST <= parsed <= LATEST:
        raise InvalidArgument(field, f"{value!r} is outside the supported range {EARLIEST.date()} to {LATEST.date()}")
    return parsed


def resolve_window(
    start: str | date | datetime | None,
    end: str | date | datetime | None,
    days: float | None,
    *,
    now: datetime | None = None,
    default_days: float = DEFAULT_DAYS,
) -> Period:
    """The window a tool call asks for.

    `start` and `end` win; `days` counts back from `end` (default: now); with only `start`, the
    window runs `days` forward from it, but never past now.
    """
    now = now or datetime.now(timezone.utc)
    current = now.astimezone(timezone.utc).replace(tzinfo=None) if now.tzinfo else now
    if days is not None and (isinstance(days, bool) or not (0 < days <= MAX_DAYS)):
        raise InvalidArgument("days", f"must be more than 0 and at most {MAX_DAYS}, got {days!r}")
    stop = parse_instant(end, "end") if end is not None else None
    begin = parse_instant(start, "start") if start is not None else None
    if begin is not None and stop is not None:
        if days is not None:
            raise InvalidArgument("days", "give either start and end, or days, not all three")
    elif begin is not None:
        stop = begin + timedelta(days=days) if days is not None else max(current, begin + timedelta(seconds=1))
    else:
        stop = stop or current
        begin = stop - timedelta(days=days if days is not None else default_days)
    if stop <= begin:
        raise InvalidArgument("end", f"must be after start ({begin.isoformat()}), got {stop.isoformat()}")
    return make_period(begin, stop)
