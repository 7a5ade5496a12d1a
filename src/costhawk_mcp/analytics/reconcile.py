"""Reconciliation: what synced usage costs at catalog prices next to what the provider billed.

For each provider and UTC day (and, below that, each OpenAI project or Anthropic workspace), the
computed cost, the reported cost, their difference (reported − computed) and its share of the
reported cost, and the likely causes where one can be named:

* a model the catalog cannot price (its usage has no computed cost at all);
* a tier the catalog lacks for a model (that usage was priced at standard rates);
* Anthropic Priority Tier usage, which the cost report leaves out (billed separately);
* non-token charges in the cost report (web search, code execution, images, audio, storage);
* OpenAI audio or image tokens, priced here at the model's text rates;
* usage not final yet (today and yesterday still change), or one side not synced for the day.

Quantifiable causes (non-token charges, Anthropic priority usage) make up `explained_usd`; the rest
of the difference is `unexplained_usd`. Whole UTC days are compared, because cost reports are daily.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from pydantic import BaseModel, Field

from costhawk_mcp.analytics.window import Period, make_period, resolve_window
from costhawk_mcp.errors import InvalidArgument
from costhawk_mcp.money import USD, pct
from costhawk_mcp.pricing.catalog import SERVICE_TIERS, Catalog
from costhawk_mcp.store import reconcile_queries as q
from costhawk_mcp.store.store import Store

TOLERANCE_USD = Decimal("0.01")
PROVIDERS = ("openai", "anthropic")
GROUP_KIND = {"openai": "project", "anthropic": "workspace"}


class Comparison(BaseModel):
    """Computed against reported cost for one slice (a group, a day or a whole provider)."""

    computed_usd: USD = Field(description="synced usage priced with the catalog")
    reported_usd: USD = Field(description="what the provider's cost report says")
    difference_usd: USD = Field(description="reported − computed")
    difference_pct: float | None = Field(description="difference as % of reported (null when nothing was reported)")
    explained_usd: USD = Field(description="part of the difference the named causes account for")
    unexplained_usd: USD
    matches: bool = Field(description="the difference is within the tolerance")
    causes: list[str] = Field(description="likely causes of the difference, most costly first")


class ReconcileGroup(Comparison):
    """One project (OpenAI) or workspace (Anthropic) on one day."""

    group_id: str | None = Field(description="project or workspace id; null: no project / the default workspace")
    group_name: str | None


class ReconcileDay(Comparison):
    """One provider on one UTC day."""

    provider: str
    day: date
    final: bool = Field(description="false for today and yesterday: usage and costs still change")
    groups: list[ReconcileGroup] = Field(description="per project (OpenAI) or workspace (Anthropic)")


class ProviderReconciliation(Comparison):
    """One provider over the whole window."""

    provider: str
    group_kind: str = Field(description="what the day's `groups` are for this provider: project or workspace")
    days_compared: int
    days_matching: int


class ReconcileResult(BaseModel):
    """Computed against reported cost, per provider, day and project/workspace."""

    period: Period
    tolerance_usd: USD = Field(description="a difference up to this much counts as a match")
    providers: list[ProviderReconciliation]
    days: list[ReconcileDay]
    notes: list[str]


@dataclass
class _Sums:
    """Everything reconciliation adds up for a slice (a group, a day or a provider)."""

    computed: Decimal = Decimal(0)
    reported: Decimal = Decimal(0)
    non_token: dict[str, Decimal] = field(default_factory=dict)
    priority: Decimal = Decimal(0)
    modality: Decimal = Decimal(0)
    unpriced_tokens: int = 0
    unknown_models: set[str] = field(default_factory=set)
    unrated_models: set[str] = field(default_factory=set)
    tier_fallback: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    usage_days: set[date] = field(default_factory=set)
    cost_days: set[date] = field(default_factory=set)

    def add(self, other: _Sums) -> None:
        self.computed += other.computed
        self.reported += other.reported
        for kind, amount in other.non_token.items():
            self.non_token[kind] = self.non_token.get(kind, Decimal(0)) + amount
        self.priority += other.priority
        self.modality += other.modality
        self.unpriced_tokens += other.unpriced_tokens
        self.unknown_models |= other.unknown_models
        self.unrated_models |= other.unrated_models
        for key, amount in other.tier_fallback.items():
            self.tier_fallback[key] = self.tier_fallback.get(key, Decimal(0)) + amount
        self.usage_days |= other.usage_days
        self.cost_days |= other.cost_days

    @property
    def difference(self) -> Decimal:
        return self.reported - self.computed

    @property
    def explained(self) -> Decimal:
        return sum(self.non_token.values(), Decimal(0)) - self.priority


def _money(value: Decimal) -> str:
    return f"${value:,.2f}" if abs(value) >= Decimal("0.01") or value == 0 else f"${value:.6f}"


def _causes(s: _Sums) -> list[tuple[Decimal, str]]:
    """(weight, text) of every cause visible in a slice; weight orders them, most costly first."""
    causes: list[tuple[Decimal, str]] = []
    if s.cost_days and not s.usage_days:
        causes.append(
            (
                s.reported,
                "no synced usage matches these costs (not synced yet: run sync_usage, or attributed elsewhere)",
            )
        )
    if s.usage_days and not s.cost_days:
        causes.append(
            (s.computed, "no cost-report lines match this usage (not synced yet: run sync_usage, or billed elsewhere)")
        )
    if s.unknown_models:
        causes.append(
            (
                s.reported,
                f"{s.unpriced_tokens:,} tokens of models the catalog cannot price ({', '.join(sorted(s.unknown_models))}) "
                "have no computed cost; the provider billed them",
            )
        )
    if s.unrated_models:
        causes.append(
            (
                s.reported,
                f"usage of {', '.join(sorted(s.unrated_models))} in a tier or context band the catalog has no price for "
                "has no computed cost",
            )
        )
    for (model, tier), amount in sorted(s.tier_fallback.items()):
        causes.append(
            (
                amount,
                f"{_money(amount)} of {model} usage in the {tier} tier was priced at standard rates: the catalog has no {tier} price for it",
            )
        )
    if s.priority:
        causes.append(
            (
                s.priority,
                f"{_money(s.priority)} of Anthropic Priority Tier usage is billed separately and is absent from the cost report",
            )
        )
    for kind, amount in sorted(s.non_token.items(), key=lambda item: -item[1]):
        causes.append((amount, f"{_money(amount)} of non-token charges in the cost report ({kind})"))
    if s.modality:
        causes.append(
            (
                s.modality,
                f"usage with audio or image tokens ({_money(s.modality)} computed) is priced at text rates here",
            )
        )
    return causes


def _ordered(causes: Iterable[tuple[Decimal, str]]) -> list[str]:
    seen: dict[str, Decimal] = {}
    for weight, text in causes:
        seen[text] = max(seen.get(text, Decimal(0)), abs(weight))
    return [text for text, _ in sorted(seen.items(), key=lambda item: (-item[1], item[0]))]


def reconcile(
    store: Store,
    catalog: Catalog,
    *,
    start: str | date | datetime | None = None,
    end: str | date | datetime | None = None,
    days: float | None = None,
    provider: str | None = None,
    now: datetime | None = None,
    tolerance_usd: Decimal = TOLERANCE_USD,
) -> ReconcileResult:
    """Compare computed and reported cost per provider and UTC day (and project/workspace)."""
    if provider is not None and provider not in PROVIDERS:
        raise InvalidArgument("provider", f"expected openai or anthropic (or nothing for both), got {provider!r}")
    current = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    window = resolve_window(start, end, days, now=current)
    first = window.start.replace(hour=0, minute=0, second=0, microsecond=0)
    last = window.end.replace(hour=0, minute=0, second=0, microsecond=0)
    stop = last if last == window.end else last + timedelta(days=1)
    period = make_period(first, stop)
    final_before = current.date() - timedelta(days=1)

    slices: dict[tuple[str, date, str | None], _Sums] = {}
    if store.db.exists():
        with store.reading() as conn:
            usage = q.usage_side(conn, first, stop, provider)
            tiers = q.tier_use(conn, first, stop, provider)
            costs = q.cost_side(conn, first, stop, provider)
            names = q.group_names(conn)
    else:
        usage, tiers, costs, names = [], [], [], {}
    for u in usage:
        s = slices.setdefault((u.provider, u.day, u.group), _Sums())
        s.computed += u.computed_usd
        s.unpriced_tokens += u.unpriced_tokens
        s.unknown_models.update(u.unknown_models)
        s.unrated_models.update(u.unrated_models)
        s.priority += u.priority_usd
        s.modality += u.modality_usd
        s.usage_days.add(u.day)
    for t in tiers:
        entry = catalog.find(t.model_id)
        if entry is None or t.tier not in SERVICE_TIERS or entry.period_at(t.day).tier(t.tier):
            continue
        if t.provider == "anthropic" and t.tier == "priority":
            continue  # named by its own, quantified cause
        s = slices.setdefault((t.provider, t.day, t.group), _Sums())
        s.tier_fallback[(entry.model, t.tier)] = s.tier_fallback.get((entry.model, t.tier), Decimal(0)) + t.cost_usd
    for c in costs:
        s = slices.setdefault((c.provider, c.day, c.group), _Sums())
        s.reported += c.reported_usd
        for kind, amount in c.non_token.items():
            s.non_token[kind] = s.non_token.get(kind, Decimal(0)) + amount
        s.cost_days.add(c.day)

    by_day: dict[tuple[str, date], list[tuple[str | None, _Sums]]] = {}
    for (prov, day, group), s in sorted(slices.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or "")):
        by_day.setdefault((prov, day), []).append((group, s))

    result_days: list[ReconcileDay] = []
    totals: dict[str, _Sums] = {}
    day_counts: dict[str, list[int]] = {}
    for (prov, day), groups in sorted(by_day.items()):
        day_sums = _Sums()
        group_models: list[ReconcileGroup] = []
        for group, s in groups:
            day_sums.add(s)
            name = names.get((prov, group)) if group is not None else _default_group(prov)
            group_models.append(
                ReconcileGroup(group_id=group, group_name=name, **_compare(s, tolerance_usd).model_dump())
            )
        final = day < final_before
        figures = _compare(day_sums, tolerance_usd)
        if not final:
            figures.causes.insert(0, f"{day} is not final yet: today's and yesterday's usage and costs still change")
        result_days.append(
            ReconcileDay(provider=prov, day=day, final=final, groups=group_models, **figures.model_dump())
        )
        totals.setdefault(prov, _Sums()).add(day_sums)
        counts = day_counts.setdefault(prov, [0, 0])
        counts[0] += 1
        counts[1] += int(figures.matches)

    providers = []
    for prov in PROVIDERS:
        if prov not in totals:
            continue
        figures = _compare(totals[prov], tolerance_usd)
        providers.append(
            ProviderReconciliation(
                provider=prov,
                group_kind=GROUP_KIND[prov],
                days_compared=day_counts[prov][0],
                days_matching=day_counts[prov][1],
                **figures.model_dump(),
            )
        )
    notes = [
        "difference = reported − computed; a positive difference means the provider billed more than synced usage "
        "at catalog prices explains",
    ]
    notes.extend(
        f"no synced {prov} usage or costs in this window: run sync_usage first"
        for prov in ((provider,) if provider else PROVIDERS)
        if prov not in totals
    )
    return ReconcileResult(
        period=period, tolerance_usd=tolerance_usd, providers=providers, days=result_days, notes=notes
    )


def _default_group(provider: str) -> str:
    return "default workspace" if provider == "anthropic" else "no project"


def _compare(s: _Sums, tolerance: Decimal) -> Comparison:
    difference = s.difference
    matches = abs(difference) <= tolerance
    # Within tolerance the causes are moot, except usage that has no price at all.
    causes = [] if matches and not (s.unknown_models or s.unrated_models) else _ordered(_causes(s))
    return Comparison(
        computed_usd=s.computed,
        reported_usd=s.reported,
        difference_usd=difference,
        difference_pct=pct(difference, s.reported),
        explained_usd=s.explained,
        unexplained_usd=difference - s.explained,
        matches=matches,
        causes=causes,
    )
