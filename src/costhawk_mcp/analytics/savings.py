"""Where a team leaves money on the table: savings it has not taken yet, each with evidence.

Four kinds, each priced with the catalog through the cost function (never a hand-made discount):

* **batch_api**: standard-tier traffic of latency-tolerant workloads, re-priced at the model's
  Batch API prices. Whether a workload can wait is unknowable from logs, so only workloads with a
  stated signal qualify (already partly batch, a scheduled-job hour pattern, a non-interactive
  name, or flat round-the-clock machine traffic).
* **prompt_caching**: large prompts on models with cache prices but little cache use, re-priced as
  if a bounded shared prefix were read from the cache by requests that arrive while it is warm,
  and written to it by the others (the write premium is subtracted).
* **model_right_sizing**: short outputs on a model whose cheaper sibling (same provider and name
  family, one size down) would likely do, re-priced on the sibling.
* **long_context**: the part of long-context requests' cost caused by the higher tier.

Window figures are scaled to a 30-day month over the days the window actually has data for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

from pydantic import BaseModel, Field

from costhawk_mcp.analytics.common import DataSource, data_sources
from costhawk_mcp.analytics.window import Period, resolve_window
from costhawk_mcp.money import USD, PerMTok, pct
from costhawk_mcp.pricing.catalog import Catalog, ModelEntry, ServiceTier
from costhawk_mcp.pricing.cost import TokenUsage, cost, parse_tier
from costhawk_mcp.store import savings_queries
from costhawk_mcp.store.facts import FactFilter
from costhawk_mcp.store.savings_queries import (
    CACHE_WARM_SECONDS,
    Extent,
    SliceKey,
    UsageSlice,
    WorkloadModelShape,
    WorkloadProfile,
    slice_key,
)
from costhawk_mcp.store.store import Store

Kind = Literal["batch_api", "prompt_caching", "model_right_sizing", "long_context"]
Level = Literal["high", "medium", "low"]
UnitKind = Literal["feature", "api_key", "untagged"]

MONTH_DAYS = 30
MAX_OPPORTUNITIES = 25
# Right-sizing and caching need a sample: fewer requests than this say nothing about a workload.
MIN_REQUESTS = 20
# Providers cache prompt prefixes of at least 1,024 tokens (OpenAI, Anthropic Sonnet/Opus, Gemini).
CACHE_MIN_PREFIX_TOKENS = 1024
# Below this cache-read share of input a workload counts as "not using the cache".
CACHE_LOW_SHARE = Decimal("0.10")
# The shared prefix is assumed to be at most half of the average prompt (request logs), or a
# quarter of it when only synced buckets describe the traffic (no per-request sizes).
CACHE_MAX_PREFIX_SHARE = Decimal("0.5")
CACHE_BUCKET_PREFIX_SHARE = Decimal("0.25")
# Synced buckets have no per-request times: at most one cold start per 5-minute window of a day.
BUCKET_COLD_STARTS_PER_DAY = 86400 // CACHE_WARM_SECONDS
SHORT_OUTPUT_P90_TOKENS = 300
SHORT_OUTPUT_AVG_TOKENS = 150
CLASSIFY_OUTPUT_P90_TOKENS = 50
BATCH_SHARE_SIGNAL = Decimal("0.05")
SCHEDULED_MIN_REQUESTS = 50
SCHEDULED_BAND_HOURS = 3
SCHEDULED_BAND_SHARE = Decimal("0.80")
STEADY_MIN_REQUESTS = 500
STEADY_MIN_DAYS = 3
STEADY_QUIET_HOURS = 6
STEADY_QUIET_SHARE = Decimal("0.15")
DEPRECATION_MARGIN = timedelta(days=90)
# Words in a feature or key name that suggest nobody is waiting for the answer.
_WORDS = (
    "async backfill batch bulk cron daily digest embed embedding embeddings enrich enrichment etl eval evals "
    "evaluation export hourly index indexer indexing ingest ingestion job jobs nightly offline pipeline report "
    "reports scheduled weekly worker"
)
NON_INTERACTIVE_WORDS = frozenset(_WORDS.split())
# Words that say a person is waiting for the answer; they veto every signal but existing Batch use.
_INTERACTIVE = (
    "assistant autocomplete bot chat chatbot copilot helpdesk interactive live playground realtime search support voice"
)
INTERACTIVE_WORDS = frozenset(_INTERACTIVE.split())

HEURISTICS = [
    f"Monthly figures: savings in the window × {MONTH_DAYS} ÷ the days observed (from the later of the "
    "window start and the first usage in it, to the earlier of the window end and now; at least 1 day).",
    "Every figure re-prices the window's own token counts with the catalog (price period of each UTC day, "
    "pricing tier, context band) and subtracts; unpriced models are left out and listed.",
    "A workload is a request's feature, else its API key, else 'untagged'; feature-level detail exists only in "
    "imported request logs.",
    "batch_api: only standard-tier traffic on models with Batch API prices, and only for workloads with a "
    f"latency-tolerance signal: already ≥ {pct(BATCH_SHARE_SIGNAL, Decimal(1))} % of requests via the Batch API "
    f"(high); ≥ {pct(SCHEDULED_BAND_SHARE, Decimal(1))} % of ≥ {SCHEDULED_MIN_REQUESTS} logged requests inside "
    f"one {SCHEDULED_BAND_HOURS}-hour band of the UTC day, a scheduled job (medium; high with a name signal); "
    "a non-interactive word in the feature or key name such as nightly, batch, etl, eval, report (medium); "
    "an interactive word (chat, assistant, copilot, search, support, voice, …) vetoes all but existing Batch use; "
    f"flat round-the-clock traffic, the quietest {STEADY_QUIET_HOURS} hours still carrying ≥ "
    f"{pct(STEADY_QUIET_SHARE, Decimal(1))} % of ≥ {STEADY_MIN_REQUESTS} requests over ≥ {STEADY_MIN_DAYS} days "
    "(low). Batch results arrive within 24 hours.",
    "prompt_caching: models with cache prices, workloads of ≥ "
    f"{MIN_REQUESTS} requests reading < {pct(CACHE_LOW_SHARE, Decimal(1))} % of their input from the cache. "
    "Assumed cached prefix per request = the smaller of the 10th-percentile prompt (a shared prefix cannot be "
    f"longer than most prompts) and {pct(CACHE_MAX_PREFIX_SHARE, Decimal(1))} % of the average prompt "
    f"({pct(CACHE_BUCKET_PREFIX_SHARE, Decimal(1))} % with synced usage only); at least "
    f"{CACHE_MIN_PREFIX_TOKENS} tokens (the providers' minimum). The first request of a workload and model in "
    f"each {CACHE_WARM_SECONDS}-second UTC window writes the prefix at the 5-minute cache-write price and the "
    "others in the window read it (a conservative count of cache hits: a cache written late in one window "
    "also serves the next).",
    "model_right_sizing: a cheaper sibling of the same provider and name family one size down "
    "(nano/lite < mini/small/flash/haiku < base/medium/sonnet < pro/large/opus/max), same generation when one "
    "exists, else the newest smaller stable model of the same line not older than the current one; never a "
    "fine-tune, a free experimental model, or one retiring before the current model (or within 90 days). "
    f"Only for ≥ {MIN_REQUESTS} requests with short outputs (90th percentile ≤ {SHORT_OUTPUT_P90_TOKENS} "
    f"tokens, or an average ≤ {SHORT_OUTPUT_AVG_TOKENS} from synced usage) below the long-context "
    "threshold, fitting the sibling's context window. Token counts carry over unchanged "
    "(siblings share a tokenizer).",
    "long_context: cost at the long-context prices minus the same tokens at base prices, for requests whose "
    "input is above the model's threshold; the saving assumes they are trimmed or split below it.",
    "Kinds overlap (the same traffic may be both batchable and cacheable), so total_savings is an upper "
    "bound; conservative_total_savings keeps only the largest opportunity of each workload and model.",
]


# ---------------------------------------------------------------- result models
class Confidence(BaseModel):
    """How sure the estimate is, and why."""

    level: Level
    why: str


class Workload(BaseModel):
    """The feature, API key or untagged traffic an opportunity is about."""

    kind: UnitKind = Field(description="'feature', 'api_key' or 'untagged'")
    name: str | None = Field(description="the feature name or API key id (null for untagged traffic)")
    api_keys: list[str] = Field(description="API keys (names where known) that carried this traffic")


class TrafficEvidence(BaseModel):
    """The traffic an opportunity re-prices, as it happened in the window."""

    requests: int
    share_of_workload_requests_pct: float | None = Field(description="of the workload's requests in the window")
    input_tokens: int = Field(description="all prompt tokens, cache reads and writes included")
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    avg_input_tokens_per_request: float
    avg_output_tokens_per_request: float
    request_log_share_pct: float | None = Field(
        description="share of these requests with per-request detail (imported request logs)"
    )


class BatchEvidence(BaseModel):
    """Why a workload looks latency-tolerant."""

    signals: list[str]
    batch_share_of_workload_pct: float | None = Field(description="of the workload's requests already via Batch API")
    busiest_hours_utc: list[int] | None = Field(description="the busiest consecutive UTC hours (logged requests)")
    busiest_band_share_pct: float | None
    quietest_hours_share_pct: float | None = Field(description=f"share in the quietest {STEADY_QUIET_HOURS} hours")
    name_words: list[str]
    batch_discount_pct: float | None = Field(description="batch price saving on this traffic")


class CachingEvidence(BaseModel):
    """What the caching estimate assumed."""

    cache_read_share_pct: float | None = Field(description="share of input read from the cache today")
    p10_input_tokens: int | None = Field(description="10th-percentile prompt size (request logs)")
    assumed_cached_prefix_tokens: int = Field(description="per request")
    assumed_cached_share_pct: float | None = Field(description="X: the prefix as a share of the average prompt")
    warm_request_share_pct: float | None = Field(
        description=f"requests after the first in their {CACHE_WARM_SECONDS}-second window, which would read the cache"
    )
    added_cache_read_tokens: int
    added_cache_write_tokens: int
    cache_write_premium_usd_in_window: USD = Field(description="extra paid for the writes, already subtracted")
    automatic_caching: bool = Field(description="the provider caches prefixes without explicit cache markers")


class RightSizingEvidence(BaseModel):
    """The cheaper sibling and why the work looks small enough for it."""

    alternative_model: str
    mapping: str = Field(description="how the sibling was chosen")
    same_generation: bool
    p50_output_tokens: int | None
    p90_output_tokens: int | None
    avg_output_tokens_per_request: float
    input_per_mtok: PerMTok = Field(description="current model, standard tier, today")
    output_per_mtok: PerMTok
    alternative_input_per_mtok: PerMTok
    alternative_output_per_mtok: PerMTok


class LongContextEvidence(BaseModel):
    """Requests above the long-context threshold."""

    threshold_tokens: int | None
    long_context_requests: int
    p50_input_tokens: int | None = Field(description="median prompt of those requests (request logs)")
    max_input_tokens: int | None
    trim_needed_pct: float | None = Field(description="cut the median such prompt by this much to fall below")
    cost_usd_in_window: USD = Field(description="what these requests cost")
    base_price_cost_usd_in_window: USD = Field(description="the same tokens at base prices")


class Opportunity(BaseModel):
    """Money not yet saved, with its evidence."""

    kind: Kind
    title: str
    action: str = Field(description="what to change")
    workload: Workload
    model: str
    provider: str
    savings_usd_per_month: USD = Field(description=f"per {MONTH_DAYS}-day month, scaled from the window")
    savings_usd_in_window: USD
    affected_cost_usd_in_window: USD = Field(description="what the affected traffic cost in the window")
    savings_pct_of_affected: float | None
    confidence: Confidence
    traffic: TrafficEvidence
    batch: BatchEvidence | None = None
    caching: CachingEvidence | None = None
    right_sizing: RightSizingEvidence | None = None
    long_context: LongContextEvidence | None = None
    notes: list[str] = Field(default_factory=list)


class KindTotal(BaseModel):
    """Savings of one kind."""

    kind: Kind
    opportunities: int
    savings_usd_per_month: USD


class SiblingMapping(BaseModel):
    """A model seen in the window and the cheaper sibling right-sizing would use."""

    model: str
    cheaper_sibling: str | None
    rule: str


class SavingsResult(BaseModel):
    """Savings opportunities in a window, largest first, with totals and the heuristics used."""

    period: Period
    observed_days: float = Field(description="days of the window with data, the base of monthly scaling")
    month_days: int = MONTH_DAYS
    window_spend_usd: USD = Field(description="priced spend in the window (every source, facts rule)")
    total_savings_usd_per_month: USD = Field(description="sum of all opportunities; an upper bound (kinds overlap)")
    conservative_total_savings_usd_per_month: USD = Field(
        description="only the largest opportunity of each workload and model"
    )
    total_savings_usd_in_window: USD
    savings_share_of_spend_pct: float | None = Field(description="total savings in the window ÷ window spend")
    totals_by_kind: list[KindTotal]
    opportunities: list[Opportunity]
    left_off: int = Field(description=f"opportunities beyond the first {MAX_OPPORTUNITIES}, left out")
    model_siblings: list[SiblingMapping]
    heuristics: list[str]
    message: str | None = Field(default=None, description="set when there is nothing to analyse")
    data_sources: list[DataSource]
    unpriced_requests: int
    unpriced_models: list[str]


# ---------------------------------------------------------------- pricing helpers
def price_sum(entry: ModelEntry, usage: TokenUsage, *, day: date, tier: ServiceTier, long_context: bool) -> Decimal:
    """The cost of a sum of requests of one day, tier and context band (see `pricing.cost.cost`)."""
    return cost(entry, usage, at=day, tier=tier, long_context=long_context).total_usd


def usage_of(s: UsageSlice) -> TokenUsage:
    """The token counts of a slice."""
    return TokenUsage(
        input_tokens=s.input_tokens,
        cached_input_tokens=s.cached_input_tokens,
        cache_write_tokens=s.cache_write_tokens,
        cache_write_1h_tokens=s.cache_write_1h_tokens,
        output_tokens=s.output_tokens,
    )


def slice_cost(entry: ModelEntry, s: UsageSlice) -> Decimal:
    """What a slice cost, recomputed from its tokens (equals the stored cost)."""
    return price_sum(entry, usage_of(s), day=s.day, tier=parse_tier(s.tier), long_context=s.long_context)


def observed_days(period: Period, first: datetime | None, now: datetime) -> Decimal:
    """Days of the window that have data: from the later of start and the first usage's UTC day."""
    begin = period.start
    if first is not None:
        begin = max(begin, datetime.combine(first.date(), datetime.min.time()))
    stop = min(period.end, now)
    days = Decimal((stop - begin).total_seconds()) / Decimal(86400)
    return max(days, Decimal(1))


