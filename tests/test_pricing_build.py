"""The catalog build on tiny hand-made LiteLLM dicts: no genai-prices, no network."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from costhawk_mcp.errors import CatalogError
from costhawk_mcp.pricing import build
from costhawk_mcp.pricing.build import (
    BuildReport,
    HistoricalPrice,
    HistoryModel,
    HistorySource,
    build_catalog,
    catalog_json,
    load_litellm,
    tiktoken_encoding,
)
from costhawk_mcp.pricing.catalog import Catalog, CatalogFile, LongContext, ModelEntry, TierPrices
from costhawk_mcp.pricing.cost import TokenUsage, cost

TODAY = date(2026, 11, 27)
D = Decimal

OVERRIDES: dict[str, Any] = {
    "stacking": {
        "anthropic": {
            "multiplier": "0.5",
            "fields": ["input", "output", "cached_input", "cache_write", "cache_write_1h"],
            "long_context": True,
            "source": "https://example.test/anthropic",
            "why": "test",
        },
        "openai": {
            "multiplier": "0.5",
            "fields": ["input", "output"],
            "long_context": True,
            "source": "https://example.test/openai",
            "why": "test",
        },
    }
}


def entry(provider: str, inp: float, out: float, **extra: Any) -> dict[str, Any]:
    """A LiteLLM entry (per-token floats, as LiteLLM writes them)."""
    return {
        "litellm_provider": provider,
        "mode": "chat",
        "input_cost_per_token": inp,
        "output_cost_per_token": out,
        **extra,
    }


def make(
    litellm: dict[str, Any],
    *,
    overrides: dict[str, Any] | None = None,
    history: HistorySource | None = None,
    previous: CatalogFile | None = None,
    today: date = TODAY,
    report: BuildReport | None = None,
) -> dict[str, ModelEntry]:
    catalog = build_catalog(
        litellm,
        overrides=OVERRIDES if overrides is None else overrides,
        history=history,
        today=today,
        previous=previous,
        report=report,
    )
    return {model.model: model for model in catalog.models}


def test_selects_first_party_chat_and_openai_embeddings_only() -> None:
    models = make(
        {
            "gpt-4o": entry("openai", 2.5e-06, 1e-05),
            "azure/gpt-4o": entry("azure", 2.5e-06, 1e-05),
            "gpt-4o-mini-tts": {**entry("openai", 6e-07, 1.2e-05), "mode": "audio_speech"},
            "text-embedding-3-small": {**entry("openai", 2e-08, 0.0), "mode": "embedding"},
            "gemini/gemini-embedding-001": {**entry("gemini", 1.5e-07, 0.0), "mode": "embedding"},
            "gpt-5-codex": {**entry("openai", 1.25e-06, 1e-05), "mode": "responses"},
            "openai/container": {"litellm_provider": "openai", "mode": "chat"},
            "sample_spec": "not an entry",
        }
    )
    assert sorted(models) == ["gpt-4o", "gpt-5-codex", "text-embedding-3-small"]
    assert models["text-embedding-3-small"].mode == "embedding"
    assert models["text-embedding-3-small"].current.standard.output == 0
    assert models["gpt-5-codex"].mode == "chat"


def test_prices_are_exact_decimals_per_million() -> None:
    models = make({"m": entry("mistral", 2.8e-08, 3e-05, cache_read_input_token_cost=1.25e-07)})
    standard = models["m"].current.standard
    assert (standard.input, standard.output, standard.cached_input) == (D("0.028"), D("30"), D("0.125"))
    assert str(standard.output) == "30"


def test_anthropic_batch_discount_stacks_on_cache_prices() -> None:
    models = make(
        {
            "claude-x": entry(
                "anthropic",
                3e-06,
                1.5e-05,
                input_cost_per_token_batches=1.5e-06,
                output_cost_per_token_batches=7.5e-06,
                cache_read_input_token_cost=3e-07,
                cache_creation_input_token_cost=3.75e-06,
                cache_creation_input_token_cost_above_1hr=6e-06,
                cache_creation_input_token_cost_batches=1.875e-06,
            )
        }
    )
    period = models["claude-x"].current
    assert period.batch == TierPrices(
        input=D("1.5"), output=D("7.5"), cached_input=D("0.15"), cache_write=D("1.875"), cache_write_1h=D("3")
    )
    assert period.source == "litellm + overrides"


def test_openai_rule_leaves_batch_cache_reads_to_litellm() -> None:
    models = make(
        {
            "gpt-a": entry(
                "openai",
                2e-06,
                8e-06,
                cache_read_input_token_cost=5e-07,
                input_cost_per_token_batches=1e-06,
                output_cost_per_token_batches=4e-06,
            ),
            "gpt-b": entry("openai", 2e-06, 8e-06, cache_read_input_token_cost=5e-07),
        }
    )
    assert models["gpt-a"].current.batch == TierPrices(input=D("1"), output=D("4"))
    assert models["gpt-a"].current.source == "litellm"
    assert models["gpt-b"].current.batch is None  # a rule never invents a batch offer


def test_long_context_band_with_its_tiers() -> None:
    models = make(
        {
            "gpt-big": entry(
                "openai",
                2.5e-06,
                1.5e-05,
                cache_read_input_token_cost=2.5e-07,
                input_cost_per_token_batches=1.25e-06,
                output_cost_per_token_batches=7.5e-06,
                input_cost_per_token_priority=5e-06,
                output_cost_per_token_priority=3e-05,
                input_cost_per_token_above_272k_tokens=5e-06,
                output_cost_per_token_above_272k_tokens=2.25e-05,
                cache_read_input_token_cost_above_272k_tokens=5e-07,
                input_cost_per_token_above_272k_tokens_flex=2.5e-06,
                output_cost_per_token_above_272k_tokens_flex=1.125e-05,
                input_cost_per_token_above_272k_tokens_priority=1e-05,
                output_cost_per_token_above_272k_tokens_priority=4.5e-05,
            ),
            "claude-small": entry(
                "anthropic",
                1e-07,
                5e-07,
                input_cost_per_token_above_100k_tokens=5e-07,
                output_cost_per_token_above_100k_tokens=2.5e-06,
            ),
            "gemini/free": entry(
                "gemini",
                0,
                0,
                input_cost_per_token_above_128k_tokens=0,
                output_cost_per_token_above_128k_tokens=0,
            ),
        }
    )
    long = models["gpt-big"].current.long_context
    assert long is not None
    assert long.threshold_tokens == 272000
    assert long.standard == TierPrices(input=D("5"), output=D("22.5"), cached_input=D("0.5"))
    assert long.flex == TierPrices(input=D("2.5"), output=D("11.25"))
    assert long.priority is not None and long.priority.input == D("10")
    # LiteLLM had no long-context batch keys: the OpenAI rule derives them, since batch exists.
    assert long.batch == TierPrices(input=D("2.5"), output=D("11.25"))
    small = models["claude-small"].current.long_context
    assert small is not None and small.threshold_tokens == 100000
    assert models["free"].current.long_context is None  # identical to the normal prices

    usage = TokenUsage(input_tokens=300_000, output_tokens=1_000)
    priced = cost(models["gpt-big"], usage, at=TODAY, tier="flex")
    assert priced.rates.long_context and priced.total_usd == D("300000") * D("2.5") / 10**6 + D("0.01125")


def test_unrepresentable_tiers_are_dropped_and_reported() -> None:
    report = BuildReport()
    models = make(
        {
            "gpt-u": entry(
                "openai",
                1e-06,
                2e-06,
                input_cost_per_token_ultrafast=2e-06,
                output_cost_per_token_ultrafast=4e-06,
                cache_creation_input_token_cost_above_12hr=3e-06,
                input_cost_per_token_flex=5e-07,  # no output flex price: not a tier
                cache_creation_input_token_cost=0.0,
            )
        },
        report=report,
    )
    period = models["gpt-u"].current
    assert period.flex is None and period.standard.cache_write is None
    assert any("ultrafast" in note for note in report.notes)
    assert any("12-hour" in note for note in report.notes)
    assert any("flex tier dropped" in note for note in report.notes)


def test_canonical_ids_aliases_and_snapshot_folding() -> None:
    models = make(
        {
            "claude-sonnet-4-5": entry("anthropic", 3e-06, 1.5e-05, deprecation_date="2026-11-30"),
            "claude-sonnet-4-5-20250929": entry("anthropic", 3e-06, 1.5e-05, deprecation_date="2026-11-30"),
            "gpt-4o": entry("openai", 2.5e-06, 1e-05),
            "gpt-4o-2024-08-06": entry("openai", 2.5e-06, 1e-05),
            "gpt-4o-2024-05-13": entry("openai", 5e-06, 1.5e-05),
            "gpt-4o-search-preview": entry("openai", 2.5e-06, 1e-05),
            "gpt-4o-search-preview-2025-03-11": entry("openai", 2.5e-06, 1e-05, deprecation_date="2026-07-23"),
            "gemini/gemini-2.5-flash": entry("gemini", 3e-07, 2.5e-06, successor_model="gemini/gemini-3-flash"),
            "gemini/gemini-3-flash": entry("gemini", 5e-07, 3e-06),
            "xai/grok-4.3": entry("xai", 1.25e-06, 2.5e-06),
            "xai/grok-4.3-latest": entry("xai", 1.25e-06, 2.5e-06),
            "ft:gpt-4o-2024-08-06": entry("openai", 3.75e-06, 1.5e-05),
        }
    )
    assert models["claude-sonnet-4-5"].aliases == ("claude-sonnet-4-5-20250929",)
    assert models["gpt-4o"].aliases == ("gpt-4o-2024-08-06",)
    assert "gpt-4o-2024-05-13" in models  # different prices: its own model
    assert "gpt-4o-search-preview-2025-03-11" in models  # retired earlier than its family
    flash = models["gemini-2.5-flash"]
    assert flash.provider == "google" and flash.aliases == ("gemini/gemini-2.5-flash",)
    assert flash.successor == "gemini-3-flash"
    assert models["grok-4.3"].aliases == ("grok-4.3-latest", "xai/grok-4.3", "xai/grok-4.3-latest")
    assert models["ft:gpt-4o-2024-08-06"].current.standard.input == D("3.75")
    assert models["ft:gpt-4o-2024-08-06"].aliases == ()


def test_duplicate_keys_merge_or_prefer_the_provider_route() -> None:
    report = BuildReport()
    models = make(
        {
            "deepseek-chat": entry("deepseek", 2.8e-07, 4.2e-07, cache_read_input_token_cost=2.8e-08),
            "deepseek/deepseek-chat": entry(
                "deepseek", 2.8e-07, 4.2e-07, cache_read_input_token_cost=2.8e-08, cache_creation_input_token_cost=0.0
            ),
            "gemini-exp-1206": entry("gemini", 3e-07, 2.5e-06),
            "gemini/gemini-exp-1206": entry("gemini", 0, 0),
        },
        report=report,
    )
    assert models["deepseek-chat"].aliases == ("deepseek/deepseek-chat",)
    assert models["gemini-exp-1206"].current.standard.input == 0
    assert models["gemini-exp-1206"].aliases == ("gemini/gemini-exp-1206",)
    assert report.duplicates == [
        "gemini-exp-1206: gemini/gemini-exp-1206 and gemini-exp-1206 disagree; kept gemini/gemini-exp-1206"
    ]


def test_overrides_correct_exclude_and_add() -> None:
    overrides = {
        **OVERRIDES,
        "corrections": {
            "ft:gpt-x": {
                "set": {"batch.input": "1.875", "batch.output": "7.5", "standard.cached_input": "1.875"},
                "unset": ["standard.cache_write"],
                "why": "test",
                "source": "https://example.test",
            }
        },
        "exclude": {"gemini/lyria": {"why": "per clip"}},
        "add": {"mistral/new-model": {"entry": entry("mistral", 1e-06, 3e-06), "why": "test", "source": "x"}},
    }
    report = BuildReport()
    models = make(
        {
            "ft:gpt-x": entry(
                "openai",
                3.75e-06,
                1.5e-05,
                cache_creation_input_token_cost=1.875e-06,
                input_cost_per_token_batches=2.225e-06,
                output_cost_per_token_batches=1.25e-05,
            ),
            "gemini/lyria": entry("gemini", 0, 0),
        },
        overrides=overrides,
        report=report,
    )
    period = models["ft:gpt-x"].current
    assert period.standard == TierPrices(input=D("3.75"), output=D("15"), cached_input=D("1.875"))
    assert period.batch == TierPrices(input=D("1.875"), output=D("7.5"))
    assert "lyria" not in models and report.excluded == ["gemini/lyria: per clip"]
    assert models["new-model"].provider == "mistral"


@pytest.mark.parametrize(
    "bad",
    [
        {"corrections": {"m": {"set": {"batch.nope": "1"}, "why": "w", "source": "s"}}},
        {"stacking": {"openai": {"multiplier": "2", "fields": ["input"], "source": "s", "why": "w"}}},
        {"exclude": {"m": {}}},
        {"unknown": 1},
    ],
)
def test_invalid_overrides_are_catalog_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(CatalogError, match="overrides"):
        make({"m": entry("mistral", 1e-06, 1e-06)}, overrides=bad)


def price(start: date | None, inp: str, out: str, **extra: Any) -> HistoricalPrice:
    return HistoricalPrice(start=start, standard=TierPrices(input=D(inp), output=D(out), **extra))


def source(*models: HistoryModel, provider: str = "openai") -> HistorySource:
    return HistorySource(name="genai-prices 9.9", models={provider: models})  # type: ignore[dict-item]


def o3_entry() -> dict[str, Any]:
    return entry(
        "openai",
        2e-06,
        8e-06,
        cache_read_input_token_cost=5e-07,
        input_cost_per_token_batches=1e-06,
        output_cost_per_token_batches=4e-06,
    )


def test_history_is_spliced_before_the_current_price() -> None:
    history = source(
        HistoryModel(
            id="o3",
            matches=lambda ref: ref in ("o3", "o3-2025-04-16"),
            prices=(
                price(None, "10", "40", cached_input=D("0.5")),
                price(date(2025, 6, 10), "2", "8", cached_input=D("0.5")),
            ),
        )
    )
    models = make({"o3": o3_entry(), "o3-2025-04-16": o3_entry()}, history=history)
    o3 = models["o3"]
    assert o3.aliases == ("o3-2025-04-16",)
    first, current = o3.periods
    assert (first.effective_from, first.effective_to, current.effective_from) == (
        None,
        date(2025, 6, 10),
        date(2025, 6, 10),
    )
    assert o3.period_at(date(2025, 6, 9)).standard.input == D("10")
    assert o3.period_at(date(2025, 6, 10)).standard.output == D("8")
    assert first.batch == TierPrices(input=D("5"), output=D("20"))  # by the OpenAI rule only
    assert first.priority is None and first.source == "genai-prices 9.9 + overrides"
    assert current.source == "litellm"


def test_history_matches_by_clause_and_merges_equal_periods() -> None:
    history = source(
        HistoryModel(
            id="family",
            matches=lambda ref: ref.startswith("gpt-q"),
            prices=(price(None, "1", "2"), price(date(2026, 1, 5), "1", "2"), price(date(2026, 5, 1), "3", "4")),
        )
    )
    models = make({"gpt-q-1": entry("openai", 3e-06, 4e-06)}, history=history)
    periods = models["gpt-q-1"].periods
    assert [p.effective_from for p in periods] == [None, date(2026, 5, 1)]
    assert periods[0].batch is None  # not sold in batch today: no derived batch


def test_history_disagreement_starts_litellm_the_day_after() -> None:
    report = BuildReport()
    history = source(
        HistoryModel(
            id="gpt-d", matches=lambda ref: False, prices=(price(None, "1", "2"), price(date(2026, 3, 1), "3", "4"))
        )
    )
    models = make({"gpt-d": entry("openai", 5e-06, 6e-06)}, history=history, report=report)
    periods = models["gpt-d"].periods
    assert [(p.effective_from, p.standard.input) for p in periods] == [
        (None, D("1")),
        (date(2026, 3, 1), D("3")),
        (date(2026, 3, 2), D("5")),
    ]
    assert len(report.history_disagree) == 1


def test_history_ignores_future_changes_time_of_day_and_undated_disagreement() -> None:
    report = BuildReport()
    history = source(
        HistoryModel(
            id="a", matches=lambda ref: ref == "a", prices=(price(None, "1", "2"), price(date(2027, 1, 1), "9", "9"))
        ),
        HistoryModel(id="b", matches=lambda ref: ref == "b", prices=(price(None, "0.1", "0.2"),), time_of_day=True),
        HistoryModel(id="c", matches=lambda ref: ref == "c", prices=(price(None, "7", "7"),)),
        provider="deepseek",
    )
    models = make(
        {
            "deepseek/a": entry("deepseek", 1e-06, 2e-06),
            "deepseek/b": entry("deepseek", 1e-06, 2e-06),
            "deepseek/c": entry("deepseek", 1e-06, 2e-06),
        },
        history=history,
        report=report,
    )
    assert all(len(m.periods) == 1 and m.current.effective_from is None for m in models.values())
    assert any("2027-01-01 ignored" in note for note in report.notes)
    assert any("time of day" in note for note in report.notes)
    assert any(text.startswith("c ") for text in report.history_disagree)


def test_history_tiers_become_a_long_context_band_with_stacked_batch() -> None:
    tiered = HistoricalPrice(
        start=None,
        standard=TierPrices(input=D("5"), output=D("25"), cached_input=D("0.5")),
        long_context=LongContext(
            threshold_tokens=200000, standard=TierPrices(input=D("10"), output=D("37.5"), cached_input=D("1"))
        ),
    )
    flat = HistoricalPrice(
        start=date(2026, 3, 13), standard=TierPrices(input=D("5"), output=D("25"), cached_input=D("0.5"))
    )
    history = source(
        HistoryModel(id="claude-o", matches=lambda ref: False, prices=(tiered, flat)), provider="anthropic"
    )
    litellm = {
        "claude-o": entry(
            "anthropic",
            5e-06,
            2.5e-05,
            cache_read_input_token_cost=5e-07,
            input_cost_per_token_batches=2.5e-06,
            output_cost_per_token_batches=1.25e-05,
        )
    }
    first, current = make(litellm, history=history)["claude-o"].periods
    assert current.effective_from == date(2026, 3, 13) and current.long_context is None
    assert first.long_context is not None and first.long_context.batch == TierPrices(
        input=D("5"), output=D("18.75"), cached_input=D("0.5")
    )
    assert first.batch == TierPrices(input=D("2.5"), output=D("12.5"), cached_input=D("0.25"))


def test_previous_catalog_keeps_history_and_learns_price_changes() -> None:
    history = source(
        HistoryModel(
            id="o3", matches=lambda ref: False, prices=(price(None, "10", "40"), price(date(2025, 6, 10), "2", "8"))
        )
    )
    first_build = build_catalog(
        {"o3": o3_entry(), "gpt-old": entry("openai", 1e-06, 1e-06)},
        overrides=OVERRIDES,
        history=history,
        today=date(2026, 1, 1),
    )
    # Same prices a month later: nothing changes but generated_at.
    report = BuildReport()
    same = make({"o3": o3_entry()}, previous=first_build, today=date(2026, 2, 1), report=report)
    assert same["o3"].periods == first_build.models[1].periods
    assert "gpt-old" in same and report.carried_over == ["gpt-old"]  # still needed for old usage
    # o3 gets cheaper: the old period closes the day the update runs.
    cheaper = {**o3_entry(), "input_cost_per_token": 1e-06}
    changed = make({"o3": cheaper}, previous=first_build, today=date(2026, 2, 1))["o3"]
    assert [(p.effective_from, p.effective_to, p.standard.input) for p in changed.periods] == [
        (None, date(2025, 6, 10), D("10")),
        (date(2025, 6, 10), date(2026, 2, 1), D("2")),
        (date(2026, 2, 1), None, D("1")),
    ]


def test_previous_change_on_the_same_day_replaces_that_days_period() -> None:
    base = build_catalog({"m": entry("mistral", 1e-06, 1e-06)}, overrides={}, history=None, today=TODAY)
    day1 = build_catalog({"m": entry("mistral", 2e-06, 2e-06)}, overrides={}, history=None, today=TODAY, previous=base)
    day1_again = make({"m": entry("mistral", 3e-06, 3e-06)}, overrides={}, previous=day1)
    assert [(p.effective_from, p.standard.input) for p in day1_again["m"].periods] == [(None, D("1")), (TODAY, D("3"))]


def test_catalog_json_is_deterministic_and_round_trips() -> None:
    litellm = {
        "gpt-4o": o3_entry(),
        "claude-x": entry("anthropic", 3e-06, 1.5e-05, deprecation_date="2026-01-01"),
        "xai/grok-9": entry("xai", 2e-06, 6e-06, max_input_tokens=1000000.0),
    }
    reversed_litellm = dict(reversed(list(litellm.items())))
    one = catalog_json(build_catalog(litellm, overrides=OVERRIDES, history=None, today=TODAY))
    two = catalog_json(build_catalog(reversed_litellm, overrides=OVERRIDES, history=None, today=TODAY))
    assert one == two
    text = one.decode()
    assert '"input": "2"' in text and "E-" not in text and "e-0" not in text
    lines = text.splitlines()
    assert lines[1].startswith(' {"model": "gpt-4o", "provider": "openai"')  # one header line per model
    assert lines[2].startswith('  {"standard": {"input": "2"')  # then one line per price period
    parsed = Catalog.from_bytes(one, origin="test")
    assert catalog_json(parsed.data) == one
    assert [m.model for m in parsed.models] == ["gpt-4o", "claude-x", "grok-9"]  # provider order, then id
    assert parsed.models[2].context_window == 1000000


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-5.4-mini", "o200k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("ft:gpt-4o-2024-08-06", "o200k_base"),
        ("ft:gpt-4.1-2025-04-14", "o200k_base"),  # tiktoken's `ft:gpt-4` prefix would say cl100k
        ("ft:gpt-3.5-turbo-0125", "cl100k_base"),
        ("gpt-oss-120b", None),  # o200k_harmony: not shipped
        ("text-davinci-003", None),  # p50k_base: not shipped
        ("computer-use-preview", None),
    ],
)
def test_tiktoken_encoding(model: str, expected: str | None) -> None:
    assert tiktoken_encoding(model) == expected


def test_encoding_only_for_openai() -> None:
    models = make({"mistral/gpt-4o-clone": entry("mistral", 1e-06, 1e-06), "gpt-4o": entry("openai", 1e-06, 1e-06)})
    assert models["gpt-4o-clone"].encoding is None and models["gpt-4o"].encoding == "o200k_base"


def test_load_litellm_from_a_file(tmp_path: Path) -> None:
    good = tmp_path / "prices.json"
    good.write_text(json.dumps({"gpt-4o": entry("openai", 1e-06, 1e-06)}))
    assert load_litellm(str(good))["gpt-4o"]["mode"] == "chat"
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(CatalogError, match="not valid JSON"):
        load_litellm(str(bad))
    with pytest.raises(CatalogError, match="cannot read"):
        load_litellm(str(tmp_path / "missing.json"))
    bad.write_text("[1, 2]")
    with pytest.raises(CatalogError, match="not a LiteLLM price file"):
        load_litellm(str(bad))


def test_load_litellm_from_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_get(url: str, **_: Any) -> httpx.Response:
        request = httpx.Request("GET", url)
        if url.endswith("/missing"):
            return httpx.Response(404, request=request)
        if url.endswith("/down"):
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"gpt-4o": entry("openai", 1e-06, 1e-06)}, request=request)

    monkeypatch.setattr(httpx, "get", fake_get)
    assert "gpt-4o" in load_litellm("https://prices.test/ok")
    with pytest.raises(CatalogError, match="HTTP 404"):
        load_litellm("https://prices.test/missing")
    with pytest.raises(CatalogError, match="connection refused"):
        load_litellm("https://prices.test/down")


def test_genai_prices_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "genai_prices", None)
    with pytest.raises(CatalogError, match="pip install"):
        build.genai_prices_history()


def test_packaged_overrides_rebuild_the_committed_catalog_without_genai_prices() -> None:
    """What `pricing update` does: same LiteLLM file + shipped overrides + installed catalog = no change."""
    root = Path(__file__).resolve().parents[1]
    previous = Catalog.from_bytes((root / "data" / "pricing.json").read_bytes(), origin="committed").data
    litellm = load_litellm(str(root / "data" / "sources" / "litellm_model_prices.json"))
    report = BuildReport()
    rebuilt = build_catalog(
        litellm,
        overrides=build.packaged_overrides(),
        history=None,
        today=previous.generated_at.date(),
        previous=previous,
        sources=previous.sources,
        report=report,
    )
    assert report.price_changes == [] and report.carried_over == []
    history_only = sum(model.source == previous.sources["history"] for model in previous.models)
    assert report.history_only_kept == history_only > 0  # kept, and not reported as dropped by LiteLLM
    assert catalog_json(rebuilt) == catalog_json(previous)


def test_build_module_does_not_import_genai_prices() -> None:
    code = "import sys, costhawk_mcp.pricing.build; sys.exit('genai_prices' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_genai_model_conversion_without_the_package() -> None:
    """genai-prices objects are duck-typed; fakes with the same attributes stand in for them."""

    def tiered(base: str, start: int, above: str) -> SimpleNamespace:
        return SimpleNamespace(base=D(base), tiers=[SimpleNamespace(start=start, price=D(above))])

    def conditional(constraint: Any, **prices: Any) -> SimpleNamespace:
        return SimpleNamespace(constraint=constraint, prices=SimpleNamespace(**prices))

    model = SimpleNamespace(
        id="grok-x",
        is_match=lambda ref: ref == "grok-x",
        prices=[
            conditional(None, input_mtok=tiered("2", 199999, "4"), output_mtok=tiered("6", 199999, "12")),
            conditional(SimpleNamespace(start_date=date(2026, 4, 30)), input_mtok=D("1.25"), output_mtok=D("2.5")),
            conditional(SimpleNamespace(start_time=time(1), end_time=time(4)), input_mtok=D("9"), output_mtok=D("9")),
        ],
    )
    converted = build._genai_model(model)
    assert converted.time_of_day and converted.matches("grok-x")
    old, new = converted.prices
    assert old.start is None and old.long_context is not None
    assert old.long_context.threshold_tokens == 199999 and old.long_context.standard.output == D("12")
    assert new.start == date(2026, 4, 30) and new.long_context is None
    two_tiers = SimpleNamespace(base=D("1"), tiers=[SimpleNamespace(start=1, price=D("2"))] * 2)
    broken = SimpleNamespace(
        id="b", is_match=lambda ref: False, prices=SimpleNamespace(input_mtok=two_tiers, output_mtok=D("1"))
    )
    assert build._genai_model(broken).problem is not None


# --------------------------------------------------------------------------------------------
# Models only the history source knows (build rule 9)


def history_model(
    ident: str,
    *prices: HistoricalPrice,
    equals: tuple[str, ...] = (),
    prefixes: tuple[str, ...] = (),
    **extra: Any,
) -> HistoryModel:
    """A history model whose matching is its equals / starts-with clauses, like genai-prices'."""

    def matches(ref: str) -> bool:
        return ref in equals or any(ref.startswith(prefix) for prefix in prefixes)

    return HistoryModel(id=ident, matches=matches, prices=prices, names=equals, prefixes=prefixes, **extra)


