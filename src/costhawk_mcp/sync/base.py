"""What every provider adapter provides, and the parsing helpers they share.

An adapter knows one provider's wire format: its endpoints with their fixed parameters, how a time
window is written, how to turn a page into store rows (pure functions of the response body) and how
to list key and project names. Everything else — retries, pagination, concurrency, writing — is
shared, so a third provider is one more module of the same shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Literal, Protocol, TypeVar

import msgspec
from pydantic import BaseModel, ConfigDict, ValidationError

from costhawk_mcp.errors import ProviderError
from costhawk_mcp.store.sync_store import ApiKeyRow, Page, ProjectRow
from costhawk_mcp.sync.http import ProviderClient

BucketWidth = Literal["1d", "1h"]
WIDTHS: dict[str, timedelta] = {"1d": timedelta(days=1), "1h": timedelta(hours=1)}
# Buckets per page: the documented maximum for each width (usage endpoints of both providers).
USAGE_LIMITS: dict[str, int] = {"1d": 31, "1h": 168}

_EPOCH = datetime(1970, 1, 1)


class Lenient(BaseModel):
    """Base of every response model: unknown fields are ignored, missing optional ones default."""

    model_config = ConfigDict(extra="ignore")


class LenientPage(Lenient):
    """A cost report page's cursor fields."""

    has_more: bool = False
    next_page: str | None = None


class LenientList(Lenient):
    """A key, project or workspace list page's cursor fields (these lists page by last id)."""

    has_more: bool = False
    last_id: str | None = None


# Usage pages are the bulk of a sync, so they are validated with msgspec (about twice as fast as
# pydantic, and strict by default) into these field types. They are parsed again by DuckDB in the
# store (`sync_store.USAGE_FORMATS`), so a value must mean the same to both: a JSON integer that
# fits a BIGINT, a JSON boolean, a JSON string (or null, or absent). Anything else, such as a count
# sent as "12" or 12.5, fails validation and names its field, rather than being read one way or
# another. Unknown fields are ignored; missing ones are None.
Count = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Flag = bool
Text = str


class Wire(msgspec.Struct, gc=False):
    """Base of the usage page models (msgspec): unknown fields ignored, missing optional ones None."""


class WirePage(Wire):
    """A usage page's cursor fields (both providers' report endpoints page the same way)."""

    has_more: bool = False
    next_page: str | None = None


WireT = TypeVar("WireT", bound=Wire)


def decode(decoder: msgspec.json.Decoder[WireT], body: bytes | str, where: str) -> WireT:
    """Validate a usage page body with a msgspec decoder; a `ProviderError` naming the field otherwise."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ProviderError(f"{where} returned an unexpected response: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ProviderError(f"{where} returned a body that is not JSON ({exc})") from None


@dataclass(frozen=True)
class FetchedPage:
    """A parsed page: the rows for the store (or, for usage, the validated envelope and the body)
    and the pagination fields."""

    page: Page
    has_more: bool
    next_page: str | None


@dataclass(frozen=True)
class Endpoint:
    """One paginated usage or cost endpoint, with the parameters that never change between pages."""

    provider: str
    name: str
    path: str
    kind: Literal["usage", "cost"]
    bucket_width: str
    limit: int
    params: tuple[tuple[str, str], ...]
    parse: Callable[[bytes], FetchedPage]
    check: Callable[[str], int] | None = None
    """For usage endpoints, whose `parse` validates only the envelope (pagination and bucket times):
    the validation of everything else in a page's body, returning how many results it holds or
    raising `ProviderError`. The runner calls it in its writer, just before the page is written:
    validating a large page holds the GIL for milliseconds, which would stall DuckDB's writing if
    it ran on the event loop meanwhile."""

    @property
    def width(self) -> timedelta:
        """The length of one bucket."""
        return WIDTHS[self.bucket_width]


@dataclass
class Names:
    """API key names and projects (or workspaces) of one provider."""

    keys: list[ApiKeyRow] = field(default_factory=list)
    projects: list[ProjectRow] = field(default_factory=list)


class Adapter(Protocol):
    """One provider's admin API."""

    provider: str
    label: str
    key_env: str

    def headers(self, key: str) -> dict[str, str]:
        """Request headers carrying `key`."""
        ...

    def endpoints(self, bucket_width: str) -> list[Endpoint]:
        """The usage and cost endpoints a sync reads."""
        ...

    def window_params(self, start: datetime, end: datetime | None) -> list[tuple[str, str]]:
        """Query parameters for [start, end) in UTC; no end means up to now."""
        ...

    async def fetch_names(self, client: ProviderClient) -> Names:
        """Every API key and project (or workspace), with names."""
        ...


ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_body(model: type[ModelT], body: bytes | str, where: str, *, money: bool = True) -> ModelT:
    """Validate a JSON body.

    With `money` (cost reports, anything with amounts), numbers with a fraction are read as
    `Decimal` from their text, never through float; without, the body is validated straight from
    the bytes by pydantic's own parser, which is several times faster.
    """
    try:
        if not money:
            return model.model_validate_json(body)
        data = json.loads(body, parse_float=Decimal)
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ProviderError(f"{where} returned a body that is not JSON ({first['msg']})") from None
        location = ".".join(str(part) for part in first["loc"])
        raise ProviderError(
            f"{where} returned an unexpected response: {location}: {first['msg']} ({exc.error_count()} problems)"
        ) from None
    except ValueError as exc:
        raise ProviderError(f"{where} returned a body that is not JSON ({exc})") from None


def checked(fetched: FetchedPage, check: Callable[[str], int]) -> FetchedPage:
    """A usage page whose envelope was validated, now validated whole and with its result count."""
    usage = fetched.page.usage
    if usage is None:
        return fetched
    usage = replace(usage, results=check(usage.body))
    return replace(fetched, page=replace(fetched.page, usage=usage))


def from_epoch(seconds: int) -> datetime:
    """Unix seconds as a naive UTC datetime."""
    return _EPOCH + timedelta(seconds=seconds)


def to_epoch(moment: datetime) -> int:
    """A naive UTC datetime as Unix seconds."""
    return int((moment - _EPOCH).total_seconds())


def naive_utc(moment: datetime) -> datetime:
    """Any datetime as naive UTC (naive ones are taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def rfc3339(moment: datetime) -> str:
    """A naive UTC datetime as `YYYY-MM-DDTHH:MM:SSZ`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def dims_key(values: tuple[str | bool | None, ...]) -> str:
    """The upsert key of a cost line: a 128-bit hash of its full dimension tuple, nulls included.

    The dimensions themselves are stored in their own columns; the key only has to be unique per
    bucket and short. (Usage results get theirs in SQL: `sync_store`.)
    """
    return hashlib.blake2b(repr(values).encode(), digest_size=16).hexdigest()


def next_cursor(
    client: ProviderClient, path: str, has_more: bool, last_id: str | None, previous: str | None
) -> str | None:
    """The `after` cursor of the next page of an id-paginated list, or None at the end."""
    if not has_more:
        return None
    if not last_id:
        raise ProviderError(f"{client.label} {path}: has_more is true but last_id is empty")
    if last_id == previous:
        raise ProviderError(f"{client.label} {path}: the API repeated the cursor {last_id!r}")
    return last_id


def redacted_hint(value: str | None) -> str | None:
    """The provider's redacted key hint, re-redacted if it ever looks like more than a hint."""
    if not value:
        return None
    text = value.strip()
    if any(mark in text for mark in ("...", "…", "***")) and len(text) <= 40:
        return text
    if len(text) <= 8:
        return "…" + text
    return f"{text[:6]}…{text[-4:]}"
