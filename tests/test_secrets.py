"""No secret leaves the process: a full run over streamable HTTP, then a scan of everything it left.

A real `costhawk-mcp serve` with known fake admin keys and an HTTP bearer token, every logger at DEBUG,
syncs from the fake provider APIs (so httpx logs its requests), is refused with wrong and partial
tokens, answers tools that succeed, fail readably and fail inside the store, reads the sync status and
renders a prompt. Afterwards the admin keys and the token must appear nowhere: not in the server's
stdout or stderr (its log and any traceback of a crash), not in a tool result or error, not in the
database file, its WAL or anything else under the costhawk home.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from sync_support import SINCE, UNTIL, hand_worked, running_fake, text_of
from transport_support import ACCEPT, INITIALIZE, assert_no_traceback, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("test_catalog")]

TOKEN = "tok-secret-5d1e9b7c44a0"  # the bearer token of this server only


def everything_under(folder: Path) -> bytes:
    """The bytes of every file below `folder` (database, WAL, catalogs, staging debris)."""
    return b"\n".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


async def test_keys_and_token_appear_in_no_log_output_error_or_file(tmp_path: Path, isolated_env: Path) -> None:
    with running_fake() as fake:
        hand_worked(fake)
        secrets = [fake.openai_key, fake.anthropic_key, TOKEN]
        env = {**fake.env(), "COSTHAWK_HTTP_TOKEN": TOKEN, "COSTHAWK_LOG_LEVEL": "DEBUG"}
        texts: list[str] = []
        with running_server("streamable-http", tmp_path / "server", env=env) as server:
            url = f"{server.base_url}/mcp"
            for wrong in (f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", TOKEN, f"Basic {TOKEN}"):
                refused = httpx.post(url, json=INITIALIZE, headers={**ACCEPT, "Authorization": wrong})
                assert refused.status_code == 401
                texts.append(refused.text + str(refused.headers))
            async with (
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                calls = [
                    ("sync_usage", {"since": SINCE, "until": UNTIL}),
                    ("reconcile", {"start": SINCE, "end": UNTIL}),
                    ("top_expensive_keys", {"start": SINCE, "end": UNTIL}),
                    ("spend_summary", {"start": SINCE, "end": UNTIL, "group_by": "api_key"}),
                    ("sync_usage", {"since": "not-a-date"}),  # a readable failure
                    ("top_expensive_keys", {"days": 30, "provider": "openai' OR '1'='1"}),
                    ("set_budget", {"scope": "project", "amount_usd": -5}),
                ]
                for tool, arguments in calls:
                    texts.append(text_of(await client.call_tool(tool, arguments)))
                status = await client.read_resource("costhawk://sync-status")
                texts.append(status.contents[0].text)  # type: ignore[union-attr]
                prompt = await client.get_prompt("weekly_cost_review", {})
                texts.append(str(prompt.messages))
        assert '"complete": true' in texts[4] and "HTTP Request: GET" in server.stderr()  # synced, and logged it
        assert_no_traceback(server.stderr())
        texts += [server.stdout(), server.stderr()]
    scanned = "\n".join(texts)
    stored = everything_under(isolated_env)
    assert b"usage_buckets" in stored or len(stored) > 100_000  # the database file is among them
    for secret in secrets:
        assert secret not in scanned, f"{secret} leaked into a log, a result or an error"
        assert secret.encode() not in stored, f"{secret} was written to disk"
