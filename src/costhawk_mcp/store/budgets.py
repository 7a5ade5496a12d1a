"""Budgets: spending limits per scope (organisation, provider, project, API key) and calendar period.

A budget is one row of `budgets` (migration 2), unique on (scope, scope_id, period); setting the
same scope and period again updates the amount in place and keeps the id. The organisation scope
stores scope_id '' so that the unique key holds for it too. Writes run inside the caller's
`Store.writing()` transaction; reads take a connection from `Store.reading()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from costhawk_mcp.store.db import Connection, utcnow

ORG_SCOPE_ID = ""


@dataclass(frozen=True)
class BudgetRow:
    """One stored budget."""

    budget_id: int
    scope: str
    scope_id: str
    period: str
    amount_usd: Decimal
    created_at: datetime
    updated_at: datetime


_COLUMNS = "budget_id, scope, scope_id, period, amount_usd, created_at, updated_at"


def _row(r: tuple[object, ...]) -> BudgetRow:
    return BudgetRow(
        budget_id=int(r[0]),  # type: ignore[call-overload]
        scope=str(r[1]),
        scope_id=str(r[2]),
        period=str(r[3]),
        amount_usd=Decimal(str(r[4])),
        created_at=r[5],  # type: ignore[arg-type]
        updated_at=r[6],  # type: ignore[arg-type]
    )


def upsert_budget(
    conn: Connection, scope: str, scope_id: str, period: str, amount_usd: Decimal
) -> tuple[BudgetRow, bool]:
    """Create the budget, or update the amount of the one with the same scope and period.

    Returns the stored row and whether it was created (False: an existing budget was updated).
    """
    now = utcnow()
    existing = conn.execute(
        "SELECT budget_id FROM budgets WHERE scope = ? AND scope_id = ? AND period = ?", [scope, scope_id, period]
    ).fetchone()
    if existing is not None:
        budget_id = int(existing[0])
        conn.execute(
            "UPDATE budgets SET amount_usd = ?, updated_at = ? WHERE budget_id = ?", [amount_usd, now, budget_id]
        )
        created = False
    else:
        budget_id = int(conn.execute("SELECT nextval('budget_ids')").fetchone()[0])
        conn.execute(
            f"INSERT INTO budgets ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [budget_id, scope, scope_id, period, amount_usd, now, now],
        )
        created = True
    found = get_budget(conn, budget_id)
    assert found is not None
    return found, created


def get_budget(conn: Connection, budget_id: int) -> BudgetRow | None:
    """One budget by id, or None."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM budgets WHERE budget_id = ?", [budget_id]).fetchone()
    return _row(row) if row is not None else None


def list_budgets(conn: Connection) -> list[BudgetRow]:
    """Every budget, organisation first, then by scope, scope id and period length."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM budgets ORDER BY CASE scope WHEN 'org' THEN 0 WHEN 'provider' THEN 1 "
        "WHEN 'project' THEN 2 ELSE 3 END, scope_id, CASE period WHEN 'month' THEN 0 WHEN 'week' THEN 1 ELSE 2 END"
    ).fetchall()
    return [_row(r) for r in rows]


def delete_budget(conn: Connection, budget_id: int) -> BudgetRow | None:
    """Remove a budget; returns what was removed, or None when no budget has that id."""
    found = get_budget(conn, budget_id)
    if found is not None:
        conn.execute("DELETE FROM budgets WHERE budget_id = ?", [budget_id])
    return found
