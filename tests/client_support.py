"""Tool calls through the protocol, shared by the tool tests: one in-memory MCP client per server.

Results come back as the JSON the wire carried, every number a Decimal, so money is compared exactly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from mcp.client import Client

from costhawk_mcp.config import Settings
from costhawk_mcp.server.app import App
from costhawk_mcp.server.build import build_server
from costhawk_mcp.store.store import RequestRow


class Tools:
    """Tool calls through one in-memory MCP client (building a server costs more than a call)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """A tool's JSON answer, every number as a Decimal (exactly what the wire carried)."""
        result = await self.client.call_tool(tool, args)
        assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
        assert result.structured_content is not None
        parsed: dict[str, Any] = json.loads(result.content[0].text, parse_float=Decimal)  # type: ignore[union-attr]
        return parsed

    async def error(self, tool: str, args: dict[str, Any]) -> str:
        """Call a tool that must fail; its error text."""
        result = await self.client.call_tool(tool, args)
        assert result.is_error, result.structured_content
        text: str = result.content[0].text  # type: ignore[union-attr]
        return text


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[Tools]:
    """A server for `settings` and a client talking to it in memory."""
    async with Client(build_server(settings)) as client:
        yield Tools(client)


async def call(settings: Settings, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """One call on a fresh server (see Tools.call)."""
    async with connect(settings) as tools:
        return await tools.call(tool, args)


async def call_error(settings: Settings, tool: str, args: dict[str, Any]) -> str:
    """One call that must fail, on a fresh server; its error text."""
    async with connect(settings) as tools:
        return await tools.error(tool, args)


def insert(settings: Settings, rows: list[RequestRow]) -> None:
    """Store request rows in the settings' database, priced with the catalog the server will use."""
    App(settings).store.insert_requests(rows)
