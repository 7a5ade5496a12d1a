"""Exact counts for Claude and Gemini from the providers' own count-tokens endpoints, on request only.

Offline counting (tokens.py) can only approximate models whose tokenizer is not public. When the user
asks for it (`estimate_prompt(exact_count=true)`) and has configured a regular API key
(ANTHROPIC_API_KEY, or GEMINI_API_KEY / GOOGLE_API_KEY), the count comes from the provider:
Anthropic's free `POST /v1/messages/count_tokens` and Gemini's `models/{model}:countTokens`. That is
the only network call estimate_prompt ever makes, and only to the base URL configured. The keys are
sent in a header and never logged, returned or stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from costhawk_mcp.config import Settings
from costhawk_mcp.errors import InvalidArgument, ProviderAuthError, ProviderError
from costhawk_mcp.pricing.catalog import ModelEntry
from costhawk_mcp.sync.http import scrub
from costhawk_mcp.tokens import Message, TokenCount

log = logging.getLogger("costhawk_mcp.tokens")

SUPPORTED = ("anthropic", "google")
_TIMEOUT_S = 20.0
_RETRIES = 2
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})


def exact_count(
    entry: ModelEntry, settings: Settings, *, text: str | None, messages: Sequence[Message] | None
) -> TokenCount:
    """The provider's own count of a prompt for `entry` (Claude or Gemini models)."""
    if entry.provider == "anthropic":
        key, variable = settings.anthropic_api_key, "ANTHROPIC_API_KEY"
        url = f"{settings.anthropic_base_url}/v1/messages/count_tokens"
        headers = {"x-api-key": key or "", "anthropic-version": "2023-06-01"}
        body = _anthropic_body(entry.model, text, messages)
        field = "input_tokens"
    elif entry.provider == "google":
        key, variable = settings.gemini_api_key, "GEMINI_API_KEY"
        url = f"{settings.gemini_base_url}/v1beta/models/{entry.model}:countTokens"
        headers = {"x-goog-api-key": key or ""}
        body = _gemini_body(entry.model, text, messages)
        field = "totalTokens"
    else:
        raise InvalidArgument(
            "exact_count", f"{entry.provider} models have no count-tokens endpoint here; allowed for: Claude, Gemini"
        )
    if not key:
        raise InvalidArgument(
            "exact_count", f"set {variable} (a regular API key) to count {entry.model} with the provider's endpoint"
        )
    payload = _post(url, headers, body, secret=key, variable=variable, label=f"{entry.provider} count-tokens")
    tokens = payload.get(field)
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        raise ProviderError(f"{entry.provider} count-tokens answered without a token count ({field!r})")
    detail = f"{entry.provider} count-tokens endpoint (exact, as the provider counts this request)"
    encoding = "anthropic-api" if entry.provider == "anthropic" else "gemini-api"
    return TokenCount(tokens, "exact", encoding, detail, tokens, tokens)


def _anthropic_body(model: str, text: str | None, messages: Sequence[Message] | None) -> dict[str, Any]:
    if text is not None:
        return {"model": model, "messages": [{"role": "user", "content": text}]}
    assert messages is not None
    system = "\n\n".join(m.content for m in messages if m.role in ("system", "developer"))
    turns = [
        {"role": "assistant" if m.role == "assistant" else "user", "content": m.content}
        for m in messages
        if m.role not in ("system", "developer")
    ]
    body: dict[str, Any] = {"model": model, "messages": turns or [{"role": "user", "content": ""}]}
    if system:
        body["system"] = system
    return body


def _gemini_body(model: str, text: str | None, messages: Sequence[Message] | None) -> dict[str, Any]:
    if text is not None:
        contents = [{"role": "user", "parts": [{"text": text}]}]
        return {"generateContentRequest": {"model": f"models/{model}", "contents": contents}}
    assert messages is not None
    system = "\n\n".join(m.content for m in messages if m.role in ("system", "developer"))
    contents = [
        {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
        for m in messages
        if m.role not in ("system", "developer")
    ]
    request: dict[str, Any] = {"model": f"models/{model}", "contents": contents}
    if system:
        request["systemInstruction"] = {"parts": [{"text": system}]}
    return {"generateContentRequest": request}


def _retry_delay(header: str | None, attempt: int) -> float:
    try:
        asked = float(header) if header else 0.5 * 2**attempt
    except ValueError:
        asked = 1.0
    return min(max(asked, 0.0), 5.0)


def _post(
    url: str, headers: dict[str, str], body: dict[str, Any], *, secret: str, variable: str, label: str
) -> dict[str, Any]:
    import httpx

    for attempt in range(_RETRIES + 1):
        try:
            response = httpx.post(url, json=body, headers=headers, timeout=_TIMEOUT_S)
        except httpx.HTTPError as exc:
            if attempt < _RETRIES:
                time.sleep(0.5 * 2**attempt)
                continue
            raise ProviderError(f"{label} could not be reached: {scrub(str(exc), [secret])}") from None
        if response.status_code in (401, 403):
            raise ProviderAuthError(f"{label} rejected the key in {variable} (HTTP {response.status_code})")
        if response.status_code in _RETRY_STATUSES and attempt < _RETRIES:
            time.sleep(_retry_delay(response.headers.get("retry-after"), attempt))
            continue
        if response.status_code >= 400:
            text = scrub(response.text[:300], [secret])
            raise ProviderError(f"{label} failed with HTTP {response.status_code}: {text}")
        try:
            payload = response.json()
        except ValueError:
            raise ProviderError(f"{label} answered with something that is not JSON") from None
        if not isinstance(payload, dict):
            raise ProviderError(f"{label} answered with something that is not a JSON object")
        return payload
    raise AssertionError("the loop returns or raises")
