"""Backtest forecast_spend's method: rolling origin on daily spend, MAPE and interval coverage.

    .venv/bin/python bench/backtest_forecast.py                 # generated series (below)
    .venv/bin/python bench/backtest_forecast.py --db PATH       # daily total spend of a costhawk database

At every origin t (from day --min-train on) the method is fitted on the days before t only, at most
the last --history-days of them, exactly as forecast_spend does it (its ranges come from its own
backtest on those days), and forecasts
t+1 … t+14. For each horizon band it prints the mean absolute percentage error, the same for the
seasonal-naive baseline (the same weekday one week earlier) and their ratio, and how often the 80 %
range held the actual value (a calibrated range holds it about 80 % of the time). Totals of the next
7 and 14 days are scored the same way against their own ranges.

The generated series ("weekly"): a base of $100 a day, weekday factors Mon–Sun 1.15 1.2 1.15 1.1
1.0 0.55 0.45, +0.3 % a day of trend, lognormal noise (σ = 0.08), a one-day 4× spike on day 120
and 180 days in all. "shift" adds a permanent +40 % level step on day 100 instead of the spike;
"flat" has neither trend nor events.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from datetime import date, datetime, timedelta, timezone

from costhawk_mcp.analytics.forecast import forecast_series

WEEKDAY = (1.15, 1.2, 1.15, 1.1, 1.0, 0.55, 0.45)
FIRST = date(2026, 5, 4)  # a Monday
BANDS = ((1, 7), (8, 14))


def generated(kind: str, days: int = 180, seed: int = 7) -> list[float]:
    """A daily spend series with weekday seasonality, trend, noise and an event."""
    rng = random.Random(seed)
    values = []
    for t in range(days):
        day = FIRST + timedelta(days=t)
        trend = 1.0 if kind == "flat" else 1.003**t
        level = 100 * trend * (1.4 if kind == "shift" and t >= 100 else 1.0)
        value = level * WEEKDAY[day.weekday()] * math.exp(rng.gauss(0, 0.08))
        if kind == "weekly" and t == 120:
            value *= 4
        values.append(round(value, 2))
    return values


def from_db(path: str) -> tuple[list[float], date]:
    """Daily total spend of a costhawk database, from its first to its last day with usage."""
    from costhawk_mcp.config import Settings
    from costhawk_mcp.server.app import App
    from costhawk_mcp.store import spend_queries
    from costhawk_mcp.store.facts import FactFilter

    app = App(Settings.from_env().with_db(path))
    with app.store.reading() as conn:
        rows = spend_queries.daily_spend(
            conn, FactFilter(start=datetime(2000, 1, 1), end=datetime(2200, 1, 1)), "total"
        )
    if not rows:
        raise SystemExit(f"{path}: no priced usage")
    by_day = {d: float(v) for d, _, v in rows}
    by_day.pop(datetime.now(timezone.utc).date(), None)  # today is not over: forecast_spend leaves it out too
    if not by_day:
        raise SystemExit(f"{path}: no priced usage before today")
    first, last = min(by_day), max(by_day)
    return [by_day.get(first + timedelta(days=i), 0.0) for i in range((last - first).days + 1)], first


def backtest(
    values: list[float], first: date, min_train: int, history: int = 56, horizon: int = 14
) -> dict[str, list[float]]:
    """Per band: absolute percentage errors (method and seasonal naive) and hits of the 80 % range."""
    out: dict[str, list[float]] = {}
    for t in range(min_train, len(values) - horizon + 1):
        start = max(0, t - history)  # forecast_spend fits on its last `history_days` days only
        past, past_first = values[start:t], first + timedelta(days=start)
        f = forecast_series(past, past_first, horizon)
        for h in range(1, horizon + 1):
            actual = values[t + h - 1]
            band = next(f"{a}-{b}" for a, b in BANDS if a <= h <= b)
            naive = values[t + h - 1 - 7 * math.ceil(h / 7)]
            if actual > 0:
                out.setdefault(f"ape {band}", []).append(abs(f.expected[h - 1] - actual) / actual)
                out.setdefault(f"naive {band}", []).append(abs(naive - actual) / actual)
            out.setdefault(f"hit {band}", []).append(float(f.low[h - 1] <= actual <= f.high[h - 1]))
        for span in (7, 14):
            g = f if span == horizon else forecast_series(past, past_first, span)
            actual_total = sum(values[t : t + span])
            naive_total = sum(values[t - 7 + (i % 7)] for i in range(span))
            out.setdefault(f"ape total {span}", []).append(abs(g.total - actual_total) / actual_total)
            out.setdefault(f"naive total {span}", []).append(abs(naive_total - actual_total) / actual_total)
            out.setdefault(f"hit total {span}", []).append(float(g.total_low <= actual_total <= g.total_high))
    return out


def report(name: str, values: list[float], first: date, min_train: int, history: int) -> None:
    scores = backtest(values, first, min_train, history)
    origins = len(values) - 14 + 1 - min_train
    print(
        f"\n{name}: {len(values)} days from {first.isoformat()}, {origins} origins "
        f"(training: {min_train} to {history} days)"
    )
    print(f"  {'horizon':<12}{'MAPE':>9}{'naive':>9}{'ratio':>8}{'80% range held':>17}")
    for label in ("1-7", "8-14", "total 7", "total 14"):
        ape = statistics.fmean(scores[f"ape {label}"]) * 100
        naive = statistics.fmean(scores[f"naive {label}"]) * 100
        hit = statistics.fmean(scores[f"hit {label}"]) * 100
        print(f"  {label:<12}{ape:>8.1f}%{naive:>8.1f}%{ape / naive:>8.2f}{hit:>16.1f}%")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="a costhawk DuckDB file (e.g. the demo's); default: generated series")
    parser.add_argument("--min-train", type=int, default=28, help="fewest days of history at an origin (default 28)")
    parser.add_argument(
        "--history-days", type=int, default=56, help="days the method sees at each origin (forecast_spend's default)"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.db:
        values, first = from_db(args.db)
        if len(values) < args.min_train + 14:
            raise SystemExit(f"{args.db}: {len(values)} days is too short for --min-train {args.min_train} + 14")
        report(args.db, values, first, args.min_train, args.history_days)
        return 0
    for kind in ("weekly", "shift", "flat"):
        series = generated(kind, seed=args.seed)
        report(f"generated '{kind}' (seed {args.seed})", series, FIRST, args.min_train, args.history_days)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
