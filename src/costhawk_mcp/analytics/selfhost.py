"""API price versus renting GPUs to serve an open model: where the lines cross.

The API side re-prices the organisation's own last 30 days on the model (its input/output mix,
cache reads, tiers and context bands) at today's catalog prices with the cost function, so the
blended $/token is what this team actually pays per token. The self-hosted side is a fixed daily
cost (GPUs rented around the clock) that serves up to `tokens_per_second` at full load.

Self-hosting costs the same as the API at break-even volume = daily GPU cost ÷ API $/token, and
reaches it only if one deployment can serve that volume (utilisation ≤ 100 %). Everything else
(engineering and on-call time, quality differences between the API model and an open model,
redundancy, idle capacity for peaks) is left out and said so.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from typing import Literal

from pydantic import BaseModel, Field

from costhawk_mcp.analytics.common import DataSource, data_sources
from costhawk_mcp.analytics.savings import observed_days, price_sum, usage_of
from costhawk_mcp.analytics.window import Period, make_period
from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.money import USD, PerMTok, pct
from costhawk_mcp.pricing.catalog import Catalog
from costhawk_mcp.pricing.cost import MILLION, TokenUsage, parse_tier
from costhawk_mcp.store import coverage, savings_queries
from costhawk_mcp.store.facts import FactFilter
from costhawk_mcp.store.store import Store
from costhawk_mcp.tokens import APPROX_RATIOS

HISTORY_DAYS = 30
MONTH_DAYS = 30
SECONDS_PER_DAY = 86_400
DEFAULT_GPU = "NVIDIA H100 80 GB"
DEFAULT_GPU_HOURLY_USD = Decimal("2.50")
DEFAULT_GPUS = 2
DEFAULT_TOKENS_PER_SECOND = Decimal(5000)
DEFAULT_INPUT_SHARE = Decimal("0.75")
OPEN_MODEL = "a 70B-class open-weights model (e.g. Llama 3.3 70B) in FP8, served with vLLM at high concurrency"

Source = Literal["argument", "default", "store", "catalog"]


class Assumption(BaseModel):
    """One input of the comparison, where it came from, and why it is reasonable."""

    name: str
    value: str
    unit: str
    source: Source = Field(description="'argument' (you gave it), 'default', 'store' (your usage) or 'catalog'")
    why: str


class ApiSide(BaseModel):
    """What the volume costs on the API, at today's prices and the org's own mix."""

    tokens_per_day: float = Field(description="input + output tokens per day (the provider's token counts)")
    input_share_pct: float | None
    cached_share_of_input_pct: float | None
    output_share_pct: float | None
    blended_usd_per_mtok: PerMTok = Field(description="USD per million tokens (input + output) for this mix")
    usd_per_day: USD
    usd_per_month: USD = Field(description=f"{MONTH_DAYS} days")


class SelfHostSide(BaseModel):
    """What serving the volume on rented GPUs costs."""

    gpu: str
    gpus_per_deployment: int
    gpu_hourly_usd: USD = Field(description="per GPU")
    tokens_per_second: float = Field(description="input + output tokens per second one deployment sustains")
    capacity_tokens_per_day: float = Field(description="one deployment at 100 % utilisation, open-model tokens")
    open_model_tokens_per_day: float = Field(description="the volume in the open model's tokens")
    deployments_needed: int
    utilisation_pct: float | None = Field(description="average load of the deployments at this volume")
    usd_per_day: USD
    usd_per_month: USD = Field(description=f"{MONTH_DAYS} days, GPUs rented around the clock")
    usd_per_mtok_at_full_load: PerMTok = Field(description="per million API-equivalent tokens at 100 % load")


class SelfhostResult(BaseModel):
    """API cost against a self-hosted GPU deployment, with the break-even volume."""

    model: str
    provider: str
    volume_source: Literal["argument", "store", "none"] = Field(
        description="'store': your last 30 days; 'argument': tokens_per_day; 'none': no usage and no argument"
    )
    history_period: Period
    history_days_observed: float | None
    history_requests: int
    history_tokens: int
    api: ApiSide
    self_hosted: SelfHostSide
    break_even_tokens_per_day: float | None = Field(
        description="API tokens per day at which both cost the same (null: never at this throughput)"
    )
    break_even_utilisation_pct: float | None = Field(description="load one deployment needs at break-even")
    cheaper_at_this_volume: Literal["api", "self_hosted", "same"]
    monthly_difference_usd: USD = Field(description="API minus self-hosted per month; positive: self-hosting saves")
    verdict: str
    assumptions: list[Assumption]
    caveats: list[str]
    data_sources: list[DataSource]


def _dec(value: float | int | Decimal, field: str) -> Decimal:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite() or number <= 0:
        raise InvalidArgument(field, f"must be a positive number, got {value!r}")
    return number


def selfhost_breakeven(
    store: Store,
    catalog: Catalog,
    *,
    model: str,
    tokens_per_day: int | None = None,
    gpu_hourly_usd: float | None = None,
    tokens_per_second: float | None = None,
    gpus: int | None = None,
    now: datetime | None = None,
) -> SelfhostResult:
    """Compare the API bill for a model's volume with rented GPUs serving an open model."""
    entry = catalog.get(model)
    current_time = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    today = current_time.date()
    hourly = _dec(gpu_hourly_usd, "gpu_hourly_usd") if gpu_hourly_usd is not None else DEFAULT_GPU_HOURLY_USD
    tps = _dec(tokens_per_second, "tokens_per_second") if tokens_per_second is not None else DEFAULT_TOKENS_PER_SECOND
    if gpus is not None and (isinstance(gpus, bool) or gpus < 1):
        raise InvalidArgument("gpus", f"must be a whole number ≥ 1, got {gpus!r}")
    n_gpus = gpus if gpus is not None else DEFAULT_GPUS
    if tokens_per_day is not None and (isinstance(tokens_per_day, bool) or tokens_per_day < 1):
        raise InvalidArgument("tokens_per_day", f"must be a whole number ≥ 1, got {tokens_per_day!r}")

    period = make_period(current_time - timedelta(days=HISTORY_DAYS), current_time)
    f = FactFilter(start=period.start, end=period.end, model=entry.model)
    with store.reading() as conn:
        ext = savings_queries.extent(conn, f)
        slices = [s for s in savings_queries.usage_slices(conn, f) if s.model_id == entry.model]
        uses = coverage.source_use(conn, f)

    # The org's mix, priced at today's prices (tier and context band as used).
    hist_cost = Decimal(0)
    hist_input = hist_cached = hist_output = hist_requests = 0
    for s in slices:
        hist_cost += price_sum(entry, usage_of(s), day=today, tier=parse_tier(s.tier), long_context=s.long_context)
        hist_input += s.input_tokens
        hist_cached += s.cached_input_tokens
        hist_output += s.output_tokens
        hist_requests += s.requests
    hist_tokens = hist_input + hist_output
    observed = observed_days(period, ext.first, current_time) if hist_tokens else None
    assumptions: list[Assumption] = []
    caveats: list[str] = []

    if hist_tokens:
        per_token = hist_cost / hist_tokens
        input_share = Decimal(hist_input) / hist_tokens
        cached_share = Decimal(hist_cached) / hist_input if hist_input else Decimal(0)
        assumptions.append(
            Assumption(
                name="token_mix",
                value=f"{pct(input_share, Decimal(1))} % input ({pct(cached_share, Decimal(1))} % of it cache reads)",
                unit="share of tokens",
                source="store",
                why=f"your {hist_requests} requests on {entry.model} in the last {HISTORY_DAYS} days, "
                "re-priced at today's prices with their own tiers and context bands",
            )
        )
    else:
        input_share = DEFAULT_INPUT_SHARE
        cached_share = Decimal(0)
        sample = TokenUsage(input_tokens=int(MILLION * input_share), output_tokens=int(MILLION * (1 - input_share)))
        per_token = price_sum(entry, sample, day=today, tier="standard", long_context=False) / MILLION
        assumptions.append(
            Assumption(
                name="token_mix",
                value=f"{pct(input_share, Decimal(1))} % input, no cache reads, standard tier",
                unit="share of tokens",
                source="default",
                why=f"no usage of {entry.model} in the last {HISTORY_DAYS} days; a typical chat mix",
            )
        )

    if tokens_per_day is not None:
        volume = Decimal(tokens_per_day)
        volume_source: Literal["argument", "store", "none"] = "argument"
        assumptions.append(
            Assumption(
                name="tokens_per_day", value=f"{tokens_per_day}", unit="tokens/day", source="argument", why="given"
            )
        )
    elif hist_tokens:
        assert observed is not None
        volume = Decimal(hist_tokens) / observed
        volume_source = "store"
        assumptions.append(
            Assumption(
                name="tokens_per_day",
                value=f"{float(volume):.1f}",
                unit="tokens/day",
                source="store",
                why=f"{hist_tokens} tokens over the {float(observed):g} days with data in the last {HISTORY_DAYS}",
            )
        )
    else:
        volume = Decimal(0)
        volume_source = "none"
        caveats.append(
            f"No usage of {entry.model} in the last {HISTORY_DAYS} days: pass tokens_per_day to compare a volume; "
            "the break-even volume below does not depend on it."
        )

    ratio = (
        Decimal(str(APPROX_RATIOS[entry.provider]["prose"].expected)) if entry.provider in APPROX_RATIOS else Decimal(1)
    )
    assumptions += [
        Assumption(
            name="gpu_hourly_usd",
            value=f"{hourly}",
            unit="USD per GPU-hour",
            source="argument" if gpu_hourly_usd is not None else "default",
            why="given"
            if gpu_hourly_usd is not None
            else f"on-demand {DEFAULT_GPU} at specialised GPU clouds; hyperscalers charge more, reservations less",
        ),
        Assumption(
            name="gpus",
            value=f"{n_gpus}",
            unit="GPUs per deployment",
            source="argument" if gpus is not None else "default",
            why="given" if gpus is not None else f"{OPEN_MODEL} fits on 2 × {DEFAULT_GPU} with room for the KV cache",
        ),
        Assumption(
            name="tokens_per_second",
            value=f"{tps}",
            unit="input + output tokens per second per deployment, at full load",
            source="argument" if tokens_per_second is not None else "default",
            why="given"
            if tokens_per_second is not None
            else f"a rough planning figure for {OPEN_MODEL}; prompt tokens are processed far faster than generated "
            "ones, so input-heavy traffic does better and output-heavy traffic worse; measure your own",
        ),
        Assumption(
            name="api_tokens_per_open_model_token",
            value=f"{ratio}",
            unit="ratio",
            source="catalog",
            why=f"{entry.provider}'s tokenizer against an o200k-like open-model tokenizer on English prose "
            "(the token-count approximation table); the same text is fewer open-model tokens when this is above 1",
        ),
        Assumption(
            name="hours_per_day",
            value="24",
            unit="hours",
            source="default",
            why="GPUs rented around the clock: serving needs them up whether or not requests arrive",
        ),
    ]

    api_day = per_token * volume
    open_volume = volume / ratio
    capacity = tps * SECONDS_PER_DAY
    deployment_day = hourly * n_gpus * 24
    deployments = max(1, int((open_volume / capacity).to_integral_value(rounding=ROUND_CEILING)))
    self_day = deployment_day * deployments
    utilisation = pct(open_volume, capacity * deployments) if volume else None
    full_load_per_mtok = deployment_day / (capacity * ratio) * MILLION

    if per_token > 0:
        break_even = deployment_day / per_token
        needed = break_even / ratio / capacity
        break_even_value: float | None = float(break_even) if needed <= 1 else None
        needed_pct = pct(needed, Decimal(1)) if needed <= 1 else None
    else:
        break_even_value, needed_pct = None, None
        caveats.append(f"{entry.model} costs nothing on the API at today's prices; self-hosting cannot be cheaper.")

    difference = (api_day - self_day) * MONTH_DAYS
    cheaper: Literal["api", "self_hosted", "same"] = (
        "self_hosted" if difference > 0 else "api" if difference < 0 else "same"
    )
    api_per_mtok = per_token * MILLION
    if break_even_value is None and per_token > 0:
        verdict = (
            f"Self-hosting never matches the API here: even fully loaded, {n_gpus} GPU(s) at ${hourly}/h cost "
            f"${_short(full_load_per_mtok)} per million tokens against ${_short(api_per_mtok)} on {entry.model}."
        )
    elif break_even_value is None:
        verdict = f"{entry.model} is free on the API; self-hosting cannot save money."
    else:
        at_volume = (
            f" At your {float(volume):,.0f} tokens/day the API costs ${_short(api_day * MONTH_DAYS)} a month and "
            f"self-hosting ${_short(self_day * MONTH_DAYS)}, so "
            f"{'the API is' if cheaper == 'api' else 'self-hosting is' if cheaper == 'self_hosted' else 'both are'} "
            "cheaper."
            if volume
            else ""
        )
        verdict = (
            f"Self-hosting breaks even at {break_even_value:,.0f} tokens/day on {entry.model} "
            f"({needed_pct} % utilisation of one deployment).{at_volume}"
        )
    caveats += [
        "Ignores engineering and on-call time, monitoring, redundancy and spare capacity for peaks: real "
        "self-hosting needs headroom, so plan for well under 100 % utilisation.",
        f"Ignores quality differences: {OPEN_MODEL.split(' (')[0]} is not {entry.model}; compare on your own tasks.",
        "Self-hosted figures ignore prompt caching (which also speeds up prefill) and volume discounts on the API.",
    ]
    return SelfhostResult(
        model=entry.model,
        provider=entry.provider,
        volume_source=volume_source,
        history_period=period,
        history_days_observed=round(float(observed), 4) if observed is not None else None,
        history_requests=hist_requests,
        history_tokens=hist_tokens,
        api=ApiSide(
            tokens_per_day=round(float(volume), 4),
            input_share_pct=pct(input_share, Decimal(1)),
            cached_share_of_input_pct=pct(cached_share, Decimal(1)),
            output_share_pct=pct(1 - input_share, Decimal(1)),
            blended_usd_per_mtok=api_per_mtok,
            usd_per_day=api_day,
            usd_per_month=api_day * MONTH_DAYS,
        ),
        self_hosted=SelfHostSide(
            gpu=DEFAULT_GPU if gpu_hourly_usd is None else "as priced by gpu_hourly_usd",
            gpus_per_deployment=n_gpus,
            gpu_hourly_usd=hourly,
            tokens_per_second=float(tps),
            capacity_tokens_per_day=float(capacity),
            open_model_tokens_per_day=round(float(open_volume), 4),
            deployments_needed=deployments,
            utilisation_pct=utilisation,
            usd_per_day=self_day,
            usd_per_month=self_day * MONTH_DAYS,
            usd_per_mtok_at_full_load=full_load_per_mtok,
        ),
        break_even_tokens_per_day=break_even_value,
        break_even_utilisation_pct=needed_pct,
        cheaper_at_this_volume=cheaper,
        monthly_difference_usd=difference,
        verdict=verdict,
        assumptions=assumptions,
        caveats=caveats,
        data_sources=data_sources(uses),
    )


def _short(amount: Decimal) -> str:
    """Dollars for a sentence: cents from a dollar up, four decimals below (halves rounded up)."""
    places = Decimal("0.01") if abs(amount) >= 1 else Decimal("0.0001")
    with localcontext() as context:  # enough digits for absurd inputs (1e-300 tokens/s) not to overflow
        context.prec = max(context.prec, amount.adjusted() + 6)
        return f"{amount.quantize(places, rounding=ROUND_HALF_UP):,}"
