"""What a prompt will cost before it is sent: count, price, compare models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from decimal import Decimal

from pydantic import BaseModel, Field

from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.money import USD, PerMTok
from costhawk_mcp.pricing.catalog import Catalog, ModelEntry, ServiceTier
from costhawk_mcp.pricing.cost import TokenUsage, cost, service_tier
from costhawk_mcp.tokens import Message, TokenCount, count_messages, count_text


class PriceUsed(BaseModel):
    """The per-million-token rates that priced this estimate."""

    tier: str = Field(description="standard, batch, priority or flex")
    long_context: bool = Field(description="true when the long-context prices applied")
    input_per_mtok: PerMTok
    cached_input_per_mtok: PerMTok
    output_per_mtok: PerMTok
    effective_from: str | None = Field(description="date the prices took effect (null: as far back as known)")


class ModelEstimate(BaseModel):
    """Count and cost of one prompt on one model."""

    model: str = Field(description="canonical model id")
    provider: str
    input_tokens: int
    input_tokens_low: int = Field(description="lower end of the count (equals input_tokens when exact)")
    input_tokens_high: int = Field(description="upper end of the count (equals input_tokens when exact)")
    token_count_method: str = Field(description="'exact' (the model's own tokenizer) or 'approximate'")
    token_count_detail: str = Field(description="how the count was made")
    encoding: str
    cached_input_tokens: int
    output_tokens: int
    input_cost_usd: USD = Field(description="all prompt-side cost: uncached input plus cache reads")
    cached_input_cost_usd: USD = Field(description="the part of input_cost_usd paid for cache reads")
    output_cost_usd: USD
    total_cost_usd: USD
    total_cost_low_usd: USD = Field(description="total at input_tokens_low")
    total_cost_high_usd: USD = Field(description="total at input_tokens_high")
    context_window: int | None
    max_output_tokens: int | None
    fits_context: bool | None = Field(description="input + expected output fit the context window (null: unknown)")
    price: PriceUsed
    notes: list[str] = Field(default_factory=list)


class EstimateResult(ModelEstimate):
    """The requested model's estimate, and the same prompt on each compared model (cheapest first)."""

    batch: bool
    comparisons: list[ModelEstimate]
    cheapest_model: str = Field(description="the cheapest of the requested and compared models")


ExactCounter = Callable[[ModelEntry], "TokenCount | None"]


def estimate_prompt(
    catalog: Catalog,
    *,
    model: str,
    text: str | None,
    messages: Sequence[Message] | None,
    expected_output_tokens: int,
    cached_input_tokens: int,
    batch: bool,
    compare_models: Sequence[str],
    max_input_bytes: int,
    now: datetime | None = None,
    exact_counter: ExactCounter | None = None,
) -> EstimateResult:
    """Count the prompt for `model` (and each compared model, with its own tokenizer) and price it.

    `exact_counter`, when given, counts models without a public tokenizer exactly (the provider's
    own endpoint, tokens_remote.py) instead of approximating them; it returns None for a model it
    cannot count, which then keeps its approximation.
    """
    if (text is None) == (messages is None):
        raise InvalidArgument("text", "give exactly one of 'text' (a string) or 'messages' (a list of {role, content})")
    if messages is not None and not messages:
        raise InvalidArgument("messages", "must hold at least one {role, content} message")
    entry = catalog.get(model)
    others: list[ModelEntry] = []
    for i, name in enumerate(compare_models):
        other = catalog.get(name, field=f"compare_models[{i}]")
        if other.model != entry.model and other not in others:
            others.append(other)
    at = now or datetime.now(timezone.utc)
    tier = service_tier(batch)

    # A count depends only on the model's encoding and provider, so models that share both (gpt-4o,
    # o3, gpt-4.1, ...) share one pass over a possibly megabyte-sized prompt.
    counts: dict[tuple[str | None, str], TokenCount] = {}

    def count(target: ModelEntry) -> TokenCount:
        key = (target.encoding, target.provider)
        if exact_counter is not None and target.encoding is None:
            exact = exact_counter(target)
            if exact is not None:
                return exact
        if key not in counts:
            if text is not None:
                counts[key] = count_text(text, target, max_bytes=max_input_bytes)
            else:
                assert messages is not None
                counts[key] = count_messages(messages, target, max_bytes=max_input_bytes)
        return counts[key]

    main_count = count(entry)
    if cached_input_tokens > main_count.tokens:
        raise InvalidArgument(
            "cached_input_tokens",
            f"{cached_input_tokens} is more than the prompt's {main_count.tokens} input tokens on {entry.model}",
        )
    cached_share = Decimal(cached_input_tokens) / main_count.tokens if main_count.tokens else Decimal(0)
    main = _estimate(entry, main_count, cached_input_tokens, expected_output_tokens, tier, at)
    comparisons = []
    for other in others:
        other_count = count(other)
        # The cache covers the same share of the prompt, whatever the other tokenizer's count.
        cached = int((cached_share * other_count.tokens).to_integral_value())
        comparisons.append(_estimate(other, other_count, cached, expected_output_tokens, tier, at))
        if cached_input_tokens and other_count.tokens != main_count.tokens:
            comparisons[-1].notes.append(
                f"cached_input_tokens scaled to the same share of the prompt ({cached} of {other_count.tokens})"
            )
    comparisons.sort(key=lambda e: (e.total_cost_usd, e.model))
    cheapest = min([main, *comparisons], key=lambda e: (e.total_cost_usd, e.model)).model
    return EstimateResult(**main.model_dump(), batch=batch, comparisons=comparisons, cheapest_model=cheapest)


