"""The committed data/pricing.json: content, history, aliases and lookups (no genai-prices, no network)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from costhawk_mcp.errors import UnknownModel
from costhawk_mcp.pricing.build import catalog_json
from costhawk_mcp.pricing.catalog import PROVIDERS, Catalog, ModelEntry
from costhawk_mcp.pricing.cost import TokenUsage, cost

CATALOG_PATH = Path(__file__).resolve().parents[1] / "data" / "pricing.json"
BUILT_ON = date(2026, 11, 27)
D = Decimal


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.from_bytes(CATALOG_PATH.read_bytes(), origin=str(CATALOG_PATH))


def test_file_is_exactly_what_the_writer_produces(catalog: Catalog) -> None:
    """Nobody hand-edited it: re-serializing the parsed file gives the same bytes."""
    assert catalog_json(catalog.data) == CATALOG_PATH.read_bytes()


def test_sources_are_named(catalog: Catalog) -> None:
    sources = catalog.data.sources
    assert sources["litellm"].startswith("litellm_model_prices.json")
    assert sources["history"].startswith("genai-prices ")
    assert sources["overrides"].startswith("pricing_overrides.json")


def test_every_provider_with_current_and_deprecated_models(catalog: Catalog) -> None:
    for provider in PROVIDERS:
        assert len(catalog.by_provider(provider)) >= 5, provider
    assert len(catalog.models) >= 230
    current = [m for m in catalog.models if not m.is_deprecated(BUILT_ON)]
    deprecated = [m for m in catalog.models if m.is_deprecated(BUILT_ON)]
    assert len(current) >= 180 and len(deprecated) >= 40
    assert catalog.get("gpt-4o-2024-05-13").is_deprecated(BUILT_ON)  # last year's usage still has a price


def test_openai_embeddings_have_no_output_price(catalog: Catalog) -> None:
    embeddings = {m.model: m for m in catalog.models if m.mode == "embedding"}
    assert set(embeddings) == {
        "text-embedding-3-large",
        "text-embedding-3-small",
        "text-embedding-ada-002",
        "text-embedding-ada-002-v2",
    }
    assert all(m.provider == "openai" and m.current.standard.output == 0 for m in embeddings.values())


def test_o3_price_cut_on_2025_06_10(catalog: Catalog) -> None:
    o3 = catalog.get("o3")
    before, after = o3.period_at(date(2025, 6, 9)), o3.period_at(date(2025, 6, 10))
    assert (before.standard.input, before.standard.output) == (D("10"), D("40"))
    assert (after.standard.input, after.standard.output) == (D("2"), D("8"))
    assert o3.periods[0].source is not None and o3.periods[0].source.startswith("genai-prices")
    assert o3.period_at(datetime(2025, 6, 10, 0, 30, tzinfo=timezone.utc)) is after
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost(o3, usage, at=date(2025, 6, 9)).total_usd == D("50")
    assert cost(o3, usage, at=date(2025, 6, 10)).total_usd == D("10")
    assert cost(o3, usage, at=date(2025, 6, 9), tier="batch").total_usd == D("25")


def test_periods_start_open_and_end_open(catalog: Catalog) -> None:
    for model in catalog.models:
        assert model.periods[0].effective_from is None, model.model
        assert model.current.effective_to is None, model.model
        for period in model.periods:
            assert period.effective_from is None or period.effective_from <= BUILT_ON, model.model


def test_some_models_carry_history(catalog: Catalog) -> None:
    with_history = {m.model for m in catalog.models if len(m.periods) > 1}
    assert {"o3", "claude-opus-4-6", "grok-4.20", "mistral-large-4"} <= with_history
    opus = catalog.get("claude-opus-4-6")
    old = opus.period_at(date(2026, 1, 1))
    assert old.long_context is not None and old.long_context.threshold_tokens == 200000
    assert opus.current.long_context is None  # flat 1M-context pricing since 2026-03-13


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("GPT-4O", "gpt-4o"),
        ("gemini/gemini-2.5-flash", "gemini-2.5-flash"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("ft:gpt-4o-2024-08-06:org::abc", "ft:gpt-4o-2024-08-06"),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("deepseek/deepseek-chat", "deepseek-chat"),
        ("xai/grok-4.20", "grok-4.20"),
        ("mistral/mistral-large-latest", "mistral-large-latest"),
    ],
)
def test_alias_forms_resolve(catalog: Catalog, name: str, model: str) -> None:
    assert catalog.get(name).model == model


def test_fine_tunes_have_their_own_higher_prices(catalog: Catalog) -> None:
    tuned, base = catalog.get("ft:gpt-4o-2024-08-06:acme::x1"), catalog.get("gpt-4o-2024-08-06")
    assert tuned.current.standard.input > base.current.standard.input


def test_unknown_model_suggests_close_ids(catalog: Catalog) -> None:
    with pytest.raises(UnknownModel) as raised:
        catalog.get("claude-sonet-4-5")
    assert 1 <= len(raised.value.suggestions) <= 5
    assert raised.value.suggestions[0] == "claude-sonnet-4-5"
    with pytest.raises(UnknownModel) as raised:
        catalog.get("gemini-2.5-flsh")
    assert "gemini-2.5-flash" in raised.value.suggestions and len(raised.value.suggestions) <= 5


def test_resellers_and_per_clip_models_are_not_in_the_catalog(catalog: Catalog) -> None:
    names = {name for name, _ in catalog.iter_names()}
    assert not any(name.startswith(("azure/", "bedrock/", "vertex_ai/", "openrouter/")) for name in names)
    assert catalog.find("gemini/lyria-3-pro-preview") is None


def test_stacked_batch_prices(catalog: Catalog) -> None:
    sonnet = catalog.get("claude-sonnet-4-5").current
    assert sonnet.batch is not None
    assert (sonnet.batch.cached_input, sonnet.batch.cache_write, sonnet.batch.cache_write_1h) == (
        D("0.15"),
        D("1.875"),
        D("3"),
    )
    assert sonnet.long_context is not None and sonnet.long_context.batch is not None
    assert sonnet.long_context.batch.input == D("3")
    gemini = catalog.get("gemini-2.5-pro").current
    assert gemini.batch is not None and gemini.batch.input == D("0.625")


def test_long_context_thresholds(catalog: Catalog) -> None:
    long = {m.model: m.current.long_context for m in catalog.models if m.current.long_context}
    gemini, gpt, haiku = long["gemini-2.5-pro"], long["gpt-5.4"], long["claude-haiku-5-5"]
    assert gemini is not None and gemini.threshold_tokens == 200000 and gemini.standard.input == D("2.5")
    assert gpt is not None and gpt.threshold_tokens == 272000 and gpt.batch is not None
    assert haiku is not None and haiku.threshold_tokens == 100000
    usage = TokenUsage(input_tokens=300_000, output_tokens=0)
    assert cost(catalog.get("gpt-5.4"), usage, at=BUILT_ON).total_usd == D("1.5")  # 300k x $5/M


def test_encodings_only_where_tiktoken_maps_the_model(catalog: Catalog) -> None:
    for model in catalog.models:
        assert model.encoding in (None, "o200k_base", "cl100k_base"), model.model
        if model.provider != "openai":
            assert model.encoding is None, model.model
    assert catalog.get("gpt-4o").encoding == "o200k_base"
    assert catalog.get("gpt-4").encoding == "cl100k_base"
    assert catalog.get("gpt-6-sol").encoding is None


def test_successors_resolve_to_catalog_ids(catalog: Catalog) -> None:
    known = {m.model for m in catalog.models}
    successors = {m.successor for m in catalog.models if m.successor}
    assert len(successors - known) <= 1  # gemini-3.8-flash-tts is a speech model, outside the catalog


# --------------------------------------------------------------------------------------------
# Models only genai-prices knows (build rule 9)


def history_only(catalog: Catalog) -> list[ModelEntry]:
    history = catalog.data.sources["history"]
    return [m for m in catalog.models if m.source == history]


def test_history_only_counts_per_provider(catalog: Catalog) -> None:
    counts = dict.fromkeys(PROVIDERS, 0)
    for model in history_only(catalog):
        counts[model.provider] += 1
    assert counts == {"openai": 19, "anthropic": 13, "google": 12, "mistral": 10, "deepseek": 2, "xai": 11}
    assert len(catalog.models) == 243 + 67  # LiteLLM's models plus the history-only ones


def test_claude_3_5_sonnet_snapshot_has_its_prices_and_cache_prices(catalog: Catalog) -> None:
    sonnet = catalog.get("claude-3-5-sonnet-20241022")
    assert sonnet.model == "claude-3-5-sonnet" and sonnet.provider == "anthropic"
    assert catalog.get("claude-3-5-sonnet-20240620") is sonnet
    standard = sonnet.period_at(date(2025, 3, 1)).standard
    assert (standard.input, standard.output) == (D("3"), D("15"))
    assert (standard.cached_input, standard.cache_write, standard.cache_write_1h) == (D("0.3"), D("3.75"), D("6"))
    # 1M prompt tokens of which 200k cache reads and 100k 5-minute cache writes, 100k output:
    # 700k x $3 + 200k x $0.30 + 100k x $3.75 + 100k x $15 = 2.1 + 0.06 + 0.375 + 1.5 = $4.035.
    usage = TokenUsage(
        input_tokens=1_000_000, cached_input_tokens=200_000, cache_write_tokens=100_000, output_tokens=100_000
    )
    assert cost(sonnet, usage, at=date(2025, 3, 1)).total_usd == D("4.035")
    # The Batch API halves every part (Anthropic's stacking rule): $2.0175.
    assert cost(sonnet, usage, at=date(2025, 3, 1), tier="batch").total_usd == D("2.0175")


def test_claude_opus_4_1_costs_15_and_75(catalog: Catalog) -> None:
    opus = catalog.get("claude-opus-4-1")
    assert catalog.get("claude-opus-4-1-20250805") is opus
    assert (opus.current.standard.input, opus.current.standard.output) == (D("15"), D("75"))
    # 1M input x $15 + 1M output x $75 = $90.
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert cost(opus, usage, at=date(2025, 9, 1)).total_usd == D("90")


@pytest.mark.parametrize(
    ("name", "model", "inp", "out"),
    [
        ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet", "3", "15"),
        ("claude-3-haiku-20240307", "claude-3-haiku", "0.25", "1.25"),
        ("claude-3-opus-20240229", "claude-3-opus", "15", "75"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku", "0.8", "4"),
        ("claude-opus-4-20250514", "claude-opus-4-0", "15", "75"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4-0", "3", "15"),
        ("anthropic/claude-sonnet-4", "claude-sonnet-4-0", "3", "15"),
        ("grok-4-0709", "grok-4", "3", "15"),
        ("xai/grok-3", "grok-3", "3", "15"),
        ("grok-3-mini-beta", "grok-3-mini", "0.3", "0.5"),
        ("gemini-1.5-pro-002", "gemini-1.5-pro", "1.25", "5"),
        ("models/gemini-2.0-flash-001", "gemini-2.0-flash", "0.1", "0.4"),
        ("o1-mini-2024-09-12", "o1-mini", "1.1", "4.4"),
        ("gpt-4-32k-0613", "gpt-4-32k", "60", "120"),
        ("gpt-3.5-turbo-0613", "gpt-3.5-turbo-0613", "1.5", "2"),  # no longer priced as gpt-3.5-turbo
        ("open-mixtral-8x7b", "mixtral-8x7b", "0.7", "0.7"),
        ("mistral-small-2506", "mistral-small-3.2-24b-instruct", "0.1", "0.3"),
    ],
)
def test_older_model_ids_resolve_to_their_history_prices(
    catalog: Catalog, name: str, model: str, inp: str, out: str
) -> None:
    entry = catalog.get(name)
    assert entry.model == model
    assert (entry.current.standard.input, entry.current.standard.output) == (D(inp), D(out))


def test_history_only_models_have_open_contiguous_periods_from_genai(catalog: Catalog) -> None:
    history = catalog.data.sources["history"]
    for model in history_only(catalog):
        assert model.periods[0].effective_from is None and model.current.effective_to is None, model.model
        for earlier, later in zip(model.periods, model.periods[1:], strict=False):
            assert earlier.effective_to == later.effective_from, model.model
        assert all(p.source is not None and p.source.startswith(history) for p in model.periods), model.model
        assert model.mode == "chat" and model.deprecation_date is None and model.max_output_tokens is None


def test_history_only_names_collide_with_no_litellm_name(catalog: Catalog) -> None:
    only = history_only(catalog)
    ids = {m.model for m in only}
    litellm_names = {name.lower() for m in catalog.models if m.model not in ids for name in (m.model, *m.aliases)}
    names = [name.lower() for m in only for name in (m.model, *m.aliases)]
    assert len(names) == len(set(names))
    assert not set(names) & litellm_names
    for m in only:
        assert all(catalog.get(name) is m for name in (m.model, *m.aliases)), m.model


def test_history_only_left_out_resales_hosts_and_other_kinds(catalog: Catalog) -> None:
    assert {m.provider for m in catalog.models if m.model.startswith("claude")} == {"anthropic"}
    for name in ("gpt-oss-120b", "gemma-2-27b-it", "gpt-image-1", "gpt-4o-mini-tts", "whisper-1", "mistral-embed"):
        assert catalog.find(name) is None, name


def test_gemini_1_5_pro_long_context_band_from_genai(catalog: Catalog) -> None:
    pro = catalog.get("gemini-1.5-pro")
    assert pro.current.long_context is not None and pro.current.long_context.threshold_tokens == 128000
    # 200k input tokens exceed 128k: every input token at $2.50/M = $0.50; 10k output x $10/M = $0.10.
    usage = TokenUsage(input_tokens=200_000, output_tokens=10_000)
    assert cost(pro, usage, at=BUILT_ON).total_usd == D("0.6")


def test_history_only_encodings(catalog: Catalog) -> None:
    assert catalog.get("gpt-4-32k").encoding == "cl100k_base"
    assert catalog.get("o1-preview").encoding == "o200k_base"
    assert catalog.get("chatgpt-4o-latest").encoding == "o200k_base"
    assert catalog.get("text-davinci-003").encoding is None  # p50k_base is not shipped
