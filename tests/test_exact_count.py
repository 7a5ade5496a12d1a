"""estimate_prompt(exact_count=true): Claude and Gemini counted by the providers' own endpoints.

A local HTTP server on 127.0.0.1 speaks both endpoints, records what it was sent, and answers with
counts chosen by the test, so the real httpx path runs and the money can be worked out by hand.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from costhawk_mcp.config import Settings
from costhawk_mcp.server import build_server

ANTHROPIC_KEY = "sk-ant-api03-EXACTCOUNTTESTKEY0000"
GEMINI_KEY = "AIzaEXACTCOUNTTESTKEY000000000"


@dataclass
class FakeCounter:
    """What the fake endpoints received and will answer."""

    tokens: int = 1234
    fail_first: int = 0  # answer this many requests with HTTP 500 first
    status: int = 200
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def fake() -> Iterator[tuple[FakeCounter, str]]:
    state = FakeCounter()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if state.fail_first:
                state.fail_first -= 1
                self._answer(500, {"error": "try again"})
            elif state.status != 200:
                self._answer(state.status, {"error": {"message": "invalid x-api-key"}})
            elif self.path.endswith("/v1/messages/count_tokens"):
                self._answer(200, {"input_tokens": state.tokens})
            else:
                self._answer(200, {"totalTokens": state.tokens, "promptTokensDetails": []})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def keyed(fake: tuple[FakeCounter, str], test_catalog: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    _, url = fake
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    monkeypatch.setenv("COSTHAWK_ANTHROPIC_BASE_URL", url)
    monkeypatch.setenv("COSTHAWK_GEMINI_BASE_URL", url)
    return Settings.from_env()


async def _estimate(settings: Settings, **arguments: Any) -> Any:
    async with Client(build_server(settings)) as client:
        return await client.call_tool("estimate_prompt", arguments)


@pytest.mark.anyio
async def test_claude_is_counted_exactly_by_anthropics_endpoint_and_priced(
    fake: tuple[FakeCounter, str], keyed: Settings
) -> None:
    state, _ = fake
    result = await _estimate(
        keyed, model="test-claude", text="Hello, Claude.", expected_output_tokens=100, exact_count=True
    )
    assert not result.is_error, result.content
    r = result.structured_content
    assert (r["input_tokens"], r["token_count_method"], r["encoding"]) == (1234, "exact", "anthropic-api")
    assert r["input_tokens_low"] == r["input_tokens_high"] == 1234
    # 1234 input × $3/M + 100 output × $15/M = 0.003702 + 0.0015 = 0.005202
    assert Decimal(str(r["total_cost_usd"])) == Decimal("0.005202")
    assert not any("approximation" in note for note in r["notes"])
    path, headers, body = state.requests[0]
    assert path == "/v1/messages/count_tokens"
    assert headers["x-api-key"] == ANTHROPIC_KEY and headers["anthropic-version"] == "2023-06-01"
    assert body == {"model": "test-claude", "messages": [{"role": "user", "content": "Hello, Claude."}]}


@pytest.mark.anyio
async def test_gemini_chat_messages_go_with_their_system_instruction(
    fake: tuple[FakeCounter, str], keyed: Settings
) -> None:
    state, _ = fake
    state.tokens = 40
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    result = await _estimate(keyed, model="gemini/test-gemini", messages=messages, exact_count=True)
    r = result.structured_content
    assert (r["input_tokens"], r["token_count_method"]) == (40, "exact")
    # 40 × $1.25/M = 0.00005
    assert Decimal(str(r["total_cost_usd"])) == Decimal("0.00005")
    path, headers, body = state.requests[0]
    assert path == "/v1beta/models/test-gemini:countTokens"
    assert headers["x-goog-api-key"] == GEMINI_KEY
    request = body["generateContentRequest"]
    assert request["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in request["contents"]] == ["user", "model"]


@pytest.mark.anyio
async def test_only_models_without_a_public_tokenizer_go_to_the_network(
    fake: tuple[FakeCounter, str], keyed: Settings
) -> None:
    state, _ = fake
    result = await _estimate(
        keyed, model="test-gpt", text="Same prompt.", compare_models=["test-claude", "test-gpt-mini"], exact_count=True
    )
    r = result.structured_content
    assert r["token_count_method"] == "exact" and r["encoding"] == "o200k_base"
    methods = {c["model"]: (c["token_count_method"], c["encoding"]) for c in r["comparisons"]}
    assert methods == {"test-claude": ("exact", "anthropic-api"), "test-gpt-mini": ("exact", "o200k_base")}
    assert [p for p, _, _ in state.requests] == ["/v1/messages/count_tokens"]


@pytest.mark.anyio
async def test_without_exact_count_nothing_leaves_the_machine(fake: tuple[FakeCounter, str], keyed: Settings) -> None:
    state, _ = fake
    result = await _estimate(keyed, model="test-claude", text="Offline, please.")
    assert result.structured_content["token_count_method"] == "approximate"
    assert state.requests == []


@pytest.mark.anyio
async def test_a_missing_key_names_the_variable(fake: tuple[FakeCounter, str], test_catalog: Path) -> None:
    result = await _estimate(Settings.from_env(), model="test-claude", text="Hi", exact_count=True)
    assert result.is_error
    text = result.content[0].text
    assert "exact_count" in text and "ANTHROPIC_API_KEY" in text


@pytest.mark.anyio
async def test_a_rejected_key_names_the_variable_and_never_shows_the_key(
    fake: tuple[FakeCounter, str], keyed: Settings
) -> None:
    state, _ = fake
    state.status = 401
    result = await _estimate(keyed, model="test-claude", text="Hi", exact_count=True)
    assert result.is_error
    text = result.content[0].text
    assert "ANTHROPIC_API_KEY" in text and "401" in text
    assert ANTHROPIC_KEY not in text and ANTHROPIC_KEY[8:20] not in text


@pytest.mark.anyio
async def test_a_passing_server_error_is_retried(fake: tuple[FakeCounter, str], keyed: Settings) -> None:
    state, _ = fake
    state.fail_first = 1
    result = await _estimate(keyed, model="test-claude", text="Hi", exact_count=True)
    assert not result.is_error, result.content
    assert result.structured_content["input_tokens"] == 1234
    assert len(state.requests) == 2