def sources(name: str = "genai-prices 9.9", **per_provider: tuple[HistoryModel, ...]) -> HistorySource:
    return HistorySource(name=name, models=per_provider)  # type: ignore[arg-type]


def history_only_build(
    history: HistorySource, litellm: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None
) -> tuple[dict[str, ModelEntry], BuildReport]:
    report = BuildReport()
    litellm = {"claude-new": entry("anthropic", 1e-06, 5e-06)} if litellm is None else litellm
    return make(litellm, overrides=overrides, history=history, report=report), report


def test_history_only_model_becomes_an_entry_with_contiguous_dated_periods() -> None:
    model = history_model(
        "claude-old-latest",
        price(None, "15", "75", cached_input=D("1.5"), cache_write=D("18.75")),
        price(date(2025, 3, 1), "3", "15", cached_input=D("0.3"), cache_write=D("3.75")),
        price(date(2025, 9, 1), "3", "15", cached_input=D("0.3"), cache_write=D("3.75")),  # merged
        price(date(2026, 2, 1), "1", "5", cached_input=D("0.1")),
        price(date(2027, 1, 1), "9", "9"),  # scheduled after the build date: ignored
        prefixes=("claude-old", "claude-old-2025"),  # the second is a stub of dated ids, not an id
        context_window=200000,
        deprecated=True,
    )
    models, report = history_only_build(sources(anthropic=(model,)))
    old = models["claude-old"]  # the -latest id folds into its family name, which is one of its names
    assert old.aliases == ("claude-old-latest",)
    assert (old.provider, old.mode, old.context_window, old.max_output_tokens) == ("anthropic", "chat", 200000, None)
    assert old.source == "genai-prices 9.9" and {p.source for p in old.periods} == {"genai-prices 9.9"}
    assert [(p.effective_from, p.effective_to, p.standard.input) for p in old.periods] == [
        (None, date(2025, 3, 1), D("15")),
        (date(2025, 3, 1), date(2026, 2, 1), D("3")),
        (date(2026, 2, 1), None, D("1")),
    ]
    for earlier, later in zip(old.periods, old.periods[1:], strict=False):
        assert earlier.effective_to == later.effective_from
    assert old.periods[0].standard.cache_write == D("18.75")
    assert old.deprecation_date is None and report.history_only_deprecated == ["claude-old"]
    assert report.history_only == ["claude-old"]
    assert any("2027-01-01 ignored" in note for note in report.notes)
    # 2025-05-01 usage: 1M uncached input at $3 + 1M output at $15 = $18.
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost(old, usage, at=date(2025, 5, 1)).total_usd == D("18")


