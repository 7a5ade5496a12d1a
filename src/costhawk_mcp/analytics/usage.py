"""Where the money goes and what a change would save: top API keys, cost per query, model swaps.

Plain functions over a `Store` and a `Catalog`. The store aggregates (store/usage_queries.py); this
module only shapes results and, for a model swap, re-prices the aggregated traffic with the one cost
function (`pricing.cost.cost`, given each group's long-context band).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, Field

from costhawk_mcp.analytics.common import DataSource, data_sources
from costhawk_mcp.analytics.window import Period, resolve_window
from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.money import USD, pct
from costhawk_mcp.pricing.catalog import PROVIDER_ALIASES, Catalog, ModelEntry, Tiers
from costhawk_mcp.pricing.cost import TokenUsage, cost, parse_tier
from costhawk_mcp.store import usage_queries
from costhawk_mcp.store.facts import FactFilter
from costhawk_mcp.store.store import Store
from costhawk_mcp.tokens import APPROX_RATIOS, Ratio

MAX_LIMIT = 100
FEATURE_LIMIT = 50
CALL_LIMIT = 1000
MONTH = Decimal(30)


def _provider(value: str | None) -> str | None:
    """A provider filter in the store's spelling: known aliases mapped, others lower-cased."""
    if value is None:
        return None
    key = value.strip().lower()
    if not key:
        raise InvalidArgument("provider", "must not be empty; leave it out for every provider")
    return PROVIDER_ALIASES.get(key, key)


