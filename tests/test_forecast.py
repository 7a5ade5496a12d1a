"""forecast_spend through the MCP protocol: its range holds a planted continuation of a weekly series.

The series: $20 a day × (1 + 0.4 % a day) × a weekday pattern (Mon–Sun 1.2 1.3 1.2 1.1 1.0 0.5 0.4)
× lognormal noise (σ = 0.05, fixed seed). Each day is one test-gpt request of y × 500,000 input tokens
($2 per million: the day costs y). 56 days are stored (2026-09-07, a Monday, to 2026-11-01); the next
14 days are held out and must fall inside the forecast's ranges.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from client_support import call, call_error, insert
from costhawk_mcp.config import Settings
from costhawk_mcp.store.store import RequestRow
from spend_support import req

FIRST = date(2026, 9, 7)
HISTORY_DAYS = 56
AS_OF = FIRST + timedelta(days=HISTORY_DAYS)  # 2026-11-02
PATTERN = (1.2, 1.3, 1.2, 1.1, 1.0, 0.5, 0.4)


def series(n: int, seed: int = 3, base: float = 20.0) -> list[float]:
    rng = random.Random(seed)
    return [
        base * (1 + 0.004 * t) * PATTERN[(FIRST + timedelta(days=t)).weekday()] * math.exp(rng.gauss(0, 0.05))
        for t in range(n)
    ]


def rows_for(values: list[float], model: str = "test-gpt", provider: str | None = None) -> list[RequestRow]:
    return [
        req(FIRST + timedelta(days=t), model, input_tokens=round(v * 500_000), provider=provider)
        for t, v in enumerate(values)
    ]


@pytest.mark.anyio
async def test_the_range_holds_the_held_out_continuation(test_catalog: Path, settings: Settings) -> None:
    values = series(HISTORY_DAYS + 14)
    insert(settings, rows_for(values[:HISTORY_DAYS]))
    result = await call(settings, "forecast_spend", {"horizon_days": 14, "as_of": AS_OF.isoformat()})
    assert (result["as_of"], result["history_start"], result["history_end"]) == (
        "2026-11-02",
        "2026-09-07",
        "2026-11-01",
    )
    held_out = [Decimal(repr(v)) for v in values[HISTORY_DAYS:]]
    days = result["days"]
    assert [d["date"] for d in days] == [(AS_OF + timedelta(days=i)).isoformat() for i in range(14)]
    inside = sum(d["low_usd"] <= actual <= d["high_usd"] for d, actual in zip(days, held_out, strict=True))
    # an 80 % range should hold about 11 of 14 days; at least 10 is the bar
    assert inside >= 10, [(d["low_usd"], float(a), d["high_usd"]) for d, a in zip(days, held_out, strict=True)]
    total = result["total"]
    assert total["low_usd"] <= sum(held_out) <= total["high_usd"]
    # the weekday pattern is forecast, not averaged away: Tuesdays well above Sundays
    tuesday = next(d for d in days if date.fromisoformat(d["date"]).weekday() == 1)
    sunday = next(d for d in days if date.fromisoformat(d["date"]).weekday() == 6)
    assert tuesday["expected_usd"] > 2 * sunday["expected_usd"]
    assert all(d["low_usd"] <= d["expected_usd"] <= d["high_usd"] for d in days)
    assert sum(d["expected_usd"] for d in days) == pytest.approx(total["expected_usd"], abs=Decimal("0.07"))
    assert result["backtest"]["fallback_range"] is False
    assert "Theil–Sen" in result["method"] and result["interval"].startswith("80 %")


@pytest.mark.anyio
async def test_group_forecasts_add_up_to_the_total(test_catalog: Path, settings: Settings) -> None:
    openai = series(HISTORY_DAYS, seed=5)
    anthropic = series(HISTORY_DAYS, seed=6, base=8.0)
    # test-claude output is $15 per million tokens: y dollars are y / 15 million output tokens
    claude_rows = [
        RequestRow(
            request_id=f"claude-{t}",
            ts=datetime.combine(FIRST + timedelta(days=t), time(12)),
            model="test-claude",
            provider="anthropic",
            output_tokens=round(v * 1_000_000 / 15),
        )
        for t, v in enumerate(anthropic)
    ]
    insert(settings, rows_for(openai) + claude_rows)
    result = await call(
        settings, "forecast_spend", {"horizon_days": 7, "group_by": "provider", "as_of": AS_OF.isoformat()}
    )
    groups = {g["group"]: g for g in result["groups"]}
    assert set(groups) == {"openai", "anthropic"}
    assert groups["openai"]["history_spend_usd"] > groups["anthropic"]["history_spend_usd"]
    for i, day in enumerate(result["days"]):
        parts = sum(g["days"][i]["expected_usd"] for g in groups.values())
        assert parts == pytest.approx(day["expected_usd"], abs=Decimal("0.011"))


@pytest.mark.anyio
async def test_too_little_history_is_said_not_guessed(test_catalog: Path, settings: Settings) -> None:
    insert(settings, rows_for(series(5)))
    result = await call(settings, "forecast_spend", {"as_of": (FIRST + timedelta(days=5)).isoformat()})
    assert result["days"] == [] and result["total"]["expected_usd"] == 0
    assert any("at least 7 days" in n for n in result["notes"])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"horizon_days": 0}, "horizon_days"),
        ({"horizon_days": 400}, "horizon_days"),
        ({"group_by": "feature"}, "group_by"),
        ({"history_days": 7}, "history_days"),
        ({"as_of": "the day after tomorrow"}, "as_of"),
    ],
)
async def test_bad_arguments_are_tool_errors_naming_the_field(
    test_catalog: Path, settings: Settings, args: dict[str, object], field: str
) -> None:
    assert field in await call_error(settings, "forecast_spend", args)