def test_history_models_that_reach_a_catalog_name_add_nothing() -> None:
    covered = (
        history_model("claude-new", price(None, "1", "5")),  # same id
        history_model("claude-family", price(None, "1", "5"), prefixes=("claude-ne",)),  # a clause matches
        history_model("claude-other", price(None, "2", "6"), equals=("claude-other", "claude-other-v1")),
    )
    models, report = history_only_build(sources(anthropic=covered))
    assert sorted(models) == ["claude-new", "claude-other"]
    assert models["claude-other"].aliases == ("claude-other-v1",)
    assert report.history_only == ["claude-other"] and report.history_only_skipped == []


def test_history_only_names_follow_the_sources_own_lookup() -> None:
    first = history_model("grok-x-fast", price(None, "5", "25"), equals=("grok-x-fast", "grok-x-fast-beta"))
    second = history_model(
        "grok-x-0709",
        price(None, "3", "15"),
        equals=("grok-x-0709", "grok-x", "grok-x-fast-beta"),  # grok-x-fast-beta is first's
        prefixes=("grok-x-0709@", "grok-x-mini"),  # not a whole id / a name another model owns below
    )
    mini = history_model("grok-x-mini", price(None, "0.3", "0.5"), equals=("grok-x-mini",))
    models, _ = history_only_build(sources(xai=(first, second, mini)))
    assert models["grok-x-fast"].aliases == ("grok-x-fast-beta",)
    assert models["grok-x"].aliases == ("grok-x-0709",)  # a dated id takes its family name
    assert models["grok-x-mini"].current.standard.input == D("0.3")  # second's prefix does not own it
    catalog = Catalog(
        CatalogFile(schema_version=1, generated_at="2026-11-27T00:00:00Z", models=list(models.values())),
        origin="test",
        fingerprint="",
    )
    assert catalog.get("xai/grok-x-0709").model == "grok-x"
    assert catalog.get("grok-x-20250709").model == "grok-x"  # dated snapshots: the lookup strips the date


