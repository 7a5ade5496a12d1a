"""Bulk pricing in SQL, with the rules of `pricing.cost`.

`pricing.cost.resolve_rates` decides every rate; `refresh_rates` writes its answers for every
model, period, tier and context band into the `rates` table (per token), and the SQL below only
does the dot product of `pricing.cost.cost`. A test checks that both give the same cents on
random rows.
"""

from __future__ import annotations

from datetime import date, datetime

from costhawk_mcp.pricing.catalog import PROVIDER_ALIASES, Catalog
from costhawk_mcp.pricing.cost import MILLION, rate_rows
from costhawk_mcp.store.bulk import bulk_insert
from costhawk_mcp.store.db import Connection

_BEGIN = datetime(1970, 1, 1)
_END = datetime(9999, 12, 31)


def _bound(day: date | None, default: datetime) -> datetime:
    return default if day is None else datetime(day.year, day.month, day.day)


_RATE_TYPES = ("VARCHAR", "TIMESTAMP", "TIMESTAMP", "VARCHAR", "BOOLEAN", "BIGINT") + ("DECIMAL(38, 18)",) * 5


def refresh_rates(conn: Connection, catalog: Catalog) -> None:
    """Rewrite the `rates` table from the catalog."""
    conn.execute("DELETE FROM rates")
    rows = [
        (
            row.model,
            _bound(row.effective_from, _BEGIN),
            _bound(row.effective_to, _END),
            row.tier,
            row.long_context,
            row.threshold_tokens,
            row.rates.input / MILLION,
            row.rates.cached_input / MILLION,
            row.rates.cache_write / MILLION,
            row.rates.cache_write_1h / MILLION,
            row.rates.output / MILLION,
        )
        for row in rate_rows(catalog.models)
    ]
    bulk_insert(conn, "rates", _RATE_TYPES, rows)


def resolve_models(conn: Connection, catalog: Catalog, raw_models: list[str]) -> None:
    """Add model names not yet in `model_map`, resolved through the catalog (NULL when unknown)."""
    known = {r[0] for r in conn.execute("SELECT raw_model FROM model_map").fetchall()}
    rows = []
    for raw in raw_models:
        if raw in known:
            continue
        entry = catalog.find(raw)
        rows.append((raw, entry.model if entry else None, entry.provider if entry else None))
    bulk_insert(conn, "model_map", ("VARCHAR", "VARCHAR", "VARCHAR"), rows)


def remap_models(conn: Connection, catalog: Catalog) -> None:
    """Resolve every known model name again (after the catalog changed)."""
    raws = [r[0] for r in conn.execute("SELECT raw_model FROM model_map").fetchall()]
    conn.execute("DELETE FROM model_map")
    resolve_models(conn, catalog, raws)


# The tier of a row, as pricing.cost.service_tier decides it.
TIER_SQL = (
    "CASE WHEN {batch} THEN 'batch' "
    "WHEN lower({service_tier}) IN ('priority', 'flex') THEN lower({service_tier}) ELSE 'standard' END"
)


def tier_sql(batch: str, service_tier: str) -> str:
    """SQL for a row's pricing tier from its batch flag and reported service tier columns."""
    return TIER_SQL.format(batch=batch, service_tier=service_tier)


def provider_sql(column: str) -> str:
    """SQL normalising a provider name the way `catalog.normalize_provider` does (unknown: lower-cased)."""
    cases = " ".join(f"WHEN '{alias}' THEN '{name}'" for alias, name in sorted(PROVIDER_ALIASES.items()))
    return f"CASE lower(trim({column})) {cases} ELSE nullif(lower(trim({column})), '') END"


def cost_sql(row: str, rate: str) -> str:
    """SQL for a row's cost: the dot product of its token counts with the joined per-token rates."""
    return (
        f"CAST(({row}.input_tokens - {row}.cached_input_tokens - {row}.cache_write_tokens"
        f" - {row}.cache_write_1h_tokens) * {rate}.r_input"
        f" + {row}.cached_input_tokens * {rate}.r_cached"
        f" + {row}.cache_write_tokens * {rate}.r_cache_write"
        f" + {row}.cache_write_1h_tokens * {rate}.r_cache_write_1h"
        f" + {row}.output_tokens * {rate}.r_output AS DECIMAL(38, 15))"
    )


