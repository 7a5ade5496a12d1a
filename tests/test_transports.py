"""One real `costhawk-mcp serve` per transport: stdio, streamable HTTP and SSE, driven by the SDK client.

The HTTP tests also probe the transport's guards with raw httpx requests: a missing or wrong bearer
token gets 401 when COSTHAWK_HTTP_TOKEN is set, a foreign Host header 421 and a foreign Origin 403.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import stdio_client
from mcp.client import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from costhawk_mcp.cli import main
from costhawk_mcp.config import ENV_VARS
from transport_support import ACCEPT, INITIALIZE, assert_no_traceback, running_server, stdio_params

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("test_catalog")]

TOKEN = "test-token-8f3a"  # a made-up bearer token for these servers only
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FOREIGN_HOST = {"Host": "evil.example"}
FOREIGN_ORIGIN = {"Origin": "http://evil.example"}
PROSE_1000 = "hello" + " hello" * 999  # 1000 o200k tokens


async def exercise(client: Client) -> None:
    """The same conversation on every transport: list, estimate, fail readably, read a resource."""
    names = {tool.name for tool in (await client.list_tools()).tools}
    assert {"estimate_prompt", "lookup_pricing"} <= names
    result = await client.call_tool(
        "estimate_prompt", {"model": "openai/test-gpt", "text": PROSE_1000, "expected_output_tokens": 500}
    )
    assert not result.is_error, result.content
    assert result.structured_content is not None
    # 1000 × $2/M + 500 × $8/M = 0.002 + 0.004 = 0.006
    assert (result.structured_content["input_tokens"], result.structured_content["total_cost_usd"]) == (1000, 0.006)
    failed = await client.call_tool("estimate_prompt", {"model": "test-gtp", "text": "hi"})
    assert failed.is_error and "close matches: test-gpt" in failed.content[0].text  # type: ignore[union-attr]
    resource = await client.read_resource("pricing://models/anthropic/test-claude")
    assert '"model":"test-claude"' in resource.contents[0].text.replace(" ", "")  # type: ignore[union-attr]


async def test_stdio_server_speaks_only_protocol_on_stdout(tmp_path: Path, isolated_env: Path) -> None:
    # every logger at DEBUG: all of it must go to stderr, none to the protocol on stdout
    params = stdio_params(isolated_env, tmp_path / "empty-tiktoken-cache", COSTHAWK_LOG_LEVEL="DEBUG")
    stray: list[Any] = []  # anything on stdout that is not JSON-RPC reaches the client as an exception

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            stray.append(message)

    stderr_path = tmp_path / "stdio.stderr"
    with stderr_path.open("w", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy", message_handler=on_message) as client:
            assert client.protocol_version == "2025-11-25"  # the initialize handshake desktop clients use
            assert client.instructions and "estimate_prompt" in client.instructions
            await exercise(client)
    stderr = stderr_path.read_text(encoding="utf-8")
    assert stray == []
    assert "DEBUG" in stderr  # the logs did flow, to stderr
    assert_no_traceback(stderr)
    assert not any((tmp_path / "empty-tiktoken-cache").iterdir())  # counting downloaded nothing


async def test_streamable_http_requires_the_token_and_rejects_foreign_hosts(tmp_path: Path) -> None:
    with running_server("streamable-http", tmp_path, env={"COSTHAWK_HTTP_TOKEN": TOKEN}) as server:
        url = f"{server.base_url}/mcp"
        missing = httpx.post(url, json=INITIALIZE, headers=ACCEPT)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert httpx.post(url, json=INITIALIZE, headers={**ACCEPT, "Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(url, json=INITIALIZE, headers={**ACCEPT, "Authorization": TOKEN}).status_code == 401
        assert httpx.post(url, json=INITIALIZE, headers={**ACCEPT, **AUTH}).status_code == 200
        assert httpx.post(url, json=INITIALIZE, headers={**ACCEPT, **AUTH, **FOREIGN_HOST}).status_code == 421
        assert httpx.post(url, json=INITIALIZE, headers={**ACCEPT, **AUTH, **FOREIGN_ORIGIN}).status_code == 403
        assert httpx.get(url, headers={**ACCEPT, **AUTH, **FOREIGN_HOST}, timeout=5).status_code == 421
        local_origin = {"Origin": "http://localhost:5173"}
        assert httpx.post(url, json=INITIALIZE, headers={**ACCEPT, **AUTH, **local_origin}).status_code == 200

        async with (
            httpx2.AsyncClient(headers=AUTH) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            assert client.protocol_version == "2026-07-28"
            await exercise(client)
    assert server.stdout() == ""
    assert_no_traceback(server.stderr())


async def test_sse_requires_the_token_and_rejects_foreign_hosts(tmp_path: Path) -> None:
    with running_server("sse", tmp_path, env={"COSTHAWK_HTTP_TOKEN": TOKEN}) as server:
        url = f"{server.base_url}/sse"
        assert httpx.get(url, timeout=5).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
        assert httpx.get(url, headers={**AUTH, **FOREIGN_HOST}, timeout=5).status_code == 421
        assert httpx.get(url, headers={**AUTH, **FOREIGN_ORIGIN}, timeout=5).status_code == 403
        messages = f"{server.base_url}/messages/?session_id=0123456789abcdef0123456789abcdef"
        assert httpx.post(messages, json=INITIALIZE).status_code == 401
        assert httpx.post(messages, json=INITIALIZE, headers={**AUTH, **FOREIGN_ORIGIN}).status_code == 403

        async with Client(sse_client(url, headers=AUTH), mode="legacy") as client:
            await exercise(client)
    assert server.stdout() == ""
    assert_no_traceback(server.stderr())  # rejected requests are warnings, not crashes


def test_serving_beyond_loopback_needs_allow_remote(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--transport", "streamable-http", "--host", "0.0.0.0", "--port", "9"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == (
        "costhawk-mcp serve: --host: '0.0.0.0' is not a loopback address; "
        "pass --allow-remote to serve beyond this machine"
    )


def test_smithery_start_command_maps_only_settings_the_server_reads() -> None:
    text = (Path(__file__).resolve().parents[1] / "smithery.yaml").read_text(encoding="utf-8")
    assert "type: stdio" in text
    assert "command: 'costhawk-mcp', args: ['serve']" in text
    mapped = set(re.findall(r"env\.([A-Z_]+) = config\.", text))
    assert mapped == {"COSTHAWK_DB", "OPENAI_ADMIN_KEY", "ANTHROPIC_ADMIN_KEY"}
    assert mapped <= set(ENV_VARS)