def test_history_only_leaves_out_other_kinds_resales_and_exclusions() -> None:
    image = HistoricalPrice(
        start=None, standard=TierPrices(input=D("5"), output=D("40")), other_prices=("output_image_mtok",)
    )
    google = (
        history_model("claude-old", price(None, "3", "15"), equals=("claude-old",)),  # Claude on Vertex
        history_model("gemini-x-tts", price(None, "0.5", "10")),
        history_model("gemini-x-image", image),
        history_model("gemini-x-painter", image),
        history_model("gemini-x-embedding"),  # no token prices (input only)
        history_model("gemini-x-night", price(None, "1", "2"), time_of_day=True),
        history_model("gemma-x-it", price(None, "0.65", "0.65")),
        history_model("gemini-x-flash", price(None, "0.1", "0.4")),
    )
    anthropic = (history_model("claude-old", price(None, "3", "15"), equals=("claude-old",)),)
    history = HistorySource(
        name="genai-prices 9.9", models={"google": google, "anthropic": anthropic}, resells={"google": ("anthropic",)}
    )
    overrides = {
        **OVERRIDES,
        "history_only": {"exclude": {"google/gemma-x-it": {"why": "a host's price", "source": "https://x.test"}}},
    }
    models, report = history_only_build(history, overrides=overrides)
    assert models["claude-old"].provider == "anthropic"
    assert [m for m in models if m.startswith("gem")] == ["gemini-x-flash"]
    reasons = dict(text.split(": ", 1) for text in report.history_only_skipped)
    assert reasons == {
        "google/claude-old": "anthropic's model, resold",
        "google/gemini-x-tts": "not a chat model ('tts' in its id)",
        "google/gemini-x-image": "generates other media (output_image_mtok)",
        "google/gemini-x-painter": "generates other media (output_image_mtok)",
        "google/gemini-x-embedding": "no input and output token prices",
        "google/gemini-x-night": "prices vary by time of day",
    }
    assert report.excluded == ["google/gemma-x-it (genai-prices 9.9): a host's price"]


