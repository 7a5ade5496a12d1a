"""Helpers for the spend, anomaly, budget and forecast tests: request rows and tool calls by protocol."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from costhawk_mcp.store.store import RequestRow
from costhawk_mcp.store.sync_store import Page, RawUsage

_ids = count(1)


def req(
    ts: datetime | date,
    model: str = "test-gpt",
    *,
    input_tokens: int = 0,
    cached: int = 0,
    output: int = 0,
    provider: str | None = None,
    api_key_id: str | None = "key-a",
    project: str | None = "alpha",
    feature: str | None = "chat",
    latency_ms: float | None = None,
    request_id: str | None = None,
) -> RequestRow:
    """One request row; a date means noon UTC that day."""
    moment = ts if isinstance(ts, datetime) else datetime.combine(ts, time(12))
    return RequestRow(
        request_id=request_id or f"req-{next(_ids)}",
        ts=moment,
        model=model,
        provider=provider,
        api_key_id=api_key_id,
        project=project,
        feature=feature,
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        output_tokens=output,
        latency_ms=latency_ms,
    )


def days(first: date, n: int) -> list[date]:
    """`n` consecutive days from `first`."""
    return [first + timedelta(days=i) for i in range(n)]


def D(value: str | int) -> Decimal:
    """Shorthand for exact expected figures."""
    return Decimal(value)


def synced_day(provider: str, day: date, result: dict[str, Any]) -> Page:
    """A page of one synced day holding one usage result, in the provider's own wire format
    (OpenAI completions usage or Anthropic's messages usage report), as an adapter hands it over."""
    start = datetime.combine(day, time())
    end = start + timedelta(days=1)
    if provider == "openai":
        epoch = int((start - datetime(1970, 1, 1)).total_seconds())
        bucket = {"start_time": epoch, "end_time": epoch + 86_400, "results": [result]}
        usage = RawUsage("openai_tokens", json.dumps({"data": [bucket], "has_more": False}), 1)
        return Page("openai", "usage/completions", "usage", "1d", [(start, end)], usage=usage)
    bucket = {"starting_at": f"{start.isoformat()}Z", "ending_at": f"{end.isoformat()}Z", "results": [result]}
    usage = RawUsage("anthropic", json.dumps({"data": [bucket], "has_more": False}), 1)
    return Page("anthropic", "usage_report/messages", "usage", "1d", [(start, end)], usage=usage)
