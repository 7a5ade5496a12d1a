"""estimate_prompt and lookup_pricing through an in-memory MCP client: counts, money, aliases, errors.

Prices come from tests/data/test_pricing.json (the `test_server` below installs it the way the
`test_catalog` fixture does) unless a test says it uses the real catalog (`real_server`). Today (the tool's clock) is after 2026-06-01, so test-gpt is at its current
prices: input $2, cached input $0.50, output $8 per million tokens; batch $1/$4; priority $4/$16
(cached $1). Every figure below is worked out by hand in a comment.
"""

from __future__ import annotations

import gzip
import shutil
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client
from mcp.server import MCPServer

from costhawk_mcp import tokens
from costhawk_mcp.config import Settings
from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.pricing.catalog import load_catalog
from costhawk_mcp.pricing.cost import TokenUsage, cost
from costhawk_mcp.server import build_server

pytestmark = pytest.mark.anyio
D = Decimal

TEST_PRICING = Path(__file__).parent / "data" / "test_pricing.json"
PROSE_1000 = "hello" + " hello" * 999  # 1000 tokens in o200k and in cl100k (one per word)


async def call(server: MCPServer, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a tool that must succeed; its structured result."""
    async with Client(server) as client:
        result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def fail(server: MCPServer, tool: str, arguments: dict[str, Any]) -> str:
    """Call a tool that must fail with a readable tool error; its text."""
    async with Client(server) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    assert "internal error" not in text, text
    return text


@pytest.fixture(scope="module")
def test_server(tmp_path_factory: pytest.TempPathFactory) -> MCPServer:
    """One server per module over tests/data/test_pricing.json, installed as the test_catalog fixture does.

    Building a server costs a few hundred milliseconds, so the tests share one; each opens its own client.
    """
    home = tmp_path_factory.mktemp("costhawk-home")
    shutil.copy(TEST_PRICING, home / "pricing.json")
    return build_server(Settings.from_env({"COSTHAWK_HOME": str(home)}))


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> MCPServer:
    """One server per module over the packaged catalog (data/pricing.json)."""
    return build_server(Settings.from_env({"COSTHAWK_HOME": str(tmp_path_factory.mktemp("costhawk-home"))}))


def close_matches(message: str) -> list[str]:
    """The suggestions listed by an unknown-model error."""
    return message.split("close matches: ", 1)[1].split(", ")


# --- money ----------------------------------------------------------------------------------------


async def test_plain_prompt_is_priced_at_the_current_input_and_output_rates(test_server: MCPServer) -> None:
    result = await call(
        test_server, "estimate_prompt", {"model": "test-gpt", "text": PROSE_1000, "expected_output_tokens": 500}
    )
    # input 1000 × $2/M = 0.002; output 500 × $8/M = 0.004; total 0.006
    assert result["input_tokens"] == result["input_tokens_low"] == result["input_tokens_high"] == 1000
    assert (result["token_count_method"], result["encoding"]) == ("exact", "o200k_base")
    assert result["input_cost_usd"] == 0.002
    assert result["cached_input_cost_usd"] == 0
    assert result["output_cost_usd"] == 0.004
    assert result["total_cost_usd"] == result["total_cost_low_usd"] == result["total_cost_high_usd"] == 0.006
    assert result["price"] == {
        "tier": "standard",
        "long_context": False,
        "input_per_mtok": 2.0,
        "cached_input_per_mtok": 0.5,
        "output_per_mtok": 8.0,
        "effective_from": "2026-06-01",
    }
    assert (result["fits_context"], result["context_window"], result["max_output_tokens"]) == (True, 100000, 10000)
    assert result["notes"] == [] and result["comparisons"] == [] and result["cheapest_model"] == "test-gpt"
    assert result["batch"] is False


async def test_cache_reads_are_priced_at_the_cached_input_rate(test_server: MCPServer) -> None:
    result = await call(
        test_server,
        "estimate_prompt",
        {"model": "test-gpt", "text": PROSE_1000, "expected_output_tokens": 500, "cached_input_tokens": 400},
    )
    # uncached 600 × $2/M = 0.0012; cache reads 400 × $0.50/M = 0.0002; prompt side 0.0014
    # output 500 × $8/M = 0.004; total 0.0054
    assert result["cached_input_tokens"] == 400
    assert result["cached_input_cost_usd"] == 0.0002
    assert result["input_cost_usd"] == 0.0014
    assert result["total_cost_usd"] == 0.0054


async def test_batch_prompts_are_priced_at_batch_rates(test_server: MCPServer) -> None:
    result = await call(
        test_server,
        "estimate_prompt",
        {"model": "test-gpt", "text": PROSE_1000, "expected_output_tokens": 500, "batch": True},
    )
    # input 1000 × $1/M = 0.001; output 500 × $4/M = 0.002; total 0.003
    assert (result["batch"], result["price"]["tier"]) == (True, "batch")
    assert (result["input_cost_usd"], result["output_cost_usd"], result["total_cost_usd"]) == (0.001, 0.002, 0.003)
    cached = await call(
        test_server,
        "estimate_prompt",
        {
            "model": "test-gpt",
            "text": PROSE_1000,
            "expected_output_tokens": 500,
            "batch": True,
            "cached_input_tokens": 400,
        },
    )
    # test-gpt's batch tier lists no cache price, so cache reads fall back to standard's $0.50:
    # uncached 600 × $1/M = 0.0006; cached 400 × $0.50/M = 0.0002; output 0.002; total 0.0028
    assert cached["total_cost_usd"] == 0.0028


def test_long_context_prices_apply_to_the_whole_request_above_the_threshold(test_catalog: Path) -> None:
    claude = load_catalog(test_catalog).get("test-claude")
    today = date(2026, 11, 27)
    at_threshold = cost(claude, TokenUsage(input_tokens=200_000, output_tokens=1000), at=today)
    # exactly 200,000 input tokens is not above the threshold: 200000 × $3/M = 0.6; 1000 × $15/M = 0.015
    assert at_threshold.total_usd == D("0.615") and not at_threshold.rates.long_context
    above = cost(claude, TokenUsage(input_tokens=200_001, output_tokens=1000), at=today)
    # one more token switches the whole request: 200001 × $6/M = 1.200006; 1000 × $22.50/M = 0.0225
    assert above.total_usd == D("1.222506") and above.rates.long_context
    cached = cost(
        claude,
        TokenUsage(input_tokens=200_001, cached_input_tokens=100_000, cache_write_tokens=1, output_tokens=1000),
        at=today,
    )
    # cache reads count toward the threshold: uncached 100000 × $6/M = 0.6; reads 100000 × $0.60/M = 0.06;
    # 5-minute write 1 × $7.50/M = 0.0000075; output 0.0225; total 0.6825075
    assert cached.total_usd == D("0.6825075")
    batch = cost(claude, TokenUsage(input_tokens=200_001, output_tokens=1000), at=today, tier="batch")
    # long-context batch: 200001 × $3/M = 0.600003; 1000 × $11.25/M = 0.01125; total 0.611253
    assert batch.total_usd == D("0.611253")


async def test_a_prompt_past_the_long_context_threshold_is_priced_long_through_the_tool(test_server: MCPServer) -> None:
    text = "hello" + " hello" * 169_999  # 170,000 o200k tokens
    result = await call(test_server, "estimate_prompt", {"model": "test-claude", "text": text})
    # Claude is approximated: prose 170000 × 1.18 = 200,600 (> 200,000), band 187,000–221,000.
    # 200600 × $6/M = 1.2036 (long context); low 187000 × $3/M = 0.561 (below the threshold);
    # high 221000 × $6/M = 1.326
    assert (result["input_tokens"], result["input_tokens_low"], result["input_tokens_high"]) == (200600, 187000, 221000)
    assert result["token_count_method"] == "approximate"
    assert result["price"]["long_context"] is True and result["price"]["input_per_mtok"] == 6.0
    assert result["total_cost_usd"] == 1.2036
    assert (result["total_cost_low_usd"], result["total_cost_high_usd"]) == (0.561, 1.326)
    assert any("long-context prices apply to the whole request" in note for note in result["notes"])


def test_priority_tier_has_its_own_rates_and_missing_tiers_fall_back_to_standard(test_catalog: Path) -> None:
    catalog = load_catalog(test_catalog)
    usage = TokenUsage(input_tokens=1_000_000, cached_input_tokens=500_000, output_tokens=100_000)
    priority = cost(catalog.get("test-gpt"), usage, at=date(2026, 11, 27), tier="priority")
    # uncached 500000 × $4/M = 2; cached 500000 × $1/M = 0.5; output 100000 × $16/M = 1.6; total 4.1
    assert priority.total_usd == D("4.1") and priority.rates.notes == ()
    flex = cost(catalog.get("test-gpt"), usage, at=date(2026, 11, 27), tier="flex")
    # no flex prices: standard 500000 × $2/M = 1; 500000 × $0.50/M = 0.25; 100000 × $8/M = 0.8; total 2.05
    assert flex.total_usd == D("2.05")
    assert flex.rates.notes == ("no flex price for this model; priced at the standard rate",)
    small = TokenUsage(input_tokens=100_000, cached_input_tokens=50_000, output_tokens=10_000)
    claude = cost(catalog.get("test-claude"), small, at=date(2026, 11, 27), tier="priority")
    # no priority prices: 50000 × $3/M = 0.15; 50000 × $0.30/M = 0.015; 10000 × $15/M = 0.15; total 0.315
    assert claude.total_usd == D("0.315") and claude.rates.tier == "priority"
    assert claude.rates.notes == ("no priority price for this model; priced at the standard rate",)


def test_price_history_switches_on_the_effective_date(test_catalog: Path) -> None:
    gpt = load_catalog(test_catalog).get("test-gpt")
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    # before 2026-06-01: $10 + $40 = 50; from it: $2 + $8 = 10
    assert cost(gpt, usage, at=date(2026, 5, 31)).total_usd == D("50")
    assert cost(gpt, usage, at=date(2026, 6, 1)).total_usd == D("10")
    assert cost(gpt, usage, at=datetime(2026, 5, 31, 23, 59, 59)).total_usd == D("50")  # naive = UTC
    # 23:30 at UTC-1 is 00:30 UTC on June 1st
    late = datetime(2026, 5, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1)))
    assert cost(gpt, usage, at=late).total_usd == D("10")
    # the older period has no priority tier: priority before the switch is standard's $50
    assert cost(gpt, usage, at=date(2026, 5, 31), tier="priority").total_usd == D("50")
    # batch before the switch: $5 + $20 = 25
    assert cost(gpt, usage, at=date(2026, 5, 31), tier="batch").total_usd == D("25")


async def test_lookup_pricing_on_a_date_shows_the_prices_then_in_force(test_server: MCPServer) -> None:
    before = await call(test_server, "lookup_pricing", {"model": "test-gpt", "on_date": "2026-05-31"})
    assert (before["input_per_mtok"], before["output_per_mtok"], before["cached_input_per_mtok"]) == (10, 40, 5)
    assert (before["batch_input_per_mtok"], before["batch_output_per_mtok"]) == (5, 20)
    assert before["priority_input_per_mtok"] is None and before["effective_from"] is None
    assert [(p["effective_from"], p["input_per_mtok"]) for p in before["history"]] == [("2026-06-01", 2)]
    after = await call(test_server, "lookup_pricing", {"model": "test-gpt", "on_date": "2026-06-01"})
    assert (after["input_per_mtok"], after["output_per_mtok"], after["cached_input_per_mtok"]) == (2, 8, 0.5)
    assert (after["priority_input_per_mtok"], after["priority_output_per_mtok"]) == (4, 16)
    assert after["effective_from"] == "2026-06-01"
    assert [(p["effective_to"], p["input_per_mtok"], p["output_per_mtok"]) for p in after["history"]] == [
        ("2026-06-01", 10, 40)
    ]
    today = await call(test_server, "lookup_pricing", {"model": "test-gpt"})
    assert today == after


async def test_real_catalog_o3_price_cut_on_2025_06_10(real_server: MCPServer) -> None:
    before = await call(real_server, "lookup_pricing", {"model": "o3", "on_date": "2025-06-09"})
    after = await call(real_server, "lookup_pricing", {"model": "o3", "on_date": "2025-06-10"})
    assert (before["input_per_mtok"], before["output_per_mtok"]) == (10, 40)
    assert (after["input_per_mtok"], after["output_per_mtok"], after["effective_from"]) == (2, 8, "2025-06-10")
    o3 = load_catalog().get("o3")
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    # before: $10 + $40 = 50; from 2025-06-10: $2 + $8 = 10
    assert cost(o3, usage, at=date(2025, 6, 9)).total_usd == D("50")
    assert cost(o3, usage, at=date(2025, 6, 10)).total_usd == D("10")


async def test_real_catalog_estimates_are_exact_for_openai_and_approximate_elsewhere(real_server: MCPServer) -> None:
    result = await call(
        real_server,
        "estimate_prompt",
        {
            "model": "gpt-4o",
            "text": PROSE_1000,
            "expected_output_tokens": 1000,
            "compare_models": ["claude-sonnet-4-5", "gemini-2.5-flash", "o3"],
        },
    )
    # gpt-4o $2.50/$10: 1000 × 2.5/M + 1000 × 10/M = 0.0025 + 0.01 = 0.0125
    assert (result["model"], result["token_count_method"], result["total_cost_usd"]) == ("gpt-4o", "exact", 0.0125)
    by_model = {c["model"]: c for c in result["comparisons"]}
    # o3 today $2/$8: 0.002 + 0.008 = 0.01
    assert (by_model["o3"]["token_count_method"], by_model["o3"]["total_cost_usd"]) == ("exact", 0.01)
    # claude-sonnet-4-5 $3/$15, 1000 × 1.18 = 1180 tokens: 0.00354 + 0.015 = 0.01854
    claude = by_model["claude-sonnet-4-5"]
    assert (claude["token_count_method"], claude["input_tokens"], claude["total_cost_usd"]) == (
        "approximate",
        1180,
        0.01854,
    )
    assert by_model["gemini-2.5-flash"]["token_count_method"] == "approximate"


# --- aliases --------------------------------------------------------------------------------------

TEST_ALIASES = [
    ("TEST-GPT", "test-gpt"),
    ("test-gpt-2026-01-01", "test-gpt"),
    ("Test-GPT-2026-09-15", "test-gpt"),  # a dated snapshot the catalog does not list
    ("openai/test-gpt", "test-gpt"),
    ("ft:test-gpt-2026-01-01:my-org::abc123", "test-gpt"),  # fine-tune priced as its base
    ("anthropic/test-claude", "test-claude"),
    ("test-claude-20260101", "test-claude"),
    ("gemini/test-gemini", "test-gemini"),
    ("models/test-gemini", "test-gemini"),
    ("  test-gpt-mini  ", "test-gpt-mini"),
]


@pytest.mark.parametrize(("alias", "canonical"), TEST_ALIASES)
async def test_every_alias_form_resolves_in_both_tools(test_server: MCPServer, alias: str, canonical: str) -> None:
    estimate = await call(test_server, "estimate_prompt", {"model": alias, "text": "hi", "compare_models": [alias]})
    assert estimate["model"] == canonical
    assert estimate["comparisons"] == []  # comparing a model with itself adds nothing
    assert (await call(test_server, "lookup_pricing", {"model": alias}))["model"] == canonical


REAL_ALIASES = [
    ("GPT-4o", "gpt-4o"),
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("openai/gpt-4o", "gpt-4o"),
    ("ft:gpt-4o-2024-08-06:org::abc123", "ft:gpt-4o-2024-08-06"),  # the catalog lists fine-tune prices
    ("gemini/gemini-2.5-flash", "gemini-2.5-flash"),
    ("models/gemini-2.5-flash", "gemini-2.5-flash"),
    ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
]


@pytest.mark.parametrize(("alias", "canonical"), REAL_ALIASES)
async def test_real_catalog_alias_forms_resolve(real_server: MCPServer, alias: str, canonical: str) -> None:
    assert (await call(real_server, "lookup_pricing", {"model": alias}))["model"] == canonical


async def test_real_catalog_fine_tunes_cost_more_than_their_base(real_server: MCPServer) -> None:
    base = await call(real_server, "lookup_pricing", {"model": "gpt-4o-2024-08-06"})
    tuned = await call(real_server, "lookup_pricing", {"model": "ft:gpt-4o-2024-08-06:org::abc123"})
    assert (tuned["input_per_mtok"], tuned["output_per_mtok"]) == (3.75, 15)
    assert tuned["input_per_mtok"] > base["input_per_mtok"]


# --- errors ---------------------------------------------------------------------------------------


async def test_unknown_models_name_the_field_and_list_at_most_five_close_matches(test_server: MCPServer) -> None:
    message = await fail(test_server, "estimate_prompt", {"model": "test-gtp", "text": "hi"})
    assert "model: unknown model 'test-gtp'" in message
    matches = close_matches(message)
    assert matches[0] == "test-gpt" and 1 <= len(matches) <= 5
    message = await fail(
        test_server,
        "estimate_prompt",
        {"model": "test-gpt", "text": "hi", "compare_models": ["test-claude", "test-gemni"]},
    )
    assert "compare_models[1]: unknown model 'test-gemni'" in message
    assert close_matches(message)[0] == "test-gemini"
    message = await fail(test_server, "lookup_pricing", {"model": "qqqqqqq"})
    assert "model: unknown model 'qqqqqqq'; every known model is in the pricing://models resource" in message


async def test_real_catalog_unknown_model_suggests_five(real_server: MCPServer) -> None:
    message = await fail(real_server, "estimate_prompt", {"model": "gpt-4oo", "text": "hi"})
    matches = close_matches(message)
    assert matches[0] == "gpt-4o" and len(matches) == 5


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"model": "test-gpt"}, "text: give exactly one of 'text' (a string) or 'messages'"),
        (
            {"model": "test-gpt", "text": "hi", "messages": [{"role": "user", "content": "hi"}]},
            "text: give exactly one of 'text' (a string) or 'messages'",
        ),
        ({"model": "test-gpt", "messages": []}, "messages: must hold at least one"),
        ({"model": "", "text": "hi"}, "model: a model id is required"),
        ({"model": "test-gpt", "text": "hi", "compare_models": [" "]}, "compare_models[0]: a model id is required"),
    ],
)
async def test_contradictory_arguments_are_clear_tool_errors(
    test_server: MCPServer, arguments: dict[str, Any], expected: str
) -> None:
    assert expected in await fail(test_server, "estimate_prompt", arguments)


async def test_cached_tokens_above_the_count_report_the_count(test_server: MCPServer) -> None:
    message = await fail(
        test_server, "estimate_prompt", {"model": "test-gpt", "text": "hello world", "cached_input_tokens": 3}
    )
    # "hello world" is 2 tokens
    assert message.endswith("cached_input_tokens: 3 is more than the prompt's 2 input tokens on test-gpt")


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"model": "test-gpt", "text": "hi", "expected_output_tokens": "lots"}, "expected_output_tokens"),
        ({"model": "test-gpt", "text": "hi", "expected_output_tokens": -1}, "expected_output_tokens"),
        ({"model": "test-gpt", "text": "hi", "expected_output_tokens": 10_000_001}, "expected_output_tokens"),
        ({"model": "test-gpt", "text": "hi", "cached_input_tokens": -5}, "cached_input_tokens"),
        ({"model": "test-gpt", "text": "hi", "batch": "maybe"}, "batch"),
        ({"model": "test-gpt", "text": "hi", "compare_models": "test-claude"}, "compare_models"),
        ({"model": "test-gpt", "text": 123}, "text"),
        ({"model": 7, "text": "hi"}, "model"),
        ({"text": "hi"}, "model"),
        ({"model": "test-gpt", "messages": [{"role": "wizard", "content": "hi"}]}, "messages"),
        ({"model": "test-gpt", "messages": [{"role": "user"}]}, "messages"),
        ({"model": "test-gpt", "messages": "hi"}, "messages"),
    ],
)
async def test_wrong_types_are_tool_errors_naming_the_field(
    test_server: MCPServer, arguments: dict[str, Any], field: str
) -> None:
    assert field in await fail(test_server, "estimate_prompt", arguments)


@pytest.mark.parametrize("on_date", ["yesterday", "2026-02-30", 20260101])
async def test_lookup_pricing_rejects_bad_dates(test_server: MCPServer, on_date: object) -> None:
    assert "on_date" in await fail(test_server, "lookup_pricing", {"model": "test-gpt", "on_date": on_date})


@pytest.mark.usefixtures("test_catalog")
async def test_inputs_above_the_byte_limit_are_tool_errors_naming_field_and_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COSTHAWK_MAX_INPUT_BYTES", "1000")
    small = build_server(Settings.from_env())
    message = await fail(small, "estimate_prompt", {"model": "test-gpt", "text": "x" * 1001})
    assert "text: 1,001 bytes is above the limit of 1,000 bytes (set COSTHAWK_MAX_INPUT_BYTES to change it)" in message
    message = await fail(
        small, "estimate_prompt", {"model": "test-gpt", "messages": [{"role": "user", "content": "é" * 600}]}
    )
    # 600 × 2 bytes + "user" (4) = 1,204 bytes
    assert "messages: 1,204 bytes is above the limit of 1,000 bytes" in message
    assert (await call(small, "estimate_prompt", {"model": "test-gpt", "text": "x" * 1000}))["input_tokens"] > 0


async def test_a_corrupt_tokenizer_file_reaches_the_client_as_a_clear_error(
    test_server: MCPServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.tiktoken.gz"
    bad.write_bytes(gzip.compress(b"not a tokenizer\n"))
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tokens, "data_file", lambda *parts: bad)
    message = await fail(test_server, "estimate_prompt", {"model": "test-gpt", "text": "hi"})
    assert "the o200k_base tokenizer file is corrupt" in message and "reinstall costhawk-mcp" in message


# --- chat messages, comparisons, notes ------------------------------------------------------------


async def test_chat_messages_follow_the_recipe_through_the_tool(test_server: MCPServer) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": " world"}],
            "name": "bob",
        },
        {"role": "assistant", "content": "Hi"},
    ]
    result = await call(test_server, "estimate_prompt", {"model": "test-gpt", "messages": messages})
    # (3 + system 1 + 4) + (3 + user 1 + "hello world" 2 + name 1 + "bob" 1) + (3 + assistant 1 + "Hi" 1) + 3 = 24
    assert result["input_tokens"] == 24
    assert result["token_count_detail"].endswith("OpenAI chat recipe")
    # 24 × $2/M = 0.000048
    assert result["total_cost_usd"] == 0.000048


async def test_comparisons_are_sorted_cheapest_first_each_with_its_own_count(test_server: MCPServer) -> None:
    result = await call(
        test_server,
        "estimate_prompt",
        {
            "model": "test-gpt",
            "text": PROSE_1000,
            "expected_output_tokens": 1000,
            "compare_models": [
                "test-claude",
                "test-legacy",
                "TEST-GPT",
                "test-gemini",
                "anthropic/test-claude",
                "test-gpt-mini",
            ],
        },
    )
    # test-gpt       1000 exact:  1000 × $2/M + 1000 × $8/M         = 0.002 + 0.008     = 0.01
    # test-gpt-mini  1000 exact:  1000 × $0.20/M + 1000 × $0.80/M   = 0.0002 + 0.0008   = 0.001
    # test-gemini    1000 × 1.00: 1000 × $1.25/M + 1000 × $10/M     = 0.00125 + 0.01    = 0.01125
    # test-claude    1000 × 1.18: 1180 × $3/M + 1000 × $15/M        = 0.00354 + 0.015   = 0.01854
    # test-legacy    1000 cl100k: 1000 × $30/M + 1000 × $60/M       = 0.03 + 0.06       = 0.09
    assert result["total_cost_usd"] == 0.01
    rows = [
        (c["model"], c["input_tokens"], c["token_count_method"], c["total_cost_usd"]) for c in result["comparisons"]
    ]
    assert rows == [
        ("test-gpt-mini", 1000, "exact", 0.001),
        ("test-gemini", 1000, "approximate", 0.01125),
        ("test-claude", 1180, "approximate", 0.01854),
        ("test-legacy", 1000, "exact", 0.09),
    ]
    assert result["cheapest_model"] == "test-gpt-mini"
    legacy = result["comparisons"][-1]
    assert legacy["encoding"] == "cl100k_base"
    assert "test-legacy was deprecated on 2025-01-01; successor: test-gpt" in legacy["notes"]


async def test_each_compared_model_counts_with_its_own_tokenizer(test_server: MCPServer) -> None:
    text = "東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다."
    result = await call(
        test_server, "estimate_prompt", {"model": "test-gpt", "text": text, "compare_models": ["test-legacy"]}
    )
    o200k = len(tokens.get_encoding("o200k_base").encode_ordinary(text))
    cl100k = len(tokens.get_encoding("cl100k_base").encode_ordinary(text))
    assert o200k != cl100k
    assert result["input_tokens"] == o200k
    assert result["comparisons"][0]["input_tokens"] == cl100k


async def test_cache_share_carries_over_to_compared_models(test_server: MCPServer) -> None:
    result = await call(
        test_server,
        "estimate_prompt",
        {
            "model": "test-gpt",
            "text": PROSE_1000,
            "expected_output_tokens": 1000,
            "cached_input_tokens": 500,
            "compare_models": ["test-claude"],
        },
    )
    claude = result["comparisons"][0]
    # half of test-gpt's 1000 tokens are cached, so half of Claude's 1180: 590.
    # uncached 590 × $3/M = 0.00177; cached 590 × $0.30/M = 0.000177; output 1000 × $15/M = 0.015
    # total 0.016947
    assert claude["cached_input_tokens"] == 590
    assert claude["total_cost_usd"] == 0.016947
    assert "cached_input_tokens scaled to the same share of the prompt (590 of 1180)" in claude["notes"]


async def test_notes_flag_context_overflow_output_above_max_and_deprecation(test_server: MCPServer) -> None:
    text = "hello" + " hello" * 8999  # 9000 cl100k tokens, above test-legacy's 8000 window
    result = await call(
        test_server, "estimate_prompt", {"model": "test-legacy", "text": text, "expected_output_tokens": 100}
    )
    assert result["fits_context"] is False
    assert "input + output (9100) exceed the context window (8000)" in result["notes"]
    assert "test-legacy was deprecated on 2025-01-01; successor: test-gpt" in result["notes"]
    big_output = await call(
        test_server, "estimate_prompt", {"model": "test-gpt", "text": "hi", "expected_output_tokens": 20000}
    )
    assert "expected output (20000) is above the model's max output (10000)" in big_output["notes"]
    # 1 × $2/M + 20000 × $8/M = 0.000002 + 0.16 = 0.160002
    assert big_output["total_cost_usd"] == 0.160002


async def test_embedding_models_price_input_only(test_server: MCPServer) -> None:
    result = await call(
        test_server, "estimate_prompt", {"model": "test-embed", "text": PROSE_1000, "expected_output_tokens": 10}
    )
    # 1000 cl100k tokens × $0.02/M = 0.00002; output rate 0
    assert (result["encoding"], result["total_cost_usd"]) == ("cl100k_base", 0.00002)
    assert any(note.startswith("embedding models produce no output tokens") for note in result["notes"])


def test_estimate_requires_exactly_one_prompt_form_in_the_domain_function(test_catalog: Path) -> None:
    from costhawk_mcp.analytics.estimate import estimate_prompt

    catalog = load_catalog(test_catalog)
    with pytest.raises(InvalidArgument) as raised:
        estimate_prompt(
            catalog,
            model="test-gpt",
            text=None,
            messages=None,
            expected_output_tokens=0,
            cached_input_tokens=0,
            batch=False,
            compare_models=[],
            max_input_bytes=1000,
        )
    assert raised.value.field == "text"
    # a fixed clock prices at that day's rates: before the switch, 1000 × $10/M = 0.01
    result = estimate_prompt(
        catalog,
        model="test-gpt",
        text=PROSE_1000,
        messages=None,
        expected_output_tokens=0,
        cached_input_tokens=0,
        batch=False,
        compare_models=[],
        max_input_bytes=10_000,
        now=datetime(2026, 5, 1, tzinfo=timezone.utc),
    )
    assert result.total_cost_usd == D("0.01") and result.price.effective_from is None
