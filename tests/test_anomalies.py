"""detect_anomalies through the MCP protocol: planted anomalies are found and explained in dollars.

A baseline day (test catalog prices from 2026-06-01, USD per million tokens):
  2 × test-gpt       100k input of which 50k cached, 10k output: 50k×2 + 50k×0.5 + 10k×8 = 0.205 each
  2 × test-gpt-mini  same tokens:                    50k×0.2 + 50k×0.05 + 10k×0.8           = 0.0205 each
  → 0.41 + 0.041 = 0.451 a day; requests 50 % test-gpt; cache hit rate 50 %.
Every reference day is identical, so the expected spend is exactly 0.451 and the scale its 5 % floor
(0.02255). Scanning 7 days to 2026-11-21 covers 11-14 … 11-20, with baselines back to 10-17.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from client_support import call, call_error, connect, insert
from costhawk_mcp.analytics.decompose import CLASSES, ModelUsage, decompose, q9
from costhawk_mcp.config import Settings
from costhawk_mcp.server.app import App
from costhawk_mcp.store.store import RequestRow
from costhawk_mcp.store.sync_store import Page, write_batch
from spend_support import D, days, req, synced_day

PLANTED = date(2026, 11, 18)
HISTORY = days(date(2026, 10, 17), 35)  # 10-17 … 11-20
SCAN = {"days": 7, "end": "2026-11-21"}
PARTS = ("volume_usd", "mix_usd", "size_usd", "cache_usd", "price_usd")


def day_rows(day: date, gpt: int = 2, mini: int = 2, *, cached: int = 50_000) -> list[RequestRow]:
    rows = []
    for i in range(gpt + mini):
        model = "test-gpt" if i < gpt else "test-gpt-mini"
        moment = datetime.combine(day, time(9)) + timedelta(minutes=i)
        rows.append(req(moment, model, input_tokens=100_000, cached=cached, output=10_000))
    return rows


def history(
    planted: list[RequestRow], on: date = PLANTED, span: list[date] = HISTORY, per_model: int = 2
) -> list[RequestRow]:
    rows = [r for day in span if day != on for r in day_rows(day, per_model, per_model)]
    return rows + planted


def only(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [a for a in result["anomalies"] if a["kind"] == kind]


def assert_exact(explanation: dict[str, Any]) -> None:
    """The five parts add up to the change exactly (numbers parsed as Decimal from the wire)."""
    assert sum(explanation[p] for p in PARTS) == explanation["change_usd"]


@pytest.mark.anyio
async def test_double_volume_is_explained_as_volume(test_catalog: Path, settings: Settings) -> None:
    insert(settings, history(day_rows(PLANTED, gpt=4, mini=4)))
    result = await call(settings, "detect_anomalies", SCAN)
    (spike,) = result["anomalies"]
    # 8 requests of the same kind: 0.902 against 0.451 → +0.451, all volume; z = 0.451 / 0.02255 = 20
    assert (spike["kind"], spike["date"], spike["dimension_value"]) == ("spend_spike", "2026-11-18", "total")
    assert (spike["observed_usd"], spike["expected_usd"], spike["impact_usd"]) == (D("0.902"), D("0.451"), D("0.451"))
    assert spike["score"] == D("20")
    e = spike["explanation"]
    assert e["volume_usd"] == D("0.451")
    assert (e["mix_usd"], e["size_usd"], e["cache_usd"], e["price_usd"]) == (0, 0, 0, 0)
    assert (e["expected_volume"], e["observed_volume"], e["volume_ratio"]) == (D("4"), D("8"), D("2"))
    assert_exact(e)
    assert e["summary"].startswith("+$0.4510 on 2026-11-18 (expected $0.4510, observed $0.9020): +$0.4510 volume")
    assert "requests ×2.00" in e["summary"]
    assert result["days_scored"] == 7 and result["series_scanned"] == 1


@pytest.mark.anyio
async def test_traffic_moved_to_the_dearer_model_is_explained_as_mix(test_catalog: Path, settings: Settings) -> None:
    insert(settings, history(day_rows(PLANTED, gpt=3, mini=1)))
    result = await call(settings, "detect_anomalies", SCAN)
    (spike,) = result["anomalies"]
    # 3 × 0.205 + 1 × 0.0205 = 0.6355 against 0.451 → +0.1845, all model mix (the same 4 requests)
    assert (spike["observed_usd"], spike["impact_usd"]) == (D("0.6355"), D("0.1845"))
    e = spike["explanation"]
    assert e["mix_usd"] == D("0.1845")
    assert (e["volume_usd"], e["size_usd"], e["cache_usd"], e["price_usd"]) == (0, 0, 0, 0)
    assert_exact(e)
    top = e["model_shares"][0]
    assert (top["model"], top["expected_share_pct"], top["observed_share_pct"]) == ("test-gpt", D("50"), D("75"))
    assert "model mix (test-gpt share 50 %→75 %)" in e["summary"]


@pytest.mark.anyio
async def test_lost_cache_hits_are_explained_as_cache(test_catalog: Path, settings: Settings) -> None:
    insert(settings, history(day_rows(PLANTED, cached=0)))
    result = await call(settings, "detect_anomalies", SCAN)
    (spike,) = result["anomalies"]
    # no cache reads: 2 × (0.2 + 0.08) + 2 × (0.02 + 0.008) = 0.616 against 0.451 → +0.165, all cache
    assert (spike["observed_usd"], spike["impact_usd"]) == (D("0.616"), D("0.165"))
    e = spike["explanation"]
    assert e["cache_usd"] == D("0.165")
    assert (e["volume_usd"], e["mix_usd"], e["size_usd"], e["price_usd"]) == (0, 0, 0, 0)
    assert (e["expected_cache_hit_pct"], e["observed_cache_hit_pct"]) == (D("50"), D("0"))
    assert_exact(e)


@pytest.mark.anyio
async def test_a_catalog_price_change_is_explained_as_price(test_catalog: Path, settings: Settings) -> None:
    # test-gpt cost 10 / 5 / 40 per million (input / cached / output) until 2026-06-01, then 2 / 0.5 / 8.
    # May days: 2 × (0.5 + 0.25 + 0.4) + 0.041 = 2.341; on 06-01 the same traffic costs 0.451.
    change_day = date(2026, 6, 1)
    insert(settings, history(day_rows(change_day), on=change_day, span=days(date(2026, 4, 28), 35)))
    result = await call(settings, "detect_anomalies", {"days": 7, "end": "2026-06-02"})
    (drop,) = result["anomalies"]
    assert (drop["kind"], drop["date"]) == ("spend_drop", "2026-06-01")
    assert (drop["observed_usd"], drop["expected_usd"], drop["impact_usd"]) == (D("0.451"), D("2.341"), D("-1.89"))
    e = drop["explanation"]
    assert e["price_usd"] == D("-1.89")
    assert (e["volume_usd"], e["mix_usd"], e["size_usd"], e["cache_usd"]) == (0, 0, 0, 0)
    assert_exact(e)
    moves = {
        (m["model"], m["token_class"]): (m["expected_per_mtok_usd"], m["observed_per_mtok_usd"])
        for m in e["price_moves"]
    }
    assert moves == {
        ("test-gpt", "output"): (D("40"), D("8")),
        ("test-gpt", "input"): (D("10"), D("2")),
        ("test-gpt", "cached input"): (D("5"), D("0.5")),
    }
    assert drop["score"] < -3.5


@pytest.mark.anyio
async def test_a_single_expensive_request_is_found_and_explained(test_catalog: Path, settings: Settings) -> None:
    big = req(datetime(2026, 11, 18, 15), "test-gpt", input_tokens=2_000_000, output=10_000, request_id="big-one")
    insert(settings, history([*day_rows(PLANTED), big], span=days(date(2026, 10, 10), 42)))
    result = await call(settings, "detect_anomalies", {"days": 14, "end": "2026-11-21"})
    (single,) = only(result, "request_spike")
    # 2M × 2 + 10k × 8 = 4.08 against the group's median 0.205 (×19.9): +3.875
    assert single["request"]["request_id"] == "big-one"
    assert (single["observed_usd"], single["expected_usd"], single["impact_usd"]) == (D("4.08"), D("0.205"), D("3.875"))
    assert single["request"]["times_median"] == D("19.9")
    assert single["request"]["group_requests"] == 29  # 14 scanned days × 2 test-gpt chat requests + this one
    e = single["explanation"]
    assert_exact(e)
    # one request against one typical request: no volume or mix; a bigger prompt with no cache hits, same prices
    assert (e["volume_usd"], e["mix_usd"], e["price_usd"]) == (0, 0, 0)
    assert e["size_usd"] > 0 and e["cache_usd"] > 0
    assert e["observed_cache_hit_pct"] == 0
    # the day itself is also a spike (+4.08), and the larger impact comes first
    (day,) = only(result, "spend_spike")
    assert day["impact_usd"] == D("4.08")
    assert [a["kind"] for a in result["anomalies"]] == ["spend_spike", "request_spike"]
    assert_exact(day["explanation"])


@pytest.mark.anyio
async def test_model_drift_over_the_last_week_is_found(test_catalog: Path, settings: Settings) -> None:
    # 8 requests a day (4 + 4: 0.902), the last week 6 + 2 (1.23 + 0.041 = 1.271): 56 requests, enough to judge
    recent = days(date(2026, 11, 14), 7)
    rows = [r for day in HISTORY if day not in recent for r in day_rows(day, 4, 4)]
    rows += [r for day in recent for r in day_rows(day, gpt=6, mini=2)]
    insert(settings, rows)
    result = await call(settings, "detect_anomalies", SCAN)
    (drift,) = only(result, "model_drift")
    # shares 50/50 → 75/25: total variation 25 %; 7 × (1.271 − 0.902) = 2.583, all of it model mix
    assert (drift["date"], drift["last_date"], drift["score"]) == ("2026-11-14", "2026-11-20", D("25"))
    assert (drift["observed_usd"], drift["expected_usd"], drift["impact_usd"]) == (D("8.897"), D("6.314"), D("2.583"))
    assert drift["explanation"]["mix_usd"] == D("2.583")
    assert_exact(drift["explanation"])
    # The days are one run of spend spikes, not one finding a day. The baseline follows the recent level
    # (the median of the last 7 days), so from the fifth shifted day on the new mix is the new normal:
    # the run is 11-14 … 11-17, 4 × 0.369 = 1.476.
    (run,) = only(result, "spend_spike")
    assert (run["date"], run["last_date"], run["days"], run["impact_usd"]) == (
        "2026-11-14",
        "2026-11-17",
        4,
        D("1.476"),
    )


@pytest.mark.anyio
async def test_per_series_dimension_and_sensitivity(test_catalog: Path, settings: Settings) -> None:
    rows = history(day_rows(PLANTED, gpt=4, mini=4))
    insert(settings, rows)
    async with connect(settings) as s:
        by_model = await s.call("detect_anomalies", {**SCAN, "dimension": "model"})
        strict = await s.call("detect_anomalies", {**SCAN, "sensitivity": 25})
    found = {(a["dimension_value"], a["impact_usd"]) for a in by_model["anomalies"]}
    # each model's series doubled: test-gpt +0.41 (z = 0.41 / 0.0205 = 20), test-gpt-mini +0.041 (its scale
    # is floored at 1 % of the median daily total, 0.00451: z = 9.09)
    assert found == {("test-gpt", D("0.41")), ("test-gpt-mini", D("0.041"))}
    assert by_model["series_scanned"] == 2
    # a z threshold of 25 is stricter than the z these days reach
    assert strict["anomalies"] == []
    assert strict["sensitivity"]["z_threshold"] == D("25")


@pytest.mark.anyio
async def test_a_day_in_progress_can_spike_but_never_drop(test_catalog: Path, settings: Settings) -> None:
    today = date(2026, 11, 20)
    insert(settings, history(day_rows(today, gpt=4, mini=4), on=today))
    # At 09:10 all 8 of today's requests (09:00–09:07) are in: 0.902 already tops the full day's 0.451.
    async with connect(settings) as s:
        busy = await s.call("detect_anomalies", {"days": 7, "end": "2026-11-20T09:10:00"})
        # At 09:01 only the first request (0.205) is in: far below a full day, but the day is not over.
        early = await s.call("detect_anomalies", {"days": 7, "end": "2026-11-20T09:01:00"})
    (spike,) = busy["anomalies"]
    assert (spike["date"], spike["partial_day"], spike["impact_usd"]) == ("2026-11-20", True, D("0.451"))
    assert any("is not over" in n for n in busy["notes"])
    assert busy["period"]["end"] == "2026-11-20T09:10:00"
    assert early["anomalies"] == []


@pytest.mark.anyio
async def test_synced_usage_without_request_counts_measures_volume_in_tokens(
    test_catalog: Path, settings: Settings
) -> None:
    """Anthropic's usage report counts tokens, not requests: volume is then measured in tokens.

    A synced day of test-claude: 100k input + 10k output tokens = 0.3 + 0.15 = 0.45; on 11-18 twice that.
    """

    def bucket(day: date, scale: int) -> Page:
        tokens = {"uncached_input_tokens": 100_000 * scale, "output_tokens": 10_000 * scale}
        return synced_day("anthropic", day, {"model": "test-claude", **tokens})

    write_batch(App(settings).store, [bucket(day, 2 if day == PLANTED else 1) for day in HISTORY])
    result = await call(settings, "detect_anomalies", SCAN)
    (spike,) = result["anomalies"]
    assert (spike["observed_usd"], spike["expected_usd"], spike["impact_usd"]) == (D("0.9"), D("0.45"), D("0.45"))
    e = spike["explanation"]
    assert (e["volume_unit"], e["volume_ratio"], e["volume_usd"]) == ("tokens", D("2"), D("0.45"))
    assert_exact(e)
    assert [(s["source"], s["provider"]) for s in result["data_sources"]] == [("provider_usage", "anthropic")]


@pytest.mark.anyio
async def test_too_little_history_is_said_not_guessed(test_catalog: Path, settings: Settings) -> None:
    insert(settings, [r for day in days(date(2026, 11, 17), 4) for r in day_rows(day)])
    result = await call(settings, "detect_anomalies", SCAN)
    assert result["anomalies"] == []
    assert result["days_scored"] == 0 and result["days_without_baseline"] == 4
    assert any("fewer than 7 days of history" in n for n in result["notes"])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"dimension": "feature"}, "dimension"),
        ({"sensitivity": "extreme"}, "sensitivity"),
        ({"sensitivity": -1}, "sensitivity"),
        ({"days": 0}, "days"),
        ({"end": "not a date"}, "end"),
    ],
)
async def test_bad_arguments_are_tool_errors_naming_the_field(
    test_catalog: Path, settings: Settings, args: dict[str, object], field: str
) -> None:
    assert field in await call_error(settings, "detect_anomalies", args)


# ---------------------------------------------------------------------------------------------- the split itself

_counts = st.integers(min_value=0, max_value=2_000_000)
_rates = st.sampled_from([Decimal(0), Decimal("0.05"), Decimal("0.3"), Decimal(2), Decimal("3.75"), Decimal(15)])


@st.composite
def _usage(draw: st.DrawFn) -> dict[str, ModelUsage]:
    usage = {}
    for model in draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True)):
        tokens = {k: draw(_counts) for k in CLASSES}
        rates = {k: draw(_rates) for k in CLASSES}
        u = ModelUsage()
        u.add(draw(st.integers(min_value=1, max_value=500)), tokens, {k: tokens[k] * rates[k] / 10**6 for k in CLASSES})
        usage[model] = u
    return usage


@given(base=_usage(), seen=_usage(), expected=st.decimals(min_value=0, max_value=10_000, places=4))
@hypothesis_settings(max_examples=150, deadline=None)
def test_the_five_parts_always_add_up_to_the_change_exactly(
    base: dict[str, ModelUsage], seen: dict[str, ModelUsage], expected: Decimal
) -> None:
    observed = sum((u.total_cost for u in seen.values()), Decimal(0))
    split = decompose(base, seen, base_cost=expected, observed_cost=observed)
    assert sum(split.parts.values()) == split.change_usd == q9(observed) - q9(expected)


@given(base=_usage(), factor=st.decimals(min_value=Decimal("0.1"), max_value=10, places=2))
@hypothesis_settings(max_examples=100, deadline=None)
def test_a_pure_volume_change_is_all_volume(base: dict[str, ModelUsage], factor: Decimal) -> None:
    cost = sum((u.total_cost for u in base.values()), Decimal(0))
    split = decompose(base, base, base_cost=cost / factor, observed_cost=cost)
    assert split.parts["mix"] == split.parts["size"] == split.parts["cache"] == split.parts["price"] == 0
    assert split.parts["volume"] == split.change_usd