# The same dot product in whole femto-dollars (1e-15 USD) on BIGINTs, about 20 times cheaper than
# DECIMAL(38, 18) arithmetic on 128-bit integers. Exact, and equal to `cost_sql` to the last
# digit, whenever every rate is a whole number of femto-dollars per token and no product or sum
# can pass 2^63 (`integer_pricing_exact` tells); the bulk import uses it then.
FEMTO = 10**15
INTEGER_RATES = (
    "(SELECT model, valid_from, valid_to, tier, long_context, threshold_tokens, "
    + ", ".join(
        f"CAST(r_{name} * {FEMTO} AS BIGINT) AS u_{name}"
        for name in ("input", "cached", "cache_write", "cache_write_1h", "output")
    )
    + " FROM rates)"
)


def integer_pricing_exact(conn: Connection, max_tokens: int | None) -> bool:
    """Whether `integer_cost_sql` prices rows exactly whose token columns (input, the three cache
    parts, output) sum to at most `max_tokens`: each term of the dot product, and their sum, is
    then at most that sum times the highest rate."""
    rates = ("r_input", "r_cached", "r_cache_write", "r_cache_write_1h", "r_output")
    whole = " AND ".join(f"{r} = round({r}, 15)" for r in rates)
    exact, top = conn.execute(
        f"SELECT coalesce(bool_and({whole}), true), max(greatest({', '.join(rates)})) FROM rates"
    ).fetchone()
    if not exact:
        return False
    return top is None or (max_tokens or 0) * int(top * FEMTO) < 2**63


def integer_cost_sql(row: str, rate: str) -> str:
    """`cost_sql` over `INTEGER_RATES` (femto-dollar BIGINTs); see `integer_pricing_exact`."""
    femtos = (
        f"({row}.input_tokens - {row}.cached_input_tokens - {row}.cache_write_tokens"
        f" - {row}.cache_write_1h_tokens) * {rate}.u_input"
        f" + {row}.cached_input_tokens * {rate}.u_cached"
        f" + {row}.cache_write_tokens * {rate}.u_cache_write"
        f" + {row}.cache_write_1h_tokens * {rate}.u_cache_write_1h"
        f" + {row}.output_tokens * {rate}.u_output"
    )
    return f"CAST(({femtos}) AS DECIMAL(38, 0)) * CAST(0.000000000000001 AS DECIMAL(38, 15))"


def rate_join_sql(row: str, rate: str, *, long_context: str | None = None) -> str:
    """The join condition picking a row's rates: model, time, tier, and the long-context band.

    Request rows decide the band from their own input size; provider buckets pass the band the
    provider reported (`long_context`).
    """
    band = long_context or (f"({rate}.threshold_tokens IS NOT NULL AND {row}.input_tokens > {rate}.threshold_tokens)")
    return (
        f"{rate}.model = {row}.model_id AND {row}.ts >= {rate}.valid_from AND {row}.ts < {rate}.valid_to"
        f" AND {rate}.tier = {row}.tier AND {rate}.long_context = {band}"
    )


def reprice_all(conn: Connection) -> None:
    """Recompute model ids and costs of every stored row (after the catalog changed)."""
    for table, ts, band in (("requests", "ts", None), ("usage_buckets", "bucket_start", "q.long_context")):
        conn.execute(f"UPDATE {table} AS q SET model_id = m.model_id FROM model_map AS m WHERE m.raw_model = q.model")
        conn.execute(f"UPDATE {table} SET cost_usd = NULL")
        join = rate_join_sql("q", "p", long_context=band).replace("q.ts", f"q.{ts}")
        conn.execute(f"UPDATE {table} AS q SET cost_usd = {cost_sql('q', 'p')} FROM rates AS p WHERE {join}")
