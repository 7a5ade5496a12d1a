"""savings_opportunities through the MCP client, on hand-built request logs and the round test catalog.

Test catalog prices (USD per million tokens) used below:
  test-gpt (from 2026-06-01)  standard 2 in / 0.5 cached / 8 out; batch 1 in / 4 out; no cache-write price
  test-gpt-mini               standard 0.2 in / 0.05 cached / 0.8 out
  test-legacy                 30 in / 60 out; no batch, no cache prices
  test-claude                 3 in / 0.3 cached / 3.75 cache write / 15 out; batch 1.5 / 7.5;
                              above 200,000 input tokens: 6 in / 22.5 out
  test-gemini                 1.25 in / 10 out; above 200,000 input tokens: 2.5 in / 15 out
Windows are 10 days of data, so monthly figures are the window's × 30 / 10 = × 3.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from client_support import call_error, insert
from costhawk_mcp.analytics.savings import cheaper_sibling
from costhawk_mcp.config import Settings
from costhawk_mcp.pricing.catalog import load_catalog
from insight_support import D, call, money, req

pytestmark = pytest.mark.anyio

DAY0 = datetime(2026, 10, 1)
WINDOW = {"start": "2026-10-01", "end": "2026-10-11"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return DAY0 + timedelta(days=day, hours=hour, minutes=minute)


def by_title(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["title"]: o for o in result["opportunities"]}


async def test_batch_api_savings_for_latency_tolerant_workloads_priced_at_batch_rates(
    test_catalog: Path, settings: Settings
) -> None:
    rows = []
    # nightly-report: 60 requests, all between 02:00 and 03:00 UTC (6 days × 10): scheduled + name signal.
    rows += [
        req(at(d, 2, m), "test-gpt", input_tokens=1000, output_tokens=500, feature="nightly-report")
        for d in range(6)
        for m in range(10)
    ]
    # summaries: 100 requests over 10 working hours, 10 of them already through the Batch API.
    rows += [
        req(at(d, 8 + h), "test-gpt", input_tokens=1000, output_tokens=500, feature="summaries", batch=h == 0)
        for d in range(10)
        for h in range(10)
    ]
    # chat: the same scheduled shape as nightly-report, but an interactive name vetoes it.
    rows += [
        req(at(d, 14, m), "test-gpt", input_tokens=1000, output_tokens=500, feature="chat")
        for d in range(6)
        for m in range(10)
    ]
    # nightly-legacy: a scheduled job on a model without batch prices.
    rows += [
        req(at(d, 2, m), "test-legacy", input_tokens=1000, output_tokens=500, feature="nightly-legacy")
        for d in range(6)
        for m in range(10)
    ]
    # nightly-archive: already entirely on the Batch API: nothing left to move.
    rows += [
        req(at(d, 3, m), "test-gpt", input_tokens=1000, output_tokens=500, feature="nightly-archive", batch=True)
        for d in range(6)
        for m in range(10)
    ]
    # misc: no signal at all (spread over the day, an ordinary name).
    rows += [
        req(at(d, 6 + 2 * h), "test-gpt", input_tokens=1000, output_tokens=500, feature="misc")
        for d in range(3)
        for h in range(8)
    ]
    insert(settings, rows)

    result = await call(settings, "savings_opportunities", WINDOW)

    # A test-gpt request of 1,000 in / 500 out costs 1000×2/1e6 + 500×8/1e6 = $0.006 standard and
    # 1000×1/1e6 + 500×4/1e6 = $0.003 on the Batch API: $0.003 saved per request.
    assert [(o["kind"], o["workload"]["name"]) for o in result["opportunities"]] == [
        ("batch_api", "summaries"),  # 90 standard requests × $0.003 = $0.27
        ("batch_api", "nightly-report"),  # 60 × $0.003 = $0.18
    ]
    summaries, nightly = result["opportunities"]
    assert D(summaries["savings_usd_in_window"]) == money("0.27")
    assert D(summaries["savings_usd_per_month"]) == money("0.81")  # × 30 / 10 days
    assert D(summaries["affected_cost_usd_in_window"]) == money("0.54")  # 90 × $0.006
    assert summaries["savings_pct_of_affected"] == 50.0
    assert summaries["confidence"]["level"] == "high"
    assert "already uses the Batch API" in summaries["confidence"]["why"]
    assert summaries["traffic"]["requests"] == 90
    assert summaries["traffic"]["share_of_workload_requests_pct"] == 90.0
    assert summaries["batch"]["batch_share_of_workload_pct"] == 10.0

    assert D(nightly["savings_usd_in_window"]) == money("0.18")
    assert D(nightly["savings_usd_per_month"]) == money("0.54")
    assert nightly["confidence"]["level"] == "high"  # the hour pattern and the name agree
    assert nightly["batch"]["busiest_hours_utc"] == [2]
    assert nightly["batch"]["busiest_band_share_pct"] == 100.0
    assert nightly["batch"]["name_words"] == ["nightly", "report"]
    assert nightly["batch"]["batch_discount_pct"] == 50.0
    assert nightly["workload"] == {"kind": "feature", "name": "nightly-report", "api_keys": []}

    assert D(result["total_savings_usd_in_window"]) == money("0.45")
    assert D(result["total_savings_usd_per_month"]) == money("1.35")
    assert D(result["conservative_total_savings_usd_per_month"]) == money("1.35")
    by_kind = {t["kind"]: t for t in result["totals_by_kind"]}
    assert by_kind["batch_api"]["opportunities"] == 2
    assert D(by_kind["batch_api"]["savings_usd_per_month"]) == money("1.35")
    assert by_kind["prompt_caching"]["opportunities"] == 0
    # Window spend: nightly-report 60 × 0.006 = 0.36; summaries 90 × 0.006 + 10 × 0.003 = 0.57; chat 0.36;
    # nightly-legacy 60 × (1000×30 + 500×60)/1e6 = 60 × 0.06 = 3.60; nightly-archive 60 × 0.003 = 0.18;
    # misc 24 × 0.006 = 0.144. Total 5.214; savings share 0.45 / 5.214 = 8.63 %.
    assert D(result["window_spend_usd"]) == money("5.214")
    assert result["savings_share_of_spend_pct"] == 8.63
    assert result["observed_days"] == 10.0
    assert result["message"] is None
    assert result["unpriced_requests"] == 0
    assert [s["source"] for s in result["data_sources"]] == ["request_logs"]


async def test_prompt_caching_savings_subtract_the_cache_write_premium(test_catalog: Path, settings: Settings) -> None:
    rows = []
    # contract-review on test-claude: 5 requests a day inside one 5-minute window (hour 8+d, minutes 0-4),
    # 10 days: 50 requests of 10,000 input / 200 output tokens, nothing read from the cache.
    rows += [
        req(at(d, 8 + d, m), "test-claude", input_tokens=10_000, output_tokens=200, feature="contract-review")
        for d in range(10)
        for m in range(5)
    ]
    # doc-qa on test-gpt (automatic caching, no write premium): same timing, 4,000 in / 400 out.
    rows += [
        req(at(d, 8 + d, m), "test-gpt", input_tokens=4000, output_tokens=400, feature="doc-qa")
        for d in range(10)
        for m in range(5)
    ]
    # kb-answers already reads half its input from the cache: not an opportunity.
    rows += [
        req(at(d, 8 + d, m), "test-claude", input_tokens=10_000, cached=5000, output_tokens=200, feature="kb-answers")
        for d in range(10)
        for m in range(5)
    ]
    # short-prompts: a 1,500-token prompt cannot hold a 1,024-token shared prefix under the 50 % bound.
    rows += [
        req(at(d, 8 + d, m), "test-claude", input_tokens=1500, output_tokens=200, feature="short-prompts")
        for d in range(10)
        for m in range(5)
    ]
    # legacy-qa: test-legacy has no cache prices.
    rows += [
        req(at(d, 8 + d, m), "test-legacy", input_tokens=10_000, output_tokens=400, feature="legacy-qa")
        for d in range(10)
        for m in range(5)
    ]
    insert(settings, rows)

    result = await call(settings, "savings_opportunities", WINDOW)

    assert [(o["kind"], o["workload"]["name"]) for o in result["opportunities"]] == [
        ("prompt_caching", "contract-review"),
        ("prompt_caching", "doc-qa"),
    ]
    review, qa = result["opportunities"]
    # Prefix = min(p10 prompt 10,000, half the average 5,000) = 5,000 tokens (X = 50 %).
    # Per day the first request in the 5-minute window writes, the other 4 read: 40 reads, 10 writes.
    # Reads save 5,000 × (3 − 0.3) / 1e6 = $0.0135 each → $0.54; writes cost 5,000 × (3.75 − 3) / 1e6
    # = $0.00375 extra each → $0.0375. Net $0.5025 in the window, × 3 = $1.5075 a month.
    assert D(review["savings_usd_in_window"]) == money("0.5025")
    assert D(review["savings_usd_per_month"]) == money("1.5075")
    # Affected: 50 × (10,000 × 3 + 200 × 15) / 1e6 = 50 × 0.033 = $1.65.
    assert D(review["affected_cost_usd_in_window"]) == money("1.65")
    caching = review["caching"]
    assert caching["assumed_cached_prefix_tokens"] == 5000
    assert caching["assumed_cached_share_pct"] == 50.0
    assert caching["p10_input_tokens"] == 10_000
    assert caching["warm_request_share_pct"] == 80.0
    assert caching["added_cache_read_tokens"] == 200_000  # 40 × 5,000
    assert caching["added_cache_write_tokens"] == 50_000  # 10 × 5,000
    assert D(caching["cache_write_premium_usd_in_window"]) == money("0.0375")
    assert caching["cache_read_share_pct"] == 0.0
    assert caching["automatic_caching"] is False
    assert review["confidence"]["level"] == "high"
    assert "cache_control" in review["action"]

    # doc-qa: prefix min(4,000, 2,000) = 2,000; 40 reads save 2,000 × (2 − 0.5) / 1e6 = $0.003 each = $0.12;
    # writes cost the plain input price (no premium). × 3 = $0.36 a month. Automatic caching caps confidence.
    assert D(qa["savings_usd_in_window"]) == money("0.12")
    assert D(qa["savings_usd_per_month"]) == money("0.36")
    assert D(qa["caching"]["cache_write_premium_usd_in_window"]) == money("0")
    assert qa["caching"]["automatic_caching"] is True
    assert qa["confidence"]["level"] == "medium"
    assert "first" in qa["action"]


async def test_right_sizing_moves_short_outputs_to_the_cheaper_sibling(test_catalog: Path, settings: Settings) -> None:
    rows = []
    # ticket-triage: 30 requests of 1,000 in / 20 out on test-gpt (p90 output 20: classification-like).
    rows += [
        req(at(d, 8 + h), "test-gpt", input_tokens=1000, output_tokens=20, feature="ticket-triage")
        for d in range(10)
        for h in range(3)
    ]
    # email-drafts: 20 requests of 500 in / 200 out (short, but not classification-short).
    rows += [
        req(at(d, 9 + h), "test-gpt", input_tokens=500, output_tokens=200, feature="email-drafts")
        for d in range(10)
        for h in range(2)
    ]
    # essay-writer: long outputs stay on the big model.
    rows += [
        req(at(d, 10 + h), "test-gpt", input_tokens=500, output_tokens=2000, feature="essay-writer")
        for d in range(10)
        for h in range(3)
    ]
    # rare: short outputs but only 10 requests, too few to judge.
    rows += [req(at(d, 11), "test-gpt", input_tokens=500, output_tokens=20, feature="rare") for d in range(10)]
    # claude-tags: short outputs, but test-claude has no cheaper sibling in the catalog.
    rows += [
        req(at(d, 12 + h), "test-claude", input_tokens=500, output_tokens=20, feature="claude-tags")
        for d in range(10)
        for h in range(3)
    ]
    insert(settings, rows)

    # A 20-day window whose data starts on its 11th day: monthly figures scale by the 10 observed days.
    result = await call(settings, "savings_opportunities", {"start": "2026-09-21", "end": "2026-10-11"})

    assert result["observed_days"] == 10.0
    assert [(o["kind"], o["workload"]["name"]) for o in result["opportunities"]] == [
        ("model_right_sizing", "ticket-triage"),
        ("model_right_sizing", "email-drafts"),
    ]
    triage, drafts = result["opportunities"]
    # test-gpt: 1000 × 2/1e6 + 20 × 8/1e6 = $0.00216; test-gpt-mini: 1000 × 0.2/1e6 + 20 × 0.8/1e6 = $0.000216.
    # 30 × (0.00216 − 0.000216) = $0.05832 in the window; × 30 / 10 = $0.17496 a month.
    assert D(triage["savings_usd_in_window"]) == money("0.05832")
    assert D(triage["savings_usd_per_month"]) == money("0.17496")
    assert D(triage["affected_cost_usd_in_window"]) == money("0.0648")
    assert triage["savings_pct_of_affected"] == 90.0
    sizing = triage["right_sizing"]
    assert sizing["alternative_model"] == "test-gpt-mini"
    assert sizing["same_generation"] is True
    assert sizing["mapping"].startswith("test-gpt → test-gpt-mini: same family 'test-gpt'")
    assert sizing["p90_output_tokens"] == 20
    assert (sizing["input_per_mtok"], sizing["alternative_input_per_mtok"]) == (2.0, 0.2)
    assert triage["confidence"]["level"] == "high"

    # email-drafts: (500×2 + 200×8)/1e6 = $0.0026 vs (500×0.2 + 200×0.8)/1e6 = $0.00026; 20 × 0.00234 = $0.0468.
    assert D(drafts["savings_usd_in_window"]) == money("0.0468")
    assert D(drafts["savings_usd_per_month"]) == money("0.1404")
    assert drafts["confidence"]["level"] == "medium"

    siblings = {s["model"]: s["cheaper_sibling"] for s in result["model_siblings"]}
    assert siblings == {"test-claude": None, "test-gpt": "test-gpt-mini"}


async def test_long_context_surcharge_is_long_context_cost_minus_base_cost(
    test_catalog: Path, settings: Settings
) -> None:
    rows = []
    # doc-analysis on test-claude: 10 requests of 220,000 in / 1,000 out (over the 200,000 threshold)
    # and 5 of 100,000 in (under it).
    rows += [
        req(at(d, 9), "test-claude", input_tokens=220_000, output_tokens=1000, feature="doc-analysis")
        for d in range(10)
    ]
    rows += [
        req(at(d, 15), "test-claude", input_tokens=100_000, output_tokens=1000, feature="doc-analysis")
        for d in range(5)
    ]
    # video-notes on test-gemini: 4 requests of 500,000 in / 2,000 out, far above the threshold.
    rows += [
        req(at(d, 10), "test-gemini", input_tokens=500_000, output_tokens=2000, feature="video-notes") for d in range(4)
    ]
    insert(settings, rows)

    result = await call(settings, "savings_opportunities", WINDOW)

    assert [(o["kind"], o["workload"]["name"]) for o in result["opportunities"]] == [
        ("long_context", "doc-analysis"),
        ("long_context", "video-notes"),
    ]
    doc, video = result["opportunities"]
    # Long-context price: 220,000 × 6/1e6 + 1,000 × 22.5/1e6 = $1.3425; base: 0.66 + 0.015 = $0.675.
    # 10 × (1.3425 − 0.675) = $6.675 in the window, $20.025 a month.
    assert D(doc["savings_usd_in_window"]) == money("6.675")
    assert D(doc["savings_usd_per_month"]) == money("20.025")
    evidence = doc["long_context"]
    assert evidence["threshold_tokens"] == 200_000
    assert evidence["long_context_requests"] == 10
    assert evidence["p50_input_tokens"] == 220_000
    assert evidence["trim_needed_pct"] == 9.09  # 20,000 / 220,000
    assert D(evidence["cost_usd_in_window"]) == money("13.425")
    assert D(evidence["base_price_cost_usd_in_window"]) == money("6.75")
    assert doc["traffic"]["share_of_workload_requests_pct"] == 66.67  # 10 of 15
    assert doc["confidence"]["level"] == "high"
    # test-gemini: 500,000 × 2.5/1e6 + 2,000 × 15/1e6 = $1.28 against 0.625 + 0.02 = $0.645: 4 × 0.635 = $2.54.
    assert D(video["savings_usd_in_window"]) == money("2.54")
    assert D(video["savings_usd_per_month"]) == money("7.62")
    assert video["confidence"]["level"] == "low"  # over twice the threshold: needs splitting
    assert video["long_context"]["trim_needed_pct"] == 60.0


async def test_an_empty_window_says_so_instead_of_failing(test_catalog: Path, settings: Settings) -> None:
    insert(settings, [req(at(0, 9), "test-gpt", input_tokens=1000, output_tokens=10)])

    result = await call(settings, "savings_opportunities", {"start": "2026-08-01", "end": "2026-08-31"})

    assert result["opportunities"] == []
    assert D(result["total_savings_usd_per_month"]) == money("0")
    assert result["message"].startswith("No usage between 2026-08-01T00:00:00 and 2026-08-31T00:00:00")
    assert result["heuristics"]  # the method is stated even when there is nothing to find


async def test_unpriced_models_are_reported_and_left_out(test_catalog: Path, settings: Settings) -> None:
    insert(
        settings,
        [
            req(at(d, 2, m), "mystery-model", input_tokens=1000, output_tokens=500, feature="nightly-job")
            for d in range(6)
            for m in range(10)
        ],
    )

    result = await call(settings, "savings_opportunities", WINDOW)

    assert result["opportunities"] == []
    assert result["unpriced_requests"] == 60
    assert result["unpriced_models"] == ["mystery-model"]
    assert "could be priced" in result["message"]


async def test_a_bad_window_is_a_readable_error(test_catalog: Path, settings: Settings) -> None:
    text = await call_error(settings, "savings_opportunities", {"start": "last tuesday"})
    assert "start" in text and "ISO date" in text


def test_siblings_come_from_the_catalog_by_family_and_price() -> None:
    catalog = load_catalog()  # the packaged catalog with real model names
    today = datetime(2026, 11, 27).date()

    def sibling(model: str) -> str | None:
        found = cheaper_sibling(catalog, catalog.get(model), today)
        return found.entry.model if found else None

    assert sibling("gpt-4o") == "gpt-4o-mini"
    assert sibling("gpt-4.1") == "gpt-4.1-mini"
    assert sibling("claude-sonnet-4-5") == "claude-haiku-4-5"
    assert sibling("gemini-2.5-pro") == "gemini-2.5-flash"
    assert sibling("gpt-4o-mini") is None  # already the small one
    assert sibling("text-embedding-3-large") is None  # not a chat model


async def test_traffic_without_a_feature_is_judged_by_its_api_key(test_catalog: Path, settings: Settings) -> None:
    # 60 requests spread over 12 hours a day: no hour pattern, but the key's name says it is a worker.
    insert(
        settings,
        [
            req(at(d, 6 + h), "test-gpt", input_tokens=1000, output_tokens=500, key="k-etl", key_name="etl-worker")
            for d in range(5)
            for h in range(12)
        ],
    )

    result = await call(settings, "savings_opportunities", WINDOW)

    [only] = result["opportunities"]
    assert only["kind"] == "batch_api"
    assert only["title"] == "Move API key 'etl-worker' (k-etl) on test-gpt to the Batch API"
    assert only["workload"] == {"kind": "api_key", "name": "k-etl", "api_keys": ["etl-worker"]}
    assert only["batch"]["name_words"] == ["etl", "worker"]
    assert only["confidence"]["level"] == "medium"  # the name is the only signal
    assert D(only["savings_usd_in_window"]) == money("0.18")  # 60 × $0.003
    # The data starts on the window's first day, but only 5 of its 10 days have traffic: the window
    # still counts as 10 observed days (a quiet stretch is part of the rate), so × 3.
    assert D(only["savings_usd_per_month"]) == money("0.54")