# ---------------------------------------------------------------- siblings
_SIZE_RANK = {
    "nano": 0,
    "lite": 0,
    "tiny": 0,
    "micro": 0,
    "mini": 1,
    "small": 1,
    "flash": 1,
    "haiku": 1,
    "medium": 2,
    "sonnet": 2,
    "pro": 3,
    "large": 3,
    "opus": 3,
    "max": 3,
    "ultra": 3,
}
_BASE_RANK = 2
_SIZE_NAMES = {0: "nano/lite", 1: "mini/small/flash/haiku", 2: "base/medium/sonnet", 3: "pro/large/opus/max"}
_NOT_A_LINE = frozenset({"latest", "preview", "exp", "experimental"})
_UNSTABLE = frozenset({"preview", "exp", "experimental"})
# A generation number such as 4o, 5.4 or 3; longer numbers (1206, 2603) are snapshot dates.
_VERSION = re.compile(r"^(\d{1,2}(?:\.\d+)*)[a-z]?$")


@dataclass(frozen=True)
class Sibling:
    """A cheaper sibling of a model and the rule that picked it."""

    entry: ModelEntry
    rule: str
    same_generation: bool


@dataclass(frozen=True)
class _Name:
    family: str
    line: str
    rank: int
    version: tuple[int, ...]
    unstable: bool


