"""Helpers for the savings, self-hosting, chart and prompt tests: build request rows, call tools."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from itertools import count
from typing import Any

from mcp.client import Client

from costhawk_mcp.config import Settings
from costhawk_mcp.server.build import build_server
from costhawk_mcp.store.store import RequestRow

_ids = count(1)


def req(
    ts: datetime,
    model: str,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cached: int = 0,
    feature: str | None = None,
    key: str | None = None,
    key_name: str | None = None,
    project: str | None = None,
    batch: bool = False,
) -> RequestRow:
    """One imported request with a fresh id."""
    return RequestRow(
        request_id=f"r{next(_ids)}",
        ts=ts,
        model=model,
        feature=feature,
        api_key_id=key,
        key_name=key_name,
        project=project,
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        output_tokens=output_tokens,
        batch=batch,
    )


async def call(settings: Settings, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """Call a tool in memory; fail the test on a tool error; return its structured content."""
    async with Client(build_server(settings)) as client:
        result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


def D(value: str | float | int) -> Decimal:
    """A wire number as a Decimal rounded to the nano-dollar, for exact comparisons."""
    return Decimal(str(value)).quantize(Decimal("1e-9"))


def money(value: str) -> Decimal:
    """A hand-worked expected amount, rounded like the wire."""
    return Decimal(value).quantize(Decimal("1e-9"))
