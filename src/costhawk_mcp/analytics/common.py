"""Result pieces every usage tool shares: the period, the sources that answered, unpriced usage."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from costhawk_mcp.store.coverage import SourceUse, Unpriced


class DataSource(BaseModel):
    """One source that contributed to a result."""

    source: str = Field(description="'request_logs' (imported per-request logs) or 'provider_usage' (synced buckets)")
    provider: str
    days: int = Field(description="UTC days this source answered for this provider")
    first_day: date
    last_day: date
    requests: int


class UnpricedUsage(BaseModel):
    """Requests the catalog cannot price: their cost is unknown and left out of every total."""

    unpriced_requests: int
    unpriced_models: list[str]


def data_sources(uses: list[SourceUse]) -> list[DataSource]:
    """Result form of `store.coverage.source_use`."""
    return [
        DataSource(
            source=u.source,
            provider=u.provider,
            days=u.days,
            first_day=u.first_day,
            last_day=u.last_day,
            requests=u.requests,
        )
        for u in uses
    ]


def unpriced_usage(found: Unpriced) -> UnpricedUsage:
    """Result form of `store.coverage.unpriced`."""
    return UnpricedUsage(unpriced_requests=found.requests, unpriced_models=found.models)
