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
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Literal, Protocol, TypeVar

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


@dataclass(frozen=True)
class FetchedPage:
    """A parsed page: the rows for the store and the pagination fields."""

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


def parse_body(model: type[ModelT], body: bytes, where: str, *, money: bool = True) -> ModelT:
    """Validate a JSON body.

    With `money` (cost reports, anything with amounts), numbers with a fraction are read as
    `Decimal` from their text, never through float. Usage pages hold only integer counts, so they
    are validated straight from the bytes by pydantic's own parser, which is several times faster.
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


_ENCODE_SORTED = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def dims_key(values: tuple[str | bool | None, ...]) -> str:
    """The upsert key of a result: a 128-bit hash of its full dimension tuple, nulls included.

    The dimensions themselves are stored in their own columns; the key only has to be unique per
    bucket and short, because the primary-key index over hundreds of thousands of rows is most of
    the cost of an upsert.
    """
    return hashlib.blake2b(repr(values).encode(), digest_size=16).hexdigest()


def extra_json(values: dict[str, object]) -> str | None:
    """Non-empty metrics as a JSON object, or None."""
    kept = {k: v for k, v in values.items() if v not in (None, 0, "")}
    return _ENCODE_SORTED(kept) if kept else None


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
