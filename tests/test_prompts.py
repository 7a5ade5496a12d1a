"""The review prompts: listed with their arguments, rendered with concrete UTC dates, bad dates refused."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from mcp import MCPError
from mcp.client import Client
from mcp.types import INVALID_PARAMS

from costhawk_mcp.config import Settings
from costhawk_mcp.server.build import build_server

pytestmark = pytest.mark.anyio

# The tools the prompts may name (issue 5's list, plus set_budget for follow-up actions).
KNOWN_TOOLS = {
    "spend_summary",
    "detect_anomalies",
    "top_expensive_keys",
    "cost_per_query",
    "model_swap_savings",
    "savings_opportunities",
    "budget_status",
    "forecast_spend",
    "spend_chart",
    "estimate_prompt",
    "set_budget",
}


def _text(result: object) -> str:
    messages = result.messages  # type: ignore[attr-defined]
    assert len(messages) == 1 and messages[0].role == "user"
    text: str = messages[0].content.text
    return text


def _named_tools(text: str) -> set[str]:
    return set(re.findall(r"\b([a-z_]+)\(", text))


async def test_the_three_prompts_are_listed_with_their_arguments(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        listed = await client.list_prompts()

    prompts = {p.name: p for p in listed.prompts}
    assert set(prompts) == {"weekly_cost_review", "investigate_spike", "reduce_costs"}
    assert [(a.name, a.required) for a in prompts["investigate_spike"].arguments or []] == [("date", False)]
    assert [(a.name, a.required) for a in prompts["weekly_cost_review"].arguments or []] == [("week_ending", False)]
    assert not prompts["reduce_costs"].arguments
    assert all(p.description for p in prompts.values())


async def test_prompts_render_with_real_tool_names_and_caveats(settings: Settings) -> None:
    first_day = datetime.now(timezone.utc).date()
    async with Client(build_server(settings)) as client:
        rendered = {
            "weekly": _text(await client.get_prompt("weekly_cost_review")),
            "spike": _text(await client.get_prompt("investigate_spike")),
            "reduce": _text(await client.get_prompt("reduce_costs")),
        }
        registered = {t.name for t in (await client.list_tools()).tools}

    for name, text in rendered.items():
        named = _named_tools(text)
        assert named, name
        assert named <= KNOWN_TOOLS, (name, named - KNOWN_TOOLS)
        assert named <= registered, (name, named - registered)
        for caveat in ("unpriced_requests", "data_sources", "estimates", "UTC"):
            assert caveat in text, (name, caveat)
    assert "savings_opportunities(days=30)" in rendered["reduce"]
    assert "conservative_total_savings_usd_per_month" in rendered["reduce"]
    assert "detect_anomalies(days=14" in rendered["spike"]  # no date: find the spike first
    # The weekly review defaults to the 7 UTC days ending yesterday (either side of a midnight during the test).
    days = {first_day, datetime.now(timezone.utc).date()}
    assert any(f'start="{d - timedelta(days=7)}", end="{d}"' in rendered["weekly"] for d in days)


async def test_investigate_spike_with_a_date_uses_that_day_and_the_week_before(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        text = _text(await client.get_prompt("investigate_spike", {"date": "2026-11-20"}))

    assert "spiked on 2026-11-20 (UTC)" in text
    assert 'spend_summary(group_by="model", start="2026-11-20", end="2026-11-21")' in text
    assert 'spend_summary(group_by="model", start="2026-11-13", end="2026-11-20")' in text
    assert 'spend_chart(start="2026-11-07", end="2026-11-21", group_by="api_key")' in text
    assert 'cost_per_query(start="2026-11-20", end="2026-11-21")' in text


async def test_weekly_review_for_a_chosen_week(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        text = _text(await client.get_prompt("weekly_cost_review", {"week_ending": "2026-11-22"}))

    assert "for the week 2026-11-16 to 2026-11-22" in text
    assert 'spend_summary(group_by="day", start="2026-11-16", end="2026-11-23")' in text
    assert 'start="2026-11-09", end="2026-11-16"' in text  # the week before, for the change
    assert 'spend_chart(start="2026-10-26", end="2026-11-23", group_by="model")' in text


@pytest.mark.parametrize(
    ("prompt", "args", "message"),
    [
        (
            "investigate_spike",
            {"date": "last tuesday"},
            "date: expected an ISO date such as 2026-11-20, got 'last tuesday'",
        ),
        ("investigate_spike", {"date": "2026-02-30"}, "date: expected an ISO date"),
        ("investigate_spike", {"date": "2999-01-01"}, "date: 2999-01-01 is in the future"),
        ("weekly_cost_review", {"week_ending": "22/11/2026"}, "week_ending: expected an ISO date"),
    ],
)
async def test_a_bad_date_is_an_invalid_params_error_naming_the_argument(
    settings: Settings, prompt: str, args: dict[str, str], message: str
) -> None:
    async with Client(build_server(settings)) as client:
        with pytest.raises(MCPError) as caught:
            await client.get_prompt(prompt, args)

    assert caught.value.code == INVALID_PARAMS
    assert caught.value.message.startswith(message)