def _parse_name(model: str) -> _Name:
    tokens = model.lower().split("-")
    unstable = any(t in _UNSTABLE for t in tokens)
    sizes = [_SIZE_RANK[t] for t in tokens if t in _SIZE_RANK]
    rest = [t for t in tokens if t not in _SIZE_RANK]
    version: list[int] = []
    for token in rest:
        match = _VERSION.match(token)
        if match:
            version.extend(int(part) for part in match.group(1).split("."))
    line = [t for t in rest if not any(c.isdigit() for c in t) and t not in _NOT_A_LINE]
    return _Name(
        family="-".join(rest),
        line="-".join(line),
        rank=min(sizes) if sizes else _BASE_RANK,
        version=tuple(version),
        unstable=unstable,
    )


def cheaper_sibling(catalog: Catalog, entry: ModelEntry, today: date) -> Sibling | None:
    """The model one size down in `entry`'s family, or None.

    Same provider, chat models, a smaller size word, cheaper on both input and output (standard
    tier, current prices), not a fine-tune, not free, and not retiring sooner than `entry` (nor
    within 90 days when `entry` has no retirement date). Same generation first
    (gpt-4o → gpt-4o-mini, claude-sonnet-4-5 → claude-haiku-4-5, gemini-2.5-pro → gemini-2.5-flash);
    otherwise the newest smaller model of the same line that is not older than `entry`. Among
    several, the most expensive, i.e. the next step down rather than the smallest.
    """
    if entry.mode != "chat" or entry.model.startswith("ft:"):
        return None
    me = _parse_name(entry.model)
    mine = entry.current.standard
    same: list[ModelEntry] = []
    other: list[tuple[_Name, ModelEntry]] = []
    for candidate in catalog.models:
        if candidate.model == entry.model or candidate.provider != entry.provider or candidate.mode != "chat":
            continue
        if candidate.model.startswith("ft:"):
            continue
        if not _lasts(candidate, entry, today):
            continue
        prices = candidate.current.standard
        if prices.input + prices.output == 0:  # free experimental models are not a production option
            continue
        if not (prices.input <= mine.input and prices.output <= mine.output) or (
            prices.input == mine.input and prices.output == mine.output
        ):
            continue
        name = _parse_name(candidate.model)
        if name.rank >= me.rank:
            continue
        if name.family == me.family:
            same.append(candidate)
        elif name.line == me.line and not name.unstable and me.version and name.version and name.version >= me.version:
            other.append((name, candidate))

    def price_key(e: ModelEntry) -> tuple[Decimal, Decimal, str]:
        p = e.current.standard
        return (p.input + p.output, p.input, e.model)

    if same:
        best = max(same, key=price_key)
        rank = _parse_name(best.model).rank
        return Sibling(
            best,
            f"same family '{me.family}', one size down ({_SIZE_NAMES[me.rank]} → {_SIZE_NAMES[rank]}), "
            f"cheaper on input and output",
            same_generation=True,
        )
    if other:
        newest = max(name.version for name, _ in other)
        best = max((e for name, e in other if name.version == newest), key=price_key)
        return Sibling(
            best,
            f"no smaller model of the same generation; the newest smaller model of the '{me.line}' line "
            f"({_SIZE_NAMES[_parse_name(best.model).rank]}), cheaper on input and output",
            same_generation=False,
        )
    return None


