"""Inserting many Python rows quickly: one statement with a bound list per column.

DuckDB's `executemany` runs one statement per row (about 1 ms each); binding each column as a list
and `unnest`-ing them inserts thousands of rows in one statement. Decimals travel as plain strings
and are cast in SQL, so no digit is lost to type inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from costhawk_mcp.store.db import Connection


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def bulk_insert(conn: Connection, table: str, types: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Insert `rows` into `table`; `types` gives each column's SQL type, in table order."""
    if not rows:
        return
    columns = [[_plain(row[i]) for row in rows] for i in range(len(types))]
    select = ", ".join(f"CAST(unnest(?) AS {sql_type})" for sql_type in types)
    conn.execute(f"INSERT INTO {table} SELECT {select}", columns)
