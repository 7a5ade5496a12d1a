"""Anthropic's Admin API: the messages usage report, the cost report, API keys and workspaces.

Wire format (see the provider notes): `x-api-key: <admin key>` plus `anthropic-version`; RFC 3339
`starting_at`/`ending_at`; bracket arrays; pages of time buckets followed with `page=<next_page>`;
money as a decimal *string of cents*.

Usage is grouped by API key, workspace, model, service tier and context window: the tier decides
batch and priority prices, the context window the long-context prices, and cache writes keep their
5-minute and 1-hour counts apart. Token fields are normalised to the store convention:
`input_tokens` = uncached + cache reads + both cache writes. Priority Tier spend never appears in
the cost report (it is billed separately); reconciliation says so.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import partial

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from costhawk_mcp.errors import ProviderError
from costhawk_mcp.pricing.cost import service_tier
from costhawk_mcp.store.sync_store import ApiKeyRow, CostRow, Page, ProjectRow, UsageRow
from costhawk_mcp.sync.base import (
    USAGE_LIMITS,
    Endpoint,
    FetchedPage,
    Lenient,
    Names,
    dims_key,
    extra_json,
    naive_utc,
    next_cursor,
    parse_body,
    redacted_hint,
    rfc3339,
)
from costhawk_mcp.sync.http import ProviderClient

PROVIDER = "anthropic"
KEY_ENV = "ANTHROPIC_ADMIN_KEY"
API_VERSION = "2023-06-01"
USAGE_GROUP_BY = ("api_key_id", "workspace_id", "model", "service_tier", "context_window")
COST_GROUP_BY = ("workspace_id", "description")
COST_LIMIT = 31  # daily buckets per page, the documented maximum
LONG_CONTEXT = "200k-1M"
HUNDRED = Decimal(100)

# Service tiers as the usage report names them, mapped to the catalog's pricing tiers.
_PRICING_TIER = {"priority_on_demand": "priority", "flex_discount": "flex"}


@with_config(ConfigDict(extra="ignore"))
class CacheCreation(TypedDict, total=False):
    ephemeral_5m_input_tokens: int | None
    ephemeral_1h_input_tokens: int | None


@with_config(ConfigDict(extra="ignore"))
class ServerToolUse(TypedDict, total=False):
    web_search_requests: int | None


@with_config(ConfigDict(extra="ignore"))
class UsageResult(TypedDict, total=False):
    """One usage result: every field optional (validated into a plain dict, cheaper than a model)."""

    api_key_id: str | None
    workspace_id: str | None
    model: str | None
    service_tier: str | None
    context_window: str | None
    inference_geo: str | None
    account_id: str | None
    service_account_id: str | None
    speed: str | None
    uncached_input_tokens: int | None
    cache_read_input_tokens: int | None
    cache_creation: CacheCreation | None
    output_tokens: int | None
    server_tool_use: ServerToolUse | None


class UsageBucket(Lenient):
    starting_at: datetime
    ending_at: datetime
    results: list[UsageResult] = Field(default_factory=list)


class UsagePage(Lenient):
    data: list[UsageBucket] = Field(default_factory=list)
    has_more: bool = False
    next_page: str | None = None


class CostResult(Lenient):
    amount: Decimal = Decimal(0)
    currency: str | None = None
    workspace_id: str | None = None
    description: str | None = None
    cost_type: str | None = None
    model: str | None = None
    token_type: str | None = None
    service_tier: str | None = None
    context_window: str | None = None
    inference_geo: str | None = None


class CostBucket(Lenient):
    starting_at: datetime
    ending_at: datetime
    results: list[CostResult] = Field(default_factory=list)


class CostPage(Lenient):
    data: list[CostBucket] = Field(default_factory=list)
    has_more: bool = False
    next_page: str | None = None


class ApiKey(Lenient):
    id: str
    name: str | None = None
    partial_key_hint: str | None = None
    status: str | None = None
    workspace_id: str | None = None
    created_at: datetime | None = None


class ApiKeyList(Lenient):
    data: list[ApiKey] = Field(default_factory=list)
    has_more: bool = False
    last_id: str | None = None


class Workspace(Lenient):
    id: str
    name: str | None = None
    archived_at: datetime | None = None


class WorkspaceList(Lenient):
    data: list[Workspace] = Field(default_factory=list)
    has_more: bool = False
    last_id: str | None = None


def pricing_tier(tier: str | None) -> str:
    """The catalog tier of a reported service tier (batch, priority, flex, else standard)."""
    name = (tier or "").strip().lower()
    return service_tier(name == "batch", _PRICING_TIER.get(name, name) or None)


def usage_row(start: datetime, end: datetime, r: UsageResult) -> UsageRow:
    """One usage result in the store's form."""
    read = r.get("cache_read_input_tokens") or 0
    creation = r.get("cache_creation") or {}
    write_5m = creation.get("ephemeral_5m_input_tokens") or 0
    write_1h = creation.get("ephemeral_1h_input_tokens") or 0
    searches = (r.get("server_tool_use") or {}).get("web_search_requests")
    tier, window = r.get("service_tier"), r.get("context_window")
    geo, service_account, speed = r.get("inference_geo"), r.get("service_account_id"), r.get("speed")
    key = (r.get("api_key_id"), r.get("workspace_id"), r.get("model"), tier, window, geo)
    return UsageRow(
        start,
        end,
        dims_key((*key, r.get("account_id"), service_account, speed)),
        None,
        key[1],
        key[0],
        r.get("account_id"),
        key[2],
        None if tier is None else tier.lower() == "batch",
        tier,
        pricing_tier(tier),
        window,
        window == LONG_CONTEXT,
        None,
        (r.get("uncached_input_tokens") or 0) + read + write_5m + write_1h,
        read,
        write_5m,
        write_1h,
        r.get("output_tokens") or 0,
        extra_json(
            {
                "web_search_requests": searches,
                "inference_geo": geo,
                "service_account_id": service_account,
                "speed": speed,
            }
        )
        if searches or geo or service_account or speed
        else None,
    )


