"""Flat, JSON-friendly views of catalog prices: what the pricing:// resources and tools return."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from costhawk_mcp.money import PerMTok
from costhawk_mcp.pricing.catalog import LongContext, ModelEntry, PricePeriod, Tiers


class TierView(BaseModel):
    """Flat per-million-token prices of one price table (a period or its long-context tier)."""

    input_per_mtok: PerMTok
    output_per_mtok: PerMTok
    cached_input_per_mtok: PerMTok | None = Field(description="cache read")
    cache_write_per_mtok: PerMTok | None = Field(description="5-minute cache write")
    cache_write_1h_per_mtok: PerMTok | None = Field(description="1-hour cache write")
    batch_input_per_mtok: PerMTok | None
    batch_output_per_mtok: PerMTok | None
    batch_cached_input_per_mtok: PerMTok | None = None
    batch_cache_write_per_mtok: PerMTok | None = None
    priority_input_per_mtok: PerMTok | None = None
    priority_output_per_mtok: PerMTok | None = None
    flex_input_per_mtok: PerMTok | None = None
    flex_output_per_mtok: PerMTok | None = None


class LongContextView(TierView):
    """Prices for the whole request once its input exceeds `threshold_tokens`."""

    threshold_tokens: int


class PeriodView(TierView):
    """One price period of a model's history."""

    effective_from: date | None
    effective_to: date | None
    long_context: LongContextView | None
    source: str | None


class ModelPricing(TierView):
    """A model's identity, limits and current prices (plus its history on request)."""

    model: str
    provider: str
    mode: str
    aliases: list[str]
    long_context: LongContextView | None
    context_window: int | None
    max_output_tokens: int | None
    effective_from: date | None = Field(description="when the current prices took effect (null: as far back as known)")
    deprecation_date: date | None
    successor: str | None
    source: str | None
    token_count_method: str = Field(description="'exact' when the tokenizer is public and shipped, else 'approximate'")
    history: list[PeriodView] | None = Field(
        default=None, description="earlier price periods, oldest first (single-model views only)"
    )


def _tier_fields(tiers: Tiers) -> dict[str, object]:
    standard, batch, priority, flex = tiers.standard, tiers.batch, tiers.priority, tiers.flex
    return {
        "input_per_mtok": standard.input,
        "output_per_mtok": standard.output,
        "cached_input_per_mtok": standard.cached_input,
        "cache_write_per_mtok": standard.cache_write,
        "cache_write_1h_per_mtok": standard.cache_write_1h,
        "batch_input_per_mtok": batch.input if batch else None,
        "batch_output_per_mtok": batch.output if batch else None,
        "batch_cached_input_per_mtok": batch.cached_input if batch else None,
        "batch_cache_write_per_mtok": batch.cache_write if batch else None,
        "priority_input_per_mtok": priority.input if priority else None,
        "priority_output_per_mtok": priority.output if priority else None,
        "flex_input_per_mtok": flex.input if flex else None,
        "flex_output_per_mtok": flex.output if flex else None,
    }


def long_context_view(tier: LongContext | None) -> LongContextView | None:
    """The long-context tier, flattened."""
    if tier is None:
        return None
    return LongContextView.model_validate({**_tier_fields(tier), "threshold_tokens": tier.threshold_tokens})


def period_view(period: PricePeriod) -> PeriodView:
    """One price period, flattened."""
    return PeriodView.model_validate(
        {
            **_tier_fields(period),
            "effective_from": period.effective_from,
            "effective_to": period.effective_to,
            "long_context": long_context_view(period.long_context),
            "source": period.source,
        }
    )


def model_pricing(entry: ModelEntry, *, period: PricePeriod | None = None, history: bool = False) -> ModelPricing:
    """A model's pricing view: the given (default: current) period, and optionally the earlier ones."""
    shown = period or entry.current
    earlier = [period_view(p) for p in entry.periods if p is not shown] if history else None
    return ModelPricing.model_validate(
        {
            **_tier_fields(shown),
            "model": entry.model,
            "provider": entry.provider,
            "mode": entry.mode,
            "aliases": list(entry.aliases),
            "long_context": long_context_view(shown.long_context),
            "context_window": entry.context_window,
            "max_output_tokens": entry.max_output_tokens,
            "effective_from": shown.effective_from,
            "deprecation_date": entry.deprecation_date,
            "successor": entry.successor,
            "source": shown.source or entry.source,
            "token_count_method": "exact" if entry.encoding else "approximate",
            "history": earlier,
        }
    )
