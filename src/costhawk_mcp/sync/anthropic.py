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

import msgspec
from pydantic import Field

from costhawk_mcp.errors import ProviderError
from costhawk_mcp.store.sync_store import ApiKeyRow, CostRow, Page, ProjectRow, RawUsage
from costhawk_mcp.sync.base import (
    USAGE_LIMITS,
    Count,
    Endpoint,
    FetchedPage,
    Lenient,
    LenientList,
    LenientPage,
    Names,
    Text,
    Wire,
    WirePage,
    checked,
    decode,
    dims_key,
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
HUNDRED = Decimal(100)


class CacheCreation(Wire):
    ephemeral_5m_input_tokens: Count | None = None
    ephemeral_1h_input_tokens: Count | None = None


class ServerToolUse(Wire):
    web_search_requests: Count | None = None


class UsageResult(Wire):
    """One usage result, for validation: every field optional, strictly typed. The store reads the
    same fields from the page body (`sync_store.ANTHROPIC_RESULT_FIELDS`)."""

    api_key_id: Text | None = None
    workspace_id: Text | None = None
    model: Text | None = None
    service_tier: Text | None = None
    context_window: Text | None = None
    inference_geo: Text | None = None
    account_id: Text | None = None
    service_account_id: Text | None = None
    speed: Text | None = None
    uncached_input_tokens: Count | None = None
    cache_read_input_tokens: Count | None = None
    cache_creation: CacheCreation | None = None
    output_tokens: Count | None = None
    server_tool_use: ServerToolUse | None = None


class UsageBucket(Wire):
    starting_at: datetime
    ending_at: datetime
    results: list[UsageResult] = msgspec.field(default_factory=list)


class UsagePage(WirePage):
    data: list[UsageBucket] = msgspec.field(default_factory=list)


class BucketTimes(Wire):
    starting_at: datetime
    ending_at: datetime


class UsageEnvelope(WirePage):
    """What pagination needs of a usage page: its buckets' times and the cursor (results skipped)."""

    data: list[BucketTimes] = msgspec.field(default_factory=list)


_PAGE = msgspec.json.Decoder(UsagePage)
_ENVELOPE = msgspec.json.Decoder(UsageEnvelope)


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


class CostPage(LenientPage):
    data: list[CostBucket] = Field(default_factory=list)


class ApiKey(Lenient):
    id: str
    name: str | None = None
    partial_key_hint: str | None = None
    status: str | None = None
    workspace_id: str | None = None
    created_at: datetime | None = None


class ApiKeyList(LenientList):
    data: list[ApiKey] = Field(default_factory=list)


class Workspace(Lenient):
    id: str
    name: str | None = None
    archived_at: datetime | None = None


class WorkspaceList(LenientList):
    data: list[Workspace] = Field(default_factory=list)


_USAGE_WHERE = "Anthropic /v1/organizations/usage_report/messages"


def parse_usage_envelope(bucket_width: str, body: bytes) -> FetchedPage:
    """A messages usage page with its envelope validated; `check_usage_page` validates the rest, and
    the store normalises its results. Empty buckets are kept so they replace stale rows."""
    parsed = decode(_ENVELOPE, body, _USAGE_WHERE)
    buckets = [(naive_utc(bucket.starting_at), naive_utc(bucket.ending_at)) for bucket in parsed.data]
    page = Page(
        PROVIDER, "usage_report/messages", "usage", bucket_width, buckets, RawUsage("anthropic", body.decode(), 0)
    )
    return FetchedPage(page, parsed.has_more, parsed.next_page)


def check_usage_page(body: str) -> int:
    """Validate a whole usage page (every field the store reads, strictly typed); its result count."""
    parsed = decode(_PAGE, body, _USAGE_WHERE)
    return sum(len(bucket.results) for bucket in parsed.data)


def parse_usage_page(bucket_width: str, body: bytes) -> FetchedPage:
    """A usage page validated whole, envelope and results, in one call."""
    return checked(parse_usage_envelope(bucket_width, body), check_usage_page)


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
                parse=partial(parse_usage_envelope, bucket_width),
                check=check_usage_page,
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
