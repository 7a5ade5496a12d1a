"""spend_summary through the MCP protocol, on hand-priced requests (tests/data/test_pricing.json).

Prices used (USD per million tokens, from 2026-06-01):
  test-gpt       input 2    cached 0.5   output 8
  test-gpt-mini  input 0.2  cached 0.05  output 0.8
  test-claude    input 3    cached 0.3   output 15

Window 2026-11-10 … 2026-11-13 (three days); previous period 2026-11-07 … 2026-11-10.
  r1 11-10 test-gpt       1M in, 100k out, chat, key-a           2 + 0.8              = 2.80
  r2 11-10 test-gpt-mini  1M in, 1M out,  search, key-b          0.2 + 0.8            = 1.00
  r3 11-11 test-claude    200k in (100k cached), 288k out, chat   0.3 + 0.03 + 4.32    = 4.65
     (at most 200k input tokens: above that test-claude bills the whole request at long-context prices)
  r4 11-12 test-gpt       500k in, chat, key-a                    1.00
  r5 11-12 mystery-model  (not in the catalog: unpriced)
  previous: p1 11-08 test-gpt 1M in, chat = 2.00; p2 11-09 test-claude 200k in, 160k out, search
  = 0.6 + 2.4 = 3.00
Total 9.45 against 5.00: +4.45 (+89 %).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from client_support import call, call_error, insert
from costhawk_mcp.config import Settings
from costhawk_mcp.server.app import App
from costhawk_mcp.store.sync_store import write_batch
from spend_support import D, req, synced_day

WINDOW = {"start": "2026-11-10", "end": "2026-11-13"}


@pytest.fixture
def spend_data(test_catalog: Path, settings: Settings) -> Settings:
    insert(
        settings,
        [
            req(date(2026, 11, 10), "test-gpt", input_tokens=1_000_000, output=100_000, latency_ms=100),
            req(
                date(2026, 11, 10),
                "test-gpt-mini",
                input_tokens=1_000_000,
                output=1_000_000,
                feature="search",
                api_key_id="key-b",
                latency_ms=300,
            ),
            req(
                date(2026, 11, 11),
                "test-claude",
                input_tokens=200_000,
                cached=100_000,
                output=288_000,
                provider="anthropic",
            ),
            req(date(2026, 11, 12), "test-gpt", input_tokens=500_000, latency_ms=200),
            req(date(2026, 11, 12), "mystery-model", input_tokens=1000, provider="acme"),
            req(date(2026, 11, 8), "test-gpt", input_tokens=1_000_000),
            req(
                date(2026, 11, 9),
                "test-claude",
                input_tokens=200_000,
                output=160_000,
                provider="anthropic",
                feature="search",
            ),
        ],
    )
    return settings


def by_label(result: dict[str, object]) -> dict[str, dict[str, object]]:
    rows = result["rows"]
    assert isinstance(rows, list)
    return {row["label"]: row for row in rows}


@pytest.mark.anyio
async def test_by_day_gives_shares_and_change_against_the_day_before(spend_data: Settings) -> None:
    result = await call(spend_data, "spend_summary", {"group_by": "day", **WINDOW})
    rows = by_label(result)
    assert list(rows) == ["2026-11-10", "2026-11-11", "2026-11-12"]
    first, second, third = rows.values()
    # 11-10: 2.80 + 1.00 = 3.80 of 9.45 = 40.21 %; the day before (11-09) spent 3.00: +0.80, +26.67 %
    assert first["spend_usd"] == D("3.8")
    assert first["share_pct"] == D("40.21")
    assert first["previous_spend_usd"] == D("3")
    assert (first["change_usd"], first["change_pct"]) == (D("0.8"), D("26.67"))
    assert first["partial"] is False
    # 11-11: 4.65 = 49.21 %; against 3.80: +0.85, +22.37 %
    assert (second["spend_usd"], second["share_pct"], second["change_usd"]) == (D("4.65"), D("49.21"), D("0.85"))
    assert second["change_pct"] == D("22.37")
    # 11-12: 1.00 = 10.58 %; against 4.65: −3.65, −78.49 %; the mystery request is counted but unpriced
    assert (third["spend_usd"], third["share_pct"], third["change_usd"]) == (D("1"), D("10.58"), D("-3.65"))
    assert third["change_pct"] == D("-78.49")
    assert (third["requests"], third["unpriced_requests"]) == (2, 1)

    totals = result["totals"]
    assert totals["spend_usd"] == D("9.45")
    assert totals["previous_spend_usd"] == D("5")
    assert (totals["change_usd"], totals["change_pct"]) == (D("4.45"), D("89"))
    assert totals["requests"] == 5
    assert result["previous_period"]["start"] == "2026-11-07T00:00:00"
    assert (result["unpriced_requests"], result["unpriced_models"]) == (1, ["mystery-model"])
    sources = {(s["source"], s["provider"]): s["requests"] for s in result["data_sources"]}
    assert sources == {("request_logs", "openai"): 3, ("request_logs", "anthropic"): 1, ("request_logs", "acme"): 1}


@pytest.mark.anyio
async def test_by_model_compares_with_the_previous_period_and_gives_per_request_figures(spend_data: Settings) -> None:
    result = await call(spend_data, "spend_summary", {"group_by": ["model"], **WINDOW})
    rows = by_label(result)
    # Largest spend first; the unpriced model is a row with no spend, never a zero-cost model.
    assert list(rows) == ["test-claude", "test-gpt", "test-gpt-mini", "mystery-model"]
    claude, gpt, mini, mystery = rows.values()
    # test-claude 4.65 (49.21 %) against 3.00 in the previous period: +1.65, +55 %
    assert (claude["spend_usd"], claude["previous_spend_usd"], claude["change_pct"]) == (D("4.65"), D("3"), D("55"))
    assert claude["cached_input_tokens"] == 100_000
    # test-gpt 2.80 + 1.00 = 3.80 (40.21 %) against 2.00: +1.80, +90 %; two requests: 750k in, 50k out each
    assert (gpt["spend_usd"], gpt["share_pct"], gpt["change_usd"], gpt["change_pct"]) == (
        D("3.8"),
        D("40.21"),
        D("1.8"),
        D("90"),
    )
    assert (gpt["input_tokens_per_request"], gpt["output_tokens_per_request"]) == (D("750000"), D("50000"))
    assert gpt["cost_per_request_usd"] == D("1.9")
    # latency from the request logs: 100 and 200 ms → p50 150 (interpolated)
    assert (gpt["latency_p50_ms"], gpt["latency_requests"]) == (D("150"), 2)
    # test-gpt-mini had nothing before: the change percent is undefined, not infinite
    assert (mini["spend_usd"], mini["change_usd"], mini["change_pct"]) == (D("1"), D("1"), None)
    assert (mystery["spend_usd"], mystery["unpriced_requests"], mystery["cost_per_request_usd"]) == (D("0"), 1, None)
    assert claude["latency_p50_ms"] is None and claude["latency_requests"] == 0
    assert any("latency percentiles cover 3 of 5 requests" in n for n in result["notes"])


@pytest.mark.anyio
async def test_by_feature_reads_request_logs_and_shares_add_up(spend_data: Settings) -> None:
    result = await call(spend_data, "spend_summary", {"group_by": "feature", **WINDOW})
    rows = by_label(result)
    # chat: 2.80 + 4.65 + 1.00 + mystery (unpriced) = 8.45 (89.42 %); before: 2.00 → +6.45, +322.5 %
    assert (rows["chat"]["spend_usd"], rows["chat"]["share_pct"]) == (D("8.45"), D("89.42"))
    assert (rows["chat"]["change_usd"], rows["chat"]["change_pct"]) == (D("6.45"), D("322.5"))
    # search: 1.00 (10.58 %); before: 3.00 → −2.00, −66.67 %
    assert (rows["search"]["spend_usd"], rows["search"]["change_pct"]) == (D("1"), D("-66.67"))
    assert sum(row["share_pct"] for row in rows.values()) == D("100")
    assert any("only imported request logs carry features" in n for n in result["notes"])


@pytest.mark.anyio
async def test_two_dimensions_and_filters(spend_data: Settings) -> None:
    result = await call(spend_data, "spend_summary", {"group_by": ["day", "api_key"], "provider": "OpenAI", **WINDOW})
    rows = by_label(result)
    # OpenAI only: 11-10 key-a 2.80, 11-10 key-b 1.00, 11-12 key-a 1.00; the day before 11-12 key-a spent 0
    assert {label: row["spend_usd"] for label, row in rows.items()} == {
        "2026-11-10 · key-a": D("2.8"),
        "2026-11-10 · key-b": D("1"),
        "2026-11-12 · key-a": D("1"),
    }
    assert result["totals"]["spend_usd"] == D("4.8")
    # the previous day of 11-10 for key-a is 11-09 (an Anthropic request, filtered out), so 0
    assert rows["2026-11-10 · key-a"]["previous_spend_usd"] == D("0")

    model_alias = await call(spend_data, "spend_summary", {"group_by": "project", "model": "openai/test-gpt", **WINDOW})
    assert model_alias["totals"]["spend_usd"] == D("3.8")


@pytest.mark.anyio
async def test_weeks_use_iso_weeks_and_mark_partial_buckets(spend_data: Settings) -> None:
    # 2026-11-10 is a Tuesday: its ISO week starts on Monday 11-09; the window covers Tue–Thu only.
    result = await call(spend_data, "spend_summary", {"group_by": "week", **WINDOW})
    (row,) = result["rows"]
    assert (row["period_start"], row["period_end"], row["partial"]) == ("2026-11-09", "2026-11-16", True)
    # previous span: the same Tue–Thu of the week before (11-03 … 11-06): nothing was spent
    assert (row["spend_usd"], row["previous_spend_usd"]) == (D("9.45"), D("0"))


@pytest.mark.anyio
async def test_empty_days_appear_as_zero_in_a_day_series(test_catalog: Path, settings: Settings) -> None:
    insert(settings, [req(date(2026, 11, 10), input_tokens=1_000_000), req(date(2026, 11, 12), input_tokens=500_000)])
    result = await call(settings, "spend_summary", {"group_by": "day", **WINDOW})
    assert [(r["label"], r["spend_usd"], r["requests"]) for r in result["rows"]] == [
        ("2026-11-10", D("2"), 1),
        ("2026-11-11", D("0"), 0),
        ("2026-11-12", D("1"), 1),
    ]
    assert result["rows"][1]["change_usd"] == D("-2")


@pytest.mark.anyio
async def test_synced_usage_replaces_request_logs_of_the_same_provider_day(
    test_catalog: Path, settings: Settings
) -> None:
    # Request logs: openai 11-10 (1M input: 2.00) and 11-11 (500k: 1.00). Synced usage for openai on 11-11:
    # 2M input tokens in 4 requests (4.00). That day the synced bucket wins; it carries no latency.
    insert(
        settings,
        [
            req(date(2026, 11, 10), input_tokens=1_000_000, latency_ms=250),
            req(date(2026, 11, 11), input_tokens=500_000, latency_ms=350),
        ],
    )
    page = synced_day(
        "openai", date(2026, 11, 11), {"model": "test-gpt", "num_model_requests": 4, "input_tokens": 2_000_000}
    )
    write_batch(App(settings).store, [page])
    result = await call(settings, "spend_summary", {"group_by": "day", "start": "2026-11-10", "end": "2026-11-12"})
    rows = by_label(result)
    assert (rows["2026-11-10"]["spend_usd"], rows["2026-11-10"]["latency_p50_ms"]) == (D("2"), D("250"))
    assert (rows["2026-11-11"]["spend_usd"], rows["2026-11-11"]["requests"]) == (D("4"), 4)
    assert rows["2026-11-11"]["latency_p50_ms"] is None
    assert result["totals"]["spend_usd"] == D("6")
    sources = {(s["source"], s["days"], s["requests"]) for s in result["data_sources"]}
    assert sources == {("request_logs", 1, 1), ("provider_usage", 1, 4)}
    assert any("latency percentiles cover 1 of 5 requests" in n for n in result["notes"])


@pytest.mark.anyio
async def test_limit_keeps_the_biggest_groups_and_sums_the_rest(spend_data: Settings) -> None:
    result = await call(spend_data, "spend_summary", {"group_by": "model", "limit": 2, **WINDOW})
    assert [r["label"] for r in result["rows"]] == ["test-claude", "test-gpt"]
    # test-gpt-mini (1.00) and mystery-model (0) are left out of rows but not of totals
    assert (result["omitted_rows"], result["omitted_spend_usd"]) == (2, D("1"))
    assert result["totals"]["spend_usd"] == D("9.45")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"group_by": "colour"}, "group_by"),
        ({"group_by": []}, "group_by"),
        ({"group_by": ["day", "week"]}, "group_by"),
        ({"group_by": "day", "start": "yesterday"}, "start"),
        ({"group_by": "day", "days": 0}, "days"),
        ({"group_by": "day", "provider": " "}, "provider"),
    ],
)
async def test_bad_arguments_are_tool_errors_naming_the_field(
    test_catalog: Path, settings: Settings, args: dict[str, object], field: str
) -> None:
    text = await call_error(settings, "spend_summary", args)
    assert field in text


@pytest.mark.anyio
async def test_no_usage_gives_zero_totals_and_says_latency_is_missing(test_catalog: Path, settings: Settings) -> None:
    result = await call(settings, "spend_summary", {"group_by": "model", "days": 7})
    assert result["rows"] == []
    assert result["totals"]["spend_usd"] == D("0")
    assert result["totals"]["change_pct"] is None
    assert result["data_sources"] == []
    assert isinstance(datetime.fromisoformat(result["period"]["end"]), datetime)
    assert Decimal(result["omitted_spend_usd"]) == 0
