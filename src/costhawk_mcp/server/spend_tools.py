"""MCP handlers for spend analysis: summary, anomalies with explanations, budgets and forecasts."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field, WithJsonSchema

from costhawk_mcp.analytics.anomalies import AnomalyReport, detect_anomalies
from costhawk_mcp.analytics.budgets import (
    BudgetList,
    BudgetSet,
    BudgetStatusReport,
    DeletedBudget,
    budget_status,
    delete_budget,
    list_budgets,
    set_budget,
)
from costhawk_mcp.analytics.forecast import ForecastResult, forecast_spend
from costhawk_mcp.analytics.spend import GROUP_BY, SpendSummary, spend_summary
from costhawk_mcp.server.app import App
from costhawk_mcp.server.guard import guard

INSTRUCTIONS = """\
- spend_summary: spend, requests, tokens (total and per request), latency percentiles, each group's \
share and its change against the previous span, grouped by day/week/month (UTC calendar buckets, ISO \
weeks) and/or provider, model, api_key, project, feature. Start here for "what did we spend on X".
- detect_anomalies: days whose spend left its weekday-aware baseline, single requests that cost far \
more than usual for their model and feature, and traffic drifting between models; each finding comes \
with an exact split of the change into volume, model mix, request size, cache and price in dollars. \
Use it for "why did spend jump on Tuesday?" and quote the explanation's summary.
- set_budget / list_budgets / delete_budget / budget_status: monthly, weekly or daily budgets for the \
organisation, a provider, a project or an API key, stored with the usage data; budget_status says how \
much is spent, which 50/80/100 % levels were crossed on which day, the projected period-end spend and \
when the budget runs out at the current rate. Use it for "are we on budget?".
- forecast_spend: daily and total spend for the next days with a low/expected/high range (80 % \
interval from backtests on the same history), optionally per provider, model, project or API key.
"""

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
DELETES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)

_GROUP_BY_SCHEMA = {
    "anyOf": [
        {"type": "string", "enum": list(GROUP_BY)},
        {"type": "array", "items": {"type": "string", "enum": list(GROUP_BY)}, "minItems": 1, "maxItems": 3},
    ],
    "description": (
        "what each row is: one of day, week, month, provider, model, api_key, project, feature, or a list "
        "of up to three (at most one of day/week/month), e.g. ['day', 'model']"
    ),
}
_SENSITIVITY_SCHEMA = {
    "anyOf": [{"type": "string", "enum": ["low", "medium", "high"]}, {"type": "number", "exclusiveMinimum": 0}],
    "description": (
        "how unusual a day must be: low (robust z ≥ 5), medium (≥ 3.5, default), high (≥ 2.5), or a z "
        "threshold as a number; also sets the single-request and model-drift thresholds"
    ),
}

Start = Annotated[
    str | None,
    Field(description="window start, ISO date or datetime in UTC (inclusive), e.g. 2026-11-01"),
]
End = Annotated[str | None, Field(description="window end, ISO date or datetime in UTC (exclusive); default now")]
Days = Annotated[float | None, Field(description="window length in days, counted back from end (default 30)")]


def register(mcp: MCPServer, app: App) -> None:
    """Add the spend analysis tools to `mcp`."""

    @mcp.tool(name="spend_summary", annotations=READ_ONLY)
    @guard
    def spend_summary_tool(
        group_by: Annotated[str | list[str], WithJsonSchema(_GROUP_BY_SCHEMA)] = "day",
        start: Start = None,
        end: End = None,
        days: Days = None,
        provider: Annotated[str | None, Field(description="only this provider, e.g. openai")] = None,
        project: Annotated[str | None, Field(description="only this project (name, or id when unnamed)")] = None,
        api_key_id: Annotated[str | None, Field(description="only this API key id")] = None,
        model: Annotated[str | None, Field(description="only this model (any alias of a catalog model)")] = None,
        feature: Annotated[str | None, Field(description="only this feature (request logs only)")] = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="most rows returned (the rest are summed)")] = 100,
    ) -> SpendSummary:
        """Spend over a window grouped by time and/or dimension: per group spend, share, requests, tokens
        (input, cached, output; total and per request), cost per request, latency p50/p95/p99 (from request
        logs; null when none carry latency) and the change against the previous span; plus totals against
        the previous period of equal length, unpriced requests and the data sources used."""
        return spend_summary(
            app.store,
            app.catalog,
            group_by=group_by,
            start=start,
            end=end,
            days=days,
            provider=provider,
            project=project,
            api_key_id=api_key_id,
            model=model,
            feature=feature,
            limit=limit,
        )

    @mcp.tool(name="detect_anomalies", annotations=READ_ONLY)
    @guard
    def detect_anomalies_tool(
        days: Annotated[int, Field(ge=1, le=366, description="days to scan, ending at `end` (default 30)")] = 30,
        dimension: Annotated[
            str,
            WithJsonSchema(
                {
                    "type": "string",
                    "enum": ["total", "provider", "model", "api_key", "project"],
                    "description": "which series to watch: total spend, or each provider/model/API key/project",
                }
            ),
        ] = "total",
        sensitivity: Annotated[str | float, WithJsonSchema(_SENSITIVITY_SCHEMA)] = "medium",
        end: End = None,
        limit: Annotated[int, Field(ge=1, le=200, description="most anomalies returned, largest impact first")] = 25,
    ) -> AnomalyReport:
        """Unusual spend, explained: days whose spend left a weekday-aware robust baseline (runs of days are
        merged), single requests far above their model's and feature's typical cost, and model drift
        (traffic share moving between models). Each anomaly has date, dimension value, observed and expected
        spend, a score, and an exact split of the change into volume, model mix, request size, cache and
        price in dollars with a one-line summary. Sorted by impact in dollars."""
        return detect_anomalies(
            app.store, days=days, dimension=dimension, sensitivity=sensitivity, end=end, limit=limit
        )

    @mcp.tool(name="set_budget", annotations=WRITES)
    @guard
    def set_budget_tool(
        scope: Annotated[
            str,
            WithJsonSchema(
                {
                    "type": "string",
                    "enum": ["org", "provider", "project", "api_key"],
                    "description": "what the budget covers: the whole organisation, a provider, a project or a key",
                }
            ),
        ],
        amount_usd: Annotated[Decimal, Field(gt=0, description="the budget in US dollars per period")],
        period: Annotated[
            str,
            WithJsonSchema(
                {
                    "type": "string",
                    "enum": ["month", "week", "day"],
                    "description": "UTC calendar month, ISO week (Monday) or day",
                }
            ),
        ] = "month",
        scope_id: Annotated[
            str | None,
            Field(description="the provider, project or API key id; required unless scope is org"),
        ] = None,
    ) -> BudgetSet:
        """Create a budget, or change the amount of the existing one for the same scope and period. Returns the
        budget with its id."""
        return set_budget(app.store, scope=scope, scope_id=scope_id, amount_usd=amount_usd, period=period)

    @mcp.tool(name="list_budgets", annotations=READ_ONLY)
    @guard
    def list_budgets_tool() -> BudgetList:
        """Every budget: id, scope, scope id, period and amount."""
        return list_budgets(app.store)

    @mcp.tool(name="delete_budget", annotations=DELETES)
    @guard
    def delete_budget_tool(
        budget_id: Annotated[int, Field(description="the budget's id, from list_budgets or set_budget")],
    ) -> DeletedBudget:
        """Delete a budget by id."""
        return delete_budget(app.store, budget_id)

    @mcp.tool(name="budget_status", annotations=READ_ONLY)
    @guard
    def budget_status_tool(
        as_of: Annotated[
            str | None,
            Field(
                description="evaluate as of this UTC instant (a date means the end of that day); default now. "
                "Use a past date to review a past period"
            ),
        ] = None,
    ) -> BudgetStatusReport:
        """For every budget in its current UTC calendar period: spent so far, share used, the 50/80/100 %
        levels crossed and the day each was crossed, projected spend at period end (spent + the last 7 days'
        daily run rate × days left) and the date the budget runs out at that rate."""
        return budget_status(app.store, as_of=as_of)

    @mcp.tool(name="forecast_spend", annotations=READ_ONLY)
    @guard
    def forecast_spend_tool(
        horizon_days: Annotated[int, Field(ge=1, le=365, description="days to forecast, starting today")] = 30,
        group_by: Annotated[
            str | None,
            WithJsonSchema(
                {
                    "type": ["string", "null"],
                    "enum": ["provider", "model", "project", "api_key", None],
                    "description": "also forecast the top groups of this dimension (the rest as one 'other' group)",
                }
            ),
        ] = None,
        history_days: Annotated[
            int, Field(ge=14, le=366, description="days of history the model is fitted on (default 56)")
        ] = 56,
        as_of: Annotated[
            str | None,
            Field(description="forecast as if today were this UTC date (history ends the day before); default today"),
        ] = None,
    ) -> ForecastResult:
        """Projected daily and total spend with a low/expected/high range (an 80 % interval from backtesting
        the method on the same history), the method named, and per-group forecasts for the top groups."""
        return forecast_spend(
            app.store, horizon_days=horizon_days, group_by=group_by, history_days=history_days, as_of=as_of
        )
