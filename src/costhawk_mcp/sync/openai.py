"""OpenAI's Admin API: usage (ten kinds), costs, and projects with their API keys.

Wire format (see the provider notes): `Authorization: Bearer <admin key>`; Unix-second
`start_time`/`end_time`; array parameters in bracket form (`group_by[]=model`); pages of time
buckets followed with `page=<next_page>`; money as a JSON number of dollars.

Completions are grouped by everything that changes their price or attribution — project, API key,
model, `batch` and service tier — and embeddings by project, key and model; both become priced
token rows. The other kinds (moderations, images, audio, tool calls, storage) are not priced per
token by the catalog: their rows keep the dimensions and put their metrics in `extra`.
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
    from_epoch,
    next_cursor,
    parse_body,
    redacted_hint,
    to_epoch,
)
from costhawk_mcp.sync.http import ProviderClient

PROVIDER = "openai"
KEY_ENV = "OPENAI_ADMIN_KEY"

# Usage kind -> group_by values (every one that changes price or attribution, as the API allows).
GROUP_BY: dict[str, tuple[str, ...]] = {
    "completions": ("project_id", "api_key_id", "model", "batch", "service_tier"),
    "embeddings": ("project_id", "api_key_id", "model"),
    "moderations": ("project_id", "api_key_id", "model"),
    "images": ("project_id", "api_key_id", "model", "size", "source"),
    "audio_speeches": ("project_id", "api_key_id", "model"),
    "audio_transcriptions": ("project_id", "api_key_id", "model"),
    "web_search_calls": ("project_id", "api_key_id", "model", "context_level"),
    "file_search_calls": ("project_id", "api_key_id"),
    "code_interpreter_sessions": ("project_id",),
    "vector_stores": ("project_id",),
}
TOKEN_KINDS = frozenset({"completions", "embeddings"})
COSTS_LIMIT = 180  # daily buckets per page, the documented maximum

_MODALITY_FIELDS = (
    "input_audio_tokens",
    "input_cached_audio_tokens",
    "output_audio_tokens",
    "input_image_tokens",
    "input_cached_image_tokens",
    "output_image_tokens",
)
_OTHER_METRICS = (
    "input_tokens",
    "num_model_requests",
    "images",
    "characters",
    "seconds",
    "usage_bytes",
    "num_sessions",
    "num_requests",
)


@with_config(ConfigDict(extra="ignore"))
class UsageResult(TypedDict, total=False):
    """A result of any usage kind: every field optional (validated into a plain dict: a page holds
    thousands, and dicts cost a fraction of model instances)."""

    project_id: str | None
    user_id: str | None
    api_key_id: str | None
    model: str | None
    batch: bool | None
    service_tier: str | None
    size: str | None
    source: str | None
    context_level: str | None
    vector_store_id: str | None
    input_tokens: int | None
    input_cached_tokens: int | None
    input_cache_write_tokens: int | None
    output_tokens: int | None
    input_audio_tokens: int | None
    input_cached_audio_tokens: int | None
    output_audio_tokens: int | None
    input_image_tokens: int | None
    input_cached_image_tokens: int | None
    output_image_tokens: int | None
    num_model_requests: int | None
    images: int | None
    characters: int | None
    seconds: int | None
    usage_bytes: int | None
    num_sessions: int | None
    num_requests: int | None


class UsageBucket(Lenient):
    start_time: int
    end_time: int
    results: list[UsageResult] = Field(default_factory=list)


class UsagePage(Lenient):
    data: list[UsageBucket] = Field(default_factory=list)
    has_more: bool = False
    next_page: str | None = None


class Amount(Lenient):
    value: Decimal = Decimal(0)
    currency: str | None = None


class CostResult(Lenient):
    amount: Amount | None = None
    line_item: str | None = None
    project_id: str | None = None
    api_key_id: str | None = None
    quantity: Decimal | None = None


class CostBucket(Lenient):
    start_time: int
    end_time: int
    results: list[CostResult] = Field(default_factory=list)


class CostPage(Lenient):
    data: list[CostBucket] = Field(default_factory=list)
    has_more: bool = False
    next_page: str | None = None


class Project(Lenient):
    id: str
    name: str | None = None
    status: str | None = None
    archived_at: int | None = None


class ProjectList(Lenient):
    data: list[Project] = Field(default_factory=list)
    has_more: bool = False
    last_id: str | None = None


class ProjectKey(Lenient):
    id: str
    name: str | None = None
    redacted_value: str | None = None
    created_at: int | None = None
    owner_project_access: str | None = None


class ProjectKeyList(Lenient):
    data: list[ProjectKey] = Field(default_factory=list)
    has_more: bool = False
    last_id: str | None = None


def token_row(start: datetime, end: datetime, r: UsageResult) -> UsageRow:
    """A completions or embeddings result in the store's form: priced token usage."""
    batch, tier = r.get("batch"), r.get("service_tier")
    cached = r.get("input_cached_tokens") or 0
    written = r.get("input_cache_write_tokens") or 0
    modalities = {name: r.get(name) for name in _MODALITY_FIELDS}
    return UsageRow(
        start,
        end,
        _key(r),
        r.get("project_id"),
        None,
        r.get("api_key_id"),
        r.get("user_id"),
        r.get("model"),
        batch,
        tier,
        service_tier(bool(batch), tier),
        None,
        False,
        r.get("num_model_requests"),
        max(r.get("input_tokens") or 0, cached + written),
        cached,
        written,
        0,
        r.get("output_tokens") or 0,
        extra_json(modalities) if any(modalities.values()) else None,
    )