def _lasts(candidate: ModelEntry, entry: ModelEntry, today: date) -> bool:
    """A sibling worth moving to: not retired, and not retiring before the model it replaces."""
    retires = candidate.deprecation_date
    if retires is None:
        return True
    if retires <= today:
        return False
    if entry.deprecation_date is not None:
        return retires >= entry.deprecation_date
    return retires > today + DEPRECATION_MARGIN


# ---------------------------------------------------------------- analysis
@dataclass
class _Group:
    """One workload on one model: its slices and shape."""

    unit_kind: UnitKind
    unit: str
    entry: ModelEntry
    shape: WorkloadModelShape
    profile: WorkloadProfile | None
    slices: list[UsageSlice] = field(default_factory=list)


def _unit_kind(name: str) -> UnitKind:
    if name == "feature":
        return "feature"
    if name == "api_key":
        return "api_key"
    return "untagged"


def _describe(g: _Group) -> str:
    if g.unit_kind == "feature":
        return f"feature '{g.unit}'"
    if g.unit_kind == "api_key":
        label = g.shape.keys[0] if g.shape.keys else g.unit
        return f"API key '{label}'" if label == g.unit else f"API key '{label}' ({g.unit})"
    return "untagged traffic"


def _workload(g: _Group) -> Workload:
    return Workload(kind=g.unit_kind, name=g.unit or None, api_keys=g.shape.keys)


def _ratio(part: int, whole: int) -> float | None:
    return pct(Decimal(part), Decimal(whole))


def _traffic(g: _Group, slices: list[UsageSlice]) -> TrafficEvidence:
    requests = sum(s.requests for s in slices)
    input_tokens = sum(s.input_tokens for s in slices)
    output_tokens = sum(s.output_tokens for s in slices)
    workload_requests = g.profile.requests if g.profile else None
    return TrafficEvidence(
        requests=requests,
        share_of_workload_requests_pct=_ratio(requests, workload_requests) if workload_requests else None,
        input_tokens=input_tokens,
        cached_input_tokens=sum(s.cached_input_tokens for s in slices),
        cache_write_tokens=sum(s.cache_write_tokens + s.cache_write_1h_tokens for s in slices),
        output_tokens=output_tokens,
        avg_input_tokens_per_request=round(input_tokens / requests, 1) if requests else 0.0,
        avg_output_tokens_per_request=round(output_tokens / requests, 1) if requests else 0.0,
        request_log_share_pct=_ratio(sum(s.log_requests for s in slices), requests),
    )


@dataclass(frozen=True)
class _Draft:
    """An opportunity before monthly scaling."""

    kind: Kind
    group: _Group
    title: str
    action: str
    savings: Decimal
    affected: Decimal
    confidence: Confidence
    traffic: TrafficEvidence
    batch: BatchEvidence | None = None
    caching: CachingEvidence | None = None
    right_sizing: RightSizingEvidence | None = None
    long_context: LongContextEvidence | None = None
    notes: tuple[str, ...] = ()


def _band(hours: tuple[int, ...], width: int, *, busiest: bool) -> tuple[list[int], int]:
    """The `width` consecutive UTC hours (wrapping at midnight) with the most or fewest requests."""
    best_start, best = 0, None
    for start in range(24):
        total = sum(hours[(start + i) % 24] for i in range(width))
        if best is None or (total > best if busiest else total < best):
            best_start, best = start, total
    return [(best_start + i) % 24 for i in range(width)], int(best or 0)


