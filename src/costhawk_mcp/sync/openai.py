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

import msgspec
from pydantic import Field

from costhawk_mcp.errors import ProviderError
from costhawk_mcp.store.sync_store import ApiKeyRow, CostRow, Page, ProjectRow, RawUsage
from costhawk_mcp.sync.base import (
    USAGE_LIMITS,
    Count,
    Endpoint,
    FetchedPage,
    Flag,
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


class UsageResult(Wire):
    """A result of any usage kind, for validation: every field optional, strictly typed. The store
    reads the same fields from the page body (`sync_store.OPENAI_RESULT_FIELDS`)."""

    project_id: Text | None = None
    user_id: Text | None = None
    api_key_id: Text | None = None
    model: Text | None = None
    batch: Flag | None = None
    service_tier: Text | None = None
    size: Text | None = None
    source: Text | None = None
    context_level: Text | None = None
    vector_store_id: Text | None = None
    input_tokens: Count | None = None
    input_cached_tokens: Count | None = None
    input_cache_write_tokens: Count | None = None
    output_tokens: Count | None = None
    input_audio_tokens: Count | None = None
    input_cached_audio_tokens: Count | None = None
    output_audio_tokens: Count | None = None
    input_image_tokens: Count | None = None
    input_cached_image_tokens: Count | None = None
    output_image_tokens: Count | None = None
    num_model_requests: Count | None = None
    images: Count | None = None
    characters: Count | None = None
    seconds: Count | None = None
    usage_bytes: Count | None = None
    num_sessions: Count | None = None
    num_requests: Count | None = None


class UsageBucket(Wire):
    start_time: int
    end_time: int
    results: list[UsageResult] = msgspec.field(default_factory=list)


class UsagePage(WirePage):
    data: list[UsageBucket] = msgspec.field(default_factory=list)


class BucketTimes(Wire):
    start_time: int
    end_time: int


class UsageEnvelope(WirePage):
    """What pagination needs of a usage page: its buckets' times and the cursor (results skipped)."""

    data: list[BucketTimes] = msgspec.field(default_factory=list)


_PAGE = msgspec.json.Decoder(UsagePage)
_ENVELOPE = msgspec.json.Decoder(UsageEnvelope)


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


class CostPage(LenientPage):
    data: list[CostBucket] = Field(default_factory=list)


class Project(Lenient):
    id: str
    name: str | None = None
    status: str | None = None
    archived_at: int | None = None


class ProjectList(LenientList):
    data: list[Project] = Field(default_factory=list)


class ProjectKey(Lenient):
    id: str
    name: str | None = None
    redacted_value: str | None = None
    created_at: int | None = None
    owner_project_access: str | None = None


class ProjectKeyList(LenientList):
    data: list[ProjectKey] = Field(default_factory=list)


def _usage_where(kind: str) -> str:
    return f"OpenAI /organization/usage/{kind}"


def parse_usage_envelope(kind: str, endpoint: str, bucket_width: str, body: bytes) -> FetchedPage:
    """A usage page of one kind with its envelope validated; `check_usage_page` validates the rest,
    and the store normalises its results. Empty buckets are kept so they replace stale rows."""
    parsed = decode(_ENVELOPE, body, _usage_where(kind))
    buckets = [(from_epoch(bucket.start_time), from_epoch(bucket.end_time)) for bucket in parsed.data]
    usage = RawUsage("openai_tokens" if kind in TOKEN_KINDS else "openai_other", body.decode(), 0)
    page = Page(PROVIDER, endpoint, "usage", bucket_width, buckets, usage=usage)
    return FetchedPage(page, parsed.has_more, parsed.next_page)


def check_usage_page(kind: str, body: str) -> int:
    """Validate a whole usage page (every field the store reads, strictly typed); its result count."""
    parsed = decode(_PAGE, body, _usage_where(kind))
    return sum(len(bucket.results) for bucket in parsed.data)


def parse_usage_page(kind: str, endpoint: str, bucket_width: str, body: bytes) -> FetchedPage:
    """A usage page validated whole, envelope and results, in one call."""
    return checked(parse_usage_envelope(kind, endpoint, bucket_width, body), partial(check_usage_page, kind))


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
                parse=partial(parse_usage_envelope, kind, f"usage/{kind}", bucket_width),
                check=partial(check_usage_page, kind),
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