def other_row(start: datetime, end: datetime, r: UsageResult) -> UsageRow:
    """A result of a kind the catalog does not price per token: dimensions, and metrics in `extra`."""
    metrics: dict[str, object] = {name: r.get(name) for name in _OTHER_METRICS}
    metrics.update(
        size=r.get("size"),
        source=r.get("source"),
        context_level=r.get("context_level"),
        vector_store_id=r.get("vector_store_id"),
    )
    return UsageRow(
        start,
        end,
        _key(r),
        project_id=r.get("project_id"),
        api_key_id=r.get("api_key_id"),
        user_id=r.get("user_id"),
        model=r.get("model"),
        extra=extra_json(metrics),
    )


def _key(r: UsageResult) -> str:
    return dims_key(
        (
            r.get("project_id"),
            r.get("user_id"),
            r.get("api_key_id"),
            r.get("model"),
            r.get("batch"),
            r.get("service_tier"),
            r.get("size"),
            r.get("source"),
            r.get("context_level"),
            r.get("vector_store_id"),
        )
    )


def parse_usage_page(kind: str, endpoint: str, bucket_width: str, body: bytes) -> FetchedPage:
    """A usage page of one kind as store rows; empty buckets are kept so they replace stale rows."""
    parsed = parse_body(UsagePage, body, f"OpenAI /organization/usage/{kind}", money=False)
    row = token_row if kind in TOKEN_KINDS else other_row
    buckets: list[tuple[datetime, datetime]] = []
    rows: list[UsageRow] = []
    for bucket in parsed.data:
        start, end = from_epoch(bucket.start_time), from_epoch(bucket.end_time)
        buckets.append((start, end))
        rows.extend(row(start, end, result) for result in bucket.results)
    page = Page(PROVIDER, endpoint, "usage", bucket_width, buckets, usage=rows)
    return FetchedPage(page, parsed.has_more, parsed.next_page)


