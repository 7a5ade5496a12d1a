"""The scripted part of `costhawk-mcp demo`: a real MCP client talking to `costhawk-mcp serve` over stdio.

Each step calls one tool the way an assistant would and prints the call and a readable summary of
the structured answer. Nothing here computes a figure: every number printed comes from the server.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

Render = Callable[[dict[str, Any]], list[str]]


@dataclass(frozen=True)
class Step:
    """One tool call of the demo."""

    title: str
    tool: str
    arguments: dict[str, Any]
    render: Render


def usd(value: Any) -> str:
    """Dollars for people: cents above $1, more digits below."""
    if value is None:
        return "n/a"
    amount = float(value)
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    return f"${amount:.6f}".rstrip("0").rstrip(".") if amount else "$0"


def pct(value: Any) -> str:
    """A percentage with its sign, or n/a."""
    return "n/a" if value is None else f"{float(value):+.1f}%"


def _sources(result: dict[str, Any]) -> str:
    used = result.get("data_sources") or []
    parts = sorted({f"{s['source']} ({s['provider']})" for s in used})
    return "data: " + (", ".join(parts) if parts else "none")


def _unpriced(result: dict[str, Any]) -> list[str]:
    count = result.get("unpriced_requests") or 0
    if not count:
        return []
    models = ", ".join(result.get("unpriced_models") or [])
    return [f"  ! {count:,} requests could not be priced (no catalog price: {models}); left out of totals"]


def render_top_keys(r: dict[str, Any]) -> list[str]:
    """Summary of top_expensive_keys."""
    lines = [f"  total spend {usd(r['total_cost_usd'])} in the period; top keys:"]
    for k in r["keys"]:
        lines.append(
            f"  {k.get('key_name') or k['api_key_id']:<22} {k['provider']:<10} {usd(k['cost_usd']):>12}"
            f"  {k.get('share_pct') or 0:5.1f}%  {k['requests']:>8,} req  top model {k.get('top_model')}"
            f"  vs previous period {pct(k.get('change_pct'))}"
        )
    return [*lines, *_unpriced(r), f"  {_sources(r)}"]


def render_cost_per_query(r: dict[str, Any]) -> list[str]:
    """Summary of cost_per_query."""
    lines = [
        f"  {r['queries']:,} queries cost {usd(r['total_cost_usd'])}: mean {usd(r['mean_cost_usd'])}, "
        f"p50 {usd(r['p50_cost_usd'])}, p95 {usd(r['p95_cost_usd'])}, p99 {usd(r['p99_cost_usd'])}; "
        f"{float(r['mean_calls_per_query']):.1f} calls per query on average",
    ]
    for f in r.get("by_feature", [])[:6]:
        lines.append(
            f"  feature {f['feature'] or '(none)':<14} {f['queries']:>8,} queries  mean {usd(f['mean_cost_usd'])}"
            f"  total {usd(f['total_cost_usd'])}"
        )
    top = (r.get("most_expensive") or [])[:3]
    for q in top:
        lines.append(
            f"  costliest query {q['query_id'] or 'request ' + str(q['request_id'])}: {usd(q['cost_usd'])} "
            f"over {q['calls']} calls "
            f"({', '.join(q.get('models') or [])})"
        )
    return [*lines, *_unpriced(r), f"  {_sources(r)}"]


def render_swap(r: dict[str, Any]) -> list[str]:
    """Summary of model_swap_savings."""
    lines = [
        f"  {r['requests']:,} requests on {r['from_model']} cost {usd(r['current_cost_usd'])}; "
        f"on {r['to_model']} they would cost {usd(r['projected_cost_usd'])}",
        f"  savings {usd(r['savings_usd'])} ({float(r['savings_pct'] or 0):.1f}%), "
        f"about {usd(r['projected_monthly_savings_usd'])} a month",
    ]
    lines.extend(f"  caveat: {c}" for c in (r.get("caveats") or [])[:4])
    return lines


def render_estimate(r: dict[str, Any]) -> list[str]:
    """Summary of estimate_prompt."""
    lines = [
        f"  {r['model']}: {r['input_tokens']:,} input tokens ({r['token_count_method']}), "
        f"{r['output_tokens']:,} output → {usd(r['total_cost_usd'])}"
    ]
    for c in r.get("comparisons", []):
        band = ""
        if c["token_count_method"] == "approximate":
            band = f" (range {usd(c['total_cost_low_usd'])}–{usd(c['total_cost_high_usd'])})"
        lines.append(
            f"  {c['model']:<24} {c['input_tokens']:>6,} tokens ({c['token_count_method']}) {usd(c['total_cost_usd'])}{band}"
        )
    lines.append(f"  cheapest: {r['cheapest_model']}")
    return lines


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):,.0f} ms"


def render_spend_summary(r: dict[str, Any]) -> list[str]:
    """Summary of spend_summary grouped by week."""
    t = r["totals"]
    lines = [
        f"  {usd(t['spend_usd'])} over the period ({t['requests']:,} requests), "
        f"{pct(t.get('change_pct'))} against the previous period of equal length"
    ]
    lines.extend(
        f"  {row['label']:<36} {usd(row['spend_usd']) if row['unpriced_requests'] < row['requests'] else 'unpriced':>12}"
        f"  {row['requests']:>8,} req"
        f"  median latency {_ms(row.get('latency_p50_ms'))}  {pct(row.get('change_pct'))} vs previous period"
        for row in r["rows"][:8]
    )
    return [*lines, *_unpriced(r), f"  {_sources(r)}"]


def render_anomalies(r: dict[str, Any]) -> list[str]:
    """Summary of detect_anomalies."""
    found = r["anomalies"]
    lines = [f"  {len(found)} finding(s) in {r['series_scanned']} series (sensitivity {r['sensitivity'].get('level')})"]
    for a in found[:4]:
        when = a["date"] if a["date"] == a["last_date"] else f"{a['date']}…{a['last_date']}"
        lines.append(
            f"  {a['kind']:<13} {when}  {a['dimension_label']}: {usd(a['observed_usd'])} vs {usd(a['expected_usd'])} "
            f"expected (impact {usd(a['impact_usd'])})"
        )
        lines.append(f"    why: {a['explanation']['summary']}")
    return lines


def render_savings(r: dict[str, Any]) -> list[str]:
    """Summary of savings_opportunities."""
    lines = [
        f"  up to {usd(r['total_savings_usd_per_month'])}/month "
        f"(conservative {usd(r['conservative_total_savings_usd_per_month'])}/month) on "
        f"{usd(r['window_spend_usd'])} of spend"
    ]
    for o in r["opportunities"][:5]:
        lines.append(f"  {usd(o['savings_usd_per_month']):>12}/mo  [{o['confidence']['level']}] {o['title']}")
    return lines


def render_budget_set(r: dict[str, Any]) -> list[str]:
    """Summary of set_budget."""
    b = r["budget"]
    return [f"  budget #{b['budget_id']} saved: {b['label']}"]


def render_budget_status(r: dict[str, Any]) -> list[str]:
    """Summary of budget_status."""
    lines = []
    for s in r["budgets"]:
        crossed = [f"{lvl['level_pct']}% on {lvl['crossed_on']}" for lvl in s["levels"] if lvl["crossed_on"]]
        lines.append(
            f"  {s['budget']['label']}: spent {usd(s['spent_usd'])} of "
            f"{usd(s['budget']['amount_usd'])} ({s['used_pct']}%), projected {usd(s['projected_usd'])} by "
            f"{s['period_end']} → {s['status']}; runs out {s['runs_out_on'] or 'not this period'}"
        )
        if crossed:
            lines.append(f"    levels crossed: {', '.join(crossed)}")
    return lines


def render_forecast(r: dict[str, Any]) -> list[str]:
    """Summary of forecast_spend."""
    t = r["total"]
    lines = [
        f"  next {r['horizon_days']} days: {usd(t['expected_usd'])} expected "
        f"(80% range {usd(t['low_usd'])}–{usd(t['high_usd'])}); last 7 days cost {usd(r['last_7_days_spend_usd'])}",
        f"  method: {_shorten(r['method'], 150)}",
    ]
    lines.extend(
        f"  {g['group']:<20} {usd(g['total']['expected_usd'])} ({usd(g['total']['low_usd'])}–{usd(g['total']['high_usd'])})"
        for g in r.get("groups", [])[:5]
    )
    return lines


def render_json(r: dict[str, Any]) -> list[str]:
    """Fallback: the first lines of the JSON answer."""
    text = json.dumps(r, indent=2, default=str).splitlines()
    return ["  " + line for line in text[:25]] + (["  …"] if len(text) > 25 else [])


SAMPLE_PROMPT = (
    "You are a support assistant for Acme. Using the order history below, explain to the customer why "
    "their refund was delayed and what happens next.\n\nOrder 1182: shipped 2026-11-02, returned 2026-11-12, "
    "refund pending review.\n"
)

STEPS: tuple[Step, ...] = (
    Step(
        "Which API keys cost the most in the last 30 days?",
        "top_expensive_keys",
        {"days": 30, "limit": 7},
        render_top_keys,
    ),
    Step(
        "What does one user query cost end to end?", "cost_per_query", {"days": 30, "limit": 3}, render_cost_per_query
    ),
    Step(
        "What would moving prod chat from gpt-4o to gpt-4o-mini save?",
        "model_swap_savings",
        {"from_model": "gpt-4o", "to_model": "gpt-4o-mini", "days": 30},
        render_swap,
    ),
    Step(
        "And moving the support agent from Claude Sonnet to Haiku?",
        "model_swap_savings",
        {"from_model": "claude-sonnet-4-5", "to_model": "claude-haiku-4-5", "days": 30},
        render_swap,
    ),
    Step(
        "Where did the money go this month, by provider and model?",
        "spend_summary",
        {"group_by": ["provider", "model"], "days": 30, "limit": 8},
        render_spend_summary,
    ),
    Step(
        "Did anything unusual happen? (and why)",
        "detect_anomalies",
        {"days": 30, "dimension": "api_key"},
        render_anomalies,
    ),
    Step("Where are we leaving money on the table?", "savings_opportunities", {"days": 30}, render_savings),
    Step(
        "Set a monthly budget for the whole organisation",
        "set_budget",
        {"scope": "org", "amount_usd": 4000, "period": "month"},
        render_budget_set,
    ),
    Step("Are we on budget?", "budget_status", {}, render_budget_status),
    Step(
        "What will the next 30 days cost?",
        "forecast_spend",
        {"horizon_days": 30, "group_by": "provider"},
        render_forecast,
    ),
    Step(
        "What will this prompt cost before I send it?",
        "estimate_prompt",
        {
            "model": "gpt-4o",
            "text": SAMPLE_PROMPT,
            "expected_output_tokens": 300,
            "compare_models": ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"],
        },
        render_estimate,
    ),
)


async def run_session(db_path: str, out: TextIO = sys.stdout, steps: tuple[Step, ...] = STEPS) -> int:
    """Start `costhawk-mcp serve` over stdio on the demo database and walk through the steps."""
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "costhawk_mcp", "serve", "--db", db_path])
    failures = 0
    async with Client(params) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        print(f"connected to costhawk over stdio: {len(tools)} tools", file=out)
        for step in steps:
            if step.tool not in tools:
                continue
            print(f"\n▸ {step.title}\n  {step.tool}({json.dumps(step.arguments)[:160]})", file=out)
            result = await client.call_tool(step.tool, step.arguments)
            if result.is_error or result.structured_content is None:
                failures += 1
                text = result.content[0].text if result.content and hasattr(result.content[0], "text") else "?"
                print(f"  error: {text}", file=out)
                continue
            for line in step.render(result.structured_content):
                print(line, file=out)
    return failures


def _shorten(text: str, width: int) -> str:
    """The first clause(s) of a long explanation, cut at a word, with an ellipsis when cut."""
    return textwrap.shorten(text, width, placeholder=" …")