def test_history_only_batch_prices_only_by_the_stacking_rule_for_models_sold_in_batch() -> None:
    tiered = HistoricalPrice(
        start=None,
        standard=TierPrices(input=D("3"), output=D("15"), cached_input=D("0.3"), cache_write=D("3.75")),
        long_context=LongContext(threshold_tokens=200000, standard=TierPrices(input=D("6"), output=D("22.5"))),
    )
    anthropic = (
        history_model("claude-listed", tiered),
        history_model("claude-flagged", price(None, "8", "40", cached_input=D("0.2")), batch=True),
        history_model("claude-plain", price(None, "8", "24")),
    )
    mistral = (history_model("mixtral-old", price(None, "2", "6"), batch=True),)
    overrides = {
        **OVERRIDES,
        "history_only": {
            "batch": {"anthropic": {"models": ["claude-listed", "claude-gone"], "source": "https://x.test", "why": "t"}}
        },
    }
    models, report = history_only_build(sources(anthropic=anthropic, mistral=mistral), overrides=overrides)
    listed = models["claude-listed"].current
    assert listed.batch == TierPrices(input=D("1.5"), output=D("7.5"), cached_input=D("0.15"), cache_write=D("1.875"))
    assert listed.long_context is not None and listed.long_context.batch == TierPrices(input=D("3"), output=D("11.25"))
    assert listed.source == "genai-prices 9.9 + overrides"
    assert models["claude-flagged"].current.batch == TierPrices(input=D("4"), output=D("20"), cached_input=D("0.1"))
    assert models["claude-plain"].current.batch is None  # no evidence it was sold in batch
    assert models["mixtral-old"].current.batch is None  # no stacking rule for mistral
    assert any("mixtral-old" in note and "no stacking rule" in note for note in report.notes)
    assert any("claude-gone: no such history-only model" in note for note in report.notes)
    # A 300k-token batch request: the long-context batch rate on every input token, 300k x $3/M = $0.90.
    assert cost(models["claude-listed"], TokenUsage(input_tokens=300_000), at=TODAY, tier="batch").total_usd == D("0.9")


