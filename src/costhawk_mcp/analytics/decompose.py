"""Why spend changed: an exact split of a cost change into volume, model mix, request size, cache and price.

Spend of a series is modelled as

    cost = U × Σ_m s_m × ( I_m × Σ_k q_mk × r_mk  +  O_m × r_mo )

with U the volume (requests, or tokens when a source does not count requests), s_m model m's share
of it, I_m / O_m input and output tokens per unit (request size), q_mk the share of model m's prompt
tokens in class k (uncached, cache read, 5-minute write, 1-hour write: the cache factor) and r_mk the
effective price per token of each class (catalog price changes, and the tier or long-context mix).

The change between a baseline and an observation is split with the **Shapley decomposition** over
these five factors: each factor's part is its marginal effect averaged over all 5! orders in which
the factors can be switched from baseline to observed values. The parts sum exactly to the change
(by construction, whatever the interactions), a factor that did not move gets exactly zero, and
models that appear or disappear need no special case (unlike log-mean Divisia indices, which cannot
take zeros): where a model has no traffic on one side, its size, cache profile and prices are taken
from the other side, so its arrival or departure counts as mix.

Everything is exact `Decimal` arithmetic at 60 digits; the parts are rounded to the nano-dollar and
the rounding remainder goes to the largest part, so they add up to the rounded change exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from itertools import combinations
from math import factorial
from typing import Literal, TypeVar

NANO = Decimal("1e-9")
ZERO = Decimal(0)
INPUT_CLASSES = ("uncached", "cached", "write", "write_1h")
CLASSES = (*INPUT_CLASSES, "output")
FACTORS = ("volume", "mix", "size", "cache", "price")
CLASS_LABELS = {
    "uncached": "input",
    "cached": "cached input",
    "write": "cache write",
    "write_1h": "1-hour cache write",
    "output": "output",
}


def q9(value: Decimal) -> Decimal:
    """Round to the nano-dollar (the precision results carry on the wire)."""
    return value.quantize(NANO, rounding=ROUND_HALF_EVEN)


@dataclass
class ModelUsage:
    """One model's priced usage on one side of a comparison: request count, tokens and cost per class."""

    requests: Decimal = ZERO
    tokens: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(CLASSES, ZERO))
    cost: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(CLASSES, ZERO))
    uncounted: int = 0

    def add(self, requests: int, tokens: Mapping[str, int], cost: Mapping[str, Decimal], uncounted: int = 0) -> None:
        """Accumulate one aggregate row."""
        self.requests += requests
        for k in CLASSES:
            self.tokens[k] += tokens[k]
            self.cost[k] += cost[k]
        self.uncounted += uncounted

    @property
    def input_tokens(self) -> Decimal:
        """All prompt tokens (every input class)."""
        return sum((self.tokens[k] for k in INPUT_CLASSES), ZERO)

    @property
    def total_cost(self) -> Decimal:
        """Cost of every class."""
        return sum(self.cost.values(), ZERO)


Usage = dict[str, ModelUsage]


def merge(usages: Iterable[Usage]) -> Usage:
    """Pool several sides (e.g. the reference days of a baseline)."""
    pooled: Usage = {}
    for usage in usages:
        for model, u in usage.items():
            target = pooled.setdefault(model, ModelUsage())
            target.requests += u.requests
            for k in CLASSES:
                target.tokens[k] += u.tokens[k]
                target.cost[k] += u.cost[k]
            target.uncounted += u.uncounted
    return pooled


def per_request(usage: Usage) -> Usage:
    """The average single request of a pooled composition (every count divided by the request count)."""
    n = sum((u.requests for u in usage.values()), ZERO)
    if not n:
        return {}
    with localcontext() as ctx:
        ctx.prec = 60
        return {
            m: ModelUsage(
                requests=u.requests / n,
                tokens={k: v / n for k, v in u.tokens.items()},
                cost={k: v / n for k, v in u.cost.items()},
                uncounted=u.uncounted,
            )
            for m, u in usage.items()
        }


@dataclass(frozen=True)
class _Partial:
    """One side's factor values as measured; None where a model has no traffic (or no such tokens)."""

    volume: Decimal
    share: dict[str, Decimal | None]
    size: dict[str, tuple[Decimal, Decimal] | None]
    cache: dict[str, dict[str, Decimal] | None]
    price: dict[str, dict[str, Decimal | None]]


@dataclass(frozen=True)
class _Side:
    """One side's factor values, every one defined: volume, shares, size, cache profile, prices."""

    volume: Decimal
    share: dict[str, Decimal]
    size: dict[str, tuple[Decimal, Decimal]]
    cache: dict[str, dict[str, Decimal]]
    price: dict[str, dict[str, Decimal]]


def _units(u: ModelUsage, unit: str) -> Decimal:
    return u.requests if unit == "requests" else u.input_tokens + u.tokens["output"]