def parse_cost_page(body: bytes) -> FetchedPage:
    """A Costs API page as store rows (dollars, exact)."""
    parsed = parse_body(CostPage, body, "OpenAI /organization/costs")
    buckets: list[tuple[datetime, datetime]] = []
    rows: list[CostRow] = []
    for bucket in parsed.data:
        start, end = from_epoch(bucket.start_time), from_epoch(bucket.end_time)
        buckets.append((start, end))
        for r in bucket.results:
            amount = r.amount or Amount()
            if amount.currency is not None and amount.currency.lower() != "usd":
                raise ProviderError(f"OpenAI /organization/costs reported {amount.currency!r}; only USD is supported")
            rows.append(
                CostRow(
                    bucket_start=start,
                    bucket_end=end,
                    dims_key=dims_key((r.project_id, r.api_key_id, r.line_item)),
                    amount_usd=amount.value,
                    project_id=r.project_id,
                    api_key_id=r.api_key_id,
                    line_item=r.line_item,
                    quantity=float(r.quantity) if r.quantity is not None else None,
                )
            )
    page = Page(PROVIDER, "costs", "cost", "1d", buckets, costs=rows)
    return FetchedPage(page, parsed.has_more, parsed.next_page)


class OpenAIAdapter:
    """OpenAI's Admin API."""

    provider = PROVIDER
    label = "OpenAI"
    key_env = KEY_ENV

    def headers(self, key: str) -> dict[str, str]:
        """Bearer auth with the admin key."""
        return {"Authorization": f"Bearer {key}", "Accept": "application/json"}

    def endpoints(self, bucket_width: str) -> list[Endpoint]:
        """Every usage kind at `bucket_width`, and the daily Costs API."""
        endpoints = [
            Endpoint(
                provider=PROVIDER,
                name=f"usage/{kind}",
                path=f"/organization/usage/{kind}",
                kind="usage",
                bucket_width=bucket_width,
                limit=USAGE_LIMITS[bucket_width],
                params=(("bucket_width", bucket_width), *(("group_by[]", g) for g in group_by)),
                parse=partial(parse_usage_page, kind, f"usage/{kind}", bucket_width),
            )
            for kind, group_by in GROUP_BY.items()
        ]
        endpoints.append(
            Endpoint(
                provider=PROVIDER,
                name="costs",
                path="/organization/costs",
                kind="cost",
                bucket_width="1d",
                limit=COSTS_LIMIT,
                params=(("bucket_width", "1d"), ("group_by[]", "project_id"), ("group_by[]", "line_item")),
                parse=parse_cost_page,
            )
        )
        return endpoints

    def window_params(self, start: datetime, end: datetime | None) -> list[tuple[str, str]]:
        """`start_time` (and `end_time`) in Unix seconds."""
        params = [("start_time", str(to_epoch(start)))]
        if end is not None:
            params.append(("end_time", str(to_epoch(end))))
        return params

    async def fetch_names(self, client: ProviderClient) -> Names:
        """Projects (archived too) and each project's API keys (`owner_project_access=any`)."""
        names = Names()
        after: str | None = None
        while True:
            params = [("limit", "100"), ("include_archived", "true"), *([("after", after)] if after else [])]
            page = parse_body(ProjectList, await client.get("/organization/projects", params), "OpenAI projects")
            for project in page.data:
                status = project.status or ("archived" if project.archived_at else "active")
                names.projects.append(ProjectRow(project.id, project.name, "project", status))
            after = next_cursor(client, "/organization/projects", page.has_more, page.last_id, after)
            if after is None:
                break
        for row in names.projects:
            names.keys.extend(await self._project_keys(client, row.project_id))
        return names

    async def _project_keys(self, client: ProviderClient, project_id: str) -> list[ApiKeyRow]:
        path = f"/organization/projects/{project_id}/api_keys"
        keys: list[ApiKeyRow] = []
        after: str | None = None
        while True:
            params = [("limit", "100"), ("owner_project_access", "any"), *([("after", after)] if after else [])]
            page = parse_body(ProjectKeyList, await client.get(path, params), f"OpenAI {path}")
            keys.extend(
                ApiKeyRow(
                    api_key_id=key.id,
                    name=key.name,
                    redacted_hint=redacted_hint(key.redacted_value),
                    project_id=project_id,
                    status=key.owner_project_access,
                    created_at=from_epoch(key.created_at) if key.created_at is not None else None,
                )
                for key in page.data
            )
            after = next_cursor(client, path, page.has_more, page.last_id, after)
            if after is None:
                break
        return keys
