"""The one cost function, and the rate resolution it shares with the store's bulk pricing.

A request's cost is a dot product of five token counts with five per-million-token rates:

    uncached input × input + cache reads × cached_input + 5-minute cache writes × cache_write
    + 1-hour cache writes × cache_write_1h + output × output

`resolve_rates` decides which five rates apply (price period by date, service tier, long-context
tier); `cost` multiplies. The store prices millions of rows in SQL with the same dot product over a
table that `resolve_rates` itself fills (`rate_rows`), so there is one place that decides prices.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.pricing.catalog import SERVICE_TIERS, ModelEntry, PricePeriod, ServiceTier, TierPrices

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class TokenUsage:
    """Token counts of one request (or a sum of requests priced alike).

    `input_tokens` is every prompt token, cache reads and writes included (OpenAI's convention);
    the cache counts are parts of it.
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0

    def __post_init__(self) -> None:
        for name in (
            "input_tokens",
            "cached_input_tokens",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "output_tokens",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgument(name, f"must be a whole number ≥ 0, got {value!r}")
        if self.uncached_input_tokens < 0:
            raise InvalidArgument(
                "cached_input_tokens",
                f"cache reads and writes ({self.cached_input_tokens} + {self.cache_write_tokens} + "
                f"{self.cache_write_1h_tokens}) cannot exceed input_tokens ({self.input_tokens})",
            )

    @property
    def uncached_input_tokens(self) -> int:
        """Prompt tokens billed at the plain input rate."""
        return self.input_tokens - self.cached_input_tokens - self.cache_write_tokens - self.cache_write_1h_tokens


@dataclass(frozen=True)
class Rates:
    """The five per-million-token rates that price one request, and how they were chosen."""

    input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    output: Decimal
    tier: ServiceTier
    long_context: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cost:
    """A priced request: each part in USD, exact."""

    input_usd: Decimal
    cached_input_usd: Decimal
    cache_write_usd: Decimal
    output_usd: Decimal
    rates: Rates
    period: PricePeriod = field(repr=False)

    @property
    def total_usd(self) -> Decimal:
        """Everything the request costs."""
        return self.input_usd + self.cached_input_usd + self.cache_write_usd + self.output_usd

    @property
    def all_input_usd(self) -> Decimal:
        """Every prompt-side charge: uncached input, cache reads and cache writes."""
        return self.input_usd + self.cached_input_usd + self.cache_write_usd


def resolve_rates(period: PricePeriod, tier: ServiceTier, *, long_context: bool) -> Rates:
    """The rates of one price period for one tier, with every fallback stated in `notes`.

    Fallbacks: a tier the model does not sell is priced at standard; a tier without its own cache
    prices uses standard's; a model without cache prices charges cache tokens at its input rate
    (providers without caching never report cache tokens, so this only matters for bad data).
    """
    notes: list[str] = []
    tiers = period.long_context if (long_context and period.long_context is not None) else period
    prices = tiers.tier(tier)
    if prices is None:
        if tier != "standard":
            notes.append(f"no {tier} price for this model; priced at the standard rate")
        prices = tiers.standard
    standard = tiers.standard
    cached = _first(prices.cached_input, standard.cached_input, prices.input)
    write = _first(prices.cache_write, standard.cache_write, prices.input)
    write_1h = _first(prices.cache_write_1h, standard.cache_write_1h, write)
    return Rates(
        input=prices.input,
        cached_input=cached,
        cache_write=write,
        cache_write_1h=write_1h,
        output=prices.output,
        tier=tier,
        long_context=tiers is not period,
        notes=tuple(notes),
    )


def uses_long_context(period: PricePeriod, input_tokens: int) -> bool:
    """True when a request of `input_tokens` is billed at the period's long-context prices."""
    return period.long_context is not None and input_tokens > period.long_context.threshold_tokens


def service_tier(batch: bool, tier: str | None = None) -> ServiceTier:
    """The pricing tier of a request: batch wins; `priority`/`flex` as reported; else standard."""
    if batch:
        return "batch"
    if tier is not None:
        name = tier.strip().lower()
        if name in ("priority", "flex"):
            return "priority" if name == "priority" else "flex"
    return "standard"


def cost(
    entry: ModelEntry,
    usage: TokenUsage,
    *,
    at: date | datetime,
    tier: ServiceTier = "standard",
    long_context: bool | None = None,
) -> Cost:
    """Price `usage` on `entry` at the price in force on `at` (UTC), in `tier`.

    For one request the long-context band follows from its own input size. `usage` may also be a
    sum of requests priced alike; then pass the band those requests had (`long_context`), since a
    thousand short prompts summed are not one long prompt.
    """
    period = entry.period_at(at)
    band = uses_long_context(period, usage.input_tokens) if long_context is None else long_context
    rates = resolve_rates(period, tier, long_context=band)
    return price_with(rates, usage, period)


def parse_tier(name: str) -> ServiceTier:
    """A stored tier name as a catalog tier (anything unknown is standard)."""
    for tier in SERVICE_TIERS:
        if tier == name:
            return tier
    return "standard"


def price_with(rates: Rates, usage: TokenUsage, period: PricePeriod) -> Cost:
    """Multiply token counts by already-resolved rates."""
    return Cost(
        input_usd=usage.uncached_input_tokens * rates.input / MILLION,
        cached_input_usd=usage.cached_input_tokens * rates.cached_input / MILLION,
        cache_write_usd=(
            usage.cache_write_tokens * rates.cache_write + usage.cache_write_1h_tokens * rates.cache_write_1h
        )
        / MILLION,
        output_usd=usage.output_tokens * rates.output / MILLION,
        rates=rates,
        period=period,
    )


@dataclass(frozen=True)
class RateRow:
    """One row of the store's rate table: the rates for a model, period, tier and context band."""

    model: str
    effective_from: date | None
    effective_to: date | None
    tier: ServiceTier
    long_context: bool
    threshold_tokens: int | None
    rates: Rates


def rate_rows(entries: list[ModelEntry]) -> Iterator[RateRow]:
    """Every rate combination of every model, for pricing rows in bulk with the same rules as `cost`."""
    for entry in entries:
        for period in entry.periods:
            threshold = period.long_context.threshold_tokens if period.long_context else None
            for tier in SERVICE_TIERS:
                for long_context in (False, True) if threshold is not None else (False,):
                    yield RateRow(
                        model=entry.model,
                        effective_from=period.effective_from,
                        effective_to=period.effective_to,
                        tier=tier,
                        long_context=long_context,
                        threshold_tokens=threshold,
                        rates=resolve_rates(period, tier, long_context=long_context),
                    )


def tier_prices(period: PricePeriod, tier: ServiceTier) -> TierPrices | None:
    """The catalog's own prices of one tier (no fallbacks), for display."""
    return period.tier(tier)


def _first(*values: Decimal | None) -> Decimal:
    for value in values:
        if value is not None:
            return value
    raise AssertionError("the last fallback is always a price")