def _text(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise InvalidArgument(field, "must not be empty; leave it out for no filter")
    return value.strip()


def _limit(value: int, field: str = "limit") -> int:
    if isinstance(value, bool) or not 1 <= value <= MAX_LIMIT:
        raise InvalidArgument(field, f"must be between 1 and {MAX_LIMIT}, got {value!r}")
    return value


# ------------------------------------------------------------------------------------ top keys
class KeyCost(BaseModel):
    """One API key's spend in the window and against the window of equal length before it."""

    api_key_id: str
    key_name: str | None = Field(description="the key's name, from request logs or the provider's key list")
    provider: str
    project: str | None = Field(description="the project with most of this key's spend")
    cost_usd: USD | None = Field(description="priced spend; null when none of the key's requests could be priced")
    share_pct: float | None = Field(description="percent of total_cost_usd")
    requests: int
    unpriced_requests: int = Field(description="requests of this key whose model has no price (not in cost_usd)")
    input_tokens: int = Field(description="all prompt tokens, cache reads and writes included")
    output_tokens: int
    top_model: str | None = Field(description="the model with most of this key's spend (catalog id when priced)")
    previous_period_cost_usd: USD | None = Field(description="the key's priced spend in the previous period")
    change_pct: float | None = Field(description="change against the previous period; null when that was 0 or none")


class TopKeysResult(BaseModel):
    """The API keys that cost the most in a window."""

    period: Period
    provider: str | None = Field(description="provider filter applied (null: all)")
    project: str | None = Field(description="project filter applied (null: all)")
    total_cost_usd: USD = Field(description="all priced spend in the window, with or without a key id")
    previous_period_total_cost_usd: USD = Field(description="the same for the previous period of equal length")
    total_requests: int
    key_count: int = Field(description="keys with usage in the window (keys lists the top `limit`)")
    keys: list[KeyCost] = Field(description="most expensive first")
    unattributed_cost_usd: USD = Field(
        description="priced spend with no API key id (not a row in keys; part of total_cost_usd)"
    )
    unattributed_requests: int
    unattributed_share_pct: float | None
    unpriced_requests: int = Field(description="requests the catalog cannot price: in no cost figure")
    unpriced_models: list[str]
    data_sources: list[DataSource]


def top_expensive_keys(
    store: Store,
    *,
    start: str | date | datetime | None = None,
    end: str | date | datetime | None = None,
    days: float | None = None,
    limit: int = 10,
    provider: str | None = None,
    project: str | None = None,
    now: datetime | None = None,
) -> TopKeysResult:
    """The keys with the most spend in the window, their shares, and their change on the period before."""
    period = resolve_window(start, end, days, now=now)
    limit = _limit(limit)
    provider = _provider(provider)
    project = _text(project, "project")
    previous = period.previous()
    with store.reading() as conn:
        report = usage_queries.key_spend(
            conn,
            FactFilter(start=previous.start, end=period.end, provider=provider, project=project),
            current_start=period.start,
            limit=limit,
        )
    keys = []
    for k in report.keys:
        change = None
        if k.cost is not None and k.previous_cost is not None:
            change = pct(k.cost - k.previous_cost, k.previous_cost)
        keys.append(
            KeyCost(
                api_key_id=k.api_key_id,
                key_name=k.key_name,
                provider=k.provider,
                project=k.project,
                cost_usd=k.cost,
                share_pct=pct(k.cost, report.total_cost) if k.cost is not None else None,
                requests=k.requests,
                unpriced_requests=k.unpriced_requests,
                input_tokens=k.input_tokens,
                output_tokens=k.output_tokens,
                top_model=k.top_model,
                previous_period_cost_usd=k.previous_cost,
                change_pct=change,
            )
        )
    return TopKeysResult(
        period=period,
        provider=provider,
        project=project,
        total_cost_usd=report.total_cost,
        previous_period_total_cost_usd=report.previous_total_cost,
        total_requests=report.total_requests,
        key_count=report.key_count,
        keys=keys,
        unattributed_cost_usd=report.unattributed_cost,
        unattributed_requests=report.unattributed_requests,
        unattributed_share_pct=pct(report.unattributed_cost, report.total_cost),
        unpriced_requests=report.unpriced.requests,
        unpriced_models=report.unpriced.models,
        data_sources=data_sources(report.sources),
    )


# ------------------------------------------------------------------------------ cost per query
class QueryCall(BaseModel):
    """One request of a query."""

    request_id: str
    ts: datetime = Field(description="UTC")
    provider: str
    model: str = Field(description="catalog model id (the reported name when unpriced)")
    input_tokens: int = Field(description="all prompt tokens, cache reads and writes included")
    cached_input_tokens: int
    cache_write_tokens: int = Field(description="5-minute and 1-hour cache writes")
    output_tokens: int
    tier: str = Field(description="standard, batch, priority or flex")
    cost_usd: USD | None = Field(description="null when the model has no price")
    latency_ms: float | None
    status: str | None
    feature: str | None


class FeatureQueries(BaseModel):
    """Queries of one feature (a query's feature: that of its first call naming one)."""

    feature: str | None = Field(description="null: queries whose calls name no feature")
    queries: int
    priced_queries: int = Field(description="queries the cost figures are over (no unpriced call)")
    mean_cost_usd: USD | None
    total_cost_usd: USD


class ExpensiveQuery(BaseModel):
    """One of the most expensive queries."""

    query_id: str | None = Field(description="null for a request without a query id (a query of one call)")
    request_id: str | None = Field(description="the single request, when the query has no id")
    first_call_at: datetime = Field(description="UTC")
    cost_usd: USD
    calls: int
    models: list[str]
    input_tokens: int
    output_tokens: int
    feature: str | None


class CostPerQueryResult(BaseModel):
    """What a query (one user question, agent run or job: all calls sharing a query_id) costs."""

    period: Period
    query_id: str | None = Field(description="the query drilled into (null: all queries)")
    feature: str | None = Field(description="feature filter applied")
    model: str | None = Field(description="model filter applied: queries with at least one call of it")
    queries: int = Field(description="queries whose first call is in the window")
    priced_queries: int = Field(description="queries with every call priced: every cost figure is over these")
    unpriced_queries: int = Field(description="queries with an unpriced call: counted, but in no cost figure")
    single_call_queries_without_id: int = Field(description="requests without a query id, each a query of one call")
    calls: int = Field(description="requests of the counted queries")
    calls_outside_window: int = Field(
        description="calls of counted queries made after the window's end (a query counts in full where it starts)"
    )
    total_cost_usd: USD = Field(description="cost of the priced queries")
    mean_cost_usd: USD | None
    p50_cost_usd: USD | None = Field(description="nearest-rank percentile of priced queries' cost (exact)")
    p95_cost_usd: USD | None
    p99_cost_usd: USD | None
    mean_calls_per_query: float | None = Field(description="calls / queries")
    feature_count: int = Field(description="features among the counted queries (by_feature lists the top 50)")
    by_feature: list[FeatureQueries] = Field(description="by total cost, highest first")
    most_expensive: list[ExpensiveQuery]
    query_calls: list[QueryCall] = Field(
        description="with query_id: that query's calls in time order, after the window's end too (at most 1000)"
    )
    notes: list[str]
    unpriced_requests: int = Field(description="unpriced calls of the counted queries")
    unpriced_models: list[str]
    data_sources: list[DataSource] = Field(
        description="request logs only (queries exist only there): the window's, or with query_id that query's calls"
    )


def _mean(total: Decimal, count: int) -> Decimal | None:
    return total / count if count else None


def cost_per_query(
    store: Store,
    catalog: Catalog,
    *,
    start: str | date | datetime | None = None,
    end: str | date | datetime | None = None,
    days: float | None = None,
    query_id: str | None = None,
    feature: str | None = None,
    model: str | None = None,
    limit: int = 10,
    now: datetime | None = None,
) -> CostPerQueryResult:
    """Cost per query: distribution, per feature, the most expensive ones, or one query's calls."""
    period = resolve_window(start, end, days, now=now)
    limit = _limit(limit)
    query_id = _text(query_id, "query_id")
    feature = _text(feature, "feature")
    model = _text(model, "model")
    model_key = None
    if model is not None:
        entry = catalog.find(model)
        model_key = entry.model if entry is not None else model  # unpriced models match as reported
    with store.reading() as conn:
        report = usage_queries.query_costs(
            conn,
            start=period.start,
            end=period.end,
            query_id=query_id,
            feature=feature,
            model=model_key,
            limit=limit,
            feature_limit=FEATURE_LIMIT,
            call_limit=CALL_LIMIT,
        )
    s = report.stats
    notes = [
        "A query is all calls sharing a query_id; a request without one is a query of one call. A query "
        "belongs to the window of its first call and counts all its calls (looked up to "
        f"{usage_queries.QUERY_SPAN_LIMIT.days} day beyond the window).",
    ]
    if s.unpriced_queries:
        notes.append(
            f"{s.unpriced_queries} queries have a call whose model has no price "
            f"({', '.join(report.unpriced.models)}); they are counted in queries but left out of every cost "
            "figure, since their cost is unknown."
        )
    if model_key is not None:
        notes.append(f"model filter: queries with at least one call of {model_key}, with all their calls.")
    if query_id is not None and not s.queries:
        notes.append(
            f"no query {query_id!r} starts in this window; widen it with start/end or days "
            "(a query belongs to the window of its first call)."
        )
    if query_id is not None and len(report.calls) == CALL_LIMIT and s.calls > CALL_LIMIT:
        notes.append(f"query_calls shows the first {CALL_LIMIT} of {s.calls} calls.")
    return CostPerQueryResult(
        period=period,
        query_id=query_id,
        feature=feature,
        model=model_key,
        queries=s.queries,
        priced_queries=s.priced_queries,
        unpriced_queries=s.unpriced_queries,
        single_call_queries_without_id=s.without_id,
        calls=s.calls,
        calls_outside_window=s.calls_outside_window,
        total_cost_usd=s.total_cost,
        mean_cost_usd=_mean(s.total_cost, s.priced_queries),
        p50_cost_usd=s.p50,
        p95_cost_usd=s.p95,
        p99_cost_usd=s.p99,
        mean_calls_per_query=round(s.calls / s.queries, 4) if s.queries else None,
        feature_count=report.feature_count,
        by_feature=[
            FeatureQueries(
                feature=f.feature,
                queries=f.queries,
                priced_queries=f.priced_queries,
                mean_cost_usd=_mean(f.total_cost, f.priced_queries),
                total_cost_usd=f.total_cost,
            )
            for f in report.by_feature
        ],
        most_expensive=[
            ExpensiveQuery(
                query_id=q.query_id,
                request_id=q.request_id,
                first_call_at=q.first_ts,
                cost_usd=q.cost,
                calls=q.calls,
                models=q.models,
                input_tokens=q.input_tokens,
                output_tokens=q.output_tokens,
                feature=q.feature,
            )
            for q in report.most_expensive
        ],
        query_calls=[
            QueryCall(
                request_id=c.request_id,
                ts=c.ts,
                provider=c.provider,
                model=c.model_id or c.model,
                input_tokens=c.input_tokens,
                cached_input_tokens=c.cached_input_tokens,
                cache_write_tokens=c.cache_write_tokens + c.cache_write_1h_tokens,
                output_tokens=c.output_tokens,
                tier=c.tier,
                cost_usd=c.cost,
                latency_ms=c.latency_ms,
                status=c.status,
                feature=c.feature,
            )
            for c in report.calls
        ],
        notes=notes,
        unpriced_requests=report.unpriced.requests,
        unpriced_models=report.unpriced.models,
        data_sources=data_sources(report.sources),
    )


# --------------------------------------------------------------------------------- model swap
_SAME = Ratio(1.0, 1.0, 1.0)


@dataclass(frozen=True)
class TokenRatio:
    """Target tokens per source token for the same text: expected, low and high (exact decimals)."""

    expected: usage_queries.Band
    low: usage_queries.Band
    high: usage_queries.Band
    same_tokenizer: bool
    detail: str

    @property
    def bands(self) -> tuple[usage_queries.Band, usage_queries.Band, usage_queries.Band]:
        """Expected, low, high."""
        return (self.expected, self.low, self.high)


def _prose_ratio(entry: ModelEntry) -> Ratio:
    """Tokens per o200k token: 1 for a model with a shipped encoding, else its provider's prose ratio."""
    if entry.encoding is not None:
        return _SAME
    return APPROX_RATIOS.get(entry.provider, APPROX_RATIOS["google"])["prose"]


def _describe(entry: ModelEntry) -> str:
    if entry.encoding is not None:
        return f"{entry.model}: exact {entry.encoding}"
    r = _prose_ratio(entry)
    return f"{entry.model}: ≈{r.expected:g}× o200k (band {r.low:g}–{r.high:g}, {entry.provider} prose)"


def token_ratio(source: ModelEntry, target: ModelEntry) -> TokenRatio:
    """How many target tokens the source's traffic becomes: tokens.APPROX_RATIOS (prose), target / source.

    Models of one provider without a public tokenizer are taken to share it (ratio exactly 1), as are
    models with the same shipped encoding. The band pairs the target's low with the source's high
    ratio and the other way round, so it holds both uncertainties.
    """
    one = usage_queries.Band(Decimal(1), Decimal(1))
    same = (source.provider, source.encoding) == (target.provider, target.encoding)
    if same:
        return TokenRatio(one, one, one, True, f"{source.model} and {target.model} share a tokenizer")
    s, t = _prose_ratio(source), _prose_ratio(target)
    if s == t == _SAME:  # two shipped OpenAI encodings: counted alike by convention (tokens.py)
        detail = f"{source.model} uses {source.encoding} and {target.model} {target.encoding}"
        return TokenRatio(one, one, one, False, detail)

    def band(num: float, den: float) -> usage_queries.Band:
        return usage_queries.Band(Decimal(str(num)), Decimal(str(den)))

    return TokenRatio(
        expected=band(t.expected, s.expected),
        low=band(t.low, s.high),
        high=band(t.high, s.low),
        same_tokenizer=False,
        detail=f"{_describe(source)}; {_describe(target)}",
    )


def _ratio_value(b: usage_queries.Band) -> float:
    return float(round(b.num / b.den, 4))


class SwapSavingsResult(BaseModel):
    """The same traffic re-priced on another model."""

    from_model: str = Field(description="canonical id of the model the traffic ran on")
    to_model: str = Field(description="canonical id of the model it would move to")
    period: Period
    traffic_share: float = Field(description="share of the traffic that moves (the rest stays on from_model)")
    requests: int = Field(description="requests of from_model in the window (after the filters)")
    input_tokens: int = Field(description="their prompt tokens, cache reads and writes included")
    cached_input_tokens: int
    cache_write_tokens: int = Field(description="5-minute and 1-hour cache writes")
    output_tokens: int
    token_ratio: float = Field(description="to_model tokens per from_model token for the same text (expected)")
    token_ratio_low: float
    token_ratio_high: float
    token_count_method: str = Field(description="'same_tokenizer' (exact) or 'approximate' (a stated ratio)")
    projected_input_tokens: int = Field(description="input_tokens × token_ratio, for the moved share")
    projected_output_tokens: int = Field(description="output_tokens × token_ratio, for the moved share")
    current_cost_usd: USD = Field(description="what the traffic cost on from_model")
    projected_cost_usd: USD = Field(description="what it would cost with traffic_share moved to to_model")
    projected_cost_low_usd: USD = Field(description="projected cost at the low end of the token ratio band")
    projected_cost_high_usd: USD = Field(description="projected cost at the high end of the token ratio band")
    savings_usd: USD = Field(description="current − projected (negative: the swap costs more)")
    savings_low_usd: USD = Field(description="savings at the high end of the ratio band (the least saved)")
    savings_high_usd: USD = Field(description="savings at the low end of the ratio band (the most saved)")
    savings_pct: float | None = Field(description="savings as a percent of current_cost_usd")
    projected_monthly_savings_usd: USD = Field(description="savings_usd × 30 days / the window's length in days")
    long_context_requests: int = Field(
        description="request-log requests above to_model's long-context threshold (input × ratio), priced at its "
        "long-context rates"
    )
    requests_over_context_window: int = Field(
        description="request-log requests whose (input + output) × ratio exceed to_model's context window"
    )
    caveats: list[str]
    unpriced_requests: int = Field(description="from_model requests without a stored cost: in no figure")
    unpriced_models: list[str]
    data_sources: list[DataSource]


def _share(value: float) -> Decimal:
    if isinstance(value, bool) or not 0 < value <= 1:
        raise InvalidArgument("traffic_share", f"must be more than 0 and at most 1, got {value!r}")
    return Decimal(str(value))


def _count_range(values: tuple[int, int, int]) -> str:
    expected, low, high = values
    return f"{expected}" if low == high == expected else f"{expected} (band {low}–{high})"


def _window_days(period: Period) -> Decimal:
    return Decimal((period.end - period.start) // timedelta(microseconds=1)) / Decimal(86_400_000_000)


def model_swap_savings(
    store: Store,
    catalog: Catalog,
    *,
    from_model: str,
    to_model: str,
    start: str | date | datetime | None = None,
    end: str | date | datetime | None = None,
    days: float | None = None,
    traffic_share: float = 1.0,
    provider: str | None = None,
    project: str | None = None,
    api_key_id: str | None = None,
    now: datetime | None = None,
) -> SwapSavingsResult:
    """Re-price a window's traffic of `from_model` at `to_model`'s prices, with the token ratio applied."""
    source = catalog.get(from_model, field="from_model")
    target = catalog.get(to_model, field="to_model")
    if source.model == target.model:
        raise InvalidArgument("to_model", f"{to_model!r} is the same model as from_model ({source.model})")
    share = _share(traffic_share)
    period = resolve_window(start, end, days, now=now)
    ratio = token_ratio(source, target)
    target_periods = [p for p in target.periods if _overlaps(p.effective_from, p.effective_to, period)]
    thresholds = sorted({p.long_context.threshold_tokens for p in target_periods if p.long_context is not None})
    threshold = target.period_at(period.end - timedelta(microseconds=1)).long_context
    f = FactFilter(
        start=period.start,
        end=period.end,
        provider=_provider(provider),
        project=_text(project, "project"),
        api_key_id=_text(api_key_id, "api_key_id"),
        model=source.model,
    )
    with store.reading() as conn:
        traffic = usage_queries.swap_traffic(
            conn,
            f,
            bands=ratio.bands,
            threshold=threshold.threshold_tokens if threshold is not None else None,
            context_window=target.context_window,
        )

    current = Decimal(0)
    full = [Decimal(0), Decimal(0), Decimal(0)]  # everything moved, at the expected, low and high ratio
    requests = input_tokens = cached = writes = output = bucket_requests = 0
    long_context = [0, 0, 0]
    tier_fallbacks: dict[str, int] = {}  # tier -> requests priced at the target's standard rates
    cache_as_input = writes_as_input = 0
    for g in traffic.groups:
        usage = TokenUsage(
            input_tokens=g.input_tokens,
            cached_input_tokens=g.cached_input_tokens,
            cache_write_tokens=g.cache_write_tokens,
            cache_write_1h_tokens=g.cache_write_1h_tokens,
            output_tokens=g.output_tokens,
        )
        target_period = target.period_at(g.day)
        tier = parse_tier(g.tier)
        for i, band in enumerate(ratio.bands):
            priced = cost(target, usage, at=g.day, tier=tier, long_context=g.long_context[i])
            full[i] += priced.total_usd * band.num / band.den
            if priced.rates.long_context:
                long_context[i] += g.requests
        tiers: Tiers = target_period
        if g.long_context[0] and target_period.long_context is not None:
            tiers = target_period.long_context
        if tier != "standard" and tiers.tier(tier) is None:
            tier_fallbacks[tier] = tier_fallbacks.get(tier, 0) + g.requests
        prices = tiers.tier(tier) or tiers.standard
        if g.cached_input_tokens and prices.cached_input is None and tiers.standard.cached_input is None:
            cache_as_input += g.cached_input_tokens
        if (
            g.cache_write_tokens + g.cache_write_1h_tokens
            and prices.cache_write is None
            and tiers.standard.cache_write is None
        ):
            writes_as_input += g.cache_write_tokens + g.cache_write_1h_tokens
        current += g.cost
        requests += g.requests
        input_tokens += g.input_tokens
        cached += g.cached_input_tokens
        writes += g.cache_write_tokens + g.cache_write_1h_tokens
        output += g.output_tokens
        bucket_requests += g.requests - g.request_log_requests

    kept = current * (1 - share)
    projected = [kept + share * value for value in full]
    savings = current - projected[0]
    expected_ratio = ratio.expected.num / ratio.expected.den
    caveats = _swap_caveats(
        source=source,
        target=target,
        period=period,
        ratio=ratio,
        share=share,
        requests=requests,
        projected=projected,
        long_context=(long_context[0], long_context[1], long_context[2]),
        over_window=traffic.over_window,
        thresholds=thresholds,
        tier_fallbacks=tier_fallbacks,
        cache_as_input=cache_as_input,
        writes_as_input=writes_as_input,
        bucket_requests=bucket_requests,
    )
    return SwapSavingsResult(
        from_model=source.model,
        to_model=target.model,
        period=period,
        traffic_share=float(share),
        requests=requests,
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        cache_write_tokens=writes,
        output_tokens=output,
        token_ratio=_ratio_value(ratio.expected),
        token_ratio_low=_ratio_value(ratio.low),
        token_ratio_high=_ratio_value(ratio.high),
        token_count_method="same_tokenizer" if ratio.same_tokenizer else "approximate",
        projected_input_tokens=int((input_tokens * share * expected_ratio).to_integral_value()),
        projected_output_tokens=int((output * share * expected_ratio).to_integral_value()),
        current_cost_usd=current,
        projected_cost_usd=projected[0],
        projected_cost_low_usd=projected[1],
        projected_cost_high_usd=projected[2],
        savings_usd=savings,
        savings_low_usd=current - projected[2],
        savings_high_usd=current - projected[1],
        savings_pct=pct(savings, current),
        projected_monthly_savings_usd=savings * MONTH / _window_days(period),
        long_context_requests=long_context[0],
        requests_over_context_window=traffic.over_window[0],
        caveats=caveats,
        unpriced_requests=traffic.unpriced.requests,
        unpriced_models=traffic.unpriced.models,
        data_sources=data_sources(traffic.sources),
    )


def _overlaps(start: date | None, end: date | None, period: Period) -> bool:
    return (start is None or start < period.end.date() + timedelta(days=1)) and (
        end is None or end > period.start.date()
    )


def _swap_caveats(
    *,
    source: ModelEntry,
    target: ModelEntry,
    period: Period,
    ratio: TokenRatio,
    share: Decimal,
    requests: int,
    projected: list[Decimal],
    long_context: tuple[int, int, int],
    over_window: tuple[int, int, int],
    thresholds: list[int],
    tier_fallbacks: dict[str, int],
    cache_as_input: int,
    writes_as_input: int,
    bucket_requests: int,
) -> list[str]:
    caveats: list[str] = []
    if not requests:
        caveats.append(f"no priced traffic of {source.model} in this window (after the filters): nothing to move.")
        return caveats
    if not ratio.same_tokenizer and ratio.expected == ratio.low == ratio.high:
        caveats.append(f"{ratio.detail}: token counts are taken as equal (ratio 1).")
    elif not ratio.same_tokenizer:
        caveats.append(
            f"different tokenizers ({ratio.detail}): the same text is about {_ratio_value(ratio.expected):g}× as "
            f"many {target.model} tokens (band {_ratio_value(ratio.low):g}–{_ratio_value(ratio.high):g}), applied to "
            f"input and output; projected cost {_usd(projected[0])} (range {_usd(projected[1])}–{_usd(projected[2])})."
        )
    for tier, count in sorted(tier_fallbacks.items()):
        caveats.append(f"{count} {tier} requests move at {target.model}'s standard rates: it has no {tier} price.")
    if cache_as_input:
        caveats.append(
            f"{cache_as_input} cached input tokens are charged at {target.model}'s input rate: it has no cache pricing."
        )
    if writes_as_input:
        caveats.append(
            f"{writes_as_input} cache-write tokens are charged at {target.model}'s input rate: it has no cache-write "
            "price."
        )
    if any(long_context) and thresholds:
        caveats.append(
            f"{_count_range(long_context)} requests exceed {target.model}'s long-context threshold "
            f"({thresholds[-1]} input tokens × ratio) and are priced at its long-context rates for the whole request."
        )
    if len(thresholds) > 1:
        caveats.append(
            f"{target.model}'s long-context threshold changed within the window ({', '.join(map(str, thresholds))}); "
            f"requests were tested against the latest ({thresholds[-1]})."
        )
    if target.context_window is None:
        caveats.append(f"{target.model}'s context window is unknown: requests were not checked against it.")
    elif any(over_window):
        caveats.append(
            f"{_count_range(over_window)} requests would not fit {target.model}'s {target.context_window}-token context "
            "window ((input + output) × ratio); they are priced as if they ran."
        )
    if bucket_requests:
        caveats.append(
            f"{bucket_requests} requests come from provider usage buckets, which hold only token sums: they are priced "
            f"at {target.model}'s standard-context rates and not checked against its context window."
        )
    if share != 1:
        caveats.append(
            f"traffic_share {share}: that share of the traffic (of average size) moves; the rest stays on {source.model}."
        )
    caveats.append(
        f"projected_monthly_savings_usd scales the window's savings to 30 days from its length "
        f"({_window_days(period).normalize():f} days), not from the days that had traffic."
    )
    changes = sorted(
        {
            p.effective_from
            for e in (source, target)
            for p in e.periods
            if p.effective_from is not None and p.effective_from > period.start.date()
        }
    )
    last_day = (period.end - timedelta(microseconds=1)).date()
    within = [d.isoformat() for d in changes if d <= last_day]
    after = [d.isoformat() for d in changes if d > last_day]
    if within:
        caveats.append(
            f"prices changed on {', '.join(within)}: each day's traffic is priced at the prices in force that day."
        )
    if after:
        caveats.append(
            f"prices changed on {', '.join(after)}, after the window: the monthly projection uses the window's "
            "prices, not today's."
        )
    if target.mode != source.mode:
        caveats.append(f"{source.model} is a {source.mode} model and {target.model} a {target.mode} model.")
    if (
        target.deprecation_date is not None
        and target.deprecation_date <= (period.end - timedelta(microseconds=1)).date()
    ):
        caveats.append(
            f"{target.model} was deprecated on {target.deprecation_date}"
            + (f"; successor: {target.successor}." if target.successor else ".")
        )
    return caveats


def _usd(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.000001')).normalize():f}"
