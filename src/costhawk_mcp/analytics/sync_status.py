"""Where provider sync stands: per provider, the last sync, the window covered and the last error.

Never the key: only whether the environment variable holding it is set.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from costhawk_mcp.config import Settings
from costhawk_mcp.store.store import Store
from costhawk_mcp.store.sync_store import SyncStateRow, sync_states

KEY_VARIABLES = {"openai": "OPENAI_ADMIN_KEY", "anthropic": "ANTHROPIC_ADMIN_KEY"}
NAMES_ENDPOINT = "api_keys"


class EndpointStatus(BaseModel):
    """One endpoint's sync state."""

    endpoint: str
    covered_from: datetime | None = Field(description="first bucket synced (UTC)")
    covered_to: datetime | None = Field(description="end of the last bucket synced (UTC, exclusive)")
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None


class ProviderStatus(BaseModel):
    """One provider's sync state."""

    provider: str
    key_variable: str = Field(description="the environment variable sync reads the admin key from")
    key_configured: bool
    last_sync: datetime | None = Field(description="when a sync last finished an endpoint of this provider (UTC)")
    covered_from: datetime | None = Field(description="earliest bucket any usage or cost endpoint holds (UTC)")
    covered_to: datetime | None = Field(
        description="every usage and cost endpoint is synced up to here (UTC); later buckets are re-fetched by the next sync"
    )
    last_error: str | None = Field(description="the most recent unresolved error, with its endpoint")
    endpoints: list[EndpointStatus]


class SyncStatus(BaseModel):
    """Sync state of every provider."""

    providers: list[ProviderStatus]


def sync_status(store: Store, settings: Settings) -> SyncStatus:
    """Per provider: configured key variable, last sync, covered window and last error."""
    states = sync_states(store)
    configured = {"openai": bool(settings.openai_admin_key), "anthropic": bool(settings.anthropic_admin_key)}
    providers = []
    for provider, variable in KEY_VARIABLES.items():
        rows = [s for s in states if s.provider == provider]
        data = [s for s in rows if s.endpoint != NAMES_ENDPOINT]
        failing = sorted((s for s in rows if s.last_error), key=lambda s: s.last_attempt_at or datetime.min)
        providers.append(
            ProviderStatus(
                provider=provider,
                key_variable=variable,
                key_configured=configured[provider],
                last_sync=max((s.last_success_at for s in rows if s.last_success_at), default=None),
                covered_from=min((s.covered_from for s in data if s.covered_from), default=None),
                covered_to=min((s.covered_to for s in data if s.covered_to), default=None),
                last_error=f"{failing[-1].endpoint}: {failing[-1].last_error}" if failing else None,
                endpoints=[_endpoint(s) for s in rows],
            )
        )
    return SyncStatus(providers=providers)


def _endpoint(s: SyncStateRow) -> EndpointStatus:
    return EndpointStatus(
        endpoint=s.endpoint,
        covered_from=s.covered_from,
        covered_to=s.covered_to,
        last_success_at=s.last_success_at,
        last_attempt_at=s.last_attempt_at,
        last_error=s.last_error,
    )
