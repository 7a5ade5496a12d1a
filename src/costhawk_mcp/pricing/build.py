"""Build the pricing catalog from a LiteLLM price file, genai-prices history and a small overrides file.

Used twice: by `scripts/build_pricing.py` (build time, with genai-prices for price history) and by
`costhawk-mcp pricing update --from PATH_OR_URL` (run time, without genai-prices: earlier periods
come from the installed catalog). So nothing here imports genai-prices at module level.

Rules, in the order they are applied (every one is deterministic):

1. Selection. LiteLLM entries whose `litellm_provider` is one of openai, anthropic, gemini (catalog
   name `google`), mistral, deepseek, xai with `mode` chat or responses, plus OpenAI embeddings.
   Other hosts of the same models (azure, bedrock, vertex, openrouter...) are resellers and are
   left out. Entries without both an input and an output price are skipped; the overrides file
   can exclude entries (with a reason) and add entries (in LiteLLM's format, with a reason).
2. Prices. Per-token floats become per-million-token Decimals through `Decimal(str(x)) * 10**6`
   (never float arithmetic). Field suffixes `_batches`, `_priority`, `_flex` are service tiers;
   `_above_<N>k_tokens` is the long-context band with threshold N*1000, whose prices apply to the
   whole request once input exceeds it. A tier needs both an input and an output price. Tiers
   the schema has no room for (`_ultrafast`, `_decisions`) and 12-hour cache writes are dropped
   and reported. A cache-write price of 0 next to a non-zero input price is dropped: LiteLLM
   writes 0 for "no write surcharge", and an absent price already means "billed as input".
   A long-context band identical to the normal prices is dropped.
3. Corrections from the overrides file patch single prices of one LiteLLM entry (and may add a
   long-context band with its threshold).
4. Stacking. Where a provider's discounts stack (overrides `stacking`, each with a source URL),
   a batch tier that exists but lacks a stacked price (a cache price, or the long-context band)
   gets it as multiplier x the standard price. A rule never invents a batch tier for a model
   LiteLLM does not sell in batch.
5. Identity. The canonical id is the LiteLLM key without its provider prefix; the prefixed key
   becomes an alias. Keys that collapse to one id are one entry when their prices agree; when
   they disagree the `provider/model` key wins (LiteLLM's own route to that provider's API; the
   bare duplicate is a legacy entry) and the conflict is reported. A dated snapshot (`-2024-08-06`,
   `-20250929`, `-0613`, `-04-2026`) or `-latest` pointer is folded into its family id as an
   alias when the family is listed with the same prices *and* the same deprecation date (a
   snapshot retired earlier than its family keeps its own entry, so its retirement stays
   visible). `ft:` entries are models of their own: fine-tunes have their own prices.
6. History (build time). For each model the genai-prices model is found by id, then by its match
   clauses, trying the canonical id and then the aliases. Its prices dated by StartDateConstraint
   become periods; a model whose genai prices vary by time of day (TimeOfDateConstraint: DeepSeek
   off-peak) has no single daily price, so its genai history is not used. Changes genai schedules
   after `today` are ignored (the last period is the current one). genai's tiered prices become the
   period's long-context band. Then, with G the genai price in force today:
   - G agrees with LiteLLM's standard input and output: LiteLLM's prices are current from G's
     start date, genai's earlier prices are the history.
   - They disagree: genai's dated history is kept, G included, and LiteLLM's price is current
     from the day after G's start date (the earliest day the change can have happened as far as
     both sources know); the disagreement is reported for review.
   Historical periods carry genai's standard and cache prices; their batch prices come only from
   the provider's stacking rule, and only for models sold in batch today. Adjacent periods with
   equal standard and long-context prices are merged. The first period starts at None.
7. Carry-over (run time, `history=None` and a `previous` catalog). A model's earlier periods come
   from `previous`; when its current prices differ from `previous`'s current ones, the old
   period is closed at `today` and the new one starts `today`. Models of `previous` that the new
   file no longer lists are kept as they were (last year's usage still needs a price); those that
   came from the history source alone (rule 9: their `source` is `previous`'s history source) are
   expected there and not reported as dropped, and that source stays named in `sources`.
8. Encoding: the tiktoken encoding only when tiktoken maps the OpenAI model id and only
   o200k_base / cl100k_base (the two shipped). A fine-tune uses its base model's tokenizer.
9. History-only models (build time). A history-source model of the six providers that reaches no
   catalog name (its id is none of them and its match clauses match none) becomes an entry of its
   own, so usage of a model LiteLLM has dropped keeps its price. Left out, and reported: models
   the overrides' `history_only.exclude` names (`provider/id`, with a reason); another provider's
   model the source lists again (genai-prices sells Claude under google: a resale); models whose
   prices vary by time of day or are not representable; models without input and output token
   prices in force by `today` (priced per request, audio hour, page...); and models of another
   kind, since the source has no mode: a price for generated images, audio or video, or an id word
   embed*, tts, transcribe, image, realtime, live, audio, whisper, moderation, ocr.
   Names are the id and the texts of the source's `equals` and `starts_with` clauses, kept when the
   source's own lookup (by id, then the first model whose clauses match) lands on this model, when
   they are whole ids (not `claude-sonnet-4@` or the date stub `claude-sonnet-4-2025`) and no other
   model has them. Dated snapshots that a starts-with clause covers cannot be enumerated: the
   catalog's lookup strips their suffix (`claude-3-5-sonnet-20241022` -> `claude-3-5-sonnet`). A
   dated or `-latest` id whose family is one of its names takes the family as id (as in rule 5).
   Periods are the source's dated prices (future changes and tiers as in rule 6), merged when
   equal. Batch prices come only from the provider's stacking rule, and only for models the source
   prices in batch or the overrides' `history_only.batch` lists (sourced). Context window from the
   source, no max output tokens, encoding as rule 8 (the id, else the first alias tiktoken maps).
   The source's `deprecated` flag has no date and the schema no flag: the date stays empty and the
   summary lists those models. `source` (entry and periods) is the history source's name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from costhawk_mcp.errors import CatalogError
from costhawk_mcp.pricing.catalog import (
    PROVIDERS,
    SCHEMA_VERSION,
    Catalog,
    CatalogFile,
    LongContext,
    Mode,
    ModelEntry,
    PricePeriod,
    Provider,
    ServiceTier,
    TierPrices,
)

PriceField = Literal["input", "output", "cached_input", "cache_write", "cache_write_1h"]
PRICE_FIELDS: tuple[PriceField, ...] = ("input", "output", "cached_input", "cache_write", "cache_write_1h")

# LiteLLM's provider names and the catalog's.
LITELLM_PROVIDERS: dict[str, Provider] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "xai",
}
# genai-prices' provider ids for the catalog's providers.
GENAI_PROVIDERS: dict[Provider, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "x-ai",
}
CHAT_MODES = frozenset({"chat", "responses"})
SHIPPED_ENCODINGS = frozenset({"o200k_base", "cl100k_base"})
MILLION = Decimal(1_000_000)

# LiteLLM field stems, longest first so `..._above_1hr` is not read as `cache_creation...` + rest.
_STEMS: tuple[tuple[str, PriceField | None], ...] = (
    ("cache_creation_input_token_cost_above_12hr", None),  # 12-hour cache writes: no room in the schema
    ("cache_creation_input_token_cost_above_1hr", "cache_write_1h"),
    ("cache_creation_input_token_cost", "cache_write"),
    ("cache_read_input_token_cost", "cached_input"),
    ("input_cost_per_token", "input"),
    ("output_cost_per_token", "output"),
)
_REST = re.compile(r"^(?:_above_(?P<k>\d+)k_tokens)?(?:_(?P<tier>[a-z]+))?$")
_LITELLM_TIERS: dict[str, ServiceTier] = {"batches": "batch", "priority": "priority", "flex": "flex"}
_SNAPSHOT = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|\d{2}-\d{4}|latest)$")


# --------------------------------------------------------------------------------------------
# The overrides file


class StackingRule(BaseModel):
    """A provider's documented rule: its batch discount also applies to these prices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    multiplier: Decimal = Field(gt=0, le=1)
    fields: tuple[PriceField, ...]
    long_context: bool = False
    source: str
    why: str


