"""MCP prompts: ready-made cost reviews an assistant can offer, naming the tools to call and how to report.

Each prompt renders one user message that walks the assistant through the costhawk tools in order
and says how to present the answer, with the caveats every figure carries (unpriced requests,
approximations, which data sources answered). Dates are resolved here, in UTC, so the assistant gets
concrete windows; a malformed date is an INVALID_PARAMS protocol error naming the argument.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated

from mcp import MCPError
from mcp.server import MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.types import INVALID_PARAMS
from pydantic import Field

from costhawk_mcp.server.app import App

INSTRUCTIONS = """\
- Prompts weekly_cost_review, investigate_spike (optional date) and reduce_costs are guided reviews \
the user can pick; each lists the tools to call in order and how to present the answer.
"""

CAVEATS = """\
Caveats to state, briefly, wherever they apply:
- Unpriced requests: tools report unpriced_requests and unpriced_models; their cost is unknown, not \
zero, and is missing from every total.
- Approximations: token counts for non-OpenAI models, savings estimates and forecasts are estimates; \
say so and quote the confidence or range the tool gives.
- Data sources: say whether figures come from imported request logs, synced provider usage or both \
(data_sources); feature- and query-level figures exist only for request logs.
- All money is US dollars; all dates and days are UTC."""

PRESENT = """\
Keep it short and scannable: a two-sentence headline with the key dollar figures first, then short \
sections with bullet points, dollars rounded to the cent (to 4 decimals below $1), and a closing \
"Next steps" list of at most three concrete actions. Do not invent figures the tools did not return."""


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _parse_day(value: str | None, name: str) -> date | None:
    """An ISO date argument, or an INVALID_PARAMS error the client can show."""
    if value is None or not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise MCPError(
            code=INVALID_PARAMS, message=f"{name}: expected an ISO date such as 2026-11-20, got {value!r}"
        ) from None
    if day > _today():
        raise MCPError(
            code=INVALID_PARAMS, message=f"{name}: {day.isoformat()} is in the future (today is {_today()} UTC)"
        )
    if day < date(2000, 1, 1):
        raise MCPError(code=INVALID_PARAMS, message=f"{name}: {day.isoformat()} is before 2000-01-01")
    return day


def weekly_cost_review_text(week_ending: date | None) -> str:
    """The weekly review for the 7 UTC days ending on `week_ending` (default: yesterday)."""
    last = week_ending or _today() - timedelta(days=1)
    start, end = last - timedelta(days=6), last + timedelta(days=1)
    prev_start = start - timedelta(days=7)
    chart_start = end - timedelta(days=28)
    w = f'start="{start}", end="{end}"'
    return f"""\
Give me a weekly review of our LLM API spend for the week {start} to {last} (UTC, both days included).

Call these costhawk tools:
1. spend_summary(group_by="day", {w}) for the week's total and daily trend, then \
spend_summary(group_by="model", {w}) and spend_summary(group_by="project", {w}) for the drivers. \
For the change against the week before, compare with spend_summary(group_by="model", start="{prev_start}", \
end="{start}") (or use the change figures the summary returns).
2. spend_chart(start="{chart_start}", end="{end}", group_by="model") and show the image: four weeks of daily \
spend, so this week stands against the ones before.
3. top_expensive_keys({w}) for the API keys that cost most.
4. detect_anomalies(days=7, end="{end}") for unusual days or requests this week; quote each explanation.
5. budget_status() and forecast_spend(horizon_days=30) for where the month is heading.
6. savings_opportunities(days=30, end="{end}") and keep the top three by savings_usd_per_month.

Present it as:
- Headline: the week's spend, the change against the previous week in dollars and percent, and the \
month's forecast against budget.
- Where the money went: top models, projects and keys with dollars and shares; the chart.
- What changed: anomalies with their one-line explanations (or "nothing unusual").
- Budgets: each budget's status; flag any that will run out before period end.
- Opportunities: the top three savings with $/month, confidence and the action; quote \
conservative_total_savings_usd_per_month as the safe total.
{PRESENT}

{CAVEATS}"""


def investigate_spike_text(day: date | None) -> str:
    """The spike investigation for one UTC day, or for the largest recent anomaly when no day is given."""
    if day is None:
        find = """\
1. detect_anomalies(days=14, dimension="total") to find the spike: take the day anomaly with the \
largest impact in dollars (if there is none, say spend had no spike in the last 14 days, show \
spend_chart(days=14) and stop). Call that day D; the steps below use D to D+1 as "the day" and the \
7 days before D as "the baseline"."""
        about = "the largest recent spike in our LLM API spend"
        day_w = 'start="D", end="D+1"'
        base_w = 'start="D-7", end="D"'
        chart_w = 'start="D-13", end="D+1"'
    else:
        find = f"""\