def _estimate(
    entry: ModelEntry, counted: TokenCount, cached: int, output: int, tier: ServiceTier, at: datetime
) -> ModelEstimate:
    def price(input_tokens: int) -> Decimal:
        usage = TokenUsage(
            input_tokens=input_tokens, cached_input_tokens=min(cached, input_tokens), output_tokens=output
        )
        return cost(entry, usage, at=at, tier=tier).total_usd

    priced = cost(
        entry,
        TokenUsage(input_tokens=counted.tokens, cached_input_tokens=cached, output_tokens=output),
        at=at,
        tier=tier,
    )
    rates = priced.rates
    notes = list(rates.notes)
    if counted.method == "approximate":
        notes.append(f"input tokens are an approximation ({counted.detail}); range {counted.low}–{counted.high}")
    if rates.long_context:
        notes.append("the prompt is above the long-context threshold: long-context prices apply to the whole request")
    if entry.mode == "embedding" and output:
        notes.append("embedding models produce no output tokens; output priced at the model's output rate (0)")
    fits: bool | None = None
    if entry.context_window is not None:
        fits = counted.tokens + output <= entry.context_window
        if not fits:
            notes.append(
                f"input + output ({counted.tokens + output}) exceed the context window ({entry.context_window})"
            )
    if entry.max_output_tokens is not None and output > entry.max_output_tokens:
        notes.append(f"expected output ({output}) is above the model's max output ({entry.max_output_tokens})")
    if entry.deprecation_date is not None and entry.deprecation_date <= at.date():
        notes.append(
            f"{entry.model} was deprecated on {entry.deprecation_date}"
            + (f"; successor: {entry.successor}" if entry.successor else "")
        )
    return ModelEstimate(
        model=entry.model,
        provider=entry.provider,
        input_tokens=counted.tokens,
        input_tokens_low=counted.low,
        input_tokens_high=counted.high,
        token_count_method=counted.method,
        token_count_detail=counted.detail,
        encoding=counted.encoding,
        cached_input_tokens=cached,
        output_tokens=output,
        input_cost_usd=priced.all_input_usd,
        cached_input_cost_usd=priced.cached_input_usd,
        output_cost_usd=priced.output_usd,
        total_cost_usd=priced.total_usd,
        total_cost_low_usd=price(counted.low) if counted.low != counted.tokens else priced.total_usd,
        total_cost_high_usd=price(counted.high) if counted.high != counted.tokens else priced.total_usd,
        context_window=entry.context_window,
        max_output_tokens=entry.max_output_tokens,
        fits_context=fits,
        price=PriceUsed(
            tier=rates.tier,
            long_context=rates.long_context,
            input_per_mtok=rates.input,
            cached_input_per_mtok=rates.cached_input,
            output_per_mtok=rates.output,
            effective_from=priced.period.effective_from.isoformat() if priced.period.effective_from else None,
        ),
        notes=notes,
    )