def test_history_only_openai_models_get_an_encoding_from_their_id_or_an_alias() -> None:
    openai = (
        history_model("gpt-3.5-0301", price(None, "1.5", "2"), equals=("gpt-3.5-turbo-0301", "gpt-3.5-0301")),
        history_model("o1-mini", price(None, "1.1", "4.4"), equals=("o1-mini",)),
    )
    mistral = (history_model("gpt-4o-clone", price(None, "1", "1"), equals=("gpt-4o-clone",)),)
    models, _ = history_only_build(sources(openai=openai, mistral=mistral))
    assert models["gpt-3.5-0301"].encoding == "cl100k_base"  # tiktoken knows gpt-3.5-turbo-0301
    assert models["o1-mini"].encoding == "o200k_base"
    assert models["gpt-4o-clone"].encoding is None


def test_history_only_id_that_names_nothing_is_left_out() -> None:
    odd = history_model(
        "gpt-4o-mini-2024-07-18.ft-", price(None, "0.3", "1.2"), prefixes=("gpt-4o-mini-2024-07-18.ft-",)
    )
    models, report = history_only_build(sources(openai=(odd,)))
    assert sorted(models) == ["claude-new"]
    assert report.history_only_skipped == [
        "openai/gpt-4o-mini-2024-07-18.ft-: its id is not a model name the source resolves to it"
    ]


