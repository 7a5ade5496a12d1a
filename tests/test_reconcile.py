"""Reconciliation through the protocol: synced usage at catalog prices against the providers' cost
reports, with planted discrepancies whose causes must be named. Figures are worked out by hand in
`sync_support.hand_worked` and `plant_discrepancies`."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from costhawk_mcp.config import Settings
from fake_providers import AnthropicUsage, CostAdjustment, FakeProviders, OpenAIUsage
from sync_support import SINCE, UNTIL, call, connect, fake_settings, hand_worked, plant_discrepancies, running_fake

D = Decimal


@pytest.fixture
def fake() -> Any:
    with running_fake() as server:
        yield server


def _money(value: object) -> Decimal:
    return D(str(value)).quantize(D("0.000001"))


def _day(result: dict[str, Any], provider: str, day: str) -> dict[str, Any]:
    return next(d for d in result["days"] if d["provider"] == provider and d["day"] == day)


@pytest.mark.anyio
async def test_reconcile_finds_planted_discrepancies_and_names_their_causes(
    fake: FakeProviders, test_catalog: Path
) -> None:
    hand_worked(fake)
    plant_discrepancies(fake)
    async with connect(fake_settings(fake, memory=True)) as client:
        await call(client, "sync_usage", since=SINCE, until=UNTIL)
        result = await call(client, "reconcile", start=SINCE, end=UNTIL)

    assert result["period"]["start"] == "2026-11-10T00:00:00" and result["tolerance_usd"] == 0.01

    # OpenAI day 1: computed 2.50 + 4.00 + 2.50 = 9.00; billed 9.00 + the planted 1.23 = 10.23
    day1 = _day(result, "openai", "2026-11-10")
    assert (_money(day1["computed_usd"]), _money(day1["reported_usd"]), _money(day1["difference_usd"])) == (
        D("9.00"),
        D("10.23"),
        D("1.23"),
    )
    assert day1["difference_pct"] == 12.02  # 1.23 / 10.23
    assert _money(day1["unexplained_usd"]) == D("1.23") and not day1["matches"] and day1["final"]
    project_a = next(g for g in day1["groups"] if g["group_id"] == "proj_a")
    assert project_a["group_name"] == "Search backend" and _money(project_a["difference_usd"]) == D("1.23")

    # OpenAI day 2: computed 2.20 + 1.00 = 3.20; billed 3.20 + images 0.20 + test-mystery 1.00 = 4.40
    day2 = _day(result, "openai", "2026-11-11")
    assert (_money(day2["computed_usd"]), _money(day2["reported_usd"])) == (D("3.20"), D("4.40"))
    assert _money(day2["explained_usd"]) == D("0.20") and _money(day2["unexplained_usd"]) == D("1.00")
    assert any("test-mystery" in c and "cannot price" in c for c in day2["causes"])
    assert any(c.startswith("$0.20 of non-token charges") and "dall-e-3" in c for c in day2["causes"])
    media = next(g for g in day2["groups"] if g["group_id"] == "proj_b")
    assert media["group_name"] == "Media tools" and _money(media["reported_usd"]) == D("3.40")  # 2.20 + 0.20 + 1.00
    # the priority traffic of test-gpt has its own price; nothing to name there
    assert not any("priority" in c for c in day1["causes"])

    # Anthropic day 1 matches: 2.70 + 3.00 = 5.70 on both sides
    a1 = _day(result, "anthropic", "2026-11-10")
    assert a1["matches"] and a1["causes"] == [] and _money(a1["reported_usd"]) == D("5.70")
    # Anthropic day 2: computed 2.025 + 4.50 (priority, priced at standard) = 6.525; billed 2.025 + 0.50 code
    # execution = 2.525; difference -4.00, all of it explained: 0.50 - 4.50
    a2 = _day(result, "anthropic", "2026-11-11")
    assert (_money(a2["computed_usd"]), _money(a2["reported_usd"]), _money(a2["difference_usd"])) == (
        D("6.525"),
        D("2.525"),
        D("-4.00"),
    )
    assert _money(a2["explained_usd"]) == D("-4.00") and _money(a2["unexplained_usd"]) == D("0")
    assert a2["causes"] == [
        "$4.50 of Anthropic Priority Tier usage is billed separately and is absent from the cost report",
        "$0.50 of non-token charges in the cost report (code_execution)",
    ]
    research = next(g for g in a2["groups"] if g["group_id"] == "wrkspc_a")
    assert research["group_name"] == "Research"

    totals = {p["provider"]: p for p in result["providers"]}
    # OpenAI: computed 12.20, billed 14.63 -> 2.43 more, 0.20 of it explained
    assert (_money(totals["openai"]["difference_usd"]), _money(totals["openai"]["unexplained_usd"])) == (
        D("2.43"),
        D("2.23"),
    )
    assert (totals["openai"]["days_compared"], totals["openai"]["days_matching"]) == (2, 0)
    assert (totals["anthropic"]["days_compared"], totals["anthropic"]["days_matching"]) == (2, 1)
    assert totals["anthropic"]["group_kind"] == "workspace"


@pytest.mark.anyio
async def test_a_tier_the_catalog_lacks_is_named_even_when_the_bill_differs(
    fake: FakeProviders, test_catalog: Path
) -> None:
    # test-gpt-mini has no priority price in the test catalog; the provider bills priority at 2x standard.
    day = "2026-11-10"
    fake.openai = [
        OpenAIUsage(
            datetime(2026, 11, 10, 9), "test-gpt-mini", "proj_a", "key_a",
            service_tier="priority", input_tokens=1_000_000, output_tokens=0,
        )
    ]  # fmt: skip
    fake.data_changed()
    # computed at standard: 1,000,000 x 0.2 = 0.20; the fake bills its standard price too, so plant the
    # real provider's priority surcharge of another 0.20 on that line
    fake.adjustments["openai"].append(
        CostAdjustment(datetime(2026, 11, 10), D("0.20"), "proj_a", "test-gpt-mini, priority input")
    )
    async with connect(fake_settings(fake, memory=True, ANTHROPIC_ADMIN_KEY="")) as client:
        await call(client, "sync_usage", since=day, until="2026-11-11")
        result = await call(client, "reconcile", start=day, end="2026-11-11", provider="openai")
    found = _day(result, "openai", day)
    assert (_money(found["computed_usd"]), _money(found["reported_usd"])) == (D("0.20"), D("0.40"))
    assert found["causes"] == [
        "$0.20 of test-gpt-mini usage in the priority tier was priced at standard rates: "
        "the catalog has no priority price for it"
    ]
    assert result["notes"][-1:] != ["no synced openai usage or costs in this window: run sync_usage first"]


@pytest.mark.anyio
async def test_today_and_yesterday_are_not_final(test_catalog: Path) -> None:
    with running_fake() as fake:
        today = fake.now.replace(hour=0, minute=0, second=0, microsecond=0)
        fake.anthropic = [AnthropicUsage(today, uncached=1_000_000, workspace_id="wrkspc_a")]  # 1M x 3 = $3.00
        fake.data_changed()
        async with connect(fake_settings(fake, memory=True, OPENAI_ADMIN_KEY="")) as client:
            await call(client, "sync_usage", since=(today - timedelta(days=1)).date().isoformat())
            result = await call(client, "reconcile", days=2)
    found = _day(result, "anthropic", today.date().isoformat())
    assert not found["final"] and found["matches"] and _money(found["computed_usd"]) == D("3.00")
    assert found["causes"][0].endswith("is not final yet: today's and yesterday's usage and costs still change")
    assert "no synced openai usage or costs in this window: run sync_usage first" in result["notes"]


@pytest.mark.anyio
async def test_reconcile_before_any_sync_says_what_to_do(test_catalog: Path) -> None:
    async with connect(Settings.from_env()) as client:
        result = await call(client, "reconcile", days=7, provider="anthropic")
        bad = await client.call_tool("reconcile", {"days": 7, "provider": "mistral"})
    assert result["providers"] == [] and result["days"] == []
    assert result["notes"][-1] == "no synced anthropic usage or costs in this window: run sync_usage first"
    assert bad.is_error
