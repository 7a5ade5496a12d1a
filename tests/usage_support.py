"""Helpers for the usage-tool tests: request rows, synced buckets, and tool calls through the protocol."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count

from costhawk_mcp.config import Settings
from costhawk_mcp.pricing.cost import service_tier
from costhawk_mcp.server.app import App
from costhawk_mcp.store import pricing_sql
from costhawk_mcp.store.db import utcnow
from costhawk_mcp.store.store import RequestRow

_ids = count(1)


def req(
    ts: datetime,
    model: str = "test-gpt",
    *,
    input_tokens: int = 0,
    cached: int = 0,
    cache_write: int = 0,
    output: int = 0,
    api_key_id: str | None = None,
    key_name: str | None = None,
    project: str | None = None,
    provider: str | None = None,
    query_id: str | None = None,
    feature: str | None = None,
    batch: bool = False,
    latency_ms: float | None = None,
    status: str | None = None,
    request_id: str | None = None,
) -> RequestRow:
    """One request row (the provider comes from the catalog when not given)."""
    return RequestRow(
        request_id=request_id or f"req-{next(_ids)}",
        ts=ts,
        model=model,
        provider=provider,
        api_key_id=api_key_id,
        key_name=key_name,
        project=project,
        query_id=query_id,
        feature=feature,
        input_tokens=input_tokens,
        cached_input_tokens=cached,
        cache_write_tokens=cache_write,
        output_tokens=output,
        batch=batch,
        latency_ms=latency_ms,
        status=status,
    )


@dataclass(frozen=True)
class Bucket:
    """One synced provider usage bucket (a day of one key and model)."""

    provider: str
    day: datetime
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    api_key_id: str | None = None
    cached_input_tokens: int = 0
    batch: bool = False


def insert_buckets(settings: Settings, buckets: list[Bucket]) -> None:
    """Test-only stand-in for provider sync: write daily buckets and price them like the store does.

    Sync owns the real upsert; this writes just the columns the facts view reads, then lets
    `pricing_sql` resolve model ids and costs, as after a catalog change.
    """
    store = App(settings).store
    with store.writing() as conn:
        for i, b in enumerate(buckets):
            conn.execute(
                """
                INSERT INTO usage_buckets (provider, endpoint, bucket_width, bucket_start, bucket_end, dims_key,
                    api_key_id, model, batch, tier, requests, input_tokens, cached_input_tokens,
                    cache_write_tokens, cache_write_1h_tokens, output_tokens, synced_at)
                VALUES (?, 'completions', '1d', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)
                """,
                [
                    b.provider,
                    b.day,
                    b.day + timedelta(days=1),
                    f"bucket-{i}",
                    b.api_key_id,
                    b.model,
                    b.batch,
                    service_tier(b.batch),
                    b.requests,
                    b.input_tokens,
                    b.cached_input_tokens,
                    b.output_tokens,
                    utcnow(),
                ],
            )
        pricing_sql.resolve_models(conn, store.catalog, sorted({b.model for b in buckets}))
        pricing_sql.reprice_all(conn)