def test_history_only_model_shadowing_a_snapshot_lookup_is_reported() -> None:
    old = history_model("mistral-medium-2312", price(None, "2.7", "8.1"), equals=("mistral-medium-2312",))
    report = BuildReport()
    models = make(
        {"mistral/mistral-medium": entry("mistral", 4e-07, 2e-06)}, history=sources(mistral=(old,)), report=report
    )
    assert models["mistral-medium-2312"].current.standard.output == D("8.1")
    assert any("mistral-medium-2312 was priced as mistral-medium (0.4/2)" in note for note in report.notes)


def test_runtime_update_keeps_history_only_models_and_their_source() -> None:
    """`pricing update`: history=None, previous=installed catalog; history-only models stay as they were."""
    history = sources(
        anthropic=(
            history_model(
                "claude-old",
                price(None, "15", "75"),
                price(date(2025, 3, 1), "3", "15", cached_input=D("0.3")),
                equals=("claude-old", "claude-old-20240620"),
            ),
        )
    )
    litellm = {"claude-new": entry("anthropic", 1e-06, 5e-06)}
    installed = build_catalog(litellm, overrides=OVERRIDES, history=history, today=date(2026, 1, 1))
    report = BuildReport()
    updated = build_catalog(litellm, overrides=OVERRIDES, history=None, today=TODAY, previous=installed, report=report)
    assert updated.models == installed.models
    assert updated.sources == {"history": "genai-prices 9.9"}  # its periods are still in the catalog
    assert report.carried_over == [] and report.history_only_kept == 1
    again = BuildReport()
    build_catalog(litellm, overrides=OVERRIDES, history=None, today=TODAY, previous=updated, report=again)
    assert again.carried_over == [] and again.history_only_kept == 1
    # LiteLLM lists the model again at a new price: its entry takes over, the history stays.
    relisted = make({**litellm, "claude-old": entry("anthropic", 2e-06, 1e-05)}, previous=updated)["claude-old"]
    assert [(p.effective_from, p.standard.input) for p in relisted.periods] == [
        (None, D("15")),
        (date(2025, 3, 1), D("3")),
        (TODAY, D("2")),
    ]
    assert relisted.aliases == () and relisted.source is None  # the header now comes from LiteLLM