class Correction(BaseModel):
    """Patch single prices of one LiteLLM entry: paths are `tier.field` or `long_context.tier.field`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    long_context_threshold: int | None = Field(default=None, gt=0)
    set: dict[str, Decimal] = Field(default_factory=dict)
    unset: tuple[str, ...] = ()
    why: str
    source: str


class Exclusion(BaseModel):
    """A LiteLLM entry left out of the catalog."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    why: str
    source: str | None = None


class Addition(BaseModel):
    """A model LiteLLM lacks, written as a LiteLLM entry (per-token floats)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry: dict[str, Any]
    why: str
    source: str


class BatchOffer(BaseModel):
    """History-only models a provider's Batch API serves (for LiteLLM's models its batch prices say so)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[str, ...]
    source: str
    why: str


class HistoryOnly(BaseModel):
    """Hand-kept decisions about models only the history source knows (module rule 9)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    about: str | None = None
    exclude: dict[str, Exclusion] = Field(default_factory=dict)
    batch: dict[Provider, BatchOffer] = Field(default_factory=dict)


class Overrides(BaseModel):
    """The hand-kept `data/pricing_overrides.json`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    about: str | None = None
    stacking: dict[Provider, StackingRule] = Field(default_factory=dict)
    corrections: dict[str, Correction] = Field(default_factory=dict)
    exclude: dict[str, Exclusion] = Field(default_factory=dict)
    add: dict[str, Addition] = Field(default_factory=dict)
    history_only: HistoryOnly = Field(default_factory=HistoryOnly)


def parse_overrides(raw: Mapping[str, Any]) -> Overrides:
    """Validate an overrides mapping; a bad file is a CatalogError saying what is wrong."""
    try:
        overrides = Overrides.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(f"pricing overrides are invalid: {exc}") from exc
    for key, correction in overrides.corrections.items():
        for path in (*correction.set, *correction.unset):
            _split_path(path, key)
    return overrides