def _name_words(g: _Group, vocabulary: frozenset[str]) -> list[str]:
    """Words of the workload's names (feature, or key id and names) found in `vocabulary`."""
    names = [g.unit] if g.unit_kind == "feature" else [g.unit, *g.shape.keys] if g.unit_kind == "api_key" else []
    words: set[str] = set()
    for name in names:
        words.update(w for w in re.split(r"[^a-z0-9]+", name.lower()) if w in vocabulary)
    return sorted(words)


def _batch(g: _Group) -> _Draft | None:
    eligible = [
        s for s in g.slices if s.tier == "standard" and g.entry.period_at(s.day).batch is not None and s.requests > 0
    ]
    if not eligible or g.profile is None:
        return None
    p = g.profile
    signals: list[str] = []
    batch_share = Decimal(p.batch_requests) / p.requests if p.requests else Decimal(0)
    already = p.batch_requests > 0 and batch_share >= BATCH_SHARE_SIGNAL
    if already:
        signals.append(f"already sends {pct(batch_share, Decimal(1))} % of its requests through the Batch API")
    logged = sum(p.hours)
    busy_hours: list[int] | None = None
    busy_share: float | None = None
    quiet_share: float | None = None
    scheduled = steady = False
    if logged:
        band, busy = _band(p.hours, SCHEDULED_BAND_HOURS, busiest=True)
        busy_hours = [h for h in band if p.hours[h]]
        _, quiet = _band(p.hours, STEADY_QUIET_HOURS, busiest=False)
        busy_share, quiet_share = _ratio(busy, logged), _ratio(quiet, logged)
        scheduled = logged >= SCHEDULED_MIN_REQUESTS and Decimal(busy) >= SCHEDULED_BAND_SHARE * logged
        steady = (
            logged >= STEADY_MIN_REQUESTS
            and p.log_days >= STEADY_MIN_DAYS
            and Decimal(quiet) >= STEADY_QUIET_SHARE * logged
        )
        if scheduled:
            signals.append(
                f"{busy_share} % of {logged} logged requests fall in {SCHEDULED_BAND_HOURS} hours of the UTC day "
                f"({busy_hours[0]:02d}:00–{(busy_hours[-1] + 1) % 24:02d}:00), like a scheduled job"
            )
        if steady:
            signals.append(
                f"flat round-the-clock traffic: even the quietest {STEADY_QUIET_HOURS} hours carry {quiet_share} % "
                f"of {logged} requests over {p.log_days} days, like a machine pipeline"
            )
    words = _name_words(g, NON_INTERACTIVE_WORDS)
    if words:
        signals.append(f"the name suggests non-interactive work ({', '.join(words)})")
    interactive = _name_words(g, INTERACTIVE_WORDS)
    if interactive and not already:
        # Someone is waiting on a chat or a search: an hour pattern is a usage peak, not a job.
        return None
    if not signals:
        return None
    if already or (scheduled and words):
        level: Level = "high"
        why = (
            "the workload already uses the Batch API, so it tolerates batch latency"
            if already
            else "a scheduled-job hour pattern and a non-interactive name agree"
        )
    elif scheduled or words:
        level, why = (
            "medium",
            (
                "the hour pattern looks like a scheduled job"
                if scheduled
                else "only the name suggests it is not interactive"
            ),
        )
    else:
        level, why = "low", "round-the-clock traffic is typical of pipelines but also of a global user base"
    current = Decimal(0)
    batched = Decimal(0)
    for s in eligible:
        usage = usage_of(s)
        current += price_sum(g.entry, usage, day=s.day, tier="standard", long_context=s.long_context)
        batched += price_sum(g.entry, usage, day=s.day, tier="batch", long_context=s.long_context)
    savings = current - batched
    if savings <= 0:
        return None
    others = sum(s.requests for s in g.slices) - sum(s.requests for s in eligible)
    notes = [f"{others} requests already on the Batch API or another tier are not counted"] if others else []
    if any(
        s.long_context and (lc := g.entry.period_at(s.day).long_context) is not None and lc.batch is None
        for s in eligible
    ):
        notes.append("long-context requests have no batch price for this model and save nothing")
    return _Draft(
        kind="batch_api",
        group=g,
        title=f"Move {_describe(g)} on {g.entry.model} to the Batch API",
        action=(
            f"Send {_describe(g)}'s {g.entry.model} requests through the {g.entry.provider} Batch API "
            "(results within 24 hours) instead of synchronous calls."
        ),
        savings=savings,
        affected=current,
        confidence=Confidence(level=level, why=why),
        traffic=_traffic(g, eligible),
        batch=BatchEvidence(
            signals=signals,
            batch_share_of_workload_pct=pct(batch_share, Decimal(1)) if p.requests else None,
            busiest_hours_utc=busy_hours,
            busiest_band_share_pct=busy_share,
            quietest_hours_share_pct=quiet_share,
            name_words=words,
            batch_discount_pct=pct(savings, current),
        ),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class _CachePlan:
    """A workload that passes the caching checks that need no per-window counts."""

    slices: list[UsageSlice]
    requests: int
    read_share: Decimal
    avg_input: Decimal
    prefix_tokens: int
    logs: bool


def _cache_plan(g: _Group) -> _CachePlan | None:
    """The caching checks on sums alone: cache prices, enough requests, little cache use, a big prefix."""
    shape = g.shape
    slices = [s for s in g.slices if g.entry.period_at(s.day).standard.cached_input is not None]
    requests = sum(s.requests for s in slices)
    input_tokens = sum(s.input_tokens for s in slices)
    if requests < MIN_REQUESTS or input_tokens == 0:
        return None
    read_share = Decimal(sum(s.cached_input_tokens for s in slices)) / input_tokens
    if read_share >= CACHE_LOW_SHARE:
        return None
    avg_input = Decimal(input_tokens) / requests
    logs = shape.log_requests > 0 and shape.p10_input_tokens is not None
    if shape.p10_input_tokens is not None and logs:
        prefix = min(Decimal(shape.p10_input_tokens), avg_input * CACHE_MAX_PREFIX_SHARE)
    else:
        prefix = avg_input * CACHE_BUCKET_PREFIX_SHARE
    prefix_tokens = int(prefix.to_integral_value(rounding=ROUND_FLOOR))
    if prefix_tokens < CACHE_MIN_PREFIX_TOKENS:
        return None
    return _CachePlan(slices, requests, read_share, avg_input, prefix_tokens, logs)


def _caching(g: _Group, plan: _CachePlan | None, windows: dict[SliceKey, int]) -> _Draft | None:
    if plan is None:
        return None
    shape = g.shape
    slices, requests, read_share, avg_input = plan.slices, plan.requests, plan.read_share, plan.avg_input
    prefix_tokens, logs = plan.prefix_tokens, plan.logs
    warm_total = 0
    added_reads = added_writes = 0
    current = proposed = reads_only = Decimal(0)
    for s in slices:
        bucket_requests = s.requests - s.log_requests
        cold_logged = windows.get(slice_key(s), 0)
        warm = s.log_requests - cold_logged + max(0, bucket_requests - BUCKET_COLD_STARTS_PER_DAY)
        cold = s.requests - warm
        warm_total += warm
        uncached = s.input_tokens - s.cached_input_tokens - s.cache_write_tokens - s.cache_write_1h_tokens
        reads = min(max(0, warm * prefix_tokens - s.cached_input_tokens), uncached)
        writes = min(max(0, cold * prefix_tokens - s.cache_write_tokens - s.cache_write_1h_tokens), uncached - reads)
        added_reads += reads
        added_writes += writes
        usage = usage_of(s)
        tier = parse_tier(s.tier)
        with_reads = TokenUsage(
            input_tokens=s.input_tokens,
            cached_input_tokens=s.cached_input_tokens + reads,
            cache_write_tokens=s.cache_write_tokens,
            cache_write_1h_tokens=s.cache_write_1h_tokens,
            output_tokens=s.output_tokens,
        )
        with_both = TokenUsage(
            input_tokens=s.input_tokens,
            cached_input_tokens=s.cached_input_tokens + reads,
            cache_write_tokens=s.cache_write_tokens + writes,
            cache_write_1h_tokens=s.cache_write_1h_tokens,
            output_tokens=s.output_tokens,
        )
        current += price_sum(g.entry, usage, day=s.day, tier=tier, long_context=s.long_context)
        reads_only += price_sum(g.entry, with_reads, day=s.day, tier=tier, long_context=s.long_context)
        proposed += price_sum(g.entry, with_both, day=s.day, tier=tier, long_context=s.long_context)
    savings = current - proposed
    if savings <= 0 or warm_total == 0:
        return None
    automatic = g.entry.current.standard.cache_write is None
    warm_share = Decimal(warm_total) / requests
    log_share = Decimal(sum(s.log_requests for s in slices)) / requests
    if not logs:
        level: Level = "low"
        why = "synced usage only: no per-request prompt sizes or timing, so the prefix and cache hits are guesses"
    elif automatic:
        level = "medium" if warm_share >= Decimal("0.8") else "low"
        why = (
            f"{g.entry.provider} caches repeated prefixes automatically, so the low cache share means prompts "
            "do not start with a stable prefix; the saving needs static content (instructions, tools, "
            "documents) moved to the front"
        )
    elif warm_share >= Decimal("0.8") and log_share >= Decimal("0.8"):
        level, why = (
            "high",
            (
                f"{pct(warm_share, Decimal(1))} % of requests follow another in the same {CACHE_WARM_SECONDS}-second "
                "window and 90 % of prompts are at least the assumed prefix long; only cache markers are missing"
            ),
        )
    elif warm_share >= Decimal("0.5"):
        level, why = "medium", f"{pct(warm_share, Decimal(1))} % of requests would find the cache warm"
    else:
        level, why = "low", f"only {pct(warm_share, Decimal(1))} % of requests would find the cache warm"
    stable = "the stable part of the prompt (system prompt, tool definitions, shared documents)"
    if automatic:
        marker = f"put {stable} first and keep it byte-identical so the provider's automatic cache can match it"
    elif g.entry.provider == "anthropic":
        marker = f"put {stable} first and end it with a cache_control breakpoint"
    else:
        marker = f"put {stable} first, byte-identical, and turn on {g.entry.provider}'s prompt caching for it"
    return _Draft(
        kind="prompt_caching",
        group=g,
        title=f"Cache the shared prompt prefix of {_describe(g)} on {g.entry.model}",
        action=f"For {_describe(g)} on {g.entry.model}: {marker}.",
        savings=savings,
        affected=current,
        confidence=Confidence(level=level, why=why),
        traffic=_traffic(g, slices),
        caching=CachingEvidence(
            cache_read_share_pct=pct(read_share, Decimal(1)),
            p10_input_tokens=shape.p10_input_tokens,
            assumed_cached_prefix_tokens=prefix_tokens,
            assumed_cached_share_pct=pct(Decimal(prefix_tokens), avg_input),
            warm_request_share_pct=pct(warm_share, Decimal(1)),
            added_cache_read_tokens=added_reads,
            added_cache_write_tokens=added_writes,
            cache_write_premium_usd_in_window=proposed - reads_only,
            automatic_caching=automatic,
        ),
    )


def _right_size(g: _Group, sibling: Sibling | None) -> _Draft | None:
    shape = g.shape
    if sibling is None or shape.base_requests < MIN_REQUESTS:
        return None
    base = [s for s in g.slices if not s.long_context]
    avg_output = Decimal(shape.base_output_tokens) / shape.base_requests
    if shape.p90_output_tokens is not None:
        if shape.p90_output_tokens > SHORT_OUTPUT_P90_TOKENS:
            return None
    elif avg_output > SHORT_OUTPUT_AVG_TOKENS:
        return None
    biggest = (
        Decimal(shape.max_request_tokens)
        if shape.max_request_tokens is not None
        else Decimal(shape.base_input_tokens + shape.base_output_tokens) / shape.base_requests
    )
    alt = sibling.entry
    if alt.context_window is not None and biggest > alt.context_window:
        return None
    alt_lc = alt.current.long_context
    if alt_lc is not None and biggest > alt_lc.threshold_tokens:
        return None
    current = Decimal(0)
    moved = Decimal(0)
    for s in base:
        usage = usage_of(s)
        tier = parse_tier(s.tier)
        current += price_sum(g.entry, usage, day=s.day, tier=tier, long_context=False)
        moved += price_sum(alt, usage, day=s.day, tier=tier, long_context=False)
    savings = current - moved
    if savings <= 0:
        return None
    logs = shape.p90_output_tokens is not None
    if not logs:
        level: Level = "low"
        why = "synced usage only: output lengths are averages, not per request"
    elif not sibling.same_generation:
        level, why = "low", f"{alt.model} is from another generation; quality may differ more than size suggests"
    elif shape.p90_output_tokens is not None and shape.p90_output_tokens <= CLASSIFY_OUTPUT_P90_TOKENS:
        level, why = (
            "high",
            (
                f"90 % of responses are ≤ {shape.p90_output_tokens} tokens (classification/extraction-like), "
                "which smaller siblings usually handle"
            ),
        )
    else:
        level, why = (
            "medium",
            (
                f"responses are short (90th percentile {shape.p90_output_tokens} tokens); check quality on a sample "
                "before switching"
            ),
        )
    notes = []
    if any(s.long_context for s in g.slices):
        notes.append("long-context requests stay on the current model and are not counted")
    if any(s.tier not in ("standard", "batch") for s in base):
        notes.append(f"priority/flex traffic is priced at {alt.model}'s standard rates where it has no such tier")
    me, other = g.entry.current.standard, alt.current.standard
    return _Draft(
        kind="model_right_sizing",
        group=g,
        title=f"Right-size {_describe(g)} from {g.entry.model} to {alt.model}",
        action=(
            f"Run {_describe(g)} on {alt.model} instead of {g.entry.model} after checking quality on a sample "
            "of its requests."
        ),
        savings=savings,
        affected=current,
        confidence=Confidence(level=level, why=why),
        traffic=_traffic(g, base),
        right_sizing=RightSizingEvidence(
            alternative_model=alt.model,
            mapping=f"{g.entry.model} → {alt.model}: {sibling.rule}",
            same_generation=sibling.same_generation,
            p50_output_tokens=shape.p50_output_tokens,
            p90_output_tokens=shape.p90_output_tokens,
            avg_output_tokens_per_request=round(float(avg_output), 1),
            input_per_mtok=me.input,
            output_per_mtok=me.output,
            alternative_input_per_mtok=other.input,
            alternative_output_per_mtok=other.output,
        ),
        notes=tuple(notes),
    )


def _long_context(g: _Group) -> _Draft | None:
    shape = g.shape
    over = [s for s in g.slices if s.long_context]
    if not over:
        return None
    actual = Decimal(0)
    base = Decimal(0)
    for s in over:
        usage = usage_of(s)
        tier = parse_tier(s.tier)
        actual += price_sum(g.entry, usage, day=s.day, tier=tier, long_context=True)
        base += price_sum(g.entry, usage, day=s.day, tier=tier, long_context=False)
    savings = actual - base
    if savings <= 0:
        return None
    threshold = shape.threshold_tokens
    p50 = shape.p50_long_context_input_tokens
    trim: float | None = None
    if p50 is None or threshold is None:
        level: Level = "low"
        why = "synced usage only: the provider reports long-context use but not prompt sizes"
    else:
        trim = pct(Decimal(p50 - threshold), Decimal(p50))
        if p50 <= threshold * Decimal("1.25"):
            level, why = "high", f"the median such prompt ({p50} tokens) needs only {trim} % trimmed"
        elif p50 <= threshold * 2:
            level, why = "medium", f"the median such prompt ({p50} tokens) needs {trim} % trimmed"
        else:
            level, why = "low", f"the median such prompt ({p50} tokens) is over twice the threshold; it must be split"
    limit = f"{threshold:,} input tokens" if threshold else "the long-context threshold"
    return _Draft(
        kind="long_context",
        group=g,
        title=f"Keep {_describe(g)} prompts on {g.entry.model} under {limit}",
        action=(
            f"Trim retrieved context or history in {_describe(g)}'s {g.entry.model} prompts to stay under {limit}, "
            "or split the work into smaller requests; long-context prices apply to the whole request."
        ),
        savings=savings,
        affected=actual,
        confidence=Confidence(level=level, why=why),
        traffic=_traffic(g, over),
        long_context=LongContextEvidence(
            threshold_tokens=threshold,
            long_context_requests=sum(s.requests for s in over),
            p50_input_tokens=p50,
            max_input_tokens=shape.max_long_context_input_tokens,
            trim_needed_pct=trim,
            cost_usd_in_window=actual,
            base_price_cost_usd_in_window=base,
        ),
    )


def _groups(
    catalog: Catalog,
    slices: Iterable[UsageSlice],
    shapes: Iterable[WorkloadModelShape],
    profiles: Iterable[WorkloadProfile],
) -> list[_Group]:
    by_profile = {(p.unit_kind, p.unit): p for p in profiles}
    groups: dict[tuple[str, str, str], _Group] = {}
    for shape in shapes:
        entry = catalog.find(shape.model_id)
        if entry is None:
            continue
        groups[(shape.unit_kind, shape.unit, shape.model_id)] = _Group(
            unit_kind=_unit_kind(shape.unit_kind),
            unit=shape.unit,
            entry=entry,
            shape=shape,
            profile=by_profile.get((shape.unit_kind, shape.unit)),
        )
    for s in slices:
        group = groups.get((s.unit_kind, s.unit, s.model_id))
        if group is not None:
            group.slices.append(s)
    return list(groups.values())


def savings_opportunities(
    store: Store,
    catalog: Catalog,
    *,
    start: str | None = None,
    end: str | None = None,
    days: float | None = None,
    now: datetime | None = None,
) -> SavingsResult:
    """Every opportunity in the window, largest monthly saving first, with totals."""
    current_time = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    period = resolve_window(start, end, days, now=current_time)
    f = FactFilter(start=period.start, end=period.end)
    with store.reading() as conn:
        scan = savings_queries.window_scan(conn, f)
        ext: Extent = scan.extent
        groups = _groups(catalog, scan.slices, scan.shapes, savings_queries.workload_profiles(scan.shapes))
        plans = {id(g): _cache_plan(g) for g in groups}
        # Counting 5-minute windows is the costly part: only for workloads that pass every other check.
        candidates = [
            (g.shape.unit_kind, g.unit, g.shape.model_id)
            for g in groups
            if plans[id(g)] is not None and g.shape.log_requests
        ]
        windows = savings_queries.cache_windows(conn, f, candidates)
    uses, unpriced = scan.sources, scan.unpriced
    observed = observed_days(period, ext.first, current_time)
    scale = Decimal(MONTH_DAYS) / observed

    siblings: dict[str, Sibling | None] = {}
    for g in groups:
        if g.entry.model not in siblings:
            siblings[g.entry.model] = cheaper_sibling(catalog, g.entry, current_time.date())

    drafts = [
        draft
        for g in groups
        for draft in (
            _batch(g),
            _caching(g, plans[id(g)], windows),
            _right_size(g, siblings[g.entry.model]),
            _long_context(g),
        )
        if draft is not None
    ]

    opportunities = [
        Opportunity(
            kind=d.kind,
            title=d.title,
            action=d.action,
            workload=_workload(d.group),
            model=d.group.entry.model,
            provider=d.group.entry.provider,
            savings_usd_per_month=d.savings * scale,
            savings_usd_in_window=d.savings,
            affected_cost_usd_in_window=d.affected,
            savings_pct_of_affected=pct(d.savings, d.affected),
            confidence=d.confidence,
            traffic=d.traffic,
            batch=d.batch,
            caching=d.caching,
            right_sizing=d.right_sizing,
            long_context=d.long_context,
            notes=list(d.notes),
        )
        for d in drafts
    ]
    opportunities.sort(
        key=lambda o: (-o.savings_usd_in_window, o.kind, o.workload.kind, o.workload.name or "", o.model)
    )
    total = sum((d.savings for d in drafts), Decimal(0))
    largest: dict[tuple[str, str, str], Decimal] = {}
    for d in drafts:
        key = (d.group.unit_kind, d.group.unit, d.group.entry.model)
        largest[key] = max(largest.get(key, Decimal(0)), d.savings)
    conservative = sum(largest.values(), Decimal(0))
    kinds: list[Kind] = ["batch_api", "prompt_caching", "model_right_sizing", "long_context"]
    totals = [
        KindTotal(
            kind=kind,
            opportunities=sum(1 for d in drafts if d.kind == kind),
            savings_usd_per_month=sum((d.savings for d in drafts if d.kind == kind), Decimal(0)) * scale,
        )
        for kind in kinds
    ]
    spend = ext.cost_usd or Decimal(0)
    message: str | None = None
    if ext.requests == 0:
        message = (
            f"No usage between {period.start.isoformat()} and {period.end.isoformat()} (UTC): import request logs "
            "or sync a provider, or widen the window."
        )
    elif spend == 0:
        message = "The window has usage, but none of it could be priced; see unpriced_models."
    elif not opportunities:
        message = (
            "No savings opportunity found in this window under the heuristics listed (nothing batchable with a "
            "latency-tolerance signal, no large uncached prompts, no short work on an oversized model, no "
            "long-context surcharges)."
        )
    return SavingsResult(
        period=period,
        observed_days=round(float(observed), 4),
        window_spend_usd=spend,
        total_savings_usd_per_month=total * scale,
        conservative_total_savings_usd_per_month=conservative * scale,
        total_savings_usd_in_window=total,
        savings_share_of_spend_pct=pct(total, spend),
        totals_by_kind=totals,
        opportunities=opportunities[:MAX_OPPORTUNITIES],
        left_off=max(0, len(opportunities) - MAX_OPPORTUNITIES),
        model_siblings=[
            SiblingMapping(
                model=model,
                cheaper_sibling=sib.entry.model if sib else None,
                rule=sib.rule if sib else "no cheaper smaller model in the same family",
            )
            for model, sib in sorted(siblings.items())
        ],
        heuristics=HEURISTICS,
        message=message,
        data_sources=data_sources(uses),
        unpriced_requests=unpriced.requests,
        unpriced_models=unpriced.models,
    )