def test_genai_model_conversion_reads_names_limits_flags_and_other_prices() -> None:
    def clause(**kind: Any) -> SimpleNamespace:
        return SimpleNamespace(**kind)

    match = clause(
        or_=[
            clause(starts_with="Claude-Old"),
            clause(equals="claude-old-20240620"),
            clause(and_=[clause(starts_with="claude-3.0-old"), clause(regex="^x")]),
            clause(contains="old"),
        ]
    )
    model = SimpleNamespace(
        id="claude-old",
        is_match=lambda ref: ref.startswith("claude-old"),
        match=match,
        context_window=200000,
        deprecated=True,
        price_variants=[SimpleNamespace(when={"speed": "fast"}), SimpleNamespace(when={"processing": "batch"})],
        prices=SimpleNamespace(
            input_mtok=D("3"), output_mtok=D("15"), input_audio_mtok=D("7"), web_searches_kcount=D("10"), _x=1
        ),
    )
    converted = build._genai_model(model)
    assert converted.names == ("claude-old-20240620",)
    assert converted.prefixes == ("claude-old", "claude-3.0-old")
    assert (converted.context_window, converted.deprecated, converted.batch) == (200000, True, True)
    assert converted.prices[0].other_prices == ("input_audio_mtok", "web_searches_kcount")
    bare = build._genai_model(SimpleNamespace(id="m", is_match=lambda ref: False, prices=SimpleNamespace()))
    assert (bare.names, bare.context_window, bare.deprecated, bare.batch, bare.prices) == ((), None, False, False, ())


def test_pricing_update_command_keeps_the_history_only_models(isolated_env: Path) -> None:
    """The real `costhawk-mcp pricing update --from FILE` over the packaged catalog."""
    from costhawk_mcp.cli import main

    root = Path(__file__).resolve().parents[1]
    assert main(["pricing", "update", "--from", str(root / "data" / "sources" / "litellm_model_prices.json")]) == 0
    packaged = Catalog.from_bytes((root / "data" / "pricing.json").read_bytes(), origin="packaged")
    updated = Catalog.from_bytes((isolated_env / "pricing.json").read_bytes(), origin="user")
    history = packaged.data.sources["history"]
    only = [m for m in packaged.models if m.source == history]
    assert len(only) > 50
    assert [updated.get(m.model) for m in only] == only
    assert updated.data.sources.get("history") == history
    assert updated.get("claude-3-5-sonnet-20241022").current.standard.output == D("15")