def load_overrides(path: str | Path) -> dict[str, Any]:
    """Read an overrides file as a plain mapping (validated by `build_catalog`)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"cannot read pricing overrides {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CatalogError(f"pricing overrides {path} are not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"pricing overrides {path} must be a JSON object")
    return raw


def packaged_overrides() -> dict[str, Any]:
    """The overrides file shipped with the package, for `costhawk-mcp pricing update`.

    A wheel carries it only if pyproject force-includes `data/pricing_overrides.json`; without it
    a run-time rebuild would lose the stacked batch prices and corrections and record that loss
    as a price change.
    """
    from costhawk_mcp.datafiles import data_file

    source = data_file("pricing_overrides.json")
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CatalogError(f"packaged pricing overrides are not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError("packaged pricing overrides must be a JSON object")
    return raw


# --------------------------------------------------------------------------------------------
# Price history (genai-prices at build time, anything shaped alike in tests)


@dataclass(frozen=True)
class HistoricalPrice:
    """One dated price of a history source: in force from `start` (None: since the beginning).

    `other_prices` names the source's prices the catalog has no field for (images, audio, searches).
    """

    start: date | None
    standard: TierPrices
    long_context: LongContext | None = None
    other_prices: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryModel:
    """A model of a history source: how to recognise its ids, and its prices oldest first.

    `names` and `prefixes` are the plain texts of its match clauses (equals / starts-with), the
    rest describes it for a catalog entry of its own (module rule 9).
    """

    id: str
    matches: Callable[[str], bool]
    prices: tuple[HistoricalPrice, ...]
    time_of_day: bool = False
    problem: str | None = None
    names: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    context_window: int | None = None
    deprecated: bool = False
    batch: bool = False


@dataclass(frozen=True)
class HistorySource:
    """Price history per catalog provider, in the source's own matching order.

    `resells` maps a provider to the providers whose models it also lists (genai-prices' google
    falls back to anthropic: Claude on Vertex AI).
    """

    name: str
    models: Mapping[Provider, Sequence[HistoryModel]]
    resells: Mapping[Provider, tuple[Provider, ...]] = field(default_factory=dict)


def genai_prices_history() -> HistorySource:
    """genai-prices' data as a HistorySource (build time only; the package is optional)."""
    try:
        import genai_prices
        from genai_prices import data as genai_data
    except ImportError as exc:
        raise CatalogError(
            "genai-prices is needed to build the catalog's price history; install it with "
            "`pip install 'costhawk-mcp[build-pricing]'` (or `pip install genai-prices`)"
        ) from exc
    version = getattr(genai_prices, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("genai-prices")
    by_id = {provider.id: provider for provider in genai_data.providers}
    ours = {genai_id: catalog_provider for catalog_provider, genai_id in GENAI_PROVIDERS.items()}
    models: dict[Provider, tuple[HistoryModel, ...]] = {}
    resells: dict[Provider, tuple[Provider, ...]] = {}
    for catalog_provider, genai_id in GENAI_PROVIDERS.items():
        provider = by_id.get(genai_id)
        if provider is not None:
            models[catalog_provider] = tuple(_genai_model(model) for model in provider.models)
            fallbacks = getattr(provider, "fallback_model_providers", None) or ()
            resold = tuple(ours[other] for other in fallbacks if other in ours)
            if resold:
                resells[catalog_provider] = resold
    return HistorySource(name=f"genai-prices {version}", models=models, resells=resells)


def _genai_model(model: Any) -> HistoryModel:
    """Convert one genai-prices ModelInfo (duck-typed: the package is not a typing dependency)."""
    raw = model.prices if isinstance(model.prices, list) else [_Unconstrained(model.prices)]
    dated: list[tuple[date | None, Any]] = []
    time_of_day = False
    for conditional in raw:
        constraint = conditional.constraint
        if constraint is None:
            dated = [(None, conditional.prices)]  # an unconstrained price overrides earlier ones
        elif hasattr(constraint, "start_date"):
            dated.append((constraint.start_date, conditional.prices))
        else:
            time_of_day = True
    if dated and dated[0][0] is not None:
        dated[0] = (None, dated[0][1])  # genai uses the first price before any start date
    dated.sort(key=lambda item: item[0] or date.min)
    prices: list[HistoricalPrice] = []
    problem: str | None = None
    for start, price in dated:
        try:
            converted = _genai_price(start, price)
        except ValueError as exc:
            problem = str(exc)
            break
        if converted is None:
            continue
        if prices and prices[-1].start == start:
            prices[-1] = converted  # the later of two prices starting the same day wins
        else:
            prices.append(converted)
    names: list[str] = []
    prefixes: list[str] = []
    _clause_texts(getattr(model, "match", None), names, prefixes)
    variants = getattr(model, "price_variants", None) or ()
    return HistoryModel(
        id=str(model.id),
        matches=cast(Callable[[str], bool], model.is_match),
        prices=tuple(prices),
        time_of_day=time_of_day,
        problem=problem,
        names=tuple(dict.fromkeys(names)),
        prefixes=tuple(dict.fromkeys(prefixes)),
        context_window=_positive_int(getattr(model, "context_window", None)),
        deprecated=getattr(model, "deprecated", None) is True,
        batch=any((getattr(variant, "when", None) or {}).get("processing") == "batch" for variant in variants),
    )


def _clause_texts(clause: Any, names: list[str], prefixes: list[str]) -> None:
    """Collect the equals / starts-with texts of a genai match clause, through its and/or nesting."""
    if clause is None:
        return
    equals, starts = getattr(clause, "equals", None), getattr(clause, "starts_with", None)
    if isinstance(equals, str):
        names.append(equals.lower())
    if isinstance(starts, str):
        prefixes.append(starts.lower())
    for nested in (*(getattr(clause, "or_", None) or ()), *(getattr(clause, "and_", None) or ())):
        _clause_texts(nested, names, prefixes)


@dataclass(frozen=True)
class _Unconstrained:
    prices: Any
    constraint: None = None


def _genai_price(start: date | None, price: Any) -> HistoricalPrice | None:
    """A genai ModelPrice as catalog prices; None when it has no token prices."""
    names = {
        "input": "input_mtok",
        "output": "output_mtok",
        "cached_input": "cache_read_mtok",
        "cache_write": "cache_write_mtok",
        "cache_write_1h": "cache_write_1h_mtok",
    }
    base: dict[str, Decimal] = {}
    above: dict[str, Decimal] = {}
    thresholds: set[int] = set()
    for ours, theirs in names.items():
        value = getattr(price, theirs, None)
        if value is None:
            continue
        if isinstance(value, Decimal):
            base[ours] = value
            continue
        tiers = list(value.tiers)
        if len(tiers) != 1:
            raise ValueError(f"{len(tiers)} context tiers for {theirs} (the catalog holds one)")
        base[ours] = value.base
        above[ours] = tiers[0].price
        thresholds.add(int(tiers[0].start))
    if "input" not in base or "output" not in base:
        return None
    if len(thresholds) > 1:
        raise ValueError(f"different context thresholds {sorted(thresholds)}")
    standard = _tier_prices(base)
    long_context = None
    if thresholds:
        above = {name: above.get(name, value) for name, value in base.items()}
        long_context = LongContext(threshold_tokens=thresholds.pop(), standard=_tier_prices(above))
    known = set(names.values())
    other = sorted(
        key for key, value in vars(price).items() if value is not None and key not in known and not key.startswith("_")
    )
    return HistoricalPrice(start=start, standard=standard, long_context=long_context, other_prices=tuple(other))


# --------------------------------------------------------------------------------------------
# Reading LiteLLM


def load_litellm(path_or_url: str) -> dict[str, Any]:
    """A LiteLLM price file from a path, or from an http(s) URL when the user names one."""
    if path_or_url.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(path_or_url, timeout=60.0, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise CatalogError(f"cannot download {path_or_url}: HTTP {exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            raise CatalogError(f"cannot download {path_or_url}: {exc}") from exc
        text, origin = response.text, path_or_url
    else:
        try:
            text = Path(path_or_url).read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(f"cannot read {path_or_url}: {exc.strerror}") from exc
        origin = path_or_url
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{origin} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or not any(isinstance(value, dict) for value in raw.values()):
        raise CatalogError(f"{origin} is not a LiteLLM price file (a JSON object of model entries)")
    return raw


def litellm_sources(path_or_url: str, litellm: Mapping[str, Any], today: date) -> dict[str, str]:
    """The `sources` lines naming a LiteLLM snapshot: its name, content hash and read date."""
    name = path_or_url if "://" in path_or_url else Path(path_or_url).name
    digest = hashlib.sha256(json.dumps(litellm, sort_keys=True).encode()).hexdigest()[:16]
    return {"litellm": f"{name} (sha256:{digest}, read {today.isoformat()})"}


# --------------------------------------------------------------------------------------------
# Build


@dataclass
class BuildReport:
    """What the build decided that a reviewer should see (printed by the build script)."""

    notes: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    folded: int = 0
    history_matched: int = 0
    history_disagree: list[str] = field(default_factory=list)
    carried_over: list[str] = field(default_factory=list)
    price_changes: list[str] = field(default_factory=list)
    history_only: list[str] = field(default_factory=list)
    history_only_skipped: list[str] = field(default_factory=list)
    history_only_deprecated: list[str] = field(default_factory=list)
    history_only_kept: int = 0

    def note(self, text: str) -> None:
        """Record one finding (deduplicated, kept in order)."""
        if text not in self.notes:
            self.notes.append(text)


Band = dict[str, dict[str, Decimal]]  # tier -> field -> per-Mtok price


@dataclass
class _Prices:
    """Mutable prices of one LiteLLM entry while the build works on them."""

    normal: Band
    threshold: int | None = None
    long: Band = field(default_factory=dict)
    derived: bool = False

    def key(self) -> tuple[Any, ...]:
        """Everything that prices a request, for equality checks."""
        return (_band_key(self.normal), self.threshold, _band_key(self.long))


def _band_key(band: Band) -> tuple[Any, ...]:
    return tuple(sorted((tier, tuple(sorted(prices.items()))) for tier, prices in band.items()))


@dataclass
class _Item:
    """One catalog model while being built: its chosen LiteLLM key, names and prices."""

    canonical: str
    provider: Provider
    key: str
    entry: Mapping[str, Any]
    prices: _Prices
    names: set[str] = field(default_factory=set)


def build_catalog(
    litellm: Mapping[str, Any],
    *,
    overrides: Mapping[str, Any],
    history: HistorySource | None,
    today: date,
    previous: CatalogFile | None = None,
    sources: Mapping[str, str] | None = None,
    report: BuildReport | None = None,
) -> CatalogFile:
    """The catalog for `litellm` (+ overrides), with history from `history` or from `previous`."""
    report = report if report is not None else BuildReport()
    rules = parse_overrides(overrides)
    entries: dict[str, Mapping[str, Any]] = {k: v for k, v in litellm.items() if isinstance(v, dict)}
    for key, addition in sorted(rules.add.items()):
        if addition.entry.get("litellm_provider") not in LITELLM_PROVIDERS:
            raise CatalogError(
                f"pricing overrides: addition {key} needs a litellm_provider of {sorted(LITELLM_PROVIDERS)}"
            )
        entries[key] = addition.entry
    for key in sorted(rules.exclude):
        if entries.pop(key, None) is not None:
            report.excluded.append(f"{key}: {rules.exclude[key].why}")
    for key in sorted(set(rules.corrections) - set(entries)):
        report.note(f"correction for {key}: no such LiteLLM entry")

    items = _select(entries, rules, report)
    items = _fold_snapshots(items, report)
    index = _name_index(items)
    models: list[ModelEntry] = []
    for item in sorted(items.values(), key=lambda i: (PROVIDERS.index(i.provider), i.canonical)):
        current = _current_period(item)
        periods = _history_periods(item, current, rules, history, today, report)
        models.append(_model_entry(item, periods, index, report))
    if history is not None:
        models.extend(_history_only_models(models, history, rules, today, report))
    if history is None and previous is not None:
        models = _carry_over(models, previous, today, report)
    models.sort(key=lambda m: (PROVIDERS.index(m.provider), m.model))
    all_sources = dict(sources or {})
    if history is not None:
        all_sources.setdefault("history", history.name)
    elif previous is not None and "history" in previous.sources:
        all_sources.setdefault("history", previous.sources["history"])  # its periods are carried over
    return CatalogFile(
        schema_version=SCHEMA_VERSION,
        generated_at=datetime.combine(today, time(), tzinfo=timezone.utc),
        sources=dict(sorted(all_sources.items())),
        models=models,
    )


def _select(entries: Mapping[str, Mapping[str, Any]], rules: Overrides, report: BuildReport) -> dict[str, _Item]:
    """Pick the provider's own chat/embedding entries and merge keys that name one model."""
    groups: dict[str, list[tuple[str, Provider, Mapping[str, Any], _Prices]]] = defaultdict(list)
    for key in sorted(entries):
        entry = entries[key]
        provider = LITELLM_PROVIDERS.get(str(entry.get("litellm_provider", "")))
        mode = entry.get("mode")
        if provider is None or not (mode in CHAT_MODES or (mode == "embedding" and provider == "openai")):
            continue
        prices = _parse_prices(key, entry, report)
        if prices is None:
            report.note(f"{key}: skipped, no input and output price")
            continue
        correction = rules.corrections.get(key)
        if correction is not None:
            _apply_correction(prices, correction, key)
        _apply_stacking(prices, rules.stacking.get(provider))
        prefix = f"{entry['litellm_provider']}/"
        canonical = key[len(prefix) :] if key.startswith(prefix) else key
        groups[canonical.lower()].append((key, provider, entry, prices))

    items: dict[str, _Item] = {}
    for group in groups.values():
        # LiteLLM's own `provider/model` route first, then the bare key; ties by key.
        group.sort(key=lambda g: (not g[0].startswith(f"{g[2]['litellm_provider']}/"), g[0]))
        key, provider, entry, prices = group[0]
        prefix = f"{entry['litellm_provider']}/"
        canonical = key[len(prefix) :] if key.startswith(prefix) else key
        item = _Item(canonical=canonical, provider=provider, key=key, entry=entry, prices=prices)
        item.names.update(g[0] for g in group)
        for other_key, _, _, other_prices in group[1:]:
            if other_prices.key() != prices.key():
                report.duplicates.append(f"{canonical}: {key} and {other_key} disagree; kept {key}")
        items[canonical] = item
    return items


def _fold_snapshots(items: dict[str, _Item], report: BuildReport) -> dict[str, _Item]:
    """Fold dated snapshots / -latest pointers into their family when prices and retirement agree."""
    folded: dict[str, _Item] = dict(items)
    for canonical in sorted(items):
        family = _SNAPSHOT.sub("", canonical)
        if family == canonical or family not in folded or canonical not in folded:
            continue
        item, target = items[canonical], folded[family]
        same_prices = item.prices.key() == target.prices.key()
        same_end = item.entry.get("deprecation_date") == target.entry.get("deprecation_date")
        if same_prices and same_end and target.provider == item.provider:
            target.names.update(item.names | {canonical})
            del folded[canonical]
            report.folded += 1
    return folded


def _parse_prices(key: str, entry: Mapping[str, Any], report: BuildReport) -> _Prices | None:
    """LiteLLM's per-token fields of one entry as per-Mtok prices per band and tier."""
    normal: Band = defaultdict(dict)
    long: Band = defaultdict(dict)
    thresholds: set[int] = set()
    for name in sorted(entry):
        value = entry[name]
        for stem, price_field in _STEMS:
            if not name.startswith(stem):
                continue
            match = _REST.match(name[len(stem) :])
            if match is None:
                break  # e.g. input_cost_per_token_cache_hit: not a price the catalog models
            if price_field is None:
                report.note(f"{key}: 12-hour cache write prices dropped (no field in the schema)")
                break
            tier_name = match["tier"] or "standard"
            tier = "standard" if tier_name == "standard" else _LITELLM_TIERS.get(tier_name)
            if tier is None:
                report.note(f"{key}: service tier '{tier_name}' dropped (no tier in the schema)")
                break
            price = _per_mtok(value)
            if price is None:
                report.note(f"{key}: {name} is not a price ({value!r}); ignored")
                break
            if match["k"] is None:
                normal[tier][price_field] = price
            else:
                thresholds.add(int(match["k"]) * 1000)
                long[tier][price_field] = price
            break
    if len(thresholds) > 1:
        report.note(f"{key}: several long-context thresholds {sorted(thresholds)}; using the lowest")
    prices = _Prices(normal=_complete(key, normal, report), threshold=min(thresholds, default=None))
    if "standard" not in prices.normal:
        return None
    if prices.threshold is not None:
        prices.long = _complete(key, long, report, label="long-context ")
        if "standard" not in prices.long or _band_key(prices.long) == _band_key(prices.normal):
            prices.long, prices.threshold = {}, None
    for band in (prices.normal, prices.long):
        for tier_prices in band.values():
            write = tier_prices.get("cache_write")
            if write is not None and write == 0 and tier_prices["input"] > 0:
                del tier_prices["cache_write"]
    return prices


def _complete(key: str, raw: Band, report: BuildReport, *, label: str = "") -> Band:
    """Keep the tiers that have both an input and an output price (a tier needs both)."""
    band: Band = {}
    for tier in ("standard", "batch", "priority", "flex"):
        prices = raw.get(tier)
        if not prices:
            continue
        if "input" in prices and "output" in prices:
            band[tier] = dict(prices)
        else:
            report.note(f"{key}: {label}{tier} tier dropped, it lacks an input or output price")
    return band


def _split_path(path: str, key: str) -> tuple[bool, str, PriceField | None]:
    """A correction path as (long-context band?, tier, field or None for the whole tier)."""
    parts = path.split(".")
    long = bool(parts) and parts[0] == "long_context"
    if long:
        parts = parts[1:]
    tiers = ("standard", "batch", "priority", "flex")
    bad_field = len(parts) == 2 and parts[1] not in PRICE_FIELDS
    if not 1 <= len(parts) <= 2 or parts[0] not in tiers or bad_field:
        raise CatalogError(
            f"pricing overrides: correction path {path!r} for {key} must be "
            f"[long_context.]<{'|'.join(tiers)}>[.<{'|'.join(PRICE_FIELDS)}>]"
        )
    return long, parts[0], cast(PriceField, parts[1]) if len(parts) == 2 else None


def _apply_correction(prices: _Prices, correction: Correction, key: str) -> None:
    """Patch prices in place; a tier left without input or output is an error in the overrides."""
    if correction.long_context_threshold is not None:
        prices.threshold = correction.long_context_threshold
    for path in correction.unset:
        long, tier, price_field = _split_path(path, key)
        band = prices.long if long else prices.normal
        if price_field is None:
            band.pop(tier, None)
        else:
            band.get(tier, {}).pop(price_field, None)
    for path, value in sorted(correction.set.items()):
        long, tier, price_field = _split_path(path, key)
        if price_field is None:
            raise CatalogError(f"pricing overrides: {key}: set needs a field, got {path!r}")
        band = prices.long if long else prices.normal
        band.setdefault(tier, {})[price_field] = _norm(value)
    for band in (prices.normal, prices.long):
        for tier, tier_prices in band.items():
            if "input" not in tier_prices or "output" not in tier_prices:
                raise CatalogError(f"pricing overrides: {key}: the {tier} tier needs input and output")
    if (prices.threshold is None) != (not prices.long) or (prices.long and "standard" not in prices.long):
        raise CatalogError(f"pricing overrides: {key}: long-context prices need a threshold and standard prices")
    prices.derived = True


def _apply_stacking(prices: _Prices, rule: StackingRule | None) -> None:
    """Fill the stacked batch prices a provider charges but LiteLLM does not list."""
    if rule is None or "batch" not in prices.normal:
        return
    bands = [prices.normal]
    if prices.long and rule.long_context:
        if "batch" not in prices.long:
            if not {"input", "output"} <= set(rule.fields):
                return
            prices.long["batch"] = {}
        bands.append(prices.long)
    for band in bands:
        batch, standard = band["batch"], band["standard"]
        for price_field in rule.fields:
            if price_field not in batch and price_field in standard:
                batch[price_field] = _norm(standard[price_field] * rule.multiplier)
                prices.derived = True


def _batch_by_rule(standard: TierPrices, rule: StackingRule) -> TierPrices:
    """A historical batch tier: the rule's multiplier on the rule's fields, nothing else."""
    values = {name: getattr(standard, name) for name in rule.fields if getattr(standard, name) is not None}
    return _tier_prices({name: value * rule.multiplier for name, value in values.items()})


def _tier_prices(values: Mapping[str, Decimal]) -> TierPrices:
    return TierPrices(**{name: _norm(value) for name, value in values.items()})


def _tier(band: Band, tier: ServiceTier) -> TierPrices | None:
    prices = band.get(tier)
    return None if prices is None else _tier_prices(prices)


def _current_period(item: _Item) -> PricePeriod:
    """LiteLLM's prices (after corrections and stacking) as the open-ended current period."""
    prices = item.prices
    long_context = None
    if prices.threshold is not None and prices.long:
        long_context = LongContext(
            threshold_tokens=prices.threshold,
            standard=_tier_prices(prices.long["standard"]),
            batch=_tier(prices.long, "batch"),
            priority=_tier(prices.long, "priority"),
            flex=_tier(prices.long, "flex"),
        )
    return PricePeriod(
        standard=_tier_prices(prices.normal["standard"]),
        batch=_tier(prices.normal, "batch"),
        priority=_tier(prices.normal, "priority"),
        flex=_tier(prices.normal, "flex"),
        long_context=long_context,
        source="litellm + overrides" if prices.derived else "litellm",
    )


def _match_history(item: _Item, source: HistorySource) -> HistoryModel | None:
    """The history model for a catalog model: by id first, then by the source's match clauses."""
    candidates = [item.canonical.lower()]
    for name in sorted(item.names | {item.canonical}):
        bare = name.split("/", 1)[1] if "/" in name else name
        if bare.lower() not in candidates:
            candidates.append(bare.lower())
    models = source.models.get(item.provider, ())
    for candidate in candidates:
        for model in models:
            if model.id.lower() == candidate:
                return model
    for candidate in candidates:
        for model in models:
            if model.matches(candidate):
                return model
    return None


def _history_periods(
    item: _Item,
    current: PricePeriod,
    rules: Overrides,
    history: HistorySource | None,
    today: date,
    report: BuildReport,
) -> list[PricePeriod]:
    """Splice the history source's dated prices before LiteLLM's current ones (module rule 6)."""
    if history is None:
        return [current]
    model = _match_history(item, history)
    if model is None:
        return [current]
    label = f"{item.canonical} ({history.name} {model.id})"
    if model.problem is not None:
        report.note(f"{label}: history not used, {model.problem}")
        return [current]
    if model.time_of_day:
        report.note(f"{label}: history not used, prices vary by time of day (not representable)")
        return [current]
    report.history_matched += 1
    known = [price for price in model.prices if price.start is None or price.start <= today]
    for price in model.prices[len(known) :]:
        report.note(f"{label}: scheduled price change on {price.start} ignored (after {today})")
    if not known:
        return [current]
    latest = known[-1]
    ours, theirs = current.standard, latest.standard
    agrees = (theirs.input, theirs.output) == (ours.input, ours.output)
    if agrees:
        earlier, current_from = known[:-1], latest.start
    elif latest.start is None:
        report.history_disagree.append(
            f"{label}: {latest.standard.input}/{latest.standard.output} vs LiteLLM "
            f"{current.standard.input}/{current.standard.output}; no dated history, LiteLLM kept"
        )
        return [current]
    else:
        earlier, current_from = known, latest.start + timedelta(days=1)
        report.history_disagree.append(
            f"{label}: {latest.standard.input}/{latest.standard.output} from {latest.start} vs LiteLLM "
            f"{current.standard.input}/{current.standard.output}; LiteLLM current from {current_from}"
        )
    rule = rules.stacking.get(item.provider) if current.batch is not None else None
    periods = _dated_periods(earlier, current_from, rule, history.name)
    periods.append(current.model_copy(update={"effective_from": current_from}))
    return _merge_equal(periods)


def _dated_periods(
    prices: Sequence[HistoricalPrice], until: date | None, rule: StackingRule | None, name: str
) -> list[PricePeriod]:
    """History prices as periods, each ending where the next starts (the last at `until`).

    Batch prices come from `rule` alone, so pass it only for a model sold in batch.
    """
    periods: list[PricePeriod] = []
    for index, price in enumerate(prices):
        end = prices[index + 1].start if index + 1 < len(prices) else until
        batch = long_batch = None
        if rule is not None:
            batch = _batch_by_rule(price.standard, rule)
            if price.long_context is not None and rule.long_context:
                long_batch = _batch_by_rule(price.long_context.standard, rule)
        long_context = None
        if price.long_context is not None:
            long_context = price.long_context.model_copy(update={"batch": long_batch})
        periods.append(
            PricePeriod(
                standard=price.standard,
                batch=batch,
                long_context=long_context,
                effective_from=price.start,
                effective_to=end,
                source=f"{name} + overrides" if batch is not None else name,
            )
        )
    return periods


def _standard_key(period: PricePeriod) -> tuple[Any, ...]:
    long = period.long_context
    return (period.standard, None if long is None else (long.threshold_tokens, long.standard))


def _merge_equal(periods: list[PricePeriod]) -> list[PricePeriod]:
    """Merge adjacent periods with equal standard prices: the later (richer) one takes over."""
    merged: list[PricePeriod] = []
    for period in periods:
        if merged and _standard_key(merged[-1]) == _standard_key(period):
            period = period.model_copy(update={"effective_from": merged[-1].effective_from})
            merged.pop()
        merged.append(period)
    return merged


# An id word that marks a model of another kind than chat (the history source has no mode).
_OTHER_KIND = re.compile(
    r"(?:^|[-_.:@/])(embed\w*|tts|transcribe|image|realtime|live|audio|whisper|moderation|ocr)(?=$|[-_.:@/])"
)
_WHOLE_ID = re.compile(r"^[a-z0-9](?:[a-z0-9._:-]*[a-z0-9])?$")
_DATE_STUB = re.compile(r"-20\d{2}\d{0,3}$")  # `claude-sonnet-4-2025`: a prefix of dated ids, not an id
_GENERATED = ("output_image", "output_audio", "output_video")


def _catalog_names(models: Iterable[ModelEntry]) -> set[str]:
    """Every name of `models`, lower-case, with and without a `provider/` prefix."""
    names: set[str] = set()
    for model in models:
        for name in (model.model, *model.aliases):
            names.add(name.lower())
            names.add(name.split("/", 1)[1].lower() if "/" in name else name.lower())
    return names


def _history_owner(name: str, models: Sequence[HistoryModel]) -> HistoryModel | None:
    """The model the history source prices `name` with: by id, then the first whose clauses match."""
    for model in models:
        if model.id.lower() == name:
            return model
    return next((model for model in models if model.matches(name)), None)


def _history_names(model: HistoryModel, models: Sequence[HistoryModel]) -> list[str]:
    """The whole ids among the model's id and clause texts that the source prices with this model."""
    prefixes = (prefix for prefix in model.prefixes if not _DATE_STUB.search(prefix))
    candidates = dict.fromkeys(name.lower() for name in (model.id, *model.names, *prefixes))
    return [name for name in candidates if _WHOLE_ID.match(name) and _history_owner(name, models) is model]


def _history_skip(provider: Provider, model: HistoryModel, source: HistorySource, today: date) -> str | None:
    """Why a history model gets no entry of its own (module rule 9), or None."""
    for owner in source.resells.get(provider, ()):
        if _history_owner(model.id.lower(), source.models.get(owner, ())) is not None:
            return f"{owner}'s model, resold"
    if model.problem is not None:
        return f"not representable: {model.problem}"
    if model.time_of_day:
        return "prices vary by time of day"
    if not model.prices:
        return "no input and output token prices"
    known = [price for price in model.prices if price.start is None or price.start <= today]
    if not known:
        return f"first price starts {model.prices[0].start}, after {today}"
    generated = [name for name in known[-1].other_prices if name.startswith(_GENERATED)]
    if generated:
        return f"generates other media ({', '.join(generated)})"
    word = _OTHER_KIND.search(model.id.lower())
    if word is not None:
        return f"not a chat model ('{word.group(1)}' in its id)"
    return None


def _history_only_models(
    models: Sequence[ModelEntry], history: HistorySource, rules: Overrides, today: date, report: BuildReport
) -> list[ModelEntry]:
    """Entries for the history source's models that no catalog name reaches (module rule 9)."""
    catalog = _catalog_names(models)
    taken = set(catalog)
    generated = datetime.combine(today, time(), tzinfo=timezone.utc)
    lookup = Catalog(
        CatalogFile(schema_version=SCHEMA_VERSION, generated_at=generated, models=list(models)),
        origin="build",
        fingerprint="",
    )
    offers = {provider: {name.lower() for name in offer.models} for provider, offer in rules.history_only.batch.items()}
    offered: set[tuple[Provider, str]] = set()
    exclusions_used: set[str] = set()
    added: list[ModelEntry] = []
    for provider in PROVIDERS:
        source_models = history.models.get(provider, ())
        for model in source_models:
            if model.id.lower() in catalog or any(model.matches(name) for name in catalog):
                continue  # a catalog model's history (rule 6), or a name LiteLLM prices
            key = f"{provider}/{model.id}"
            exclusion = rules.history_only.exclude.get(key)
            if exclusion is not None:
                exclusions_used.add(key)
                report.excluded.append(f"{key} ({history.name}): {exclusion.why}")
                continue
            reason = _history_skip(provider, model, history, today)
            names = _history_names(model, source_models)
            if reason is None and model.id.lower() not in names:
                reason = "its id is not a model name the source resolves to it"
            if reason is not None:
                report.history_only_skipped.append(f"{key}: {reason}")
                continue
            clashes = [name for name in names if name in taken]
            if model.id.lower() in clashes:
                report.history_only_skipped.append(f"{key}: its id already names another model")
                continue
            if clashes:
                report.note(f"{key}: names {', '.join(clashes)} already taken; left out")
            names = [name for name in names if name not in taken]
            ident = model.id.lower()
            family = _SNAPSHOT.sub("", ident)
            canonical = family if family != ident and family in names else ident
            label = f"{canonical} ({history.name} {model.id})"

            known = [price for price in model.prices if price.start is None or price.start <= today]
            for price in model.prices[len(known) :]:
                report.note(f"{label}: scheduled price change on {price.start} ignored (after {today})")
            known[0] = replace(known[0], start=None)  # the first price is the oldest known (rule 6)
            listed = offers.get(provider, set()) & set(names)
            offered.update((provider, name) for name in listed)
            rule = rules.stacking.get(provider) if (model.batch or listed) else None
            if (model.batch or listed) and rule is None:
                report.note(f"{label}: sold in batch, but {provider} has no stacking rule; no batch prices")
            periods = _merge_equal(_dated_periods(known, None, rule, history.name))
            dropped = sorted({name for price in known for name in price.other_prices if name.endswith("_mtok")})
            if dropped:
                report.note(f"{label}: {', '.join(dropped)} dropped (no field in the schema)")
            now = periods[-1].standard
            for name in names:
                before = lookup.find(name)  # what the catalog's suffix-stripping lookup said so far
                then = before.current.standard if before is not None else None
                if before is not None and then is not None and (then.input, then.output) != (now.input, now.output):
                    report.note(
                        f"{label}: {name} was priced as {before.model} ({then.input}/{then.output}) "
                        f"by the lookup's snapshot rule; now {now.input}/{now.output}"
                    )

            aliases = sorted((name for name in names if name != canonical), key=str.lower)
            encoding = None
            if provider == "openai":
                encoding = next(filter(None, (tiktoken_encoding(name) for name in (canonical, *aliases))), None)
            added.append(
                ModelEntry(
                    model=canonical,
                    provider=provider,
                    mode="chat",
                    aliases=tuple(aliases),
                    context_window=model.context_window,
                    source=history.name,
                    encoding=encoding,
                    periods=tuple(periods),
                )
            )
            taken.update(names)
            report.history_only.append(canonical)
            if model.deprecated:
                report.history_only_deprecated.append(canonical)
    for key in sorted(set(rules.history_only.exclude) - exclusions_used):
        report.note(f"history_only exclusion {key}: no such history-only model")
    for provider, listed_ids in sorted(offers.items()):
        for name in sorted(listed_ids):
            if (provider, name) not in offered:
                report.note(f"history_only batch offer {provider}/{name}: no such history-only model")
    return added


def _name_index(items: Mapping[str, _Item]) -> dict[str, str]:
    index: dict[str, str] = {}
    for item in items.values():
        for name in (item.canonical, *item.names):
            bare = name.split("/", 1)[1] if "/" in name else name
            index.setdefault(name.lower(), item.canonical)
            index.setdefault(bare.lower(), item.canonical)
    return index


def _model_entry(item: _Item, periods: list[PricePeriod], index: Mapping[str, str], report: BuildReport) -> ModelEntry:
    """Identity and limits from the chosen LiteLLM entry, with the periods already decided."""
    entry = item.entry
    aliases: dict[str, str] = {}
    for name in sorted(item.names):
        if name.lower() != item.canonical.lower():
            aliases.setdefault(name.lower(), name)
    successor = entry.get("successor_model")
    if isinstance(successor, str) and successor:
        bare = successor.split("/", 1)[1] if successor.split("/", 1)[0] in LITELLM_PROVIDERS else successor
        resolved = index.get(bare.lower())
        if resolved is None:
            report.note(f"{item.canonical}: successor {successor} is not in the catalog; kept as written")
        successor = resolved or bare
    else:
        successor = None
    mode: Mode = "embedding" if entry.get("mode") == "embedding" else "chat"
    return ModelEntry(
        model=item.canonical,
        provider=item.provider,
        mode=mode,
        aliases=tuple(sorted(aliases.values(), key=str.lower)),
        context_window=_positive_int(entry.get("max_input_tokens")),
        max_output_tokens=_positive_int(entry.get("max_output_tokens")),
        deprecation_date=_parse_date(item.canonical, entry.get("deprecation_date"), report),
        successor=successor,
        source=entry.get("source") if isinstance(entry.get("source"), str) else None,
        encoding=tiktoken_encoding(item.canonical) if item.provider == "openai" else None,
        periods=tuple(periods),
    )


def _same_prices(a: PricePeriod, b: PricePeriod) -> bool:
    skip = {"effective_from", "effective_to", "source"}
    return a.model_dump(exclude=skip) == b.model_dump(exclude=skip)


def _carry_over(models: list[ModelEntry], previous: CatalogFile, today: date, report: BuildReport) -> list[ModelEntry]:
    """Keep `previous`'s price history; open a new period where the current price changed."""
    by_name: dict[str, ModelEntry] = {}
    for entry in previous.models:
        for name in (entry.model, *entry.aliases):
            by_name.setdefault(name.lower(), entry)
    used: set[str] = set()
    result: list[ModelEntry] = []
    for model in models:
        old_match = next((by_name[n.lower()] for n in (model.model, *model.aliases) if n.lower() in by_name), None)
        if old_match is None or old_match.model in used:
            result.append(model)
            continue
        used.add(old_match.model)
        new, old = model.current, old_match.current
        earlier = list(old_match.periods[:-1])
        if _same_prices(new, old):
            periods = [*earlier, new.model_copy(update={"effective_from": old.effective_from})]
        elif old.effective_from is not None and old.effective_from >= today:
            periods = [*earlier, new.model_copy(update={"effective_from": old.effective_from})]
            report.price_changes.append(f"{model.model}: changed again on {old.effective_from}")
        else:
            periods = [
                *earlier,
                old.model_copy(update={"effective_to": today}),
                new.model_copy(update={"effective_from": today}),
            ]
            report.price_changes.append(
                f"{model.model}: {old.standard.input}/{old.standard.output} -> "
                f"{new.standard.input}/{new.standard.output} from {today}"
            )
        result.append(ModelEntry(**{**dict(model), "periods": tuple(periods)}))
    taken = {name.lower() for model in result for name in (model.model, *model.aliases)}
    history_name = previous.sources.get("history")
    for kept in previous.models:
        if kept.model in used:
            continue
        if kept.model.lower() in taken:
            report.note(f"{kept.model}: dropped from the previous catalog, its id now names another model")
            continue
        aliases = tuple(alias for alias in kept.aliases if alias.lower() not in taken)
        result.append(ModelEntry(**{**dict(kept), "aliases": aliases}))
        taken.update(name.lower() for name in (kept.model, *aliases))
        if history_name is not None and kept.source == history_name:
            report.history_only_kept += 1  # never in LiteLLM: expected to be missing from it
        else:
            report.carried_over.append(kept.model)
    return result


# --------------------------------------------------------------------------------------------
# Small conversions


def tiktoken_encoding(model: str) -> str | None:
    """tiktoken's encoding for an OpenAI model id, when tiktoken maps it and we ship it.

    A fine-tune (`ft:BASE:...`) tokenizes like BASE; asking tiktoken about BASE also avoids its
    `ft:gpt-4` prefix catching `ft:gpt-4.1-*` (o200k models) as cl100k.
    """
    from tiktoken.model import encoding_name_for_model

    name = model[3:].split(":", 1)[0] if model.startswith("ft:") else model
    try:
        encoding = str(encoding_name_for_model(name))
    except KeyError:
        return None
    return encoding if encoding in SHIPPED_ENCODINGS else None


def _per_mtok(value: object) -> Decimal | None:
    """A LiteLLM per-token price as an exact per-million-token Decimal (None when not a price)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        price = Decimal(str(value)) * MILLION
    except InvalidOperation:
        return None
    if not price.is_finite() or price < 0:
        return None
    return _norm(price)


def _norm(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation (30, not 3E+1)."""
    return Decimal(format(value.normalize(), "f"))


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return int(value)


def _parse_date(model: str, value: object, report: BuildReport) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        report.note(f"{model}: deprecation_date {value!r} is not a date; ignored")
        return None


# --------------------------------------------------------------------------------------------
# Output


def _plain(value: Any) -> Any:
    """JSON-ready values: Decimals as plain strings, dates ISO, None and empty tuples dropped."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None and v != ()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(_norm(value), "f")
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


# Dates first so a period reads "from, to, prices"; the threshold before the prices it gates.
_PERIOD_ORDER = (
    "effective_from",
    "effective_to",
    "standard",
    "batch",
    "priority",
    "flex",
    "long_context",
    "source",
)
_LONG_ORDER = ("threshold_tokens", "standard", "batch", "priority", "flex")


def _ordered(period: dict[str, Any], order: Sequence[str]) -> dict[str, Any]:
    result = {key: period[key] for key in order if key in period}
    if "long_context" in result:
        result["long_context"] = {k: result["long_context"][k] for k in _LONG_ORDER if k in result["long_context"]}
    missing = set(period) - set(result)
    if missing:
        raise AssertionError(f"catalog_json does not know the period keys {sorted(missing)}")
    return result


def catalog_json(catalog: CatalogFile) -> bytes:
    """Deterministic, diffable JSON: one line per model header and one per price period."""
    models = sorted(catalog.models, key=lambda m: (PROVIDERS.index(m.provider), m.model))
    head = _plain(
        {
            "schema_version": catalog.schema_version,
            "generated_at": catalog.generated_at,
            "sources": dict(sorted(catalog.sources.items())),
        }
    )
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ', "models": [']
    for position, model in enumerate(models):
        data = _plain(model.model_dump())
        periods = [_ordered(period, _PERIOD_ORDER) for period in data.pop("periods")]
        header = json.dumps(data, ensure_ascii=False)[:-1]
        body = ",\n  ".join(json.dumps(period, ensure_ascii=False) for period in periods)
        comma = "," if position < len(models) - 1 else ""
        lines.append(f' {header}, "periods": [\n  {body}]}}{comma}')
    lines.append("]}")
    return ("\n".join(lines) + "\n").encode("utf-8")


# --------------------------------------------------------------------------------------------
# Summary


def _row(label: str, values: Sequence[object]) -> str:
    return f"{label:<10}" + "".join(f"{value!s:>10}" for value in values)


def summarize(catalog: CatalogFile, today: date, report: BuildReport | None = None) -> str:
    """A reviewer's summary: counts per provider, then everything the build decided to report."""
    named = ", ".join(f"{key}: {value}" for key, value in sorted(catalog.sources.items()))
    history_name = catalog.sources.get("history")
    lines = [f"{len(catalog.models)} models ({named})"]
    lines.append(_row("provider", ("models", "current", "deprec.", "history", "long-ctx", "hist-only")))
    totals = [0, 0, 0, 0, 0, 0]
    only: dict[Provider, list[str]] = {}
    for provider in PROVIDERS:
        entries = [m for m in catalog.models if m.provider == provider]
        only[provider] = [m.model for m in entries if history_name is not None and m.source == history_name]
        row = [
            len(entries),
            sum(not m.is_deprecated(today) for m in entries),
            sum(m.is_deprecated(today) for m in entries),
            sum(len(m.periods) > 1 for m in entries),
            sum(m.current.long_context is not None for m in entries),
            len(only[provider]),
        ]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        lines.append(_row(provider, row))
    lines.append(_row("total", totals))
    embeddings = sum(m.mode == "embedding" for m in catalog.models)
    aliases = sum(len(m.aliases) for m in catalog.models)
    lines.append(f"embedding models: {embeddings}; aliases: {aliases}")
    if any(only.values()):
        lines.append(f"models only the history source knows ({sum(map(len, only.values()))}):")
        lines.extend(f"  - {provider} ({len(ids)}): {', '.join(ids)}" for provider, ids in only.items() if ids)
    if report is not None:
        lines.append(
            f"snapshots folded into their family: {report.folded}; "
            f"models matched in the history source: {report.history_matched}"
        )
        if report.history_only_kept:
            lines.append(f"history-only models kept from the previous catalog: {report.history_only_kept}")
        skipped: dict[str, list[str]] = defaultdict(list)
        for text in report.history_only_skipped:
            key, reason = text.split(": ", 1)
            skipped[reason].append(key)
        sections: Iterable[tuple[str, list[str]]] = (
            ("excluded by overrides", report.excluded),
            ("duplicate LiteLLM keys that disagree", report.duplicates),
            ("history source disagrees with LiteLLM", report.history_disagree),
            ("history-source models left out (by reason)", [f"{r}: {', '.join(k)}" for r, k in skipped.items()]),
            (
                "deprecated in the history source, no date (the schema has no flag; deprecation_date left empty)",
                report.history_only_deprecated,
            ),
            ("price changes since the previous catalog", report.price_changes),
            ("kept from the previous catalog", report.carried_over),
            ("notes", report.notes),
        )
        for title, texts in sections:
            if texts:
                lines.append(f"{title} ({len(texts)}):")
                lines.extend(f"  - {text}" for text in texts)
    return "\n".join(lines)
