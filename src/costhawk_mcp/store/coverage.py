"""Queries every usage tool shares: which sources answered, and what could not be priced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from costhawk_mcp.store.db import Connection
from costhawk_mcp.store.facts import FactFilter, Sources, facts_cte


@dataclass(frozen=True)
class SourceUse:
    """How much of a window one source answered for one provider."""

    source: str
    provider: str
    days: int
    first_day: date
    last_day: date
    requests: int


@dataclass(frozen=True)
class Unpriced:
    """Requests whose model has no catalog price (their cost is unknown, not zero)."""

    requests: int
    models: list[str]


def source_use(conn: Connection, f: FactFilter, sources: Sources = "auto") -> list[SourceUse]:
    """Per source and provider: days covered and requests, for a result's `data_sources`."""
    cte, params = facts_cte(f, sources)
    rows = conn.execute(
        cte + " SELECT source, provider, count(DISTINCT day), min(day), max(day), sum(requests)"
        " FROM facts GROUP BY source, provider ORDER BY source, provider",
        params,
    ).fetchall()
    return [SourceUse(r[0], r[1], int(r[2]), r[3], r[4], int(r[5] or 0)) for r in rows]


def unpriced(conn: Connection, f: FactFilter, sources: Sources = "auto") -> Unpriced:
    """Requests in the window whose cost is unknown, and their model names."""
    cte, params = facts_cte(f, sources)
    rows = conn.execute(
        cte + " SELECT model, sum(requests) FROM facts WHERE cost_usd IS NULL GROUP BY model ORDER BY 2 DESC, 1",
        params,
    ).fetchall()
    return Unpriced(requests=int(sum(r[1] or 0 for r in rows)), models=[str(r[0]) for r in rows])