1. detect_anomalies(days=14, end="{day + timedelta(days=1)}", dimension="total") and the same with \
dimension="api_key" and dimension="model", to see whether {day} is flagged and its explanation."""
        about = f"why our LLM API spend spiked on {day} (UTC)"
        day_w = f'start="{day}", end="{day + timedelta(days=1)}"'
        base_w = f'start="{day - timedelta(days=7)}", end="{day}"'
        chart_w = f'start="{day - timedelta(days=13)}", end="{day + timedelta(days=1)}"'
    return f"""\
Investigate {about}.

Call these costhawk tools:
{find}
2. spend_summary(group_by="model", {day_w}) and spend_summary(group_by="model", {base_w}): \
which models grew, in dollars, against the baseline's daily average (divide the baseline by 7).
3. spend_summary(group_by="api_key", {day_w}) and top_expensive_keys({day_w}): which keys and projects \
carried the extra spend; spend_summary(group_by="feature", {day_w}) when request logs have features.
4. cost_per_query({day_w}): the most expensive queries or features that day, and whether a few \
very large requests explain the spike.
5. spend_chart({chart_w}, group_by="api_key") and show the image.

Present it as:
- Headline: the day's spend against the baseline daily average (extra dollars and percent), and the \
one-line cause.
- Breakdown: how much of the extra came from more requests (volume), a model mix shift, bigger prompts \
or outputs, lost cache hits, or price changes, using the anomaly explanation's dollar split.
- Who: the keys, projects, features or queries responsible, with dollars.
- Is it still happening: whether the days after were back to normal (from the chart).
- What to do: a fix or a guard (a budget via set_budget, a key limit, a prompt change).
{PRESENT}

{CAVEATS}"""


def reduce_costs_text() -> str:
    """The cost-reduction plan over the last 30 days."""
    return f"""\
Find the best ways to reduce our LLM API costs, with dollar figures I can act on.

Call these costhawk tools:
1. spend_summary(group_by="model", days=30) and spend_summary(group_by="feature", days=30) for where \
the money goes (features exist only in imported request logs).
2. savings_opportunities(days=30): Batch API moves, prompt caching, right-sizing to cheaper sibling \
models and long-context surcharges, each with $/month, evidence and confidence.
3. For the two or three most expensive models, model_swap_savings(from_model="<model>", \
to_model="<alternative>", days=30) with one or two cheaper alternatives each (the sibling from \
model_siblings, or a cheaper model of another provider the user would consider), to see what the same \
traffic would cost there; read its caveats (token-count ratio, long context).
4. top_expensive_keys(days=30) and cost_per_query(days=30) for expensive keys, queries and features that \
deserve a closer look (very long prompts, runaway loops).
5. forecast_spend(horizon_days=30) for the baseline the savings are measured against.
6. For any prompt change you suggest, estimate_prompt on a representative prompt to show the per-request \
cost before and after.
7. Optionally spend_chart(days=30, group_by="model") to show where the money goes.

Present it as:
- Headline: monthly spend now, and the realistic monthly saving (quote \
conservative_total_savings_usd_per_month; the plain total double-counts overlapping opportunities).
- A ranked plan: for each action, $/month, effort (config change, code change, evaluation needed), \
confidence with its reason, and the evidence in one line (which feature, key or model; requests; tokens).
- Quick wins first (Batch API moves of jobs, caching markers), then changes that need a quality check \
(model right-sizing, model swaps).
- What not to do: opportunities with low confidence, and why.
{PRESENT}

{CAVEATS}"""


def register(mcp: MCPServer, app: App) -> None:
    """Add the review prompts to `mcp` (they read no data themselves; the tools they name do)."""
    del app  # the prompts only render text

    @mcp.prompt(name="weekly_cost_review", title="Weekly cost review")
    def weekly_cost_review(
        week_ending: Annotated[
            str | None,
            Field(description="last UTC day of the week to review, ISO date (default: yesterday)"),
        ] = None,
    ) -> list[UserMessage]:
        """Review a week of LLM spend: totals and change, drivers, chart, anomalies, budgets, forecast and the
        top savings opportunities."""
        return [UserMessage(weekly_cost_review_text(_parse_day(week_ending, "week_ending")))]

    @mcp.prompt(name="investigate_spike", title="Investigate a spend spike")
    def investigate_spike(
        date: Annotated[
            str | None,
            Field(description="the UTC day of the spike, ISO date such as 2026-11-20 (default: find it)"),
        ] = None,
    ) -> list[UserMessage]:
        """Explain a jump in spend: which models, keys, features and queries caused it, and whether it is over."""
        return [UserMessage(investigate_spike_text(_parse_day(date, "date")))]

    @mcp.prompt(name="reduce_costs", title="Reduce LLM costs")
    def reduce_costs() -> list[UserMessage]:
        """A ranked plan to cut LLM spend: savings opportunities, model swaps, expensive keys and queries,
        with $/month, effort and confidence."""
        return [UserMessage(reduce_costs_text())]
