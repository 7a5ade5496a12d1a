"""The HTTP side of a sync: retries with backoff, provider error messages, pagination.

Retried: connection errors and HTTP 408, 409, 429 and every 5xx (Anthropic's 529 included), with
exponential backoff and jitter, honouring `retry-after-ms` / `retry-after` (seconds or an HTTP date)
up to `RetryPolicy.max_retry_after` and `x-should-retry`. A wait the provider asks for beyond that
bound is not slept through: the call fails at once and says so. A 401/403 is never retried and
raises `ProviderAuthError` naming the environment variable that holds the rejected key.

The admin key goes out in a request header and nowhere else: it is not logged, not part of any
exception message (provider text is scrubbed of it before use), and httpx's own loggers never see
header values.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio

from costhawk_mcp.errors import ProviderAuthError, ProviderError

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("costhawk_mcp.sync")

Params = Sequence[tuple[str, str]]
Sleep = Callable[[float], Awaitable[None]]

_RETRY_STATUSES = frozenset({408, 409, 429})
_MAX_PROVIDER_TEXT = 300


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0
    timeout_s: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): exponential, capped, with up to 25 % jitter off."""
        delay = min(self.base_delay_s * 2.0 ** (attempt - 1), self.max_delay_s)
        return delay * (1 - 0.25 * random.random())


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced, so provider messages can be shown and stored."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "[redacted]")
    return text


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the provider asks to wait: `retry-after-ms`, else `retry-after` (seconds or HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _provider_message(response: httpx.Response) -> str:
    """The error text from either provider's error body, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:_MAX_PROVIDER_TEXT].strip()
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:_MAX_PROVIDER_TEXT]
        if isinstance(error, str):
            return error[:_MAX_PROVIDER_TEXT]
    return response.text[:_MAX_PROVIDER_TEXT].strip()


class ProviderClient:
    """GET requests to one provider's admin API, with retries and safe error messages."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        label: str,
        base_url: str,
        headers: dict[str, str],
        secret: str,
        key_env: str,
        policy: RetryPolicy,
        limiter: anyio.CapacityLimiter,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self._http = http
        self.label = label
        self._base_url = base_url.rstrip("/")
        self._headers = headers
        self._secrets = (secret,)
        self.key_env = key_env
        self.policy = policy
        self._limiter = limiter
        self._sleep = sleep
        self.requests = 0

    def scrub(self, text: str) -> str:
        """`text` without the admin key."""
        return scrub(text, self._secrets)

    async def get(self, path: str, params: Params) -> bytes:
        """The body of a successful GET, after retries; a `ProviderError` naming `path` otherwise."""
        import httpx

        url = self._base_url + path
        attempt = 0
        while True:
            attempt += 1
            wait: float | None = None
            try:
                async with self._limiter:
                    self.requests += 1
                    response = await self._http.get(url, params=list(params), headers=self._headers)
            except httpx.RequestError as exc:  # connection, timeout, protocol and decoding errors
                problem = f"connection error ({type(exc).__name__}: {self.scrub(str(exc)) or 'no detail'})"
                retryable = True
            else:
                status = response.status_code
                if status < 300:
                    return response.content
                message = self.scrub(_provider_message(response))
                if status in (401, 403):
                    raise ProviderAuthError(
                        f"{self.label} rejected the admin key in {self.key_env} (HTTP {status} on {path}): "
                        f"{message or 'no message'}. Set {self.key_env} to an Admin API key of your organisation."
                    )
                problem = f"HTTP {status}" + (f": {message}" if message else "")
                should = response.headers.get("x-should-retry", "").lower()
                retryable = (
                    (status in _RETRY_STATUSES or status >= 500)
                    if should not in ("true", "false")
                    else (should == "true")
                )
                wait = _retry_after(response.headers)
                if not retryable:
                    raise ProviderError(f"{self.label} {path} failed with {problem}")
                if wait is not None and wait > self.policy.max_retry_after_s:
                    raise ProviderError(
                        f"{self.label} {path} failed with {problem}; the provider asked to wait {wait:g} s, "
                        f"more than the {self.policy.max_retry_after_s:g} s this sync waits. Try again later."
                    )
            if attempt >= self.policy.max_attempts:
                raise ProviderError(f"{self.label} {path} failed with {problem} after {attempt} attempts")
            delay = wait if wait is not None else self.policy.backoff(attempt)
            log.warning(
                "%s %s: %s; retrying in %.2f s (attempt %d of %d)",
                self.label,
                path,
                problem,
                delay,
                attempt + 1,
                self.policy.max_attempts,
            )
            await self._sleep(delay)


class Paged(Protocol):
    """A parsed page of a cursor-paginated endpoint."""

    @property
    def has_more(self) -> bool: ...

    @property
    def next_page(self) -> str | None: ...


PageT = TypeVar("PageT", bound=Paged)


async def paginate(
    client: ProviderClient, path: str, params: Params, parse: Callable[[bytes], PageT]
) -> AsyncIterator[PageT]:
    """Every page of an endpoint: the same parameters each time plus `page=<next_page>`.

    Stops when `has_more` is false. A page claiming more without a cursor, or a cursor seen before,
    is an error rather than an end, so a misbehaving API cannot make a sync silently short or endless.
    """
    seen: set[str] = set()
    cursor: str | None = None
    while True:
        query = list(params) if cursor is None else [*params, ("page", cursor)]
        page = parse(await client.get(path, query))
        yield page
        if not page.has_more:
            return
        cursor = page.next_page
        if not cursor:
            raise ProviderError(f"{client.label} {path}: has_more is true but next_page is empty")
        if cursor in seen:
            raise ProviderError(f"{client.label} {path}: the API repeated the page cursor {cursor!r}")
        seen.add(cursor)