def parse_usage_page(bucket_width: str, body: bytes) -> FetchedPage:
    """A messages usage page as store rows; empty buckets are kept so they replace stale rows."""
    parsed = parse_body(UsagePage, body, "Anthropic /v1/organizations/usage_report/messages", money=False)
    buckets: list[tuple[datetime, datetime]] = []
    rows: list[UsageRow] = []
    for bucket in parsed.data:
        start, end = naive_utc(bucket.starting_at), naive_utc(bucket.ending_at)
        buckets.append((start, end))
        rows.extend(usage_row(start, end, result) for result in bucket.results)
    page = Page(PROVIDER, "usage_report/messages", "usage", bucket_width, buckets, usage=rows)
    return FetchedPage(page, parsed.has_more, parsed.next_page)


def parse_cost_page(body: bytes) -> FetchedPage:
    """A cost report page as store rows: cents strings become exact dollars."""
    parsed = parse_body(CostPage, body, "Anthropic /v1/organizations/cost_report")
    buckets: list[tuple[datetime, datetime]] = []
    rows: list[CostRow] = []
    for bucket in parsed.data:
        start, end = naive_utc(bucket.starting_at), naive_utc(bucket.ending_at)
        buckets.append((start, end))
        for r in bucket.results:
            if r.currency is not None and r.currency.upper() != "USD":
                raise ProviderError(f"Anthropic cost report reported {r.currency!r}; only USD is supported")
            rows.append(
                CostRow(
                    bucket_start=start,
                    bucket_end=end,
                    dims_key=dims_key(
                        (
                            r.workspace_id,
                            r.description,
                            r.cost_type,
                            r.model,
                            r.token_type,
                            r.service_tier,
                            r.context_window,
                            r.inference_geo,
                        )
                    ),
                    amount_usd=r.amount / HUNDRED,
                    workspace_id=r.workspace_id,
                    description=r.description,
                    cost_type=r.cost_type,
                    model=r.model,
                    token_type=r.token_type,
                    service_tier=r.service_tier,
                    context_window=r.context_window,
                )
            )
    page = Page(PROVIDER, "cost_report", "cost", "1d", buckets, costs=rows)
    return FetchedPage(page, parsed.has_more, parsed.next_page)


class AnthropicAdapter:
    """Anthropic's Admin API."""

    provider = PROVIDER
    label = "Anthropic"
    key_env = KEY_ENV

    def headers(self, key: str) -> dict[str, str]:
        """The admin key and the API version."""
        return {"x-api-key": key, "anthropic-version": API_VERSION, "Accept": "application/json"}

    def endpoints(self, bucket_width: str) -> list[Endpoint]:
        """The messages usage report at `bucket_width`, and the daily cost report."""
        return [
            Endpoint(
                provider=PROVIDER,
                name="usage_report/messages",
                path="/v1/organizations/usage_report/messages",
                kind="usage",
                bucket_width=bucket_width,
                limit=USAGE_LIMITS[bucket_width],
                params=(("bucket_width", bucket_width), *(("group_by[]", g) for g in USAGE_GROUP_BY)),
                parse=partial(parse_usage_page, bucket_width),
            ),
            Endpoint(
                provider=PROVIDER,
                name="cost_report",
                path="/v1/organizations/cost_report",
                kind="cost",
                bucket_width="1d",
                limit=COST_LIMIT,
                params=(("bucket_width", "1d"), *(("group_by[]", g) for g in COST_GROUP_BY)),
                parse=parse_cost_page,
            ),
        ]

    def window_params(self, start: datetime, end: datetime | None) -> list[tuple[str, str]]:
        """`starting_at` (and `ending_at`) as RFC 3339 UTC."""
        params = [("starting_at", rfc3339(start))]
        if end is not None:
            params.append(("ending_at", rfc3339(end)))
        return params

    async def fetch_names(self, client: ProviderClient) -> Names:
        """Every API key (any status) and every workspace (archived too)."""
        names = Names()
        after: str | None = None
        path = "/v1/organizations/api_keys"
        while True:
            params = [("limit", "1000"), *([("after_id", after)] if after else [])]
            keys = parse_body(ApiKeyList, await client.get(path, params), f"Anthropic {path}")
            names.keys.extend(
                ApiKeyRow(
                    api_key_id=key.id,
                    name=key.name,
                    redacted_hint=redacted_hint(key.partial_key_hint),
                    workspace_id=key.workspace_id,
                    status=key.status,
                    created_at=naive_utc(key.created_at) if key.created_at is not None else None,
                )
                for key in keys.data
            )
            after = next_cursor(client, path, keys.has_more, keys.last_id, after)
            if after is None:
                break
        path = "/v1/organizations/workspaces"
        while True:
            params = [("limit", "1000"), ("include_archived", "true"), *([("after_id", after)] if after else [])]
            spaces = parse_body(WorkspaceList, await client.get(path, params), f"Anthropic {path}")
            names.projects.extend(
                ProjectRow(space.id, space.name, "workspace", "archived" if space.archived_at else "active")
                for space in spaces.data
            )
            after = next_cursor(client, path, spaces.has_more, spaces.last_id, after)
            if after is None:
                break
        return names