def _measure(usage: Usage, models: list[str], unit: str, scale: Decimal, rescale: str) -> _Partial:
    units = {m: _units(usage[m], unit) if m in usage else ZERO for m in models}
    total = sum(units.values(), ZERO)
    share: dict[str, Decimal | None] = {m: (units[m] / total if total else None) for m in models}
    size: dict[str, tuple[Decimal, Decimal] | None] = {}
    cache: dict[str, dict[str, Decimal] | None] = {}
    price: dict[str, dict[str, Decimal | None]] = {}
    grow = scale if rescale == "size" else Decimal(1)
    for m in models:
        u = usage.get(m)
        if u is None or not units[m]:
            size[m], cache[m] = None, None
            price[m] = dict.fromkeys(CLASSES)
            continue
        size[m] = (grow * u.input_tokens / units[m], grow * u.tokens["output"] / units[m])
        cache[m] = {k: u.tokens[k] / u.input_tokens for k in INPUT_CLASSES} if u.input_tokens else None
        price[m] = {k: (u.cost[k] / u.tokens[k] if u.tokens[k] else None) for k in CLASSES}
    volume = total * scale if rescale == "volume" else total
    return _Partial(volume=volume, share=share, size=size, cache=cache, price=price)


def _fill(me: _Partial, other: _Partial, models: list[str]) -> _Side:
    """`me` with every undefined value taken from `other` (zero when neither has one)."""
    share: dict[str, Decimal] = {}
    size: dict[str, tuple[Decimal, Decimal]] = {}
    cache: dict[str, dict[str, Decimal]] = {}
    price: dict[str, dict[str, Decimal]] = {}
    for m in models:
        share[m] = _first(me.share[m], other.share[m], ZERO)
        size[m] = _first(me.size[m], other.size[m], (ZERO, ZERO))
        cache[m] = _first(me.cache[m], other.cache[m], dict.fromkeys(INPUT_CLASSES, ZERO))
        price[m] = {k: _first(me.price[m][k], other.price[m][k], ZERO) for k in CLASSES}
    return _Side(me.volume, share, size, cache, price)


T = TypeVar("T")


def _first(a: T | None, b: T | None, default: T) -> T:
    return a if a is not None else b if b is not None else default


def _cost(volume: Decimal, share: _Side, size: _Side, cache: _Side, price: _Side, models: list[str]) -> Decimal:
    total = ZERO
    for m in models:
        s = share.share[m]
        if not s:
            continue
        i, o = size.size[m]
        q = cache.cache[m]
        r = price.price[m]
        total += s * (i * sum((q[k] * r[k] for k in INPUT_CLASSES), ZERO) + o * r["output"])
    return volume * total


@dataclass(frozen=True)
class Split:
    """A change in dollars split into factor parts that add up to it exactly."""

    base_usd: Decimal
    observed_usd: Decimal
    change_usd: Decimal
    parts: dict[str, Decimal]
    unit: str
    base_units: Decimal
    observed_units: Decimal


def decompose(
    base: Usage,
    observed: Usage,
    *,
    base_cost: Decimal,
    observed_cost: Decimal,
    rescale: Literal["volume", "size"] = "volume",
) -> Split:
    """Split `observed_cost − base_cost` into volume, mix, size, cache and price parts.

    `base` is a composition (e.g. pooled reference days) rescaled so that it costs `base_cost` (the
    expected spend): by its volume (a typical day has fewer or more requests of the same kind), or
    with rescale="size" by its tokens per request (a typical request of a model is smaller than the
    pooled average). `observed` is used as it is.
    """
    models = sorted(set(base) | set(observed))
    uncounted = any(u.uncounted for u in (*base.values(), *observed.values()))
    unit = "tokens" if uncounted else "requests"
    with localcontext() as ctx:
        ctx.prec = 60
        pooled_cost = sum((u.total_cost for u in base.values()), ZERO)
        scale = base_cost / pooled_cost if pooled_cost else ZERO
        measured_base = _measure(base, models, unit, scale, rescale)
        measured_obs = _measure(observed, models, unit, Decimal(1), rescale)
        b = _fill(measured_base, measured_obs, models)
        o = _fill(measured_obs, measured_base, models)
        cache_eval: dict[int, Decimal] = {}

        def value(mask: int) -> Decimal:
            if mask not in cache_eval:
                pick = [o if mask >> i & 1 else b for i in range(len(FACTORS))]
                cache_eval[mask] = _cost(pick[0].volume, pick[1], pick[2], pick[3], pick[4], models)
            return cache_eval[mask]

        n = len(FACTORS)
        raw: dict[str, Decimal] = {}
        for i, name in enumerate(FACTORS):
            others = [j for j in range(n) if j != i]
            part = ZERO
            for size in range(n):
                weight = Decimal(factorial(size) * factorial(n - size - 1)) / factorial(n)
                for subset in combinations(others, size):
                    mask = sum(1 << j for j in subset)
                    part += weight * (value(mask | 1 << i) - value(mask))
            raw[name] = part
        base_units = b.volume
    change = q9(observed_cost) - q9(base_cost)
    parts = {k: q9(v) for k, v in raw.items()}
    remainder = change - sum(parts.values(), ZERO)
    if remainder:
        largest = max(FACTORS, key=lambda k: (abs(parts[k]), -FACTORS.index(k)))
        parts[largest] += remainder
    return Split(
        base_usd=q9(base_cost),
        observed_usd=q9(observed_cost),
        change_usd=change,
        parts=parts,
        unit=unit,
        base_units=base_units,
        observed_units=sum((_units(u, unit) for u in observed.values()), ZERO),
    )
