"""Budgets through the MCP protocol: stored, updated, deleted, persisted, and their status worked by hand.

Spend (test catalog: test-gpt input $2 per million tokens; test-claude input $3 per million), evaluated
as of the end of 2026-11-10 (a Tuesday; its ISO week began on Monday 11-09):

  day     openai (key-a, project alpha)   anthropic (key-c, project beta)   openai cumulative   org cumulative
  10-31   2.00 (last month: not counted)
  11-01   2.00                                                              2                   2
  11-02   2.00                                                              4                   4
  11-03   1.00                                                              5                   5
  11-05   2.00                                                              7                   7
  11-06   1.00                                                              8                   8
  11-09   2.00                                                              10                  10
  11-10   1.00                            0.30                              11                  11.30
  11-11   5.00 (after as_of: not counted)
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from client_support import call, call_error, connect, insert
from costhawk_mcp.config import Settings
from costhawk_mcp.server.build import build_server
from spend_support import D, req

GPT_DAYS = {
    date(2026, 10, 31): 1_000_000,
    date(2026, 11, 1): 1_000_000,
    date(2026, 11, 2): 1_000_000,
    date(2026, 11, 3): 500_000,
    date(2026, 11, 5): 1_000_000,
    date(2026, 11, 6): 500_000,
    date(2026, 11, 9): 1_000_000,
    date(2026, 11, 10): 500_000,
    date(2026, 11, 11): 2_500_000,
}


@pytest.fixture
def spend(test_catalog: Path, settings: Settings) -> Settings:
    rows = [req(day, "test-gpt", input_tokens=tokens) for day, tokens in GPT_DAYS.items()]
    rows.append(
        req(
            date(2026, 11, 10),
            "test-claude",
            input_tokens=100_000,
            provider="anthropic",
            api_key_id="key-c",
            project="beta",
        )
    )
    insert(settings, rows)
    return settings


def levels(status: dict[str, Any]) -> dict[int, str | None]:
    return {level["level_pct"]: level["crossed_on"] for level in status["levels"]}


@pytest.mark.anyio
async def test_status_crosses_levels_on_the_right_day_and_projects_the_period_end(spend: Settings) -> None:
    async with connect(spend) as s:
        await s.call("set_budget", {"scope": "provider", "scope_id": "OpenAI", "amount_usd": 10})
        await s.call("set_budget", {"scope": "org", "amount_usd": 20})
        await s.call("set_budget", {"scope": "project", "scope_id": "alpha", "amount_usd": 5, "period": "week"})
        await s.call("set_budget", {"scope": "api_key", "scope_id": "key-a", "amount_usd": "1.5", "period": "day"})
        report = await s.call("budget_status", {"as_of": "2026-11-10"})
    assert report["as_of"] == "2026-11-11T00:00:00"
    status = {s["budget"]["label"]: s for s in report["budgets"]}
    assert list(status) == [
        "organisation: $20.00 per month",
        "provider openai: $10.00 per month",
        "project alpha: $5.00 per week",
        "api key key-a: $1.50 per day",
    ]
    org, openai, alpha, key = status.values()

    # openai, $10 a month: 5 (50 %) on 11-03, 8 (80 %) on 11-06, 10 (100 %) on 11-09; spent 11 = 110 %
    assert (openai["period_start"], openai["period_end"]) == ("2026-11-01", "2026-12-01")
    assert levels(openai) == {50: "2026-11-03", 80: "2026-11-06", 100: "2026-11-09"}
    assert (openai["spent_usd"], openai["remaining_usd"], openai["used_pct"]) == (D("11"), D("-1"), D("110"))
    assert (openai["status"], openai["runs_out_on"]) == ("exceeded", "2026-11-09")

    # org, $20 a month: 50 % (10) on 11-09, spent 11.30. Run rate: 11-04 … 11-10 spent
    # 2 + 1 + 2 + 1.30 = 6.30 → 0.90 a day; 20 days left → 11.30 + 18 = 29.30 (146.5 %).
    # It runs out 8.70 / 0.90 = 9.67 days after 11-11 00:00, on 11-20.
    assert levels(org) == {50: "2026-11-09", 80: None, 100: None}
    assert (org["spent_usd"], org["used_pct"], org["days_left"]) == (D("11.3"), D("56.5"), D("20"))
    assert (org["run_rate_usd_per_day"], org["run_rate_days"]) == (D("0.9"), D("7"))
    assert (org["projected_usd"], org["projected_pct"]) == (D("29.3"), D("146.5"))
    assert (org["status"], org["runs_out_on"]) == ("at_risk", "2026-11-20")
    assert "run rate" in org["projection_method"]

    # project alpha, $5 a week (11-09 … 11-15): 2 (40 %) on 11-09, 3 (60 %) on 11-10. Run rate 6 / 7 a day
    # over the 5 days left: 3 + 30/7 = 7.285714286; 2 more dollars last 2.33 days: out on 11-13.
    assert (alpha["period_start"], alpha["period_end"]) == ("2026-11-09", "2026-11-16")
    assert levels(alpha) == {50: "2026-11-10", 80: None, 100: None}
    assert (alpha["spent_usd"], alpha["projected_usd"], alpha["runs_out_on"]) == (
        D("3"),
        D("7.285714286"),
        "2026-11-13",
    )

    # key-a, $1.50 a day: 1.00 on 11-10 (66.67 %); nothing of the day is left, so the projection is the spend
    assert (key["period_start"], key["period_end"]) == ("2026-11-10", "2026-11-11")
    assert (key["spent_usd"], key["used_pct"], key["projected_usd"]) == (D("1"), D("66.67"), D("1"))
    assert (levels(key), key["status"], key["runs_out_on"]) == (
        {50: "2026-11-10", 80: None, 100: None},
        "on_track",
        None,
    )


@pytest.mark.anyio
async def test_setting_the_same_scope_and_period_again_updates_it(test_catalog: Path, settings: Settings) -> None:
    async with connect(settings) as s:
        first = await s.call("set_budget", {"scope": "org", "amount_usd": 20})
        again = await s.call("set_budget", {"scope": "org", "amount_usd": 25.5, "period": "month"})
        weekly = await s.call("set_budget", {"scope": "org", "amount_usd": 7, "period": "week"})
        listed = await s.call("list_budgets", {})
    assert first["created"] is True and first["previous_amount_usd"] is None
    assert again["created"] is False
    assert again["budget"]["budget_id"] == first["budget"]["budget_id"]
    assert (again["previous_amount_usd"], again["budget"]["amount_usd"]) == (D("20"), D("25.5"))
    assert weekly["budget"]["budget_id"] != first["budget"]["budget_id"]
    assert [(b["period"], b["amount_usd"]) for b in listed["budgets"]] == [("month", D("25.5")), ("week", D("7"))]


@pytest.mark.anyio
async def test_budgets_persist_across_a_server_restart_and_can_be_deleted(
    test_catalog: Path, settings: Settings
) -> None:
    async with Client(build_server(settings)) as client:
        made = await client.call_tool("set_budget", {"scope": "project", "scope_id": "search", "amount_usd": 500})
        assert not made.is_error
    budget_id = made.structured_content["budget"]["budget_id"]  # type: ignore[index]

    async with Client(build_server(settings)) as client:  # a new server on the same database file
        listed = await client.call_tool("list_budgets", {})
        assert [(b["budget_id"], b["scope_id"]) for b in listed.structured_content["budgets"]] == [  # type: ignore[index]
            (budget_id, "search")
        ]
        gone = await client.call_tool("delete_budget", {"budget_id": budget_id})
        assert gone.structured_content["deleted"]["label"] == "project search: $500.00 per month"  # type: ignore[index]
        again = await client.call_tool("delete_budget", {"budget_id": budget_id})
        assert again.is_error and "budget_id" in again.content[0].text  # type: ignore[union-attr]
        empty = await client.call_tool("budget_status", {})
        assert empty.structured_content["budgets"] == []  # type: ignore[index]


@pytest.mark.anyio
async def test_a_scope_without_usage_is_accepted_with_a_note(test_catalog: Path, settings: Settings) -> None:
    result = await call(settings, "set_budget", {"scope": "api_key", "scope_id": "key-zzz", "amount_usd": 3})
    assert any("no usage recorded yet" in n for n in result["notes"])


@pytest.mark.anyio
async def test_budget_tools_say_they_write(test_catalog: Path, settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        tools = {t.name: t.annotations for t in (await client.list_tools()).tools}
    assert tools["set_budget"].read_only_hint is False  # type: ignore[union-attr]
    assert tools["delete_budget"].destructive_hint is True  # type: ignore[union-attr]
    assert tools["budget_status"].read_only_hint is True  # type: ignore[union-attr]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "args", "field"),
    [
        ("set_budget", {"scope": "org", "amount_usd": -5}, "amount_usd"),
        ("set_budget", {"scope": "org", "amount_usd": 0}, "amount_usd"),
        # regression (fuzzing): 1e-30 was accepted and stored as a $0.00 budget
        ("set_budget", {"scope": "org", "amount_usd": "1e-30"}, "amount_usd"),
        ("set_budget", {"scope": "provider", "amount_usd": 5}, "scope_id"),
        ("set_budget", {"scope": "org", "scope_id": "x", "amount_usd": 5}, "scope_id"),
        ("set_budget", {"scope": "team", "scope_id": "x", "amount_usd": 5}, "scope"),
        ("set_budget", {"scope": "org", "amount_usd": 5, "period": "year"}, "period"),
        ("delete_budget", {"budget_id": 4242}, "budget_id"),
        ("budget_status", {"as_of": "soon"}, "as_of"),
    ],
)
async def test_bad_arguments_are_tool_errors_naming_the_field(
    test_catalog: Path, settings: Settings, tool: str, args: dict[str, object], field: str
) -> None:
    assert field in await call_error(settings, tool, args)


@pytest.mark.anyio
async def test_a_tiny_run_rate_against_a_huge_budget_never_runs_out_instead_of_overflowing(
    test_catalog: Path, settings: Settings
) -> None:
    # Regression (fuzzing): the run-out date was computed before comparing it with the period end, so a
    # $1e12 budget against $0.00000002 a week asked for a date 3.5e20 days away: OverflowError, an internal error.
    # One test-embed request of 1 token at $0.02 per million = $0.00000002 on 2026-11-09.
    insert(settings, [req(date(2026, 11, 9), "test-embed", input_tokens=1)])
    await call(settings, "set_budget", {"scope": "org", "amount_usd": 1_000_000_000_000})
    status = (await call(settings, "budget_status", {"as_of": "2026-11-10"}))["budgets"][0]
    assert status["spent_usd"] == D("0.00000002")
    assert status["runs_out_on"] is None
