"""Queries every usage tool shares: which sources answered, and what could not be priced.

`source_use` and `unpriced` scan `facts` themselves. A tool that already scanned its window into a
small TEMP table (`scratch`) answers both from that table instead (`source_use_in`, `unpriced_in`),
so ten million rows are read once per call and every figure of one result comes from one snapshot.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from costhawk_mcp.store.db import Connection
from costhawk_mcp.store.facts import FactFilter, Sources, facts_cte

_names = itertools.count()


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


# ------------------------------------------------------------------------ over a scratch table
# Columns a scratch table needs for the two functions below, as select-list items over `facts`.
SCRATCH_COVERAGE_KEYS = "source, provider, day, cost_usd IS NULL AS is_unpriced, CASE WHEN cost_usd IS NULL THEN model END AS unpriced_model"


@contextmanager
def scratch(conn: Connection, select_sql: str, params: list[object]) -> Iterator[str]:
    """A TEMP table holding `select_sql`'s rows for the duration of the block (private to `conn`)."""
    name = f"scan_scratch_{next(_names)}"
    conn.execute(f"CREATE TEMP TABLE {name} AS {select_sql}", params)
    try:
        yield name
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def source_use_in(
    conn: Connection, table: str, where: str = "true", params: list[object] | None = None
) -> list[SourceUse]:
    """`source_use` over a scratch table grouped by (at least) SCRATCH_COVERAGE_KEYS, with a `requests` sum.

    `table` and `where` are constant SQL; values in `where` are `?` bound from `params`.
    """
    rows = conn.execute(
        f"SELECT source, provider, count(DISTINCT day), min(day), max(day), sum(requests) FROM {table}"
        f" WHERE {where} GROUP BY source, provider ORDER BY source, provider",
        params or [],
    ).fetchall()
    return [SourceUse(r[0], r[1], int(r[2]), r[3], r[4], int(r[5] or 0)) for r in rows]


def unpriced_in(conn: Connection, table: str, where: str = "true", params: list[object] | None = None) -> Unpriced:
    """`unpriced` over the same kind of scratch table (its `requests` of unpriced rows, by model as reported)."""
    rows = conn.execute(
        f"SELECT unpriced_model, sum(requests) FROM {table} WHERE ({where}) AND is_unpriced"
        " GROUP BY unpriced_model ORDER BY 2 DESC, 1",
        params or [],
    ).fetchall()
    return Unpriced(requests=int(sum(r[1] or 0 for r in rows)), models=[str(r[0]) for r in rows])
