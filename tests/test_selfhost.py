"""selfhost_breakeven through the MCP client, with break-even figures worked out by hand.

Test catalog prices (USD per million tokens): test-gpt 2 in / 0.5 cached / 8 out (from 2026-06-01);
test-gpt-mini 0.2 in / 0.8 out; test-claude 3 in / 15 out.
Defaults: 2 GPUs × $2.50/h × 24 h = $120 a day for 5,000 tokens/s × 86,400 s = 432,000,000 tokens a day.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from client_support import call_error, insert
from costhawk_mcp.config import Settings
from insight_support import D, call, money, req

pytestmark = pytest.mark.anyio


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _history(settings: Settings) -> None:
    now = _now()
    rows = [
        # Three requests in the last 30 days: 800,000 input (200,000 of them cache reads) and 200,000 output.
        req(now - timedelta(days=d), "test-gpt", input_tokens=800_000, cached=200_000, output_tokens=200_000)
        for d in (1, 2, 3)
    ]
    rows.append(req(now - timedelta(days=40), "test-gpt", input_tokens=5_000_000, output_tokens=0))  # too old
    rows.append(req(now - timedelta(days=1), "test-claude", input_tokens=5_000_000, output_tokens=0))  # other model
    insert(settings, rows)


async def test_break_even_uses_the_orgs_own_token_mix(test_catalog: Path, settings: Settings) -> None:
    _history(settings)

    result = await call(settings, "selfhost_breakeven", {"model": "test-gpt", "tokens_per_day": 100_000_000})

    # Per 1,000,000 tokens of the org's mix: 600,000 uncached × 2 + 200,000 cached × 0.5 + 200,000 out × 8
    # = 1.2 + 0.1 + 1.6 = $2.90, so $2.90 per million tokens.
    assert result["history_requests"] == 3
    assert result["history_tokens"] == 3_000_000
    api = result["api"]
    assert api["blended_usd_per_mtok"] == 2.9
    assert (api["input_share_pct"], api["cached_share_of_input_pct"], api["output_share_pct"]) == (80.0, 25.0, 20.0)
    # 100,000,000 tokens/day × $2.90/M = $290 a day, $8,700 a month.
    assert D(api["usd_per_day"]) == money("290")
    assert D(api["usd_per_month"]) == money("8700")
    hosted = result["self_hosted"]
    assert D(hosted["usd_per_day"]) == money("120")
    assert D(hosted["usd_per_month"]) == money("3600")
    assert hosted["capacity_tokens_per_day"] == 432_000_000
    assert hosted["deployments_needed"] == 1
    assert hosted["utilisation_pct"] == 23.15  # 100M / 432M
    # Break-even: $120 a day ÷ $2.90 per million = 41,379,310.34 tokens a day, 9.58 % of 432M.
    assert result["break_even_tokens_per_day"] == pytest.approx(41_379_310.3448, abs=1e-3)
    assert result["break_even_utilisation_pct"] == 9.58
    assert result["cheaper_at_this_volume"] == "self_hosted"
    assert D(result["monthly_difference_usd"]) == money("5100")  # (290 − 120) × 30
    assert result["volume_source"] == "argument"
    assert "41,379,310 tokens/day" in result["verdict"]
    sources = {a["name"]: a["source"] for a in result["assumptions"]}
    assert sources == {
        "token_mix": "store",
        "tokens_per_day": "argument",
        "gpu_hourly_usd": "default",
        "gpus": "default",
        "tokens_per_second": "default",
        "api_tokens_per_open_model_token": "catalog",
        "hours_per_day": "default",
    }
    assert any("engineering" in c for c in result["caveats"])
    assert any("quality" in c for c in result["caveats"])


async def test_volume_defaults_to_the_last_30_days_in_the_store(test_catalog: Path, settings: Settings) -> None:
    _history(settings)

    result = await call(settings, "selfhost_breakeven", {"model": "test-gpt"})

    assert result["volume_source"] == "store"
    # The window's first usage is 3 days ago, so the daily volume is 3,000,000 tokens over the days since
    # that usage's UTC midnight (3 to 4 days, depending on the time of day the test runs).
    observed = result["history_days_observed"]
    assert 3 <= observed <= 4.001
    # (observed is shown to 4 decimals, hence the tolerance)
    assert result["api"]["tokens_per_day"] == pytest.approx(3_000_000 / observed, rel=1e-4)
    # The API side is $2.90 per million of those tokens.
    assert result["api"]["usd_per_day"] == pytest.approx(2.9 * 3_000_000 / observed / 1e6, rel=1e-4)
    assert result["cheaper_at_this_volume"] == "api"
    assert result["data_sources"][0]["source"] == "request_logs"


async def test_overrides_and_a_model_without_history_use_the_stated_default_mix(
    test_catalog: Path, settings: Settings
) -> None:
    result = await call(
        settings,
        "selfhost_breakeven",
        {
            "model": "test-claude",
            "tokens_per_day": 50_000_000,
            "gpu_hourly_usd": 4,
            "gpus": 1,
            "tokens_per_second": 1000,
        },
    )

    # Default mix 75 % input / 25 % output: 0.75 × 3 + 0.25 × 15 = $6 per million tokens.
    assert result["api"]["blended_usd_per_mtok"] == 6.0
    assert D(result["api"]["usd_per_day"]) == money("300")  # 50M × $6/M
    hosted = result["self_hosted"]
    assert D(hosted["usd_per_day"]) == money("96")  # 1 GPU × $4 × 24 h
    assert hosted["capacity_tokens_per_day"] == 86_400_000  # 1,000 tokens/s
    # Claude counts about 1.18 tokens per open-model token: 50M / 1.18 = 42,372,881.36 open-model tokens.
    assert hosted["open_model_tokens_per_day"] == pytest.approx(42_372_881.3559, abs=1e-3)
    assert hosted["utilisation_pct"] == 49.04  # 42.37M / 86.4M
    # Break-even: $96 ÷ $6/M = 16,000,000 API tokens a day = 13,559,322 open-model tokens = 15.69 % of 86.4M.
    assert result["break_even_tokens_per_day"] == pytest.approx(16_000_000, abs=1e-6)
    assert result["break_even_utilisation_pct"] == 15.69
    assert D(result["monthly_difference_usd"]) == money("6120")  # (300 − 96) × 30
    mix = next(a for a in result["assumptions"] if a["name"] == "token_mix")
    assert mix["source"] == "default"
    assert {a["name"]: a["source"] for a in result["assumptions"]}["gpu_hourly_usd"] == "argument"


async def test_no_break_even_when_a_full_deployment_costs_more_per_token_than_the_api(
    test_catalog: Path, settings: Settings
) -> None:
    result = await call(settings, "selfhost_breakeven", {"model": "test-gpt-mini", "tokens_per_second": 100})

    # API: 0.75 × 0.2 + 0.25 × 0.8 = $0.35 per million. GPUs: $120 a day for 8,640,000 tokens =
    # $13.89 per million even at full load, so they never catch up.
    assert result["api"]["blended_usd_per_mtok"] == 0.35
    assert result["self_hosted"]["usd_per_mtok_at_full_load"] == pytest.approx(13.888889, abs=1e-6)
    assert result["break_even_tokens_per_day"] is None
    assert result["break_even_utilisation_pct"] is None
    assert result["verdict"].startswith("Self-hosting never matches the API")
    assert result["volume_source"] == "none"
    assert any("pass tokens_per_day" in c for c in result["caveats"])


async def test_an_unknown_model_is_a_readable_error(test_catalog: Path, settings: Settings) -> None:
    text = await call_error(settings, "selfhost_breakeven", {"model": "test-gtp"})
    assert "unknown model 'test-gtp'" in text and "test-gpt" in text


async def test_throughput_must_be_positive(test_catalog: Path, settings: Settings) -> None:
    text = await call_error(settings, "selfhost_breakeven", {"model": "test-gpt", "tokens_per_second": 0})
    assert "tokens_per_second" in text


async def test_extreme_inputs_are_bounded_and_huge_results_still_serialise(
    test_catalog: Path, settings: Settings
) -> None:
    # Regression (fuzzing): 5e-324 tokens/s made the dollar figures overflow the decimal context, a bare
    # "Error executing tool" crash. Throughput is now at least 1 token/s and volume at most 1e15 tokens/day.
    text = await call_error(settings, "selfhost_breakeven", {"model": "test-gpt", "tokens_per_second": 5e-324})
    assert "tokens_per_second" in text and "greater than or equal to 1" in text
    text = await call_error(settings, "selfhost_breakeven", {"model": "test-gpt", "tokens_per_day": 10**16})
    assert "tokens_per_day" in text
    # The largest allowed volume on the slowest, dearest deployment: 1,024 GPUs x $1,000/h x 24 h = $24,576,000
    # a day for 1 token/s x 86,400 s = 86,400 tokens a day; 1e15 tokens need ceil(1e15 / 86,400) =
    # 11,574,074,075 deployments = $284,444,444,467,200,000 a day, far beyond a float's nano-dollars.
    result = await call(
        settings,
        "selfhost_breakeven",
        {"model": "test-gpt", "tokens_per_day": 10**15, "tokens_per_second": 1, "gpus": 1024, "gpu_hourly_usd": 1000},
    )
    hosted = result["self_hosted"]
    assert hosted["deployments_needed"] == 11_574_074_075
    assert hosted["usd_per_day"] == pytest.approx(284_444_444_467_200_000, rel=1e-12)
    # $24,576,000 / 86,400 tokens x 1,000,000 = $284,444,444.44 per million tokens at full load
    assert hosted["usd_per_mtok_at_full_load"] == pytest.approx(284_444_444.4444, rel=1e-12)
    assert "$284,444,444.44 per million tokens" in result["verdict"]
