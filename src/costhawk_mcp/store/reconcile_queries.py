"""Queries behind reconciliation: synced usage priced by the catalog next to what providers billed.

Both sides are summed per provider, UTC day and *group*: the OpenAI project or the Anthropic
workspace (NULL: no project / the default workspace), the finest attribution both a provider's
usage and its cost report carry. Usage rows are chosen like `facts.py` does (daily buckets win over
hourly ones of the same endpoint and day; rows without tokens or requests are not token spend).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from costhawk_mcp.store.db import Connection

# Line items of OpenAI's Costs API that bill tokens ("gpt-4o-2024-08-06, cached input"); anything
# else (images, audio, tool calls, storage) is a non-token charge. Free text, so only a hint.
_OPENAI_TOKEN_LINE = (
    r", (batch |priority |flex |scale )?((cached )?(audio |image |text )?(input|output)|cache(d)? write.*)$"
)

_GROUP = "CASE WHEN {t}.provider = 'anthropic' THEN {t}.workspace_id ELSE {t}.project_id END"

_NON_TOKEN = (
    "((c.provider = 'anthropic' AND c.cost_type IS NOT NULL AND c.cost_type <> 'tokens') OR "
    "(c.provider <> 'anthropic' AND c.line_item IS NOT NULL AND NOT regexp_matches(c.line_item, ?)))"
)


@dataclass(frozen=True)
class UsageSide:
    """Synced usage of one provider, day and group, priced with the catalog."""

    provider: str
    day: date
    group: str | None
    computed_usd: Decimal
    unpriced_tokens: int
    unknown_models: list[str]
    unrated_models: list[str]
    priority_usd: Decimal
    modality_usd: Decimal


@dataclass(frozen=True)
class TierUse:
    """Priced usage in a non-standard tier, to check the catalog really sells that tier."""

    provider: str
    day: date
    group: str | None
    model_id: str
    tier: str
    cost_usd: Decimal


@dataclass(frozen=True)
class CostSide:
    """What a provider billed for one day and group; `non_token` by kind (cost type or line item)."""

    provider: str
    day: date
    group: str | None
    reported_usd: Decimal
    non_token: dict[str, Decimal]


def _chosen(provider: str | None) -> tuple[str, list[object]]:
    sql = """
    WITH chosen AS (
        SELECT b.* FROM usage_buckets AS b
        WHERE b.bucket_start >= ? AND b.bucket_start < ? AND (? IS NULL OR b.provider = ?)
          AND (b.input_tokens > 0 OR b.output_tokens > 0 OR coalesce(b.requests, 0) > 0)
        QUALIFY b.bucket_width = CASE WHEN bool_or(b.bucket_width = '1d')
            OVER (PARTITION BY b.provider, b.endpoint, CAST(b.bucket_start AS DATE)) THEN '1d' ELSE b.bucket_width END
    )"""
    return sql, [provider, provider]


def usage_side(conn: Connection, start: datetime, end: datetime, provider: str | None) -> list[UsageSide]:
    """Computed cost and its caveats per provider, day and group."""
    chosen, params = _chosen(provider)
    group = _GROUP.format(t="c")
    rows = conn.execute(
        f"""{chosen}
        SELECT c.provider, CAST(c.bucket_start AS DATE) AS day, {group} AS grp,
               coalesce(sum(c.cost_usd), 0),
               coalesce(sum(c.input_tokens + c.output_tokens) FILTER (WHERE c.cost_usd IS NULL), 0),
               list(DISTINCT c.model ORDER BY c.model) FILTER (WHERE c.cost_usd IS NULL AND c.model_id IS NULL),
               list(DISTINCT c.model ORDER BY c.model) FILTER (WHERE c.cost_usd IS NULL AND c.model_id IS NOT NULL),
               coalesce(sum(c.cost_usd) FILTER (WHERE c.provider = 'anthropic' AND c.tier = 'priority'), 0),
               coalesce(sum(c.cost_usd) FILTER (WHERE c.provider = 'openai' AND c.extra IS NOT NULL), 0)
        FROM chosen AS c
        GROUP BY ALL ORDER BY 1, 2, 3 NULLS FIRST
        """,
        [start, end, *params],
    ).fetchall()
    return [UsageSide(r[0], r[1], r[2], r[3], int(r[4]), list(r[5] or []), list(r[6] or []), r[7], r[8]) for r in rows]


def tier_use(conn: Connection, start: datetime, end: datetime, provider: str | None) -> list[TierUse]:
    """Priced usage per provider, day, group, model and non-standard tier."""
    chosen, params = _chosen(provider)
    group = _GROUP.format(t="c")
    rows = conn.execute(
        f"""{chosen}
        SELECT c.provider, CAST(c.bucket_start AS DATE), {group}, c.model_id, c.tier, sum(c.cost_usd)
        FROM chosen AS c
        WHERE c.tier <> 'standard' AND c.model_id IS NOT NULL AND c.cost_usd IS NOT NULL
        GROUP BY ALL ORDER BY ALL
        """,
        [start, end, *params],
    ).fetchall()
    return [TierUse(*r) for r in rows]


def cost_side(conn: Connection, start: datetime, end: datetime, provider: str | None) -> list[CostSide]:
    """Billed cost per provider, day and group, with the non-token charges by kind."""
    group = _GROUP.format(t="c")
    rows = conn.execute(
        f"""
        SELECT c.provider, CAST(c.bucket_start AS DATE), {group},
               CASE WHEN {_NON_TOKEN} THEN coalesce(c.cost_type, c.line_item) END AS kind,
               sum(c.amount_usd)
        FROM provider_costs AS c
        WHERE c.bucket_start >= ? AND c.bucket_start < ? AND (? IS NULL OR c.provider = ?)
        GROUP BY ALL ORDER BY 1, 2, 3 NULLS FIRST, 4 NULLS FIRST
        """,
        [_OPENAI_TOKEN_LINE, start, end, provider, provider],
    ).fetchall()
    sides: dict[tuple[str, date, str | None], CostSide] = {}
    for prov, day, grp, kind, amount in rows:
        side = sides.setdefault((prov, day, grp), CostSide(prov, day, grp, Decimal(0), {}))
        side = CostSide(prov, day, grp, side.reported_usd + amount, side.non_token)
        if kind is not None:
            side.non_token[kind] = side.non_token.get(kind, Decimal(0)) + amount
        sides[(prov, day, grp)] = side
    return list(sides.values())


def group_names(conn: Connection) -> dict[tuple[str, str], str]:
    """Project and workspace names by (provider, id)."""
    rows = conn.execute("SELECT provider, project_id, name FROM projects WHERE name IS NOT NULL").fetchall()
    return {(r[0], r[1]): r[2] for r in rows}
